"""The action service: the policy checked again before every host call, every attempt audited.

The lab's default endpoint serves host administrators only, so the pool signs in as adam while
the service decides for the person named (olivia, henry): what is tested here is the console's
own check, before anything reaches a host.
"""
from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from console.actions import ActionService
from console.audit import AuditTrail
from console.errors import (
    AuditError, Denied, HostError, InvalidParameter, NoShutdownService, VMNotFound,
)
from console.hosts import ActionOutcome, HostPool
from console.identity import Identity
from console.inventory import VM, Action, Checkpoint, DvdDrive
from lab.hyperv import Durations
from lab.directory import LabDirectory
from console.paths import LAB_DATA
from console.policy import Policy
from tests.test_hosts import ADAM, APP01, DB01, FILES, WEB01, LabHosts, start_lab

PRINT = "58a006d8-4cd7-53ac-aa46-a10dc2e2cb10"  # office-print on HV02


@pytest.fixture
def lab() -> Iterator[LabHosts]:
    yield from start_lab(Durations.instant())


@pytest.fixture
def pool(lab: LabHosts) -> Iterator[HostPool]:
    with HostPool(lab.configs(), ADAM) as pool:
        yield pool


@pytest.fixture
def audit(tmp_path: Path) -> AuditTrail:
    return AuditTrail(tmp_path / "audit.jsonl", workstation="TEST-PC")


@pytest.fixture
def service(pool: HostPool, audit: AuditTrail) -> ActionService:
    return ActionService(Policy.load(LAB_DATA / "policy.toml"), audit, pool, poll_interval=0.05)


def person(name: str) -> Identity:
    return LabDirectory().sign_in(name, f"{name}-demo")


def vm_of(pool: HostPool, host: str, vm_id: str) -> VM:
    return next(vm for vm in pool.client(host).inventory() if vm.id == vm_id)


def test_allowed_action_is_audited_before_and_after(lab: LabHosts, pool: HostPool,
                                                    service: ActionService,
                                                    audit: AuditTrail) -> None:
    olivia = person("olivia")
    outcome = service.perform(olivia, vm_of(pool, "HV01", WEB01), Action.SHUTDOWN)
    assert outcome.status == "ok" and outcome.vm_state == "Off"
    decided, done = audit.records()
    assert (decided.decision, decided.action, decided.vm_id, decided.user_sid) == (
        "allowed", "shutdown", WEB01, olivia.sid)
    assert "HV-Shop-Owners" in decided.reason
    assert (done.outcome, done.correlation_id) == ("ok", decided.correlation_id)
    assert [c.cmdlet for c in lab.executors["HV01"].calls] == ["Stop-VM"]
    assert audit.verify().ok


def test_the_host_call_carries_the_decision_records_reference(lab: LabHosts, pool: HostPool,
                                                               service: ActionService,
                                                               audit: AuditTrail) -> None:
    # The host writes the record's id, number and line hash in its own event, beside the caller
    # from the token (the pool signs in as adam; the trail names olivia, for whom it decided).
    service.perform(person("olivia"), vm_of(pool, "HV01", WEB01), Action.SAVE)
    decided, _ = audit.records()
    line = audit.path.read_bytes().splitlines(keepends=True)[0]
    (event,) = [e for e in lab.executors["HV01"].events if e.operation == "power"]
    assert (event.action, event.outcome, event.user) == ("save", "ok", "LAB\\adam")
    assert event.params["record"] == decided.correlation_id
    assert event.params["sha256"] == hashlib.sha256(line).hexdigest()
    assert (event.params["seq"], event.params["workstation"]) == ("1", "TEST-PC")
    assert event.params["sid"] == person("adam").sid and event.params["endpoint"] == "admin"


@pytest.mark.parametrize(("who", "host", "vm_id", "action", "words"), [
    ("henry", "HV01", WEB01, Action.SHUTDOWN, "may not shut down shop-web01"),  # no grant
    ("henry", "HV02", PRINT, Action.TURNOFF, "may not turn off office-print"),  # helpdesk only
    ("olivia", "HV01", WEB01, Action.START, "shop-web01 is Running"),  # wrong state
    ("adam", "HV01", FILES, Action.START, "Replica copy"),  # a failover in disguise
    ("adam", "HV01", FILES, Action.CHECKPOINT_CREATE, "Replica copy"),
])
def test_refusals_are_audited_and_never_reach_the_host(
        lab: LabHosts, pool: HostPool, service: ActionService, audit: AuditTrail, who: str,
        host: str, vm_id: str, action: Action, words: str) -> None:
    vm = vm_of(pool, host, vm_id)
    with pytest.raises(Denied, match=words):
        service.perform(person(who), vm, action)
    (record,) = audit.records()
    assert (record.decision, record.action, record.vm_id, record.vm_name) == (
        "denied", str(action), vm_id, vm.name)
    assert words in record.reason
    assert lab.executors[host].calls == []  # no cmdlet that changes a VM ran


def test_the_state_is_read_again_right_before_acting(lab: LabHosts, pool: HostPool,
                                                     service: ActionService,
                                                     audit: AuditTrail) -> None:
    stale = replace(vm_of(pool, "HV01", WEB01), state="Off")  # the window still shows Off
    with pytest.raises(Denied, match="is Running"):
        service.perform(person("olivia"), stale, Action.START)
    assert audit.records()[0].decision == "denied"
    assert lab.executors["HV01"].calls == []


def test_a_host_refusal_is_audited_as_failed(pool: HostPool, service: ActionService,
                                             audit: AuditTrail) -> None:
    with pytest.raises(NoShutdownService):
        service.perform(person("olivia"), vm_of(pool, "HV01", DB01), Action.SHUTDOWN)
    decided, failed = audit.records()
    assert decided.decision == "allowed"
    assert failed.outcome == "failed" and "shutdown integration service" in failed.error


def test_a_vanished_vm_is_refused_and_audited(pool: HostPool, service: ActionService,
                                              audit: AuditTrail) -> None:
    ghost = replace(vm_of(pool, "HV01", WEB01), id=str(uuid.uuid4()))
    with pytest.raises(Exception, match="no longer on HV01"):
        service.perform(person("adam"), ghost, Action.START)
    assert audit.records()[0].decision == "denied"


def test_restart_is_two_audited_steps(lab: LabHosts, pool: HostPool, service: ActionService,
                                      audit: AuditTrail) -> None:
    lab.host("HV01").durations.shutdown = 0.3
    outcome = service.perform(person("olivia"), vm_of(pool, "HV01", WEB01), Action.RESTART)
    assert outcome.status == "ok" and outcome.vm_state == "Running"
    records = [(r.action, r.decision or r.outcome, r.params.get("restart", "")) for r in
               audit.records()]
    assert records == [("shutdown", "allowed", "step 1 of 2"), ("shutdown", "ok", ""),
                       ("start", "allowed", "step 2 of 2"), ("start", "ok", "")]
    assert [c.cmdlet for c in lab.executors["HV01"].calls] == ["Stop-VM", "Start-VM"]


def test_checkpoint_and_media_actions(lab: LabHosts, pool: HostPool, service: ActionService,
                                      audit: AuditTrail) -> None:
    olivia = person("olivia")
    vm = vm_of(pool, "HV01", APP01)
    created = service.perform(olivia, vm, Action.CHECKPOINT_CREATE, name="before 4.3")
    assert created.checkpoint is not None and created.checkpoint.name == "before 4.3"
    with pytest.raises(InvalidParameter, match="Choose the checkpoint"):
        service.perform(olivia, vm, Action.CHECKPOINT_APPLY)
    mounted = service.perform(olivia, vm, Action.MOUNT_ISO, path="D:\\ISO\\SystemRescue-11.iso")
    assert mounted.drive is not None and mounted.drive.path == "D:\\ISO\\SystemRescue-11.iso"
    # The host checked the path against its approved library (from the policy): one outside it
    # never reaches Set-VMDvdDrive.
    assert lab.executors["HV01"].calls_of("Set-VMDvdDrive")[-1].params["Path"] \
        == "D:\\ISO\\SystemRescue-11.iso"
    # The apply without a checkpoint was refused as bad input, before any decision or host call.
    assert [r.params for r in audit.records() if r.decision == "allowed"] == [
        {"name": "before 4.3"}, {"path": "D:\\ISO\\SystemRescue-11.iso"}]


def test_no_action_without_an_audit_trail(lab: LabHosts, pool: HostPool, tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the trail's folder should be")
    service = ActionService(Policy.load(LAB_DATA / "policy.toml"),
                            AuditTrail(blocked / "audit.jsonl"), pool)
    with pytest.raises(AuditError):
        service.perform(person("olivia"), vm_of(pool, "HV01", WEB01), Action.SHUTDOWN)
    assert lab.executors["HV01"].calls == []
    assert lab.host("HV01").vm(WEB01).state == "Running"


# --- the service's own logic, against a host that answers on cue ------------------------------

class ScriptedHost:
    """A host that answers as told and notes every call: for what the lab cannot be made to do
    on cue (a shutdown that outlasts its call), and instant."""

    def __init__(self, vm: VM, *states: str | None) -> None:
        self.name = vm.host
        self.vm = vm
        self.states = list(states) or [vm.state]  # successive state reads; the last one stays
        self.calls: list[tuple[Any, ...]] = []
        self.records: list[Any] = []  # the record reference each action carried
        self.answers: dict[str, ActionOutcome] = {}

    def vm_state(self, ids: list[str]) -> dict[str, tuple[str, str]]:
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        if isinstance(state, Exception):
            raise state
        return {} if state is None else {self.vm.id: (state, "Operating normally")}

    def power(self, vm_id: str, action: str, audit: Any = None) -> ActionOutcome:
        self.records.append(audit)
        self.calls.append(("power", vm_id, action))
        return self.answers.get(action, ActionOutcome(
            "ok", "Running" if action == "start" else "Off", f"VM {vm_id}: {action} done."))

    def checkpoint(self, vm_id: str, action: str, checkpoint_id: str | None = None,
                   name: str | None = None, audit: Any = None) -> ActionOutcome:
        self.records.append(audit)
        self.calls.append(("checkpoint", vm_id, action, checkpoint_id, name))
        return ActionOutcome("ok", "Running")

    def media(self, vm_id: str, action: str, controller_type: str, controller: int, location: int,
              path: str | None = None, library: Any = (), audit: Any = None) -> ActionOutcome:
        self.records.append(audit)
        self.calls.append(("media", vm_id, action, controller_type, controller, location, path,
                           list(library)))
        return ActionOutcome("ok", "Running")


class ScriptedPool:
    def __init__(self, host: ScriptedHost) -> None:
        self.host = host

    def submit_action(self, host: str, work: Any) -> Future[Any]:
        assert host == self.host.name
        done: Future[Any] = Future()
        try:
            done.set_result(work(self.host))
        except Exception as error:
            done.set_exception(error)
        return done


# Any two differ in one of controller and location only.
DRIVES = (DvdDrive("SCSI", 0, 1, None), DvdDrive("SCSI", 1, 1, "D:\\ISO\\old.iso"),
          DvdDrive("SCSI", 0, 2, None))
SHOP_WEB01 = VM("HV01", WEB01, "shop-web01", "Running", shutdown_service=True, dvd_drives=DRIVES[:1],
                checkpoints=(Checkpoint("c1", "before 4.3", "Production", None, None, state="Off"),))


def scripted(vm: VM, *states: str | None, audit: AuditTrail,
             **options: float) -> tuple[ActionService, ScriptedHost]:
    host = ScriptedHost(vm, *states)
    service = ActionService(Policy.load(LAB_DATA / "policy.toml"), audit, ScriptedPool(host),
                            **options)
    return service, host


def steps(audit: AuditTrail) -> list[tuple[str, str, str, str]]:
    return [(r.action, r.decision or r.outcome, r.params.get("restart", ""), r.error)
            for r in audit.records()]


def test_each_step_carries_its_own_record(audit: AuditTrail) -> None:
    vm = VM("HV01", PRINT, "office-print", "Running")
    host = ScriptedHost(vm, "Running", "Off")
    host.answers["shutdown"] = ActionOutcome("ok", "Off")
    service = ActionService(Policy.load(LAB_DATA / "policy.toml"), audit, ScriptedPool(host))
    service.perform(person("adam"), vm, Action.RESTART)
    lines = audit.path.read_bytes().splitlines(keepends=True)
    decisions = [(n, r) for n, r in enumerate(audit.records()) if r.decision == "allowed"]
    assert [(ref.correlation_id, ref.seq, ref.sha256, ref.workstation) for ref in host.records] == [
        (r.correlation_id, r.seq, hashlib.sha256(lines[n]).hexdigest(), "TEST-PC")
        for n, r in decisions]
    assert len({ref.correlation_id for ref in host.records}) == 2


def test_a_restart_waits_for_a_shutdown_that_outlasts_its_call(audit: AuditTrail) -> None:
    service, host = scripted(SHOP_WEB01, "Running", "Stopping", "Stopping", "Off", audit=audit,
                             shutdown_limit=5.0, poll_interval=0.01)
    host.answers["shutdown"] = ActionOutcome("pending", None, "HV01 has not answered in time")
    outcome = service.perform(person("olivia"), SHOP_WEB01, Action.RESTART)
    assert (outcome.status, outcome.vm_state) == ("ok", "Running")
    assert host.calls == [("power", WEB01, "shutdown"), ("power", WEB01, "start")]
    assert steps(audit) == [
        ("shutdown", "allowed", "step 1 of 2", ""),
        ("shutdown", "pending", "", "HV01 has not answered in time"),
        ("start", "allowed", "step 2 of 2", ""), ("start", "ok", "", "")]
    # An outcome's error is its message unless it ended ok; both privileges a restart needs are
    # the grounds of each step.
    reason = audit.records()[0].reason
    assert reason.split("; ") == [
        "olivia may shut down shop-web01: member of LAB\\HV-Shop-Owners → role owner on "
        "application 'shop'",
        "olivia may start shop-web01: member of LAB\\HV-Shop-Owners → role owner on "
        "application 'shop'"]


def test_a_restart_whose_guest_is_not_off_in_time_is_not_started(audit: AuditTrail) -> None:
    service, host = scripted(SHOP_WEB01, "Running", "Stopping", audit=audit,
                             shutdown_limit=0.05, poll_interval=0.01)
    host.answers["shutdown"] = ActionOutcome("pending", None, "HV01 has not answered in time")
    outcome = service.perform(person("olivia"), SHOP_WEB01, Action.RESTART)
    assert outcome == ActionOutcome(
        "pending", "Stopping", "shop-web01 is not Off yet (Stopping); it was not started again. "
        "Start it once the shutdown completes.")
    assert host.calls == [("power", WEB01, "shutdown")]


@pytest.mark.parametrize(("action", "verb"), [
    (Action.CHECKPOINT_APPLY, "apply"), (Action.CHECKPOINT_DELETE, "delete"),
    (Action.CHECKPOINT_DELETE_SUBTREE, "delete_subtree")])
def test_a_checkpoint_action_reaches_the_host_with_the_chosen_checkpoint(
        audit: AuditTrail, action: Action, verb: str) -> None:
    service, host = scripted(SHOP_WEB01, audit=audit)
    service.perform(person("olivia"), SHOP_WEB01, action, checkpoint_id="c1")
    assert host.calls == [("checkpoint", WEB01, verb, "c1", None)]
    assert audit.records()[0].params == {"checkpoint_id": "c1"}


def test_a_rename_carries_the_new_name_held_to_a_checkpoint_names_rules(
        audit: AuditTrail) -> None:
    service, host = scripted(SHOP_WEB01, audit=audit)
    olivia = person("olivia")
    service.perform(olivia, SHOP_WEB01, Action.CHECKPOINT_RENAME, checkpoint_id="c1",
                    name="before 4.3 \u2019final\u2019")
    assert host.calls == [("checkpoint", WEB01, "rename", "c1", "before 4.3 \u2019final\u2019")]
    assert audit.records()[0].params == {"checkpoint_id": "c1", "name": "before 4.3 \u2019final\u2019"}
    for bad, said in (("", "Give the checkpoint of shop-web01 a new name"),
                      ("  ", "Give the checkpoint"), ("x" * 101, "at most 100 characters; this "
                                                             "one has 101"),
                      ("a\nb", "one line")):
        with pytest.raises(InvalidParameter, match=said):
            service.perform(olivia, SHOP_WEB01, Action.CHECKPOINT_RENAME, checkpoint_id="c1",
                            name=bad)
    with pytest.raises(InvalidParameter, match="Choose the checkpoint of shop-web01 to rename"):
        service.perform(olivia, SHOP_WEB01, Action.CHECKPOINT_RENAME, name="x")
    assert len(host.calls) == 1  # bad input never reached the host


def test_a_rename_needs_the_right_to_take_checkpoints(audit: AuditTrail) -> None:
    service, host = scripted(SHOP_WEB01, audit=audit)
    with pytest.raises(Denied, match="vm.checkpoint.create|may not"):
        service.perform(person("henry"), SHOP_WEB01, Action.CHECKPOINT_RENAME, checkpoint_id="c1",
                        name="x")
    assert host.calls == []


def test_media_go_to_the_chosen_drive_with_the_hosts_iso_library(audit: AuditTrail) -> None:
    vm = replace(SHOP_WEB01, dvd_drives=DRIVES)
    service, host = scripted(vm, audit=audit)
    olivia = person("olivia")
    service.perform(olivia, vm, Action.MOUNT_ISO, path="D:\\ISO\\new.iso",
                    controller_type="scsi", controller=0, location=1)
    service.perform(olivia, vm, Action.EJECT, controller_type="SCSI", controller=1, location=1)
    assert host.calls == [
        ("media", WEB01, "mount", "SCSI", 0, 1, "D:\\ISO\\new.iso", ["D:\\ISO\\"]),
        ("media", WEB01, "eject", "SCSI", 1, 1, None, ["D:\\ISO\\"])]
    with pytest.raises(InvalidParameter, match=r"^Choose the ISO file to mount on shop-web01\.$"):
        service.perform(olivia, vm, Action.MOUNT_ISO, controller_type="SCSI", controller=0,
                        location=1)
    with pytest.raises(InvalidParameter) as raised:
        service.perform(olivia, vm, Action.EJECT)
    assert str(raised.value) == ("shop-web01 has several DVD drives (SCSI 0:1, SCSI 1:1, SCSI 0:2); "
                                 "choose one.")
    with pytest.raises(InvalidParameter) as raised:
        service.perform(olivia, vm, Action.EJECT, controller_type="IDE")
    assert str(raised.value) == "shop-web01 has no DVD drive at that controller and location."
    assert len(host.calls) == 2


def test_a_vms_only_drive_needs_no_choosing_and_an_undescribed_host_has_no_library(
        audit: AuditTrail) -> None:
    vm = replace(SHOP_WEB01, host="HV09")  # a host the policy does not describe
    service, host = scripted(vm, audit=audit)
    service.perform(person("adam"), vm, Action.MOUNT_ISO, path="E:\\iso\\x.iso")
    assert host.calls == [("media", WEB01, "mount", "SCSI", 0, 1, "E:\\iso\\x.iso", [])]


def test_an_unknown_parameter_is_refused_before_anything_else(audit: AuditTrail) -> None:
    service, host = scripted(SHOP_WEB01, audit=audit)
    with pytest.raises(InvalidParameter) as raised:
        service.perform(person("olivia"), SHOP_WEB01, Action.START, colour="red", speed=2)
    assert str(raised.value) == "unknown parameter colour, speed for start"
    assert host.calls == [] and audit.records() == []


def test_a_refusal_is_one_sentence(audit: AuditTrail) -> None:
    service, host = scripted(SHOP_WEB01, audit=audit)
    with pytest.raises(Denied) as raised:
        service.perform(person("henry"), SHOP_WEB01, Action.SHUTDOWN)
    assert str(raised.value) == "henry may not shut down shop-web01: no grant gives it."


def test_a_state_that_cannot_be_read_is_a_refusal_audited_with_its_cause(
        audit: AuditTrail) -> None:
    broken = HostError("HV01 did not answer", host="HV01")
    service, host = scripted(SHOP_WEB01, broken, audit=audit)
    with pytest.raises(HostError):
        service.perform(person("olivia"), SHOP_WEB01, Action.SHUTDOWN)
    (record,) = audit.records()
    assert (record.decision, record.action, record.reason) == (
        "denied", "shutdown", "the current state of shop-web01 could not be read: "
        "HV01 did not answer")
    assert host.calls == []


def test_a_vanished_vm_names_its_host(audit: AuditTrail) -> None:
    service, _ = scripted(SHOP_WEB01, None, audit=audit)
    with pytest.raises(VMNotFound) as raised:
        service.perform(person("olivia"), SHOP_WEB01, Action.SHUTDOWN)
    assert raised.value.host == "HV01"


def test_an_action_done_but_not_recorded_says_so(tmp_path: Path) -> None:
    class OutcomeRefused(AuditTrail):
        def outcome(self, *args: Any, **kwargs: Any) -> None:
            raise AuditError("the disk is full")

    service, host = scripted(SHOP_WEB01, audit=OutcomeRefused(tmp_path / "audit.jsonl"))
    with pytest.raises(AuditError) as raised:
        service.perform(person("olivia"), SHOP_WEB01, Action.SHUTDOWN)
    assert str(raised.value) == ("The shutdown of shop-web01 ended ok, but its outcome could not "
                                 "be written to the audit trail: the disk is full")
    assert host.calls == [("power", WEB01, "shutdown")]  # it did happen


def test_the_winrs_fallback_carries_the_record_and_reads_the_events(tmp_path: Path) -> None:
    for lab in start_lab(Durations.instant(), protocol="winrs"):
        audit = AuditTrail(tmp_path / "audit.jsonl", workstation="TEST-PC")
        with HostPool(lab.configs(), ADAM) as pool:
            service = ActionService(Policy.load(LAB_DATA / "policy.toml"), audit, pool)
            service.perform(person("olivia"), vm_of(pool, "HV01", WEB01), Action.SAVE)
            client = pool.client("HV01")
            assert type(client).__name__ == "HostClient"
            (event,) = client.audit_events().events
        decided, _ = audit.records()
        assert (event.record, event.seq, event.workstation, event.endpoint) == (
            decided.correlation_id, 1, "TEST-PC", "admin")
        assert event.sha256 == hashlib.sha256(audit.path.read_bytes().splitlines(True)[0]).hexdigest()
        assert (event.user, event.sid) == ("LAB\\adam", person("adam").sid)  # the token's

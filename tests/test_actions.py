"""The action service: the policy checked again before every host call, every attempt audited.

The lab's default endpoint serves host administrators only, so the pool signs in as adam while
the service decides for the person named (olivia, henry): what is tested here is the console's
own check, before anything reaches a host.
"""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from console.actions import ActionService
from console.audit import AuditTrail
from console.errors import AuditError, Denied, InvalidParameter, NoShutdownService
from console.hosts import HostPool
from console.identity import Identity
from console.inventory import VM, Action
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

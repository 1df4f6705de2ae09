"""The lab host's executor, called in process as the WS-Management server calls it: the exact
command line the client sends in, the JSON document the script would print out."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest

from console import scripts
from console.inventory import VM, Checkpoint, HostCapacity, HostFacts
from lab.executor import CommandRefused
from lab.wsman import AccessDenied, EventLog

from .conftest import ADAM, HENRY, Lab

WEB01 = "42e4aaca-7231-5411-b96b-d03849b0dae1"
APP01 = "a8c164c6-ea2b-525b-b0de-c3c08e182c75"
DB01 = "606602fb-a784-5dc2-a658-664e33ff98a2"
FILES = "bc797c1d-65e1-5032-8525-d184e732f820"
PAYROLL = "a2c68177-4057-539b-9428-2fbc40894332"
AGENT01 = "1b3c1181-a846-5987-a10a-850aabc945a5"
AGENT02 = "da59d30f-6c6b-573d-9c74-76e0920fc508"
AGENT03 = "73a32aa9-af87-512f-9d0f-a4b7cb52346b"
AGENT04 = "8573cf54-7277-5d6f-b6d0-c78bf9ed5a8c"
AGENT05 = "91a8a101-382a-54d5-8622-e182c03b2381"
AGENT05_OLD = "48e46d42-5071-51e0-8572-f699c3fccf5e"
LEGACY = "aa1b7eff-d986-5c91-8fe6-f37064778c8c"
APP01_PARENT = "5e0f3a51-8c2d-4b7a-a1e4-6d9c2f8b3a10"
APP01_CHILD = "0a1d6c2e-4f0b-4c55-9d1e-3b8f7a2c9e01"
LIB = ["D:\\ISO\\"]
SCSI = {"controller_type": "SCSI", "controller": 0, "location": 1}


# --- recognising the scripts --------------------------------------------------------------------

def test_inventory_parses_into_the_clients_values(lab: Lab) -> None:
    data = lab.ok("HV03", "inventory")
    vms = [VM.from_json("HV03", d) for d in data["vms"]]
    assert data["host"] == "HV03" and len(vms) == 7
    # Two VMs share a name: both are listed, told apart by id.
    twins = [vm for vm in vms if vm.name == "build-agent-05"]
    assert {vm.id for vm in twins} == {AGENT05, AGENT05_OLD}
    agent01 = next(vm for vm in vms if vm.id == AGENT01)
    assert len(agent01.checkpoints) == 3 and agent01.checkpoint_bytes == 100 * 1024 ** 3
    assert agent01.dvd_drives[0].path == "D:\\ISO\\ubuntu-24.04-live-server-amd64.iso"
    assert next(vm for vm in vms if vm.id == AGENT03).dvd_drives == ()
    legacy = next(vm for vm in vms if vm.id == LEGACY)
    assert legacy.generation == 1 and legacy.dvd_drives[0].slot == "IDE 1:0"
    assert next(vm for vm in vms if vm.id == AGENT04).state == "PausedCritical"


def test_inventory_carries_the_hosts_memory_and_storage(lab: Lab) -> None:
    data = lab.ok("HV03", "inventory")
    capacity = HostCapacity.from_json(data["capacity"])
    assert capacity is not None and capacity.error == ""
    # 48 GB; the host keeps 8 and each VM with memory in use its own (three agents and the ftp).
    assert capacity.memory_total_bytes == 48 * 1024 ** 3
    assert capacity.memory_free_bytes == (48 - 8 - 8 - 8 - 8 - 2) * 1024 ** 3
    (volume,) = capacity.storage  # every VM's files are on D:, read once
    assert (volume.path, volume.kind) == ("D:\\", "volume")
    assert volume.free_bytes == HostFacts.from_json(lab.ok("HV03", "host_facts", library=LIB)).free_bytes
    assert volume.total_bytes == 1024 * 1024 ** 3
    # A VM that starts takes its memory from what is free.
    lab.act("HV03", "power", vm_id=AGENT02, action="start")
    again = HostCapacity.from_json(lab.ok("HV03", "inventory")["capacity"])
    assert again is not None and again.memory_free_bytes == capacity.memory_free_bytes - 8 * 1024 ** 3


def test_only_powershell_runs_and_an_administrator_may_run_any_script(lab: Lab) -> None:
    executor = lab.executors["HV01"]
    with pytest.raises(AccessDenied):
        executor.run(ADAM, "cmd /c dir")
    with pytest.raises(AccessDenied):
        executor.run(ADAM, "powershell -NoProfile -NonInteractive -EncodedCommand not-base64!")
    assert issubclass(CommandRefused, AccessDenied)
    # The default endpoint is a full PowerShell for a Hyper-V administrator (docs/jea.md): the
    # lab runs what it is sent, the console's scripts or not.
    text = "(Hyper-V\\Get-VM | Where-Object Name -like 'shop-*' | Sort-Object Name).Name -join ','"
    result = executor.run(ADAM, "powershell -NoProfile -NonInteractive -Command -",
                          lambda: text.encode())
    assert result.stdout.decode().strip() == "shop-app01,shop-db01,shop-web01"


def test_a_parameter_no_host_has_fails_as_on_a_host(lab: Lab) -> None:
    # The lab judges what it is sent by Microsoft's parameter sets, not by knowing the text.
    text = scripts.script("power", {"vm_id": WEB01, "action": "turnoff"})
    changed = text.replace("-TurnOff", "-TurnOfg")
    assert changed != text
    result = lab.executors["HV01"].run(ADAM, "powershell -NoProfile -NonInteractive -Command -",
                                       lambda: scripts.one_line(changed).encode())
    document = json.loads(result.stdout)
    assert document["error"]["code"] == "host_error"
    assert "TurnOfg" in document["error"]["message"]
    assert lab.state("HV01", WEB01)[0] == "Running"


def test_split_path_literalpath_parent_fails_as_on_a_host(lab: Lab) -> None:
    # Finding 3: the old mount script's Split-Path -LiteralPath -Parent binds no parameter set.
    text = scripts.script("media", {"vm_id": WEB01, "action": "mount", "library": LIB,
                                    "path": "D:\\ISO\\SystemRescue-11.iso", **SCSI})
    old = text.replace("Split-Path -Path $c -Parent", "Split-Path -LiteralPath $c -Parent")
    assert old != text
    result = lab.executors["HV01"].run(ADAM, "powershell -NoProfile -NonInteractive -Command -",
                                       lambda: scripts.one_line(old).encode())
    document = json.loads(result.stdout)
    assert document["ok"] is False and "Parameter set cannot be resolved" in document["error"]["message"]
    assert lab.vm("HV01", WEB01)["dvd_drives"][0]["path"] is None


def test_parameters_arrive_as_data(lab: Lab) -> None:
    name = "Vor dem Update ✓ «quoted» '; Stop-VM * ’$(x)"
    lab.act("HV01", "checkpoint", vm_id=WEB01, action="create", name=name)
    call = lab.executors["HV01"].calls_of("Checkpoint-VM")[-1]
    assert call.user == "LAB\\adam" and call.params["SnapshotName"] == name
    created = [c for c in lab.vm("HV01", WEB01)["checkpoints"] if c["name"] == name]
    assert len(created) == 1
    assert lab.state("HV01", WEB01)[0] == "Running" and len(lab.executors["HV01"].calls) == 1


def test_a_non_administrator_is_refused_by_hyper_v(lab: Lab) -> None:
    # Finding 7: Hyper-V reports id Unspecified wrapping a refused connection (Issue
    # AccessDenied); the scripts map that to access_denied, never to "no such VM".
    for operation, params in (("power", {"vm_id": FILES, "action": "start"}),
                              ("inventory", {}), ("vm_state", {"vm_ids": [FILES]})):
        document = lab.call("HV02", operation, user=HENRY, **params)
        assert document["error"]["code"] == "access_denied", (operation, document)
        assert "required permission" in document["error"]["message"]
    assert lab.state("HV02", FILES)[0] == "Saved"


def test_ids_are_checked(lab: Lab) -> None:
    assert lab.error("HV01", "power", vm_id="*", action="start") == "invalid_parameter"
    assert lab.error("HV01", "power", vm_id=AGENT01, action="start") == "not_found"
    assert lab.error("HV01", "power", vm_id=WEB01, action="explode") == "invalid_parameter"
    assert lab.error("HV01", "checkpoint", vm_id=APP01, action="apply",
                     checkpoint_id="Before*") == "invalid_parameter"
    assert lab.error("HV01", "checkpoint", vm_id=APP01, action="delete",
                     checkpoint_id=AGENT01) == "not_found"
    assert lab.ok("HV01", "vm_state", vm_ids=[WEB01, AGENT01])["vms"] == [
        {"id": WEB01, "state": "Running", "status": "Operating normally"}]


# --- power --------------------------------------------------------------------------------------

def test_starting_a_running_vm_is_wrong_state(lab: Lab) -> None:
    assert lab.error("HV01", "power", vm_id=WEB01, action="start") == "wrong_state"


def test_shutdown_without_the_integration_service_is_refused(lab: Lab) -> None:
    assert lab.error("HV01", "power", vm_id=DB01, action="shutdown") == "no_shutdown_service"
    assert lab.state("HV01", DB01)[0] == "Running"


def test_shutdown_shows_stopping_until_the_guest_is_off(lab: Lab) -> None:
    join = lab.in_background("HV02", "power", vm_id="58a006d8-4cd7-53ac-aa46-a10dc2e2cb10",
                             action="shutdown")
    lab.wait_for("HV02", "58a006d8-4cd7-53ac-aa46-a10dc2e2cb10", "Stopping")
    lab.clock.advance(30)
    assert lab.state("HV02", "58a006d8-4cd7-53ac-aa46-a10dc2e2cb10")[0] == "Stopping"
    assert join.thread.is_alive()  # type: ignore[attr-defined]
    document = lab.finish(join, 31)
    assert document["data"]["vm"]["state"] == "Off"


def test_a_stopping_vm_cannot_be_turned_off(lab: Lab) -> None:
    # Finding 4: Stop-VM -TurnOff accepts Running, Paused, Saved and FastSaved only.
    vm = "58a006d8-4cd7-53ac-aa46-a10dc2e2cb10"
    shutdown = lab.in_background("HV02", "power", vm_id=vm, action="shutdown")
    lab.wait_for("HV02", vm, "Stopping")
    assert lab.error("HV02", "power", vm_id=vm, action="turnoff") == "wrong_state"
    assert lab.finish(shutdown, 60)["data"]["vm"]["state"] == "Off"


def test_a_paused_vm_cannot_be_reset_but_can_be_turned_off(lab: Lab) -> None:
    lab.act("HV01", "power", vm_id=WEB01, action="pause")
    assert lab.error("HV01", "power", vm_id=WEB01, action="reset") == "wrong_state"
    assert lab.act("HV01", "power", vm_id=WEB01, action="turnoff")["data"]["vm"]["state"] == "Off"


def test_a_locked_guest_refuses_a_shutdown_with_its_own_code(lab: Lab) -> None:
    # Finding 5: Stop-VM without -Force fails with WMI 32781; the console never forces it.
    assert lab.error("HV03", "power", vm_id=AGENT01, action="shutdown") == "guest_locked"
    assert lab.state("HV03", AGENT01)[0] == "Running"
    assert [c.params.get("Force") for c in lab.executors["HV03"].calls_of("Stop-VM")] == [None]


def test_a_test_failover_copy_may_be_started(lab: Lab, world) -> None:
    # Finding 18: a TestReplica exists to be started; Replica and ExtendedReplica are refused.
    replica = world.host("HV01").host.vm(FILES)
    replica.replication_mode = "TestReplica"
    assert lab.act("HV01", "power", vm_id=FILES, action="start")["data"]["vm"]["state"] == "Running"


def test_start_from_saved_goes_through_starting(lab: Lab) -> None:
    join = lab.in_background("HV02", "power", vm_id=FILES, action="start")
    lab.wait_for("HV02", FILES, "Starting")
    assert lab.finish(join, 3)["data"]["vm"]["state"] == "Running"
    assert lab.vm("HV02", FILES)["uptime_s"] == 0


@pytest.mark.parametrize(("action", "during", "after"), [
    ("save", "Saving", "Saved"), ("pause", "Pausing", "Paused"), ("reset", "Reset", "Running"),
    ("turnoff", "Stopping", "Off"),
])
def test_power_actions_pass_through_their_intermediate_state(lab: Lab, action, during, after) -> None:
    join = lab.in_background("HV01", "power", vm_id=WEB01, action=action)
    lab.wait_for("HV01", WEB01, during)
    assert lab.finish(join, 5)["data"]["vm"]["state"] == after


def test_pause_resume_and_delete_saved_state(lab: Lab) -> None:
    lab.act("HV01", "power", vm_id=WEB01, action="pause")
    assert lab.act("HV01", "power", vm_id=WEB01, action="resume")["data"]["vm"]["state"] == "Running"
    assert lab.error("HV02", "power", vm_id=FILES, action="resume") == "wrong_state"
    assert lab.act("HV02", "power", vm_id=FILES,
                   action="delete_saved_state")["data"]["vm"]["state"] == "Off"


def test_power_on_a_replica_copy_is_refused(lab: Lab) -> None:
    for action in ("start", "turnoff", "delete_saved_state"):
        assert lab.error("HV01", "power", vm_id=FILES, action=action) == "replica"
    replica = lab.vm("HV01", FILES)
    assert replica["replication_mode"] == "Replica" and replica["state"] == "Off"
    assert lab.vm("HV02", FILES)["replication_mode"] == "Primary"


def test_paused_critical_pauses_again_until_the_volume_has_room(lab: Lab) -> None:
    # Resume-VM acts on the base state (Paused); with the volume still full Hyper-V pauses the
    # VM again at once.
    assert lab.act("HV03", "power", vm_id=AGENT04, action="resume")["data"]["vm"]["state"] == "PausedCritical"
    # Deleting build-agent-01's oldest checkpoint merges 40 GiB; room only once the merge is done.
    lab.act("HV03", "checkpoint", vm_id=AGENT01, action="delete",
            checkpoint_id="c1000001-0000-4000-8000-000000000001")
    assert lab.act("HV03", "power", vm_id=AGENT04, action="resume")["data"]["vm"]["state"] == "PausedCritical"
    lab.clock.advance(31)
    assert lab.act("HV03", "power", vm_id=AGENT04, action="resume")["data"]["vm"]["state"] == "Running"


def test_a_merge_holds_the_vm(lab: Lab) -> None:
    # Finding 16: a checkpoint while a merge runs is ObjectInUse, with its own code.
    lab.act("HV01", "checkpoint", vm_id=APP01, action="delete", checkpoint_id=APP01_PARENT)
    assert lab.error("HV01", "checkpoint", vm_id=APP01, action="create") == "object_in_use"
    lab.clock.advance(31)
    assert lab.act("HV01", "checkpoint", vm_id=APP01, action="create")["ok"]


def test_every_change_is_logged_with_who_what_and_outcome(lab: Lab) -> None:
    log = lab.executors["HV01"].log = EventLog("HV01")
    lab.error("HV01", "power", vm_id=DB01, action="shutdown")  # refused before any cmdlet ran
    lab.act("HV01", "power", vm_id=WEB01, action="save")
    lab.error("HV01", "power", vm_id=WEB01, action="reset")  # the script's own table refuses
    (done,) = log.where(event="Save-VM")
    assert [done[k] for k in ("host", "user", "event", "vm_id", "vm_name", "outcome")] == [
        "HV01", "LAB\\adam", "Save-VM", WEB01, "shop-web01", "ok"]
    # Each call also wrote its own event (the admin frame E), refused ones included.
    assert [(e["event"], e.get("action"), e["outcome"]) for e in log.where(event="power")] == [
        ("power", "shutdown", "no_shutdown_service"), ("power", "save", "ok"),
        ("power", "reset", "wrong_state")]
    lab.ok("HV01", "inventory")
    assert len(lab.executors["HV01"].events) == len(log) == 4  # reads are not changes


# --- the host's event of each action, and reading the events back ------------------------------

RECORD = {"record": "0f3c8a52-9e1b-4d57-a3c2-6b7e8f9a0b1c", "sha256": "ab" * 32, "seq": 7,
          "workstation": "WS-OLIVIA"}


def _message(lab: Lab, host: str, n: int = -1) -> dict:
    return json.loads(lab.executors[host].event_log[n].message)


def test_an_action_writes_one_event_with_the_caller_from_the_token(lab: Lab) -> None:
    # The client may put anything in the parameters: the SID and name are the process token's.
    lab.act("HV01", "power", vm_id=WEB01, action="save", sid="S-1-5-21-1-2-3-999",
            caller="LAB\\someone", audit=dict(RECORD, sid="S-1-5-21-1-2-3-999"))
    (entry,) = lab.executors["HV01"].event_log
    assert (entry.log, entry.source, entry.event_id, entry.entry_type) == (
        "Application", "HvConsole", 1000, "Information")
    assert json.loads(entry.message) == {
        "v": 1, "endpoint": "admin", "user": ADAM.name, "sid": ADAM.sid, "operation": "power",
        "action": "save", "vm": WEB01, "name": "shop-web01", "outcome": "ok", "code": "",
        "message": "", "record": RECORD["record"], "sha256": RECORD["sha256"], "seq": 7,
        "workstation": "WS-OLIVIA"}
    assert lab.error("HV01", "power", vm_id=WEB01, action="pause") == "wrong_state"  # Saved
    refused = lab.executors["HV01"].event_log[-1]
    assert (refused.event_id, refused.entry_type) == (1002, "Warning")
    assert _message(lab, "HV01")["outcome"] == "failed" and _message(lab, "HV01")["code"] == \
        "wrong_state" and _message(lab, "HV01")["record"] == ""  # no record carried


@pytest.mark.parametrize("bad", [
    {"record": "0F3C8A52-9E1B-4D57-A3C2-6B7E8F9A0B1C"}, {"record": "*"}, {"sha256": "ab" * 31},
    {"sha256": "AB" * 32}, {"seq": 0}, {"seq": "7; Stop-VM"}, {"seq": 2**31},
    {"workstation": "WS\nforged line"}, {"record": "0f3c8a52-9e1b-4d57-a3c2-6b7e8f9a0b1c\n"},
])
def test_a_record_reference_off_its_pattern_refuses_the_action(lab: Lab, bad: dict) -> None:
    assert lab.error("HV01", "power", vm_id=WEB01, action="save",
                     audit=dict(RECORD, **bad)) == "invalid_parameter"
    assert lab.state("HV01", WEB01)[0] == "Running" and lab.executors["HV01"].calls == []
    assert _message(lab, "HV01")["code"] == "invalid_parameter"  # the refusal is an event too


def test_an_event_the_log_refuses_is_reported_beside_the_answer(lab: Lab) -> None:
    lab.executors["HV01"].sources.clear()  # HvConsole never registered on this host
    document = lab.act("HV01", "power", vm_id=WEB01, action="save", audit=RECORD)
    assert document["ok"] and document["data"]["vm"]["state"] == "Saved"
    assert 'The source name "HvConsole" does not exist' in document["log_error"]
    assert lab.ok("HV01", "audit_events", since="", max=10) == {"events": [], "truncated": False}


def test_audit_events_reads_back_what_the_actions_wrote(lab: Lab) -> None:
    lab.act("HV01", "power", vm_id=WEB01, action="save", audit=RECORD)
    lab.clock.advance(3600)
    later = dict(RECORD, record="1a2b3c4d-0000-4000-8000-000000000001", seq=9)
    lab.act("HV01", "power", vm_id=WEB01, action="start", audit=later)
    lab.error("HV01", "power", vm_id=WEB01, action="resume")
    data = lab.ok("HV01", "audit_events", since="", max=100)
    assert not data["truncated"] and [e["id"] for e in data["events"]] == [1002, 1000, 1000]
    newest, first = data["events"][1], data["events"][2]  # newest first
    assert json.loads(first["message"])["record"] == RECORD["record"]
    assert json.loads(newest["message"])["seq"] == 9 and newest["machine"] == "HV01"
    assert first["record_id"] == 1 and newest["time"] > first["time"]
    assert newest["time"].endswith("Z")
    # From a time on (the log's own filter), and at most so many (then `truncated`).
    since = lab.ok("HV01", "audit_events", since=newest["time"], max=100)["events"]
    assert [e["record_id"] for e in since] == [3, 2]
    assert lab.ok("HV01", "audit_events", since="", max=2) == {
        "events": data["events"][:2], "truncated": True}
    # Another source's events and other ids of this one are not the console's.
    executor = lab.executors["HV01"]
    executor.sources.add("Other")
    executor.runspace(ADAM).run("Write-EventLog -LogName Application -Source Other -EventId 1000 "
                                "-Message x;Write-EventLog -LogName Application -Source HvConsole "
                                "-EventId 4000 -Message y")
    assert len(lab.ok("HV01", "audit_events", since="", max=100)["events"]) == 3


@pytest.mark.parametrize(("since", "count"), [
    ("yesterday", 1), ("2026-01-01", 1), ("2026-01-01T00:00:00+01:00", 1), ("", 0)])
def test_audit_events_refuses_a_bad_since_or_max(lab: Lab, since: str, count: int) -> None:
    assert lab.error("HV01", "audit_events", since=since, max=10 if count else 0) == \
        "invalid_parameter"
    assert lab.error("HV01", "audit_events", since="", max="10; Remove-VM") == "invalid_parameter"
    assert lab.error("HV01", "audit_events", since="", max=100001) == "invalid_parameter"


def test_get_winevent_is_bound_by_the_facts_and_answers_as_windows(lab: Lab) -> None:
    executor = lab.executors["HV01"]
    run = executor.runspace(ADAM).run
    assert run("Write-EventLog -LogName Application -Source HvConsole -EventId 1000 -Message "
               "'one'").error is None
    out = run("$e=Get-WinEvent -FilterHashtable @{LogName='Application';ProviderName='HvConsole';"
              "Id=1000} -MaxEvents 5;\"$($e.Id) $($e.RecordId) $($e.ProviderName) "
              "$($e.Properties[0].Value) $($e.Message)\"")
    assert out.error is None and out.output == ["1000 1 HvConsole one one"]
    none = run("Get-WinEvent -FilterHashtable @{LogName='Application';Id=1001} -ErrorAction Stop")
    assert none.error is not None and none.error.fqid == (
        "NoMatchingEventsFound,Microsoft.PowerShell.Commands.GetWinEventCommand")
    other = run("Get-WinEvent -FilterHashtable @{ProviderName='Nobody'} -ErrorAction Stop")
    assert other.error is not None and other.error.fqid.startswith("NoMatchingProvidersFound,")
    # The call binds as Windows binds it (the facts): -Path is of another parameter set.
    (wrong,) = run("Get-WinEvent -FilterHashtable @{LogName='Application'} -Path x.evtx").errors
    assert wrong.fqid.startswith("AmbiguousParameterSet")
    assert "Parameter set cannot be resolved" in wrong.message
    (refused,) = run("Write-EventLog -LogName Application -Source Nobody -EventId 1 -Message x").errors
    assert 'The source name "Nobody" does not exist' in refused.message
    assert len(executor.event_log) == 1


# --- checkpoints --------------------------------------------------------------------------------

def free(lab: Lab, host: str) -> int:
    return HostFacts.from_json(lab.ok(host, "host_facts", library=LIB)).free_bytes


def test_create_uses_the_vms_checkpoint_type_and_grows_used_space(lab: Lab) -> None:
    before = free(lab, "HV01")
    made = lab.act("HV01", "checkpoint", vm_id=WEB01, action="create", name="before")["data"]
    # Finding 6: a production checkpoint reports SnapshotType Standard; its State says Off.
    checkpoint = Checkpoint.from_json(made["checkpoint"])
    assert (checkpoint.type, checkpoint.state, checkpoint.parent_id) == ("Standard", "Off", None)
    assert checkpoint.kind == "Production (no memory)" and not checkpoint.automatic
    assert made["vm"]["state"] == "Running"
    assert before - free(lab, "HV01") == 2 * 1024 ** 3
    assert lab.vm("HV01", WEB01)["checkpoint_bytes"] == 2 * 1024 ** 3
    # HV03's volume has no room for another differencing disk.
    made = lab.act("HV03", "checkpoint", vm_id=LEGACY, action="create", name="x")
    assert made["ok"] is False and made["error"]["code"] == "host_error"


def test_production_falls_back_to_standard_and_production_only_does_not(lab: Lab, world) -> None:
    legacy = world.host("HV03").host.vm(LEGACY)
    world.host("HV01").host.vms.append(legacy)  # a guest without VSS on a host with room
    made = lab.act("HV01", "checkpoint", vm_id=LEGACY, action="create", name="x")["data"]
    assert (made["checkpoint"]["type"], made["checkpoint"]["state"]) == ("Standard", "Saved")
    legacy.checkpoint_type = "ProductionOnly"
    assert lab.act("HV01", "checkpoint", vm_id=LEGACY, action="create")["error"]["code"] == "host_error"
    legacy.checkpoint_type = "Disabled"
    assert lab.error("HV01", "checkpoint", vm_id=LEGACY, action="create") == "checkpoints_disabled"
    made = lab.act("HV02", "checkpoint", vm_id=PAYROLL, action="create")["data"]["checkpoint"]
    assert (made["type"], made["state"]) == ("Standard", "Off")
    assert made["name"].startswith("payroll-db - (")


def test_apply_to_a_running_vm_saves_then_reverts(lab: Lab) -> None:
    # A production checkpoint holds no memory: the VM is Off afterwards.
    join = lab.in_background("HV01", "checkpoint", vm_id=APP01, action="apply",
                             checkpoint_id=APP01_PARENT)
    lab.wait_for("HV01", APP01, "Saving")
    data = lab.finish(join, 10)["data"]
    assert data["vm"]["state"] == "Off" and data["checkpoint"]["id"] == APP01_PARENT


def test_apply_with_memory_restarts_a_running_vm_and_leaves_others_saved(lab: Lab) -> None:
    # Restore-VMSnapshot saves a Running VM, applies, and starts it again only if it was Running
    # and the checkpoint held memory; an Off VM is left Saved.
    with_memory = "c2000002-0000-4000-8000-000000000002"
    assert lab.vm("HV03", AGENT02)["state"] == "Off"
    assert lab.act("HV03", "checkpoint", vm_id=AGENT02, action="apply",
                   checkpoint_id=with_memory)["data"]["vm"]["state"] == "Saved"
    lab.act("HV03", "power", vm_id=AGENT02, action="start")
    assert lab.act("HV03", "checkpoint", vm_id=AGENT02, action="apply",
                   checkpoint_id=with_memory)["data"]["vm"]["state"] == "Running"


def test_now_follows_a_created_applied_or_deleted_checkpoint(lab: Lab) -> None:
    # Get-VM's ParentSnapshotId: the checkpoint the VM stands on, moved by Checkpoint-VM and
    # Restore-VMSnapshot, and up to its parent when it is deleted (host.toml [checkpoints]).
    assert lab.vm("HV01", APP01)["parent_checkpoint_id"] == APP01_CHILD
    made = lab.act("HV01", "checkpoint", vm_id=APP01, action="create", name="x")["data"]
    new = made["checkpoint"]["id"]
    assert made["checkpoint"]["parent_id"] == APP01_CHILD
    assert lab.vm("HV01", APP01)["parent_checkpoint_id"] == new
    lab.act("HV01", "checkpoint", vm_id=APP01, action="apply", checkpoint_id=APP01_PARENT)
    assert lab.vm("HV01", APP01)["parent_checkpoint_id"] == APP01_PARENT
    lab.act("HV01", "checkpoint", vm_id=APP01, action="delete_subtree", checkpoint_id=APP01_PARENT)
    vm = lab.vm("HV01", APP01)
    assert vm["checkpoints"] == [] and vm["parent_checkpoint_id"] is None


def test_rename_keeps_the_checkpoint_and_refuses_an_empty_or_long_name(lab: Lab) -> None:
    data = lab.act("HV01", "checkpoint", vm_id=APP01, action="rename", checkpoint_id=APP01_CHILD,
                   name="after the \u2019patch\u2019")["data"]
    assert (data["checkpoint"]["id"], data["checkpoint"]["name"]) == (APP01_CHILD,
                                                                      "after the \u2019patch\u2019")
    names = {c["id"]: c["name"] for c in lab.vm("HV01", APP01)["checkpoints"]}
    assert names[APP01_CHILD] == "after the \u2019patch\u2019" and len(names) == 2
    for bad in ("", "   ", "x" * 101):
        assert lab.error("HV01", "checkpoint", vm_id=APP01, action="rename",
                         checkpoint_id=APP01_CHILD, name=bad) == "invalid_parameter"
    assert lab.error("HV01", "checkpoint", vm_id=APP01, action="rename",
                     checkpoint_id=AGENT01, name="x") == "not_found"


def test_start_from_off_takes_an_automatic_checkpoint_and_stop_removes_it(lab: Lab) -> None:
    lab.act("HV03", "power", vm_id=AGENT03, action="turnoff")
    started = lab.act("HV03", "power", vm_id=AGENT03, action="start")
    assert started["data"]["vm"]["state"] == "Running"
    (automatic,) = [Checkpoint.from_json(c) for c in lab.vm("HV03", AGENT03)["checkpoints"]]
    assert automatic.automatic and automatic.name.startswith("Automatic Checkpoint - build-agent-03")
    lab.act("HV03", "power", vm_id=AGENT03, action="turnoff")
    assert lab.vm("HV03", AGENT03)["checkpoints"] == []


def test_delete_with_children_merges_in_the_background(lab: Lab) -> None:
    before = free(lab, "HV01")
    data = lab.act("HV01", "checkpoint", vm_id=APP01, action="delete", checkpoint_id=APP01_PARENT)["data"]
    assert data["checkpoint"] is None and data["vm"]["status"] == "Merging disks"
    vm = lab.vm("HV01", APP01)
    assert [(c["id"], c["parent_id"]) for c in vm["checkpoints"]] == [(APP01_CHILD, None)]
    assert free(lab, "HV01") == before
    lab.clock.advance(31)
    assert lab.state("HV01", APP01) == ("Running", "Operating normally")
    assert free(lab, "HV01") == before + 6 * 1024 ** 3


def test_delete_subtree_removes_the_checkpoint_and_its_descendants(lab: Lab) -> None:
    lab.act("HV03", "checkpoint", vm_id=AGENT02, action="delete_subtree",
            checkpoint_id="c2000002-0000-4000-8000-000000000002")
    left = lab.vm("HV03", AGENT02)["checkpoints"]
    assert [c["id"] for c in left] == ["c2000001-0000-4000-8000-000000000002"]


def test_delete_a_leaf_off_the_current_branch_frees_space_at_once(lab: Lab) -> None:
    before = free(lab, "HV03")
    data = lab.act("HV03", "checkpoint", vm_id=AGENT02, action="delete",
                   checkpoint_id="c2000003-0000-4000-8000-000000000002")["data"]
    assert data["vm"]["status"] == "Operating normally"
    assert free(lab, "HV03") == before + 20 * 1024 ** 3


# --- media --------------------------------------------------------------------------------------

def test_mount_reads_the_drive_back_and_eject_empties_it(lab: Lab) -> None:
    # A deduplicated file is a reparse point but no link (finding 13): listed and mountable.
    iso = "D:\\ISO\\WindowsServer2022.iso"
    assert iso in lab.world.host("HV01").host.deduplicated
    assert iso in [i["path"] for i in lab.ok("HV01", "host_facts", library=LIB)["isos"]]
    drive = lab.ok("HV01", "media", vm_id=WEB01, action="mount", path=iso, library=LIB, **SCSI)["drive"]
    assert drive == {"controller_type": "SCSI", "controller": 0, "location": 1, "path": iso}
    assert lab.vm("HV01", WEB01)["dvd_drives"][0]["path"] == iso
    ide = {"controller_type": "IDE", "controller": 1, "location": 0}
    assert lab.ok("HV03", "media", vm_id=LEGACY, action="mount", path="d:\\iso\\SystemRescue-11.iso",
                  library=LIB, **ide)["drive"]["path"] == "d:\\iso\\SystemRescue-11.iso"
    assert lab.ok("HV01", "media", vm_id=WEB01, action="eject", library=LIB, **SCSI)["drive"]["path"] is None


@pytest.mark.parametrize("path", [
    "D:\\ISO\\Linked\\secret.iso",  # a junction inside the library leading to C:\Windows
    "\\\\?\\D:\\ISO\\WindowsServer2022.iso", "\\\\.\\D:\\ISO\\WindowsServer2022.iso",
    "\\\\server\\share\\WindowsServer2022.iso", "D:\\ISO\\..\\secret.iso", "D:\\secret.iso",
    "C:\\Windows\\secret.iso", "D:\\ISO\\WindowsServer2022.iso:hidden.iso", "D:\\ISO\\WINDOW~1.ISO",
    "D:\\ISO\\WindowsServer2022.iso.", "D:\\ISO\\WindowsServer2022.iso ", "D:\\ISO .\\x.iso",
    "D:\\ISO\\notes.txt", "D:\\ISO\\missing.iso", "D:/ISO/WindowsServer2022.iso",
    "D:\\ISO\\Linked", "", "D:\\ISO\\*.iso", "D:\\ISO\\\\WindowsServer2022.iso",
    "D:\\ISO\\.\\WindowsServer2022.iso",
])
def test_refused_paths(lab: Lab, path: str) -> None:
    assert lab.error("HV01", "media", vm_id=WEB01, action="mount", path=path, library=LIB,
                     **SCSI) == "not_in_library"
    assert lab.vm("HV01", WEB01)["dvd_drives"][0]["path"] is None


def test_the_library_must_be_given(lab: Lab) -> None:
    assert lab.error("HV01", "media", vm_id=WEB01, action="mount",
                     path="D:\\ISO\\WindowsServer2022.iso", library=[], **SCSI) == "not_in_library"
    assert lab.error("HV01", "media", vm_id=WEB01, action="mount",
                     path="D:\\ISO\\WindowsServer2022.iso", library=["D:\\IS"], **SCSI) == "not_in_library"


def test_no_dvd_drive(lab: Lab) -> None:
    assert lab.error("HV03", "media", vm_id=AGENT03, action="eject", library=LIB, **SCSI) == "no_dvd_drive"
    assert lab.error("HV01", "media", vm_id=WEB01, action="eject", library=LIB,
                     controller_type="SCSI", controller=0, location=2) == "no_dvd_drive"
    assert lab.error("HV01", "media", vm_id=WEB01, action="eject", library=LIB,
                     controller_type="SCSI", controller="zero", location=1) == "invalid_parameter"


def test_media_on_a_saved_vm_is_wrong_state(lab: Lab) -> None:
    assert lab.error("HV02", "media", vm_id=FILES, action="mount", path="D:\\ISO\\SystemRescue-11.iso",
                     library=LIB, **SCSI) == "wrong_state"


# --- host facts and cost ------------------------------------------------------------------------

def test_host_facts(lab: Lab) -> None:
    facts = HostFacts.from_json(lab.ok("HV03", "host_facts", library=LIB))
    assert facts.name == "HV03" and facts.os_build == "17763.5206"
    assert facts.last_update is not None
    assert facts.last_update.date() == (lab.clock.utcnow() - timedelta(days=120)).date()
    assert facts.free_bytes < 1024 ** 3 < facts.total_bytes and facts.volume_path == "D:\\"
    (place,) = facts.storage
    assert place.kind == "volume" and place.label == "VMs" and not place.error
    assert [i.name for i in facts.isos] == [
        "SystemRescue-11.iso", "WindowsServer2022.iso", "ubuntu-24.04-live-server-amd64.iso"]
    assert lab.ok("HV03", "host_facts", library=["E:\\None\\"])["isos"] == []


def test_inventory_cost_per_vm(lab: Lab, world) -> None:
    import threading
    host = world.host("HV03").host
    host.inventory_cost_s = 2.0
    done = threading.Event()
    join = lab.in_background("HV03", "inventory")
    threading.Timer(0.05, done.set).start()
    done.wait()
    assert join.thread.is_alive()  # type: ignore[attr-defined]
    lab.clock.advance(13)
    assert join.thread.is_alive()  # type: ignore[attr-defined]
    assert len(lab.finish(join, 2)["data"]["vms"]) == 7


# --- what one odd thing on a host must not break -------------------------------------------------

def test_an_update_whose_date_cannot_be_read_never_fails_host_facts(lab: Lab) -> None:
    # Finding 8: InstalledOn throws for some entries; the day is the host's own (no UTC shift).
    facts = lab.ok("HV03", "host_facts", library=LIB)
    assert facts["last_update"] == (lab.clock.utcnow() - timedelta(days=120)).date().isoformat()
    old = "$u=Get-HotFix|Where-Object InstalledOn|Sort-Object InstalledOn|Select-Object -Last 1"
    text = scripts.script("host_facts", {"library": LIB})
    broken = text.replace(
        "$u=$null;foreach($h in Get-HotFix){try{$d=$h.InstalledOn;"
        "if($d -and (!$u -or $d -gt $u)){$u=$d}}catch{}}",
        old)
    assert broken != text
    result = lab.executors["HV03"].run(ADAM, "powershell -NoProfile -NonInteractive -Command -",
                                       lambda: scripts.one_line(broken).encode())
    assert json.loads(result.stdout)["error"]["message"].startswith('Exception getting "InstalledOn"')


def test_every_storage_place_is_reported_shares_without_their_space(lab: Lab, world) -> None:
    # Finding 9: each volume or share holding VM files, not the drive letter of one folder.
    host = world.host("HV02").host
    host.volume_path = "\\\\files\\vms\\HV02"
    places = HostFacts.from_json(lab.ok("HV02", "host_facts", library=LIB)).storage
    assert [(p.path, p.kind, p.free_bytes) for p in places] == [("\\\\files\\vms", "share", None)]


def test_one_unreadable_vm_leaves_the_others_listed(lab: Lab, world) -> None:
    # Finding 14: the bulk device read fails for every VM; they are read VM by VM instead.
    world.host("HV01").host.vm(APP01).unreadable = True
    vms = {vm.id: vm for vm in (VM.from_json("HV01", d) for d in lab.ok("HV01", "inventory")["vms"])}
    assert len(vms) == 4 and vms[APP01].unreadable and "configuration" in vms[APP01].unreadable
    assert vms[WEB01].unreadable is None and vms[WEB01].dvd_drives
    assert vms[APP01].checkpoints == () and not vms[WEB01].checkpoints
    from console.inventory import Action, allowed_by_state
    assert allowed_by_state(vms[APP01], Action.SHUTDOWN)[0] is False


def test_a_lost_management_service_is_its_own_error(lab: Lab, world) -> None:
    world.host("HV01").host.management_service = False
    assert lab.error("HV01", "inventory") == "connection_lost"
    assert lab.error("HV01", "power", vm_id=WEB01, action="save") == "connection_lost"

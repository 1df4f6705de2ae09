"""console/inventory.py: what a host reports, and which action each VM state allows (read from
console/states.py, the one state table)."""
from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from console import states
from console.inventory import (
    CONSOLE_ACTIONS, CHECKPOINT_ACTIONS, DESTRUCTIVE_ACTIONS, KNOWN_STATES, MEDIA_ACTIONS, POWER_ACTIONS,
    REQUIRED_PRIVILEGES, STATE_ACTIONS, TRANSITIONAL_STATES, VM, Action, Checkpoint, DvdDrive,
    HostCapacity, HostFacts, HostInventory, IsoFile, Storage, after_action, allowed_by_state,
    state_after_apply,
)
from console.policy import VM_PRIVILEGES
from console.powershell import facts

A = Action
VM_ID = "42E4AACA-7231-5411-B96B-D03849B0DAE1"
CP1, CP2 = "9A1C1C1C-0000-4000-8000-000000000001", "9a1c1c1c-0000-4000-8000-000000000002"
DRIVE = DvdDrive("SCSI", 0, 1, None)
CHECKPOINT = Checkpoint(CP1.lower(), "before update", "Standard", None, None)


def vm(state: str = "Running", **values: object) -> VM:
    fields: dict[str, object] = {"dvd_drives": (DRIVE,), "checkpoints": (CHECKPOINT,), **values}
    return VM("HV01", VM_ID.lower(), "web01", state, **fields)  # type: ignore[arg-type]


# --- the state table -------------------------------------------------------------------------------

def test_the_action_groups_split_every_action_and_each_needs_vm_privileges() -> None:
    assert set(Action) == POWER_ACTIONS | CHECKPOINT_ACTIONS | MEDIA_ACTIONS | CONSOLE_ACTIONS
    assert not (POWER_ACTIONS & CHECKPOINT_ACTIONS or POWER_ACTIONS & MEDIA_ACTIONS
                or CHECKPOINT_ACTIONS & MEDIA_ACTIONS
                or CONSOLE_ACTIONS & (POWER_ACTIONS | CHECKPOINT_ACTIONS | MEDIA_ACTIONS))
    assert DESTRUCTIVE_ACTIONS.issubset(Action) and set(Action) - DESTRUCTIVE_ACTIONS
    assert set(REQUIRED_PRIVILEGES) == set(Action)
    assert all(p and p <= set(VM_PRIVILEGES) for p in REQUIRED_PRIVILEGES.values())
    assert REQUIRED_PRIVILEGES[A.RESTART] == REQUIRED_PRIVILEGES[A.SHUTDOWN] | REQUIRED_PRIVILEGES[A.START]


def test_every_state_the_hosts_name_is_in_the_table() -> None:
    assert set(facts.STATES) == KNOWN_STATES
    assert TRANSITIONAL_STATES <= KNOWN_STATES


def test_the_table_is_console_states_with_restart_wherever_shut_down_is() -> None:
    for state in facts.STATES:
        offered = STATE_ACTIONS[state]
        assert {a.value for a in offered} - {"restart"} == states.actions_for(state), state
        assert (A.RESTART in offered) == (A.SHUTDOWN in offered), state


@pytest.mark.parametrize(("state", "power"), [
    ("Running", {A.SHUTDOWN, A.RESTART, A.TURNOFF, A.RESET, A.SAVE, A.PAUSE}),
    ("Off", {A.START}),
    ("Saved", {A.START, A.TURNOFF, A.DELETE_SAVED_STATE}),
    ("Paused", {A.RESUME, A.SAVE, A.TURNOFF}),  # Start-VM would resume: offered as Resume
    ("RunningCritical", {A.SHUTDOWN, A.RESTART, A.TURNOFF, A.RESET, A.SAVE, A.PAUSE}),
    ("OffCritical", {A.START}),
])
def test_power_actions_follow_the_cmdlets_tables(state: str, power: set[Action]) -> None:
    assert STATE_ACTIONS[state] & POWER_ACTIONS == power


def test_checkpoints_and_media_only_in_stable_healthy_states() -> None:
    for state in ("Running", "Off", "Saved", "Paused"):
        assert CHECKPOINT_ACTIONS.issubset(STATE_ACTIONS[state]), state
    assert MEDIA_ACTIONS.issubset(STATE_ACTIONS["Running"]) and not MEDIA_ACTIONS & STATE_ACTIONS["Saved"]
    for state in ("RunningCritical", "OffCritical", "SavedCritical"):
        assert not STATE_ACTIONS[state] & (CHECKPOINT_ACTIONS | MEDIA_ACTIONS), state


def test_a_state_in_motion_allows_nothing() -> None:
    for state in TRANSITIONAL_STATES | {"Other"}:
        assert STATE_ACTIONS[state] == frozenset(), state


# --- allowed_by_state ---------------------------------------------------------------------------

def test_an_allowed_action_has_no_reason() -> None:
    assert allowed_by_state(vm("Off"), A.START) == (True, "")
    assert allowed_by_state(vm("Running"), A.MOUNT_ISO) == (True, "")


def test_a_refused_action_says_why_in_a_sentence() -> None:
    assert allowed_by_state(vm("Off"), A.SHUTDOWN) == (False, "web01 is Off")
    assert allowed_by_state(vm("Starting"), A.TURNOFF) == (False, "web01 is Starting")
    assert allowed_by_state(vm("Hovering"), A.START) == (False, "web01 is in an unknown state (Hovering)")
    assert allowed_by_state(vm("Running", dvd_drives=()), A.EJECT) == (False, "web01 has no DVD drive")
    assert allowed_by_state(vm("Off", checkpoints=()), A.CHECKPOINT_APPLY) == \
        (False, "web01 has no checkpoints")
    assert allowed_by_state(vm("Off", checkpoints=()), A.CHECKPOINT_CREATE) == (True, "")
    assert allowed_by_state(vm("Off", checkpoint_type="Disabled"), A.CHECKPOINT_CREATE) == \
        (False, "checkpoints are disabled on web01")


def test_a_replica_refuses_power_but_not_its_checkpoints() -> None:
    replica = vm("Off", replication_mode="Replica")
    ok, why = allowed_by_state(replica, A.START)
    assert not ok and "Replica copy" in why and "failover" in why
    assert allowed_by_state(replica, A.CHECKPOINT_CREATE) == (True, "")
    assert allowed_by_state(vm("Off", replication_mode="Primary"), A.START) == (True, "")


def test_an_unreadable_vm_allows_nothing_and_says_what_the_host_said() -> None:
    ok, why = allowed_by_state(vm("Off", unreadable="access denied to the .vmcx"), A.START)
    assert not ok and why == "HV01 could not read web01's configuration (access denied to the .vmcx)"


# --- what the host reports -------------------------------------------------------------------------

def test_a_vm_from_the_hosts_json() -> None:
    parsed = VM.from_json("HV01", {
        "id": VM_ID, "name": "web01", "state": "Running", "uptime_s": "3600", "cpu_pct": 12,
        "memory_bytes": 2 ** 31, "generation": 1, "heartbeat": "Ok", "shutdown_service": True,
        "replication_mode": "Primary", "checkpoint_type": "Standard", "notes": "shop",
        "disk_bytes": 100, "checkpoint_bytes": 40,
        "checkpoints": [
            {"id": CP1, "name": "before update", "created": "2024-01-02T03:04:05Z",
             "state": "Running"},
            {"id": CP2, "name": "after", "parent_id": CP1, "type": "Recovery", "automatic": True},
        ],
        "parent_checkpoint_id": CP2.upper(),
        "dvd_drives": [{"controller_type": "IDE", "controller": 1, "location": 0,
                        "path": "D:\\ISO\\x.iso"}],
    }, cluster="CL1")
    assert parsed.id == VM_ID.lower() and parsed.host == "HV01" and parsed.cluster == "CL1"
    assert (parsed.uptime_s, parsed.generation, parsed.heartbeat) == (3600, 1, "Ok")
    first, second = parsed.checkpoints
    assert first.id == CP1.lower() and first.parent_id is None
    assert first.created == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert second.parent_id == CP1.lower() and (second.type, second.automatic) == ("Recovery", True)
    assert parsed.checkpoint(CP2.upper()) == second and parsed.checkpoint("nope") is None
    assert parsed.children_of(None) == [first] and parsed.children_of(first.id) == [second]
    assert parsed.dvd_drives == (DvdDrive("IDE", 1, 0, "D:\\ISO\\x.iso"),)
    # "Now" stands on the checkpoint Get-VM's ParentSnapshotId names, by id in lower case.
    assert parsed.parent_checkpoint_id == CP2.lower() and parsed.parent_checkpoint == second
    assert VM.from_json("HV01", {"id": VM_ID}).parent_checkpoint is None
    assert parsed.dvd_drives[0].slot == "IDE 1:0"
    assert parsed.key == ("cl1", VM_ID.lower())  # a clustered VM keeps its key on another node


def test_a_sparse_vm_gets_the_defaults() -> None:
    parsed = VM.from_json("HV02", {"id": VM_ID})
    assert (parsed.name, parsed.state, parsed.generation, parsed.replication_mode) == \
        ("", "Other", 2, "None")
    assert (parsed.checkpoints, parsed.dvd_drives, parsed.unreadable) == ((), (), None)
    assert parsed.key == ("hv02", VM_ID.lower()) and parsed.known_state  # Other is a state
    assert not parsed.is_replica


@pytest.mark.parametrize("mode", ["Replica", "TestReplica", "ExtendedReplica"])
def test_replica_modes(mode: str) -> None:
    assert vm(replication_mode=mode).is_replica


def test_what_a_person_calls_a_checkpoint() -> None:
    assert Checkpoint("a", "x", "Standard", None, None, state="Running").kind == "Standard"
    production = Checkpoint("a", "x", "Standard", None, None, state="Off")
    assert production.kind == "Production (no memory)" and not production.holds_memory
    assert Checkpoint("a", "x", "Recovery", None, None, state="Off").kind == "Recovery"


def test_host_facts_and_the_tightest_storage() -> None:
    parsed = HostFacts.from_json({
        "name": "HV01", "os_build": "20348.2227", "last_update": "2024-05-14",
        "storage": [
            {"path": "C:\\ClusterStorage\\Volume1", "free_bytes": 500, "total_bytes": 1000},
            {"path": "\\\\files\\vms", "kind": "share", "error": "access denied"},
            {"path": "D:\\", "free_bytes": 200, "total_bytes": 4000, "label": "VMs"},
            "not a table",
        ],
        "isos": [{"path": "D:\\ISO\\a.iso", "size_bytes": 7}, {"path": "\\\\files\\iso\\b.iso"}],
    })
    assert parsed.last_update == datetime(2024, 5, 14, tzinfo=UTC)  # a day alone: midnight UTC
    assert len(parsed.storage) == 3 and parsed.storage[1] == Storage(
        "\\\\files\\vms", kind="share", error="access denied")
    assert parsed.tightest == parsed.storage[2]  # the least free of those whose space is known
    assert (parsed.volume_path, parsed.free_bytes, parsed.total_bytes) == ("D:\\", 200, 4000)
    assert parsed.isos == (IsoFile("D:\\ISO\\a.iso", 7), IsoFile("\\\\files\\iso\\b.iso", 0))
    assert [i.name for i in parsed.isos] == ["a.iso", "b.iso"]


def test_host_facts_without_any_known_space() -> None:
    parsed = HostFacts.from_json({"name": "HV02", "storage": [{"path": "E:\\", "error": "offline"}]})
    assert parsed.tightest is None
    assert (parsed.volume_path, parsed.free_bytes, parsed.total_bytes, parsed.last_update) == \
        ("", 0, 0, None)


def test_times_keep_their_offset() -> None:
    parsed = Checkpoint.from_json({"id": CP1, "created": "2024-01-02T03:04:05+02:00"})
    assert parsed.created == datetime(2024, 1, 2, 1, 4, 5, tzinfo=UTC)
    assert parsed.created.utcoffset() == timedelta(hours=2)
    assert parsed.created.tzinfo == timezone(timedelta(hours=2))
    assert Checkpoint.from_json({"id": CP1}).created is None


def test_iso_names_whichever_slash() -> None:
    assert IsoFile("D:/ISO/sub/x.iso").name == "x.iso"
    assert IsoFile("x.iso").name == "x.iso"


# --- an action's answer, applied at once --------------------------------------------------------

def _tree() -> VM:
    def cp(cid: str, parent: str | None) -> Checkpoint:
        return Checkpoint(cid, cid.upper(), "Standard", parent, None)

    # a <- b <- c, and a <- d
    return VM("HV01", "v1", "web", "Running", checkpoints=(cp("a", None), cp("b", "a"), cp("c", "b"),
                                                            cp("d", "a")),
              dvd_drives=(DvdDrive("SCSI", 0, 1, None), DvdDrive("SCSI", 0, 2, "D:\\ISO\\old.iso")))


def test_a_done_power_action_sets_the_state_it_answered() -> None:
    vm = after_action(_tree(), Action.SAVE, state="Saved", status="")
    assert (vm.state, vm.status) == ("Saved", "")
    assert after_action(vm, Action.START) is vm  # an answer without a state changes nothing


def test_a_created_checkpoint_shows_without_a_read() -> None:
    new = Checkpoint("e", "before patch", "Standard", "c", None)
    vm = after_action(_tree(), Action.CHECKPOINT_CREATE, checkpoint=new)
    assert [c.id for c in vm.checkpoints] == ["a", "b", "c", "d", "e"]
    again = after_action(vm, Action.CHECKPOINT_CREATE, checkpoint=new)
    assert [c.id for c in again.checkpoints] == ["a", "b", "c", "d", "e"]  # never twice


def test_a_deleted_checkpoint_hands_its_children_to_its_parent() -> None:
    vm = after_action(_tree(), Action.CHECKPOINT_DELETE, checkpoint_id="B")
    assert {c.id: c.parent_id for c in vm.checkpoints} == {"a": None, "c": "a", "d": "a"}


def test_a_deleted_subtree_takes_every_descendant() -> None:
    vm = after_action(_tree(), Action.CHECKPOINT_DELETE_SUBTREE, checkpoint_id="b")
    assert [c.id for c in vm.checkpoints] == ["a", "d"]
    whole = after_action(_tree(), Action.CHECKPOINT_DELETE_SUBTREE, checkpoint_id="a")
    assert whole.checkpoints == ()
    unknown = after_action(_tree(), Action.CHECKPOINT_DELETE, checkpoint_id="zz")
    assert unknown.checkpoints == _tree().checkpoints


def test_a_hosts_capacity_from_its_inventory() -> None:
    capacity = HostCapacity.from_json({
        "memory_total_bytes": 64 << 30, "memory_free_bytes": "1073741824",
        "storage": [{"path": "\\\\fs01\\vms", "kind": "share"},
                    {"path": "D:\\", "kind": "volume", "free_bytes": 5, "total_bytes": 10},
                    {"path": "C:\\ClusterStorage\\Volume1", "kind": "volume", "free_bytes": 3,
                     "total_bytes": 9},
                    {"path": "E:\\", "kind": "volume", "error": "Access is denied."}]})
    assert capacity is not None
    assert (capacity.memory_total_bytes, capacity.memory_free_bytes) == (64 << 30, 1 << 30)
    assert [s.path for s in capacity.storage] == ["\\\\fs01\\vms", "C:\\ClusterStorage\\Volume1",
                                                  "D:\\", "E:\\"]
    assert capacity.tightest is not None and capacity.tightest.path == "C:\\ClusterStorage\\Volume1"
    assert capacity.storage[-1].error == "Access is denied." and capacity.storage[-1].free_bytes is None
    # A host that could not read it says why; an older host's inventory has none.
    failed = HostCapacity.from_json({"error": "Invalid class"})
    assert failed is not None and failed.error == "Invalid class" and failed.memory_free_bytes is None
    assert HostCapacity.from_json(None) is None
    inventory = HostInventory.from_json("HV01", {"capacity": {"memory_total_bytes": 1}},
                                        [{"id": VM_ID, "name": "web01"}], cluster="CL1")
    assert inventory.capacity is not None and inventory.capacity.memory_total_bytes == 1
    assert [(v.host, v.cluster, v.id) for v in inventory.vms] == [("HV01", "CL1", VM_ID.lower())]


def test_now_moves_under_a_created_or_applied_checkpoint() -> None:
    start = replace(_tree(), parent_checkpoint_id="c")
    new = Checkpoint("e", "before patch", "Standard", "c", None)
    assert after_action(start, Action.CHECKPOINT_CREATE, checkpoint=new).parent_checkpoint_id == "e"
    applied = after_action(start, Action.CHECKPOINT_APPLY, checkpoint_id="D")
    assert applied.parent_checkpoint_id == "d" and applied.checkpoints == start.checkpoints


def test_now_moves_up_when_the_checkpoint_it_stood_on_is_deleted() -> None:
    start = replace(_tree(), parent_checkpoint_id="c")
    assert after_action(start, Action.CHECKPOINT_DELETE, checkpoint_id="c").parent_checkpoint_id == "b"
    assert after_action(start, Action.CHECKPOINT_DELETE_SUBTREE,
                        checkpoint_id="b").parent_checkpoint_id == "a"
    assert after_action(start, Action.CHECKPOINT_DELETE_SUBTREE,
                        checkpoint_id="a").parent_checkpoint_id is None
    # Deleting another branch leaves it where it was.
    assert after_action(start, Action.CHECKPOINT_DELETE, checkpoint_id="d").parent_checkpoint_id == "c"


def test_a_renamed_checkpoint_keeps_its_place() -> None:
    renamed = Checkpoint("b", "patched", "Standard", "a", None)
    vm = after_action(_tree(), Action.CHECKPOINT_RENAME, checkpoint=renamed)
    assert [(c.id, c.name) for c in vm.checkpoints] == [("a", "A"), ("b", "patched"), ("c", "C"),
                                                         ("d", "D")]


@pytest.mark.parametrize(("state", "memory", "after"), [
    ("Running", True, "Running"), ("Running", False, "Off"), ("RunningCritical", True, "Running"),
    ("Paused", True, "Saved"), ("Off", True, "Saved"), ("Saved", False, "Off"), ("Off", False, "Off"),
])
def test_the_state_after_an_apply(state: str, memory: bool, after: str) -> None:
    checkpoint = Checkpoint("a", "x", "Standard", None, None, state="Saved" if memory else "Off")
    assert state_after_apply(vm(state), checkpoint) == after


def test_a_mounted_or_ejected_drive_changes_only_its_slot() -> None:
    vm = after_action(_tree(), Action.MOUNT_ISO, drive=DvdDrive("SCSI", 0, 1, "D:\\ISO\\new.iso"))
    assert [d.path for d in vm.dvd_drives] == ["D:\\ISO\\new.iso", "D:\\ISO\\old.iso"]
    vm = after_action(vm, Action.EJECT, drive=DvdDrive("SCSI", 0, 2, None))
    assert [d.path for d in vm.dvd_drives] == ["D:\\ISO\\new.iso", None]


def test_eject_needs_a_mounted_iso() -> None:
    empty = vm()  # its one drive holds nothing
    assert allowed_by_state(empty, A.EJECT) == (False, "no ISO is mounted on web01")
    assert allowed_by_state(empty, A.MOUNT_ISO) == (True, "")
    mounted = vm(dvd_drives=(DvdDrive("SCSI", 0, 1, "D:\\ISO\\a.iso"),))
    assert allowed_by_state(mounted, A.EJECT) == (True, "")

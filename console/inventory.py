"""What a host reports about its VMs, and which action each VM state allows.

Values parse the `data` of the host operation scripts (see docs/host-operations.md). States are
mapped by name, never by number (the numbers differ between Windows versions); an unknown state
allows nothing and keeps its raw value for display.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from . import states
from .powershell import facts


class Action(StrEnum):
    START = "start"
    SHUTDOWN = "shutdown"
    RESTART = "restart"  # guest shut down, wait for Off, start: two audited steps
    TURNOFF = "turnoff"
    RESET = "reset"
    SAVE = "save"
    PAUSE = "pause"
    RESUME = "resume"
    DELETE_SAVED_STATE = "delete_saved_state"
    CHECKPOINT_CREATE = "checkpoint_create"
    CHECKPOINT_APPLY = "checkpoint_apply"
    CHECKPOINT_DELETE = "checkpoint_delete"
    CHECKPOINT_DELETE_SUBTREE = "checkpoint_delete_subtree"
    CHECKPOINT_RENAME = "checkpoint_rename"
    MOUNT_ISO = "mount_iso"
    EJECT = "eject"
    CONNECT = "connect"  # grant the person access to the VM's console, then open the viewer


POWER_ACTIONS = frozenset({
    Action.START, Action.SHUTDOWN, Action.RESTART, Action.TURNOFF, Action.RESET, Action.SAVE,
    Action.PAUSE, Action.RESUME, Action.DELETE_SAVED_STATE,
})
CHECKPOINT_ACTIONS = frozenset({
    Action.CHECKPOINT_CREATE, Action.CHECKPOINT_APPLY, Action.CHECKPOINT_DELETE,
    Action.CHECKPOINT_DELETE_SUBTREE, Action.CHECKPOINT_RENAME,
})
MEDIA_ACTIONS = frozenset({Action.MOUNT_ISO, Action.EJECT})
CONSOLE_ACTIONS = frozenset({Action.CONNECT})
# Actions that lose data: asked for confirmation, naming what will be lost.
DESTRUCTIVE_ACTIONS = frozenset({
    Action.TURNOFF, Action.RESET, Action.DELETE_SAVED_STATE, Action.CHECKPOINT_APPLY,
    Action.CHECKPOINT_DELETE, Action.CHECKPOINT_DELETE_SUBTREE,
})

# The privileges (DESIGN.md vocabulary) each action needs; all of them are required.
REQUIRED_PRIVILEGES: dict[Action, frozenset[str]] = {
    Action.START: frozenset({"vm.start"}),
    Action.RESUME: frozenset({"vm.start"}),
    Action.SHUTDOWN: frozenset({"vm.shutdown"}),
    Action.RESTART: frozenset({"vm.shutdown", "vm.start"}),
    Action.TURNOFF: frozenset({"vm.turnoff"}),
    Action.DELETE_SAVED_STATE: frozenset({"vm.turnoff"}),
    Action.RESET: frozenset({"vm.reset"}),
    Action.SAVE: frozenset({"vm.save"}),
    Action.PAUSE: frozenset({"vm.save"}),
    Action.CHECKPOINT_CREATE: frozenset({"vm.checkpoint.create"}),
    Action.CHECKPOINT_DELETE: frozenset({"vm.checkpoint.delete"}),
    Action.CHECKPOINT_DELETE_SUBTREE: frozenset({"vm.checkpoint.delete"}),
    Action.CHECKPOINT_APPLY: frozenset({"vm.checkpoint.apply"}),
    # A name is part of taking a checkpoint: whoever may name a new one may rename one.
    Action.CHECKPOINT_RENAME: frozenset({"vm.checkpoint.create"}),
    Action.MOUNT_ISO: frozenset({"vm.media"}),
    Action.EJECT: frozenset({"vm.media"}),
    Action.CONNECT: frozenset({"vm.console"}),
}

# Which action each Hyper-V state allows: console.states, the one table the scripts and the lab
# read too (the cmdlets' own tables, from Microsoft's sources). An unknown state allows nothing.
def _offered(state: str) -> frozenset[Action]:
    actions = {Action(a) for a in states.actions_for(state)}
    # Guest restart is shut down then start: it is offered where shut down is.
    return frozenset(actions | {Action.RESTART} if Action.SHUTDOWN in actions else actions)


STATE_ACTIONS: dict[str, frozenset[Action]] = {state: _offered(state) for state in facts.STATES}
KNOWN_STATES = frozenset(STATE_ACTIONS)
TRANSITIONAL_STATES = frozenset({
    "Starting", "Stopping", "Saving", "Pausing", "Resuming", "Reset", "FastSaving",
    "ForceShutdown", "ForceReboot", "ComponentServicing",
})


@dataclass(frozen=True)
class Checkpoint:
    id: str
    name: str
    type: str  # SnapshotType as the host names it: Standard, Recovery, Planned, Replica, ...
    parent_id: str | None
    created: datetime | None
    state: str = "Saved"  # the VM's state it captured; Off: no memory (production, or VM off)
    automatic: bool = False  # taken by Start-VM (automatic checkpoints)

    @property
    def holds_memory(self) -> bool:
        """Applying it returns the VM with its memory (Saved); without, the VM is Off."""
        return self.state != "Off"

    @property
    def kind(self) -> str:
        """What a person calls it: Hyper-V's SnapshotType never says Production."""
        if self.type != "Standard":
            return self.type  # Recovery, Planned, Replica, ...: left by backup or replication
        return "Standard" if self.holds_memory else "Production (no memory)"

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Checkpoint:
        return cls(id=str(d["id"]).lower(), name=str(d.get("name") or ""),
                   type=str(d.get("type") or "Standard"),
                   parent_id=(str(d["parent_id"]).lower() if d.get("parent_id") else None),
                   created=_parse_time(d.get("created")),
                   state=str(d.get("state") or "Saved"), automatic=bool(d.get("automatic")))


@dataclass(frozen=True)
class DvdDrive:
    controller_type: str  # "IDE" (generation 1) or "SCSI" (generation 2)
    controller: int
    location: int
    path: str | None  # the mounted ISO, None when empty

    @property
    def slot(self) -> str:
        return f"{self.controller_type} {self.controller}:{self.location}"

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> DvdDrive:
        return cls(controller_type=str(d.get("controller_type") or "SCSI"),
                   controller=int(d.get("controller") or 0), location=int(d.get("location") or 0),
                   path=d.get("path") or None)


@dataclass(frozen=True)
class Metered:
    """Hyper-V resource metering's report of a VM, read with the inventory where metering is on
    (Measure-VM): averages and a running total of network traffic since metering started."""
    seconds: int
    cpu_mhz: int
    memory_mb: int
    network_mb: int  # inbound and outbound together

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Metered:
        return cls(int(d.get("seconds") or 0), int(d.get("cpu_mhz") or 0),
                   int(d.get("memory_mb") or 0), int(d.get("network_mb") or 0))


@dataclass(frozen=True)
class VM:
    host: str
    id: str  # the VM id (GUID), lower case: the only identity of a VM
    name: str
    state: str  # the host's state name, kept raw when unknown
    status: str = ""
    uptime_s: int = 0
    cpu_pct: int = 0
    memory_bytes: int = 0  # assigned (MemoryAssigned)
    memory_demand_bytes: int = 0  # what the guest asks for (MemoryDemand); 0 when not running
    generation: int = 2
    heartbeat: str | None = None
    shutdown_service: bool = False  # the guest shutdown integration service is enabled and present
    replication_mode: str = "None"  # None, Primary, Replica, TestReplica, ExtendedReplica
    checkpoint_type: str = "Production"  # Standard, Production, ProductionOnly, Disabled
    checkpoints: tuple[Checkpoint, ...] = ()
    # The checkpoint the VM stands on ("Now" grows from it: Get-VM's ParentSnapshotId); None
    # when it stands on none (no checkpoints, or the ones it stood on were deleted).
    parent_checkpoint_id: str | None = None
    dvd_drives: tuple[DvdDrive, ...] = ()
    notes: str = ""
    unreadable: str | None = None  # why the host could not read this VM's configuration
    disk_bytes: int = 0  # every virtual disk of the VM, checkpoint files included
    checkpoint_bytes: int = 0  # of which the checkpoints' differencing disks
    cluster: str | None = None
    # What the host does with the VM when it shuts down and starts (Get-VM; Set-VM's values):
    # ShutDown / Save / TurnOff and Nothing / StartIfRunning / Start; "" when not read.
    automatic_stop_action: str = ""
    automatic_start_action: str = ""
    # A clustered role: failover clustering moves it to another node of `cluster` instead of
    # letting it go down with its host (its KVP component's IsClustered).
    clustered: bool = False
    metered: Metered | None = None  # resource metering's report, where metering is on
    pending: str | None = field(default=None, compare=False)  # an action awaiting confirmation

    @property
    def key(self) -> tuple[str, str]:
        """(cluster or host, VM id): a clustered VM keeps its key when it moves between nodes."""
        return ((self.cluster or self.host).lower(), self.id)

    @property
    def is_replica(self) -> bool:
        return self.replication_mode in {"Replica", "TestReplica", "ExtendedReplica"}

    @property
    def known_state(self) -> bool:
        return self.state in KNOWN_STATES

    def checkpoint(self, checkpoint_id: str) -> Checkpoint | None:
        cid = checkpoint_id.lower()
        return next((c for c in self.checkpoints if c.id == cid), None)

    def children_of(self, checkpoint_id: str | None) -> list[Checkpoint]:
        return [c for c in self.checkpoints if c.parent_id == checkpoint_id]

    @property
    def parent_checkpoint(self) -> Checkpoint | None:
        """The checkpoint "Now" grows from: what Hyper-V Manager's Revert applies."""
        return self.checkpoint(self.parent_checkpoint_id) if self.parent_checkpoint_id else None

    @classmethod
    def from_json(cls, host: str, d: dict[str, Any], cluster: str | None = None) -> VM:
        return cls(
            host=host, id=str(d["id"]).lower(), name=str(d.get("name") or ""),
            state=str(d.get("state") or "Other"), status=str(d.get("status") or ""),
            uptime_s=int(d.get("uptime_s") or 0), cpu_pct=int(d.get("cpu_pct") or 0),
            memory_bytes=int(d.get("memory_bytes") or 0),
            memory_demand_bytes=int(d.get("memory_demand") or 0),
            generation=int(d.get("generation") or 2),
            heartbeat=d.get("heartbeat"), shutdown_service=bool(d.get("shutdown_service")),
            replication_mode=str(d.get("replication_mode") or "None"),
            checkpoint_type=str(d.get("checkpoint_type") or "Production"),
            checkpoints=tuple(Checkpoint.from_json(c) for c in d.get("checkpoints") or ()),
            parent_checkpoint_id=(str(d["parent_checkpoint_id"]).lower()
                                  if d.get("parent_checkpoint_id") else None),
            dvd_drives=tuple(DvdDrive.from_json(x) for x in d.get("dvd_drives") or ()),
            notes=str(d.get("notes") or ""),
            unreadable=str(d["unreadable"]) if d.get("unreadable") else None,
            disk_bytes=int(d.get("disk_bytes") or 0),
            checkpoint_bytes=int(d.get("checkpoint_bytes") or 0), cluster=cluster,
            automatic_stop_action=str(d.get("automatic_stop_action") or ""),
            automatic_start_action=str(d.get("automatic_start_action") or ""),
            clustered=bool(d.get("clustered")),
            metered=Metered.from_json(d["metering"]) if d.get("metering") else None,
        )


def after_action(vm: VM, action: Action, *, state: str | None = None, status: str = "",
                 checkpoint: Checkpoint | None = None, drive: DvdDrive | None = None,
                 checkpoint_id: str | None = None) -> VM:
    """The VM as a done action's answer shows it (its state; the checkpoint it created; the
    drive it changed), so the console can show the result at once instead of reading the whole
    host again. What the answer does not carry (sizes, uptime) comes with the next read."""
    changes: dict[str, Any] = {}
    if state:
        changes.update(state=state, status=status)
    if action is Action.CHECKPOINT_CREATE and checkpoint is not None:
        # The new checkpoint is the VM's parent: "Now" moves under it.
        changes["checkpoints"] = (*(c for c in vm.checkpoints if c.id != checkpoint.id), checkpoint)
        changes["parent_checkpoint_id"] = checkpoint.id
    elif action is Action.CHECKPOINT_RENAME and checkpoint is not None:
        changes["checkpoints"] = tuple(checkpoint if c.id == checkpoint.id else c
                                       for c in vm.checkpoints)
    elif action is Action.CHECKPOINT_APPLY and checkpoint_id:
        # The applied checkpoint becomes the VM's parent: "Now" moves under it.
        changes["parent_checkpoint_id"] = checkpoint_id.lower()
    elif action in (Action.CHECKPOINT_DELETE, Action.CHECKPOINT_DELETE_SUBTREE) and checkpoint_id:
        gone = checkpoint_id.lower()
        subtree = action is Action.CHECKPOINT_DELETE_SUBTREE
        changes["checkpoints"] = _without(vm.checkpoints, gone, subtree=subtree)
        left = {c.id for c in changes["checkpoints"]}
        if vm.parent_checkpoint_id and vm.parent_checkpoint_id not in left:
            # "Now" stood on a deleted checkpoint: it moves up to the nearest one left.
            changes["parent_checkpoint_id"] = _nearest(vm.checkpoints, vm.parent_checkpoint_id,
                                                       left)
    elif action in (Action.MOUNT_ISO, Action.EJECT) and drive is not None:
        slot = drive.slot
        changes["dvd_drives"] = tuple(drive if d.slot == slot else d for d in vm.dvd_drives)
    return replace(vm, **changes) if changes else vm


def _without(checkpoints: tuple[Checkpoint, ...], gone: str, subtree: bool) -> tuple[Checkpoint, ...]:
    """The checkpoints left after one is deleted: with its subtree, or (as Hyper-V merges it) with
    its children moved up to its parent."""
    removed = next((c for c in checkpoints if c.id == gone), None)
    if removed is None:
        return checkpoints
    doomed = {gone}
    if subtree:
        grew = True
        while grew:
            more = {c.id for c in checkpoints if c.parent_id in doomed} - doomed
            grew = bool(more)
            doomed |= more
    return tuple(replace(c, parent_id=removed.parent_id) if c.parent_id == gone else c
                 for c in checkpoints if c.id not in doomed)


def _nearest(checkpoints: tuple[Checkpoint, ...], start: str, left: set[str]) -> str | None:
    """The closest ancestor of `start` (itself included) that is still in `left`."""
    by_id = {c.id: c for c in checkpoints}
    seen: set[str] = set()
    current: str | None = start
    while current and current not in seen:
        if current in left:
            return current
        seen.add(current)
        found = by_id.get(current)
        current = found.parent_id if found else None
    return None


def state_after_apply(vm: VM, checkpoint: Checkpoint) -> str:
    """The state a VM is in once `checkpoint` is applied (Restore-VMSnapshot, as host.toml's
    [checkpoints] applied_source has it): a Running or Paused VM is saved first; the checkpoint
    leaves it Saved when it holds memory, else Off; it is started again only if it was Running
    and is now Saved."""
    after = "Saved" if checkpoint.holds_memory else "Off"
    if after == "Saved" and states.base_state(vm.state) == "Running":
        return "Running"
    return after


def allowed_by_state(vm: VM, action: Action) -> tuple[bool, str]:
    """Whether the VM's state (and replica role) allows an action, and if not, why in a sentence."""
    if vm.is_replica and action in POWER_ACTIONS:
        return False, f"{vm.name} is a Replica copy: starting it would be a failover"
    if vm.unreadable:
        return False, f"{vm.host} could not read {vm.name}'s configuration ({vm.unreadable})"
    if not vm.known_state:
        return False, f"{vm.name} is in an unknown state ({vm.state})"
    if action in STATE_ACTIONS[vm.state]:
        if action in MEDIA_ACTIONS and not vm.dvd_drives:
            return False, f"{vm.name} has no DVD drive"
        if action is Action.EJECT and not any(d.path for d in vm.dvd_drives):
            return False, f"no ISO is mounted on {vm.name}"
        if action in {Action.CHECKPOINT_APPLY, Action.CHECKPOINT_DELETE,
                      Action.CHECKPOINT_DELETE_SUBTREE, Action.CHECKPOINT_RENAME} \
                and not vm.checkpoints:
            return False, f"{vm.name} has no checkpoints"
        if action is Action.CHECKPOINT_CREATE and vm.checkpoint_type == "Disabled":
            return False, f"checkpoints are disabled on {vm.name}"
        return True, ""
    return False, f"{vm.name} is {vm.state}"


@dataclass(frozen=True)
class IsoFile:
    path: str
    size_bytes: int = 0

    @property
    def name(self) -> str:
        return self.path.replace("/", "\\").rsplit("\\", 1)[-1]


@dataclass(frozen=True)
class Storage:
    """A place that holds VM files: a local volume (a Cluster Shared Volume too) or a share,
    whose free space is the file server's (None when the host could not read it)."""

    path: str
    kind: str = "volume"  # volume | share
    free_bytes: int | None = None
    total_bytes: int | None = None
    label: str = ""
    error: str = ""  # why the space could not be read

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Storage:
        def number(key: str) -> int | None:
            return int(d[key]) if d.get(key) is not None else None
        return cls(path=str(d.get("path") or ""), kind=str(d.get("kind") or "volume"),
                   free_bytes=number("free_bytes"), total_bytes=number("total_bytes"),
                   label=str(d.get("label") or ""), error=str(d.get("error") or ""))


@dataclass(frozen=True)
class HostCapacity:
    """What a host has left, read with its inventory: physical memory (Win32_OperatingSystem)
    and each place that holds VM files, with its free space where the host could read it."""

    memory_total_bytes: int | None = None
    memory_free_bytes: int | None = None
    storage: tuple[Storage, ...] = ()
    error: str = ""  # why the host could not read its capacity (the VMs are still listed)

    @property
    def tightest(self) -> Storage | None:
        """The place with the least free space, of those whose space is known."""
        known = [s for s in self.storage if s.free_bytes is not None]
        return min(known, key=lambda s: s.free_bytes or 0) if known else None

    @classmethod
    def from_json(cls, d: Any) -> HostCapacity | None:
        if not isinstance(d, dict):
            return None

        def number(key: str) -> int | None:
            return int(d[key]) if d.get(key) is not None else None
        return cls(memory_total_bytes=number("memory_total_bytes"),
                   memory_free_bytes=number("memory_free_bytes"),
                   storage=tuple(sorted((Storage.from_json(x) for x in d.get("storage") or ()
                                         if isinstance(x, dict)), key=lambda s: s.path.lower())),
                   error=str(d.get("error") or ""))


@dataclass(frozen=True)
class HostInventory:
    """One host's inventory: its VMs and, where it reported it, its capacity."""

    vms: tuple[VM, ...]
    capacity: HostCapacity | None = None

    @classmethod
    def from_json(cls, host: str, data: dict[str, Any], vms: list[dict[str, Any]],
                  cluster: str | None = None) -> HostInventory:
        return cls(tuple(VM.from_json(host, d, cluster) for d in vms),
                   HostCapacity.from_json(data.get("capacity")))


@dataclass(frozen=True)
class HostFacts:
    name: str
    os_build: str = ""
    last_update: datetime | None = None  # the day of the newest update, midnight UTC
    storage: tuple[Storage, ...] = ()
    isos: tuple[IsoFile, ...] = ()

    @property
    def tightest(self) -> Storage | None:
        """The place with the least free space, of those whose space is known."""
        known = [s for s in self.storage if s.free_bytes is not None]
        return min(known, key=lambda s: s.free_bytes or 0) if known else None

    @property
    def volume_path(self) -> str:
        return self.tightest.path if self.tightest else ""

    @property
    def free_bytes(self) -> int:
        return (self.tightest.free_bytes or 0) if self.tightest else 0

    @property
    def total_bytes(self) -> int:
        return (self.tightest.total_bytes or 0) if self.tightest else 0

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> HostFacts:
        return cls(name=str(d.get("name") or ""), os_build=str(d.get("os_build") or ""),
                   last_update=_parse_time(d.get("last_update")),
                   storage=tuple(Storage.from_json(x) for x in d.get("storage") or ()
                                 if isinstance(x, dict)),
                   isos=tuple(IsoFile(str(i["path"]), int(i.get("size_bytes") or 0))
                              for i in d.get("isos") or ()))


def _parse_time(value: Any) -> datetime | None:
    """ISO 8601 from the host; a day alone (an update's install day) is that day, 00:00 UTC."""
    if not value:
        return None
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

"""What a host reports about its VMs, and which action each VM state allows.

Values parse the `data` of the host operation scripts (see docs/host-operations.md). States are
mapped by name, never by number (the numbers differ between Windows versions); an unknown state
allows nothing and keeps its raw value for display.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


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
    MOUNT_ISO = "mount_iso"
    EJECT = "eject"


POWER_ACTIONS = frozenset({
    Action.START, Action.SHUTDOWN, Action.RESTART, Action.TURNOFF, Action.RESET, Action.SAVE,
    Action.PAUSE, Action.RESUME, Action.DELETE_SAVED_STATE,
})
CHECKPOINT_ACTIONS = frozenset({
    Action.CHECKPOINT_CREATE, Action.CHECKPOINT_APPLY, Action.CHECKPOINT_DELETE,
    Action.CHECKPOINT_DELETE_SUBTREE,
})
MEDIA_ACTIONS = frozenset({Action.MOUNT_ISO, Action.EJECT})
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
    Action.MOUNT_ISO: frozenset({"vm.media"}),
    Action.EJECT: frozenset({"vm.media"}),
}

_A = Action
_STABLE_CHECKPOINT = {_A.CHECKPOINT_CREATE, _A.CHECKPOINT_APPLY, _A.CHECKPOINT_DELETE,
                      _A.CHECKPOINT_DELETE_SUBTREE}
# Which action each Hyper-V state allows. Transitional states allow nothing but turning off a
# hung shutdown; *Critical states (storage unreachable, full volume) allow only what can help.
STATE_ACTIONS: dict[str, frozenset[Action]] = {
    "Running": frozenset({_A.SHUTDOWN, _A.RESTART, _A.TURNOFF, _A.RESET, _A.SAVE, _A.PAUSE,
                          _A.MOUNT_ISO, _A.EJECT, *_STABLE_CHECKPOINT}),
    "Off": frozenset({_A.START, _A.MOUNT_ISO, _A.EJECT, *_STABLE_CHECKPOINT}),
    "Saved": frozenset({_A.START, _A.DELETE_SAVED_STATE, *_STABLE_CHECKPOINT}),
    "Paused": frozenset({_A.RESUME, _A.TURNOFF, _A.SAVE, _A.RESET, _A.CHECKPOINT_CREATE,
                         _A.CHECKPOINT_DELETE, _A.CHECKPOINT_DELETE_SUBTREE}),
    "FastSaved": frozenset({_A.START, _A.DELETE_SAVED_STATE}),
    "Hibernated": frozenset({_A.START}),
    "Stopping": frozenset({_A.TURNOFF}),
    "Starting": frozenset(),
    "Saving": frozenset(),
    "Pausing": frozenset(),
    "Resuming": frozenset(),
    "Reset": frozenset(),
    "FastSaving": frozenset(),
    "ForceShutdown": frozenset(),
    "ForceReboot": frozenset(),
    "ComponentServicing": frozenset(),
    "Other": frozenset(),
    "RunningCritical": frozenset({_A.TURNOFF}),
    "PausedCritical": frozenset({_A.RESUME, _A.TURNOFF}),
    "OffCritical": frozenset(),
    "SavedCritical": frozenset(),
    "StartingCritical": frozenset(),
    "StoppingCritical": frozenset({_A.TURNOFF}),
    "SavingCritical": frozenset(),
    "PausingCritical": frozenset(),
    "ResumingCritical": frozenset(),
    "ResetCritical": frozenset(),
    "FastSavedCritical": frozenset(),
    "FastSavingCritical": frozenset(),
}
KNOWN_STATES = frozenset(STATE_ACTIONS)
TRANSITIONAL_STATES = frozenset({
    "Starting", "Stopping", "Saving", "Pausing", "Resuming", "Reset", "FastSaving",
    "ForceShutdown", "ForceReboot", "ComponentServicing",
})


@dataclass(frozen=True)
class Checkpoint:
    id: str
    name: str
    type: str  # Standard, Production, Recovery, Planned, Replica, ... as the host names it
    parent_id: str | None
    created: datetime | None
    size_bytes: int = 0

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Checkpoint:
        return cls(id=str(d["id"]).lower(), name=str(d.get("name") or ""),
                   type=str(d.get("type") or "Standard"),
                   parent_id=(str(d["parent_id"]).lower() if d.get("parent_id") else None),
                   created=_parse_time(d.get("created")), size_bytes=int(d.get("size_bytes") or 0))


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
class VM:
    host: str
    id: str  # the VM id (GUID), lower case: the only identity of a VM
    name: str
    state: str  # the host's state name, kept raw when unknown
    status: str = ""
    uptime_s: int = 0
    cpu_pct: int = 0
    memory_bytes: int = 0
    generation: int = 2
    heartbeat: str | None = None
    shutdown_service: bool = False  # the guest shutdown integration service is enabled and present
    replication_mode: str = "None"  # None, Primary, Replica, TestReplica, ExtendedReplica
    checkpoint_type: str = "Production"  # Standard, Production, ProductionOnly, Disabled
    checkpoints: tuple[Checkpoint, ...] = ()
    dvd_drives: tuple[DvdDrive, ...] = ()
    notes: str = ""
    disk_bytes: int = 0  # every virtual disk of the VM, checkpoint files included
    checkpoint_bytes: int = 0  # of which the checkpoints' differencing disks
    cluster: str | None = None
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

    @classmethod
    def from_json(cls, host: str, d: dict[str, Any], cluster: str | None = None) -> VM:
        return cls(
            host=host, id=str(d["id"]).lower(), name=str(d.get("name") or ""),
            state=str(d.get("state") or "Other"), status=str(d.get("status") or ""),
            uptime_s=int(d.get("uptime_s") or 0), cpu_pct=int(d.get("cpu_pct") or 0),
            memory_bytes=int(d.get("memory_bytes") or 0), generation=int(d.get("generation") or 2),
            heartbeat=d.get("heartbeat"), shutdown_service=bool(d.get("shutdown_service")),
            replication_mode=str(d.get("replication_mode") or "None"),
            checkpoint_type=str(d.get("checkpoint_type") or "Production"),
            checkpoints=tuple(Checkpoint.from_json(c) for c in d.get("checkpoints") or ()),
            dvd_drives=tuple(DvdDrive.from_json(x) for x in d.get("dvd_drives") or ()),
            notes=str(d.get("notes") or ""), disk_bytes=int(d.get("disk_bytes") or 0),
            checkpoint_bytes=int(d.get("checkpoint_bytes") or 0), cluster=cluster,
        )


def allowed_by_state(vm: VM, action: Action) -> tuple[bool, str]:
    """Whether the VM's state (and replica role) allows an action, and if not, why in a sentence."""
    if vm.is_replica and action in POWER_ACTIONS:
        return False, f"{vm.name} is a Replica copy: starting it would be a failover"
    if not vm.known_state:
        return False, f"{vm.name} is in an unknown state ({vm.state})"
    if action in STATE_ACTIONS[vm.state]:
        if action in MEDIA_ACTIONS and not vm.dvd_drives:
            return False, f"{vm.name} has no DVD drive"
        if action in {Action.CHECKPOINT_APPLY, Action.CHECKPOINT_DELETE,
                      Action.CHECKPOINT_DELETE_SUBTREE} and not vm.checkpoints:
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
class HostFacts:
    name: str
    os_build: str = ""
    last_update: datetime | None = None
    volume_path: str = ""
    free_bytes: int = 0
    total_bytes: int = 0
    isos: tuple[IsoFile, ...] = ()

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> HostFacts:
        vol = d.get("volume") or {}
        return cls(name=str(d.get("name") or ""), os_build=str(d.get("os_build") or ""),
                   last_update=_parse_time(d.get("last_update")),
                   volume_path=str(vol.get("path") or ""), free_bytes=int(vol.get("free_bytes") or 0),
                   total_bytes=int(vol.get("total_bytes") or 0),
                   isos=tuple(IsoFile(str(i["path"]), int(i.get("size_bytes") or 0))
                              for i in d.get("isos") or ()))


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))

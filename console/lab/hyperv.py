"""A simulated Hyper-V host: VMs as state machines, checkpoint trees, DVD drives, an ISO library.

It answers what the operation scripts (resources/powershell/) would on a real Windows Server
host, following DESIGN.md's Hyper-V facts: a cmdlet returns when its transition is done, while
other callers see the intermediate state (Starting, Stopping, Saving, ...); deleting a
checkpoint that has children merges its disk in the background ("Merging disks") and frees the
space only when done; a Replica copy refuses power actions; a full volume keeps a VM
PausedCritical. Errors carry the contract's codes (docs/host-operations.md).

One lock per host guards everything; a waiting cmdlet releases it, so polls run meanwhile. Time
comes from a clock that tests replace (`ManualClock`).
"""
from __future__ import annotations

import copy
import ntpath
import re
import threading
import time
import uuid
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta, timezone
from typing import Any

GiB = 1024 ** 3
REPLICA_MODES = frozenset({"Replica", "TestReplica", "ExtendedReplica"})
CHECKPOINT_TYPES = ("Disabled", "Standard", "Production", "ProductionOnly")
NORMAL = "Operating normally"
MERGING = "Merging disks"
# The message a real host gives a caller who is not in Hyper-V Administrators.
NO_PERMISSION = ("You do not have the required permission to complete this task. Contact the "
                 "administrator of the authorization policy for the computer '{host}'.")

# The states each power action is accepted from: the same table as power.ps1.
POWER_FROM: dict[str, frozenset[str]] = {
    "start": frozenset({"Off", "Saved", "FastSaved", "Hibernated"}),
    "shutdown": frozenset({"Running"}),
    "turnoff": frozenset({"Running", "Paused", "Stopping", "RunningCritical", "PausedCritical",
                          "StoppingCritical"}),
    "reset": frozenset({"Running", "Paused"}),
    "save": frozenset({"Running", "Paused"}),
    "pause": frozenset({"Running"}),
    "resume": frozenset({"Paused", "PausedCritical"}),
    "delete_saved_state": frozenset({"Saved", "FastSaved"}),
}
CHECKPOINT_FROM = frozenset({"Running", "Off", "Saved", "Paused"})
APPLY_FROM = frozenset({"Running", "Off", "Saved"})
MEDIA_FROM = frozenset({"Running", "Off", "Paused"})


class HyperVError(Exception):
    """A refusal or failure, with the contract's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# --- time -----------------------------------------------------------------------------------------

class Clock:
    """Real time: monotonic seconds for durations, UTC wall time for dates."""

    def now(self) -> float:
        return time.monotonic()

    def utcnow(self) -> datetime:
        return datetime.now(timezone.utc)

    def wait_slice(self, remaining: float) -> float:
        """How long (real seconds) to block on the host's condition before looking again."""
        return remaining


class ManualClock(Clock):
    """Time that moves only when a test calls advance(); waiting cmdlets notice within 10 ms."""

    def __init__(self, start: datetime | None = None) -> None:
        self._t = 0.0
        self._start = start or datetime(2025, 1, 15, 9, 0, tzinfo=timezone.utc)
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._t

    def utcnow(self) -> datetime:
        return self._start + timedelta(seconds=self.now())

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._t += seconds

    def wait_slice(self, remaining: float) -> float:
        return 0.01


@dataclass
class Durations:
    """Seconds each cmdlet takes on a host (the merge runs after Remove-VMSnapshot returned)."""

    start: float = 3.0
    shutdown: float = 5.0
    turnoff: float = 0.5
    reset: float = 2.0
    save: float = 3.0
    pause: float = 0.5
    resume: float = 0.5
    delete_saved_state: float = 0.5
    checkpoint: float = 2.0
    apply: float = 2.0
    delete: float = 0.5
    merge: float = 10.0
    media: float = 0.2

    @classmethod
    def instant(cls) -> Durations:
        return cls(**{f.name: 0.0 for f in fields(cls)})

    def scaled(self, factor: float) -> Durations:
        return Durations(**{f.name: getattr(self, f.name) * factor for f in fields(self)})

    @classmethod
    def from_dict(cls, data: dict[str, Any], base: Durations | None = None) -> Durations:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown durations: {', '.join(sorted(unknown))}")
        return replace(base or cls(), **{k: float(v) for k, v in data.items()})


# --- the things on a host -------------------------------------------------------------------------

@dataclass
class Checkpoint:
    id: str
    name: str
    type: str  # Standard or Production
    parent_id: str | None
    created: datetime
    size_bytes: int
    captured_state: str  # the VM's state when it was taken (a standard checkpoint returns to it)


@dataclass
class DvdDrive:
    controller_type: str  # IDE (generation 1) or SCSI (generation 2)
    controller: int
    location: int
    path: str | None = None


@dataclass
class VM:
    id: str
    name: str
    state: str = "Off"
    generation: int = 2
    memory_bytes: int = 4 * GiB
    cpu_pct: int = 3
    heartbeat: bool = True  # the guest answers the heartbeat service while running
    shutdown_service: bool = True  # the guest shutdown integration service is enabled and OK
    vss: bool = True  # the guest can take a production (VSS / fsfreeze) checkpoint
    replication_mode: str = "None"
    checkpoint_type: str = "Production"
    notes: str = ""
    disk_bytes: int = 40 * GiB  # the base disks
    checkpoints: list[Checkpoint] = field(default_factory=list)
    dvd_drives: list[DvdDrive] = field(default_factory=list)
    current_checkpoint_id: str | None = None  # the checkpoint "Now" grows from
    running_since: float | None = None  # clock.now() when it last started
    merges: list[tuple[float, int]] = field(default_factory=list)  # (done at, bytes) in background
    seq: int = 0  # bumped by every transition, so a superseded cmdlet leaves the state alone

    def checkpoint(self, checkpoint_id: str) -> Checkpoint | None:
        return next((c for c in self.checkpoints if c.id == checkpoint_id), None)

    def subtree(self, checkpoint_id: str) -> list[Checkpoint]:
        ids = {checkpoint_id}
        changed = True
        while changed:
            changed = False
            for c in self.checkpoints:
                if c.parent_id in ids and c.id not in ids:
                    ids.add(c.id)
                    changed = True
        return [c for c in self.checkpoints if c.id in ids]

    def ancestors(self, checkpoint_id: str | None) -> set[str]:
        out: set[str] = set()
        while checkpoint_id and checkpoint_id not in out:
            out.add(checkpoint_id)
            found = self.checkpoint(checkpoint_id)
            checkpoint_id = found.parent_id if found else None
        return out

    @property
    def checkpoint_bytes(self) -> int:
        return sum(c.size_bytes for c in self.checkpoints) + sum(b for _, b in self.merges)

    @property
    def status(self) -> str:
        return MERGING if self.merges else NORMAL


@dataclass
class Host:
    """One simulated Hyper-V host. Public methods are the operations of the contract; they take
    parameters already parsed by the executor and return the `data` document, or raise
    HyperVError."""

    name: str
    vms: list[VM] = field(default_factory=list)
    os_build: str = "20348.2340"
    last_update_days: int | None = 14  # age of the newest installed update, kept relative to now
    volume_path: str = "D:\\VMs"
    total_bytes: int = 2048 * GiB
    other_used_bytes: int = 100 * GiB  # what is on the volume besides the VMs' disks
    critical_free_bytes: int = 1 * GiB  # below this, Hyper-V keeps VMs PausedCritical
    checkpoint_growth_bytes: int = 2 * GiB  # how much a checkpoint's differencing disk grows
    library: list[str] = field(default_factory=lambda: ["D:\\ISO\\"])
    files: dict[str, int] = field(default_factory=dict)  # every file's path and size
    reparse_points: dict[str, str] = field(default_factory=dict)  # junction -> target folder
    durations: Durations = field(default_factory=Durations)
    inventory_cost_s: float = 0.0  # seconds per VM an inventory takes
    clock: Clock = field(default_factory=Clock)

    def __post_init__(self) -> None:
        self._cond = threading.Condition(threading.RLock())

    # --- reads ------------------------------------------------------------------------------

    def inventory(self) -> dict[str, Any]:
        with self._cond:
            count = len(self.vms)
        if self.inventory_cost_s > 0:
            self._sleep(self.inventory_cost_s * count)
        with self._cond:
            self._settle()
            return {"host": self.name, "vms": [self._vm_json(vm) for vm in self.vms]}

    def vm_state(self, vm_ids: list[str]) -> dict[str, Any]:
        with self._cond:
            self._settle()
            return {"vms": [self._short(vm) for i in vm_ids for vm in self.vms if vm.id == i]}

    def host_facts(self, library: list[str]) -> dict[str, Any]:
        with self._cond:
            self._settle()
            last = None
            if self.last_update_days is not None:
                day = (self.clock.utcnow() - timedelta(days=self.last_update_days)).date()
                last = f"{day.isoformat()}T00:00:00Z"
            isos = []
            for folder in library:
                prefix = str(folder).rstrip("\\") + "\\"
                for path, size in sorted(self.files.items()):
                    rest = path[len(prefix):] if path.lower().startswith(prefix.lower()) else None
                    if rest and "\\" not in rest and ntpath.splitext(rest)[1].lower() == ".iso":
                        isos.append({"path": path, "size_bytes": size})
            return {"name": self.name, "os_build": self.os_build, "last_update": last,
                    "volume": {"path": self.volume_path, "free_bytes": self.free_bytes,
                               "total_bytes": self.total_bytes},
                    "isos": isos}

    @property
    def free_bytes(self) -> int:
        with self._cond:
            self._settle()
            used = self.other_used_bytes + sum(vm.disk_bytes + vm.checkpoint_bytes for vm in self.vms)
            return max(0, self.total_bytes - used)

    def vm(self, vm_id: str) -> VM:
        with self._cond:
            found = next((v for v in self.vms if v.id == vm_id), None)
            if found is None:
                raise HyperVError("not_found", f"No VM {vm_id} on this host.")
            return found

    # --- power ------------------------------------------------------------------------------

    def power(self, vm_id: str, action: str) -> dict[str, Any]:
        with self._cond:
            self._settle()
            vm = self.vm(vm_id)
            if vm.replication_mode in REPLICA_MODES:
                raise HyperVError("replica", f"{vm.name} is a Replica copy: power actions are refused.")
            if action not in POWER_FROM:
                raise HyperVError("invalid_parameter", f"Unknown power action {action}.")
            if vm.state not in POWER_FROM[action]:
                raise HyperVError("wrong_state", f"{vm.name} is {vm.state}.")
            if action == "shutdown" and not vm.shutdown_service:
                raise HyperVError("no_shutdown_service",
                                  f"{vm.name} has no working shutdown integration service.")
            d = self.durations
            if action == "start":
                self._transition(vm, "Starting", "Running", d.start, started=True)
            elif action == "shutdown":
                self._transition(vm, "Stopping", "Off", d.shutdown)
            elif action == "turnoff":
                self._transition(vm, "Stopping", "Off", d.turnoff)
            elif action == "reset":
                self._transition(vm, "Reset", "Running", d.reset, started=True)
            elif action == "save":
                self._transition(vm, "Saving", "Saved", d.save)
            elif action == "pause":
                self._transition(vm, "Pausing", "Paused", d.pause)
            elif action == "resume":
                if vm.state == "PausedCritical" and self.free_bytes < self.critical_free_bytes:
                    raise HyperVError(
                        "wrong_state", f"{vm.name} is PausedCritical: the volume holding its disks "
                        f"is still full ({self.free_bytes} bytes free).")
                self._transition(vm, "Resuming", "Running", d.resume)
            else:  # delete_saved_state
                self._transition(vm, vm.state, "Off", d.delete_saved_state)
            return {"vm": self._short(vm)}

    # --- checkpoints ------------------------------------------------------------------------

    def checkpoint(self, vm_id: str, action: str, checkpoint_id: Any = None,
                   name: str = "") -> dict[str, Any]:
        with self._cond:
            self._settle()
            vm = self.vm(vm_id)
            target = None
            if action in ("apply", "delete", "delete_subtree"):
                checkpoint_id = parse_guid(checkpoint_id, "checkpoint_id")
                target = vm.checkpoint(checkpoint_id)
                if target is None:
                    raise HyperVError("not_found", f"{vm.name} has no checkpoint {checkpoint_id}.")
            if action == "create":
                created = self._create_checkpoint(vm, name)
                return {"vm": self._short(vm), "checkpoint": _checkpoint_json(created)}
            assert target is not None or action not in ("apply", "delete", "delete_subtree")
            if action == "apply":
                self._apply(vm, target)  # type: ignore[arg-type]
                return {"vm": self._short(vm), "checkpoint": _checkpoint_json(target)}  # type: ignore[arg-type]
            if action in ("delete", "delete_subtree"):
                self._delete(vm, target, subtree=action == "delete_subtree")  # type: ignore[arg-type]
                return {"vm": self._short(vm), "checkpoint": None}
            raise HyperVError("invalid_parameter", f"Unknown checkpoint action {action}.")

    def _create_checkpoint(self, vm: VM, name: str) -> Checkpoint:
        if vm.checkpoint_type == "Disabled":
            raise HyperVError("checkpoints_disabled", f"Checkpoints are disabled on {vm.name}.")
        if len(name) > 100:
            raise HyperVError("invalid_parameter", "A checkpoint name has at most 100 characters.")
        if vm.state not in CHECKPOINT_FROM:
            raise HyperVError("wrong_state", f"{vm.name} is {vm.state}.")
        # A production checkpoint needs the guest's VSS (or fsfreeze) unless the VM is off; a
        # Production VM falls back to a standard checkpoint, a ProductionOnly one fails.
        production_possible = vm.state == "Off" or (vm.state == "Running" and vm.vss)
        if vm.checkpoint_type == "Standard":
            kind = "Standard"
        elif production_possible:
            kind = "Production"
        elif vm.checkpoint_type == "ProductionOnly":
            raise HyperVError("host_error", f"A production checkpoint of {vm.name} could not be "
                              f"created: the guest's backup integration service did not respond.")
        else:
            kind = "Standard"
        if self.free_bytes < self.checkpoint_growth_bytes:
            raise HyperVError("host_error", "There is not enough space on the disk.")
        captured = vm.state
        self._wait(vm, self.durations.checkpoint)
        now = self.clock.utcnow()
        created = Checkpoint(
            id=str(uuid.uuid4()), type=kind, parent_id=vm.current_checkpoint_id, created=now,
            name=name or f"{vm.name} - ({now:%m/%d/%Y - %I:%M:%S %p})",
            size_bytes=self.checkpoint_growth_bytes, captured_state=captured)
        vm.checkpoints.append(created)
        vm.current_checkpoint_id = created.id
        self._cond.notify_all()
        return created

    def _apply(self, vm: VM, target: Checkpoint) -> None:
        if vm.state not in APPLY_FROM:
            raise HyperVError("wrong_state", f"{vm.name} is {vm.state}.")
        # A running VM is saved first, then reverted. A production checkpoint holds no memory,
        # so the VM is then Off; a standard one returns to the state it captured.
        if vm.state == "Running":
            self._transition(vm, "Saving", "Saved", self.durations.save)
        final = "Off" if target.type == "Production" else target.captured_state
        self._transition(vm, vm.state, final, self.durations.apply,
                         started=final == "Running")
        vm.current_checkpoint_id = target.id

    def _delete(self, vm: VM, target: Checkpoint, subtree: bool) -> None:
        if vm.state not in CHECKPOINT_FROM:
            raise HyperVError("wrong_state", f"{vm.name} is {vm.state}.")
        self._wait(vm, self.durations.delete)
        removed = vm.subtree(target.id) if subtree else [target]
        removed_ids = {c.id for c in removed}
        on_current_path = vm.ancestors(vm.current_checkpoint_id)
        children = [c for c in vm.checkpoints if c.parent_id == target.id and c.id not in removed_ids]
        # A disk that something still builds on (a child, or the running "Now") is merged into
        # it in the background; a disk nothing builds on is simply deleted.
        merged = sum(c.size_bytes for c in removed if c.id in on_current_path
                     or any(k.parent_id == c.id for k in children))
        for child in children:
            child.parent_id = target.parent_id
        if vm.current_checkpoint_id in removed_ids:
            vm.current_checkpoint_id = target.parent_id
        vm.checkpoints = [c for c in vm.checkpoints if c.id not in removed_ids]
        if merged:
            vm.merges.append((self.clock.now() + self.durations.merge, merged))
        self._cond.notify_all()

    # --- media ------------------------------------------------------------------------------

    def media(self, vm_id: str, action: str, controller_type: str, controller: int,
              location: int, path: str | None, library: list[str]) -> dict[str, Any]:
        with self._cond:
            self._settle()
            vm = self.vm(vm_id)
            drive = next((d for d in vm.dvd_drives if d.controller_type.lower() == controller_type.lower()
                          and d.controller == controller and d.location == location), None)
            if drive is None:
                raise HyperVError("no_dvd_drive",
                                  f"No DVD drive at {controller_type} {controller}:{location}.")
            if action == "mount":
                final = self.library_path(path or "", library)
            elif action == "eject":
                final = None
            else:
                raise HyperVError("invalid_parameter", f"Unknown media action {action}.")
            if vm.state not in MEDIA_FROM:
                raise HyperVError("wrong_state", f"{vm.name} is {vm.state}.")
            self._wait(vm, self.durations.media)
            drive.path = final
            return {"drive": {"controller_type": drive.controller_type, "controller": drive.controller,
                              "location": drive.location, "path": drive.path}}

    def library_path(self, path: str, library: list[str]) -> str:
        """The checks of media.ps1, in its order: the path to mount, or not_in_library."""
        refused = HyperVError("not_in_library", f"{path} is not an ISO file of this host's library.")
        if (not re.fullmatch(r"[A-Za-z]:\\[^/:*?\"<>|\x00-\x1f]+", path)
                or re.search(r"~\d|[. ](\\|$)|\\\\", path)
                or not path.lower().endswith(".iso")):
            raise refused
        full = path  # what passes is already full and normalised: no '.', '..', doubled backslash
        inside = any(re.match(r"[A-Za-z]:\\", str(lib)) and len(full) > len(base) and
                     full[:len(base)].lower() == base.lower()
                     for lib in library for base in [str(lib).rstrip("\\") + "\\"])
        if not inside or self._file(full) is None:
            raise refused
        component: str | None = full
        while component:
            if self._is_reparse_point(component):
                raise refused
            parent = ntpath.dirname(component)
            component = parent if parent != component else None
        return full

    # --- the file system: files, folders and junctions ----------------------------------------

    def _resolve(self, path: str) -> str:
        """The path with junctions followed (what the file system opens)."""
        for _ in range(8):
            low = path.lower()
            for link, target in self.reparse_points.items():
                if low == link.lower() or low.startswith(link.lower().rstrip("\\") + "\\"):
                    path = target.rstrip("\\") + path[len(link.rstrip("\\")):]
                    break
            else:
                return path
        return path

    def _file(self, path: str) -> str | None:
        wanted = self._resolve(path).lower()
        return next((p for p in self.files if p.lower() == wanted), None)

    def _is_reparse_point(self, path: str) -> bool:
        return any(path.rstrip("\\").lower() == link.rstrip("\\").lower() for link in self.reparse_points)

    # --- transitions --------------------------------------------------------------------------

    def _transition(self, vm: VM, during: str, final: str, seconds: float,
                    started: bool = False) -> None:
        """Show `during` for `seconds`, then `final`; the caller's lock is released meanwhile.
        A later transition of the same VM (a turn-off during a hung shutdown) supersedes it."""
        vm.seq += 1
        mine = vm.seq
        vm.state = during
        self._cond.notify_all()
        self._wait(vm, seconds)
        if vm.seq != mine:
            return
        vm.state = final
        if final == "Running":
            if started or vm.running_since is None:
                vm.running_since = self.clock.now()
        elif final in ("Off", "Saved"):
            vm.running_since = None
        self._cond.notify_all()

    def _wait(self, vm: VM, seconds: float) -> None:
        deadline = self.clock.now() + seconds
        while (remaining := deadline - self.clock.now()) > 0:
            self._cond.wait(self.clock.wait_slice(remaining))

    def _sleep(self, seconds: float) -> None:
        deadline = self.clock.now() + seconds
        while (remaining := deadline - self.clock.now()) > 0:
            time.sleep(min(self.clock.wait_slice(remaining), 0.05))

    def _settle(self) -> None:
        """Finish the background merges whose time has come."""
        now = self.clock.now()
        for vm in self.vms:
            if vm.merges:
                vm.merges = [(t, b) for t, b in vm.merges if t > now]

    # --- documents ----------------------------------------------------------------------------

    def _short(self, vm: VM) -> dict[str, Any]:
        return {"id": vm.id, "state": vm.state, "status": vm.status}

    def _vm_json(self, vm: VM) -> dict[str, Any]:
        running = vm.state in ("Running", "Stopping", "Pausing", "Saving", "Reset", "Paused",
                               "Resuming", "PausedCritical", "RunningCritical")
        uptime = int(self.clock.now() - vm.running_since) if running and vm.running_since is not None else 0
        return {
            "id": vm.id, "name": vm.name, "state": vm.state, "status": vm.status,
            "uptime_s": uptime, "cpu_pct": vm.cpu_pct if vm.state == "Running" else 0,
            "memory_bytes": vm.memory_bytes if running else 0, "generation": vm.generation,
            "heartbeat": "Ok" if vm.heartbeat and vm.state == "Running" else None,
            "shutdown_service": vm.shutdown_service, "replication_mode": vm.replication_mode,
            "checkpoint_type": vm.checkpoint_type,
            # Per-checkpoint sizes are not read on a real host (inventory.ps1): 0 here too.
            "checkpoints": [_checkpoint_json(c) for c in vm.checkpoints],
            "dvd_drives": [{"controller_type": d.controller_type, "controller": d.controller,
                            "location": d.location, "path": d.path} for d in vm.dvd_drives],
            "notes": vm.notes, "disk_bytes": vm.disk_bytes + vm.checkpoint_bytes,
            "checkpoint_bytes": vm.checkpoint_bytes,
        }

    # --- state --------------------------------------------------------------------------------

    def replace_vms(self, vms: list[VM]) -> None:
        with self._cond:
            self.vms = vms
            self._cond.notify_all()

    def snapshot(self) -> list[VM]:
        """A deep copy of the VMs (for saving the lab's state)."""
        with self._cond:
            self._settle()
            return copy.deepcopy(self.vms)


def _checkpoint_json(c: Checkpoint) -> dict[str, Any]:
    return {"id": c.id, "name": c.name, "type": c.type, "parent_id": c.parent_id,
            "created": c.created.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "size_bytes": 0}



def parse_guid(value: Any, what: str) -> str:
    """A GUID parameter in its lower-case form, as [guid]::TryParse reads it; else invalid_parameter."""
    try:
        return str(uuid.UUID(str(value if value is not None else "")))
    except ValueError:
        raise HyperVError("invalid_parameter", f"{what} is not an id.") from None


def parse_int(value: Any, what: str) -> int:
    """A PowerShell [int] cast: null is 0, numbers round, numeric text converts."""
    if value is None:
        return 0
    if isinstance(value, bool | int):
        return int(value)
    if isinstance(value, float):
        return round(value)
    try:
        return int(str(value).strip())
    except ValueError:
        raise HyperVError("invalid_parameter", f"{what} must be a number.") from None

"""A simulated Hyper-V host: VMs as state machines, checkpoint trees, DVD drives, files.

The host answers at the level of Hyper-V's cmdlets (lab.cmdlets exposes these methods as
Start-VM, Checkpoint-VM, ...), never at the level of the console's operations: the operation
scripts run on it through the lab's PowerShell interpreter, so a wrong script fails here as on a
real host. Each cmdlet checks the VM's state against its own table (resources/powershell/facts,
through console.states) and fails as the real one does: the error id, category and what its
VirtualizationException wraps (`HyperVFault`). A cmdlet returns when its transition is done,
while other callers see the intermediate state (Starting, Stopping, Saving, ...); deleting a
checkpoint that something builds on merges its disk in the background ("Merging disks", the VM
in use meanwhile) and frees the space only when done; a full volume keeps a VM PausedCritical;
Start-VM from Off takes an automatic checkpoint where the VM has them on.

One lock per host guards everything; a waiting cmdlet releases it, so polls run meanwhile. Time
comes from a clock that tests replace (`ManualClock`).
"""
from __future__ import annotations

import copy
import threading
import time
import uuid
import zlib
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from console import states
from console.powershell import facts
from .faults import CmdletFaults
from .hardening import Hardening

MiB = 1024 ** 2
GiB = 1024 ** 3
CHECKPOINT_TYPES = ("Disabled", "Standard", "Production", "ProductionOnly")
NORMAL = "Operating normally"
MERGING = "Merging disks"
# The message a real host gives a caller who is not in Hyper-V Administrators.
NO_PERMISSION = ("You do not have the required permission to complete this task. Contact the "
                 "administrator of the authorization policy for the computer '{host}'.")


class HyperVError(Exception):
    """An operation's refusal or failure with the contract's error code (what a script answered)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class HyperVFault(Exception):
    """What a Hyper-V cmdlet raises: its error id and category (ExceptionHelper's mapping) and
    what its VirtualizationException wraps: the WMI job's ErrorCode (32774 in use, 32775
    invalid state, 32781 guest locked, ...) or a refused connection's Issue (AccessDenied)."""

    def __init__(self, error_id: str, message: str, category: str = "InvalidOperation", *,
                 error_code: int | None = None, issue: str | None = None) -> None:
        super().__init__(message)
        self.error_id, self.message, self.category = error_id, message, category
        self.error_code, self.issue = error_code, issue


def invalid_state(vm: VM) -> HyperVFault:
    return HyperVFault("InvalidState", f"'{vm.name}' failed to change state. The operation cannot "
                       f"be performed while the object is in its current state.",
                       "InvalidOperation", error_code=32775)


def in_use(vm: VM) -> HyperVFault:
    return HyperVFault("ObjectInUse", f"The operation cannot be performed on '{vm.name}' while "
                       f"the object is in use.", "ResourceBusy", error_code=32774)


# --- time -----------------------------------------------------------------------------------------

class Clock:
    """Real time: monotonic seconds for durations, UTC wall time for dates."""

    def now(self) -> float:
        return time.monotonic()

    def utcnow(self) -> datetime:
        return datetime.now(UTC)

    def wait_slice(self, remaining: float) -> float:
        """How long (real seconds) to block on the host's condition before looking again."""
        return remaining


class ManualClock(Clock):
    """Time that moves only when a test calls advance(); waiting cmdlets notice within 10 ms."""

    def __init__(self, start: datetime | None = None) -> None:
        self._t = 0.0
        self._start = start or datetime(2025, 1, 15, 9, 0, tzinfo=UTC)
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
    rename: float = 0.2

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
    type: str  # SnapshotType: Standard, Recovery, Planned, Replica, ... (never Production)
    parent_id: str | None
    created: datetime
    size_bytes: int
    captured_state: str = "Running"  # the VM's state when it was taken
    holds_memory: bool = True  # False: a production checkpoint, or one of an Off VM
    automatic: bool = False  # taken by Start-VM (automatic checkpoints)

    def __post_init__(self) -> None:
        # Older lab files and saved states call a production checkpoint's type Production;
        # Hyper-V reports Standard and tells it apart by its state (no memory).
        if self.type == "Production":
            self.type, self.holds_memory = "Standard", False

    @property
    def state(self) -> str:
        """VMSnapshot.State: Saved when it holds the VM's memory, else Off."""
        return "Saved" if self.holds_memory else "Off"


@dataclass
class DvdDrive:
    controller_type: str  # IDE (generation 1) or SCSI (generation 2)
    controller: int
    location: int
    path: str | None = None


@dataclass(frozen=True)
class ConsoleAce:
    """One entry of a VM's console access list (Get-VMConnectAccess's VMConnectAce): the trustee
    as it was given and its SID, when an account of the domain has that name (None: unmapped)."""

    user: str
    sid: str | None


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
    automatic_checkpoints: bool = False  # Start-VM from Off takes a checkpoint first
    # The running guest offers enhanced session mode (Remote Desktop Services in a Windows guest,
    # xrdp over vsock in a Linux one): Msvm_ComputerSystem.EnhancedSessionModeState is Available
    # while it runs on a host that allows it (lab.vmdetail, host.toml [console_access]).
    enhanced_session: bool = False
    # What the host does with the VM when it stops and starts (VirtualMachine.AutomaticStopAction
    # and AutomaticStartAction: host.toml [automatic_actions]); the defaults are what Hyper-V
    # Manager offers a new VM [judgement: the lab only needs one].
    automatic_stop_action: str = "Save"
    automatic_start_action: str = "StartIfRunning"
    guest_locked: bool = False  # the guest's console is locked: a guest shutdown is refused
    # A clustered role (its KVP component's VMIsClustered, host.toml [cluster]): it moves to
    # another node of its cluster (World.migrate) instead of going down with its host.
    clustered: bool = False
    metering: bool | None = None  # resource metering as set by Enable-/Disable-VMResourceMetering
    unreadable: bool = False  # its configuration cannot be read (storage lost)
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

    @property
    def running(self) -> bool:
        """The guest has memory in use: uptime counts, memory is assigned."""
        return states.base_state(self.state) in ("Running", "Stopping", "Pausing", "Saving",
                                                 "Reset", "Paused", "Resuming")


@dataclass
class Host:
    """One simulated Hyper-V host. The public methods below `--- cmdlets` are what the Hyper-V
    cmdlets do (lab.cmdlets binds them); they raise HyperVFault as the cmdlets fail.
    `inventory()`, `power()`, ... run the operation scripts through the interpreter, as a
    Hyper-V administrator, and return their `data` or raise HyperVError with its code."""

    name: str
    vms: list[VM] = field(default_factory=list)
    os_build: str = "20348.2340"
    last_update_days: int | None = 14  # age of the newest installed update, kept relative to now
    volume_path: str = "D:\\VMs"
    total_bytes: int = 2048 * GiB
    other_used_bytes: int = 100 * GiB  # what is on the volume besides the VMs' disks
    critical_free_bytes: int = 1 * GiB  # below this, Hyper-V keeps VMs PausedCritical
    checkpoint_growth_bytes: int = 2 * GiB  # how much a checkpoint's differencing disk grows
    # Physical memory (Win32_OperatingSystem): what the host itself holds, and what each VM
    # with memory in use takes (its assigned memory) leave the rest free.
    memory_total_bytes: int = 256 * GiB
    memory_host_bytes: int = 8 * GiB
    library: list[str] = field(default_factory=lambda: ["D:\\ISO\\"])
    files: dict[str, int] = field(default_factory=dict)  # every file's path and size
    folders: set[str] = field(default_factory=set)  # made by New-Item, empty or not (lower case)
    reparse_points: dict[str, str] = field(default_factory=dict)  # junction -> target folder
    deduplicated: set[str] = field(default_factory=set)  # files stored as dedup reparse points
    durations: Durations = field(default_factory=Durations)
    inventory_cost_s: float = 0.0  # seconds Get-VM takes per VM
    management_service: bool = True  # False: vmms.exe does not answer the host's own cmdlets
    clock: Clock = field(default_factory=Clock)
    # New-VM: the smallest startup memory the management service accepts (32 MB, the least
    # Hyper-V Manager offers: an assumption, docs/verification.md).
    min_memory_bytes: int = 32 * MiB
    # What the host's own reads report (Get-CimInstance Win32_OperatingSystem, Get-Module).
    os_caption: str = "Microsoft Windows Server 2022 Datacenter"
    os_languages: tuple[str, ...] = ("en-US",)
    modules: dict[str, tuple[str, ...]] = field(default_factory=lambda: {
        "Hyper-V": ("2.0.0.0", "1.1"), "Storage": ("2.0.0.0",)})
    cmdlet_faults: CmdletFaults = field(default_factory=CmdletFaults)
    # What Windows reports of the host's hardening (lab.hardening: features, local accounts and
    # groups, Remote Desktop, listeners, session configurations).
    hardening: Hardening = field(default_factory=Hardening)
    # The bytes of files written on the host (Set-Content, Add-Content); `files` holds every
    # file's size. `files_version` changes whenever a file changes: written or removed, a VM's
    # disk or a checkpoint's differencing disk made or merged away.
    contents: dict[str, bytes] = field(default_factory=dict)
    files_version: int = 0
    # Who may open each VM's console (VM id -> Grant-VMConnectAccess's entries), besides the
    # host's administrators; `accounts` maps DOMAIN\user (lower case) to its SID, as a real host
    # resolves a trustee through the domain (VMConnectAce.SetUserNameAndSid).
    console_acl: dict[str, list[ConsoleAce]] = field(default_factory=dict)
    accounts: dict[str, str] = field(default_factory=dict)
    enhanced_session: bool = False  # Set-VMHost -EnableEnhancedSessionMode: off on a server

    def __post_init__(self) -> None:
        self._cond = threading.Condition(threading.RLock())

    # --- the operations, through the scripts ----------------------------------------------------

    def operation(self, operation: str, params: dict[str, Any]) -> Any:
        """Run an operation script as a Hyper-V administrator: its data, or HyperVError."""
        from .executor import run_operation  # the executor runs scripts on this host
        return run_operation(self, operation, params)

    def inventory(self) -> dict[str, Any]:
        return self.operation("inventory", {})  # type: ignore[no-any-return]

    def vm_state(self, vm_ids: list[str]) -> dict[str, Any]:
        return self.operation("vm_state", {"vm_ids": vm_ids})  # type: ignore[no-any-return]

    def host_facts(self, library: list[str]) -> dict[str, Any]:
        return self.operation("host_facts", {"library": library})  # type: ignore[no-any-return]

    def power(self, vm_id: str, action: str) -> dict[str, Any]:
        return self.operation("power", {"vm_id": vm_id, "action": action})  # type: ignore[no-any-return]

    def checkpoint(self, vm_id: str, action: str, checkpoint_id: str | None = None,
                   name: str = "") -> dict[str, Any]:
        params: dict[str, Any] = {"vm_id": vm_id, "action": action}
        if checkpoint_id is not None:
            params["checkpoint_id"] = checkpoint_id
        if name:
            params["name"] = name
        return self.operation("checkpoint", params)  # type: ignore[no-any-return]

    def media(self, vm_id: str, action: str, controller_type: str, controller: int,
              location: int, path: str | None, library: list[str]) -> dict[str, Any]:
        params: dict[str, Any] = {"vm_id": vm_id, "action": action,
                                  "controller_type": controller_type, "controller": controller,
                                  "location": location, "library": library}
        if path is not None:
            params["path"] = path
        return self.operation("media", params)  # type: ignore[no-any-return]

    # --- what the host holds --------------------------------------------------------------------

    @property
    def free_bytes(self) -> int:
        with self._cond:
            self._settle()
            used = self.other_used_bytes + sum(vm.disk_bytes + vm.checkpoint_bytes for vm in self.vms)
            return max(0, self.total_bytes - used)

    @property
    def memory_free_bytes(self) -> int:
        with self._cond:
            self._settle()
            used = self.memory_host_bytes + sum(vm.memory_bytes for vm in self.vms if vm.running)
            return max(0, self.memory_total_bytes - used)

    def vm(self, vm_id: str) -> VM:
        with self._cond:
            found = next((v for v in self.vms if v.id == vm_id.lower()), None)
            if found is None:
                raise HyperVError("not_found", f"No VM {vm_id} on this host.")
            return found

    def last_update(self) -> datetime | None:
        if self.last_update_days is None:
            return None
        return self.clock.utcnow() - timedelta(days=self.last_update_days)

    # --- cmdlets: reading ---------------------------------------------------------------------

    def get_vms(self) -> list[VM]:
        """Get-VM: every VM, at inventory_cost_s each (the WMI queries a real host makes)."""
        with self._cond:
            count = len(self.vms)
        if self.inventory_cost_s > 0:
            self._sleep(self.inventory_cost_s * count)
        with self._cond:
            self._settle()
            return list(self.vms)

    def get_vm(self, vm_id: str) -> VM:
        """Get-VM -Id. An unknown id is an error, as Get-VM -Name's is (docs/verification.md)."""
        with self._cond:
            self._settle()
            found = next((v for v in self.vms if v.id == vm_id.lower()), None)
        if found is None:
            raise HyperVFault("InvalidParameter", f"Hyper-V was unable to find a virtual machine "
                              f"with ID \"{vm_id}\".", "InvalidArgument")
        return found

    def readable(self, vm: VM) -> VM:
        """A device or checkpoint read of `vm`: fails when its configuration cannot be read."""
        if vm.unreadable:
            raise HyperVFault("OperationFailed", f"'{vm.name}' failed to read its configuration: "
                              f"the system cannot find the path specified.", "NotSpecified",
                              error_code=32768)
        return vm

    # --- cmdlets: power -----------------------------------------------------------------------

    def _accepts(self, vm: VM, cmdlet: str) -> None:
        """The cmdlet's own check of the VM's (base) state, before it acts."""
        if states.base_state(vm.state) not in facts.cmdlet_states(cmdlet):
            raise invalid_state(vm)

    def start_vm(self, vm: VM) -> None:
        with self._cond:
            self._settle()
            if vm.state == "Running":
                return  # Start-VM only warns that the VM is already running
            self._accepts(vm, "Start-VM")
            was = states.base_state(vm.state)
            # An automatic checkpoint when they are on and "Now" has no parent checkpoint.
            if was == "Off" and vm.automatic_checkpoints and vm.current_checkpoint_id is None:
                now = self.clock.utcnow()
                self._add_checkpoint(vm, f"Automatic Checkpoint - {vm.name} - ({_stamp(now)})",
                                     holds_memory=False, automatic=True)
            if was == "Paused":
                self._transition(vm, "Resuming", "Running", self.durations.resume)
            else:
                self._transition(vm, "Starting", "Running", self.durations.start, started=True)

    def stop_vm(self, vm: VM, turn_off: bool) -> None:
        with self._cond:
            self._settle()
            if turn_off:
                self._accepts(vm, "Stop-VM -TurnOff")
                self._transition(vm, "Stopping", "Off", self.durations.turnoff)
            else:
                self._accepts(vm, "Stop-VM")
                if not vm.shutdown_service:
                    # Stop-VM would ask whether to turn the VM off instead (ShouldContinue),
                    # which a non-interactive session cannot answer.
                    raise HyperVFault("Unspecified", "PowerShell is in NonInteractive mode. Read "
                                      "and Prompt functionality is not available.", "NotSpecified")
                if vm.guest_locked:
                    raise HyperVFault("Unspecified", f"'{vm.name}' failed to shut down: the "
                                      f"machine is locked and cannot be shut down without the "
                                      f"force option.", "NotSpecified", error_code=32781)
                self._transition(vm, "Stopping", "Off", self.durations.shutdown)
            if vm.state == "Off":
                # The automatic checkpoint is merged away once the VM is off again.
                for c in [c for c in vm.checkpoints if c.automatic]:
                    self._remove(vm, c, subtree=False)

    def restart_vm(self, vm: VM) -> None:
        with self._cond:
            self._settle()
            self._accepts(vm, "Restart-VM")
            self._transition(vm, "Reset", "Running", self.durations.reset, started=True)

    def save_vm(self, vm: VM) -> None:
        with self._cond:
            self._settle()
            self._accepts(vm, "Save-VM")
            self._transition(vm, "Saving", "Saved", self.durations.save)

    def suspend_vm(self, vm: VM) -> None:
        with self._cond:
            self._settle()
            self._accepts(vm, "Suspend-VM")
            self._transition(vm, "Pausing", "Paused", self.durations.pause)

    def resume_vm(self, vm: VM) -> None:
        with self._cond:
            self._settle()
            self._accepts(vm, "Resume-VM")
            self._transition(vm, "Resuming", "Running", self.durations.resume)
            if self.free_bytes < self.critical_free_bytes:
                # The volume is still full: Hyper-V pauses the VM again at once.
                vm.state = "PausedCritical"
                self._cond.notify_all()

    def remove_saved_state(self, vm: VM) -> None:
        with self._cond:
            self._settle()
            self._accepts(vm, "Remove-VMSavedState")
            self._transition(vm, vm.state, "Off", self.durations.delete_saved_state)

    # --- cmdlets: creating, changing and removing a VM ---------------------------------------

    def new_vm(self, name: str, memory_bytes: int | None, generation: int,
               boot_device: str | None) -> VM:
        """New-VM without a virtual disk: Off, no guest (no integration service answers, no
        VSS), automatic checkpoints off, production checkpoints. A DVD drive as New-VM adds one
        (NewVM.cs ConfigureVirtualMachine): IDE 1:0 on generation 1, SCSI 0:0 on generation 2
        booting from CD."""
        memory = 512 * MiB if memory_bytes is None else memory_bytes
        if memory < self.min_memory_bytes or memory % (2 * MiB):
            raise HyperVFault("InvalidParameter", f"Failed to modify device 'Memory'. Invalid "
                              f"startup memory amount assigned for '{name}'. The minimum amount "
                              f"of memory you can assign to this virtual machine is "
                              f"'{self.min_memory_bytes // MiB}' MB, in steps of 2 MB.",
                              "InvalidArgument", error_code=32773)
        if generation == 2 and boot_device in ("Floppy", "IDE", "LegacyNetworkAdapter"):
            raise HyperVFault("InvalidArgument", f"Generation 2 virtual machines do not support "
                              f"{boot_device} devices.", "InvalidArgument")
        drives = [DvdDrive("IDE", 1, 0)] if generation == 1 else \
            [DvdDrive("SCSI", 0, 0)] if boot_device == "CD" else []
        vm = VM(id=str(uuid.uuid4()), name=name, generation=generation, memory_bytes=memory,
                cpu_pct=0, heartbeat=False, shutdown_service=False, vss=False, disk_bytes=0,
                dvd_drives=drives)
        with self._cond:
            self.vms.append(vm)
            self.files_version += 1
            self._cond.notify_all()
        return vm

    def set_vm(self, vm: VM, checkpoint_type: str | None = None,
               automatic_checkpoints: bool | None = None, notes: str | None = None) -> None:
        """Set-VM -CheckpointType / -AutomaticCheckpointsEnabled / -Notes (in any state)."""
        with self._cond:
            if notes is not None:
                vm.notes = notes
            if checkpoint_type is not None:
                vm.checkpoint_type = next(t for t in CHECKPOINT_TYPES
                                          if t.lower() == checkpoint_type.lower())
            if automatic_checkpoints is not None:
                vm.automatic_checkpoints = automatic_checkpoints

    def release(self, vm_id: str) -> VM:
        """A live migration's source: the VM leaves this host as it is (state, checkpoints,
        notes), its cmdlets still waiting here leave it alone."""
        with self._cond:
            self._settle()
            vm = self.vm(vm_id)
            vm.seq += 1
            self.vms = [v for v in self.vms if v is not vm]
            self.files_version += 1
            self._cond.notify_all()
            return vm

    def adopt(self, vm: VM) -> None:
        """A live migration's target: the VM runs here from now on."""
        with self._cond:
            self.vms.append(vm)
            self.files_version += 1
            self._cond.notify_all()

    def remove_vm(self, vm: VM) -> None:
        """Remove-VM: the VM and its checkpoints are gone. One that is not Off is turned off
        first, as Hyper-V Manager's Delete does (an assumption: docs/verification.md)."""
        with self._cond:
            self._settle()
            vm.seq += 1  # a cmdlet still waiting on it leaves it alone
            vm.state, vm.running_since = "Off", None
            self.vms = [v for v in self.vms if v is not vm]
            self.files_version += 1
            self._cond.notify_all()

    # --- cmdlets: checkpoints -----------------------------------------------------------------

    def checkpoint_vm(self, vm: VM, name: str | None) -> Checkpoint:
        """Checkpoint-VM: the management service decides which states allow it."""
        with self._cond:
            self._settle()
            if vm.checkpoint_type == "Disabled":
                raise HyperVFault("InvalidOperation", f"Checkpoints are disabled for "
                                  f"'{vm.name}'.", "InvalidOperation", error_code=32770)
            self._busy(vm, "checkpoint_create")
            if name is not None and len(name) > 100:
                raise HyperVFault("InvalidParameter", "The checkpoint name is longer than 100 "
                                  "characters.", "InvalidArgument", error_code=32773)
            base = states.base_state(vm.state)
            # A production checkpoint needs the guest's VSS (or fsfreeze) unless the VM is off; a
            # Production VM falls back to a standard checkpoint, a ProductionOnly one fails.
            production_possible = base == "Off" or (base == "Running" and vm.vss)
            if vm.checkpoint_type == "Standard":
                production = False
            elif production_possible:
                production = True
            elif vm.checkpoint_type == "ProductionOnly":
                raise HyperVFault("OperationFailed", f"Production checkpoint of '{vm.name}' "
                                  f"failed: the guest's backup integration service did not "
                                  f"respond.", "NotSpecified", error_code=32768)
            else:
                production = False
            if self.free_bytes < self.checkpoint_growth_bytes:
                raise HyperVFault("OperationFailed", "There is not enough space on the disk.",
                                  "NotSpecified", error_code=32768)
            self._wait(vm, self.durations.checkpoint)
            now = self.clock.utcnow()
            return self._add_checkpoint(vm, name or f"{vm.name} - ({_stamp(now)})",
                                        holds_memory=not production and base != "Off")

    def restore_snapshot(self, vm: VM, target: Checkpoint) -> None:
        """Restore-VMSnapshot: a Running or Paused VM is saved first; the checkpoint is applied;
        the VM is started again only if it was Running and the checkpoint held memory."""
        with self._cond:
            self._settle()
            self._busy(vm, "checkpoint_apply")
            was = states.base_state(vm.state)
            if was in ("Running", "Paused"):
                self._transition(vm, "Saving", "Saved", self.durations.save)
            final = "Saved" if target.holds_memory else "Off"
            self._transition(vm, vm.state, final, self.durations.apply)
            vm.current_checkpoint_id = target.id
            if was == "Running" and final == "Saved":
                self._transition(vm, "Starting", "Running", self.durations.start, started=True)

    def remove_snapshot(self, vm: VM, target: Checkpoint, subtree: bool) -> None:
        with self._cond:
            self._settle()
            self._busy(vm, "checkpoint_delete")
            self._wait(vm, self.durations.delete)
            self._remove(vm, target, subtree)

    def rename_snapshot(self, vm: VM, target: Checkpoint, name: str) -> None:
        """Rename-VMSnapshot: the checkpoint's name is written (a settings Put, RenameVMSnapshot.cs
        ProcessOneOperand); a name has at most 100 characters. An empty -NewName never gets
        here: the cmdlet's binder refuses it (lab.cmdlets)."""
        with self._cond:
            self._settle()
            self._busy(vm, "checkpoint_rename")
            if len(name) > 100:
                raise HyperVFault("InvalidParameter", "The checkpoint name is longer than 100 "
                                  "characters.", "InvalidArgument", error_code=32773)
            self._wait(vm, self.durations.rename)
            target.name = name
            self._cond.notify_all()

    # --- cmdlets: console access ----------------------------------------------------------------

    def console_access(self, vm: VM) -> list[ConsoleAce]:
        """Get-VMConnectAccess: the VM's entries, in the order they were granted."""
        with self._cond:
            return list(self.console_acl.get(vm.id, ()))

    def trustee(self, name_or_sid: str) -> ConsoleAce:
        """A trustee as VMConnectAce reads it: a SID string is a SID (its account's name when
        one has it); anything else a name, with its account's SID when one has it."""
        text = name_or_sid.strip()
        if text.upper().startswith("S-1-"):
            names = {sid.upper(): name for name, sid in self.accounts.items()}
            return ConsoleAce(names.get(text.upper(), text), text.upper())
        return ConsoleAce(text, self.accounts.get(text.lower()))

    def grant_console(self, vm: VM, trustees: list[str]) -> None:
        """Grant-VMConnectAccess: each trustee may open the VM's console (in any VM state: the
        cmdlet checks none). An entry already there is not added twice."""
        with self._cond:
            entries = self.console_acl.setdefault(vm.id, [])
            for trustee in trustees:
                ace = self.trustee(trustee)
                if not any(_same_trustee(ace, e) for e in entries):
                    entries.append(ace)

    def revoke_console(self, vm: VM, trustees: list[str]) -> None:
        """Revoke-VMConnectAccess: the trustees' entries go."""
        with self._cond:
            gone = [self.trustee(t) for t in trustees]
            kept = [e for e in self.console_acl.get(vm.id, ())
                    if not any(_same_trustee(g, e) for g in gone)]
            self.console_acl[vm.id] = kept

    def may_open_console(self, vm: VM, user: str, sid: str | None, admin: bool) -> bool:
        """Whether an account may open the VM's console: the host's administrators always, anyone
        else through an entry of the VM's list (by SID, or by name when the entry has none)."""
        if admin:
            return True
        wanted = ConsoleAce(user, sid.upper() if sid else self.accounts.get(user.lower()))
        return any(_same_trustee(wanted, e) for e in self.console_access(vm))

    # --- cmdlets: media -------------------------------------------------------------------------

    def set_dvd(self, vm: VM, drive: DvdDrive, path: str | None) -> None:
        """Set-VMDvdDrive -Path: the file is opened as the file system resolves it (links
        followed); the console's library checks are the script's, not Hyper-V's."""
        with self._cond:
            self._settle()
            if states.base_state(vm.state) not in states.OTHER_ACTIONS["mount_iso"]:
                raise invalid_state(vm)
            if path is not None and self.file(path) is None:
                raise HyperVFault("FileNotFound", f"Failed to add device 'Virtual CD/DVD Disk': "
                                  f"the system cannot find the file '{path}'.", "ObjectNotFound")
            self._wait(vm, self.durations.media)
            drive.path = path

    # --- the file system: files, folders, links and deduplicated files ------------------------

    def resolve(self, path: str) -> str:
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

    def file(self, path: str) -> str | None:
        wanted = self.resolve(path).lower()
        return next((p for p in self.files if p.lower() == wanted), None)

    def is_folder(self, path: str) -> bool:
        wanted = self.resolve(path).rstrip("\\").lower() + "\\"
        if any((f + "\\").startswith(wanted) for f in self.folders):
            return True
        if len(wanted) == 3 and wanted[1] == ":":
            return any(p.lower().startswith(wanted) for p in self.files)
        return any(p.lower().startswith(wanted) for p in self.files) or any(
            lib.rstrip("\\").lower() + "\\" == wanted for lib in self.library)

    def write_file(self, path: str, data: bytes, append: bool) -> str:
        """Set-Content (or, appending, Add-Content) of bytes: the file's path as stored. Its
        folder must exist; an existing file is replaced, or appended to."""
        target = self.resolve(path)
        folder = target.rstrip("\\").rpartition("\\")[0]
        if not folder or not self.is_folder(folder):
            raise FileNotFoundError(path)
        with self._cond:
            stored = self.file(target) or target
            before = self.contents.get(stored, b"") if append else b""
            self.contents[stored] = before + data
            self.files[stored] = len(self.contents[stored])
            self.files_version += 1
        return stored

    def make_folder(self, path: str) -> None:
        """New-Item -ItemType Directory: the folder and any missing parent, on the system drive
        C: or the VMs' volume (the drives the lab's host has)."""
        target = self.resolve(path).rstrip("\\")
        if target[1:3] != ":\\" or target[0].lower() not in {"c", self.volume_path[0].lower()}:
            raise FileNotFoundError(path)
        with self._cond:
            self.folders.add(target.lower())
            self.files_version += 1

    def move_file(self, source: str, destination: str) -> str:
        """Move-Item of a file within its volume: the new path. FileNotFoundError when there is
        no such file, FileExistsError when the destination is taken (no -Force)."""
        with self._cond:
            stored = self.file(source)
            if stored is None:
                raise FileNotFoundError(source)
            target = self.resolve(destination)
            if self.file(target) is not None:
                raise FileExistsError(destination)
            self.files[target] = self.files.pop(stored)
            if stored in self.contents:
                self.contents[target] = self.contents.pop(stored)
            self.files_version += 1
            return target

    def remove_file(self, path: str) -> bool:
        """Remove-Item of a file: False when there is none."""
        with self._cond:
            stored = self.file(path)
            if stored is None:
                return False
            self.files.pop(stored, None)
            self.contents.pop(stored, None)
            self.files_version += 1
            return True

    def link(self, path: str) -> str | None:
        """The target when `path` itself is a junction."""
        return next((t for link, t in self.reparse_points.items()
                     if link.rstrip("\\").lower() == path.rstrip("\\").lower()), None)

    # --- inner workings -------------------------------------------------------------------------

    def _busy(self, vm: VM, action: str) -> None:
        """A merge in the background holds the VM (ObjectInUse); the states the management
        service accepts for checkpoints are the console's table (docs/verification.md)."""
        if vm.merges:
            raise in_use(vm)
        if states.is_critical(vm.state) or states.base_state(vm.state) not in states.OTHER_ACTIONS[action]:
            raise invalid_state(vm)

    def _add_checkpoint(self, vm: VM, name: str, holds_memory: bool,
                        automatic: bool = False) -> Checkpoint:
        created = Checkpoint(
            id=str(uuid.uuid4()), name=name, type="Standard", parent_id=vm.current_checkpoint_id,
            created=self.clock.utcnow(), size_bytes=self.checkpoint_growth_bytes,
            captured_state=states.base_state(vm.state), holds_memory=holds_memory,
            automatic=automatic)
        vm.checkpoints.append(created)
        vm.current_checkpoint_id = created.id
        self.files_version += 1  # its differencing disk
        self._cond.notify_all()
        return created

    def _remove(self, vm: VM, target: Checkpoint, subtree: bool) -> None:
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
        self.files_version += 1
        self._cond.notify_all()

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
                left = [(t, b) for t, b in vm.merges if t > now]
                if len(left) != len(vm.merges):
                    vm.merges = left
                    self.files_version += 1

    def cpu_usage(self, vm: VM) -> int:
        """A running guest's CPU: its usual load (cpu_pct) moving up and down from minute to
        minute, the same for everyone who reads it in that minute, so a chart of it shows a guest
        at work rather than one flat line."""
        if states.base_state(vm.state) != "Running":
            return 0
        minute = int(self.clock.now() // 60)
        wobble = zlib.crc32(f"{vm.id}:{minute}".encode()) % 21 - 10  # -10 .. +10 points
        return max(0, min(100, vm.cpu_pct + wobble * max(1, vm.cpu_pct) // 10))

    def uptime(self, vm: VM) -> float:
        if vm.running and vm.running_since is not None:
            return max(0.0, self.clock.now() - vm.running_since)
        return 0.0

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


def _same_trustee(a: ConsoleAce, b: ConsoleAce) -> bool:
    if a.sid and b.sid:
        return a.sid.upper() == b.sid.upper()
    return a.user.lower() == b.user.lower()


def _stamp(when: datetime) -> str:
    """Hyper-V's default checkpoint name stamp, in an en-US host's culture (M/d/yyyy - h:mm:ss tt)."""
    hour = when.hour % 12 or 12
    return f"{when.month}/{when.day}/{when.year} - {hour}:{when:%M:%S} {'AM' if when.hour < 12 else 'PM'}"

"""The cmdlets a lab host offers its PowerShell sessions: Hyper-V's, and the few host-specific
ones of Windows (Get-HotFix, Write-EventLog, Get-Volume), over lab.hyperv.Host.

Objects carry the properties the real ones have (Get-VM's VirtualMachine, VMSnapshot, DvdDrive,
HardDiskDrive, VMIntegrationComponent), enums as PSEnum, ids as GUIDs. Failures are raised as the
real cmdlets raise them: a VirtualizationException whose error id and category follow the
Hyper-V module's ExceptionHelper, wrapping what the host reported (HyperVFault). Parameters are
bound by the interpreter against Microsoft's parameter sets before a cmdlet runs; a cmdlet here
only reads the parameters of the set it was bound to.

A caller outside Hyper-V Administrators reaches no VM: every Hyper-V cmdlet fails with id
Unspecified, wrapping a connection refusal whose Issue is AccessDenied (HOST-FACTS finding 7).
"""
from __future__ import annotations

import hashlib
import ntpath
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from console import states
from .hyperv import NO_PERMISSION, Checkpoint, ConsoleAce, DvdDrive, Host, HyperVFault, VM
from .pwsh import convert as cv
from .pwsh.values import Call, Command, ErrorRecord, Getter, PSEnum, PSError, PSObject
from . import hardening, vmdetail

HYPERV = "Hyper-V"
VIRTUALIZATION_EXCEPTION = "Microsoft.HyperV.PowerShell.VirtualizationException"
HEARTBEAT = "84EAAE65-2F2E-45F5-9BB5-0E857DC8EB47"
SHUTDOWN = "9F8233AC-BE49-4C79-8EE3-E7E1985B2077"
DATA_EXCHANGE = "2A34B1C2-FD73-4043-8A5B-DD2159BC743F"  # Key-Value Pair Exchange
# The integration services every VM has, by id (their names are localised on a real host).
INTEGRATION_SERVICES = (
    (HEARTBEAT, "Heartbeat"), (SHUTDOWN, "Shutdown"),
    ("2497F4DE-E9FA-4204-80E4-4B75C46419C0", "Time Synchronization"),
    (DATA_EXCHANGE, "Key-Value Pair Exchange"),
    ("5CED1297-4598-4915-A5FC-AD21BB4D02A4", "VSS"),
    ("6C09BB55-D683-4DA0-8931-C9BF705F6480", "Guest Service Interface"),
)


# The numbers of the enum values the scripts meet (a value's number decides its truth: 0 is
# $false). Where the number is not known, a non-zero stand-in keeps a named value true.
ENUM_VALUES: dict[str, dict[str, int]] = {
    "VMIntegrationComponentOperationalStatus": {
        "Ok": 2, "Degraded": 3, "Error": 6, "NonRecoverableError": 7, "NoContact": 12,
        "LostCommunication": 13, "Dormant": 15, "ProtocolMismatch": 32775,
        "ApplicationCritical": 32782, "CommunicationTimedOut": 32783, "CommunicationFailed": 32784},
    "Microsoft.HyperV.PowerShell.VMReplicationMode": {
        "None": 0, "Primary": 1, "Replica": 2, "TestReplica": 3, "ExtendedReplica": 4},
    "Microsoft.HyperV.PowerShell.CheckpointType": {
        "Disabled": 2, "Production": 3, "ProductionOnly": 4, "Standard": 5},
    "Microsoft.HyperV.PowerShell.ControllerType": {"IDE": 0, "SCSI": 1},
    # StopAction.cs and StartAction.cs (neonSDK decompile; host.toml [automatic_actions]).
    "Microsoft.HyperV.PowerShell.StopAction": {"TurnOff": 2, "Save": 3, "ShutDown": 4},
    "Microsoft.HyperV.PowerShell.StartAction": {"Nothing": 2, "StartIfRunning": 3, "Start": 4},
    # VMConnectAceAccessType.cs (neonSDK decompile): Allowed is 0.
    "Microsoft.HyperV.PowerShell.VMConnectAceAccessType": {"Allowed": 0, "Denied": 1},
}


def _enum(name: str, type_name: str) -> PSEnum:
    known = ENUM_VALUES.get(type_name, {})
    return PSEnum(name, known.get(name, 1000 + sum(map(ord, name))), type_name)


def _cmdlet_class(name: str) -> str:
    return "Microsoft.HyperV.PowerShell.Commands." + name.replace("-", "")


def fault(name: str, error: HyperVFault) -> PSError:
    """A HyperVFault as the cmdlet `name` reports it (ExceptionHelper.GetErrorRecordFromException)."""
    inner = PSObject("Microsoft.Virtualization.Client.Management.VirtualizationOperationFailedException"
                     if error.error_code is not None else
                     "Microsoft.Virtualization.Client.Management.ServerConnectionException"
                     if error.issue else "System.Exception",
                     {"Message": error.message, "ErrorCode": error.error_code,
                      "Issue": _enum(error.issue, "ServerConnectionIssue") if error.issue else None})
    return PSError(ErrorRecord(error.message, f"{error.error_id},{_cmdlet_class(name)}",
                               error.category, VIRTUALIZATION_EXCEPTION, None, inner))


# --- the objects ---------------------------------------------------------------------------------

class VMObject(PSObject):
    """Get-VM's VirtualMachine: its properties as read when it was fetched."""

    __slots__ = ("lab",)

    def __init__(self, host: Host, vm: VM) -> None:
        super().__init__("Microsoft.HyperV.PowerShell.VirtualMachine", {
            "Id": uuid.UUID(vm.id), "VMId": uuid.UUID(vm.id), "Name": vm.name, "VMName": vm.name,
            "State": _enum(vm.state, "Microsoft.HyperV.PowerShell.VMState"),
            "Status": vm.status, "Uptime": timedelta(seconds=int(host.uptime(vm))),
            "CPUUsage": host.cpu_usage(vm),
            "MemoryAssigned": vm.memory_bytes if vm.running else 0,
            "MemoryStartup": vm.memory_bytes,
            "Generation": vm.generation,
            "ReplicationMode": _enum(vm.replication_mode, "Microsoft.HyperV.PowerShell.VMReplicationMode"),
            "CheckpointType": _enum(vm.checkpoint_type, "Microsoft.HyperV.PowerShell.CheckpointType"),
            "AutomaticCheckpointsEnabled": vm.automatic_checkpoints,
            "AutomaticStopAction": _enum(vm.automatic_stop_action, "Microsoft.HyperV.PowerShell.StopAction"),
            "AutomaticStartAction": _enum(vm.automatic_start_action,
                                          "Microsoft.HyperV.PowerShell.StartAction"),
            # The checkpoint the VM stands on (VirtualMachineBase.ParentSnapshotId: host.toml
            # [checkpoints] parent_source); Checkpoint-VM and Restore-VMSnapshot move it.
            "ParentSnapshotId": uuid.UUID(vm.current_checkpoint_id)
            if vm.current_checkpoint_id else None,
            "Notes": vm.notes, "Path": ntpath.join(host.volume_path, vm.name),
            "ComputerName": host.name, **vmdetail.vm_properties(host, vm)},
            text=f"VirtualMachine (Name = '{vm.name}')")
        self.lab = vm


def _snapshot(vm: VM, c: Checkpoint) -> PSObject:
    return PSObject("Microsoft.HyperV.PowerShell.VMSnapshot", {
        "Id": uuid.UUID(c.id), "VMId": uuid.UUID(vm.id), "VMName": vm.name, "Name": c.name,
        "SnapshotType": _enum(c.type, "Microsoft.HyperV.PowerShell.SnapshotType"),
        "State": _enum(c.state, "Microsoft.HyperV.PowerShell.VMState"),
        "IsAutomaticCheckpoint": c.automatic,
        "ParentSnapshotId": uuid.UUID(c.parent_id) if c.parent_id else None,
        # The host's local time; the lab's hosts run in UTC.
        "CreationTime": c.created.replace(tzinfo=None), "lab": (vm, c)})


def _dvd(vm: VM, d: DvdDrive) -> PSObject:
    return PSObject("Microsoft.HyperV.PowerShell.DvdDrive", {
        "VMId": uuid.UUID(vm.id), "VMName": vm.name,
        "ControllerType": _enum(d.controller_type, "Microsoft.HyperV.PowerShell.ControllerType"),
        "ControllerNumber": d.controller, "ControllerLocation": d.location, "Path": d.path,
        "lab": (vm, d)})


def _ace(host: Host, vm: VM, ace: ConsoleAce) -> PSObject:
    """Get-VMConnectAccess's VMConnectAce: UserId is a SecurityIdentifier, or null when the name
    maps to no account."""
    sid = PSObject("System.Security.Principal.SecurityIdentifier", {"Value": ace.sid},
                   text=ace.sid) if ace.sid else None
    return PSObject("Microsoft.HyperV.PowerShell.VMConnectAce", {
        "UserName": ace.user, "UserId": sid, "VMName": vm.name, "VMId": uuid.UUID(vm.id),
        "ComputerName": host.name,
        "Access": _enum("Allowed", "Microsoft.HyperV.PowerShell.VMConnectAceAccessType")})


def _disk(host: Host, vm: VM, names: Counter[str]) -> PSObject:
    return PSObject("Microsoft.HyperV.PowerShell.HardDiskDrive", {
        "VMId": uuid.UUID(vm.id), "VMName": vm.name,
        "ControllerType": _enum("SCSI", "Microsoft.HyperV.PowerShell.ControllerType"),
        "Path": disk_path(host, vm, names)})


def disk_path(host: Host, vm: VM, names: Counter[str] | None = None) -> str:
    """Where the lab keeps a VM's disk: a folder by name, by name and id when names repeat."""
    names = names if names is not None else Counter(v.name.lower() for v in host.vms)
    folder = vm.name if names[vm.name.lower()] == 1 else f"{vm.name} ({vm.id[:8]})"
    return ntpath.join(host.volume_path, folder, "Virtual Hard Disks", f"{vm.name}.vhdx")


def disk_files(host: Host) -> dict[str, int]:
    """The VMs' virtual disk files: each base disk, and beside it a differencing disk per
    checkpoint (<name>_<checkpoint id>.avhdx) and per merge still running."""
    files: dict[str, int] = {}
    names = Counter(v.name.lower() for v in host.vms)
    for vm in host.vms:
        if not vm.disk_bytes:
            continue  # made without a virtual disk (New-VM -NoVHD)
        base = disk_path(host, vm, names)
        files[base] = vm.disk_bytes
        stem = base[:-len(".vhdx")]
        for c in vm.checkpoints:
            files[f"{stem}_{c.id.upper()}.avhdx"] = c.size_bytes
        for n, (_, size) in enumerate(vm.merges):
            files[f"{stem}_{uuid.uuid5(uuid.NAMESPACE_URL, f'{vm.id}/merge/{n}')}.avhdx".upper()] = size
    return files


def _integration(vm: VM, ic_id: str, name: str) -> PSObject:
    running = states.base_state(vm.state) == "Running"
    if ic_id == HEARTBEAT:
        enabled, status = True, ("Ok" if vm.heartbeat else "NoContact") if running else None
    elif ic_id == SHUTDOWN:
        enabled, status = vm.shutdown_service, "Ok" if running and vm.shutdown_service else None
    else:
        enabled, status = True, "Ok" if running else None
    properties = {
        "VMId": uuid.UUID(vm.id), "VMName": vm.name, "Name": name, "Enabled": enabled,
        "Id": f"Microsoft:{vm.id.upper()}\\{ic_id}",
        # No operational status while the VM is off (the component does not run).
        "PrimaryOperationalStatus": _enum(status, "VMIntegrationComponentOperationalStatus")
        if status else None}
    if ic_id == DATA_EXCHANGE:  # its own class, which also says whether the VM is clustered
        return PSObject("Microsoft.HyperV.PowerShell.DataExchangeComponent",
                        {**properties, "IsClustered": vm.clustered})
    return PSObject("Microsoft.HyperV.PowerShell.VMIntegrationComponent", properties)


# --- the cmdlets -----------------------------------------------------------------------------------

Run = Callable[[Call], Iterable[Any] | None]


def host_commands(host: Host, admin: bool) -> list[Command]:
    """The commands of a session on `host` for a caller who is (or is not) a Hyper-V administrator."""
    def guarded(name: str, run: Callable[[Call], Iterable[Any] | None]) -> Command:
        def call(c: Call) -> Iterable[Any] | None:
            try:
                if not admin:
                    raise HyperVFault("Unspecified", NO_PERMISSION.format(host=host.name),
                                      "NotSpecified", issue="AccessDenied")
                if not host.management_service:
                    raise HyperVFault("Unspecified", f"The Virtual Machine Management service on "
                                      f"host '{host.name}' is not running.", "NotSpecified",
                                      issue="RpcServerUnavailable")
                faults = host.cmdlet_faults
                if name in faults.no_op:
                    return None  # "succeeded", and nothing changed
                if name in faults.fail:
                    raise HyperVFault("OperationFailed", faults.fail[name], "NotSpecified",
                                      error_code=32768)
                return run(c)
            except HyperVFault as error:
                raise fault(name, error) from None
        return Command(name, HYPERV, call)

    def vms_of(c: Call) -> list[VMObject]:
        """-VM (objects, or the pipeline)."""
        given = c.get("VM")
        found = given if given is not None else c.input
        items = found if isinstance(found, list) else [found]
        return [v for v in items if isinstance(v, VMObject)]

    def one_vm(c: Call) -> VM:
        vms = vms_of(c)
        if len(vms) != 1:
            raise HyperVFault("InvalidParameter", "The lab's cmdlets act on one VM at a time.",
                              "InvalidArgument")
        return vms[0].lab

    def get_vm(c: Call) -> list[VMObject]:
        if c.has("Id"):
            return [VMObject(host, host.get_vm(str(c.get("Id"))))]
        return [VMObject(host, vm) for vm in host.get_vms()]

    def each_vm(read: Callable[[VM], Iterable[Any]]) -> Callable[[Call], list[Any]]:
        def run(c: Call) -> list[Any]:
            out: list[Any] = []
            for v in vms_of(c):
                out.extend(read(host.readable(v.lab)))
            return out
        return run

    def metering(on: bool) -> Callable[[Call], list[Any]]:
        """Enable- / Disable-VMResourceMetering -VM: nothing on the pipeline."""
        def run(c: Call) -> list[Any]:
            for v in vms_of(c):
                host.readable(v.lab).metering = on
            return []
        return run

    def disks(c: Call) -> list[Any]:
        names = Counter(v.name.lower() for v in host.vms)  # once per call, not per VM
        # A VM made without a virtual disk (New-VM -NoVHD) has none.
        return each_vm(lambda vm: [_disk(host, vm, names)] if vm.disk_bytes else [])(c)

    # What the details read of one VM (lab.vmdetail): adapters and their VLAN, disks by VM id,
    # firmware (generation 2 only), security, resource metering.
    def adapter_vlan(c: Call) -> list[Any]:
        given = c.get("VMNetworkAdapter")
        items = given if isinstance(given, list) else [given]
        return [vmdetail.vlan_setting(a["lab"]) for a in items
                if isinstance(a, PSObject) and isinstance(a.get("lab"), vmdetail.Adapter)]

    def vhd(c: Call) -> list[Any]:
        not_simulated(c, {"vmid"})
        names = Counter(v.name.lower() for v in host.vms)
        given = c.get("VMId")
        out: list[Any] = []
        for vm_id in given if isinstance(given, list) else [given]:
            vm = host.readable(host.get_vm(str(vm_id)))
            if vm.disk_bytes:
                out += vmdetail.vhds(host, vm, disk_path(host, vm, names))
        return out

    def vm_firmware(c: Call) -> list[Any]:
        vms = [host.readable(v.lab) for v in vms_of(c)]
        old = next((vm for vm in vms if vm.generation != 2), None)
        if old is not None:  # VirtualMachineBase.GetFirmware: generation 2 only
            raise HyperVFault("InvalidParameter", f'The Generation 1 virtual machine or snapshot '
                              f'"{old.name}" does not support the VMFirmware cmdlets. Use '
                              f'Get-VMBios and Set-VMBios instead.', "InvalidArgument")
        return [vmdetail.firmware(host, vm) for vm in vms]

    def snapshot_of(c: Call) -> tuple[VM, Checkpoint]:
        given = c.get("VMSnapshot")
        item = given[0] if isinstance(given, list) and len(given) == 1 else given
        if not isinstance(item, PSObject) or not isinstance(item.get("lab"), tuple):
            raise HyperVFault("InvalidParameter", "No checkpoint given.", "InvalidArgument")
        vm, checkpoint = item["lab"]
        if vm.checkpoint(checkpoint.id) is None:
            raise HyperVFault("ObjectNotFound", f"The checkpoint '{checkpoint.name}' no longer "
                              f"exists.", "ObjectNotFound")
        return vm, checkpoint

    def checkpoint_vm(c: Call) -> list[Any]:
        vm = one_vm(c)
        made = host.checkpoint_vm(vm, c.get("SnapshotName"))
        return [_snapshot(vm, made)] if c.get("Passthru") else []

    def restore(c: Call) -> None:
        vm, checkpoint = snapshot_of(c)
        host.restore_snapshot(vm, checkpoint)

    def remove(c: Call) -> None:
        vm, checkpoint = snapshot_of(c)
        host.remove_snapshot(vm, checkpoint, subtree=bool(c.get("IncludeAllChildSnapshots")))

    def rename(c: Call) -> list[Any]:
        not_simulated(c, {"vmsnapshot", "newname", "passthru"})
        new_name = c.get("NewName")
        if new_name is None or cv.to_str(new_name) == "":
            # [ValidateNotNullOrEmpty] on -NewName (RenameVMSnapshot.cs l.51-53): the binder's.
            error = PSError("Cannot validate argument on parameter 'NewName'. The argument is "
                            "null or empty.", "ParameterArgumentValidationError,"
                            + _cmdlet_class("Rename-VMSnapshot"), "InvalidData",
                            "System.Management.Automation.ParameterBindingValidationException")
            error.kind = "statement"
            raise error
        vm, checkpoint = snapshot_of(c)
        host.rename_snapshot(vm, checkpoint, cv.to_str(new_name))
        return [_snapshot(vm, checkpoint)] if c.get("Passthru") else []

    def set_dvd(c: Call) -> None:
        given = c.get("VMDvdDrive")
        item = given[0] if isinstance(given, list) and len(given) == 1 else given
        if not isinstance(item, PSObject) or not isinstance(item.get("lab"), tuple):
            raise HyperVFault("InvalidParameter", "No DVD drive given.", "InvalidArgument")
        vm, drive = item["lab"]
        path = c.get("Path")
        host.set_dvd(vm, drive, None if path in (None, "") else str(path))

    def power(act: Callable[[VM], None]) -> Run:
        def run(c: Call) -> None:
            act(one_vm(c))
        return run

    def not_simulated(c: Call, allowed: set[str]) -> None:
        """A parameter the lab's cmdlet does not act on is refused, never silently ignored."""
        common = {p.lower() for p in ("ErrorAction", "WarningAction", "InformationAction",
                                      "ErrorVariable", "WarningVariable", "InformationVariable",
                                      "OutVariable", "OutBuffer", "PipelineVariable", "Verbose",
                                      "Debug", "Confirm", "WhatIf")}
        extra = [k for k in c.params if k.lower() not in allowed | common]
        if extra:
            raise PSError(f"The lab's {c.name} does not simulate -{extra[0]}.", "NotSimulated",
                          "NotImplemented", "System.NotImplementedException")

    def new_vm(c: Call) -> list[VMObject]:
        not_simulated(c, {"name", "memorystartupbytes", "generation", "bootdevice", "novhd",
                          "force"})
        memory = c.get("MemoryStartupBytes")
        generation = cv.to_int(c.get("Generation")) if c.has("Generation") else 1  # NewVM.cs
        boot = cv.to_str(c.get("BootDevice")) if c.has("BootDevice") else None
        name = cv.to_str(c.get("Name")) if c.has("Name") else "New Virtual Machine"
        made = host.new_vm(name, None if memory is None else cv.to_int(memory), generation, boot)
        return [VMObject(host, made)]

    def set_vm(c: Call) -> list[VMObject]:
        not_simulated(c, {"vm", "checkpointtype", "automaticcheckpointsenabled", "notes",
                          "passthru"})
        vm = one_vm(c)
        host.set_vm(vm, cv.to_str(c.get("CheckpointType")) if c.has("CheckpointType") else None,
                    cv.to_bool(c.get("AutomaticCheckpointsEnabled"))
                    if c.has("AutomaticCheckpointsEnabled") else None,
                    cv.to_str(c.get("Notes")) if c.has("Notes") else None)
        return [VMObject(host, vm)] if c.get("Passthru") else []

    def remove_vm(c: Call) -> None:
        not_simulated(c, {"vm", "force"})
        vm = one_vm(c)
        if not c.get("Force"):
            # Remove-VM asks first (ShouldContinue), which a non-interactive session cannot answer.
            raise HyperVFault("Unspecified", "PowerShell is in NonInteractive mode. Read and "
                              "Prompt functionality is not available.", "NotSpecified")
        host.remove_vm(vm)

    def get_host(c: Call) -> list[PSObject]:
        return [PSObject("Microsoft.HyperV.PowerShell.VMHost", {
            "Name": host.name, "ComputerName": host.name,
            "EnableEnhancedSessionMode": host.enhanced_session,
            "VirtualHardDiskPath": host.volume_path, "VirtualMachinePath": host.volume_path})]

    def vms_by_id(c: Call) -> list[VM]:
        """-VMId (Guid[]), each VM by id; the lab's cmdlets are not given -VMName."""
        not_simulated(c, {"vmid", "username", "passthru"})
        given = c.get("VMId")
        ids = given if isinstance(given, list) else [given]
        return [host.readable(host.get_vm(str(i))) for i in ids if i is not None]

    def trustees(c: Call) -> list[str]:
        given = c.get("UserName")
        return [cv.to_str(u) for u in (given if isinstance(given, list) else [given])
                if u is not None]

    def console_change(change: Callable[[VM, list[str]], None]) -> Callable[[Call], list[Any]]:
        """Grant- or Revoke-VMConnectAccess: the change on each VM, the entries with -Passthru."""
        def run(c: Call) -> list[Any]:
            vms = vms_by_id(c)
            for vm in vms:
                change(vm, trustees(c))
            return [_ace(host, vm, host.trustee(u)) for vm in vms for u in trustees(c)
                    ] if c.get("Passthru") else []
        return run

    def get_console(c: Call) -> list[Any]:
        # GetVMConnectAccess.MatchesNameFilter: -UserName matches the entry's name or SID,
        # ignoring case.
        wanted = {u.lower() for u in trustees(c)}
        return [_ace(host, vm, e) for vm in vms_by_id(c) for e in host.console_access(vm)
                if not wanted or e.user.lower() in wanted or (e.sid or "").lower() in wanted]

    table: dict[str, Run] = {
        "Get-VM": get_vm,
        "Get-VMHost": get_host,
        "Get-VMSnapshot": each_vm(lambda vm: [_snapshot(vm, x) for x in vm.checkpoints]),
        "Get-VMDvdDrive": each_vm(lambda vm: [_dvd(vm, d) for d in vm.dvd_drives]),
        "Get-VMHardDiskDrive": disks,
        "Get-VMIntegrationService": each_vm(
            lambda vm: [_integration(vm, i, n) for i, n in INTEGRATION_SERVICES]),
        "Get-VMNetworkAdapter": each_vm(lambda vm: vmdetail.network_adapters(host, vm)),
        "Get-VMNetworkAdapterVlan": adapter_vlan,
        "Get-VHD": vhd,
        "Get-VMFirmware": vm_firmware,
        "Get-VMSecurity": each_vm(lambda vm: [vmdetail.security(host, vm)]),
        "Measure-VM": each_vm(lambda vm: [vmdetail.metering_report(host, vm)]),
        "Enable-VMResourceMetering": metering(True),
        "Disable-VMResourceMetering": metering(False),
        "Start-VM": power(host.start_vm),
        "Stop-VM": lambda c: host.stop_vm(one_vm(c), turn_off=bool(c.get("TurnOff"))),
        "Restart-VM": power(host.restart_vm),
        "Save-VM": power(host.save_vm),
        "Suspend-VM": power(host.suspend_vm),
        "Resume-VM": power(host.resume_vm),
        "Remove-VMSavedState": power(host.remove_saved_state),
        "Checkpoint-VM": checkpoint_vm,
        "Restore-VMSnapshot": restore,
        "Remove-VMSnapshot": remove,
        "Rename-VMSnapshot": rename,
        "Set-VMDvdDrive": set_dvd,
        "Grant-VMConnectAccess": console_change(host.grant_console),
        "Revoke-VMConnectAccess": console_change(host.revoke_console),
        "Get-VMConnectAccess": get_console,
        "New-VM": new_vm,
        "Set-VM": set_vm,
        "Remove-VM": remove_vm,
    }
    commands = [guarded(name, run) for name, run in table.items()]
    return commands + windows_commands(host)


def windows_commands(host: Host) -> list[Command]:
    """The host's own Windows cmdlets the scripts use: updates and volumes (Write-EventLog is
    the executor's: it keeps the host's event log)."""
    def hotfix(c: Call) -> list[PSObject]:
        last = host.last_update()
        def unreadable() -> Any:
            raise PSError("String was not recognized as a valid DateTime.", "FormatException")
        # InstalledOn is a script property parsing the WMI text; some entries hold none it reads.
        out = [PSObject("System.Management.ManagementObject#root\\cimv2\\Win32_QuickFixEngineering",
                        {"HotFixID": "KB5000000", "InstalledOn": Getter(unreadable)})]
        if last is not None:
            out.append(PSObject("System.Management.ManagementObject#root\\cimv2\\Win32_QuickFixEngineering",
                                {"HotFixID": "KB5040437",
                                 "InstalledOn": datetime(last.year, last.month, last.day)}))
        return out

    def volume(c: Call) -> list[PSObject]:
        path = str(c.get("FilePath") or "")
        if not path[:3].lower() == host.volume_path[:3].lower():
            raise PSError(f"No MSFT_Volume objects found with property 'FilePath' equal to "
                          f"'{path}'.", "CmdletizationQuery_NotFound,Get-Volume", "ObjectNotFound")
        return [PSObject("Microsoft.Management.Infrastructure.CimInstance"
                         "#ROOT/Microsoft/Windows/Storage/MSFT_Volume", {
            "DriveLetter": host.volume_path[0].upper(), "FileSystemLabel": "VMs",
            "Path": f"\\\\?\\Volume{{{uuid.uuid5(uuid.NAMESPACE_URL, host.name)}}}\\",
            "Size": host.total_bytes, "SizeRemaining": host.free_bytes})]

    def content(append: bool) -> Callable[[Call], None]:
        """Set-Content / Add-Content -Encoding Byte: the bytes into the host's file."""
        cmdlet = "AddContentCommand" if append else "SetContentCommand"

        def run(c: Call) -> None:
            if cv.to_str(c.get("Encoding") or "").lower() != "byte":
                raise PSError("The lab writes files as bytes only (-Encoding Byte).",
                              "NotSimulated", "NotImplemented", "System.NotImplementedException")
            value = c.get("Value")
            data = value if isinstance(value, bytes) else bytes(
                cv.to_int(b) for b in cv.to_list(value) or [])
            for path in _path_values(c):
                try:
                    host.write_file(path, data, append)
                except FileNotFoundError:
                    c.error(PSError(f"Could not find a part of the path '{path}'.",
                                    f"GetContentWriterDirectoryNotFoundError,"
                                    f"Microsoft.PowerShell.Commands.{cmdlet}", "ObjectNotFound",
                                    "System.IO.DirectoryNotFoundException", path))
        return run

    def remove_item(c: Call) -> None:
        for path in _path_values(c):
            if host.is_folder(path) and host.file(path) is None:
                raise PSError("The lab's Remove-Item removes files only.", "NotSimulated",
                              "NotImplemented", "System.NotImplementedException")
            if not host.remove_file(path):
                c.error(PSError(f"Cannot find path '{path}' because it does not exist.",
                                "PathNotFound,Microsoft.PowerShell.Commands.RemoveItemCommand",
                                "ObjectNotFound", "System.Management.Automation.ItemNotFoundException",
                                path))

    def stored_bytes(c: Call, path: str, error_id: str, exception: str) -> bytes | None:
        """A file's bytes, or None after the cmdlet's error: no such file, or one of which the
        lab holds only the size (a VM's disk)."""
        stored = host.file(path)
        if stored is not None and stored in host.contents:
            return host.contents[stored]
        c.error(PSError(f"Cannot find path '{path}' because it does not exist."
                        if stored is None else "The lab holds only the size of this file.",
                        error_id, "ObjectNotFound", exception, path))
        return None

    def get_content(c: Call) -> list[bytes]:
        """Get-Content -Encoding Byte -Raw: a file's bytes as one byte[] (Windows PowerShell 5.1);
        the lab holds no text encodings."""
        if cv.to_str(c.get("Encoding") or "").lower() != "byte" or not cv.to_bool(c.get("Raw")):
            raise PSError("The lab reads files with -Encoding Byte -Raw only.", "NotSimulated",
                          "NotImplemented", "System.NotImplementedException")
        return [data for path in _path_values(c)
                if (data := stored_bytes(c, path, "PathNotFound,Microsoft.PowerShell.Commands."
                                         "GetContentCommand", "System.Management.Automation."
                                         "ItemNotFoundException")) is not None]

    def new_item(c: Call) -> list[PSObject]:
        """New-Item -ItemType Directory (parents made as needed; -Force: no error when it exists)."""
        if cv.to_str(c.get("ItemType") or "").lower() != "directory":
            raise PSError("The lab's New-Item makes folders only.", "NotSimulated",
                          "NotImplemented", "System.NotImplementedException")
        made = []
        for path in _path_values(c):
            if host.is_folder(path) and not cv.to_bool(c.get("Force")):
                c.error(PSError(f"An item with the specified name {path} already exists.",
                                "DirectoryExist,Microsoft.PowerShell.Commands.NewItemCommand",
                                "ResourceExists", "System.IO.IOException", path))
                continue
            try:
                host.make_folder(path)
            except FileNotFoundError:
                c.error(PSError(f"Could not find a part of the path '{path}'.",
                                "CreateDirectoryIOError,Microsoft.PowerShell.Commands.NewItemCommand",
                                "WriteError", "System.IO.DirectoryNotFoundException", path))
                continue
            made.append(HostFiles(host).item(path) or PSObject("System.IO.DirectoryInfo", {}))
        return made

    def move_item(c: Call) -> None:
        """Move-Item of a file (no -Force: a destination that exists is an error)."""
        destination = cv.to_str(c.get("Destination"))
        for path in _path_values(c):
            try:
                host.move_file(path, destination)
            except FileNotFoundError:
                c.error(PSError(f"Cannot find path '{path}' because it does not exist.",
                                "PathNotFound,Microsoft.PowerShell.Commands.MoveItemCommand",
                                "ObjectNotFound", "System.Management.Automation.ItemNotFoundException",
                                path))
            except FileExistsError:
                c.error(PSError("Cannot create a file when that file already exists.",
                                "MoveFileInfoItemIOError,Microsoft.PowerShell.Commands.MoveItemCommand",
                                "WriteError", "System.IO.IOException", path))

    def file_hash(c: Call) -> list[PSObject]:
        algorithm = cv.to_str(c.get("Algorithm") or "SHA256").upper()
        if algorithm != "SHA256":
            raise PSError("The lab hashes with SHA256 only.", "NotSimulated", "NotImplemented",
                          "System.NotImplementedException")
        out = []
        for path in _path_values(c):
            data = stored_bytes(c, path, "FileNotFound,Microsoft.PowerShell.Commands."
                                "GetFileHashCommand", "System.IO.FileNotFoundException")
            if data is not None:
                out.append(PSObject("Microsoft.Powershell.Utility.FileHash", {
                    "Algorithm": "SHA256", "Path": host.file(path),
                    "Hash": hashlib.sha256(data).hexdigest().upper()}))
        return out

    def cim_instance(c: Call) -> list[PSObject]:
        name = cv.to_str(c.get("ClassName") or "")
        if cv.to_str(c.get("Namespace") or "").lower() == vmdetail.VIRTUALIZATION.lower():
            return vmdetail.cim_instances(host, name, cv.to_str(c.get("Filter") or ""))
        not_simulated = set(k.lower() for k in c.params) - {"classname", "erroraction"}
        if name.lower() != "win32_operatingsystem" or not_simulated:
            raise PSError(f"The lab simulates Get-CimInstance -ClassName Win32_OperatingSystem "
                          f"only, not {name}.", "NotSimulated", "NotImplemented",
                          "System.NotImplementedException")
        build = host.os_build.partition(".")[0]
        return [PSObject("Microsoft.Management.Infrastructure.CimInstance"
                         "#root/cimv2/Win32_OperatingSystem", {
                             "Caption": host.os_caption, "Version": f"10.0.{build}",
                             "BuildNumber": build, "CSName": host.name,
                             "MUILanguages": list(host.os_languages), "OSLanguage": 1033,
                             "Locale": "0409",
                             # uint64 kilobytes, as Win32_OperatingSystem has them.
                             "TotalVisibleMemorySize": host.memory_total_bytes // 1024,
                             "FreePhysicalMemory": host.memory_free_bytes // 1024})]

    def get_module(c: Call) -> list[PSObject]:
        if not c.get("ListAvailable"):
            raise PSError("The lab simulates Get-Module -ListAvailable only.", "NotSimulated",
                          "NotImplemented", "System.NotImplementedException")
        names = [cv.to_str(n).lower() for n in cv.to_list(c.get("Name")) or []]
        return [PSObject("System.Management.Automation.PSModuleInfo", {
                    "Name": module, "Version": cv.version(version), "ModuleType": "Binary"},
                    text=module)
                for module, versions in host.modules.items()
                if not names or module.lower() in names for version in versions]

    return [Command("Get-HotFix", "Microsoft.PowerShell.Management", hotfix),
            Command("Get-Volume", "Storage", volume),
            Command("Set-Content", "Microsoft.PowerShell.Management", content(append=False)),
            Command("Add-Content", "Microsoft.PowerShell.Management", content(append=True)),
            Command("Remove-Item", "Microsoft.PowerShell.Management", remove_item),
            Command("Get-Content", "Microsoft.PowerShell.Management", get_content),
            Command("New-Item", "Microsoft.PowerShell.Management", new_item),
            Command("Move-Item", "Microsoft.PowerShell.Management", move_item),
            Command("Get-FileHash", "Microsoft.PowerShell.Utility", file_hash),
            Command("Get-CimInstance", "CimCmdlets", cim_instance),
            Command("Invoke-CimMethod", "CimCmdlets", lambda c: [vmdetail.invoke_thumbnail(
                host, c.get("InputObject"), cv.to_str(c.get("MethodName") or ""),
                c.get("Arguments"))]),
            Command("Get-Module", "Microsoft.PowerShell.Core", get_module),
            *hardening.commands(host.name, host.hardening)]


def _path_values(c: Call) -> list[str]:
    """-LiteralPath (or -Path, taken literally: the lab expands no wildcards)."""
    given = c.get("LiteralPath") if c.has("LiteralPath") else c.get("Path")
    return [cv.to_str(v) for v in cv.to_list(given) or []]


class HostFiles:
    """The host's file system and registry as PowerShell's providers show them (a Provider)."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self._read: tuple[int, tuple[dict[str, tuple[str, int]], dict[str, list[str]]]] | None = None

    @property
    def _tree(self) -> tuple[dict[str, tuple[str, int]], dict[str, list[str]]]:
        """Every file by its lower-case path, (path, size), and every folder's entries by its
        lower-case path with a trailing backslash. Read again only when the host's files or VMs
        changed since (a written file, a new VM's folder)."""
        version = self.host.files_version
        if self._read is None or self._read[0] != version:
            self._read = (version, self._index())
        return self._read[1]

    def _index(self) -> tuple[dict[str, tuple[str, int]], dict[str, list[str]]]:
        files = {**self.host.files, **disk_files(self.host)}
        index = {p.lower(): (p, size) for p, size in files.items()}
        folders: dict[str, set[str]] = {}
        for path, _ in index.values():
            folder, _, name = path.rpartition("\\")
            while folder:
                folders.setdefault(folder.lower() + "\\", set()).add(name)
                folder, _, name = folder.rpartition("\\")
        return index, {k: sorted(v) for k, v in folders.items()}

    def item(self, path: str) -> PSObject | None:
        host = self.host
        target = host.link(path)
        if target is not None:
            return self._folder(path, link=target)
        wanted = host.resolve(path).lower()
        index, folders = self._tree
        found = index.get(wanted)
        if found is not None:
            resolved_name = ntpath.basename(path.rstrip("\\"))
            dedup = any(d.lower() == wanted for d in host.deduplicated)
            return PSObject("System.IO.FileInfo", {
                "FullName": path, "Name": resolved_name, "Extension": ntpath.splitext(resolved_name)[1],
                "Length": found[1], "PSIsContainer": False, "LinkType": None, "Target": [],
                "Attributes": PSEnum("Archive, ReparsePoint" if dedup else "Archive", 0,
                                     "System.IO.FileAttributes")}, text=path)
        if host.is_folder(path) or wanted.rstrip("\\") + "\\" in folders:
            return self._folder(path)
        return None

    def _folder(self, path: str, link: str | None = None) -> PSObject:
        name = ntpath.basename(path.rstrip("\\")) or path
        return PSObject("System.IO.DirectoryInfo", {
            "FullName": path.rstrip("\\") if len(path) > 3 else path, "Name": name,
            "Extension": "", "PSIsContainer": True, "LinkType": "Junction" if link else None,
            "Target": [link] if link else [],
            "Attributes": PSEnum("Directory, ReparsePoint" if link else "Directory", 0,
                                 "System.IO.FileAttributes")}, text=path)

    def children(self, path: str) -> list[PSObject]:
        base = self.host.resolve(path).rstrip("\\").lower() + "\\"
        shown = path.rstrip("\\") + "\\"
        names = self._tree[1].get(base, [])
        found = [self.item(shown + n) for n in names]
        return [f for f in found if f is not None]

    def registry(self, path: str) -> Mapping[str, Any] | None:
        if path.lower().rstrip("\\") in (
                "hklm:\\software\\microsoft\\windows nt\\currentversion",
                "registry::hkey_local_machine\\software\\microsoft\\windows nt\\currentversion"):
            build, _, ubr = self.host.os_build.partition(".")
            return {"CurrentBuild": build, "UBR": int(ubr or 0), "ProductName": "Windows Server",
                    "InstallationType": self.host.hardening.installation_type}
        return hardening.registry(self.host.hardening, path)

    def drive(self, name: str) -> PSObject | None:
        if name.lower() != self.host.volume_path[0].lower():
            return None
        free = self.host.free_bytes
        return PSObject("System.Management.Automation.PSDriveInfo", {
            "Name": name.upper(), "Root": f"{name.upper()}:\\", "Free": free,
            "Used": self.host.total_bytes - free})

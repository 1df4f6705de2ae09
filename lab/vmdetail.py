"""What a lab VM shows in its details, as Hyper-V Manager shows a VM: processors, memory settings,
network adapters with the addresses its guest reports, disks, firmware and security settings, the
guest's OS name (its key-value pairs), resource metering, and a thumbnail of its screen.

All of it follows from the VM's own fields (lab.hyperv.VM: its id, name, generation, memory,
state, integration services), the same for everyone who reads it, so lab.toml and saved lab
states need nothing more and every VM of a generated world has plausible details. The objects the
cmdlets return carry the properties of the real ones (resources/powershell/facts/host.toml
[details]); the thumbnail is what GetVirtualSystemThumbnailImage answers: raw RGB 565 pixels, two
bytes each, little-endian, here a small frame the lab draws with the VM's name and state.
"""
from __future__ import annotations

import ntpath
import uuid
import zlib
from dataclasses import dataclass
from typing import Any

from console import states
from .hyperv import GiB, MiB, Host, VM

VLAN_MODES = ("Untagged", "Access", "Trunk", "Private")


@dataclass(frozen=True)
class Adapter:
    """A VM's network adapter (VMNetworkAdapter) and its VLAN setting."""

    name: str
    switch: str
    mac: str  # twelve hex digits, no separators, as MacAddress reads
    ips: tuple[str, ...]  # what the guest reports; empty without its integration services
    vlan_mode: str  # Untagged, Access, ...
    vlan_id: int  # AccessVlanId, 0 when not Access


@dataclass(frozen=True)
class Hardware:
    """A VM's configuration as the details read it."""

    processors: int
    memory_startup: int
    memory_minimum: int
    memory_maximum: int
    dynamic_memory: bool
    version: str  # the configuration version
    secure_boot: bool  # generation 2 only
    secure_boot_template: str
    tpm: bool
    guest_os: str  # the guest's OSName key-value pair ("" when it reports none)
    metering: bool  # resource metering enabled
    adapters: tuple[Adapter, ...]


def _pick(vm: VM, salt: str, n: int) -> int:
    """A number 0..n-1 that stays the same for this VM (its id decides)."""
    return zlib.crc32(f"{vm.id}/{salt}".encode()) % n


def guest_reports(vm: VM) -> bool:
    """The guest's integration services answer: it runs, and its heartbeat is on."""
    return states.base_state(vm.state) == "Running" and vm.heartbeat


def hardware(host: Host, vm: VM) -> Hardware:
    linux = "build" in vm.name.lower() or "ftp" in vm.name.lower()
    dynamic = vm.generation == 2 and _pick(vm, "dynamic", 3) != 0
    processors = (1, 2, 2, 4, 4, 8)[_pick(vm, "cpu", 6)] if vm.memory_bytes else 1
    guest = "" if not vm.heartbeat or not vm.disk_bytes else (
        "Ubuntu 24.04 LTS" if linux else "Windows Server 2022 Datacenter")
    adapters: list[Adapter] = []
    if vm.disk_bytes:  # a VM made without a disk (New-VM -NoVHD) has no adapter here either
        number = int(uuid.UUID(vm.id)) % 0xFFFF
        subnet = 10 + _pick(vm, "subnet", 20)
        vlan = (0, 0, 10, 20)[_pick(vm, "vlan", 4)]
        ips = (f"10.{subnet}.{number >> 8}.{(number & 0xFF) or 1}",
               f"fe80::215:5dff:fe{number >> 8:02x}:{number & 0xFF:02x}") if guest_reports(vm) else ()
        adapters.append(Adapter("Network Adapter", "External" if vlan else "Default Switch",
                                f"00155D{number:04X}{_pick(vm, 'mac', 256):02X}", ips,
                                "Access" if vlan else "Untagged", vlan))
    return Hardware(
        processors=processors, memory_startup=vm.memory_bytes,
        memory_minimum=min(vm.memory_bytes, 512 * MiB) if dynamic else vm.memory_bytes,
        memory_maximum=2 * vm.memory_bytes if dynamic else vm.memory_bytes,
        dynamic_memory=dynamic, version="9.0" if vm.generation == 2 else "8.0",
        secure_boot=vm.generation == 2,
        secure_boot_template=("MicrosoftUEFICertificateAuthority" if linux else "MicrosoftWindows")
        if vm.generation == 2 else "",
        tpm=vm.generation == 2 and not linux, guest_os=guest,
        metering=_pick(vm, "metering", 2) == 0 if vm.metering is None else vm.metering,
        adapters=tuple(adapters))


def memory_demand(host: Host, vm: VM) -> int:
    """MemoryDemand: what the guest asks for (0 when it does not run), moving with its CPU."""
    if not vm.running:
        return 0
    return vm.memory_bytes * (40 + host.cpu_usage(vm) // 2) // 100


# --- the objects the cmdlets return -------------------------------------------------------------

def vm_properties(host: Host, vm: VM) -> dict[str, Any]:
    """The VirtualMachine properties the details read (each costs a WMI query per VM on a real
    host: the lab computes them only when read)."""
    from .pwsh.values import Getter, PSEnum

    def hw() -> Hardware:
        return hardware(host, vm)

    replicated = vm.replication_mode != "None"
    return {
        "ProcessorCount": Getter(lambda: hw().processors),
        "MemoryMinimum": Getter(lambda: hw().memory_minimum),
        "MemoryMaximum": Getter(lambda: hw().memory_maximum),
        "DynamicMemoryEnabled": Getter(lambda: hw().dynamic_memory),
        "MemoryDemand": Getter(lambda: memory_demand(host, vm)),
        "Version": Getter(lambda: hw().version),
        "ResourceMeteringEnabled": Getter(lambda: hw().metering),
        "ReplicationState": PSEnum("Replicating" if replicated else "Disabled", 0,
                                   "Microsoft.HyperV.PowerShell.VMReplicationState"),
        "ReplicationHealth": PSEnum("Normal" if replicated else "NotApplicable", 0,
                                    "Microsoft.HyperV.PowerShell.VMReplicationHealthState"),
    }


def network_adapters(host: Host, vm: VM) -> list[Any]:
    from .pwsh.values import PSObject
    return [PSObject("Microsoft.HyperV.PowerShell.VMNetworkAdapter", {
        "VMId": uuid.UUID(vm.id), "VMName": vm.name, "Name": a.name, "SwitchName": a.switch,
        "MacAddress": a.mac, "IPAddresses": list(a.ips), "lab": a})
        for a in hardware(host, vm).adapters]


def vlan_setting(adapter: Adapter) -> Any:
    from .pwsh.values import PSEnum, PSObject
    return PSObject("Microsoft.HyperV.PowerShell.VMNetworkAdapterVlanSetting", {
        "OperationMode": PSEnum(adapter.vlan_mode, 1 + VLAN_MODES.index(adapter.vlan_mode)
                                if adapter.vlan_mode in VLAN_MODES else 0,
                                "Microsoft.HyperV.PowerShell.VMNetworkAdapterVlanMode"),
        "AccessVlanId": adapter.vlan_id, "NativeVlanId": 0})


def vhds(host: Host, vm: VM, path: str) -> list[Any]:
    """Get-VHD of a VM's disk: a dynamic disk whose file holds what the guest wrote (disk_bytes),
    its maximum size a round figure above it."""
    from .pwsh.values import PSEnum, PSObject
    maximum = max(GiB, -(-vm.disk_bytes * 2 // (64 * GiB)) * 64 * GiB)
    return [PSObject("Microsoft.Vhd.PowerShell.VirtualHardDisk", {
        "Path": path, "VhdFormat": PSEnum(ntpath.splitext(path)[1][1:].upper() or "VHDX", 3,
                                           "Microsoft.Vhd.PowerShell.VhdFormat"),
        "VhdType": PSEnum("Dynamic", 3, "Microsoft.Vhd.PowerShell.VhdType"),
        "FileSize": vm.disk_bytes, "Size": maximum, "Attached": vm.running})]


def firmware(host: Host, vm: VM) -> Any:
    from .pwsh.values import PSEnum, PSObject
    hw = hardware(host, vm)
    return PSObject("Microsoft.HyperV.PowerShell.VMFirmware", {
        "VMId": uuid.UUID(vm.id), "VMName": vm.name,
        "SecureBoot": PSEnum("On" if hw.secure_boot else "Off", 1 if hw.secure_boot else 0,
                             "Microsoft.HyperV.PowerShell.OnOffState"),
        "SecureBootTemplate": hw.secure_boot_template})


def security(host: Host, vm: VM) -> Any:
    from .pwsh.values import PSObject
    return PSObject("Microsoft.HyperV.PowerShell.VMSecurity", {
        "TpmEnabled": hardware(host, vm).tpm, "Shielded": False,
        "EncryptStateAndVmMigrationTraffic": False})


def metering_report(host: Host, vm: VM) -> Any:
    """Measure-VM: averages since metering was enabled (here: since the VM last started)."""
    from datetime import timedelta
    from .pwsh.values import PSObject
    seconds = int(host.uptime(vm))
    memory = vm.memory_bytes // MiB if vm.running else 0
    return PSObject("Microsoft.HyperV.PowerShell.VMMeteringReportForVirtualMachine", {
        "VMId": uuid.UUID(vm.id), "VMName": vm.name,
        "MeteringDuration": timedelta(seconds=seconds) if seconds else None,
        # MHz on a 2.4 GHz host
        "AverageProcessorUsage": vm.cpu_pct * 24 * hardware(host, vm).processors if seconds else None,
        "AverageMemoryUsage": memory or None, "MinimumMemoryUsage": memory // 2 or None,
        "MaximumMemoryUsage": memory or None,
        # One report a direction (the adapters' metering ACLs), TotalTraffic in MB since
        # metering started: a steady rate of the VM's own while it runs.
        "NetworkMeteredTrafficReport": [
            PSObject("Microsoft.HyperV.PowerShell.VMNetworkAdapterPortAclMeteringReport",
                     {"Direction": direction, "TotalTraffic": seconds * rate // 1024})
            for direction, rate in (("Inbound", network_kbps(vm)), ("Outbound", network_kbps(vm) // 3))]})


def network_kbps(vm: VM) -> int:
    """The lab's steady network traffic of a running VM, in KB/s (metering's traffic reports)."""
    return 40 + _pick(vm, "network", 400) if vm.running else 0


def kvp_items(host: Host, vm: VM) -> list[str]:
    """Msvm_KvpExchangeComponent.GuestIntrinsicExchangeItems: each pair as the CIM-XML of an
    embedded Msvm_KvpExchangeDataItem instance (what WMI returns), while the guest reports."""
    from xml.sax.saxutils import escape
    hw = hardware(host, vm)
    if not guest_reports(vm) or not hw.guest_os:
        return []
    pairs = [("FullyQualifiedDomainName", f"{vm.name}.lab.example"), ("OSName", hw.guest_os),
             ("OSVersion", "10.0.20348" if "Windows" in hw.guest_os else "6.8.0-45-generic")]
    return [f'<INSTANCE CLASSNAME="Msvm_KvpExchangeDataItem"><PROPERTY NAME="Data" TYPE="string">'
            f'<VALUE>{escape(value)}</VALUE></PROPERTY><PROPERTY NAME="Name" TYPE="string"><VALUE>'
            f'{escape(name)}</VALUE></PROPERTY><PROPERTY NAME="Source" TYPE="uint16"><VALUE>2'
            f'</VALUE></PROPERTY></INSTANCE>' for name, value in pairs]


# --- the thumbnail ------------------------------------------------------------------------------

# A 5x7 font: seven rows of five bits each, for the characters VM names and states use.
_FONT: dict[str, tuple[int, ...]] = {
    "A": (14, 17, 17, 31, 17, 17, 17), "B": (30, 17, 17, 30, 17, 17, 30),
    "C": (14, 17, 16, 16, 16, 17, 14), "D": (30, 17, 17, 17, 17, 17, 30),
    "E": (31, 16, 16, 30, 16, 16, 31), "F": (31, 16, 16, 30, 16, 16, 16),
    "G": (14, 17, 16, 23, 17, 17, 15), "H": (17, 17, 17, 31, 17, 17, 17),
    "I": (14, 4, 4, 4, 4, 4, 14), "J": (7, 2, 2, 2, 2, 18, 12),
    "K": (17, 18, 20, 24, 20, 18, 17), "L": (16, 16, 16, 16, 16, 16, 31),
    "M": (17, 27, 21, 21, 17, 17, 17), "N": (17, 17, 25, 21, 19, 17, 17),
    "O": (14, 17, 17, 17, 17, 17, 14), "P": (30, 17, 17, 30, 16, 16, 16),
    "Q": (14, 17, 17, 17, 21, 18, 13), "R": (30, 17, 17, 30, 20, 18, 17),
    "S": (15, 16, 16, 14, 1, 1, 30), "T": (31, 4, 4, 4, 4, 4, 4),
    "U": (17, 17, 17, 17, 17, 17, 14), "V": (17, 17, 17, 17, 17, 10, 4),
    "W": (17, 17, 17, 21, 21, 21, 10), "X": (17, 17, 10, 4, 10, 17, 17),
    "Y": (17, 17, 17, 10, 4, 4, 4), "Z": (31, 1, 2, 4, 8, 16, 31),
    "0": (14, 17, 19, 21, 25, 17, 14), "1": (4, 12, 4, 4, 4, 4, 14),
    "2": (14, 17, 1, 2, 4, 8, 31), "3": (31, 2, 4, 2, 1, 17, 14),
    "4": (2, 6, 10, 18, 31, 2, 2), "5": (31, 16, 30, 1, 1, 17, 14),
    "6": (6, 8, 16, 30, 17, 17, 14), "7": (31, 1, 2, 4, 8, 8, 8),
    "8": (14, 17, 17, 14, 17, 17, 14), "9": (14, 17, 17, 15, 1, 2, 12),
    "-": (0, 0, 0, 31, 0, 0, 0), ".": (0, 0, 0, 0, 0, 12, 12), ":": (0, 12, 12, 0, 12, 12, 0),
    "_": (0, 0, 0, 0, 0, 0, 31), "(": (2, 4, 8, 8, 8, 4, 2), ")": (8, 4, 2, 2, 2, 4, 8),
    " ": (0, 0, 0, 0, 0, 0, 0),
}
_UNKNOWN = (31, 17, 17, 17, 17, 17, 31)


def rgb565(r: int, g: int, b: int) -> int:
    return (r >> 3) << 11 | (g >> 2) << 5 | b >> 3


class Frame:
    """A picture of RGB 565 pixels, row by row from the top."""

    def __init__(self, width: int, height: int, background: int) -> None:
        self.width, self.height = width, height
        self.pixels = [background] * (width * height)

    def fill(self, x: int, y: int, w: int, h: int, colour: int) -> None:
        for row in range(max(0, y), min(self.height, y + h)):
            start = row * self.width
            left, right = max(0, x), min(self.width, x + w)
            if right > left:
                self.pixels[start + left:start + right] = [colour] * (right - left)

    def text(self, x: int, y: int, text: str, colour: int, scale: int = 1) -> None:
        for ch in text.upper():
            rows = _FONT.get(ch, _UNKNOWN)
            for r, bits in enumerate(rows):
                for c in range(5):
                    if bits & (16 >> c):
                        self.fill(x + c * scale, y + r * scale, scale, scale, colour)
            x += 6 * scale

    def data(self) -> bytes:
        """Two bytes a pixel, little-endian: what the WMI method answers."""
        out = bytearray(2 * len(self.pixels))
        out[0::2] = bytes(p & 0xFF for p in self.pixels)
        out[1::2] = bytes(p >> 8 for p in self.pixels)
        return bytes(out)


def thumbnail(host: Host, vm: VM, width: int, height: int) -> bytes:
    """The VM's screen as the lab draws it: a desktop coloured by state with the VM's name, its
    state, its guest and a bar of the current minute's seconds (so a refresh shows it moving)."""
    base = states.base_state(vm.state)
    background = {"Running": rgb565(16, 60, 140), "Paused": rgb565(90, 90, 90)}.get(
        base, rgb565(0, 0, 0))
    frame = Frame(width, height, background)
    scale = max(1, width // 100)
    frame.fill(0, 0, width, 9 * scale, rgb565(230, 230, 230))
    frame.text(2 * scale, scale, vm.name[:width // (6 * scale)], rgb565(20, 20, 20), scale)
    white = rgb565(255, 255, 255)
    frame.text(2 * scale, 12 * scale, vm.state[:width // (6 * scale)], white, scale)
    # The guest's name, word by word on as many lines as it takes.
    columns, line, y = max(1, (width - 4 * scale) // (6 * scale)), "", 21 * scale
    for word in hardware(host, vm).guest_os.split():
        if line and len(line) + 1 + len(word) > columns:
            frame.text(2 * scale, y, line, rgb565(200, 220, 255), scale)
            line, y = "", y + 9 * scale
        line = f"{line} {word}" if line else word[:columns]
    if line:
        frame.text(2 * scale, y, line, rgb565(200, 220, 255), scale)
    seconds = int(host.clock.now()) % 60
    frame.fill(0, height - 3 * scale, width * (seconds + 1) // 60, 3 * scale, rgb565(80, 200, 120))
    return frame.data()


def decode(data: bytes, width: int) -> list[list[tuple[int, int, int]]]:
    """RGB 565 little-endian bytes back to rows of (r, g, b) (for tests)."""
    pixels = [data[i] | data[i + 1] << 8 for i in range(0, len(data), 2)]
    rows = [pixels[i:i + width] for i in range(0, len(pixels), width)]
    return [[((p >> 11) << 3, ((p >> 5) & 63) << 2, (p & 31) << 3) for p in row] for row in rows]


# --- CIM: the classes of root\virtualization\v2 the details and the thumbnail read --------------

VIRTUALIZATION = "root\\virtualization\\v2"
REALIZED = "Microsoft:Hyper-V:System:Realized"
SNAPSHOT = "Microsoft:Hyper-V:Snapshot:Realized"
THUMBNAIL = "GetVirtualSystemThumbnailImage"


def _where(text: str) -> list[tuple[str, str]]:
    """A WQL filter of `Property='value'` terms joined by AND (all the lab reads): the pairs, or
    NotSimulated for anything else."""
    import re
    from .pwsh.values import PSError
    terms = re.split(r"\s+AND\s+", text.strip(), flags=re.IGNORECASE) if text.strip() else []
    out = []
    for term in terms:
        match = re.fullmatch(r"\s*(\w+)\s*=\s*'([^']*)'\s*", term)
        if not match:
            raise PSError(f"The lab reads WQL filters of Property='value' terms only, not "
                          f"{term!r}.", "NotSimulated", "NotImplemented",
                          "System.NotImplementedException")
        out.append((match.group(1), match.group(2)))
    return out


def cim_instances(host: Host, class_name: str, where: str) -> list[Any]:
    """Get-CimInstance -Namespace root\\virtualization\\v2 -ClassName ... [-Filter ...]: WQL
    compares strings without regard to case."""
    from .pwsh.values import PSError, PSObject
    kind = f"Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/{class_name}"
    found: list[PSObject] = []
    low = class_name.lower()
    if low == "msvm_virtualsystemmanagementservice":
        found = [PSObject(kind, {"Name": "vmms", "SystemName": host.name,
                                 "CreationClassName": class_name})]
    elif low == "msvm_virtualsystemsettingdata":
        for vm in host.get_vms():
            found.append(PSObject(kind, {
                "InstanceID": f"Microsoft:{vm.id.upper()}", "ElementName": vm.name,
                "VirtualSystemIdentifier": vm.id.upper(), "VirtualSystemType": REALIZED,
                "lab": vm}))
            found += [PSObject(kind, {
                "InstanceID": f"Microsoft:{c.id.upper()}", "ElementName": c.name,
                "VirtualSystemIdentifier": vm.id.upper(), "VirtualSystemType": SNAPSHOT})
                for c in vm.checkpoints]
    elif low == "msvm_computersystem":
        # EnhancedSessionModeState: 2 Available, 3 Disabled (EnhancedSessionModeStateType.cs).
        found = [PSObject(kind, {
            "Name": vm.id.upper(), "ElementName": vm.name,
            "EnhancedSessionModeState": 2 if host.enhanced_session and vm.enhanced_session
            and vm.running else 3}) for vm in host.get_vms()]
    elif low == "msvm_kvpexchangecomponent":
        found = [PSObject(kind, {"SystemName": vm.id.upper(), "Name": "Key-Value Pair Exchange",
                                 "GuestIntrinsicExchangeItems": kvp_items(host, vm) or None})
                 for vm in host.get_vms()]
    else:
        raise PSError(f"The lab does not simulate {class_name} in {VIRTUALIZATION}.",
                      "NotSimulated", "NotImplemented", "System.NotImplementedException")
    terms = _where(where)
    return [o for o in found
            if all(str(o.get(k) or "").lower() == v.lower() for k, v in terms)]


def invoke_thumbnail(host: Host, service: Any, method: str, arguments: Any) -> Any:
    """Invoke-CimMethod -InputObject <the management service> -MethodName
    GetVirtualSystemThumbnailImage -Arguments @{TargetSystem; WidthPixels; HeightPixels}: a
    CimMethodResult with ReturnValue and ImageData (uint8[], null unless ReturnValue is 0)."""
    from .pwsh import convert as cv
    from .pwsh.values import PSError, PSObject
    if not (isinstance(service, PSObject) and service.type_name.endswith(
            "/Msvm_VirtualSystemManagementService")) or method.lower() != THUMBNAIL.lower():
        raise PSError(f"The lab simulates Invoke-CimMethod {THUMBNAIL} on "
                      f"Msvm_VirtualSystemManagementService only, not {method}.", "NotSimulated",
                      "NotImplemented", "System.NotImplementedException")
    args = {str(k).lower(): v for k, v in (arguments or {}).items()}
    target = args.get("targetsystem")
    width, height = cv.to_int(args.get("widthpixels") or 0), cv.to_int(args.get("heightpixels") or 0)

    def result(code: int, data: bytes | None = None) -> PSObject:
        return PSObject("Microsoft.Management.Infrastructure.CimMethodResult", {
            "ReturnValue": code, "ImageData": list(data) if data is not None else None})

    if not isinstance(target, PSObject) or width <= 0 or height <= 0:
        return result(32773)  # Invalid parameter
    vm = target.get("lab")
    if not isinstance(vm, VM) or all(v is not vm for v in host.vms):
        return result(32773)
    if states.base_state(vm.state) not in ("Running", "Paused", "Starting", "Stopping", "Saving",
                                            "Pausing", "Resuming", "Reset"):
        return result(32775)  # Invalid state for this operation: no screen
    return result(0, thumbnail(host, vm, width, height))

"""One VM as Hyper-V Manager shows it, read on demand when its details are opened (details.ps1,
Get-HvcVMDetails), and a thumbnail of its screen (thumbnail.ps1, Get-HvcVMThumbnail).

The inventory reads every VM of a host in one call and leaves out what costs WMI queries per VM
(memory and processor settings, adapters, disk sizes, firmware, security, the guest's key-value
pairs); these values hold them for one VM at a time. A host's answer is held to its shape here:
anything missing or of the wrong type is a HostError naming the field, never a half-read value.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import HostError, InvalidParameter

# A thumbnail's least and most width, least and most height (thumbnail.ps1 and the JEA function
# Get-HvcVMThumbnail hold the same limits).
THUMBNAIL_LIMITS = (16, 320, 12, 240)
THUMBNAIL_SIZE = (160, 120)  # what the details pane asks for: 4:3, as most guests' screens

# Integration services by id (their names are localised on the host).
INTEGRATION_NAMES = {
    "84EAAE65-2F2E-45F5-9BB5-0E857DC8EB47": "Heartbeat",
    "9F8233AC-BE49-4C79-8EE3-E7E1985B2077": "Shutdown",
    "2497F4DE-E9FA-4204-80E4-4B75C46419C0": "Time synchronization",
    "2A34B1C2-FD73-4043-8A5B-DD2159BC743F": "Data exchange",
    "5CED1297-4598-4915-A5FC-AD21BB4D02A4": "Backup (volume shadow copy)",
    "6C09BB55-D683-4DA0-8931-C9BF705F6480": "Guest services",
}


class _Reader:
    """Typed reads of one JSON object of a host's answer, each failure naming its field."""

    def __init__(self, host: str, where: str, data: Any) -> None:
        if not isinstance(data, dict):
            raise HostError(f"{host} answered something unexpected for {where}: not an object.",
                            host=host)
        self.host, self.where, self.data = host, where, data

    def _bad(self, key: str, what: str) -> HostError:
        return HostError(f"{self.host} answered something unexpected for {self.where}: {key} is "
                         f"not {what}.", host=self.host)

    def text(self, key: str) -> str:
        value = self.data.get(key)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise self._bad(key, "text")
        return value

    def number(self, key: str, optional: bool = False) -> int | None:
        value = self.data.get(key)
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self._bad(key, "a whole number of at least 0")
        return value

    def whole(self, key: str) -> int:
        value = self.number(key)
        assert value is not None
        return value

    def flag(self, key: str, optional: bool = False) -> bool | None:
        value = self.data.get(key)
        if value is None and optional:
            return None
        if not isinstance(value, bool):
            raise self._bad(key, "true or false")
        return value

    def items(self, key: str) -> list[Any]:
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self._bad(key, "a list")
        return value

    def texts(self, key: str) -> tuple[str, ...]:
        values = self.items(key)
        if not all(isinstance(v, str) for v in values):
            raise self._bad(key, "a list of text")
        return tuple(values)

    def part(self, key: str, optional: bool = False) -> _Reader | None:
        value = self.data.get(key)
        if value is None and optional:
            return None
        return _Reader(self.host, f"{self.where} {key}", value)


@dataclass(frozen=True)
class Memory:
    startup_bytes: int
    minimum_bytes: int
    maximum_bytes: int
    assigned_bytes: int
    demand_bytes: int
    dynamic: bool


@dataclass(frozen=True)
class NetworkAdapter:
    name: str
    switch: str  # "" when not connected
    mac: str  # twelve hex digits as Hyper-V writes them
    addresses: tuple[str, ...]  # what the guest reports through its integration services
    vlan_mode: str  # Untagged, Access, Trunk, Private; "" when the host did not say
    vlan_id: int | None

    @property
    def mac_text(self) -> str:
        """The MAC address as people read it (00-15-5D-...)."""
        mac = self.mac.replace("-", "").replace(":", "")
        return "-".join(mac[i:i + 2] for i in range(0, len(mac), 2)).upper() if len(mac) == 12 \
            else self.mac

    @property
    def vlan_text(self) -> str:
        if self.vlan_mode == "Access" and self.vlan_id:
            return f"VLAN {self.vlan_id}"
        return "no VLAN" if self.vlan_mode in ("", "Untagged") else self.vlan_mode


@dataclass(frozen=True)
class VirtualDisk:
    path: str
    controller_type: str
    controller: int
    location: int
    type: str  # Fixed, Dynamic, Differencing; "" when Get-VHD could not open it
    size_bytes: int | None  # the most the guest sees
    file_bytes: int | None  # what the file takes on the host's volume

    @property
    def slot(self) -> str:
        return f"{self.controller_type} {self.controller}:{self.location}"


@dataclass(frozen=True)
class IntegrationService:
    id: str
    name: str  # the host's (localised) name
    enabled: bool
    status: str  # Ok, NoContact, ...; "" while the VM is off

    @property
    def title(self) -> str:
        return INTEGRATION_NAMES.get(self.id.upper(), self.name)


@dataclass(frozen=True)
class Metering:
    """Hyper-V resource metering (Measure-VM): averages since it was enabled or last reset."""

    seconds: int
    cpu_mhz: int
    memory_mb: int
    memory_min_mb: int
    memory_max_mb: int


@dataclass(frozen=True)
class VMDetails:
    host: str
    id: str
    name: str
    state: str
    status: str
    generation: int
    version: str  # the configuration version
    processors: int
    cpu_pct: int
    memory: Memory
    adapters: tuple[NetworkAdapter, ...]
    disks: tuple[VirtualDisk, ...]
    disk_error: str  # why the disk sizes could not be read ("" when they could)
    integration: tuple[IntegrationService, ...]
    secure_boot: bool | None  # None on generation 1 (no UEFI)
    secure_boot_template: str
    tpm: bool | None  # None when the host could not say
    guest_os: str  # "" when the guest does not report it
    replication_mode: str
    replication_state: str
    replication_health: str
    metering: Metering | None  # None where resource metering is off

    @classmethod
    def from_json(cls, host: str, data: Any) -> VMDetails:
        r = _Reader(host, "the VM's details", data)
        memory = r.part("memory")
        replication = r.part("replication")
        assert memory is not None and replication is not None
        metering = r.part("metering", optional=True)
        adapters = []
        for item in r.items("adapters"):
            a = _Reader(host, "a network adapter", item)
            adapters.append(NetworkAdapter(a.text("name"), a.text("switch"), a.text("mac"),
                                           a.texts("ips"), a.text("vlan_mode"),
                                           a.number("vlan_id", optional=True)))
        disks = []
        for item in r.items("disks"):
            d = _Reader(host, "a disk", item)
            disks.append(VirtualDisk(d.text("path"), d.text("controller_type"), d.whole("controller"),
                                     d.whole("location"), d.text("type"),
                                     d.number("size_bytes", optional=True),
                                     d.number("file_bytes", optional=True)))
        services = []
        for item in r.items("integration"):
            i = _Reader(host, "an integration service", item)
            services.append(IntegrationService(i.text("id"), i.text("name"),
                                               bool(i.flag("enabled")), i.text("status")))
        return cls(
            host=host, id=r.text("id").lower(), name=r.text("name"), state=r.text("state"),
            status=r.text("status"), generation=r.whole("generation"), version=r.text("version"),
            processors=r.whole("processors"), cpu_pct=r.whole("cpu_pct"),
            memory=Memory(memory.whole("startup"), memory.whole("minimum"),
                          memory.whole("maximum"), memory.whole("assigned"),
                          memory.whole("demand"), bool(memory.flag("dynamic"))),
            adapters=tuple(adapters), disks=tuple(disks), disk_error=r.text("disk_error"),
            integration=tuple(services), secure_boot=r.flag("secure_boot", optional=True),
            secure_boot_template=r.text("secure_boot_template"),
            tpm=r.flag("tpm", optional=True), guest_os=r.text("guest_os"),
            replication_mode=replication.text("mode"), replication_state=replication.text("state"),
            replication_health=replication.text("health"),
            metering=None if metering is None else Metering(
                metering.whole("seconds"), metering.whole("cpu_mhz"), metering.whole("memory_mb"),
                metering.whole("memory_min_mb"), metering.whole("memory_max_mb")))


@dataclass(frozen=True)
class Thumbnail:
    """A VM's screen: raw RGB 565 pixels, two bytes each, little-endian, row by row from the top;
    `pixels` is empty when the VM shows none (off, saved: `code` is the method's return value)."""

    host: str
    vm_id: str
    state: str
    width: int
    height: int
    pixels: bytes
    code: int | None

    @classmethod
    def from_json(cls, host: str, data: Any) -> Thumbnail:
        r = _Reader(host, "the VM's thumbnail", data)
        width, height = r.whole("width"), r.whole("height")
        if r.text("format") != "rgb565":
            raise HostError(f"{host} answered a thumbnail in an unknown format "
                            f"{r.text('format')!r}.", host=host)
        image = r.text("image")
        try:
            pixels = bytes.fromhex(image)
        except ValueError:
            raise HostError(f"{host} answered a thumbnail that is not hexadecimal.",
                            host=host) from None
        if pixels and len(pixels) != 2 * width * height:
            raise HostError(f"{host} answered a thumbnail of {len(pixels)} bytes for "
                            f"{width}x{height} pixels (expected {2 * width * height}).", host=host)
        return cls(host, r.text("id").lower(), r.text("state"), width, height, pixels,
                   r.number("code", optional=True))


def check_size(width: int, height: int) -> None:
    """A thumbnail size the hosts take (console.jea.THUMBNAIL_LIMITS), or InvalidParameter."""
    low_w, high_w, low_h, high_h = THUMBNAIL_LIMITS
    if not (low_w <= width <= high_w and low_h <= height <= high_h):
        raise InvalidParameter(f"A thumbnail of {width}x{height} pixels is outside "
                               f"{low_w}x{low_h} to {high_w}x{high_h}.")

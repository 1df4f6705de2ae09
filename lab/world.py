"""The lab's world: accounts, hosts, VMs and ISO libraries, from resources/lab/lab.toml.

`load_world()` reads the file (docs/lab-world.md's demo world by default), `generated_world()`
makes a large plain one for benchmarks, and `save_state()` / `restore_state()` keep what a person
did in the demo across a restart (a JSON file of every host's VMs).

File format (see resources/lab/lab.toml): top-level `domain`, `dns_domain`, `domain_sid`;
`[durations]` (seconds per cmdlet, lab.hyperv.Durations); `[[users]]` with `name`, `rid`,
`password`, `enabled`; `[filesystem]` with `library`, `files` ({path, size_gib}), `reparse_points`
({junction = target}) and `deduplicated` (files stored as deduplication reparse points) shared by
every host; `[[hosts]]` with `name`, `admins`, `users` (absent: every account may connect),
`cluster` (the failover cluster it is a node of), `os_build`, `last_update_days`, `volume_path`,
`total_gib`, `free_gib`, `critical_free_gib`, `checkpoint_growth_gib`, `inventory_cost_s`,
`enhanced_session` (Set-VMHost -EnableEnhancedSessionMode), `console_access` (console access
entries, `{vm = id, user = "LAB\\name"}`),
`[hosts.hardening]` (lab.hardening),
`[hosts.faults]` (lab.faults.Faults fields), `[hosts.durations]` (overrides), and
`[[hosts.vms]]` with the fields of lab.hyperv.VM (`*_gib` for sizes), `dvd_drives`,
`current_checkpoint` and `[[hosts.vms.checkpoints]]` (`id`, `name`, `type` as Hyper-V's
SnapshotType names it, `parent`, `age_days`, `size_gib`, `captured_state`, `holds_memory`,
`automatic`; the type Production stands for a Standard checkpoint without memory).
"""
from __future__ import annotations

import json
import os
import tomllib
import uuid
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from console.errors import ConfigError
from console.paths import LAB_DATA
from .faults import Faults
from . import hardening
from .hyperv import GiB, Checkpoint, Clock, DvdDrive, Durations, Host, VM

DEFAULT_WORLD = LAB_DATA / "lab.toml"
STATE_VERSION = 1
_VM_KEYS = {f.name for f in fields(VM)} - {"checkpoints", "dvd_drives", "current_checkpoint_id",
                                           "running_since", "merges", "seq"}


@dataclass(frozen=True)
class LabAccount:
    name: str  # the user name without domain, e.g. henry
    sid: str
    password: str
    enabled: bool = True


@dataclass
class LabHost:
    """A simulated host and what its WS-Management server needs to know about it."""

    host: Host
    admins: list[str] = field(default_factory=list)
    users: list[str] | None = None  # None: every account of the domain may connect
    faults: Faults = field(default_factory=Faults)
    cluster: str | None = None  # the failover cluster this host is a node of

    @property
    def name(self) -> str:
        return self.host.name


@dataclass
class World:
    domain: str = "LAB"
    dns_domain: str = "lab.example"
    domain_sid: str = "S-1-5-21-1000-2000-3000"
    accounts: list[LabAccount] = field(default_factory=list)
    hosts: list[LabHost] = field(default_factory=list)

    def host(self, name: str) -> LabHost:
        found = next((h for h in self.hosts if h.name.lower() == name.lower()), None)
        if found is None:
            raise ConfigError(f"The lab has no host {name}.")
        return found

    def migrate(self, vm_id: str, target: str) -> VM:
        """Live-migrate a clustered VM to another node of its cluster, as failover clustering
        does: the same VM (id, state, checkpoints, notes) is then reported by `target` only."""
        node = self.host(target)
        source = next((h for h in self.hosts if any(v.id == vm_id.lower() for v in h.host.vms)),
                      None)
        if source is None:
            raise ConfigError(f"No lab host runs a VM {vm_id}.")
        vm = source.host.vm(vm_id)
        if not vm.clustered:
            raise ConfigError(f"{vm.name} is not a clustered role: only those move between nodes.")
        if source.cluster is None or source.cluster != node.cluster or source is node:
            raise ConfigError(f"{source.name} and {node.name} are not two nodes of one cluster.")
        node.host.adopt(source.host.release(vm_id))
        return vm


def load_world(path: Path | None = None, durations: Durations | None = None,
               clock: Clock | None = None) -> World:
    """The world of a lab file. `durations` replaces every host's cmdlet durations (tests)."""
    path = path or DEFAULT_WORLD
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"The lab file {path} cannot be read: {error}", path=str(path)) from error
    try:
        return _world(data, durations, clock or Clock())
    except (KeyError, TypeError, ValueError) as error:
        raise ConfigError(f"The lab file {path} is not valid: {error!r}", path=str(path)) from error


def _world(data: dict[str, Any], durations: Durations | None, clock: Clock) -> World:
    world = World(domain=data.get("domain", "LAB"), dns_domain=data.get("dns_domain", "lab.example"),
                  domain_sid=data.get("domain_sid", "S-1-5-21-1000-2000-3000"))
    world.accounts = [LabAccount(u["name"], f"{world.domain_sid}-{int(u['rid'])}", u["password"],
                                 bool(u.get("enabled", True))) for u in data.get("users", [])]
    base = Durations.from_dict(data.get("durations", {}))
    fs = data.get("filesystem", {})
    now = clock.utcnow()
    for h in data.get("hosts", []):
        host = Host(
            name=h["name"], os_build=h.get("os_build", "20348.2340"),
            last_update_days=h.get("last_update_days"), volume_path=h.get("volume_path", "D:\\VMs"),
            total_bytes=_gib(h.get("total_gib", 2048)),
            memory_total_bytes=_gib(h.get("memory_gib", 256)),
            critical_free_bytes=_gib(h.get("critical_free_gib", 1)),
            checkpoint_growth_bytes=_gib(h.get("checkpoint_growth_gib", 2)),
            library=list(h.get("library", fs.get("library", ["D:\\ISO\\"]))),
            files={f["path"]: _gib(f.get("size_gib", 0)) for f in h.get("files", fs.get("files", []))},
            reparse_points=dict(h.get("reparse_points", fs.get("reparse_points", {}))),
            deduplicated=set(h.get("deduplicated", fs.get("deduplicated", []))),
            durations=durations or Durations.from_dict(h.get("durations", {}), base),
            inventory_cost_s=float(h.get("inventory_cost_s", 0.0)), clock=clock)
        host.vms = [_vm(v, now, clock) for v in h.get("vms", [])]
        # Trustees resolve through the domain's accounts; `console_access` seeds entries
        # ({vm = id, user = "LAB\\name"}) as an administrator's Grant-VMConnectAccess left them.
        host.accounts = {f"{world.domain}\\{a.name}".lower(): a.sid for a in world.accounts}
        host.enhanced_session = bool(h.get("enhanced_session", False))
        for entry in h.get("console_access", []):
            host.grant_console(host.vm(str(uuid.UUID(entry["vm"]))), [entry["user"]])
        host.hardening = hardening.from_data(
            h.get("hardening", {}), host.name, world.domain, world.domain_sid,
            {f"{world.domain}\\{a.name}".lower(): a.sid for a in world.accounts},
            h.get("admins", []))
        used = sum(vm.disk_bytes + vm.checkpoint_bytes for vm in host.vms)
        free = _gib(h["free_gib"]) if "free_gib" in h else host.total_bytes // 2
        host.other_used_bytes = max(0, host.total_bytes - used - free)
        world.hosts.append(LabHost(host, admins=list(h.get("admins", [])), users=h.get("users"),
                                   faults=Faults(**h.get("faults", {})), cluster=h.get("cluster")))
    return world


def _vm(v: dict[str, Any], now: datetime, clock: Clock) -> VM:
    values = {k: v[k] for k in _VM_KEYS if k in v}
    for key in ("memory", "disk"):
        if f"{key}_gib" in v:
            values[f"{key}_bytes"] = _gib(v[f"{key}_gib"])
    unknown = set(v) - _VM_KEYS - {"memory_gib", "disk_gib", "dvd_drives", "checkpoints",
                                   "current_checkpoint"}
    if unknown:
        raise ValueError(f"VM {v.get('name')}: unknown keys {sorted(unknown)}")
    vm = VM(**values)
    vm.id = str(uuid.UUID(vm.id))
    vm.dvd_drives = [DvdDrive(d["controller_type"], int(d["controller"]), int(d["location"]),
                              d.get("path") or None) for d in v.get("dvd_drives", [])]
    vm.checkpoints = [Checkpoint(
        id=str(uuid.UUID(c["id"])), name=c["name"], type=c.get("type", "Production"),
        parent_id=c.get("parent"), created=now - timedelta(days=float(c.get("age_days", 1))),
        size_bytes=_gib(c.get("size_gib", 1)), captured_state=c.get("captured_state", "Running"),
        holds_memory=bool(c.get("holds_memory", True)), automatic=bool(c.get("automatic", False)),
    ) for c in v.get("checkpoints", [])]
    vm.current_checkpoint_id = v.get("current_checkpoint") or (
        vm.checkpoints[-1].id if vm.checkpoints else None)
    if vm.state in ("Running", "Paused", "PausedCritical"):
        vm.running_since = clock.now() - float(v.get("uptime_days", 3)) * 86400
    return vm


def _gib(value: float) -> int:
    return int(float(value) * GiB)


def generated_world(hosts: int, vms_per_host: int, durations: Durations | None = None,
                    clock: Clock | None = None, admins: tuple[str, ...] = ("adam",)) -> World:
    """A plain world for benchmarks: hosts HV001..., each with VMs vm-<host>-<n> in mixed states,
    the demo's accounts (so the same credentials work), and the standard ISO library."""
    demo = load_world(durations=durations, clock=clock)
    clock = clock or Clock()
    now = clock.utcnow()
    states = ("Running", "Running", "Off", "Saved", "Running", "Paused")
    world = World(demo.domain, demo.dns_domain, demo.domain_sid, list(demo.accounts))
    template = demo.hosts[0].host
    for i in range(1, hosts + 1):
        name = f"HV{i:03d}"
        host = Host(name=name, library=list(template.library), files=dict(template.files),
                    reparse_points=dict(template.reparse_points),
                    deduplicated=set(template.deduplicated), durations=durations or template.durations,
                    clock=clock)
        for n in range(1, vms_per_host + 1):
            vm_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"hvconsole-lab/{name}/{n}"))
            vm = VM(id=vm_id, name=f"vm-{name.lower()}-{n:03d}", state=states[n % len(states)],
                    dvd_drives=[DvdDrive("SCSI", 0, 1)])
            if n % 3 == 0:
                cid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"hvconsole-lab/{name}/{n}/c1"))
                vm.checkpoints = [Checkpoint(cid, "Before update", "Production", None,
                                             now - timedelta(days=n % 40 + 1), 2 * GiB, "Running")]
                vm.current_checkpoint_id = cid
            if vm.state in ("Running", "Paused"):
                vm.running_since = clock.now() - 3600.0 * n
            host.vms.append(vm)
        world.hosts.append(LabHost(host, admins=list(admins)))
    return world


# --- state across restarts ------------------------------------------------------------------------

def save_state(world: World, path: Path) -> Path:
    """Write every host's VMs (states, checkpoints, media) as JSON, atomically."""
    hosts: dict[str, Any] = {}
    for lab_host in world.hosts:
        host = lab_host.host
        now = host.clock.now()
        vms = []
        for vm in host.snapshot():
            vms.append({
                **{k: getattr(vm, k) for k in sorted(_VM_KEYS)},
                "uptime_s": (now - vm.running_since) if vm.running_since is not None else None,
                "current_checkpoint_id": vm.current_checkpoint_id,
                "merges": [[max(0.0, t - now), b] for t, b in vm.merges],
                "dvd_drives": [vars(d) for d in vm.dvd_drives],
                "checkpoints": [{**vars(c), "created": c.created.isoformat()} for c in vm.checkpoints],
            })
        hosts[host.name] = {"vms": vms}
    document = {"version": STATE_VERSION,
                "saved": datetime.now(UTC).isoformat(), "hosts": hosts}
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_suffix(path.suffix + ".tmp")
    temp.write_text(json.dumps(document, indent=1), encoding="utf-8")
    os.replace(temp, path)
    return path


def restore_state(world: World, path: Path) -> bool:
    """Put the VMs saved in `path` back on the world's hosts of the same names. False when there
    is no state file yet; ConfigError when it cannot be used."""
    if not path.exists():
        return False
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if document.get("version") != STATE_VERSION:
            raise ValueError(f"version {document.get('version')!r}, expected {STATE_VERSION}")
        for name, saved in document["hosts"].items():
            lab_host = next((h for h in world.hosts if h.name == name), None)
            if lab_host is None:
                continue
            host = lab_host.host
            now = host.clock.now()
            vms = []
            for v in saved["vms"]:
                vm = VM(**{k: v[k] for k in _VM_KEYS if k in v})
                vm.current_checkpoint_id = v.get("current_checkpoint_id")
                vm.running_since = now - v["uptime_s"] if v.get("uptime_s") is not None else None
                vm.merges = [(now + float(t), int(b)) for t, b in v.get("merges", [])]
                vm.dvd_drives = [DvdDrive(**d) for d in v.get("dvd_drives", [])]
                vm.checkpoints = [Checkpoint(**{**c, "created": datetime.fromisoformat(c["created"])})
                                  for c in v.get("checkpoints", [])]
                vms.append(vm)
            host.replace_vms(vms)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ConfigError(f"The lab state {path} cannot be used ({error}); delete it to start "
                          f"from the lab file again.", path=str(path)) from error
    return True

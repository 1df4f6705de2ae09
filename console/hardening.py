"""A host's hardening, as host_hardening.ps1 reads it (facts: resources/powershell/facts/host.toml
[hardening]), and the review's findings about it: the guidance asks for as little software as
possible on a Hyper-V host (Server Core, no role beyond Hyper-V), domain accounts and groups
rather than local ones, no Remote Desktop for people the console serves, and no endpoint besides
Windows PowerShell's own and the console's JEA endpoint. Also the patch level: a host behind the
newest build and update revision the other hosts of the same Windows release have.

Everything here is a plain value computed without I/O; the hosts are read by the admin
endpoint's host_hardening operation or the JEA function Get-HvcHostHardening (policy.read).
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from .inventory import HostFacts
from .powershell import facts

_FACTS = facts.host("hardening")
ADMINISTRATORS: str = _FACTS["groups"]["administrators"]
HYPERV_ADMINISTRATORS: str = _FACTS["groups"]["hyperv_administrators"]
REMOTE_DESKTOP_USERS: str = _FACTS["groups"]["remote_desktop_users"]
GROUP_NAMES = {ADMINISTRATORS: "Administrators", HYPERV_ADMINISTRATORS: "Hyper-V Administrators",
               REMOTE_DESKTOP_USERS: "Remote Desktop Users"}
SERVER_CORE: str = _FACTS["installation_core"]
# What a Hyper-V host may have installed: the role and its tools, a fresh installation's own
# features, and what a cluster node adds. Names compare without regard to case.
EXPECTED_FEATURES = frozenset(f.lower() for key in ("features_hyperv", "features_base",
                                                     "features_cluster") for f in _FACTS[key])
DEFAULT_ENDPOINTS = frozenset(e.lower() for e in _FACTS["default_endpoints"])
BUILTIN_ADMINISTRATOR_RID = "500"  # the built-in Administrator: always in Administrators


@dataclass(frozen=True)
class Member:
    """A member of a local group: `source` is its PrincipalSource (Local, ActiveDirectory,
    AzureAD, MicrosoftAccount; "" where Windows does not say, before Server 2016)."""

    name: str
    sid: str
    source: str = ""
    object_class: str = ""

    def is_domain(self, host: str) -> bool:
        """A domain account or group: PrincipalSource says so, or (where it is blank) the name
        is not the host's own HOST\\name."""
        if self.source:
            return self.source.lower() == "activedirectory"
        prefix = self.name.split("\\", 1)[0].lower() if "\\" in self.name else ""
        return bool(prefix) and prefix not in (host.lower(), "builtin", "nt authority")

    @property
    def builtin_administrator(self) -> bool:
        return self.sid.startswith("S-1-5-21-") and self.sid.rsplit("-", 1)[1] == \
            BUILTIN_ADMINISTRATOR_RID


@dataclass(frozen=True)
class LocalGroup:
    sid: str
    members: tuple[Member, ...] = ()
    error: str = ""  # the group could not be read (e.g. a member whose SID no longer resolves)

    @property
    def name(self) -> str:
        return GROUP_NAMES.get(self.sid, self.sid)


@dataclass(frozen=True)
class Listener:
    transport: str
    port: int | None
    address: str = "*"
    enabled: bool = True


@dataclass(frozen=True)
class HostHardening:
    name: str
    installation_type: str = ""
    os_build: str = ""
    features: tuple[str, ...] | None = None  # installed roles and features; None: not read
    local_users: tuple[tuple[str, str], ...] | None = None  # enabled local accounts (name, SID)
    groups: tuple[LocalGroup, ...] = ()
    rdp_enabled: bool | None = None  # None: not read
    rdp_by_policy: bool = False  # Group Policy decides it
    listeners: tuple[Listener, ...] | None = None
    endpoints: tuple[str, ...] | None = None  # registered session configurations
    unread: tuple[tuple[str, str], ...] = ()  # (part, the error that kept it from being read)

    def group(self, sid: str) -> LocalGroup | None:
        return next((g for g in self.groups if g.sid == sid), None)

    @property
    def extra_features(self) -> tuple[str, ...]:
        return tuple(f for f in self.features or () if f.lower() not in EXPECTED_FEATURES)

    def unexpected_endpoints(self, console_endpoint: str) -> tuple[str, ...]:
        allowed = DEFAULT_ENDPOINTS | {console_endpoint.lower()}
        return tuple(e for e in self.endpoints or () if e.lower() not in allowed)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> HostHardening:
        def listed(key: str) -> list[Any] | None:
            value = d.get(key)
            return None if value is None else [v for v in value if v is not None]

        features = listed("features")
        users = listed("local_users")
        listeners = listed("listeners")
        endpoints = listed("endpoints")
        unread = d.get("unread") or {}
        return cls(
            name=str(d.get("name") or ""), installation_type=str(d.get("installation_type") or ""),
            os_build=str(d.get("os_build") or ""),
            features=None if features is None else tuple(str(f) for f in features),
            local_users=None if users is None else tuple(
                (str(u.get("name") or ""), str(u.get("sid") or "")) for u in users
                if isinstance(u, dict)),
            groups=tuple(LocalGroup(str(g.get("sid") or "").upper(), tuple(
                Member(str(m.get("name") or ""), str(m.get("sid") or ""),
                       str(m.get("source") or ""), str(m.get("class") or ""))
                for m in g.get("members") or () if isinstance(m, dict)), str(g.get("error") or ""))
                for g in d.get("groups") or () if isinstance(g, dict)),
            rdp_enabled=None if d.get("rdp_enabled") is None else bool(d.get("rdp_enabled")),
            rdp_by_policy=bool(d.get("rdp_by_policy")),
            listeners=None if listeners is None else tuple(
                Listener(str(x.get("transport") or "").upper(), _port(x.get("port")),
                         str(x.get("address") or "*"), bool(x.get("enabled", True)))
                for x in listeners if isinstance(x, dict)),
            endpoints=None if endpoints is None else tuple(
                str(e.get("name") if isinstance(e, dict) else e) for e in endpoints),
            unread=tuple(sorted((str(k), str(v)) for k, v in unread.items()))
            if isinstance(unread, dict) else ())


def _port(value: Any) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


# --- findings -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Finding:
    """A finding as console.review.Finding holds it (the review, which imports this module,
    turns each into its own)."""

    kind: str
    severity: str
    summary: str
    objects: tuple[str, ...]
    fix: str


def hardening_findings(host: str, h: HostHardening, console_endpoint: str) -> list[Finding]:
    """The findings about one host's hardening (each kind: docs/review.md)."""
    out: list[Finding] = []
    if h.installation_type and h.installation_type.lower() != SERVER_CORE.lower():
        out.append(Finding(
            "host-desktop", "medium",
            f"{host} runs the full desktop experience (installation type "
            f"{h.installation_type}), not Server Core.", (host,),
            f"Reinstall {host} as Server Core when it is next rebuilt: less software to patch "
            "and attack; the console and Hyper-V's PowerShell need no desktop."))
    extra = h.extra_features
    if extra:
        out.append(Finding(
            "host-extra-features", "medium",
            f"{host} has {len(extra)} role(s) or feature(s) installed beyond Hyper-V and what it "
            f"needs: {', '.join(extra)}.", (host, *extra),
            f"Move those services to their own servers (VMs) and remove them from {host} "
            "(Uninstall-WindowsFeature)."))
    for sid in (ADMINISTRATORS, HYPERV_ADMINISTRATORS):
        group = h.group(sid)
        if group is None:
            continue
        local = [m for m in group.members if not m.is_domain(host)
                 and not (sid == ADMINISTRATORS and m.builtin_administrator)]
        if local:
            out.append(Finding(
                "host-local-members", "high",
                f"{host}: {len(local)} local account(s) are members of {group.name}: "
                f"{', '.join(m.name for m in local)}; use domain groups.",
                (host, *(m.name for m in local)),
                f"Remove the local accounts from {group.name} on {host} and add the domain group "
                "of the people who need it: a domain account is disabled everywhere at once, and "
                "reviewed centrally."))
    users = [n for n, s in h.local_users or () if not s.endswith("-" + BUILTIN_ADMINISTRATOR_RID)]
    if users:
        out.append(Finding(
            "host-local-accounts", "low",
            f"{host} has {len(users)} enabled local account(s) besides the built-in "
            f"Administrator: {', '.join(users)}.", (host, *users),
            "Disable the local accounts nobody needs (Disable-LocalUser); people sign in with "
            "their domain accounts."))
    if h.rdp_enabled:
        rdp = h.group(REMOTE_DESKTOP_USERS)
        members = rdp.members if rdp else ()
        how = " (set by Group Policy)" if h.rdp_by_policy else ""
        for m in members:
            out.append(Finding(
                "host-rdp-user", "medium",
                f"{m.name} may log on to {host} over RDP{how}; the console makes that "
                "unnecessary.", (host, m.name),
                f"Remove {m.name} from Remote Desktop Users on {host}, and give the VMs "
                "through the console's grants instead."))
        if not members:
            out.append(Finding(
                "host-rdp-enabled", "low",
                f"Remote Desktop is allowed on {host}{how} (for its administrators only).",
                (host,),
                "Turn Remote Desktop off where administrators manage the host remotely "
                "(PowerShell, Windows Admin Center)."))
    unexpected = h.unexpected_endpoints(console_endpoint)
    if unexpected:
        out.append(Finding(
            "host-unexpected-endpoint", "medium",
            f"{host} has {len(unexpected)} PowerShell endpoint(s) that are neither Windows "
            f"PowerShell's own nor the console's: {', '.join(unexpected)}.", (host, *unexpected),
            "Check who registered each and whom its permissions admit; unregister what is not "
            "needed (Unregister-PSSessionConfiguration)."))
    unread = [*h.unread, *((f"group {g.name}", g.error) for g in h.groups if g.error)]
    if unread:
        out.append(Finding(
            "host-hardening-unread", "low",
            f"{host} did not answer every part of its hardening: "
            f"{'; '.join(f'{part}: {error}' for part, error in unread)}.", (host,),
            "Read it through the administrators' endpoint, or check those parts on the host."))
    return out


# --- patch level ------------------------------------------------------------------------------------

_BUILD = re.compile(r"(\d+)\.(\d+)")


def build_of(os_build: str) -> tuple[int, int] | None:
    """(build, update revision) of "20348.2340"; None when the host did not say."""
    match = _BUILD.fullmatch(os_build.strip())
    return (int(match.group(1)), int(match.group(2))) if match else None


def patch_findings(facts_of: Mapping[str, HostFacts], today: date,
                   max_age_days: int) -> list[Finding]:
    """Each host behind the newest update revision another host of the same Windows release
    (the same build number) runs, and how long it has waited: since the day that host installed
    its newest update (HostFacts.last_update), the first day the newer level is known to have
    been available here. A later revision is always cumulative, so the newest one is the level.
    High when it has waited longer than `max_age_days` (ReviewSettings.max_update_age_days)."""
    levels = {h: b for h, f in facts_of.items() if (b := build_of(f.os_build)) is not None}
    out: list[Finding] = []
    for host in sorted(levels, key=str.lower):
        build, ubr = levels[host]
        ahead = [(u, h) for h, (b, u) in levels.items() if b == build and u > ubr]
        if not ahead:
            continue
        newest = max(u for u, _ in ahead)
        leaders: Sequence[str] = sorted((h for u, h in ahead if u == newest), key=str.lower)
        days = [day.date() for h in leaders if (day := facts_of[h].last_update) is not None]
        since = min(days) if days else None
        waited = (today - since).days if since else None
        how_long = (f"has waited {waited} day(s), since {leaders[0]} installed it on {since}"
                    if waited is not None else "has waited since an unknown day")
        out.append(Finding(
            "patch-behind", "high" if waited is not None and waited > max_age_days
            else "medium",
            f"{host} runs {build}.{ubr}, behind {build}.{newest} on {', '.join(leaders)}: it "
            f"{how_long}.", (host, *leaders),
            f"Install the cumulative update that {', '.join(leaders)} run on {host} (plan its "
            "downtime with the owners first)."))
    return out


def summary(h: HostHardening) -> list[tuple[str, str]]:
    """What a person reads of a host's hardening: (what, value) rows for the review window and
    the text report."""
    def members(sid: str) -> str:
        group = h.group(sid)
        if group is None:
            return "not read"
        if group.error:
            return f"not read: {group.error}"
        return ", ".join(f"{m.name} ({'domain' if m.is_domain(h.name) else 'local'})"
                         for m in group.members) or "nobody"

    def listed(values: Sequence[str] | None) -> str:
        return "not read" if values is None else (", ".join(values) or "none")

    rdp = ("not read" if h.rdp_enabled is None else
           ("allowed" if h.rdp_enabled else "off") + (" (Group Policy)" if h.rdp_by_policy else ""))
    listeners = None if h.listeners is None else [
        f"{x.transport} {x.port if x.port is not None else '?'}"
        + ("" if x.enabled else " (disabled)") for x in h.listeners]
    return [
        ("Installation", h.installation_type or "unknown"),
        ("Build", h.os_build or "unknown"),
        ("Extra features", listed(h.extra_features if h.features is not None else None)),
        ("Enabled local accounts", listed([n for n, _ in h.local_users]
                                          if h.local_users is not None else None)),
        ("Administrators", members(ADMINISTRATORS)),
        ("Hyper-V Administrators", members(HYPERV_ADMINISTRATORS)),
        ("Remote Desktop", rdp),
        ("Remote Desktop Users", members(REMOTE_DESKTOP_USERS)),
        ("WinRM listeners", listed(listeners)),
        ("Endpoints", listed(h.endpoints)),
    ]

"""What a lab host reports of its hardening (resources/powershell/host_hardening.ps1 reads it):
its installation type, the roles and features installed, local accounts, the members of three
local groups with their PrincipalSource, Remote Desktop, the WinRM listeners and the session
configurations, as Windows' own cmdlets and registry answer them (host.toml [hardening]).

World data (resources/lab/lab.toml), per host, `[hosts.hardening]`:
`installation_type` ("Server Core" or "Server"), `features` (installed beyond the Hyper-V role and
a fresh installation's own: the lab adds those), `local_users` ([{name, enabled}]; the built-in
Administrator, RID 500, is always there), `administrators`, `hyperv_administrators`,
`remote_desktop_users` (member names: HOST\\name is a local account, DOMAIN\\name a domain one),
`rdp` (Remote Desktop allowed), `rdp_policy` (Group Policy's value, when set), `listeners`
([{transport, port}]; default HTTP 5985) and `endpoints` (session configurations besides
Windows PowerShell's defaults).
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from console.jea import ENDPOINT_NAME
from console.powershell import facts
from .pwsh import convert as cv
from .pwsh.values import Call, Command, PSEnum, PSError, PSObject

_FACTS = facts.host("hardening")
GROUPS: Mapping[str, str] = _FACTS["groups"]  # key -> well-known SID
HYPERV_FEATURES: tuple[str, ...] = tuple(_FACTS["features_hyperv"])
# What a fresh Server Core installation has by itself (the Desktop Experience adds the ISE and
# the XPS viewer): a subset of host.toml's features_base.
BASE_FEATURES = ("FileAndStorage-Services", "Storage-Services", "NET-Framework-45-Features",
                 "NET-Framework-45-Core", "NET-WCF-Services45", "NET-WCF-TCP-PortSharing45",
                 "PowerShellRoot", "PowerShell", "WoW64-Support", "Windows-Defender",
                 "System-DataArchiver")
DESKTOP_FEATURES = ("PowerShell-ISE", "XPS-Viewer")
# Features the lab offers as not installed, so Get-WindowsFeature lists more than it installs.
AVAILABLE_FEATURES = ("Web-Server", "Failover-Clustering", "Multipath-IO", "Windows-Server-Backup")
DEFAULT_ENDPOINTS = ("microsoft.powershell", "microsoft.powershell.workflow",
                     "microsoft.powershell32")
PRINCIPAL_SOURCE = "Microsoft.PowerShell.Commands.PrincipalSource"
LISTENER_TYPE = ("System.Xml.XmlElement#http://schemas.microsoft.com/wbem/wsman/1/config/listener"
                 "#Listener")
CONFIGURATION_TYPE = ("Microsoft.PowerShell.Commands.PSSessionConfigurationCommands"
                      "#PSSessionConfiguration")
_SOURCES = {name: i for i, name in enumerate(_FACTS["principal_sources"])}


@dataclass(frozen=True)
class LocalUser:
    name: str
    enabled: bool = True
    rid: int = 1000


@dataclass(frozen=True)
class Member:
    name: str  # DOMAIN\name or HOST\name
    sid: str
    source: str  # Local, ActiveDirectory, ...
    object_class: str = "User"  # User or Group


@dataclass(frozen=True)
class Listener:
    transport: str = "HTTP"
    port: int = 5985
    address: str = "*"
    enabled: bool = True


@dataclass
class Hardening:
    installation_type: str = "Server Core"
    features: list[str] = field(default_factory=list)  # installed beyond Hyper-V and the base
    local_users: list[LocalUser] = field(default_factory=lambda: [LocalUser("Administrator", True, 500)])
    groups: dict[str, list[Member]] = field(default_factory=dict)  # well-known SID -> members
    rdp: bool = False
    rdp_policy: bool | None = None  # Group Policy's setting, when one is set
    listeners: list[Listener] = field(default_factory=lambda: [Listener()])
    endpoints: list[str] = field(default_factory=list)  # besides DEFAULT_ENDPOINTS

    def installed(self) -> list[str]:
        desktop = DESKTOP_FEATURES if self.installation_type != "Server Core" else ()
        return list(dict.fromkeys([*BASE_FEATURES, *desktop, *HYPERV_FEATURES, *self.features]))


def machine_sid(host: str) -> str:
    """A host's own machine SID, the same on every run (the local accounts' prefix)."""
    digest = hashlib.sha256(host.lower().encode("utf-8")).digest()
    parts = [int.from_bytes(digest[i:i + 4], "big") % 4_000_000_000 for i in (0, 4, 8)]
    return "S-1-5-21-" + "-".join(str(p) for p in parts)


def from_data(data: Mapping[str, Any], host: str, domain: str, domain_sid: str,
              accounts: Mapping[str, str], admins: Iterable[str]) -> Hardening:
    """A host's hardening from its world data. `accounts` maps DOMAIN\\name (lower case) to its
    SID; `admins` are the host's administrators (members of Administrators, as domain users)."""
    users = [LocalUser("Administrator", True, 500)] + [
        LocalUser(str(u["name"]), bool(u.get("enabled", True)), 1000 + i)
        for i, u in enumerate(data.get("local_users", [])) if str(u["name"]).lower() != "administrator"]
    local = {u.name.lower(): u for u in users}
    machine = machine_sid(host)

    def member(name: str) -> Member:
        prefix, _, short = name.rpartition("\\")
        if prefix.lower() == host.lower():
            user = local.get(short.lower())
            if user is None:
                raise ValueError(f"{host}'s group member {name} is no local account of {host}")
            return Member(f"{host}\\{user.name}", f"{machine}-{user.rid}", "Local")
        sid = accounts.get(name.lower())
        if sid is None and short.lower() == "domain admins":
            sid = f"{domain_sid}-512"  # the domain's well-known RID
        if sid is None:  # a domain account or group the lab's directory does not hold
            rid = 1200 + int.from_bytes(hashlib.sha256(name.lower().encode()).digest()[:2], "big")
            sid = f"{domain_sid}-{rid}"
        kind = "Group" if short.lower().startswith(("domain ", "hv-")) else "User"
        return Member(name, sid, "ActiveDirectory", kind)

    default_admins = [f"{host}\\Administrator", f"{domain}\\Domain Admins",
                      *(f"{domain}\\{a}" for a in admins)]
    groups = {
        GROUPS["administrators"]: [member(n) for n in data.get("administrators", default_admins)],
        GROUPS["hyperv_administrators"]: [member(n) for n in data.get("hyperv_administrators", [])],
        GROUPS["remote_desktop_users"]: [member(n) for n in data.get("remote_desktop_users", [])],
    }
    listeners = [Listener(str(x.get("transport", "HTTP")).upper(), int(x.get("port", 5985)),
                          str(x.get("address", "*")), bool(x.get("enabled", True)))
                 for x in data.get("listeners", [{}])]
    return Hardening(str(data.get("installation_type", "Server Core")),
                     [str(f) for f in data.get("features", [])], users, groups,
                     bool(data.get("rdp", False)),
                     None if "rdp_policy" not in data else bool(data["rdp_policy"]),
                     listeners, [str(e) for e in data.get("endpoints", [])])


# --- the registry and the cmdlets --------------------------------------------------------------

_TS = "hklm:\\system\\currentcontrolset\\control\\terminal server"
_TS_POLICY = "hklm:\\software\\policies\\microsoft\\windows nt\\terminal services"


def registry(hardening: Hardening, path: str) -> Mapping[str, Any] | None:
    """The Remote Desktop keys (fDenyTSConnections: 1 denies); None for any other key."""
    key = path.lower().rstrip("\\").replace("registry::hkey_local_machine", "hklm:")
    if key == _TS:
        return {"fDenyTSConnections": 0 if hardening.rdp else 1}
    if key == _TS_POLICY and hardening.rdp_policy is not None:
        return {"fDenyTSConnections": 0 if hardening.rdp_policy else 1}
    return None


def _not_simulated(what: str) -> PSError:
    return PSError(f"The lab simulates {what} only.", "NotSimulated", "NotImplemented",
                   "System.NotImplementedException")


def commands(host_name: str, hardening: Hardening) -> list[Command]:
    """Get-WindowsFeature, Get-LocalUser, Get-LocalGroupMember, Get-WSManInstance (the listener
    configuration) and Get-PSSessionConfiguration of one host (every lab host serves the console's
    JEA endpoint, so it is registered there too)."""
    machine = machine_sid(host_name)

    def sid(value: str) -> PSObject:
        return PSObject("System.Security.Principal.SecurityIdentifier", {"Value": value}, text=value)

    def features(c: Call) -> list[PSObject]:
        if c.has("Vhd") or c.has("ComputerName"):
            raise _not_simulated("Get-WindowsFeature of the local server")
        installed = hardening.installed()
        names = [*installed, *(f for f in AVAILABLE_FEATURES if f not in installed)]
        wanted = {cv.to_str(n).lower() for n in cv.to_list(c.get("Name")) or []}
        return [PSObject("Microsoft.Windows.ServerManager.Commands.Feature", {
                    "Name": n, "DisplayName": n, "Installed": n in installed,
                    "InstallState": PSEnum("Installed" if n in installed else "Available",
                                           1 if n in installed else 0,
                                           "Microsoft.Windows.ServerManager.Commands.InstallState")},
                         text=n)
                for n in names if not wanted or n.lower() in wanted]

    def users(c: Call) -> list[PSObject]:
        if c.has("Name") or c.has("SID"):
            raise _not_simulated("Get-LocalUser of every account")
        return [PSObject("Microsoft.PowerShell.Commands.LocalUser", {
                    "Name": u.name, "Enabled": u.enabled, "SID": sid(f"{machine}-{u.rid}"),
                    "PrincipalSource": PSEnum("Local", _SOURCES["Local"], PRINCIPAL_SOURCE)},
                         text=u.name)
                for u in hardening.local_users]

    def members(c: Call) -> list[PSObject]:
        if not c.has("SID") or c.has("Member"):
            raise _not_simulated("Get-LocalGroupMember -SID")
        wanted = cv.to_str(c.get("SID")).upper()
        if wanted not in hardening.groups:
            raise PSError(f"Group {wanted} was not found.",
                          "GroupNotFound,Microsoft.PowerShell.Commands.GetLocalGroupMemberCommand",
                          "ObjectNotFound", "Microsoft.PowerShell.Commands.GroupNotFoundException")
        return [PSObject("Microsoft.PowerShell.Commands.LocalPrincipal", {
                    "Name": m.name, "SID": sid(m.sid), "ObjectClass": m.object_class,
                    "PrincipalSource": PSEnum(m.source, _SOURCES.get(m.source, 0), PRINCIPAL_SOURCE)},
                         text=m.name)
                for m in hardening.groups[wanted]]

    def wsman(c: Call) -> list[PSObject]:
        uri = cv.to_str(c.get("ResourceURI")).lower().rstrip("/")
        if uri != _FACTS["listener_resource"] or not c.get("Enumerate") or c.has("ComputerName"):
            raise _not_simulated(f"Get-WSManInstance {_FACTS['listener_resource']} -Enumerate")
        # The listener's values are XML text (System.Xml.XmlElement): Port and Enabled too.
        return [PSObject(LISTENER_TYPE, {
                    "Address": x.address, "Transport": x.transport, "Port": str(x.port),
                    "Hostname": "", "Enabled": "true" if x.enabled else "false",
                    "URLPrefix": "wsman", "CertificateThumbprint": ""})
                for x in hardening.listeners]

    def configurations(c: Call) -> list[PSObject]:
        if c.has("Name"):
            raise _not_simulated("Get-PSSessionConfiguration of every configuration")
        names = [*DEFAULT_ENDPOINTS, ENDPOINT_NAME, *hardening.endpoints]
        return [PSObject(CONFIGURATION_TYPE, {
                    "Name": n, "Permission": "BUILTIN\\Administrators AccessAllowed"}, text=n)
                for n in dict.fromkeys(names)]

    return [Command("Get-WindowsFeature", "ServerManager", features),
            Command("Get-LocalUser", "Microsoft.PowerShell.LocalAccounts", users),
            Command("Get-LocalGroupMember", "Microsoft.PowerShell.LocalAccounts", members),
            Command("Get-WSManInstance", "Microsoft.WSMan.Management", wsman),
            Command("Get-PSSessionConfiguration", "Microsoft.PowerShell.Core", configurations)]

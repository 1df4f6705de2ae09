"""What a person pastes into a support request, and the checks the first-run set-up runs.

`collect(config)` gathers versions, the configuration (it holds no secret: passwords are never
part of it) and the last lines of the log, scrubbed once more on the way out.

`check_connection(...)` signs in with a configuration not yet saved and reads every host's
inventory once, so a set-up is proven before it is written.

`discover_hyperv_hosts(...)` finds Hyper-V hosts in the directory: every Hyper-V host registers
the `Microsoft Virtual Console Service/<host>` service principal name on its computer account.
"""
from __future__ import annotations

import platform
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import tomli_w
from ldap3 import BASE, SUBTREE, Connection

from . import __version__
from .config import Config, HostConfig, user_config_path
from .directory import Directory, LdapDirectory
from .errors import DirectoryError
from .hosts import Credentials, HostPool
from .identity import Identity
from .logs import last_lines, log_file, redact, scrub
from .secrets import credential_store_available

LIBRARIES = ("pywinrm", "pypsrp", "pyspnego", "ldap3", "keyring", "platformdirs", "cryptography")
HYPERV_SPN = "Microsoft Virtual Console Service"
HYPERV_FILTER = ("(&(objectCategory=computer)(servicePrincipalName=Microsoft Virtual Console Service/*)"
                 "(!(userAccountControl:1.2.840.113556.1.4.803:=2)))")  # enabled accounts only


def versions(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """hvconsole, Python, the OS and each library; `extra` adds what the GUI knows (Qt, PySide)."""
    found = {"hvconsole": __version__,
             "Python": f"{platform.python_version()} ({platform.python_implementation()})",
             "OS": platform.platform(),
             "frozen": "yes" if getattr(sys, "frozen", False) else "no"}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    found.update(extra or {})
    return found


def collect(config: Config | None, extra_versions: Mapping[str, str] | None = None,
            log_lines: int = 200) -> str:
    """A plain-text report: versions, credential store, configuration, the last log lines."""
    out = ["# hvconsole diagnostics", "", "## Versions"]
    out += [f"{key}: {value}" for key, value in versions(extra_versions).items()]
    available, detail = credential_store_available()
    out += ["", "## Credential store", f"{'available' if available else 'unavailable'}: {detail}"]
    out += ["", "## Configuration", f"file: {user_config_path()}"]
    out.append(tomli_w.dumps(config.to_dict()).rstrip() if config else "(none yet)")
    out += ["", f"## Log: last {log_lines} lines of {log_file()}"]
    out += last_lines(log_lines) or ["(empty)"]
    return scrub("\n".join(out)) + "\n"


@dataclass(frozen=True)
class HostCheck:
    host: str
    vms: int = 0
    problem: str = ""  # the host's error sentence; empty when it answered


@dataclass(frozen=True)
class ConnectionCheck:
    identity: Identity
    hosts: tuple[HostCheck, ...]

    @property
    def ok(self) -> bool:
        return all(not h.problem for h in self.hosts)

    def summary(self) -> str:
        lines = [f"Signed in as {self.identity.name}."]
        for h in self.hosts:
            lines.append(f"{h.host}: {h.problem}" if h.problem
                         else f"{h.host}: answered, {h.vms} VM{'s' if h.vms != 1 else ''} visible.")
        if not self.hosts:
            lines.append("No hosts are configured yet.")
        return "\n".join(lines)


def check_connection(config: Config, username: str, password: str,
                     directory: Directory | None = None) -> ConnectionCheck:
    """Sign in to the configured directory, then read each host's inventory once.

    A refused sign-in raises (SignInError, DirectoryUnavailable, ConfigError); a host that fails
    is reported in its HostCheck, so one bad host name does not hide the others' answers.
    """
    redact(password)
    identity = (directory or LdapDirectory(config.directory)).sign_in(username, password)
    with HostPool(config.hosts, Credentials(identity.name, password)) as pool:
        result = pool.inventory_all()
    checks = tuple(HostCheck(name, len(r.vms), str(r.error) if r.error else "")
                   for name, r in result.hosts.items())
    return ConnectionCheck(identity, checks)


def discover_hosts(config: Config, username: str, password: str,
                   directory: Directory | None = None) -> list[HostConfig]:
    """Sign in with the person's own account and look the Hyper-V hosts up in the directory."""
    redact(password)
    with (directory or LdapDirectory(config.directory)).session(username, password) as session:
        return discover_hyperv_hosts(session)


def discover_hyperv_hosts(directory: Connection | Any, base_dn: str = "") -> list[HostConfig]:
    """The enabled computers that register the Hyper-V SPN, as host entries to confirm.

    `directory` is a bound ldap3 Connection or a directory session exposing one as `.connection`
    (and maybe its `.base_dn`). The URL suggested is WinRM's default HTTP listener, which carries
    NTLM/Kerberos with message encryption; switch to https:// where an HTTPS listener exists.
    """
    conn = getattr(directory, "connection", directory)
    if not isinstance(conn, Connection):
        raise DirectoryError("Finding hosts needs an Active Directory connection; enter the hosts "
                             "by name instead.")
    base = base_dn or getattr(directory, "base_dn", "") or _default_naming_context(conn)
    entries = conn.extend.standard.paged_search(
        base, HYPERV_FILTER, SUBTREE, attributes=["name", "dNSHostName"], paged_size=500,
        generator=True)
    hosts: dict[str, HostConfig] = {}
    for entry in entries:
        if entry.get("type") != "searchResEntry":
            continue  # referrals to other partitions
        attrs = entry["attributes"]
        name = _first(attrs.get("name")) or ""
        dns = _first(attrs.get("dNSHostName")) or name
        if name and name.lower() not in hosts:
            hosts[name.lower()] = HostConfig(name=name.upper(), url=f"http://{dns.lower()}:5985/wsman")
    return sorted(hosts.values(), key=lambda h: h.name)


def _first(value: Any) -> str | None:
    if isinstance(value, list | tuple):
        return str(value[0]) if value else None
    return str(value) if value else None


def _default_naming_context(conn: Connection) -> str:
    info = getattr(conn.server, "info", None)
    found = info.other.get("defaultNamingContext") if info is not None else None
    if not found:
        conn.search("", "(objectClass=*)", BASE, attributes=["defaultNamingContext"])
        found = conn.entries[0]["defaultNamingContext"].values if conn.entries else None
    if not found:
        raise DirectoryError("The directory did not say its naming context; set directory.base_dn.")
    return str(found[0])

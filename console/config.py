"""The console's configuration: a TOML file under the platform's config folder (platformdirs).

The policy location is set machine-wide, never per user: a person must not be able to point their
own console at a policy they wrote. It is read from one place only, `machine_config_path()` (the
platform's site config folder, which the installer creates writable by administrators only), and
only when that file, the policy it names and their folders can be changed by administrators alone
(console/trust.py); otherwise the console refuses to start with a sentence naming the file and why,
rather than fall back to anything a person wrote. A person's own file may not name a policy, nor
turn on the demo (only `hvconsole demo` and `--demo` start it). Every bad value is a ConfigError
naming its key.
"""
from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import platformdirs
import tomli_w

from .errors import ConfigError
from .trust import check_trusted

APP = "hvconsole"
ENDPOINTS = ("admin", "jea")
# How the console reaches a host's PowerShell: PSRP, a session kept open per host (both
# endpoints); WinRS, powershell.exe started for every operation (the default endpoint only, for
# hosts where only WinRS is allowed).
PROTOCOLS = ("psrp", "winrs")
# negotiate (the default): Kerberos first, NTLM only where Kerberos is not possible (allow_ntlm
# false refuses it); kerberos: Kerberos only; ntlm: NTLM only (a host outside the domain).
TRANSPORTS = ("ntlm", "kerberos", "negotiate")
_SPN = re.compile(r"^[A-Za-z][A-Za-z0-9-]*/[A-Za-z0-9][A-Za-z0-9.-]*(:[0-9]+)?$")


def user_config_path() -> Path:
    return Path(platformdirs.user_config_dir(APP, appauthor=False)) / "config.toml"


def machine_config_path() -> Path:
    """The machine-wide file (%ProgramData%\\hvconsole\\machine.toml on Windows). No setting
    moves it: tests replace this function (monkeypatch). Wherever it points, the file is used only
    when administrators alone can change it (`Config.load`)."""
    return Path(platformdirs.site_config_dir(APP, appauthor=False)) / "machine.toml"


MACHINE_FILE = "The machine-wide configuration"
POLICY_FILE = "The delegation policy"
INSECURE_DIRECTORY = ("The directory's certificate is not checked (directory."
                      "skip_certificate_check): your password goes to whichever server answers, and "
                      "anyone on the network path can read it. Use this only in a lab.")


def user_data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP, appauthor=False))


def user_log_dir() -> Path:
    return Path(platformdirs.user_log_dir(APP, appauthor=False))


@dataclass
class TrustedDomainConfig:
    """A domain the directory trusts, whose people sign in at its own domain controllers."""

    domain: str  # DNS name (child.lab.example)
    urls: list[str] = field(default_factory=list)  # ldaps://, or ldap:// with start_tls
    # NetBIOS name (CHILD): a person's CHILD\\name goes to this domain by it; derived from the
    # first label of `domain` when empty. Its controllers' own names are checked before the bind.
    netbios: str = ""
    ca_file: str = ""  # empty: the system store
    start_tls: bool = False

    @property
    def netbios_name(self) -> str:
        return (self.netbios or self.domain.split(".")[0]).upper()


@dataclass
class DirectoryConfig:
    urls: list[str] = field(default_factory=list)
    domain: str = ""  # DNS name (lab.example) added to bare user names
    # NetBIOS name (LAB): only when the domain controller does not say it (its LDAP ping does);
    # derived from the domain's first label when empty
    netbios: str = ""
    base_dn: str = ""  # discovered from the rootDSE when empty
    ca_file: str = ""
    start_tls: bool = False
    timeout: float = 5.0
    skip_certificate_check: bool = False
    # Domains this one trusts whose people sign in too ([[directory.trusted]]): each asked at its
    # own domain controllers (console/directory.py, Directories)
    trusted: list[TrustedDomainConfig] = field(default_factory=list)

    @property
    def netbios_name(self) -> str:
        return (self.netbios or self.domain.split(".")[0]).upper()

    def trusted_config(self, index: int) -> DirectoryConfig:
        """The settings a sign-in at the trusted domain `index` uses: its own controllers, CA file
        and StartTLS; this directory's timeout and certificate check (one switch for both)."""
        t = self.trusted[index]
        return DirectoryConfig(urls=list(t.urls), domain=t.domain, netbios=t.netbios_name,
                               ca_file=t.ca_file, start_tls=t.start_tls, timeout=self.timeout,
                               skip_certificate_check=self.skip_certificate_check)

    @property
    def warnings(self) -> tuple[str, ...]:
        """What makes signing in with this directory unsafe, each a sentence for the person."""
        return (INSECURE_DIRECTORY,) if self.skip_certificate_check and self.urls else ()


@dataclass
class HostConfig:
    name: str
    url: str  # https://hv01.lab.example:5986/wsman or http://...:5985/wsman (sealed messages)
    cluster: str = ""
    transport: str = "negotiate"
    # The host's Kerberos service principal when the URL's name is not the one its account holds
    # (an alias, a CNAME, an address): e.g. HTTP/hv01.lab.example. Empty: HTTP/<the URL's host>.
    spn: str = ""
    allow_ntlm: bool = True  # false: Kerberos or nothing (no NetNTLMv2 on the wire to relay)
    ca_file: str = ""
    endpoint: str = "jea"  # "jea" for delegated users, "admin" for the default endpoint
    timeout: float = 30.0
    protocol: str = "psrp"  # "winrs" (admin endpoint only): powershell.exe per operation
    console_port: int = 2179  # Virtual Machine Connection's listener on the host (vmms.exe)

    @property
    def service_principal(self) -> tuple[str, str]:
        """(service, host name) of the SPN a Kerberos ticket is asked for."""
        if self.spn:
            service, _, host = self.spn.partition("/")
            return service, host.split(":", 1)[0]
        return "HTTP", (urlparse(self.url).hostname or self.name).lower()

    @property
    def auth(self) -> str:
        """What pyspnego is asked for: negotiate, kerberos or ntlm."""
        if self.transport == "negotiate" and not self.allow_ntlm:
            return "kerberos"
        return self.transport


def _console_port(value: Any, key: str, source: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 65536:
        raise ConfigError(f"{key} must be a TCP port, a whole number from 1 to 65535 (Hyper-V's "
                          f"console listener is on 2179)", key, source)
    return value


@dataclass
class Config:
    directory: DirectoryConfig = field(default_factory=DirectoryConfig)
    hosts: list[HostConfig] = field(default_factory=list)
    policy_path: str = ""  # from the machine-wide file only (or the demo world)
    audit_path: str = ""
    refresh_seconds: int = 60
    demo: bool = False  # the demo world's own configuration; never read from a file
    # The sections the machine-wide file sets ("directory", "hosts"): administrators' choice,
    # which the person's file cannot change (Settings shows them read-only; save leaves them out).
    managed: frozenset[str] = field(default=frozenset(), compare=False)

    @classmethod
    def load(cls, path: Path | None = None, machine_path: Path | None = None) -> Config:
        """The user's file, with the policy location, and the domain controllers and hosts where
        administrators set them, from the machine-wide file (which must be administrators' only:
        ConfigError otherwise)."""
        path = path or user_config_path()
        data = _read(path) if path.exists() else {}
        config = cls.from_dict(data, str(path))
        machine = machine_path or machine_config_path()
        config.policy_path = machine_policy(machine)
        managed = machine_settings(machine)
        if managed:
            from_machine = cls.from_dict(managed, str(machine))
            if "directory" in managed:
                config.directory = from_machine.directory
            if "hosts" in managed:
                config.hosts = from_machine.hosts
            config.managed = frozenset(managed)
        return config

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<config>") -> Config:
        if "policy" in data:
            raise ConfigError(
                f"policy.path cannot be set in {source}: the delegation policy is set for the "
                f"computer by its administrators ({machine_config_path()}); remove [policy] from "
                f"this file.", "policy.path", source)
        if "demo" in data:
            raise ConfigError(
                f"demo cannot be set in {source}: the demo starts only with `hvconsole demo` (or "
                f"--demo); remove demo from this file.", "demo", source)
        _known(data, {"directory", "hosts", "audit", "ui"}, "", source)
        d = data.get("directory", {})
        if isinstance(d, dict) and "trusted_domains" in d:
            raise ConfigError(
                f"directory.trusted_domains in {source} is replaced by [[directory.trusted]] "
                f"tables, each a trusted domain whose people sign in at its own domain controllers "
                f"(domain, urls, and netbios, ca_file, start_tls where needed): see the README's "
                f"configuration section.", "directory.trusted_domains", source)
        _known(d, {f.name for f in fields(DirectoryConfig)}, "directory.", source)
        directory = DirectoryConfig(
            urls=[_url(u, f"directory.urls[{i}]", source, {"ldap", "ldaps"})
                  for i, u in enumerate(_list(d.get("urls", []), "directory.urls", source))],
            domain=_string(d.get("domain", ""), "directory.domain", source),
            netbios=_string(d.get("netbios", ""), "directory.netbios", source),
            base_dn=_string(d.get("base_dn", ""), "directory.base_dn", source),
            ca_file=_string(d.get("ca_file", ""), "directory.ca_file", source),
            start_tls=_bool(d.get("start_tls", False), "directory.start_tls", source),
            timeout=_positive(d.get("timeout", 5.0), "directory.timeout", source),
            skip_certificate_check=_bool(d.get("skip_certificate_check", False),
                                         "directory.skip_certificate_check", source),
        )
        directory.trusted = _trusted_domains(d.get("trusted", []), directory, source)
        hosts: list[HostConfig] = []
        for i, h in enumerate(_list(data.get("hosts", []), "hosts", source)):
            key = f"hosts[{i}]"
            if not isinstance(h, dict):
                raise ConfigError(f"{key} must be a table with name and url", key, source)
            _known(h, {f.name for f in fields(HostConfig)}, key + ".", source)
            if not h.get("name"):
                raise ConfigError(f"{key}.name is missing", f"{key}.name", source)
            host = HostConfig(
                name=_string(h["name"], f"{key}.name", source),
                url=_url(h.get("url", ""), f"{key}.url", source, {"http", "https"}),
                cluster=_string(h.get("cluster", ""), f"{key}.cluster", source),
                transport=_choice(h.get("transport", "negotiate"), TRANSPORTS, f"{key}.transport",
                                  source),
                spn=_spn(h.get("spn", ""), f"{key}.spn", source),
                allow_ntlm=_bool(h.get("allow_ntlm", True), f"{key}.allow_ntlm", source),
                ca_file=_string(h.get("ca_file", ""), f"{key}.ca_file", source),
                endpoint=_choice(h.get("endpoint", "jea"), ENDPOINTS, f"{key}.endpoint", source),
                timeout=_positive(h.get("timeout", 30.0), f"{key}.timeout", source),
                protocol=_choice(h.get("protocol", "psrp"), PROTOCOLS, f"{key}.protocol", source),
                console_port=_console_port(h.get("console_port", 2179), f"{key}.console_port",
                                           source),
            )
            if host.transport == "ntlm" and not host.allow_ntlm:
                raise ConfigError(f"{key}.transport ntlm contradicts {key}.allow_ntlm = false: use "
                                  f"transport = \"negotiate\" (Kerberos) or allow NTLM",
                                  f"{key}.transport", source)
            if host.protocol == "winrs" and host.endpoint == "jea":
                raise ConfigError(f"{key}.protocol winrs reaches the default endpoint only: the "
                                  f"JEA endpoint needs psrp (or set endpoint = \"admin\")",
                                  f"{key}.protocol", source)
            if host.name.lower() in {x.name.lower() for x in hosts}:
                raise ConfigError(f"host {host.name} is listed twice", f"{key}.name", source)
            hosts.append(host)
        ui = _table(data.get("ui", {}), "ui", source)
        refresh = ui.get("refresh_seconds", 60)
        if not isinstance(refresh, int) or isinstance(refresh, bool) or refresh < 5:
            raise ConfigError("ui.refresh_seconds must be a whole number of seconds, 5 or more",
                              "ui.refresh_seconds", source)
        return cls(
            directory=directory, hosts=hosts,
            audit_path=_string(_table(data.get("audit", {}), "audit", source).get("path", ""),
                               "audit.path", source),
            refresh_seconds=refresh,
        )

    def to_dict(self) -> dict[str, Any]:
        """The person's own file: never the policy location nor the demo (neither is theirs),
        nor what the machine-wide file sets."""
        out: dict[str, Any] = {"directory": asdict(self.directory),
                               "hosts": [asdict(h) for h in self.hosts],
                               "ui": {"refresh_seconds": self.refresh_seconds}}
        for section in self.managed:
            out.pop(section, None)
        if self.audit_path:
            out["audit"] = {"path": self.audit_path}
        return out

    def save(self, path: Path | None = None) -> Path:
        """Write atomically (temporary file + rename), so a crash never leaves half a file."""
        path = path or user_config_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(tomli_w.dumps(self.to_dict()), encoding="utf-8")
        os.replace(tmp, path)
        return path

    def host(self, name: str) -> HostConfig | None:
        return next((h for h in self.hosts if h.name.lower() == name.lower()), None)

    @property
    def audit_file(self) -> Path:
        return Path(self.audit_path) if self.audit_path else user_data_dir() / "audit.jsonl"


DNS_NAME = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*")
NETBIOS_NAME = re.compile(r"[^\\/:*?\"<>|.@\s]{1,15}")


def ldap_in_clear(url: str, start_tls: bool, key: str, start_tls_key: str,
                  source: str | None = None) -> ConfigError | None:
    """The error for a plain ldap:// URL without StartTLS (the password would travel in clear)."""
    if urlparse(url).scheme.lower() == "ldap" and not start_tls:
        return ConfigError(f"{key} ({url}) is plain LDAP without StartTLS, which would send the "
                           f"password in clear: use ldaps:// or set {start_tls_key} = true.",
                           key, source)
    return None


def _trusted_domains(value: Any, directory: DirectoryConfig,
                     source: str) -> list[TrustedDomainConfig]:
    """[[directory.trusted]]: each a domain and its own controllers, every name once, none of
    them the directory's own (a person's DOMAIN\\name is routed by these names)."""
    own = {n.lower(): "directory.domain" for n in (directory.domain,) if n}
    if directory.domain or directory.netbios:
        own[directory.netbios_name.lower()] = \
            "directory.netbios" if directory.netbios else "directory.domain"
    seen: dict[str, str] = {}
    trusted = []
    for i, t in enumerate(_list(value, "directory.trusted", source)):
        key = f"directory.trusted[{i}]"
        if not isinstance(t, dict):
            raise ConfigError(f"{key} must be a table with domain and urls", key, source)
        _known(t, {f.name for f in fields(TrustedDomainConfig)}, key + ".", source)
        if not t.get("domain"):
            raise ConfigError(f"{key}.domain is missing: the trusted domain's DNS name, e.g. "
                              f"child.lab.example", f"{key}.domain", source)
        domain = _string(t["domain"], f"{key}.domain", source)
        if not DNS_NAME.fullmatch(domain):
            raise ConfigError(f"{key}.domain must be a DNS domain name such as child.lab.example; "
                              f"got {domain!r}", f"{key}.domain", source)
        netbios = _string(t.get("netbios", ""), f"{key}.netbios", source)
        if netbios and not NETBIOS_NAME.fullmatch(netbios):
            raise ConfigError(f"{key}.netbios must be a NetBIOS domain name (at most 15 "
                              f"characters, no dot, space or \\); got {netbios!r}",
                              f"{key}.netbios", source)
        start_tls = _bool(t.get("start_tls", False), f"{key}.start_tls", source)
        urls = [_url(u, f"{key}.urls[{j}]", source, {"ldap", "ldaps"})
                for j, u in enumerate(_list(t.get("urls", []), f"{key}.urls", source))]
        if not urls:
            raise ConfigError(f"{key}.urls is empty: name at least one domain controller of "
                              f"{domain}, e.g. ldaps://dc1.{domain}", f"{key}.urls", source)
        for j, url in enumerate(urls):
            error = ldap_in_clear(url, start_tls, f"{key}.urls[{j}]", f"{key}.start_tls", source)
            if error is not None:
                raise error
        entry = TrustedDomainConfig(domain=domain, urls=urls, netbios=netbios,
                                    ca_file=_string(t.get("ca_file", ""), f"{key}.ca_file", source),
                                    start_tls=start_tls)
        for name, field_key in ((domain, f"{key}.domain"), (entry.netbios_name, f"{key}.netbios")):
            hint = "" if netbios or field_key.endswith(".domain") else \
                f" (derived from {domain}: set {key}.netbios to its NetBIOS name)"
            if name.lower() in own:
                raise ConfigError(f"{field_key}: {name} is the directory's own domain "
                                  f"({own[name.lower()]}), not a trusted one{hint}", field_key,
                                  source)
            if name.lower() in seen:
                raise ConfigError(f"{field_key}: {name} is already {seen[name.lower()]}{hint}",
                                  field_key, source)
        seen[domain.lower()] = f"{key}.domain"
        seen.setdefault(entry.netbios_name.lower(), f"{key}.netbios")
        trusted.append(entry)
    return trusted


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}", None, str(path)) from exc
    except OSError as exc:
        raise ConfigError(f"{path} cannot be read: {exc.strerror}", None, str(path)) from exc


def _known(table: Any, allowed: set[str], prefix: str, source: str) -> None:
    if not isinstance(table, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'the file'} must be a table", prefix, source)
    for key in table:
        if key not in allowed:
            raise ConfigError(f"unknown setting {prefix}{key} in {source}", prefix + key, source)


def _table(value: Any, key: str, source: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{key} must be a table", key, source)
    return value


def _string(value: Any, key: str, source: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{key} must be text, not {type(value).__name__}", key, source)
    return value


def _spn(value: Any, key: str, source: str) -> str:
    text = _string(value, key, source).strip()
    if text and not _SPN.match(text):
        raise ConfigError(f"{key} must be a service principal name such as HTTP/hv01.lab.example "
                          f"(service, a slash, the host's full DNS name), not {text!r}", key, source)
    return text


def _bool(value: Any, key: str, source: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{key} must be true or false", key, source)
    return value


def _positive(value: Any, key: str, source: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"{key} must be a positive number of seconds", key, source)
    return float(value)


def _list(value: Any, key: str, source: str) -> list[Any]:
    if not isinstance(value, list):
        raise ConfigError(f"{key} must be a list", key, source)
    return value


def _choice(value: Any, allowed: tuple[str, ...], key: str, source: str) -> str:
    if value not in allowed:
        raise ConfigError(f"{key} must be one of {', '.join(allowed)}; got {value!r}", key, source)
    return str(value)


def _url(value: Any, key: str, source: str, schemes: set[str]) -> str:
    text = _string(value, key, source)
    try:
        parsed = urlparse(text)
        scheme, hostname = parsed.scheme, parsed.hostname
    except ValueError:  # e.g. an unclosed [ ("Invalid IPv6 URL")
        scheme, hostname = "", None
    if scheme not in schemes or not hostname:
        wanted = " or ".join(f"{s}://" for s in sorted(schemes))
        raise ConfigError(f"{key} must be a {wanted} URL with a host name; got {text!r}", key, source)
    return text


# --- the host-line grammar of first run and Settings ----------------------------------------------

WINRM_HTTP = "http://{host}:5985/wsman"  # WinRM's default listener: NTLM/Kerberos, encrypted


def parse_host_lines(text: str, endpoint: str = "jea", *,
                     known: Iterable[HostConfig] = ()) -> list[dict[str, Any]]:
    """Host lines as config tables, one host a line: `NAME URL [CA file]`, `NAME host-name`, a URL
    alone or a host name alone (the name is then its first label in capitals; a host name gets
    WinRM's default listener). `#` starts a comment. A host already configured (`known`) keeps what
    a line cannot say (transport, endpoint, timeout, cluster); a new one gets `endpoint`."""
    previous = {h.name.lower(): h for h in known}
    hosts = []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if len(words) == 1:
            target = words[0]
            try:
                host = urlparse(target).hostname if "://" in target else target
            except ValueError:  # not a URL at all: its url setting says so when it is read
                host = None
            name = (host or target).split(".")[0].upper()
        else:
            name, target = words[0], words[1]
        old = previous.get(name.lower())
        entry: dict[str, Any] = asdict(old) if old is not None else {"endpoint": endpoint}
        entry.update(name=name, url=target if "://" in target else WINRM_HTTP.format(host=target.lower()))
        if len(words) > 2:
            entry["ca_file"] = " ".join(words[2:])
        elif old is not None:
            entry["ca_file"] = ""  # the line says the CA file: a known host's is removed with it
        hosts.append(entry)
    return hosts


def host_lines(hosts: Iterable[HostConfig]) -> str:
    """The hosts as `parse_host_lines` reads them."""
    return "\n".join(" ".join(filter(None, (h.name, h.url, h.ca_file))) for h in hosts)


def needs_first_run(config_path: Path | None = None) -> bool:
    """True when there is nothing to connect to: no configuration file, or one that names no
    domain controller. A file that exists but is broken is not a first run: loading it reports
    what is wrong, and nothing overwrites it."""
    path = config_path or user_config_path()
    if not path.exists():
        return True
    try:
        config = Config.load(path)
    except ConfigError:
        return False
    return not config.directory.urls


def machine_policy(machine: Path) -> str:
    """The policy location the machine-wide file `machine` sets ('' when it sets none or does
    not exist): ConfigError naming the file when someone other than an administrator can change
    it, or when it is broken. The policy file itself is checked when it is loaded
    (`trusted_policy`)."""
    if not machine.exists():
        return ""
    check_trusted(machine, MACHINE_FILE)
    policy = _table(_read(machine).get("policy", {}), "policy", str(machine))
    return _string(policy.get("path", ""), "policy.path", str(machine))


def machine_settings(machine: Path) -> dict[str, Any]:
    """The [directory] and [[hosts]] the machine-wide file sets (administrators' choice of
    domain controllers and hosts: a person's file cannot point the console, and their password,
    elsewhere), checked like the policy location: only administrators may change the file."""
    if not machine.exists():
        return {}
    check_trusted(machine, MACHINE_FILE)
    data = _read(machine)
    return {key: data[key] for key in ("directory", "hosts") if key in data}


def trusted_policy(path: str) -> Path:
    """The policy file `path`, once it is known that only administrators can change it and its
    folder (ConfigError naming it and why otherwise)."""
    policy = Path(path)
    check_trusted(policy, POLICY_FILE, "policy.path")
    return policy


def machine_policy_path() -> str:
    """The policy location administrators set for this computer, '' when there is none to use:
    loading the configuration reports why (`machine_policy_problem` says it for the first run)."""
    return "" if machine_policy_problem() else machine_policy(machine_config_path())


def machine_policy_problem() -> str:
    """Why this computer offers no policy (a sentence), or '' when it sets a usable one."""
    machine = machine_config_path()
    try:
        path = machine_policy(machine)
        if path:
            trusted_policy(path)
    except ConfigError as error:
        return str(error)
    if not path:
        return (f"No delegation policy is set for this computer: an administrator sets "
                f"policy.path in {machine}.")
    return ""

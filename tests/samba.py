"""A real Active Directory for the tests: Samba AD DCs on loopback, provisioned once and cached.

Two domains, each its own forest: LAB (lab.example, the directory's own, on 127.0.0.1) and OTHER
(other.example, configured as a trusted domain with its own controllers, on 127.0.0.2). There is
no AD trust between them: the console asks each at its own controllers and needs none.

Provisioning takes seconds, so each domain's provisioned folder is kept under
/tmp/hvconsole-samba-cache/<samba version>/ and each test session starts from a copy (its paths
rewritten in smb.conf). Each DC presents a certificate from a throw-away test CA of its own whose
subjectAltName holds its address, so the tests keep certificate validation on. Users and groups
are seeded over LDAPS as Administrator on every start (a tenth of a second).

Samba's LDAP ports (389, 636, 3268, 3269) are fixed, so each DC takes its own loopback address
(Linux answers on all of 127.0.0.0/8) and only one of each can run on a machine at a time; they
need root. `samba_dc` and `samba_other_dc` are the pytest session fixtures; `running_samba()`
serves the benchmarks.

Each DC is also its realm's KDC (`server services = ldap kdc`, port 88 on its address). The lab
hosts' computer accounts (HV01$, ...) hold the SPNs HTTP/hv01.lab.example and so on, and a keytab
exported from the running DC (`samba-tool domain exportkeytab`) lets a lab host accept their
tickets; `SambaDC.krb5_conf` names both KDCs, and `SambaDC.kinit` gets a person's ticket with MIT
Kerberos' own kinit (Debian's krb5-user) into a ticket cache of its own.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from ldap3 import MODIFY_ADD, MODIFY_REPLACE, NONE, Connection, Server, Tls
from ldap3.protocol.formatters.formatters import format_sid

from console.config import DirectoryConfig, TrustedDomainConfig
from lab.certs import make_ca, make_server_cert
from tests.support import service_missing

CACHE = Path("/tmp/hvconsole-samba-cache")
REALM, DOMAIN, NETBIOS = "LAB.EXAMPLE", "lab.example", "LAB"
BASE_DN = "DC=lab,DC=example"
DOMAIN_SID = "S-1-5-21-1000-2000-3000"  # the lab world's domain SID, so RIDs read alike
ADMIN_PASSWORD = "Samba-Admin-1"
LOCKOUT_THRESHOLD = 5
USERS_DN = f"CN=Users,{BASE_DN}"
GROUP_GLOBAL_SECURITY = -2147483646
PAST_FILETIME = 130_000_000_000_000_000  # 2012-12-17

# name: (display name, password, userAccountControl, extra attributes)
USERS: dict[str, tuple[str, str, int, dict[str, object]]] = {
    "alice": ("Alice Helpdesk", "alice-pass-1", 512, {"mail": "alice@lab.example"}),
    "bob": ("Bob Owner", "bob-pass-1", 512, {}),
    "carol": ("Carol Typo", "carol-pass-1", 512, {}),  # target of the wrong-password tests
    "dan": ("Dan Departed", "dan-pass-1", 514, {}),  # disabled
    "erin": ("Erin Expired", "erin-pass-1", 512, {"accountExpires": PAST_FILETIME}),
    "frank": ("Frank First", "frank-pass-1", 512, {"pwdLastSet": 0}),  # must change password
    "lucy": ("Lucy Locked", "lucy-pass-1", 512, {}),  # locked out by failed binds at seeding
    "gina": ("Gina Builder", "gina-pass-1", 512, {}),  # primary group HV-Build
}
# group: direct members (users and groups)
GROUPS: dict[str, list[str]] = {
    "HV-Helpdesk": ["alice"],
    "IT-Support": ["HV-Helpdesk"],
    "HV-Shop-Owners": ["bob", "dan"],
    "HV-Build": ["gina"],
    "Weird (Group)": ["bob"],  # filter metacharacters in a name and its DN
}
COMPUTERS = ["WS01"]
# The lab hosts' computer accounts and the SPN each holds (the WinRM listener's HTTP/<FQDN>).
HOSTS = ("HV01", "HV02", "HV03")

# The trusted domain: an alice of its own (another person, another password, another SID) in a
# group named like LAB's, so a grant's SID, not its name, decides.
OTHER_REALM, OTHER_DOMAIN, OTHER_NETBIOS = "OTHER.EXAMPLE", "other.example", "OTHER"
OTHER_SID = "S-1-5-21-4000-5000-6000"
OTHER_USERS: dict[str, tuple[str, str, int, dict[str, object]]] = {
    "alice": ("Alice Other", "other-alice-1", 512, {"mail": "alice@other.example"}),
    "oscar": ("Oscar Other", "oscar-pass-1", 512, {}),
}
OTHER_GROUPS: dict[str, list[str]] = {
    "HV-Helpdesk": ["alice"],
    "Other-Operators": ["HV-Helpdesk"],
}


@dataclass(frozen=True)
class SambaDomain:
    """One domain: its names, its DC's loopback address, and what is seeded into it."""

    realm: str  # LAB.EXAMPLE
    netbios: str  # LAB
    sid: str
    address: str  # the DC's loopback address
    interfaces: str  # smb.conf's `interfaces` for it
    host: str  # the DC's host name (dc1)
    users: dict[str, tuple[str, str, int, dict[str, object]]]
    groups: dict[str, list[str]]
    computers: tuple[str, ...] = ()
    primary_groups: tuple[tuple[str, str], ...] = ()  # (user, group)
    locked: tuple[str, ...] = ()  # locked out by failed binds at seeding
    hosts: tuple[str, ...] = ()  # computer accounts holding HTTP/<name>.<dns>
    # The cache folder's name: changed whenever provisioning changes, so an old cache is never
    # reused ("-kdc": provisioned with the KDC on).
    template: str = "template-kdc"
    pid_file: str = "hvconsole-samba.pid"

    @property
    def dns(self) -> str:
        return self.realm.lower()

    @property
    def base_dn(self) -> str:
        return ",".join(f"DC={part}" for part in self.dns.split("."))

    @property
    def users_dn(self) -> str:
        return f"CN=Users,{self.base_dn}"


LAB = SambaDomain(REALM, NETBIOS, DOMAIN_SID, "127.0.0.1", "127.0.0.1", "dc1", USERS, GROUPS,
                  tuple(COMPUTERS), (("gina", "HV-Build"),), ("lucy",), HOSTS)
# Samba takes an address that is not an interface's own only with its netmask.
OTHER = SambaDomain(OTHER_REALM, OTHER_NETBIOS, OTHER_SID, "127.0.0.2", "127.0.0.2/8", "dc2",
                    OTHER_USERS, OTHER_GROUPS, template="template-other-kdc",
                    pid_file="hvconsole-samba-other.pid")


class SambaMissing(Exception):
    """Samba cannot run here (no root, not installed, ports taken); the message says why."""


@dataclass
class SambaDC:
    folder: Path
    ca_file: Path
    pid: int
    start_seconds: float  # from nothing to seeded
    provisioned: bool  # this start provisioned (cold) rather than copied the cache
    passwords: dict[str, str] = field(default_factory=dict)
    domain: SambaDomain = LAB
    keytab: Path | None = None  # the HTTP/<host> keys of this domain's lab hosts

    @property
    def realm(self) -> str:
        return self.domain.realm

    def spn(self, host: str) -> str:
        return f"HTTP/{host.lower()}.{self.domain.dns}"

    def krb5_conf(self, folder: Path, **libdefaults: str) -> Path:
        """A krb5.conf naming both test realms' KDCs (LAB on 127.0.0.1, OTHER on 127.0.0.2), for
        KRB5_CONFIG; `libdefaults` adds or overrides [libdefaults] entries."""
        return write_krb5_conf(folder / "krb5.conf", **libdefaults)

    def kinit(self, user: str, cache: Path, *, lifetime: str | None = None,
              env: dict[str, str] | None = None) -> None:
        """`user`'s TGT from this realm's KDC into the ticket cache file `cache` (MIT kinit,
        the password on its standard input); `env` must carry KRB5_CONFIG."""
        principal = f"{user}@{self.realm}"
        cmd = ["kinit", *(["-l", lifetime] if lifetime else []), "-c", f"FILE:{cache}", principal]
        done = subprocess.run(cmd, input=self.passwords[user] + "\n", capture_output=True,
                              text=True, env={**os.environ, **(env or {})}, timeout=20)
        if done.returncode != 0:
            raise AssertionError(f"kinit {principal} failed: {done.stderr.strip()}")

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://{self.domain.address}:636"

    @property
    def ldap_url(self) -> str:
        return f"ldap://{self.domain.address}:389"

    @property
    def domain_sid(self) -> str:
        return self.domain.sid

    @property
    def base_dn(self) -> str:
        return self.domain.base_dn

    def config(self, **changes: object) -> DirectoryConfig:
        base = DirectoryConfig(urls=[self.ldaps_url], domain=self.domain.dns,
                               netbios=self.domain.netbios, ca_file=str(self.ca_file), timeout=5.0)
        return replace(base, **changes)  # type: ignore[arg-type]

    def trusted(self, **changes: object) -> TrustedDomainConfig:
        """This DC's domain as a trusted domain of another directory."""
        base = TrustedDomainConfig(domain=self.domain.dns, urls=[self.ldaps_url],
                                   ca_file=str(self.ca_file))
        return replace(base, **changes)  # type: ignore[arg-type]

    def admin(self) -> contextlib.AbstractContextManager[Connection]:
        return _admin(self.domain, self.ca_file)

    def dn(self, name: str) -> str:
        return f"CN={name},{self.domain.users_dn}"

    def unlock(self, user: str) -> None:
        """Writing lockoutTime 0 unlocks the account and clears its bad-password count."""
        with self.admin() as conn:
            conn.modify(self.dn(user), {"lockoutTime": [(MODIFY_REPLACE, [0])]})

    def bad_password_count(self, user: str) -> int:
        with self.admin() as conn:
            conn.search(self.dn(user), "(objectClass=*)", "BASE", attributes=["badPwdCount"])
            raw = conn.response[0]["raw_attributes"].get("badPwdCount") or [b"0"]
            return int(raw[0])


def samba_version() -> str:
    out = subprocess.run(["samba", "--version"], capture_output=True, text=True, check=True)
    return out.stdout.strip().split()[-1]


def _check_machine(domain: SambaDomain) -> None:
    if os.name != "posix" or os.geteuid() != 0:
        raise SambaMissing("the Samba AD DC needs root (its LDAP ports 389 and 636 are fixed)")
    for tool in ("samba", "samba-tool"):
        if not shutil.which(tool):
            raise SambaMissing(f"{tool} is not installed (apt-get install samba-ad-dc samba-ad-provision)")
    if not Path("/usr/share/samba/setup").is_dir():
        raise SambaMissing("samba-ad-provision is not installed (provisioning needs its schema files)")
    for port in (389, 636):
        with socket.socket() as s:
            if s.connect_ex((domain.address, port)) == 0:
                raise SambaMissing(f"port {port} on {domain.address} is already in use (another "
                                   f"directory server?)")


def _provision(target: Path, domain: SambaDomain) -> None:
    d = str(target)
    options = {
        "netbios name": domain.host.upper(), "interfaces": domain.interfaces,
        "bind interfaces only": "yes",
        "pid directory": f"{d}/run", "ncalrpc dir": f"{d}/run/ncalrpc",
        "winbindd socket directory": f"{d}/run/winbindd",
        "ntp signd socket directory": f"{d}/run/ntp_signd", "log file": f"{d}/log/log.%m",
        "server services": "ldap kdc", "ldap server require strong auth": "allow_sasl_over_tls",
    }
    cmd = ["samba-tool", "domain", "provision", f"--targetdir={d}", f"--realm={domain.realm}",
           f"--domain={domain.netbios}", "--server-role=dc", "--dns-backend=NONE",
           f"--adminpass={ADMIN_PASSWORD}", "--use-rfc2307", f"--host-name={domain.host}",
           f"--domain-sid={domain.sid}", *(f"--option={k}={v}" for k, v in options.items())]
    _run(cmd)
    _run(["samba-tool", "domain", "passwordsettings", "set", "-s", f"{d}/etc/smb.conf",
          "-H", f"{d}/private/sam.ldb", "--complexity=off", "--min-pwd-age=0",
          f"--account-lockout-threshold={LOCKOUT_THRESHOLD}"])


def _run(cmd: list[str]) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip().splitlines()[-5:]
        raise SambaMissing(f"{cmd[0]} {cmd[1]} {cmd[2]} failed: " + " | ".join(tail))


def _template(domain: SambaDomain) -> tuple[Path, bool]:
    """The domain's cached provisioned folder for this Samba version, provisioning it when absent."""
    template = CACHE / samba_version() / domain.template
    if (template / "etc" / "smb.conf").exists():
        return template, False
    template.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="provision-", dir=template.parent))
    _provision(work, domain)
    conf = work / "etc" / "smb.conf"
    conf.write_text(conf.read_text().replace(str(work), str(template)))
    work.rename(template)  # atomic: a half-provisioned folder is never taken for the cache
    return template, True


def _instance(template: Path, folder: Path, domain: SambaDomain) -> None:
    """A copy of the template with its paths and a certificate of a test CA of its own."""
    shutil.copytree(template, folder, symlinks=True, dirs_exist_ok=True)
    tls = folder / "tls"
    ca = make_ca(tls, f"Hyper-V Console Test CA ({domain.netbios})")
    server = make_server_cert(ca, tls, [f"{domain.host}.{domain.dns}", domain.address])
    conf = folder / "etc" / "smb.conf"
    text = conf.read_text().replace(str(template), str(folder))
    text = text.replace("[global]\n", "[global]\n\ttls enabled = yes\n"
                        f"\ttls keyfile = {server.key}\n\ttls certfile = {server.cert}\n"
                        f"\ttls cafile = {ca.cert}\n", 1)
    conf.write_text(text)
    for sub in ("run", "log"):
        (folder / sub).mkdir(exist_ok=True)


def _admin_connection(domain: SambaDomain, ca_file: Path) -> Connection:
    tls = Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(ca_file))
    server = Server(domain.address, port=636, use_ssl=True, tls=tls, get_info=NONE,
                    connect_timeout=2)
    conn = Connection(server, user=f"Administrator@{domain.dns}", password=ADMIN_PASSWORD,
                      receive_timeout=10)
    try:
        if conn.bind():
            return conn
    except BaseException:
        if conn.socket is not None:
            conn.socket.close()
        raise
    conn.unbind()
    raise SambaMissing(f"the Administrator bind failed: {conn.result.get('message')}")


@contextlib.contextmanager
def _admin(domain: SambaDomain, ca_file: Path) -> Iterator[Connection]:
    """Bound as Administrator, unbound afterwards (ldap3's own `with` leaves a bound one open)."""
    conn = _admin_connection(domain, ca_file)
    try:
        yield conn
    finally:
        conn.unbind()


def _wait_ready(process: subprocess.Popen[bytes], domain: SambaDomain, ca_file: Path, log: Path,
                limit: float = 30) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SambaMissing(f"samba exited with {process.returncode}: "
                               + " | ".join(log.read_text(errors="replace").splitlines()[-5:]))
        try:
            _admin_connection(domain, ca_file).unbind()
            return
        except (OSError, Exception):  # not listening yet, or TLS not up yet
            time.sleep(0.05)
    raise SambaMissing(f"samba did not accept an LDAPS bind within {limit:g} s")


def _seed(domain: SambaDomain, ca_file: Path) -> dict[str, str]:
    passwords = {}
    users_dn = domain.users_dn
    with _admin(domain, ca_file) as conn:
        for name, (display, password, uac, extra) in domain.users.items():
            attributes: dict[str, object] = {
                "sAMAccountName": name, "userPrincipalName": f"{name}@{domain.dns}",
                "displayName": display, "unicodePwd": f'"{password}"'.encode("utf-16-le"),
                "userAccountControl": uac, **extra}
            _ok(conn, conn.add(f"CN={name},{users_dn}", ["top", "person", "organizationalPerson", "user"],
                               attributes))
            passwords[name] = password
        for name in domain.computers:
            _ok(conn, conn.add(f"CN={name},CN=Computers,{domain.base_dn}", ["top", "computer"],
                               {"sAMAccountName": f"{name}$", "userAccountControl": 4096}))
        # A DC's ldap/ SPNs (samba_spnupdate adds them where Samba runs its DNS; provisioning
        # with --dns-backend=NONE leaves them out): the directory's Kerberos bind asks for one.
        dc_fqdn = f"{domain.host}.{domain.dns}"
        _ok(conn, conn.modify(f"CN={domain.host.upper()},OU=Domain Controllers,{domain.base_dn}",
                              {"servicePrincipalName": [(MODIFY_ADD, [
                                  f"ldap/{dc_fqdn}", f"ldap/{dc_fqdn}/{domain.dns}",
                                  f"ldap/{domain.host.upper()}"])]}))
        for name in domain.hosts:
            # A workstation trust account with keys (a password) and its WinRM SPN, as a joined
            # Hyper-V host has: the KDC issues HTTP/<fqdn> tickets encrypted with these keys.
            fqdn = f"{name.lower()}.{domain.dns}"
            _ok(conn, conn.add(f"CN={name},CN=Computers,{domain.base_dn}", ["top", "computer"],
                               {"sAMAccountName": f"{name}$", "userAccountControl": 4096,
                                "dNSHostName": fqdn,
                                "unicodePwd": f'"{name}-machine-{os.urandom(8).hex()}"'
                                .encode("utf-16-le"),
                                "servicePrincipalName": [f"HTTP/{fqdn}", f"HOST/{fqdn}"]}))
        for name in domain.groups:
            _ok(conn, conn.add(f"CN={_rdn(name)},{users_dn}", ["top", "group"],
                               {"sAMAccountName": name, "groupType": GROUP_GLOBAL_SECURITY}))
        for name, members in domain.groups.items():
            dns = [f"CN={_rdn(m)},{users_dn}" for m in members]
            _ok(conn, conn.modify(f"CN={_rdn(name)},{users_dn}", {"member": [(MODIFY_REPLACE, dns)]}))
        # gina's primary group becomes HV-Build: AD then drops her `member` link to it, so only
        # primaryGroupID (and tokenGroups) still says she belongs.
        for user, group in domain.primary_groups:
            conn.search(f"CN={_rdn(group)},{users_dn}", "(objectClass=*)", "BASE",
                        attributes=["objectSid"])
            rid = format_sid(conn.response[0]["raw_attributes"]["objectSid"][0]).rsplit("-", 1)[1]
            _ok(conn, conn.modify(f"CN={user},{users_dn}",
                                  {"primaryGroupID": [(MODIFY_REPLACE, [rid])]}))
    for user in domain.locked:
        locked = Connection(Server(domain.address, port=636, use_ssl=True,
                                   tls=Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(ca_file)),
                                   get_info=NONE), user=f"{user}@{domain.dns}",
                            password="not-their-password")
        for _ in range(LOCKOUT_THRESHOLD):
            locked.bind()
            locked.unbind()
    return passwords


def _export_keytab(folder: Path, domain: SambaDomain) -> Path:
    """The keys of every lab host's HTTP SPN, as a host's keytab holds them."""
    keytab = folder / "private" / "hosts.keytab"
    for name in domain.hosts:
        _run(["samba-tool", "domain", "exportkeytab", str(keytab), "-s", str(folder / "etc/smb.conf"),
              f"--principal=HTTP/{name.lower()}.{domain.dns}"])
    return keytab


def write_krb5_conf(path: Path, **libdefaults: str) -> Path:
    """MIT krb5.conf for both test realms: no DNS, each realm's KDC on its loopback address."""
    defaults = {"default_realm": LAB.realm, "dns_lookup_kdc": "false", "dns_lookup_realm": "false",
                "rdns": "false", "udp_preference_limit": "1", **libdefaults}
    lines = ["[libdefaults]", *(f"    {k} = {v}" for k, v in defaults.items()), "", "[realms]"]
    for domain in (LAB, OTHER):
        lines += [f"    {domain.realm} = {{", f"        kdc = {domain.address}", "    }"]
    lines += ["", "[domain_realm]"]
    for domain in (LAB, OTHER):
        lines += [f"    .{domain.dns} = {domain.realm}", f"    {domain.dns} = {domain.realm}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def _rdn(name: str) -> str:
    return name.replace("\\", "\\\\").replace(",", "\\,").replace("+", "\\+")


def _ok(conn: Connection, done: bool) -> None:
    if not done:
        raise SambaMissing(f"seeding the directory failed: {conn.result}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


# A run killed before its teardown (a timeout, Ctrl+C twice) leaves its Samba holding the fixed
# ports; the next run ends it through this file (one a domain) instead of failing on "port in use".
def _pid_file(domain: SambaDomain) -> Path:
    return Path(tempfile.gettempdir()) / domain.pid_file


def _end_leftover(domain: SambaDomain) -> None:
    pid_file = _pid_file(domain)
    try:
        pid = int(pid_file.read_text())
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except (OSError, ValueError):
        return
    if comm.startswith("samba"):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        for _ in range(50):
            if not Path(f"/proc/{pid}").exists():
                break
            time.sleep(0.1)
    pid_file.unlink(missing_ok=True)


@contextlib.contextmanager
def running_samba(domain: SambaDomain = LAB) -> Iterator[SambaDC]:
    """Start a seeded Samba AD DC of `domain` on its loopback address and stop it afterwards;
    SambaMissing says why not."""
    _end_leftover(domain)
    _check_machine(domain)
    started = time.monotonic()
    template, provisioned = _template(domain)
    folder = Path(tempfile.mkdtemp(prefix=f"hvconsole-samba-{domain.netbios.lower()}-"))
    process = None
    try:
        _instance(template, folder, domain)
        log = folder / "log" / "samba.out"
        with log.open("wb") as out:
            process = subprocess.Popen(["samba", "-i", "-M", "single", "-s", str(folder / "etc/smb.conf")],
                                       stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       start_new_session=True)
        _pid_file(domain).write_text(str(process.pid))
        ca_file = folder / "tls" / "ca.pem"
        _wait_ready(process, domain, ca_file, log)
        passwords = _seed(domain, ca_file)
        keytab = _export_keytab(folder, domain) if domain.hosts else None
        yield SambaDC(folder, ca_file, process.pid, time.monotonic() - started, provisioned,
                      passwords, domain, keytab)
    finally:
        if process is not None:
            _stop(process)
            _pid_file(domain).unlink(missing_ok=True)
        shutil.rmtree(folder, ignore_errors=True)


def _session_dc(domain: SambaDomain) -> Iterator[SambaDC]:
    with contextlib.ExitStack() as stack:
        try:
            dc = stack.enter_context(running_samba(domain))
        except SambaMissing as missing:
            service_missing(f"Samba AD DC of {domain.realm}: {missing}")
        yield dc


@pytest.fixture(scope="session")
def samba_dc() -> Iterator[SambaDC]:
    """LAB (lab.example) on 127.0.0.1: the directory's own domain."""
    yield from _session_dc(LAB)


@pytest.fixture(scope="session")
def samba_other_dc() -> Iterator[SambaDC]:
    """OTHER (other.example) on 127.0.0.2: a second forest, configured as a trusted domain."""
    yield from _session_dc(OTHER)

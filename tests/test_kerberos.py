"""Single sign-on with Kerberos, for real: the Samba AD DCs are the KDCs, MIT's kinit gets the
tickets, and the lab hosts accept them with the keytab Samba exported for HTTP/hv01.lab.example
(and the others). The client connects to 127.0.0.1 and asks for the host's SPN by name.

Every refusal is its own sentence: no ticket, an expired ticket, a ticket of another realm (OTHER,
a second KDC without a trust), a host SPN no account holds, a clock more than five minutes off,
and NTLM refused by allow_ntlm = false.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from console import cli, jea
from console.audit import AuditTrail
from console.config import Config, HostConfig
from console.paths import LAB_DATA
from console.policy import Policy
from console.review import transport_findings
from console.directory import Directories
from console.kerberos import TicketError, current_ticket
from console.session import Setup, ticket_identity
from hvconsole.cli import extensions as app_extensions
from console.errors import CredentialsRejected, HostError
from console.hosts.credentials import Credentials
from console.hosts.admin import HostClient
from console.hosts.default import AdminClient
from console.hosts.jea import JeaClient
from lab.auth import Accounts, HostRights, KerberosKeys
from lab.executor import Executor
from lab.hyperv import Durations
from lab.psrp import attach as attach_jea
from lab.psrp import attach_default
from lab.world import load_world
from lab.wsman import WSManServer
from tests.samba import SambaDC
from tests.support import service_missing

pytestmark = pytest.mark.samba


@pytest.fixture(scope="session")
def krb5(samba_dc: SambaDC, samba_other_dc: SambaDC,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """KRB5_CONFIG naming both test KDCs, for the whole session (MIT reads it per process)."""
    if not shutil.which("kinit"):
        service_missing("MIT Kerberos' kinit is not installed (apt-get install krb5-user)")
    try:
        import gssapi  # noqa: F401
    except ImportError:
        service_missing("the gssapi package is not installed (pip install 'pyspnego[kerberos]')")
    folder = tmp_path_factory.mktemp("krb5")
    env = {"KRB5_CONFIG": str(samba_dc.krb5_conf(folder))}
    saved = {k: os.environ.get(k) for k in ("KRB5_CONFIG", "KRB5CCNAME", "KRB5_KTNAME")}
    os.environ.update(env)
    try:
        yield env
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def ticket(krb5: dict[str, str], samba_dc: SambaDC, tmp_path: Path,
           monkeypatch: pytest.MonkeyPatch) -> Path:
    """alice's TGT in a ticket cache of this test's own, which KRB5CCNAME names."""
    cache = tmp_path / "cc"
    samba_dc.kinit("alice", cache, env=krb5)
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{cache}")
    return cache


def alice_sid(dc: SambaDC) -> str:
    from ldap3.protocol.formatters.formatters import format_sid
    with dc.admin() as conn:
        conn.search(dc.dn("alice"), "(objectClass=*)", "BASE", attributes=["objectSid"])
        return str(format_sid(conn.response[0]["raw_attributes"]["objectSid"][0]))


@dataclass
class KerberosHost:
    server: WSManServer
    spn: str

    def config(self, **changes: object) -> HostConfig:
        values: dict[str, object] = {"endpoint": "admin", "timeout": 10.0, "spn": self.spn,
                                     **changes}
        return HostConfig(self.server.name, self.server.url, **values)  # type: ignore[arg-type]


@pytest.fixture
def kerberos_host(samba_dc: SambaDC, krb5: dict[str, str]) -> Iterator[KerberosHost]:
    """HV01 of the lab world, accepting tickets for HTTP/hv01.lab.example with Samba's keytab;
    LAB\\alice (her SID from Samba) is one of its administrators."""
    assert samba_dc.keytab is not None
    world = load_world(durations=Durations.instant())
    accounts = Accounts("LAB", "lab.example")
    accounts.add("LAB\\alice", alice_sid(samba_dc), samba_dc.passwords["alice"])
    spn = samba_dc.spn("HV01")
    server = WSManServer("HV01", Executor(world.host("HV01").host), accounts=accounts,
                         rights=HostRights.of(admins=["LAB\\alice"]),
                         kerberos=KerberosKeys(samba_dc.keytab, spn))
    attach_default(server, server.executor)  # type: ignore[arg-type]
    server.start()
    try:
        yield KerberosHost(server, spn)
    finally:
        server.stop()


SSO = Credentials.ticket("LAB\\alice")


def test_a_ticket_reads_a_host_with_kerberos_and_every_message_sealed(
        ticket: Path, kerberos_host: KerberosHost) -> None:
    client = AdminClient(kerberos_host.config(), SSO)
    try:
        vms = client.inventory()
    finally:
        client.close()
    assert vms and client.auth_protocol == "kerberos"
    stats = kerberos_host.server.stats
    assert stats.kerberos_logons >= 1 and stats.logon_failures == 0
    # Over HTTP a message the host could read unsealed would have been refused.
    assert stats.encrypted_requests >= 3 and stats.unencrypted_refused == 0


def test_the_winrs_fallback_speaks_kerberos_too(ticket: Path, kerberos_host: KerberosHost) -> None:
    client = HostClient(kerberos_host.config(protocol="winrs"), SSO)
    try:
        assert client.transport == "kerberos" and client.inventory()
    finally:
        client.close()
    stats = kerberos_host.server.stats
    assert stats.kerberos_logons >= 1 and stats.logons == stats.kerberos_logons
    assert stats.encrypted_requests >= 3 and stats.unencrypted_refused == 0


def test_the_jea_endpoint_with_a_ticket_runs_as_the_tokens_person(
        ticket: Path, samba_dc: SambaDC, krb5: dict[str, str]) -> None:
    """HV03's JEA endpoint, generated from the demo policy, over Kerberos: the endpoint's caller is
    the ticket's (LAB\\alice), and her token, read from Samba (LAB\\Domain Users, RID 513 of the
    lab's domain SID), gets the demo grant to LAB\\Domain Users on legacy-ftp."""
    assert samba_dc.keytab is not None
    world = load_world(durations=Durations.instant())
    accounts = Accounts("LAB", "lab.example")
    accounts.add("LAB\\alice", alice_sid(samba_dc), samba_dc.passwords["alice"])
    token = ticket_identity(Directories(samba_dc.config()))
    server = WSManServer("HV03", Executor(world.host("HV03").host), accounts=accounts,
                         kerberos=KerberosKeys(samba_dc.keytab, samba_dc.spn("HV03")))
    policy = Policy.load(LAB_DATA / "policy.toml")
    attach_jea(server, server.executor,  # type: ignore[arg-type]
               jea.generate(policy, "HV03"), lambda user: token if user.sid == token.sid else None)
    server.start()
    client = JeaClient(HostConfig("HV03", server.url, spn=samba_dc.spn("HV03"), timeout=10.0), SSO)
    try:
        names = [vm.name for vm in client.inventory()]
    finally:
        client.close()
        server.stop()
    assert names == ["legacy-ftp"] and client.auth_protocol == "kerberos"
    assert server.stats.kerberos_logons >= 1 and server.stats.logons == server.stats.kerberos_logons


def _refusal(config: HostConfig, credentials: Credentials = SSO) -> HostError:
    client = AdminClient(config, credentials)
    try:
        with pytest.raises(HostError) as raised:
            client.inventory()
    finally:
        client.close()
    return raised.value


def test_no_ticket_at_all(krb5: dict[str, str], kerberos_host: KerberosHost, tmp_path: Path,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path / 'none'}")
    error = _refusal(kerberos_host.config())
    assert "no Kerberos ticket" in str(error)


def test_an_expired_ticket(krb5: dict[str, str], samba_dc: SambaDC, kerberos_host: KerberosHost,
                           tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cc"
    samba_dc.kinit("alice", cache, lifetime="1s", env=krb5)
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{cache}")
    time.sleep(2)
    error = _refusal(kerberos_host.config())
    assert "expired" in str(error)


def test_a_ticket_of_another_realm(krb5: dict[str, str], samba_other_dc: SambaDC,
                                   kerberos_host: KerberosHost, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cc"
    samba_other_dc.kinit("oscar", cache, env=krb5)
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{cache}")
    error = _refusal(kerberos_host.config())
    assert "OTHER.EXAMPLE" in str(error)


def test_a_host_spn_no_account_holds(ticket: Path, kerberos_host: KerberosHost) -> None:
    error = _refusal(kerberos_host.config(spn="HTTP/hv09.lab.example"))
    assert "HTTP/hv09.lab.example" in str(error)


SKEWED_CLIENT = """
import sys
from console.config import HostConfig
from console.errors import HostError
from console.hosts.credentials import Credentials
from console.hosts.default import AdminClient
client = AdminClient(HostConfig("HV01", sys.argv[1], endpoint="admin", timeout=10, spn=sys.argv[2]),
                     Credentials.ticket("LAB\\\\alice"))
try:
    client.inventory()
    print("ACCEPTED")
except HostError as error:
    print(error)
finally:
    client.close()
"""


def test_a_clock_more_than_five_minutes_off(ticket: Path, kerberos_host: KerberosHost) -> None:
    """The client runs ten minutes ahead (Debian's faketime); the KDC refuses its request."""
    if not shutil.which("faketime"):
        service_missing("faketime is not installed (apt-get install faketime)")
    done = subprocess.run(["faketime", "-f", "+10m", sys.executable, "-c", SKEWED_CLIENT,
                           kerberos_host.server.url, kerberos_host.spn],
                          capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parent.parent)
    assert "clock is more than five minutes off" in done.stdout


def test_a_clock_more_than_five_minutes_off_at_the_directory(ticket: Path, samba_dc: SambaDC,
                                                             tmp_path: Path) -> None:
    """`hvconsole whoami --sso` ten minutes ahead: the KDC refuses the ldap/ ticket's request."""
    if not shutil.which("faketime"):
        service_missing("faketime is not installed (apt-get install faketime)")
    config = tmp_path / "config.toml"
    config.write_text(f'[directory]\nurls = ["{samba_dc.ldaps_url}"]\ndomain = "lab.example"\n'
                      f'ca_file = "{samba_dc.ca_file}"\n[audit]\npath = "{tmp_path / "audit.jsonl"}"\n')
    main = "import sys; from hvconsole.cli import main; sys.exit(main(sys.argv[1:]))"
    done = subprocess.run(["faketime", "-f", "+10m", sys.executable, "-c", main, "whoami",
                           "--config", str(config), "--sso"], capture_output=True, text=True,
                          timeout=60, cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode == 1, done.stdout
    assert done.stderr.startswith("hvconsole: This computer's clock is more than five minutes off "
                                  "the domain's, so Kerberos refuses the ticket for "
                                  "ldap/dc1.lab.example"), done.stderr


def test_a_password_outside_the_domain_ntlm_said_or_kerberos_with_allow_ntlm_false(
        krb5: dict[str, str], samba_dc: SambaDC, kerberos_host: KerberosHost, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The password path as it was: DOMAIN\\user over negotiate ends in NTLM, and the client says
    so (auth_protocol, which the host status shows). With allow_ntlm = false the same password
    gets a Kerberos ticket as user@REALM from the KDC, and NTLM never reaches the host."""
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path / 'cc'}")
    password = Credentials("LAB\\alice", samba_dc.passwords["alice"], principal="alice@LAB.EXAMPLE")
    stats = kerberos_host.server.stats
    fallback = AdminClient(kerberos_host.config(), password)
    try:
        assert fallback.inventory() and fallback.auth_protocol == "ntlm"
    finally:
        fallback.close()
    assert stats.logons == 1 and stats.kerberos_logons == 0
    client = AdminClient(kerberos_host.config(allow_ntlm=False), password)
    try:
        assert client.inventory() and client.auth_protocol == "kerberos"
    finally:
        client.close()
    assert stats.logons == 2 and stats.kerberos_logons == 1


def test_allow_ntlm_false_refuses_the_fallback_with_its_own_sentence(
        krb5: dict[str, str], samba_dc: SambaDC, kerberos_host: KerberosHost, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path / 'cc'}")
    password = Credentials("LAB\\alice", samba_dc.passwords["alice"], principal="alice@LAB.EXAMPLE")
    error = _refusal(kerberos_host.config(spn="HTTP/hv09.lab.example", allow_ntlm=False), password)
    assert "NTLM is not tried: the host's allow_ntlm is false." in str(error)
    assert "HTTP/hv09.lab.example" in str(error)
    assert kerberos_host.server.stats.requests == 0  # refused before anything was sent


def test_a_host_that_refuses_ntlm_accepts_kerberos_only(samba_dc: SambaDC,
                                                        kerberos_host: KerberosHost,
                                                        ticket: Path) -> None:
    server = kerberos_host.server
    server.allow_ntlm = False
    password = Credentials("LAB\\alice", samba_dc.passwords["alice"])
    error = _refusal(kerberos_host.config(transport="ntlm"), password)
    assert isinstance(error, CredentialsRejected)
    assert "NTLM" in str(error)  # the 401 after NTLM says the host may take Kerberos only
    assert [e["outcome"] for e in server.events.where(event="logon")] == ["ntlm_refused"]
    client = AdminClient(kerberos_host.config(), SSO)
    try:
        assert client.inventory() and client.auth_protocol == "kerberos"
    finally:
        client.close()


# --- the directory: SASL GSSAPI over LDAPS, the groups the token's --------------------------


def test_the_directory_signs_in_with_the_ticket_and_reads_the_token_groups(
        ticket: Path, samba_dc: SambaDC) -> None:
    assert current_ticket().principal == "alice@LAB.EXAMPLE"
    identity = ticket_identity(Directories(samba_dc.config()))
    assert identity.name == "LAB\\alice" and identity.extra["sign_in"] == "Windows sign-in"
    names = {g.name for g in identity.groups}
    assert {"LAB\\HV-Helpdesk", "LAB\\IT-Support"} <= names  # IT-Support: nested


def test_the_directory_over_starttls_too(ticket: Path, samba_dc: SambaDC) -> None:
    identity = ticket_identity(Directories(samba_dc.config(urls=[samba_dc.ldap_url], start_tls=True)))
    assert identity.name == "LAB\\alice"


def test_the_directory_refuses_a_ticket_of_a_realm_it_does_not_sign_in(
        krb5: dict[str, str], samba_dc: SambaDC, samba_other_dc: SambaDC, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cc"
    samba_other_dc.kinit("oscar", cache, env=krb5)
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{cache}")
    with pytest.raises(TicketError, match="realm OTHER.EXAMPLE, but this console signs in people "
                                          "of LAB.EXAMPLE") as refused:
        ticket_identity(Directories(samba_dc.config()))
    assert refused.value.code == "wrong_realm"
    # Configured as a trusted domain, OTHER's people sign in at OTHER's own controller.
    trusting = samba_dc.config(trusted=[samba_other_dc.trusted()])
    assert ticket_identity(Directories(trusting)).name == "OTHER\\oscar"


def test_the_directory_without_a_ticket_or_with_an_expired_one(
        krb5: dict[str, str], samba_dc: SambaDC, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    directory = Directories(samba_dc.config())
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path / 'none'}")
    with pytest.raises(TicketError, match="There is no Kerberos ticket") as none:
        ticket_identity(directory)
    assert none.value.code == "no_ticket"
    samba_dc.kinit("alice", tmp_path / "cc", lifetime="1s", env=krb5)
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path / 'cc'}")
    time.sleep(2)
    with pytest.raises(TicketError, match="Your Kerberos ticket has expired") as expired:
        ticket_identity(directory)
    assert expired.value.code == "ticket_expired"


# --- the command line: --sso on every command that signs in ---------------------------------


def test_whoami_sso_prints_the_tickets_identity_and_each_refusal_as_a_sentence(
        ticket: Path, samba_dc: SambaDC, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[directory]\nurls = ["{samba_dc.ldaps_url}"]\ndomain = "lab.example"\n'
                      f'ca_file = "{samba_dc.ca_file}"\n[audit]\npath = "{tmp_path / "audit.jsonl"}"\n')
    monkeypatch.setattr("console.config.machine_config_path", lambda: tmp_path / "no-machine.toml")
    assert cli.main(["whoami", "--config", str(config), "--sso", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["name"] == "LAB\\alice"
    assert {"name": "LAB\\IT-Support", "nested": True} in [
        {"name": g["name"], "nested": g["nested"]} for g in out["groups"]]
    assert cli.main(["whoami", "--config", str(config), "--sso", "--user", "alice"]) == 1
    assert "give neither --user nor --password-stdin" in capsys.readouterr().err
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path / 'none'}")
    assert cli.main(["whoami", "--config", str(config), "--sso"]) == 1
    assert capsys.readouterr().err.startswith("hvconsole: There is no Kerberos ticket to sign in with")


def test_vms_sso_reads_the_host_with_kerberos(ticket: Path, samba_dc: SambaDC,
                                              kerberos_host: KerberosHost, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """`hvconsole vms --sso`: the directory (SASL GSSAPI) and the host (Kerberos, sealed) with the
    ticket, nothing else: no password is read and NTLM never reaches the host."""
    @contextlib.contextmanager
    def world() -> Iterator[Setup]:
        config = Config(directory=samba_dc.config(), hosts=[kerberos_host.config()],
                        policy_path=str(LAB_DATA / "policy.toml"),
                        audit_path=str(tmp_path / "audit.jsonl"), demo=True)
        yield Setup(config, Policy.load(config.policy_path), Directories(config.directory),
                    AuditTrail(config.audit_file))

    ours = replace(app_extensions(), demo_world=world)
    assert cli.main(["vms", "--sso", "--demo", "--json"], ours) == 0, capsys.readouterr().err
    out = json.loads(capsys.readouterr().out)
    assert out["user"] == "LAB\\alice"
    assert out["hosts"]["HV01"] == {"status": "ok", "seconds": out["hosts"]["HV01"]["seconds"],
                                    "error": None, "auth": "kerberos"}
    assert kerberos_host.server.stats.kerberos_logons >= 1
    assert kerberos_host.server.stats.logons == kerberos_host.server.stats.kerberos_logons


def test_vms_says_when_a_host_was_reached_with_ntlm(samba_dc: SambaDC, kerberos_host: KerberosHost,
                                                    krb5: dict[str, str], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """The password path with negotiate ends in NTLM in the lab (DOMAIN\\user, no ticket): the
    command says so on stderr, and its JSON names it."""
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path / 'none'}")

    @contextlib.contextmanager
    def world() -> Iterator[Setup]:
        config = Config(directory=samba_dc.config(), hosts=[kerberos_host.config()],
                        policy_path=str(LAB_DATA / "policy.toml"),
                        audit_path=str(tmp_path / "audit.jsonl"), demo=True)
        yield Setup(config, Policy.load(config.policy_path), Directories(config.directory),
                    AuditTrail(config.audit_file))

    ours = replace(app_extensions(), demo_world=world)
    monkeypatch.setattr("sys.stdin", io.StringIO(samba_dc.passwords["alice"] + "\n"))
    assert cli.main(["vms", "--user", "alice", "--password-stdin", "--demo"], ours) == 0
    assert ("HV01: signed in with NTLM, as Kerberos was not possible (allow_ntlm = false refuses "
            "it)") in capsys.readouterr().err


def test_audit_verify_hosts_signs_in_with_sso_too(ticket: Path, samba_dc: SambaDC,
                                                  kerberos_host: KerberosHost, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """audit verify has options of its own: --sso is one of them, with --hosts only."""
    @contextlib.contextmanager
    def world() -> Iterator[Setup]:
        config = Config(directory=samba_dc.config(), hosts=[kerberos_host.config()],
                        policy_path=str(LAB_DATA / "policy.toml"),
                        audit_path=str(tmp_path / "audit.jsonl"), demo=True)
        yield Setup(config, Policy.load(config.policy_path), Directories(config.directory),
                    AuditTrail(config.audit_file))

    ours = replace(app_extensions(), demo_world=world)
    assert cli.main(["audit", "verify", "--hosts", "--sso", "--demo"], ours) == 1
    # Signed in as the ticket's alice, who holds no audit.read in the demo policy.
    assert "LAB\\alice may not read the audit trail" in capsys.readouterr().err
    assert cli.main(["audit", "verify", "--sso"], ours) == 1
    assert "--sso, --demo and --by go with --hosts" in capsys.readouterr().err


# --- the review: NTLM allowed is a finding --------------------------------------------------


def test_the_review_recommends_allow_ntlm_false() -> None:
    hosts = [HostConfig("HV01", "http://hv01:5985/wsman"),
             HostConfig("HV02", "http://hv02:5985/wsman", allow_ntlm=False),
             HostConfig("HV03", "http://hv03:5985/wsman", transport="ntlm")]
    findings = {f.kind: f for f in transport_findings(hosts)}
    assert set(findings) == {"ntlm-allowed", "ntlm-only"}
    assert findings["ntlm-allowed"].objects == ("HV01",) and findings["ntlm-allowed"].severity == "medium"
    assert "Set allow_ntlm = false" in findings["ntlm-allowed"].fix
    assert findings["ntlm-only"].objects == ("HV03",) and findings["ntlm-only"].severity == "high"
    assert transport_findings([hosts[1]]) == []  # Kerberos only: nothing to say

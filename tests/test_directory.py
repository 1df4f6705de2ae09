"""Sign-in against a real directory: a Samba AD DC on 127.0.0.1 (tests/samba.py), plus the checks
that must hold before anything reaches a server."""
from __future__ import annotations

import io
import json
import logging
import socket
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from ldap3 import Connection
from ldap3.utils.log import EXTENDED, OFF, set_library_log_detail_level

from console import cli
from console.config import Config, DirectoryConfig, TrustedDomainConfig
from console.directory import (BIND_FAILURES, Directories, DomainNames, LdapDirectory, Principal,
                               checked_account, netlogon_names, parse_username, sign_in_error)
from console.session import open_directory
from console.errors import ConfigError, DirectoryError, DirectoryUnavailable, SignInError
from console.identity import AUTHENTICATED_USERS, EVERYONE, WELL_KNOWN_LOGON_SIDS, Identity
from console.policy import Policy
from lab.certs import make_ca
from tests.samba import DOMAIN_SID, OTHER_SID, SambaDC

INJECTIONS = ["*)(objectClass=*", "alice)(|(x=*", "*", "alic*", "LAB\\*", "*@lab.example",
              "alice)(sAMAccountName=*"]


@dataclass
class SilentServer:
    """A listening socket that accepts connections, counts them and never answers."""

    port: int
    connections: list[socket.socket] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"ldaps://127.0.0.1:{self.port}"


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    listener = socket.create_server(("127.0.0.1", 0))
    server = SilentServer(listener.getsockname()[1])
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.05)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            server.connections.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server
    stop.set()
    thread.join()
    for conn in server.connections:
        conn.close()
    listener.close()


@pytest.fixture
def closed_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"ldaps://127.0.0.1:{port}"


# --- before anything is sent ----------------------------------------------------------------------

@pytest.mark.parametrize(("typed", "bind", "sam", "upn"), [
    ("alice", "alice@lab.example", "alice", "alice@lab.example"),
    ("alice@lab.example", "alice@lab.example", "alice", "alice@lab.example"),
    ("LAB\\alice", "LAB\\alice", "alice", ""),
    ("  alice  ", "alice@lab.example", "alice", "alice@lab.example"),
])
def test_username_forms(typed: str, bind: str, sam: str, upn: str) -> None:
    account = parse_username(typed, "lab.example")
    assert (account.bind_name, account.sam, account.upn) == (bind, sam, upn)


@pytest.mark.parametrize("typed", ["", "   ", "LAB\\", "\\alice", "@lab.example", "alice@", "A\\b\\c"])
def test_malformed_usernames_are_refused(typed: str) -> None:
    with pytest.raises(SignInError) as error:
        parse_username(typed, "lab.example")
    assert error.value.code in {"empty_username", "bad_username"}


def test_bare_name_without_a_domain_asks_for_one() -> None:
    with pytest.raises(SignInError, match="name@domain"):
        parse_username("alice", "")


def test_every_bind_code_has_its_own_sentence() -> None:
    codes = {code for code, _ in BIND_FAILURES.values()}
    assert len(codes) == len(BIND_FAILURES) - 1  # only 52e and 525 share one
    assert str(sign_in_error("52e")) == str(sign_in_error("525"))
    assert sign_in_error("52E").code == "bad_credentials"
    assert sign_in_error("530").code == "logon_hours"
    assert sign_in_error("531").code == "workstation"
    assert sign_in_error("532").code == "password_expired"
    assert sign_in_error("ffff").code == "bad_credentials"
    for code in BIND_FAILURES:
        assert str(sign_in_error(code)).endswith(".")


def test_plain_ldap_without_starttls_is_refused_before_connecting(silent_server: SilentServer) -> None:
    url = f"ldap://127.0.0.1:{silent_server.port}"
    with pytest.raises(ConfigError, match="in clear") as error:
        LdapDirectory(DirectoryConfig(urls=[url], domain="lab.example"))
    assert error.value.key == "directory.urls[0]"
    time.sleep(0.1)
    assert silent_server.connections == []


def test_empty_password_is_refused_before_connecting(silent_server: SilentServer) -> None:
    directory = LdapDirectory(DirectoryConfig(urls=[silent_server.url], domain="lab.example"))
    with pytest.raises(SignInError, match="Enter a password") as error:
        directory.sign_in("alice", "")
    assert error.value.code == "empty_password"
    time.sleep(0.1)
    assert silent_server.connections == []


def test_no_urls_and_unreadable_ca_are_configuration_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="directory.urls"):
        open_directory(Config(directory=DirectoryConfig()))
    with pytest.raises(ConfigError, match="ca_file"):
        LdapDirectory(DirectoryConfig(urls=["ldaps://dc1"], ca_file=str(tmp_path / "none.pem")))


def test_closed_port_reads_unreachable(closed_url: str) -> None:
    directory = LdapDirectory(DirectoryConfig(urls=[closed_url], domain="lab.example", timeout=2))
    started = time.monotonic()
    with pytest.raises(DirectoryUnavailable) as error:
        directory.sign_in("alice", "secret")
    assert time.monotonic() - started < 1
    assert error.value.code == "unreachable"
    assert str(error.value) == f"The domain controller {closed_url} refused the connection."


def test_silent_server_times_out_within_the_timeout(silent_server: SilentServer) -> None:
    directory = LdapDirectory(DirectoryConfig(urls=[silent_server.url], domain="lab.example", timeout=1))
    started = time.monotonic()
    with pytest.raises(DirectoryUnavailable) as error:
        directory.sign_in("alice", "secret")
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 2.0, elapsed
    assert error.value.code == "timeout"
    assert str(error.value) == f"The domain controller {silent_server.url} did not answer within 1 second."
    assert len(silent_server.connections) == 1


def test_all_servers_failing_names_each(closed_url: str, silent_server: SilentServer) -> None:
    directory = LdapDirectory(DirectoryConfig(urls=[closed_url, silent_server.url],
                                              domain="lab.example", timeout=1))
    with pytest.raises(DirectoryUnavailable) as error:
        directory.sign_in("alice", "secret")
    assert str(error.value) == (f"No domain controller could be used: {closed_url} refused the "
                                f"connection; {silent_server.url} did not answer within 1 second.")
    assert error.value.code == "unreachable"


# --- against Samba AD -----------------------------------------------------------------------------


@pytest.fixture
def dc(samba_dc: SambaDC) -> SambaDC:
    samba_dc.unlock("carol")
    return samba_dc


@pytest.mark.samba
@pytest.mark.parametrize("typed", ["alice", "alice@lab.example", "LAB\\alice", "lab\\alice",
                                   "alice@LAB.EXAMPLE"])
def test_each_username_form_signs_in(dc: SambaDC, typed: str) -> None:
    identity = LdapDirectory(dc.config()).sign_in(typed, dc.passwords["alice"])
    assert identity.name == "LAB\\alice"
    assert identity.sid.startswith(DOMAIN_SID + "-")
    assert identity.upn == "alice@lab.example"
    assert identity.display_name == "Alice Helpdesk"
    assert identity.mail == "alice@lab.example"
    assert identity.dn == dc.dn("alice")
    assert identity.demo is False
    assert identity.extra["server"] == dc.ldaps_url
    assert "warning" not in identity.extra


@pytest.mark.samba
def test_nested_groups_and_primary_group(dc: SambaDC) -> None:
    identity = LdapDirectory(dc.config()).sign_in("alice", dc.passwords["alice"])
    groups = {g.name: g for g in identity.groups}
    assert groups["LAB\\HV-Helpdesk"].nested is False
    assert groups["LAB\\IT-Support"].nested is True
    assert groups["LAB\\Domain Users"].nested is False
    assert groups["LAB\\Domain Users"].sid == f"{DOMAIN_SID}-513"
    assert groups["LAB\\IT-Support"].dn == dc.dn("IT-Support")
    assert "LAB\\HV-Shop-Owners" not in groups
    assert {EVERYONE, AUTHENTICATED_USERS, identity.sid, groups["LAB\\IT-Support"].sid} <= identity.sids
    # a primary group is not a `member` link, so only tokenGroups knows gina belongs to HV-Build
    gina = LdapDirectory(dc.config()).sign_in("gina", dc.passwords["gina"])
    assert "LAB\\HV-Build" in {g.name for g in gina.groups if not g.nested}


@pytest.mark.samba
def test_sign_in_takes_the_ping_the_bind_and_three_searches(dc: SambaDC) -> None:
    # One search before the bind (the LDAP ping: the domain's names), three after it.
    with LdapDirectory(dc.config()).session("alice", dc.passwords["alice"]) as session:
        usage = session.connection.usage
        assert usage.bind_operations == 1
        assert usage.search_operations == 4
        assert usage.operations == 5
    with LdapDirectory(dc.config(urls=[dc.ldap_url], start_tls=True)).session(
            "alice", dc.passwords["alice"]) as session:
        usage = session.connection.usage
        assert (usage.extended_operations, usage.bind_operations, usage.search_operations) == (1, 1, 4)
        assert session.identity.name == "LAB\\alice"


@pytest.mark.samba
@pytest.mark.parametrize(("user", "code"), [
    ("dan", "disabled"), ("erin", "account_expired"), ("frank", "must_change_password"),
    ("lucy", "locked")])
def test_account_states_give_their_sentence(dc: SambaDC, user: str, code: str) -> None:
    with pytest.raises(SignInError) as error:
        LdapDirectory(dc.config()).sign_in(user, dc.passwords[user])
    assert error.value.code == code
    assert str(error.value) == next(s for c, s in BIND_FAILURES.values() if c == code)


@pytest.mark.samba
def test_wrong_password_and_unknown_user_read_alike(dc: SambaDC) -> None:
    directory = LdapDirectory(dc.config())
    with pytest.raises(SignInError) as wrong:
        directory.sign_in("carol", "not-carols-password")
    with pytest.raises(SignInError) as unknown:
        directory.sign_in("nobody-here", "whatever-1")
    assert wrong.value.code == unknown.value.code == "bad_credentials"
    assert str(wrong.value) == str(unknown.value) == "The user name or password is incorrect."


@pytest.mark.samba
@pytest.mark.parametrize("typed", INJECTIONS)
def test_filter_injection_is_a_failed_sign_in(dc: SambaDC, typed: str) -> None:
    with pytest.raises(SignInError) as error:
        LdapDirectory(dc.config()).sign_in(typed, dc.passwords["alice"])
    assert error.value.code == "bad_credentials"


@pytest.mark.samba
def test_filter_injection_never_matches_in_look_ups(dc: SambaDC) -> None:
    with LdapDirectory(dc.config()).session("bob", dc.passwords["bob"]) as session:
        for typed in INJECTIONS:
            assert session.resolve(typed) is None
            with pytest.raises(DirectoryError):
                session.members(typed)


@pytest.mark.samba
def test_untrusted_certificate(dc: SambaDC, tmp_path: Path) -> None:
    other_ca = make_ca(tmp_path, "Somebody Else's CA")
    directory = LdapDirectory(dc.config(ca_file=str(other_ca.cert)))
    with pytest.raises(DirectoryUnavailable) as error:
        directory.sign_in("alice", dc.passwords["alice"])
    assert error.value.code == "certificate"
    assert str(error.value).startswith(
        f"The domain controller {dc.ldaps_url} presented a certificate that is not trusted")


@pytest.mark.samba
def test_certificate_for_another_name(dc: SambaDC) -> None:
    # the certificate names 127.0.0.1 and dc1.lab.example, not localhost
    with pytest.raises(DirectoryUnavailable) as error:
        LdapDirectory(dc.config(urls=["ldaps://localhost:636"])).sign_in("alice", dc.passwords["alice"])
    assert error.value.code == "certificate"
    assert "issued to another name" in str(error.value)


@pytest.mark.samba
def test_untrusted_certificate_over_starttls(dc: SambaDC, tmp_path: Path) -> None:
    other_ca = make_ca(tmp_path, "Somebody Else's CA")
    config = dc.config(urls=[dc.ldap_url], start_tls=True, ca_file=str(other_ca.cert))
    with pytest.raises(DirectoryUnavailable) as error:
        LdapDirectory(config).sign_in("alice", dc.passwords["alice"])
    assert error.value.code == "certificate"


@pytest.mark.samba
def test_skipping_the_certificate_check_warns(dc: SambaDC, tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    other_ca = make_ca(tmp_path, "Somebody Else's CA")
    with caplog.at_level(logging.WARNING, logger="console.directory"):
        directory = LdapDirectory(dc.config(ca_file=str(other_ca.cert), skip_certificate_check=True))
        identity = directory.sign_in("alice", dc.passwords["alice"])
    assert identity.name == "LAB\\alice"
    assert "not checked" in identity.extra["warning"]
    assert directory.certificate_checked is False
    assert any("not checked" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


@pytest.mark.samba
def test_failover_to_the_second_controller(dc: SambaDC, closed_url: str) -> None:
    identity = LdapDirectory(dc.config(urls=[closed_url, dc.ldaps_url])).sign_in(
        "alice", dc.passwords["alice"])
    assert identity.extra["server"] == dc.ldaps_url


@pytest.mark.samba
def test_failover_after_a_silent_controller(dc: SambaDC, silent_server: SilentServer) -> None:
    started = time.monotonic()
    identity = LdapDirectory(dc.config(urls=[silent_server.url, dc.ldaps_url], timeout=1)).sign_in(
        "alice", dc.passwords["alice"])
    assert 0.9 <= time.monotonic() - started < 2.5
    assert identity.extra["server"] == dc.ldaps_url


@pytest.mark.samba
def test_rejected_bind_is_never_tried_on_another_controller(dc: SambaDC,
                                                            silent_server: SilentServer) -> None:
    directory = LdapDirectory(dc.config(urls=[dc.ldaps_url, silent_server.url], timeout=1))
    with pytest.raises(SignInError) as error:
        directory.sign_in("carol", "not-carols-password")
    assert error.value.code == "bad_credentials"
    time.sleep(0.1)
    assert silent_server.connections == []
    # two URLs of the same controller: one bad password is counted once, not twice
    before = dc.bad_password_count("carol")
    both = LdapDirectory(dc.config(urls=[dc.ldaps_url, dc.ldap_url], start_tls=True))
    with pytest.raises(SignInError):
        both.sign_in("carol", "not-carols-password")
    assert dc.bad_password_count("carol") == before + 1


@pytest.mark.samba
def test_password_never_in_logs_errors_or_reprs(dc: SambaDC, caplog: pytest.LogCaptureFixture,
                                                closed_url: str) -> None:
    secret = "Sup3r-Secret-Value-42"
    seen: list[str] = []
    set_library_log_detail_level(EXTENDED)
    try:
        with caplog.at_level(logging.DEBUG):
            directory = LdapDirectory(dc.config(urls=[closed_url, dc.ldaps_url]))
            for user in ("carol", "nobody-here", "*)(objectClass=*"):
                with pytest.raises(SignInError) as error:
                    directory.sign_in(user, secret)
                seen += [str(error.value), repr(error.value),
                         "".join(traceback.format_exception(error.value))]
            dc.unlock("carol")
            with directory.session("alice", dc.passwords["alice"]) as session:
                seen += [repr(session), str(session), repr(session.identity), repr(directory),
                         repr(session.connection), str(session.connection),
                         repr(session.connection.request)]
                assert dc.passwords["alice"] not in "".join(seen)
    finally:
        set_library_log_detail_level(OFF)
    assert caplog.records, "nothing was logged, so the check below proves nothing"
    assert secret not in caplog.text
    assert dc.passwords["alice"] not in caplog.text
    for text in seen:
        assert secret not in text


@pytest.mark.samba
def test_resolve_principals(dc: SambaDC) -> None:
    with LdapDirectory(dc.config()).session("bob", dc.passwords["bob"]) as session:
        dan = session.resolve("LAB\\dan")
        assert dan is not None and (dan.kind, dan.state, dan.dn) == ("user", "disabled", dc.dn("dan"))
        erin = session.resolve("erin")
        assert erin is not None and erin.state == "expired"
        alice = session.resolve("alice@lab.example")
        assert alice is not None and alice.name == "LAB\\alice" and alice.enabled
        helpdesk = session.resolve("LAB\\HV-Helpdesk")
        assert helpdesk is not None and helpdesk.kind == "group"
        assert session.resolve(helpdesk.sid) == helpdesk
        computer = session.resolve("LAB\\WS01")
        assert computer is not None and (computer.kind, computer.name) == ("computer", "LAB\\WS01$")
        builtin = session.resolve("S-1-5-32-545")
        assert builtin is not None and builtin.name == "BUILTIN\\Users"
        assert session.resolve("Everyone") == Principal("well-known", "Everyone", EVERYONE)
        assert session.resolve("LAB\\nobody-here") is None
        assert session.resolve("OTHER\\alice") is None
        assert session.resolve(f"{DOMAIN_SID}-99999") is None


@pytest.mark.samba
def test_transitive_members(dc: SambaDC) -> None:
    with LdapDirectory(dc.config()).session("bob", dc.passwords["bob"]) as session:
        support = {m.principal.name: m.nested for m in session.members("LAB\\IT-Support")}
        assert support == {"LAB\\HV-Helpdesk": False, "LAB\\alice": True}
        # gina is in HV-Build only through primaryGroupID, which the in-chain rule misses
        assert {m.principal.name for m in session.members("HV-Build")} == {"LAB\\gina"}
        owners = {m.principal.name: m.principal.state for m in session.members("HV-Shop-Owners")}
        assert owners == {"LAB\\bob": "enabled", "LAB\\dan": "disabled"}
        # parentheses in the group's DN are escaped in the in-chain filter
        assert [m.principal.name for m in session.members("LAB\\Weird (Group)")] == ["LAB\\bob"]
        users = {m.principal.name: m.nested for m in session.members("LAB\\Domain Users")}
        assert {"LAB\\alice", "LAB\\dan", "LAB\\Administrator"} <= set(users)
        # AD turns a former primary group into a plain membership: gina stays, directly
        assert users["LAB\\gina"] is False
        with pytest.raises(DirectoryError, match="not a group"):
            session.members("LAB\\alice")
        with pytest.raises(DirectoryError, match="no group"):
            session.members("LAB\\no-such-group")


@pytest.mark.samba
def test_whoami_cli(dc: SambaDC, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                    capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[directory]\nurls = ["{dc.ldaps_url}"]\ndomain = "lab.example"\n'
                      f'ca_file = "{dc.ca_file}"\n')
    monkeypatch.setattr("sys.stdin", io.StringIO(dc.passwords["alice"] + "\n"))
    assert cli.main(["whoami", "--config", str(config), "--user", "alice", "--password-stdin",
                     "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["name"] == "LAB\\alice"
    assert {"name": "LAB\\IT-Support", "nested": True} in [
        {"name": g["name"], "nested": g["nested"]} for g in out["groups"]]
    monkeypatch.setattr("sys.stdin", io.StringIO("wrong-password\n"))
    assert cli.main(["whoami", "--config", str(config), "--user", "carol", "--password-stdin"]) == 1
    assert capsys.readouterr().err.strip() == "hvconsole: The user name or password is incorrect."


# --- identities by domain: only the directory's own domain signs in -----------------------------------

# Samba's answer to the LDAP ping (the rootDSE's Netlogon attribute): a NETLOGON_SAM_LOGON_RESPONSE_EX.
SAMBA_PING = (b"\x17\x00\x00\x00\x9d\x11\x00\x00|\xa6\xcf\xf5)Wu@\x8e\x81v&*\xf0\x86\xfd"
              b"\x03lab\x07example\x00\xc0\x18\x03dc1\xc0\x18\x03LAB\x00\x03DC1\x00\x00"
              b"\x17Default-First-Site-Name\x00\xc08\x05\x00\x00\x00\xff\xff\xff\xff")
LAB = DomainNames("lab.example", "LAB")


def test_the_ping_answer_gives_the_domains_names() -> None:
    assert netlogon_names(SAMBA_PING) == LAB
    assert str(LAB) == "LAB (lab.example)"
    assert netlogon_names(SAMBA_PING).host == "dc1.lab.example"  # the SASL bind's ldap/ SPN


@pytest.mark.parametrize("data", [
    b"", SAMBA_PING[:30], b"\x13" + SAMBA_PING[1:],  # cut short, another opcode
    SAMBA_PING[:24] + b"\xc0\x18",  # a pointer to itself: never ends
    SAMBA_PING[:24] + b"\x00\x00\x00\x00",  # no names at all
])
def test_a_ping_answer_that_cannot_be_read_is_a_value_error(data: bytes) -> None:
    with pytest.raises(ValueError):
        netlogon_names(data)


@pytest.mark.parametrize(("typed", "bind"), [
    ("alice", "alice@lab.example"), ("alice@LAB.example", "alice@LAB.example"),
    ("LAB\\alice", "LAB\\alice"), ("lab\\alice", "lab\\alice"),
    ("lab.example\\alice", "alice@lab.example"),  # the DNS name before the backslash
    ("alice@LAB", "LAB\\alice"),  # the NetBIOS name after the @
])
def test_the_directorys_own_domain_is_bound_as_typed_or_in_a_form_it_binds(typed: str,
                                                                          bind: str) -> None:
    account = checked_account(parse_username(typed, "lab.example"), LAB, "lab.example")
    assert account.bind_name == bind and account.sam == "alice"


@pytest.mark.parametrize(("typed", "code", "words"), [
    ("OTHER\\adam", "foreign_domain",
     "OTHER is not the domain of this directory, LAB (lab.example): sign in as LAB\\name, "
     "name@lab.example or the name alone."),
    ("adam@other.example", "foreign_domain", "other.example is not the domain of this directory"),
    ("other.lab.example\\adam", "foreign_domain", "other.lab.example is not the domain"),
    ("adam@child.lab.example", "foreign_domain", "child.lab.example is not the domain"),
])
def test_any_other_domain_is_refused_with_a_sentence(typed: str, code: str, words: str) -> None:
    with pytest.raises(SignInError) as error:
        checked_account(parse_username(typed, "lab.example"), LAB, "lab.example")
    assert error.value.code == code and str(error.value).startswith(words)


def test_a_default_domain_that_is_not_the_directorys_is_a_setting_to_correct() -> None:
    with pytest.raises(ConfigError, match='set directory.domain = "lab.example"') as error:
        checked_account(parse_username("alice", "lab.exmaple"), LAB, "lab.exmaple")
    assert error.value.key == "directory.domain"


def test_a_trusted_domains_netbios_name_the_controller_denies_is_a_setting_to_correct() -> None:
    # CHILD\adam went to child.lab.example by its NetBIOS name, set or derived: the controller's
    # own name decides, and the setting that routed it is named
    child = DomainNames("child.lab.example", "KIDS")
    with pytest.raises(ConfigError, match='set directory.trusted.0..netbios = "KIDS"') as error:
        checked_account(parse_username("CHILD\\adam", ""), child, "child.lab.example", "CHILD",
                        "directory.trusted[0]")
    assert error.value.key == "directory.trusted[0].netbios"
    account = checked_account(parse_username("KIDS\\adam", ""), child, "child.lab.example", "CHILD",
                              "directory.trusted[0]")
    assert account.bind_name == "KIDS\\adam"


def test_a_netbios_name_not_known_before_the_bind_is_checked_after_it() -> None:
    account = parse_username("CHILD\\adam", "lab.example")
    assert checked_account(account, DomainNames("lab.example", ""), "lab.example") is account
    assert checked_account(account, DomainNames("", ""), "lab.example") is account
    with pytest.raises(SignInError, match="is not the domain"):  # the UPN's suffix is known
        checked_account(parse_username("adam@child.example", ""), DomainNames("lab.example", ""))


@pytest.fixture
def binds(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every name a bind is sent for."""
    sent: list[str] = []
    original = Connection.bind

    def bind(self: Connection, *args: object, **kwargs: object) -> bool:
        if not str(self.user).startswith("Administrator"):  # tests/samba.py's own look-ups
            sent.append(str(self.user))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Connection, "bind", bind)
    return sent


@pytest.mark.samba
@pytest.mark.parametrize("typed", ["CHILD\\alice", "alice@other.example", "OTHER\\carol",
                                   "TRUSTED\\alice", "alice@trusted.example"])
def test_another_domain_is_refused_before_any_bind(dc: SambaDC, binds: list[str],
                                                   typed: str) -> None:
    before = {u: dc.bad_password_count(u) for u in ("alice", "carol")}
    directory = LdapDirectory(dc.config())
    with pytest.raises(SignInError) as error:
        directory.sign_in(typed, dc.passwords["alice"])
    assert error.value.code == "foreign_domain"
    assert binds == []  # refused on the ping's names: nothing was bound
    assert {u: dc.bad_password_count(u) for u in ("alice", "carol")} == before


@pytest.mark.samba
def test_the_domains_names_come_from_the_directory_not_the_settings(dc: SambaDC,
                                                                    binds: list[str]) -> None:
    directory = LdapDirectory(dc.config(netbios="WRONG"))
    assert directory.sign_in("lab.example\\alice", dc.passwords["alice"]).name == "LAB\\alice"
    assert binds == ["alice@lab.example"]
    with pytest.raises(SignInError, match="WRONG is not the domain of this directory, LAB"):
        directory.sign_in("WRONG\\alice", dc.passwords["alice"])
    with pytest.raises(ConfigError, match="directory.domain is other.example") as error:
        LdapDirectory(dc.config(domain="other.example")).sign_in("alice", dc.passwords["alice"])
    assert error.value.key == "directory.domain" and len(binds) == 1


@pytest.mark.samba
def test_without_the_ping_the_netbios_name_is_read_after_the_bind(
        dc: SambaDC, monkeypatch: pytest.MonkeyPatch) -> None:
    def unreadable(data: bytes) -> DomainNames:
        raise ValueError("no ping here")

    monkeypatch.setattr("console.directory.netlogon_names", unreadable)
    directory = LdapDirectory(dc.config(netbios="WRONG"))
    with directory.session("LAB\\alice", dc.passwords["alice"]) as session:
        assert session.identity.name == "LAB\\alice" and session.names == LAB
        # the ping, the defaultNamingContext; the bind; the crossRef (two), three as ever
        assert session.connection.usage.search_operations == 7
    with pytest.raises(SignInError, match="other.example is not the domain"):
        directory.sign_in("alice@other.example", dc.passwords["alice"])  # refused before the bind


# --- trusted domains: each asked at its own controllers -------------------------------------------

CHILD = TrustedDomainConfig("child.lab.example", ["ldaps://dc1.child.lab.example"])


def test_trusted_settings_are_checked_when_the_directory_is_opened(
        tmp_path: Path, silent_server: SilentServer) -> None:
    home = DirectoryConfig(urls=[silent_server.url], domain="lab.example")
    for trusted, key in (
            (replace(CHILD, urls=["ldap://dc1.child.lab.example"]), "directory.trusted[1].urls[0]"),
            (replace(CHILD, ca_file=str(tmp_path / "none.pem")), "directory.trusted[1].ca_file"),
            (replace(CHILD, urls=[]), "directory.trusted[1].urls")):
        other = TrustedDomainConfig("other.example", ["ldaps://dc1.other.example"])
        with pytest.raises(ConfigError) as error:
            Directories(replace(home, trusted=[other, trusted]))
        assert error.value.key == key
        assert str(error.value).startswith(key)
    time.sleep(0.1)
    assert silent_server.connections == []  # checked without connecting


def test_a_name_goes_to_the_controllers_of_the_domain_typed() -> None:
    directories = open_directory(Config(directory=DirectoryConfig(
        urls=["ldaps://dc1.lab.example"], domain="lab.example", trusted=[CHILD])))
    assert isinstance(directories, Directories)
    child = directories.directory_for("CHILD\\adam")
    assert child.trusted and child.key == "directory.trusted[0]"
    assert (child.config.domain, child.config.urls) == ("child.lab.example", CHILD.urls)
    for typed in ("child\\adam", "adam@child.lab.example", "child.lab.example\\adam", "adam@Child"):
        assert directories.directory_for(typed) is child  # made once, on first use
    for typed in ("adam", "LAB\\adam", "adam@lab.example", "OTHER\\adam", "adam@lab.child.example"):
        assert directories.directory_for(typed) is directories.home
    with pytest.raises(SignInError, match="name@domain"):
        directories.directory_for("A\\b\\c")


def test_a_trusted_domain_is_asked_without_the_home_controllers(closed_url: str,
                                                               silent_server: SilentServer) -> None:
    directories = Directories(DirectoryConfig(
        urls=[silent_server.url], domain="lab.example", timeout=1,
        trusted=[replace(CHILD, urls=[closed_url])]))
    with pytest.raises(SignInError, match="Enter a password"):
        directories.sign_in("CHILD\\adam", "")
    started = time.monotonic()
    with pytest.raises(DirectoryUnavailable) as error:
        directories.sign_in("CHILD\\adam", "secret")
    assert time.monotonic() - started < 1
    assert str(error.value) == (
        f"Accounts of CHILD (child.lab.example), a trusted domain, sign in at its own domain "
        f"controllers, and none of them could be used: {closed_url} refused the connection.")
    assert error.value.code == "unreachable"
    time.sleep(0.1)
    assert silent_server.connections == []


@pytest.fixture
def other(samba_other_dc: SambaDC, dc: SambaDC) -> SambaDC:
    for each in (samba_other_dc, dc):
        each.unlock("alice")
    return samba_other_dc


@pytest.fixture
def both(dc: SambaDC, other: SambaDC) -> Directories:
    """LAB's controller for LAB, OTHER's for OTHER: other.example is a trusted domain of LAB."""
    return Directories(dc.config(trusted=[other.trusted()]))


def _counts(dc: SambaDC, other: SambaDC) -> tuple[int, int]:
    return dc.bad_password_count("alice"), other.bad_password_count("alice")


@pytest.mark.samba
@pytest.mark.parametrize("typed", ["OTHER\\alice", "other\\alice", "alice@other.example",
                                   "other.example\\alice", "alice@OTHER"])
def test_an_account_of_a_trusted_domain_signs_in_at_its_own_controller(
        both: Directories, other: SambaDC, binds: list[str], typed: str) -> None:
    identity = both.sign_in(typed, other.passwords["alice"])
    assert identity.name == "OTHER\\alice"
    assert identity.sid.startswith(OTHER_SID + "-")
    assert (identity.upn, identity.display_name, identity.mail, identity.dn) == (
        "alice@other.example", "Alice Other", "alice@other.example", other.dn("alice"))
    assert identity.extra["server"] == other.ldaps_url
    groups = {g.name: g for g in identity.groups}
    # the token at OTHER's controller: OTHER's groups, nested and primary
    assert groups["OTHER\\HV-Helpdesk"].nested is False
    assert groups["OTHER\\HV-Helpdesk"].sid.startswith(OTHER_SID + "-")
    assert groups["OTHER\\Other-Operators"].nested is True
    assert groups["OTHER\\Domain Users"].sid == f"{OTHER_SID}-513"
    assert not [g for g in identity.groups if g.sid.startswith(DOMAIN_SID)]
    assert len(binds) == 1  # at OTHER's controller only


@pytest.mark.samba
def test_the_same_name_at_home_is_not_confused_with_it(both: Directories, dc: SambaDC,
                                                       other: SambaDC) -> None:
    lab = both.sign_in("alice", dc.passwords["alice"])
    assert both.sign_in("LAB\\alice", dc.passwords["alice"]) == lab
    assert (lab.name, lab.extra["server"]) == ("LAB\\alice", dc.ldaps_url)
    assert lab.sid.startswith(DOMAIN_SID + "-")
    theirs = both.sign_in("OTHER\\alice", other.passwords["alice"])
    # only Everyone, Authenticated Users and the built-in groups (S-1-5-32-...) are alike
    shared = theirs.sids & lab.sids - set(WELL_KNOWN_LOGON_SIDS)
    assert shared and all(sid.startswith("S-1-5-32-") for sid in shared)
    lab_count, other_count = _counts(dc, other)
    # LAB alice's password for OTHER\alice: refused at OTHER, counted there alone
    with pytest.raises(SignInError) as error:
        both.sign_in("OTHER\\alice", dc.passwords["alice"])
    assert error.value.code == "bad_credentials"
    assert _counts(dc, other) == (lab_count, other_count + 1)
    # and the other way round
    with pytest.raises(SignInError):
        both.sign_in("alice", other.passwords["alice"])
    assert _counts(dc, other) == (lab_count + 1, other_count + 1)
    # OTHER has no carol: LAB's carol is never asked
    carol = dc.bad_password_count("carol")
    with pytest.raises(SignInError) as error:
        both.sign_in("OTHER\\carol", dc.passwords["carol"])
    assert error.value.code == "bad_credentials" and dc.bad_password_count("carol") == carol
    # look-ups go to the domain that signed the person in
    with both.session("OTHER\\alice", other.passwords["alice"]) as session:
        helpdesk = session.resolve("HV-Helpdesk")
        assert helpdesk is not None and helpdesk.name == "OTHER\\HV-Helpdesk"
        assert helpdesk.sid.startswith(OTHER_SID + "-")
        assert session.resolve("LAB\\HV-Helpdesk") is None
        assert {m.principal.name for m in session.members("Other-Operators")} == \
            {"OTHER\\HV-Helpdesk", "OTHER\\alice"}


@pytest.mark.samba
@pytest.mark.parametrize("typed", ["THIRD\\alice", "alice@third.example", "CHILD\\alice",
                                   "other.lab.example\\alice", "alice@OTHER.LAB"])
def test_a_domain_that_is_neither_is_refused_before_any_bind(both: Directories, dc: SambaDC,
                                                             other: SambaDC, binds: list[str],
                                                             typed: str) -> None:
    before = _counts(dc, other)
    with pytest.raises(SignInError) as error:
        both.sign_in(typed, other.passwords["alice"])
    assert error.value.code == "foreign_domain"
    domain = typed.split("\\")[0] if "\\" in typed else typed.split("@")[1]
    assert str(error.value) == (f"{domain} is not the domain of this directory, LAB (lab.example): "
                                f"sign in as LAB\\name, name@lab.example or the name alone.")
    assert binds == []
    assert _counts(dc, other) == before


@pytest.mark.samba
def test_a_trusted_domain_whose_controllers_do_not_answer_says_so(
        dc: SambaDC, closed_url: str, silent_server: SilentServer) -> None:
    directories = Directories(dc.config(timeout=1, trusted=[
        TrustedDomainConfig("down.example", [closed_url]),
        TrustedDomainConfig("quiet.example", [silent_server.url, closed_url], netbios="HUSH")]))
    with pytest.raises(DirectoryUnavailable) as error:
        directories.sign_in("DOWN\\adam", "secret")
    assert error.value.code == "unreachable"
    assert str(error.value) == (
        f"Accounts of DOWN (down.example), a trusted domain, sign in at its own domain "
        f"controllers, and none of them could be used: {closed_url} refused the connection.")
    with pytest.raises(DirectoryUnavailable) as error:
        directories.sign_in("HUSH\\adam", "secret")
    assert str(error.value) == (
        f"Accounts of HUSH (quiet.example), a trusted domain, sign in at its own domain "
        f"controllers, and none of them could be used: {silent_server.url} did not answer within "
        f"1 second; {closed_url} refused the connection.")
    # the directory's own people are not held up by it
    assert directories.sign_in("alice", dc.passwords["alice"]).name == "LAB\\alice"


@pytest.mark.samba
def test_a_trusted_domain_whose_settings_its_controller_denies_is_a_setting_to_correct(
        dc: SambaDC, other: SambaDC, binds: list[str]) -> None:
    # child.example's URL leads to OTHER's controller
    wrong_url = Directories(dc.config(trusted=[other.trusted(domain="child.example")]))
    with pytest.raises(ConfigError, match=f"its domain controller {other.ldaps_url} is of "
                                          "other.example") as error:
        wrong_url.sign_in("CHILD\\alice", other.passwords["alice"])
    assert error.value.key == "directory.trusted[0].urls"
    # OTHER's NetBIOS name set wrong: OTHR\\ goes there, and the controller says OTHER
    wrong_name = Directories(dc.config(trusted=[other.trusted(netbios="OTHR")]))
    with pytest.raises(ConfigError, match='set directory.trusted.0..netbios = "OTHER"') as error:
        wrong_name.sign_in("OTHR\\alice", other.passwords["alice"])
    assert error.value.key == "directory.trusted[0].netbios"
    assert binds == []
    assert wrong_name.sign_in("alice@other.example", other.passwords["alice"]).name == "OTHER\\alice"


@pytest.mark.samba
def test_grants_match_the_sids_of_the_domain_that_signed_the_person_in(both: Directories,
                                                                      dc: SambaDC,
                                                                      other: SambaDC) -> None:
    lab = both.sign_in("LAB\\alice", dc.passwords["alice"])
    theirs = both.sign_in("OTHER\\alice", other.passwords["alice"])

    def reviewers(group: str, identity: Identity) -> Policy:
        sid = next(g.sid for g in identity.groups if g.name == group)
        return Policy.from_text(f"[[grants]]\nprincipal = '{group}'\nsid = \"{sid}\"\n"
                                f"role = \"reviewer\"\neverything = true\n")

    # two groups named HV-Helpdesk, one a domain: the grant's SID decides
    lab_grant, other_grant = reviewers("LAB\\HV-Helpdesk", lab), reviewers("OTHER\\HV-Helpdesk", theirs)
    assert lab_grant.global_decision(lab).allows("policy.read")
    assert not lab_grant.global_decision(theirs).allows("policy.read")
    assert other_grant.global_decision(theirs).allows("policy.read")
    assert not other_grant.global_decision(lab).allows("policy.read")


@pytest.mark.samba
def test_whoami_signs_in_an_account_of_a_trusted_domain(dc: SambaDC, other: SambaDC,
                                                        tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[directory]\nurls = ["{dc.ldaps_url}"]\ndomain = "lab.example"\n'
                      f'ca_file = "{dc.ca_file}"\n\n[[directory.trusted]]\n'
                      f'domain = "other.example"\nurls = ["{other.ldap_url}"]\nstart_tls = true\n'
                      f'ca_file = "{other.ca_file}"\n')
    monkeypatch.setattr("sys.stdin", io.StringIO(other.passwords["alice"] + "\n"))
    assert cli.main(["whoami", "--config", str(config), "--user", "alice@other.example",
                     "--password-stdin", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["name"] == "OTHER\\alice" and out["sid"].startswith(OTHER_SID + "-")

"""The lab host's WS-Management server against the real pywinrm client, over real NTLM.

The helpers at the top (an executor, lab accounts, hosts and pywinrm clients) serve the other lab
transport tests too (`from tests.lab.test_wsman import ...`).
"""
from __future__ import annotations

import base64
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import spnego
import winrm
import xmltodict
from requests_ntlm import HttpNtlmAuth
from winrm.exceptions import InvalidCredentialsError, WSManFaultError
from winrm.protocol import Protocol
from winrm.transport import Transport

from lab.auth import Accounts, HostRights, ntlm_identity
from lab.certs import CertPair, make_ca, make_server_cert
from lab.wsman import (ACCESS_DENIED_CODE, COMMAND_LINE_LIMIT, FIRST_USE_PROGRESS, AccessDenied,
                               CommandResult, EventLog, LabUser, WSManServer, seal, unseal)

DOMAIN_SID = "S-1-5-21-1000-2000-3000"
USERS = {  # from docs/lab-world.md
    "LAB\\olivia": (f"{DOMAIN_SID}-1101", "olivia-demo"),
    "LAB\\henry": (f"{DOMAIN_SID}-1102", "henry-demo"),
    "LAB\\adam": (f"{DOMAIN_SID}-1103", "adam-demo"),
}


class EchoExecutor:
    """Answers a few fixed commands so the tests can see what the host was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[LabUser, str]] = []
        self._lock = threading.Lock()

    def run(self, user: LabUser, command_line: str,
            stdin: Callable[[], bytes] = lambda: b"") -> CommandResult:
        with self._lock:
            self.calls.append((user, command_line))
        verb, _, rest = command_line.partition(" ")
        verb = verb.lower()
        if verb == "more":  # echo standard input, as `more` would
            return CommandResult(stdin())
        if verb == "powershell":  # echo the decoded script
            return CommandResult(base64.b64decode(rest.split()[-1]).decode("utf-16-le").encode("utf-8"))
        if verb == "echo":
            return CommandResult(rest.encode("utf-8"))
        if verb == "whoami":
            return CommandResult(f"{user.name} {user.sid} admin={user.admin}".encode())
        if verb == "sleep":
            time.sleep(float(rest))
            return CommandResult(b"slept")
        if verb == "bytes":
            return CommandResult(bytes(i % 251 for i in range(int(rest))))
        if verb == "exit":
            return CommandResult(b"", b"failed\r\n", int(rest))
        if verb == "deny":
            raise AccessDenied("You do not have permission to perform this operation.")
        return CommandResult(b"", f"'{verb}' is not recognized as a command.\r\n".encode(), 1)


def lab_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("lab-") and t.is_alive()]


@pytest.fixture
def accounts() -> Accounts:
    domain = Accounts(lockout_threshold=3)
    for name, (sid, password) in USERS.items():
        domain.add(name, sid, password)
    return domain


@pytest.fixture
def start_host(accounts: Accounts) -> Iterator[Callable[..., WSManServer]]:
    """Start lab hosts (sharing one domain unless told otherwise); all stop at the end."""
    started: list[WSManServer] = []

    def start(name: str = "HV01", executor: Any = None, **options: Any) -> WSManServer:
        options.setdefault("accounts", accounts)
        server = WSManServer(name, executor if executor is not None else EchoExecutor(), **options)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
    assert not lab_threads(), "a lab host left threads running after stop()"


class Clients:
    """pywinrm clients as the console makes them; every HTTP session is closed at the end."""

    def __init__(self) -> None:
        self._transports: list[Transport] = []

    @staticmethod
    def _options(url: str, ca: Path | None, options: dict[str, Any]) -> dict[str, Any]:
        options.setdefault("message_encryption", "always" if url.startswith("http:") else "auto")
        options.setdefault("ca_trust_path", str(ca) if ca else None)
        options.setdefault("proxy", None)  # never an environment proxy on loopback
        return options

    def protocol(self, url: str, user: str = "LAB\\henry", password: str = "henry-demo", *,
                 ca: Path | None = None, **options: Any) -> Protocol:
        protocol = Protocol(url, transport="ntlm", username=user, password=password,
                            **self._options(url, ca, options))
        self._transports.append(protocol.transport)
        return protocol

    def session(self, url: str, user: str = "LAB\\henry", password: str = "henry-demo", *,
                ca: Path | None = None, **options: Any) -> winrm.Session:
        session = winrm.Session(url, auth=(user, password), transport="ntlm",
                                **self._options(url, ca, options))
        self._transports.append(session.protocol.transport)
        return session

    def close(self) -> None:
        for transport in self._transports:
            transport.close_session()


@pytest.fixture
def clients() -> Iterator[Clients]:
    made = Clients()
    yield made
    made.close()


HENRY = "LAB\\henry"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[CertPair, CertPair, CertPair]:
    """(lab CA, server certificate for 127.0.0.1 from it, an unrelated CA)."""
    folder = tmp_path_factory.mktemp("certs")
    ca = make_ca(folder / "ca")
    server = make_server_cert(ca, folder / "server", ["127.0.0.1", "hv01.lab.example"])
    other = make_ca(folder / "other", name="Some Other CA")
    return ca, server, other


# --- the conversation -----------------------------------------------------------------------------

def test_http_ntlm_with_message_encryption_runs_a_command(start_host, clients: Clients) -> None:
    host = start_host()
    session = clients.session(host.url)
    result = session.run_cmd("echo", ["hello", "world"])
    assert (result.std_out, result.status_code) == (b"hello world", 0)
    script = "Get-VM | Select-Object Name"
    assert session.run_ps(script).std_out == script.encode()
    failed = session.run_cmd("exit", ["3"])
    assert (failed.status_code, failed.std_err) == (3, b"failed\r\n")

    stats = host.stats
    # 3 calls x (Create, Command, Receive, Signal, Delete), each one sealed with NTLM.
    assert stats.requests_after_logon == 15
    assert stats.encrypted_requests == stats.requests_after_logon
    assert stats.unencrypted_refused == 0
    assert stats.logons == 3  # run_cmd closes its HTTP session: a new logon per call


def test_unencrypted_message_after_logon_is_refused(start_host) -> None:
    host = start_host()
    create = xmltodict.unparse({"env:Envelope": {
        **Protocol(host.url, username="x", password="y").build_wsman_header(
            action="http://schemas.xmlsoap.org/ws/2004/09/transfer/Create",
            resource_uri="http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"),
        "env:Body": {"rsp:Shell": {"rsp:InputStreams": "stdin", "rsp:OutputStreams": "stdout stderr"}}}})
    with requests.Session() as http:
        http.trust_env = False
        http.auth = HttpNtlmAuth(HENRY, "henry-demo")
        assert http.post(host.url, data=b"").status_code == 200  # the NTLM handshake
        reply = http.post(host.url, data=create.encode(),
                          headers={"Content-Type": "application/soap+xml;charset=UTF-8"})
    assert reply.status_code == 500
    assert b"unencrypted" in reply.content and b'Code="5"' in reply.content
    assert host.stats.unencrypted_refused == 1 and host.stats.encrypted_requests == 0


def test_same_connection_is_kept_for_a_persistent_shell(start_host, clients: Clients) -> None:
    host = start_host()
    protocol = clients.protocol(host.url)
    shell = protocol.open_shell()
    for word in ("one", "two", "three"):
        command = protocol.run_command(shell, "echo", [word])
        assert protocol.get_command_output(shell, command) == (word.encode(), b"", 0)
        protocol.cleanup_command(shell, command)
    protocol.close_shell(shell)
    assert host.stats.connections == 1 and host.stats.logons == 1
    assert host.stats.requests_after_logon == 1 + 3 * 3 + 1


def test_https_with_the_lab_ca(start_host, clients: Clients, certs) -> None:
    ca, server_cert, _ = certs
    host = start_host(tls=server_cert)
    assert host.url.startswith("https://127.0.0.1:")
    session = clients.session(host.url, ca=ca.cert, server_cert_validation="validate")
    assert session.run_cmd("echo", ["over", "tls"]).std_out == b"over tls"
    # On HTTPS NTLM runs without message encryption, as on a real host; the channel binding
    # to the certificate was checked by the acceptor.
    assert host.stats.logons == 1 and host.stats.encrypted_requests == 0
    assert host.channel_bindings is not None


def test_https_with_another_ca_fails_certificate_validation(start_host, clients: Clients, certs) -> None:
    _, server_cert, other = certs
    host = start_host(tls=server_cert)
    session = clients.session(host.url, ca=other.cert, server_cert_validation="validate")
    with pytest.raises(requests.exceptions.SSLError):
        session.run_cmd("echo", ["x"])
    assert host.stats.logons == 0


def test_stdout_in_chunks_is_reassembled(start_host, clients: Clients) -> None:
    host = start_host(chunk_bytes=1000)
    result = clients.session(host.url).run_cmd("bytes", ["10000"])
    assert result.std_out == bytes(i % 251 for i in range(10000))
    # Create, Command, ten Receives, Signal, Delete.
    assert host.stats.requests_after_logon == 14


def test_first_use_progress_comes_back_as_raw_clixml_with_exit_code_zero(start_host,
                                                                          clients: Clients) -> None:
    host = start_host(first_use_progress=True)
    session = clients.session(host.url)
    first, second = session.run_ps("Get-VM"), session.run_ps("Get-VM")
    assert first.status_code == 0 and first.std_err == FIRST_USE_PROGRESS
    assert first.std_err.startswith(b"#< CLIXML\r\n")
    assert second.std_err == b""


def test_operation_timeout_makes_the_client_retry_receive(start_host, clients: Clients) -> None:
    host = start_host()
    protocol = clients.protocol(host.url, operation_timeout_sec=1, read_timeout_sec=3)
    shell = protocol.open_shell()
    command = protocol.run_command(shell, "sleep", ["2.5"])
    started = time.monotonic()
    assert protocol.get_command_output(shell, command) == (b"slept", b"", 0)
    assert time.monotonic() - started >= 2.0
    assert host.stats.operation_timeouts >= 2
    protocol.cleanup_command(shell, command)
    protocol.close_shell(shell)


# --- who may do what ------------------------------------------------------------------------------

def test_wrong_password_is_rejected_and_counted(start_host, clients: Clients, accounts: Accounts) -> None:
    host = start_host()
    with pytest.raises(InvalidCredentialsError):
        clients.session(host.url, password="not-the-password").run_cmd("echo", ["x"])
    assert accounts.get(HENRY).bad_logons == 1
    assert [(e["user"], e["event"], e["outcome"]) for e in host.events] == [(HENRY, "logon", "bad_password")]
    clients.session(host.url).run_cmd("echo", ["x"])
    assert accounts.get(HENRY).bad_logons == 0  # a good logon resets the count, as on a DC


def test_lockout_is_shared_by_every_host_and_refuses_the_right_password(
        start_host, clients: Clients, accounts: Accounts) -> None:
    hv01, hv02 = start_host("HV01"), start_host("HV02")
    for host in (hv01, hv01, hv02):  # threshold 3, spread over two hosts
        with pytest.raises(InvalidCredentialsError):
            clients.session(host.url, password="old-password").run_cmd("echo", ["x"])
    assert accounts.get(HENRY).locked
    for host in (hv01, hv02):
        with pytest.raises(InvalidCredentialsError):
            clients.session(host.url).run_cmd("echo", ["x"])
    assert [e["outcome"] for e in hv01.events.where(event="logon")] \
        == ["bad_password", "bad_password", "locked_out"]
    assert [e["outcome"] for e in hv02.events] == ["bad_password", "locked", "locked_out"]
    assert hv02.events.where(event="account_locked")[0]["id"] == 4740
    # Other accounts are not affected; an unlocked account signs in again.
    assert clients.session(hv01.url, "LAB\\olivia", "olivia-demo").run_cmd("echo", ["x"]).status_code == 0
    accounts.unlock(HENRY)
    assert clients.session(hv02.url).run_cmd("echo", ["x"]).status_code == 0


def test_unknown_and_disabled_accounts_get_401_without_counting(
        start_host, clients: Clients, accounts: Accounts) -> None:
    host = start_host()
    accounts.add("LAB\\dan", f"{accounts.get(HENRY).sid[:-4]}1105", "dan-demo", enabled=False)
    for user, password in (("LAB\\nobody", "x"), ("LAB\\dan", "dan-demo")):
        with pytest.raises(InvalidCredentialsError):
            clients.session(host.url, user, password).run_cmd("echo", ["x"])
    assert [e["outcome"] for e in host.events] == ["unknown_user", "disabled"]
    assert accounts.get("LAB\\dan").bad_logons == 0


@pytest.mark.parametrize("spelling", ["LAB\\henry", "lab\\HENRY", "henry@lab.example", "henry"])
def test_every_spelling_of_a_domain_name_signs_in(start_host, clients: Clients, spelling: str) -> None:
    host = start_host()
    result = clients.session(host.url, spelling).run_cmd("whoami")
    assert result.std_out.startswith(b"LAB\\henry S-1-5-21-1000-2000-3000-1102 admin=False")


def test_user_without_rights_is_refused_the_shell_after_authenticating(start_host, clients: Clients) -> None:
    rights = HostRights.of(users=["LAB\\olivia"], admins=["LAB\\adam"])
    host = start_host(rights=rights)
    with pytest.raises(WSManFaultError) as refused:
        clients.session(host.url).run_cmd("echo", ["x"])
    assert refused.value.wsman_fault_code == ACCESS_DENIED_CODE and refused.value.code == 500
    assert refused.value.reason == "Access is denied."
    assert host.stats.logons == 1  # authenticated first, then refused, as a real host does
    assert [(e["user"], e["event"], e["outcome"]) for e in host.events] == [(HENRY, "shell", "access_denied")]
    admin = clients.session(host.url, "LAB\\adam", "adam-demo").run_cmd("whoami")
    assert admin.std_out.endswith(b"admin=True")
    olivia = clients.session(host.url, "LAB\\olivia", "olivia-demo").run_cmd("whoami")
    assert olivia.std_out.endswith(b"admin=False")


def test_executor_access_denied_is_a_wsman_fault(start_host, clients: Clients) -> None:
    events = EventLog()
    host = start_host(events=events)
    with pytest.raises(WSManFaultError) as refused:
        clients.session(host.url).run_cmd("deny")
    assert refused.value.wsman_fault_code == ACCESS_DENIED_CODE
    assert "do not have permission" in refused.value.reason
    assert events.where(event="command", outcome="access_denied")[0]["host"] == "HV01"


def test_command_line_over_the_cmd_limit_fails_like_a_real_host(start_host, clients: Clients) -> None:
    executor = EchoExecutor()
    host = start_host(executor=executor)
    session = clients.session(host.url)
    fits = "x" * (COMMAND_LINE_LIMIT - len("echo "))
    assert session.run_cmd("echo", [fits]).std_out == fits.encode()
    too_long = session.run_cmd("echo", [fits + "x"])
    assert (too_long.std_out, too_long.std_err, too_long.status_code) == (
        b"", b"The command line is too long.\r\n", 1)
    assert len(executor.calls) == 1  # the executor never saw the long one
    script = "Write-Output '" + "y" * 3100 + "'"  # about 3,000 script characters is the real limit
    assert session.run_ps(script).std_err.startswith(b"The command line is too long.")
    assert host.events.where(event="command", outcome="too_long")


def test_a_commands_standard_input_reaches_it(start_host, clients: Clients) -> None:
    # The operation scripts travel on powershell.exe's standard input (WinRS Send, stdin stream).
    host = start_host(executor=EchoExecutor())
    protocol = clients.session(host.url).protocol
    shell = protocol.open_shell()
    command = protocol.run_command(shell, "more")
    text = "é" * 20_000  # far past cmd.exe's line: stdin has no such limit
    protocol.send_command_input(shell, command, text[:7].encode("utf-8"))
    protocol.send_command_input(shell, command, text[7:].encode("utf-8"), end=True)
    out, err, code = protocol.get_command_output(shell, command)
    assert (out.decode("utf-8"), code) == (text, 0)
    protocol.close_shell(shell)


def test_executor_gets_the_command_line_winrs_would_see(start_host, clients: Clients) -> None:
    executor = EchoExecutor()
    host = start_host(executor=executor)
    clients.session(host.url).run_cmd("powershell", ["-NoProfile", "-NonInteractive", "-EncodedCommand",
                                                     base64.b64encode("1".encode("utf-16-le")).decode()])
    user, line = executor.calls[0]
    assert user == LabUser(HENRY, "S-1-5-21-1000-2000-3000-1102", admin=False)
    assert line == "powershell -NoProfile -NonInteractive -EncodedCommand MQA="


def test_a_shell_belongs_to_its_owner(start_host, clients: Clients) -> None:
    host = start_host()
    henry = clients.protocol(host.url)
    shell = henry.open_shell()
    olivia = clients.protocol(host.url, "LAB\\olivia", "olivia-demo")
    with pytest.raises(WSManFaultError) as not_found:
        olivia.run_command(shell, "echo", ["x"])
    assert "not found" in not_found.value.reason
    henry.close_shell(shell)


# --- several hosts, clean stop ------------------------------------------------------------------

def test_several_hosts_in_one_process_and_a_clean_stop(start_host, clients: Clients) -> None:
    hosts = [start_host(f"HV0{i}") for i in (1, 2, 3)]
    assert len({h.port for h in hosts}) == 3
    for host in hosts:
        assert clients.session(host.url).run_cmd("echo", [host.name]).std_out == host.name.encode()
        assert host.stats.logons == 1
    idle = clients.protocol(hosts[0].url)
    idle.open_shell()  # leaves a kept-alive connection open on the server
    hosts[0].stop()
    assert not [t for t in lab_threads() if t.name.startswith("lab-HV01")]
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", hosts[0].port), timeout=1).close()
    assert clients.session(hosts[1].url).run_cmd("echo", ["still"]).std_out == b"still"


def test_a_given_port_is_used(start_host, clients: Clients) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    host = start_host(port=port)
    assert host.url == f"http://127.0.0.1:{port}/wsman"


def test_two_domains_cannot_own_the_ntlm_user_file_at_once(start_host) -> None:
    start_host()
    with pytest.raises(Exception, match="Another lab domain"):
        start_host("HV09", accounts=Accounts())


# --- pure pieces ----------------------------------------------------------------------------------

def _ntlm_pair(accounts: Accounts) -> tuple[spnego.ContextProxy, spnego.ContextProxy, bytes]:
    client = spnego.client(HENRY, "henry-demo", protocol="ntlm")
    server = spnego.server(protocol="ntlm")
    server_token = server.step(client.step())
    authenticate = client.step(server_token)
    server.step(authenticate)
    return client, server, authenticate or b""


def test_sealed_messages_round_trip_and_tampering_is_detected(accounts: Accounts) -> None:
    accounts.acquire()
    try:
        client, server, authenticate = _ntlm_pair(accounts)
    finally:
        accounts.release()
    assert ntlm_identity(authenticate) == HENRY
    xml = b"<s:Envelope>hello</s:Envelope>"
    body = seal(xml, lambda data: tuple(server.wrap_winrm(data))[:2])  # type: ignore[arg-type]
    assert xml not in body and body.count(b"--Encrypted Boundary") == 3
    assert unseal(body, client.unwrap_winrm) == xml
    with pytest.raises(ValueError):
        unseal(body.replace(b"Length=", b"Length=1"), lambda header, data: data)
    tampered = bytearray(seal(xml, lambda data: tuple(client.wrap_winrm(data))[:2]))  # type: ignore[arg-type]
    tampered[-30] ^= 1
    with pytest.raises(spnego.exceptions.SpnegoError):
        unseal(bytes(tampered), server.unwrap_winrm)


def test_account_names_and_host_rights(accounts: Accounts) -> None:
    assert accounts.canonical("henry@LAB.EXAMPLE") == HENRY
    assert accounts.canonical("lab\\Henry") == HENRY
    assert accounts.canonical("OTHER\\henry") is None
    rights = HostRights.of(users=["henry@lab.example"], admins=["LAB\\ADAM"])
    assert rights.may_connect(accounts, HENRY) and rights.may_connect(accounts, "adam")
    assert not rights.may_connect(accounts, "LAB\\olivia")
    assert rights.is_admin(accounts, "LAB\\adam") and not rights.is_admin(accounts, HENRY)
    with pytest.raises(Exception, match="colon"):
        accounts.set_password(HENRY, "a:b")
    assert "henry-demo" in Path(accounts.user_file).read_text()


def test_command_result_defaults() -> None:
    assert CommandResult(b"out") == CommandResult(b"out", b"", 0)
    assert WSManServer("HV01", EchoExecutor(), accounts=Accounts()).url.startswith("http://127.0.0.1:")


@pytest.mark.parametrize("auth", ["ntlm", "negotiate"])
def test_pypsrp_gets_through_with_raw_and_spnego_wrapped_ntlm(start_host, auth: str) -> None:
    from pypsrp.client import Client
    from pypsrp.exceptions import AuthenticationError

    host = start_host()
    with Client("127.0.0.1", port=host.port, ssl=False, auth=auth, username=HENRY, password="henry-demo",
                encryption="always", proxy=None, no_proxy=True) as client:
        assert client.execute_cmd("echo psrp") == ("psrp", "", 0)
    with Client("127.0.0.1", port=host.port, ssl=False, auth=auth, username=HENRY, password="wrong",
                encryption="always", proxy=None, no_proxy=True) as client, \
            pytest.raises(AuthenticationError):
        client.execute_cmd("echo psrp")
    assert host.stats.encrypted_requests == host.stats.requests_after_logon > 0
    assert [e["outcome"] for e in host.events] == ["bad_password"]

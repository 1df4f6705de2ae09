"""The lab host's WS-Management server: WinRS shells over HTTP(S) with NTLM or Kerberos, for pywinrm.

An unmodified pywinrm client talks to it as to a Windows host: Create a shell, run a Command,
Receive its output (retrying after an operation timeout), Signal, Delete. NTLM, or Kerberos with
a ticket for the host's SPN when the host is given its keys (lab/auth.py), authenticates the TCP
connection; over HTTP every message after the logon must be sealed with the connection's keys
(WinRM message encryption) or it is refused, over HTTPS the channel protects it. A host with
`allow_ntlm=False` refuses NTLM, as a domain that restricts NTLM does.
What a command does is the executor's business: the server hands it the command line WinRS would
see and returns its stdout, stderr and exit code. Faults and costs (lab/faults.py) make
the host slow, flaky or silent on demand.
"""
from __future__ import annotations

import base64
import datetime as dt
import logging
import re
import select
import socket
import ssl
import struct
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import urlsplit
from xml.sax.saxutils import escape, quoteattr

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from spnego.channel_bindings import GssChannelBindings
from spnego.exceptions import SpnegoError

from .auth import (Accounts, HostRights, KerberosKeys, KerberosLogon, LabUser, LogonOutcome, LogonResult,
                   NtlmLogon, decode_auth_header, default_accounts, ntlm_message_type)
from .certs import CertPair
from .faults import CostModel, Faults, Outcome

__all__ = ["AccessDenied", "CommandResult", "EventLog", "Executor", "LabUser", "ServerStats", "WSManServer",
           "COMMAND_LINE_LIMIT", "OPERATION_TIMEOUT_CODE", "ACCESS_DENIED_CODE"]

log = logging.getLogger(__name__)

# cmd.exe's limit on a real host (the console has its own copy: the lab must not trust it).
COMMAND_LINE_LIMIT = 8191
TOO_LONG = b"The command line is too long.\r\n"
OPERATION_TIMEOUT_CODE = 2150858793  # ERROR_WSMAN_OPERATION_TIMEDOUT: the client retries Receive
ACCESS_DENIED_CODE = 5  # ERROR_ACCESS_DENIED
SHELL_NOT_FOUND_CODE = 2150858843  # ERROR_WSMAN_UNEXPECTED_SELECTORS: unknown ShellId
INTERNAL_ERROR_CODE = 2147500037  # E_FAIL
MAX_BODY = 1 << 20  # MaxEnvelopeSize is 150 KiB; sealing adds little

SOAP = "http://www.w3.org/2003/05/soap-envelope"
ADDRESSING = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
WSMAN = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
TRANSFER = "http://schemas.xmlsoap.org/ws/2004/09/transfer"
SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
FAULT_NS = "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"
CMD_URI = SHELL + "/cmd"
NS = {"s": SOAP, "a": ADDRESSING, "w": WSMAN, "x": TRANSFER, "rsp": SHELL}

CREATE = TRANSFER + "/Create"
DELETE = TRANSFER + "/Delete"
COMMAND = SHELL + "/Command"
RECEIVE = SHELL + "/Receive"
SIGNAL = SHELL + "/Signal"
SEND = SHELL + "/Send"
FAULT_ACTION = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
DONE = SHELL + "/CommandState/Done"
RUNNING = SHELL + "/CommandState/Running"

BOUNDARY = b"--Encrypted Boundary"
SPNEGO_ENCRYPTED = "application/HTTP-SPNEGO-session-encrypted"
ENCRYPTED_CONTENT_TYPE = f'multipart/encrypted;protocol="{SPNEGO_ENCRYPTED}";boundary="Encrypted Boundary"'
SOAP_CONTENT_TYPE = "application/soap+xml;charset=UTF-8"

# What a real host prints on stderr the first time a user loads a module: progress only, exit 0.
FIRST_USE_PROGRESS = (
    b'#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
    b'<Obj S="progress" RefId="0"><TN RefId="0"><T>System.Management.Automation.PSCustomObject</T>'
    b'<T>System.Object</T></TN><MS><I64 N="SourceId">1</I64><PR N="Record"><AV>Preparing modules for '
    b'first use.</AV><AI>0</AI><Nil /><PI>-1</PI><PC>-1</PC><T>Completed</T><SR>-1</SR><SD> </SD></PR>'
    b'</MS></Obj></Objs>')


# --- the executor's interface -------------------------------------------------------------------

@dataclass(frozen=True)
class CommandResult:
    stdout: bytes
    stderr: bytes = b""
    exit_code: int = 0


class AccessDenied(Exception):
    """Raised by an executor to refuse a command as an access-denied host does (WS-Man fault, error 5)."""


class Executor(Protocol):
    """Runs one WinRS command line for a user; called from a worker thread, maybe concurrently.
    `stdin()` blocks until the client has sent the command's whole standard input (Send with
    End) and returns it; a command that reads none never calls it."""

    def run(self, user: LabUser, command_line: str,
            stdin: Callable[[], bytes] = lambda: b"") -> CommandResult: ...


class EventLog:
    """A host's event log, shared by the server (logons, refused shells) and its executor.

    Each entry is a dict with at least time (ISO 8601 UTC), host, user, event and outcome.
    """

    def __init__(self, host: str = "") -> None:
        self.host = host
        self._entries: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def write(self, user: str, event: str, outcome: str, **detail: Any) -> dict[str, Any]:
        now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        entry = {"time": now, "host": self.host, "user": user, "event": event, "outcome": outcome, **detail}
        with self._lock:
            self._entries.append(entry)
        return entry

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._entries)

    def where(self, **match: Any) -> list[dict[str, Any]]:
        return [e for e in self.snapshot() if all(e.get(k) == v for k, v in match.items())]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.snapshot())

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __getitem__(self, index: int) -> dict[str, Any]:
        with self._lock:
            return self._entries[index]


@dataclass
class ServerStats:
    """Counters the tests read; `requests_after_logon` counts every request on an authenticated
    connection that is not itself a logon leg, `encrypted_requests` those that came sealed."""

    connections: int = 0
    requests: int = 0
    logons: int = 0
    kerberos_logons: int = 0  # of `logons`, those with a Kerberos ticket
    logon_failures: int = 0
    requests_after_logon: int = 0
    encrypted_requests: int = 0
    unencrypted_refused: int = 0
    commands: int = 0
    process_starts: int = 0  # powershell.exe for a WinRS command, wsmprovhost.exe for a PSRP pool
    operation_timeouts: int = 0
    injected_failures: int = 0
    dropped: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + n)

    def as_dict(self) -> dict[str, int]:
        with self._lock:
            return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}


# --- WS-Management faults -----------------------------------------------------------------------

class WSManFault(Exception):
    """A fault reply (HTTP 500) as a Windows host words it."""

    def __init__(self, message: str, subcode: str, code: int | None = None, receiver: bool = False) -> None:
        super().__init__(message)
        self.message, self.subcode, self.code, self.receiver = message, subcode, code, receiver

    def xml(self, machine: str) -> str:
        code = f" Code={quoteattr(str(self.code))}" if self.code is not None else ""
        text = escape(self.message)
        return (f'<s:Fault><s:Code><s:Value>{"s:Receiver" if self.receiver else "s:Sender"}</s:Value>'
                f'<s:Subcode><s:Value>{self.subcode}</s:Value></s:Subcode></s:Code>'
                f'<s:Reason><s:Text xml:lang="en-US">{text}</s:Text></s:Reason>'
                f'<s:Detail><f:WSManFault xmlns:f="{FAULT_NS}"{code} Machine={quoteattr(machine)}>'
                f'<f:Message>{text}</f:Message></f:WSManFault></s:Detail></s:Fault>')


def access_denied(message: str = "Access is denied.") -> WSManFault:
    return WSManFault(message, "w:AccessDenied", ACCESS_DENIED_CODE)


def _timed_out() -> WSManFault:
    return WSManFault("The WS-Management service cannot complete the operation within the time specified "
                      "in OperationTimeout.", "w:TimedOut", OPERATION_TIMEOUT_CODE, receiver=True)


def _not_found(shell_id: str, what: str = "shell") -> WSManFault:
    return WSManFault(f"The request for the Windows Remote Shell with ShellId {shell_id} failed because the "
                      f"{what} was not found on the server.", "w:InvalidSelectors", SHELL_NOT_FOUND_CODE)


def _internal_error(message: str) -> WSManFault:
    return WSManFault(message, "w:InternalError", INTERNAL_ERROR_CODE, receiver=True)


def _unencrypted() -> WSManFault:
    return WSManFault("The WS-Management service refuses unencrypted traffic on this HTTP listener "
                      "(AllowUnencrypted is false).", "w:AccessDenied", ACCESS_DENIED_CODE)


# --- the message format -------------------------------------------------------------------------

@dataclass(frozen=True)
class _Request:
    action: str
    message_id: str
    shell_id: str
    timeout: float
    body: ET.Element
    resource_uri: str = ""

    @classmethod
    def parse(cls, xml: bytes) -> _Request:
        root = ET.fromstring(xml)
        header, body = root.find("s:Header", NS), root.find("s:Body", NS)
        if header is None or body is None:
            raise ValueError("not a SOAP envelope")
        selector = header.find("w:SelectorSet/w:Selector[@Name='ShellId']", NS)
        return cls(action=(header.findtext("a:Action", "", NS)).strip(),
                   message_id=(header.findtext("a:MessageID", "", NS)).strip(),
                   shell_id=(selector.text or "").strip() if selector is not None else "",
                   timeout=_duration(header.findtext("w:OperationTimeout", "", NS)),
                   body=body, resource_uri=header.findtext("w:ResourceURI", "", NS).strip())


def _duration(text: str, default: float = 60.0) -> float:
    """Seconds of an xs:duration like PT20S or PT20.000S (a real host's default is 60 s)."""
    match = re.fullmatch(r"PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?", text.strip())
    if not match or not any(match.groups()):
        return default
    hours, minutes, seconds = match.groups()
    return int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds or 0)


def _relates_to(xml: bytes) -> str:
    try:
        return _Request.parse(xml).message_id
    except (ET.ParseError, ValueError):
        return ""


def envelope(action: str, relates_to: str, body: str) -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?><s:Envelope xml:lang="en-US" xmlns:s="{SOAP}" '
            f'xmlns:a="{ADDRESSING}" xmlns:x="{TRANSFER}" xmlns:w="{WSMAN}" xmlns:rsp="{SHELL}">'
            f'<s:Header><a:Action>{action}</a:Action><a:MessageID>uuid:{_new_id()}</a:MessageID>'
            f'<a:To>{ADDRESSING}/role/anonymous</a:To><a:RelatesTo>{escape(relates_to)}</a:RelatesTo>'
            f'</s:Header><s:Body>{body}</s:Body></s:Envelope>').encode()


def seal(xml: bytes, wrap: Callable[[bytes], tuple[bytes, bytes]]) -> bytes:
    """WinRM message encryption (MS-WSMV 2.2.9.1.1): `wrap` returns the signature (NTLM's 16
    bytes, Kerberos' wrap token header) and the sealed data; the part holds its length first."""
    header, sealed = wrap(xml)
    return (BOUNDARY + b"\r\n\tContent-Type: " + SPNEGO_ENCRYPTED.encode() + b"\r\n"
            b"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=" + str(len(xml)).encode()
            + b"\r\n" + BOUNDARY + b"\r\n\tContent-Type: application/octet-stream\r\n"
            + struct.pack("<I", len(header)) + header + sealed + BOUNDARY + b"--\r\n")


def unseal(body: bytes, unwrap: Callable[[bytes, bytes], bytes]) -> bytes:
    """The SOAP message inside a multipart/encrypted body; ValueError if it is malformed."""
    first = BOUNDARY + b"\r\n"
    if not body.startswith(first):
        raise ValueError("no encrypted boundary")
    second = body.find(first, len(first))
    if second < 0:
        raise ValueError("no payload part")
    length = re.search(rb"Length=(\d+)", body[len(first):second])
    payload = body[second + len(first):]
    prefix = b"\tContent-Type: application/octet-stream\r\n"
    end = BOUNDARY + b"--\r\n"
    if length is None or not payload.startswith(prefix) or not payload.endswith(end):
        raise ValueError("malformed encrypted part")
    payload = payload[len(prefix):-len(end)]
    signature = struct.unpack_from("<I", payload)[0] if len(payload) >= 4 else 0
    if not 16 <= signature <= 1024 or len(payload) < 4 + signature:
        raise ValueError("unexpected signature length")
    xml = unwrap(payload[4:4 + signature], payload[4 + signature:])
    if len(xml) != int(length.group(1)):
        raise ValueError("length mismatch")
    return xml


def shell_created(url: str, resource_uri: str, shell_id: str, user: str, client_ip: str,
                  input_streams: str, output_streams: str) -> str:
    """The body of a Create response: where the new shell lives and what it is (cmd or PSRP)."""
    uri = escape(resource_uri)
    return (
        f'<x:ResourceCreated><a:Address>{escape(url)}</a:Address><a:ReferenceParameters>'
        f'<w:ResourceURI>{uri}</w:ResourceURI><w:SelectorSet>'
        f'<w:Selector Name="ShellId">{shell_id}</w:Selector></w:SelectorSet>'
        f'</a:ReferenceParameters></x:ResourceCreated>'
        f'<rsp:Shell><rsp:ShellId>{shell_id}</rsp:ShellId><rsp:ResourceUri>{uri}</rsp:ResourceUri>'
        f'<rsp:Owner>{escape(user)}</rsp:Owner><rsp:ClientIP>{escape(client_ip)}</rsp:ClientIP>'
        f'<rsp:IdleTimeOut>PT7200.000S</rsp:IdleTimeOut>'
        f'<rsp:InputStreams>{input_streams}</rsp:InputStreams>'
        f'<rsp:OutputStreams>{output_streams}</rsp:OutputStreams></rsp:Shell>')


def _new_id() -> str:
    return str(uuid.uuid4()).upper()


def _stream(name: str, command_id: str, data: bytes = b"", end: bool = False) -> str:
    end_attr = ' End="true"' if end else ""
    return (f'<rsp:Stream Name="{name}" CommandId="{command_id}"{end_attr}>'
            f'{base64.b64encode(data).decode("ascii")}</rsp:Stream>')


# --- shells and commands ------------------------------------------------------------------------

@dataclass(eq=False)
class _Command:
    id: str
    line: str
    user: LabUser
    done: threading.Event = field(default_factory=threading.Event)
    result: CommandResult | None = None
    fault: WSManFault | None = None
    stdout_sent: int = 0
    stderr_sent: int = 0
    stdin: bytearray = field(default_factory=bytearray)
    stdin_done: threading.Event = field(default_factory=threading.Event)
    stdin_wait: float = 60.0  # how long a process waits for its input before reading an empty one

    def read_stdin(self) -> bytes:
        self.stdin_done.wait(self.stdin_wait)
        return bytes(self.stdin)


@dataclass(eq=False)
class _Shell:
    id: str
    owner: str
    commands: dict[str, _Command] = field(default_factory=dict)


# --- the server ---------------------------------------------------------------------------------

class WSManServer:
    """One lab host: a WinRS endpoint on 127.0.0.1 that runs commands through `executor`.

    accounts: the domain (shared by every host of a process; default_accounts() if omitted).
    rights: who may open a shell and who is a host administrator (default: every account, no admin).
    events: the host's event log, to share with the executor (a new one if omitted).
    faults, cost: changeable while the host runs; the cost model is the executor's too (one
    object: where PowerShell pays a cost, the executor does). tls: serve HTTPS with this certificate.
    chunk_bytes: at most this much stdout (and stderr) per Receive (None: all at once).
    kerberos: the host's keytab and SPN, to accept Kerberos tickets (None: NTLM only).
    allow_ntlm: False refuses NTLM logons (the host then needs `kerberos`).
    first_use_progress: the first successful command of each user gets a CLIXML progress record
    on stderr, as a real host prints when it prepares modules for first use.
    """

    def __init__(self, name: str, executor: Executor, *, accounts: Accounts | None = None,
                 rights: HostRights | None = None, events: EventLog | None = None,
                 faults: Faults | None = None, cost: CostModel | None = None, tls: CertPair | None = None,
                 port: int = 0, chunk_bytes: int | None = None, first_use_progress: bool = False,
                 kerberos: KerberosKeys | None = None, allow_ntlm: bool = True) -> None:
        self.name = name
        self.kerberos = kerberos
        self.allow_ntlm = allow_ntlm
        self.executor = executor
        self.accounts = accounts if accounts is not None else default_accounts()
        self.rights = rights if rights is not None else HostRights()
        self.events = events if events is not None else EventLog(name)
        if not self.events.host:
            self.events.host = name
        self.faults = faults if faults is not None else Faults()
        own = getattr(executor, "cost", None)
        self.cost = cost if cost is not None else own if isinstance(own, CostModel) else CostModel()
        if isinstance(own, CostModel):
            executor.cost = self.cost  # type: ignore[attr-defined]  # lab.executor.Executor's
        self.tls = tls
        self.chunk_bytes = chunk_bytes
        self.first_use_progress = first_use_progress
        self.stats = ServerStats()
        # Other resources than the cmd shell (lower-case ResourceURI -> handler), e.g. the JEA
        # endpoint of lab/psrp.py; a handler answers every action sent to its resource.
        self.resources: dict[str, Callable[[str, _Request, str], tuple[str, str]]] = {}
        self._port = port
        self._lock = threading.Lock()
        self._shells: dict[str, _Shell] = {}
        self._progress_shown: set[str] = set()
        self._command_threads: set[threading.Thread] = set()
        self._stopping = threading.Event()
        self._server: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.tls_context: ssl.SSLContext | None = None
        self.channel_bindings: GssChannelBindings | None = None

    # --- life cycle -----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self._port}/wsman"

    def start(self) -> str:
        """Listen on 127.0.0.1 (the given port, or an ephemeral one) and return the endpoint URL."""
        if self._server is not None:
            return self.url
        if self.tls is not None:
            self.tls_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls_context.load_cert_chain(self.tls.cert, self.tls.key)
            self.channel_bindings = _channel_bindings(self.tls)
        self.accounts.acquire()
        try:
            self._stopping = threading.Event()
            self._server = _HTTPServer(self, ("127.0.0.1", self._port))
        except BaseException:
            self.accounts.release()
            raise
        self._port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"lab-{self.name}", daemon=True)
        self._thread.start()
        return self.url

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening, close every connection, and join the server's threads."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        deadline = time.monotonic() + timeout
        server.shutdown()
        server.server_close()
        server.close_connections()
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))
        server.join_handlers(deadline)
        with self._lock:
            threads, self._shells = list(self._command_threads), {}
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                log.warning("lab host %s: a command still runs after stop", self.name)
        self.accounts.release()

    def __enter__(self) -> WSManServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def pause(self, seconds: float) -> bool:
        """Sleep unless the host stops first; False when it stopped."""
        return seconds <= 0 or not self._stopping.wait(seconds)

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    # --- logons ---------------------------------------------------------------------------------

    def logon_failed(self, result: LogonResult, client_ip: str) -> None:
        self.stats.add("logon_failures")
        self.events.write(result.user, "logon", result.outcome.value, id=4625, client=client_ip)
        if result.now_locked:
            self.events.write(result.user, "account_locked", "locked", id=4740, client=client_ip)

    def lab_user(self, name: str) -> LabUser:
        account = self.accounts.get(name)
        return LabUser(account.name if account else name, account.sid if account else "",
                       self.rights.is_admin(self.accounts, name))

    # --- WS-Management messages -----------------------------------------------------------------

    def respond(self, user: str, xml: bytes, client_ip: str) -> tuple[int, bytes]:
        """(HTTP status, reply envelope) for one message from an authenticated user."""
        try:
            request = _Request.parse(xml)
        except (ET.ParseError, ValueError):
            fault = WSManFault("The WS-Management service cannot process the request because the XML is "
                               "invalid.", "w:SchemaValidationError")
            return 500, envelope(FAULT_ACTION, "", fault.xml(self.name))
        handlers = {CREATE: self._create, COMMAND: self._command, SEND: self._send,
                    RECEIVE: self._receive, SIGNAL: self._signal, DELETE: self._delete}
        try:
            handler = self.resources.get(request.resource_uri.lower()) or handlers.get(request.action)
            if handler is None:
                raise WSManFault(f"The WS-Management service cannot process the action {request.action}.",
                                 "w:ActionNotSupported")
            action, body = handler(user, request, client_ip)
            return 200, envelope(action, request.message_id, body)
        except WSManFault as fault:
            return 500, envelope(FAULT_ACTION, request.message_id, fault.xml(self.name))

    def fault_reply(self, fault: WSManFault, xml: bytes) -> bytes:
        return envelope(FAULT_ACTION, _relates_to(xml), fault.xml(self.name))

    def _create(self, user: str, request: _Request, client_ip: str) -> tuple[str, str]:
        if not self.rights.may_connect(self.accounts, user):
            self.events.write(user, "shell", "access_denied", client=client_ip)
            raise access_denied()
        shell = _Shell(_new_id(), user)
        with self._lock:
            self._shells[shell.id] = shell
        return CREATE + "Response", shell_created(self.url, CMD_URI, shell.id, user, client_ip,
                                                  "stdin", "stdout stderr")

    def _command(self, user: str, request: _Request, client_ip: str) -> tuple[str, str]:
        shell = self._shell(user, request.shell_id)
        command_line = request.body.find("rsp:CommandLine", NS)
        if command_line is None:
            raise WSManFault("The Command message holds no CommandLine.", "w:SchemaValidationError")
        # What WinRS hands to cmd.exe: the command, then each argument, single spaces between.
        parts = [command_line.findtext("rsp:Command", "", NS)]
        parts += [a.text or "" for a in command_line.findall("rsp:Arguments", NS)]
        command = _Command(command_line.get("CommandId") or _new_id(), " ".join(parts), self.lab_user(user))
        thread = threading.Thread(target=self._run, args=(command,), name=f"lab-{self.name}-command",
                                  daemon=True)
        with self._lock:
            shell.commands[command.id] = command
            self._command_threads.add(thread)
        self.stats.add("commands")
        thread.start()
        return COMMAND + "Response", f"<rsp:CommandResponse><rsp:CommandId>{command.id}</rsp:CommandId>" \
                                     f"</rsp:CommandResponse>"

    def _run(self, command: _Command) -> None:
        try:
            if len(command.line) > COMMAND_LINE_LIMIT:
                # cmd.exe refuses before any process starts: stderr and exit code 1, as a real host.
                self.events.write(command.user.name, "command", "too_long", length=len(command.line))
                command.result = CommandResult(b"", TOO_LONG, 1)
                return
            self.stats.add("process_starts")
            if not self.pause(self.cost.process_start_ms / 1000):
                return
            result = self.executor.run(command.user, command.line, command.read_stdin)
            if self.first_use_progress and result.exit_code == 0 and not result.stderr:
                with self._lock:
                    first = command.user.name.lower() not in self._progress_shown
                    self._progress_shown.add(command.user.name.lower())
                if first:
                    result = replace(result, stderr=FIRST_USE_PROGRESS)
            command.result = result
        except AccessDenied as denied:
            self.events.write(command.user.name, "command", "access_denied", reason=str(denied))
            command.fault = access_denied(str(denied) or "Access is denied.")
        except Exception as error:  # the executor's bug: surface it to the client, keep serving
            log.exception("lab host %s: executor failed", self.name)
            command.fault = _internal_error(f"The lab host's executor failed: {error}")
        finally:
            command.done.set()
            with self._lock:
                self._command_threads.discard(threading.current_thread())

    def _send(self, user: str, request: _Request, client_ip: str) -> tuple[str, str]:
        """A command's standard input (rsp:Stream Name="stdin", base64, End="true" at the end)."""
        shell = self._shell(user, request.shell_id)
        stream = request.body.find("rsp:Send/rsp:Stream", NS)
        if stream is None or stream.get("Name") != "stdin":
            raise WSManFault("The Send message holds no stdin stream.", "w:SchemaValidationError")
        command = shell.commands.get(stream.get("CommandId", ""))
        if command is None:
            raise _not_found(shell.id, "command")
        command.stdin += base64.b64decode(stream.text or "")
        if (stream.get("End") or "").lower() == "true":
            command.stdin_done.set()
        return SEND + "Response", "<rsp:SendResponse/>"

    def _receive(self, user: str, request: _Request, client_ip: str) -> tuple[str, str]:
        shell = self._shell(user, request.shell_id)
        desired = request.body.find("rsp:Receive/rsp:DesiredStream", NS)
        command = shell.commands.get(desired.get("CommandId", "") if desired is not None else "")
        if command is None:
            raise _not_found(shell.id, "command")
        if not self._wait(command.done, request.timeout):
            self.stats.add("operation_timeouts")
            raise _timed_out()
        if command.fault is not None:
            raise command.fault
        result = command.result or CommandResult(b"", b"", 1)
        with self._lock:
            chunk = self.chunk_bytes or max(len(result.stdout), len(result.stderr), 1)
            out = result.stdout[command.stdout_sent:command.stdout_sent + chunk]
            err = result.stderr[command.stderr_sent:command.stderr_sent + chunk]
            command.stdout_sent += len(out)
            command.stderr_sent += len(err)
            finished = command.stdout_sent >= len(result.stdout) and command.stderr_sent >= len(result.stderr)
        streams = (_stream("stdout", command.id, out) if out else "") + (
            _stream("stderr", command.id, err) if err else "")
        if finished:
            streams += _stream("stdout", command.id, end=True) + _stream("stderr", command.id, end=True)
            state = (f'<rsp:CommandState CommandId="{command.id}" State="{DONE}">'
                     f"<rsp:ExitCode>{result.exit_code}</rsp:ExitCode></rsp:CommandState>")
        else:
            state = f'<rsp:CommandState CommandId="{command.id}" State="{RUNNING}"/>'
        return RECEIVE + "Response", f"<rsp:ReceiveResponse>{streams}{state}</rsp:ReceiveResponse>"

    def _signal(self, user: str, request: _Request, client_ip: str) -> tuple[str, str]:
        shell = self._shell(user, request.shell_id)
        signal = request.body.find("rsp:Signal", NS)
        command_id = signal.get("CommandId", "") if signal is not None else ""
        with self._lock:
            if shell.commands.pop(command_id, None) is None:
                raise _not_found(shell.id, "command")
        return SIGNAL + "Response", "<rsp:SignalResponse/>"

    def _delete(self, user: str, request: _Request, client_ip: str) -> tuple[str, str]:
        shell = self._shell(user, request.shell_id)
        with self._lock:
            self._shells.pop(shell.id, None)
        return DELETE + "Response", ""

    def _shell(self, user: str, shell_id: str) -> _Shell:
        with self._lock:
            shell = self._shells.get(shell_id)
        # A shell belongs to the user who created it; others cannot see it.
        if shell is None or shell.owner.lower() != user.lower():
            raise _not_found(shell_id)
        return shell

    def _wait(self, done: threading.Event, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while not done.wait(min(0.05, max(0.0, deadline - time.monotonic()))):
            if self._stopping.is_set() or time.monotonic() >= deadline:
                return done.is_set()
        return True


def _channel_bindings(pair: CertPair) -> GssChannelBindings:
    """tls-server-end-point bindings of the certificate (RFC 5929), as the client computes them."""
    cert = x509.load_pem_x509_certificate(pair.cert.read_bytes())
    algorithm = cert.signature_hash_algorithm
    if algorithm is None or algorithm.name in {"md5", "sha1"}:
        algorithm = hashes.SHA256()
    digest = hashes.Hash(algorithm)
    digest.update(cert.public_bytes(serialization.Encoding.DER))
    return GssChannelBindings(application_data=b"tls-server-end-point:" + digest.finalize())


# --- HTTP ---------------------------------------------------------------------------------------

class _HTTPServer(ThreadingHTTPServer):
    """One thread per TCP connection; tracks connections so stop() can close them and join."""

    daemon_threads = True

    def __init__(self, host: WSManServer, address: tuple[str, int]) -> None:
        self.host = host
        self._tracked = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._handlers: set[threading.Thread] = set()
        super().__init__(address, _Handler)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        thread, connection = threading.current_thread(), request
        thread.name = f"lab-{self.host.name}-connection"
        with self._tracked:
            self._handlers.add(thread)
        try:
            self.host.stats.add("connections")
            if self.host.tls_context is not None:
                # The TLS handshake runs here, in the connection's thread, not in the accept loop.
                request.settimeout(10)
                connection = self.host.tls_context.wrap_socket(request, server_side=True)
                connection.settimeout(None)
            with self._tracked:
                self._connections.add(connection)
            if not self.host.stopping:
                self.finish_request(connection, client_address)
        except Exception:
            self.handle_error(connection, client_address)
        finally:
            with self._tracked:
                self._connections.discard(connection)
                self._handlers.discard(thread)
            self.shutdown_request(connection)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that give up, reset or refuse our certificate are part of the lab's life.
        log.debug("lab host %s: connection from %s ended with an error", self.host.name, client_address,
                  exc_info=True)

    def close_connections(self) -> None:
        with self._tracked:
            connections = list(self._connections)
        for connection in connections:
            try:
                socket.socket.shutdown(connection, socket.SHUT_RDWR)  # wakes a thread blocked reading
            except OSError:
                pass

    def join_handlers(self, deadline: float) -> None:
        with self._tracked:
            handlers = list(self._handlers)
        for thread in handlers:
            thread.join(max(0.0, deadline - time.monotonic()))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Microsoft-HTTPAPI/2.0"
    sys_version = ""
    disable_nagle_algorithm = True  # else delayed ACKs cost ~180 ms a call
    server: _HTTPServer
    logon: NtlmLogon | KerberosLogon | None = None
    _auth_reply: str | None = None  # SPNEGO's final token, for the reply to the third leg

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("lab host %s: " + format, self.server.host.name, *args)

    def do_GET(self) -> None:
        self._reply(405, headers=[("Allow", "POST")])

    def do_POST(self) -> None:
        host = self.server.host
        host.stats.add("requests")
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.close_connection = True
            self._reply(413)
            return
        body = self.rfile.read(length) if length else b""
        if not host.pause((host.faults.latency_ms + host.cost.latency_ms) / 1000):
            self.close_connection = True
            return
        if host.faults.silent:
            self._hang()
            return
        if urlsplit(self.path).path.rstrip("/").lower() != "/wsman":
            self._reply(404)
            return
        authorization = self.headers.get("Authorization")
        if authorization is not None:
            if not self._logon_leg(authorization):
                return
            if not body:
                self._reply(200)
                return
            # Over HTTPS the third leg carries the first message; over HTTP it is refused below.
        elif self.logon is None or not self.logon.complete:
            self._reply(401, headers=[("WWW-Authenticate", "Negotiate")])
            return
        else:
            host.stats.add("requests_after_logon")
        self._message(body)

    def _logon_leg(self, authorization: str) -> bool:
        """One NTLM leg; True once the connection is authenticated."""
        host = self.server.host
        parsed = decode_auth_header(authorization)
        kind = ntlm_message_type(parsed[1]) if parsed else None
        if parsed is not None and kind is None:
            return self._kerberos_leg(parsed[0], parsed[1])
        if parsed is not None and kind in (1, 3) and not host.allow_ntlm:
            host.logon_failed(LogonResult(LogonOutcome.NTLM_REFUSED, ""), self.client_address[0])
        elif parsed is not None and kind == 1:
            self.logon = NtlmLogon(host.accounts, host.channel_bindings)
            try:
                challenge = self.logon.negotiate(parsed[1])
            except Exception:  # not a NEGOTIATE message we can read: start over
                self.logon = None
            else:
                token = base64.b64encode(challenge).decode("ascii")
                self._reply(401, headers=[("WWW-Authenticate", f"{parsed[0]} {token}")])
                return False
        elif parsed is not None and kind == 3 and isinstance(self.logon, NtlmLogon):
            result = self.logon.authenticate(parsed[1])
            if result.outcome is LogonOutcome.SUCCESS:
                host.stats.add("logons")
                if self.logon.final_token:
                    token = base64.b64encode(self.logon.final_token).decode("ascii")
                    self._auth_reply = f"{parsed[0]} {token}"
                return True
            host.logon_failed(result, self.client_address[0])
        self.logon = None
        self._reply(401, headers=[("WWW-Authenticate", "Negotiate")])
        return False

    def _kerberos_leg(self, scheme: str, token: bytes) -> bool:
        """A Kerberos ticket (raw, or in SPNEGO): one leg; True once accepted."""
        host = self.server.host
        self.logon = None
        if host.kerberos is not None:
            logon = KerberosLogon(host.accounts, host.kerberos, host.channel_bindings)
            result = logon.accept(token)
            if result.outcome is LogonOutcome.SUCCESS:
                host.stats.add("logons")
                host.stats.add("kerberos_logons")
                self.logon = logon
                if logon.final_token:
                    self._auth_reply = f"{scheme} {base64.b64encode(logon.final_token).decode('ascii')}"
                return True
            log.debug("lab host %s refused a Kerberos logon: %s", host.name, logon.reason)
            host.logon_failed(result, self.client_address[0])
        self._reply(401, headers=[("WWW-Authenticate", "Negotiate")])
        return False

    def _message(self, body: bytes) -> None:
        host, logon = self.server.host, self.logon
        assert logon is not None and logon.user is not None
        encrypted = self.headers.get("Content-Type", "").lower().startswith("multipart/encrypted")
        if encrypted:
            host.stats.add("encrypted_requests")
            try:
                xml = unseal(body, logon.unwrap)
            except (ValueError, SpnegoError):
                # The connection's NTLM sequence is broken: nothing more can be read on it.
                self.close_connection = True
                self._reply(400)
                return
        elif host.tls is None:
            host.stats.add("unencrypted_refused")
            self._reply(500, host.fault_reply(_unencrypted(), body), SOAP_CONTENT_TYPE)
            return
        else:
            xml = body
        fate = host.faults.roll()
        if fate is Outcome.DROP:
            host.stats.add("dropped")
            self.close_connection = True  # the connection closes with no reply
            return
        if fate is Outcome.FAIL:
            host.stats.add("injected_failures")
            status, reply = 500, host.fault_reply(_internal_error(
                "The WS-Management service cannot process the request because of an internal error."), xml)
        else:
            status, reply = host.respond(logon.user, xml, self.client_address[0])
        if encrypted:
            self._reply(status, seal(reply, logon.wrap), ENCRYPTED_CONTENT_TYPE)
        else:
            self._reply(status, reply, SOAP_CONTENT_TYPE)

    def _hang(self) -> None:
        """Never answer: wait until the client gives up or the host stops."""
        host, connection = self.server.host, self.connection
        self.close_connection = True
        while not host.stopping:
            readable, _, _ = select.select([connection], [], [], 0.05)
            if readable:
                try:
                    if not connection.recv(4096):
                        return
                except ssl.SSLWantReadError:
                    continue
                except OSError:
                    return

    def _reply(self, status: int, body: bytes = b"", content_type: str | None = None,
               headers: list[tuple[str, str]] | None = None) -> None:
        self.send_response(status)
        if self._auth_reply is not None:
            self.send_header("WWW-Authenticate", self._auth_reply)
            self._auth_reply = None
        for name, value in headers or []:
            self.send_header(name, value)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

"""The lab host's PowerShell endpoints: PowerShell Remoting Protocol (PSRP) over the lab's
WS-Management, for two session configurations: the default one (Microsoft.PowerShell, full
PowerShell for the host's administrators: DefaultEndpoint) and the generated JEA one (HvConsole:
JeaEndpoint). A runspace pool is kept open by its client and runs its pipelines in its own
runspaces (as many at once as the client's MaxRunspaces); opening one starts the session's
process (the cost model's process_start_ms, and jea_session_ms for JEA).

pypsrp opens a runspace pool with a Create to http://schemas.microsoft.com/powershell/<name>
carrying PSRP fragments; the first Receive returns SESSION_CAPABILITY, APPLICATION_PRIVATE_DATA
and RUNSPACEPOOL_STATE=Opened. A Command carries CREATE_PIPELINE (continued through Send when
large); its Receive returns the output objects and PIPELINE_STATE as CLIXML. Signal and Delete
close. pypsrp's own Fragment, Message and Serializer pack and unpack both directions.

The default endpoint runs the scripts it is sent in the lab's interpreter, as the WinRS path's
powershell.exe does (the executor's runspace: same cmdlets, files, language mode and record of
changing cmdlets), judged by the facts like everything the lab runs; see DefaultEndpoint.

The JEA endpoint behaves as the generated JEA files (console/jea.py) make a real host behave:
- a session only for users named, directly or through a group, in the .pssc's RoleDefinitions;
- NoLanguage: script text (AddScript, Invoke-Expression) and any command outside the .psrc's
  VisibleFunctions are refused, as RestrictedRemoteServer refuses them;
- parameters bound and validated against the param() blocks of the generated functions as
  PowerShell binds them ([guid] takes the D, N, B, P and X forms and shows D; [int] converts as
  5.1 does; ValidateSet ignores case and keeps the caller's spelling, which the function then
  turns into the set's; ValidatePattern is a .NET regex, IgnoreCase; ValidateLength counts UTF-16
  units; a mandatory parameter refuses null and the empty string);
- the function itself run in the lab's PowerShell (lab.pwsh) as the endpoint's virtual
  account (a member of Hyper-V Administrators), with $PSSenderInfo carrying the caller's token
  SIDs, and only the commands a JEA session reaches by Microsoft's facts (the engine's binary
  cmdlets and the role capability's ModulesToImport; no module autoloading): a function that
  calls an unreachable command fails here as on Windows. Its caller check, its grants literal,
  the operation script it embeds and its Write-EventLog decide and record, not Python;
- with `event_log_error` set, the host's event log refuses and the function's answer carries
  `log_error`.
"""
from __future__ import annotations

import base64
import itertools
import logging
import re
import struct
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Self

from pypsrp.complex_objects import PSInvocationState, RunspacePoolState
from pypsrp.messages import (
    ApplicationPrivateData, Destination, Message, MessageType, PipelineState, SessionCapability,
    RunspacePoolStateMessage,
)
from pypsrp.powershell import Fragment
from pypsrp.serializer import Serializer

from console import jea

from . import psd1
from console.errors import ConsoleError
from console.identity import Identity
from console.powershell import facts
from .auth import Accounts, LabUser
from .pwsh import Runspace
from .pwsh.convert import to_str
from .pwsh.values import ErrorRecord, PSObject
from .executor import Executor, HostEvent
from .wsman import (
    COMMAND, CREATE, DELETE, NS, RECEIVE, SIGNAL, WSManFault, WSManServer, _Request, _timed_out,
    access_denied, shell_created,
)

if TYPE_CHECKING:
    from console.directory import Directory  # for the type only: console.directory loads ldap3

log = logging.getLogger(__name__)

RESOURCE_PREFIX = "http://schemas.microsoft.com/powershell/"
DEFAULT_CONFIGURATION = "Microsoft.PowerShell"  # what a client reaches without a configuration name
SEND = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Send"
PS_NS = "http://schemas.microsoft.com/powershell"
PROTOCOL_VERSION, PS_VERSION, SERIALIZATION_VERSION = "2.3", "5.1.17763.1", "1.1.0.1"
DONE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done"
MAX_FRAGMENT = 32 * 1024

# What RestrictedRemoteServer makes visible besides the role's functions; the lab does not
# simulate them (it answers that it does not, rather than pretending).
DEFAULT_VISIBLE = ("Clear-Host", "Exit-PSSession", "Get-Command", "Get-FormatData", "Get-Help",
                   "Measure-Object", "Out-Default", "Select-Object")

TokenSource = Callable[[LabUser], Identity | None]


# --- what the generated files say ---------------------------------------------------------------

@dataclass(frozen=True)
class ParamSpec:
    """One parameter of a generated function, as its param() block declares it."""

    name: str
    type: str  # guid, guid[], string, int
    mandatory: bool = False
    choices: tuple[str, ...] = ()
    pattern: str | None = None  # .NET syntax, as written (see dotnet_pattern)
    length: tuple[int, int] | None = None
    range: tuple[int, int] | None = None
    count: tuple[int, int] | None = None


def param_specs(block: str) -> list[ParamSpec]:
    """The parameters of a generated function's ScriptBlock (its param(...) block): one a line,
    `[Attribute(args)]...[type]$Name[=default]`, arguments read as PowerShell reads literals."""
    start = block.index("param(") + len("param(")
    end = psd1.skip_code(block, start, ")") - 1
    specs = []
    for line in (p.strip().rstrip(",") for p in block[start:end].splitlines()):
        if not line:
            continue
        spec: dict[str, Any] = {"type": "string"}
        i = 0
        while i < len(line) and line[i] == "[":
            close = psd1.skip_code(line, i + 1, "]")
            kind, _, args = line[i + 1:close - 1].partition("(")
            values = _arguments(args[:-1]) if args else []
            if kind == "Parameter":
                spec["mandatory"] = "Mandatory=$true" in args
            elif kind == "ValidateSet":
                spec["choices"] = tuple(values)
            elif kind == "ValidatePattern":
                spec["pattern"] = values[0]
            elif kind in ("ValidateLength", "ValidateRange", "ValidateCount"):
                spec[kind[8:].lower()] = (int(values[0]), int(values[1]))
            elif kind in ("guid", "guid[]", "string", "int"):
                spec["type"] = kind
            i = close
        match = re.match(r"\$(\w+)", line[i:])
        if match is None:
            raise psd1.DataFileError(f"a parameter expected in {line!r}")
        specs.append(ParamSpec(name=match.group(1), **spec))
    return specs


def _arguments(args: str) -> list[str]:
    """An attribute's arguments: quoted literals decoded by PowerShell's rule, others as written."""
    out, i = [], 0
    while i < len(args):
        if args[i] in " ,":
            i += 1
        elif args[i] in jea.SINGLE_QUOTES:
            value, i = psd1.read_quoted(args, i)
            out.append(value)
        else:
            end = args.find(",", i)
            end = len(args) if end < 0 else end
            out.append(args[i:end].strip())
            i = end
    return out


def dotnet_pattern(pattern: str) -> str:
    """A .NET regular expression as Python's re reads it alike: .NET's \\z (the very end) is
    Python's \\Z, and .NET's \\Z (the end, or before a final newline) is (?=\\n?\\Z). `$` needs
    nothing: in both it matches at the end and before a final newline."""
    out, i = [], 0
    while i < len(pattern):
        if pattern[i] == "\\" and i + 1 < len(pattern):
            pair = pattern[i:i + 2]
            out.append({"\\z": "\\Z", "\\Z": "(?=\\n?\\Z)"}.get(pair, pair))
            i += 2
        else:
            out.append(pattern[i])
            i += 1
    return "".join(out)


def _read_grants(name: str, block: str) -> Any:
    try:
        return psd1.embedded_data(block)
    except psd1.DataFileError as error:
        raise ConsoleError(f"{name} holds no grants data the lab can read: {error}") from None


@dataclass(frozen=True)
class EndpointFiles:
    """The generated files of one host, read back as a registered endpoint would use them. The
    grants are each function's own: the literal its text holds (HvConsole.Grants.psd1 is a copy
    for people to read, which the host never reads)."""

    grants: Mapping[str, jea.HostGrants]  # function -> what it enforces
    enforced: Mapping[str, Any]  # function -> its grants literal, as data
    functions: Mapping[str, list[ParamSpec]]  # VisibleFunctions with their parameters
    role_principals: frozenset[str]  # RoleDefinitions' names, lower case
    language_mode: str
    session_type: str
    modules: tuple[str, ...] = ()  # the role capability's ModulesToImport
    blocks: Mapping[str, str] = field(default_factory=dict)  # function -> its ScriptBlock text

    @classmethod
    def read(cls, files: Mapping[str, bytes]) -> EndpointFiles:
        def data(name: str) -> Any:
            return psd1.parse_psd1(files[name].decode("utf-8"))
        psrc, pssc = data(jea.PSRC_FILE), data(jea.PSSC_FILE)
        blocks = {f["Name"]: f["ScriptBlock"].text for f in psrc["FunctionDefinitions"]}
        visible = list(psrc["VisibleFunctions"])
        enforced = {name: _read_grants(name, blocks[name]) for name in visible}
        modules = psrc.get("ModulesToImport", [])
        return cls({name: jea.HostGrants.from_data(d) for name, d in enforced.items()}, enforced,
                   {name: param_specs(blocks[name]) for name in visible},
                   frozenset(p.lower() for p in pssc["RoleDefinitions"]),
                   pssc.get("LanguageMode", "NoLanguage"), pssc["SessionType"],
                   tuple([modules] if isinstance(modules, str) else modules),
                   {name: blocks[name] for name in visible})


def sender_info(who: Identity) -> PSObject:
    """$PSSenderInfo of a caller: UserInfo.WindowsIdentity is the connecting user's own token
    (its User and Groups SIDs, nested groups included; PowerShell's WSManPlugin.cs)."""
    def sid(value: str) -> PSObject:
        return PSObject("System.Security.Principal.SecurityIdentifier", {"Value": value},
                        text=value)
    identity = PSObject("System.Security.Principal.WindowsIdentity", {
        "Name": who.name, "User": sid(who.sid),
        "Groups": [sid(s) for s in who.sids if s.upper() != who.sid.upper()]})
    return PSObject("System.Management.Automation.Remoting.PSSenderInfo", {
        "UserInfo": PSObject("System.Management.Automation.Remoting.PSPrincipal",
                             {"WindowsIdentity": identity}),
        "ConnectedUser": who.name})


# --- refusals, as PowerShell words them -------------------------------------------------------------

class Refusal(Exception):
    """A terminating error of the pipeline (the command never ran)."""

    def __init__(self, message: str, fqid: str, reason: str, category: int, target: str,
                 exception_type: str = "") -> None:
        super().__init__(message)
        self.message, self.fqid, self.reason, self.category, self.target = (
            message, fqid, reason, category, target)
        self.exception_type = exception_type  # full name; "" for System.Management.Automation.<reason>


def _not_found(name: str) -> Refusal:
    return Refusal(f"The term '{name}' is not recognized as the name of a cmdlet, function, script "
                   f"file, or operable program. Check the spelling of the name, or if a path was "
                   f"included, verify that the path is correct and try again.",
                   "CommandNotFoundException", "CommandNotFoundException", 13, name)


def _no_language() -> Refusal:
    return Refusal("The syntax is not supported by this runspace. This can occur if the runspace "
                   "is in no-language mode.", "ScriptsNotAllowed", "ParseException", 17, "")


def _binding(function: str, message: str, fqid: str = "ParameterArgumentValidationError") -> Refusal:
    return Refusal(f"Cannot validate argument on parameter of {function}: {message}",
                   f"{fqid},{function}", "ParameterBindingValidationException", 5, function)


# --- the protocol --------------------------------------------------------------------------------

class _Assembler:
    """Incoming fragments (pypsrp's Fragment) into whole messages: (type, CLIXML payload).
    pypsrp's Message.unpack cannot read a client's HostInfo back, so the payload stays raw."""

    def __init__(self) -> None:
        self._partial: dict[int, bytes] = {}

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        messages = []
        while data:
            fragment, data = Fragment.unpack(data)
            buffered = (b"" if fragment.start else self._partial.pop(fragment.object_id, b""))
            buffered += fragment.data
            if fragment.end:
                body = buffered[40:]
                messages.append((struct.unpack("<I", buffered[4:8])[0],
                                 body[3:] if body.startswith(b"\xef\xbb\xbf") else body))
            else:
                self._partial[fragment.object_id] = buffered
        return messages


@dataclass(eq=False)
class _Pipeline:
    id: str
    fragments: _Assembler
    done: threading.Event = field(default_factory=threading.Event)
    replies: list[bytes] = field(default_factory=list)
    sent: bool = False


@dataclass(eq=False)
class _Slot:
    """One runspace of a pool: what it has imported, and (the default endpoint's) the lab
    runspace itself, which keeps its variables and functions from one pipeline to the next."""

    loaded: set[str] = field(default_factory=set)
    runspace: Runspace | None = None


@dataclass(eq=False)
class _Pool:
    id: str
    owner: str
    caller: Any  # who opened it: the JEA endpoint's Identity, the default endpoint's LabUser
    fragments: _Assembler
    max_runspaces: int = 1
    pending: list[bytes] = field(default_factory=list)
    pipelines: dict[str, _Pipeline] = field(default_factory=dict)
    slots: list[_Slot] = field(default_factory=list)
    idle: list[_Slot] = field(default_factory=list)
    free: threading.Condition = field(default_factory=threading.Condition)


class PsrpEndpoint:
    """One session configuration of a lab host over PSRP: WS-Management's shell actions carrying
    PSRP messages, a runspace pool per Create, a pipeline per Command. What a configuration
    admits and runs is its subclass's: `_admit` (who may open a pool) and `_invoke` (a
    pipeline's commands, run in one runspace of the pool).

    Costs (the server's cost model): opening a pool starts a process (wsmprovhost.exe); a pool
    runs at most its client's MaxRunspaces pipelines at once, each in one of its runspaces,
    made when first needed; a pipeline beyond that waits for a runspace, as on a real host."""

    def __init__(self, server: WSManServer, executor: Executor, name: str) -> None:
        self.server, self.executor, self.name = server, executor, name
        self.resource_uri = RESOURCE_PREFIX + name
        self._lock = threading.Lock()
        self._pools: dict[str, _Pool] = {}
        self._objects = itertools.count(1)
        self._serializer = Serializer()

    def attach(self) -> Self:
        self.server.resources[self.resource_uri.lower()] = self.handle
        return self

    # --- what a configuration decides ---

    def _admit(self, user: LabUser) -> Any:
        """The caller a pool is opened for, or WSManFault (access denied)."""
        raise NotImplementedError

    def _opening(self, pool: _Pool) -> None:
        """The time the host spends opening a pool, after its process started."""

    def _new_slot(self, pool: _Pool) -> _Slot:
        return _Slot()

    def _invoke(self, pool: _Pool, slot: _Slot, commands: list[_Call]) -> tuple[list[str], list[Refusal]]:
        """A pipeline's output (as text) and its non-terminating errors; Refusal when it failed."""
        raise NotImplementedError

    # --- WS-Management ---

    def handle(self, user: str, request: _Request, client_ip: str) -> tuple[str, str]:
        handlers = {CREATE: self._create, COMMAND: self._command, SEND: self._send,
                    RECEIVE: self._receive, SIGNAL: self._signal, DELETE: self._delete}
        handler = handlers.get(request.action)
        if handler is None:
            raise WSManFault(f"The WS-Management service cannot process the action "
                             f"{request.action} on {self.resource_uri}.", "w:ActionNotSupported")
        return handler(user, request, client_ip)

    def _create(self, user: str, request: _Request, client_ip: str) -> tuple[str, str]:
        caller = self._admit(self.server.lab_user(user))
        shell = request.body.find("rsp:Shell", NS)
        creation = shell.find(f"{{{PS_NS}}}creationXml") if shell is not None else None
        if shell is None or creation is None or not creation.text:
            raise WSManFault("The Create message holds no PSRP creationXml.", "w:SchemaValidationError")
        pool = _Pool((shell.get("ShellId") or str(uuid.uuid4())).upper(), user, caller,
                     _Assembler())
        for message_type, payload in pool.fragments.feed(base64.b64decode(creation.text)):
            if message_type == MessageType.INIT_RUNSPACEPOOL:
                pool.max_runspaces = _max_runspaces(payload)
        # The session's own process (wsmprovhost.exe) starts before the pool can open.
        self.server.stats.add("process_starts")
        if not self.server.pause(self.server.cost.process_start_ms / 1000):
            raise WSManFault("The host is shutting down.", "w:InternalError", receiver=True)
        self._opening(pool)
        pool.pending = [self._fragment(self._pack(pool.id, None, message)) for message in (
            SessionCapability(PROTOCOL_VERSION, PS_VERSION, SERIALIZATION_VERSION),
            ApplicationPrivateData(data={}),
            RunspacePoolStateMessage(state=RunspacePoolState.OPENED))]
        with self._lock:
            self._pools[pool.id] = pool
        return CREATE + "Response", shell_created(self.server.url, self.resource_uri, pool.id,
                                                  user, client_ip, "stdin pr", "stdout")

    def _command(self, user: str, request: _Request, client_ip: str) -> tuple[str, str]:
        pool = self._pool(user, request.shell_id)
        line = request.body.find("rsp:CommandLine", NS)
        if line is None:
            raise WSManFault("The Command message holds no CommandLine.", "w:SchemaValidationError")
        pipeline = _Pipeline((line.get("CommandId") or str(uuid.uuid4())).upper(), _Assembler())
        with self._lock:
            pool.pipelines[pipeline.id] = pipeline
        self._feed(pool, pipeline, base64.b64decode(line.findtext("rsp:Arguments", "", NS)))
        return COMMAND + "Response", (f"<rsp:CommandResponse><rsp:CommandId>{pipeline.id}"
                                      f"</rsp:CommandId></rsp:CommandResponse>")

    def _send(self, user: str, request: _Request, client_ip: str) -> tuple[str, str]:
        pool = self._pool(user, request.shell_id)
        stream = request.body.find("rsp:Send/rsp:Stream", NS)
        if stream is None:
            raise WSManFault("The Send message holds no stream.", "w:SchemaValidationError")
        pipeline = pool.pipelines.get((stream.get("CommandId") or "").upper())
        if pipeline is None:
            raise WSManFault("The Send names no pipeline of this runspace pool.", "w:InvalidSelectors")
        self._feed(pool, pipeline, base64.b64decode(stream.text or ""))
        return SEND + "Response", "<rsp:SendResponse/>"

    def _receive(self, user: str, request: _Request, client_ip: str) -> tuple[str, str]:
        pool = self._pool(user, request.shell_id)
        desired = request.body.find("rsp:Receive/rsp:DesiredStream", NS)
        command_id = (desired.get("CommandId") or "").upper() if desired is not None else ""
        if not command_id:
            with self._lock:
                data, pool.pending = b"".join(pool.pending), []
            if not data:
                self._wait(threading.Event(), request.timeout)
                raise _timed_out()
            return RECEIVE + "Response", (
                f'<rsp:ReceiveResponse><rsp:Stream Name="stdout">'
                f'{base64.b64encode(data).decode()}</rsp:Stream></rsp:ReceiveResponse>')
        pipeline = pool.pipelines.get(command_id)
        if pipeline is None:
            raise WSManFault("The Receive names no pipeline of this runspace pool.",
                             "w:InvalidSelectors")
        if not self._wait(pipeline.done, request.timeout):
            raise _timed_out()
        with self._lock:
            data, pipeline.replies = b"".join(pipeline.replies), []
        return RECEIVE + "Response", (
            f'<rsp:ReceiveResponse><rsp:Stream Name="stdout" CommandId="{pipeline.id}">'
            f'{base64.b64encode(data).decode()}</rsp:Stream>'
            f'<rsp:CommandState CommandId="{pipeline.id}" State="{DONE}"/></rsp:ReceiveResponse>')

    def _signal(self, user: str, request: _Request, client_ip: str) -> tuple[str, str]:
        pool = self._pool(user, request.shell_id)
        signal = request.body.find("rsp:Signal", NS)
        with self._lock:
            pool.pipelines.pop(((signal.get("CommandId") if signal is not None else "") or "").upper(),
                               None)
        return SIGNAL + "Response", "<rsp:SignalResponse/>"

    def _delete(self, user: str, request: _Request, client_ip: str) -> tuple[str, str]:
        pool = self._pool(user, request.shell_id)
        with self._lock:
            self._pools.pop(pool.id, None)
        return DELETE + "Response", ""

    def _pool(self, user: str, shell_id: str) -> _Pool:
        with self._lock:
            pool = self._pools.get(shell_id.upper())
        if pool is None or pool.owner.lower() != user.lower():
            raise WSManFault(f"The runspace pool {shell_id} was not found on the server.",
                             "w:InvalidSelectors", 2150858843)
        return pool

    def _wait(self, done: threading.Event, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while not done.wait(min(0.05, max(0.0, deadline - time.monotonic()))):
            if self.server.stopping or time.monotonic() >= deadline:
                return done.is_set()
        return True

    @property
    def pools(self) -> int:
        """How many runspace pools are open (tests)."""
        with self._lock:
            return len(self._pools)

    # --- pipelines ---

    def _feed(self, pool: _Pool, pipeline: _Pipeline, data: bytes) -> None:
        for message_type, payload in pipeline.fragments.feed(data):
            if message_type == MessageType.CREATE_PIPELINE:
                try:
                    commands = _commands(payload)
                except (ET.ParseError, Refusal):
                    commands = [_Call("", True, [])]  # unreadable: refused as script text
                threading.Thread(target=self._run, args=(pool, pipeline, commands),
                                 name=f"lab-{self.server.name}-psrp", daemon=True).start()

    def _run(self, pool: _Pool, pipeline: _Pipeline, commands: list[_Call]) -> None:
        slot = self._take(pool)
        try:
            output, errors = self._invoke(pool, slot, commands)
            replies = [self._pack(pool.id, pipeline.id, _Text(text)) for text in output]
            replies += [_raw(pool.id, pipeline.id, MessageType.ERROR_RECORD,
                             _error_record(error, self._serializer)) for error in errors]
            replies.append(self._pack(pool.id, pipeline.id,
                                      PipelineState(state=PSInvocationState.COMPLETED)))
        except Refusal as refusal:
            replies = [_raw(pool.id, pipeline.id, MessageType.PIPELINE_STATE,
                            _failed_state(refusal, self._serializer))]
        except Exception as error:  # the lab's bug: fail the pipeline, keep serving
            log.exception("lab host %s: PSRP pipeline failed", self.server.name)
            replies = [_raw(pool.id, pipeline.id, MessageType.PIPELINE_STATE, _failed_state(
                Refusal(f"The lab host failed: {error}", "LabError", "RuntimeException", 0, ""),
                self._serializer))]
        finally:
            with pool.free:
                pool.idle.append(slot)
                pool.free.notify()
        with self._lock:
            pipeline.replies.extend(self._fragment(r) for r in replies)
        pipeline.done.set()

    def _take(self, pool: _Pool) -> _Slot:
        """An idle runspace of the pool, a new one while the pool has fewer than its maximum, or
        the next one to come free."""
        with pool.free:
            while not pool.idle and len(pool.slots) >= pool.max_runspaces:
                pool.free.wait(0.05)
            if pool.idle:
                return pool.idle.pop()
            slot = self._new_slot(pool)
            pool.slots.append(slot)
            return slot

    def _event(self, user: str, operation: str, action: str | None, vm_id: str | None,
               outcome: str, message: str, vm_name: str | None = None,
               params: dict[str, Any] | None = None) -> None:
        assert self.executor.events is not None
        self.executor.events.append(HostEvent(
            time=self.executor.host.clock.utcnow(), host=self.executor.host.name, user=user,
            operation=operation, action=action, vm_id=vm_id, vm_name=vm_name or None,
            outcome=outcome, message=message, params={"endpoint": self.name, **(params or {})}))

    # --- packing ---

    def _pack(self, rpid: str, pid: str | None, data: Any) -> bytes:
        return Message(Destination.CLIENT, rpid, pid, data, self._serializer).pack()

    def _fragment(self, message: bytes) -> bytes:
        object_id = next(self._objects)
        chunks = [message[i:i + MAX_FRAGMENT] for i in range(0, len(message), MAX_FRAGMENT)] or [b""]
        return b"".join(Fragment(object_id, n, chunk, n == 0, n == len(chunks) - 1).pack()
                        for n, chunk in enumerate(chunks))


class JeaEndpoint(PsrpEndpoint):
    """A lab host's JEA session configuration. `attach()` plugs it into the host's server."""

    def __init__(self, server: WSManServer, executor: Executor, files: Mapping[str, bytes],
                 tokens: TokenSource, *, name: str = jea.ENDPOINT_NAME,
                 today: Callable[[], date] = date.today) -> None:
        super().__init__(server, executor, name)
        self.tokens, self.today = tokens, today
        self.files = EndpointFiles.read(files)

    def replace_files(self, files: Mapping[str, bytes]) -> None:
        """Register regenerated files (what the registration script does on a real host)."""
        self.files = EndpointFiles.read(files)

    def _admit(self, user: LabUser) -> Identity:
        identity = self.tokens(user)
        names = {n.lower() for n in _token_names(identity)} if identity else set()
        if identity is None or not names & self.files.role_principals:
            # JEA: no role definition names the user or one of their groups.
            self._event(user.name, "session", None, None, "access_denied",
                        f"no role definition of {self.name} names this user")
            raise access_denied()
        return identity

    def _opening(self, pool: _Pool) -> None:
        # The virtual account's logon and the role capability's ModulesToImport, in the pool's
        # first runspace.
        self.server.pause(self.server.cost.jea_session_ms / 1000)
        pool.slots.append(_Slot(set(self.files.modules)))
        pool.idle.append(pool.slots[0])

    def _new_slot(self, pool: _Pool) -> _Slot:
        # A further runspace of the pool imports the ModulesToImport too.
        self.server.pause(self.server.cost.module_import_ms / 1000)
        return _Slot(set(self.files.modules))

    def _invoke(self, pool: _Pool, slot: _Slot, commands: list[_Call]) -> tuple[list[str], list[Refusal]]:
        user = pool.caller.name
        for call in commands:
            if call.is_script:
                self._event(user, "command", None, None, "access_denied", "script text refused")
                raise _no_language()
            known = {n.lower(): n for n in self.files.functions}
            if call.name.lower() not in known:
                self._event(user, "command", None, None, "access_denied",
                            f"{call.name} is not visible")
                if call.name in DEFAULT_VISIBLE:
                    raise Refusal(f"The lab does not simulate {call.name}.", "NotSimulated",
                                  "NotImplementedException", 0, call.name)
                raise _not_found(call.name)
        if len(commands) != 1:
            raise Refusal("The lab simulates one command per pipeline.", "NotSimulated",
                          "NotImplementedException", 0, "")
        call = commands[0]
        name = next(n for n in self.files.functions if n.lower() == call.name.lower())
        try:
            bound = _bind(name, self.files.functions[name], call.args)
        except Refusal as refusal:  # a real host's transcript records the binding error
            self._event(user, "command", None, None, "invalid_parameter", refusal.message)
            raise
        return self._perform(pool.caller, name, bound, slot), []

    # --- the generated functions, as the host runs them ---

    def _perform(self, who: Identity, function: str, p: dict[str, Any],
                 slot: _Slot | None = None) -> list[str]:
        """The generated function itself, run in the lab's PowerShell as the session's virtual
        account: only the commands a JEA session reaches (the engine's cmdlets and the role
        capability's ModulesToImport, by Microsoft's facts), the host's language mode (the
        system's: ConstrainedLanguage on a WDAC host), and $PSSenderInfo from the caller's
        token. Its own caller check, its grants literal and its Write-EventLog decide."""
        virtual = LabUser(f"WinRM Virtual Users\\WinRM VA_{self.name}", "S-1-5-94-0", admin=True)
        loaded = self.files.modules
        commands = [c for c in self.executor.commands(virtual, slot.loaded if slot else None)
                    if facts.jea_reachable(c.name, loaded)]
        runspace = self.executor.runspace(
            virtual, commands=commands, modules=[*sorted(jea.SESSION_MODULES), *loaded],
            variables={"PSSenderInfo": sender_info(who)},
            now=lambda: datetime.combine(self.today(), self.executor.host.clock.utcnow().time()))
        outcome = runspace.invoke(self.files.blocks[function].replace("\r\n", "\n"), p)
        if outcome.error is not None:
            error = outcome.error
            raise Refusal(error.message, error.fqid, error.exception_type.rsplit(".", 1)[-1],
                          0, function)
        return [str(o) for o in outcome.output if o is not None]

    @property
    def event_log_error(self) -> str | None:
        """Why the host's event log refuses the functions' events (None: it takes them)."""
        return self.executor.event_log_error

    @event_log_error.setter
    def event_log_error(self, reason: str | None) -> None:
        self.executor.event_log_error = reason


class DefaultEndpoint(PsrpEndpoint):
    """A lab host's default session configuration, Microsoft.PowerShell: full PowerShell for the
    host's administrators (its default security descriptor admits Administrators and Remote
    Management Users; the lab's HostRights.admins stand for both), anyone else is refused access
    as a real host refuses them.

    A pipeline's script runs in the lab's interpreter as the caller, in the host's language mode
    (FullLanguage, ConstrainedLanguage on a WDAC host), with the executor's runspace: the same
    commands, files, clock and recording of changing cmdlets as a WinRS command's
    powershell.exe. Each runspace of a pool lives on, so it imports the Hyper-V module once, on
    its first Hyper-V cmdlet, and keeps its variables and functions (AddScript runs in its
    global scope). Only script text is simulated (AddScript, no arguments): a pipeline of
    cmdlets is refused as NotSimulated rather than guessed at."""

    def __init__(self, server: WSManServer, executor: Executor,
                 name: str = DEFAULT_CONFIGURATION) -> None:
        super().__init__(server, executor, name)

    def _admit(self, user: LabUser) -> LabUser:
        if not user.admin:
            self.server.events.write(user.name, "session", "access_denied", endpoint=self.name)
            raise access_denied()
        return user

    def _invoke(self, pool: _Pool, slot: _Slot, commands: list[_Call]) -> tuple[list[str], list[Refusal]]:
        if len(commands) != 1 or not commands[0].is_script or commands[0].args:
            raise Refusal("The lab simulates one script per pipeline (AddScript, without "
                          "arguments).", "NotSimulated", "NotImplementedException", 0, "")
        if slot.runspace is None:
            slot.runspace = self.executor.runspace(pool.caller, loaded=slot.loaded)
        outcome = slot.runspace.run(commands[0].name.replace("\r\n", "\n"))
        errors = [_refusal_of(e) for e in outcome.errors]
        if outcome.error is not None:
            raise _refusal_of(outcome.error)
        return [o if type(o) is str else to_str(o) for o in outcome.output if o is not None], errors


_EMPTY_GUID = "00000000-0000-0000-0000-000000000000"


class _Text(str):
    """A string output object: pypsrp's Message packs it as <S>."""

    MESSAGE_TYPE = MessageType.PIPELINE_OUTPUT


@dataclass(frozen=True)
class _Call:
    name: str
    is_script: bool
    args: list[tuple[str | None, Any]]


def _commands(xml: bytes) -> list[_Call]:
    """The commands of a CREATE_PIPELINE (pypsrp cannot read its HostInfo back; the commands
    are read here, their argument values with pypsrp's Serializer)."""
    root = ET.fromstring(xml)
    shell = root.find("MS/Obj[@N='PowerShell']/MS")
    if shell is None:
        raise Refusal("The pipeline holds no commands.", "InvalidPipeline", "InvalidData", 0, "")
    calls = []
    statements = [shell.find("Obj[@N='Cmds']")]
    statements += [s.find("MS/Obj[@N='Cmds']") for s in shell.findall("Obj[@N='ExtraCmds']/LST/Obj")]
    for cmds in statements:
        for command in (cmds.findall("LST/Obj/MS") if cmds is not None else []):
            args = []
            for arg in command.findall("Obj[@N='Args']/LST/Obj/MS"):
                name = arg.find("*[@N='N']")
                value = arg.find("*[@N='V']")
                args.append((name.text if name is not None and name.tag == "S" else None,
                             _value(value)))
            # The text as CLIXML escapes it (_x000A_ for a line break): read back by the Serializer.
            calls.append(_Call(str(_value(command.find("S[@N='Cmd']")) or ""),
                               command.findtext("B[@N='IsScript']", "false") == "true", args))
    return calls


def _value(element: ET.Element | None) -> Any:
    if element is None or element.tag == "Nil":
        return None
    lst = element.find("LST")
    if element.tag == "Obj" and lst is not None:
        return [_value(item) for item in lst]
    if element.tag == "Obj":
        return element.findtext("ToString", "")
    return Serializer().deserialize(element)


_HEX = "[0-9A-Fa-f]"
_GUID_D = f"({_HEX}{{8}})-({_HEX}{{4}})-({_HEX}{{4}})-({_HEX}{{4}})-({_HEX}{{12}})"
# The forms a [guid] conversion accepts (.NET's Guid(string)): D, N, B {D}, P (D), and X
# {0x........,0x....,0x....,{0x..,...}}; surrounding white space is ignored. Not urn:uuid:.
_GUID_FORMS = (
    re.compile(_GUID_D),
    re.compile(f"({_HEX}{{8}})({_HEX}{{4}})({_HEX}{{4}})({_HEX}{{4}})({_HEX}{{12}})"),
    re.compile(r"\{" + _GUID_D + r"\}"),
    re.compile(r"\(" + _GUID_D + r"\)"),
)
_GUID_X = re.compile(r"\{0[xX](" + _HEX + r"{1,8}),0[xX](" + _HEX + r"{1,4}),0[xX](" + _HEX
                     + r"{1,4}),\{" + ",".join([r"0[xX](" + _HEX + r"{1,2})"] * 8) + r"\}\}")


def dotnet_guid(value: Any) -> str | None:
    """What a [guid] parameter makes of `value`, as "$VMId" then shows it (D format, lower case);
    None when the conversion fails."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if not isinstance(value, str):
        return None
    text = value.strip()
    for form in _GUID_FORMS:
        match = form.fullmatch(text)
        if match:
            return str(uuid.UUID("".join(match.groups())))
    match = _GUID_X.fullmatch(re.sub(r"\s", "", text))
    if match:
        widths = (8, 4, 4) + (2,) * 8
        return str(uuid.UUID("".join(g.rjust(w, "0") for g, w in zip(match.groups(), widths, strict=True))))
    return None


_INT32 = (-2**31, 2**31 - 1)


def dotnet_int(value: Any) -> int | None:
    """What an [int] parameter of Windows PowerShell 5.1 makes of `value` (LanguagePrimitives:
    booleans 0/1; integers in range; doubles rounded to even; strings trimmed as Int32.Parse reads
    them, 0x hexadecimal, else through a double, an empty string 0); None when it fails."""
    number: float | int
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        number = value
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return None
        number = round(value)  # banker's rounding, as Convert.ToInt32(double)
    elif isinstance(value, str):
        if value == "":
            return 0
        text = value.strip()
        if re.fullmatch(r"0[xX][0-9A-Fa-f]{1,8}", text):
            number = int(text[2:], 16)
            number = number - 2**32 if number > _INT32[1] else number  # 0xFFFFFFFF is -1
        elif re.fullmatch(r"[+-]?\d+", text):
            number = int(text)
        else:
            try:
                through = float(text.replace(",", ""))  # double.Parse: Float | AllowThousands
            except ValueError:
                return None
            if through != through or through in (float("inf"), float("-inf")):
                return None
            number = round(through)
    else:
        return None
    return int(number) if _INT32[0] <= number <= _INT32[1] else None


def _bind(function: str, specs: list[ParamSpec], args: list[tuple[str | None, Any]]) -> dict[str, Any]:
    """Parameter binding and validation, as PowerShell applies the generated param() block."""
    by_name = {s.name.lower(): s for s in specs}
    bound: dict[str, Any] = {}
    positional = iter(specs)
    for name, value in args:
        if name is None:
            spec = next((s for s in positional if s.name not in bound), None)
            if spec is None:
                raise _binding(function, f"a positional parameter cannot be found that accepts "
                                         f"argument '{value}'.", "PositionalParameterNotFound")
        else:
            spec = by_name.get(name.lower())
            if spec is None:
                raise _binding(function, f"a parameter cannot be found that matches parameter "
                                         f"name '{name}'.", "NamedParameterNotFound")
        bound[spec.name] = _convert(function, spec, value)
    for spec in specs:
        if spec.mandatory and spec.name not in bound:
            raise _binding(function, f"the mandatory parameter {spec.name} is missing.",
                           "MissingMandatoryParameter")
    return bound


def _convert(function: str, spec: ParamSpec, value: Any) -> Any:
    """One argument converted to the parameter's type, then validated (ParameterBinderBase):
    the attributes, then a mandatory parameter's null or empty string."""
    def fail(why: str, fqid: str = "ParameterArgumentValidationError") -> Refusal:
        return _binding(function, f"{spec.name}: {why}", fqid)
    if value is None and spec.mandatory:
        raise fail("the argument is null.", "ParameterArgumentValidationErrorNullNotAllowed")
    if spec.type in ("guid", "guid[]"):
        if spec.type == "guid" and isinstance(value, list):
            raise fail("one id expected", "ParameterArgumentTransformationError")
        ids = []
        for item in value if isinstance(value, list) else [value]:
            converted = dotnet_guid(item)
            if converted is None:
                raise fail(f"cannot convert '{item}' to System.Guid.",
                           "ParameterArgumentTransformationError")
            ids.append(converted)
        if spec.count and not spec.count[0] <= len(ids) <= spec.count[1]:
            raise fail(f"{len(ids)} ids given, {spec.count[0]} to {spec.count[1]} accepted.")
        return ids if spec.type == "guid[]" else ids[0]
    if spec.type == "int":
        number = 0 if value is None else dotnet_int(value)
        if number is None:
            raise fail(f"cannot convert '{value}' to System.Int32.",
                       "ParameterArgumentTransformationError")
        if spec.range and not spec.range[0] <= number <= spec.range[1]:
            raise fail(f"{number} is outside {spec.range[0]}..{spec.range[1]}.")
        return number
    if isinstance(value, (list, dict)):
        raise fail("a string expected.", "ParameterArgumentTransformationError")
    text = "" if value is None else str(value)
    # ValidateSet compares as the invariant culture does, ignoring case, and keeps the caller's
    # spelling: the function itself turns it into the set's (jea._pick).
    if spec.choices and text.lower() not in {c.lower() for c in spec.choices}:
        raise fail(f"'{text}' does not belong to the set {', '.join(spec.choices)}.")
    length = len(text.encode("utf-16-le")) // 2  # .NET's Length: UTF-16 code units
    if spec.length and not spec.length[0] <= length <= spec.length[1]:
        raise fail(f"the length {length} is outside {spec.length[0]}..{spec.length[1]}.")
    # ValidatePattern: a .NET Regex with IgnoreCase (its default Options).
    if spec.pattern is not None and not re.search(dotnet_pattern(spec.pattern), text, re.IGNORECASE):
        raise fail(f"'{text}' does not match the pattern {spec.pattern}.")
    if spec.mandatory and text == "":
        raise fail("the argument is an empty string.",
                   "ParameterArgumentValidationErrorEmptyStringNotAllowed")
    return text


def _token_names(identity: Identity) -> list[str]:
    return [identity.name, *(g.name for g in identity.groups),
            "Everyone", "NT AUTHORITY\\Authenticated Users"]


def _raw(rpid: str, pid: str, message_type: int, xml: ET.Element) -> bytes:
    """A message pypsrp's Message cannot pack (an error record): the same layout, by hand."""
    body: bytes = ET.tostring(xml, encoding="utf-8")  # typeshed: Any for a named encoding
    return (struct.pack("<II", Destination.CLIENT, message_type) + uuid.UUID(rpid).bytes_le
            + uuid.UUID(pid).bytes_le + body)


# PowerShell's ErrorCategory enum, in order (System.Management.Automation.ErrorCategory).
ERROR_CATEGORIES = (
    "NotSpecified", "OpenError", "CloseError", "DeviceError", "DeadlockDetected", "InvalidArgument",
    "InvalidData", "InvalidOperation", "InvalidResult", "InvalidType", "MetadataError",
    "NotImplemented", "NotInstalled", "ObjectNotFound", "OperationStopped", "OperationTimeout",
    "SyntaxError", "ParserError", "PermissionDenied", "ResourceBusy", "ResourceExists",
    "ResourceUnavailable", "ReadError", "WriteError", "FromStdErr", "SecurityError",
    "ProtocolError", "ConnectionError", "AuthenticationError", "LimitsExceeded", "QuotaExceeded",
    "NotEnabled")


def _refusal_of(record: ErrorRecord) -> Refusal:
    """An error record of the interpreter as the endpoint sends it to the client."""
    category = (ERROR_CATEGORIES.index(record.category)
                if record.category in ERROR_CATEGORIES else 0)
    return Refusal(record.message, record.fqid, record.exception_type.rsplit(".", 1)[-1],
                   category, "", exception_type=record.exception_type)


def _error_record(refusal: Refusal, serializer: Serializer, ref: int = 0) -> ET.Element:
    """An ErrorRecord as CLIXML: an ERROR_RECORD message's body, or a failed pipeline's
    ExceptionAsErrorRecord."""
    def text(name: str, value: str) -> ET.Element:
        element = serializer.serialize(value)
        assert element is not None
        element.set("N", name)
        return element
    shown = text("", refusal.message).text  # control characters as CLIXML's _xHHHH_ escapes
    record = ET.Element("Obj", RefId=str(ref))
    names = ET.SubElement(record, "TN", RefId="0")
    ET.SubElement(names, "T").text = "System.Management.Automation.ErrorRecord"
    ET.SubElement(names, "T").text = "System.Object"
    ET.SubElement(record, "ToString").text = shown
    fields = ET.SubElement(record, "MS")
    exception = ET.SubElement(fields, "Obj", N="Exception", RefId=str(ref + 1))
    types = ET.SubElement(exception, "TN", RefId="1")
    for name in (refusal.exception_type or f"System.Management.Automation.{refusal.reason}",
                 "System.Exception", "System.Object"):
        ET.SubElement(types, "T").text = name
    ET.SubElement(exception, "ToString").text = shown
    ET.SubElement(exception, "Props").append(text("Message", refusal.message))
    ET.SubElement(fields, "Nil", N="TargetObject")
    fields.append(text("FullyQualifiedErrorId", refusal.fqid))
    ET.SubElement(fields, "B", N="SerializeExtendedInfo").text = "false"
    ET.SubElement(fields, "I32", N="ErrorCategory_Category").text = str(refusal.category)
    fields.append(text("ErrorCategory_Reason", refusal.reason))
    fields.append(text("ErrorCategory_TargetName", refusal.target))
    fields.append(text("ErrorCategory_Message", f"({refusal.target}) [], {refusal.reason}"))
    return record


def _failed_state(refusal: Refusal, serializer: Serializer) -> ET.Element:
    state = ET.Element("Obj", RefId="0")
    members = ET.SubElement(state, "MS")
    ET.SubElement(members, "I32", N="PipelineState").text = str(PSInvocationState.FAILED)
    record = _error_record(refusal, serializer, ref=1)
    record.set("N", "ExceptionAsErrorRecord")
    members.append(record)
    return state


def _max_runspaces(payload: bytes) -> int:
    """MaxRunspaces of a client's INIT_RUNSPACEPOOL (1 when it cannot be read)."""
    try:
        found = ET.fromstring(payload).find(".//I32[@N='MaxRunspaces']")
        return max(1, int(found.text or 1)) if found is not None else 1
    except (ET.ParseError, ValueError):
        return 1


def _json(document: Any) -> str:
    import json
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def _loads(text: str) -> dict[str, Any]:
    import json
    document = json.loads(text)
    if not isinstance(document, dict):
        raise ConsoleError("an operation script printed something else than a JSON object")
    return document


# --- tokens --------------------------------------------------------------------------------------

def directory_tokens(directory: Directory, accounts: Accounts) -> TokenSource:
    """The caller's token from the lab's demo directory (lab.directory.LabDirectory):
    built once per user, as Windows builds it at logon, with nested groups."""
    cache: dict[str, Identity] = {}
    lock = threading.Lock()

    def token(user: LabUser) -> Identity | None:
        with lock:
            if user.name.lower() in cache:
                return cache[user.name.lower()]
        account = accounts.get(user.name)
        if account is None:
            return None
        try:
            identity = directory.sign_in(user.name, account.password)
        except ConsoleError:
            return None
        with lock:
            cache[user.name.lower()] = identity
        return identity
    return token


def attach(server: WSManServer, executor: Executor, files: Mapping[str, bytes],
           tokens: TokenSource, **options: Any) -> JeaEndpoint:
    """Serve the generated JEA files on a lab host's WS-Management server."""
    return JeaEndpoint(server, executor, files, tokens, **options).attach()


def attach_default(server: WSManServer, executor: Executor) -> DefaultEndpoint:
    """Serve the default configuration (Microsoft.PowerShell) on a lab host's server."""
    return DefaultEndpoint(server, executor).attach()

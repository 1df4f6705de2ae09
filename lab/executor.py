"""What a lab host runs for a WinRS command: powershell.exe, as Windows PowerShell 5.1 would.

`Executor.run` takes the command line as cmd.exe hands it to powershell.exe, reads the script
from `-Command -` (standard input, run line by line) or `-EncodedCommand`, and runs it in the
lab's PowerShell interpreter (lab.pwsh) with
this host's cmdlets (lab.cmdlets), as the calling user: Hyper-V's own check refuses
anyone outside Hyper-V Administrators. Nothing here knows the console's scripts: a script that
calls a command a real host lacks, binds a parameter set that does not exist, or maps an error
wrongly fails or answers wrongly here too. Any other executable is refused as access denied.

Every Hyper-V cmdlet that changes a VM is recorded (who, which cmdlet, which VM, the outcome) in
`events`, as a host's Hyper-V-VMMS log would hold it, and in the host's shared event log.

Write-EventLog and Get-WinEvent are one pair over the host's Windows event log (`event_log`):
what the first writes (a log, a source, an event id, an entry type, a message) the second reads
back, as an EventLogRecord whose only insertion string is the message, filtered with
-FilterHashtable's keys (LogName, ProviderName, Id, StartTime, EndTime), newest first, with the
errors of resources/powershell/facts/host.toml [event_log]. Each call is bound against the facts
like every command the lab runs. The console's own events (the JEA functions' and the admin
frame's JSON messages) are also kept, read, in `events`.

A script's [System.Security.Principal.WindowsIdentity]::GetCurrent() is the caller's token: the
process runs as the calling user (WinRS and the default endpoint), or the JEA endpoint's virtual
account.

The host's cost model (lab/faults.py, shared with its WS-Management server) is paid here where
PowerShell pays it: the first Hyper-V cmdlet of a process or runspace imports the module, and
Get-VM queries WMI for each VM it returns. A WinRS command is a new process each time; a PSRP
runspace keeps what it loaded (`Executor.runspace(..., loaded=...)`).
"""
from __future__ import annotations

import base64
import binascii
import fnmatch
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from console import scripts
from console.audit import HOST_EVENT_IDS, HOST_EVENT_LOG, HOST_EVENT_SOURCE
from .auth import LabUser
from .cmdlets import HYPERV, HostFiles, host_commands
from .faults import CostModel
from .hyperv import Host, HyperVError
from console.powershell import facts
from .pwsh import Runspace, builtins
from .pwsh import convert as cv
from .pwsh.values import Call as CmdletCall, Command, Hashtable, PSObject, PSError
from .wsman import AccessDenied, CommandResult, EventLog

OPTIONS = ("-noprofile", "-noninteractive")
# The cmdlets that change a VM: each call is an event of the host's log.
CHANGING = frozenset({"Start-VM", "Stop-VM", "Restart-VM", "Save-VM", "Suspend-VM", "Resume-VM",
                      "Remove-VMSavedState", "Checkpoint-VM", "Restore-VMSnapshot",
                      "Remove-VMSnapshot", "Rename-VMSnapshot", "Set-VMDvdDrive", "New-VM", "Set-VM",
                      "Remove-VM"})


class CommandRefused(AccessDenied):
    """A command line that is not powershell.exe with an encoded command: the server answers
    Access denied (the lab offers nothing else)."""


@dataclass(frozen=True)
class HostEvent:
    """One entry of a host's event log: a change made to a VM, or refused."""

    time: datetime
    host: str
    user: str
    operation: str  # the cmdlet (Start-VM, ...) or, for the JEA endpoint, its operation
    action: str | None
    vm_id: str | None
    vm_name: str | None
    outcome: str  # "ok", or the error id / contract code
    message: str = ""
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LogEntry:
    """One event of the host's Windows event log, as Write-EventLog wrote it."""

    record_id: int  # the log's own number (EventLogRecord.RecordId), 1, 2, ...
    time: datetime  # UTC
    log: str  # Application
    source: str  # the provider (a classic source's name)
    event_id: int
    entry_type: str  # Information, Warning, Error, ...
    message: str  # the event's one insertion string, and so its Message


@dataclass(frozen=True)
class Call:
    """One cmdlet call a script made on the host: who, which cmdlet, its bound parameters."""

    user: str
    cmdlet: str
    params: dict[str, Any]


def script_of(line: str, stdin: Callable[[], bytes]) -> str:
    """The script powershell.exe runs for `line`: `-Command -` reads it from standard input,
    `-EncodedCommand` carries it as base64 of UTF-16LE."""
    parts = line.split()
    if (len(parts) < 3 or parts[0].lower() not in {"powershell", "powershell.exe"}
            or [p.lower() for p in parts[1:3]] != list(OPTIONS)):
        raise CommandRefused("Access is denied: the lab runs powershell.exe -NoProfile "
                             "-NonInteractive only.")
    rest = [p.lower() for p in parts[3:]]
    if rest == ["-command", "-"]:
        # Read line by line, each line a statement as typed (what `-Command -` does); the lab
        # runs the lines one after the other in one session.
        return stdin().decode("utf-8", "replace")
    if len(rest) == 2 and rest[0] == "-encodedcommand":
        try:
            return base64.b64decode(parts[-1], validate=True).decode("utf-16-le")
        except (binascii.Error, UnicodeDecodeError):
            raise CommandRefused("Access is denied: the encoded command is not valid.") from None
    raise CommandRefused("Access is denied: the lab runs scripts given with -Command - or "
                         "-EncodedCommand only.")


@dataclass
class Executor:
    """Runs PowerShell on one simulated host. `events` holds the HostEvent of every change made
    or refused; `log` is the host's event log shared with its WS-Management server."""

    host: Host
    events: list[HostEvent] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    log: EventLog | None = None
    language_mode: str = "FullLanguage"  # ConstrainedLanguage: a WDAC/AppLocker host
    event_log_error: str | None = None  # why Write-EventLog fails on this host (None: it works)
    event_log: list[LogEntry] = field(default_factory=list)  # Write-EventLog's, for Get-WinEvent
    # The event sources registered in the Application log (Register-HvConsoleEndpoint.ps1 adds
    # HvConsole): Write-EventLog refuses any other, Get-WinEvent finds no provider of it.
    sources: set[str] = field(default_factory=lambda: {HOST_EVENT_SOURCE})
    cost: CostModel = field(default_factory=CostModel)  # the server's: WSManServer shares it
    module_imports: int = 0  # how often a process or runspace imported the Hyper-V module

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def run(self, user: LabUser, command_line: str,
            stdin: Callable[[], bytes] = lambda: b"") -> CommandResult:
        return self.run_script(user, script_of(command_line, stdin))

    def run_script(self, user: LabUser, text: str) -> CommandResult:
        """Run a script as `user`; stdout as powershell.exe writes it (UTF-8, code page 65001)."""
        outcome = self.runspace(user).run(text)
        stderr = b""
        code = 0
        if outcome.error is not None:
            stderr = (f"{outcome.error.message}\r\n"
                      f"    + FullyQualifiedErrorId : {outcome.error.fqid}\r\n").encode()
            code = 1
        return CommandResult(outcome.stdout.encode("utf-8"), stderr, code)

    def commands(self, user: LabUser, loaded: set[str] | None = None) -> list[Command]:
        """The host's commands for `user`: Windows PowerShell's own, Hyper-V's (changes
        recorded, costs paid), the host's own, and Write-EventLog into this host's event log.
        `loaded`: the modules the process or runspace has imported so far (None: a new process,
        which has imported none)."""
        loaded = set() if loaded is None else loaded
        return [*builtins(),
                *(self._costed(self._recorded(user, c), loaded)
                  for c in host_commands(self.host, user.admin)),
                Command("Write-EventLog", "Microsoft.PowerShell.Management", self._write_event),
                Command("Get-WinEvent", "Microsoft.PowerShell.Diagnostics", self._get_events)]

    def runspace(self, user: LabUser, commands: list[Command] | None = None,
                 language_mode: str | None = None, modules: list[str] | None = None,
                 variables: dict[str, Any] | None = None,
                 now: Callable[[], datetime] | None = None,
                 loaded: set[str] | None = None) -> Runspace:
        """A session on this host: its clock (the lab's hosts run in UTC), files and commands.
        `loaded` (kept by the caller for a runspace that lives on) as for `commands`."""
        return Runspace(self.commands(user, loaded) if commands is None else commands,
                        env={"COMPUTERNAME": self.host.name}, variables=variables or {},
                        language_mode=language_mode or self.language_mode, modules=modules,
                        provider=HostFiles(self.host),
                        now=now or (lambda: self.host.clock.utcnow().replace(tzinfo=None)),
                        identity=windows_identity(user.name, user.sid))

    def calls_of(self, cmdlet: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.cmdlet.lower() == cmdlet.lower()]

    def _costed(self, command: Command, loaded: set[str]) -> Command:
        """A Hyper-V cmdlet that pays the module's import on its session's first Hyper-V call,
        and Get-VM its WMI queries per VM returned."""
        if command.module != HYPERV:
            return command
        run = command.run

        def costed(call: CmdletCall) -> Any:
            if HYPERV not in loaded:
                loaded.add(HYPERV)
                with self._lock:
                    self.module_imports += 1
                _pause(self.cost.module_import_ms)
            out = run(call)
            if command.name == "Get-VM" and isinstance(out, list):
                _pause(self.cost.wmi_per_vm_ms * len(out))
            return out
        return Command(command.name, command.module, costed)

    def _recorded(self, user: LabUser, command: Command) -> Command:
        if command.name not in CHANGING:
            return command
        run = command.run

        def recorded(call: CmdletCall) -> Any:
            vm = _vm_of(call)
            with self._lock:
                self.calls.append(Call(user.name, command.name, dict(call.params)))
            try:
                out = run(call)
                self._event(user, command.name, vm, "ok", "", call.params)
                return out
            except PSError as error:
                self._event(user, command.name, vm, error.record.fqid.split(",")[0],
                            error.record.message, call.params)
                raise
        return Command(command.name, command.module, recorded)

    def _write_event(self, call: CmdletCall) -> None:
        """Write-EventLog into the host's event log (`event_log`, which Get-WinEvent reads). The
        console's events (a JSON document: docs/host-operations.md) are also kept, read, as a
        HostEvent and in the host's shared log."""
        log, source = cv.to_str(call.get("LogName")), cv.to_str(call.get("Source"))
        if self.event_log_error is not None or log.lower() != HOST_EVENT_LOG.lower() \
                or source.lower() not in {s.lower() for s in self.sources}:
            reason = self.event_log_error or (
                f'The source name "{source}" does not exist on computer "localhost".')
            call.error(PSError(reason, "Microsoft.PowerShell.Commands.WriteEventLogCommand",
                               "InvalidOperation", "System.InvalidOperationException"))
            return
        text = cv.to_str(call.get("Message"))
        event_id = cv.to_int(call.get("EventId"))
        # EventLog.WriteEntry refuses a longer message; the cmdlet reports its ArgumentException
        # as a non-terminating error (host.toml [event_log] message_max).
        limit = int(facts.host("event_log")["message_max"])
        if len(text) > limit:
            why = (f"Log entry string is too long. A string written to the event log cannot "
                   f"exceed {limit} characters.")
            call.error(PSError(why, f"{why},Microsoft.PowerShell.Commands.WriteEventLogCommand",
                               "InvalidOperation", "System.ArgumentException"))
            return
        now = _utc(self.host.clock.utcnow())
        with self._lock:
            entry = LogEntry(len(self.event_log) + 1, now, HOST_EVENT_LOG, source, event_id,
                             cv.to_str(call.get("EntryType") or "Information"), text)
            self.event_log.append(entry)
        try:
            document = json.loads(text)
        except ValueError:
            return  # not the console's: kept in the log only
        if not isinstance(document, dict) or event_id not in HOST_EVENT_IDS.values():
            return  # not an action's event (a downtime plan or answer): kept in the log only

        def field_(key: str) -> str:
            value = document.get(key)
            return "" if value is None else str(value)
        outcome = "ok" if field_("outcome") == "ok" else field_("code") or field_("outcome")
        event = HostEvent(now, self.host.name, field_("user"), field_("operation"),
                          field_("action") or None, field_("vm") or None, field_("name") or None,
                          outcome, field_("message"), {
                              "event_id": str(event_id), "source": source, "sid": field_("sid"),
                              "endpoint": field_("endpoint"), "record": field_("record"),
                              "sha256": field_("sha256"), "seq": field_("seq"),
                              "workstation": field_("workstation")})
        with self._lock:
            self.events.append(event)
        if self.log is not None:
            self.log.write(event.user, event.operation, outcome, action=event.action,
                           vm_id=event.vm_id, vm_name=event.vm_name, message=event.message,
                           sid=event.params["sid"], record=event.params["record"])

    def _get_events(self, call: CmdletCall) -> list[PSObject]:
        """Get-WinEvent -FilterHashtable over `event_log`: the keys the console uses (LogName,
        ProviderName, Id, StartTime, EndTime), -MaxEvents and -Oldest; newest first. No event
        is NoMatchingEventsFound, a provider no log has NoMatchingProvidersFound (WriteError:
        terminating under Stop)."""
        if call.set_name != "HashQuerySet":
            raise PSError(f"The lab's Get-WinEvent reads -FilterHashtable queries only, not "
                          f"{call.set_name}.", "NotSimulated", "NotImplemented",
                          "System.NotImplementedException")
        given = call.get("FilterHashtable")
        queries = given if isinstance(given, list) else [given]
        with self._lock:
            entries = list(self.event_log)
        found: dict[int, LogEntry] = {}
        for query in queries:
            if not isinstance(query, Hashtable):
                raise PSError("FilterHashtable takes hashtables.", "NotSimulated", "NotImplemented",
                              "System.NotImplementedException")
            keys = {cv.to_str(k).lower(): v for k, v in query.pairs()}
            unknown = set(keys) - _FILTER_KEYS
            if unknown:
                raise PSError(f"The lab's Get-WinEvent does not filter on "
                              f"{', '.join(sorted(unknown))}.", "NotSimulated", "NotImplemented",
                              "System.NotImplementedException")
            providers = [cv.to_str(p) for p in cv.to_list(keys.get("providername")) or []]
            if providers and not any(fnmatch.fnmatchcase(s.lower(), p.lower())
                                     for p in providers for s in self.sources):
                call.error(_no_match(facts.host("event_log")["no_provider"],
                                     "There is not an event provider on the localhost computer "
                                     f"that matches \"{providers[0]}\"."))
                return []
            for entry in entries:
                if _matches(entry, keys):
                    found[entry.record_id] = entry
        chosen = sorted(found.values(), key=lambda e: e.record_id, reverse=not call.get("Oldest"))
        if call.has("MaxEvents"):
            chosen = chosen[:max(0, cv.to_int(call.get("MaxEvents")))]
        if not chosen:
            call.error(_no_match(facts.host("event_log")["no_events"],
                                 "No events were found that match the specified selection criteria."))
            return []
        return [self._record(e) for e in chosen]

    def _record(self, entry: LogEntry) -> PSObject:
        """An EventLogRecord as Get-WinEvent returns it (TimeCreated in the host's local time:
        the lab's hosts run in UTC)."""
        level = {"error": 2, "warning": 3}.get(entry.entry_type.lower(), 4)
        return PSObject("System.Diagnostics.Eventing.Reader.EventLogRecord", {
            "Id": entry.event_id, "RecordId": entry.record_id, "LogName": entry.log,
            "ProviderName": entry.source, "MachineName": self.host.name,
            "TimeCreated": entry.time.replace(tzinfo=None), "Level": level,
            "LevelDisplayName": {2: "Error", 3: "Warning"}.get(level, "Information"),
            "Message": entry.message,
            "Properties": [PSObject("System.Diagnostics.Eventing.Reader.EventProperty",
                                    {"Value": entry.message}, text=entry.message)]},
            text=entry.message)

    def _event(self, user: LabUser, cmdlet: str, vm: Any, outcome: str, message: str,
               params: dict[str, Any]) -> None:
        vm_id, vm_name = (vm.id, vm.name) if vm is not None else (None, None)
        shown = {k: str(v) for k, v in params.items() if isinstance(v, (str, bool, int))}
        event = HostEvent(self.host.clock.utcnow(), self.host.name, user.name, cmdlet, None,
                          vm_id, vm_name, outcome, message, shown)
        with self._lock:
            self.events.append(event)
        if self.log is not None:
            self.log.write(user.name, cmdlet, outcome, vm_id=vm_id, vm_name=vm_name,
                           message=message, params=shown)


_FILTER_KEYS = frozenset({"logname", "providername", "id", "starttime", "endtime"})


def _utc(moment: datetime) -> datetime:
    """A moment as UTC: an aware one converted, a naive one taken as UTC (the lab's hosts run
    in UTC, so their local time is UTC)."""
    return moment.astimezone(UTC) if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _matches(entry: LogEntry, keys: dict[str, Any]) -> bool:
    """Whether an entry passes one FilterHashtable (its keys lower case): names compared
    without regard to case, with wildcards; ids; StartTime and EndTime inclusive."""
    for key, names in (("logname", entry.log), ("providername", entry.source)):
        if key in keys and not any(fnmatch.fnmatchcase(names.lower(), cv.to_str(p).lower())
                                   for p in cv.to_list(keys[key]) or []):
            return False
    if "id" in keys and entry.event_id not in {cv.to_int(i) for i in cv.to_list(keys["id"]) or []}:
        return False
    if "starttime" in keys and entry.time < _utc(cv.to_datetime(keys["starttime"])):
        return False
    return not ("endtime" in keys and entry.time > _utc(cv.to_datetime(keys["endtime"])))


def _no_match(fqid: str, message: str) -> PSError:
    return PSError(message, f"{fqid},Microsoft.PowerShell.Commands.GetWinEventCommand",
                   "ObjectNotFound", "System.Exception")


def windows_identity(name: str, sid: str, groups: tuple[str, ...] = ()) -> PSObject:
    """A token as PowerShell shows a System.Security.Principal.WindowsIdentity: Name, User (a
    SecurityIdentifier whose Value is the SID) and Groups."""
    def identifier(value: str) -> PSObject:
        return PSObject("System.Security.Principal.SecurityIdentifier", {"Value": value},
                        text=value)
    return PSObject("System.Security.Principal.WindowsIdentity", {
        "Name": name, "User": identifier(sid), "Groups": [identifier(g) for g in groups]},
        text="System.Security.Principal.WindowsIdentity")


def _pause(ms: float) -> None:
    if ms > 0:
        time.sleep(ms / 1000)


def _vm_of(call: CmdletCall) -> Any:
    """The lab VM a cmdlet call acts on, for its event (by -VM, -VMSnapshot or -VMDvdDrive)."""
    for key in ("VM", "VMSnapshot", "VMDvdDrive"):
        given = call.get(key)
        item = given[0] if isinstance(given, list) and given else given
        lab = getattr(item, "lab", None) or (item.get("lab") if hasattr(item, "get") else None)
        if isinstance(lab, tuple):
            return lab[0]
        if lab is not None:
            return lab
    return None


ADMINISTRATOR = LabUser("LAB\\lab-admin", "S-1-5-21-1000-2000-3000-500", admin=True)


def run_operation(host: Host, operation: str, params: dict[str, Any]) -> Any:
    """An operation script run on `host` by a Hyper-V administrator: its data, or HyperVError
    with the code the script answered (tests and the lab's own reads use it)."""
    result = Executor(host).run_script(ADMINISTRATOR, scripts.script(operation, params))
    text = result.stdout.decode("utf-8").strip()
    try:
        document = json.loads(text)
    except ValueError:
        raise HyperVError("host_error", f"the script printed no JSON document: {text[:200]!r} "
                          f"{result.stderr.decode('utf-8', 'replace')[:400]}") from None
    if not document.get("ok"):
        error = document.get("error") or {}
        raise HyperVError(str(error.get("code")), str(error.get("message")))
    return document.get("data")

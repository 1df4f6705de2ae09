"""What a lab host runs for a WinRS command: exactly the console's operation scripts.

`Executor.run` recognises the command line with `console.scripts.parse_command_line` (the exact
compacted script text, with its parameter line), runs the operation on the simulated Hyper-V
host, and answers what the script would print: one JSON document on stdout. Any other command,
including an operation script with one character changed, is refused as access denied: the lab
runs nothing it does not know.

Every call is recorded (who, which operation, the decoded parameters) so tests can compare them
with what the client sent, and every action performed or refused is appended to the host's
event list, as a host's event log would hold it.
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .. import scripts
from .auth import LabUser
from .hyperv import NO_PERMISSION, Host, HyperVError, parse_guid, parse_int
from .wsman import AccessDenied, CommandResult, EventLog

ACTIONS = ("power", "checkpoint", "media")


class CommandRefused(AccessDenied):
    """A command that is not one of the operation scripts: the server answers Access denied."""


@dataclass(frozen=True)
class Call:
    """One recognised call: who, which operation, the decoded parameters as the host got them."""

    user: str
    operation: str
    params: dict[str, Any]


@dataclass(frozen=True)
class HostEvent:
    """One entry of a host's event log: an action performed or refused, or a refused command."""

    time: datetime
    host: str
    user: str
    operation: str
    action: str | None
    vm_id: str | None
    vm_name: str | None
    outcome: str  # "ok", or the error code ("wrong_state", "access_denied", ...)
    message: str = ""
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Executor:
    """Runs operation scripts on one simulated host.

    `events` holds the HostEvent of every action performed or refused; `log` is the host's
    event log shared with its WS-Management server (console.lab.wsman.EventLog), which gets the
    same entries as dicts.
    """

    host: Host
    events: list[HostEvent] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    log: EventLog | None = None

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def run(self, user: LabUser, command_line: str) -> CommandResult:
        try:
            operation, params = scripts.parse_command_line(command_line)
        except scripts.UnknownScript as refused:
            # The server logs the refusal (and answers with an access-denied fault).
            raise CommandRefused(f"Access is denied: {refused}.") from None
        with self._lock:
            self.calls.append(Call(user.name, operation, params))
        try:
            data = self._dispatch(user, operation, params)
            document: dict[str, Any] = {"ok": True, "data": data}
            outcome, message = "ok", ""
        except HyperVError as error:
            document = {"ok": False, "error": {"code": error.code, "message": error.message}}
            outcome, message = error.code, error.message
        if operation in ACTIONS or outcome == "access_denied":
            vm_id = params.get("vm_id") if isinstance(params.get("vm_id"), str) else None
            self._event(user, operation, params.get("action"), vm_id, outcome, message, params)
        # PowerShell ends its output with a line break; the client's shell uses code page 65001.
        text = json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\r\n"
        return CommandResult(text.encode("utf-8"), b"", 0)

    def calls_of(self, operation: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.operation == operation]

    # --- the operations -------------------------------------------------------------------------

    def _dispatch(self, user: LabUser, operation: str, p: dict[str, Any]) -> Any:
        host = self.host
        if not user.admin:
            # The default endpoint runs the scripts as the caller: Hyper-V's own check refuses
            # anyone outside Hyper-V Administrators.
            raise HyperVError("access_denied", NO_PERMISSION.format(host=host.name))
        if operation == "inventory":
            return host.inventory()
        if operation == "host_facts":
            return host.host_facts([str(f) for f in _list(p.get("library"))])
        if operation == "vm_state":
            return host.vm_state([parse_guid(i, "vm_ids") for i in _list(p.get("vm_ids"))])
        vm_id = parse_guid(p.get("vm_id"), "vm_id")
        host.vm(vm_id)  # not_found before anything else, as V in _common.ps1
        action = _text(p.get("action"))
        if operation == "power":
            return host.power(vm_id, action)
        if operation == "checkpoint":
            return host.checkpoint(vm_id, action, p.get("checkpoint_id"), _text(p.get("name")))
        if operation == "media":
            return host.media(vm_id, action, _text(p.get("controller_type")),
                              parse_int(p.get("controller"), "controller"),
                              parse_int(p.get("location"), "location"),
                              _text(p.get("path")) or None,
                              [str(f) for f in _list(p.get("library"))])
        raise HyperVError("invalid_parameter", f"Unknown operation {operation}.")

    def _event(self, user: LabUser, operation: str, action: Any, vm_id: str | None, outcome: str,
               message: str, params: dict[str, Any]) -> None:
        name = None
        if vm_id:
            try:
                name = self.host.vm(vm_id.lower()).name
            except HyperVError:
                name = None
        event = HostEvent(
            time=self.host.clock.utcnow(), host=self.host.name, user=user.name,
            operation=operation, action=str(action) if action is not None else None,
            vm_id=vm_id, vm_name=name, outcome=outcome, message=message, params=dict(params))
        self.events.append(event)
        if self.log is not None:
            self.log.write(user.name, operation, outcome, action=event.action, vm_id=vm_id,
                           vm_name=name, message=message, params=event.params)


def _text(value: Any) -> str:
    """"$($a.x)" in the scripts: null is empty text."""
    return "" if value is None else str(value)


def _list(value: Any) -> list[Any]:
    """@($a.x) in the scripts: null is empty, a single value a list of one."""
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]

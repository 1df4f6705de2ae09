"""The operation scripts and how they travel to a host.

Each operation is a fixed script in resources/powershell/<operation>.ps1, run after the shared
prelude _common.ps1. Parameters never enter the script text as code: they travel as one JSON
document, base64-encoded, in the first line (`$p='...'`), which the prelude decodes. Base64 has
no quote, so nothing in a VM name, path or label can end that string and become code.

Each script defines its work as function O and ends with Y, the prelude's frame that runs O and
prints one JSON document. The power script's table of accepted states is filled in from
console.states, the one table the inventory and the lab read too. On the admin endpoint an action
(power, checkpoint, media: `ACTIONS`) ends with E instead, the prelude's frame that runs Y and
writes the call's event (Application log, source HvConsole, console.audit.HOST_EVENT_IDS) with the
caller's SID from the process's token and the console record the call carries (`$a.audit`); the
JEA functions embed the same text ending with Y (`shared_body`) and write their own event.

The command is `powershell -NoProfile -NonInteractive -Command -`, and the script travels on the
command's standard input as ONE line (powershell.exe reads `-Command -` line by line, running
each complete statement as it arrives): cmd.exe's 8191-character command line would not hold
the scripts as `-EncodedCommand` (2.7 characters per script character), and the command line
stays far within 75% of that limit (tests/lab/test_scripts.py). The script is ASCII only (the
parameters are base64), so the console code page of a host cannot change a character of it.
The lab runs what it is sent through its PowerShell interpreter (lab/pwsh), judged by
Microsoft's facts: it does not recognise the console's text.
"""
from __future__ import annotations

import base64
import json
import re
from functools import cache
from typing import Any

from . import audit, states
from .powershell import facts
from .errors import InvalidParameter
from .paths import POWERSHELL

COMMAND_LINE_LIMIT = 8191
COMMAND_LINE_BUDGET = COMMAND_LINE_LIMIT * 3 // 4  # room for a host's longer paths and names
EXECUTABLE = "powershell"
ARGUMENTS = ("-NoProfile", "-NonInteractive", "-Command", "-")
STDIN_LIMIT = 64 * 1024  # far below WinRM's 500 KB envelope (MaxEnvelopeSizekb)
OPERATIONS = ("inventory", "host_facts", "host_hardening", "vm_state", "power", "checkpoint", "media",
              "audit_events", "console_access", "console_acl", "details", "thumbnail",
              "document", "metering", "downtime_plans", "downtime_publish",
              "downtime_answer")
# The operations that change a VM: each writes an event.
ACTIONS = ("power", "checkpoint", "media", "console_access")
# Who the caller is, for the scripts that act for the caller themselves (console_access.ps1's
# %CALLER%): the process's own token on the admin endpoint (the session runs as the caller), the
# connected user's token from $PSSenderInfo in a JEA function (console/jea.py's $hvcWho; the
# function itself runs as a virtual account). Never a parameter: the client names nobody.
CALLER = {True: "[System.Security.Principal.WindowsIdentity]::GetCurrent()", False: "$hvcWho"}
# Whether the caller holds the plan item $t's VM, for downtime_answer.ps1's %HOLDS%: every VM on
# the admin endpoint (its callers administer the host), those the caller may view in a JEA
# function (its HvcRights, the grants the function holds).
HOLDS = {True: "\"$($t.vm_id)\" -ne ''",
         False: "(HvcRights \"$($t.vm_id)\" \"$($t.vm_name)\") -contains 'vm.view'"}


def compact(text: str) -> str:
    """Drop blank lines, `#` comment lines and indentation. Scripts use no here-strings."""
    lines = (line.strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line and not line.startswith("#"))


@cache
def body(operation: str) -> str:
    """The compacted text the admin endpoint runs for an operation: the prelude's settings, the
    prelude helpers the operation calls (each helper is one line), then the operation's script;
    an action (`ACTIONS`) ends with the frame E, which writes its event, instead of Y."""
    return _assemble(operation, admin=True)


@cache
def shared_body(operation: str) -> str:
    """The same text ending with Y, as the generated JEA functions embed it (console/jea.py):
    they build `$a` from typed parameters and write their own event."""
    return _assemble(operation, admin=False)


def _fill(text: str, operation: str) -> str:
    """The placeholders of the scripts: the power table, the operation's name, the event log's
    facts (console.audit) and the patterns a record reference must match."""
    values = {
        "ACCEPTS": states.power_table_literal(), "OPERATION": operation,
        "EVENT_LOG": audit.HOST_EVENT_LOG, "EVENT_SOURCE": audit.HOST_EVENT_SOURCE,
        "EVENT_OK": str(audit.HOST_EVENT_IDS["ok"]),
        "EVENT_DENIED": str(audit.HOST_EVENT_IDS["denied"]),
        "EVENT_FAILED": str(audit.HOST_EVENT_IDS["failed"]),
        "EVENT_VERSION": str(audit.HOST_EVENT_VERSION), "SEQ_MAX": str(audit.SEQ_MAX),
        "EVENTS_MAX": str(audit.HOST_EVENTS_MAX),
        "RECORD_PATTERN": audit.RECORD_ID_PATTERN, "SHA256_PATTERN": audit.SHA256_PATTERN,
        "WORKSTATION_PATTERN": audit.WORKSTATION_PATTERN,
        "PLAN_EVENT": str(audit.HOST_PLAN_EVENT_ID), "ANSWER_EVENT": str(audit.HOST_ANSWER_EVENT_ID),
        "PLANS_MAX": str(audit.HOST_PLANS_MAX), "PLAN_ID_PATTERN": audit.PLAN_ID_PATTERN,
        "ANSWER_PATTERN": audit.ANSWER_TEXT_PATTERN, "ANSWER_MAX": str(audit.ANSWER_TEXT_MAX),
        "MESSAGE_MAX": str(facts.host("event_log")["message_max"]),
    }
    return re.sub(r"%([A-Z_0-9]+)%", lambda m: values.get(m.group(1), m.group(0)), text)


def _assemble(operation: str, admin: bool) -> str:
    if operation not in OPERATIONS:
        raise ValueError(f"unknown operation {operation!r}")
    prelude = compact(_fill((POWERSHELL / "_common.ps1").read_text(encoding="utf-8"),
                            operation)).splitlines()
    script = compact(_fill((POWERSHELL / f"{operation}.ps1").read_text(encoding="utf-8"),
                           operation)).replace("%CALLER%", CALLER[admin]).replace("%HOLDS%", HOLDS[admin])
    if admin and operation in ACTIONS:
        lines = script.splitlines()
        if lines[-1] != "Y":
            raise ValueError(f"{operation}.ps1 must end with the frame Y")
        script = "\n".join([*lines[:-1], "E"])
    wanted = called_helpers(prelude, script)
    kept = [line for line in prelude
            if (defined := defined_function(line)) is None and (not line.startswith("$a=") or "$a." in script)
            or defined in wanted]
    return "\n".join(kept) + "\n" + script


def called_helpers(lines: list[str], script: str) -> set[str]:
    """The names of the one-line functions among `lines` that `script` calls, directly or through
    each other: the helpers to send with it (the others are left out)."""
    helpers = {name: line for line in lines if (name := defined_function(line))}
    wanted: set[str] = set()
    calls = _calls(script)
    while calls - wanted:
        name = (calls - wanted).pop()
        wanted.add(name)
        if name in helpers:
            calls |= _calls(helpers[name])
    return wanted


def defined_function(line: str) -> str | None:
    """The name of the function a one-line helper defines, or None for any other line."""
    match = re.match(r"function (\w+)", line)
    return match.group(1) if match else None


def _calls(text: str) -> set[str]:
    """The names of the commands `text` calls, read with the PowerShell grammar."""
    from .powershell.syntax import parse, text_of, walk
    return {text_of(n) for n in walk(parse(text).root_node) if n.type == "command_name"}


def encode_params(params: dict[str, Any]) -> str:
    raw = json.dumps(params, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return base64.b64encode(raw).decode("ascii")


def script(operation: str, params: dict[str, Any]) -> str:
    """The full script text for one call."""
    return f"$p='{encode_params(params)}'\n" + body(operation)


def command(operation: str, params: dict[str, Any]) -> tuple[str, list[str], str]:
    """(executable, arguments, standard input) for WinRS; refuses what a host would not take."""
    text = one_line(script(operation, params)) + "\r\n"
    if not text.isascii() or len(text) > STDIN_LIMIT:
        raise InvalidParameter(
            f"The parameters of this {operation} call are too long for a host "
            f"({len(text)} of {STDIN_LIMIT} characters); shorten the name or path.")
    return EXECUTABLE, list(ARGUMENTS), text


def command_line(operation: str, params: dict[str, Any]) -> str:
    """What cmd.exe is given (the script itself travels on standard input)."""
    executable, args, _ = command(operation, params)
    return " ".join([executable, *args])


def one_line(text: str) -> str:
    """The script as one line: `;` between statements, a space where the next line continues
    the statement (a block's next clause, or a line ending in an opening bracket, a pipe or a
    comma). tests/lab/test_scripts.py checks the grammar reads both alike."""
    out = ""
    for line in text.splitlines():
        if not out:
            out = line
        elif out.endswith(("{", "(", "|", ",", ";")) or re.match(r"(elseif|else|catch|finally)\b", line):
            out += " " + line
        else:
            out += ";" + line
    return out

"""The operation scripts and how they travel to a host.

Each operation is a fixed script in resources/powershell/<operation>.ps1, run after the shared
prelude _common.ps1. Parameters never enter the script text as code: they travel as one JSON
document, base64-encoded, in the first line (`$p='...'`), which the prelude decodes. Base64 has
no quote, so nothing in a VM name, path or label can end that string and become code.

The whole is sent as `powershell -NoProfile -NonInteractive -EncodedCommand <UTF-16LE base64>`,
which must fit cmd.exe's 8191-character command line on a real host: scripts are sent compacted
(comment lines and indentation dropped), and a command that would not fit is refused before it is
sent. The lab recognises a command only if its body is, to the letter, a compacted script.
"""
from __future__ import annotations

import base64
import binascii
import json
import re
from functools import cache
from typing import Any

from .errors import ConsoleError, InvalidParameter
from .paths import POWERSHELL

COMMAND_LINE_LIMIT = 8191
EXECUTABLE = "powershell"
ARGUMENTS = ("-NoProfile", "-NonInteractive", "-EncodedCommand")
OPERATIONS = ("inventory", "host_facts", "vm_state", "power", "checkpoint", "media")
_PARAM_LINE = re.compile(r"\$p='([A-Za-z0-9+/]*={0,2})'")


class UnknownScript(ConsoleError):
    """A command that is not one of the console's operation scripts."""


def compact(text: str) -> str:
    """Drop blank lines, `#` comment lines and indentation. Scripts use no here-strings."""
    lines = (line.strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line and not line.startswith("#"))


@cache
def body(operation: str) -> str:
    """The compacted text run for an operation: the prelude, then the operation's script."""
    if operation not in OPERATIONS:
        raise ValueError(f"unknown operation {operation!r}")
    prelude = (POWERSHELL / "_common.ps1").read_text(encoding="utf-8")
    script = (POWERSHELL / f"{operation}.ps1").read_text(encoding="utf-8")
    return compact(prelude) + "\n" + compact(script)


def encode_params(params: dict[str, Any]) -> str:
    raw = json.dumps(params, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return base64.b64encode(raw).decode("ascii")


def script(operation: str, params: dict[str, Any]) -> str:
    """The full script text for one call."""
    return f"$p='{encode_params(params)}'\n" + body(operation)


def command(operation: str, params: dict[str, Any]) -> tuple[str, list[str]]:
    """(executable, arguments) for WinRS; refuses a command line a real host would cut."""
    encoded = base64.b64encode(script(operation, params).encode("utf-16-le")).decode("ascii")
    args = [*ARGUMENTS, encoded]
    length = len(" ".join([EXECUTABLE, *args]))
    if length > COMMAND_LINE_LIMIT:
        raise InvalidParameter(
            f"The parameters of this {operation} call are too long for a host's command line "
            f"({length} of {COMMAND_LINE_LIMIT} characters); shorten the name or path."
        )
    return EXECUTABLE, args


def command_line(operation: str, params: dict[str, Any]) -> str:
    executable, args = command(operation, params)
    return " ".join([executable, *args])


def parse_command_line(line: str) -> tuple[str, dict[str, Any]]:
    """What the lab does with a command line: (operation, parameters), or UnknownScript."""
    parts = line.split()
    if (len(parts) != len(ARGUMENTS) + 2 or parts[0].lower() not in {"powershell", "powershell.exe"}
            or [p.lower() for p in parts[1:-1]] != [a.lower() for a in ARGUMENTS]):
        raise UnknownScript("not an operation script command line")
    try:
        text = base64.b64decode(parts[-1], validate=True).decode("utf-16-le")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise UnknownScript("the encoded command is not valid") from exc
    first, _, rest = text.partition("\n")
    match = _PARAM_LINE.fullmatch(first)
    if not match:
        raise UnknownScript("the script does not start with its parameter line")
    operation = next((op for op in OPERATIONS if _body_or_none(op) == rest), None)
    if operation is None:
        raise UnknownScript("the script is not one of the console's operation scripts")
    try:
        params = json.loads(base64.b64decode(match.group(1)).decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UnknownScript("the parameter document is not valid JSON") from exc
    if not isinstance(params, dict):
        raise UnknownScript("the parameter document is not a JSON object")
    return operation, params


def _body_or_none(operation: str) -> str | None:
    try:
        return body(operation)
    except FileNotFoundError:
        return None

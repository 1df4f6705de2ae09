"""Reading PowerShell data files (.psd1) and the grants inside the generated JEA functions, as the
lab's hosts do. The product only writes these files (console/jea.py: `psd1`, `quote`); a real host
reads them with PowerShell itself.

The reader takes exactly what `psd1` writes (hashtables, arrays, single-quoted strings, booleans,
script blocks, comments) and refuses anything else, so a generated file the lab accepts is one
PowerShell reads the same way.
"""
from __future__ import annotations

import re
from typing import Any

from console.jea import DOUBLE_QUOTES, SINGLE_QUOTE_PATTERN, SINGLE_QUOTES, HostGrants, ScriptBlock


def read_quoted(text: str, i: int) -> tuple[str, int]:
    """The single-quoted literal opening at text[i], read by PowerShell's rule (tokenizer.cs
    ScanStringLiteral): a quote character followed by another one stands for the second; any other
    quote character ends the string. Returns (value, the offset after the closing quote)."""
    if i >= len(text) or text[i] not in SINGLE_QUOTES:
        raise DataFileError(f"a quoted string expected at offset {i}")
    out, i = [], i + 1
    while True:
        match = SINGLE_QUOTE_PATTERN.search(text, i)
        if match is None:
            raise DataFileError("unterminated string")
        end = match.start()
        out.append(text[i:end])
        if end + 1 < len(text) and text[end + 1] in SINGLE_QUOTES:
            out.append(text[end + 1])
            i = end + 2
            continue
        return "".join(out), end + 1


class DataFileError(ValueError):
    """Text outside the data file subset (hashtable, array, string, boolean, script block)."""


def parse_psd1(text: str) -> Any:
    """Read what `psd1` writes (comments allowed); DataFileError for anything else."""
    parser = _DataParser(text.lstrip("\ufeff"))
    value = parser.value()
    parser.blank()
    if parser.i != len(parser.text):
        raise DataFileError(f"unexpected text at offset {parser.i}")
    return value


def read_value(text: str, i: int) -> tuple[Any, int]:
    """The data value (as `psd1` writes it) starting at text[i], and the offset after it."""
    parser = _DataParser(text)
    parser.i = i
    value = parser.value()
    return value, parser.i


class _DataParser:
    def __init__(self, text: str) -> None:
        self.text, self.i = text, 0

    def blank(self, newlines: bool = True) -> None:
        text = self.text
        while self.i < len(text):
            ch = text[self.i]
            if ch == "#":
                end = text.find("\n", self.i)
                self.i = len(text) if end < 0 else end
            elif ch in " \t" or (newlines and ch in "\r\n;"):
                self.i += 1
            else:
                return

    def take(self, token: str) -> bool:
        self.blank()
        if self.text.startswith(token, self.i):
            self.i += len(token)
            return True
        return False

    def value(self) -> Any:
        self.blank()
        text = self.text
        if self.take("@{"):
            table: dict[str, Any] = {}
            while not self.take("}"):
                key = self.key()
                if not self.take("="):
                    raise DataFileError(f"'=' expected after {key!r}")
                if key.lower() in (k.lower() for k in table):  # PowerShell's keys ignore case
                    raise DataFileError(f"key {key!r} given twice")
                table[key] = self.value()
            return table
        if self.take("@("):
            items: list[Any] = []
            while not self.take(")"):
                items.append(self.value())
                self.take(",")
            return items
        if self.i < len(text) and text[self.i] in SINGLE_QUOTES:
            return self.string()
        if self.take("$true"):
            return True
        if self.take("$false"):
            return False
        if text.startswith("{", self.i):
            end = skip_code(text, self.i + 1, "}")
            block = text[self.i + 1:end - 1]
            self.i = end
            return ScriptBlock(block.lstrip("\r\n").rstrip(" \t\r\n"))
        raise DataFileError(f"a value expected at offset {self.i}: {text[self.i:self.i + 20]!r}")

    def key(self) -> str:
        self.blank()
        if self.i < len(self.text) and self.text[self.i] in SINGLE_QUOTES:
            return self.string()
        match = re.compile(r"[A-Za-z_][A-Za-z0-9_]*").match(self.text, self.i)
        if not match:
            raise DataFileError(f"a key expected at offset {self.i}")
        self.i = match.end()
        return match.group(0)

    def string(self) -> str:
        value, self.i = read_quoted(self.text, self.i)
        return value


def skip_code(text: str, i: int, closer: str) -> int:
    """The offset after the `closer` that ends PowerShell code starting at `i`: strings, `$(...)`
    inside double quotes, comments and nested brackets are stepped over."""
    pairs = {"{": "}", "(": ")", "[": "]"}
    while i < len(text):
        ch = text[i]
        if ch == closer:
            return i + 1
        if ch in pairs:
            i = skip_code(text, i + 1, pairs[ch])
        elif ch in SINGLE_QUOTES:
            i = read_quoted(text, i)[1]
        elif ch in DOUBLE_QUOTES:
            i += 1
            while i < len(text):
                if text[i] in DOUBLE_QUOTES:  # doubled: one quote of the text; else the end
                    if i + 1 < len(text) and text[i + 1] in DOUBLE_QUOTES:
                        i += 2
                        continue
                    break
                if text[i] == "`":
                    i += 2
                elif text.startswith("$(", i):
                    i = skip_code(text, i + 2, ")")
                else:
                    i += 1
            i += 1
        elif ch == "#" and (i == 0 or text[i - 1] in " \t\r\n;{(") :
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
        elif ch == "`":
            i += 2
        else:
            i += 1
    raise DataFileError(f"'{closer}' missing in a script block")


# The line of each generated function that holds the grants data.
_DATA_LINE = re.compile(r"^\$hvcData=", re.MULTILINE)


def embedded_data(function: str) -> Any:
    """The literal of the `$hvcData=` line of a generated function's text; DataFileError when
    there is none, or more than one."""
    found = list(_DATA_LINE.finditer(function))
    if len(found) != 1:
        raise DataFileError(f"{len(found)} $hvcData lines in a function; one expected")
    return read_value(function, found[0].end())[0]


def grants_file(text: str) -> HostGrants:
    """The readable copy, HvConsole.Grants.psd1 (the enforced data and the policy's digest)."""
    data = parse_psd1(text)
    return HostGrants.from_data(data, str(data.get("Digest", "")))


def embedded_grants(function: str) -> HostGrants:
    """The grants a generated function's text holds (what that function enforces)."""
    return HostGrants.from_data(embedded_data(function))

"""Untrusted text (VM, checkpoint, host and principal names, notes, paths, error messages written
by other people): the one place that decides how it is written to each kind of output.

What a terminal, a log viewer or a person reading a line could be fooled by is never passed
through as it is: C0 controls (ESC starts ANSI sequences that recolour, move the cursor or set a
window title; CR overwrites a line; NUL truncates), C1 controls (U+0080-U+009F: a single-byte CSI
in some terminals, NEL a line break), bidirectional controls (RLO, LRO, PDF, LRI, RLI, FSI, PDI,
LRM, RLM, ALM: they reorder what is read, so `exe.txt` can show as `txt.exe`), other format
characters (zero-width spaces and joiners) and line or paragraph separators (U+2028, U+2029).
Each is shown escaped (`\\x1b`, `\\u202e`), so the text reads literally and the escape says what
was there.

- `plain`: a block of program output for a terminal or a label (line breaks and tabs kept);
- `one_line`: a cell of a table, a status line, a log message (line breaks escaped too);
- `json_for_terminal`, `csv_for_terminal`: a document printed to a terminal, still a valid
  document that reads back as the exact data;
- `log_block`: a traceback under a log line, each of its lines indented so none reads as a
  record of its own.

Written to a file (or a pipe), a document keeps the data exact: `for_terminal` escapes only when
the output is a terminal.
"""
from __future__ import annotations

import csv
import io
import unicodedata

# Categories never written as they are: Cc (C0, DEL, C1), Cf (format: bidi controls, zero-width
# characters), Cs, Co, Cn (surrogates, private use, unassigned) and the line and paragraph
# separators Zl and Zp.
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
FORMATS = ("text", "csv", "html", "json")


def needs_escape(ch: str) -> bool:
    return unicodedata.category(ch) in _ESCAPED_CATEGORIES


_NAMED = {"\n": "\\n", "\t": "\\t"}


def _escape(ch: str) -> str:
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def plain(text: str) -> str:
    """Text safe for a terminal or a label: control and format characters shown escaped, never
    interpreted. Keeps printable characters (any script), line breaks (LF, and CR only as part
    of CRLF) and tabs."""
    out: list[str] = []
    last = len(text) - 1
    for i, ch in enumerate(text):
        if ch in "\n\t" or (ch == "\r" and i < last and text[i + 1] == "\n") or not needs_escape(ch):
            out.append(ch)
        else:
            out.append(_escape(ch))
    return "".join(out)


def one_line(text: str) -> str:
    """Plain text on one line (every line break and tab escaped too): for table cells, status
    lines, window titles and log lines."""
    return "".join(_escape(ch) if needs_escape(ch) else ch for ch in text)


def json_for_terminal(text: str) -> str:
    """JSON (as json.dumps writes it) with every character a terminal could act on written as a
    JSON escape (`\\u202e`), so it stays valid JSON that decodes to the same data. Such characters
    can only stand inside strings (JSON's own syntax is ASCII); line breaks between values (from
    `indent`) are kept."""
    out: list[str] = []
    for ch in text:
        if ch == "\n" or not needs_escape(ch):
            out.append(ch)
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:  # a UTF-16 surrogate pair, as JSON writes a character beyond the BMP
            code = ord(ch) - 0x10000
            out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
    return "".join(out)


def csv_for_terminal(text: str) -> str:
    """CSV with every cell on one line (`one_line`): no cell can show as a row of its own or
    move the cursor. The rows and cells stay where they were (CRLF between rows)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerows([one_line(cell) for cell in row]
                     for row in csv.reader(io.StringIO(text, newline="")))
    return out.getvalue()


def for_terminal(text: str, fmt: str, terminal: bool) -> str:
    """A document of format `fmt` (text, csv, html, json) as it is written to standard output:
    escaped for a terminal, exact for a file or a pipe."""
    if not terminal:
        return text
    if fmt == "json":
        return json_for_terminal(text)
    if fmt == "csv":
        return csv_for_terminal(text)
    return plain(text)


def log_block(text: str) -> str:
    """A traceback or stack under a log line: each of its lines escaped (`one_line`) and indented,
    so no text inside it (an exception message holding a line break) starts a line that reads as
    a record of the log."""
    return "\n".join("    " + one_line(line) for line in text.split("\n"))

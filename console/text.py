"""Untrusted text (VM names, notes, owners, error messages written by other people)."""
from __future__ import annotations

import unicodedata


def plain(text: str) -> str:
    """Text safe for a terminal: control and format characters shown escaped, never interpreted.

    Keeps printable characters (any script) as they are; escapes C0/C1 controls, ESC sequences,
    and bidirectional overrides, which could reorder what a person reads.
    """
    out: list[str] = []
    for ch in text:
        category = unicodedata.category(ch)
        if ch in "\n\t" or not (category.startswith("C") or category == "Zl" or category == "Zp"):
            out.append(ch)
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
    return "".join(out)


def one_line(text: str) -> str:
    """Plain text on one line (newlines and tabs escaped too): for tables and log lines."""
    return plain(text).replace("\n", "\\n").replace("\t", "\\t")

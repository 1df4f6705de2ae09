"""Exports of untrusted text (VM names, notes, owners): CSV, HTML and mailto: links.

Names and notes are written by other people, so every export format escapes them for its reader:
spreadsheets must not run a cell as a formula, a browser must not read markup (HTML pages are
Jinja2 templates under resources/templates/, rendered with autoescape on), and a mail client must
not find extra recipients or headers in a link.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any
from urllib.parse import quote

import jinja2

from .paths import RESOURCES

# A cell starting with one of these is a formula (or becomes one) in Excel, LibreOffice and
# Google Sheets (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _needs_guard(text: str) -> bool:
    # Quotes already in front are counted too, so that un-guarding never eats a quote that was
    # part of the original text: "'=x" is written "''=x" and read back as "'=x".
    return text.lstrip("'").startswith(FORMULA_STARTS)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)  # a number (even -5) is not a formula: keep it a number
    text = str(value)
    return "'" + text if _needs_guard(text) else text


def csv_text(header: list[str], rows: Iterable[Sequence[object]]) -> str:
    """RFC 4180 CSV (CRLF line ends, quotes where needed) with formula-like cells guarded by a
    leading single quote. None is an empty cell; other values are written as str(value)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([_cell(h) for h in header])
    writer.writerows([_cell(v) for v in row] for row in rows)
    return out.getvalue()


def csv_rows(text: str) -> list[list[str]]:
    """Parse CSV written by csv_text (header first) and remove the guards it added."""
    reader = csv.reader(io.StringIO(text, newline=""))
    return [[cell[1:] if cell.startswith("'") and _needs_guard(cell[1:]) else cell
             for cell in row] for row in reader]


@cache
def _templates() -> jinja2.Environment:
    # autoescape: every value is escaped for HTML text and quoted attributes (& < > " '), so no
    # caller escapes anything; StrictUndefined: a misspelt name in a template is an error, not "".
    return jinja2.Environment(loader=jinja2.FileSystemLoader(RESOURCES / "templates"),
                              autoescape=True, undefined=jinja2.StrictUndefined,
                              trim_blocks=True, lstrip_blocks=True)


def html_page(template: str, **values: Any) -> str:
    """The HTML template `template` (a file in resources/templates/) filled with `values`."""
    return _templates().get_template(template).render(**values)


def mailto(addresses: list[str], subject: str, body: str) -> str:
    """A mailto: URL (RFC 6068) whose every part is percent-encoded, so no name can add a
    recipient (`,`), a header (`?`, `&`), a fragment (`#`) or an escape (`%`). Line breaks in the
    body become CRLF (%0D%0A), as RFC 6068 asks; the subject is one line (its line breaks become
    spaces, so no mail client can read a second header from it); empty addresses are left out."""
    to = ",".join(quote(address, safe="@") for address in addresses if address)
    query = []
    if subject:
        one_line = " ".join(subject.splitlines())
        query.append("subject=" + quote(one_line, safe=""))
    if body:
        crlf = body.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")
        query.append("body=" + quote(crlf, safe=""))
    return "mailto:" + to + ("?" + "&".join(query) if query else "")

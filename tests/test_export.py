from __future__ import annotations

import csv
import io
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from console.export import _templates, csv_rows, csv_text, mailto

cells = st.text()
rows = st.lists(st.lists(cells, min_size=1, max_size=5), max_size=5)


# --- CSV -------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["=HYPERLINK(\"http://x\")", "+1", "-2+3", "@SUM(A1)",
                                  "\tcmd", "\r=1", "'=already", "''@x"])
def test_formula_like_cells_are_guarded(text: str) -> None:
    out = csv_text(["name"], [[text]])
    # What a spreadsheet reads: the cell starts with a quote, so it is text, not a formula.
    read = list(csv.reader(io.StringIO(out, newline="")))
    assert read[1] == ["'" + text]
    assert csv_rows(out) == [["name"], [text]]


@pytest.mark.parametrize("text", ["web01", "'quoted", "'", "''", "a=b", " =1", ""])
def test_harmless_cells_are_written_as_they_are(text: str) -> None:
    out = csv_text(["name"], [[text]])
    assert list(csv.reader(io.StringIO(out, newline="")))[1] == [text]
    assert csv_rows(out)[1] == [text]


def test_rfc4180_shape_and_values() -> None:
    out = csv_text(["vm", "note", "disk", "ok", "owner"],
                   [["shop-web01", 'says "hi", then\nleaves', -5, True, None]])
    assert out == ('vm,note,disk,ok,owner\r\n'
                   'shop-web01,"says ""hi"", then\nleaves",-5,True,\r\n')


@given(st.lists(cells, min_size=1, max_size=5), rows)
def test_round_trip_returns_the_same_rows(header: list[str], body: list[list[str]]) -> None:
    out = csv_text(header, body)
    assert csv_rows(out) == [header, *body]
    for row in list(csv.reader(io.StringIO(out, newline=""))):
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))


# --- HTML ------------------------------------------------------------------------------------

def test_html_templates_escape_text_and_attributes_by_themselves() -> None:
    name = """<img src=x onerror="alert('x')">&"""
    page = _templates().from_string('<p title="{{ name }}">{{ name }}</p>').render(name=name)
    escaped = "&lt;img src=x onerror=&#34;alert(&#39;x&#39;)&#34;&gt;&amp;"
    assert page == f'<p title="{escaped}">{escaped}</p>'
    assert not set("<>\"'") & set(escaped)


# --- mailto ----------------------------------------------------------------------------------

def parse_mailto(url: str) -> tuple[list[str], dict[str, str]]:
    parts = urlsplit(url)
    assert parts.scheme == "mailto" and parts.fragment == ""
    recipients = [unquote(a) for a in parts.path.split(",")] if parts.path else []
    query = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    keys = [key for key, _ in query]
    assert len(keys) == len(set(keys)), f"a header appears twice: {keys}"
    return recipients, dict(query)


def test_mailto_keeps_names_from_adding_recipients_or_headers() -> None:
    owner = "olivia@lab.example"
    evil = "x@evil.example,y@evil.example?bcc=z@evil.example&cc=w@evil.example#frag%41"
    subject = "Downtime of HV01: shop-web01 & co? 100% #1"
    body = "VM: web01&bcc=z@evil.example\nNote: line two\r\n?cc=a@b"
    url = mailto([owner, evil], subject, body)
    assert url.startswith("mailto:olivia@lab.example,")
    recipients, headers = parse_mailto(url)
    assert recipients == [owner, evil]
    assert set(headers) == {"subject", "body"}
    assert headers["subject"] == subject
    assert headers["body"] == "VM: web01&bcc=z@evil.example\r\nNote: line two\r\n?cc=a@b"
    assert "%0D%0A" in url and "\n" not in url


def test_mailto_subject_stays_on_one_line() -> None:
    _, headers = parse_mailto(mailto(["a@b"], "web01\r\nBcc: z@evil.example", ""))
    assert headers == {"subject": "web01 Bcc: z@evil.example"}
    assert mailto([], "", "") == "mailto:"


@given(st.lists(st.text(min_size=1), max_size=4),
       st.text().filter(lambda s: s == "".join(s.splitlines())),  # no line break
       st.text())
def test_mailto_round_trip(addresses: list[str], subject: str, body: str) -> None:
    recipients, headers = parse_mailto(mailto(addresses, subject, body))
    assert recipients == addresses
    assert headers.get("subject", "") == subject
    crlf = body.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")
    assert headers.get("body", "") == crlf

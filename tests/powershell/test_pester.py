"""The Pester tests of the host-side PowerShell (tests/powershell/pester/), held from the Python side:
no PowerShell runs here, so what can be checked without it is checked on every run.

- every .ps1 there parses with the project's grammar (console/powershell/syntax.py) without an
  ERROR or MISSING node, reads its single-quoted strings as PowerShell does (the checker's
  `literal` rule) and is ASCII (Windows PowerShell 5.1 reads a file without a BOM as ANSI);
- every operation of console.scripts.OPERATIONS and every generated JEA function is named by a
  Describe, Context or It, and every error code of docs/host-operations.md is tested;
- cases.json, which the Pester tests run and expect, is what tools/pester_cases.py writes from
  the Python side today (the state table, the scripts as sent, the facts, the JEA decisions).
"""
from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from console import jea, scripts
from console.powershell import check
from console.powershell.syntax import Node, parse, text_of, walk
from tests.support import tool

ROOT = Path(__file__).resolve().parents[2]
PESTER = ROOT / "tests" / "powershell" / "pester"
CASES = PESTER / "cases.json"
SCRIPTS = sorted(PESTER.glob("*.ps1"))
BLOCKS = {"describe", "context", "it"}


pester_cases = tool("pester_cases")


@cache
def committed() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(CASES.read_text(encoding="utf-8"))
    return data


def _decode(literal: Node) -> str:
    """A title as written: a verbatim string undoubled; an expandable one as its source text."""
    raw = text_of(literal)
    if raw.startswith("'"):
        return check.decode_single_quoted(raw)
    return raw[1:-1]


def titles(path: Path) -> list[str]:
    """The name of every Describe, Context and It block of a Pester file."""
    out = []
    for node in walk(parse(path.read_text(encoding="utf-8")).root_node):
        if node.type != "command":
            continue
        name = next((c for c in node.children if c.type == "command_name"), None)
        elements = next((c for c in node.children if c.type == "command_elements"), None)
        if name is None or elements is None or text_of(name).lower() not in BLOCKS:
            continue
        for element in elements.children:
            if element.type == "command_parameter":
                continue
            literal = next((n for n in walk(element) if n.type == "string_literal"), None)
            if element.type == "array_literal_expression" and literal is not None:
                out.append(_decode(literal))
                break
    return out


def all_titles() -> list[str]:
    return [title for path in SCRIPTS for title in titles(path)]


def named(word: str, texts: list[str]) -> bool:
    return any(re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text) for text in texts)


def test_the_pester_folder_holds_the_tests_the_runner_and_the_cases() -> None:
    names = {p.name for p in SCRIPTS}
    assert {"Operations.Tests.ps1", "Jea.Tests.ps1", "Common.ps1", "Run-Pester.ps1"} <= names
    assert CASES.is_file()


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_each_pester_file_parses_without_errors(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    tree = parse(text)
    broken = [(n.start_point[0] + 1, n.type, text_of(n)[:60]) for n in walk(tree.root_node)
              if n.is_error or n.is_missing]
    assert broken == [], f"{path.name}: ERROR or MISSING nodes at {broken}"
    # Strings as PowerShell reads them (any of its five single quotes ends a literal), which the
    # grammar does not know; the checker's other rules are about shipped scripts, not tests.
    findings = [f for f in check.check(text, context=check.Context("script", constrained=False))
                if f.rule in {"syntax", "literal"}]
    assert findings == [], f"{path.name}:\n" + "\n".join(map(str, findings))


@pytest.mark.parametrize("path", [*SCRIPTS, CASES], ids=lambda p: p.name)
def test_each_pester_file_is_ascii(path: Path) -> None:
    data = path.read_bytes()
    bad = sorted({i for i, byte in enumerate(data) if byte > 127})[:5]
    assert not bad, f"{path.name}: non-ASCII bytes at {bad}; Windows PowerShell 5.1 reads them as ANSI"


def test_the_titles_are_read_from_the_files() -> None:
    # The scan finds literal titles; a template title (<Operation>) names nothing by itself.
    found = titles(PESTER / "Operations.Tests.ps1")
    assert len(found) > 40
    assert any(t.startswith("power: the state table") for t in found)


@pytest.mark.parametrize("operation", scripts.OPERATIONS)
def test_each_operation_is_named_by_a_describe_or_it(operation: str) -> None:
    texts = titles(PESTER / "Operations.Tests.ps1")
    assert named(operation, texts), f"no Describe, Context or It of Operations.Tests.ps1 names {operation}"


@pytest.mark.parametrize("function", jea.FUNCTION_NAMES)
def test_each_generated_jea_function_is_named_by_a_describe_or_it(function: str) -> None:
    texts = titles(PESTER / "Jea.Tests.ps1")
    assert named(function, texts), f"no Describe, Context or It of Jea.Tests.ps1 names {function}"


@pytest.mark.parametrize("code", pester_cases.contract_codes())
def test_each_error_code_of_the_contract_is_tested(code: str) -> None:
    # Named by a block, or expected by a data-driven case (the It takes its title from the case).
    data = committed()
    expected = {c["code"] for key in ("errors", "binding", "transport") for c in data[key] if c.get("code")}
    assert named(code, all_titles()) or code in expected, (
        f"no Pester test names or expects the error code {code} of docs/host-operations.md")


def test_the_cases_expect_only_codes_of_the_contract() -> None:
    data = committed()
    codes = set(pester_cases.contract_codes()) | {"host_error"}
    expected = {c["code"] for key in ("errors", "binding", "transport") for c in data[key] if c.get("code")}
    assert expected <= codes, expected - codes


def test_the_cases_file_is_what_tools_pester_cases_writes_today() -> None:
    # Compared as JSON values: a checkout's line endings (Git for Windows) change nothing.
    fresh = json.loads(pester_cases.render(pester_cases.build()))
    stale = [key for key in sorted(set(fresh) | set(committed())) if fresh.get(key) != committed().get(key)]
    assert not stale, (f"tests/powershell/pester/cases.json is stale in {stale}: run "
                       f"`.venv/bin/python tools/pester_cases.py` and commit the file")


def test_the_cases_hold_the_console_text_of_every_operation() -> None:
    # What the Pester tests assemble ("$p='...';" + body) is the console's own standard input.
    operations = committed()["operations"]
    assert set(operations) == set(scripts.OPERATIONS)
    for name, case in operations.items():
        sample = case["sample"]
        assert sample["stdin"] == scripts.command(name, pester_cases.SAMPLES[name])[2]
        assert sample["stdin"] == f"$p='{sample['p']}';{case['body']}\r\n"

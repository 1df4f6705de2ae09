"""Every PowerShell text the project ships or generates is clean by the checker: each operation as
console.scripts sends it, each function of the JEA role capability generated for every host of
the lab and golden policies, the generated data files (each literal decodes, by PowerShell's rule,
to the value it was generated from) and the registration script. The texts are gathered exactly
as tools/pscheck.py gathers them."""
from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from console import jea
from console.powershell import check
from console.powershell.check import decode_single_quoted
from tests.support import tool

ROOT = Path(__file__).resolve().parents[2]


pscheck = tool("pscheck")


@cache
def shipped() -> tuple[Any, ...]:
    return tuple(pscheck.texts(pscheck.collect(ROOT, pscheck.POLICIES)))


def _of(kind: str) -> list[Any]:
    return [t for t in shipped() if t.kind == kind]


def _id(text: Any) -> str:
    where = text.where[0].replace(" of ", "@") if text.where else ""
    return f"{where}:{text.label}" if where else text.label


def _assert_clean(text: Any) -> None:
    found = text.findings()
    assert found == [], f"{text.label}:\n" + "\n".join(f"  {f}" for f in found)


@pytest.mark.parametrize("text", _of("script"), ids=_id)
def test_operation_as_sent_is_clean(text: Any) -> None:
    _assert_clean(text)


@pytest.mark.parametrize("text", _of("jea_function"), ids=_id)
def test_generated_jea_function_is_clean(text: Any) -> None:
    _assert_clean(text)


@pytest.mark.parametrize("text", _of("data"), ids=_id)
def test_generated_data_file_literals_are_the_generated_values(text: Any) -> None:
    _assert_clean(text)


@pytest.mark.parametrize("text", _of("registration"), ids=_id)
def test_registration_script_is_clean(text: Any) -> None:
    _assert_clean(text)


def test_every_text_is_made() -> None:
    # An operation or a host's JEA files that the code cannot produce are not checked at all.
    failed = [f"{t.label}: {t.text}" for t in _of("error")]
    assert failed == []


def test_every_kind_of_text_is_gathered() -> None:
    # An empty parametrization would pass silently: each host's role capability has functions.
    hosts = {where for t in _of("jea_function") for where in t.where}
    assert len(_of("script")) >= 6 and len(_of("registration")) == 1
    assert len(hosts) >= 6 and len(_of("jea_function")) >= 6 * len(hosts)
    assert {t.label for t in _of("data")} >= {"HvConsole.psrc", "HvConsole.pssc"}


@given(st.text())
@example("x\u2019y")
@example("\u2018\u2019\u201a\u201b'")
def test_a_generated_literal_decodes_to_its_value(value: str) -> None:
    # PowerShell ends a single-quoted string at any of ' U+2018 U+2019 U+201A U+201B: the writer
    # must double each, or a policy value turns into code (issue 12, finding 22).
    assert decode_single_quoted(jea.psd1(value)) == value


QUOTES = "x\u2019y\u2018z\u201aw\u201bv'u"


def test_policy_values_with_every_quote_come_back_unchanged() -> None:
    # A VM name and a principal holding all five quotes (policy check accepts them) come back,
    # decoded by PowerShell's rule, exactly; no generated literal decodes to anything else, and
    # no literal in the generated code ends early.
    from console.policy import Policy
    text = (ROOT / "tests/golden/jea/policy.toml").read_text(encoding="utf-8")
    text = text.replace('vm_name = "legacy-ftp"', f'vm_name = "{QUOTES}"')
    text = text.replace("principal = 'LAB\\HV-Reviewers'", f'principal = "LAB\\\\O{QUOTES}"')
    policy = Policy.from_text(text)
    decoded: set[str] = set()
    found = []
    for entry in policy.hosts.values():
        files, strings, blocks = pscheck._generate_recorded(jea, policy, entry.name)
        for content in files.values():
            decoded.update(check.literals(content))
        data = {"operations": {}, "registration": "", "jea": [
            {"policy": "quotes", "host": entry.name, "files": files, "strings": sorted(strings),
             "blocks": sorted(blocks)}]}
        found += [f"{entry.name} {t.label}: {f}" for t in pscheck.texts(data)
                  if t.kind in ("data", "jea_function") for f in t.findings()
                  if f.rule in ("literal", "syntax")]
    assert {QUOTES, f"LAB\\O{QUOTES}"} <= decoded
    assert found == []

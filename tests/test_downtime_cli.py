"""hvconsole host downtime --publish, against the demo world: the plan written to the host's event
log through its default endpoint, or refused when it would not fit one event."""
from __future__ import annotations

import io
import json

import pytest

from hvconsole.cli import main


def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
            *argv: str) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO("adam-demo\n"))
    code = main(["host", "downtime", *argv, "--demo", "--user", "adam", "--password-stdin"])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_publishes_the_plan_to_the_hosts_event_log(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(monkeypatch, capsys, "HV01", "--window", "2099-12-12 22:00/4h",
                             "--reason", "firmware", "--publish")
    assert code == 0, err
    plan_id = out.split()[1].rstrip(":")
    assert f"plan {plan_id} is published to HV01's event log" in err


def test_cli_refuses_to_publish_a_plan_longer_than_an_event(monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(monkeypatch, capsys, "HV01", "--window", "2099-12-12 22:00/4h",
                             "--reason", "x" * 40000, "--publish")
    assert (code, out) == (1, "")
    assert "one event holds at most 31,839" in err and "published" not in err


# --- hvconsole host plans / host answer: the owner's side, against the demo's plan of HV02 ---------

def run_as(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], user: str,
           *argv: str) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{user}-demo\n"))
    code = main(["host", *argv, "--demo", "--user", user, "--password-stdin"])
    out, err = capsys.readouterr()
    return code, out, err


def test_an_owner_lists_the_plans_touching_her_vms(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_as(monkeypatch, capsys, "olivia", "plans")
    assert code == 0, err
    assert "HV02 down for maintenance from" in out and "Firmware and BIOS update" in out
    assert "- shop-web02 (owner Olivia Owner)" in out and "payroll-db" not in out
    assert "Approved by Olivia Owner: Fine for the shop" in out
    code, out, err = run_as(monkeypatch, capsys, "bea", "plans", "--host", "HV03")
    assert (code, out.strip()) == (0, "No planned maintenance touches your VMs.")


def test_an_owner_answers_and_the_host_names_her(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_as(monkeypatch, capsys, "hannah", "plans", "--json")
    assert code == 0, err
    plan_id = json.loads(out)["plans"][0]["plan"]["id"]
    code, out, err = run_as(monkeypatch, capsys, "hannah", "answer", "HV02", plan_id, "approve",
                            "--text", "Moved the payroll run")
    assert code == 0, err
    assert out.strip() == (f"The answer of LAB\\hannah (approve) to plan {plan_id} is written "
                           "to HV02's event log.")


def test_an_answer_is_checked_before_signing_in(monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_as(monkeypatch, capsys, "hannah", "answer", "HV02", "next-week", "approve")
    assert (code, out) == (1, "") and "'next-week' is not the id of a downtime plan" in err
    code, out, err = run_as(monkeypatch, capsys, "hannah", "answer", "HV02",
                            "HV02-20261212-2200-abcdef", "object", "--text", "a\nb")
    assert (code, out) == (1, "") and "--text is one line" in err
    code, out, err = run_as(monkeypatch, capsys, "hannah", "answer", "HV02",
                            "HV02-20261212-2200-abcdef", "object")
    assert code == 1 and "No downtime plan HV02-20261212-2200-abcdef" in err

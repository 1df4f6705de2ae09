"""hvconsole host downtime --publish, against the demo world: the plan written to the host's event
log through its default endpoint, or refused when it would not fit one event."""
from __future__ import annotations

import io

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

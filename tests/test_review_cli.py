"""`hvconsole review` and `hvconsole host impact` against the demo directory and the lab hosts."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from hvconsole.cli import main
from console.export import csv_rows


def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], password: str,
        *argv: str) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_review_without_policy_read_says_so_and_exits_1(monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(monkeypatch, capsys, "henry-demo", "review", "--demo", "--user", "henry",
                         "--password-stdin")
    assert code == 1 and out == ""
    assert "LAB\\henry may not review delegation: no grant gives policy.read" in err


def test_host_impact_without_policy_read_exits_1(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(monkeypatch, capsys, "olivia-demo", "host", "impact", "HV01", "--demo",
                       "--user", "olivia", "--password-stdin")
    assert code == 1 and "policy.read" in err


def test_wrong_password_is_one_sentence(monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(monkeypatch, capsys, "nope", "review", "--demo", "--user", "rita",
                       "--password-stdin")
    assert code == 1 and err.startswith("hvconsole: ") and "Traceback" not in err


def test_review_of_the_demo_world_as_a_reviewer(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    out_file = tmp_path / "review.json"
    code, _, err = run(monkeypatch, capsys, "rita-demo", "review", "--demo", "--user", "rita",
                       "--password-stdin", "--format", "json", "--out", str(out_file))
    assert code == 0, err
    data = json.loads(out_file.read_text(encoding="utf-8"))
    kinds = {(f["kind"], f["objects"][0]) for f in data["findings"]}
    assert ("tiers-together", "HV01") in kinds and ("host-classification", "HV02") in kinds
    assert ("checkpoint-storage", "HV03") in kinds and ("stale-updates", "HV03") in kinds
    assert {h["host"] for h in data["hosts"]} == {"HV01", "HV02", "HV03"}


def test_host_impact_csv_of_the_demo_world(monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(monkeypatch, capsys, "adam-demo", "host", "impact", "HV01", "--demo",
                         "--user", "adam", "--password-stdin", "--format", "csv")
    assert code == 0, err
    rows = csv_rows(out)
    assert [r[1] for r in rows[1:]] == ["office-files", "shop-app01", "shop-db01", "shop-web01"]
    assert any("shop-web02 on HV02" in r[-1] for r in rows[1:])

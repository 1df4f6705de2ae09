"""Downtime plans: the window, what happens to each VM, the message to the owners, the answers."""
from __future__ import annotations

import email
import email.policy
import io
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from console.downtime import Answer, Plan, PlanError, make_plan, parse_window, tally, what_happens
from console.inventory import VM
from console.policy import Policy
from hvconsole.cli import main

POLICY = Policy.from_text('''
[hosts.HV01]
classification = "internal"

[vms."00000000-0000-4000-8000-000000000001"]
name = "shop-web01"
owner = "Olivia Owner"
contact = "Olivia <olivia@lab.example>"
classification = "internal"
application = "shop"
tags = ["team-shop"]

[vms."00000000-0000-4000-8000-000000000002"]
name = "payroll-db"
owner = "Hannah HR"
contact = "hannah@lab.example, +1 555 0199"
classification = "confidential"
tags = ["team-hr"]
''')


def vm(n: int, name: str, **kw: object) -> VM:
    fields: dict[str, Any] = {"state": "Running", "automatic_stop_action": "Save",
                    "automatic_start_action": "StartIfRunning", **kw}
    return VM(host="HV01", id=f"00000000-0000-4000-8000-00000000000{n}", name=name, **fields)


VMS = [vm(1, "shop-web01", automatic_stop_action="ShutDown"), vm(2, "payroll-db"),
       vm(3, "legacy-ftp", state="Off"), vm(4, "cluster-sql", cluster="CL01", clustered=True),
       VM(host="HV02", id="00000000-0000-4000-8000-000000000005", name="elsewhere", state="Running")]


@pytest.mark.parametrize("text, hours", [
    ("2026-12-12 22:00/4h", 4), ("2026-12-12T22:00/90m", 1.5), ("2026-12-12 22:00/1h30m", 1.5),
    ("2026-12-12 22:00/2d", 48), ("2026-12-12 22:00/2026-12-13 02:00", 4),
    (" 2026-12-12 9:30 / 30min ", 0.5),
])
def test_windows_people_write(text: str, hours: float) -> None:
    w = parse_window(text)
    assert w.duration == timedelta(hours=hours)
    assert w.start.tzinfo is not None  # local time, with its offset


@pytest.mark.parametrize("text, says", [
    ("tomorrow night", "is not a start and a length"),
    ("2026-13-12 22:00/4h", "start 2026-13-12 22:00 is not a date and time"),
    ("2026-12-12 22:00/4 hours", "length '4 hours' is neither a duration"),
    ("2026-12-12 22:00/2026-12-12 21:00", "ends before it starts"),
    ("2026-12-12 22:00/0h", "ends before it starts"),
])
def test_a_bad_window_is_named(text: str, says: str) -> None:
    with pytest.raises(PlanError, match=says):
        parse_window(text)


def test_a_window_in_the_past_is_refused() -> None:
    with pytest.raises(PlanError, match="is over already"):
        parse_window("2026-12-01 22:00/1h", now=datetime(2026, 12, 2, 9, 0).astimezone())


def test_what_happens_follows_the_hosts_settings() -> None:
    assert what_happens(VMS[0]) == "shut down, then started again if it was running"
    assert what_happens(VMS[1]) == "saved, then started again if it was running"
    assert what_happens(vm(6, "x", automatic_stop_action="TurnOff", automatic_start_action="Nothing")) \
        == "turned off (no guest shut down), then stays off until someone starts it"
    assert what_happens(VMS[2]) == "off: not affected"
    assert what_happens(VMS[3]).startswith("moved to another node of cluster CL01")
    # on a cluster node but not a clustered role: it goes down with the node
    assert what_happens(vm(8, "local", cluster="CL01")) == "saved, then started again if it was running"
    assert "not read" in what_happens(vm(7, "y", automatic_stop_action=""))


def plan() -> Plan:
    return make_plan(POLICY, VMS, "hv01", parse_window("2026-12-12 22:00/4h"),
                     "  Cumulative update 2026-12  ", "LAB\\adam")


def test_a_plan_lists_every_vm_of_the_host_with_its_owner() -> None:
    p = plan()
    assert [i.vm_name for i in p.items] == ["cluster-sql", "legacy-ftp", "payroll-db", "shop-web01"]
    assert p.owners == ["Hannah HR", "Olivia Owner"]
    assert p.addresses == ["hannah@lab.example", "olivia@lab.example"]
    assert p.teams == ("team-hr", "team-shop")
    assert p.reason == "Cumulative update 2026-12"
    assert p.id.startswith("HV01-20261212-2200-")
    assert p.touches(["00000000-0000-4000-8000-000000000002"])
    assert not p.touches(["00000000-0000-4000-8000-000000000005"])


def test_a_plan_travels_as_json() -> None:
    p = plan()
    assert Plan.from_json(p.to_json()) == p
    with pytest.raises(PlanError, match="A stored downtime plan cannot be read"):
        Plan.from_json('{"id": "x"}')


def test_the_message_names_each_vm_and_the_window() -> None:
    text = plan().message_text()
    assert "Hyper-V host hv01 will be down for maintenance from 2026-12-12 22:00 to 2026-12-13 02:00" in text
    assert "- payroll-db (owner Hannah HR): saved, then started again if it was running" in text
    assert "- legacy-ftp (no owner on record): off: not affected" in text
    assert "Reason: Cumulative update 2026-12" in text
    url = urlsplit(plan().mailto())
    assert url.path == "hannah@lab.example,olivia@lab.example"
    assert "payroll-db" in parse_qs(url.query)["body"][0]


def test_the_eml_opens_as_a_draft_with_every_owner() -> None:
    raw = plan().eml(sender="Hyper-V team <hyperv@lab.example>")
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["To"] == "hannah@lab.example, olivia@lab.example"
    assert msg["X-Unsent"] == "1"
    assert msg["Subject"].startswith("Planned maintenance of Hyper-V host hv01: 2026-12-12 22:00")
    assert "shop-web01 (owner Olivia Owner)" in msg.get_content()


def test_the_tally_counts_each_owners_latest_answer() -> None:
    p = plan()
    people = {"lab\\olivia": "Olivia Owner", "lab\\hannah": "Hannah HR"}
    answers = [
        Answer(p.id, "LAB\\olivia", "object", "not during the sale", "2026-12-03T09:00:00Z"),
        Answer(p.id, "LAB\\olivia", "approve", "fine after all", "2026-12-04T09:00:00Z"),
        Answer(p.id, "LAB\\mallory", "approve", "not asked", "2026-12-04T09:00:00Z"),
        Answer("OTHER-PLAN", "LAB\\hannah", "approve", "another plan", "2026-12-04T09:00:00Z"),
    ]
    t = tally(p, answers, people)
    assert list(t.approved) == ["Olivia Owner"] and t.approved["Olivia Owner"].text == "fine after all"
    assert t.objected == {}
    assert t.waiting == ["Hannah HR"]
    assert t.line() == "1 approved, 0 objected, 1 not answered (Hannah HR)"


def test_an_answer_is_approve_or_object() -> None:
    with pytest.raises(PlanError, match="approve or object, not 'maybe'"):
        Answer("p", "LAB\\olivia", "maybe", "", "2026-12-04T09:00:00Z")


# --- hvconsole host downtime, against the demo world ---------------------------------------------

def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], password: str,
            *argv: str) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_plans_a_window_for_the_owners(monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    eml = tmp_path / "hv01.eml"
    code, out, err = run_cli(monkeypatch, capsys, "adam-demo", "host", "downtime", "HV01",
                             "--window", "2099-12-12 22:00/4h", "--reason", "firmware",
                             "--eml", str(eml), "--demo", "--user", "adam", "--password-stdin")
    assert code == 0, err
    assert out.startswith("Plan HV01-20991212-2200-")
    assert "shop-web01" in out and "Olivia Owner" in out and "Reason: firmware" in out
    [link] = [line for line in out.splitlines() if line.startswith("mailto:")]
    assert link.startswith("mailto:it@lab.example,olivia@lab.example?subject=")
    msg = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    assert "olivia@lab.example" in msg["To"] and "shop-db01" in msg.get_content()
    assert f"written to {eml}" in err


def test_cli_refuses_a_bad_window_before_signing_in(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(monkeypatch, capsys, "wrong-password", "host", "downtime", "HV01",
                             "--window", "next friday", "--demo", "--user", "adam",
                             "--password-stdin")
    assert (code, out) == (2, "")
    assert "The window 'next friday' is not a start and a length" in err
    assert "password" not in err.lower()  # nothing was signed in to


def test_cli_downtime_needs_policy_read(monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(monkeypatch, capsys, "olivia-demo", "host", "downtime", "HV01",
                           "--window", "2099-12-12 22:00/4h", "--demo", "--user", "olivia",
                           "--password-stdin")
    assert code == 1 and "may not review delegation" in err

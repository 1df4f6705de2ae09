"""Downtime plans in the GUI, offscreen, against the lab's hosts (JEA endpoint generated from the
demo policy) with the demo's plan on HV02 (Olivia approved, Hannah objected, IT not answered)."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from console.downtime import PlansRead, Published, SharedPlans, make_plan, parse_window
from console.hosts import Credentials, HostPool
from console.identity import Group, Identity
from console.inventory import VM
from console.policy import Policy
from lab.demo import demo_policy_text, publish_demo_plan
from lab.directory import LabDirectory
from lab.hyperv import Durations
from lab.runner import Lab
from ui.downtime import MailClient, PlanNotice, PlansWindow, PlanWindow, SaveEml
from ui.review import ReviewWindow
from ui.tasks import Tasks

D = "S-1-5-21-1000-2000-3000"
ADAM = Identity(f"{D}-1103", "LAB\\adam", groups=(Group(f"{D}-1204", "LAB\\HV-Admins"),))
POLICY = Policy.from_text(demo_policy_text(), "policy.toml")


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab.start(durations=Durations.instant(), jea_policy=POLICY) as running:
        publish_demo_plan(running, POLICY)
        yield running


@pytest.fixture
def tasks(qapp: object) -> Iterator[Tasks]:
    errors: list[BaseException] = []
    running = Tasks(errors.append)
    yield running
    running.shutdown()


def pool_of(lab: Lab, user: str) -> HostPool:
    return HostPool(lab.host_configs(), Credentials(f"LAB\\{user}", lab.credentials[f"LAB\\{user}"]))


def services() -> SimpleNamespace:
    return SimpleNamespace(policy=POLICY, directory=LabDirectory())


def test_an_owner_sees_the_plan_and_answers_with_one_line(qtbot: Any, lab: Lab,
                                                          tasks: Tasks) -> None:
    with pool_of(lab, "olivia") as pool:
        notice = PlanNotice(services(), SimpleNamespace(pool=pool), tasks)
        qtbot.addWidget(notice)
        notice.host_read(False)
        assert not notice.asked  # nothing is read before a host has answered
        notice.host_read(True)
        qtbot.waitUntil(notice.isVisible, timeout=30_000)
        assert "Planned maintenance touches your VMs: HV02" in notice.text.text()
        window = notice.open()
        assert isinstance(window, PlansWindow)
        qtbot.addWidget(window)
        text = window.text.toPlainText()
        # Her own VM and what happens to it; the owner of the policy ("Olivia Owner") counted
        # for the account that answered, through the directory's display name.
        assert "- shop-web02 (owner Olivia Owner): shut down, then started again" in text
        assert "payroll-db" not in text  # not hers: the host left it out
        assert "Approved by Olivia Owner: Fine for the shop" in text
        assert "Also answered: LAB\\hannah objected: Payroll runs that night" in text
        window.line.setText("Changed my mind: the sale starts that night")
        window.object.click()
        qtbot.waitUntil(lambda: "Objected by Olivia Owner: Changed my mind"
                        in window.text.toPlainText(), timeout=30_000)
        assert "is written to HV02's event log" in window.status.text()
        assert window.line.text() == ""


def test_an_answer_the_host_refuses_is_said_in_the_window(qtbot: Any, lab: Lab,
                                                          tasks: Tasks) -> None:
    with pool_of(lab, "olivia") as pool:
        # A plan HV01 never had: the host says so.
        plan = make_plan(POLICY, [VM("HV01", "42e4aaca-7231-5411-b96b-d03849b0dae1",
                                     "shop-web01", "Running")], "HV01",
                         parse_window("2099-01-01 22:00/1h"), "", "LAB\\adam")
        read = PlansRead((), {})
        window = PlansWindow(read, pool, tasks, lambda: read)
        qtbot.addWidget(window)
        assert window.text.toPlainText() == "No plan is open." and not window.approve.isEnabled()
        window.set_read(PlansRead((SharedPlans("HV01", (Published("HV01", plan, "LAB\\adam", "t"),),
                                                ()),), {}))
        window.approve.click()
        qtbot.waitUntil(lambda: window.status.text().startswith("Not sent:"), timeout=30_000)
        assert f"No downtime plan {plan.id}" in window.status.text()


def test_an_administrator_plans_publishes_and_reads_the_answers(qtbot: Any, lab: Lab,
                                                                tasks: Tasks, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    inventory = {name: [VM.from_json(name, v) for v in handle.host.inventory()["vms"]]
                 for name, handle in lab.hosts.items()}
    saved = tmp_path / "plan.eml"
    opened: list[str] = []
    monkeypatch.setattr(SaveEml, "ask", classmethod(lambda cls, parent, suggested: saved))
    monkeypatch.setattr(MailClient, "open", classmethod(lambda cls, link: opened.append(link) or True))
    with pool_of(lab, "adam") as pool:
        review = ReviewWindow(services(), session=SimpleNamespace(identity=ADAM, pool=pool),
                              inventory=inventory, facts={}, today=date.today(), tasks=tasks)
        qtbot.addWidget(review)
        review.host_choice.setCurrentIndex(review.host_choice.findData("HV02"))
        planner = review.plan_downtime()
        assert isinstance(planner, PlanWindow) and review.plan_downtime() is planner
        planner.window_field.setText("next friday")
        assert planner.make() is None and "is not a start and a length" in planner.status.text()
        assert not planner.buttons["publish"].isEnabled()
        planner.window_field.setText("2099-08-08 21:00/3h")
        planner.reason.setText("Storage controller replacement")
        plan = planner.make()
        assert plan is not None and "payroll-db: Hannah HR" in planner.text.toPlainText()
        planner.buttons["eml"].click()
        assert b"Storage controller replacement" in saved.read_bytes()
        planner.buttons["mailto"].click()
        assert opened and opened[0].startswith("mailto:")
        planner.buttons["publish"].click()
        qtbot.waitUntil(lambda: "is published to HV02's event log" in planner.status.text(),
                        timeout=30_000)
        qtbot.waitUntil(lambda: plan.id in planner.answers.toPlainText(), timeout=30_000)
        answers = planner.answers.toPlainText()
        # The demo's plan with its answers, as the administrator reads it (every VM).
        # (Olivia's answer is the demo's approval, or her objection when the test above ran.)
        assert "by Olivia Owner: " in answers and "Objected by Hannah HR" in answers
        assert "Not answered: IT" in answers
        assert "Storage controller replacement" in answers


def test_a_plan_too_long_for_one_event_is_not_sent(qtbot: Any, lab: Lab, tasks: Tasks) -> None:
    planner = PlanWindow(POLICY, [], "HV02", "LAB\\adam", None, services(), tasks)
    qtbot.addWidget(planner)
    planner.window_field.setText("2099-08-08 21:00/3h")
    planner.reason.setText("x" * 40000)
    planner.make()
    planner.publish()  # no pool: nothing may be sent
    assert "one event holds at most 31,839" in planner.status.text()


def test_the_notice_reads_again_later_and_stays_dismissed_for_the_plans_it_showed(
        qtbot: Any, lab: Lab, tasks: Tasks) -> None:
    with pool_of(lab, "henry") as pool:  # helpdesk on HV02: the demo's plan touches his VMs
        notice = PlanNotice(services(), SimpleNamespace(pool=pool), tasks)
        qtbot.addWidget(notice)
        notice.host_read(True)
        qtbot.waitUntil(notice.isVisible, timeout=30_000)
        first = notice.read
        notice.dismiss()
        assert not notice.isVisible()
        notice.host_read(True)  # a refresh soon after: not read again
        assert notice.read is first
        notice.interval = 0
        notice.host_read(True)  # later: read again, the same plans, still dismissed
        qtbot.waitUntil(lambda: notice.read is not first, timeout=30_000)
        assert not notice.isVisible()
        notice.dismissed.clear()  # a plan it has not shown brings it back
        notice.show_read(notice.read)
        assert notice.isVisible()

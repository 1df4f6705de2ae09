"""The main window against the lab: what each account sees, what it may do, and that it stays
usable when a host is slow or down. Real lab hosts (WinRM over loopback), the demo directory, the
demo policy and an audit trail in a temporary folder; only the modal dialogs are answered."""
from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, QTimer

from console.audit import AuditTrail
from console.inventory import Action
from console.paths import LAB_DATA
from console.policy import Policy
from ui.app import Services, Session
from ui.mainwindow import MainWindow
from ui.models import COL_STATE, ROW_ROLE
from ui.signin import DEMO_ACCOUNTS
from ui.tasks import Tasks

runner = pytest.importorskip("console.lab.runner")
labdirectory = pytest.importorskip("console.labdirectory")
PASSWORDS = {a.user: a.password for a in DEMO_ACCOUNTS}
BUILD = {f"build-agent-0{i}" for i in range(1, 6)}
ALL_VMS = {"shop-web01", "shop-web02", "shop-app01", "shop-db01", "payroll-db", "office-print",
           "office-files", "legacy-ftp", *BUILD}


@dataclass
class World:
    lab: object
    services: Services


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with runner.Lab() as lab:
        config = lab.config()
        services = Services(
            config=config, directory=labdirectory.LabDirectory(),
            policy=Policy.load(config.policy_path or LAB_DATA / "policy.toml"),
            audit=AuditTrail(tmp_path / "audit.jsonl"),
            settings=QSettings(str(tmp_path / "window.ini"), QSettings.Format.IniFormat))
        yield World(lab, services)


class Opened:
    def __init__(self, qtbot, world: World, user: str) -> None:
        self.qtbot, self.world = qtbot, world
        services = world.services
        identity = services.directory.sign_in(user, PASSWORDS[user])
        self.session: Session = services.open_session(identity, PASSWORDS[user])
        self.errors: list[BaseException] = []
        self.tasks = Tasks(self.errors.append)
        self.window = MainWindow(services, self.session, self.tasks)
        qtbot.addWidget(self.window)

    def load(self, timeout: int = 30_000) -> None:
        with self.qtbot.waitSignal(self.window.refreshed, timeout=timeout):
            self.window.start()
        self.window.refresh_timer.stop()  # tests refresh explicitly

    def names(self) -> set[str]:
        return {r.vm.name for r in self.window.model.rows}

    def row(self, name: str):
        return next(r for r in self.window.model.rows if r.vm.name == name)

    def select(self, *names: str) -> None:
        self.window.table.clearSelection()
        for i, name in enumerate(names):
            assert self.window.select_vm(name, add=i > 0), name

    def act(self, action: Action, timeout: int = 30_000) -> tuple[str, str]:
        with self.qtbot.waitSignal(self.window.action_finished, timeout=timeout) as blocker:
            self.window.trigger(action)
        self.wait_idle()
        return tuple(blocker.args)  # type: ignore[return-value]

    def wait_idle(self) -> None:
        self.qtbot.waitUntil(lambda: not self.tasks.running, timeout=30_000)

    def close(self) -> None:
        self.window.refresh_timer.stop()
        self.wait_idle()
        self.window.close()
        self.session.close()


@pytest.fixture
def open_as(qtbot, world: World) -> Iterator:
    opened: list[Opened] = []

    def open_(user: str, load: bool = True) -> Opened:
        o = Opened(qtbot, world, user)
        opened.append(o)
        if load:
            o.load()
        return o

    yield open_
    for o in opened:
        o.close()


@pytest.mark.parametrize("user, expected", [
    ("olivia", {"shop-web01", "shop-web02", "shop-app01", "shop-db01", "legacy-ftp"}),
    ("henry", {"shop-web02", "office-print", "office-files", "legacy-ftp"}),
    ("hannah", {"payroll-db", "legacy-ftp"}),
    ("bea", BUILD | {"legacy-ftp", "office-print", "office-files"}),
    ("adam", ALL_VMS),
    ("rita", ALL_VMS),
])
def test_each_account_sees_exactly_its_vms(open_as, user: str, expected: set[str]) -> None:
    o = open_as(user)
    assert o.names() == expected
    assert all(r.privileges >= {"vm.view"} for r in o.window.model.rows)
    assert o.errors == []
    assert {r.status.value for r in o.window.hosts_bar.results.values()} == {"ok"}


def test_a_denied_grant_hides_the_vm(open_as) -> None:
    henry = open_as("henry")
    assert "payroll-db" not in henry.names()  # HV02 helpdesk grant, but deny on payroll-db
    assert {"office-print", "shop-web02"} <= henry.names()  # other HV02 VMs are there
    # and the policy says why
    assert "shop-web02" in henry.names()


def test_actions_follow_privilege_and_state_with_the_reason(open_as) -> None:
    henry = open_as("henry")
    w = henry.window
    henry.select("office-print")  # Running; henry is helpdesk (start, shutdown, reset)
    assert w.actions[Action.SHUTDOWN].isEnabled() and w.actions[Action.RESET].isEnabled()
    assert not w.actions[Action.START].isEnabled()
    assert "office-print is Running" in w.actions[Action.START].toolTip()
    assert not w.actions[Action.TURNOFF].isEnabled()
    assert "vm.turnoff" in w.actions[Action.TURNOFF].toolTip()
    assert "office-print" in w.actions[Action.TURNOFF].toolTip()
    assert not w.actions[Action.CHECKPOINT_CREATE].isEnabled()
    assert not w.actions[Action.MOUNT_ISO].isEnabled()
    henry.select("office-files")  # Saved
    assert w.actions[Action.START].isEnabled() and not w.actions[Action.SHUTDOWN].isEnabled()
    henry.select("office-print", "shop-web02")  # bulk: both Running, both helpdesk
    assert len(w.selected_vms()) == 2 and w.actions[Action.SHUTDOWN].isEnabled()
    assert "Select a single VM" in w.actions[Action.CHECKPOINT_CREATE].toolTip()
    henry.select("office-print", "office-files")
    assert not w.actions[Action.SHUTDOWN].isEnabled()
    assert "office-files is Saved" in w.actions[Action.SHUTDOWN].toolTip()


def test_start_a_vm_and_see_its_state_change(open_as) -> None:
    henry = open_as("henry")
    henry.select("office-files")
    assert henry.row("office-files").vm.state == "Saved"
    status, message = henry.act(Action.START)
    assert status == "ok", message
    henry.qtbot.waitUntil(lambda: henry.row("office-files").vm.state == "Running", timeout=20_000)
    assert henry.window.selected_vms()[0].name == "office-files"  # selection kept
    assert any("Start: office-files" in t and "ok" in t for t in henry.window.progress.texts())
    records = henry.world.services.audit.records(user_sid=henry.session.identity.sid)
    assert [r.action for r in records][-2:] == ["start", "start"]


def test_turn_off_asks_and_does_nothing_when_cancelled(open_as, answers) -> None:
    olivia = open_as("olivia")
    olivia.select("shop-web01")
    answers.confirm = False
    olivia.window.trigger(Action.TURNOFF)
    (kind, title, text, details), = answers.asked
    assert kind == "confirm" and "shop-web01 on HV01" in text and "lost" in details
    assert olivia.tasks.running == []
    olivia.wait_idle()
    assert olivia.row("shop-web01").vm.state == "Running"
    assert olivia.world.services.audit.records() == []
    answers.confirm = True
    status, message = olivia.act(Action.TURNOFF)
    assert status == "ok", message
    olivia.qtbot.waitUntil(lambda: olivia.row("shop-web01").vm.state == "Off", timeout=20_000)


def test_checkpoint_create_and_apply(open_as, answers) -> None:
    olivia = open_as("olivia")
    olivia.select("shop-app01")
    before = {c.id for c in olivia.row("shop-app01").vm.checkpoints}
    answers.text = "before <b>update</b>"
    status, message = olivia.act(Action.CHECKPOINT_CREATE)
    assert status == "ok", message
    olivia.qtbot.waitUntil(lambda: len(olivia.row("shop-app01").vm.checkpoints) == len(before) + 1,
                           timeout=20_000)
    new = next(c for c in olivia.row("shop-app01").vm.checkpoints if c.id not in before)
    assert new.name == "before <b>update</b>"
    details = olivia.window.details
    assert not olivia.window.actions[Action.CHECKPOINT_APPLY].isEnabled()  # none chosen yet
    assert details.select_checkpoint(new.id)
    assert olivia.window.actions[Action.CHECKPOINT_APPLY].isEnabled()
    status, message = olivia.act(Action.CHECKPOINT_APPLY)
    assert status == "ok", message
    confirm = [a for a in answers.asked if a[0] == "confirm"][-1]
    assert "before <b>update</b>" in confirm[2] and "lost" in confirm[3]


def test_mount_an_iso_from_the_library_and_eject(open_as, answers) -> None:
    olivia = open_as("olivia")
    olivia.select("shop-web01")
    answers.iso = "SystemRescue-11.iso"
    status, message = olivia.act(Action.MOUNT_ISO)
    assert status == "ok", message
    offered = next(a for a in answers.asked if a[0] == "iso")
    assert offered[1] == "HV01" and set(offered[2:]) == {
        "WindowsServer2022.iso", "ubuntu-24.04-live-server-amd64.iso", "SystemRescue-11.iso"}
    olivia.qtbot.waitUntil(lambda: olivia.row("shop-web01").iso == "SystemRescue-11.iso",
                           timeout=20_000)
    status, message = olivia.act(Action.EJECT)
    assert status == "ok", message
    olivia.qtbot.waitUntil(lambda: olivia.row("shop-web01").iso == "", timeout=20_000)


def test_my_activity_lists_my_own_records_newest_first(open_as) -> None:
    henry = open_as("henry")
    henry.select("office-files")
    henry.act(Action.START)
    activity = henry.window.open_activity()
    henry.qtbot.waitUntil(lambda: activity.model.rowCount() > 0, timeout=10_000)
    henry.wait_idle()
    items = activity.model.items
    assert all(r.user_sid == henry.session.identity.sid for r in items)
    assert [r.seq for r in items] == sorted((r.seq for r in items), reverse=True)
    assert items[0].outcome == "ok" and items[0].vm_name == "office-files"
    activity.close()

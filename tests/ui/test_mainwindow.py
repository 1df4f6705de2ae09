"""The main window against the lab: what each account sees, what it may do, and that it stays
usable when a host is slow or down. Real lab hosts (WinRM over loopback), the demo directory, the
demo policy and an audit trail in a temporary folder; only the modal dialogs are answered."""
from __future__ import annotations

import re
import time
from types import SimpleNamespace
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt, QTimer

from console.audit import AuditTrail
from console.inventory import Action
from console.paths import LAB_DATA
from console.policy import Policy
from console.session import Session, Setup
from ui.app import Services
from ui.mainwindow import MainWindow
from ui.signin import DEMO_ACCOUNTS
from ui.tasks import Tasks

from lab.directory import LabDirectory

from .labparts import start_lab

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
    with start_lab() as lab:
        config = lab.config()
        services = Services(
            Setup(config, Policy.load(config.policy_path or LAB_DATA / "policy.toml"), LabDirectory(),
                  AuditTrail(tmp_path / "audit.jsonl")),
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
        # Not qtbot.addWidget: pytest-qt deletes those before fixtures end, while this window's
        # last reads may still be coming in; close() below waits for them first.
        self.window = MainWindow(services, self.session, self.tasks)
        # Every host read the window starts (the inventory of a whole host), in order.
        self.reads: list[str] = []
        read = self.window._read
        self.window._read = lambda host, *a, **k: (self.reads.append(host), read(host, *a, **k))[1]

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
        self.window.deleteLater()
        self.qtbot.wait(10)
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
    assert w.qactions[Action.SHUTDOWN].isEnabled() and w.qactions[Action.RESET].isEnabled()
    assert not w.qactions[Action.START].isEnabled()
    assert "office-print is Running" in w.qactions[Action.START].toolTip()
    assert not w.qactions[Action.TURNOFF].isEnabled()
    assert "“Turn off”" in w.qactions[Action.TURNOFF].toolTip()
    assert "office-print" in w.qactions[Action.TURNOFF].toolTip()
    assert not w.qactions[Action.CHECKPOINT_CREATE].isEnabled()
    assert not w.qactions[Action.MOUNT_ISO].isEnabled()
    henry.select("office-files")  # Saved
    assert w.qactions[Action.START].isEnabled() and not w.qactions[Action.SHUTDOWN].isEnabled()
    henry.select("office-print", "shop-web02")  # bulk: both Running, both helpdesk
    assert len(w.selected_vms()) == 2 and w.qactions[Action.SHUTDOWN].isEnabled()
    assert "Select a single VM" in w.qactions[Action.MOUNT_ISO].toolTip()
    henry.select("office-print", "office-files")
    assert not w.qactions[Action.SHUTDOWN].isEnabled()
    assert "office-files is Saved" in w.qactions[Action.SHUTDOWN].toolTip()


def test_start_a_vm_and_see_its_state_change(open_as) -> None:
    henry = open_as("henry")
    henry.select("office-files")
    assert henry.row("office-files").vm.state == "Saved"
    henry.reads.clear()
    status, message = henry.act(Action.START)
    assert status == "ok", message
    # The answer's state is shown at once: no read of the whole host after an action.
    assert henry.row("office-files").vm.state == "Running" and henry.reads == []
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
    assert not [t for t in olivia.tasks.running if t.label.startswith("turnoff")]
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
    olivia.reads.clear()
    status, message = olivia.act(Action.CHECKPOINT_CREATE)
    assert status == "ok", message
    # The new checkpoint comes with the answer, in the details pane too, without a host read.
    assert len(olivia.row("shop-app01").vm.checkpoints) == len(before) + 1 and olivia.reads == []
    new = next(c for c in olivia.row("shop-app01").vm.checkpoints if c.id not in before)
    assert new.name == "before <b>update</b>"
    details = olivia.window.details
    assert not olivia.window.qactions[Action.CHECKPOINT_APPLY].isEnabled()  # none chosen yet
    assert details.select_checkpoint(new.id)
    assert olivia.window.qactions[Action.CHECKPOINT_APPLY].isEnabled()
    status, message = olivia.act(Action.CHECKPOINT_APPLY)
    assert status == "ok", message
    confirm = [a for a in answers.asked if a[0] == "confirm"][-1]
    assert "before <b>update</b>" in confirm[2] and "lost" in confirm[3]
    # It says how the VM will be: a production checkpoint (the VM's type) holds no memory.
    assert new.kind == "Production (no memory)" and "Afterwards shop-app01 is Off:" in confirm[2]


def test_mount_an_iso_from_the_library_and_eject(open_as, answers) -> None:
    olivia = open_as("olivia")
    olivia.select("shop-web01")
    answers.iso = "SystemRescue-11.iso"
    assert not olivia.window.qactions[Action.EJECT].isEnabled()  # nothing mounted yet
    assert "no ISO is mounted" in olivia.window.qactions[Action.EJECT].toolTip()
    olivia.reads.clear()
    status, message = olivia.act(Action.MOUNT_ISO)
    assert status == "ok", message
    offered = next(a for a in answers.asked if a[0] == "iso")
    assert offered[1] == "HV01" and set(offered[2:]) == {
        "WindowsServer2022.iso", "ubuntu-24.04-live-server-amd64.iso", "SystemRescue-11.iso"}
    assert olivia.row("shop-web01").iso == "SystemRescue-11.iso"
    status, message = olivia.act(Action.EJECT)
    assert status == "ok", message
    assert olivia.row("shop-web01").iso == "" and olivia.reads == []


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


# --- hosts that are slow, down, or refuse the password --------------------------------------------

def lab_host(world: World, name: str):
    """The running lab host `name` (its faults and simulated Hyper-V)."""
    return world.lab.world.host(name)  # type: ignore[attr-defined]


def with_host_timeout(world: World, name: str, seconds: float) -> None:
    config = world.services.config
    config.hosts = [replace(h, timeout=seconds) if h.name == name else h for h in config.hosts]


class Ticks:
    """Counts event-loop turns: a blocked GUI thread would stop counting."""

    def __init__(self, interval_ms: int = 20) -> None:
        self.count = 0
        self.timer = QTimer()
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)
        self.started = time.monotonic()
        self.timer.start()

    def _tick(self) -> None:
        self.count += 1

    def stop(self) -> float:
        self.timer.stop()
        return time.monotonic() - self.started


def test_a_slow_host_shows_as_slow_and_the_window_keeps_turning(world: World, open_as) -> None:
    world.services.slow_after = 0.5
    lab_host(world, "HV02").faults.latency_ms = 400  # every HTTP request: the read takes > 1 s
    adam = open_as("adam", load=False)
    ticks = Ticks()
    adam.window.start()
    # HV01 and HV03 load while HV02 is still answering.
    adam.qtbot.waitUntil(lambda: {"shop-web01", "build-agent-01"} <= adam.names(), timeout=20_000)
    assert adam.window.hosts_bar.status("HV02") is None or "HV02" not in {
        r.vm.host for r in adam.window.model.rows}
    adam.qtbot.waitUntil(lambda: adam.window.hosts_bar.status("HV02") is not None, timeout=30_000)
    elapsed = ticks.stop()
    assert adam.window.hosts_bar.status("HV02").value == "slow"
    assert "payroll-db" in adam.names()
    # The event loop turned all along: at least half the ticks a free loop would have counted.
    assert elapsed > 1.0 and ticks.count >= 0.5 * elapsed / 0.020, (ticks.count, elapsed)


def test_a_host_that_is_down_does_not_blank_the_others(world: World, open_as) -> None:
    with_host_timeout(world, "HV02", 1.5)
    lab_host(world, "HV02").faults.silent = True
    adam = open_as("adam", load=False)
    ticks = Ticks()
    with adam.qtbot.waitSignal(adam.window.refreshed, timeout=30_000):
        adam.window.start()
    elapsed = ticks.stop()
    adam.window.refresh_timer.stop()
    assert adam.window.hosts_bar.status("HV02").value == "unreachable"
    assert "HV02" in adam.window.hosts_bar.labels["hv02"].toolTip()
    assert {"shop-web01", "build-agent-01", "legacy-ftp"} <= adam.names()
    assert not {"payroll-db", "office-print"} & adam.names()
    assert ticks.count >= 0.5 * elapsed / 0.020, (ticks.count, elapsed)
    lab_host(world, "HV02").faults.clear()
    with adam.qtbot.waitSignal(adam.window.refreshed, timeout=30_000):
        adam.window.refresh()
    assert adam.window.hosts_bar.status("HV02").value == "ok" and "payroll-db" in adam.names()


def test_a_host_that_stops_answering_keeps_its_vms_greyed_with_their_last_state(world: World,
                                                                               open_as) -> None:
    from PySide6.QtCore import Qt

    from ui.models import COL_STATE

    with_host_timeout(world, "HV02", 1.5)
    adam = open_as("adam")
    payroll = adam.row("payroll-db")
    assert payroll.stale is None
    lab_host(world, "HV02").faults.silent = True
    with adam.qtbot.waitSignal(adam.window.refreshed, timeout=30_000):
        adam.window.refresh()
    assert adam.window.hosts_bar.status("HV02").value == "unreachable"
    kept = adam.row("payroll-db")  # still listed, as the host last reported it
    assert kept.vm == payroll.vm and kept.stale and kept.stale.startswith("HV02 not responding since")
    model = adam.window.model
    i = model.row_of(kept.key)
    assert model.cell(i, COL_STATE).endswith("(last known)")
    assert model.cell(i, COL_STATE, Qt.ItemDataRole.ForegroundRole) is not None
    assert "not responding" in model.cell(i, COL_STATE, Qt.ItemDataRole.ToolTipRole)
    assert "except HV02" in adam.window.statusBar().currentMessage()
    assert adam.row("shop-web01").stale is None  # the other hosts' rows are untouched
    lab_host(world, "HV02").faults.clear()
    with adam.qtbot.waitSignal(adam.window.refreshed, timeout=30_000):
        adam.window.refresh()
    assert adam.row("payroll-db").stale is None


def test_a_rejected_password_stops_every_host_and_asks_once(world: World, open_as, answers) -> None:
    henry = open_as("henry")
    # The password changes in the domain. Sessions already authenticated stay so (as on
    # Windows); the next new one is refused with 401. The hosts drop the kept sessions (as a
    # host does with idle ones), so the action needs a new one.
    world.lab.accounts.set_password("henry", "henry-new-1")  # type: ignore[attr-defined]
    for client in henry.session.pool.clients.values():
        client.close()
    answers.password = "henry-new-1"
    henry.select("office-files")
    status, message = henry.act(Action.START)
    assert status == "failed" and "password" in message
    henry.qtbot.waitUntil(lambda: any(a[0] == "password" for a in answers.asked), timeout=10_000)
    # With the new password every host answers again, through new connections.
    henry.qtbot.waitUntil(lambda: all(r.status.value == "ok" for r in
                                      henry.window.hosts_bar.results.values())
                          and not henry.tasks.running, timeout=30_000)
    assert [a[0] for a in answers.asked] == ["password"]  # once, not once per host
    assert henry.session.pool.gate.is_open and henry.window.refresh_timer.isActive()
    assert henry.row("office-files").vm.state == "Saved"  # nothing retried behind the person's back


# --- untrusted names ------------------------------------------------------------------------------

def test_rich_text_names_render_literally(world: World, open_as) -> None:
    from lab.hyperv import VM as LabVM
    hv03 = lab_host(world, "HV03").host
    with hv03._cond:
        hv03.vms.append(LabVM(id="7e1e7e1e-0000-4000-8000-00000000a001", name="<img src=x>",
                              state="Off", notes="<a href=y>click</a>"))
    adam = open_as("adam")
    assert "<img src=x>" in adam.names()
    row = next(r for r in range(adam.window.proxy.rowCount())
               if adam.window.proxy.index(r, 0).data() == "<img src=x>")
    index = adam.window.proxy.index(row, 0)
    from PySide6.QtGui import QTextDocument
    doc = QTextDocument()
    doc.setHtml(index.data(3))  # the tooltip, as Qt renders it
    assert doc.toPlainText().startswith("<img src=x>")
    adam.select("<img src=x>")
    from PySide6.QtWidgets import QLabel
    labels = [label for label in adam.window.findChildren(QLabel) if "<" in label.text()]
    assert {"<img src=x>", "<a href=y>click</a>"} <= {label.text() for label in labels}
    assert all(label.textFormat().name == "PlainText" for label in labels)
    adam.select("<img src=x>", "shop-web01")  # a disabled action's reason names the VM
    doc.setHtml(adam.window.qactions[Action.START].toolTip())
    assert "Cannot start shop-web01: shop-web01 is Running." in doc.toPlainText()
    adam.select("<img src=x>")
    doc.setHtml(adam.window.qactions[Action.SHUTDOWN].toolTip())
    assert "Cannot shut down <img src=x>: <img src=x> is Off." in doc.toPlainText()


def test_demo_smoke_exits_zero_and_prints_the_count(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path),
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_DATA_HOME": str(tmp_path / "data"),
           "TMPDIR": str(temp)}
    result = subprocess.run([sys.executable, "-m", "hvconsole", "demo", "--smoke"],
                            cwd=Path(__file__).resolve().parents[2], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "signed in as LAB\\henry; 4 VMs visible" in result.stdout
    # The demo cleans up after itself: no demo folder (with a window.ini) is left behind.
    assert [p.name for p in temp.iterdir() if p.name.startswith("hvconsole-demo-")] == []


def test_review_opens_for_a_reviewer_with_the_hosts_read_in_a_worker(open_as, monkeypatch) -> None:
    import threading

    import ui.mainwindow
    built_in: list[bool] = []
    build = ui.mainwindow.build_review

    def recorded(*args, **kwargs):
        built_in.append(threading.current_thread() is threading.main_thread())
        return build(*args, **kwargs)
    monkeypatch.setattr(ui.mainwindow, "build_review", recorded)
    henry = open_as("henry")
    assert not henry.window.review_action.isEnabled()
    assert "policy.read" in henry.window.review_action.toolTip()
    rita = open_as("rita")
    assert rita.window.review_action.isEnabled()
    rita.window.review_action.trigger()
    rita.qtbot.waitUntil(lambda: rita.window._review is not None, timeout=20_000)
    rita.wait_idle()
    review = rita.window._review
    assert set(review.inventory) == {"HV01", "HV02", "HV03"}
    assert review.findings.rowCount() > 0
    assert built_in == [False]  # the review was built in the worker, not on the GUI thread
    review.close()


def test_help_menu_copies_diagnostics_without_the_password(open_as, qapp) -> None:
    henry = open_as("henry")
    menus = {a.text(): a.menu() for a in henry.window.menuBar().actions()}
    actions = {a.text(): a for a in menus["&Help"].actions()}
    assert {"Open the &log folder", "&Copy diagnostics"} <= set(actions)
    actions["&Copy diagnostics"].trigger()
    report = qapp.clipboard().text()
    assert "hvconsole" in report and "Qt: " in report
    assert "henry-demo" not in report


def test_keyboard_shortcut_and_context_menu_reach_the_same_actions(open_as) -> None:
    from PySide6.QtCore import QPoint, Qt
    from PySide6.QtWidgets import QMenu

    henry = open_as("henry")
    henry.select("office-files")  # Saved: start allowed, turn off not (no privilege)
    henry.window.show()
    henry.window.activateWindow()
    henry.qtbot.waitUntil(henry.window.isActiveWindow, timeout=5_000)
    with henry.qtbot.waitSignal(henry.window.action_finished, timeout=30_000) as blocker:
        henry.qtbot.keyClick(henry.window.table, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    assert blocker.args[0] == "ok"
    henry.wait_idle()
    henry.qtbot.waitUntil(lambda: henry.row("office-files").vm.state == "Running", timeout=20_000)

    henry.window._context_menu(QPoint(5, 5))
    menu = henry.window.findChildren(QMenu)[-1]
    items = {a.text(): a for a in menu.actions() if a.text()}
    # Running now: shut down allowed (helpdesk), start not (state), turn off not (privilege)
    assert items["Shut &Down"].isEnabled() and not items["&Start"].isEnabled()
    assert not items["Turn &Off"].isEnabled() and "“Turn off”" in items["Turn &Off"].toolTip()
    menu.close()


def test_a_done_action_the_host_could_not_record_says_so(open_as, answers, monkeypatch) -> None:
    # The JEA endpoint answers a done action with log_error when its event log refused the event
    # (tests/lab/test_psrp.py); the window reports the action done and the warning beside it.
    from concurrent.futures import Future

    from console.hosts import ActionOutcome
    olivia = open_as("olivia")
    olivia.select("shop-web01")
    warning = "The event of this call was not written to the Application log: log full."

    def submit(identity, vm, action, **params) -> Future:
        done: Future = Future()
        done.set_result(ActionOutcome("ok", "Saved", "power save done on HV01.", warning=warning))
        return done
    monkeypatch.setattr(olivia.session.actions, "submit", submit)
    status, _ = olivia.act(Action.SAVE)
    assert status == "ok"
    entry = olivia.window.progress.list.item(olivia.window.progress.list.count() - 1)
    assert entry.text().startswith("Save: shop-web01 on HV01: ok") and warning in entry.text()


def test_fifty_hosts_fit_the_window_in_one_line_naming_those_in_trouble(qtbot) -> None:
    from console.errors import HostUnreachable
    from console.hosts import HostResult, HostStatus
    from ui.mainwindow import HostStatusBar

    names = [f"HV{i:02}" for i in range(1, 51)]
    bar = HostStatusBar(names)
    qtbot.addWidget(bar)
    assert bar.compact and bar.labels == {}
    # Fifty entries side by side would need thousands of pixels; the summary fits 1024.
    assert bar.minimumSizeHint().width() < 600
    assert bar.summary.text() == "50 hosts: 50 not read yet"
    for name in names:
        bar.loading(name)
    assert bar.summary.text() == "50 hosts: 50 not read yet, reading 50"
    for name in names:
        if name == "HV17":
            error = HostUnreachable("HV17 cannot be reached at http://hv17 (connection refused).",
                                    host="HV17")
            bar.show_result(HostResult(name, HostStatus.UNREACHABLE, error=error))
        else:
            bar.show_result(HostResult(name, HostStatus.SLOW if name == "HV03" else HostStatus.OK,
                                       seconds=7.0 if name == "HV03" else 0.2))
    assert bar.summary.text() == "50 hosts: 48 ok, 1 slow, 1 unreachable (not ok: HV03, HV17)"
    assert "connection refused" in bar.summary.toolTip() and "HV17" in bar.summary.toolTip()
    assert bar.status("hv17") is HostStatus.UNREACHABLE
    bar._fill_menu()
    entries = [a.text() for a in bar.menu.actions()]
    assert len(entries) == 50 and "HV17: unreachable" in entries
    assert re.fullmatch(r"HV01: ok, last answered \d\d:\d\d:\d\d", entries[0]), entries[0]
    bar.loading("HV01")
    assert bar.describe("HV01").endswith(", reading…") and "reading 1" in bar.summary.text()
    assert bar.minimumSizeHint().width() < 600


def test_a_few_hosts_get_an_entry_each(qtbot) -> None:
    from ui.mainwindow import HostStatusBar

    bar = HostStatusBar(["HV01", "HV02", "HV03"])
    qtbot.addWidget(bar)
    assert not bar.compact and sorted(bar.labels) == ["hv01", "hv02", "hv03"]


def test_stop_waiting_for_an_action_says_the_host_may_still_do_it(world: World, open_as,
                                                                  answers) -> None:
    olivia = open_as("olivia")
    window = olivia.window
    assert not window.progress.stop_button.isEnabled()  # nothing running
    lab_host(world, "HV01").faults.latency_ms = 700  # each request to HV01 now takes 0.7 s
    olivia.select("shop-web01")
    window.trigger(Action.SAVE)  # sent first: it runs
    olivia.select("shop-app01")
    window.trigger(Action.SAVE)  # queued behind it on HV01's action queue: not sent yet
    progress = window.progress
    queued, running = progress.list.item(0), progress.list.item(1)
    with olivia.qtbot.waitSignal(window.action_finished, timeout=10_000) as cancelled:
        progress.list.setCurrentItem(queued)
        assert progress.stop_button.isEnabled()
        progress.stop_selected()
    assert cancelled.args[0] == "cancelled" and "nothing happened" in queued.text()
    with olivia.qtbot.waitSignal(window.action_finished, timeout=10_000) as stopped:
        progress.list.setCurrentItem(running)
        progress.stop_selected()
    assert stopped.args[0] == "pending"
    assert "HV01 may still carry out the save of shop-web01" in running.text()
    assert olivia.row("shop-web01").pending and "not confirmed" in olivia.row("shop-web01").pending
    lab_host(world, "HV01").faults.latency_ms = 0
    olivia.wait_idle()
    # The action the host did receive is audited by the core as it ends; the cancelled one never
    # reached the audit trail, nor the host.
    olivia.qtbot.waitUntil(lambda: any(
        r.vm_name == "shop-web01" and r.outcome for r in world.services.audit.records()), timeout=20_000)
    assert not [r for r in world.services.audit.records() if r.vm_name == "shop-app01"]
    with olivia.qtbot.waitSignal(window.refreshed, timeout=30_000):
        window.refresh()
    assert olivia.row("shop-web01").vm.state == "Saved" and olivia.row("shop-web01").pending is None


def test_no_match_says_why_and_esc_clears_the_search(open_as) -> None:
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    olivia = open_as("olivia")
    window = olivia.window
    window.show()
    assert window.empty_line.isHidden()
    window.search.setText("no such vm anywhere")
    assert window.count_label.text() == f"0 of {window.model.rowCount()} VMs"
    assert not window.empty_line.isHidden() and "Esc" in window.empty_line.text()
    window.search.setFocus()
    QTest.keyClick(window.search, Qt.Key.Key_Escape)
    assert window.search.text() == "" and window.empty_line.isHidden()
    assert window.proxy.rowCount() == window.model.rowCount() > 0


def test_quitting_with_an_action_running_asks_first(open_as, answers) -> None:
    olivia = open_as("olivia")
    window = olivia.window
    window.show()
    window._busy[olivia.row("shop-web01").key] = 1  # as while an action runs
    answers.confirm = False
    window.close()
    assert window.isVisible()
    (kind, title, text, details), = answers.asked
    assert kind == "confirm" and "1 action(s) are still running" in text and "may still" in details
    window._busy.clear()


def test_a_vm_in_motion_is_followed_until_it_settles(world: World, open_as) -> None:
    adam = open_as("adam", load=False)
    host = lab_host(world, "HV01").host
    web = next(v for v in host.vms if v.name == "shop-web01")
    web.state = "Starting"
    adam.load()
    assert adam.row("shop-web01").vm.state == "Starting"
    adam.window.follow_timer.setInterval(50)
    adam.window._follow_later()
    web.state = "Running"  # it settles on the host; no refresh runs (the timer is stopped)
    adam.qtbot.waitUntil(lambda: adam.row("shop-web01").vm.state == "Running", timeout=10_000)
    assert not adam.window.refresh_timer.isActive()


def test_columns_are_chosen_from_the_header_and_kept(world: World, open_as, qtbot) -> None:
    from ui.models import COLUMNS

    olivia = open_as("olivia")
    owner = next(i for i, c in enumerate(COLUMNS) if c.title == "Owner")
    actions = olivia.window.column_actions()
    assert [a.text() for a in actions] == [c.title for c in COLUMNS]
    assert not actions[0].isEnabled()  # the name always shows
    actions[owner].setChecked(False)
    header = olivia.window.table.horizontalHeader()
    assert header.isSectionHidden(owner)
    olivia.window.close()  # saves the header with the window
    again = open_as("olivia")
    assert again.window.table.horizontalHeader().isSectionHidden(owner)
    assert not again.window.column_actions()[owner].isChecked()


def test_a_cut_off_cell_shows_its_whole_text_when_hovered(open_as) -> None:
    from PySide6.QtCore import QEvent, QPoint
    from PySide6.QtGui import QHelpEvent
    from PySide6.QtWidgets import QStyleOptionViewItem, QToolTip

    from ui.models import COLUMNS

    olivia = open_as("olivia")
    window = olivia.window
    window.show()
    table = window.table
    owner = next(i for i, c in enumerate(COLUMNS) if c.title == "Owner")
    table.setColumnWidth(owner, 12)
    index = next(window.proxy.index(r, owner) for r in range(window.proxy.rowCount())
                 if window.proxy.index(r, owner).data())
    rect = table.visualRect(index)
    event = QHelpEvent(QEvent.Type.ToolTip, rect.center(), table.viewport().mapToGlobal(rect.center()))
    option = QStyleOptionViewItem()
    option.initFrom(table)
    assert table.itemDelegate().helpEvent(event, table, option, index)
    assert index.data() in QToolTip.text()
    table.setColumnWidth(owner, 400)
    wide = QHelpEvent(QEvent.Type.ToolTip, QPoint(1, 1), QPoint(1, 1))
    assert not table.itemDelegate().helpEvent(wide, table, option, index)  # all of it shows


def test_every_action_that_interrupts_a_guest_asks_naming_each_vm(open_as, answers) -> None:
    olivia = open_as("olivia")
    running = sorted(r.vm.name for r in olivia.window.model.rows if r.vm.state == "Running")[:2]
    assert len(running) == 2
    olivia.select(*running)
    answers.confirm = False
    for action in (Action.SHUTDOWN, Action.RESTART, Action.SAVE, Action.PAUSE):
        answers.asked.clear()
        olivia.window.trigger(action)
        (kind, title, text, details), = answers.asked
        assert kind == "confirm" and all(f"{name} on HV" in text for name in running), text
        assert "cut off" in details or "time out" in details
    olivia.wait_idle()
    assert olivia.world.services.audit.records() == []  # nothing was sent


def test_a_right_you_lack_says_who_can_grant_it(open_as) -> None:
    henry = open_as("henry")
    henry.select("office-files")
    tooltip = henry.window.qactions[Action.TURNOFF].toolTip()
    # The privilege as people name it, not its policy id.
    assert "does not grant you “Turn off”" in tooltip and "can grant it" in tooltip
    assert "vm.turnoff" not in tooltip


def test_a_failure_stays_in_sight_until_dismissed(open_as, answers, monkeypatch) -> None:
    from concurrent.futures import Future

    from console.errors import NoShutdownService

    olivia = open_as("olivia")
    olivia.select("shop-web01")

    def submit(identity, vm, action, **params) -> Future:
        failed: Future = Future()
        failed.set_exception(NoShutdownService(
            "HV01, VM x: the guest has no working shutdown service. Turn Off instead?", host="HV01"))
        return failed
    monkeypatch.setattr(olivia.session.actions, "submit", submit)
    olivia.window.show()
    status, _ = olivia.act(Action.SHUTDOWN)
    notice = olivia.window.notice
    assert status == "failed" and notice.isVisible()
    assert notice.text.text().startswith("Shut Down of shop-web01 failed:")
    assert "Turn Off instead?" in notice.text.text()
    entry = olivia.window.progress.list.item(0).text()
    assert re.search(r"failed after \d+ s \(\d\d:\d\d:\d\d\)", entry), entry  # when it ended
    notice.dismiss.click()
    assert not notice.isVisible()


def test_the_activity_list_keeps_earlier_sessions(open_as) -> None:
    henry = open_as("henry")
    henry.select("office-files")
    assert henry.act(Action.START)[0] == "ok"
    henry.window.close()
    again = open_as("henry")
    again.wait_idle()
    earlier = [again.window.progress.list.item(i) for i in range(again.window.progress.list.count())]
    texts = [i.text() for i in earlier if i.data(Qt.ItemDataRole.UserRole) == "earlier"]
    assert any("Start: office-files on" in t and t.endswith(": ok") for t in texts), texts


def test_help_tells_the_version_and_the_shortcuts(open_as) -> None:
    from console import __version__

    henry = open_as("henry")
    assert __version__ in henry.window.about_text() and "MIT" in henry.window.about_text()
    shortcuts = henry.window.shortcuts_text()
    assert "Ctrl+S\tStart" in shortcuts and "Esc\tClear the search" in shortcuts


def test_one_checkpoint_name_for_several_vms_and_a_menu_on_the_tree(open_as, answers) -> None:
    olivia = open_as("olivia")
    names = ["shop-web01", "shop-app01"]
    before = {n: len(olivia.row(n).vm.checkpoints) for n in names}
    olivia.select(*names)
    assert olivia.window.qactions[Action.CHECKPOINT_CREATE].isEnabled()
    answers.text = "before the patch"
    with olivia.qtbot.waitSignals([olivia.window.action_finished] * 2, timeout=30_000):
        olivia.window.trigger(Action.CHECKPOINT_CREATE)
    olivia.wait_idle()
    (kind, _, label), = [a for a in answers.asked if a[0] == "text"]
    assert "2 VMs" in label
    for n in names:
        vm = olivia.row(n).vm
        assert len(vm.checkpoints) == before[n] + 1
        assert any(c.name == "before the patch" for c in vm.checkpoints)
    assert olivia.window.CHECKPOINT_MENU[0] is Action.CHECKPOINT_APPLY


def test_a_window_fits_a_small_screen(open_as) -> None:
    from ui.text import fit_on_screen

    olivia = open_as("olivia")
    window = olivia.window
    area = window.screen().availableGeometry()
    fit_on_screen(window, area.width() * 3, area.height() * 3)
    assert window.width() <= area.width() and window.height() <= area.height()


def test_status_messages_keep_names_on_one_line(open_as) -> None:
    olivia = open_as("olivia")
    olivia.window.say("shop\u202eweb01\nRefreshed at 12:00")
    message = olivia.window.statusBar().currentMessage()
    assert "\n" not in message and "\u202e" not in message and "shop" in message


def test_sign_out_closes_the_window_and_asks_who_signs_in_next(world: World, monkeypatch) -> None:
    import ui.main
    from ui.signin import SignInDialog

    henry = world.services.directory.sign_in("henry", PASSWORDS["henry"])
    answers = [SimpleNamespace(identity=henry, password=PASSWORDS["henry"], sso=False), None]  # then cancel
    asked: list[int] = []

    def ask(cls, *args, **kwargs):  # type: ignore[no-untyped-def]
        asked.append(1)
        return answers.pop(0)

    windows: list[MainWindow] = []

    def window(*args):  # type: ignore[no-untyped-def]
        windows.append(MainWindow(*args))
        return windows[-1]

    class App:  # the event loop: the person signs out at once
        def exec(self) -> int:
            windows[-1].sign_out()
            return 0

    monkeypatch.setattr(SignInDialog, "ask", classmethod(ask))
    monkeypatch.setattr(ui.main, "MainWindow", window)
    monkeypatch.setattr(ui.main, "make_application", lambda: App())
    monkeypatch.setattr(ui.main, "install_excepthook", lambda: None)
    assert ui.main.run_console(world.services) == 0
    assert len(asked) == 2 and len(windows) == 1  # signed out, asked again, then cancelled
    assert windows[0].signed_out and not windows[0].isVisible()


def test_status_colours_stay_readable_on_a_dark_palette(qapp, qtbot) -> None:
    from PySide6.QtGui import QColor, QPalette

    from console.hosts import HostResult, HostStatus
    from ui.mainwindow import HostStatusBar
    from ui.text import shade

    def contrast(a: QColor, b: QColor) -> float:  # WCAG 2 contrast ratio
        def lum(c: QColor) -> float:
            def ch(v: float) -> float:
                return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4
            return 0.2126 * ch(c.redF()) + 0.7152 * ch(c.greenF()) + 0.0722 * ch(c.blueF())
        hi, lo = sorted((lum(a), lum(b)), reverse=True)
        return (hi + 0.05) / (lo + 0.05)

    light = qapp.palette()
    try:
        for window in (QColor("#ffffff"), QColor("#202020")):
            palette = QPalette(light)
            palette.setColor(QPalette.ColorRole.Window, window)
            qapp.setPalette(palette)
            for meaning in ("ok", "warn", "error"):
                assert contrast(QColor(shade(meaning)), window) >= 4.5, (meaning, window.name())
        bar = HostStatusBar(["HV01"])
        qtbot.addWidget(bar)
        bar.show_result(HostResult("HV01", HostStatus.OK))
        assert shade("ok") in bar.labels["hv01"].styleSheet()
    finally:
        qapp.setPalette(light)


def test_enter_on_a_vm_opens_its_details(open_as) -> None:
    from PySide6.QtTest import QTest

    olivia = open_as("olivia")
    window = olivia.window
    window.show()
    olivia.select("shop-web01")
    window.details.tabs.setCurrentIndex(1)
    window.table.setFocus()
    QTest.keyClick(window.table, Qt.Key.Key_Return)
    assert window.details.tabs.currentIndex() == 0 and window.details.title.text() == "shop-web01"


def test_columns_fit_every_hosts_names_until_the_person_sizes_one(open_as) -> None:
    from ui.models import COL_NAME

    olivia = open_as("olivia")
    table = olivia.window.table
    longest = max(table.fontMetrics().horizontalAdvance(r.vm.name) for r in olivia.window.model.rows)
    assert table.columnWidth(COL_NAME) >= longest  # fitted once every host had answered
    table.setColumnWidth(COL_NAME, 40)  # the person narrows it
    with olivia.qtbot.waitSignal(olivia.window.refreshed, timeout=30_000):
        olivia.window.refresh()
    assert table.columnWidth(COL_NAME) == 40  # and it stays so


def test_the_checkpoint_list_copies_as_the_tree_shows_it(open_as, qapp) -> None:
    olivia = open_as("olivia")
    olivia.select("shop-app01")
    text = olivia.window.checkpoint_list_text()
    lines = text.splitlines()
    assert lines[0].startswith("Checkpoint\tType\tCreated")
    assert lines[1].startswith("Before shop 4.2 upgrade\t") and lines[2].startswith("  After shop 4.2")
    olivia.window.copy_checkpoints()
    assert qapp.clipboard().text() == text


def test_cpu_and_memory_are_kept_per_vm_over_the_refreshes(open_as) -> None:
    from ui.history import SAMPLES, UsageHistory

    olivia = open_as("olivia")
    for _ in range(2):
        with olivia.qtbot.waitSignal(olivia.window.refreshed, timeout=30_000):
            olivia.window.refresh()
    web = olivia.row("shop-web01")
    samples = olivia.window.history.of(web.key)
    assert samples is not None and len(samples.cpu) == 3  # the first read and two refreshes
    assert samples.cpu[-1] == web.vm.cpu_pct and samples.memory_mb[-1] == web.vm.memory_bytes >> 20
    olivia.select("shop-web01")
    assert olivia.window.details.cpu_chart.values == list(samples.cpu)
    # Bounded: an hour of refreshes, however long the console stays open.
    history = UsageHistory()
    for i in range(SAMPLES + 25):
        history.record([replace(web.vm, cpu_pct=i % 100)])
    assert len(history.of(web.key).cpu) == SAMPLES and history.of(web.key).cpu[-1] == (SAMPLES + 24) % 100
    history.forget(set())
    assert len(history) == 0


def test_a_lasting_deviation_is_marked_and_told_once(open_as, monkeypatch) -> None:
    o = open_as("olivia")
    learnt: list[list] = []
    monkeypatch.setattr(o.window.baselines, "observe", learnt.append)
    o.window._learn_baselines()
    assert {vm.name for vm in learnt[0]} == o.names()  # every row, none stale
    web = o.row("shop-web01").vm
    sentence = "shop-web01: CPU 97 % for 20 min, usually 9 % (0–30) on Tuesdays at 10:00."
    o.window._show_alerts({web.id: {"cpu": sentence}})
    assert o.window.notice.isVisibleTo(o.window) and sentence in o.window.notice.text.text()
    o.window.notice.hide()
    o.window._show_alerts({web.id: {"cpu": sentence}})  # still open: not told again
    assert not o.window.notice.isVisibleTo(o.window)
    row = next(i for i, r in enumerate(o.window.model.rows) if r.vm.id == web.id)
    from ui.models import COL_CPU
    assert sentence in o.window.model.data(o.window.model.index(row, COL_CPU), Qt.ItemDataRole.ToolTipRole)


def test_the_details_charts_shade_the_usual_range_of_the_vm_shown(open_as) -> None:
    from console.baseline import Usual

    o = open_as("olivia")
    o.select("shop-web01")
    web = o.row("shop-web01").vm
    assert o.window.baselines.focused == web.id
    o.window._show_usual(web.id, {"cpu": Usual(40, 9.0, 0.0, 30.0, 0.0), "memory": None})
    assert o.window.details.cpu_chart.band == (0, 30) and o.window.details.memory_chart.band is None
    o.window._show_usual("someone-else", {"cpu": Usual(40, 50.0, 40.0, 60.0, 0.0)})
    assert o.window.details.cpu_chart.band == (0, 30)  # an answer for a VM no longer shown
    o.select("shop-db01")
    assert o.window.details.cpu_chart.band is None  # cleared until the new VM's range is read

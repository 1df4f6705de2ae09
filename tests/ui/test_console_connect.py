"""Connect in the main window: the action's tooltip says why it is disabled (no viewer installed,
VM off, no privilege), Connect grants the person access on the host and starts the viewer, and
Enter connects where it can while Shift+Enter (and Enter where it cannot) opens the details."""
from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import Qt

from console.inventory import Action
from console.viewer import Viewer, ViewerCommand
from ui.mainwindow import MainWindow

from .test_mainwindow import open_as, world  # noqa: F401 (fixtures)

WEB01 = "42e4aaca-7231-5411-b96b-d03849b0dae1"


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[ViewerCommand]:
    """A viewer on this computer, and the command lines the window starts (nothing runs)."""
    commands: list[ViewerCommand] = []
    monkeypatch.setattr(MainWindow, "find_viewer",
                        staticmethod(lambda: Viewer("freerdp", "/usr/bin/xfreerdp")))
    monkeypatch.setattr("ui.mainwindow.launch", lambda command: commands.append(command))
    return commands


def tooltip(o: Any) -> str:
    o.window.update_actions()
    return str(o.window.qactions[Action.CONNECT].toolTip())


def test_without_a_viewer_connect_says_what_to_install(open_as: Any) -> None:  # noqa: F811
    olivia = open_as("olivia")
    olivia.select("shop-web01")
    assert not olivia.window.qactions[Action.CONNECT].isEnabled()
    assert "No console viewer is installed: install FreeRDP" in tooltip(olivia)


def test_connect_needs_vm_console_and_a_running_vm(open_as: Any,  # noqa: F811
                                                   started: list[ViewerCommand]) -> None:
    olivia = open_as("olivia")
    olivia.select("shop-web01")  # Running, olivia owns it
    assert olivia.window.qactions[Action.CONNECT].isEnabled()
    adam = open_as("adam")  # may do everything, but payroll-db is Off: no screen
    adam.select("payroll-db")
    assert not adam.window.qactions[Action.CONNECT].isEnabled()
    assert "Cannot connect to payroll-db: payroll-db is Off." in tooltip(adam)
    henry = open_as("henry")  # helpdesk: no vm.console
    henry.select("office-print")
    assert not henry.window.qactions[Action.CONNECT].isEnabled()
    assert "You may not connect to office-print: the policy does not grant you “Connect to the " \
        "console” on it." in tooltip(henry)


def test_connect_grants_on_the_host_and_starts_the_viewer(open_as: Any,  # noqa: F811
                                                          started: list[ViewerCommand]) -> None:
    olivia = open_as("olivia")
    olivia.select("shop-web01")
    status, _ = olivia.act(Action.CONNECT)
    assert status == "ok"
    host = olivia.world.lab.world.host("HV01").host
    assert [e.user for e in host.console_acl[WEB01]] == ["LAB\\olivia"]
    (command,) = started
    assert command.argv[0] == "/usr/bin/xfreerdp" and f"/vmconnect:{WEB01}" in command.argv
    assert command.stdin == "olivia-demo\n" and "olivia-demo" not in " ".join(command.argv)
    assert olivia.window.statusBar().currentMessage() == (
        "Opened the console of shop-web01 in xfreerdp.")


def test_enter_connects_and_shift_enter_opens_the_details(open_as: Any,  # noqa: F811
                                                          started: list[ViewerCommand]) -> None:
    from PySide6.QtTest import QTest

    olivia = open_as("olivia")
    window = olivia.window
    window.show()
    olivia.select("shop-web01")
    window.details.tabs.setCurrentIndex(1)
    window.table.setFocus()
    with olivia.qtbot.waitSignal(window.action_finished, timeout=30_000):
        QTest.keyClick(window.table, Qt.Key.Key_Return)
    olivia.wait_idle()
    assert len(started) == 1 and window.details.tabs.currentIndex() == 1
    QTest.keyClick(window.table, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    assert window.details.tabs.currentIndex() == 0 and len(started) == 1
    adam = open_as("adam")
    adam.window.show()
    adam.select("payroll-db")  # Off: Enter cannot connect, so it opens the details
    adam.window.details.tabs.setCurrentIndex(1)
    adam.window.table.setFocus()
    QTest.keyClick(adam.window.table, Qt.Key.Key_Return)
    assert adam.window.details.tabs.currentIndex() == 0 and len(started) == 1


def test_the_review_lists_who_holds_console_access_against_who_may(qtbot: Any,  # noqa: F811
                                                                   qtmodeltester: Any,
                                                                   tmp_path: Any) -> None:
    from types import SimpleNamespace

    from console.audit import AuditTrail
    from console.console_access import ConsoleEntry
    from console.inventory import VM
    from console.paths import LAB_DATA
    from console.policy import Policy
    from console.review import build_review
    from lab.directory import LabDirectory
    from ui.review import ReviewWindow

    policy = Policy.load(LAB_DATA / "policy.toml")
    directory = LabDirectory()
    olivia, henry = directory.sign_in("olivia", "olivia-demo"), directory.sign_in("henry", "henry-demo")
    inventory = {"HV01": [VM("HV01", WEB01, "shop-web01", "Running")]}
    entries = {"HV01": [ConsoleEntry("HV01", WEB01, "shop-web01", "LAB\\olivia", olivia.sid),
                        ConsoleEntry("HV01", WEB01, "shop-web01", "LAB\\henry", henry.sid)]}
    review = build_review(policy, inventory, {}, directory.session("rita", "rita-demo"),
                          console_access=entries)
    services = SimpleNamespace(policy=policy, audit=AuditTrail(tmp_path / "audit.jsonl"))
    w = ReviewWindow(services, session=SimpleNamespace(identity=olivia), inventory=inventory,
                     facts={}, review=review)
    qtbot.addWidget(w)
    qtmodeltester.check(w.console_model)
    assert w.console_model.rows == [["HV01", "shop-web01", "LAB\\olivia", "yes"],
                                    ["HV01", "shop-web01", "LAB\\henry", "no"]]
    assert "henry" in w.console_model.tips[1].lower()
    assert any(f.kind == "console-access" and f.objects[0] == "LAB\\henry"
               for f in w.findings.objects)

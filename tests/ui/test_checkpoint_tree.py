"""The checkpoint tree against the lab, as Hyper-V Manager has it: "Now" where the VM stands,
following a create and an apply; rename from the tree's menu and with F2; Revert from the VM's
menu; the tree's menu from the keyboard; the list copied with "Now" and without sizes."""
from __future__ import annotations

from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from console.inventory import Action
from ui.models import CheckpointModel

from . import test_mainwindow

# The main window's fixtures: a lab, and the window opened as a demo account.
world = test_mainwindow.world
open_as = test_mainwindow.open_as

APP01_BEFORE = "5e0f3a51-8c2d-4b7a-a1e4-6d9c2f8b3a10"  # "Before shop 4.2 upgrade"
APP01_AFTER = "0a1d6c2e-4f0b-4c55-9d1e-3b8f7a2c9e01"  # its child, where shop-app01 stands


def executor(opened, host: str = "HV01"):
    return next(s for s in opened.world.lab.servers if s.name == host).executor


def now_parent(window) -> str | None:
    """The checkpoint id the "Now" row sits under (None: top level)."""
    model = window.details.checkpoint_model
    now = model.index_of(CheckpointModel.NOW)
    assert now.isValid() and model.is_now(now)
    assert now.data() == "\u25b6 Now" and "Where shop-app01 stands" in now.data(
        Qt.ItemDataRole.ToolTipRole)
    parent = model.parent(now)
    assert model.index(now.row(), 0, parent) == now  # the last row under its parent
    assert now.row() == model.rowCount(parent) - 1
    return model.checkpoint(parent).id if parent.isValid() else None


def test_now_stands_under_the_vms_checkpoint_and_moves_with_create_and_apply(open_as, answers) -> None:
    olivia = open_as("olivia")
    olivia.select("shop-app01")
    window = olivia.window
    assert olivia.row("shop-app01").vm.parent_checkpoint_id == APP01_AFTER
    assert now_parent(window) == APP01_AFTER
    # Selecting "Now" selects no checkpoint: nothing to apply, rename or delete.
    assert window.details.select_checkpoint(CheckpointModel.NOW)
    assert window.details.selected_checkpoint() is None
    assert not window.qactions[Action.CHECKPOINT_RENAME].isEnabled()

    answers.text = "before 4.3"
    status, message = olivia.act(Action.CHECKPOINT_CREATE)
    assert status == "ok", message
    new = next(c for c in olivia.row("shop-app01").vm.checkpoints if c.name == "before 4.3")
    assert new.parent_id == APP01_AFTER and now_parent(window) == new.id  # without a read

    assert window.details.select_checkpoint(APP01_BEFORE)
    status, message = olivia.act(Action.CHECKPOINT_APPLY)
    assert status == "ok", message
    assert now_parent(window) == APP01_BEFORE
    # The host agrees when it is read again.
    with olivia.qtbot.waitSignal(window.refreshed, timeout=30_000):
        window.refresh()
    assert olivia.row("shop-app01").vm.parent_checkpoint_id == APP01_BEFORE
    assert now_parent(window) == APP01_BEFORE


def test_rename_from_the_menu_and_with_f2(open_as, answers) -> None:
    olivia = open_as("olivia")
    olivia.select("shop-app01")
    window = olivia.window
    rename = window.qactions[Action.CHECKPOINT_RENAME]
    assert not rename.isEnabled() and "Choose a checkpoint" in rename.toolTip()
    assert window.details.select_checkpoint(APP01_BEFORE)
    assert rename.isEnabled()
    menu = [a.text() for a in window.checkpoint_menu().actions() if a.text()]
    assert menu[:4] == ["Apply Checkpoint...", "Re&name Checkpoint...", "Delete Checkpoint...",
                        "Delete Checkpoint Subtree..."]
    assert "Re&vert..." in menu and menu[-1] == "Copy the checkpoint list"

    answers.text = "Before shop 4.2 \u2019upgrade\u2019"
    status, message = olivia.act(Action.CHECKPOINT_RENAME)
    assert status == "ok", message
    text = [a for a in answers.asked if a[0] == "text"][-1]
    assert text[1] == "Rename Checkpoint" and "Before shop 4.2 upgrade" in text[2]
    assert not [a for a in answers.asked if a[0] == "confirm"]  # nothing is lost: no question
    vm = olivia.row("shop-app01").vm
    assert vm.checkpoint(APP01_BEFORE).name == "Before shop 4.2 \u2019upgrade\u2019"
    assert window.details.selected_checkpoint().id == APP01_BEFORE  # still selected
    lab_vm = olivia.world.lab.world.host("HV01").host.vm(vm.id)
    assert lab_vm.checkpoint(APP01_BEFORE).name == "Before shop 4.2 \u2019upgrade\u2019"

    # F2 in the tree renames the selected checkpoint too; the same name again sends nothing.
    answers.text = "Shop 4.2, before"
    window.details.tree.setFocus()
    f2 = next(a for a in window.details.tree.actions() if a.shortcut().toString() == "F2")
    with olivia.qtbot.waitSignal(window.action_finished, timeout=30_000):
        f2.trigger()
    olivia.wait_idle()
    assert olivia.row("shop-app01").vm.checkpoint(APP01_BEFORE).name == "Shop 4.2, before"
    calls = len(executor(olivia).calls_of("Rename-VMSnapshot"))
    f2.trigger()
    olivia.wait_idle()
    assert len(executor(olivia).calls_of("Rename-VMSnapshot")) == calls
    # The audit trail says what was done, with the new name.
    records = [r for r in olivia.world.services.audit.records() if r.action == "checkpoint_rename"]
    assert {r.params.get("name") for r in records if r.decision == "allowed"} == {
        "Before shop 4.2 \u2019upgrade\u2019", "Shop 4.2, before"}


def test_revert_applies_the_checkpoint_the_vm_stands_on(open_as, answers) -> None:
    olivia = open_as("olivia")
    window = olivia.window
    olivia.select("shop-web01")  # no checkpoints
    assert not window.revert_action.isEnabled()
    assert "has no checkpoints" in window.revert_action.toolTip()
    olivia.select("shop-web01", "shop-app01")
    assert not window.revert_action.isEnabled() and "single VM" in window.revert_action.toolTip()
    olivia.select("shop-app01")
    assert window.revert_action.isEnabled()
    assert "After shop 4.2" in window.revert_action.toolTip()
    vm = olivia.row("shop-app01").vm
    after = vm.parent_checkpoint
    answers.confirm = False
    window.revert()
    (_, title, text, loses), = [a for a in answers.asked if a[0] == "confirm"]
    assert title == "Revert" and after.name in text and "Afterwards shop-app01 is" in text
    assert "lost" in loses
    answers.confirm = True
    with olivia.qtbot.waitSignal(window.action_finished, timeout=30_000) as blocker:
        window.revert()
    olivia.wait_idle()
    assert blocker.args[0] == "ok", blocker.args
    (call,) = executor(olivia).calls_of("Restore-VMSnapshot")
    assert str(call.params["VMSnapshot"].get("Id")) == after.id
    assert olivia.row("shop-app01").vm.parent_checkpoint_id == after.id


def test_revert_needs_the_right_to_apply(open_as) -> None:
    rita = open_as("rita")  # a reviewer: sees every VM, may change none
    rita.select("shop-app01")
    enabled, reason = rita.window.revert_availability()
    assert not enabled and "“Apply checkpoints”" in reason and "vm." not in reason
    assert not rita.window.revert_action.isEnabled()


def test_the_trees_menu_opens_from_the_keyboard(open_as, monkeypatch) -> None:
    olivia = open_as("olivia")
    window = olivia.window
    shown: list[list[str]] = []
    monkeypatch.setattr(window, "show_menu",
                        lambda menu, at: shown.append([a.text() for a in menu.actions()]))
    olivia.select("shop-app01")
    window.details.select_checkpoint(APP01_AFTER)
    QTest.keyClick(window.details.tree, Qt.Key.Key_F10, Qt.KeyboardModifier.ShiftModifier)
    QTest.keyClick(window.details.tree, Qt.Key.Key_Menu)
    assert len(shown) == 2 and all("Copy the checkpoint list" in m for m in shown)
    QTest.keyClick(window.table, Qt.Key.Key_F10, Qt.KeyboardModifier.ShiftModifier)
    assert len(shown) == 3 and "&Start" in shown[-1]  # the VM's menu in the table
    window._checkpoint_menu(QPoint(3, 3))
    assert len(shown) == 4


def test_the_list_has_now_and_no_size_column(open_as) -> None:
    olivia = open_as("olivia")
    olivia.select("shop-app01")
    lines = olivia.window.checkpoint_list_text().splitlines()
    assert lines[0] == "Checkpoint\tType\tCreated\tId"
    assert lines[1].startswith("Before shop 4.2 upgrade\t")
    assert lines[2].startswith("  After shop 4.2") and lines[2].endswith(APP01_AFTER)
    assert lines[3] == "    Now\t(where shop-app01 stands)\t\t"
    assert lines[-1].startswith("Checkpoint files in total: ") and lines[-1].endswith(" bytes")
    header = olivia.window.details.checkpoint_model
    assert [header.headerData(i, Qt.Orientation.Horizontal) for i in range(header.columnCount())] \
        == ["Checkpoint", "Type", "Created"]
    assert "checkpoint files" in olivia.window.details.checkpoint_type.text()

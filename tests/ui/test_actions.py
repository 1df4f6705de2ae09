"""Which action the selection allows, and the reason a disabled action gives."""
from __future__ import annotations

import pytest
from PySide6.QtGui import QTextDocument

from console.inventory import (REQUIRED_PRIVILEGES, STATE_ACTIONS, VM, Action, Checkpoint,
                               DvdDrive, allowed_by_state)
from ui.review import privilege_title
from ui.actions import BULK_ACTIONS, NEEDS_CHECKPOINT, SPECS, availability
from ui.text import tip

ALL = frozenset(p for ps in REQUIRED_PRIVILEGES.values() for p in ps) | {"vm.view"}
CP = (Checkpoint("c1", "before update", "Production", None, None),)
DVD = (DvdDrive("SCSI", 0, 1, "D:\\ISO\\setup.iso"),)  # mounted: Eject needs an ISO to eject


def make(name: str, state: str, **kw: object) -> VM:
    return VM(host="HV01", id=f"id-{name}", name=name, state=state, checkpoints=CP,
              dvd_drives=DVD, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize("state", ["Running", "Off", "Saved", "Paused", "Stopping", "PausedCritical"])
def test_enabled_exactly_when_privilege_and_state_allow(action: Action, state: str) -> None:
    vm = make("web01", state)
    ok, why = availability(action, [vm], lambda v: ALL, checkpoint_selected=True)
    assert ok == (action in STATE_ACTIONS[state]), why
    if not ok:
        assert "web01" in why and state in why
    # Without one of the required privileges it is always disabled, naming the privilege as
    # people name it (its title), never by its policy id.
    for missing in REQUIRED_PRIVILEGES[action]:
        ok, why = availability(action, [vm], lambda v, missing=missing: ALL - {missing},
                               checkpoint_selected=True)
        assert not ok and f"“{privilege_title(missing)}”" in why and missing not in why
        assert "web01" in why and "may not" in why


def test_bulk_needs_every_vm_to_allow_and_names_the_one_that_does_not() -> None:
    a, b = make("web01", "Off"), make("web02", "Running")
    ok, why = availability(Action.START, [a, b], lambda v: ALL)
    assert not ok and why == "Cannot start web02: web02 is Running."
    ok, _ = availability(Action.START, [a, make("web03", "Saved")], lambda v: ALL)
    assert ok
    grants = {a.id: ALL, b.id: frozenset({"vm.view"})}
    ok, why = availability(Action.SHUTDOWN, [make("x", "Running"), b],
                           lambda v: grants.get(v.id, ALL))
    assert not ok and "web02" in why and "“Shut down”" in why and "vm.shutdown" not in why


def test_single_vm_actions_refuse_a_multiple_selection() -> None:
    vms = [make("a", "Running"), make("b", "Running")]
    for action in set(Action) - BULK_ACTIONS:
        ok, why = availability(action, vms, lambda v: ALL, checkpoint_selected=True)
        assert not ok and "single VM" in why


def test_checkpoint_actions_need_a_chosen_checkpoint_and_replicas_refuse_power() -> None:
    vm = make("app01", "Running")
    for action in NEEDS_CHECKPOINT:
        ok, why = availability(action, [vm], lambda v: ALL, checkpoint_selected=False)
        assert not ok and "checkpoint" in why.lower()
    replica = make("files", "Off", replication_mode="Replica")
    ok, why = availability(Action.START, [replica], lambda v: ALL)
    assert not ok and "Replica" in why
    assert allowed_by_state(replica, Action.START)[0] is False


def test_no_selection_and_busy_vm() -> None:
    assert availability(Action.START, [], lambda v: ALL) == (False, "Select a VM first.")
    vm = make("web01", "Off")
    ok, why = availability(Action.START, [vm], lambda v: ALL, busy=lambda v: True)
    assert not ok and "still running" in why


def test_destructive_actions_say_what_is_lost() -> None:
    from console.inventory import DESTRUCTIVE_ACTIONS
    for action in DESTRUCTIVE_ACTIONS:
        assert "lost" in SPECS[action].loses or "no longer" in SPECS[action].loses


@pytest.mark.parametrize("name", ["<img src=x>", "<a href=y>web</a>", "<b>bold</b> & co",
                                  "plain\nsecond line"])
def test_tooltips_render_names_literally(name: str) -> None:
    html = tip(f"Cannot start {name}: {name} is Running.")
    doc = QTextDocument()
    doc.setHtml(html)
    assert doc.toPlainText() == f"Cannot start {name}: {name} is Running."
    assert "<img" not in html and "<a " not in html

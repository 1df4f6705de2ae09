"""Baselines in the window: each refresh learnt in a worker, a lasting deviation marked on its
cell with its sentence and told once."""
from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QIcon

from console.baseline import BaselineError, Baselines
from console.inventory import VM
from ui.baselines import BaselineWatcher
from ui.models import COL_CPU, COL_MEMORY, VMRow, VMTableModel

from .test_models import Doc, Grants

TUESDAY_10 = datetime(2026, 12, 8, 10, 0).astimezone()
WEB = "00000000-0000-4000-8000-000000000001"


def web(cpu: int) -> VM:
    return VM(host="HV01", id=WEB, name="shop-web01", state="Running", cpu_pct=cpu,
              memory_bytes=2 << 30)


def test_the_watcher_learns_in_a_worker_and_reports_what_lasted(qtbot, tmp_path: Path) -> None:
    clock = [TUESDAY_10]
    watcher = BaselineWatcher(lambda: Baselines(tmp_path / "b.sqlite", min_samples=3,
                                                sustain=timedelta(minutes=10)),
                              now=lambda: clock[0])
    seen: list[dict] = []
    watcher.alerts.connect(seen.append)
    try:
        for cpu in (10, 12, 11):
            with qtbot.waitSignal(watcher.alerts):
                watcher.observe([web(cpu)])
        for minutes in (1, 6, 11):
            clock[0] = TUESDAY_10 + timedelta(minutes=minutes)
            with qtbot.waitSignal(watcher.alerts):
                watcher.observe([web(95)])
    finally:
        watcher.close()
    assert seen[:5] == [{}] * 5  # nothing until the deviation has lasted ten minutes
    assert list(seen[5]) == [WEB] and seen[5][WEB]["cpu"].startswith("shop-web01: CPU 95 % for 10 min")


def test_an_unusable_baseline_file_is_said_once_and_learning_stops(qtbot) -> None:
    def broken() -> Baselines:
        raise BaselineError("The baseline file /x/b.sqlite cannot be used: disk I/O error.")
    watcher = BaselineWatcher(broken)
    try:
        with qtbot.waitSignal(watcher.failed) as said:
            watcher.observe([web(10)])
        assert "cannot be used" in said.args[0]
        qtbot.waitUntil(lambda: watcher._broken)
        assert watcher.observe([web(10)]) is None
    finally:
        watcher.close()


def test_the_table_marks_the_cell_and_shows_the_sentence(qtbot) -> None:
    model = VMTableModel()
    model.replace_hosts({"hv01": [VMRow(web(95), Doc("olivia", "shop", "web"), Grants())]})
    cpu, memory = model.index(0, COL_CPU), model.index(0, COL_MEMORY)
    assert model.data(cpu, Qt.ItemDataRole.DecorationRole) is None
    with qtbot.waitSignal(model.dataChanged):
        model.set_alerts({WEB: {"cpu": "shop-web01: CPU 95 % for 20 min, usually 11 %"}})
    assert isinstance(model.data(cpu, Qt.ItemDataRole.DecorationRole), QIcon)
    assert "CPU 95 % for 20 min" in model.data(cpu, Qt.ItemDataRole.ToolTipRole)
    assert model.data(memory, Qt.ItemDataRole.DecorationRole) is None
    model.set_alerts({})
    assert model.data(cpu, Qt.ItemDataRole.DecorationRole) is None


def test_the_focused_vm_gets_its_usual_range_now_and_with_each_refresh(qtbot, tmp_path: Path) -> None:
    watcher = BaselineWatcher(lambda: Baselines(tmp_path / "b.sqlite", min_samples=3),
                              now=lambda: TUESDAY_10)
    told: list[tuple[str, dict]] = []
    watcher.usual.connect(lambda vm_id, usual: told.append((vm_id, usual)))
    try:
        with qtbot.waitSignal(watcher.usual):
            watcher.focus(WEB)
        assert told[-1] == (WEB, {"cpu": None, "memory": None})  # nothing learnt yet
        for cpu in (10, 12, 11):
            with qtbot.waitSignal(watcher.usual):
                watcher.observe([web(cpu)])
        vm_id, usual = told[-1]
        assert vm_id == WEB and usual["cpu"].samples == 3 and usual["cpu"].mean == 11.0
        assert usual["memory"].mean == 2048.0 and watcher.focused == WEB
    finally:
        watcher.close()

"""The item models: Qt's model checks, native sorting, filtering, selection across refreshes."""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timezone

from PySide6.QtCore import QItemSelectionModel, Qt
from PySide6.QtWidgets import QTableView

from console.inventory import VM, Checkpoint, DvdDrive, IsoFile
from ui.models import (COL_NAME, ROW_ROLE, SORT_ROLE, VM_ROLE, CheckpointModel, VMFilterProxy,
                       VMRow, VMTableModel, activity_model, iso_model)


@dataclass(frozen=True)
class Doc:
    owner: str = ""
    application: str = ""
    tier: str = ""
    classification: str = ""


@dataclass(frozen=True)
class Grants:
    privileges: frozenset[str] = frozenset({"vm.view"})


def vm(name: str, host: str = "HV01", state: str = "Running", vid: str | None = None, **kw: object) -> VM:
    return VM(host=host, id=vid or f"00000000-0000-0000-0000-{abs(hash(name + host)) % 10**12:012d}",
              name=name, state=state, **kw)  # type: ignore[arg-type]


def rows() -> list[VMRow]:
    t = datetime(2026, 1, 1, tzinfo=timezone.utc)
    cps = (Checkpoint("c1", "parent", "Production", None, t),
           Checkpoint("c2", "child", "Standard", "c1", t.replace(day=2)),
           Checkpoint("c3", "orphan", "Standard", "gone", t.replace(day=3)))
    return [
        VMRow(vm("shop-web01", memory_bytes=4 << 30, uptime_s=90_000, cpu_pct=12),
              Doc("olivia", "shop", "web", "confidential"), Grants()),
        VMRow(vm("shop-app01", memory_bytes=16 << 30, checkpoints=cps),
              Doc("olivia", "shop", "app", "confidential"), Grants()),
        VMRow(vm("payroll-db", "HV02", "Off", memory_bytes=8 << 30), Doc("hannah", "payroll", "db"), Grants()),
        VMRow(vm("build-agent-04", "HV03", "PausedCritical", memory_bytes=2 << 30,
                 dvd_drives=(DvdDrive("SCSI", 0, 1, "D:\\ISO\\SystemRescue-11.iso"),)), None, Grants()),
        VMRow(vm("weird", "HV03", "Teleporting"), None, Grants()),
    ]


def test_vm_model_passes_qt_model_checks(qtmodeltester) -> None:
    model = VMTableModel()
    model.set_rows(rows())
    qtmodeltester.check(model)
    proxy = VMFilterProxy()
    proxy.setSourceModel(model)
    proxy.set_search("shop")
    qtmodeltester.check(proxy)


def test_checkpoint_and_list_models_pass_qt_model_checks(qtmodeltester) -> None:
    cp = CheckpointModel()
    cp.set_vm(rows()[1].vm)
    qtmodeltester.check(cp)
    isos = iso_model()
    isos.set_items([IsoFile("D:\\ISO\\a.iso", 10), IsoFile("D:\\ISO\\b.iso")])
    qtmodeltester.check(isos)
    activity = activity_model()
    activity.set_items([{"time": "2026-01-01T10:00:00Z", "action": "start", "vm_name": "x",
                         "host": "HV01", "outcome": "ok"}])
    qtmodeltester.check(activity)


def test_checkpoint_tree_puts_children_under_parents_and_orphans_on_top() -> None:
    model = CheckpointModel()
    model.set_vm(rows()[1].vm)
    top = [model.index(r, 0).data() for r in range(model.rowCount())]
    assert top == ["parent", "orphan"]  # the orphan's parent was merged away
    parent = model.index(0, 0)
    assert model.rowCount(parent) == 1 and model.index(0, 0, parent).data() == "child"
    assert model.parent(model.index(0, 0, parent)) == parent
    assert model.index(0, 1, parent).data() == "Standard"


def test_custom_roles_return_the_vm_and_native_sort_values() -> None:
    model = VMTableModel()
    model.set_rows(rows())
    index = model.index(0, 5)  # memory
    assert index.data(VM_ROLE).name == "shop-web01"
    assert index.data(SORT_ROLE) == 4 << 30
    assert index.data() == "4.0 GB"
    assert model.index(0, 3).data() == "1d 1h"
    proxy = VMFilterProxy()
    proxy.setSourceModel(model)
    proxy.sort(5, Qt.SortOrder.AscendingOrder)  # as numbers: 2 GB < 4 GB < 8 GB < 16 GB
    names = [proxy.index(r, 0).data() for r in range(proxy.rowCount())]
    assert names[:4] == ["weird", "build-agent-04", "shop-web01", "payroll-db"]


def test_state_icon_and_unknown_state_shown_raw() -> None:
    model = VMTableModel()
    model.set_rows(rows())
    weird = model.index(4, 2)
    assert weird.data() == "Teleporting"
    assert weird.data(Qt.ItemDataRole.DecorationRole) is not None
    assert "Teleporting" in weird.data(Qt.ItemDataRole.ToolTipRole)


def test_search_and_state_filter() -> None:
    model = VMTableModel()
    model.set_rows(rows())
    proxy = VMFilterProxy()
    proxy.setSourceModel(model)

    def names() -> set[str]:
        return {proxy.index(r, 0).data() for r in range(proxy.rowCount())}

    proxy.set_search("olivia")
    assert names() == {"shop-web01", "shop-app01"}
    proxy.set_search("hv02")
    assert names() == {"payroll-db"}
    proxy.set_search("payroll")  # application
    assert names() == {"payroll-db"}
    proxy.set_search("")
    proxy.set_state_group("Needs attention")
    assert names() == {"build-agent-04", "weird"}
    proxy.set_state_group("Off")
    assert names() == {"payroll-db"}


def test_selection_survives_a_refresh_keyed_by_vm(qtbot) -> None:
    model = VMTableModel()
    model.set_rows(rows())
    proxy = VMFilterProxy()
    proxy.setSourceModel(model)
    view = QTableView()
    qtbot.addWidget(view)
    view.setModel(proxy)
    view.setSortingEnabled(True)
    view.sortByColumn(COL_NAME, Qt.SortOrder.AscendingOrder)
    target = next(r for r in range(proxy.rowCount()) if proxy.index(r, 0).data() == "shop-web01")
    view.selectionModel().select(proxy.index(target, 0), QItemSelectionModel.SelectionFlag.ClearAndSelect
                                 | QItemSelectionModel.SelectionFlag.Rows)
    fresh = rows()
    # The refresh: states change, one VM is gone, a new one appears that sorts before it.
    fresh[0] = replace(fresh[0], vm=replace(fresh[0].vm, state="Off"))
    del fresh[2]
    fresh.append(VMRow(vm("aaa-new", "HV01"), None, Grants()))
    model.set_rows(fresh)
    selected = [i.data(ROW_ROLE).vm for i in view.selectionModel().selectedRows()]
    assert [v.name for v in selected] == ["shop-web01"] and selected[0].state == "Off"
    assert model.rowCount() == 5


def test_pending_shows_until_an_inventory_confirms() -> None:
    model = VMTableModel()
    model.set_rows(rows())
    key = rows()[0].vm.key
    model.mark_pending(key, "shutting down (pending)")
    assert "pending" in model.index(0, 2).data()
    model.set_rows(rows())  # still Running: not confirmed
    assert "pending" in model.index(0, 2).data()
    stopping = rows()
    stopping[0] = replace(stopping[0], vm=replace(stopping[0].vm, state="Stopping"))
    model.set_rows(stopping)  # changing, still not settled
    assert "pending" in model.index(0, 2).data()
    off = rows()
    off[0] = replace(off[0], vm=replace(off[0].vm, state="Off"))
    model.set_rows(off)
    assert model.index(0, 2).data() == "Off"

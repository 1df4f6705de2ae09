"""The item models: Qt's model checks, native sorting, filtering, selection across refreshes, and
the VM table's updates (one host's rows at a time, one update per event-loop turn, nothing of an
answer kept)."""
from __future__ import annotations

import gc
import time
import weakref
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PySide6.QtCore import QItemSelectionModel, QPersistentModelIndex, QSettings, Qt
from PySide6.QtWidgets import QTableView

from console.hosts import HostPool
from console.inventory import VM, Checkpoint, DvdDrive, HostInventory, IsoFile
from ui.models import (COL_NAME, COL_STATE, ROW_ROLE, SORT_ROLE, STATE_GROUPS, VM_ROLE, CheckpointModel,
                       VMFilterProxy, VMRow, VMTableModel, activity_model, iso_model)


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
    t = datetime(2026, 1, 1, tzinfo=UTC)
    cps = (Checkpoint("c1", "parent", "Production", None, t),
           Checkpoint("c2", "child", "Standard", "c1", t.replace(day=2)),
           Checkpoint("c3", "orphan", "Standard", "gone", t.replace(day=3)))
    return [
        VMRow(vm("shop-web01", memory_bytes=4 << 30, uptime_s=90_000, cpu_pct=12),
              Doc("olivia", "shop", "web", "confidential"), Grants()),
        VMRow(vm("shop-app01", memory_bytes=16 << 30, checkpoints=cps),
              Doc("olivia", "shop", "app", "confidential"), Grants()),
        VMRow(vm("payroll-db", "HV02", "Off", memory_bytes=8 << 30), Doc("hannah", "payroll", "db"),
              Grants()),
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
    # The orphan's parent was merged away; the VM stands on no checkpoint: "Now" on top, last.
    assert top == ["parent", "orphan", "\u25b6 Now"]
    parent = model.index(0, 0)
    assert model.rowCount(parent) == 1 and model.index(0, 0, parent).data() == "child"
    assert model.parent(model.index(0, 0, parent)) == parent
    assert model.index(0, 1, parent).data() == "Standard"


def test_now_sits_under_the_checkpoint_the_vm_stands_on(qtmodeltester) -> None:
    model = CheckpointModel()
    model.set_vm(replace(rows()[1].vm, parent_checkpoint_id="c2"))
    qtmodeltester.check(model)
    child = model.index(0, 0, model.index(0, 0))
    assert child.data() == "child" and model.rowCount(child) == 1
    now = model.index(0, 0, child)
    assert model.is_now(now) and now.data() == "\u25b6 Now" and model.checkpoint(now) is None
    assert now.data(Qt.ItemDataRole.FontRole).bold() and model.parent(now) == child
    assert model.index_of(CheckpointModel.NOW) == now and model.index_of("c2") == child
    assert [model.index(r, 0).data() for r in range(model.rowCount())] == ["parent", "orphan"]
    # A VM without checkpoints has no "Now" either, as in Hyper-V Manager.
    model.set_vm(replace(rows()[1].vm, checkpoints=()))
    assert model.rowCount() == 0 and not model.index_of(CheckpointModel.NOW).isValid()


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


def test_only_the_state_cell_paints_an_icon(qtbot) -> None:
    """A delegate asks every cell's roles through one reused span (multiData): a role the cell
    has no data for must come back empty, not hold the previous cell's icon."""
    from PySide6.QtWidgets import QStyledItemDelegate, QStyleOptionViewItem

    model = VMTableModel()
    model.set_rows(rows())
    proxy = VMFilterProxy()
    proxy.setSourceModel(model)
    delegate = QStyledItemDelegate()
    for source in (model, proxy):
        state, name = source.index(0, COL_STATE), source.index(0, COL_NAME)
        painted_state, painted_name = QStyleOptionViewItem(), QStyleOptionViewItem()
        delegate.initStyleOption(painted_state, state)  # the state cell: its icon
        delegate.initStyleOption(painted_name, name)  # then its neighbour, through the same span
        assert not painted_state.icon.isNull()
        assert painted_name.icon.isNull() and painted_name.text == name.data()


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


# --- 10,000 VMs: one host's answer touches that host's rows only -------------------------------

def host_rows(host: str, n: int, state: str = "Running", uptime: int = 0) -> list[VMRow]:
    return [VMRow(vm(f"{host.lower()}-vm{i:02d}", host, state, vid=f"{host.lower()}-{i:04d}",
                     uptime_s=uptime + i), None, Grants())
            for i in range(n)]


class Signals:
    """Counts a model's change signals."""

    NAMES = ("rowsInserted", "rowsRemoved", "rowsMoved", "dataChanged", "layoutChanged",
             "modelReset")

    def __init__(self, model) -> None:
        self.counts = dict.fromkeys(self.NAMES, 0)
        self.changed: list[tuple[int, int]] = []
        for name in self.NAMES:
            getattr(model, name).connect(lambda *args, n=name: self._seen(n, args))

    def _seen(self, name: str, args: tuple) -> None:
        self.counts[name] += 1
        if name == "dataChanged":
            self.changed.append((args[0].row(), args[1].row()))

    def nonzero(self) -> dict[str, int]:
        return {k: v for k, v in self.counts.items() if v}


def watched(*models):
    """Qt's model tester on each model for the rest of the test (a failure is a Qt warning,
    which fails the test)."""
    from PySide6.QtTest import QAbstractItemModelTester
    mode = QAbstractItemModelTester.FailureReportingMode.Warning
    return [QAbstractItemModelTester(m, mode) for m in models]


def test_a_host_answer_replaces_that_hosts_rows_only() -> None:
    model = VMTableModel()
    model.set_rows(host_rows("HV01", 4) + host_rows("HV02", 3) + host_rows("HV03", 3))
    proxy = VMFilterProxy()
    proxy.setSourceModel(model)
    proxy.sort(COL_NAME, Qt.SortOrder.DescendingOrder)
    testers = watched(model, proxy)
    others = [r for r in model.rows if r.vm.host != "HV02"]
    kept_source = {r.vm.name: QPersistentModelIndex(model.index(model.row_of(r.key), 0))
                   for r in others}
    kept_proxy = {}
    for p in range(proxy.rowCount()):
        row = proxy.index(p, 0).data(ROW_ROLE)
        if row.vm.host != "HV02":
            kept_proxy[row.vm.name] = QPersistentModelIndex(proxy.index(p, 0))
    seen = Signals(model)

    old = host_rows("HV02", 3)
    answer = [replace(old[0], vm=replace(old[0].vm, state="Off")),  # changed
              old[1],  # the same
              VMRow(vm("hv02-new", "HV02", vid="hv02-new"), None, Grants())]  # new; vm02 gone
    model.replace_hosts({"hv02": answer})

    # Other hosts' rows: the same objects, their persistent indexes still on them.
    assert all(model.row_for(r.key) is r for r in others)
    for name, index in kept_source.items():
        assert index.isValid() and index.data() == name
    for name, index in kept_proxy.items():
        assert index.isValid() and index.data() == name
    # HV02: changed in place, unchanged row kept, the gone one removed, the new one at the end.
    hv02 = [r for r in model.rows if r.vm.host == "HV02"]
    assert [r.vm.name for r in hv02] == ["hv02-vm00", "hv02-vm01", "hv02-new"]
    assert hv02[0].vm.state == "Off" and model.rows[-1].vm.name == "hv02-new"
    assert seen.nonzero() == {"rowsRemoved": 1, "dataChanged": 1, "rowsInserted": 1}
    first_hv02 = model.row_of(answer[0].key)
    assert seen.changed == [(first_hv02, first_hv02)]  # the changed row, no other host's
    # And the proxy keeps its order, the new row sorted in.
    names = [proxy.index(p, 0).data() for p in range(proxy.rowCount())]
    assert names == sorted(names, reverse=True) and "hv02-new" in names and "hv02-vm02" not in names
    del testers


def test_one_update_for_several_hosts_and_one_layout_change_in_the_proxy() -> None:
    model = VMTableModel()
    model.set_rows(host_rows("HV01", 3) + host_rows("HV02", 3) + host_rows("HV03", 3))
    proxy = VMFilterProxy()
    proxy.setSourceModel(model)
    proxy.sort(3, Qt.SortOrder.AscendingOrder)  # uptime: every answer below changes the order
    testers = watched(model, proxy)
    in_model, in_proxy = Signals(model), Signals(proxy)
    updates = []
    model.updated.connect(lambda: updates.append(1))
    model.replace_hosts({"hv01": host_rows("HV01", 4, uptime=100),
                         "hv02": host_rows("HV02", 3, uptime=50)})
    assert updates == [1]
    # HV01 and HV02 are adjacent blocks of changed rows: one dataChanged; HV01's new VM: one insert.
    assert in_model.nonzero() == {"dataChanged": 1, "rowsInserted": 1}
    assert in_proxy.counts["layoutChanged"] <= 2 and in_proxy.counts["rowsInserted"] == 0
    uptimes = [proxy.index(p, 3).data(SORT_ROLE) for p in range(proxy.rowCount())]
    assert uptimes == sorted(uptimes) and len(uptimes) == 10
    del testers


def test_sort_and_filter_never_call_data() -> None:
    """Sorting and filtering read the keys computed with each row, not data() per row."""

    class Counting(VMTableModel):
        calls = 0

        def data(self, index, role=Qt.ItemDataRole.DisplayRole):  # type: ignore[no-untyped-def]
            Counting.calls += 1
            return super().data(index, role)

    model = Counting()
    model.set_rows(rows() + host_rows("HV04", 50))
    proxy = VMFilterProxy()
    proxy.setSourceModel(model)
    testers = watched(proxy)
    Counting.calls = 0
    for column in range(model.columnCount()):
        proxy.sort(column, Qt.SortOrder.DescendingOrder)
    proxy.set_search("hv0")
    proxy.set_search("hv04 vm1")
    proxy.set_state_group("Running")
    model.replace_hosts({"hv04": host_rows("HV04", 50, uptime=7)})
    assert Counting.calls == 0
    assert proxy.rowCount() == 10  # hv04-vm10 .. hv04-vm19
    del testers


def test_rows_carry_their_sort_keys_search_text_and_state_groups() -> None:
    row = rows()[0]
    assert row.sort_keys[COL_NAME] == ("shop-web01", row.vm.id)
    assert len(row.sort_keys) == VMTableModel().columnCount()
    assert row.search_text == "shop-web01 hv01 olivia shop / web"
    groups = {name for name in STATE_GROUPS if row.state_groups & (1 << list(STATE_GROUPS).index(name))}
    assert groups == {"All states", "Running"}
    # A changed row is a new row, with its keys computed again.
    off = replace(row, vm=replace(row.vm, state="Off", name="Shop-Web09"))
    assert off.sort_keys[COL_NAME][0] == "shop-web09" and off.search_text.startswith("shop-web09")
    assert off == replace(off) and off != row


def test_filtering_keeps_the_selection_of_rows_still_shown(qtbot) -> None:
    model = VMTableModel()
    model.set_rows(rows() + host_rows("HV04", 20))
    proxy = VMFilterProxy()
    proxy.setSourceModel(model)
    view = QTableView()
    qtbot.addWidget(view)
    view.setModel(proxy)
    view.setSortingEnabled(True)
    view.sortByColumn(COL_NAME, Qt.SortOrder.AscendingOrder)
    target = next(r for r in range(proxy.rowCount()) if proxy.index(r, 0).data() == "hv04-vm13")
    view.selectionModel().select(proxy.index(target, 0), QItemSelectionModel.SelectionFlag.ClearAndSelect
                                 | QItemSelectionModel.SelectionFlag.Rows)
    proxy.set_search("vm1")
    assert [i.data() for i in view.selectionModel().selectedRows()] == ["hv04-vm13"]
    view.sortByColumn(3, Qt.SortOrder.DescendingOrder)
    assert [i.data() for i in view.selectionModel().selectedRows()] == ["hv04-vm13"]
    proxy.set_search("shop")
    assert view.selectionModel().selectedRows() == []


# --- the window: answers of one turn merged, nothing of an answer kept --------------------------

class FakeClient:
    """A host that answers from memory: fresh VM objects on each read."""

    def __init__(self, name: str, world: FakeHosts) -> None:
        self.name, self.world = name, world

    def close(self) -> None:
        pass

    def inventory(self) -> tuple[VM, ...]:
        self.world.gate.wait(10)
        self.world.answered += 1
        return tuple(vm(f"{self.name.lower()}-vm{i}", self.name, vid=f"{self.name.lower()}-{i}",
                        uptime_s=self.world.generation + i) for i in range(5))

    def read_inventory(self) -> HostInventory:
        return HostInventory(self.inventory())

    def sync_console_access(self) -> list[dict[str, str]]:
        return []  # no console access to take back on a host that answers from memory


class FakeHosts:
    def __init__(self, names: list[str]) -> None:
        import threading
        self.gate = threading.Event()
        self.gate.set()
        self.answered = 0
        self.generation = 0
        self.clients = {n.lower(): FakeClient(n, self) for n in names}
        self.slow_after = 60.0
        self.is_open = self.confirmed = True

    def client(self, host: str) -> FakeClient:
        return self.clients[host.lower()]


@pytest.fixture
def fake_window(tmp_path: Path, qtbot):  # type: ignore[no-untyped-def]
    from console.audit import AuditTrail
    from console.config import Config, HostConfig
    from lab.directory import LabDirectory
    from console.paths import LAB_DATA
    from console.policy import Policy
    from console.session import Session, Setup
    from ui.app import Services
    from ui.mainwindow import MainWindow
    from ui.tasks import Tasks

    names = ["HV01", "HV02", "HV03"]
    hosts = FakeHosts(names)
    config = Config(hosts=[HostConfig(n, f"http://{n.lower()}.invalid/wsman") for n in names])
    setup = Setup(config, Policy.load(LAB_DATA / "policy.toml"), None,  # type: ignore[arg-type]
                  AuditTrail(tmp_path / "audit.jsonl"))
    services = Services(setup,
                        settings=QSettings(str(tmp_path / "w.ini"), QSettings.Format.IniFormat))
    identity = LabDirectory().sign_in("adam", "adam-demo")
    # The pool's credential gate is open and confirmed: every host is read at once.
    # The real pool (its read workers, its timing and status) over clients that answer from memory.
    pool = HostPool([], None, max_workers=len(names), slow_after=60.0)
    pool.clients = hosts.clients  # type: ignore[assignment]
    pool.gate.accepted()
    errors: list[BaseException] = []
    tasks = Tasks(errors.append)
    window = MainWindow(services, Session(identity, setup, pool, None), tasks)  # type: ignore[arg-type]
    yield window, hosts
    window.refresh_timer.stop()
    qtbot.waitUntil(lambda: not tasks.running, timeout=10_000)
    window.close()
    window.deleteLater()
    tasks.shutdown()
    pool.close()
    qtbot.wait(10)
    assert errors == []


def test_answers_arriving_in_one_turn_are_one_update(fake_window, qtbot) -> None:
    window, hosts = fake_window
    with qtbot.waitSignal(window.refreshed, timeout=10_000):
        window.refresh()
    assert len(window.model.rows) == 15
    updates, inserted = [], []
    window.model.updated.connect(lambda: updates.append(1))
    window.model.rowsInserted.connect(lambda *_: inserted.append(1))
    hosts.gate.clear()
    hosts.answered = 0
    hosts.generation = 100  # every VM changed
    window.refresh()  # three reads, held until the gate opens
    hosts.gate.set()
    deadline = time.monotonic() + 10
    while hosts.answered < 3 or any(t.holds_result and not t._future.done()  # noqa: SLF001
                                    for t in window.tasks.running):
        assert time.monotonic() < deadline
        time.sleep(0.01)  # no event processing: all three answers are in before the next turn
    with qtbot.waitSignal(window.refreshed, timeout=10_000):
        pass
    assert updates == [1] and inserted == []
    assert {r.vm.uptime_s for r in window.model.rows} == {100 + i for i in range(5)}


def test_a_finished_refresh_keeps_no_reference_to_the_previous_answer(fake_window, qtbot) -> None:
    window, hosts = fake_window
    captured: list[weakref.ref] = []
    original = hosts.clients["hv02"].inventory

    def inventory() -> tuple[VM, ...]:
        vms = original()
        captured.extend(weakref.ref(v) for v in vms)
        return vms

    hosts.clients["hv02"].inventory = inventory  # type: ignore[method-assign]
    with qtbot.waitSignal(window.refreshed, timeout=10_000):
        window.refresh()
    first = [r.vm for r in window.model.rows if r.vm.host == "HV02"]
    assert first and all(ref() is not None for ref in captured)
    answer_refs, captured[:] = list(captured), []
    result_ref = weakref.ref(window.hosts_bar.results["hv02"])
    del first
    hosts.generation = 100  # every VM changes: the first answer's VMs are replaced
    with qtbot.waitSignal(window.refreshed, timeout=10_000):
        window.refresh()
    qtbot.wait(10)
    gc.collect()
    assert [ref() for ref in answer_refs] == [None] * len(answer_refs)
    assert result_ref() is None
    assert window.hosts_bar.results["hv02"].vms == ()  # the status bar keeps no answer

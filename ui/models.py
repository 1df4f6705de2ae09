"""Qt item models: the VM table (one model, one filter proxy), checkpoints, ISO files, activity.

Each model holds plain values from the core. `VM_ROLE` returns the backing object of a row,
`SORT_ROLE` a native value to sort by (numbers sort as numbers). Cell text goes through
`ui.text.cell`: item views never interpret markup, but control characters are still escaped.

The VM table keeps up with tens of thousands of VMs: every row carries its sort keys, its
lower-case search text and its state groups, computed once when the row is made (in the worker
that read the host); the model updates one host's rows in place through a key -> row index; and
the proxy sorts and filters in Python over those precomputed values, once per change, so Qt never
calls into Python per comparison or per row. A change of order or of the visible rows reaches
the views as one layout change (persistent indexes, hence selections, follow their rows).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cache, lru_cache
from typing import Any

from PySide6.QtCore import (QAbstractItemModel, QAbstractProxyModel, QAbstractTableModel,
                            QModelIndex, QObject, QPersistentModelIndex, QSortFilterProxyModel,
                            Qt, Signal)
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QApplication, QStyle

from console.inventory import KNOWN_STATES, TRANSITIONAL_STATES, VM, Checkpoint

from .text import cell, human_bytes, human_duration, tip

VM_ROLE = Qt.ItemDataRole.UserRole + 1
SORT_ROLE = Qt.ItemDataRole.UserRole + 2
ROW_ROLE = Qt.ItemDataRole.UserRole + 3

Index = QModelIndex | QPersistentModelIndex
Key = tuple[str, str]  # VM.key: (cluster or host, VM id)


def _doc_field(doc: Any, name: str) -> str:
    value = getattr(doc, name, "") if doc is not None else ""
    return str(value or "")


@dataclass(frozen=True, slots=True, weakref_slot=True)
class VMRow:
    """One VM as this user sees it: the host's facts, its documentation, the user's rights.

    A row never changes: a changed VM is a new row. What sorting, filtering and the model's
    index need is computed once, when the row is made (in the worker that reads the host)."""

    vm: VM
    doc: Any = None  # console.policy.VMDoc, or None for an undocumented VM
    decision: Any = None  # console.policy.Decision for the signed-in user
    pending: str | None = None  # "shut down (pending)" until an inventory confirms
    stale: str | None = None  # "HV02 not responding since 14:02": the last known row, kept
    key: Key = field(init=False, repr=False, compare=False)  # vm.key
    sort_keys: tuple[Any, ...] = field(init=False, repr=False, compare=False)  # one per column
    search_text: str = field(init=False, repr=False, compare=False)  # name, host, owner, app
    state_groups: int = field(init=False, repr=False, compare=False)  # bit i: i-th STATE_GROUPS
    texts: tuple[str, ...] | None = field(init=False, default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        vm, doc = self.vm, self.doc
        owner = _doc_field(doc, "owner")
        application = _application(doc)
        set_ = object.__setattr__
        set_(self, "key", vm.key)
        # One native value per column of COLUMNS, in their order (SORT_ROLE returns them).
        set_(self, "sort_keys", (
            (vm.name.lower(), vm.id), vm.host.lower(), vm.state, _number(vm.uptime_s),
            _number(vm.cpu_pct), _number(vm.memory_bytes), len(vm.checkpoints),
            _iso(vm).lower(), owner.lower(), application.lower(),
            _doc_field(doc, "classification").lower()))
        set_(self, "search_text", " ".join((vm.name, vm.host, owner, application)).lower())
        set_(self, "state_groups", _state_groups(vm.state))

    @property
    def privileges(self) -> frozenset[str]:
        return frozenset(getattr(self.decision, "privileges", frozenset()))

    @property
    def owner(self) -> str:
        return _doc_field(self.doc, "owner")

    @property
    def application(self) -> str:
        return _application(self.doc)

    @property
    def classification(self) -> str:
        return _doc_field(self.doc, "classification")

    @property
    def iso(self) -> str:
        return _iso(self.vm)


def _application(doc: Any) -> str:
    app, tier = _doc_field(doc, "application"), _doc_field(doc, "tier")
    return f"{app} / {tier}" if app and tier else app


def _iso(vm: VM) -> str:
    paths = [d.path for d in vm.dvd_drives if d.path]
    return ", ".join(p.replace("/", "\\").rsplit("\\", 1)[-1] for p in paths) if paths else ""


def _number(value: Any) -> int | float:
    return value if isinstance(value, (int, float)) else 0


# --- state icons ---------------------------------------------------------------------------------

STATE_GROUPS: dict[str, Callable[[str], bool]] = {
    "All states": lambda s: True,
    "Running": lambda s: s == "Running",
    "Off": lambda s: s == "Off",
    "Saved": lambda s: s in {"Saved", "FastSaved", "Hibernated"},
    "Paused": lambda s: s == "Paused",
    "Changing": lambda s: s in TRANSITIONAL_STATES,
    "Needs attention": lambda s: s.endswith("Critical") or s not in KNOWN_STATES,
}
_GROUP_BITS = {name: 1 << i for i, name in enumerate(STATE_GROUPS)}
_ALL_STATES = _GROUP_BITS["All states"]


@lru_cache(maxsize=1024)
def _state_groups(state: str) -> int:
    return sum(bit for name, bit in _GROUP_BITS.items() if STATE_GROUPS[name](state))


def state_color(state: str) -> QColor:
    if state.endswith("Critical") or state not in KNOWN_STATES:
        return QColor("#c62828")
    if state == "Running":
        return QColor("#2e7d32")
    if state in {"Paused"}:
        return QColor("#f9a825")
    if state in {"Saved", "FastSaved", "Hibernated"}:
        return QColor("#1565c0")
    if state in TRANSITIONAL_STATES:
        return QColor("#6a1b9a")
    return QColor("#757575")


@cache
def _dot(color: str) -> QIcon:
    pixmap = QPixmap(14, 14)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setBrush(QColor(color))
    painter.setPen(QColor(color).darker(130))
    painter.drawEllipse(1, 1, 12, 12)
    painter.end()
    return QIcon(pixmap)


@cache
def _alert_icon() -> QIcon:
    return QApplication.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)


def state_icon(state: str) -> QIcon:
    return _dot(state_color(state).name())


# --- the VM table --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Column:
    title: str
    text: Callable[[VMRow], str]
    align_right: bool = False


def _state_text(row: VMRow) -> str:
    status = row.vm.status
    text = row.vm.state + (f" ({status})" if status and status != "Operating normally" else "")
    if row.stale:
        text += " (last known)"
    return f"{text} — {row.pending}" if row.pending else text


# Each column's sort key is VMRow.sort_keys[column], computed once per row.
COLUMNS: tuple[Column, ...] = (
    Column("Name", lambda r: r.vm.name),
    Column("Host", lambda r: r.vm.host),
    Column("State", _state_text),
    Column("Uptime", lambda r: human_duration(r.vm.uptime_s), True),
    Column("CPU", lambda r: f"{r.vm.cpu_pct} %" if r.vm.state == "Running" else "", True),
    Column("Memory", lambda r: human_bytes(r.vm.memory_bytes) if r.vm.memory_bytes else "", True),
    Column("Checkpoints", lambda r: str(len(r.vm.checkpoints)) if r.vm.checkpoints else "", True),
    Column("ISO", lambda r: r.iso),
    Column("Owner", lambda r: r.owner),
    Column("Application", lambda r: r.application),
    Column("Classification", lambda r: r.classification),
)
COL_NAME, COL_HOST, COL_STATE = 0, 1, 2
COL_MEMORY = next(i for i, c in enumerate(COLUMNS) if c.title == "Memory")
COL_CPU = next(i for i, c in enumerate(COLUMNS) if c.title == "CPU")
# A baseline's metric -> the column its warning shows in (network has none: on the name).
ALERT_COLUMNS = {"cpu": COL_CPU, "memory": COL_MEMORY, "network": COL_NAME}


_DISPLAY = int(Qt.ItemDataRole.DisplayRole)
_DECORATION = int(Qt.ItemDataRole.DecorationRole)
_TOOLTIP = int(Qt.ItemDataRole.ToolTipRole)
_ALIGNMENT = int(Qt.ItemDataRole.TextAlignmentRole)
_FONT = int(Qt.ItemDataRole.FontRole)
_FOREGROUND = int(Qt.ItemDataRole.ForegroundRole)
_STALE_COLOR = QColor("#808080")  # readable on light and dark palettes
_VM, _SORT, _ROW = int(VM_ROLE), int(SORT_ROLE), int(ROW_ROLE)
_RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)


def _runs(numbers: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted row numbers as contiguous (first, last) runs."""
    runs: list[tuple[int, int]] = []
    for n in sorted(numbers):
        if runs and runs[-1][1] == n - 1:
            runs[-1] = (runs[-1][0], n)
        else:
            runs.append((n, n))
    return runs


class VMTableModel(QAbstractTableModel):
    """Every VM the user may view, in the order they first came. A host's answer replaces that
    host's rows only, in place and keyed by VM.key (a key -> row index finds them), so other
    hosts' rows, selections and persistent indexes are untouched. `updated` ends every write:
    the proxy sorts and filters once per write, not once per signal."""

    updated = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[VMRow] = []
        self._index: dict[Key, int] = {}
        self._by_host: dict[str, set[Key]] = {}  # lower-case host -> keys of its rows
        self._pending: dict[Key, tuple[str, str]] = {}  # key -> (label, state then)
        self._alerts: dict[str, dict[str, str]] = {}  # VM id -> metric -> deviation sentence

    # -- reading
    def rowCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole \
                and 0 <= section < len(COLUMNS):
            return COLUMNS[section].title
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        return self.cell(index.row(), index.column(), role)

    def cell(self, row_number: int, column: int, role: int = _DISPLAY) -> Any:
        """data() by row and column number (the proxy calls this directly)."""
        if not (0 <= row_number < len(self._rows) and 0 <= column < len(COLUMNS)):
            return None
        return self._value(self._rows[row_number], column, role)

    def fill_roles(self, row_number: int, column: int, roles: Any) -> None:
        """multiData() by row and column number: every role a delegate asks for, in one call."""
        if not (0 <= row_number < len(self._rows) and 0 <= column < len(COLUMNS)):
            return
        row, value = self._rows[row_number], self._value
        for i in range(len(roles)):
            role_data = roles[i]
            data = value(row, column, role_data.role())
            # A view reuses one span for every cell it paints: a role without data here must be
            # cleared, or the previous cell's (the state's icon) shows in this one.
            if data is None:
                role_data.clearData()
            else:
                role_data.setData(data)

    def multiData(self, index: Index, roles: Any) -> None:
        if index.isValid():
            self.fill_roles(index.row(), index.column(), roles)

    def _value(self, row: VMRow, column: int, role: int) -> Any:
        if role == _DISPLAY:
            texts = row.texts
            if texts is None:  # the first time the row is shown
                texts = tuple(cell(c.text(row)) for c in COLUMNS)
                object.__setattr__(row, "texts", texts)
            return texts[column]
        if role == _ROW:
            return row
        if role == _VM:
            return row.vm
        if role == _SORT:
            return row.sort_keys[column]
        if role == _DECORATION:
            if column == COL_STATE:
                return state_icon(row.vm.state)
            return _alert_icon() if self._alert(row, column) else None
        if role == _TOOLTIP:
            alert = self._alert(row, column)
            return tip(alert, "Far from its usual range at this hour of the week, for a while now "
                       "(baselines of this workstation).") if alert else self._tooltip(row, column)
        if role == _ALIGNMENT:
            return _RIGHT if COLUMNS[column].align_right else None
        if role == _FOREGROUND and row.stale:
            return _STALE_COLOR
        if role == _FONT and row.pending:
            font = QFont()
            font.setItalic(True)
            return font
        return None

    def _tooltip(self, row: VMRow, column: int) -> str:
        if row.stale:
            return tip(f"{row.vm.name}: {row.stale}", f"Last known state: {row.vm.state}. The row "
                       "is kept as the host last reported it until the host answers again.")
        if column == COL_STATE and not row.vm.known_state:
            return tip(f"Unknown state reported by the host: {row.vm.state}")
        if column == COL_MEMORY and row.vm.memory_bytes:
            # Both from the host's summary of its VMs (host.toml [details] summary_properties).
            return tip(f"Assigned: {human_bytes(row.vm.memory_bytes)}",
                       f"Demand: {human_bytes(row.vm.memory_demand_bytes)} (what the guest asks "
                       f"for now)" if row.vm.memory_demand_bytes else "Demand: not reported")
        if column == COL_NAME:
            lines = [row.vm.name, f"VM id {row.vm.id}", f"on {row.vm.host}"]
            if row.vm.is_replica:
                lines.append(f"Replica copy ({row.vm.replication_mode})")
            return tip(*lines)
        return ""

    def _alert(self, row: VMRow, column: int) -> str | None:
        metrics = self._alerts.get(row.vm.id)
        if not metrics:
            return None
        return next((text for metric, text in metrics.items()
                     if ALERT_COLUMNS.get(metric) == column), None)

    def set_alerts(self, alerts: Mapping[str, Mapping[str, str]]) -> None:
        """The deviations of the person's baselines that lasted, by VM id and metric: each shown
        with a warning on its cell and its sentence as the cell's tooltip."""
        changed = set(self._alerts) ^ set(alerts) | {k for k in alerts if self._alerts.get(k) != alerts[k]}
        self._alerts = {k: dict(v) for k, v in alerts.items()}
        rows = [i for i, r in enumerate(self._rows) if r.vm.id in changed]
        for first, last in _runs(rows):
            self.dataChanged.emit(self.index(first, COL_NAME), self.index(last, COL_MEMORY),
                                  [_DECORATION, _TOOLTIP])

    @property
    def rows(self) -> list[VMRow]:
        return list(self._rows)

    def keys(self) -> set[Key]:
        return set(self._index)

    def row_at(self, row_number: int) -> VMRow:
        return self._rows[row_number]

    def row_of(self, key: Key) -> int:
        return self._index.get(key, -1)

    def row_for(self, key: Key) -> VMRow | None:
        i = self._index.get(key)
        return None if i is None else self._rows[i]

    def vm(self, key: Key) -> VM | None:
        i = self.row_of(key)
        return self._rows[i].vm if i >= 0 else None

    # -- writing
    def set_rows(self, rows: Iterable[VMRow]) -> None:
        """Every row at once: rows of hosts not among them go."""
        answers: dict[str, list[VMRow]] = {host: [] for host in self._by_host}
        for row in rows:
            answers.setdefault(row.vm.host.lower(), []).append(row)
        self.replace_hosts(answers)

    def replace_hosts(self, answers: Mapping[str, Iterable[VMRow]]) -> None:
        """Each named host's rows become the given ones (a host's answer); other hosts' rows are
        untouched. Several hosts at once make one update: their removals, one dataChanged per
        run of changed rows, one insertion at the end, then `updated`."""
        incoming: dict[Key, VMRow] = {}
        for rows in answers.values():
            for row in rows:
                incoming[row.key] = row
        gone = [self._index[key] for host in answers
                for key in self._by_host.get(host.lower(), ()) if key not in incoming]
        if gone:
            self._remove(gone)
        changed: set[int] = set()
        kept: list[int] = []  # rows of the answering hosts that stay (changed or not)
        added: list[VMRow] = []
        for key, row in incoming.items():
            row = self._with_pending(row)
            i = self._index.get(key)
            if i is None:
                added.append(row)
                continue
            kept.append(i)
            old = self._rows[i]
            if row is old or row == old:
                continue
            self._rows[i] = row
            changed.add(i)
            if old.vm.host != row.vm.host:  # a clustered VM moved to another node
                self._by_host.get(old.vm.host.lower(), set()).discard(key)
                self._by_host.setdefault(row.vm.host.lower(), set()).add(key)
        if changed:
            # One dataChanged per block of the answering hosts' rows, from its first changed
            # row to its last: never over another host's rows, and not one per changed row.
            for first, last in _runs(kept):
                inside = [i for i in range(first, last + 1) if i in changed]
                if inside:
                    self.dataChanged.emit(self.index(inside[0], 0),
                                          self.index(inside[-1], len(COLUMNS) - 1))
        if added:
            start = len(self._rows)
            self.beginInsertRows(QModelIndex(), start, start + len(added) - 1)
            for i, row in enumerate(added, start):
                self._index[row.key] = i
                self._by_host.setdefault(row.vm.host.lower(), set()).add(row.key)
            self._rows.extend(added)
            self.endInsertRows()
        self.updated.emit()

    def _remove(self, row_numbers: list[int]) -> None:
        for first, last in reversed(_runs(row_numbers)):
            self.beginRemoveRows(QModelIndex(), first, last)
            for row in self._rows[first:last + 1]:
                key = row.key
                del self._index[key]
                keys = self._by_host.get(row.vm.host.lower())
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del self._by_host[row.vm.host.lower()]
            del self._rows[first:last + 1]
            for i in range(first, len(self._rows)):
                self._index[self._rows[i].key] = i
            self.endRemoveRows()

    def rows_of(self, host: str) -> list[VMRow]:
        return [self._rows[self._index[key]] for key in self._by_host.get(host.lower(), ())]

    def mark_host_stale(self, host: str, reason: str) -> int:
        """Keep a host's rows as it last reported them, greyed and marked with `reason`, while it
        does not answer; its next answer replaces them. Returns how many rows were marked."""
        rows = [r if r.stale == reason else replace(r, stale=reason) for r in self.rows_of(host)]
        if rows:
            self.replace_hosts({host.lower(): rows})
        return len(rows)

    def remove_host(self, host: str) -> None:
        self.replace_hosts({host.lower(): []})

    def mark_pending(self, key: Key, label: str) -> None:
        """An action's outcome is not confirmed yet: shown until an inventory shows a settled change."""
        i = self.row_of(key)
        if i < 0:
            return
        self._pending[key] = (label, self._rows[i].vm.state)
        self._rows[i] = replace(self._rows[i], pending=label)
        self._row_changed(i)

    def update_vm(self, vm: VM) -> None:
        """A fresher view of one VM (e.g. the state an action returned)."""
        i = self.row_of(vm.key)
        if i >= 0:
            self._rows[i] = self._with_pending(replace(self._rows[i], vm=vm))
            self._row_changed(i)

    def _with_pending(self, row: VMRow) -> VMRow:
        mark = self._pending.get(row.key)
        if mark is None:
            return replace(row, pending=None) if row.pending else row
        label, state_then = mark
        settled = row.vm.state != state_then and row.vm.state not in TRANSITIONAL_STATES
        if settled:
            del self._pending[row.key]
            return replace(row, pending=None) if row.pending else row
        return row if row.pending == label else replace(row, pending=label)

    def _row_changed(self, i: int) -> None:
        self.dataChanged.emit(self.index(i, 0), self.index(i, len(COLUMNS) - 1))
        self.updated.emit()


class SortProxy(QSortFilterProxyModel):
    """Sorts small lists by SORT_ROLE with Python's own ordering (tuples, datetimes), which Qt
    cannot compare (a Python call per comparison: for the VM table see VMFilterProxy)."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.setSortRole(SORT_ROLE)

    def lessThan(self, left: Index, right: Index) -> bool:
        a, b = left.data(SORT_ROLE), right.data(SORT_ROLE)
        try:
            return bool(a < b)
        except TypeError:
            return str(a) < str(b)


def _comparable(value: Any) -> tuple[int, Any]:
    """A sort key for a column whose values Python cannot compare with each other."""
    return (0, value) if isinstance(value, (int, float)) else (1, str(value))


_SORT_HINT = QAbstractItemModel.LayoutChangeHint.VerticalSortHint
_WITH_HINT = "QList<QPersistentModelIndex>,QAbstractItemModel::LayoutChangeHint"  # the signals' overload
_FLAGS = Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemNeverHasChildren
_NO_FLAGS = Qt.ItemFlag.NoItemFlags
_VIEW_UPDATE_CELLS = 200  # QAbstractItemView: beyond this many cells a dataChanged repaints all
_MAX_CHANGED_PIECES = 500  # beyond that many dataChanged, one over their span


class VMFilterProxy(QAbstractProxyModel):
    """Search (name, host, owner, application), state filter and sort over the one VM model.

    It holds the rows in sort order (`_order`, every source row) and the visible ones (`_rows`,
    proxy row -> source row; `_pos` the other way). Sorting and filtering run in Python over the
    rows' precomputed keys, once per change: a sort, a keystroke, a write of the model (its
    `updated` signal). A changed order or set of visible rows is one layout change; rows whose
    data changed in place are a dataChanged."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._search = ""
        self._words: tuple[str, ...] = ()
        self._state_group = "All states"
        # The group chosen in the groups pane (ui/groups.py): a host, cluster or application.
        self._scope: Callable[[VMRow], bool] | None = None
        self._sort_column = -1
        self._sort_order = Qt.SortOrder.AscendingOrder
        self._sorted_once = False
        self._order: list[int] = []  # every source row, in sort order
        self._keys: list[Any] = []  # the sort column's key of every source row (when sorted)
        self._rows: list[int] = []  # proxy row -> source row
        self._pos: list[int] = []  # source row -> proxy row, -1 when filtered out
        self._resort = False  # a sort key changed: re-sort at the end of the model's write
        self._refilter = False  # a row's search text or state changed: filter again
        self._saved: list[tuple[QModelIndex, QPersistentModelIndex]] = []
        self._source: VMTableModel | None = None

    # -- the source
    def setSourceModel(self, model: QAbstractItemModel | None) -> None:
        if model is not None and not isinstance(model, VMTableModel):
            raise TypeError("VMFilterProxy shows a VMTableModel")
        self.beginResetModel()
        old = self._source
        if old is not None:
            for signal, slot in self._wiring(old):
                signal.disconnect(slot)
        super().setSourceModel(model)  # type: ignore[arg-type]  # None: no source, as Qt allows
        self._source = model
        if model is not None:
            for signal, slot in self._wiring(model):
                signal.connect(slot)
        self._rebuild()
        self.endResetModel()

    def _wiring(self, model: VMTableModel) -> list[tuple[Any, Callable[..., None]]]:
        return [
            (model.rowsAboutToBeInserted, self._begin_layout),
            (model.rowsInserted, self._rows_inserted),
            (model.rowsAboutToBeRemoved, self._begin_layout),
            (model.rowsRemoved, self._rows_removed),
            (model.rowsAboutToBeMoved, self._begin_layout),
            (model.rowsMoved, self._rebuild_layout),
            (model.layoutAboutToBeChanged, self._begin_layout),
            (model.layoutChanged, self._rebuild_layout),
            (model.modelAboutToBeReset, self.beginResetModel),
            (model.modelReset, self._reset),
            (model.dataChanged, self._data_changed),
            (model.headerDataChanged, self._header_changed),
            (model.updated, self._settle),
        ]

    def _source_rows(self) -> list[VMRow]:
        return self._source._rows if self._source is not None else []

    # -- the mapping
    def index(self, row: int, column: int, parent: Index = QModelIndex()) -> QModelIndex:
        if parent.isValid() or not (0 <= row < len(self._rows) and 0 <= column < len(COLUMNS)):
            return QModelIndex()
        return self.createIndex(row, column)

    def parent(self, child: Index | None = None) -> Any:
        if child is None:
            return QObject.parent(self)
        return QModelIndex()

    def sibling(self, row: int, column: int, index: Index) -> QModelIndex:
        return self.index(row, column)

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() or self._source is None else len(COLUMNS)

    def hasChildren(self, parent: Index = QModelIndex()) -> bool:
        return not parent.isValid() and bool(self._rows) and self._source is not None

    def mapToSource(self, proxy_index: Index) -> QModelIndex:
        if self._source is None or not proxy_index.isValid() \
                or not 0 <= proxy_index.row() < len(self._rows):
            return QModelIndex()
        return self._source.index(self._rows[proxy_index.row()], proxy_index.column())

    def mapFromSource(self, source_index: Index) -> QModelIndex:
        if not source_index.isValid() or not 0 <= source_index.row() < len(self._pos):
            return QModelIndex()
        row = self._pos[source_index.row()]
        return self.createIndex(row, source_index.column()) if row >= 0 else QModelIndex()

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if self._source is None or not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        return self._source.cell(self._rows[index.row()], index.column(), role)

    def multiData(self, index: Index, roles: Any) -> None:
        """Every role a delegate asks for a cell in one call (rather than one data() each)."""
        if self._source is not None and index.isValid() and 0 <= index.row() < len(self._rows):
            self._source.fill_roles(self._rows[index.row()], index.column(), roles)

    def flags(self, index: Index) -> Qt.ItemFlag:
        return _FLAGS if index.isValid() else _NO_FLAGS

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if self._source is None:
            return None
        if orientation == Qt.Orientation.Vertical:
            if not 0 <= section < len(self._rows):
                return None
            section = self._rows[section]
        return self._source.headerData(section, orientation, role)

    # -- sort and filter
    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        column = column if 0 <= column < len(COLUMNS) else -1
        if (column, order) == (self._sort_column, self._sort_order) and self._sorted_once:
            return  # the order is kept up to date (QTableView.sortByColumn asks twice)
        self._sort_column, self._sort_order, self._sorted_once = column, order, True
        self._apply(self._sorted(), None)

    def sortColumn(self) -> int:
        return self._sort_column

    def sortOrder(self) -> Qt.SortOrder:
        return self._sort_order

    def set_search(self, text: str) -> None:
        words = tuple(text.strip().lower().split())
        self._search = " ".join(words)
        if words == self._words:
            return
        # Typing on narrows the list: the new rows are among those shown now.
        narrower = all(any(old in new for new in words) for old in self._words)
        self._words = words
        self._apply(self._order, self._rows if narrower and not self._refilter else None)

    def set_scope(self, accepts: Callable[[VMRow], bool] | None) -> None:
        """Show only the rows of one group (None: every row)."""
        if accepts is not self._scope:
            self._scope = accepts
            self._apply(self._order, None)

    def set_state_group(self, group: str) -> None:
        if group not in STATE_GROUPS:
            raise ValueError(f"unknown state group {group!r}")
        if group != self._state_group:
            self._state_group = group
            self._apply(self._order, None)

    def _sorted(self) -> list[int]:
        rows = self._source_rows()
        column = self._sort_column
        if column < 0:
            self._keys = []
            return list(range(len(rows)))
        self._keys = [row.sort_keys[column] for row in rows]
        return self._sort(list(range(len(rows))))

    def _sort(self, order: list[int]) -> list[int]:
        """`order` sorted by the keys (stable: equal keys keep their order)."""
        if self._sort_column < 0:
            return sorted(order)
        reverse = self._sort_order == Qt.SortOrder.DescendingOrder
        try:
            return sorted(order, key=self._keys.__getitem__, reverse=reverse)
        except TypeError:
            safe = [_comparable(k) for k in self._keys]
            return sorted(order, key=safe.__getitem__, reverse=reverse)

    def _accepted(self, candidates: list[int]) -> list[int]:
        rows = self._source_rows()
        scope = self._scope
        if scope is not None:
            candidates = [i for i in candidates if scope(rows[i])]
        bit, words = _GROUP_BITS[self._state_group], self._words
        if bit == _ALL_STATES:
            if not words:
                return list(candidates)
            if len(words) == 1:
                word = words[0]
                return [i for i in candidates if word in rows[i].search_text]
            return [i for i in candidates if all(w in rows[i].search_text for w in words)]
        if not words:
            return [i for i in candidates if rows[i].state_groups & bit]
        return [i for i in candidates
                if rows[i].state_groups & bit and all(w in rows[i].search_text for w in words)]

    def _apply(self, order: list[int], narrowed_from: list[int] | None,
               same_filter: bool = False) -> None:
        """Show the accepted rows of `order` (of `narrowed_from` when the filter only narrowed;
        the rows shown now, in the new order, when only the order changed): one layout change,
        or nothing when the visible rows stay the same."""
        if same_filter:
            pos = self._pos
            visible = [i for i in order if pos[i] >= 0]
        else:
            visible = self._accepted(order if narrowed_from is None else narrowed_from)
            self._refilter = False
        if visible == self._rows:
            self._order = order
            return
        self._begin_layout()
        self._order = order
        self._show(visible)
        self._end_layout()

    def _show(self, visible: list[int]) -> None:
        self._rows = visible
        pos = [-1] * len(self._source_rows())
        for proxy_row, source_row in enumerate(visible):
            pos[source_row] = proxy_row
        self._pos = pos

    def _rebuild(self) -> None:
        """Everything again from the source, without signals."""
        self._order = self._sorted()
        self._resort = self._refilter = False
        self._show(self._accepted(self._order))

    # -- following the source
    def _begin_layout(self, *_: Any) -> None:
        """Before the source or the mapping changes: remember where every persistent index of
        ours points in the source (source persistent indexes follow inserts and removals)."""
        self.layoutAboutToBeChanged[_WITH_HINT].emit([], _SORT_HINT)  # type: ignore[index]
        source = self._source
        saved = []
        for index in self.persistentIndexList():
            row = index.row()
            target = source.index(self._rows[row], index.column()) \
                if source is not None and 0 <= row < len(self._rows) else QModelIndex()
            saved.append((index, QPersistentModelIndex(target)))
        self._saved = saved

    def _end_layout(self) -> None:
        saved, self._saved = self._saved, []
        if saved:
            self.changePersistentIndexList([old for old, _ in saved],
                                           [self.mapFromSource(target) for _, target in saved])
        self.layoutChanged[_WITH_HINT].emit([], _SORT_HINT)  # type: ignore[index]

    def _rebuild_layout(self, *_: Any) -> None:
        self._rebuild()
        self._end_layout()

    def _rows_inserted(self, parent: QModelIndex, first: int, last: int) -> None:
        count = last - first + 1
        rows = self._source_rows()
        order = [i + count if i >= first else i for i in self._order]
        if self._sort_column >= 0:
            self._keys[first:first] = [rows[i].sort_keys[self._sort_column]
                                       for i in range(first, last + 1)]
        # Timsort takes the sorted run and the new rows in about linear time.
        self._order = self._sort(order + list(range(first, last + 1)))
        self._resort = self._refilter = False
        self._show(self._accepted(self._order))
        self._end_layout()

    def _rows_removed(self, parent: QModelIndex, first: int, last: int) -> None:
        count = last - first + 1

        def kept(numbers: list[int]) -> list[int]:
            return [i if i < first else i - count for i in numbers if not first <= i <= last]

        self._order = kept(self._order)
        del self._keys[first:last + 1]
        self._show(kept(self._rows))
        self._end_layout()

    def _reset(self) -> None:
        self._rebuild()
        self.endResetModel()

    def _header_changed(self, orientation: Qt.Orientation, first: int, last: int) -> None:
        if orientation == Qt.Orientation.Horizontal:
            self.headerDataChanged.emit(orientation, first, last)

    def _data_changed(self, top: QModelIndex, bottom: QModelIndex, roles: Sequence[int] = ()) -> None:
        rows, pos, keys = self._source_rows(), self._pos, self._keys
        column, bit, words = self._sort_column, _GROUP_BITS[self._state_group], self._words
        shown = []
        for i in range(top.row(), bottom.row() + 1):
            row = rows[i]
            if column >= 0 and keys[i] != row.sort_keys[column]:
                keys[i] = row.sort_keys[column]
                self._resort = True
            accepted = bool(row.state_groups & bit) and all(w in row.search_text for w in words) \
                and (self._scope is None or self._scope(row))
            if accepted != (pos[i] >= 0):
                self._refilter = True
            if pos[i] >= 0:
                shown.append(pos[i])
        # Views repaint just the changed cells in view for a dataChanged over at most 200
        # cells, and their whole viewport for a bigger one: runs of changed rows go in pieces
        # that small, so changes out of view repaint nothing (unless there are very many).
        step = max(1, _VIEW_UPDATE_CELLS // len(COLUMNS))
        pieces = [(start, min(last, start + step - 1))
                  for first, last in _runs(shown) for start in range(first, last + 1, step)]
        if len(pieces) > _MAX_CHANGED_PIECES:
            pieces = [(pieces[0][0], pieces[-1][1])]
        last_column = len(COLUMNS) - 1
        for first, last in pieces:
            self.dataChanged.emit(self.createIndex(first, 0), self.createIndex(last, last_column),
                                  list(roles))

    def _settle(self) -> None:
        """The end of a write of the model: sort and filter again if the write asked for it."""
        if self._resort:
            self._resort = False
            self._apply(self._sort(self._order), None, same_filter=not self._refilter)
        elif self._refilter:
            self._apply(self._order, None)


# --- checkpoints ---------------------------------------------------------------------------------

class CheckpointModel(QAbstractItemModel):
    """The checkpoint tree of one VM (parents above children), for a QTreeView, with a "Now" row
    under the checkpoint the VM stands on, as Hyper-V Manager shows it. No size per checkpoint:
    the host reports none (inventory.ps1 says why); the details show the VM's total."""

    HEADERS = ("Checkpoint", "Type", "Created")
    NOW = "now"  # the key of the "Now" row; every other key is a checkpoint id (a GUID)

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._vm: VM | None = None
        self._children: dict[str | None, list[str]] = {}
        self._by_id: dict[str, Checkpoint] = {}
        self._parent_of: dict[str, str | None] = {}

    def set_vm(self, vm: VM | None) -> None:
        self.beginResetModel()
        self._vm = vm
        self._by_id = {c.id: c for c in vm.checkpoints} if vm else {}
        self._children = {}
        self._parent_of = {}
        ordered = sorted(vm.checkpoints if vm else (),
                         key=lambda c: (c.created or datetime.min, c.name))
        for c in ordered:
            # A checkpoint whose parent is missing (merged away) shows at the top level.
            parent = c.parent_id if c.parent_id in self._by_id else None
            self._children.setdefault(parent, []).append(c.id)
            self._parent_of[c.id] = parent
        if vm is not None and vm.checkpoints:
            # "Now" comes last under the checkpoint the VM stands on (top level: on none).
            now_parent = vm.parent_checkpoint_id if vm.parent_checkpoint_id in self._by_id else None
            self._children.setdefault(now_parent, []).append(self.NOW)
            self._parent_of[self.NOW] = now_parent
        self.endResetModel()

    def checkpoint(self, index: Index) -> Checkpoint | None:
        return self._by_id.get(index.internalPointer()) if index.isValid() else None

    def is_now(self, index: Index) -> bool:
        return index.isValid() and index.internalPointer() == self.NOW

    def index_of(self, key: str, column: int = 0) -> QModelIndex:
        """The row of a checkpoint id, or of NOW; invalid when there is none."""
        if key not in self._parent_of:
            return QModelIndex()
        return self.createIndex(self._children[self._parent_of[key]].index(key), column,
                                self._key_object(key))

    def _key_object(self, key: str) -> str:
        # The index holds a pointer to a key string that lives as long as the model's tables.
        return self.NOW if key == self.NOW else self._by_id[key].id

    def index(self, row: int, column: int, parent: Index = QModelIndex()) -> QModelIndex:
        if column < 0 or column >= len(self.HEADERS):
            return QModelIndex()
        key = parent.internalPointer() if parent.isValid() else None
        kids = self._children.get(key, [])
        if not 0 <= row < len(kids):
            return QModelIndex()
        return self.createIndex(row, column, self._key_object(kids[row]))

    def parent(self, index: Index = QModelIndex()) -> QModelIndex:  # type: ignore[override]
        if not index.isValid():
            return QModelIndex()
        parent_key = self._parent_of.get(index.internalPointer())
        return QModelIndex() if parent_key is None else self.index_of(parent_key)

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        if parent.isValid() and parent.column() != 0:
            return 0
        return len(self._children.get(parent.internalPointer() if parent.isValid() else None, []))

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return len(self.HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole \
                and 0 <= section < len(self.HEADERS):
            return self.HEADERS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if self.is_now(index):
            return self._now_data(index, role)
        c = self.checkpoint(index)
        if c is None:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return cell([c.name, c.kind + (", automatic" if c.automatic else ""),
                         c.created.strftime("%Y-%m-%d %H:%M") if c.created else ""][index.column()])
        if role == VM_ROLE:
            return c
        if role == SORT_ROLE:
            return [c.name.lower(), c.kind, c.created or datetime.min][index.column()]
        if role == Qt.ItemDataRole.ToolTipRole and index.column() == 0:
            return tip(c.name, f"Checkpoint id {c.id}")
        return None

    def _now_data(self, index: Index, role: int) -> Any:
        vm = self._vm
        assert vm is not None
        if role == Qt.ItemDataRole.DisplayRole:
            return ["\u25b6 Now", "", ""][index.column()]
        if role == Qt.ItemDataRole.FontRole and index.column() == 0:
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.ToolTipRole and index.column() == 0:
            on = vm.parent_checkpoint
            return tip("Now", f"Where {vm.name} stands: " + (
                f"its changes since “{on.name}” (Revert applies that checkpoint again)" if on
                else "on no checkpoint"))
        if role == Qt.ItemDataRole.AccessibleTextRole and index.column() == 0:
            return f"Now: where {vm.name} stands"
        return None


# --- simple lists (ISO files, activity) ------------------------------------------------------------

class ListTableModel(QAbstractTableModel):
    """A read-only table of values, one per row, described by (title, text, sort) columns."""

    def __init__(self, columns: Sequence[tuple[str, Callable[[Any], str], Callable[[Any], Any]]],
                 parent: Any = None) -> None:
        super().__init__(parent)
        self._columns = list(columns)
        self._items: list[Any] = []

    def set_items(self, items: Iterable[Any]) -> None:
        self.beginResetModel()
        self._items = list(items)
        self.endResetModel()

    @property
    def items(self) -> list[Any]:
        return list(self._items)

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._items)

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._columns)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole \
                and 0 <= section < len(self._columns):
            return self._columns[section][0]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._items):
            return None
        item = self._items[index.row()]
        _, text, sort = self._columns[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return cell(text(item))
        if role == VM_ROLE:
            return item
        if role == SORT_ROLE:
            return sort(item)
        if role == Qt.ItemDataRole.ToolTipRole:
            return tip(text(item))
        return None


def iso_model(parent: Any = None) -> ListTableModel:
    return ListTableModel([
        ("ISO file", lambda i: i.name, lambda i: i.name.lower()),
        ("Size", lambda i: human_bytes(i.size_bytes) if i.size_bytes else "", lambda i: i.size_bytes),
        ("Path", lambda i: i.path, lambda i: i.path.lower()),
    ], parent)


def _field(record: Any, *names: str) -> Any:
    for name in names:
        value = record.get(name) if isinstance(record, dict) else getattr(record, name, None)
        if value not in (None, ""):
            return value
    return ""


def _when(record: Any) -> str:
    value = _field(record, "time", "when", "timestamp")
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if isinstance(value, datetime):
        return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def _vm_text(record: Any) -> str:
    name, host = _field(record, "vm_name", "vm"), _field(record, "host")
    return f"{name} on {host}" if name and host else str(name or host)


def activity_model(parent: Any = None) -> ListTableModel:
    """The user's own audit records (newest first is the caller's order)."""
    return ListTableModel([
        ("When", _when, lambda r: str(_when(r))),
        ("Action", lambda r: str(_field(r, "action")), lambda r: str(_field(r, "action"))),
        ("VM", _vm_text, lambda r: _vm_text(r).lower()),
        # A decision record (allowed/denied, with the reason) precedes each outcome record.
        ("Outcome", lambda r: str(_field(r, "outcome", "decision")),
         lambda r: str(_field(r, "outcome", "decision"))),
        ("Details", lambda r: str(_field(r, "error", "reason")),
         lambda r: str(_field(r, "error", "reason"))),
    ], parent)


__all__ = ["VM_ROLE", "SORT_ROLE", "ROW_ROLE", "VMRow", "VMTableModel", "VMFilterProxy", "SortProxy",
           "CheckpointModel", "ListTableModel", "iso_model", "activity_model", "STATE_GROUPS",
           "COLUMNS", "state_icon"]

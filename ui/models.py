"""Qt item models: the VM table (one model, one filter proxy), checkpoints, ISO files, activity.

Each model holds plain values from the core. `VM_ROLE` returns the backing object of a row,
`SORT_ROLE` a native value to sort by (numbers sort as numbers). Cell text goes through
`ui.text.cell`: item views never interpret markup, but control characters are still escaped.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cache
from typing import Any

from PySide6.QtCore import (QAbstractItemModel, QAbstractTableModel, QModelIndex,
                            QPersistentModelIndex, QSortFilterProxyModel, Qt)
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPixmap

from console.inventory import KNOWN_STATES, TRANSITIONAL_STATES, VM, Checkpoint

from .text import cell, human_bytes, human_duration, tip

VM_ROLE = Qt.ItemDataRole.UserRole + 1
SORT_ROLE = Qt.ItemDataRole.UserRole + 2
ROW_ROLE = Qt.ItemDataRole.UserRole + 3

Index = QModelIndex | QPersistentModelIndex


def _doc_field(doc: Any, name: str) -> str:
    value = getattr(doc, name, "") if doc is not None else ""
    return str(value or "")


@dataclass(frozen=True)
class VMRow:
    """One VM as this user sees it: the host's facts, its documentation, the user's rights."""

    vm: VM
    doc: Any = None  # console.policy.VMDoc, or None for an undocumented VM
    decision: Any = None  # console.policy.Decision for the signed-in user
    pending: str | None = None  # "shut down (pending)" until an inventory confirms

    @property
    def privileges(self) -> frozenset[str]:
        return frozenset(getattr(self.decision, "privileges", frozenset()))

    @property
    def owner(self) -> str:
        return _doc_field(self.doc, "owner")

    @property
    def application(self) -> str:
        app, tier = _doc_field(self.doc, "application"), _doc_field(self.doc, "tier")
        return f"{app} / {tier}" if app and tier else app

    @property
    def classification(self) -> str:
        return _doc_field(self.doc, "classification")

    @property
    def iso(self) -> str:
        paths = [d.path for d in self.vm.dvd_drives if d.path]
        return ", ".join(p.replace("/", "\\").rsplit("\\", 1)[-1] for p in paths)


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


def state_icon(state: str) -> QIcon:
    return _dot(state_color(state).name())


# --- the VM table --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Column:
    title: str
    text: Callable[[VMRow], str]
    sort: Callable[[VMRow], Any]
    align_right: bool = False


def _state_text(row: VMRow) -> str:
    text = row.vm.state + (f" ({row.vm.status})" if row.vm.status and row.vm.status != "Operating normally" else "")
    return f"{text} — {row.pending}" if row.pending else text


COLUMNS: tuple[Column, ...] = (
    Column("Name", lambda r: r.vm.name, lambda r: (r.vm.name.lower(), r.vm.id)),
    Column("Host", lambda r: r.vm.host, lambda r: r.vm.host.lower()),
    Column("State", _state_text, lambda r: r.vm.state),
    Column("Uptime", lambda r: human_duration(r.vm.uptime_s), lambda r: r.vm.uptime_s, True),
    Column("CPU", lambda r: f"{r.vm.cpu_pct} %" if r.vm.state == "Running" else "",
           lambda r: r.vm.cpu_pct, True),
    Column("Memory", lambda r: human_bytes(r.vm.memory_bytes) if r.vm.memory_bytes else "",
           lambda r: r.vm.memory_bytes, True),
    Column("Checkpoints", lambda r: str(len(r.vm.checkpoints)) if r.vm.checkpoints else "",
           lambda r: len(r.vm.checkpoints), True),
    Column("ISO", lambda r: r.iso, lambda r: r.iso.lower()),
    Column("Owner", lambda r: r.owner, lambda r: r.owner.lower()),
    Column("Application", lambda r: r.application, lambda r: r.application.lower()),
    Column("Classification", lambda r: r.classification, lambda r: r.classification.lower()),
)
COL_NAME, COL_HOST, COL_STATE = 0, 1, 2


class VMTableModel(QAbstractTableModel):
    """Every VM the user may view. `set_rows` updates in place, keyed by VM.key, so selections
    and persistent indexes survive a refresh."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[VMRow] = []
        self._pending: dict[tuple[str, str], tuple[str, str]] = {}  # key -> (label, state then)

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
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        row, column = self._rows[index.row()], COLUMNS[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return cell(column.text(row))
        if role == VM_ROLE:
            return row.vm
        if role == ROW_ROLE:
            return row
        if role == SORT_ROLE:
            return column.sort(row)
        if role == Qt.ItemDataRole.DecorationRole and index.column() == COL_STATE:
            return state_icon(row.vm.state)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(row, index.column())
        if role == Qt.ItemDataRole.TextAlignmentRole and column.align_right:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.FontRole and row.pending:
            font = QFont()
            font.setItalic(True)
            return font
        return None

    def _tooltip(self, row: VMRow, column: int) -> str:
        if column == COL_STATE and not row.vm.known_state:
            return tip(f"Unknown state reported by the host: {row.vm.state}")
        if column == COL_NAME:
            lines = [row.vm.name, f"VM id {row.vm.id}", f"on {row.vm.host}"]
            if row.vm.is_replica:
                lines.append(f"Replica copy ({row.vm.replication_mode})")
            return tip(*lines)
        return ""

    @property
    def rows(self) -> list[VMRow]:
        return list(self._rows)

    def row_of(self, key: tuple[str, str]) -> int:
        return next((i for i, r in enumerate(self._rows) if r.vm.key == key), -1)

    def vm(self, key: tuple[str, str]) -> VM | None:
        i = self.row_of(key)
        return self._rows[i].vm if i >= 0 else None

    # -- writing
    def set_rows(self, rows: Iterable[VMRow]) -> None:
        incoming = {r.vm.key: self._with_pending(r) for r in rows}
        for i in range(len(self._rows) - 1, -1, -1):
            if self._rows[i].vm.key not in incoming:
                self.beginRemoveRows(QModelIndex(), i, i)
                del self._rows[i]
                self.endRemoveRows()
        for i, old in enumerate(self._rows):
            new = incoming.pop(old.vm.key)
            if new != old:
                self._rows[i] = new
                self._row_changed(i)
        if incoming:
            start = len(self._rows)
            self.beginInsertRows(QModelIndex(), start, start + len(incoming) - 1)
            self._rows.extend(incoming.values())
            self.endInsertRows()

    def remove_host(self, host: str) -> None:
        self.set_rows([r for r in self._rows if r.vm.host.lower() != host.lower()])

    def mark_pending(self, key: tuple[str, str], label: str) -> None:
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
        mark = self._pending.get(row.vm.key)
        if mark is None:
            return replace(row, pending=None) if row.pending else row
        label, state_then = mark
        settled = row.vm.state != state_then and row.vm.state not in TRANSITIONAL_STATES
        if settled:
            del self._pending[row.vm.key]
            return replace(row, pending=None)
        return replace(row, pending=label)

    def _row_changed(self, i: int) -> None:
        self.dataChanged.emit(self.index(i, 0), self.index(i, len(COLUMNS) - 1))


def _begin_filter_change(proxy: QSortFilterProxyModel) -> None:
    if hasattr(proxy, "beginFilterChange"):  # Qt 6.9+; invalidateFilter is deprecated there
        proxy.beginFilterChange()


def _end_filter_change(proxy: QSortFilterProxyModel) -> None:
    if hasattr(proxy, "endFilterChange"):
        proxy.endFilterChange(QSortFilterProxyModel.Direction.Rows)
    else:  # pragma: no cover - older Qt
        proxy.invalidateRowsFilter()


class SortProxy(QSortFilterProxyModel):
    """Sorts by SORT_ROLE with Python's own ordering (tuples, datetimes), which Qt cannot compare."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.setSortRole(SORT_ROLE)

    def lessThan(self, left: Index, right: Index) -> bool:
        a, b = left.data(SORT_ROLE), right.data(SORT_ROLE)
        try:
            return bool(a < b)
        except TypeError:
            return str(a) < str(b)


class VMFilterProxy(SortProxy):
    """Search (name, host, owner, application) and state filter over the one VM model."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._search = ""
        self._state_group = "All states"
        self.setDynamicSortFilter(True)

    def set_search(self, text: str) -> None:
        _begin_filter_change(self)
        self._search = text.strip().lower()
        _end_filter_change(self)

    def set_state_group(self, group: str) -> None:
        if group not in STATE_GROUPS:
            raise ValueError(f"unknown state group {group!r}")
        _begin_filter_change(self)
        self._state_group = group
        _end_filter_change(self)

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:
        row: VMRow | None = self.sourceModel().index(source_row, 0, source_parent).data(ROW_ROLE)
        if row is None:
            return False
        if not STATE_GROUPS[self._state_group](row.vm.state):
            return False
        if not self._search:
            return True
        haystack = " ".join((row.vm.name, row.vm.host, row.owner, row.application)).lower()
        return all(word in haystack for word in self._search.split())


# --- checkpoints ---------------------------------------------------------------------------------

class CheckpointModel(QAbstractItemModel):
    """The checkpoint tree of one VM (parents above children), for a QTreeView."""

    HEADERS = ("Checkpoint", "Type", "Created", "Size")

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._vm: VM | None = None
        self._children: dict[str | None, list[Checkpoint]] = {}
        self._by_id: dict[str, Checkpoint] = {}

    def set_vm(self, vm: VM | None) -> None:
        self.beginResetModel()
        self._vm = vm
        self._by_id = {c.id: c for c in vm.checkpoints} if vm else {}
        self._children = {}
        for c in (vm.checkpoints if vm else ()):
            # A checkpoint whose parent is missing (merged away) shows at the top level.
            parent = c.parent_id if c.parent_id in self._by_id else None
            self._children.setdefault(parent, []).append(c)
        for kids in self._children.values():
            kids.sort(key=lambda c: (c.created or datetime.min, c.name))
        self.endResetModel()

    def _parent_key(self, c: Checkpoint) -> str | None:
        return c.parent_id if c.parent_id in self._by_id else None

    def checkpoint(self, index: Index) -> Checkpoint | None:
        return self._by_id.get(index.internalPointer()) if index.isValid() else None  # type: ignore[arg-type]

    def index(self, row: int, column: int, parent: Index = QModelIndex()) -> QModelIndex:
        if column < 0 or column >= len(self.HEADERS):
            return QModelIndex()
        key = self._key(parent) if parent.isValid() else None
        kids = self._children.get(key, [])
        if not 0 <= row < len(kids):
            return QModelIndex()
        return self.createIndex(row, column, kids[row].id)

    def _key(self, index: Index) -> str | None:
        return index.internalPointer() if index.isValid() else None  # type: ignore[return-value]

    def parent(self, index: Index = QModelIndex()) -> QModelIndex:  # type: ignore[override]
        if not index.isValid():
            return QModelIndex()
        c = self._by_id[self._key(index)]  # type: ignore[index]
        parent_key = self._parent_key(c)
        if parent_key is None:
            return QModelIndex()
        parent = self._by_id[parent_key]
        siblings = self._children.get(self._parent_key(parent), [])
        return self.createIndex(siblings.index(parent), 0, parent.id)

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        if parent.isValid() and parent.column() != 0:
            return 0
        return len(self._children.get(self._key(parent) if parent.isValid() else None, []))

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return len(self.HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole \
                and 0 <= section < len(self.HEADERS):
            return self.HEADERS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        c = self.checkpoint(index)
        if c is None:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return cell([c.name, c.kind + (", automatic" if c.automatic else ""),
                         c.created.strftime("%Y-%m-%d %H:%M") if c.created else "",
                         human_bytes(c.size_bytes) if c.size_bytes else ""][index.column()])
        if role == VM_ROLE:
            return c
        if role == SORT_ROLE:
            return [c.name.lower(), c.kind, c.created or datetime.min, c.size_bytes][index.column()]
        if role == Qt.ItemDataRole.ToolTipRole and index.column() == 0:
            return tip(c.name, f"Checkpoint id {c.id}")
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

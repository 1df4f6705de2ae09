"""The main window: the VMs this person may view, what they may do with them, and what is running.

Every host call runs through `Tasks`; every action goes through ActionService.perform (which
re-checks the policy and audits). The window only mirrors the policy to enable buttons.
"""
from __future__ import annotations

import gc
import logging
import time
from datetime import datetime
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from PySide6.QtCore import (QEvent, QItemSelectionModel, QModelIndex, QObject, QPersistentModelIndex,
                            QPoint, Qt, QTimer, QUrl, Signal)
from PySide6.QtGui import (QAction, QColor, QDesktopServices, QGuiApplication, QHelpEvent,
                           QKeyEvent, QKeySequence)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMenu,
    QMessageBox,
    QPushButton,
    QSplitter,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
    QToolButton,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from console.audit import AuditRecord
from console.baseline import Baselines
from console.baseline import path_for as baseline_path
from console.errors import ConsoleError, CredentialsRejected, HostAccessDenied, HostError
from console.hosts import ActionOutcome, Credentials, HostResult, HostStatus
from console.identity import Identity
from console.inventory import (TRANSITIONAL_STATES, VM, Action, Checkpoint, HostCapacity,
                               after_action, state_after_apply)
from console.paths import DOCS, README
from console.policy import Policy
from console.review import (
    HostsRead, Review, build_review, read_hardening, read_hosts, with_hardening,
)
from console.session import Session
from console.text import one_line
from console.viewer import Viewer, console_command, find_viewer, launch, missing_viewer

from .actions import (ASKS, NEEDS_CHECKPOINT, REVERT_LABEL, SPECS, TOOLBAR_ACTIONS, availability,
                      revert_availability)
from .activity import ActivityWindow
from .app import Services
from .baselines import Alerts, BaselineWatcher
from .details import DetailsPane
from .dialogs import AskText, Confirm, IsoDialog, PasswordPrompt, SettingsDialog
from .downtime import PlanNotice
from .errors import show_exception
from .history import UsageHistory
from .first_run import copy_diagnostics, open_log_folder
from .models import (
    COL_NAME,
    COLUMNS,
    ROW_ROLE,
    STATE_GROUPS,
    VMFilterProxy,
    VMRow,
    VMTableModel,
    _dot,
)
from .review import ReviewWindow
from .tasks import Task, Tasks
from .groups import Group, GroupTree
from .hosts import HostDetails, capacity_lines, capacity_short
from .text import fit_on_screen, human_duration, plain_label, shade, tip

STATUS_COLORS = {
    HostStatus.OK: "ok", HostStatus.SLOW: "warn", HostStatus.UNREACHABLE: "error",
    HostStatus.ACCESS_DENIED: "error", HostStatus.CREDENTIALS_REJECTED: "error",
    HostStatus.ERROR: "error",
}


log = logging.getLogger(__name__)


def settle_garbage_collector() -> None:
    """After a refresh, the rows it made live until the next one: move them out of the garbage
    collector's sight (gc.freeze). A full collection walks every tracked object, 90 ms with
    10,000 VMs' rows, on the GUI thread; frozen, they cost it nothing, and they are still freed as
    soon as the next refresh drops them (reference counting; rows hold no cycles). Young garbage
    is collected first, so no cycle is frozen with them (benchmarks/bench_gui.py measures both
    the stalls and the memory over 1,000 refreshes)."""
    gc.collect(1)
    gc.freeze()


def read_and_review(pool: Any, policy: Any, identity: Identity) -> tuple[HostsRead, Review]:
    """In a worker: every host read (the facts of those `identity` holds a grant on), then the
    review built (it takes seconds at thousands of VMs, which the GUI thread must not spend)."""
    read = read_hosts(pool, policy, identity)
    domain = identity.name.split("\\")[0]
    # Each host's hardening, for holders of policy.read (read_hardening reads nothing for others).
    hardening = read_hardening(pool, policy, identity, read.inventory).hosts
    from console.review import with_transport  # NTLM allowed to a configured host: a finding

    hosts = [client.config for client in pool.clients.values()]
    return read, with_transport(with_hardening(build_review(
        policy, read.inventory, read.facts, domain=domain, console_access=read.console_access),
        hardening), hosts)


def visible_rows(policy: Policy, identity: Identity, vms: Iterable[VM],
                 current: Callable[[tuple[str, str]], VMRow | None]) -> list[VMRow]:
    """The rows of the VMs this user may view. A VM whose facts, documentation and decision are
    unchanged keeps its current row, with what was computed for it."""
    rows = []
    for vm, decision in policy.visible(identity, vms):
        doc = policy.doc(vm.id)
        old = current(vm.key)
        if old is not None and old.vm == vm and old.doc == doc and old.decision == decision \
                and old.stale is None:
            rows.append(old)
        else:
            rows.append(VMRow(vm, doc, decision))
    return rows


class Notice(QFrame):
    """A failure that must not be missed: its sentence and next step above the list, until the
    person dismisses it (the status bar's message is gone after seconds)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("notice")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet(f"#notice {{ border: 1px solid {shade('error')}; border-radius: 3px; }}")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 4, 4)
        self.text = plain_label("", wrap=True)
        layout.addWidget(self.text, 1)
        self.dismiss = QPushButton("Dismiss")
        self.dismiss.clicked.connect(self.hide)
        layout.addWidget(self.dismiss)
        self.hide()

    def tell(self, sentence: str) -> None:
        # The newest problem first; earlier ones stay until dismissed (up to a few).
        lines = [sentence, *[line for line in self.text.text().splitlines() if line != sentence]]
        self.text.setText("\n".join(lines[:3]) if self.isVisible() else sentence)
        self.show()


class ElidedTooltips(QStyledItemDelegate):
    """The whole text of a cell as its tooltip, when the cell is too narrow to show it."""

    def helpEvent(self, event: QHelpEvent, view: QAbstractItemView, option: QStyleOptionViewItem,
                  index: QModelIndex | QPersistentModelIndex) -> bool:
        if event.type() == QEvent.Type.ToolTip and not index.data(Qt.ItemDataRole.ToolTipRole):
            text = str(index.data() or "")
            if text and option.fontMetrics.horizontalAdvance(text) > view.visualRect(index).width() - 8:
                QToolTip.showText(event.globalPos(), tip(text), view)
                return True
        return super().helpEvent(event, view, option, index)


class HostStatusBar(QWidget):
    """Each host's status: ok, slow, unreachable, access denied; one dead host blanks nothing.

    A few hosts get an entry each. More than COMPACT_AFTER would not fit a window (50 entries are
    several screens wide), so they are summed up in one line that names the hosts in trouble,
    with every host's status one click away (the "Hosts" menu)."""

    COMPACT_AFTER = 6
    host_clicked = Signal(str)  # a host's entry was clicked: its details (ui/hosts.py)

    def __init__(self, hosts: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # Each host's capacity as it last reported it (kept while it does not answer), and when.
        self.capacity: dict[str, HostCapacity] = {}
        self.capacity_at: dict[str, float] = {}
        self.base_text: dict[str, str] = {}  # each entry's text without its capacity
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 0)
        self.hosts = list(hosts)
        self.labels: dict[str, QLabel] = {}
        self.results: dict[str, HostResult] = {}
        self.reading: set[str] = set()  # hosts whose read is in progress
        self.answered_at: dict[str, float] = {}  # host -> when it last answered (time.time())
        self.ntlm: set[str] = set()  # hosts whose connection fell back to NTLM (said, not hidden)
        self.compact = len(hosts) > self.COMPACT_AFTER
        if self.compact:
            self.summary = plain_label("", selectable=False)
            self.menu = QMenu(self)
            self.all_hosts = QToolButton()
            self.all_hosts.setText("Hosts")
            self.all_hosts.setAutoRaise(True)
            self.all_hosts.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
            self.all_hosts.setMenu(self.menu)
            self.menu.aboutToShow.connect(self._fill_menu)
            layout.addWidget(self.all_hosts)
            layout.addWidget(self.summary, 1)
            self._summarize()
        else:
            for host in hosts:
                label = plain_label(f"{host}: …", selectable=False)
                label.setToolTip(tip(f"{host}: not read yet"))
                label.setCursor(Qt.CursorShape.PointingHandCursor)
                label.installEventFilter(self)
                self.labels[host.lower()] = label
                layout.addWidget(label)
            layout.addStretch(1)

    def loading(self, host: str) -> None:
        self.reading.add(host.lower())
        if self.compact:
            self._summarize()
            return
        label = self.labels.get(host.lower())
        if label is None:
            return
        result = self.results.get(host.lower())
        label.setText(f"◌ {host}: reading…" if result is None
                      else f"● {result.host}: {result.status.value} ◌")

    def show_result(self, result: HostResult) -> None:
        key = result.host.lower()
        self.results[key] = result
        self.reading.discard(key)
        if result.error is None:
            self.answered_at[key] = time.time()
        if result.capacity is not None:
            self.capacity[key] = result.capacity
            self.capacity_at[key] = time.time()
        if self.compact:
            self._summarize()
            return
        label = self.labels.get(result.host.lower())
        if label is None:
            return
        label.setText(f"● {result.host}: {result.status.value}" + (" · NTLM" if key in self.ntlm else ""))
        style = f"color: {shade(STATUS_COLORS.get(result.status, 'muted'))}"
        if label.styleSheet() != style:  # a new style sheet lays out and repaints the window
            label.setStyleSheet(style)
        label.setToolTip(tip(f"{result.host}: {result.status.value}", self._detail(result)))
        self.base_text[key] = label.text()
        self._fit()
        label.setToolTip(tip(f"{result.host}: {result.status.value}", self._detail(result),
                             *capacity_lines(self.capacity.get(key)), "Click for its details."))

    def _fit(self) -> None:
        """Each host's free memory and tightest storage beside its status when every entry fits
        the bar; only the status when not (the tooltip and the details have every figure)."""
        shown = [k for k in self.labels if k in self.base_text and k not in self.reading]
        if not shown:
            return
        metrics = self.fontMetrics()
        layout = self.layout()
        spacing = max(layout.spacing(), 0) + 8 if layout is not None else 14
        full = {k: self.base_text[k] + capacity_short(self.capacity.get(k)) for k in shown}
        wanted = sum(metrics.horizontalAdvance(full[k]) + spacing for k in shown) + sum(
            metrics.horizontalAdvance(self.labels[k].text()) + spacing
            for k in self.labels if k not in full)
        fits = wanted <= self.width() - 16
        for key in shown:
            text = full[key] if fits else self.base_text[key]
            if self.labels[key].text() != text:
                self.labels[key].setText(text)

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        if not self.compact:
            self._fit()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.MouseButtonRelease:
            host = next((h for h in self.hosts if self.labels.get(h.lower()) is watched), None)
            if host is not None:
                self.host_clicked.emit(host)
                return True
        return super().eventFilter(watched, event)

    def set_auth(self, host: str, protocol: str | None) -> None:
        """What the host's connection signed in with: NTLM is shown beside its status."""
        if protocol == "ntlm":
            self.ntlm.add(host.lower())
        elif protocol:
            self.ntlm.discard(host.lower())

    def status(self, host: str) -> HostStatus | None:
        result = self.results.get(host.lower())
        return result.status if result else None

    def describe(self, host: str) -> str:
        key = host.lower()
        result = self.results.get(key)
        text = f"{host}: {result.status.value}" if result else f"{host}: not read yet"
        if key in self.answered_at:
            text += f", last answered {time.strftime('%H:%M:%S', time.localtime(self.answered_at[key]))}"
        return text + (", reading…" if key in self.reading else "")

    def _detail(self, result: HostResult) -> str:
        detail = str(result.error) if result.error else f"answered in {result.seconds:.1f} s"
        if result.host.lower() in self.ntlm:
            detail += ("; signed in with NTLM, as Kerberos was not possible (set allow_ntlm = false "
                       "to refuse it)")
        at = self.answered_at.get(result.host.lower())
        if at is not None:
            detail += f"; last answered at {time.strftime('%H:%M:%S', time.localtime(at))}"
        return detail

    def _summarize(self) -> None:
        counts: dict[str, int] = {}
        trouble: list[HostResult] = []
        for result in self.results.values():
            counts[result.status.value] = counts.get(result.status.value, 0) + 1
            if result.status is not HostStatus.OK:
                trouble.append(result)
        unread = len(self.hosts) - len(self.results)
        parts = [f"{n} {status}" for status, n in sorted(counts.items(), key=lambda i: i[0] != "ok")]
        if unread:
            parts.append(f"{unread} not read yet")
        if self.reading:
            parts.append(f"reading {len(self.reading)}")
        named = ", ".join(r.host for r in trouble[:3]) + (f" and {len(trouble) - 3} more"
                                                          if len(trouble) > 3 else "")
        text = f"{len(self.hosts)} hosts: " + ", ".join(parts) + (f" (not ok: {named})" if trouble else "")
        self.summary.setText(text)
        worst = max((r.status for r in trouble), key=_SEVERITY.index, default=HostStatus.OK)
        style = f"color: {shade(STATUS_COLORS.get(worst, 'muted'))}"
        if self.summary.styleSheet() != style:
            self.summary.setStyleSheet(style)
        self.summary.setToolTip(tip(text, "\n".join(f"{r.host}: {r.status.value}: {self._detail(r)}"
                                                    for r in trouble)))

    def _fill_menu(self) -> None:
        self.menu.clear()
        for host in self.hosts:
            result = self.results.get(host.lower())
            action = self.menu.addAction(self.describe(host))
            if result is not None:
                action.setToolTip(self._detail(result))
        self.menu.setToolTipsVisible(True)


# Worst last: the summary takes the colour of the worst status among the hosts.
_SEVERITY = [HostStatus.OK, HostStatus.SLOW, HostStatus.ERROR, HostStatus.ACCESS_DENIED,
             HostStatus.UNREACHABLE, HostStatus.CREDENTIALS_REJECTED]


# A host that did not answer keeps its rows (greyed, last known); one that refused this person
# access (ACCESS_DENIED) loses them.
KEEP_ROWS_ON = frozenset({HostStatus.UNREACHABLE, HostStatus.ERROR, HostStatus.CREDENTIALS_REJECTED})

# How often VMs in motion (Starting, Stopping, Merging...) have their state read until they settle.
FOLLOW_SECONDS = 3

# Time one event-loop turn may spend making the rows of host answers (at least one answer a turn).
MERGE_SECONDS = 0.008


@dataclass
class Answer:
    """A host's answer waiting to be applied."""

    key: str  # the host's name, lower case
    host: str
    then: list[str] | None  # hosts to read once this one has answered (untried credentials)
    result: HostResult


@dataclass
class Running:
    label: str
    started: float
    item: QListWidgetItem
    stop: Callable[[], None] | None = None


_TOKEN = Qt.ItemDataRole.UserRole + 1  # a progress entry's token


class ProgressArea(QWidget):
    """Running actions with their VM and elapsed time, then their results (failures stay)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        head = QHBoxLayout()
        head.addWidget(plain_label("Activity in this session", selectable=False))
        head.addStretch(1)
        self.stop_button = QPushButton("Stop waiting")
        self.stop_button.setToolTip(tip(
            "Stop waiting for the selected action", "An action not yet sent is cancelled; one the "
            "host has already received may still be carried out there."))
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop_selected)
        head.addWidget(self.stop_button)
        self.clear_button = QPushButton("Clear finished")
        self.clear_button.clicked.connect(self.clear_finished)
        head.addWidget(self.clear_button)
        layout.addLayout(head)
        self.list = QListWidget()
        self.list.setWordWrap(True)
        self.list.currentItemChanged.connect(lambda *_: self._update_stop())
        layout.addWidget(self.list)
        self.running: dict[int, Running] = {}
        self._next = 0
        self.timer = QTimer(self)
        self.timer.setInterval(1000)
        self.timer.timeout.connect(self._tick)

    def start(self, label: str, stop: Callable[[], None] | None = None) -> int:
        """A running entry; `stop` is what "Stop waiting" does for it."""
        self._next += 1
        item = QListWidgetItem(f"{label} — 0 s")
        item.setIcon(_dot(shade("busy")))
        item.setData(_TOKEN, self._next)
        self.list.insertItem(0, item)
        self.running[self._next] = Running(label, time.monotonic(), item, stop)
        self.timer.start()
        self._update_stop()
        return self._next

    def stop_selected(self) -> None:
        item = self.list.currentItem()
        entry = self.running.get(item.data(_TOKEN)) if item is not None else None
        if entry is not None and entry.stop is not None:
            entry.stop()

    def _update_stop(self) -> None:
        item = self.list.currentItem()
        entry = self.running.get(item.data(_TOKEN)) if item is not None else None
        self.stop_button.setEnabled(entry is not None and entry.stop is not None)

    def finish(self, token: int, status: str, message: str) -> None:
        entry = self.running.pop(token, None)
        if entry is None:
            return
        seconds = human_duration(int(time.monotonic() - entry.started)) or "0 s"
        text = f"{entry.label}: {status} after {seconds} ({time.strftime('%H:%M:%S')})"
        entry.item.setText(text + (f"\n{message}" if message else ""))
        entry.item.setIcon(_dot(shade({"ok": "ok", "pending": "warn"}.get(status, "error"))))
        entry.item.setToolTip(tip(text, message))
        entry.item.setData(Qt.ItemDataRole.UserRole, status)
        if not self.running:
            self.timer.stop()
        self._update_stop()

    def add_earlier(self, records: Sequence[AuditRecord], limit: int = 20) -> None:
        """The person's last outcomes from earlier sessions (the audit trail), below this
        session's entries, so the history survives a restart of the console."""
        for r in records[-limit:][::-1]:
            when = r.time.replace("T", " ")[:16]
            try:
                what = SPECS[Action(r.action)].title
            except ValueError:
                what = r.action
            text = (f"{when} UTC  {what}: {r.vm_name} on {r.host}: {r.outcome}"
                    + (f"\n{r.error}" if r.error else ""))
            item = QListWidgetItem(text)
            item.setIcon(_dot(shade({"ok": "ok", "pending": "warn"}.get(r.outcome, "error"))))
            item.setData(Qt.ItemDataRole.UserRole, "earlier")
            item.setForeground(QColor(shade("muted")))
            item.setToolTip(tip("From an earlier session", text))
            self.list.addItem(item)

    def clear_finished(self) -> None:
        for row in range(self.list.count() - 1, -1, -1):
            if self.list.item(row).data(Qt.ItemDataRole.UserRole):
                self.list.takeItem(row)

    def texts(self) -> list[str]:
        return [self.list.item(i).text() for i in range(self.list.count())]

    def _tick(self) -> None:
        now = time.monotonic()
        for entry in self.running.values():
            entry.item.setText(f"{entry.label} — {human_duration(int(now - entry.started)) or '0 s'}")


class MainWindow(QMainWindow):
    refreshed = Signal()  # every host has answered (or failed) in a refresh
    action_finished = Signal(str, str)  # status, message

    def __init__(self, services: Services, session: Session, tasks: Tasks,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.services, self.session, self.tasks = services, session, tasks
        self.identity = session.identity
        self.setWindowTitle(f"Hyper-V Console — {self.identity.display_name or self.identity.name}")
        fit_on_screen(self, 1280, 760)
        self._busy: dict[tuple[str, str], int] = {}
        self._reading: set[str] = set()
        self._answers: deque[Answer] = deque()  # host answers waiting for the next merge
        self._merge_timer = QTimer(self)
        self._merge_timer.setSingleShot(True)
        self._merge_timer.setInterval(0)
        self._merge_timer.timeout.connect(self._apply_answers)
        self._stale: set[str] = set()
        self._failing_since: dict[str, float] = {}  # host key -> when it stopped answering
        self.signed_out = False  # closed by "Sign out": the sign-in comes again
        self._asking_password = False
        self._activity: ActivityWindow | None = None
        self._review: ReviewWindow | None = None
        # The console viewer of this computer (vmconnect.exe, FreeRDP), looked for once: Connect
        # says what to install when there is none.
        self.viewer: Viewer | None = self.find_viewer()
        self._console_synced: set[str] = set()  # hosts whose sweep of console access ran

        self.model = VMTableModel(self)
        self.proxy = VMFilterProxy(self)
        self.proxy.setSourceModel(self.model)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        # A new order or filter is laid out at once rather than on a later timer, so the table
        # paints once (not once before its layout and again after).
        self.proxy.layoutChanged.connect(self.table.doItemsLayout)
        # and filtering down to a few rows does not take the scroll bar away (a second layout).
        self.table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)
        # The count and the empty-state line follow every new order, filter and answer.
        for signal in (self.proxy.layoutChanged, self.proxy.modelReset, self.proxy.rowsInserted,
                       self.proxy.rowsRemoved):
            signal.connect(lambda *_: self._show_count())
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(COL_NAME, Qt.SortOrder.AscendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(24)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        # Fitting the columns to their contents reads the rows in view, not a thousand of them.
        self.table.horizontalHeader().setResizeContentsPrecision(0)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._context_menu)
        # A cell too narrow for its text shows the whole text when hovered.
        self.table.setItemDelegate(ElidedTooltips(self.table))
        # The header's context menu chooses the columns; the choice is kept with the header.
        header = self.table.horizontalHeader()
        header.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        header.customContextMenuRequested.connect(self._column_menu)
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        self.model.dataChanged.connect(self._rows_changed)

        self.search = QLineEdit(placeholderText="Search name, host, owner, application")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self.proxy.set_search)
        self.state_filter = QComboBox()
        self.state_filter.addItems(list(STATE_GROUPS))
        self.state_filter.currentTextChanged.connect(self.proxy.set_state_group)
        self.count_label = plain_label("", selectable=False)

        self.details = DetailsPane()
        self.history = UsageHistory()  # CPU and memory over this session's refreshes
        self.details.history = self.history
        # The details and screen of the VM shown, read from its host when its details are opened.
        self.details.attach(self.tasks, lambda host: self.session.pool.client(host))
        self.details.checkpoint_changed.connect(self.update_actions)
        self.details.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.details.tree.customContextMenuRequested.connect(self._checkpoint_menu)
        self.hosts_bar = HostStatusBar([h.name for h in services.config.hosts])
        self.hosts_bar.host_clicked.connect(self.open_host_details)
        self.host_details: dict[str, HostDetails] = {}  # open host details views, by host
        self.progress = ProgressArea()

        left = QWidget()
        box = QVBoxLayout(left)
        box.setContentsMargins(0, 0, 0, 0)
        filters = QHBoxLayout()
        filters.addWidget(self.search, 1)
        filters.addWidget(self.state_filter)
        filters.addWidget(self.count_label)
        box.addLayout(filters)
        # Said over the table when it shows no row: why, and what to do about it.
        self.empty_line = plain_label("", wrap=True, selectable=False)
        self.empty_line.setObjectName("empty")
        self.empty_line.hide()
        box.addWidget(self.empty_line)
        box.addWidget(self.table, 1)
        # Esc in the search box or the table clears the search.
        self.search.installEventFilter(self)
        self.table.installEventFilter(self)
        self.details.tree.installEventFilter(self)
        # The VMs grouped by host (under its cluster where the policy names one) and by
        # application: choosing a group shows only its VMs (ui/groups.py).
        self.groups = GroupTree()
        self.groups.setMinimumWidth(60)
        self.groups.group_chosen.connect(self._group_chosen)
        # Shown where there is room beside the table (View > Groups pane shows it anywhere).
        screen = QGuiApplication.primaryScreen()
        self.groups.setVisible(screen is None or screen.availableGeometry().width() >= 900)
        self._groups_timer = QTimer(self, singleShot=True, interval=200)
        self._groups_timer.timeout.connect(self._show_groups)
        self.model.updated.connect(self._groups_timer.start)
        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(self.groups)
        top.addWidget(left)
        top.addWidget(self.details)
        top.setStretchFactor(0, 0)
        top.setStretchFactor(1, 3)
        top.setStretchFactor(2, 1)
        top.setSizes([140, 760, 380])
        self._panes = top
        outer = QSplitter(Qt.Orientation.Vertical)
        outer.addWidget(top)
        outer.addWidget(self.progress)
        outer.setStretchFactor(0, 4)
        outer.setStretchFactor(1, 1)
        outer.setSizes([680, 90])
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.hosts_bar)
        self.notice = Notice()
        layout.addWidget(self.notice)
        # Each VM's usual range by hour of the week, learnt after every refresh in a worker;
        # what stays far from it for a while is marked in the table and told once.
        self.baselines = BaselineWatcher(lambda: Baselines(baseline_path(self.identity.sid)))
        self.baselines.alerts.connect(self._show_alerts)
        self.baselines.failed.connect(self.notice.tell)
        self.baselines.usual.connect(self._show_usual)
        self.refreshed.connect(self._learn_baselines)
        self._alerted: set[tuple[str, str]] = set()
        # Downtime plans that touch this person's VMs (read once the first host answered).
        self.plans = PlanNotice(services, session, tasks)
        layout.addWidget(self.plans)
        layout.addWidget(outer, 1)
        self.setCentralWidget(central)

        # Not `actions`: that would hide QWidget.actions().
        self.qactions: dict[Action, QAction] = {}
        self._build_actions()
        how = self.identity.extra.get("sign_in")  # "Windows sign-in": the Kerberos ticket's
        self.statusBar().addPermanentWidget(plain_label(
            f"Signed in as {self.identity.name}" + (f" ({how})" if how else ""), selectable=False))
        self.insecure = self._insecure_banner(services.setup.warnings)
        self.refresh_timer = QTimer(self)
        self.refresh_timer.setInterval(max(5, services.config.refresh_seconds) * 1000)
        self.refresh_timer.timeout.connect(self.refresh)
        # VMs in motion (starting, stopping, merging disks...) are followed until they settle,
        # with a read of their state alone, not left until the next refresh.
        self.follow_timer = QTimer(self)
        self.follow_timer.setSingleShot(True)
        self.follow_timer.setInterval(FOLLOW_SECONDS * 1000)
        self.follow_timer.timeout.connect(self._follow)
        self._following: set[str] = set()  # hosts whose states are being read
        self._restore_geometry()
        self.update_actions()
        # This person's outcomes from earlier sessions, read in a worker (the trail may be long).
        self.tasks.run(services.audit.records, self.identity.sid, label="my earlier actions") \
            .on_success(lambda records: self.progress.add_earlier(
                [r for r in records if r.outcome])).on_failure(lambda error: None)

    # --- building ----------------------------------------------------------------------------

    def _insecure_banner(self, warnings: Sequence[str]) -> QLabel:
        """A setting that makes signing in unsafe (skip_certificate_check), said above the list
        and in the status bar for as long as the window is open: no dismissing it."""
        banner = plain_label("\n".join(f"Warning: {w}" for w in warnings), wrap=True,
                             selectable=False)
        banner.setObjectName("insecure_banner")
        banner.setStyleSheet("#insecure_banner { background: #fdecea; color: #b00020; "
                             "font-weight: bold; padding: 4px; }")
        banner.setVisible(bool(warnings))
        central = self.centralWidget()
        layout = central.layout() if central is not None else None
        assert isinstance(layout, QVBoxLayout)
        layout.insertWidget(0, banner)
        if warnings:
            status = plain_label("Certificate not checked", selectable=False)
            status.setStyleSheet(f"color: {shade('error')}; font-weight: bold")
            status.setToolTip(tip(*warnings))
            self.statusBar().addPermanentWidget(status)
        return banner

    def _build_actions(self) -> None:
        bar = self.addToolBar("Actions")
        bar.setObjectName("actions")
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.refresh_action = QAction("Refresh", self)
        self.refresh_action.setShortcut(QKeySequence(QKeySequence.StandardKey.Refresh))
        self.refresh_action.triggered.connect(self.refresh)
        bar.addAction(self.refresh_action)
        bar.addSeparator()
        for action, spec in SPECS.items():
            qaction = QAction(spec.label, self)
            if spec.shortcut:
                qaction.setShortcut(QKeySequence(spec.shortcut))
                qaction.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            qaction.triggered.connect(lambda _=False, a=action: self.trigger(a))
            self.addAction(qaction)  # shortcuts work even for actions only in menus
            self.qactions[action] = qaction
        # Hyper-V Manager's Revert: apply the checkpoint the VM stands on (its parent).
        self.revert_action = QAction(REVERT_LABEL, self)
        self.revert_action.triggered.connect(self.revert)
        # In the checkpoint tree, F2 renames and Delete deletes, as in Hyper-V Manager.
        for key, action in (("F2", Action.CHECKPOINT_RENAME), ("Del", Action.CHECKPOINT_DELETE)):
            local = QAction(SPECS[action].title, self.details.tree)
            local.setShortcut(QKeySequence(key))
            local.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
            local.triggered.connect(lambda _=False, a=action: self.trigger(a))
            self.details.tree.addAction(local)
        for action in TOOLBAR_ACTIONS:
            bar.addAction(self.qactions[action])
            if action is Action.CHECKPOINT_CREATE:
                bar.addAction(self.revert_action)
            if action in {Action.CONNECT, Action.RESUME, Action.CHECKPOINT_CREATE}:
                bar.addSeparator()

        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        settings = file_menu.addAction("&Settings...")
        settings.triggered.connect(self.open_settings)
        file_menu.addSeparator()
        file_menu.addAction("Sign &out / switch user").triggered.connect(self.sign_out)
        quit_action = file_menu.addAction("&Quit")
        quit_action.setShortcut(QKeySequence(QKeySequence.StandardKey.Quit))
        quit_action.triggered.connect(self.close)
        view = menu.addMenu("&View")
        view.addAction(self.refresh_action)
        self.activity_action = view.addAction("My &activity")
        self.activity_action.triggered.connect(self.open_activity)
        self.review_action = view.addAction("&Review delegation...")
        self.review_action.triggered.connect(self.open_review)
        may_review = self.services.policy.global_decision(self.identity).allows("policy.read")
        self.review_action.setEnabled(may_review)
        if not may_review:
            self.review_action.setToolTip("Needs policy.read: the reviewer role")
        groups = view.addAction("&Groups pane")
        groups.setCheckable(True)
        groups.setChecked(not self.groups.isHidden())
        groups.toggled.connect(self.show_groups_pane)
        self.groups_action = groups
        view.addAction("&Host details...").triggered.connect(lambda: self.open_host_details(
            next((vm.host for vm in self.selected_vms()), None)
            or (self.services.config.hosts[0].name if self.services.config.hosts else "")))
        find = view.addAction("&Find")
        find.setShortcut(QKeySequence(QKeySequence.StandardKey.Find))
        find.triggered.connect(lambda: self.search.setFocus())
        vm_menu = menu.addMenu("&Action")
        self._fill_menu(vm_menu)
        help_menu = menu.addMenu("&Help")
        help_menu.addAction("Open the &log folder").triggered.connect(open_log_folder)
        help_menu.addAction("&Copy diagnostics").triggered.connect(self._copy_diagnostics)
        help_menu.addAction("&Keyboard shortcuts").triggered.connect(self.show_shortcuts)
        help_menu.addAction("&Documentation").triggered.connect(self.open_documentation)
        help_menu.addSeparator()
        help_menu.addAction("&About the Hyper-V Console").triggered.connect(self.show_about)

    def _copy_diagnostics(self) -> None:
        copy_diagnostics(self.services.config)
        self.say("Diagnostics copied to the clipboard (no password in them).",
                                     8000)

    def shortcuts_text(self) -> str:
        lines = [f"{QKeySequence(SPECS[a].shortcut).toString(QKeySequence.SequenceFormat.NativeText)}"
                 f"\t{SPECS[a].title}" for a in SPECS if SPECS[a].shortcut]
        refresh = self.refresh_action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        lines += [f"{refresh}\tRefresh", "Ctrl+F\tFind", "Esc\tClear the search",
                  "Shift+F10\tThe selected VM's menu (or checkpoint's, in the checkpoint tree)",
                  "F2\tRename the selected checkpoint (checkpoint tree)",
                  "Del\tDelete the selected checkpoint (checkpoint tree)"]
        lines += ["Enter\tConnect to the selected VM's console (its details where it cannot)",
                  "Shift+Enter\tThe selected VM's details"]
        return "\n".join(lines)

    def show_shortcuts(self) -> None:
        box = QMessageBox(QMessageBox.Icon.NoIcon, "Keyboard shortcuts", self.shortcuts_text(),
                          QMessageBox.StandardButton.Close, self)
        box.setTextFormat(Qt.TextFormat.PlainText)
        box.open()

    def about_text(self) -> str:
        from console import __version__

        return (f"Hyper-V Delegation Console {__version__}\n\nStart, stop, checkpoint and mount "
                "ISOs on the VMs delegated to you, without a logon to the Hyper-V hosts.\n\n"
                f"Licence: MIT.\nDocumentation (Help > Documentation): {README}, and beside it "
                f"{DOCS}: the policy, the JEA endpoint, the host operations, what to verify "
                f"on a real host. Your administrators may keep their own page.")

    def open_documentation(self) -> bool:
        """The README in the system's viewer (Help > Documentation); where there is none, say
        where the documentation should be."""
        if README.exists() and self.open_url(QUrl.fromLocalFile(str(README))):
            self.say(f"Opened {README}.", 5000)
            return True
        self.say(f"No documentation beside the program ({README}): ask your administrators "
                 f"for the console's README and docs.", 10000)
        return False

    @staticmethod
    def open_url(url: QUrl) -> bool:
        """The system's handler for a file or link (tests replace this)."""
        return QDesktopServices.openUrl(url)

    def show_about(self) -> None:
        box = QMessageBox(QMessageBox.Icon.Information, "About", self.about_text(),
                          QMessageBox.StandardButton.Close, self)
        box.setTextFormat(Qt.TextFormat.PlainText)
        box.open()

    def _fill_menu(self, menu: QMenu) -> None:
        groups: list[list[Action | None]] = [
            [Action.CONNECT],  # first, as in Hyper-V Manager's Actions pane
            [Action.START, Action.SHUTDOWN, Action.RESTART, Action.TURNOFF, Action.RESET],
            [Action.SAVE, Action.PAUSE, Action.RESUME, Action.DELETE_SAVED_STATE],
            [Action.CHECKPOINT_CREATE, None, Action.CHECKPOINT_APPLY, Action.CHECKPOINT_RENAME,
             Action.CHECKPOINT_DELETE, Action.CHECKPOINT_DELETE_SUBTREE],
            [Action.MOUNT_ISO, Action.EJECT],
        ]
        menu.setToolTipsVisible(True)
        for i, group in enumerate(groups):
            if i:
                menu.addSeparator()
            for action in group:
                # None: Revert, after Checkpoint as in Hyper-V Manager's Actions pane.
                menu.addAction(self.revert_action if action is None else self.qactions[action])

    def _context_menu(self, pos: QPoint) -> None:
        menu = QMenu(self)
        self._fill_menu(menu)
        self.show_menu(menu, self.table.viewport().mapToGlobal(pos))

    # --- selection and enablement --------------------------------------------------------------

    def selected_rows(self) -> list[VMRow]:
        rows = self.table.selectionModel().selectedRows(COL_NAME)
        return [r for r in (index.data(ROW_ROLE) for index in rows) if r is not None]

    def selected_vms(self) -> list[VM]:
        return [r.vm for r in self.selected_rows()]

    def select_vm(self, name_or_key: str | tuple[str, str], add: bool = False) -> bool:
        """Select a VM by key or (first) name; for keyboard users and tests."""
        for row in range(self.proxy.rowCount()):
            index = self.proxy.index(row, 0)
            vm: VM = index.data(ROW_ROLE).vm
            if vm.key == name_or_key or vm.name == name_or_key:
                flags = QItemSelectionModel.SelectionFlag.Rows | (
                    QItemSelectionModel.SelectionFlag.Select if add
                    else QItemSelectionModel.SelectionFlag.ClearAndSelect)
                self.table.selectionModel().setCurrentIndex(index, flags)
                return True
        return False

    def _selection_changed(self, *_: Any) -> None:
        self.details.show_rows(self.selected_rows())
        focus = self.details.row.vm.id if self.details.row is not None else None
        if focus != self.baselines.focused:  # another VM: no band until its own is read
            self.details.cpu_chart.show_band(None)
            self.details.memory_chart.show_band(None)
            self.baselines.focus(focus)
        self.update_actions()

    def _rows_changed(self, top: QModelIndex, bottom: QModelIndex, *_: Any) -> None:
        # Only the selected rows matter: look them up, rather than read every changed row.
        if any(top.row() <= self.model.row_of(r.vm.key) <= bottom.row()
               for r in self.selected_rows()):
            self._selection_changed()

    def availability(self, action: Action) -> tuple[bool, str]:
        rows = {r.vm.key: r for r in self.selected_rows()}
        enabled, reason = availability(
            action, [r.vm for r in rows.values()], lambda vm: rows[vm.key].privileges,
            checkpoint_selected=self.details.selected_checkpoint() is not None,
            busy=lambda vm: vm.key in self._busy, contact=self._contact)
        if enabled and action is Action.CONNECT and self.viewer is None:
            return False, missing_viewer()
        return enabled, reason

    @staticmethod
    def find_viewer() -> Viewer | None:
        """The console viewer installed here (tests replace this)."""
        return find_viewer()

    def _sync_console_access(self, host: str) -> None:
        """Once per host and sign-in, after its first answer: the host revokes this person's
        console access where the policy no longer gives vm.console (Sync-HvcConsoleAccess on
        the JEA endpoint; nothing on the admin endpoint). A failure is only logged: it decides
        nothing here, and the review names what is left."""
        self._console_synced.add(host.lower())
        client = self.session.pool.client(host)
        self.tasks.run(client.sync_console_access, label=f"console access on {host}") \
            .on_failure(lambda error: log.info("console access on %s not synced: %s", host, error))

    def open_console(self, vm: VM, enhanced: bool = False) -> None:
        """Start the viewer on the VM's console, detached: the host has just granted the
        person access to it (Connect's action), and said whether the VM offers an enhanced
        session now (`enhanced`)."""
        viewer = self.viewer
        if viewer is None:
            self.say(missing_viewer(), 10000)
            return
        config = self.session.pool.client(vm.host).config
        try:
            credentials = self.session.pool.gate.credentials
            command = console_command(viewer, config, vm.name, vm.id,
                                      credentials.username if credentials else "",
                                      credentials.password if credentials else None,
                                      enhanced=enhanced)
            self.console_process = launch(command)
        except (ConsoleError, OSError) as error:
            self.say(f"{vm.name}: the console viewer {viewer.program} did not start: {error}",
                     10000)
            return
        self.say(f"Opened the console of {vm.name} in {viewer.program}.", 8000)

    def _contact(self, vm: VM) -> str:
        """Who can grant rights on a VM: its contact in the policy, else its host's."""
        row = self.model.row_for(vm.key)
        contact = str(getattr(row.doc, "contact", "") or "") if row is not None else ""
        host = self.services.policy.host(vm.host)
        return contact or (host.contact if host is not None else "")

    def show_groups_pane(self, on: bool) -> None:
        """Show or hide the groups pane; shown, it takes its room from the table, not the
        window (which stays within the screen)."""
        if on == self.groups.isVisible():
            return
        sizes = self._panes.sizes()
        if on:
            width = min(max(self.groups.sizeHint().width(), 120), max(sizes[1] // 4, 60))
            sizes = [width, max(sizes[1] - width, 0), sizes[2]]
        self.groups.setVisible(on)
        self._panes.setSizes(sizes if on else [0, sizes[0] + sizes[1], sizes[2]])

    def _show_groups(self) -> None:
        clusters = {name: entry.cluster or "" for name, entry in self.services.policy.hosts.items()}
        self.groups.show_rows(self.model.rows, [h.name for h in self.services.config.hosts],
                              clusters)

    def _group_chosen(self, group: Group) -> None:
        self.proxy.set_scope(group.accepts(self.groups.clusters))
        self._show_count()

    def open_host_details(self, host: str) -> HostDetails | None:
        """The host's details view (non-modal, one per host): its memory, every place that holds
        VM files, its VMs by state, as it last reported them; kept up to date while open."""
        if not host:
            return None
        key = host.lower()
        view = self.host_details.get(key)
        if view is None:
            view = HostDetails(host, self)
            view.finished.connect(lambda _=0, key=key: self.host_details.pop(key, None))
            view.metering_requested.connect(lambda on, host=host: self.set_metering(host, on))
            self.host_details[key] = view
        self._show_host_details(host)
        view.show()
        view.raise_()
        return view

    def set_metering(self, host: str, enable: bool) -> None:
        """Resource metering on or off for every VM of `host`, through its admin endpoint (the
        host's administrators only), in a worker; the host is read again afterwards."""
        def done(counts: tuple[int, int]) -> None:
            self.say(f"Resource metering is on for {counts[1]} of {counts[0]} VMs on {host}.")
            self._read(host)

        def failed(error: BaseException) -> None:
            if not isinstance(error, ConsoleError):
                raise error
            hint = (" Resource metering is turned on and off by the host's administrators "
                    "(its admin endpoint)." if isinstance(error, HostAccessDenied) else "")
            self.notice.tell(f"{host}: metering not changed: {error}{hint}")

        self.say(f"Turning resource metering {'on' if enable else 'off'} on {host}…")
        self.tasks.run(self.session.pool.on_admin_endpoint, host,
                       lambda admin: admin.set_metering(enable),
                       label=f"metering on {host}").on_success(done).on_failure(failed)

    def _show_host_details(self, host: str) -> None:
        key = host.lower()
        view = self.host_details.get(key)
        if view is None:
            return
        bar = self.hosts_bar
        view.show_host(bar.describe(host), bar.capacity.get(key), bar.capacity_at.get(key),
                       [r.vm for r in self.model.rows_of(host)])

    def revert_availability(self) -> tuple[bool, str]:
        rows = {r.vm.key: r for r in self.selected_rows()}
        return revert_availability([r.vm for r in rows.values()], lambda vm: rows[vm.key].privileges,
                                   busy=lambda vm: vm.key in self._busy, contact=self._contact)

    def update_actions(self) -> None:
        for action, qaction in self.qactions.items():
            enabled, reason = self.availability(action)
            qaction.setEnabled(enabled)
            spec = SPECS[action]
            label = spec.title
            shortcut = f" ({spec.shortcut})" if spec.shortcut else ""
            qaction.setToolTip(tip(label + shortcut, reason))
        enabled, reason = self.revert_availability()
        self.revert_action.setEnabled(enabled)
        vms = self.selected_vms()
        parent = vms[0].parent_checkpoint if len(vms) == 1 else None
        self.revert_action.setToolTip(tip(
            "Revert", reason or (f"Apply “{one_line(parent.name)}”, the checkpoint "
                                 f"{vms[0].name} stands on" if parent else "")))
        self._show_count()

    def say(self, text: str, milliseconds: int = 0) -> None:
        """A status-bar message; VM and host names in it are other people's text, so one line
        with its control and bidi characters escaped."""
        self.statusBar().showMessage(one_line(text), milliseconds)

    def _show_count(self) -> None:
        shown, total = self.proxy.rowCount(), self.model.rowCount()
        self.count_label.setText(f"{shown} of {total} VMs")
        empty = ""
        if total and not shown:
            empty = ("No VM matches the search and the state chosen: press Esc to clear the search, "
                     "or choose All states.")
            if self.groups.chosen.kind != "all":
                empty = (f"No VM of {self.groups.chosen.name} matches the search and the state "
                         "chosen: press Esc to clear the search, choose All states, or All VMs in "
                         "the groups.")
        elif not total and self.hosts_bar.results and not self._reading:
            empty = ("No VM is delegated to you on the hosts that answered. Your administrators "
                     "decide who may see which VM.")
        self.empty_line.setText(empty)
        self.empty_line.setVisible(bool(empty))

    # --- reading -----------------------------------------------------------------------------

    def start(self) -> None:
        """Show the first inventory and refresh on the configured interval."""
        self.refresh()
        self.refresh_timer.start()

    def refresh(self) -> None:
        pool = self.session.pool
        if not pool.gate.is_open:
            self._ask_password(None)
            return
        hosts = [c.name for c in pool.clients.values()]
        if not pool.gate.confirmed and hosts and not self._reading:
            # Untried credentials: one host first, so a wrong password costs one bad attempt.
            self._read(hosts[0], then=hosts[1:])
            return
        for host in hosts:
            self._read(host)

    def _read(self, host: str, then: list[str] | None = None, after_action: bool = False) -> None:
        key = host.lower()
        if key in self._reading:
            # A slow host is still answering. After an action its answer may predate the action:
            # read again once it is in, rather than show a state the host has left.
            if after_action:
                self._stale.add(key)
            return
        self._reading.add(key)
        self.hosts_bar.loading(host)

        def done(result: HostResult) -> None:
            if result.error is None and key not in self._console_synced:
                self._sync_console_access(host)
            self.plans.host_read(result.error is None)
            # Answers that arrive in the same event-loop turn are applied together, once.
            self._answers.append(Answer(key, host, then, result))
            if not self._merge_timer.isActive():
                self._merge_timer.start()

        def failed(error: BaseException) -> None:
            self._reading.discard(host.lower())
            show_exception(error, self)

        # The core pool's read workers (one per host) do the reading; the rows are made on the GUI
        # thread (`visible_rows`), a few hosts a turn: Python work in many workers at once would
        # take the GIL from the event loop for as long as it lasts.
        self.tasks.watch(self.session.pool.submit_read(host), label=f"read {host}") \
            .on_success(done).on_failure(failed)

    def _auth_protocol(self, host: str) -> str | None:
        """"kerberos" or "ntlm": what the host's kept connection signed in with (None: unknown)."""
        try:
            return getattr(self.session.pool.client(host), "auth_protocol", None)
        except HostError:
            return None

    def _apply_answers(self) -> None:
        """The host answers queued since the last turn, as one update of the model: each host's
        rows replace that host's rows only. Making the rows takes time (the policy for each VM,
        the keys of each changed row): once a turn has spent MERGE_SECONDS on it, the answers
        left wait for the next turn, so the event loop keeps turning while 50 hosts answer."""
        started = time.perf_counter()
        batch: list[Answer] = []
        fresh: dict[str, list[VMRow]] = {}
        again: dict[str, str] = {}  # key -> host: answers that may predate an action, read again
        while self._answers and (not batch or time.perf_counter() - started < MERGE_SECONDS):
            answer = self._answers.popleft()
            batch.append(answer)
            self._reading.discard(answer.key)
            # The status bar keeps the host's status, not its whole answer.
            self.hosts_bar.set_auth(answer.host, self._auth_protocol(answer.host))
            self.hosts_bar.show_result(replace(answer.result, vms=()))
            if answer.key in self._stale:
                self._stale.discard(answer.key)
                again[answer.key] = answer.host
            elif answer.result.status in KEEP_ROWS_ON:
                # No answer is not "no VMs": the host's rows stay as it last reported them,
                # greyed and marked, until it answers again.
                since = self._failing_since.setdefault(answer.key, time.time())
                self.model.mark_host_stale(answer.host, f"{answer.host} not responding since "
                                           f"{time.strftime('%H:%M', time.localtime(since))}")
            else:
                self._failing_since.pop(answer.key, None)
                fresh[answer.key] = visible_rows(self.services.policy, self.identity,
                                                 answer.result.vms, self.model.row_for)
        if self._answers:
            self._merge_timer.start()
        if fresh:
            for rows in fresh.values():
                self.history.record(r.vm for r in rows)
            self.model.replace_hosts(fresh)
        for answer in batch:  # after the rows: the view counts the host's VMs as now listed
            if answer.key in self.host_details:
                self._show_host_details(answer.host)
        if fresh:
            self.fit_columns()
            self.update_actions()
        fresh.clear()
        for host in again.values():
            self._read(host)
        for answer in batch:
            if answer.key in again:
                continue
            error = answer.result.error
            if isinstance(error, CredentialsRejected) and not self.session.pool.gate.is_open:
                self._ask_password(error)
            elif answer.then:
                for other in answer.then:
                    self._read(other)
        batch.clear()
        if not self._reading and not self._answers:
            silent = [r.host for r in self.hosts_bar.results.values() if r.error is not None]
            at = time.strftime('%H:%M:%S')
            self.say(
                f"Refreshed at {at}" if not silent else
                f"Read at {at}, except {', '.join(silent)}: shown as last known")
            self.update_actions()
            self.fit_columns()  # every host's names are in now
            self.history.forget(set(self.model.keys()))
            self._follow_later()
            settle_garbage_collector()
            self.refreshed.emit()

    CHECKPOINT_MENU = (Action.CHECKPOINT_APPLY, Action.CHECKPOINT_RENAME, Action.CHECKPOINT_DELETE,
                       Action.CHECKPOINT_DELETE_SUBTREE, None, Action.CHECKPOINT_CREATE)

    def checkpoint_menu(self) -> QMenu:
        """The checkpoint tree's context menu: the same actions (and reasons) as the toolbar's,
        Revert, and the list for a ticket."""
        menu = QMenu(self)
        menu.setToolTipsVisible(True)
        for action in self.CHECKPOINT_MENU:
            if action is None:
                menu.addSeparator()
            else:
                menu.addAction(self.qactions[action])
        menu.addAction(self.revert_action)
        menu.addSeparator()
        menu.addAction("Copy the checkpoint list").triggered.connect(self.copy_checkpoints)
        return menu

    def _checkpoint_menu(self, pos: QPoint) -> None:
        self.show_menu(self.checkpoint_menu(), self.details.tree.viewport().mapToGlobal(pos))

    def show_menu(self, menu: QMenu, at: QPoint) -> None:
        """Open a context menu (tests replace this, as they replace dialogs)."""
        menu.popup(at)

    def checkpoint_list_text(self) -> str:
        """The selected VM's checkpoints as tab-separated lines (name, type, created, id),
        indented as in the tree, with "Now" under the checkpoint the VM stands on, for a ticket
        or a spreadsheet. No size per checkpoint: the host reports none (inventory.ps1); the
        VM's checkpoint files in total close the list."""
        row = self.details.row
        if row is None:
            return ""
        vm = row.vm
        checkpoints = vm.checkpoints
        known = {c.id for c in checkpoints}
        now = vm.parent_checkpoint_id if vm.parent_checkpoint_id in known else None
        lines = ["Checkpoint\tType\tCreated\tId"]

        def walk(level: list[Checkpoint], depth: int, parent: str | None) -> None:
            for c in sorted(level, key=lambda c: (c.created or datetime.min, c.name)):
                when = c.created.isoformat(timespec="minutes") if c.created else ""
                lines.append(f"{'  ' * depth}{one_line(c.name)}\t{c.kind}\t{when}\t{c.id}")
                walk([k for k in checkpoints if k.parent_id == c.id], depth + 1, c.id)
            if checkpoints and parent == now:
                lines.append(f"{'  ' * depth}Now\t(where {one_line(vm.name)} stands)\t\t")
        # A checkpoint whose parent is gone (merged away) starts a tree of its own, as shown.
        walk([c for c in checkpoints if c.parent_id not in known], 0, None)
        if vm.checkpoint_bytes:
            lines.append(f"Checkpoint files in total: {vm.checkpoint_bytes} bytes")
        return "\n".join(lines) + "\n"

    def copy_checkpoints(self) -> None:
        QGuiApplication.clipboard().setText(self.checkpoint_list_text())
        self.say("The checkpoint list is on the clipboard.", 5000)

    def column_actions(self) -> list[QAction]:
        """One checkable action per column (Name always shown)."""
        header = self.table.horizontalHeader()
        actions = []
        for i, column in enumerate(COLUMNS):
            action = QAction(column.title, self)
            action.setCheckable(True)
            action.setChecked(not header.isSectionHidden(i))
            action.setEnabled(i != COL_NAME)
            action.toggled.connect(lambda on, i=i: header.setSectionHidden(i, not on))
            actions.append(action)
        return actions

    def _column_menu(self, pos: QPoint) -> None:
        menu = QMenu(self)
        menu.addActions(self.column_actions())
        menu.exec(self.table.horizontalHeader().mapToGlobal(pos))

    def _in_motion(self) -> dict[str, list[VM]]:
        moving: dict[str, list[VM]] = {}
        for row in self.model.rows:
            if row.vm.state in TRANSITIONAL_STATES and not row.stale:
                moving.setdefault(row.vm.host, []).append(row.vm)
        return moving

    def _follow_later(self) -> None:
        if not self.follow_timer.isActive() and self._in_motion():
            self.follow_timer.start()

    def _follow(self) -> None:
        """Read the state of each VM in motion, one call per host; again until they settle."""
        for host, vms in self._in_motion().items():
            key = host.lower()
            if key in self._following or key in self._reading:
                continue
            self._following.add(key)
            client = self.session.pool.client(host)

            def settled(states: dict[str, tuple[str, str]], host: str = host,
                        vms: list[VM] = vms) -> None:
                self._following.discard(host.lower())
                for vm in vms:
                    found = states.get(vm.id)
                    current = self.model.vm(vm.key)
                    if found is not None and current is not None and \
                            (current.state, current.status) != found:
                        self.model.update_vm(replace(current, state=found[0], status=found[1]))
                self.update_actions()
                self._follow_later()

            def failed(error: BaseException, host: str = host) -> None:
                self._following.discard(host.lower())  # the next refresh says what is wrong

            self.tasks.run(client.vm_state, [vm.id for vm in vms], label=f"states on {host}") \
                .on_success(settled).on_failure(failed)

    # --- the credential gate -----------------------------------------------------------------

    def _ask_password(self, error: BaseException | None) -> None:
        """A host refused the password: stop everything and ask once, then carry on."""
        self.refresh_timer.stop()
        if self._asking_password:
            return
        self._asking_password = True
        QTimer.singleShot(0, lambda: self._prompt_password(error))

    def _prompt_password(self, error: BaseException | None) -> None:
        try:
            reason = str(error) if error else "A host rejected your password."
            password = PasswordPrompt.ask(self, self.identity.name, reason)
        finally:
            self._asking_password = False
        if password is None:
            self.say("Host calls are paused until you enter your password "
                                         "(Refresh asks again).")
            return
        self.session.pool.gate.reopen(Credentials(self.identity.name, password))
        self.start()

    # --- acting ------------------------------------------------------------------------------

    def trigger(self, action: Action) -> None:
        enabled, reason = self.availability(action)
        if not enabled:
            self.say(reason, 8000)
            return
        rows = self.selected_rows()
        vms = [r.vm for r in rows]
        params: dict[str, Any] = {}
        if action is Action.CHECKPOINT_CREATE:
            stamp = time.strftime('%Y-%m-%d %H:%M')
            if len(vms) == 1:
                name = AskText.ask(self, "Checkpoint", f"Name of the new checkpoint of {vms[0].name}:",
                                   f"{vms[0].name} - {stamp}")
            else:  # one name for the checkpoint of each VM, as Hyper-V Manager does
                name = AskText.ask(self, "Checkpoint", f"Name of the new checkpoints of {len(vms)} "
                                   "VMs (each VM gets one):", f"Before a change - {stamp}")
            if name is None:
                return
            params["name"] = name
        if action in NEEDS_CHECKPOINT:
            checkpoint = self.details.selected_checkpoint()
            assert checkpoint is not None  # availability() requires one
            params["checkpoint_id"] = checkpoint.id
            if action is Action.CHECKPOINT_RENAME:
                name = AskText.ask(self, "Rename Checkpoint",
                                   f"New name of the checkpoint “{checkpoint.name}” of "
                                   f"{vms[0].name}:", checkpoint.name)
                if name is None or name == checkpoint.name:
                    return
                params["name"] = name
        if action in ASKS and not self._confirm(action, vms, params):
            return
        if action is Action.MOUNT_ISO:
            self._choose_iso(vms[0])
            return
        if action is Action.EJECT:
            drive = next((d for d in vms[0].dvd_drives if d.path), vms[0].dvd_drives[0])
            params.update(controller_type=drive.controller_type, controller=drive.controller,
                          location=drive.location)
        for vm in vms:
            self.perform(vm, action, **params)

    def _confirm(self, action: Action, vms: list[VM], params: dict[str, Any]) -> bool:
        spec = SPECS[action]
        title = spec.title
        if action in NEEDS_CHECKPOINT:
            checkpoint = vms[0].checkpoint(params["checkpoint_id"])
            name = checkpoint.name if checkpoint else params["checkpoint_id"]
            text = f"{title} “{name}” of {vms[0].name} on {vms[0].host}?"
            if action is Action.CHECKPOINT_APPLY and checkpoint is not None:
                text += "\n" + self._after_apply(vms[0], checkpoint)
        else:
            text = f"{title}?\n" + "\n".join(f"• {vm.name} on {vm.host}" for vm in vms)
        return Confirm.ask(self, title, text, spec.loses, yes=title)

    @staticmethod
    def _after_apply(vm: VM, checkpoint: Checkpoint) -> str:
        """What the VM is once the checkpoint is applied (console.inventory.state_after_apply)."""
        after = state_after_apply(vm, checkpoint)
        how = {"Running": "Running again, from the checkpoint's memory",
               "Saved": "Saved, with the checkpoint's memory (Start resumes it)",
               "Off": "Off: the checkpoint holds no memory, so the next start is a cold boot"}
        return f"Afterwards {vm.name} is {how.get(after, after)}."

    def revert(self) -> None:
        """Hyper-V Manager's Revert: apply the checkpoint the VM stands on, after asking."""
        enabled, reason = self.revert_availability()
        if not enabled:
            self.say(reason, 8000)
            return
        vm = self.selected_vms()[0]
        checkpoint = vm.parent_checkpoint
        assert checkpoint is not None  # revert_availability() requires one
        text = (f"Revert {vm.name} on {vm.host} to its checkpoint “{checkpoint.name}”?\n"
                + self._after_apply(vm, checkpoint))
        if Confirm.ask(self, "Revert", text, SPECS[Action.CHECKPOINT_APPLY].loses, yes="Revert"):
            self.perform(vm, Action.CHECKPOINT_APPLY, checkpoint_id=checkpoint.id)

    def _choose_iso(self, vm: VM) -> None:
        entry = self.services.policy.host(vm.host)
        library = list(entry.iso_library) if entry else []
        if not library:
            self.say(f"{vm.host} has no approved ISO library in the policy.", 8000)
            return
        drive = next((d for d in vm.dvd_drives if not d.path), vm.dvd_drives[0])
        client = self.session.pool.client(vm.host)

        def chosen(facts: Any) -> None:
            iso = IsoDialog.choose(self, vm.host, list(facts.isos), vm.name)
            if iso is not None:
                self.perform(vm, Action.MOUNT_ISO, path=iso.path,
                             controller_type=drive.controller_type, controller=drive.controller,
                             location=drive.location)

        self.tasks.run(client.host_facts, library, label=f"ISO library of {vm.host}") \
            .on_success(chosen).on_failure(lambda e: self._action_failed(vm, Action.MOUNT_ISO, e, None))

    def perform(self, vm: VM, action: Action, **params: Any) -> Task:
        spec = SPECS[action]
        task: Task | None = None
        token = self.progress.start(f"{spec.title}: {vm.name} on {vm.host}",
                                    stop=lambda: self._stop_waiting(vm, action, task, token))
        self._busy[vm.key] = self._busy.get(vm.key, 0) + 1
        self.update_actions()

        def done(outcome: ActionOutcome) -> None:
            self._unbusy(vm)
            status, message = outcome.status, outcome.message
            current = self.model.vm(vm.key) or vm
            if status == "ok":
                # The answer carries the VM's state and what the action made or changed: shown
                # now, with no read of the whole host (sizes and uptime come with the next one).
                self.model.update_vm(after_action(
                    current, action, state=outcome.vm_state, status=outcome.vm_status,
                    checkpoint=outcome.checkpoint, drive=outcome.drive,
                    checkpoint_id=params.get("checkpoint_id")))
            elif outcome.vm_state:
                self.model.update_vm(replace(current, state=outcome.vm_state,
                                             status=outcome.vm_status))
            if status == "pending":
                self.model.mark_pending(vm.key, f"{spec.pending_label or spec.verb} (pending)")
            # Done, but the host could not record it (its event log refused): said beside it.
            warning = outcome.warning
            self.progress.finish(token, status, message if status != "ok" else warning)
            self.action_finished.emit(status, message)
            if status != "ok" or warning:
                self.say(f"{vm.name}: {message if status != 'ok' else warning}",
                                             10000)
            if status == "ok" and action is Action.CONNECT:
                self.open_console(vm, bool(outcome.console and outcome.console.enhanced))
            if status != "ok":
                # Not confirmed (pending) or not done: what the host holds now comes with a read.
                self._read(vm.host, after_action=True)
            self._follow_later()

        # The action waits its turn on its host's queue in the core: no worker thread is held
        # while it waits, so reads of other hosts never queue behind it.
        task = self.tasks.watch(self.session.actions.submit(self.identity, vm, action, **params),
                                label=f"{action} {vm.name}") \
            .on_success(done).on_failure(lambda e: self._action_failed(vm, action, e, token))
        return task

    def _stop_waiting(self, vm: VM, action: Action, task: Task | None, token: int) -> None:
        """The person stops waiting for an action. Not yet sent: cancelled, nothing happened.
        Sent: the host may still carry it out, so the VM is marked as not confirmed and its host
        read again; its answer settles the mark."""
        if task is None:
            return
        spec = SPECS[action]
        self._unbusy(vm)
        if task.cancel():
            self.progress.finish(token, "cancelled", f"Cancelled before it was sent to {vm.host}: "
                                 "nothing happened.")
            self.action_finished.emit("cancelled", "")
            return
        self.model.mark_pending(vm.key, f"{spec.pending_label or spec.verb} (not confirmed)")
        message = (f"Stopped waiting. {vm.host} may still carry out the {spec.title.lower()} of "
                   f"{vm.name}; the list shows the VM's state when the host answers again.")
        self.progress.finish(token, "pending", message)
        self.say(message, 15000)
        self.action_finished.emit("pending", message)
        self._read(vm.host, after_action=True)

    def _action_failed(self, vm: VM, action: Action, error: BaseException, token: int | None) -> None:
        if token is not None:
            self._unbusy(vm)
        if not isinstance(error, ConsoleError):
            if token is not None:
                self.progress.finish(token, "failed", "an unexpected error (see the details)")
            show_exception(error, self)
            return
        if token is not None:
            self.progress.finish(token, "failed", str(error))
        self.say(f"{vm.name}: {error}", 10000)
        self.notice.tell(f"{SPECS[action].title} of {vm.name} failed: {error}")
        self.action_finished.emit("failed", str(error))
        if isinstance(error, CredentialsRejected):
            if not self.session.pool.gate.is_open:
                self._ask_password(error)
        else:
            self._read(vm.host, after_action=True)

    def _unbusy(self, vm: VM) -> None:
        left = self._busy.get(vm.key, 1) - 1
        if left <= 0:
            self._busy.pop(vm.key, None)
        else:
            self._busy[vm.key] = left
        self.update_actions()

    # --- other screens -----------------------------------------------------------------------

    def open_activity(self) -> ActivityWindow:
        if self._activity is None:
            self._activity = ActivityWindow(self.services.audit, self.identity, self.tasks, self)
        self._activity.show()
        self._activity.raise_()
        self._activity.reload()
        return self._activity

    def open_review(self) -> None:
        """Read every host in a worker, then show the review of the policy against them."""
        self.say("Reading the hosts for the review...")

        def show(done: tuple[HostsRead, Review]) -> None:
            read, review = done
            self._review = ReviewWindow(self.services, self, session=self.session,
                                        inventory=read.inventory, facts=read.facts, review=review)
            self._review.show()
            self.say(
                "Review ready" + (f"; not reviewed: {', '.join(read.failed)}" if read.failed else ""))

        self.tasks.run(read_and_review, self.session.pool, self.services.policy, self.identity,
                       label="review").on_success(show)

    def open_settings(self) -> None:
        saved = SettingsDialog.edit(self, self.services.config, self.services.config_path)
        if saved is not None:
            self.say("Settings saved; host and directory changes apply at "
                                         "the next sign-in.", 8000)
            self.refresh_timer.setInterval(saved.refresh_seconds * 1000)

    # --- geometry ----------------------------------------------------------------------------

    def _restore_geometry(self) -> None:
        settings = self.services.settings
        geometry = settings.value("main/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
            # Saved on another screen or at another scaling: brought back inside this one.
            fit_on_screen(self, self.width(), self.height())
        header = settings.value("main/header")
        if header is not None:
            self.table.horizontalHeader().restoreState(header)
        # Columns fit their content as the hosts answer, until the person sizes one themselves
        # (or a saved layout is restored): from then on they stay where the person put them.
        self._sized = header is not None
        self._fitting = False
        self.table.horizontalHeader().sectionResized.connect(self._resized_by_person)

    def _resized_by_person(self, section: int, *_: Any) -> None:
        header = self.table.horizontalHeader()
        last = max(header.logicalIndex(i) for i in range(header.count())
                   if not header.isSectionHidden(header.logicalIndex(i)))
        # The last column stretches with the window: only the others say what the person chose.
        if not self._fitting and section != last:
            self._sized = True

    def fit_columns(self) -> None:
        if not self._sized and self.model.rowCount():
            self._fitting = True
            try:
                self.table.resizeColumnsToContents()
            finally:
                self._fitting = False

    def sign_out(self) -> None:
        """Close this person's window (their host sessions with it) and ask who signs in next."""
        self.signed_out = True
        if not self.close():
            self.signed_out = False  # they chose to stay (an action is still running)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent):
            if event.key() == Qt.Key.Key_Escape and self.search.text():
                self.search.clear()
                return True
            if watched in (self.table, self.details.tree) and (
                    event.key() == Qt.Key.Key_Menu or (
                        event.key() == Qt.Key.Key_F10
                        and event.modifiers() & Qt.KeyboardModifier.ShiftModifier)):
                # The context menu from the keyboard, at the current row, as on Windows.
                view = self.table if watched is self.table else self.details.tree
                rect = view.visualRect(view.currentIndex())
                pos = rect.center() if rect.isValid() else QPoint(4, 4)
                if view is self.table:
                    self._context_menu(pos)
                else:
                    self._checkpoint_menu(pos)
                return True
            if watched is self.table and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) \
                    and self.details.row is not None and self.availability(Action.CONNECT)[0] \
                    and not event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
                # Enter connects to the VM's console where it can, as a double click does in
                # Hyper-V Manager; Shift+Enter (and Enter where it cannot) opens the details.
                self.trigger(Action.CONNECT)
                return True
            if watched is self.table and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) \
                    and self.details.row is not None:
                # Enter on a VM opens its details, as in Hyper-V Manager.
                self.details.tabs.setCurrentIndex(0)
                self.details.tabs.setFocus()
                return True
        return super().eventFilter(watched, event)

    def _learn_baselines(self) -> None:
        self.baselines.observe([r.vm for r in self.model.rows if not r.stale])

    def _show_usual(self, vm_id: str, usual: dict[str, Any]) -> None:
        """The usual range of the VM in the details, shaded behind its charts."""
        row = self.details.row
        if row is None or row.vm.id != vm_id:
            return  # the selection moved on
        cpu, memory = usual.get("cpu"), usual.get("memory")
        self.details.cpu_chart.show_band((int(cpu.low), int(cpu.high)) if cpu else None)
        self.details.memory_chart.show_band((int(memory.low), int(memory.high)) if memory else None)

    def _show_alerts(self, alerts: Alerts) -> None:
        """Mark the cells whose deviation lasted; tell each once, when it starts lasting."""
        self.model.set_alerts(alerts)
        now = {(vm_id, metric) for vm_id, metrics in alerts.items() for metric in metrics}
        for vm_id, metric in sorted(now - self._alerted):
            self.notice.tell(alerts[vm_id][metric])
        self._alerted = now

    def closeEvent(self, event: Any) -> None:
        if self._busy and not Confirm.ask(
                self, "Quit", f"{len(self._busy)} action(s) are still running.",
                "Quitting stops waiting for them; the hosts may still carry them out, and the "
                "list shows the result the next time you open the console.", yes="Quit"):
            event.ignore()
            return
        self.refresh_timer.stop()
        self.baselines.close()
        self.services.settings.setValue("main/geometry", self.saveGeometry())
        self.services.settings.setValue("main/header", self.table.horizontalHeader().saveState())
        super().closeEvent(event)


__all__ = ["MainWindow", "HostStatusBar", "ProgressArea", "visible_rows"]

"""The review screen (findings, who can touch a VM, what a principal can do, a host's downtime
impact, exports) and the policy editor dialog, for administrators.

Every name, note and owner shown here is written by other people: table cells go through
`ui.text.cell`, text areas are plain text, tooltips are escaped.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHeaderView,
    QHBoxLayout,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from console import review as core
from console.editor import Change, NewGrant, PolicyEditor
from console.errors import ConsoleError, PolicyChanged
from console.audit import EVENT_HEADER, HostAuditEvent, select_events, since_time
from console.export import csv_text
from console.hardening import summary as hardening_summary
from console.inventory import VM, HostFacts
from console.policy import SCOPE_KINDS, VERBS, Grant
from console.text import one_line

from .dialogs import Confirm
from .documentation import DocumentWindow
from .downtime import PlanWindow
from .errors import show_exception
from .tasks import Tasks
from .text import cell, fit_on_screen, plain_label, shade, tip

ROW_ROLE = Qt.ItemDataRole.UserRole + 3
SORT_ROLE = Qt.ItemDataRole.UserRole + 4  # what a column sorts by (else its text)
Index = QModelIndex | QPersistentModelIndex

SEVERITY_COLORS = {"high": "error", "medium": "warn", "low": "muted"}  # shades: ui.text.shade
SEVERITY_RANK = {s: i for i, s in enumerate(core.SEVERITIES)}  # high first


_UPPER = {"vm": "VM", "ntlm": "NTLM", "rdp": "RDP", "jea": "JEA", "iso": "ISO"}


def kind_title(kind: str) -> str:
    """A finding's kind as a person reads it: "over-broad" -> "Over-broad"."""
    words = kind.replace("-", " ").capitalize().split(" ")
    # Abbreviations as people write them: VM, NTLM, RDP.
    return " ".join(_UPPER.get(w.lower(), w) for w in words)


def privilege_titles(privileges: Sequence[str]) -> str:
    """Privileges as people name them ("Create checkpoints", not vm.checkpoint.create)."""
    return ", ".join(privilege_title(p) for p in privileges)


def privilege_title(privilege: str) -> str:
    verb = VERBS.get(privilege, privilege)
    for tail in (" of", " on", " to"):
        verb = verb.removesuffix(tail)
    return verb[:1].upper() + verb[1:]


class RowsModel(QAbstractTableModel):
    """A read-only table of plain rows; ROW_ROLE returns the backing object of a row.

    Give it its window as parent: a model left to Python's garbage collector while its views
    (owned by Qt) still show it crashed the interpreter later, in an unrelated collection."""

    def __init__(self, header: Sequence[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.header = list(header)
        self.rows: list[list[object]] = []
        self.objects: list[Any] = []
        self.tips: list[str] = []
        self.sort_keys: list[Sequence[object]] = []
        self.colors: list[QColor | None] = []

    def set_rows(self, rows: Sequence[Sequence[object]], objects: Sequence[Any] = (),
                 tips: Sequence[str] = (), sort_keys: Sequence[Sequence[object]] = (),
                 colors: Sequence[QColor | None] = ()) -> None:
        """`sort_keys`: per row, one value per column to sort by; `colors`: per row, the first
        column's text colour."""
        self.beginResetModel()
        self.rows = [list(r) for r in rows]
        self.objects = list(objects) or [None] * len(self.rows)
        self.tips = list(tips) or [""] * len(self.rows)
        self.sort_keys = list(sort_keys)
        self.colors = list(colors)
        self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.header)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        value = self.rows[index.row()][index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return cell("" if value is None else str(value))
        if role == Qt.ItemDataRole.ToolTipRole:
            text = self.tips[index.row()] or ("" if value is None else str(value))
            return tip(*text.splitlines()) if text else None
        if role == ROW_ROLE:
            return self.objects[index.row()]
        if role == SORT_ROLE:
            if self.sort_keys:
                return self.sort_keys[index.row()][index.column()]
            return "" if value is None else (value if isinstance(value, int) else str(value).lower())
        if role == Qt.ItemDataRole.ForegroundRole and index.column() == 0 and self.colors:
            return self.colors[index.row()]
        return None

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self.header[section]
        return None


def _view(model: RowsModel, proxy: QSortFilterProxyModel | None = None) -> QTableView:
    proxy = proxy or QSortFilterProxyModel(model)
    proxy.setSourceModel(model)
    proxy.setSortRole(SORT_ROLE)
    view = QTableView()
    view.setModel(proxy)
    view.setSortingEnabled(True)
    view.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
    view.horizontalHeader().setStretchLastSection(True)
    view.setWordWrap(True)
    return view


class FindingsFilter(QSortFilterProxyModel):
    """The findings of one severity and one kind (or all)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.severity = ""
        self.kind = ""

    def choose(self, severity: str = "", kind: str = "") -> None:
        begin = getattr(self, "beginFilterChange", None)  # Qt 6.9+; invalidateFilter before
        if begin is None:
            self.severity, self.kind = severity, kind
            self.invalidateFilter()
            return
        begin()
        self.severity, self.kind = severity, kind
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:
        source = self.sourceModel()
        finding = source.index(source_row, 0, source_parent).data(ROW_ROLE)
        if finding is None:
            return True
        return (not self.severity or finding.severity == self.severity) and \
            (not self.kind or finding.kind == self.kind)


class SaveAs:
    """Where to write an export; tests replace `ask`."""

    @classmethod
    def ask(cls, parent: QWidget | None, title: str, suggested: str) -> Path | None:
        name, _ = QFileDialog.getSaveFileName(parent, title, suggested)
        return Path(name) if name else None


class ReviewWindow(QWidget):
    """The review of the current policy against the hosts' inventory.

    `inventory` and `facts` are read from the session's hosts when not given; without a session
    the review covers the policy alone.
    """

    def __init__(self, services: Any, parent: QWidget | None = None, *, session: Any = None,
                 inventory: Mapping[str, Sequence[VM]] | None = None,
                 facts: Mapping[str, HostFacts] | None = None, today: date | None = None,
                 review: core.Review | None = None, tasks: Tasks | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.services = services
        self.session = session if session is not None else getattr(parent, "session", None)
        self.today = today
        # Host calls (the Audit tab's read) run here, off the GUI thread.
        self.tasks = tasks or getattr(parent, "tasks", None) or Tasks(show_exception)
        self.setWindowTitle("Delegation review")
        fit_on_screen(self, 1100, 700)
        if inventory is None:
            inventory, facts = self._read_hosts()
        self.inventory = {h: list(v) for h, v in inventory.items()}
        self.facts = dict(facts or {})
        # Built in a worker by whoever read the hosts (seconds at thousands of VMs); else here.
        self.review = review if review is not None else self._build()

        self.tabs = QTabWidget()
        self.findings = RowsModel(["Severity", "Finding", "What is wrong", "Concerns", "How to fix",
                                   "Policy line"], self)
        self.findings_filter = FindingsFilter(self)
        self.findings_view = _view(self.findings, self.findings_filter)
        self.findings_view.sortByColumn(0, Qt.SortOrder.AscendingOrder)  # high first
        header = self.findings_view.horizontalHeader()
        header.setStretchLastSection(False)
        # The sentences share the width; the short columns take what they need. No sideways
        # scrolling at 1024x768 or at 150%.
        for column, mode in enumerate(("fit", "fit", "stretch", "stretch", "stretch", "fit")):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Stretch if mode == "stretch"
                                        else QHeaderView.ResizeMode.ResizeToContents)
        self.severity_choice, self.kind_choice = QComboBox(), QComboBox()
        self.severity_choice.addItem("All severities", "")
        for severity in core.SEVERITIES:
            self.severity_choice.addItem(severity.capitalize(), severity)
        self.kind_choice.addItem("All kinds", "")
        for choice in (self.severity_choice, self.kind_choice):
            choice.currentIndexChanged.connect(self._filter_findings)
        self.finding_text = QPlainTextEdit()
        self.finding_text.setReadOnly(True)  # plain text: names never become markup
        self.finding_objects = QListWidget()
        self.finding_objects.setToolTip(tip("Double-click a VM or a principal to see its rights"))
        self.finding_objects.itemActivated.connect(self._open_object)
        self.findings_view.selectionModel().currentRowChanged.connect(self._show_finding)
        findings_page = QWidget()
        page = QVBoxLayout(findings_page)
        pick = QHBoxLayout()
        pick.addWidget(plain_label("Show", selectable=False))
        pick.addWidget(self.severity_choice)
        pick.addWidget(self.kind_choice)
        pick.addStretch(1)
        page.addLayout(pick)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.findings_view)
        details = QWidget()
        below = QHBoxLayout(details)
        below.setContentsMargins(0, 0, 0, 0)
        below.addWidget(self.finding_text, 3)
        below.addWidget(self.finding_objects, 1)
        split.addWidget(details)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        page.addWidget(split)
        self.tabs.addTab(findings_page, "Findings")

        self.vm_choice = QComboBox()
        self.vm_model = RowsModel(["Principal", "May", "Denied by a deny grant"], self)
        self.tabs.addTab(self._chooser(self.vm_choice, self.vm_model, "Who can touch"), "By VM")
        self.principal_choice = QComboBox()
        self.principal_model = RowsModel(["Host", "VM", "May", "Denied by a deny grant"], self)
        self.tabs.addTab(self._chooser(self.principal_choice, self.principal_model, "What can"),
                         "By principal")

        impact = QWidget()
        self.host_choice = QComboBox()
        self.impact_model = RowsModel([h.replace("_", " ").capitalize() for h in core.IMPACT_HEADER[1:]],
                                      self)
        self.notice = QPlainTextEdit()
        self.notice.setReadOnly(True)  # QPlainTextEdit never interprets markup
        layout = QVBoxLayout(impact)
        # A maintenance plan of the chosen host with its VMs' owners (ui.downtime.PlanWindow).
        self.plan_button = QPushButton("Plan downtime with the owners…")
        self.plan_button.clicked.connect(self.plan_downtime)
        self.plan_windows: dict[str, PlanWindow] = {}
        pick_host = QHBoxLayout()
        pick_host.addWidget(self.host_choice, 1)
        pick_host.addWidget(self.plan_button)
        # The VMs' documentation kept on the chosen host (its administrators: the admin endpoint).
        self.document_button = QPushButton("Documentation on the host…")
        self.document_button.setToolTip(tip(
            "Write a text file per VM and an owner line in each VM's Notes on the host",
            "Through the host's admin endpoint: for the host's administrators. What differs is "
            "shown first; a file edited on the host is kept beside the new one."))
        self.document_button.clicked.connect(self.document_host)
        self.document_windows: dict[str, DocumentWindow] = {}
        pick_host.addWidget(self.document_button)
        layout.addLayout(pick_host)
        layout.addWidget(_view(self.impact_model))
        layout.addWidget(self.notice)
        self.tabs.addTab(impact, "Host impact")
        self.audit = AuditTab(self)
        self.tabs.addTab(self.audit, "Audit")
        # Each host's hardening as read for the review (policy.read): what it runs beyond
        # Hyper-V, its local groups' members (local or domain), RDP, listeners and endpoints.
        self.hardening_choice = QComboBox()
        self.hardening_model = RowsModel(["What", "On this host"], self)
        hardening = QWidget()
        layout = QVBoxLayout(hardening)
        layout.addWidget(self.hardening_choice)
        self.hardening_view = _view(self.hardening_model)
        self.hardening_view.sortByColumn(0, Qt.SortOrder.AscendingOrder)  # as the summary reads
        layout.addWidget(self.hardening_view)
        self.tabs.addTab(hardening, "Hardening")
        # Who holds access to each VM's console on the hosts (Get-VMConnectAccess, read for holders
        # of audit.read) against who may: an entry the policy does not back is also a finding.
        self.console_model = RowsModel(["Host", "VM", "Account", "The policy lets them connect"],
                                       self)
        self.tabs.addTab(_view(self.console_model), "Console access")

        buttons = QHBoxLayout()
        buttons.addWidget(plain_label("Export", selectable=False))
        self.buttons: dict[str, QPushButton] = {}
        for key, label in (("csv", "Findings (CSV)…"), ("html", "Whole review (HTML)…"),
                           ("json", "Whole review (JSON)…"), ("edit", "Edit policy…")):
            if key == "edit":
                buttons.addStretch(1)
            button = QPushButton(label)
            button.clicked.connect(lambda _=False, k=key: self._button(k))
            buttons.addWidget(button)
            self.buttons[key] = button
        self.buttons["edit"].setEnabled(self._may_modify())
        self.status = plain_label("", wrap=True)
        root = QVBoxLayout(self)
        root.addWidget(self.status)
        root.addWidget(self.tabs)
        root.addLayout(buttons)

        self.tabs.currentChanged.connect(self._name_csv_export)
        self.tabs.currentChanged.connect(self._audit_shown)
        self.vm_choice.currentIndexChanged.connect(self._show_vm)
        self.principal_choice.currentIndexChanged.connect(self._show_principal)
        self.host_choice.currentIndexChanged.connect(self._show_host)
        self.hardening_choice.currentIndexChanged.connect(self._show_hardening)
        self._fill()

    # --- data --------------------------------------------------------------------------------

    def _read_hosts(self) -> tuple[dict[str, list[VM]], dict[str, HostFacts]]:
        if self.session is None:
            return {}, {}
        read = core.read_hosts(self.session.pool, self.services.policy, self.session.identity)
        self.console_access = read.console_access  # the hosts' console access lists
        return read.inventory, read.facts  # hosts that failed are left out of the review

    def _identity(self) -> Any:
        return getattr(self.session, "identity", None)

    def _may_modify(self) -> bool:
        identity = self._identity()
        return bool(identity and self.services.policy.global_decision(
            identity, self.today).allows("policy.modify"))

    def _build(self) -> core.Review:
        identity = self._identity()
        domain = identity.name.split("\\")[0] if identity else ""
        return core.with_transport(core.build_review(
            self.services.policy, self.inventory, self.facts, today=self.today, domain=domain,
            console_access=getattr(self, "console_access", {})),
            getattr(getattr(self.services, "config", None), "hosts", ()))  # NTLM allowed: a finding

    def _fill(self) -> None:
        r = self.review
        self.status.setText(f"{len(r.findings)} findings; {len(self.inventory)} hosts; policy "
                            f"sha256 {r.policy_digest[:16]}")
        findings = list(r.findings)
        self.findings.set_rows(
            [[f.severity.capitalize(), kind_title(f.kind), f.summary, "; ".join(f.objects), f.fix,
              f.line] for f in findings], findings,
            [f"{f.summary}\n{f.fix}" for f in findings],
            [(SEVERITY_RANK.get(f.severity, 9), kind_title(f.kind), f.summary.lower(),
              "; ".join(f.objects).lower(), f.fix.lower(), f.line or 0) for f in findings],
            [QColor(shade(SEVERITY_COLORS.get(f.severity, "muted"))) for f in findings])
        self.kind_choice.blockSignals(True)
        while self.kind_choice.count() > 1:
            self.kind_choice.removeItem(1)
        for kind in sorted({f.kind for f in findings}):
            self.kind_choice.addItem(kind_title(kind), kind)
        self.kind_choice.blockSignals(False)
        self._show_finding()
        vms = list(dict.fromkeys((p.vm_id, p.vm_name, p.host) for p in r.permissions))
        for combo, items in ((self.vm_choice, [(f"{n} ({h})", i) for i, n, h in vms]),
                             (self.principal_choice,
                              [(p.principal.name, p.principal.sid) for p in r.global_permissions]),
                             (self.host_choice, [(i.host, i.host) for i in r.impacts]),
                             (self.hardening_choice, [(h.name, h.name) for h in r.hardening])):
            combo.blockSignals(True)
            combo.clear()
            for label, key in items:
                combo.addItem(cell(label), key)
            combo.blockSignals(False)
        self._show_vm()
        self._show_principal()
        self._show_host()
        self._show_hardening()
        consoles = list(r.console_access)
        self.console_model.set_rows(
            [[c.entry.host, c.entry.vm_name or c.entry.vm_id, c.entry.user, "yes" if c.may else "no"]
             for c in consoles], consoles, [c.why for c in consoles])

    def _chooser(self, combo: QComboBox, model: RowsModel, _: str) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.addWidget(combo)
        layout.addWidget(_view(model))
        return page

    def _show_vm(self) -> None:
        key = self.vm_choice.currentData()
        rows = [p for p in self.review.permissions if p.vm_id == key and (p.privileges or p.denied)]
        self.vm_model.set_rows([[p.principal.name, privilege_titles(p.privileges),
                                 privilege_titles(p.denied)] for p in rows], rows, [p.why for p in rows])

    def _show_principal(self) -> None:
        key = self.principal_choice.currentData()
        rows = [p for p in (*self.review.global_permissions, *self.review.permissions)
                if p.principal.sid == key and (p.privileges or p.denied)]
        self.principal_model.set_rows(
            [[p.host or "(global)", p.vm_name, privilege_titles(p.privileges),
              privilege_titles(p.denied)] for p in rows], rows, [p.why for p in rows])

    def _show_host(self) -> None:
        impact = self.review.impact(self.host_choice.currentData() or "")
        self.impact_model.set_rows([r[1:] for r in core.impact_rows(impact)] if impact else [])
        self.notice.setPlainText(impact.notice if impact else "")

    def plan_downtime(self) -> PlanWindow | None:
        """The downtime planner of the host chosen in the host impact tab, one window a host."""
        host = self.host_choice.currentData() or ""
        if not host:
            return None
        window = self.plan_windows.get(host.lower())
        if window is None:
            identity = self._identity()
            vms = next((v for h, v in self.inventory.items() if h.lower() == host.lower()), [])
            window = PlanWindow(self.services.policy, vms, host,
                                identity.name if identity else "", getattr(self.session, "pool", None),
                                self.services, self.tasks, self)
            self.plan_windows[host.lower()] = window
        window.show()
        window.raise_()
        return window

    def document_host(self) -> DocumentWindow | None:
        """The documentation window of the host chosen in the host impact tab, one a host."""
        host = self.host_choice.currentData() or ""
        pool = getattr(self.session, "pool", None)
        if not host or pool is None:
            return None
        window = self.document_windows.get(host.lower())
        if window is None:
            window = DocumentWindow(host, pool, self.services.policy, self.tasks, self)
            self.document_windows[host.lower()] = window
        window.show()
        window.raise_()
        return window

    def _show_hardening(self) -> None:
        host = self.hardening_choice.currentData()
        found = next((h for h in self.review.hardening if h.name == host), None)
        rows = [list(row) for row in hardening_summary(found)] if found else []
        # Sorted as the summary reads (installation first), whichever column sorts.
        self.hardening_model.set_rows(rows, rows, [value for _, value in rows],
                                      [(i, i) for i in range(len(rows))])

    def _filter_findings(self) -> None:
        self.findings_filter.choose(self.severity_choice.currentData() or "",
                                    self.kind_choice.currentData() or "")
        self._show_finding()

    def selected_finding(self) -> core.Finding | None:
        index = self.findings_view.selectionModel().currentIndex()
        return index.data(ROW_ROLE) if index.isValid() else None

    def _show_finding(self, *_: Any) -> None:
        """The whole finding below the table, and the objects it concerns."""
        f = self.selected_finding()
        self.finding_objects.clear()
        if f is None:
            shown = self.findings_filter.rowCount()
            self.finding_text.setPlainText(f"{shown} of {self.findings.rowCount()} findings shown. "
                                           "Select one to read it whole.")
            return
        line = f"\nPolicy line {f.line}." if f.line else ""
        self.finding_text.setPlainText(f"{f.severity.capitalize()}: {kind_title(f.kind)}\n\n"
                                       f"{f.summary}\n\nHow to fix: {f.fix}{line}")
        for name in f.objects:
            item = QListWidgetItem(cell(name))
            item.setData(ROW_ROLE, name)
            self.finding_objects.addItem(item)

    def _open_object(self, item: QListWidgetItem) -> None:
        self.open_object(str(item.data(ROW_ROLE)))

    def open_object(self, name: str) -> bool:
        """Show the rights around a VM or principal a finding names ("shop-web01 (id)",
        "LAB\\x → role on ... (line 9)"), or a host's impact; False when it names none of these."""
        text = cell(name)
        for combo, tab in ((self.principal_choice, 2), (self.vm_choice, 1), (self.host_choice, 3)):
            for i in range(combo.count()):
                label = combo.itemText(i).split(" (")[0] if combo is self.vm_choice \
                    else combo.itemText(i)
                if text == label or text.startswith((label + " (", label + " →")):
                    combo.setCurrentIndex(i)
                    self.tabs.setCurrentIndex(tab)
                    return True
        return False

    def _name_csv_export(self, index: int) -> None:
        self.buttons["csv"].setText(("Findings (CSV)…", "Who can touch this VM (CSV)…",
                                     "What this principal can do (CSV)…",
                                     "This host's impact (CSV)…", "The hosts' events (CSV)…")[index]
                                    if index < 5 else "Findings (CSV)…")  # the tabs after Audit

    def _audit_shown(self, index: int) -> None:
        """The hosts' events are read the first time the Audit tab is opened."""
        if self.tabs.widget(index) is self.audit and not self.audit.asked:
            self.audit.read()

    # --- actions -----------------------------------------------------------------------------

    def _button(self, key: str) -> None:
        try:
            if key == "edit":
                self.open_editor()
            else:
                self.export(key)
        except ConsoleError as error:
            show_exception(error, self)

    def export(self, kind: str) -> Path | None:
        r = self.review
        if kind == "csv":
            index = self.tabs.currentIndex()
            if self.tabs.widget(index) is self.audit:
                text = csv_text(EVENT_HEADER, [e.row() for e in self.audit.shown])
            elif index == 3:
                impact = r.impact(self.host_choice.currentData() or "")
                text = csv_text(core.IMPACT_HEADER, core.impact_rows(impact) if impact else [])
            elif index in (1, 2):
                model = self.vm_model if index == 1 else self.principal_model
                text = csv_text(core.PERMISSION_HEADER, core.permission_rows(model.objects))
            else:
                text = core.findings_csv(r)  # every finding, whatever the filters show
        else:
            text = core.to_html(r) if kind == "html" else core.to_json(r)
        what = (self.buttons["csv"].text() if kind == "csv" else self.buttons[kind].text())
        what = what.removesuffix("…")
        path = SaveAs.ask(self, f"Export {what}", f"review.{kind}")
        if path is not None:
            path.write_text(text, encoding="utf-8", newline="")
            self.status.setText(f"Exported {what} to {path}.")
        return path

    def open_editor(self) -> PolicyEditorDialog | None:
        policy = self.services.policy
        identity = self._identity()
        if policy.path is None or identity is None:
            return None
        editor = PolicyEditor(policy.path, identity, self.services.audit, today=self.today)
        dialog = PolicyEditorDialog(editor, self, lookup=self._lookup(),
                                    tasks=getattr(self.parent(), "tasks", None))
        dialog.show()
        return dialog

    def _lookup(self) -> Callable[[str], Any] | None:
        """Finds a principal in the directory as the signed-in person (a worker runs it)."""
        directory = getattr(self.services, "directory", None)
        pool = getattr(self.session, "pool", None)
        credentials = pool.gate.credentials if pool is not None else None
        if directory is None or credentials is None:
            return None

        def find(name: str) -> Any:
            with directory.session(credentials.username, credentials.password) as session:
                return session.resolve(name)
        return find


class AuditTab(QWidget):
    """The Audit tab: what every host wrote of every user's calls (console.review
    read_audit_events, in a worker), for holders of audit.read, filtered by day, person and VM.
    The hosts decide too: the JEA endpoint answers holders of audit.read only."""

    HEADER = ["Time (UTC)", "Host", "Who", "Endpoint", "Call", "VM", "Outcome", "Console record"]

    def __init__(self, window: ReviewWindow) -> None:
        super().__init__(window)
        self.window_ = window
        self.events: list[HostAuditEvent] = []
        self.shown: list[HostAuditEvent] = []
        self.asked = False
        self.task: Any = None
        self.model = RowsModel(self.HEADER, self)
        self.view = _view(self.model)
        self.view.sortByColumn(0, Qt.SortOrder.DescendingOrder)  # newest first
        self.since, self.person, self.vm = QLineEdit(), QLineEdit(), QLineEdit()
        self.since.setPlaceholderText("from YYYY-MM-DD")
        self.person.setPlaceholderText("person: name or SID")
        self.vm.setPlaceholderText("VM: name or id")
        for field in (self.person, self.vm):
            field.textChanged.connect(self.apply_filters)
        self.since.returnPressed.connect(self.read)
        self.read_button = QPushButton("Read the hosts' events")
        self.read_button.clicked.connect(self.read)
        self.status = plain_label("", wrap=True)
        pick = QHBoxLayout()
        for widget in (self.since, self.person, self.vm, self.read_button):
            pick.addWidget(widget)
        layout = QVBoxLayout(self)
        layout.addLayout(pick)
        layout.addWidget(self.status)
        layout.addWidget(self.view)
        self.allowed = self._allowed()
        self.read_button.setEnabled(self.allowed)
        for field in (self.since, self.person, self.vm):
            field.setEnabled(self.allowed)
        self.status.setText(
            "The hosts' events of every call: open this tab or press Read." if self.allowed else
            "Reading the hosts' events needs audit.read (the reviewer role): no grant gives it "
            "to you.")

    def _allowed(self) -> bool:
        window = self.window_
        identity = window._identity()
        return bool(identity is not None and getattr(window.session, "pool", None) is not None
                    and window.services.policy.global_decision(identity, window.today)
                    .allows("audit.read"))

    def read(self) -> None:
        """Read every host's events in a worker; shown when they arrive."""
        if not self.allowed or (self.task is not None and not self.task.done):
            return
        try:
            since = since_time(self.since.text()) if self.since.text().strip() else ""
        except ValueError as error:
            self.status.setText(f"{error}.")
            return
        self.asked = True
        self.read_button.setEnabled(False)
        self.status.setText("Reading the hosts' events...")
        pool = getattr(self.window_.session, "pool", None)
        self.task = self.window_.tasks.run(core.read_audit_events, pool, since,
                                           label="the hosts' audit events")
        self.task.on_success(self._arrived).on_failure(self._failed) \
            .on_finished(lambda: self.read_button.setEnabled(True))

    def _arrived(self, read: core.AuditRead) -> None:
        self.events = list(read.events)
        notes = [f"{name} not read: {one_line(str(error))}" for name, error in read.failed.items()]
        notes += [f"{name}: only its newest events were read" for name in read.truncated]
        self.status.setText(f"{len(self.events)} events from {', '.join(read.read) or 'no host'}."
                            + "".join(f" {note}." for note in notes))
        self.apply_filters()

    def _failed(self, error: BaseException) -> None:
        self.status.setText(f"The hosts' events could not be read: {one_line(str(error))}")

    def apply_filters(self) -> None:
        self.shown = select_events(self.events, None, self.person.text().strip() or None,
                                   self.vm.text().strip() or None)
        self.model.set_rows(
            [[e.time, e.host, e.user, e.endpoint, " ".join(p for p in (e.operation, e.action) if p),
              e.vm_name or e.vm_id, e.outcome + (f": {e.code}" if e.code and e.code != e.outcome
                                                else ""),
              f"#{e.seq} {e.record[:8]} from {e.workstation}" if e.record else ""]
             for e in self.shown], self.shown,
            [f"{e.user} ({e.sid}) via {e.endpoint}\n{e.what}: {e.outcome}"
             + (f"\n{e.message}" if e.message else "")
             + (f"\nrecord {e.record}, number {e.seq}, line sha256 {e.sha256}, written on "
                f"{e.workstation}" if e.record else "\nno console record: a call made without "
                "the console") for e in self.shown])


class PolicyEditorDialog(QDialog):
    """Grants and VM documentation of the policy file: propose a change, see its diff, save."""

    def __init__(self, editor: PolicyEditor, parent: QWidget | None = None, *,
                 lookup: Callable[[str], Any] | None = None, tasks: Tasks | None = None) -> None:
        super().__init__(parent)
        self.editor = editor
        self.change: Change | None = None
        self.lookup = lookup
        self.tasks = tasks or Tasks(show_exception)
        self.setWindowTitle("Edit delegation policy")
        fit_on_screen(self, 900, 650)
        self.grants = RowsModel(
            ["line", "effect", "principal", "role", "scope", "expires", "note"], self)
        self.grants_view = _view(self.grants)

        form = QFormLayout()
        self.principal, self.sid, self.value = QLineEdit(), QLineEdit(), QLineEdit()
        self.role, self.scope = QComboBox(), QComboBox()
        # The narrowest choice comes first: the fewest privileges, one VM.
        roles = editor.policy.roles
        self.role.addItems(sorted(roles, key=lambda r: (len(roles[r].privileges), r)))
        self.scope.addItems(["vm", "vm_name", *[k for k in SCOPE_KINDS if k != "vm"][::-1]])
        self.effect = QComboBox()
        self.effect.addItems(["allow", "deny"])
        # The principal comes from the directory: its name and SID as the directory has them.
        self.principal.setPlaceholderText("a name, then Look up")
        self.sid.setReadOnly(lookup is not None)
        self.lookup_button = QPushButton("Look up in the directory")
        self.lookup_button.setEnabled(lookup is not None)
        self.lookup_button.clicked.connect(self.look_up)
        self.principal.returnPressed.connect(self.look_up)
        principal_row = QHBoxLayout()
        principal_row.addWidget(self.principal, 1)
        principal_row.addWidget(self.lookup_button)
        form.addRow("Principal (DOMAIN\\name)", principal_row)
        for label, widget in (("SID", self.sid),
                              ("Role", self.role), ("Scope", self.scope), ("Value", self.value),
                              ("Effect", self.effect)):
            form.addRow(label, widget)
        self.diff = QPlainTextEdit()
        self.diff.setReadOnly(True)
        self.message = plain_label("", wrap=True)

        buttons = QHBoxLayout()
        self.add_button = QPushButton("Propose new grant")
        self.remove_button = QPushButton("Propose removing selected grant")
        self.save_button = QPushButton("Save")
        self.reload_button = QPushButton("Reload")
        for b in (self.add_button, self.remove_button, self.save_button, self.reload_button):
            buttons.addWidget(b)
        self.add_button.clicked.connect(self.propose_add)
        self.remove_button.clicked.connect(self.propose_remove)
        self.save_button.clicked.connect(self.save)
        self.reload_button.clicked.connect(self.reload)

        layout = QVBoxLayout(self)
        layout.addWidget(self.grants_view)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.message)
        layout.addWidget(self.diff)
        self._fill()

    def _fill(self) -> None:
        policy = self.editor.policy
        grants = list(policy.grants)
        self.grants.set_rows([[g.line, g.effect, g.principal.name, g.role,
                               g.scope.describe(policy.vms), g.expires or "", g.note]
                              for g in grants], grants)
        self._propose(None)

    def _propose(self, change: Change | None) -> None:
        self.change = change
        self.diff.setPlainText(change.diff(self.editor.path.name) if change else "")
        self.save_button.setEnabled(change is not None and self.editor.may_modify)
        if change is not None:
            self.message.setText(f"Proposed: {change.summary}. Review the difference, then save.")

    def look_up(self) -> None:
        name = self.principal.text().strip()
        if self.lookup is None or not name:
            return
        self.lookup_button.setEnabled(False)
        self.message.setText(f"Looking up {name} in the directory...")

        def found(principal: Any) -> None:
            self.lookup_button.setEnabled(True)
            if principal is None:
                self.message.setText(f"The directory has no {name}: check the name.")
                return
            self.principal.setText(principal.name)
            self.sid.setText(principal.sid)
            self.message.setText(f"Found {principal.name} ({principal.kind}).")

        def failed(error: BaseException) -> None:
            self.lookup_button.setEnabled(True)
            self.message.setText(str(error) if isinstance(error, ConsoleError)
                                 else "The directory could not be asked.")

        self.tasks.run(self.lookup, name, label=f"look up {name}").on_success(found) \
            .on_failure(failed)

    def selected_grant(self) -> Grant | None:
        rows = self.grants_view.selectionModel().selectedRows()
        return rows[0].data(ROW_ROLE) if rows else None

    def propose_add(self) -> None:
        grant = NewGrant(self.principal.text().strip(), self.sid.text().strip(),
                         self.role.currentText(), self.scope.currentText(),
                         self.value.text().strip(), self.effect.currentText())
        self._try(lambda: self.editor.add_grant(grant))

    def propose_remove(self) -> None:
        grant = self.selected_grant()
        if grant is not None:
            self._try(lambda: self.editor.remove_grant(grant))

    def _try(self, make: Any) -> None:
        try:
            self._propose(make())
        except ConsoleError as error:
            self._propose(None)
            self.message.setText(str(error))

    def save(self) -> bool:
        if self.change is None:
            return False
        try:
            self.editor.save(self.change)
        except PolicyChanged as error:
            self.message.setText(str(error))
            if Confirm.ask(self, "Policy changed on disk", str(error),
                           yes="Reload"):
                self.reload()
            return False
        except ConsoleError as error:
            self.message.setText(str(error))
            return False
        self.message.setText(f"Saved: {self.change.summary}.")
        self._fill()
        return True

    def reload(self) -> None:
        self.editor.reload()
        self._fill()
        self.message.setText("Reloaded the policy from disk.")

"""Downtime plans in the GUI: the notice an owner sees when plans touch their VMs, the window to
read a plan and answer it with one line, and the planner administrators open from the review's
host impact tab (window and reason, the message as .eml or mailto, Publish, the answers so far).

Every call to a host or the directory runs in a worker (ui.tasks); the plans and answers are
other people's text, shown as plain text only.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QFileDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from console import downtime
from console.audit import ANSWER_TEXT_MAX
from console.downtime import Plan, PlanError, PlansRead, Published, read_plans
from console.errors import ConsoleError
from console.inventory import VM
from console.policy import Policy
from console.text import one_line

from .tasks import Tasks
from .text import fit_on_screen, plain_label, shade, tip

PLAN_ROLE = Qt.ItemDataRole.UserRole + 5


class SaveEml:
    """Where to write the message's .eml draft; tests replace `ask`."""

    @classmethod
    def ask(cls, parent: QWidget | None, suggested: str) -> Path | None:
        name, _ = QFileDialog.getSaveFileName(parent, "Save the message to the owners",
                                              suggested, "E-mail draft (*.eml)")
        return Path(name) if name else None


class MailClient:
    """Opens a mailto link in the person's mail program; tests replace `open`."""

    @classmethod
    def open(cls, link: str) -> bool:
        return QDesktopServices.openUrl(QUrl(link))


def directory_names(services: Any, pool: Any) -> Callable[[str], str] | None:
    """A SID or account to its directory display name, as the signed-in person (one directory
    session per call: the worker that reads the plans calls it for a few answering accounts)."""
    directory = getattr(services, "directory", None)
    credentials = getattr(getattr(pool, "gate", None), "credentials", None)
    if directory is None or credentials is None:
        return None
    found: dict[str, str] = {}

    def name(account: str) -> str:
        if account.lower() not in found:
            with directory.session(credentials.username, credentials.password) as session:
                principal = session.resolve(account)
            found[account.lower()] = principal.display_name if principal else ""
        return found[account.lower()]
    return name


def read_all(pool: Any, services: Any, hosts: Sequence[str] | None = None) -> PlansRead:
    """Every host's plans (or those of `hosts`) and the answering accounts' display names: the
    worker's whole job."""
    clients = [pool.client(h) for h in hosts] if hosts else list(pool.clients.values())
    return read_plans(clients, directory_names(services, pool))


class PlanNotice(QFrame):
    """The non-modal notice above the VM list: plans that touch this person's VMs, with a button
    to read them. Read after the first host answered (the credentials work), then again with a
    refresh at most every `interval` seconds, so a plan published later shows too; a dismissed
    notice comes back only for a plan it has not shown."""

    interval = 15 * 60.0

    def __init__(self, services: Any, session: Any, tasks: Tasks,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.services, self.session, self.tasks = services, session, tasks
        self.read: PlansRead | None = None
        self.window_: PlansWindow | None = None
        self.asked = False
        self.read_at = 0.0  # time.monotonic() of the last read asked for
        self.dismissed: set[str] = set()  # the plans the person has dismissed the notice of
        self.setObjectName("plan_notice")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet(f"#plan_notice {{ border: 1px solid {shade('warn')}; "
                           "border-radius: 3px; }")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 4, 4)
        self.text = plain_label("", wrap=True)
        layout.addWidget(self.text, 1)
        self.open_button = QPushButton("Read and answer…")
        self.open_button.clicked.connect(self.open)
        layout.addWidget(self.open_button)
        dismiss = QPushButton("Dismiss")
        dismiss.clicked.connect(self.dismiss)
        layout.addWidget(dismiss)
        self.hide()

    def host_read(self, ok: bool) -> None:
        """A host answered a read: the first time one did, and then at most every `interval`
        seconds, read the plans of every host."""
        if ok and (not self.asked or time.monotonic() - self.read_at >= self.interval):
            self.asked = True
            self.read_at = time.monotonic()
            self.tasks.run(read_all, self.session.pool, self.services,
                           label="downtime plans").on_success(self.show_read) \
                .on_failure(lambda error: None)

    def show_read(self, read: PlansRead) -> None:
        self.read = read
        plans = read.current()
        if not plans or not {p.plan.id for p in plans} - self.dismissed:
            self.hide()
            if self.window_ is not None:
                self.window_.set_read(read)
            return
        first = plans[0].plan
        more = f" and {len(plans) - 1} more" if len(plans) > 1 else ""
        self.text.setText(f"Planned maintenance touches your VMs: {first.host}, "
                          f"{first.window}{more}. The planner asks for your answer.")
        self.text.setToolTip(tip(*(f"{p.plan.host}: {p.plan.window}" for p in plans)))
        self.show()
        if self.window_ is not None:
            self.window_.set_read(read)

    def dismiss(self) -> None:
        """Hidden until a plan it has not shown is published."""
        if self.read is not None:
            self.dismissed |= {p.plan.id for p in self.read.current()}
        self.hide()

    def open(self) -> PlansWindow | None:
        if self.read is None:
            return None
        if self.window_ is None:
            self.window_ = PlansWindow(self.read, self.session.pool, self.tasks,
                                       lambda: read_all(self.session.pool, self.services),
                                       self.window())
        self.window_.show()
        self.window_.raise_()
        return self.window_


class PlansWindow(QWidget):
    """The plans that touch this person's VMs: each plan's window, reason, the person's VMs and
    what happens to each, who approved, objected or has not answered; and the person's one-line
    answer, written by the host (the JEA endpoint names the person from the token)."""

    def __init__(self, read: PlansRead, pool: Any, tasks: Tasks,
                 reread: Callable[[], PlansRead], parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.pool, self.tasks, self.reread = pool, tasks, reread
        self.read = read
        self.setWindowTitle("Planned maintenance")
        fit_on_screen(self, 860, 560)
        self.plans = QListWidget()
        self.plans.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.plans.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.plans.currentItemChanged.connect(self._show)
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)  # other people's text: plain, never markup
        self.line = QLineEdit()
        self.line.setMaxLength(ANSWER_TEXT_MAX)
        self.line.setPlaceholderText("One line for the planner (optional)")
        self.approve = QPushButton("Approve")
        self.object = QPushButton("Object")
        self.approve.clicked.connect(lambda: self.answer("approve"))
        self.object.clicked.connect(lambda: self.answer("object"))
        self.status = plain_label("", wrap=True)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.plans)
        split.addWidget(self.text)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 4)
        split.setSizes([160, 640])
        row = QHBoxLayout()
        row.addWidget(self.line, 1)
        row.addWidget(self.approve)
        row.addWidget(self.object)
        layout = QVBoxLayout(self)
        layout.addWidget(split, 1)
        layout.addLayout(row)
        layout.addWidget(self.status)
        self.set_read(read)

    def set_read(self, read: PlansRead) -> None:
        chosen = self.current()
        self.read = read
        self.plans.clear()
        for published in read.current():
            start = published.plan.window.start
            item = QListWidgetItem(one_line(f"{published.plan.host} {start:%a %d %b %H:%M}"))
            item.setToolTip(tip(f"{published.plan.host}: {published.plan.window}"))
            item.setData(PLAN_ROLE, published)
            self.plans.addItem(item)
            if chosen is not None and published.plan.id == chosen.plan.id:
                self.plans.setCurrentItem(item)
        if self.plans.currentItem() is None and self.plans.count():
            self.plans.setCurrentRow(0)
        # Wide enough for "HV02 Sat 05 Dec 22:00" at any scaling; the plan's text has the rest.
        metrics = self.plans.fontMetrics()
        widest = max((metrics.horizontalAdvance(self.plans.item(i).text())
                      for i in range(self.plans.count())), default=0)
        self.plans.setMinimumWidth(min(widest + 2 * metrics.averageCharWidth() + 8, 280))
        self._show()

    def current(self) -> Published | None:
        item = self.plans.currentItem()
        value = item.data(PLAN_ROLE) if item is not None else None
        return value if isinstance(value, Published) else None

    def _show(self, *_: Any) -> None:
        published = self.current()
        self.text.setPlainText(self.read.summary(published) if published else "No plan is open.")
        for button in (self.approve, self.object):
            button.setEnabled(published is not None)

    def answer(self, kind: str) -> None:
        """Send the answer in a worker; read the plans again when the host wrote it."""
        published = self.current()
        if published is None:
            return
        text = one_line(self.line.text()).strip()
        for button in (self.approve, self.object):
            button.setEnabled(False)
        self.status.setText(f"Sending your answer to {published.host}…")
        client = self.pool.client(published.host)
        self.tasks.run(client.answer_plan, published.plan.id, kind, text,
                       label=f"answer to plan {published.plan.id}") \
            .on_success(lambda _: self._answered(published, kind)) \
            .on_failure(self._failed)

    def _answered(self, published: Published, kind: str) -> None:
        self.status.setText(f"Your answer ({'approved' if kind == 'approve' else 'objected'}) is "
                            f"written to {published.host}'s event log.")
        self.line.clear()
        self.tasks.run(self.reread, label="downtime plans").on_success(self.set_read) \
            .on_failure(self._failed)

    def _failed(self, error: BaseException) -> None:
        self.status.setText(f"Not sent: {one_line(str(error))}")
        self._show()


class PlanWindow(QWidget):
    """An administrator's downtime plan of one host (opened from the review's host impact tab):
    the window and the reason, the plan and its message to the owners, saved as an .eml draft or
    opened as a mailto link, published to the host's event log, and the answers so far."""

    def __init__(self, policy: Policy, vms: Sequence[VM], host: str, planner: str, pool: Any,
                 services: Any, tasks: Tasks, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.policy, self.vms, self.host, self.planner = policy, list(vms), host, planner
        self.pool, self.services, self.tasks = pool, services, tasks
        self.plan: Plan | None = None
        self.setWindowTitle(f"Plan downtime of {host}")
        fit_on_screen(self, 900, 620)
        self.window_field = QLineEdit()
        self.window_field.setPlaceholderText("2026-12-12 22:00/4h (local start / length or end)")
        self.reason = QLineEdit()
        self.reason.setPlaceholderText("Why, for the owners")
        self.make_button = QPushButton("Make the plan")
        self.make_button.clicked.connect(self.make)
        self.window_field.returnPressed.connect(self.make)
        form = QFormLayout()
        form.addRow("Window", self.window_field)
        form.addRow("Reason", self.reason)
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.answers = QPlainTextEdit()
        self.answers.setReadOnly(True)
        self.answers.setPlaceholderText("The owners' answers, once the plan is published.")
        self.buttons: dict[str, QPushButton] = {}
        row = QHBoxLayout()
        row.addWidget(self.make_button)
        for key, label in (("eml", "Save message (.eml)…"), ("mailto", "Open in mail"),
                           ("publish", "Publish to host"), ("answers", "Read the answers")):
            button = QPushButton(label)
            button.clicked.connect(lambda _=False, k=key: self._button(k))
            button.setEnabled(key == "answers")
            row.addWidget(button)
            self.buttons[key] = button
        row.addStretch(1)
        self.status = plain_label("", wrap=True)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.text)
        split.addWidget(self.answers)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(row)
        layout.addWidget(self.status)
        layout.addWidget(split, 1)

    def make(self) -> Plan | None:
        try:
            window = downtime.parse_window(self.window_field.text(),
                                           now=datetime.now().astimezone())
        except PlanError as error:
            self.status.setText(str(error))
            return None
        self.plan = downtime.make_plan(self.policy, self.vms, self.host, window,
                                       self.reason.text(), self.planner)
        rows = [f"{i.vm_name}: {i.owner or 'no owner on record'} — {i.happens}"
                for i in self.plan.items]
        self.text.setPlainText("\n".join([f"Plan {self.plan.id}", *rows, "",
                                          f"Teams: {', '.join(self.plan.teams) or 'none tagged'}",
                                          "", "The message to the owners:", "",
                                          self.plan.message_text()]))
        for key in ("eml", "mailto", "publish"):
            self.buttons[key].setEnabled(True)
        self.status.setText(f"{len(self.plan.items)} VMs, {len(self.plan.owners)} owners asked.")
        return self.plan

    def _button(self, key: str) -> None:
        {"eml": self.save_eml, "mailto": self.open_mail, "publish": self.publish,
         "answers": self.read_answers}[key]()

    def save_eml(self) -> Path | None:
        if self.plan is None:
            return None
        path = SaveEml.ask(self, f"{self.plan.id}.eml")
        if path is None:
            return None
        try:
            path.write_bytes(self.plan.eml())
        except OSError as error:
            self.status.setText(f"The message was not saved: {error.strerror or error}.")
            return None
        self.status.setText(f"The message is saved to {path}: open it to send it.")
        return path

    def open_mail(self) -> bool:
        if self.plan is None:
            return False
        opened = MailClient.open(self.plan.mailto())
        self.status.setText("The message is open in your mail program." if opened else
                            "No mail program opened the message: save it as .eml instead.")
        return opened

    def publish(self) -> None:
        """Check the plan fits one event, then publish it in a worker (the host's default
        endpoint: the host refuses anyone outside its administrators)."""
        plan = self.plan
        if plan is None:
            return
        try:
            plan.check_fits(self.planner)
        except PlanError as error:
            self.status.setText(str(error))
            return
        self.buttons["publish"].setEnabled(False)
        self.status.setText(f"Publishing plan {plan.id} to {plan.host}…")
        self.tasks.run(self.pool.publish_plan, plan, label=f"publish plan {plan.id}") \
            .on_success(lambda _: self._published(plan)).on_failure(self._failed)

    def _published(self, plan: Plan) -> None:
        self.status.setText(f"Plan {plan.id} is published to {plan.host}'s event log: its owners "
                            "see it when they sign in.")
        self.read_answers()

    def _failed(self, error: BaseException) -> None:
        self.buttons["publish"].setEnabled(self.plan is not None)
        self.status.setText(one_line(str(error)) if isinstance(error, ConsoleError)
                            else f"Failed: {one_line(str(error))}")

    def read_answers(self) -> None:
        self.answers.setPlainText("Reading the plans and answers of the host…")
        self.tasks.run(read_all, self.pool, self.services, [self.host],
                       label=f"downtime plans of {self.host}") \
            .on_success(self.show_answers).on_failure(self._failed)

    def show_answers(self, read: PlansRead) -> None:
        plans = read.current()
        texts = ["\n".join([f"Plan {p.plan.id}: {p.plan.window}"
                             + (f", {p.plan.reason}" if p.plan.reason else ""),
                             *read.answer_lines(p)]) for p in plans]
        failed = [f"{host} not read: {one_line(why)}" for host, why in read.failed.items()]
        self.answers.setPlainText("\n\n".join([*failed, *texts])
                                  or f"No plan of {self.host} is published.")

"""The VMs' documentation kept on a host, from the review window: read what is there, see what
would change (a person's edit on the host as a diff), then write (console/documentation.py).
Both calls go to the host's admin endpoint, in workers."""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QHBoxLayout, QLabel, QLineEdit,
                               QPlainTextEdit, QPushButton, QSplitter, QTableView, QVBoxLayout,
                               QWidget)

from console import documentation
from console.documentation import Change
from console.errors import ConsoleError, CredentialsRejected, HostAccessDenied

from .dialogs import Confirm
from .models import ListTableModel
from .tasks import Task
from .text import fit_on_screen, plain_label


class DocumentWindow(QDialog):
    """One host's documentation: Read, look, Write. Nothing is written before it was read and
    shown; files a person edited on the host are named before writing, and kept beside."""

    def __init__(self, host: str, pool: Any, policy: Any, tasks: Any,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Documentation on {host}")
        self.host, self.pool, self.policy, self.tasks = host, pool, policy, tasks
        self.changes: list[Change] = []
        self.folder = QLineEdit(documentation.DEFAULT_FOLDER)
        self.read_button = QPushButton("Read")
        self.read_button.clicked.connect(self.read)
        top = QHBoxLayout()
        top.addWidget(QLabel("Folder on the host:"))
        top.addWidget(self.folder, 1)
        top.addWidget(self.read_button)
        self.model = ListTableModel([
            ("VM", lambda c: c.vm.name, lambda c: c.vm.name.lower()),
            ("File on the host", lambda c: c.kind, lambda c: c.kind),
            ("Notes", lambda c: "owner line updated" if c.notes_changed else "as they are",
             lambda c: c.notes_changed)], self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.selectionModel().currentRowChanged.connect(self._show_change)
        self.diff = QPlainTextEdit()
        self.diff.setReadOnly(True)
        # The file as Notepad shows it on the host: its columns line up in a fixed-pitch font.
        self.diff.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.diff.setPlaceholderText("Choose a VM to see its file as it would be written.")
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.table)
        split.addWidget(self.diff)
        self.status = plain_label("Read the host first: nothing is written before you have seen "
                                  "what would change.", wrap=True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        self.write_button = buttons.addButton("Write", QDialogButtonBox.ButtonRole.ActionRole)
        self.write_button.setEnabled(False)
        self.write_button.clicked.connect(self.write)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(split, 1)
        layout.addWidget(self.status)
        layout.addWidget(buttons)
        fit_on_screen(self, 760, 520)

    def _on_host(self, work: Callable[[Any], Any]) -> Task:
        """`work` on the host's admin endpoint, in a worker."""
        return self.tasks.run(self.pool.on_admin_endpoint, self.host, work,
                              label=f"documentation on {self.host}")

    def read(self) -> None:
        self.read_button.setEnabled(False)
        self.write_button.setEnabled(False)
        self.status.setText(f"Reading {self.host}…")
        folder = self.folder.text().strip()
        self._on_host(lambda client: documentation.read_changes(
            client, self.policy, folder, datetime.now())) \
            .on_success(self._show) \
            .on_failure(self._failed) \
            .on_finished(lambda: self.read_button.setEnabled(True))

    def _show(self, changes: list[Change]) -> None:
        self.changes = changes
        self.model.set_items(changes)
        self.table.resizeColumnsToContents()
        todo = documentation.to_write(changes)
        edited = [c.vm.name for c in todo if c.kind == "edited on the host"]
        self.status.setText(
            f"{len(todo)} of {len(changes)} VMs to write"
            + (f"; edited on the host (kept beside the new file): {', '.join(edited)}" if edited else "")
            + "." if todo else f"The documentation of all {len(changes)} VMs is up to date.")
        self.write_button.setEnabled(bool(todo))
        if changes:
            self.table.selectRow(0)

    def _show_change(self, current: QModelIndex, _previous: QModelIndex) -> None:
        items = self.model.items
        if not 0 <= current.row() < len(items):
            return
        c: Change = items[current.row()]
        if c.kind == "edited on the host":
            self.diff.setPlainText(c.diff())
        else:
            self.diff.setPlainText(c.new.replace("\r\n", "\n"))

    def write(self) -> None:
        todo = documentation.to_write(self.changes)
        edited = [c.vm.name for c in todo if c.kind == "edited on the host"]
        if edited and not Confirm.ask(
                self, "Write the documentation",
                f"{', '.join(edited)} were edited on {self.host}.",
                "Their files are kept beside the new ones (named with today's time); nothing "
                "is lost.", yes="Write"):
            return
        self.write_button.setEnabled(False)
        self.status.setText(f"Writing {len(todo)} files to {self.host}…")
        folder = self.folder.text().strip()
        self._on_host(lambda client: client.write_documentation(folder, todo)) \
            .on_success(lambda kept: self.status.setText(
                f"{len(todo)} files written to {folder} on {self.host}"
                + (f"; {len(kept)} earlier files kept beside them." if kept else "."))) \
            .on_failure(self._failed)

    def _failed(self, error: BaseException) -> None:
        if not isinstance(error, ConsoleError):
            raise error
        text = str(error)
        if isinstance(error, HostAccessDenied | CredentialsRejected):
            text += " The documentation is written through the host's admin endpoint: ask one " \
                    "of the host's administrators."
        self.status.setText(text)

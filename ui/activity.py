"""My activity: the signed-in person's own audit records, newest first."""
from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QAbstractItemView, QDialog, QHBoxLayout, QHeaderView, QPushButton,
                               QTableView, QVBoxLayout, QWidget)

from console.identity import Identity

from .models import activity_model
from .tasks import Tasks
from .text import fit_on_screen, plain_label


class ActivityWindow(QDialog):
    def __init__(self, audit: Any, identity: Identity, tasks: Tasks,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.audit, self.identity, self.tasks = audit, identity, tasks
        self.setWindowTitle(f"My activity — {identity.name}")
        fit_on_screen(self, 900, 420)
        layout = QVBoxLayout(self)
        self.summary = plain_label("Loading…", selectable=False)
        self.model = activity_model(self)
        self.view = QTableView()
        self.view.setModel(self.model)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setWordWrap(False)
        self.view.verticalHeader().hide()
        self.view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.view.horizontalHeader().setStretchLastSection(True)
        reload_button = QPushButton("Reload")
        reload_button.clicked.connect(self.reload)
        head = QHBoxLayout()
        head.addWidget(self.summary, 1)
        head.addWidget(reload_button)
        layout.addLayout(head)
        layout.addWidget(self.view)
        self.setWindowFlag(Qt.WindowType.WindowContextHelpButtonHint, False)

    def reload(self) -> None:
        self.summary.setText("Loading…")
        self.tasks.run(self.audit.records, user_sid=self.identity.sid, label="my activity") \
            .on_success(self._show)

    def _show(self, records: list[Any]) -> None:
        # The trail is in append order: newest first is its reverse.
        newest_first = list(reversed(records))
        self.model.set_items(newest_first)
        self.summary.setText(f"{len(newest_first)} records of your actions in this console's "
                             "audit trail, newest first." if newest_first else
                             "No actions of yours are in this console's audit trail yet.")

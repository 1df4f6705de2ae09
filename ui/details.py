"""The details pane: one VM's screen, documentation, media, hardware as the host reports it
(ui/hardware.py: read when the details are opened), checkpoint tree and the user's rights on it."""
from __future__ import annotations

from PySide6.QtCore import QItemSelectionModel, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (QAbstractItemView, QFormLayout, QFrame, QHeaderView, QLabel,
                               QScrollArea, QTabWidget, QTreeView, QVBoxLayout, QWidget)

from collections.abc import Callable
from typing import Any

from console.details import VMDetails
from console.inventory import REQUIRED_PRIVILEGES, Checkpoint

from .hardware import HardwareView, LiveDetails, ScreenView
from .history import Sparkline, UsageHistory
from .models import CheckpointModel, VMRow
from .tasks import Tasks
from .text import human_bytes, human_duration, plain_label

VM_PRIVILEGES = tuple(sorted({p for ps in REQUIRED_PRIVILEGES.values() for p in ps} | {"vm.view"}))


class DetailsPane(QWidget):
    checkpoint_changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.row: VMRow | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 0, 0, 0)
        self.title = plain_label("No VM selected", selectable=True)
        font = QFont(self.title.font())
        font.setPointSizeF(font.pointSizeF() * 1.3)
        font.setBold(True)
        self.title.setFont(font)
        self.subtitle = plain_label("", wrap=True)
        layout.addWidget(self.title)
        layout.addWidget(self.subtitle)
        self.tabs = QTabWidget()
        layout.addWidget(self.tabs, 1)

        overview = QWidget()
        column = QVBoxLayout(overview)
        column.setContentsMargins(0, 4, 4, 4)
        # The VM's screen, as Hyper-V Manager shows it under its list (read while shown).
        self.screen_view = ScreenView()
        column.addWidget(self.screen_view)
        form = QFormLayout()
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        column.addLayout(form)
        column.addStretch(1)
        self.fields: dict[str, QLabel] = {}
        for key, title in (("state", "State"), ("owner", "Owner"), ("contact", "Contact"),
                           ("classification", "Classification"), ("application", "Application / tier"),
                           ("tags", "Tags"), ("dvd", "DVD drive"), ("disks", "Disks"),
                           ("replication", "Replication"), ("notes", "Notes"), ("vm_notes", "Host notes")):
            label = plain_label("", wrap=True)  # every value here is written by someone else
            self.fields[key] = label
            form.addRow(plain_label(title, selectable=False), label)
        # CPU and memory over this session's refreshes (ui/history.py keeps them).
        self.history: UsageHistory | None = None
        self.cpu_chart, self.memory_chart = Sparkline("%"), Sparkline("MB")
        form.addRow(plain_label("CPU", selectable=False), self.cpu_chart)
        form.addRow(plain_label("Memory", selectable=False), self.memory_chart)
        # Hyper-V's resource metering, where it is on: averages since it began (the details' read).
        self.metered = plain_label("", wrap=True)
        form.addRow(self.metered)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(overview)
        self.tabs.addTab(scroll, "Overview")

        checkpoints = QWidget()
        box = QVBoxLayout(checkpoints)
        self.checkpoint_type = plain_label("")
        box.addWidget(self.checkpoint_type)
        self.checkpoint_model = CheckpointModel(self)
        self.tree = QTreeView()
        self.tree.setModel(self.checkpoint_model)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.tree.header()
        # Every column as wide as its text, the whole checkpoint name included (the tree scrolls
        # sideways when the pane is narrow); the last one takes what is left.
        header.setStretchLastSection(True)
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.tree.selectionModel().selectionChanged.connect(lambda *_: self.checkpoint_changed.emit())
        box.addWidget(self.tree)
        self.tabs.addTab(checkpoints, "Checkpoints")
        # What the host reports of the VM when its details are opened (ui/hardware.py).
        self.hardware = HardwareView()
        self.tabs.addTab(self.hardware, "Hardware")
        self.live: LiveDetails | None = None

        access = QWidget()
        box = QVBoxLayout(access)
        self.privileges = plain_label("", wrap=True)
        self.why = plain_label("", wrap=True)
        box.addWidget(self.privileges)
        box.addWidget(self.why)
        box.addStretch(1)
        self.tabs.addTab(access, "Your access")
        self.show_rows([])

    def attach(self, tasks: Tasks, client_for: Callable[[str], Any]) -> None:
        """Read each shown VM's details and screen from its host (`client_for(host)`) in
        `tasks`' workers; without this the pane shows only what the inventory holds."""
        self.live = LiveDetails(self.hardware, self.screen_view, tasks, client_for, self)
        self.live.on_details = self._show_metering

    def _show_metering(self, details: VMDetails) -> None:
        m = details.metering
        # Metering's average memory as a level across the session's memory chart (its CPU
        # average is in MHz, which the chart's percentages cannot show).
        self.memory_chart.show_reference(None if m is None else m.memory_mb,
                                         "Hyper-V metering's average,")
        self.metered.setText("" if m is None else
                             f"Hyper-V resource metering, over {human_duration(m.seconds)}: "
                             f"average CPU {m.cpu_mhz} MHz, memory {m.memory_mb} MB "
                             f"({m.memory_min_mb}–{m.memory_max_mb} MB).")

    def selected_checkpoint(self) -> Checkpoint | None:
        rows = self.tree.selectionModel().selectedRows()
        return self.checkpoint_model.checkpoint(rows[0]) if rows else None

    def show_rows(self, rows: list[VMRow]) -> None:
        row = rows[0] if len(rows) == 1 else None
        previous = self.row
        self.row = row
        self.tabs.setEnabled(row is not None)
        if row is None:
            self.title.setText(f"{len(rows)} VMs selected" if rows else "No VM selected")
            self.subtitle.setText("Power actions apply to every selected VM." if rows else
                                  "Select a VM to see its details.")
            for label in self.fields.values():
                label.setText("")
            self._set_checkpoints(None)
            self.privileges.setText("")
            self.why.setText("")
            self.metered.setText("")
            if self.live is not None:
                self.live.show_vm(None, False)
            return
        vm = row.vm
        self.title.setText(vm.name)
        self.subtitle.setText(f"on {vm.host}" + (f" (cluster {vm.cluster})" if vm.cluster else "")
                              + f" · VM id {vm.id} · generation {vm.generation}")
        doc = row.doc
        state = vm.state + (f" — {vm.status}" if vm.status else "")
        if row.pending:
            state += f" ({row.pending}, waiting for the host to confirm)"
        self.fields["state"].setText(state)
        self.fields["owner"].setText(getattr(doc, "owner", "") or "— undocumented —")
        self.fields["contact"].setText(getattr(doc, "contact", "") or "")
        self.fields["classification"].setText(getattr(doc, "classification", "") or "")
        self.fields["application"].setText(row.application)
        self.fields["tags"].setText(", ".join(getattr(doc, "tags", ()) or ()))
        self.fields["notes"].setText(getattr(doc, "notes", "") or "")
        self.fields["vm_notes"].setText(vm.notes)
        drives = [f"{d.slot}: {d.path or 'empty'}" for d in vm.dvd_drives]
        self.fields["dvd"].setText("\n".join(drives) or "no DVD drive")
        disks = human_bytes(vm.disk_bytes) if vm.disk_bytes else ""
        if vm.checkpoint_bytes:
            disks += f" (checkpoints {human_bytes(vm.checkpoint_bytes)})"
        self.fields["disks"].setText(disks)
        self.fields["replication"].setText("" if vm.replication_mode == "None" else vm.replication_mode)
        if previous is None or previous.vm.key != vm.key:
            self.metered.setText("")
            self.memory_chart.reference = None
        if self.live is not None:
            self.live.show_vm(vm, "vm.view" in row.privileges)
        samples = self.history.of(vm.key) if self.history is not None else None
        self.cpu_chart.show_values(list(samples.cpu) if samples else [], 100)
        self.memory_chart.show_values(list(samples.memory_mb) if samples else [])
        same_vm = previous is not None and previous.vm.key == vm.key
        if not same_vm or previous is None or previous.vm.checkpoints != vm.checkpoints \
                or previous.vm.parent_checkpoint_id != vm.parent_checkpoint_id:
            self._set_checkpoints(row, keep=same_vm)
        # Sizes per checkpoint are not reported (inventory.ps1 says why): the VM's checkpoint
        # files in total are, the differencing disks beside its virtual disks.
        files = (f" · checkpoint files {human_bytes(vm.checkpoint_bytes)} in total"
                 if vm.checkpoint_bytes else "")
        self.checkpoint_type.setText(f"Checkpoint type: {vm.checkpoint_type}{files}")
        held = sorted(row.privileges)
        self.privileges.setText("You hold: " + (", ".join(held) if held else "nothing"))
        explain = getattr(row.decision, "explain", None)
        self.why.setText(explain() if callable(explain) else "")

    def _set_checkpoints(self, row: VMRow | None, keep: bool = False) -> None:
        kept = self.selected_checkpoint() if keep else None
        self.checkpoint_model.set_vm(row.vm if row else None)
        self.tree.expandAll()
        if kept is not None:
            self.select_checkpoint(kept.id)
        self.checkpoint_changed.emit()

    def select_checkpoint(self, checkpoint_id: str) -> bool:
        """Select a checkpoint by id (or CheckpointModel.NOW, the "Now" row)."""
        index = self.checkpoint_model.index_of(checkpoint_id.lower())
        if not index.isValid():
            return False
        self.tree.selectionModel().select(
            index, QItemSelectionModel.SelectionFlag.ClearAndSelect
            | QItemSelectionModel.SelectionFlag.Rows)
        self.tree.setCurrentIndex(index)
        return True



__all__ = ["DetailsPane", "VM_PRIVILEGES"]

"""A host's capacity as people read it: memory and storage in the host status bar, and a host
details view (memory, each place that holds VM files, the VMs on it by state).

What a host has left comes with its inventory (console.inventory.HostCapacity, inventory.ps1):
the view shows the last figures the host reported and when, also while it does not answer.
"""
from __future__ import annotations

import time
from collections.abc import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QFormLayout, QHBoxLayout, QHeaderView,
                               QLabel, QProgressBar, QPushButton, QTableView, QVBoxLayout,
                               QWidget)

from console.inventory import VM, HostCapacity, Storage

from .models import ListTableModel
from .text import fit_on_screen, human_bytes, plain_label, shade, tip

# Below this share free, a place or the memory is shown as short (the review warns too).
LOW_FREE = 0.10


def _share(free: int | None, total: int | None) -> float | None:
    return free / total if free is not None and total else None


def memory_text(capacity: HostCapacity) -> str:
    free, total = capacity.memory_free_bytes, capacity.memory_total_bytes
    if free is None or not total:
        return "memory not reported"
    return f"{human_bytes(free)} of {human_bytes(total)} memory free"


def storage_text(place: Storage) -> str:
    if place.error:
        return f"{place.path}: free space not read ({place.error})"
    if place.free_bytes is None:
        return (f"{place.path}: a share, its free space is the file server's"
                if place.kind == "share" else f"{place.path}: free space not reported")
    total = f" of {human_bytes(place.total_bytes)}" if place.total_bytes else ""
    return f"{place.path} {human_bytes(place.free_bytes)}{total} free"


def capacity_short(capacity: HostCapacity | None) -> str:
    """For the host status bar: free memory and the tightest place's free space."""
    if capacity is None:
        return ""
    parts = []
    if capacity.memory_free_bytes is not None:
        parts.append(f"{human_bytes(capacity.memory_free_bytes)} RAM")
    tight = capacity.tightest
    if tight is not None and tight.free_bytes is not None:
        parts.append(f"{tight.path} {human_bytes(tight.free_bytes)}")
    if not parts:
        return ""
    return " · " + ("⚠ " if is_low(capacity) else "") + ", ".join(parts) + " free"


def shortages(capacity: HostCapacity | None) -> list[str]:
    """What has less than LOW_FREE of it left, in sentences (memory first)."""
    if capacity is None:
        return []
    out = []
    share = _share(capacity.memory_free_bytes, capacity.memory_total_bytes)
    if share is not None and share < LOW_FREE:
        out.append(f"Memory is short: {memory_text(capacity)}; a VM that starts may not get its "
                   "memory.")
    for place in capacity.storage:
        share = _share(place.free_bytes, place.total_bytes)
        if share is not None and share < LOW_FREE:
            free = f"{share:.0%}" if share >= 0.01 else "under 1%"
            out.append(f"{place.path} is nearly full ({free} free): a checkpoint or a "
                       "growing disk may pause its VMs (PausedCritical).")
    return out


def capacity_lines(capacity: HostCapacity | None) -> list[str]:
    """Every figure, one a line (the status bar's tooltip)."""
    if capacity is None:
        return ["capacity not reported yet"]
    if capacity.error:
        return [f"capacity not read: {capacity.error}"]
    return [memory_text(capacity)] + [storage_text(s) for s in capacity.storage]


def is_low(capacity: HostCapacity | None) -> bool:
    """Memory or a place with less than LOW_FREE of it left."""
    if capacity is None:
        return False
    shares = [_share(capacity.memory_free_bytes, capacity.memory_total_bytes)]
    shares += [_share(s.free_bytes, s.total_bytes) for s in capacity.storage]
    return any(s is not None and s < LOW_FREE for s in shares)


def storage_model(parent: QWidget | None = None) -> ListTableModel:
    def used(s: Storage) -> float:
        share = _share(s.free_bytes, s.total_bytes)
        return -1.0 if share is None else 1 - share

    return ListTableModel([
        ("Place", lambda s: s.path, lambda s: s.path.lower()),
        ("Kind", lambda s: "share" if s.kind == "share" else "volume", lambda s: s.kind),
        ("Label", lambda s: s.label, lambda s: s.label.lower()),
        ("Free", lambda s: human_bytes(s.free_bytes) if s.free_bytes is not None else "",
         lambda s: -1 if s.free_bytes is None else s.free_bytes),
        ("Total", lambda s: human_bytes(s.total_bytes) if s.total_bytes else "",
         lambda s: s.total_bytes or 0),
        ("Used", lambda s: f"{used(s):.0%}" if used(s) >= 0 else (s.error or "not reported"),
         used),
    ], parent)


class HostDetails(QDialog):
    """One host: its status, memory, every place that holds VM files, and its VMs by state.
    Non-modal; `show_host` refreshes it with the host's latest answer."""

    metering_requested = Signal(bool)  # turn resource metering on (True) or off for every VM

    def __init__(self, host: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.host = host
        self.setWindowTitle(f"Host {host}")
        layout = QVBoxLayout(self)
        self.status = plain_label("", wrap=True)
        layout.addWidget(self.status)
        form = QFormLayout()
        self.memory = plain_label("")
        self.memory_bar = QProgressBar()
        self.memory_bar.setRange(0, 100)
        self.memory_bar.setFormat("%p% used")
        form.addRow(plain_label("Memory", selectable=False), self.memory)
        form.addRow(QLabel(""), self.memory_bar)
        self.vms = plain_label("", wrap=True)
        form.addRow(plain_label("VMs", selectable=False), self.vms)
        # Hyper-V resource metering (the details' averages, the baselines' network): the host's
        # administrators turn it on or off for every VM; the window makes the call.
        self.metering = plain_label("", wrap=True)
        self.metering_button = QPushButton("Turn metering on")
        self.metering_button.setToolTip(tip(
            "Hyper-V resource metering for every VM of this host",
            "Through the host's admin endpoint: for the host's administrators. Metered VMs report "
            "their average CPU and memory and their network traffic with each refresh."))
        self.metering_button.clicked.connect(
            lambda: self.metering_requested.emit(self.metering_button.property("enable") is True))
        metering = QHBoxLayout()
        metering.addWidget(self.metering, 1)
        metering.addWidget(self.metering_button)
        form.addRow(plain_label("Metering", selectable=False), metering)
        layout.addLayout(form)
        layout.addWidget(plain_label("Where VM files are", selectable=False))
        self.storage = storage_model(self)
        self.table = QTableView()
        self.table.setModel(self.storage)
        self.table.setSortingEnabled(False)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        layout.addWidget(self.table, 1)
        self.warnings = plain_label("", wrap=True)
        self.warnings.setStyleSheet(f"color: {shade('error')}")
        layout.addWidget(self.warnings)
        self.note = plain_label("", wrap=True)
        layout.addWidget(self.note)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout.addWidget(buttons)
        fit_on_screen(self, 620, 420)

    def show_host(self, status: str, capacity: HostCapacity | None, read_at: float | None,
                  vms: Sequence[VM]) -> None:
        self.status.setText(status)
        if capacity is None or capacity.error:
            self.memory.setText(capacity_lines(capacity)[0])
            self.memory_bar.setValue(0)
            self.memory_bar.setEnabled(False)
        else:
            self.memory.setText(memory_text(capacity))
            share = _share(capacity.memory_free_bytes, capacity.memory_total_bytes)
            self.memory_bar.setEnabled(share is not None)
            self.memory_bar.setValue(0 if share is None else round(100 * (1 - share)))
            low = share is not None and share < LOW_FREE
            self.memory.setStyleSheet(f"color: {shade('error')}" if low else "")
        self.storage.set_items(capacity.storage if capacity else ())
        warnings = shortages(capacity)
        self.warnings.setText("\n".join(warnings))
        self.warnings.setVisible(bool(warnings))
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        counts: dict[str, int] = {}
        for vm in vms:
            counts[vm.state] = counts.get(vm.state, 0) + 1
        self.vms.setText(f"{len(vms)} you may see" + (": " + ", ".join(
            f"{n} {state}" for state, n in sorted(counts.items(), key=lambda i: (-i[1], i[0])))
            if vms else ""))
        running = [vm for vm in vms if vm.state == "Running"]
        metered = sum(1 for vm in running if vm.metered is not None)
        self.metering.setText(f"on for {metered} of the {len(running)} running VMs you may see"
                              if running else "no running VM you may see")
        enable = metered < len(running) or not running
        self.metering_button.setText("Turn metering on" if enable else "Turn metering off")
        self.metering_button.setProperty("enable", enable)
        when = time.strftime("%H:%M:%S", time.localtime(read_at)) if read_at else "never"
        self.note.setText(f"As the host reported them at {when}, with its inventory. A volume "
                          "is read once for every place on it; a share's free space is the file "
                          "server's.")


__all__ = ["HostDetails", "capacity_lines", "capacity_short", "is_low", "memory_text",
           "shortages", "storage_model", "storage_text"]

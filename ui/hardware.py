"""What a host says of one VM when its details are opened, as Hyper-V Manager shows it: the
hardware (processors, memory, firmware, security), its network adapters and disks, integration
services, replication, resource metering, and a thumbnail of its screen refreshed while the
details stay open.

Nothing here is read with the table's refresh: each read costs the host WMI queries for this one
VM (console/details.py), so `LiveDetails` reads when a VM's details are opened (and again when its
state changes), in a worker, and the thumbnail every THUMBNAIL_SECONDS while they stay open, one
read at a time. An answer for a VM no longer shown is dropped.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QSize, Qt, QTimer
from PySide6.QtGui import QImage, QPixmap, QResizeEvent
from PySide6.QtWidgets import (QFormLayout, QFrame, QGroupBox, QLabel, QScrollArea, QSizePolicy,
                               QVBoxLayout, QWidget)

from console.details import THUMBNAIL_SIZE, Thumbnail, VMDetails
from console.inventory import VM

from .tasks import Task, Tasks
from .text import human_bytes, human_duration, plain_label

THUMBNAIL_SECONDS = 5  # Hyper-V Manager refreshes its thumbnail about as often
SETTLE_MS = 250  # how long a selection rests before its details are read
# States whose screen a thumbnail shows (off and saved VMs have none).
SCREEN_STATES = frozenset({"Running", "Paused", "Starting", "Stopping", "Saving", "Pausing",
                           "Resuming", "Reset", "RunningCritical", "PausedCritical"})


def _yes(value: bool | None, yes: str = "on", no: str = "off", unknown: str = "—") -> str:
    return unknown if value is None else yes if value else no


class ScreenView(QLabel):
    """The VM's screen, scaled to the width it is given, 4:3; a sentence when there is none."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("screen")
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setTextFormat(Qt.TextFormat.PlainText)  # a VM name is someone else's text
        self.setWordWrap(True)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.image: QImage | None = None
        self.shown: Thumbnail | None = None
        self._sizing = False
        self.setMinimumHeight(60)
        self.show_message("")

    def sizeHint(self) -> QSize:
        width = max(160, self.width())
        return QSize(width, self.heightForWidth(width))

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        return min(240, max(60, width * 3 // 4))

    def show_thumbnail(self, shot: Thumbnail) -> None:
        self.shown = shot
        if not shot.pixels:
            self.image = None
            self.show_message(f"No screen: the VM is {shot.state.lower() or 'not running'}.")
            return
        # RGB 565, two bytes a pixel little-endian: Qt's RGB16 on every platform it runs on.
        self.image = QImage(shot.pixels, shot.width, shot.height, 2 * shot.width,
                            QImage.Format.Format_RGB16).copy()
        self.setToolTip(f"The VM's screen ({shot.width}x{shot.height}), refreshed every "
                        f"{THUMBNAIL_SECONDS} s while its details are open.")
        self._paint()

    def show_message(self, text: str) -> None:
        self.image = None
        self.setPixmap(QPixmap())
        self.setText(text)
        self.setToolTip("")

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        # Keep 4:3 as the pane's width changes. Setting the height resizes the label again at
        # once, and a changed pixmap can change the width: only an actual change of height is
        # set, never from inside the resize it causes (that recursed until the stack ran out).
        height = self.heightForWidth(self.width())
        if height != self.height() and not self._sizing:
            self._sizing = True
            try:
                self.setFixedHeight(height)
            finally:
                self._sizing = False
        self._paint()

    def _paint(self) -> None:
        if self.image is None:
            return
        size = self.contentsRect().size()
        self.setText("")
        self.setPixmap(QPixmap.fromImage(self.image.scaled(
            size, Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation)))


class HardwareView(QScrollArea):
    """The details read from the host, in sections that wrap in a narrow pane."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        inner = QWidget()
        self.box = QVBoxLayout(inner)
        self.box.setContentsMargins(0, 4, 4, 4)
        self.note = plain_label("", wrap=True)
        self.box.addWidget(self.note)
        self.fields: dict[str, QLabel] = {}
        self.lists: list[QGroupBox] = []
        self.system = self._section("System", (
            ("generation", "Generation"), ("version", "Configuration version"),
            ("guest_os", "Guest OS"), ("secure_boot", "Secure boot"),
            ("template", "Secure boot template"), ("tpm", "TPM"),
            ("replication", "Replication")))
        self.cpu = self._section("Processors", (("processors", "Count"), ("cpu", "Usage")))
        self.memory = self._section("Memory", (
            ("startup", "Startup"), ("dynamic", "Dynamic memory"), ("minimum", "Minimum"),
            ("maximum", "Maximum"), ("assigned", "Assigned"), ("demand", "Demand")))
        self.metering = self._section("Resource metering", (
            ("metered", "Metered for"), ("avg_cpu", "Average CPU"), ("avg_memory", "Average memory"),
            ("range_memory", "Memory low / high")))
        self.network = self._list_section("Network adapters")
        self.disks = self._list_section("Disks")
        self.integration = self._list_section("Integration services")
        self.box.addStretch(1)
        self.setWidget(inner)
        self.show_details(None)

    def _section(self, title: str, rows: tuple[tuple[str, str], ...]) -> QGroupBox:
        group = QGroupBox(title)
        form = QFormLayout(group)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        for key, label in rows:
            value = plain_label("", wrap=True)
            self.fields[key] = value
            form.addRow(plain_label(label, selectable=False), value)
        self.box.addWidget(group)
        return group

    def _list_section(self, title: str) -> QLabel:
        group = QGroupBox(title)
        layout = QVBoxLayout(group)
        label = plain_label("", wrap=True)
        layout.addWidget(label)
        self.box.addWidget(group)
        self.lists.append(group)
        return label

    def show_message(self, text: str) -> None:
        self.note.setText(text)
        self.note.setVisible(bool(text))

    def show_details(self, details: VMDetails | None) -> None:
        for group in (self.system, self.cpu, self.memory, self.metering, *self.lists):
            group.setVisible(details is not None)
        if details is None:
            return
        f = self.fields
        f["generation"].setText(str(details.generation))
        f["version"].setText(details.version or "—")
        f["guest_os"].setText(details.guest_os or "not reported (the guest's data exchange "
                                                  "service does not answer)")
        f["secure_boot"].setText("not available on generation 1" if details.secure_boot is None
                                 else _yes(details.secure_boot))
        f["template"].setText(details.secure_boot_template if details.secure_boot else "—")
        f["tpm"].setText(_yes(details.tpm))
        f["replication"].setText(
            "not replicated" if details.replication_mode in ("", "None") else
            f"{details.replication_mode}, {details.replication_state}, health "
            f"{details.replication_health}")
        f["processors"].setText(str(details.processors))
        f["cpu"].setText(f"{details.cpu_pct} %" if details.state == "Running" else "—")
        m = details.memory
        f["startup"].setText(human_bytes(m.startup_bytes))
        f["dynamic"].setText(_yes(m.dynamic))
        f["minimum"].setText(human_bytes(m.minimum_bytes) if m.dynamic else "—")
        f["maximum"].setText(human_bytes(m.maximum_bytes) if m.dynamic else "—")
        f["assigned"].setText(human_bytes(m.assigned_bytes) if m.assigned_bytes else "—")
        f["demand"].setText(human_bytes(m.demand_bytes) if m.demand_bytes else "—")
        self.metering.setVisible(details.metering is not None)
        if details.metering is not None:
            r = details.metering
            f["metered"].setText(human_duration(r.seconds) if r.seconds else "—")
            f["avg_cpu"].setText(f"{r.cpu_mhz} MHz")
            f["avg_memory"].setText(f"{r.memory_mb} MB")
            f["range_memory"].setText(f"{r.memory_min_mb} MB / {r.memory_max_mb} MB")
        self.network.setText("\n\n".join(
            f"{a.name}: {a.switch or 'not connected'}\nMAC {a.mac_text} · {a.vlan_text}\n"
            + ("IP " + ", ".join(a.addresses) if a.addresses else "no address reported")
            for a in details.adapters) or "none")
        disks = [f"{d.slot}: {d.path}\n" + (
            f"{d.type}, {human_bytes(d.file_bytes or 0)} of {human_bytes(d.size_bytes or 0)}"
            if d.type else "size not readable") for d in details.disks]
        if details.disk_error:
            disks.append(f"The host could not read the disk sizes: {details.disk_error}")
        self.disks.setText("\n\n".join(disks) or "none")
        self.integration.setText("\n".join(
            f"{s.title}: " + ("off" if not s.enabled else s.status or "not running")
            for s in details.integration) or "none")


class LiveDetails(QObject):
    """Reads the shown VM's details and screen in workers while its details are open."""

    def __init__(self, hardware: HardwareView, screen: ScreenView, tasks: Tasks,
                 client_for: Callable[[str], Any], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.hardware, self.screen = hardware, screen
        self.tasks, self.client_for = tasks, client_for
        self.vm: VM | None = None
        self.details: VMDetails | None = None
        self._reading: Task | None = None
        self._shooting: Task | None = None
        self.on_details: Callable[[VMDetails], None] = lambda details: None
        self.timer = QTimer(self)
        self.timer.setInterval(THUMBNAIL_SECONDS * 1000)
        self.timer.timeout.connect(self._tick)
        self.settle = QTimer(self)
        self.settle.setSingleShot(True)
        self.settle.setInterval(SETTLE_MS)
        self.settle.timeout.connect(self._open)

    def show_vm(self, vm: VM | None, may_view: bool) -> None:
        """The VM whose details are open (None: none, or several). Reads when it is another VM
        or its state changed; the screen only of a VM the person may view that has one."""
        previous, self.vm = self.vm, (vm if may_view else None)
        if self.vm is None:
            self.stop()
            self.hardware.show_details(None)
            self.hardware.show_message("" if vm is None else
                                       "You may not view this VM's details (vm.view).")
            self.screen.show_message("")
            return
        vm = self.vm
        if previous is None or previous.key != vm.key:
            # Another VM: read once the selection rests (arrow keys through the table start no
            # read per VM passed); what the last VM's reads bring is dropped.
            self.stop()
            self.details = None
            self.hardware.show_details(None)
            self.hardware.show_message(f"Reading {vm.name}'s details from {vm.host}…")
            self.screen.show_message("Reading the screen…" if vm.state in SCREEN_STATES else
                                     f"No screen: the VM is {vm.state.lower()}.")
            self.settle.start()
            return
        if self.settle.isActive():
            return  # still resting: the read to come sees this state
        if previous.state != vm.state:
            self._read(clear=False)
        self._screen()

    def _open(self) -> None:
        if self.vm is not None:
            self._read(clear=False)
            self._screen()

    def _screen(self) -> None:
        """Read the screen now and every THUMBNAIL_SECONDS, of a VM that has one."""
        vm = self.vm
        assert vm is not None
        if vm.state in SCREEN_STATES:
            if not self.timer.isActive():
                self._shoot()
                self.timer.start()
        else:
            self.timer.stop()
            self.screen.show_message(f"No screen: the VM is {vm.state.lower()}.")

    def stop(self) -> None:
        self.timer.stop()
        self.settle.stop()
        for task in (self._reading, self._shooting):
            if task is not None:
                task.cancel()
        self._reading = self._shooting = None

    def _read(self, clear: bool) -> None:
        vm = self.vm
        assert vm is not None
        if self._reading is not None:
            self._reading.cancel()
        if clear:
            self.details = None
            self.hardware.show_details(None)
        self.hardware.show_message(f"Reading {vm.name}'s details from {vm.host}…")

        def shown(details: VMDetails) -> None:
            if self.vm is not None and self.vm.key == vm.key and details.id == vm.id:
                self.details = details
                self.hardware.show_message("")
                self.hardware.show_details(details)
                self.on_details(details)

        def failed(error: BaseException) -> None:
            if self.vm is not None and self.vm.key == vm.key:
                self.hardware.show_message(f"{vm.host} could not give the details: {error}")

        def done() -> None:
            self._reading = None

        client = self.client_for(vm.host)
        self._reading = self.tasks.run(client.details, vm.id, label=f"details of {vm.name}") \
            .on_success(shown).on_failure(failed).on_finished(done)

    def _tick(self) -> None:
        # Read again only while the screen is on view: another tab open costs the host nothing.
        if self.screen.isVisible():
            self._shoot()

    def _shoot(self) -> None:
        vm = self.vm
        if vm is None or self._shooting is not None:
            return  # one read at a time: a slow host is not asked again meanwhile

        def shown(shot: Thumbnail) -> None:
            if self.vm is not None and self.vm.key == vm.key and shot.vm_id == vm.id:
                self.screen.show_thumbnail(shot)

        def failed(error: BaseException) -> None:
            if self.vm is not None and self.vm.key == vm.key:
                self.timer.stop()  # not every 5 s again: the next refresh or selection tries
                self.screen.show_message(f"No screen: {error}")

        def done() -> None:
            self._shooting = None

        client = self.client_for(vm.host)
        self._shooting = self.tasks.run(client.thumbnail, vm.id, *THUMBNAIL_SIZE,
                                        label=f"screen of {vm.name}") \
            .on_success(shown).on_failure(failed).on_finished(done)

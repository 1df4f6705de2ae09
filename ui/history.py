"""CPU and memory of each VM over this session's refreshes, and a small chart of them.

Kept in memory only, for the last SAMPLES refreshes of each VM: one byte a sample for CPU (0-100 %)
and four for memory (MB), so 10,000 VMs cost a few MB however long the console stays open.
"""
from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPen, QPolygonF
from PySide6.QtWidgets import QSizePolicy, QWidget

from console.inventory import VM

from .text import shade

SAMPLES = 60  # an hour at the default refresh of 60 s
Key = tuple[str, str]


class Samples:
    __slots__ = ("cpu", "memory_mb")

    def __init__(self) -> None:
        self.cpu = bytearray()
        self.memory_mb = array("I")

    def add(self, cpu_pct: int, memory_bytes: int) -> None:
        if len(self.cpu) >= SAMPLES:
            del self.cpu[0]
            del self.memory_mb[0]
        self.cpu.append(max(0, min(100, cpu_pct)))
        self.memory_mb.append(max(0, memory_bytes) >> 20)


class UsageHistory:
    """Samples per VM key; a VM that is not running adds nothing (its CPU is no news)."""

    def __init__(self) -> None:
        self._samples: dict[Key, Samples] = {}

    def record(self, vms: Iterable[VM]) -> None:
        samples = self._samples
        for vm in vms:
            if vm.state != "Running":
                continue
            s = samples.get(vm.key)
            if s is None:
                s = samples[vm.key] = Samples()
            s.add(vm.cpu_pct, vm.memory_bytes)

    def forget(self, keep: set[Key]) -> None:
        """Drop the VMs no longer listed (moved away, deleted, no longer delegated)."""
        for key in [k for k in self._samples if k not in keep]:
            del self._samples[key]

    def of(self, key: Key) -> Samples | None:
        return self._samples.get(key)

    def __len__(self) -> int:
        return len(self._samples)


class Sparkline(QWidget):
    """A line of values scaled to the widget, the last value named beside it."""

    def __init__(self, unit: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.unit = unit
        self.values: Sequence[int] = ()
        self.maximum = 100
        # A level to draw across the chart (Hyper-V resource metering's average), or None.
        self.reference: int | None = None
        # The usual range at this hour of the week (the person's baselines), shaded, or None.
        self.band: tuple[int, int] | None = None
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def sizeHint(self) -> QSize:
        return QSize(160, 2 * self.fontMetrics().height())

    def show_values(self, values: Sequence[int], maximum: int | None = None) -> None:
        self.values = list(values)
        self.maximum = max(1, maximum if maximum is not None else
                           max([*self.values, self.reference or 0], default=1))
        self.setToolTip(f"{len(self.values)} refreshes; last {self.values[-1]} {self.unit}"
                        if self.values else "No samples yet: the VM has not been seen running.")
        self.update()

    def show_reference(self, value: int | None, what: str = "") -> None:
        """Draw `value` across the chart as a dashed line (None: no line); `what` says whose."""
        self.reference = value
        if value is not None:
            self.maximum = max(self.maximum, value)
            self.setToolTip(self.toolTip() + f"\nDashed: {what} {value} {self.unit}".rstrip())
        self.update()

    def show_band(self, band: tuple[int, int] | None) -> None:
        """Shade `band` (low, high) behind the line: what is usual at this hour of the week."""
        self.band = band
        if band is not None:
            self.maximum = max(self.maximum, band[1])
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        label = f"{self.values[-1]} {self.unit}" if self.values else "—"
        label_width = self.fontMetrics().horizontalAdvance("9999 MB ")
        area = QRectF(self.rect()).adjusted(1, 2, -label_width, -2)
        painter.setPen(QPen(QColor(shade("muted")), 1))
        painter.drawLine(area.bottomLeft(), area.bottomRight())
        if self.band is not None:
            low, high = (min(v, self.maximum) / self.maximum for v in self.band)
            band = QColor(shade("muted"))
            band.setAlpha(80)
            painter.fillRect(QRectF(area.left(), area.bottom() - area.height() * high,
                                    area.width(), area.height() * (high - low)), band)
        if self.reference is not None:
            y = area.bottom() - area.height() * min(self.reference, self.maximum) / self.maximum
            painter.setPen(QPen(QColor(shade("muted")), 1, Qt.PenStyle.DashLine))
            painter.drawLine(QPointF(area.left(), y), QPointF(area.right(), y))
        if len(self.values) > 1:
            step = area.width() / (len(self.values) - 1)
            points = QPolygonF([QPointF(area.left() + i * step,
                                        area.bottom() - area.height() * v / self.maximum)
                                for i, v in enumerate(self.values)])
            painter.setPen(QPen(QColor(shade("ok")), 1.5))
            painter.drawPolyline(points)
        painter.setPen(self.palette().color(self.foregroundRole()))
        painter.drawText(QRectF(area.right() + 4, 0, label_width, self.height()),
                         int(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft), label)
        painter.end()

"""Untrusted text on screen: VM names, notes, owners and host messages are written by other people.

Qt guesses whether a string is rich text (Qt.AutoText); a VM called `<img src=x>` would be
rendered as markup. Labels and message boxes showing such text are set to Qt.PlainText; tooltips
are always rich text in Qt, so their text is escaped and wrapped so Qt never guesses.
"""
from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication, QLabel, QWidget

from console.text import one_line, plain


def tip(*lines: str) -> str:
    """A tooltip showing `lines` literally (escaped, forced to rich text so escapes render)."""
    body = "<br>".join(html.escape(plain(line)).replace("\n", "<br>") for line in lines if line)
    return f"<qt>{body}</qt>" if body else ""


def cell(text: str) -> str:
    """Text for a table cell: one line, control characters shown escaped."""
    return one_line(text)


class PlainLabel(QLabel):
    """A label of plain text: every text it is given (now or later, `setText`) is shown with
    control and bidirectional characters escaped (console/text.py `plain`), never as markup."""

    def setText(self, text: str) -> None:  # noqa: N802 (Qt's name)
        super().setText(plain(text))


def plain_label(text: str = "", parent: QWidget | None = None, *, selectable: bool = True,
                wrap: bool = False) -> QLabel:
    """A QLabel that never interprets its text as markup."""
    label = PlainLabel(parent)
    label.setTextFormat(Qt.TextFormat.PlainText)
    if selectable:
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setWordWrap(wrap)
    label.setText(plain(text))
    return label


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit in ("B", "KB") else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def human_duration(seconds: int) -> str:
    if seconds <= 0:
        return ""
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def fit_on_screen(widget: QWidget, width: int, height: int) -> None:
    """Size a window to (width, height) or the screen's available area, whichever is smaller,
    and keep it inside that area: at 150% a 1024x768 screen has 683x512 to offer."""
    area = widget.screen().availableGeometry()
    widget.resize(min(width, area.width()), min(height, area.height()))
    frame = widget.frameGeometry()
    if not area.contains(frame):
        widget.move(max(area.left(), min(frame.left(), area.right() - frame.width())),
                    max(area.top(), min(frame.top(), area.bottom() - frame.height())))


# Each meaning in two shades: for a light window (WCAG AA on white) and for a dark one (on #202020).
_SHADES = {
    "ok": ("#2e7d32", "#81c784"), "warn": ("#8a5300", "#ffd54f"), "error": ("#b00020", "#ef9a9a"),
    "busy": ("#6a1b9a", "#ce93d8"), "muted": ("#616161", "#9e9e9e"),
}


def dark_palette() -> bool:
    app = QApplication.instance()
    return isinstance(app, QApplication) and app.palette().color(QPalette.ColorRole.Window).lightness() < 128


def shade(meaning: str) -> str:
    """The colour of `meaning` (ok, warn, error, busy, muted) readable on the current palette."""
    light, dark = _SHADES[meaning]
    return dark if dark_palette() else light

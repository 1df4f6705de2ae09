"""The one place the GUI turns exceptions into messages.

A ConsoleError is expected: its sentence is shown. Anything else is a bug: a short apology with
the traceback under "Show Details..." to copy into a report; the window carries on either way.
"""
from __future__ import annotations

import sys
import traceback
from types import TracebackType

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from console.errors import ConsoleError
from console.text import plain


def describe(exc: BaseException) -> tuple[str, str]:
    """(sentence, details) for an exception; details are empty for known errors."""
    if isinstance(exc, ConsoleError):
        return plain(str(exc)), ""
    details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return (f"Something unexpected went wrong ({type(exc).__name__}). The window keeps working; "
            "please send the details below to your administrator."), details


class ErrorDialog:
    """Shows one error. Tests replace `present` to record instead of opening a modal loop."""

    shown: list[tuple[str, str]] = []  # the last messages, for the record (tests read it too)

    @classmethod
    def present(cls, parent: QWidget | None, title: str, sentence: str, details: str) -> None:
        box = QMessageBox(parent)
        box.setIcon(QMessageBox.Icon.Warning if not details else QMessageBox.Icon.Critical)
        box.setWindowTitle(title)
        box.setTextFormat(Qt.TextFormat.PlainText)  # messages carry names written by others
        box.setText(sentence)
        if details:
            box.setDetailedText(details)  # always plain text; has its own copy-able box
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.exec()


def show_exception(exc: BaseException, parent: QWidget | None = None,
                   title: str = "Hyper-V Console") -> None:
    sentence, details = describe(exc)
    ErrorDialog.shown = [*ErrorDialog.shown[-19:], (sentence, details)]
    ErrorDialog.present(parent or QApplication.activeWindow(), title, sentence, details)


def install_excepthook() -> None:
    """Unexpected exceptions in slots show a dialog instead of ending the program."""

    def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, exc, tb)
            return
        exc.__traceback__ = tb
        traceback.print_exception(kind, exc, tb)
        show_exception(exc)

    sys.excepthook = hook

"""ui/app.py: the platform's style on Windows (Qt's Windows 11 style where Qt offers it)."""
from __future__ import annotations

import pytest
from PySide6.QtWidgets import QApplication

import ui.app
from ui.app import make_application, platform_style


@pytest.mark.parametrize(("platform", "offered", "chosen"), [
    ("win32", ["windows11", "windowsvista", "Windows", "Fusion"], "windows11"),  # Qt 6.7+
    ("win32", ["Windows11", "Fusion"], "windows11"),  # the keys are case-insensitive
    ("win32", ["windowsvista", "Windows", "Fusion"], None),  # Qt before 6.7: its own default
    ("linux", ["windows11", "Windows", "Fusion"], None),  # never off Windows
    ("darwin", ["macos", "Fusion"], None),
])
def test_the_style_follows_the_platform(platform: str, offered: list[str], chosen: str | None) -> None:
    assert platform_style(platform, offered) == chosen


def test_the_application_takes_the_chosen_style(qapp: QApplication, monkeypatch) -> None:
    before = qapp.style().name()
    try:
        monkeypatch.setattr(ui.app, "platform_style", lambda platform, offered: "fusion")
        assert make_application() is qapp and qapp.style().name() == "fusion"
        monkeypatch.setattr(ui.app, "platform_style", lambda platform, offered: None)
        qapp.setStyle("windows")
        make_application()
        assert qapp.style().name() == "windows"  # None: the style is left as Qt chose it
    finally:
        qapp.setStyle(before)

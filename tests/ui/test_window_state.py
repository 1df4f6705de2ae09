"""Points of issue #17 that had code but no test of their own: the window keeps its geometry,
copying diagnostics says so, and the activity list stamps each entry with its time."""
from __future__ import annotations

import re

from console.inventory import Action

from . import test_mainwindow

world = test_mainwindow.world
open_as = test_mainwindow.open_as


def test_the_window_opens_where_the_person_left_it(open_as) -> None:
    first = open_as("olivia")
    window = first.window
    window.show()
    window.resize(700, 520)
    first.qtbot.waitUntil(lambda: window.width() == 700)
    window.close()  # closing saves the geometry in the person's window settings
    again = open_as("olivia")
    assert (again.window.width(), again.window.height()) == (700, 520)
    screen = again.window.screen().availableGeometry()
    assert again.window.width() <= screen.width() and again.window.height() <= screen.height()


def test_copying_diagnostics_says_it_did(open_as) -> None:
    henry = open_as("henry")
    menus = {a.text(): a.menu() for a in henry.window.menuBar().actions()}
    next(a for a in menus["&Help"].actions() if a.text() == "&Copy diagnostics").trigger()
    assert "Diagnostics copied to the clipboard" in henry.window.statusBar().currentMessage()


def test_each_activity_entry_has_its_time(open_as) -> None:
    henry = open_as("henry")
    henry.select("office-files")
    status, message = henry.act(Action.START)
    assert status == "ok", message
    entries = [henry.window.progress.list.item(i).text()
               for i in range(henry.window.progress.list.count())]
    assert entries and re.search(r"\(\d\d:\d\d:\d\d\)$", entries[-1]), entries


def test_help_opens_the_documentation_and_about_says_where_it_is(open_as, monkeypatch) -> None:
    from console.paths import DOCS, README

    henry = open_as("henry")
    window = henry.window
    opened: list[str] = []
    monkeypatch.setattr(window, "open_url", lambda url: opened.append(url.toLocalFile()) or True)
    menus = {a.text(): a.menu() for a in window.menuBar().actions()}
    next(a for a in menus["&Help"].actions() if a.text() == "&Documentation").trigger()
    assert opened == [str(README)] and README.name == "README.md" and README.exists()
    assert (DOCS / "policy.md").exists() and (DOCS / "host-operations.md").exists()
    assert str(README) in window.about_text() and str(DOCS) in window.about_text()
    assert "Opened" in window.statusBar().currentMessage()
    # Without a README beside the program it says where to ask, and opens nothing.
    monkeypatch.setattr("ui.mainwindow.README", DOCS / "no-such-file.md")
    assert not window.open_documentation() and len(opened) == 1
    assert "ask your administrators" in window.statusBar().currentMessage()

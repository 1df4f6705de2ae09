"""GUI test set-up: offscreen Qt, no worker left running, no real keyring or settings touched."""
from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend
from PySide6.QtCore import QSettings, QThreadPool

from console import logs
from ui.dialogs import AskText, Confirm, IsoDialog, PasswordPrompt
from ui.errors import ErrorDialog


class MemoryKeyring(KeyringBackend):
    """A credential store that lives in this process only."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.passwords: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.passwords.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.passwords[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.passwords.pop((service, username), None)


@pytest.fixture(autouse=True)
def no_dangling_workers(qapp: object) -> Iterator[None]:
    yield
    pool = QThreadPool.globalInstance()
    finished = pool.waitForDone(30_000)
    assert finished and pool.activeThreadCount() == 0, "a test left worker threads running"
    # Collect now, so a Qt object freed under a live wrapper (a model without a Qt parent, say)
    # crashes in the test that made it, not in some later, unrelated collection.
    gc.collect()


@pytest.fixture(autouse=True)
def no_console_viewer(monkeypatch: pytest.MonkeyPatch) -> None:
    """No window finds a console viewer (FreeRDP may be installed here): no test starts a real
    one. tests/ui/test_console_connect.py gives the window its own."""
    from ui.mainwindow import MainWindow

    monkeypatch.setattr(MainWindow, "find_viewer", staticmethod(lambda: None))


@pytest.fixture(autouse=True)
def redactions_of_this_test_only() -> Iterator[None]:
    """The sign-in dialog registers each password it is given for log redaction, for the rest of
    the process: a test's passwords ("wrong", "x") must not mask text in the next tests' logs."""
    saved = set(logs._known)
    yield
    with logs._lock:
        logs._known.clear()
        logs._known.update(saved)


@pytest.fixture(autouse=True)
def baselines_of_this_test_only(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A window learns each refresh into the person's baseline file: this test's folder, never
    the user's."""
    from console import baseline

    monkeypatch.setattr(baseline, "user_data_dir", lambda: tmp_path / "data")


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(previous)


@pytest.fixture
def settings(tmp_path: Path) -> QSettings:
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


class Answers:
    """What the replaced dialogs answer, and what they were asked."""

    def __init__(self) -> None:
        self.confirm = True
        self.text: str | None = "test checkpoint"
        self.iso: str | None = None  # file name to pick from the offered list
        self.password: str | None = None
        self.asked: list[tuple[str, ...]] = []
        self.errors: list[tuple[str, str]] = []


@pytest.fixture
def answers(monkeypatch: pytest.MonkeyPatch) -> Answers:
    """Replace every modal dialog's class method: no modal loop runs in a test."""
    a = Answers()

    def confirm(parent: object, title: str, text: str, details: str = "", yes: str = "") -> bool:
        a.asked.append(("confirm", title, text, details))
        return a.confirm

    def ask_text(parent: object, title: str, label: str, default: str = "") -> str | None:
        a.asked.append(("text", title, label))
        return a.text

    def choose(parent: object, host: str, isos: list, vm_name: str) -> object:
        a.asked.append(("iso", host, *(i.name for i in isos)))
        return next((i for i in isos if i.name == a.iso), None)

    def password(parent: object, user: str, reason: str) -> str | None:
        a.asked.append(("password", user, reason))
        return a.password

    def error(parent: object, title: str, sentence: str, details: str) -> None:
        a.errors.append((sentence, details))

    monkeypatch.setattr(Confirm, "ask", classmethod(lambda cls, *args, **kw: confirm(*args, **kw)))
    monkeypatch.setattr(AskText, "ask", classmethod(lambda cls, *args, **kw: ask_text(*args, **kw)))
    monkeypatch.setattr(IsoDialog, "choose", classmethod(lambda cls, *args, **kw: choose(*args, **kw)))
    monkeypatch.setattr(PasswordPrompt, "ask", classmethod(lambda cls, *args, **kw: password(*args, **kw)))
    monkeypatch.setattr(ErrorDialog, "present", classmethod(lambda cls, *args, **kw: error(*args, **kw)))
    return a

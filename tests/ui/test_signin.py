"""The sign-in dialog against the demo directory: success, each failure, cancel, remember me."""
from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox

from console import secrets
from console.identity import Identity
from ui.signin import DEMO_ACCOUNTS, SignInDialog
from ui.tasks import Tasks

from lab.directory import LabDirectory


@pytest.fixture
def directory():
    return LabDirectory()


@pytest.fixture
def tasks() -> Tasks:
    return Tasks(pytest.fail)


def open_dialog(qtbot, tasks: Tasks, sign_in, settings: QSettings, demo: bool = True) -> SignInDialog:
    dialog = SignInDialog(tasks, sign_in, settings, DEMO_ACCOUNTS if demo else ())
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def sign_in(qtbot, dialog: SignInDialog, user: str, password: str) -> None:
    dialog.user_field.setText(user)
    dialog.password_field.setText(password)
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.signing_in, timeout=20_000)


@pytest.mark.parametrize("user", ["henry", "LAB\\henry", "henry@lab.example"])
def test_sign_in_accepts_each_name_form(qtbot, tasks, directory, settings, user: str) -> None:
    dialog = open_dialog(qtbot, tasks, directory.sign_in, settings)
    sign_in(qtbot, dialog, user, "henry-demo")
    assert dialog.result() == QDialog.DialogCode.Accepted
    assert isinstance(dialog.identity, Identity) and dialog.identity.name == "LAB\\henry"
    assert settings.value("signin/user") == user and dialog.password == "henry-demo"


@pytest.mark.parametrize("user, password, words", [
    ("henry", "wrong", "password"),
    ("dan", "dan-demo", "disabled"),
    ("nobody", "x-demo", "password"),
])
def test_each_failure_shows_the_directory_sentence(qtbot, tasks, directory, settings, user: str,
                                                  password: str, words: str) -> None:
    try:
        directory.sign_in(user, password)
    except Exception as exc:  # the directory layer's own sentence is what the dialog must show
        expected = str(exc)
    else:
        pytest.fail("the demo directory accepted a bad sign-in")
    dialog = open_dialog(qtbot, tasks, directory.sign_in, settings)
    sign_in(qtbot, dialog, user, password)
    assert dialog.isVisible() and dialog.identity is None
    assert dialog.error.text() == expected and words in expected.lower()
    assert dialog.error.textFormat() == Qt.TextFormat.PlainText
    assert dialog.password_field.text() == "" and dialog.user_field.isEnabled()


def test_empty_fields_are_refused_without_a_directory_call(qtbot, tasks, directory, settings) -> None:
    dialog = open_dialog(qtbot, tasks, directory.sign_in, settings)
    dialog.user_field.setText("henry")
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    assert not dialog.signing_in and "password" in dialog.error.text()


def test_busy_state_and_cancel_while_signing_in(qtbot, tasks, directory, settings) -> None:
    release = threading.Event()

    def slow_sign_in(user: str, password: str) -> Identity:
        release.wait(10)  # a domain controller that takes its time
        return directory.sign_in(user, password)

    dialog = open_dialog(qtbot, tasks, slow_sign_in, settings)
    dialog.user_field.setText("henry")
    dialog.password_field.setText("henry-demo")
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    assert dialog.signing_in and not dialog.busy.isHidden()
    assert not dialog.user_field.isEnabled() and not dialog.ok_button.isEnabled()
    cancel = dialog.buttons.button(QDialogButtonBox.StandardButton.Cancel)
    assert cancel.isEnabled()
    qtbot.mouseClick(cancel, Qt.MouseButton.LeftButton)
    assert dialog.result() == QDialog.DialogCode.Rejected and not dialog.isVisible()
    (task,) = tasks.running
    release.set()
    qtbot.waitUntil(lambda: task.done, timeout=20_000)
    assert dialog.identity is None  # the late success is ignored
    assert settings.value("signin/user") is None


def test_remember_me_stores_the_password_only_when_ticked(qtbot, tasks, directory, settings,
                                                         memory_keyring) -> None:
    dialog = open_dialog(qtbot, tasks, directory.sign_in, settings)
    assert dialog.remember.isEnabled() and not dialog.remember.isChecked()  # off by default
    sign_in(qtbot, dialog, "olivia", "olivia-demo")
    assert memory_keyring.passwords == {}  # only the user name is remembered
    assert settings.value("signin/user") == "olivia"

    again = open_dialog(qtbot, tasks, directory.sign_in, settings)
    assert again.user_field.text() == "olivia" and again.password_field.text() == ""
    again.password_field.setText("olivia-demo")
    again.remember.setChecked(True)
    qtbot.mouseClick(again.ok_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not again.signing_in, timeout=20_000)
    assert memory_keyring.passwords == {(secrets.SERVICE, "olivia"): "olivia-demo"}

    third = open_dialog(qtbot, tasks, directory.sign_in, settings)
    assert third.password_field.text() == "olivia-demo" and third.remember.isChecked()
    third.remember.setChecked(False)  # unticking forgets it at the next sign-in
    qtbot.mouseClick(third.ok_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not third.signing_in, timeout=20_000)
    assert memory_keyring.passwords == {}


def test_remember_me_is_disabled_without_a_credential_store(qtbot, tasks, directory, settings) -> None:
    dialog = open_dialog(qtbot, tasks, directory.sign_in, settings)  # null keyring (tests/conftest)
    assert not dialog.remember.isEnabled() and "session only" in dialog.remember.toolTip()


def test_demo_accounts_are_listed_and_fill_the_form(qtbot, tasks, directory, settings) -> None:
    dialog = open_dialog(qtbot, tasks, directory.sign_in, settings)
    assert dialog.demo_list is not None and dialog.demo_list.count() == 7
    listed = [dialog.demo_list.item(i).text().split()[0] for i in range(7)]
    assert listed == ["olivia", "henry", "adam", "rita", "dan", "bea", "hannah"]
    item = dialog.demo_list.item(5)
    rect = dialog.demo_list.visualItemRect(item)
    qtbot.mouseClick(dialog.demo_list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert (dialog.user_field.text(), dialog.password_field.text()) == ("bea", "bea-demo")
    plain = open_dialog(qtbot, tasks, directory.sign_in, settings, demo=False)
    assert plain.demo_list is None


# --- what the password and an unsafe setting meet -----------------------------------------------------

def test_the_password_is_registered_for_redaction_before_the_directory_sees_it(
        qtbot, tasks, settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from console import logs

    registered: list[str] = []
    monkeypatch.setattr(logs, "redact", registered.append)
    seen: list[list[str]] = []

    def directory(user: str, password: str) -> Identity:
        seen.append(list(registered))  # what was registered by the time the bind happens
        return LabDirectory().sign_in(user, password)

    dialog = open_dialog(qtbot, tasks, directory, settings, demo=False)
    sign_in(qtbot, dialog, "henry", "henry-demo")
    assert seen == [["henry-demo"]] and dialog.result() == QDialog.DialogCode.Accepted


def test_an_unsafe_directory_setting_is_said_above_the_fields(qtbot, tasks, directory,
                                                              settings) -> None:
    from console.config import INSECURE_DIRECTORY

    plain = open_dialog(qtbot, tasks, directory.sign_in, settings)
    assert not plain.warning.isVisibleTo(plain)
    dialog = SignInDialog(tasks, directory.sign_in, settings, warnings=[INSECURE_DIRECTORY])
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.warning.isVisible() and dialog.warning.text() == INSECURE_DIRECTORY
    assert dialog.warning.textFormat() == Qt.TextFormat.PlainText
    sign_in(qtbot, dialog, "henry", "wrong")
    assert dialog.warning.isVisible()  # still there after a failed attempt


def test_the_window_keeps_an_unsafe_setting_in_sight(qtbot, tmp_path, settings) -> None:
    from console.audit import AuditTrail
    from console.config import INSECURE_DIRECTORY, Config, DirectoryConfig
    from console.paths import LAB_DATA
    from console.policy import Policy
    from console.session import Setup
    from ui.app import Services
    from ui.mainwindow import MainWindow

    def window(directory: DirectoryConfig) -> MainWindow:
        setup = Setup(Config(directory=directory), Policy.load(LAB_DATA / "policy.toml"),
                      LabDirectory(), AuditTrail(tmp_path / "audit.jsonl"))
        services = Services(setup, settings)
        session = services.open_session(LabDirectory().sign_in("henry", "henry-demo"), "henry-demo")
        win = MainWindow(services, session, Tasks(pytest.fail))
        qtbot.addWidget(win)
        win.show()
        return win

    safe = window(DirectoryConfig(urls=["ldaps://dc1.lab.example"]))
    assert not safe.insecure.isVisible()
    unsafe = window(DirectoryConfig(urls=["ldaps://dc1.lab.example"], skip_certificate_check=True))
    assert unsafe.insecure.isVisible() and unsafe.insecure.text() == f"Warning: {INSECURE_DIRECTORY}"
    assert unsafe.insecure.textFormat() == Qt.TextFormat.PlainText
    assert "Certificate not checked" in [w.text() for w in unsafe.statusBar().findChildren(
        type(unsafe.insecure))]
    # the sign-in behind this window is in the audit trail too
    assert [r.action for r in AuditTrail(tmp_path / "audit.jsonl").records()] == ["config.insecure"]

"""Windows sign-in in the sign-in dialog, for real: a ticket from the Samba KDC (MIT kinit), the
directory's SASL GSSAPI bind in a worker, and the main window's "Signed in as ... (Windows
sign-in)"; without a ticket the dialog is the password dialog it always was."""
from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QDialog

from console.directory import Directories
from console.kerberos import current_ticket
from console.session import ticket_identity
from tests.samba import SambaDC
from tests.test_kerberos import krb5, ticket  # noqa: F401 - the fixtures
from ui.signin import SignInDialog, WindowsSignIn
from ui.tasks import Tasks

pytestmark = pytest.mark.samba


@pytest.fixture
def tasks() -> Tasks:
    return Tasks(pytest.fail)


def _dialog(qtbot, tasks: Tasks, settings: QSettings, dc: SambaDC) -> SignInDialog:
    directory = Directories(dc.config())
    sso = WindowsSignIn(current_ticket, lambda: ticket_identity(directory))
    dialog = SignInDialog(tasks, directory.sign_in, settings, sso=sso)
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def test_a_ticket_signs_in_without_a_password(qtbot, tasks, settings, ticket: Path,  # noqa: F811
                                              samba_dc: SambaDC) -> None:
    dialog = _dialog(qtbot, tasks, settings, samba_dc)
    qtbot.waitUntil(dialog.windows_button.isVisible, timeout=10_000)
    assert dialog.windows_button.text() == "Sign in as alice@LAB.EXAMPLE (Windows sign-in)"
    assert dialog.password_field.text() == ""
    # Enter in the password field is still the password's way (here: nothing typed yet).
    dialog.password_field.setFocus()
    qtbot.keyClick(dialog.password_field, Qt.Key.Key_Return)
    assert dialog.error.text() == "Enter your user name and password." and not dialog.signing_in
    qtbot.mouseClick(dialog.windows_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.signing_in, timeout=20_000)
    assert dialog.result() == QDialog.DialogCode.Accepted, dialog.error.text()
    assert dialog.sso and dialog.password == "" and dialog.identity is not None
    assert dialog.identity.name == "LAB\\alice"
    assert dialog.identity.extra["sign_in"] == "Windows sign-in"
    assert "LAB\\HV-Helpdesk" in {g.name for g in dialog.identity.groups}


def test_without_a_ticket_the_dialog_asks_for_the_password(
        qtbot, tasks, settings, krb5, samba_dc: SambaDC, tmp_path: Path,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path / 'none'}")
    dialog = _dialog(qtbot, tasks, settings, samba_dc)
    qtbot.waitUntil(lambda: not tasks.running, timeout=10_000)
    assert not dialog.windows_button.isVisible()
    dialog.user_field.setText("alice")
    dialog.password_field.setText(samba_dc.passwords["alice"])
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.signing_in, timeout=20_000)
    assert dialog.result() == QDialog.DialogCode.Accepted and not dialog.sso
    assert dialog.identity is not None and "sign_in" not in dialog.identity.extra


def test_a_ticket_of_another_realm_is_refused_with_its_sentence(
        qtbot, tasks, settings, krb5, samba_dc: SambaDC, samba_other_dc: SambaDC,  # noqa: F811
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cc"
    samba_other_dc.kinit("oscar", cache, env=krb5)
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{cache}")
    dialog = _dialog(qtbot, tasks, settings, samba_dc)
    qtbot.waitUntil(dialog.windows_button.isVisible, timeout=10_000)
    assert dialog.windows_button.text() == "Sign in as oscar@OTHER.EXAMPLE (Windows sign-in)"
    qtbot.mouseClick(dialog.windows_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.signing_in, timeout=20_000)
    assert dialog.result() != QDialog.DialogCode.Accepted and dialog.identity is None
    assert dialog.error.text().startswith("Your Kerberos ticket is for realm OTHER.EXAMPLE, but "
                                          "this console signs in people of LAB.EXAMPLE")
    assert dialog.user_field.isEnabled() and dialog.password_field.isEnabled()


def test_the_host_status_says_ntlm_when_a_host_fell_back_to_it(qtbot) -> None:
    from console.hosts import HostResult, HostStatus
    from ui.mainwindow import HostStatusBar

    bar = HostStatusBar(["HV01", "HV02"])
    qtbot.addWidget(bar)
    bar.set_auth("HV01", "ntlm")
    bar.set_auth("HV02", "kerberos")
    for host in ("HV01", "HV02"):
        bar.show_result(HostResult(host, HostStatus.OK))
    assert bar.labels["hv01"].text().endswith("· NTLM")
    assert "signed in with NTLM" in bar.labels["hv01"].toolTip()
    assert "NTLM" not in bar.labels["hv02"].text()
    bar.set_auth("HV01", "kerberos")  # a new connection with a ticket
    bar.show_result(HostResult("HV01", HostStatus.OK))
    assert "NTLM" not in bar.labels["hv01"].text()


def test_the_review_window_recommends_allow_ntlm_false(qtbot, tmp_path: Path) -> None:
    from datetime import date
    from types import SimpleNamespace

    from console.audit import AuditTrail
    from console.config import Config, HostConfig
    from console.identity import Group, Identity
    from console.paths import LAB_DATA
    from console.policy import Policy
    from ui.review import ReviewWindow

    domain = "S-1-5-21-1000-2000-3000"
    rita = Identity(f"{domain}-1104", "LAB\\rita", groups=(Group(f"{domain}-1205", "LAB\\HV-Reviewers"),))
    config = Config(hosts=[HostConfig("HV01", "http://hv01.lab.example:5985/wsman"),
                           HostConfig("HV02", "http://hv02.lab.example:5985/wsman", allow_ntlm=False)])
    services = SimpleNamespace(policy=Policy.load(LAB_DATA / "policy.toml"), config=config,
                               audit=AuditTrail(tmp_path / "audit.jsonl"))
    window = ReviewWindow(services, session=SimpleNamespace(identity=rita), inventory={}, facts={},
                          today=date(2026, 11, 26))
    qtbot.addWidget(window)
    found = [f for f in window.review.findings if f.kind.startswith("ntlm")]
    assert [(f.kind, f.objects) for f in found] == [("ntlm-allowed", ("HV01",))]

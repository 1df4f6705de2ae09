"""The sign-in dialog: domain credentials checked by the directory layer, off the GUI thread.

The password is kept in the credential store only when "remember me" is ticked (off by default);
otherwise only the user name is remembered (QSettings). It is registered for redaction before it
goes anywhere, so no log line can hold it. Cancel works while a sign-in runs: the worker finishes
on its own and its result is ignored. A setting that makes signing in unsafe
(skip_certificate_check) is said above the fields, for as long as the dialog is open.

Windows sign-in (single sign-on): when the dialog is given `sso` and a worker finds a usable
Kerberos ticket (the Windows logon on a domain-joined workstation, or a `kinit` ticket cache),
it offers "Sign in as LAB\\olivia" with no password: the directory bind (SASL GSSAPI) runs in a
worker too. Without a ticket the button stays hidden and the password fields are as before.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFormLayout,
                               QLineEdit, QListWidget, QListWidgetItem, QProgressBar, QPushButton,
                               QVBoxLayout, QWidget)

from console import logs, secrets
from console.errors import ConsoleError
from console.identity import Identity
from console.kerberos import Ticket

from .tasks import Task, Tasks
from .text import plain_label, shade, tip


@dataclass(frozen=True)
class DemoAccount:
    user: str
    password: str
    description: str


# docs/lab-world.md: the demo directory's accounts.
DEMO_ACCOUNTS: tuple[DemoAccount, ...] = (
    DemoAccount("olivia", "olivia-demo", "VM owner: the shop application"),
    DemoAccount("henry", "henry-demo", "helpdesk: power actions on HV02"),
    DemoAccount("adam", "adam-demo", "Hyper-V administrator: everything"),
    DemoAccount("rita", "rita-demo", "reviewer: sees all, changes nothing"),
    DemoAccount("dan", "dan-demo", "disabled account: sign-in fails"),
    DemoAccount("bea", "bea-demo", "build team: HV03's agents"),
    DemoAccount("hannah", "hannah-demo", "HR: owns payroll-db"),
)

SignIn = Callable[[str, str], Identity]


@dataclass(frozen=True)
class WindowsSignIn:
    """Single sign-on for the dialog: `ticket` says whose ticket there is (TicketError if none),
    `sign_in` signs that person in at the directory; both run in workers."""

    ticket: Callable[[], Ticket]
    sign_in: Callable[[], Identity]


class SignInDialog(QDialog):
    """On accept: `identity`, `password` and `user` are set; `sso` when the Windows sign-in (the
    Kerberos ticket) signed in, with no password."""

    def __init__(self, tasks: Tasks, sign_in: SignIn | Sequence[tuple[str, SignIn]],
                 settings: QSettings, demo_accounts: Sequence[DemoAccount] = (),
                 parent: QWidget | None = None, warnings: Sequence[str] = (),
                 sso: WindowsSignIn | None = None) -> None:
        super().__init__(parent)
        self.tasks, self.settings = tasks, settings
        # Several directory profiles (domains) are offered by name; one is just used.
        self.profiles = list(sign_in) if isinstance(sign_in, Sequence) else [("", sign_in)]
        self.identity: Identity | None = None
        self.password = ""
        self.user = ""
        self.sso = False
        self.windows = sso
        self._task: Task | None = None
        self._probe: Task | None = None  # the look for a ticket
        self.setWindowTitle("Sign in — Hyper-V Console")
        self.setMinimumWidth(420)

        layout = QVBoxLayout(self)
        self.warning = plain_label("\n".join(warnings), wrap=True, selectable=False)
        self.warning.setObjectName("insecure_warning")
        self.warning.setStyleSheet(f"color: {shade('error')}; font-weight: bold")
        self.warning.setVisible(bool(warnings))
        layout.addWidget(self.warning)
        # Shown once a worker has found a usable ticket (see _offer_windows).
        self.windows_button = QPushButton("Sign in with Windows")
        self.windows_button.setObjectName("windows_sign_in")
        self.windows_button.setToolTip(tip("Your Windows sign-in (Kerberos ticket) is used: no "
                                           "password is typed or sent."))
        self.windows_button.clicked.connect(self.submit_windows)
        self.windows_button.hide()
        layout.addWidget(self.windows_button)
        self.windows_note = plain_label("or with a password:", selectable=False)
        self.windows_note.hide()
        layout.addWidget(self.windows_note)
        form = QFormLayout()
        self.user_field = QLineEdit(placeholderText="name, DOMAIN\\name or name@domain")
        self.password_field = QLineEdit()
        self.password_field.setEchoMode(QLineEdit.EchoMode.Password)
        self.profile = QComboBox()
        for name, _ in self.profiles:
            self.profile.addItem(name)
        form.addRow("User name", self.user_field)
        form.addRow("Password", self.password_field)
        if len(self.profiles) > 1:
            form.addRow("Domain", self.profile)
        layout.addLayout(form)

        self.remember = QCheckBox("Remember my password on this computer")
        available, reason = secrets.credential_store_available()
        self.remember.setEnabled(available)
        self.remember.setToolTip(tip(f"Kept in {reason}." if available else reason))
        layout.addWidget(self.remember)

        self.busy = QProgressBar()
        self.busy.setRange(0, 0)  # indeterminate
        self.busy.setTextVisible(False)
        self.busy.setMaximumHeight(6)
        self.busy.hide()
        layout.addWidget(self.busy)
        self.error = plain_label("", wrap=True)  # the directory's sentence, never markup
        self.error.setStyleSheet(f"color: {shade('error')}")
        self.error.hide()
        layout.addWidget(self.error)

        self.demo_list: QListWidget | None = None
        if demo_accounts:
            layout.addWidget(plain_label("Demo accounts (click one to fill in):", selectable=False))
            self.demo_list = QListWidget()
            self.demo_accounts = list(demo_accounts)
            for account in demo_accounts:
                self.demo_list.addItem(QListWidgetItem(
                    f"{account.user}  /  {account.password}  —  {account.description}"))
            self.demo_list.setMaximumHeight(150)
            self.demo_list.itemClicked.connect(self._fill_demo)
            self.demo_list.itemDoubleClicked.connect(self._sign_in_demo)
            layout.addWidget(self.demo_list)

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText("Sign in")
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)

        last = str(settings.value("signin/user", "") or "")
        self.user_field.setText(last)
        remembered = secrets.recall(last) if last and available else None
        if remembered:
            self.password_field.setText(remembered)
            self.remember.setChecked(True)
        (self.password_field if last else self.user_field).setFocus()
        if sso is not None:
            self._probe = self.tasks.run(sso.ticket, label="look for a Kerberos ticket") \
                .on_success(self._offer_windows).on_failure(lambda error: None)

    # -- flow
    def _sign_in_demo(self, item: QListWidgetItem) -> None:
        self._fill_demo(item)
        self.submit()

    def _fill_demo(self, item: QListWidgetItem) -> None:
        assert self.demo_list is not None
        account = self.demo_accounts[self.demo_list.row(item)]
        self.user_field.setText(account.user)
        self.password_field.setText(account.password)

    @property
    def signing_in(self) -> bool:
        return self._task is not None

    def _offer_windows(self, ticket: Ticket) -> None:
        """A usable ticket: offer it first (a person without one sees the dialog as before)."""
        self.windows_button.setText(f"Sign in as {ticket.principal} (Windows sign-in)")
        self.windows_button.show()
        self.windows_note.show()
        # Focused, not the default: Enter in the password field still signs in with the password.
        self.windows_button.setFocus()

    def submit_windows(self) -> None:
        """Sign in with the Kerberos ticket: no password is asked for nor sent."""
        if self.signing_in or self.windows is None:
            return
        self._set_busy(True)
        self._task = (self.tasks.run(self.windows.sign_in, label="Windows sign-in")
                      .on_success(self._signed_in_windows)
                      .on_failure(self._failed))

    def _signed_in_windows(self, identity: Identity) -> None:
        self._task = None
        self._set_busy(False)
        self.identity, self.user, self.password, self.sso = identity, identity.name, "", True
        self.accept()

    def submit(self) -> None:
        if self.signing_in:
            return
        user, password = self.user_field.text().strip(), self.password_field.text()
        if not user or not password:
            self._fail("Enter your user name and password.")
            return
        _, sign_in = self.profiles[max(self.profile.currentIndex(), 0)]
        logs.redact(password)  # before the directory (and its library's logging) sees it
        self._set_busy(True)
        self._task = (self.tasks.run(sign_in, user, password, label="sign in")
                      .on_success(lambda identity: self._signed_in(user, password, identity))
                      .on_failure(self._failed))

    def _signed_in(self, user: str, password: str, identity: Identity) -> None:
        self._task = None
        self._set_busy(False)
        self.identity, self.user, self.password = identity, user, password
        self.settings.setValue("signin/user", user)
        if self.remember.isChecked():
            secrets.remember(user, password)
        else:
            secrets.forget(user)  # unticking removes a password kept earlier
        self.accept()

    def _failed(self, error: BaseException) -> None:
        self._task = None
        self._set_busy(False)
        if not isinstance(error, ConsoleError):
            self.tasks.default_error_handler(error)  # a bug: shown with its traceback
            return
        self._fail(str(error))
        self.password_field.clear()
        self.password_field.setFocus()

    def _fail(self, sentence: str) -> None:
        self.error.setText(sentence)
        self.error.show()

    def _set_busy(self, busy: bool) -> None:
        self.busy.setVisible(busy)
        for widget in (self.user_field, self.password_field, self.profile, self.remember,
                       self.ok_button, self.demo_list, self.windows_button):
            if widget is not None:
                widget.setEnabled(not busy and (widget is not self.remember
                                                or secrets.credential_store_available()[0]))
        if busy:
            self.error.hide()

    def reject(self) -> None:
        if self._probe is not None:
            self._probe.cancel()  # a dialog closed before the look for a ticket ended
        if self._task is not None:
            self._task.cancel()  # the bind finishes in the background; its result is dropped
            self._task = None
        super().reject()

    @classmethod
    def ask(cls, tasks: Tasks, sign_in: SignIn | Sequence[tuple[str, SignIn]], settings: QSettings,
            demo_accounts: Sequence[DemoAccount] = (), parent: QWidget | None = None,
            warnings: Sequence[str] = (), sso: WindowsSignIn | None = None) -> SignInDialog | None:
        dialog = cls(tasks, sign_in, settings, demo_accounts, parent, warnings, sso)
        return dialog if dialog.exec() == QDialog.DialogCode.Accepted else None

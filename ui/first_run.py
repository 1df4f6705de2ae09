"""The first start: no configuration yet, so the console asks where the directory and the hosts are,
proves the answers by signing in and reading each host once, and only then saves them. Or the
person opens the demo instead.

    if needs_first_run(config_path):
        choice = FirstRunDialog.ask(None, tasks, config_path=config_path)
        # a Config (saved), FirstRunDialog.DEMO, or None (cancelled)

Also the Help menu's two actions, `open_log_folder()` and `copy_diagnostics(config)`.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import PySide6
from PySide6.QtCore import QUrl, qVersion
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import (QComboBox, QDialog, QFileDialog, QFormLayout, QHBoxLayout, QLabel,
                               QLineEdit, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget)

from console import diagnostics, logs
from console.config import (Config, DirectoryConfig, HostConfig, machine_config_path,
                            machine_policy_path, machine_policy_problem, parse_host_lines,
                            user_config_path)
from console.directory import Directory, LdapDirectory
from console.errors import ConfigError, ConsoleError, PolicyError
from console.policy import Policy

from .errors import describe
from .tasks import Task, Tasks
from .text import plain_label, shade, tip

DOMAIN_NAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
                         r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
ENDPOINT_CHOICES = (("jea", "Delegated users (JEA endpoint)"),
                    ("admin", "Administrators (default endpoint)"))
ADMIN_ENDPOINT_WARNING = (
    "The admin endpoint (Microsoft.PowerShell) gives a full PowerShell on the host, with all of "
    "Hyper-V, to anyone allowed to connect to it: the delegation policy does not limit them there. "
    "Choose it only for accounts that administer these hosts; everyone else uses the JEA endpoint.")


def _split_urls(text: str) -> list[str]:
    return [u for u in re.split(r"[\s,;]+", text.strip()) if u]


def _readable_pem(path: str) -> str:
    """An error sentence for a CA file that cannot serve, or ''."""
    try:
        head = Path(path).read_bytes()[:1_000_000]
    except OSError as exc:
        return f"{path} cannot be read: {exc.strerror}."
    if b"-----BEGIN CERTIFICATE-----" not in head:
        return f"{path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)."
    return ""


class FirstRunDialog(QDialog):
    """Directory, hosts, policy and CA file, each validated as it is typed; "Test" signs in and
    reads every host; "Save" (after a successful test) writes the configuration."""

    DEMO = "demo"

    def __init__(self, parent: QWidget | None, tasks: Tasks, *, config_path: Path | None = None,
                 machine_policy: str | None = None,
                 open_directory: Callable[[DirectoryConfig], Directory] = LdapDirectory,
                 check: Callable[..., diagnostics.ConnectionCheck] = diagnostics.check_connection,
                 discover: Callable[..., list[HostConfig]] = diagnostics.discover_hosts,
                 offer_demo: bool = True) -> None:
        super().__init__(parent)
        self.setWindowTitle("Set up the Hyper-V Delegation Console")
        self.tasks = tasks
        self.config_path = config_path or user_config_path()
        # The policy comes from the computer's machine-wide file only: shown here, never typed.
        if machine_policy is None:
            self.machine_policy = machine_policy_path()
            machine_problem = machine_policy_problem()
        else:  # given by the caller (tests)
            self.machine_policy = machine_policy
            machine_problem = "" if machine_policy else (
                f"No delegation policy is set for this computer: an administrator sets "
                f"policy.path in {machine_config_path()}.")
        self.policy_problem = machine_problem or self._load_problem(self.machine_policy)
        self.open_directory, self._check, self._discover = open_directory, check, discover
        self.chosen: Config | str | None = None
        self.report: diagnostics.ConnectionCheck | None = None
        self._tested: dict[str, Any] | None = None  # the draft the last successful test proved
        self._task: Task | None = None

        self.urls_field = QLineEdit(placeholderText="ldaps://dc1.corp.example ldaps://dc2.corp.example")
        self.domain_field = QLineEdit(placeholderText="corp.example")
        self.ca_field = QLineEdit(placeholderText="optional: the CA that issued the DCs' certificates (PEM)")
        self.hosts_field = QPlainTextEdit()
        self.hosts_field.setPlaceholderText("one per line: hv01.corp.example, or HV01 https://hv01.corp.example:5986/wsman")
        self.hosts_field.setTabChangesFocus(True)
        self.endpoint_box = QComboBox()
        for value, label in ENDPOINT_CHOICES:
            self.endpoint_box.addItem(label, value)
        self.policy_field = QLineEdit(placeholderText="set for this computer by your administrators")
        self.policy_field.setText(self.machine_policy)
        self.policy_field.setReadOnly(True)
        self.policy_field.setToolTip(tip("Set for this computer by your administrators "
                                         f"(policy.path in {machine_config_path()})."))
        self.user_field = QLineEdit(placeholderText="your domain account: CORP\\name or name@corp.example")
        self.password_field = QLineEdit(echoMode=QLineEdit.EchoMode.Password)

        self.fields: dict[str, QWidget] = {"urls": self.urls_field, "domain": self.domain_field,
                                           "ca_file": self.ca_field, "hosts": self.hosts_field,
                                           "policy": self.policy_field}
        self.errors: dict[str, QLabel] = {}
        form = QFormLayout()
        for key, label, widget in (
                ("urls", "Domain controllers", self.urls_field),
                ("domain", "Domain", self.domain_field),
                ("ca_file", "CA file", self._with_browse(self.ca_field, "PEM files (*.pem *.crt *.cer)")),
                ("hosts", "Hyper-V hosts", self.hosts_field),
                ("policy", "Delegation policy", self.policy_field)):
            form.addRow(label, widget)
            error = plain_label(wrap=True, selectable=False)
            error.setObjectName(f"error_{key}")
            error.setStyleSheet(f"color: {shade('error')}")
            error.hide()
            form.addRow("", error)
            self.errors[key] = error
        self.discover_button = QPushButton("Find hosts in the directory")
        self.discover_button.setToolTip("Lists the computers that registered the Hyper-V console "
                                        "service (signs in with the account below).")
        self.discover_button.clicked.connect(self.discover)
        form.addRow("", self._row(self.endpoint_box, self.discover_button))
        self.endpoint_warning = plain_label(ADMIN_ENDPOINT_WARNING, wrap=True, selectable=False)
        self.endpoint_warning.setObjectName("endpoint_warning")
        self.endpoint_warning.setStyleSheet(f"color: {shade('error')}")
        self.endpoint_warning.hide()
        form.addRow("", self.endpoint_warning)
        form.addRow("Account for the test", self.user_field)
        form.addRow("Password", self.password_field)

        self.status = plain_label(wrap=True)
        self.status.setObjectName("status")
        self.test_button = QPushButton("Test sign-in")
        self.test_button.clicked.connect(self.test_connection)
        self.save_button = QPushButton("Save")
        self.save_button.clicked.connect(self.save)
        self.demo_button = QPushButton("Open the demo")
        self.demo_button.setToolTip("A built-in lab with sample hosts and accounts; no Windows needed.")
        self.demo_button.clicked.connect(self.open_demo)
        self.demo_button.setVisible(offer_demo)  # a build without the lab has no demo to open
        cancel = QPushButton("Cancel")
        cancel.clicked.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(plain_label(
            "No configuration was found. Enter your domain controllers and Hyper-V hosts; the "
            "console signs in and reads each host once before it saves them.", wrap=True,
            selectable=False))
        layout.addLayout(form)
        layout.addWidget(self.status)
        buttons = QHBoxLayout()
        buttons.addWidget(self.demo_button)
        buttons.addStretch(1)
        for button in (self.test_button, self.save_button, cancel):
            buttons.addWidget(button)
        layout.addLayout(buttons)

        for line in (self.urls_field, self.domain_field, self.ca_field, self.policy_field):
            line.textChanged.connect(self._changed)
        self.hosts_field.textChanged.connect(self._changed)
        self.endpoint_box.currentIndexChanged.connect(self._changed)
        self._update_buttons()

    # -- building blocks

    def _with_browse(self, field: QLineEdit, filter_: str) -> QWidget:
        button = QPushButton("Browse…")
        button.clicked.connect(lambda: self._browse(field, filter_))
        button.setEnabled(not field.isReadOnly())
        return self._row(field, button)

    def _browse(self, field: QLineEdit, filter_: str) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a file", field.text(), filter_)
        if path:
            field.setText(path)

    @staticmethod
    def _row(*widgets: QWidget) -> QWidget:
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        for widget in widgets:
            layout.addWidget(widget, 1 if isinstance(widget, QLineEdit) else 0)
        return row

    # -- the draft and its validation

    def draft(self) -> dict[str, Any]:
        """The configuration as typed, in the config file's shape."""
        urls = _split_urls(self.urls_field.text())
        directory: dict[str, Any] = {"urls": urls, "domain": self.domain_field.text().strip()}
        if self.ca_field.text().strip():
            directory["ca_file"] = self.ca_field.text().strip()
        # ldap:// is only ever used with StartTLS: the password never travels in clear.
        if any(u.lower().startswith("ldap://") for u in urls):
            directory["start_tls"] = True
        data: dict[str, Any] = {"directory": directory,
                                "hosts": parse_host_lines(self.hosts_field.toPlainText(),
                                                     self.endpoint_box.currentData())}
        return data  # never the policy: it is the computer's (machine-wide), not the person's

    def validate(self) -> dict[str, str]:
        """Check every field; show each problem under its field; returns field -> sentence."""
        data, problems = self.draft(), {}
        directory = data["directory"]
        if not directory["urls"]:
            problems["urls"] = "Name at least one domain controller, e.g. ldaps://dc1.corp.example."
        else:
            problems["urls"] = _config_problem({"directory": {"urls": directory["urls"]}})
        if not directory["domain"]:
            problems["domain"] = "Enter the domain's DNS name, e.g. corp.example."
        elif not DOMAIN_NAME.match(directory["domain"]):
            problems["domain"] = (f"{directory['domain']!r} is not a DNS domain name; "
                                  "enter it like corp.example.")
        if directory.get("ca_file"):
            problems["ca_file"] = _readable_pem(directory["ca_file"])
        problems["hosts"] = (self._hosts_problem(data["hosts"]) if data["hosts"] else
                             "Enter at least one Hyper-V host, or find them in the directory.")
        problems["policy"] = self.policy_problem
        problems = {k: v for k, v in problems.items() if v}
        if not problems:  # the whole file once more, as it will be read back
            try:
                Config.from_dict(data, "the set-up")
            except ConfigError as error:
                problems[_field_of(error.key)] = str(error)
        for key, label in self.errors.items():
            label.setText(problems.get(key, ""))
            label.setVisible(key in problems)
        self.endpoint_warning.setVisible(self.endpoint_box.currentData() == "admin")
        return problems

    @staticmethod
    def _hosts_problem(hosts: list[dict[str, Any]]) -> str:
        for i, host in enumerate(hosts):
            problem = _config_problem({"hosts": [host]})
            if problem:
                return f"Line {i + 1}: {problem.replace('hosts[0].', '')}"
        names = [h["name"].lower() for h in hosts]
        for i, name in enumerate(names):
            if name in names[:i]:
                return f"Line {i + 1}: the host {hosts[i]['name']} is listed twice."
        return ""

    @staticmethod
    def _load_problem(path: str) -> str:
        """Why the computer's policy cannot be used, or '' (read once: it is not typed here)."""
        if not path:
            return ""
        try:
            Policy.load(path)
        except PolicyError as error:
            return f"The policy cannot be used: {error}"
        except ConsoleError as error:
            return str(error)
        except OSError as error:
            return f"{path} cannot be read: {error.strerror}."
        return ""

    def config(self) -> Config | None:
        """The validated configuration, or None (the problems are on screen)."""
        if self.validate():
            return None
        config = Config.from_dict(self.draft(), "the set-up")
        config.policy_path = self.machine_policy
        return config

    # -- live checks, off the GUI thread

    def test_connection(self) -> None:
        config = self.config()
        user, password = self.user_field.text().strip(), self.password_field.text()
        if config is None:
            self._say("Correct the fields marked in red first.")
            return
        if not user or not password:
            self._say("Enter an account and its password to test the set-up.")
            return
        logs.redact(password)
        draft = self.draft()
        self._say("Signing in and reading each host…")
        directory = self.open_directory(config.directory)
        self._start(self.tasks.run(self._check, config, user, password, directory,
                                   label="test the set-up")
                    .on_success(lambda report: self._tested_ok(report, draft)))

    def _tested_ok(self, report: diagnostics.ConnectionCheck, draft: dict[str, Any]) -> None:
        self.report = report
        self._tested = draft
        ending = ("\nEverything answered: save to start the console." if report.ok else
                  "\nSome hosts did not answer; you can correct them, or save anyway.")
        self._say(report.summary() + ending)
        self._update_buttons()

    def discover(self) -> None:
        problems = {k: v for k, v in self.validate().items() if k in {"urls", "domain", "ca_file"}}
        user, password = self.user_field.text().strip(), self.password_field.text()
        if problems or not user or not password:
            self._say("Finding hosts needs the domain controllers, the domain and an account "
                      "with its password.")
            return
        logs.redact(password)
        config = Config.from_dict({"directory": self.draft()["directory"]}, "the set-up")
        self._say("Looking for Hyper-V hosts in the directory…")
        directory = self.open_directory(config.directory)
        self._start(self.tasks.run(self._discover, config, user, password, directory,
                                   label="find hosts").on_success(self._found))

    def _found(self, hosts: list[HostConfig]) -> None:
        if not hosts:
            self._say("The directory lists no Hyper-V hosts (no computer registers the "
                      "'Microsoft Virtual Console Service'); enter them by name.")
            return
        known = {h["name"].lower() for h in parse_host_lines(self.hosts_field.toPlainText())}
        lines = [self.hosts_field.toPlainText().rstrip()] if known else []
        lines += [f"{h.name} {h.url}" for h in hosts if h.name.lower() not in known]
        self.hosts_field.setPlainText("\n".join(line for line in lines if line))
        self._say(f"Found {len(hosts)} Hyper-V host{'s' if len(hosts) != 1 else ''}; "
                  "check the list, then test.")

    def _start(self, task: Task) -> None:
        self._task = task
        task.on_failure(self._failed).on_finished(self._update_buttons)
        self._update_buttons()

    def _failed(self, error: BaseException) -> None:
        sentence, details = describe(error)
        self._say(sentence + (f"\n{details}" if details else ""))
        self._update_buttons()

    @property
    def busy(self) -> bool:
        return self._task is not None and not self._task.done

    # -- the outcome

    def save(self) -> None:
        config = self.config()
        if config is None or self._tested != self.draft():
            self._say("Test the set-up before saving it.")
            return
        config.save(self.config_path)
        self.chosen = config
        self.accept()

    def open_demo(self) -> None:
        self.chosen = self.DEMO
        self.accept()

    def reject(self) -> None:
        if self._task is not None:
            self._task.cancel()  # its answer no longer matters; the worker ends by itself
        super().reject()

    @classmethod
    def ask(cls, parent: QWidget | None, tasks: Tasks, **options: Any) -> Config | str | None:
        """Runs the dialog; a saved Config, `FirstRunDialog.DEMO`, or None when cancelled."""
        dialog = cls(parent, tasks, **options)
        dialog.exec()
        return dialog.chosen

    # -- state

    def _changed(self) -> None:
        self.validate()
        self._update_buttons()

    def _update_buttons(self) -> None:
        tested = self._tested is not None and self._tested == self.draft()
        self.save_button.setEnabled(tested and not self.busy)
        self.save_button.setText("Save anyway" if tested and self.report and not self.report.ok
                                 else "Save")
        for button in (self.test_button, self.discover_button):
            button.setEnabled(not self.busy)

    def _say(self, text: str) -> None:
        self.status.setText(text)


def _config_problem(data: dict[str, Any]) -> str:
    try:
        Config.from_dict(data, "the set-up")
    except ConfigError as error:
        return str(error).replace(" in the set-up", "")
    return ""


def _field_of(key: str | None) -> str:
    key = key or ""
    for prefix, field in (("directory.urls", "urls"), ("directory.start_tls", "urls"),
                          ("directory.domain", "domain"), ("directory.ca_file", "ca_file"),
                          ("hosts", "hosts"), ("policy", "policy")):
        if key.startswith(prefix):
            return field
    return "urls"


# --- the Help menu --------------------------------------------------------------------------------

def open_log_folder() -> bool:
    """Show the log folder in the file manager (Help > Open log folder)."""
    folder = logs.log_folder()
    folder.mkdir(parents=True, exist_ok=True)
    return QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))


def qt_versions() -> dict[str, str]:
    return {"Qt": qVersion(), "PySide6": PySide6.__version__}


def copy_diagnostics(config: Config | None) -> str:
    """Put the diagnostics report on the clipboard (Help > Copy diagnostics); returns it."""
    report = diagnostics.collect(config, qt_versions())
    QGuiApplication.clipboard().setText(report)
    return report

"""Small dialogs. Each exposes a class method that opens it modally (`ask`, `choose`); tests
replace that method instead of running a modal loop."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QDialog, QDialogButtonBox,
                               QFormLayout, QHeaderView, QLabel, QLineEdit, QMessageBox,
                               QPlainTextEdit, QSpinBox, QTableView, QVBoxLayout, QWidget)

from console.config import Config, host_lines, machine_config_path, parse_host_lines
from console.errors import ConfigError
from console.inventory import IsoFile
from console.text import one_line, plain

from .models import VM_ROLE, SortProxy, iso_model
from .text import fit_on_screen, plain_label, shade, tip


class Confirm:
    """Asks before an action that loses data. Returns True only on an explicit yes."""

    @classmethod
    def ask(cls, parent: QWidget | None, title: str, text: str, details: str = "",
            yes: str = "Continue") -> bool:
        box = QMessageBox(parent)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle(title)
        box.setTextFormat(Qt.TextFormat.PlainText)  # names in `text` are written by others
        box.setText(plain(text))
        if details:
            box.setInformativeText(plain(details))
            informative = box.findChild(QLabel, "qt_msgbox_informativelabel")
            if informative is not None:  # Qt guesses its format otherwise
                informative.setTextFormat(Qt.TextFormat.PlainText)
        ok = box.addButton(yes, QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        return box.clickedButton() is ok


class AskText(QDialog):
    """One line of text (a checkpoint name), or None when cancelled. The prompt names things
    written by others (a VM's name), so it is a plain-text label: QInputDialog's label guesses
    rich text and would render a VM called `<img src=...>`."""

    def __init__(self, parent: QWidget | None, title: str, label: str, default: str = "") -> None:
        super().__init__(parent)
        self.setWindowTitle(one_line(title))
        layout = QVBoxLayout(self)
        self.label = plain_label(label, wrap=True, selectable=False)
        layout.addWidget(self.label)
        self.field = QLineEdit(default)
        self.field.selectAll()
        layout.addWidget(self.field)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def text(self) -> str | None:
        return self.field.text().strip() or None

    @classmethod
    def ask(cls, parent: QWidget | None, title: str, label: str, default: str = "") -> str | None:
        dialog = cls(parent, title, label, default)
        return dialog.text() if dialog.exec() == QDialog.DialogCode.Accepted else None


class PasswordPrompt:
    """Asks for the password again after a host refused it (401)."""

    @classmethod
    def ask(cls, parent: QWidget | None, user: str, reason: str) -> str | None:
        dialog = QDialog(parent)
        dialog.setWindowTitle("Password needed")
        layout = QVBoxLayout(dialog)
        layout.addWidget(plain_label(reason, wrap=True))
        layout.addWidget(plain_label(f"Enter the current password of {user}. Every host waits "
                                     "until then, so the account is not locked out.", wrap=True))
        field = QLineEdit()
        field.setEchoMode(QLineEdit.EchoMode.Password)
        layout.addWidget(field)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(dialog.accept)
        buttons.rejected.connect(dialog.reject)
        layout.addWidget(buttons)
        if dialog.exec() == QDialog.DialogCode.Accepted and field.text():
            return field.text()
        return None


class IsoDialog(QDialog):
    """Pick an ISO from the host's approved library: nothing else can be chosen (no path field)."""

    def __init__(self, host: str, isos: Sequence[IsoFile], vm_name: str,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(one_line(f"Insert ISO — {vm_name}"))
        fit_on_screen(self, 640, 360)
        layout = QVBoxLayout(self)
        layout.addWidget(plain_label(f"Approved ISO library of {host}", selectable=False))
        self.search = QLineEdit(placeholderText="Search ISO files")
        self.search.setClearButtonEnabled(True)
        layout.addWidget(self.search)
        self.model = iso_model(self)
        self.model.set_items(sorted(isos, key=lambda i: i.name.lower()))
        self.proxy = SortProxy(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setFilterKeyColumn(-1)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.search.textChanged.connect(self._filter)
        # Type to narrow the list, Enter to insert the first match.
        self.search.returnPressed.connect(self._pick_first)
        self.view = QTableView()
        self.view.setModel(self.proxy)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setSortingEnabled(True)
        self.view.verticalHeader().hide()
        self.view.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.view.horizontalHeader().setStretchLastSection(True)
        self.view.doubleClicked.connect(lambda _: self.accept())
        layout.addWidget(self.view)
        self.empty = plain_label("This host's library holds no ISO files.", selectable=False)
        self.empty.setVisible(not isos)
        layout.addWidget(self.empty)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Insert")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.view.selectionModel().selectionChanged.connect(self._update)
        self._update()

    def _filter(self, text: str) -> None:
        self.proxy.setFilterFixedString(text)
        if self.proxy.rowCount() and not self.view.selectionModel().hasSelection():
            self.view.selectRow(0)

    def _pick_first(self) -> None:
        if not self.view.selectionModel().hasSelection() and self.proxy.rowCount():
            self.view.selectRow(0)
        self.accept()

    def selected(self) -> IsoFile | None:
        rows = self.view.selectionModel().selectedRows()
        return rows[0].data(VM_ROLE) if rows else None

    def _update(self) -> None:
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(self.selected() is not None)

    def accept(self) -> None:
        if self.selected() is not None:
            super().accept()

    @classmethod
    def choose(cls, parent: QWidget | None, host: str, isos: Sequence[IsoFile],
               vm_name: str) -> IsoFile | None:
        dialog = cls(host, isos, vm_name, parent)
        return dialog.selected() if dialog.exec() == QDialog.DialogCode.Accepted else None


class SettingsDialog(QDialog):
    """Directory, hosts, policy location, CA files, refresh interval; validated before saving."""

    def __init__(self, config: Config, path: Path | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        fit_on_screen(self, 640, 480)
        self.config, self.path = config, path
        self.saved_config: Config | None = None
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.urls = QLineEdit(" ".join(config.directory.urls))
        self.urls.setPlaceholderText("ldaps://dc1.example.com ldaps://dc2.example.com")
        self.domain = QLineEdit(config.directory.domain)
        self.ca_file = QLineEdit(config.directory.ca_file)
        self.start_tls = QCheckBox("Use StartTLS on ldap:// URLs")
        self.start_tls.setChecked(config.directory.start_tls)
        self.hosts = QPlainTextEdit(host_lines(config.hosts))
        self.hosts.setPlaceholderText("one host a line: NAME URL [CA file], or its name alone")
        self.policy = QLineEdit(config.policy_path)
        self.policy.setReadOnly(True)  # the computer's, from the machine-wide file: never saved here
        self.policy.setToolTip(tip("Set for this computer by your administrators (policy.path in "
                                   f"{machine_config_path()})."))
        self.refresh = QSpinBox()
        self.refresh.setRange(1, 3600)
        self.refresh.setSuffix(" s")
        self.refresh.setValue(config.refresh_seconds)
        form.addRow("Domain controllers", self.urls)
        form.addRow("Domain", self.domain)
        form.addRow("Directory CA file", self.ca_file)
        form.addRow("", self.start_tls)
        form.addRow("Hyper-V hosts", self.hosts)
        form.addRow("Policy file", self.policy)
        form.addRow("Refresh every", self.refresh)
        # What the computer's administrators set is shown, not changed here: the domain
        # controllers and hosts decide where a person's password goes.
        managed = {"directory": (self.urls, self.domain, self.ca_file, self.start_tls),
                   "hosts": (self.hosts,)}
        for section in sorted(config.managed):
            for widget in managed.get(section, ()):
                widget.setEnabled(False)
                widget.setToolTip(tip(f"Set for this computer by your administrators ({section} in "
                                      f"{machine_config_path()})."))
        if config.managed:
            form.addRow("", plain_label("Greyed settings are set for this computer by your "
                                        "administrators.", wrap=True, selectable=False))
        layout.addLayout(form)
        self.error = plain_label("", wrap=True)
        self.error.setStyleSheet(f"color: {shade('error')}")
        layout.addWidget(self.error)
        self.fields: dict[str, QWidget] = {
            "directory.urls": self.urls, "directory.domain": self.domain,
            "directory.ca_file": self.ca_file, "hosts": self.hosts,
            "ui.refresh_seconds": self.refresh,
        }
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def values(self) -> dict[str, Any]:
        """The person's own file as the form would write it (never what the computer sets)."""
        data = self.config.to_dict()
        if "directory" not in self.config.managed:
            data["directory"].update(urls=self.urls.text().split(),
                                     domain=self.domain.text().strip(),
                                     ca_file=self.ca_file.text().strip(),
                                     start_tls=self.start_tls.isChecked())
        if "hosts" not in self.config.managed:
            data["hosts"] = parse_host_lines(self.hosts.toPlainText(), known=self.config.hosts)
        data["ui"] = {"refresh_seconds": self.refresh.value()}
        return data

    def validate(self) -> Config | None:
        try:
            config = Config.from_dict(self.values(), "settings")
        except ConfigError as error:
            self.error.setText(str(error))
            key = (error.key or "").split("[")[0]
            widget = self.fields.get(key) or self.fields.get(key.rsplit(".", 1)[0])
            if widget is not None:
                widget.setFocus()
            return None
        self.error.setText("")
        return config

    def accept(self) -> None:
        config = self.validate()
        if config is None:
            return
        config.policy_path = self.config.policy_path  # the computer's, kept as it was loaded
        config.managed = self.config.managed
        if "directory" in config.managed:
            config.directory = self.config.directory
        if "hosts" in config.managed:
            config.hosts = self.config.hosts
        self.saved_config = config
        config.save(self.path)
        super().accept()

    @classmethod
    def edit(cls, parent: QWidget | None, config: Config, path: Path | None = None) -> Config | None:
        dialog = cls(config, path, parent)
        return dialog.saved_config if dialog.exec() == QDialog.DialogCode.Accepted else None


__all__ = ["Confirm", "AskText", "PasswordPrompt", "IsoDialog", "SettingsDialog"]

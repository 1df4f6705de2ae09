"""The ISO dialog offers the host's library only; Settings validates before saving."""
from __future__ import annotations

import tomllib
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialogButtonBox, QLineEdit

from console.config import Config
from console.inventory import IsoFile
from ui.dialogs import IsoDialog, SettingsDialog

LIBRARY = [IsoFile("D:\\ISO\\WindowsServer2022.iso", 5 << 30),
           IsoFile("D:\\ISO\\ubuntu-24.04-live-server-amd64.iso", 2 << 30),
           IsoFile("D:\\ISO\\SystemRescue-11.iso", 1 << 30)]


def test_iso_dialog_searches_the_library_and_offers_nothing_else(qtbot) -> None:
    dialog = IsoDialog("HV01", LIBRARY, "<img src=x>")
    qtbot.addWidget(dialog)
    ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
    assert dialog.proxy.rowCount() == 3 and not ok.isEnabled() and dialog.selected() is None
    qtbot.keyClicks(dialog.search, "ubuntu")
    assert dialog.proxy.rowCount() == 1
    dialog.view.selectRow(0)
    assert ok.isEnabled() and dialog.selected() == LIBRARY[1]
    # No way to type a path: the only editable field is the search box.
    assert dialog.findChildren(QLineEdit) == [dialog.search]
    assert dialog.windowTitle() == "Insert ISO — <img src=x>"
    dialog.search.clear()
    qtbot.keyClicks(dialog.search, "C:\\Windows")
    assert dialog.proxy.rowCount() == 0


def test_iso_dialog_type_then_enter_inserts_the_first_match(qtbot) -> None:
    dialog = IsoDialog("HV01", LIBRARY, "vm")
    qtbot.addWidget(dialog)
    qtbot.keyClicks(dialog.search, "rescue")
    assert dialog.selected() == LIBRARY[2]  # the only match, chosen as the list narrows
    qtbot.keyClick(dialog.search, Qt.Key.Key_Return)
    assert dialog.result() == dialog.DialogCode.Accepted
    nothing = IsoDialog("HV01", LIBRARY, "vm")
    qtbot.addWidget(nothing)
    qtbot.keyClicks(nothing.search, "no such file")
    qtbot.keyClick(nothing.search, Qt.Key.Key_Return)
    assert nothing.result() != nothing.DialogCode.Accepted and nothing.selected() is None


def test_iso_dialog_explains_an_empty_library(qtbot) -> None:
    dialog = IsoDialog("HV03", [], "vm")
    qtbot.addWidget(dialog)
    assert not dialog.empty.isHidden() and dialog.proxy.rowCount() == 0


def demo_config() -> Config:
    return Config.from_dict({
        "directory": {"urls": ["ldaps://dc1.lab.example"], "domain": "lab.example"},
        "hosts": [{"name": "HV01", "url": "https://hv01.lab.example:5986/wsman",
                   "endpoint": "admin"}],
    })


def test_settings_name_the_bad_key_and_save_nothing(qtbot, tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    dialog = SettingsDialog(demo_config(), path)
    qtbot.addWidget(dialog)
    dialog.urls.setText("http://dc1.lab.example")
    dialog.accept()
    assert "directory.urls[0]" in dialog.error.text() and not path.exists()
    assert dialog.error.textFormat() == Qt.TextFormat.PlainText
    dialog.urls.setText("ldaps://dc1.lab.example")
    dialog.hosts.setPlainText("HV01 ftp://hv01")
    dialog.accept()
    assert "hosts[0].url" in dialog.error.text() and not path.exists()
    dialog.refresh.setValue(2)
    dialog.hosts.setPlainText("HV01 https://hv01.lab.example:5986/wsman\nHV02 http://127.0.0.1:5985/wsman")
    dialog.accept()
    assert "ui.refresh_seconds" in dialog.error.text() and not path.exists()


def test_settings_save_a_valid_configuration(qtbot, tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    dialog = SettingsDialog(demo_config(), path)
    qtbot.addWidget(dialog)
    dialog.hosts.setPlainText("HV01 https://hv01.lab.example:5986/wsman\n"
                              "HV02 https://hv02.lab.example:5986/wsman /etc/lab-ca.pem")
    dialog.refresh.setValue(30)
    assert dialog.policy.isReadOnly()  # the computer's policy: shown, never saved by a person
    dialog.accept()
    assert dialog.error.text() == "" and dialog.saved_config is not None
    saved = Config.from_dict(tomllib.loads(path.read_text()))
    assert [h.name for h in saved.hosts] == ["HV01", "HV02"]
    assert saved.hosts[0].endpoint == "admin"  # kept: the form does not show it
    assert saved.hosts[1].ca_file == "/etc/lab-ca.pem" and saved.refresh_seconds == 30
    assert saved.policy_path == "" and "policy" not in path.read_text()
    assert dialog.saved_config.policy_path == demo_config().policy_path


def test_settings_show_what_the_computer_sets_and_leave_it_alone(qtbot, tmp_path: Path) -> None:
    config = Config.from_dict({"directory": {"urls": ["ldaps://dc1.corp.example"]},
                               "hosts": [{"name": "HV01", "url": "https://hv01:5986/wsman"}]})
    config.managed = frozenset({"directory", "hosts"})
    path = tmp_path / "config.toml"
    dialog = SettingsDialog(config, path)
    qtbot.addWidget(dialog)
    assert not dialog.urls.isEnabled() and not dialog.hosts.isEnabled()
    assert "administrators" in dialog.urls.toolTip()
    dialog.refresh.setValue(120)
    dialog.accept()
    written = tomllib.loads(path.read_text(encoding="utf-8"))
    assert written == {"ui": {"refresh_seconds": 120}}
    assert dialog.saved_config is not None and dialog.saved_config.hosts == config.hosts

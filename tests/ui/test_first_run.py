"""The first-run dialog: each field validated, the live test against a real directory (Samba AD DC)
and a real WinRM client, host discovery by SPN, saving only what was proven, the demo choice."""
from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from ldap3 import MODIFY_REPLACE

from console import logs
from console.config import Config
from lab.certs import make_ca
from lab.demo import demo_policy_text
from lab.hyperv import Durations
from lab.runner import Lab
from lab.directory import LabDirectory
from console.paths import LAB_DATA
from console.policy import Policy
from tests.samba import BASE_DN, DOMAIN, SambaDC
from console.config import needs_first_run, parse_host_lines
from ui.first_run import FirstRunDialog, copy_diagnostics
from ui.tasks import Tasks

DEMO_POLICY = LAB_DATA / "policy.toml"


@pytest.fixture
def tasks(qtbot) -> Iterator[Tasks]:
    errors: list[BaseException] = []
    yield Tasks(errors.append)
    assert errors == []  # every failure had its own handler


@pytest.fixture
def dialog(qtbot, tasks: Tasks, tmp_path: Path) -> FirstRunDialog:
    d = FirstRunDialog(None, tasks, config_path=tmp_path / "config.toml",
                       machine_policy=str(DEMO_POLICY))
    qtbot.addWidget(d)
    return d


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/wsman"


def fill(d: FirstRunDialog, **values: str) -> None:
    defaults = {"urls": "ldaps://dc1.corp.example", "domain": "corp.example", "ca_file": "",
                "hosts": "hv01.corp.example"}
    defaults.update(values)
    d.urls_field.setText(defaults["urls"])
    d.domain_field.setText(defaults["domain"])
    d.ca_field.setText(defaults["ca_file"])
    d.hosts_field.setPlainText(defaults["hosts"])


def wait_idle(qtbot, d: FirstRunDialog) -> None:
    qtbot.waitUntil(lambda: not d.busy, timeout=30_000)


# --- when it appears ------------------------------------------------------------------------------

def test_needs_first_run_without_a_usable_configuration(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("console.config.machine_config_path", lambda: tmp_path / "machine.toml")
    path = tmp_path / "config.toml"
    assert needs_first_run(path)
    Config().save(path)
    assert needs_first_run(path)  # a file naming no domain controller
    Config.from_dict({"directory": {"urls": ["ldaps://dc1.corp.example"]}}).save(path)
    assert not needs_first_run(path)
    Config(demo=True).save(path)  # the demo is never saved: nothing to connect to yet
    assert needs_first_run(path)
    path.write_text("directory = 3\n")  # broken: loading it says what is wrong, nothing overwrites
    assert not needs_first_run(path)


def test_host_lines() -> None:
    hosts = parse_host_lines("hv01.corp.example\n# a comment\n\nHV02 https://hv02.corp.example:5986/wsman\n"
                        "https://hv03.corp.example:5986/wsman  # trailing comment", "admin")
    assert hosts == [
        {"name": "HV01", "url": "http://hv01.corp.example:5985/wsman", "endpoint": "admin"},
        {"name": "HV02", "url": "https://hv02.corp.example:5986/wsman", "endpoint": "admin"},
        {"name": "HV03", "url": "https://hv03.corp.example:5986/wsman", "endpoint": "admin"}]


# --- each field -----------------------------------------------------------------------------------

def test_empty_dialog_names_every_required_field(dialog: FirstRunDialog) -> None:
    problems = dialog.validate()
    assert set(problems) == {"urls", "domain", "hosts"}
    assert dialog.errors["urls"].isVisibleTo(dialog)
    assert not dialog.errors["ca_file"].isVisibleTo(dialog)  # the CA file is optional
    assert dialog.config() is None


def test_complete_draft_is_valid_and_reads_back(dialog: FirstRunDialog) -> None:
    fill(dialog, urls="ldap://dc1.corp.example, ldaps://dc2.corp.example")
    assert dialog.validate() == {}
    config = dialog.config()
    assert config is not None
    assert config.directory.urls == ["ldap://dc1.corp.example", "ldaps://dc2.corp.example"]
    assert config.directory.start_tls  # ldap:// only ever with StartTLS
    assert [(h.name, h.url, h.endpoint) for h in config.hosts] == [
        ("HV01", "http://hv01.corp.example:5985/wsman", "jea")]
    assert config.policy_path == str(DEMO_POLICY)


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("urls", "http://dc1.corp.example", "ldap:// or ldaps://"),
    ("urls", "ldaps://", "with a host name"),
    ("domain", "corp example!", "not a DNS domain name"),
    ("hosts", "HV01 ftp://hv01", "Line 1:"),
    ("hosts", "hv01.corp.example\nHV01 https://hv01:5986/wsman", "listed twice"),
    ("ca_file", "/nonexistent/ca.pem", "cannot be read"),
])
def test_each_field_reports_its_own_problem(dialog: FirstRunDialog, field: str, value: str,
                                            expected: str) -> None:
    fill(dialog, **{field: value})
    problems = dialog.validate()
    assert list(problems) == [field]
    assert expected in problems[field]
    assert expected in dialog.errors[field].text()


def test_ca_file_must_hold_a_certificate(dialog: FirstRunDialog, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a certificate")
    fill(dialog, ca_file=str(tmp_path / "notes.txt"))
    assert "no PEM certificate" in dialog.validate()["ca_file"]
    ca = make_ca(tmp_path / "ca", "First Run Test CA")
    fill(dialog, ca_file=str(ca.cert))
    assert dialog.validate() == {}


def test_a_broken_policy_is_refused_with_its_problem(qtbot, tasks: Tasks, tmp_path: Path) -> None:
    bad = tmp_path / "policy.toml"
    bad.write_text("[[grant]]\nrole = 'no-such-role'\n")
    d = FirstRunDialog(None, tasks, config_path=tmp_path / "c.toml", machine_policy=str(bad))
    qtbot.addWidget(d)
    fill(d)
    assert "The policy cannot be used" in d.validate()["policy"]


def test_without_a_machine_wide_policy_nothing_else_is_offered(qtbot, tasks: Tasks,
                                                               tmp_path: Path) -> None:
    d = FirstRunDialog(None, tasks, config_path=tmp_path / "c.toml", machine_policy="")
    qtbot.addWidget(d)
    fill(d)
    assert d.policy_field.isReadOnly() and d.policy_field.text() == ""
    assert d.validate()["policy"].startswith("No delegation policy is set for this computer: an "
                                             "administrator sets policy.path in ")
    assert d.config() is None and "policy" not in d.draft()


def test_a_machine_wide_file_others_can_change_is_named_with_why(
        qtbot, tasks: Tasks, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    machine = tmp_path / "machine.toml"
    machine.write_text(f"[policy]\npath = '{DEMO_POLICY}'\n")
    machine.chmod(0o666)
    monkeypatch.setattr("console.config.machine_config_path", lambda: machine)
    d = FirstRunDialog(None, tasks, config_path=tmp_path / "c.toml")
    qtbot.addWidget(d)
    fill(d)
    assert d.policy_field.text() == ""
    assert d.validate()["policy"].startswith(
        f"The machine-wide configuration {machine} is not used: someone other than an "
        "administrator can change it")


def test_the_admin_endpoint_is_said_to_give_a_full_powershell(dialog: FirstRunDialog) -> None:
    fill(dialog)
    assert not dialog.endpoint_warning.isVisibleTo(dialog)
    dialog.endpoint_box.setCurrentIndex(dialog.endpoint_box.findData("admin"))
    assert dialog.endpoint_warning.isVisibleTo(dialog)
    assert "gives a full PowerShell on the host" in dialog.endpoint_warning.text()
    assert "anyone allowed to connect" in dialog.endpoint_warning.text()
    dialog.endpoint_box.setCurrentIndex(dialog.endpoint_box.findData("jea"))
    assert not dialog.endpoint_warning.isVisibleTo(dialog)


def test_machine_wide_policy_is_shown_and_not_editable(qtbot, tasks: Tasks, tmp_path: Path) -> None:
    d = FirstRunDialog(None, tasks, config_path=tmp_path / "c.toml", machine_policy=str(DEMO_POLICY))
    qtbot.addWidget(d)
    assert d.policy_field.isReadOnly() and d.policy_field.text() == str(DEMO_POLICY)
    fill(d)
    assert d.validate() == {}
    assert "policy" not in d.draft()  # never written to the user's file
    assert d.config().policy_path == str(DEMO_POLICY)


def test_save_needs_a_test_and_the_demo_needs_nothing(dialog: FirstRunDialog, tmp_path: Path) -> None:
    fill(dialog)
    assert not dialog.save_button.isEnabled()
    dialog.save()
    assert dialog.chosen is None and not (tmp_path / "config.toml").exists()
    assert "Test the set-up" in dialog.status.text()
    dialog.open_demo()
    assert dialog.chosen == FirstRunDialog.DEMO and dialog.result() == FirstRunDialog.DialogCode.Accepted


def test_test_without_an_account_asks_for_one(dialog: FirstRunDialog) -> None:
    fill(dialog)
    dialog.test_connection()
    assert not dialog.busy and "Enter an account" in dialog.status.text()


# --- live: a real directory and a real WinRM client -----------------------------------------------

@pytest.fixture
def dc(samba_dc: SambaDC) -> SambaDC:
    samba_dc.unlock("carol")
    return samba_dc


@pytest.mark.samba
def test_live_sign_in_then_save_writes_what_was_proven(qtbot, dialog: FirstRunDialog, dc: SambaDC,
                                                       tmp_path: Path) -> None:
    unreachable = closed_port_url()
    fill(dialog, urls=dc.ldaps_url, domain=DOMAIN, ca_file=str(dc.ca_file),
         hosts=f"HV01 {unreachable}")
    dialog.user_field.setText("alice")
    dialog.password_field.setText(dc.passwords["alice"])
    dialog.test_connection()
    assert dialog.busy and not dialog.test_button.isEnabled()
    wait_idle(qtbot, dialog)
    status = dialog.status.text()
    assert "Signed in as LAB\\alice." in status
    assert "HV01:" in status and "save anyway" in status  # the host refused the connection
    assert dialog.report is not None and not dialog.report.ok
    assert dialog.save_button.isEnabled() and dialog.save_button.text() == "Save anyway"

    dialog.domain_field.setText("other.example")  # an edit voids the test
    assert not dialog.save_button.isEnabled()
    dialog.domain_field.setText(DOMAIN)
    assert dialog.save_button.isEnabled()
    dialog.save()
    assert isinstance(dialog.chosen, Config)
    saved = Config.load(tmp_path / "config.toml", tmp_path / "no-machine.toml")
    assert saved.directory.urls == [dc.ldaps_url] and saved.directory.ca_file == str(dc.ca_file)
    assert saved.hosts[0].url == unreachable
    assert dc.passwords["alice"] not in (tmp_path / "config.toml").read_text()


@pytest.mark.samba
def test_live_wrong_password_is_one_sentence_and_saves_nothing(qtbot, dialog: FirstRunDialog,
                                                               dc: SambaDC) -> None:
    fill(dialog, urls=dc.ldaps_url, domain=DOMAIN, ca_file=str(dc.ca_file))
    dialog.user_field.setText("carol")
    dialog.password_field.setText("not-carols-password")
    dialog.test_connection()
    wait_idle(qtbot, dialog)
    assert dialog.status.text() == "The user name or password is incorrect."
    assert not dialog.save_button.isEnabled() and dialog.test_button.isEnabled()
    dc.unlock("carol")


@pytest.mark.samba
def test_find_hosts_lists_enabled_computers_with_the_hyperv_spn(qtbot, dialog: FirstRunDialog,
                                                                dc: SambaDC) -> None:
    computers = {"HVTEST1": (4096, True), "HVTEST2": (4096 | 2, True), "PLAIN1": (4096, False)}
    with dc.admin() as conn:
        for name, (uac, spn) in computers.items():
            attrs = {"sAMAccountName": f"{name}$", "userAccountControl": uac,
                     "dNSHostName": f"{name.lower()}.{DOMAIN}"}
            assert conn.add(f"CN={name},CN=Computers,{BASE_DN}", ["top", "computer"], attrs), conn.result
            if spn:
                spns = [f"Microsoft Virtual Console Service/{name}",
                        f"Microsoft Virtual Console Service/{name.lower()}.{DOMAIN}"]
                assert conn.modify(f"CN={name},CN=Computers,{BASE_DN}",
                                   {"servicePrincipalName": [(MODIFY_REPLACE, spns)]}), conn.result
    try:
        fill(dialog, urls=dc.ldaps_url, domain=DOMAIN, ca_file=str(dc.ca_file), hosts="")
        dialog.user_field.setText("alice")
        dialog.password_field.setText(dc.passwords["alice"])
        dialog.discover()
        wait_idle(qtbot, dialog)
        assert dialog.hosts_field.toPlainText() == f"HVTEST1 http://hvtest1.{DOMAIN}:5985/wsman"
        assert "Found 1 Hyper-V host;" in dialog.status.text()
    finally:
        with dc.admin() as conn:
            for name in computers:
                conn.delete(f"CN={name},CN=Computers,{BASE_DN}")


# --- the Help menu --------------------------------------------------------------------------------

def test_copy_diagnostics_has_qt_versions_and_no_secret(qapp, tmp_path: Path) -> None:
    logs.setup_logging(folder=tmp_path)
    try:
        logs.redact("Winter-2024-secret")
        import logging
        logging.getLogger("console.test").warning("bound with Winter-2024-secret as password=abc")
        report = copy_diagnostics(Config())
    finally:
        logs.stop_logging()
    assert qapp.clipboard().text() == report
    assert "Qt: " in report and "PySide6: " in report and "ldap3: " in report
    assert "Winter-2024-secret" not in report and "password=abc" not in report
    assert "bound with *** as password=***" in report


# --- live, against the lab ------------------------------------------------------------------------

def test_live_test_against_the_lab_reads_each_host_through_jea_then_saves(
        qtbot, tasks: Tasks, tmp_path: Path) -> None:
    policy = Policy.from_text(demo_policy_text(), "policy.toml")
    with Lab.start(durations=Durations.instant(), jea_policy=policy) as lab:
        d = FirstRunDialog(None, tasks, config_path=tmp_path / "config.toml",
                           machine_policy=str(DEMO_POLICY),
                           open_directory=lambda config: LabDirectory())
        qtbot.addWidget(d)
        fill(d, urls="ldaps://dc1.lab.example", domain="lab.example",
             hosts="\n".join(f"{name} {h.url}" for name, h in lab.hosts.items()))
        d.user_field.setText("henry")
        d.password_field.setText("henry-demo")
        d.test_connection()
        wait_idle(qtbot, d)
        status = d.status.text()
        # Through each host's JEA endpoint henry sees what the policy gives him, and no more.
        assert "Signed in as LAB\\henry." in status
        assert "HV02: answered, 3 VMs visible." in status
        assert "HV03: answered, 1 VM visible." in status  # legacy-ftp, via Domain Users
        assert "Everything answered" in status and d.report is not None and d.report.ok
        d.save()
    saved = Config.load(tmp_path / "config.toml", tmp_path / "no-machine.toml")
    assert {h.name: h.url for h in saved.hosts} == {n: h.url for n, h in lab.hosts.items()}
    assert all(h.endpoint == "jea" for h in saved.hosts)
    assert "henry-demo" not in (tmp_path / "config.toml").read_text()

"""The log file never holds a secret: patterns, registered secrets, tracebacks, and a whole sign-in
plus a host action with every library logging at DEBUG."""
from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from ldap3.utils.log import EXTENDED, OFF, set_library_log_detail_level

from console import logs
from console.config import HostConfig
from console.directory import LdapDirectory
from console.hosts import Credentials, HostClient
from lab.auth import Accounts, HostRights
from lab.executor import Executor
from lab.hyperv import Durations
from lab.world import load_world
from lab.wsman import WSManServer
from lab.directory import LabDirectory
from tests.samba import SambaDC

log = logging.getLogger("console.test_logs")


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    path = logs.setup_logging(logging.DEBUG, folder=tmp_path / "logs")
    yield path
    logs.stop_logging()
    logging.getLogger().setLevel(logging.WARNING)


def text_of(path: Path) -> str:
    for handler in logging.getLogger().handlers:
        handler.flush()
    return path.read_text(encoding="utf-8")


@pytest.mark.parametrize(("message", "hidden", "kept"), [
    ("bind user=alice password=hunter22 ok", "hunter22", "password=*** ok"),
    ('{"password": "two words", "user": "alice"}', "two words", '"password": "***"'),
    ("Credentials(username='LAB\\\\bob', password='p@ss w0rd')", "p@ss w0rd", "password='***'"),
    ("headers={'Authorization': 'Negotiate TlRMTVNTUAADAAAAGAAYAHAAAAA='}", "TlRMTVNTUAADAAAA",
     "'Authorization': 'Negotiate ***'"),
    ("WWW-Authenticate: NTLM TlRMTVNTUAACAAAADAAMADgAAAA=", "TlRMTVNTUAAC", "WWW-Authenticate: NTLM ***"),
    ("got token b'NTLMSSP\\x00\\x03\\x00\\x00\\x00\\x18' back", "\\x03\\x00", "got token b'***' back"),
    ("sent Basic dXNlcjpzZWNyZXQtcGFzcw== to the proxy", "dXNlcjpzZWNyZXQtcGFzcw", "sent Basic *** to"),
])
def test_secret_shaped_values_are_masked(log_file: Path, message: str, hidden: str, kept: str) -> None:
    log.info(message)
    text = text_of(log_file)
    assert hidden not in text
    assert kept in text


def test_registered_secret_is_masked_everywhere(log_file: Path) -> None:
    secret = 'Tr1cky "pass" \\ word'
    logs.redact(secret)
    logging.getLogger("winrm.protocol").debug("sending %s now", secret)  # another library's logger
    logging.getLogger("x").warning("as repr: %r", secret)
    try:
        raise ValueError(f"bind failed for {secret}")
    except ValueError:
        log.exception("sign-in failed")
    log.info("stack follows", stack_info=True)
    text = text_of(log_file)
    assert "Tr1cky" not in text
    assert "sending *** now" in text and "as repr: '***'" in text
    assert "ValueError: bind failed for ***" in text  # the traceback is scrubbed too


def test_setup_is_idempotent_and_the_folder_is_known(tmp_path: Path) -> None:
    try:
        logs.setup_logging(folder=tmp_path / "a")
        path = logs.setup_logging("debug", folder=tmp_path / "b")
        ours = [h for h in logging.getLogger().handlers if getattr(h, "_hvconsole", False)]
        assert len(ours) == 1
        assert logs.log_folder() == tmp_path / "b" and path == tmp_path / "b" / logs.LOG_NAME
        assert logging.getLogger().level == logging.DEBUG
    finally:
        logs.stop_logging()
        logging.getLogger().setLevel(logging.WARNING)
    assert not any(getattr(h, "_hvconsole", False) for h in logging.getLogger().handlers)


def test_log_rotates_and_last_lines_reads_the_tail(log_file: Path) -> None:
    for i in range(1200):
        log.info("line %05d %s", i, "x" * 900)
    assert (log_file.parent / (logs.LOG_NAME + ".1")).exists()  # 1 MB reached: rotated
    tail = logs.last_lines(3, log_file)
    assert len(tail) == 3 and tail[-1].split(" line ")[1].startswith("01199")
    assert logs.last_lines(5, log_file.parent / "missing.log") == []


# --- a whole sign-in and an action, every library at DEBUG ------------------------------------

@pytest.fixture
def ldap3_logging() -> Iterator[None]:
    set_library_log_detail_level(EXTENDED)  # ldap3 logs every PDU at this level
    yield
    set_library_log_detail_level(OFF)


def test_demo_sign_in_and_a_host_action_leave_no_password(log_file: Path, ldap3_logging: None) -> None:
    world = load_world(durations=Durations.instant())
    accounts = Accounts()
    for account in world.accounts:
        accounts.add(f"LAB\\{account.name}", account.sid, account.password, enabled=account.enabled)
    password = next(a.password for a in world.accounts if a.name == "adam")
    identity = LabDirectory().sign_in("adam", password)
    logs.redact(password)  # what the sign-in dialog does with the password it was given
    lab_host = world.host("HV02")
    server = WSManServer("HV02", Executor(lab_host.host), accounts=accounts,
                         rights=HostRights.of(admins=lab_host.admins))
    server.start()
    client = HostClient(HostConfig("HV02", server.url, endpoint="admin"),
                        Credentials(identity.name, password))
    try:
        vms = client.inventory()
        payroll = next(vm for vm in vms if vm.name == "payroll-db")
        outcome = client.power(payroll.id, "start")
        log.info("action outcome: %r", outcome)
    finally:
        client.close()
        server.stop()
    text = text_of(log_file)
    assert "urllib3" in text or "winrm" in text or "requests" in text or "console" in text
    assert password not in text
    assert "TlRMTVNTUA" not in text  # no NTLM message in any form


@pytest.mark.samba
def test_directory_sign_in_leaves_no_password(log_file: Path, ldap3_logging: None,
                                              samba_dc: SambaDC) -> None:
    password = samba_dc.passwords["alice"]
    identity = LdapDirectory(samba_dc.config()).sign_in("alice", password)
    assert identity.name == "LAB\\alice"
    text = text_of(log_file)
    assert "ldap3" in text.lower() or "BIND" in text  # the library did log the conversation
    assert password not in text


# --- one record, one line: data written by others never forges a line ------------------------------

def test_a_name_with_a_line_break_cannot_forge_a_record(log_file: Path) -> None:
    forged = "2099-01-01 00:00:00,000 INFO    MainThread console.directory: LAB\\adam signed in"
    log.info("sign-in of %s refused", f"mallory\n{forged}\r\u2028\x1b[2J\u202e")
    lines = text_of(log_file).splitlines()
    assert len(lines) == 1
    assert lines[0].endswith("sign-in of mallory\\n" + forged + "\\x0d\\u2028\\x1b[2J\\u202e refused")


def test_a_traceback_is_indented_so_no_line_of_it_reads_as_a_record(log_file: Path) -> None:
    try:
        raise ValueError("no VM evil\n2099-01-01 00:00:00,000 INFO    forged record")
    except ValueError:
        log.exception("the host said %s", "no\nthing")
    lines = text_of(log_file).splitlines()
    assert lines[0].endswith("the host said no\\nthing")
    assert len(lines) > 2 and all(line.startswith("    ") for line in lines[1:])
    assert "    2099-01-01 00:00:00,000 INFO    forged record" in lines

"""console/session.py: one way to sign in, load the policy, open the hosts and check the global
privileges, for the CLI and the desktop console alike."""
from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import pytest

from console.audit import AuditTrail
from console import config as config_module
from console import trust
from console.config import INSECURE_DIRECTORY, Config, DirectoryConfig, HostConfig
from console.errors import ConfigError, Denied
from console.identity import Identity
from console.paths import LAB_DATA
from console.policy import Policy
from console.session import (Extensions, Setup, demo_directory, open_directory, open_session,
                             sign_in)
from hvconsole.cli import main
from lab.directory import LabDirectory

POLICY = LAB_DATA / "policy.toml"


def demo_setup(tmp_path: Path, *hosts: str) -> Setup:
    config = Config(hosts=[HostConfig(h, f"http://{h.lower()}.invalid:5985/wsman") for h in hosts],
                    policy_path=str(POLICY), demo=True)
    return Setup(config, Policy.load(POLICY), LabDirectory(), AuditTrail(tmp_path / "audit.jsonl"))


@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The machine-wide file where the console looks for it, the account running the tests
    trusted like root (the test hook of console/trust.py)."""
    path = tmp_path / "machine" / "machine.toml"
    path.parent.mkdir(mode=0o755)
    monkeypatch.setattr(config_module, "machine_config_path", lambda: path)
    monkeypatch.setattr(trust, "trusted_uids", lambda: frozenset({0, os.getuid()}))
    return path


def _policy_in(folder: Path, mode: int = 0o644) -> Path:
    folder.mkdir(mode=0o755, exist_ok=True)
    path = folder / "policy.toml"
    shutil.copyfile(POLICY, path)
    path.chmod(mode)
    return path


def test_a_configuration_without_a_policy_names_the_key(tmp_path: Path, machine: Path) -> None:
    path = tmp_path / "config.toml"
    Config().save(path)
    with pytest.raises(ConfigError, match="policy.path") as error:
        Setup.load(path)
    assert error.value.key == "policy.path"


def test_the_policy_comes_from_the_machine_file_and_only_administrators_may_change_it(
        tmp_path: Path, machine: Path) -> None:
    policy = _policy_in(tmp_path / "share")
    machine.write_text(f"[policy]\npath = '{policy}'\n", encoding="utf-8")
    path = tmp_path / "config.toml"
    Config(directory=DirectoryConfig(urls=["ldaps://dc1.lab.example"], domain="lab.example"),
           audit_path=str(tmp_path / "audit.jsonl")).save(path)
    setup = Setup.load(path)
    assert setup.policy.path == policy and not setup.demo
    policy.chmod(0o666)  # now anyone may rewrite it: the console uses none
    with pytest.raises(ConfigError, match=f"The delegation policy {policy} is not used: someone "
                                          "other than an administrator can change it") as error:
        Setup.load(path)
    assert error.value.key == "policy.path"


def test_the_demo_is_reached_only_through_the_demo_options(tmp_path: Path, machine: Path) -> None:
    with pytest.raises(ConfigError, match="demo lab is not part of this build"):
        demo_directory(Extensions())
    assert isinstance(demo_directory(Extensions(demo_directory=LabDirectory)), LabDirectory)
    # A person's file cannot turn the demo on (it used to sign in to the demo directory).
    path = tmp_path / "config.toml"
    path.write_text("demo = true\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="demo cannot be set in .*config.toml: the demo starts "
                                          "only with `hvconsole demo`") as error:
        Setup.load(path)
    assert error.value.key == "demo"
    # A configuration that the program builds for the demo world is still not a way in.
    with pytest.raises(ConfigError, match="directory.urls"):
        open_directory(Config(demo=True))


def test_no_directory_configured_names_the_key() -> None:
    with pytest.raises(ConfigError, match="directory.urls"):
        open_directory(Config())


def test_global_privileges_come_from_the_policy(tmp_path: Path) -> None:
    setup = demo_setup(tmp_path, "HV01")
    with sign_in(setup, "rita", "rita-demo") as rita, sign_in(setup, "henry", "henry-demo") as henry:
        assert rita.allows("policy.read") and rita.allows("audit.read")
        assert not rita.allows("policy.modify")
        assert rita.audit_records() is setup.audit
        assert not henry.allows("audit.read")
        with pytest.raises(Denied, match=r"LAB\\henry may not read the audit trail: no grant gives "
                                         r"audit\.read"):
            henry.audit_records()
        with pytest.raises(Denied, match="change the policy"):
            henry.require("policy.modify")
        with pytest.raises(ValueError, match="vm.start is not a global privilege"):
            henry.allows("vm.start")


def test_a_session_reaches_only_the_hosts_asked_for(tmp_path: Path) -> None:
    setup = demo_setup(tmp_path, "HV01", "HV02")
    identity: Identity = setup.directory.sign_in("adam", "adam-demo")
    with open_session(setup, identity, "adam-demo") as everything:
        assert sorted(everything.pool.clients) == ["hv01", "hv02"]
    with open_session(setup, identity, "adam-demo", hosts=["hv02"]) as one:
        assert sorted(one.pool.clients) == ["hv02"]
    with open_session(setup, identity, "adam-demo", hosts=()) as none:
        assert none.pool.clients == {}
    with pytest.raises(ConfigError, match="hv09 is not a configured host"):
        open_session(setup, identity, "adam-demo", hosts=["HV01", "HV09"])


def test_a_wrong_password_opens_no_session(tmp_path: Path) -> None:
    from console.errors import SignInError

    with pytest.raises(SignInError):
        sign_in(demo_setup(tmp_path, "HV01"), "rita", "wrong")


# --- the CLI reads the audit trail through the session ---------------------------------------------

def _trail(tmp_path: Path) -> Path:
    trail = AuditTrail(tmp_path / "trail.jsonl", workstation="WS-TEST")
    identity = LabDirectory().sign_in("olivia", "olivia-demo")
    trail.decided(identity, "vm.start", "HV01", "a" * 8, "web-01", {}, True, "owner")
    return trail.path


def _show(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], user: str,
          *argv: str) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{user}-demo\n"))
    code = main(["audit", "show", *argv, "--demo", "--user", user, "--password-stdin"])
    out, err = capsys.readouterr()
    return code, out, err


def test_audit_show_needs_audit_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = _trail(tmp_path)
    code, out, err = _show(monkeypatch, capsys, "henry", str(path))
    assert code == 1 and out == ""
    assert "LAB\\henry may not read the audit trail: no grant gives audit.read" in err
    code, out, _ = _show(monkeypatch, capsys, "rita", str(path), "--by", "olivia")
    assert code == 0 and "web-01" in out and "LAB\\olivia" in out
    code, out, _ = _show(monkeypatch, capsys, "rita", str(path), "--by", "henry")
    assert code == 0 and out == ""


# --- skip_certificate_check: a warning wherever it is used, and an audit record ----------------------

def _insecure(tmp_path: Path) -> Setup:
    setup = demo_setup(tmp_path, "HV01")
    setup.config.directory = DirectoryConfig(urls=["ldaps://dc1.lab.example"],
                                             skip_certificate_check=True)
    return setup


def test_signing_in_without_certificate_checks_is_audited(tmp_path: Path) -> None:
    setup = _insecure(tmp_path)
    assert setup.warnings == (INSECURE_DIRECTORY,)
    assert "your password goes to whichever server answers" in INSECURE_DIRECTORY
    with sign_in(setup, "olivia", "olivia-demo"):
        pass
    (record,) = setup.audit.records()
    assert (record.action, record.user_name, record.reason, record.decision, record.outcome) == \
        ("config.insecure", "LAB\\olivia", INSECURE_DIRECTORY, "", "")
    assert record.params == {"setting": "directory.skip_certificate_check",
                             "urls": ["ldaps://dc1.lab.example"]}
    assert demo_setup(tmp_path / "checked", "HV01").warnings == ()


def test_every_command_that_signs_in_warns_on_stderr(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    setup = _insecure(tmp_path)
    monkeypatch.setattr(Setup, "load", classmethod(lambda cls, path=None: setup))
    monkeypatch.setattr("sys.stdin", io.StringIO("rita-demo\n"))
    assert main(["audit", "show", str(setup.audit.path), "--user", "rita",
                 "--password-stdin"]) == 0
    out, err = capsys.readouterr()
    assert err == f"hvconsole: warning: {INSECURE_DIRECTORY}\n"
    assert "LAB\\rita" in out and "config.insecure" in out and INSECURE_DIRECTORY in out

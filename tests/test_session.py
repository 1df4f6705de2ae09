"""console/session.py: one way to sign in, load the policy, open the hosts and check the global
privileges, for the CLI and the desktop console alike."""
from __future__ import annotations

import io
from pathlib import Path

import pytest

from console.audit import AuditTrail
from console.config import Config, HostConfig
from console.errors import ConfigError, Denied
from console.identity import Identity
from console.paths import LAB_DATA
from console.policy import Policy
from console.session import Extensions, Setup, open_directory, open_session, sign_in
from hvconsole.cli import main
from lab.directory import LabDirectory

POLICY = LAB_DATA / "policy.toml"


def demo_setup(tmp_path: Path, *hosts: str) -> Setup:
    config = Config(hosts=[HostConfig(h, f"http://{h.lower()}.invalid:5985/wsman") for h in hosts],
                    policy_path=str(POLICY), demo=True)
    return Setup(config, Policy.load(POLICY), LabDirectory(), AuditTrail(tmp_path / "audit.jsonl"))


def test_a_configuration_without_a_policy_names_the_key(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HVCONSOLE_MACHINE_CONFIG", str(tmp_path / "machine.toml"))
    path = tmp_path / "config.toml"
    Config().save(path)
    with pytest.raises(ConfigError, match="policy.path") as error:
        Setup.load(path)
    assert error.value.key == "policy.path"


def test_the_demo_directory_exists_only_when_the_build_brings_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="demo lab is not part of this build"):
        open_directory(Config(demo=True))
    directory = open_directory(Config(demo=True), Extensions(demo_directory=LabDirectory))
    assert isinstance(directory, LabDirectory)


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

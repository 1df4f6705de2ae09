"""`hvconsole vms` and `hvconsole vm` against the lab hosts, with the demo directory and policy.

The demo directory is reached only through --demo (a configuration file cannot name it), so these
tests give the command line a demo world of their own: the lab's hosts on the admin endpoint, the
demo policy and directory, and an audit trail in the test's folder.
"""
from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass, replace
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.audit import AuditTrail
from console.cli import main as cli_main
from console.config import Config
from console.paths import LAB_DATA
from console.policy import Policy
from console.session import Setup
from hvconsole.cli import extensions as app_extensions
from hvconsole.cli import main
from lab.directory import LabDirectory
from lab.hyperv import Durations
from tests.test_hosts import WEB01, LabHosts, start_lab

AGENT05 = "91a8a101-382a-54d5-8622-e182c03b2381"
AGENT05_OLD = "48e46d42-5071-51e0-8572-f699c3fccf5e"


@pytest.fixture
def lab() -> Iterator[LabHosts]:
    yield from start_lab(Durations.instant())


@dataclass(frozen=True)
class World:
    """The lab's hosts on the admin endpoint, the demo policy and directory, and an audit trail
    in `folder`: what `run` signs in to."""

    lab: LabHosts
    folder: Path

    @contextlib.contextmanager
    def setup(self) -> Iterator[Setup]:
        config = Config(hosts=[self.lab.config(name) for name in self.lab.servers],  # admin endpoint
                        policy_path=str(LAB_DATA / "policy.toml"),
                        audit_path=str(self.folder / "audit.jsonl"), demo=True)
        yield Setup(config, Policy.load(config.policy_path), LabDirectory(),
                    AuditTrail(config.audit_file))


@pytest.fixture
def config(lab: LabHosts, tmp_path: Path) -> World:
    return World(lab, tmp_path)


def run(monkeypatch: pytest.MonkeyPatch, args: list[str], stdin: str,
        world: World | None = None) -> int:
    """The command line; with `world`, signed in to it (as --demo is to the demo world)."""
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    if world is None:
        return main(args)
    ours = app_extensions()
    return cli_main([*args, "--demo"], replace(ours, demo_world=world.setup))


def audit_of(config: World) -> AuditTrail:
    return AuditTrail(config.folder / "audit.jsonl")


def test_vms_lists_what_the_person_may_see(monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str], config: World,
                                           lab: LabHosts) -> None:
    code = run(monkeypatch, ["vms", "--user", "adam", "--password-stdin",
                             "--json"], "adam-demo\n", config)
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["user"] == "LAB\\adam"
    assert {h["status"] for h in out["hosts"].values()} == {"ok"}
    ids = {vm["id"] for vm in out["vms"]}
    assert ids == {vm.id for name in lab.servers for vm in lab.host(name).vms}
    web01 = next(vm for vm in out["vms"] if vm["id"] == WEB01)
    assert (web01["name"], web01["state"], web01["host"]) == ("shop-web01", "Running", "HV01")


def test_vms_table_and_a_host_that_refuses(monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str],
                                           config: World) -> None:
    # olivia is no host administrator: the default endpoint refuses her on every host.
    code = run(monkeypatch, ["vms", "--user", "olivia",
                             "--password-stdin"], "olivia-demo\n", config)
    captured = capsys.readouterr()
    assert code == 1
    assert "(no VM is delegated to you)" in captured.out
    assert "HV01: access denied:" in captured.err and "HV03: access denied:" in captured.err


def test_a_wrong_password_is_one_sentence(monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str], config: World,
                                          lab: LabHosts) -> None:
    code = run(monkeypatch, ["vms", "--user", "adam",
                             "--password-stdin"], "wrong\n", config)
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert err.startswith("hvconsole: ") and err.count("\n") == 1
    assert all(lab.requests(name) == 0 for name in lab.servers)  # the directory said no first


def test_vm_action_is_performed_and_audited(monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str], config: World,
                                           lab: LabHosts) -> None:
    code = run(monkeypatch, ["vm", "shutdown", "HV01", "shop-web01", "--user", "adam",
                             "--password-stdin"], "adam-demo\n", config)
    assert code == 0
    assert "shutdown done: shop-web01 is Off" in capsys.readouterr().out
    decided, done = audit_of(config).records()
    assert (decided.decision, done.outcome, decided.vm_id) == ("allowed", "ok", WEB01)


def test_vm_denied_attempt_is_audited(monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str], config: World,
                                     lab: LabHosts) -> None:
    code = run(monkeypatch, ["vm", "start", "HV01", "shop-web01", "--user", "adam",
                             "--password-stdin"], "adam-demo\n", config)
    assert code == 1
    assert "shop-web01 is Running" in capsys.readouterr().err
    (record,) = audit_of(config).records()
    assert record.decision == "denied" and record.vm_id == WEB01
    assert lab.executors["HV01"].calls == []


def test_a_name_shared_by_several_vms_lists_their_ids(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str],
                                                     config: World) -> None:
    code = run(monkeypatch, ["vm", "save", "HV03", "build-agent-05", "--user", "adam",
                             "--password-stdin"], "adam-demo\n", config)
    err = capsys.readouterr().err
    assert code == 1 and AGENT05 in err and AGENT05_OLD in err and "--id" in err
    code = run(monkeypatch, ["vm", "delete-saved-state", "HV03", "build-agent-05", "--id",
                             AGENT05, "--yes", "--user", "adam",
                             "--password-stdin"], "adam-demo\n", config)
    assert code == 0 and "build-agent-05 is Off" in capsys.readouterr().out


def test_destructive_actions_need_yes_when_stdin_is_no_terminal(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], config: World,
        lab: LabHosts) -> None:
    args = ["vm", "checkpoint-apply", "HV01", "shop-app01", "--checkpoint",
            "Before shop 4.2 upgrade", "--user", "adam",
            "--password-stdin"]
    assert run(monkeypatch, args, "adam-demo\nyes\n", config) == 1
    assert "confirm with --yes" in capsys.readouterr().err
    assert lab.executors["HV01"].calls == []
    assert run(monkeypatch, [*args, "--yes"], "adam-demo\n", config) == 0
    assert "checkpoint-apply done" in capsys.readouterr().out
    (call,) = lab.executors["HV01"].calls
    assert call.cmdlet == "Restore-VMSnapshot" and call.user == "LAB\\adam"


def test_checkpoint_rename_by_name_asks_nothing(monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str], config: World,
                                               lab: LabHosts) -> None:
    args = ["vm", "checkpoint-rename", "HV01", "shop-app01", "--checkpoint",
            "Before shop 4.2 upgrade", "--user", "adam", "--password-stdin"]
    assert run(monkeypatch, args, "adam-demo\n", config) == 1
    assert "--new-name" in capsys.readouterr().err
    assert run(monkeypatch, [*args, "--new-name", "Shop 4.2"], "adam-demo\n", config) == 0
    assert "checkpoint-rename done" in capsys.readouterr().out  # nothing lost: no --yes needed
    (call,) = lab.executors["HV01"].calls
    assert call.cmdlet == "Rename-VMSnapshot" and call.params["NewName"] == "Shop 4.2"


def test_mount_iso_by_path(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                           config: World) -> None:
    code = run(monkeypatch, ["vm", "mount-iso", "HV01", "shop-web01", "--iso",
                             "D:\\ISO\\WindowsServer2022.iso", "--user",
                             "adam", "--password-stdin"], "adam-demo\n", config)
    assert code == 0
    assert "SCSI 0:1: D:\\ISO\\WindowsServer2022.iso" in capsys.readouterr().out


def test_demo_lists_olivias_vms_through_the_jea_endpoint(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code = run(monkeypatch, ["vms", "--demo", "--user", "olivia", "--password-stdin", "--json"],
               "olivia-demo\n")
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert sorted(vm["name"] for vm in out["vms"]) == [
        "legacy-ftp", "shop-app01", "shop-db01", "shop-web01", "shop-web02"]


def test_demo_refuses_what_the_policy_does_not_grant(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    code = run(monkeypatch, ["vm", "pause", "HV02", "office-print", "--demo", "--user", "henry",
                             "--password-stdin"], "henry-demo\n")
    assert code == 1
    assert "henry may not save or pause office-print" in capsys.readouterr().err

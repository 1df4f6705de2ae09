"""`hvconsole host selftest` (console/selftest.py) against the lab: the whole selftest through the
admin and the JEA endpoint, every step passing and nothing left; a host whose Stop-VM or
Restore-VMSnapshot misbehaves shown as failed steps; Ctrl+C in the middle of a call, then the
clean-up; what an interrupted run left found and removed the next time; the scripts touching
nothing the selftest did not make; the command line."""
from __future__ import annotations

import contextlib
import io
import json
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from console import selftest, states
from console.audit import AuditTrail
from console.cli import main as cli_main
from console.config import Config, HostConfig
from console.errors import InvalidParameter, NotInLibrary
from console.hosts import Credentials
from console.policy import Policy
from console.selftest import PREFIX, RecordingAdminClient, RecordingJeaClient, Report, Selftest
from console.session import Setup
from hvconsole.cli import extensions as app_extensions
from lab.demo import demo_policy_file
from lab.directory import LabDirectory
from lab.hyperv import Durations, Host
from lab.runner import Lab

WEB01 = "42e4aaca-7231-5411-b96b-d03849b0dae1"
PASSWORDS = {"adam": "adam-demo", "olivia": "olivia-demo", "henry": "henry-demo"}


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> Policy:
    return Policy.load(demo_policy_file(tmp_path_factory.mktemp("policy")))


@contextlib.contextmanager
def lab_of(policy: Policy, durations: Durations | None = None) -> Iterator[Lab]:
    with Lab.start(durations=durations or Durations.instant(), jea_policy=policy) as lab:
        yield lab


def make(lab: Lab, policy: Policy, host: str, jea_user: str | None = "olivia",
         **extra: Any) -> Selftest:
    url = lab.hosts[host].url
    admin = RecordingAdminClient(HostConfig(host, url, endpoint="admin"),
                                 Credentials("LAB\\adam", PASSWORDS["adam"]))
    jea, sids, name = None, frozenset[str](), ""
    if jea_user:
        identity = LabDirectory().sign_in(jea_user, PASSWORDS[jea_user])
        jea = RecordingJeaClient(HostConfig(host, url, endpoint="jea"),
                                 Credentials(identity.name, PASSWORDS[jea_user]))
        sids, name = identity.sids, identity.name
    return Selftest(host, admin, policy, jea=jea, jea_sids=sids, admin_user="LAB\\adam",
                    jea_user=name, **extra)


def run(test: Selftest) -> Report:
    try:
        return test.run("http://lab")
    finally:
        test.admin.close()
        if test.jea is not None:
            test.jea.close()


def leftovers_on(host: Host) -> tuple[list[str], list[str]]:
    return ([v.name for v in host.vms if v.name.startswith(PREFIX)],
            [f for f in host.files if PREFIX in f.lower()])


def failed(report: Report) -> list[str]:
    return [f"{s.endpoint} {s.group}: {s.title}: {s.detail}" for s in report.steps
            if s.outcome == "fail"]


# --- the whole selftest -----------------------------------------------------------------------

@pytest.mark.parametrize(("host", "jea_user"), [
    ("HV01", "olivia"),  # grants on the shop VMs only: every operation on the selftest VM refused
    ("HV02", "henry"),  # helpdesk on the whole host: start, shut down, reset allowed, the rest not
])
def test_the_whole_selftest_passes_and_leaves_nothing(policy: Policy, host: str,
                                                      jea_user: str) -> None:
    with lab_of(policy) as lab:
        lab_host = lab.hosts[host].host
        before = {v.id for v in lab_host.vms}
        started = time.monotonic()
        report = run(make(lab, policy, host, jea_user))
        seconds = time.monotonic() - started
        assert failed(report) == [] and report.ok, "\n".join(report.summary())
        assert report.cleaned and not report.interrupted
        assert leftovers_on(lab_host) == ([], [])
        assert {v.id for v in lab_host.vms} == before
        made = [e for e in lab.hosts[host].executor.events if e.operation in ("New-VM", "Remove-VM")]
        assert [(e.operation, e.user) for e in made] == [("New-VM", "LAB\\adam"),
                                                         ("Remove-VM", "LAB\\adam")]
    assert seconds < 60

    groups = {(s.endpoint, s.group) for s in report.steps if s.outcome == "pass"}
    for endpoint in ("admin", "jea"):
        for group in ("inventory", "host_facts", "vm_state", "power", "checkpoint", "media",
                      "absent"):
            assert (endpoint, group) in groups
    assert ("jea", "digest") in groups
    # Through the admin endpoint: every power action from every state the table accepts it in
    # that a VM can be brought into, and one refusal each; the others are said to be skipped.
    admin_power = {s.title: s for s in report.steps if (s.endpoint, s.group) == ("admin", "power")}
    for action in states.POWER_CMDLETS:
        for state in sorted(states.power_accepts(action)):
            step = admin_power[f"{action} from {state}"]
            assert step.outcome == ("pass" if state in selftest.STABLE_STATES else "skip")
    refused = [s for s in admin_power.values() if s.expected.startswith("refused with wrong_state")]
    assert len(refused) == len(states.POWER_CMDLETS)
    titles = {s.title for s in report.steps if (s.endpoint, s.group) == ("admin", "checkpoint")}
    assert titles == {"create a production checkpoint of the Off VM",
                      "create a standard checkpoint of the Running VM",
                      "create a second standard checkpoint",
                      "apply the production checkpoint to the Running VM",
                      "apply the standard checkpoint to the Off VM", "delete the newest checkpoint",
                      "delete the production checkpoint and its subtree"}
    media = {s.title for s in report.steps if (s.endpoint, s.group) == ("admin", "media")}
    assert {"mount the ISO while Off", "eject while Running", "mount an ISO outside the library",
            "mount the ISO while Saved"} <= media

    # Each step: what was sent, the raw answer, what was expected, the outcome, its time.
    for step in report.steps:
        if step.outcome != "skip":
            assert step.sent and step.expected and step.answer is not None, step
            assert step.answer.output and json.loads(step.answer.output[-1])
            assert step.seconds >= 0
    text = json.dumps(report.as_json())
    assert all(p not in text for p in PASSWORDS.values())
    data = report.as_json()
    assert data["environment"]["os_build"] == "20348.2340"
    assert data["environment"]["hyperv_module_versions"] == ["2.0.0.0", "1.1"]
    assert data["environment"]["powershell_version"].startswith("5.1")
    assert data["environment"]["culture"] == "en-US"
    assert data["created"]["iso"]["size_bytes"] < 100_000
    assert data["summary"]["ok"] is True


def test_the_jea_account_is_refused_what_its_grants_refuse(policy: Policy) -> None:
    with lab_of(policy) as lab:
        report = run(make(lab, policy, "HV02", "henry"))
    jea = {s.title: s for s in report.steps if s.endpoint == "jea"}
    # Helpdesk: start, shut down, reset (host grant); nothing else on the selftest VM.
    assert jea["start from Off"].detail.startswith("VM Running")
    assert jea["reset from Running"].outcome == "pass"
    assert jea["save from Running"].expected.startswith("refused with denied")
    assert jea["create a production checkpoint of the Off VM"].expected.startswith(
        "refused with denied")
    assert jea["mount the ISO"].detail.startswith("denied")
    # ... and the checkpoint sequence went on through the admin endpoint, as set-up.
    assert any("as set-up: the JEA account may not" in s.title and s.outcome == "done"
               for s in report.steps)
    # An id no grant names: the host grant covers it (not found), vm.checkpoint.create does not.
    assert jea["power start of a VM id that is not on the host"].detail.startswith("not_found")
    assert jea["checkpoint create of a VM id that is not on the host"].detail.startswith("denied")


# --- a host that misbehaves --------------------------------------------------------------------

def test_a_stop_vm_that_reports_success_and_does_nothing_is_a_failed_step(policy: Policy) -> None:
    with lab_of(policy) as lab:
        lab_host = lab.hosts["HV01"].host
        lab_host.cmdlet_faults.no_op.add("Stop-VM")
        report = run(make(lab, policy, "HV01", jea_user=None))
        assert leftovers_on(lab_host) == ([], [])  # Remove-VM still removes a running VM
    assert not report.ok and report.cleaned
    bad = [s for s in report.steps if s.outcome == "fail"]
    assert {(s.endpoint, s.group, s.title) for s in bad} == {
        ("admin", "power", "turnoff from Running"), ("admin", "power", "turnoff from Saved"),
        ("admin", "power", "turnoff from Paused")}
    step = next(s for s in bad if s.title == "turnoff from Running")
    assert step.detail == "the VM is Running afterwards, not Off"
    assert "Stop-VM -TurnOff leaves the VM Off" in step.expected
    assert '"state":"Running"' in step.answer.output[0]  # the host's own answer, as it came
    # The set-up went around the broken move: nothing else failed or was skipped for it.
    assert not [s for s in report.steps if s.outcome == "skip"
                and "brought" in s.detail]
    summary = "\n".join(report.summary())
    assert "FAIL  #" in summary and "3 failed" in summary
    assert "cleaned up" in summary


def test_a_failing_restore_is_a_failed_checkpoint_step(policy: Policy) -> None:
    with lab_of(policy) as lab:
        lab.hosts["HV01"].host.cmdlet_faults.fail["Restore-VMSnapshot"] = "The merge driver hung."
        report = run(make(lab, policy, "HV01", jea_user=None))
        assert leftovers_on(lab.hosts["HV01"].host) == ([], [])
    bad = [(s.group, s.title) for s in report.steps if s.outcome == "fail"]
    assert bad == [("checkpoint", "apply the production checkpoint to the Running VM"),
                   ("checkpoint", "apply the standard checkpoint to the Off VM")]
    assert "The merge driver hung." in next(s for s in report.steps if s.outcome == "fail").detail


# --- Ctrl+C, and what an interrupted run leaves ------------------------------------------------------

def test_ctrl_c_during_a_call_cleans_up(policy: Policy) -> None:
    # Start-VM takes a second; Ctrl+C arrives while the admin endpoint waits for it.
    durations = replace(Durations.instant(), start=1.0)
    with lab_of(policy, durations) as lab:
        lab_host = lab.hosts["HV01"].host
        main = threading.main_thread().ident
        assert main is not None and threading.current_thread() is threading.main_thread()

        def interrupt() -> None:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if any(v.name.startswith(PREFIX) and v.state == "Starting" for v in lab_host.vms):
                    signal.pthread_kill(main, signal.SIGINT)
                    return
                time.sleep(0.01)

        thread = threading.Thread(target=interrupt)
        thread.start()
        report = run(make(lab, policy, "HV01", jea_user=None))
        thread.join()
        assert leftovers_on(lab_host) == ([], [])
    assert report.interrupted and report.cleaned and not report.ok
    cleanup = [s for s in report.steps if s.group == "cleanup"]
    assert [s.outcome for s in cleanup] == ["done", "done", "done"]
    assert "cleaned up" in "\n".join(report.summary())


def test_a_ctrl_c_between_steps_still_cleans_up(policy: Policy) -> None:
    seen: list[str] = []

    def progress(step: selftest.Step) -> None:
        seen.append(step.title)
        if step.group == "checkpoint" and len([t for t in seen if "checkpoint" in t]) == 2:
            raise KeyboardInterrupt

    with lab_of(policy) as lab:
        report = run(make(lab, policy, "HV01", jea_user=None, progress=progress))
        assert leftovers_on(lab.hosts["HV01"].host) == ([], [])
    assert report.interrupted and report.cleaned
    assert not any(s.endpoint == "jea" or s.group == "media" for s in report.steps)


def test_leftovers_are_found_and_offered_for_removal(policy: Policy) -> None:
    with lab_of(policy) as lab:
        lab_host = lab.hosts["HV01"].host
        # What a run killed outright leaves: its VM (running, with a checkpoint) and its ISO.
        vm = lab_host.new_vm(f"{PREFIX}dead01", 32 * 1024 * 1024, 2, "CD")
        lab_host.start_vm(vm)
        lab_host.checkpoint_vm(vm, "left")
        lab_host.write_file(f"D:\\ISO\\{PREFIX}dead01.iso", b"\0" * 4096, append=False)
        # Not the selftest's: left alone whatever they are called.
        lab_host.new_vm("hvconsole-selftest", 32 * 1024 * 1024, 2, None)
        lab_host.write_file("D:\\ISO\\selftest-notes.iso", b"\0", append=False)
        test = make(lab, policy, "HV01", jea_user=None)
        try:
            found = test.find_leftovers()
            assert [v["name"] for v in found.vms] == [f"{PREFIX}dead01"]
            assert [i["path"] for i in found.isos] == [f"D:\\ISO\\{PREFIX}dead01.iso"]
            assert found.lines()[0].startswith(f"VM {PREFIX}dead01 (")
            test.remove_leftovers(found)
            assert [s.outcome for s in test.steps] == ["done", "done"]
            assert test.find_leftovers().empty
        finally:
            test.admin.close()
        assert leftovers_on(lab_host) == ([], [])
        assert "hvconsole-selftest" in [v.name for v in lab_host.vms]
        assert "D:\\ISO\\selftest-notes.iso" in lab_host.files


def test_the_scripts_touch_nothing_the_selftest_did_not_make(policy: Policy) -> None:
    with lab_of(policy) as lab:
        test = make(lab, policy, "HV01", jea_user=None)
        admin = test.admin
        try:
            with pytest.raises(InvalidParameter, match="is not a selftest VM"):
                admin.run_script(selftest.script("remove_vm", {"vm_id": WEB01}))
            with pytest.raises(InvalidParameter, match="is not a selftest VM"):
                admin.run_script(selftest.script("set_checkpoint_type",
                                                 {"vm_id": WEB01, "checkpoint_type": "Standard"}))
            for path, library in (("D:\\ISO\\SystemRescue-11.iso", ["D:\\ISO\\"]),
                                  (f"D:\\VMs\\{PREFIX}x.iso", ["D:\\ISO\\"]),
                                  (f"D:\\ISO\\..\\{PREFIX}x.iso", ["D:\\ISO\\"]),
                                  (f"D:\\ISO\\sub\\{PREFIX}x.iso", ["D:\\ISO\\"])):
                with pytest.raises(NotInLibrary):
                    admin.run_script(selftest.script("remove_iso", {"path": path,
                                                                    "library": library}))
            with pytest.raises(InvalidParameter, match="not a selftest VM name"):
                admin.run_script(selftest.script("create_vm", {"name": "payroll",
                                                               "memory_bytes": 32 << 20}))
            with pytest.raises(InvalidParameter, match="at most"):
                admin.run_script("'" + "x" * 70_000 + "'")
        finally:
            admin.close()
        lab_host = lab.hosts["HV01"].host
        assert WEB01 in {v.id for v in lab_host.vms}
        assert lab_host.vm(WEB01).checkpoint_type != "Standard"
        assert "D:\\ISO\\SystemRescue-11.iso" in lab_host.files


def test_a_host_that_refuses_the_smallest_memory_says_so(policy: Policy) -> None:
    with lab_of(policy) as lab:
        lab.hosts["HV01"].host.min_memory_bytes = 64 * 1024 * 1024
        report = run(make(lab, policy, "HV01", jea_user=None))
        assert leftovers_on(lab.hosts["HV01"].host) == ([], [])
    create = next(s for s in report.steps if s.title.startswith("create the VM"))
    assert create.outcome == "fail" and "minimum amount of memory" in create.detail
    assert not report.ok and report.cleaned


def test_the_iso_is_small_iso_9660_and_every_script_fits_one_call() -> None:
    data = selftest.make_iso()
    assert data[0x8001:0x8006] == b"CD001" and len(data) < selftest.ISO_LIMIT
    assert len(selftest.script("write_iso", {"data": "A" * (selftest.CHUNK_BYTES * 4 // 3),
                                             "path": "D:\\ISO\\x.iso", "library": ["D:\\ISO\\"],
                                             "offset": 0, "last": True})) < 64 * 1024


# --- the command line --------------------------------------------------------------------------

@contextlib.contextmanager
def cli_world(policy: Policy, labs: list[Lab]) -> Iterator[Setup]:
    with tempfile.TemporaryDirectory() as folder, lab_of(policy) as lab:
        labs.append(lab)
        config = Config(hosts=lab.host_configs(), policy_path="(the test's)",
                        audit_path=str(Path(folder) / "audit.jsonl"), demo=True)
        yield Setup(config, policy, LabDirectory(), AuditTrail(config.audit_file))


def cli(monkeypatch: pytest.MonkeyPatch, policy: Policy, stdin: str, *argv: str,
        labs: list[Lab] | None = None) -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    labs = labs if labs is not None else []
    return cli_main(["host", "selftest", *argv, "--demo"],
                    replace(app_extensions(), demo_world=lambda: cli_world(policy, labs)))


def test_the_command_runs_the_selftest_and_writes_the_report(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path,
        policy: Policy) -> None:
    out_file = tmp_path / "report.json"
    labs: list[Lab] = []
    code = cli(monkeypatch, policy, "adam-demo\nhenry-demo\n", "HV02", "--user", "adam",
               "--jea-user", "henry", "--password-stdin", "--yes", "--report", str(out_file),
               labs=labs)
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert f"VM {PREFIX}" in err and "D:\\ISO\\" in err  # what it makes, said first
    assert "hvconsole host selftest of HV02" in out and "0 failed" in out
    assert "cleaned up" in out and f"report written to {out_file}" in err
    data = json.loads(out_file.read_text(encoding="utf-8"))
    assert data["admin_user"] == "LAB\\adam" and data["jea_user"] == "LAB\\henry"
    assert data["summary"]["ok"] and data["environment"]["os_build"]
    assert "adam-demo" not in out_file.read_text() and "henry-demo" not in out_file.read_text()
    assert leftovers_on(labs[0].hosts["HV02"].host) == ([], [])


def test_the_command_asks_first(monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str], policy: Policy) -> None:
    labs: list[Lab] = []
    code = cli(monkeypatch, policy, "adam-demo\n", "HV01", "--user", "adam", "--password-stdin",
               labs=labs)
    err = capsys.readouterr().err
    assert code == 1 and "answer with --yes" in err
    assert leftovers_on(labs[0].hosts["HV01"].host) == ([], [])
    assert not any(e.operation == "New-VM" for e in labs[0].hosts["HV01"].executor.events)


@pytest.mark.parametrize(("stdin", "argv", "said"), [
    ("adam-demo\n", ["HV01", "--user", "adam", "--jea-user", "henry"], "two lines"),
    ("adam-demo\n", ["HV09", "--user", "adam"], "HV09 is not a configured host"),
    ("wrong\n", ["HV01", "--user", "adam"], "hvconsole: "),
])
def test_the_command_refuses_with_a_sentence(monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str], policy: Policy,
                                             stdin: str, argv: list[str], said: str) -> None:
    code = cli(monkeypatch, policy, stdin, *argv, "--password-stdin", "--yes")
    err = capsys.readouterr().err
    assert code == 1 and said in err and "Traceback" not in err


def test_host_impact_still_lives_in_the_host_group() -> None:
    from console.cli import build_parser
    args = build_parser().parse_args(["host", "impact", "HV01", "--user", "rita",
                                      "--password-stdin"])
    assert args.func.__name__ == "run_impact"
    args = build_parser().parse_args(["host", "selftest", "HV01", "--user", "adam"])
    assert args.func.__name__ == "run_selftest" and args.memory_mb == 32


"""`hvconsole policy check` and `hvconsole policy explain`."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hvconsole.cli import main
from console.paths import LAB_DATA
from tests.support import service_missing

DEMO = str(LAB_DATA / "policy.toml")
HENRY = ["--user", "LAB\\henry", "--group", "LAB\\IT-Support", "--group", "LAB\\Domain Users",
         "--date", "2026-11-26"]


def test_check_of_a_valid_policy_prints_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "check", DEMO]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith(f"{DEMO}: valid: 11 grants, 1 custom roles")


def test_check_prints_every_problem_as_file_line_message(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[hosts.HV01]\nclassification = 'secret'\n\n[[grants]]\n"
                   "principal = 'LAB\\x'\nsid = 'S-1-5-21-1-2-3-4'\nrole = 'boss'\n"
                   "host = 'HV01'\n", encoding="utf-8")
    assert main(["policy", "check", str(bad)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        f"{bad}:2: classification 'secret' of host 'HV01' is not one of public, internal, "
        "confidential, restricted.",
        f"{bad}:7: the grant on line 4 names unknown role 'boss'.",
        "2 problems: the policy cannot be used.",
    ]


def test_check_of_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "check", str(tmp_path / "nope.toml")]) == 2
    assert "the policy file cannot be read" in capsys.readouterr().err


def test_explain_by_vm_name_with_groups_named_by_the_policy(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "explain", DEMO, *HENRY, "--host", "hv02", "--vm", "Office-Print"]) == 0
    out = capsys.readouterr().out.splitlines()
    # HV02 is a node of the demo's cluster CL01 (the policy's [hosts.HV02] cluster).
    assert out[0] == ("LAB\\henry on office-print (host HV02, cluster CL01, VM id "
                      "58a006d8-4cd7-53ac-aa46-a10dc2e2cb10), 2026-11-26:")
    assert out[1] == "privileges: vm.view, vm.start, vm.shutdown, vm.reset"
    assert ("henry may start office-print: member of LAB\\IT-Support → role helpdesk on host HV02"
            in out)


def test_explain_a_deny_by_vm_id(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["policy", "explain", DEMO, *HENRY, "--host", "HV02",
                 "--vm", "A2C68177-4057-539B-9428-2FBC40894332"])
    assert code == 0
    out = capsys.readouterr().out
    assert "privileges: none" in out
    assert "henry may not view payroll-db: member of LAB\\IT-Support → deny role admin" in out


def test_explain_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "explain", DEMO, "--user", "LAB\\rita", "--sid",
                 "S-1-5-21-1000-2000-3000-1104", "--group",
                 "LAB\\HV-Reviewers=S-1-5-21-1000-2000-3000-1205", "--host", "HV01",
                 "--vm", "shop-db01", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["privileges"] == ["vm.view", "policy.read", "audit.read"]
    assert document["vm"]["id"] == "606602fb-a784-5dc2-a658-664e33ff98a2"
    (reason,) = document["allowed_by"]["policy.read"]
    assert reason["role"] == "reviewer" and reason["scope"]["kind"] == "everything"
    assert reason["via_name"] == "LAB\\HV-Reviewers" and reason["line"] > 0
    assert len(document["policy"]["sha256"]) == 64
    assert "rita may read the policy: member of LAB\\HV-Reviewers → role reviewer on everything" \
        in document["explanation"]


def test_explain_of_an_undocumented_vm_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "explain", DEMO, *HENRY, "--host", "HV03", "--vm", "legacy-ftp"]) == 0
    out = capsys.readouterr().out
    assert "not documented in the policy" in out
    assert "henry may turn off legacy-ftp: member of LAB\\Domain Users → role operator on the " \
           "VM named 'legacy-ftp'" in out


def test_a_name_documented_twice_is_refused_with_the_ids(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "p.toml"
    policy.write_text("".join(
        f'[vms."00000000-0000-0000-0000-00000000000{i}"]\nname = "twin"\n'
        'classification = "public"\n' for i in (1, 2)), encoding="utf-8")
    assert main(["policy", "explain", str(policy), "--user", "LAB\\a", "--host", "HV01",
                 "--vm", "twin"]) == 1
    err = capsys.readouterr().err
    assert err == ("hvconsole: several VMs are documented as 'twin' "
                   "(00000000-0000-0000-0000-000000000001, 00000000-0000-0000-0000-000000000002):"
                   " give the VM id.\n")


@pytest.mark.parametrize(("argument", "sentence"), [
    (["--group", "LAB\\Nobody"], "the policy names no principal 'LAB\\Nobody'"),
    (["--group", "X=S-1-bogus"], "--group X is not a SID: 'S-1-bogus'"),
    (["--sid", "henry"], "--sid of LAB\\henry is not a SID: 'henry'"),
    (["--group", "=S-1-5-32-544"], "--group '=S-1-5-32-544' has no name"),
])
def test_bad_input_is_one_sentence_and_a_nonzero_exit(
        argument: list[str], sentence: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["policy", "explain", DEMO, "--user", "LAB\\henry", *argument,
                 "--host", "HV02", "--vm", "office-print"])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith(f"hvconsole: {sentence}") and "Traceback" not in err


def test_explain_of_an_invalid_policy_lists_its_problems(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[[grants]\n", encoding="utf-8")
    assert main(["policy", "explain", str(bad), "--user", "LAB\\a", "--host", "H",
                 "--vm", "x"]) == 2
    assert capsys.readouterr().err.startswith(f"{bad}:1: the file is not valid TOML")


def test_the_installed_script(tmp_path: Path) -> None:
    script = shutil.which("hvconsole", path=str(Path(sys.executable).parent))
    if script is None:
        service_missing("the hvconsole script is not installed in this environment")
    ok = subprocess.run([script, "policy", "check", DEMO], capture_output=True, text=True)
    assert ok.returncode == 0 and "valid" in ok.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text("colour = 'blue'\n", encoding="utf-8")
    failed = subprocess.run([script, "policy", "check", str(bad)], capture_output=True, text=True)
    assert failed.returncode == 2
    assert failed.stderr.startswith(f"{bad}:1: unknown key 'colour'")

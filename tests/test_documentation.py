"""VM documentation kept on the host: file names, texts, a person's edits kept, the lab running
document.ps1, and `hvconsole host document`."""
from __future__ import annotations

import io
import re
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest

from console import documentation as doc
from console.inventory import VM
from console.policy import Policy
from hvconsole.cli import main
from lab.hyperv import HyperVError
from lab.world import load_world

WHEN = datetime(2026, 12, 2, 10, 30)
VM_ID = "00000000-0000-4000-8000-000000000001"
POLICY = Policy.from_text(f'''
[vms."{VM_ID}"]
name = "shop-web01"
owner = "Olivia Owner"
contact = "olivia@lab.example"
classification = "confidential"
application = "shop"
tier = "web"
''')
WEB = VM(host="HV01", id=VM_ID, name="shop-web01", state="Running", generation=2,
         notes="Patched by hand on 2026-11-30")


@pytest.mark.parametrize("name, expected", [
    ("shop-web01", f"shop-web01 {VM_ID}.txt"),
    ('say "hi" <now>: a/b\\c|d?*', f"say _hi_ _now__ a_b_c_d__ {VM_ID}.txt"),
    ("CON", f"_CON {VM_ID}.txt"),
    ("nul.backup", f"_nul.backup {VM_ID}.txt"),
    ("trailing dots. . ", f"trailing dots {VM_ID}.txt"),
    ("...", f"vm {VM_ID}.txt"),
])
def test_file_names_are_safe_on_windows(name: str, expected: str) -> None:
    assert doc.file_name(replace(WEB, name=name)) == expected


def test_the_notes_line_and_a_persons_own_notes() -> None:
    line = doc.notes_line(POLICY.doc(VM_ID))
    assert line == "Owner: Olivia Owner · olivia@lab.example · shop/web · confidential"
    assert doc.notes_line(None) == "Owner: none on record (ask the Hyper-V team)"
    merged = doc.merged_notes("Owner: Someone Else\nPatched by hand", line)
    assert merged == f"{line}\nPatched by hand"  # the old owner line replaced, the rest kept


def test_the_text_holds_the_policy_and_the_configuration_and_is_signed() -> None:
    text = doc.vm_text(WEB, POLICY.doc(VM_ID), WHEN)
    assert re.search(r"\r\n  Owner: +Olivia Owner\r\n", text)
    assert re.search(r"\r\n  Application: +shop/web\r\n", text)
    assert "\r\n" in text and "Running" not in text  # the state changes by itself: left out
    assert not doc.edited_on_host(text)
    assert doc.edited_on_host(text.replace("Olivia Owner", "Olivia O."))  # a person's edit
    assert doc.edited_on_host("notes a person wrote\r\n")  # never signed by the console


def test_changes_tell_new_same_outdated_and_edited_apart() -> None:
    signed = doc.vm_text(WEB, POLICY.doc(VM_ID), datetime(2026, 11, 1))
    other_vm = replace(WEB, id="00000000-0000-4000-8000-000000000002", name="other")
    third = replace(WEB, id="00000000-0000-4000-8000-000000000003", name="third")
    fourth = replace(WEB, id="00000000-0000-4000-8000-000000000004", name="fourth")
    outdated = doc.vm_text(replace(third, generation=1), None, datetime(2026, 11, 1))
    edited = doc.vm_text(fourth, None, datetime(2026, 11, 1)).replace("fourth", "fourth (DB!)", 1)
    existing = {WEB.id: signed, third.id: outdated, fourth.id: edited}
    changes = {c.vm.name: c for c in doc.plan_changes(POLICY, [WEB, other_vm, third, fourth],
                                                      existing, WHEN)}
    assert changes["shop-web01"].kind == "same" and changes["shop-web01"].keep is None
    assert changes["other"].kind == "new" and changes["other"].keep is None
    assert changes["third"].kind == "outdated"
    assert changes["third"].keep == f"third {third.id}.20261202-103000.txt"
    assert changes["fourth"].kind == "edited on the host"
    assert "-fourth (DB!)" in changes["fourth"].diff() and "+fourth" in changes["fourth"].diff()
    assert changes["shop-web01"].notes_changed  # the Notes lack the owner line


def test_batches_keep_each_call_small() -> None:
    files = [{"data": "x" * 3000} for _ in range(5)] + [{"data": "y" * 20000}]
    sizes = [[len(f["data"]) for f in b] for b in doc.batches(files)]
    assert sizes == [[3000, 3000], [3000, 3000], [3000], [20000]]


# --- document.ps1, run by the lab's PowerShell -----------------------------------------------

def test_the_lab_runs_document_write_then_read() -> None:
    host = load_world().host("HV01").host
    vm = host.vms[0]
    folder = "C:\\Documentation\\VMs"
    first = {"vm_id": vm.id, "file": f"{vm.name} {vm.id}.txt", "data": doc.encode("first\r\n"),
             "keep": None, "notes": "Owner: Olivia Owner"}
    host.operation("document", {"mode": "write", "folder": folder, "files": [first]})
    assert vm.notes == "Owner: Olivia Owner"
    read = host.operation("document", {"mode": "read", "folder": folder, "files": [
        {"vm_id": vm.id, "file": first["file"]}, {"vm_id": vm.id, "file": "absent.txt"}]})
    assert [doc.decode(f["data"]) for f in read["files"]] == ["first\r\n", None]
    second = dict(first, data=doc.encode("second"), keep=f"{vm.name} {vm.id}.old.txt", notes=None)
    answer = host.operation("document", {"mode": "write", "folder": folder, "files": [second]})
    assert answer["files"][0]["kept"] == f"{folder}\\{vm.name} {vm.id}.old.txt"
    assert host.contents[f"{folder}\\{vm.name} {vm.id}.old.txt"] == b"first\r\n"
    assert vm.notes == "Owner: Olivia Owner"  # no notes given: left as they are


def test_the_lab_refuses_a_folder_that_is_not_local() -> None:
    host = load_world().host("HV01").host
    with pytest.raises(HyperVError, match="must be a local path"):
        host.operation("document", {"mode": "read", "folder": "\\\\fs01\\docs", "files": []})


# --- hvconsole host document, against the demo world -----------------------------------------

def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], password: str,
            *argv: str) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_documents_a_host_and_shows_what_it_would_change(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run_cli(monkeypatch, capsys, "adam-demo", "host", "document", "HV01",
                             "--dry-run", "--demo", "--user", "adam", "--password-stdin")
    assert code == 0, err
    assert "new: shop-web01" in out and "nothing written (--dry-run)" in out
    code, out, err = run_cli(monkeypatch, capsys, "adam-demo", "host", "document", "HV01",
                             "--yes", "--demo", "--user", "adam", "--password-stdin")
    assert code == 0, err
    assert "4 files written to C:\\Documentation\\VMs on HV01" in out


def test_cli_document_needs_a_host_administrator(monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(monkeypatch, capsys, "rita-demo", "host", "document", "HV01",
                           "--dry-run", "--demo", "--user", "rita", "--password-stdin")
    assert code == 1 and "the host's administrators" in err


def test_the_review_flags_notes_on_the_host_that_disagree_with_the_policy() -> None:
    from console.review import findings

    line = doc.notes_line(POLICY.doc(VM_ID))
    agree = replace(WEB, notes=f"{line}\nPatched by hand")
    disagree = replace(WEB, id="00000000-0000-4000-8000-000000000009", name="old-box",
                       notes="Owner: Somebody Who Left · gone@lab.example")
    never = replace(WEB, id="00000000-0000-4000-8000-000000000008", name="plain", notes="hello")
    found = [f for f in findings(POLICY, {"HV01": [agree, disagree, never]}, {})
             if f.kind == "host-notes-disagree"]
    assert [f.objects[0] for f in found] == [f"old-box ({disagree.id})"]
    assert "Somebody Who Left" in found[0].summary and "none on record" in found[0].summary
    assert found[0].fix.startswith("Run hvconsole host document HV01")


def test_cli_turns_resource_metering_on_and_off(monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(monkeypatch, capsys, "adam-demo", "host", "metering", "HV03", "on",
                             "--demo", "--user", "adam", "--password-stdin")
    assert code == 0, err
    total = int(re.search(r"on for (\d+) of (\d+) VMs on HV03", out)[2])
    assert f"on for {total} of {total} VMs" in out
    code, out, err = run_cli(monkeypatch, capsys, "adam-demo", "host", "metering", "HV03", "off",
                             "--demo", "--user", "adam", "--password-stdin")
    assert code == 0 and f"on for 0 of {total} VMs on HV03" in out


def test_the_lab_runs_metering_and_measure_vm_follows() -> None:
    host = load_world().host("HV02").host
    assert host.operation("metering", {"enable": False})["enabled"] == 0
    answer = host.operation("metering", {"enable": True})
    assert answer == {"vms": len(host.vms), "enabled": len(host.vms)}
    with pytest.raises(HyperVError, match="enable must be true or false"):
        host.operation("metering", {"enable": "yes"})

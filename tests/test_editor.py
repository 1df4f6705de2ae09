"""Editing the policy: validated, diffed, atomic, backed up, audited; a concurrent save is
refused and nothing written by someone else is lost."""
from __future__ import annotations

import shutil
import threading
from datetime import date
from pathlib import Path

import pytest
from filelock import FileLock

from console.audit import AuditTrail
from console.editor import Change, NewGrant, PolicyEditor
from console.errors import Denied, PolicyChanged, PolicyError
from console.identity import Group, Identity
from console.paths import LAB_DATA
from console.policy import Policy

D = "S-1-5-21-1000-2000-3000"
ADAM = Identity(f"{D}-1103", "LAB\\adam", groups=(Group(f"{D}-1204", "LAB\\HV-Admins"),))
RITA = Identity(f"{D}-1104", "LAB\\rita", groups=(Group(f"{D}-1205", "LAB\\HV-Reviewers"),))
TODAY = date(2026, 11, 26)
FTP = "aa1b7eff-d986-5c91-8fe6-f37064778c8c"


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.toml"
    shutil.copy(LAB_DATA / "policy.toml", path)
    return path


def editor(path: Path, who: Identity = ADAM) -> PolicyEditor:
    return PolicyEditor(path, who, AuditTrail(path.parent / "audit.jsonl"), today=TODAY)


def test_add_grant_keeps_comments_and_is_audited(policy_file: Path) -> None:
    before = policy_file.read_text(encoding="utf-8")
    ed = editor(policy_file)
    change = ed.add_grant(NewGrant("LAB\\HV-Helpdesk", f"{D}-1202", "viewer", "host", "HV01",
                                   note='quote " and \\ kept', expires=date(2027, 1, 31)))
    assert "+principal = \"LAB\\\\HV-Helpdesk\"" in change.diff()
    backup = ed.save(change)
    after = policy_file.read_text(encoding="utf-8")
    assert after.startswith(before.rstrip("\n"))  # every comment and line before is untouched
    assert backup.read_text(encoding="utf-8") == before
    grant = Policy.load(policy_file).grants[-1]
    assert (grant.principal.name, grant.role, grant.note, grant.expires) == (
        "LAB\\HV-Helpdesk", "viewer", 'quote " and \\ kept', date(2027, 1, 31))
    records = AuditTrail(policy_file.parent / "audit.jsonl").records()
    assert [(r.action, r.decision, r.outcome) for r in records] == [
        ("policy.modify", "allowed", ""), ("policy.modify", "", "ok")]
    assert records[0].params["new_sha256"] == Policy.load(policy_file).digest


def test_remove_grant_removes_exactly_its_block(policy_file: Path) -> None:
    ed = editor(policy_file)
    expired = next(g for g in ed.policy.grants if g.expires == date(2026, 10, 31))
    ed.save(ed.remove_grant(expired))
    policy = Policy.load(policy_file)
    assert len(policy.grants) == len(ed.policy.grants) == 10
    assert all(g.expires != date(2026, 10, 31) for g in policy.grants)
    text = policy_file.read_text(encoding="utf-8")
    assert "# --- grants ---" in text and "Migration of shop-web02" not in text


def test_change_vm_documentation_in_place(policy_file: Path) -> None:
    ed = editor(policy_file)
    db = ed.policy.docs_named("shop-db01")[0]
    change = ed.set_vm_doc(db.vm_id, {"name": "shop-db01", "owner": "Olivia Owner",
                                      "contact": "dba@lab.example", "classification": "restricted",
                                      "application": "shop", "tier": "db"})
    assert "-contact = \"olivia@lab.example\"" in change.diff()
    assert "+contact = \"dba@lab.example\"" in change.diff()
    ed.save(change)
    saved = Policy.load(policy_file).doc(db.vm_id)
    assert saved is not None and saved.contact == "dba@lab.example"
    assert saved.classification == "restricted"


def test_document_an_undocumented_vm(policy_file: Path) -> None:
    ed = editor(policy_file)
    ed.save(ed.set_vm_doc(FTP, {"name": "legacy-ftp", "owner": "IT", "contact": "it@lab.example",
                                "classification": "internal", "tags": ["legacy"]}))
    doc = Policy.load(policy_file).doc(FTP)
    assert doc is not None and doc.tags == ("legacy",)


def test_invalid_change_is_refused_before_anything_is_written(policy_file: Path) -> None:
    before = policy_file.read_bytes()
    ed = editor(policy_file)
    with pytest.raises(PolicyError, match="unknown role 'ownr'"):
        ed.add_grant(NewGrant("LAB\\HV-Build", f"{D}-1206", "ownr", "host", "HV03"))
    with pytest.raises(PolicyError, match="not in the hosts table"):
        ed.add_grant(NewGrant("LAB\\HV-Build", f"{D}-1206", "owner", "host", "HV09"))
    assert policy_file.read_bytes() == before


def test_without_policy_modify_saving_is_denied_and_audited(policy_file: Path) -> None:
    before = policy_file.read_bytes()
    ed = editor(policy_file, RITA)
    assert not ed.may_modify
    with pytest.raises(Denied, match="policy.modify"):
        ed.save(ed.remove_vm_doc(ed.policy.docs_named("office-print")[0].vm_id))
    assert policy_file.read_bytes() == before
    records = AuditTrail(policy_file.parent / "audit.jsonl").records()
    assert [(r.user_name, r.decision) for r in records] == [("LAB\\rita", "denied")]


def test_concurrent_save_second_editor_is_refused_and_nothing_is_lost(policy_file: Path) -> None:
    first, second = editor(policy_file), editor(policy_file)
    a = first.add_grant(NewGrant("LAB\\HV-Helpdesk", f"{D}-1202", "viewer", "host", "HV01"))
    b = second.add_grant(NewGrant("LAB\\HV-Build", f"{D}-1206", "viewer", "host", "HV01"))
    first.save(a)
    written = policy_file.read_bytes()
    with pytest.raises(PolicyChanged, match="changed by someone else"):
        second.save(b)
    assert policy_file.read_bytes() == written  # the first save survives
    second.reload()  # the offered way out: reload, make the change again, save
    second.save(second.add_grant(NewGrant("LAB\\HV-Build", f"{D}-1206", "viewer", "host", "HV01")))
    names = [g.principal.name for g in Policy.load(policy_file).grants[-2:]]
    assert names == ["LAB\\HV-Helpdesk", "LAB\\HV-Build"]
    # a change prepared before a reload is refused too: it was made against the old text
    stale = first.add_grant(NewGrant("LAB\\HV-Admins", f"{D}-1204", "viewer", "host", "HV02"))
    first.reload()
    with pytest.raises(PolicyChanged):
        first.save(stale)


def test_no_temporary_file_is_left_behind(policy_file: Path) -> None:
    ed = editor(policy_file)
    ed.save(ed.remove_vm_doc(ed.policy.docs_named("office-print")[0].vm_id))
    leftovers = [p.name for p in policy_file.parent.iterdir()
                 if p.name.startswith(".policy.toml.") and not p.name.endswith(".lock")]
    assert leftovers == []


def test_simultaneous_saves_are_serialised_one_wins(policy_file: Path) -> None:
    # Both loaded the same version and save at the same moment: the lock lets one check-and-write
    # finish before the other checks, so the second finds the file changed and writes nothing.
    editors = [editor(policy_file) for _ in range(4)]
    changes = [ed.add_grant(NewGrant("LAB\\HV-Build", f"{D}-1206", "viewer", "host", f"HV0{n}"))
               for n, ed in enumerate(editors[:3], start=1)]
    changes.append(editors[3].remove_grant(editors[3].policy.grants[0]))
    start = threading.Barrier(len(editors))
    outcomes: list[str] = []

    def save(ed: PolicyEditor, change: Change) -> None:
        start.wait()
        try:
            ed.save(change)
            outcomes.append(change.new_text)
        except PolicyChanged:
            outcomes.append("refused")

    threads = [threading.Thread(target=save, args=pair) for pair in zip(editors, changes, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    winners = [o for o in outcomes if o != "refused"]
    assert len(outcomes) == 4 and len(winners) == 1
    assert policy_file.read_text(encoding="utf-8") == winners[0]


def test_a_save_held_off_too_long_is_refused(policy_file: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    before = policy_file.read_bytes()
    ed = editor(policy_file)
    change = ed.remove_vm_doc(ed.policy.docs_named("office-print")[0].vm_id)
    monkeypatch.setattr("console.editor._LOCK_WAIT_SECONDS", 0.2)
    held, done = threading.Event(), threading.Event()

    def hold() -> None:  # another console, in the middle of its save
        with FileLock(policy_file.with_name(".policy.toml.lock")):
            held.set()
            done.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(30)
        with pytest.raises(PolicyError, match="could not be locked for saving .*nothing was written"):
            ed.save(change)
    finally:
        done.set()
        holder.join()
    assert policy_file.read_bytes() == before
    ed.save(change)  # released: the same change saves
    assert Policy.load(policy_file).docs_named("office-print") == []

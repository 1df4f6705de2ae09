"""Editing the policy: validated, diffed, atomic, backed up, audited; a concurrent save is
refused and nothing written by someone else is lost."""
from __future__ import annotations

import shutil
import threading
import tomllib
from datetime import date
from pathlib import Path

import pytest
from filelock import FileLock
from hypothesis import given, settings
from hypothesis import strategies as st

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


# --- layout: tomlkit keeps what people wrote ----------------------------------------------------

LAYOUT = """\
# Delegation policy of the test lab.

[hosts.HV01]
classification = "internal"  # no restricted VMs here

# --- grants ---


# The administrators, everywhere.
[[grants]]
sid = "S-1-5-21-1000-2000-3000-1204"  # LAB\\HV-Admins
principal = 'LAB\\HV-Admins'
role = "admin"
everything = true

[[grants]]
role = "viewer"
principal = 'LAB\\HV-Helpdesk'
# reviewed in May
sid = "S-1-5-21-1000-2000-3000-1202"
host = "HV01"    # only the first host
note = 'C:\\temp is "theirs"'

# Build agents below; keep them together.
[[grants]]
principal = 'LAB\\HV-Build'
sid = "S-1-5-21-1000-2000-3000-1206"
role = "operator"
host = "HV01"

# --- end of grants ---
"""
HELPDESK = LAYOUT[LAYOUT.index("[[grants]]\nrole"):LAYOUT.index("\n# Build agents")]
BUILD = LAYOUT[LAYOUT.index("[[grants]]\nprincipal = 'LAB\\HV-Build'"):LAYOUT.index("\n# --- end")]


@pytest.fixture
def layout_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(LAYOUT, encoding="utf-8")
    return path


def saved(path: Path, ed: PolicyEditor, change: Change) -> str:
    ed.save(change)
    text = path.read_text(encoding="utf-8")
    assert text == change.new_text
    return text


def test_adding_a_grant_keeps_every_comment_blank_line_and_key_order(layout_file: Path) -> None:
    ed = editor(layout_file)
    change = ed.add_grant(NewGrant("LAB\\HV-Ops", f"{D}-1300", "viewer", "host", "HV01", note="x"))
    new = ('[[grants]]\nprincipal = "LAB\\\\HV-Ops"\nsid = "S-1-5-21-1000-2000-3000-1300"\n'
           'role = "viewer"\nhost = "HV01"\nnote = "x"\n')
    # after the last grant, before the comment that closes the grants
    assert saved(layout_file, ed, change) == LAYOUT.replace(BUILD, BUILD + "\n" + new)


def test_editing_a_grant_changes_only_what_changed(layout_file: Path) -> None:
    ed = editor(layout_file)
    helpdesk = ed.policy.grants[1]
    change = ed.replace_grant(helpdesk, NewGrant(
        "LAB\\HV-Helpdesk", f"{D}-1202", "operator", "host", "HV01", note='C:\\temp is "theirs"',
        expires=date(2027, 1, 31)))
    # the role in its place; the new key after the last; the untouched note keeps its quoting,
    # the host its comment, and the comment between the keys stays
    assert saved(layout_file, ed, change) == LAYOUT.replace(HELPDESK, HELPDESK.replace(
        'role = "viewer"', 'role = "operator"') + "expires = 2027-01-31\n")
    changed = [line for line in change.diff().splitlines()[2:] if line[:1] in "+-"]
    assert changed == ['-role = "viewer"', '+role = "operator"', "+expires = 2027-01-31"]


def test_removing_a_grant_takes_only_its_own_lines(layout_file: Path) -> None:
    ed = editor(layout_file)
    change = ed.remove_grant(ed.policy.grants[1])
    # one blank line between the grants before and after; the comment about the build agents,
    # filed by tomlkit under the removed grant, stays above them
    assert saved(layout_file, ed, change) == LAYOUT.replace(HELPDESK + "\n", "")
    ed.save(ed.remove_grant(ed.policy.grants[-1]))
    assert layout_file.read_text(encoding="utf-8") == LAYOUT.replace(HELPDESK + "\n", "").replace(
        BUILD, "")  # the last grant: "# --- end of grants ---" stays


UNUSUAL = ['quote " and \\ backslash', "'single' \"double\" '''triple''' \"\"\"triple\"\"\"",
           "C:\\Users\\n\\t not escapes", "ünïcödé — 日本語 🙂", "line one\nline two\ttab",
           "# not a comment", "[[grants]] not a table", "\\u00e9 stays six characters"]


@pytest.mark.parametrize("text", UNUSUAL)
def test_an_edit_with_unusual_strings_round_trips(layout_file: Path, text: str) -> None:
    ed = editor(layout_file)
    build = ed.policy.grants[2]
    ed.save(ed.replace_grant(build, NewGrant(f"LAB\\{text[:3]}\\x", f"{D}-1206", "operator",
                                             "host", "HV01", note=text)))
    grant = Policy.load(layout_file).grants[2]
    assert grant.note == text.strip() and grant.principal.name == f"LAB\\{text[:3]}\\x"
    assert tomllib.loads(layout_file.read_text(encoding="utf-8"))["grants"][2]["note"] == text


@settings(max_examples=60, deadline=None)
@given(st.text(st.characters(exclude_categories=("Cs",)), min_size=1))
def test_any_note_round_trips(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    path = tmp_path_factory.getbasetemp() / "any-note" / "policy.toml"
    if not path.exists():
        path.parent.mkdir()
        path.write_text(LAYOUT, encoding="utf-8")
    ed = editor(path)
    change = ed.replace_grant(ed.policy.grants[1], NewGrant(
        "LAB\\HV-Helpdesk", f"{D}-1202", "viewer", "host", "HV01", note=text))
    assert tomllib.loads(change.new_text)["grants"][1]["note"] == text
    assert change.policy.grants[1].note == text.strip()

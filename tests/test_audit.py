from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock

from console.audit import EVENT_HEADER, GENESIS, AuditRecord, AuditTrail
from console.errors import AuditError
from console.export import csv_rows
from console.identity import Identity
from console.inventory import Action
from console.session import sign_in
from hvconsole.cli import main
from lab.directory import LabDirectory
from tests.support import service_missing

OLIVIA = Identity(sid="S-1-5-21-1000-2000-3000-1101", name="LAB\\olivia")
HENRY = Identity(sid="S-1-5-21-1000-2000-3000-1102", name="LAB\\henry")
WEB01 = ("HV01", "42e4aaca-7231-5411-b96b-d03849b0dae1", "shop-web01")
OFFICE = ("HV02", "58a006d8-4cd7-53ac-aa46-a10dc2e2cb10", "office-print")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


@pytest.fixture
def trail(tmp_path: Path) -> AuditTrail:
    return AuditTrail(tmp_path / "audit" / "audit.jsonl", workstation="WS-OLIVIA")


def fill(trail: AuditTrail, actions: int = 3) -> None:
    """`actions` allowed actions (decision + outcome each) and one denied attempt: 2n+1 lines."""
    for n in range(actions):
        cid = trail.decided(OLIVIA, "vm.start", *WEB01, {"attempt": n}, True, "owner on shop")
        trail.outcome(cid, OLIVIA, "vm.start", *WEB01, "ok")
    trail.decided(HENRY, "vm.turnoff", *OFFICE, {}, False, "helpdesk has no vm.turnoff")


# --- writing ---------------------------------------------------------------------------------

def test_decision_then_outcome_share_a_correlation_id_and_chain(trail: AuditTrail) -> None:
    cid = trail.decided(OLIVIA, "vm.checkpoint.create", *WEB01, {"name": "before patch"},
                        True, "member of LAB\\HV-Shop-Owners: owner on application shop")
    trail.outcome(cid, OLIVIA, "vm.checkpoint.create", *WEB01, "failed", "the volume is full")
    denied = trail.decided(HENRY, "vm.turnoff", *OFFICE, {}, False, "helpdesk has no vm.turnoff")

    decision, outcome, refusal = trail.records()
    assert decision.correlation_id == outcome.correlation_id == cid != denied
    assert (decision.decision, decision.outcome) == ("allowed", "")
    assert decision.params == {"name": "before patch"}
    assert (outcome.decision, outcome.outcome) == ("", "failed")
    assert outcome.error == "the volume is full"
    assert (refusal.decision, refusal.outcome) == ("denied", "")
    assert refusal.reason == "helpdesk has no vm.turnoff"
    assert (decision.user_sid, decision.user_name, decision.workstation) == (
        OLIVIA.sid, "LAB\\olivia", "WS-OLIVIA")
    assert (decision.host, decision.vm_id, decision.vm_name) == WEB01
    assert decision.time.endswith("Z") and decision.time[:4].isdigit()
    assert [r.seq for r in trail.records()] == [1, 2, 3]
    raw = lines_of(trail.path)
    assert decision.prev == GENESIS
    assert outcome.prev == sha(raw[0]) and refusal.prev == sha(raw[1])
    assert trail.verify().ok


def test_records_filter_by_user_and_keep_untrusted_text_on_one_line(trail: AuditTrail) -> None:
    fill(trail)
    nasty = "web\n{\"seq\": 99}\u2028\x1b[2J"
    trail.decided(OLIVIA, "vm.start", "HV01", WEB01[1], nasty, {"note": nasty}, True, "owner")
    assert len(lines_of(trail.path)) == 8  # one line per record whatever the names hold
    assert trail.path.read_bytes().isascii()
    assert [r.action for r in trail.records(HENRY.sid)] == ["vm.turnoff"]
    assert len(trail.records(OLIVIA.sid)) == 7
    assert trail.records()[-1].vm_name == nasty and trail.records()[-1].params == {"note": nasty}
    assert trail.verify().ok


def test_outcome_must_be_a_known_word(trail: AuditTrail) -> None:
    with pytest.raises(ValueError, match="ok, failed, pending"):
        trail.outcome("x", OLIVIA, "vm.start", *WEB01, "done")
    assert not trail.path.exists()


def test_missing_trail_has_no_records(trail: AuditTrail) -> None:
    assert trail.records() == []


# --- a location that cannot be written -------------------------------------------------------

def _make_read_only(path: Path) -> None:
    if os.name != "nt" and os.geteuid() == 0:
        # root ignores permission bits; the immutable attribute stops root too.
        if not shutil.which("chattr") or subprocess.run(["chattr", "+i", str(path)]).returncode:
            service_missing("a read-only location as root needs chattr +i (e2fsprogs, ext4/xfs)")
    else:
        path.chmod(0o555 if path.is_dir() else 0o444)


def _make_writable(path: Path) -> None:
    if os.name != "nt" and os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(path)], check=True)
    else:
        path.chmod(0o755 if path.is_dir() else 0o644)


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[list[Path]]:
    """Paths made read-only by the test; made writable again afterwards so tmp_path can go."""
    made: list[Path] = []
    yield made
    for path in made:
        _make_writable(path)


def test_read_only_folder_refuses_with_audit_error(tmp_path: Path, read_only: list[Path]) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    _make_read_only(folder)
    read_only.append(folder)
    trail = AuditTrail(folder / "audit.jsonl")
    with pytest.raises(AuditError, match=r"cannot be written .*no action is carried out"):
        trail.decided(OLIVIA, "vm.start", *WEB01, {}, True, "owner")
    assert not trail.path.exists()


def test_read_only_trail_refuses_and_stays_unchanged(trail: AuditTrail,
                                                     read_only: list[Path]) -> None:
    fill(trail, 1)
    before = trail.path.read_bytes()
    _make_read_only(trail.path)
    read_only.append(trail.path)
    with pytest.raises(AuditError, match=str(trail.path)):
        trail.outcome("cid", OLIVIA, "vm.start", *WEB01, "ok")
    assert trail.path.read_bytes() == before


def test_a_damaged_last_record_stops_writing(trail: AuditTrail) -> None:
    fill(trail, 1)
    trail.path.write_bytes(trail.path.read_bytes() + b"not a record\n")
    with pytest.raises(AuditError, match="ends with a damaged record"):
        trail.decided(OLIVIA, "vm.start", *WEB01, {}, True, "owner")


# --- tampering -------------------------------------------------------------------------------

def _edit_field(lines: list[bytes]) -> list[bytes]:
    lines[2] = lines[2].replace(b'"attempt":1', b'"attempt":7')
    return lines


def _delete(lines: list[bytes]) -> list[bytes]:
    del lines[2]
    return lines


def _delete_first(lines: list[bytes]) -> list[bytes]:
    del lines[0]
    return lines


def _insert_forged(lines: list[bytes]) -> list[bytes]:
    # A careful forger: the right previous hash and the next number.
    record = json.loads(lines[2])
    record.update(seq=4, action="vm.turnoff", prev=sha(lines[2]))
    lines.insert(3, json.dumps(record, separators=(",", ":")).encode() + b"\n")
    return lines


def _replay(lines: list[bytes]) -> list[bytes]:
    lines.insert(2, lines[1])
    return lines


def _swap(lines: list[bytes]) -> list[bytes]:
    lines[2], lines[3] = lines[3], lines[2]
    return lines


def _renumber(lines: list[bytes]) -> list[bytes]:
    lines[2] = lines[2].replace(b'"seq":3,', b'"seq":5,')
    return lines


def _garbage(lines: list[bytes]) -> list[bytes]:
    lines[2] = b"{\"seq\": 3}\n"
    return lines


def _truncate_last(lines: list[bytes]) -> list[bytes]:
    lines[-1] = lines[-1][:40]
    return lines


@pytest.mark.parametrize(("tamper", "line", "words"), [
    (_edit_field, 3, "line 3 was changed after it was written"),
    (_delete, 3, "record 3 is missing before line 3"),
    (_delete_first, 1, "record 1 is missing before line 1"),
    (_insert_forged, 4, "line 4 was inserted"),
    (_replay, 2, "was inserted"),
    (_swap, 3, "line 3 is out of order"),
    (_renumber, 3, "its number is wrong"),
    (_garbage, 3, "line 3 is not an audit record"),
    (_truncate_last, 7, "line 7 is incomplete"),
])
def test_verify_names_the_first_tampered_line(trail: AuditTrail, tamper, line: int,
                                              words: str) -> None:
    fill(trail)
    assert trail.verify().ok and trail.verify().count == 7
    trail.path.write_bytes(b"".join(tamper(lines_of(trail.path))))
    result = trail.verify()
    assert not result.ok
    assert result.line == line
    assert words in (result.problem or "")


def test_head_is_the_hash_of_the_last_line(trail: AuditTrail) -> None:
    # Removing whole records from the end leaves a valid, shorter chain: only a head kept
    # elsewhere tells.
    fill(trail)
    head = trail.verify().head
    assert head == sha(lines_of(trail.path)[-1])
    trail.path.write_bytes(b"".join(lines_of(trail.path)[:-1]))
    assert trail.verify().ok and trail.verify().head != head


# --- crashes ---------------------------------------------------------------------------------

def test_torn_last_line_is_repaired_by_appending(trail: AuditTrail) -> None:
    fill(trail)
    whole = trail.path.read_bytes()
    torn = lines_of(trail.path)[-1][:-30]
    trail.path.write_bytes(whole[:len(whole) - 30])  # the crash cut the last record
    assert trail.verify().line == 7

    before = trail.path.read_bytes()
    cid = trail.decided(OLIVIA, "vm.start", *WEB01, {}, True, "owner on shop")

    after = trail.path.read_bytes()
    assert after.startswith(before)  # earlier bytes untouched
    result = trail.verify()
    assert (result.ok, result.repaired, result.count, result.problem) == (True, (7,), 8, None)
    lines = lines_of(trail.path)
    assert lines[6] == torn + b"\n"
    repair = AuditRecord.from_json(json.loads(lines[7]))
    assert repair.action == "repair" and repair.seq == 7
    assert repair.params == {"repair": "torn", "torn_sha256": sha(torn), "torn_bytes": len(torn),
                             "after": sha(lines[5])}
    # It says what it did: the torn bytes are no record, left out of the chain.
    assert f"the {len(torn)} bytes after record 6 are no record" in repair.reason
    assert repair.prev == sha(lines[6])
    assert trail.records()[-1].correlation_id == cid and trail.records()[-1].seq == 8


def test_a_record_missing_only_its_newline_is_kept_and_completed(trail: AuditTrail) -> None:
    # Stripping the last record's newline used to make the next write "repair" it away: the
    # record vanished from `audit show`. A whole record is a record, newline or not.
    fill(trail, 1)
    denied = trail.records()[-1]
    trail.path.write_bytes(trail.path.read_bytes()[:-1])
    assert trail.records()[-1] == denied  # shown before anything else is written
    result = trail.verify()
    assert (result.ok, result.count, result.unterminated) == (True, 3, 3)
    assert result.head == sha(lines_of(trail.path)[-1] + b"\n")

    cid = trail.decided(OLIVIA, "vm.start", *WEB01, {}, True, "owner on shop")
    lines = lines_of(trail.path)
    repair = AuditRecord.from_json(json.loads(lines[3]))
    assert (repair.action, repair.seq, repair.prev) == ("repair", 4, sha(lines[2]))
    assert repair.params == {"repair": "completed", "completed_seq": 3,
                             "completed_sha256": sha(lines[2])}
    assert "Record 3 was whole but lacked its newline" in repair.reason
    assert [(r.seq, r.action) for r in trail.records()] == [
        (1, "vm.start"), (2, "vm.start"), (3, "vm.turnoff"), (4, "repair"), (5, "vm.start")]
    assert trail.records()[2] == denied and trail.records()[-1].correlation_id == cid
    result = trail.verify()
    assert (result.ok, result.count, result.completed, result.repaired) == (True, 5, (3,), ())


def test_a_repair_naming_another_line_as_completed_is_found(trail: AuditTrail) -> None:
    fill(trail, 1)
    trail.path.write_bytes(trail.path.read_bytes()[:-1])
    trail.decided(OLIVIA, "vm.start", *WEB01, {}, True, "owner on shop")
    lines = lines_of(trail.path)
    record = json.loads(lines[3])
    record["params"]["completed_seq"] = 2
    lines[3] = json.dumps(record, separators=(",", ":")).encode() + b"\n"
    trail.path.write_bytes(b"".join(lines))
    result = trail.verify()  # line 4 is named first, before the chain broken after it
    assert (result.ok, result.line) == (False, 4) and "repair record" in (result.problem or "")


def test_torn_line_and_a_second_crash(trail: AuditTrail) -> None:
    fill(trail, 1)
    trail.path.write_bytes(trail.path.read_bytes()[:-3])  # cut inside the record: no JSON
    assert "line 3 is incomplete" in (trail.verify().problem or "")
    trail.outcome("c1", OLIVIA, "vm.start", *WEB01, "pending")
    trail.path.write_bytes(trail.path.read_bytes()[:-5])
    trail.outcome("c2", OLIVIA, "vm.start", *WEB01, "ok")
    result = trail.verify()
    assert result.ok and result.repaired == (3, 5)
    # A torn record is not a record and takes no number: the repair takes the one it would have.
    assert [(r.seq, r.action) for r in trail.records()][2:] == [
        (3, "repair"), (4, "repair"), (5, "vm.start")]
    assert trail.records()[-1].correlation_id == "c2"


def test_a_forged_repair_does_not_hide_an_edit(trail: AuditTrail) -> None:
    fill(trail)
    whole = trail.path.read_bytes()
    trail.path.write_bytes(whole[:-30])
    trail.decided(OLIVIA, "vm.start", *WEB01, {}, True, "owner")
    lines = lines_of(trail.path)
    lines[5] = lines[5].replace(b"ok", b"no")  # the line the repair says it follows
    trail.path.write_bytes(b"".join(lines))
    result = trail.verify()
    assert not result.ok and result.line == 6


# --- two writers at once ---------------------------------------------------------------------

WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from console.audit import AuditTrail
    from console.identity import Identity

    path, name, sid = sys.argv[1:]
    trail = AuditTrail(Path(path), workstation=name)
    me = Identity(sid=sid, name=name)
    sys.stdin.readline()  # start together
    for n in range(200):
        trail.decided(me, "vm.start", "HV01", "42e4aaca-7231-5411-b96b-d03849b0dae1",
                      "shop-web01", {"n": n}, True, "owner")
""")


def test_two_processes_appending_at_once_keep_every_record(trail: AuditTrail) -> None:
    root = Path(__file__).resolve().parents[1]
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(trail.path), name, sid],
                                stdin=subprocess.PIPE, cwd=root, text=True)
               for name, sid in (("WS-A", "S-1-5-21-1-1"), ("WS-B", "S-1-5-21-1-2"))]
    for writer in writers:
        writer.stdin.write("go\n")
        writer.stdin.close()
    assert [writer.wait(timeout=120) for writer in writers] == [0, 0]

    result = trail.verify()
    assert (result.ok, result.count) == (True, 400)
    records = trail.records()
    assert [r.seq for r in records] == list(range(1, 401))
    for name in ("WS-A", "WS-B"):
        assert [r.params["n"] for r in records if r.workstation == name] == list(range(200))
    switches = sum(a.workstation != b.workstation for a, b in pairwise(records))
    assert switches > 1, "the writers did not overlap, so the lock was not exercised"


def test_threads_appending_at_once_keep_a_valid_chain(trail: AuditTrail) -> None:
    # The window's background tasks write from worker threads of one process.
    start = threading.Barrier(4)

    def write(name: str) -> None:
        me = AuditTrail(trail.path, workstation=name)
        start.wait()
        for n in range(50):
            me.decided(OLIVIA, "vm.start", *WEB01, {"n": n}, True, "owner")

    threads = [threading.Thread(target=write, args=(f"WS-{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert (trail.verify().ok, trail.verify().count) == (True, 200)
    records = trail.records()
    for i in range(4):
        assert [r.params["n"] for r in records if r.workstation == f"WS-{i}"] == list(range(50))


def test_a_writer_held_off_too_long_refuses_with_audit_error(
        trail: AuditTrail, monkeypatch: pytest.MonkeyPatch) -> None:
    fill(trail, 1)
    before = trail.path.read_bytes()
    monkeypatch.setattr("console.audit.LOCK_WAIT_SECONDS", 0.2)
    held, done = threading.Event(), threading.Event()

    def hold() -> None:  # another console, in the middle of an append
        with FileLock(trail.path.with_name(".audit.jsonl.lock")):
            held.set()
            done.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(30)
        with pytest.raises(AuditError, match="cannot be written .*could not be acquired"):
            trail.decided(OLIVIA, "vm.start", *WEB01, {}, True, "owner")
    finally:
        done.set()
        holder.join()
    assert trail.path.read_bytes() == before
    trail.decided(OLIVIA, "vm.start", *WEB01, {}, True, "owner")  # released: writing goes on
    assert trail.verify().ok


# --- the command line ------------------------------------------------------------------------

def test_cli_verify_intact_and_tampered(trail: AuditTrail, capsys) -> None:
    fill(trail)
    assert main(["audit", "verify", str(trail.path)]) == 0
    out = capsys.readouterr().out
    assert "7 records, chain intact" in out and sha(lines_of(trail.path)[-1]) in out

    trail.path.write_bytes(b"".join(_swap(lines_of(trail.path))))
    assert main(["audit", "verify", str(trail.path)]) == 2
    out = capsys.readouterr().out
    assert "line 3 is out of order" in out and "2 records intact before line 3" in out


def test_cli_verify_reports_repaired_lines(trail: AuditTrail, capsys) -> None:
    fill(trail, 1)
    trail.path.write_bytes(trail.path.read_bytes()[:-10])
    assert main(["audit", "verify", str(trail.path)]) == 2
    assert "line 3 is incomplete" in capsys.readouterr().out
    trail.outcome("c", OLIVIA, "vm.start", *WEB01, "ok")
    assert main(["audit", "verify", str(trail.path)]) == 0
    assert "line 3: torn by an interrupted write, repaired" in capsys.readouterr().out
    trail.path.write_bytes(trail.path.read_bytes()[:-1])
    assert main(["audit", "verify", str(trail.path)]) == 0
    assert "line 5: a whole record without its newline" in capsys.readouterr().out
    trail.outcome("d", OLIVIA, "vm.start", *WEB01, "ok")
    assert main(["audit", "verify", str(trail.path)]) == 0
    assert "line 5: a whole record that lacked its newline, completed and kept" in \
        capsys.readouterr().out


def test_cli_verify_defaults_to_the_configured_trail(trail: AuditTrail, tmp_path: Path,
                                                     monkeypatch, capsys) -> None:
    fill(trail, 1)
    config = tmp_path / "config"
    (config / "hvconsole").mkdir(parents=True)
    (config / "hvconsole" / "config.toml").write_text(
        f"[audit]\npath = {json.dumps(str(trail.path))}\n", encoding="utf-8")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    monkeypatch.setattr("console.config.machine_config_path", lambda: tmp_path / "no-machine.toml")
    assert main(["audit", "verify"]) == 0
    assert f"{trail.path}: 3 records, chain intact" in capsys.readouterr().out


def test_cli_missing_trail_is_one_sentence(tmp_path: Path, capsys) -> None:
    assert main(["audit", "verify", str(tmp_path / "none.jsonl")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("hvconsole: There is no audit trail at") and "Traceback" not in err


def test_cli_show_newest_first_filtered_and_plain(trail: AuditTrail, capsys,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    def show(*argv: str) -> int:
        # rita holds audit.read (the reviewer role); tests/test_session.py shows a refusal.
        monkeypatch.setattr("sys.stdin", io.StringIO("rita-demo\n"))
        return main(["audit", "show", *argv, "--demo", "--user", "rita", "--password-stdin"])

    fill(trail, 2)
    trail.decided(OLIVIA, "vm.media", *WEB01[:2], "evil\n2099-01-01 fake row\x1b[31m",
                  {"path": "D:\\ISO\\x.iso"}, True, "owner")
    assert show(str(trail.path)) == 0
    rows = capsys.readouterr().out.splitlines()
    assert len(rows) == 6
    assert "vm.media" in rows[0] and "evil\\n2099-01-01 fake row\\x1b[31m" in rows[0]
    assert "\x1b" not in "".join(rows)
    assert "LAB\\henry on WS-OLIVIA  vm.turnoff" in rows[1] and "denied: helpdesk" in rows[1]

    assert show(str(trail.path), "--by", "henry") == 0
    assert len(capsys.readouterr().out.splitlines()) == 1
    assert show(str(trail.path), "--by", OLIVIA.sid, "--last", "2") == 0
    rows = capsys.readouterr().out.splitlines()
    assert len(rows) == 2 and "vm.media" in rows[0] and " ok" in rows[1]

    assert show(str(trail.path), "--json", "--last", "3") == 0
    data = json.loads(capsys.readouterr().out)
    assert [d["seq"] for d in data] == [6, 5, 4]
    assert data[0]["vm_name"] == "evil\n2099-01-01 fake row\x1b[31m"


# --- the trail held to the hosts' events (audit verify --hosts, audit hosts) -------------------

def act(world: Any, who: str, vm_name: str, action: Action, **params: Any) -> None:
    with sign_in(world, who, f"{who}-demo") as session:
        vm = next(v for v in session.pool.inventory_all().vms if v.name == vm_name)
        session.actions.perform(session.identity, vm, action, **params)


@pytest.fixture(scope="module")
def demo_lab() -> Iterator[tuple[Any, bytes]]:
    """One demo world for these tests (starting one takes seconds): olivia saved and started
    shop-web01 (HV01), henry reset office-print (HV02), olivia took a checkpoint of shop-app01
    (HV01), all through the JEA endpoint: four actions, eight lines of the trail, which each
    test gets back as they were written."""
    from lab.demo import demo_setup

    with demo_setup() as world:
        act(world, "olivia", "shop-web01", Action.SAVE)
        act(world, "olivia", "shop-web01", Action.START)
        act(world, "henry", "office-print", Action.RESET)
        act(world, "olivia", "shop-app01", Action.CHECKPOINT_CREATE, name="before patch")
        yield world, world.audit.path.read_bytes()


@pytest.fixture
def acted(demo_lab: tuple[Any, bytes], monkeypatch: pytest.MonkeyPatch) -> Any:
    """That world, which `--demo` signs in to (the CLI's own demo would start new hosts with
    empty event logs), and its trail as written."""
    from lab import demo as lab_demo

    world, written = demo_lab

    @contextlib.contextmanager
    def same(today: Any = None) -> Iterator[Any]:
        yield world
    monkeypatch.setattr(lab_demo, "demo_setup", same)
    world.audit.path.write_bytes(written)
    for stray in world.audit.path.parent.glob("fake*.jsonl"):
        stray.unlink()
    return world


def cli(monkeypatch: pytest.MonkeyPatch, who: str, *argv: str) -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{who}-demo\n"))
    return main(["audit", *argv, "--demo", "--user", who, "--password-stdin"])


def rechain(lines: list[bytes], start: int) -> list[bytes]:
    """Lines from `start` (0-based) on with their numbers and hashes recomputed, as someone who
    edits the trail and wants its chain to hold would write them."""
    out = lines[:start]
    for raw in lines[start:]:
        record = json.loads(raw)
        record["seq"] = len(out) + 1
        record["prev"] = sha(out[-1]) if out else GENESIS
        out.append(json.dumps(record, ensure_ascii=True, separators=(",", ":")).encode() + b"\n")
    return out


def test_the_untouched_trail_agrees_with_the_hosts(acted: Any, monkeypatch, capsys) -> None:
    assert cli(monkeypatch, "rita", "verify", "--hosts") == 0
    out = capsys.readouterr().out
    assert "8 records, chain intact" in out
    assert "hosts HV01, HV02, HV03: 4 of the trail's 4 actions done on them match their events" in out
    assert "the hosts' events agree with the trail" in out


def test_a_cut_tail_is_found(acted: Any, monkeypatch, capsys) -> None:
    path = acted.audit.path
    lines = lines_of(path)
    path.write_bytes(b"".join(lines[:4]))  # the reset and the checkpoint removed
    assert acted.audit.verify().ok  # the chain alone cannot tell
    assert cli(monkeypatch, "rita", "verify", "--hosts") == 2
    out = capsys.readouterr().out
    assert ("cut off: the trail ends at record 4 (line 4), but the hosts hold events of 1 later "
            "action (record 7: checkpoint create of shop-app01 on HV01): the end of the trail "
            "was removed") in out
    # henry's only action went with the tail: the trail names him no more, --by does.
    assert cli(monkeypatch, "rita", "verify", "--hosts", "--by", "LAB\\henry") == 2
    assert ("but the hosts hold events of 2 later actions (records 5 to 7: power reset of "
            "office-print on HV02, checkpoint create of shop-app01 on HV01)"
            ) in capsys.readouterr().out


def test_a_forged_record_appended_with_its_hash_recomputed_is_found(acted: Any, monkeypatch,
                                                                     capsys) -> None:
    path = acted.audit.path
    lines = lines_of(path)
    decision, outcome = json.loads(lines[2]), json.loads(lines[3])  # the start of shop-web01
    for record in (decision, outcome):
        record["correlation_id"] = "d0d0d0d0-0000-4000-8000-000000000001"
        record["time"] = "2026-12-31T23:59:00.000Z"
    forged = [json.dumps(r, ensure_ascii=True, separators=(",", ":")).encode() + b"\n"
              for r in (decision, outcome)]
    path.write_bytes(b"".join(rechain(lines + forged, len(lines))))
    assert acted.audit.verify().ok
    assert cli(monkeypatch, "rita", "verify", "--hosts") == 2
    out = capsys.readouterr().out
    assert ("missing on the host: line 9 (record 9) says start of shop-web01 on HV01 was done, "
            "but HV01 holds no event of it: it never reached the host, or the record was "
            "forged") in out


def test_an_edited_record_with_the_chain_recomputed_is_found(acted: Any, monkeypatch,
                                                            capsys) -> None:
    path = acted.audit.path
    lines = lines_of(path)
    record = json.loads(lines[2])
    record["reason"] = "an administrator told me to"  # the start's grounds, rewritten
    lines[2] = json.dumps(record, ensure_ascii=True, separators=(",", ":")).encode() + b"\n"
    path.write_bytes(b"".join(rechain(lines, 3)))
    assert acted.audit.verify().ok
    assert cli(monkeypatch, "rita", "verify", "--hosts") == 2
    out = capsys.readouterr().out
    assert "altered: line 3 (record 3, start of shop-web01 on HV01) hashes to " in out
    assert ("that line, or one since the last line that matches the hosts, was changed after the "
            "host acted; 2 later actions differ too, as a chain recomputed from there makes them"
            ) in out
    assert "missing on the host" not in out and "cut off" not in out


def test_a_whole_file_replaced_is_found(acted: Any, monkeypatch, capsys) -> None:
    path = acted.audit.path
    olivia = LabDirectory().sign_in("olivia", "olivia-demo")
    fake = AuditTrail(path.with_name("fake.jsonl"))  # this computer's, as the real one
    cid = fake.decided(olivia, "save", "HV01", WEB01[1], "shop-web01", {}, True, "owner")
    fake.outcome(cid, olivia, "save", "HV01", WEB01[1], "shop-web01", "ok")
    fake.path.replace(path)
    assert acted.audit.verify().ok
    assert cli(monkeypatch, "rita", "verify", "--hosts") == 2
    out = capsys.readouterr().out
    assert ("replaced: none of the 3 events the hosts hold for this trail matches a record in it, "
            "and none of its 1 action done on those hosts is there: the file is not the trail "
            "these actions were written to") in out


def test_verify_against_the_hosts_needs_audit_read(acted: Any, monkeypatch, capsys) -> None:
    assert cli(monkeypatch, "olivia", "verify", "--hosts") == 1
    assert "LAB\\olivia may not read the audit trail" in capsys.readouterr().err
    assert main(["audit", "verify", "--user", "olivia"]) == 1
    assert "go with --hosts" in capsys.readouterr().err


def test_audit_hosts_reads_every_users_events_and_filters(acted: Any, monkeypatch,
                                                         capsys) -> None:
    assert cli(monkeypatch, "rita", "hosts") == 0
    rows = capsys.readouterr().out.splitlines()
    assert len(rows) == 4 and "LAB\\henry" in rows[1] and "HV02" in rows[1]
    assert "LAB\\olivia (S-1-5-21-1000-2000-3000-1101) via jea  checkpoint create of shop-app01  ok" \
        in rows[0] and "[record " in rows[0] and "#7 from" in rows[0]

    assert cli(monkeypatch, "rita", "hosts", "--by", "olivia", "--vm", "shop-web01") == 0
    rows = capsys.readouterr().out.splitlines()
    assert [r.split("  ")[3] for r in rows] == ["power start of shop-web01", "power save of shop-web01"]
    assert cli(monkeypatch, "rita", "hosts", "--by", "S-1-5-21-1000-2000-3000-1102",
               "--format", "json") == 0
    (event,) = json.loads(capsys.readouterr().out)
    assert (event["user"], event["vm_name"], event["outcome"], event["event_id"]) == (
        "LAB\\henry", "office-print", "ok", 1000)
    assert cli(monkeypatch, "rita", "hosts", "--vm", "shop-app01", "--format", "csv") == 0
    header, row = csv_rows(capsys.readouterr().out)
    assert header == EVENT_HEADER and row[header.index("record")] != ""
    assert cli(monkeypatch, "rita", "hosts", "--since", "2999-01-01") == 0
    assert capsys.readouterr().out == ""
    # Refused by the console for a person without audit.read (and by the hosts besides).
    assert cli(monkeypatch, "olivia", "hosts") == 1
    assert "may not read the audit trail: no grant gives audit.read" in capsys.readouterr().err


def test_audit_hosts_refuses_a_bad_since(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["audit", "hosts", "--user", "rita", "--since", "yesterday"])
    assert "is not a day (YYYY-MM-DD)" in capsys.readouterr().err


def test_the_event_ids_are_documented_as_the_data_says() -> None:
    import re

    from console.audit import HOST_EVENT_IDS, HOST_EVENT_LOG, HOST_EVENT_SOURCE

    root = Path(__file__).resolve().parent.parent
    text = (root / "docs" / "host-operations.md").read_text(encoding="utf-8")
    section = text.split("## The host's event", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (\d+) \| (\w+) \| `(\w+)`", section, re.M)
    assert {outcome: int(number) for number, _, outcome in rows} == HOST_EVENT_IDS
    assert f"**{HOST_EVENT_LOG}** log, source **{HOST_EVENT_SOURCE}**" in section
    readme = (root / "README.md").read_text(encoding="utf-8")
    wanted = " or ".join(f"EventID={n}" for n in HOST_EVENT_IDS.values())
    assert wanted in readme and f"Provider[@Name='{HOST_EVENT_SOURCE}']" in readme

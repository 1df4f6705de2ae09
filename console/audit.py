"""The console's own audit trail: an append-only, hash-chained JSON Lines file.

Format: one JSON object per line, ASCII only (`ensure_ascii`, so no text can smuggle a line
break), ending with "\\n". Every record carries `prev`: the SHA-256 (hex) of the previous line's
exact bytes, its "\\n" included (`GENESIS` for the first record), and `seq`, its number in the
chain (1, 2, ...). Verification therefore hashes bytes as they are on disk and never
re-serialises JSON; `seq` tells a removed record from an edited one.

An action writes its decision record before it proceeds and its outcome record after, with the
same correlation id; a denied attempt is a single record. Each record is flushed and fsynced
under an exclusive lock held across read-tail + append, so concurrent consoles never interleave:
a lock file beside the trail (`.audit.jsonl.lock`), so readers (show, verify) are never blocked.
A crash can leave one torn last line (no "\\n"); the next writer repairs it by appending "\\n" and
a `repair` record that names the torn bytes' hash and the hash of the last intact line, never
rewriting earlier bytes.

What the chain proves: any edit, removal, insertion or reordering is found unless everything
after it was recomputed too. Removing whole records from the end leaves a shorter valid chain;
`VerifyResult.head` is the value to keep elsewhere (the host's event log holds the authoritative
record) to catch that.
"""
from __future__ import annotations

import hashlib
import json
import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock

from .errors import AuditError
from .identity import Identity

# A writer waits this long for another (who holds the lock for one append), then gives up with
# an AuditError rather than hanging the console.
LOCK_WAIT_SECONDS = 10
_OPEN_FLAGS = os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_BINARY", 0)
GENESIS = "0" * 64
DECISIONS = ("allowed", "denied")
OUTCOMES = ("ok", "failed", "pending")
REPAIR = "repair"
# A sign-in under a setting that makes it unsafe (directory.skip_certificate_check): one record,
# with neither decision nor outcome; `reason` is the warning the person was shown.
INSECURE = "config.insecure"
_FIELDS = ("seq", "time", "user_sid", "user_name", "workstation", "action", "host", "vm_id",
           "vm_name", "params", "decision", "reason", "outcome", "error", "correlation_id", "prev")


@dataclass(frozen=True)
class AuditRecord:
    """One line of the trail. A decision record has `decision` set and `outcome` empty; an outcome
    record the reverse; a `repair` record notes a line torn by a crash."""

    seq: int
    time: str  # ISO 8601, UTC, e.g. 2024-05-01T09:30:00.123Z
    user_sid: str
    user_name: str
    workstation: str
    action: str
    host: str
    vm_id: str
    vm_name: str
    params: dict[str, Any] = field(hash=False)
    decision: str  # allowed | denied | "" (outcome records)
    reason: str
    outcome: str  # ok | failed | pending | "" (decision records)
    error: str
    correlation_id: str
    prev: str  # SHA-256 of the previous line's bytes, "\n" included

    @classmethod
    def from_json(cls, data: Any) -> AuditRecord:
        """A record from a parsed line; ValueError names what is missing or of the wrong type."""
        if not isinstance(data, dict):
            raise ValueError("it is not a JSON object")
        values: dict[str, Any] = {}
        for name in _FIELDS:
            if name not in data:
                raise ValueError(f"the field {name!r} is missing")
            value = data[name]
            wanted = int if name == "seq" else dict if name == "params" else str
            if not isinstance(value, wanted) or isinstance(value, bool):
                raise ValueError(f"the field {name!r} is not {wanted.__name__}")
            values[name] = value
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _FIELDS}


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    count: int  # records checked (up to the problem, when there is one)
    problem: str | None = None
    line: int | None = None  # 1-based line of the problem
    repaired: tuple[int, ...] = ()  # lines torn by a crash and repaired by the next writer
    head: str = GENESIS  # hash of the last intact line: keep it elsewhere to detect truncation


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AuditTrail:
    def __init__(self, path: Path, workstation: str | None = None) -> None:
        self.path = Path(path)
        self.workstation = workstation or socket.gethostname()

    # --- writing -----------------------------------------------------------------------------

    def decided(self, identity: Identity, action: str, host: str, vm_id: str, vm_name: str,
                params: dict[str, Any], allowed: bool, reason: str) -> str:
        """Record a decision before acting; returns the correlation id for `outcome`.

        A denied decision is complete in itself. Raises AuditError when the trail cannot be
        written: the caller must then not act.
        """
        correlation_id = str(uuid.uuid4())
        self._append(identity, dict(
            action=action, host=host, vm_id=vm_id, vm_name=vm_name, params=dict(params),
            decision="allowed" if allowed else "denied", reason=reason, outcome="", error="",
            correlation_id=correlation_id))
        return correlation_id

    def outcome(self, correlation_id: str, identity: Identity, action: str, host: str,
                vm_id: str, vm_name: str, outcome: str, error: str = "") -> None:
        """Record how an allowed action ended: ok, failed, or pending (not yet confirmed)."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, not {outcome!r}")
        self._append(identity, dict(
            action=action, host=host, vm_id=vm_id, vm_name=vm_name, params={}, decision="",
            reason="", outcome=outcome, error=error, correlation_id=correlation_id))

    def insecure(self, identity: Identity, setting: str, warning: str,
                 params: dict[str, Any] | None = None) -> None:
        """Record that `identity` signed in while `setting` made it unsafe (action
        config.insecure): the warning they were shown, and what the setting applied to."""
        self._append(identity, dict(
            action=INSECURE, host="", vm_id="", vm_name="",
            params={"setting": setting, **(params or {})}, decision="", reason=warning,
            outcome="", error="", correlation_id=str(uuid.uuid4())))

    def _append(self, identity: Identity, fields_: dict[str, Any]) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, _OPEN_FLAGS, 0o644)
        except OSError as exc:
            raise self._write_error(exc) from exc
        try:
            with _lock(self.path).acquire():  # filelock.Timeout is an OSError too
                last, torn = _tail(fd)
                if last is None:
                    prev, seq = GENESIS, 1
                else:
                    prev, seq = _sha256(last), _last_seq(last, self.path) + 1
                out = b""
                if torn:
                    # Finish the torn line and chain across it; its bytes stay as they were.
                    out = b"\n" + self._line(identity, seq, _sha256(torn + b"\n"), dict(
                        action=REPAIR, host="", vm_id="", vm_name="",
                        params={"torn_sha256": _sha256(torn), "torn_bytes": len(torn),
                                "after": prev},
                        decision="", reason="", outcome="", error="",
                        correlation_id=str(uuid.uuid4())))
                    prev, seq = _sha256(out[1:]), seq + 1
                out += self._line(identity, seq, prev, fields_)
                _write_all(fd, out)
                os.fsync(fd)
                if last is None and not torn and os.name != "nt":
                    _fsync_folder(self.path.parent)  # a new file's name must survive a crash too
        except OSError as exc:
            raise self._write_error(exc) from exc
        finally:
            os.close(fd)

    def _line(self, identity: Identity, seq: int, prev: str, fields_: dict[str, Any]) -> bytes:
        record = {"seq": seq, "time": _now(), "user_sid": identity.sid, "user_name": identity.name,
                  "workstation": self.workstation, **fields_, "prev": prev}
        # default=str: a parameter that is not JSON (a Path, a date) is recorded as text rather
        # than stopping the action for want of an audit record.
        text = json.dumps(record, ensure_ascii=True, separators=(",", ":"), default=str)
        return text.encode("ascii") + b"\n"

    def _write_error(self, exc: OSError) -> AuditError:
        return AuditError(
            f"The audit trail {self.path} cannot be written ({exc.strerror or exc}); no action is "
            "carried out until it can: check that folder's permissions and free space.")

    # --- reading -----------------------------------------------------------------------------

    def records(self, user_sid: str | None = None) -> list[AuditRecord]:
        """Every record, oldest first, of one user or of all. Torn lines (never finished, so
        their action never ran) and lines that are not records are left out; `verify` reports
        them."""
        out: list[AuditRecord] = []
        last_raw = b""
        for _, raw in self._lines():
            try:
                record = AuditRecord.from_json(json.loads(raw)) if raw.endswith(b"\n") else None
            except ValueError:
                record = None
            if (record is not None and record.action == REPAIR and out and last_raw
                    and record.params.get("torn_sha256") == _sha256(last_raw[:-1])):
                out.pop()  # the torn line happened to parse: it is not a record all the same
            last_raw = raw if record is not None else b""
            if record is not None:
                out.append(record)
        return [r for r in out if user_sid is None or r.user_sid == user_sid]

    def verify(self) -> VerifyResult:
        """Check the chain; the result names the first line that was edited, removed, inserted,
        reordered or torn."""
        lines = list(self._lines())
        hashes = [_sha256(raw) for _, raw in lines]
        first_line: dict[str, int] = {}
        for number, digest in enumerate(hashes, 1):
            first_line.setdefault(digest, number)
        parsed: list[AuditRecord | str] = []
        for _, raw in lines:
            try:
                parsed.append(AuditRecord.from_json(json.loads(raw)))
            except ValueError as exc:  # json.JSONDecodeError and UnicodeDecodeError included
                parsed.append(str(exc))

        expected_prev, expected_seq, count = GENESIS, 1, 0
        repaired: list[int] = []
        seen_seq: dict[int, int] = {}

        def fail(line: int, problem: str) -> VerifyResult:
            return VerifyResult(False, count, problem, line, tuple(repaired), expected_prev)

        index = 0
        while index < len(lines):
            number, raw = index + 1, lines[index][1]
            after = parsed[index + 1] if index + 1 < len(lines) else None
            torn = raw[:-1] if raw.endswith(b"\n") else raw
            if (isinstance(after, AuditRecord) and after.action == REPAIR
                    and after.prev == hashes[index]
                    and after.params.get("torn_sha256") == _sha256(torn)):
                # A line torn by a crash, finished and chained across by the next writer, who
                # noted the hash of the line before it.
                follows = str(after.params.get("after"))
                if follows != expected_prev or after.seq != expected_seq:
                    return fail(*_diagnose(number, follows, after.seq, expected_seq, first_line,
                                           seen_seq))
                repaired.append(number)
                expected_prev = hashes[index]
                index += 1
                continue
            if not raw.endswith(b"\n"):
                return fail(number, f"line {number} is incomplete: the console stopped while "
                            "writing it, or the file was cut; the next record written repairs it")
            record = parsed[index]
            if isinstance(record, str):
                return fail(number, f"line {number} is not an audit record ({record}): it was "
                            "edited or written by something else")
            if record.prev != expected_prev or record.seq != expected_seq:
                return fail(*_diagnose(number, record.prev, record.seq, expected_seq, first_line,
                                       seen_seq))
            seen_seq[record.seq] = number
            expected_prev, expected_seq, count = hashes[index], expected_seq + 1, count + 1
            index += 1
        return VerifyResult(True, count, None, None, tuple(repaired), expected_prev)

    def _lines(self) -> Iterator[tuple[int, bytes]]:
        """(line number, exact bytes with "\\n") of each line; the last may lack its "\\n"."""
        try:
            with open(self.path, "rb") as file:
                yield from enumerate(file, 1)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise AuditError(f"The audit trail {self.path} cannot be read "
                             f"({exc.strerror or exc}).") from exc


def _diagnose(number: int, prev: str, seq: int, expected_seq: int, first_line: dict[str, int],
              seen_seq: dict[int, int]) -> tuple[int, str]:
    """Line `number` says it follows the line hashed `prev` and is record `seq`, and the chain
    expected otherwise: say which line is wrong and how."""
    linked = first_line.get(prev)  # the line this record says came before it
    if linked == number - 1:  # chained right, numbered wrong
        return number, f"line {number} was changed after it was written: its number is wrong"
    if linked is not None and linked >= number:
        return number, (f"line {number} is out of order: it was written after line {linked}")
    if linked is not None and linked < number - 1:
        return linked + 1, (f"line {linked + 1} was inserted: line {number} follows line "
                            f"{linked} in the chain")
    if seq < expected_seq:
        earlier = seen_seq.get(seq)
        where = f" (already used by line {earlier})" if earlier else ""
        return number, f"line {number} was inserted: record number {seq} comes twice{where}"
    if seq > expected_seq:
        missing = (f"record {expected_seq} is" if seq == expected_seq + 1
                   else f"records {expected_seq} to {seq - 1} are")
        return number, f"{missing} missing before line {number}: removed from the trail"
    if number == 1:
        return 1, "line 1 was changed after it was written: it does not start the chain"
    return number - 1, (f"line {number - 1} was changed after it was written: line {number} "
                        "records a different hash for it")


def _lock(path: Path) -> FileLock:
    """The writers' lock of one trail: a lock file beside it, never the trail itself (a Windows
    lock on the trail would block its readers)."""
    # filelock polls rather than waiting in the kernel: every 5 ms, not its default 50 ms, or a
    # writer appending one record after another never leaves a gap long enough for the other.
    return FileLock(path.with_name(f".{path.name}.lock"), timeout=LOCK_WAIT_SECONDS,
                    poll_interval=0.005)


def _tail(fd: int) -> tuple[bytes | None, bytes]:
    """(last complete line with its "\\n" or None, torn bytes after it) of the file."""
    end = os.fstat(fd).st_size
    buffer, position = b"", end
    # Two newlines bound the last complete line (the file's start counts as one).
    while position > 0 and buffer.count(b"\n") < 2:
        size = min(4096, position)
        position -= size
        buffer = _read_at(fd, position, size) + buffer
    cut = buffer.rfind(b"\n") + 1
    complete, torn = buffer[:cut], buffer[cut:]
    if not complete:
        return None, torn
    start = complete.rfind(b"\n", 0, len(complete) - 1) + 1
    return complete[start:], torn


def _read_at(fd: int, position: int, size: int) -> bytes:
    # lseek + read rather than pread, which Windows lacks; O_APPEND writes ignore the position.
    os.lseek(fd, position, os.SEEK_SET)
    return os.read(fd, size)


def _last_seq(line: bytes, path: Path) -> int:
    try:
        return AuditRecord.from_json(json.loads(line)).seq
    except ValueError as exc:
        raise AuditError(
            f"The audit trail {path} ends with a damaged record ({exc}), so no action can be "
            "recorded after it: run `hvconsole audit verify`, then move the file aside.") from exc


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]

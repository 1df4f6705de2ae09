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
a `repair` record, never rewriting earlier bytes. The repair record says what it did: bytes that
are no record are left out of the chain (`"repair": "torn"`, their hash and length, and the hash
of the last intact line); a whole record that lacks only its newline (a write cut just before it,
or the newline stripped by hand) is completed and kept in the chain (`"repair": "completed"`, the
record's number and its line's hash), so a repair never hides a complete record. Until then
`records` shows such a record and `verify` counts it (`VerifyResult.unterminated`).

What the chain proves: any edit, removal, insertion or reordering is found unless everything
after it was recomputed too. A trail in the person's own folder cannot protect itself against
that person: cutting the tail, appending a forged record, editing a record and recomputing the
chain after it, or replacing the whole file all leave a valid chain. So every action carries its
decision record's id, number and line hash to the host (`RecordRef`), which writes them in its
own event with the caller's SID from the token (`HOST_EVENT_IDS`, docs/host-operations.md), and
`compare_with_hosts` holds the trail to those events: a record missing on either side, altered
(its hash differs) or cut off (the trail ends before the hosts' events do).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock

from .errors import AuditError, HostError
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

# --- the hosts' record of the same actions (docs/host-operations.md, "The host's event") ---------
# Each action's host writes one event to its Application log, source HvConsole, with one event id
# per outcome: the operation scripts (_common.ps1, frame E) on the admin endpoint and the
# generated JEA functions (console/jea.py, HvcLog) fill these in from here.
HOST_EVENT_LOG = "Application"
HOST_EVENT_SOURCE = "HvConsole"
HOST_EVENT_IDS: dict[str, int] = {"ok": 1000, "denied": 1001, "failed": 1002}
HOST_EVENT_VERSION = 1  # the `v` of the event's JSON message
# What a host accepts as a record reference (.NET patterns, anchored with \A and \z; the JEA
# functions' ValidatePattern and the admin frame's -cmatch use them as written).
RECORD_ID_PATTERN = r"\A[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}\z"
SHA256_PATTERN = r"\A[0-9a-f]{64}\z"
WORKSTATION_PATTERN = r"\A[^\x00-\x1f]{0,255}\z"
SEQ_MAX = 2**31 - 1
HOST_EVENTS_MAX = 100000  # what one read of a host's events may ask for (audit_events.ps1)
HOST_EVENTS_DEFAULT = 10000
# Downtime plans and the owners' answers (console/downtime.py), shared through the same log and
# source with event ids of their own, so an audit read never mistakes one for an action: a plan
# an administrator published (downtime_publish.ps1) and an owner's one-line answer to it
# (downtime_answer.ps1), each a JSON message naming the person from the token.
HOST_PLAN_EVENT_ID = 1010
HOST_ANSWER_EVENT_ID = 1011
PLAN_ID_PATTERN = r"\A[A-Z0-9][A-Z0-9._-]{0,62}-[0-9]{8}-[0-9]{4}-[0-9a-f]{6}\z"
ANSWER_TEXT_MAX = 500  # one line, characters
ANSWER_TEXT_PATTERN = r"\A[^\x00-\x1f]{0,500}\z"
HOST_PLANS_MAX = 2000  # the newest plan and answer events one read takes


def _python_pattern(dotnet: str) -> re.Pattern[str]:
    return re.compile(dotnet.replace(r"\z", r"\Z"))


@dataclass(frozen=True)
class RecordRef:
    """What an action carries to its host: its decision record's correlation id, number in the
    chain and the SHA-256 of its line (the `prev` of the record after it), and the workstation
    whose trail holds it. The host writes these beside the caller's SID from the token."""

    correlation_id: str
    sha256: str
    seq: int
    workstation: str

    def as_params(self) -> dict[str, Any]:
        """The `audit` parameter of the admin endpoint's operations."""
        return {"record": self.correlation_id, "sha256": self.sha256, "seq": self.seq,
                "workstation": self.workstation}

    @property
    def valid(self) -> bool:
        """Whether a host takes it (the patterns above); a reference it refuses is not sent."""
        return bool(_python_pattern(RECORD_ID_PATTERN).match(self.correlation_id)
                    and _python_pattern(SHA256_PATTERN).match(self.sha256)
                    and 0 < self.seq <= SEQ_MAX
                    and _python_pattern(WORKSTATION_PATTERN).match(self.workstation))


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
    completed: tuple[int, ...] = ()  # whole records that lacked their newline, completed and kept
    unterminated: int | None = None  # the last line: a whole record still without its newline


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
        return self.decision(identity, action, host, vm_id, vm_name, params, allowed,
                             reason).correlation_id

    def decision(self, identity: Identity, action: str, host: str, vm_id: str, vm_name: str,
                 params: dict[str, Any], allowed: bool, reason: str) -> RecordRef:
        """`decided`, returning the reference the host call carries (`RecordRef`): the
        correlation id, the record's number and its line's SHA-256."""
        correlation_id = str(uuid.uuid4())
        seq, digest = self._append(identity, dict(
            action=action, host=host, vm_id=vm_id, vm_name=vm_name, params=dict(params),
            decision="allowed" if allowed else "denied", reason=reason, outcome="", error="",
            correlation_id=correlation_id))
        return RecordRef(correlation_id, digest, seq, self.workstation)

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

    def _append(self, identity: Identity, fields_: dict[str, Any]) -> tuple[int, str]:
        """Append one record (after a repair record when the file ends in a torn line); its
        number and its line's SHA-256."""
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
                    # Finish the torn line; its bytes stay as they were. A whole record that
                    # lacks only its newline stays in the chain; anything else is left out of it.
                    out = b"\n" + self._repair(identity, torn, prev, seq)
                    repair = AuditRecord.from_json(json.loads(out[1:]))
                    prev, seq = _sha256(out[1:]), repair.seq + 1
                line = self._line(identity, seq, prev, fields_)
                _write_all(fd, out + line)
                os.fsync(fd)
                if last is None and not torn and os.name != "nt":
                    _fsync_folder(self.path.parent)  # a new file's name must survive a crash too
        except OSError as exc:
            raise self._write_error(exc) from exc
        finally:
            os.close(fd)
        return seq, _sha256(line)

    def _repair(self, identity: Identity, torn: bytes, prev: str, seq: int) -> bytes:
        """The repair record for a torn last line (`torn`, without a newline), which the line
        hashed `prev` precedes and which would be record `seq`: it says what it did."""
        common = dict(action=REPAIR, host="", vm_id="", vm_name="", decision="", outcome="",
                      error="", correlation_id=str(uuid.uuid4()))
        line = torn + b"\n"
        record = _whole_record(torn)
        if record is not None and record.prev == prev and record.seq == seq:
            return self._line(identity, seq + 1, _sha256(line), dict(
                common, params={"repair": "completed", "completed_seq": seq,
                                "completed_sha256": _sha256(line)},
                reason=f"Record {seq} was whole but lacked its newline: the newline was added "
                       f"and the record kept."))
        return self._line(identity, seq, _sha256(line), dict(
            common, params={"repair": "torn", "torn_sha256": _sha256(torn),
                            "torn_bytes": len(torn), "after": prev},
            reason=f"A write was cut off: the {len(torn)} bytes "
                   + (f"after record {seq - 1}" if seq > 1 else "at the start of the file")
                   + " are no record; they stay in the file, left out of the chain."))

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
        them. A whole record at the end that lacks only its newline is a record."""
        out: list[AuditRecord] = []
        last_raw = b""
        for _, raw in self._lines():
            record = _whole_record(raw)
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
        completed: list[int] = []
        seen_seq: dict[int, int] = {}

        def fail(line: int, problem: str) -> VerifyResult:
            return VerifyResult(False, count, problem, line, tuple(repaired), expected_prev,
                                tuple(completed))

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
            record = parsed[index]
            if not raw.endswith(b"\n"):
                if (not isinstance(record, AuditRecord) or record.prev != expected_prev
                        or record.seq != expected_seq):
                    return fail(number, f"line {number} is incomplete: the console stopped while "
                                "writing it, or the file was cut; the next record written "
                                "repairs it")
                # A whole record without its newline: the next writer completes and keeps it.
                count += 1
                return VerifyResult(True, count, None, None, tuple(repaired),
                                    _sha256(raw + b"\n"), tuple(completed), number)
            if isinstance(record, str):
                return fail(number, f"line {number} is not an audit record ({record}): it was "
                            "edited or written by something else")
            if record.prev != expected_prev or record.seq != expected_seq:
                return fail(*_diagnose(number, record.prev, record.seq, expected_seq, first_line,
                                       seen_seq))
            if record.action == REPAIR and record.params.get("repair") == "completed":
                # It names the line before it as a whole record it completed and kept.
                if (number == 1 or record.params.get("completed_sha256") != hashes[index - 1]
                        or record.params.get("completed_seq") != record.seq - 1):
                    return fail(number, f"line {number} is a repair record that does not name the "
                                "line before it: it was edited or written by something else")
                completed.append(number - 1)
            seen_seq[record.seq] = number
            expected_prev, expected_seq, count = hashes[index], expected_seq + 1, count + 1
            index += 1
        return VerifyResult(True, count, None, None, tuple(repaired), expected_prev,
                            tuple(completed))

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


def _whole_record(raw: bytes) -> AuditRecord | None:
    """The record a line holds, with or without its newline; None when it holds none."""
    try:
        return AuditRecord.from_json(json.loads(raw))
    except ValueError:  # json.JSONDecodeError and UnicodeDecodeError included
        return None


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



# --- the hosts' events: what each host wrote of the actions it was asked to take -----------------

@dataclass(frozen=True)
class HostAuditEvent:
    """One event a host wrote of a call (Application log, source HvConsole): who called, from
    the token; what was done and how it ended; and the console record it carried, if any."""

    host: str  # the host it was read from, as the console names it
    time: str  # when the host wrote it, ISO 8601 UTC
    event_id: int
    log_record: int  # the log's own record number (RecordId)
    machine: str  # the computer that wrote it
    user: str
    sid: str  # the caller's SID, from the token the host holds
    endpoint: str  # jea | admin
    operation: str
    action: str
    vm_id: str
    vm_name: str
    outcome: str  # ok | denied | failed: the event id's
    code: str  # the error code of a denied or failed call
    message: str
    record: str  # the decision record's correlation id ("" when the call carried none)
    sha256: str  # its line's SHA-256
    seq: int  # its number in the trail
    workstation: str  # the workstation whose trail holds it (the console says which)

    @classmethod
    def from_host(cls, host: str, item: Any) -> HostAuditEvent | None:
        """An event as a host's audit_events operation gives it ({"time", "id", "record_id",
        "machine", "message"}); None when it is none of the console's (another event id, or a
        message that is not the console's JSON document)."""
        if not isinstance(item, Mapping):
            return None
        outcomes = {number: name for name, number in HOST_EVENT_IDS.items()}
        try:
            event_id = int(item.get("id"))  # type: ignore[arg-type]
            document = json.loads(str(item.get("message") or ""))
        except (TypeError, ValueError):
            return None
        if event_id not in outcomes or not isinstance(document, dict):
            return None

        def text(key: str) -> str:
            value = document.get(key)
            return "" if value is None else str(value)
        try:
            seq = int(document.get("seq") or 0)
            log_record = int(item.get("record_id") or 0)
        except (TypeError, ValueError):
            seq = log_record = 0
        return cls(host, str(item.get("time") or ""), event_id, log_record,
                   str(item.get("machine") or ""), text("user"), text("sid"), text("endpoint"),
                   text("operation"), text("action"), text("vm").lower(), text("name"),
                   outcomes[event_id], text("code"), text("message"), text("record").lower(),
                   text("sha256").lower(), seq, text("workstation"))

    def to_json(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self.__dataclass_fields__}

    def row(self) -> list[object]:
        """The event as a row of EVENT_HEADER (the CSV export and the review window's table)."""
        return [self.time, self.host, self.user, self.sid, self.endpoint, self.operation,
                self.action, self.vm_name, self.vm_id, self.outcome, self.code, self.message,
                self.record, self.seq or "", self.sha256, self.workstation, self.event_id,
                self.machine, self.log_record]

    def line(self) -> str:
        """One line of text (`hvconsole audit hosts`): when, where, who, what, how it ended and
        the console record it carried. Names are data: the caller makes them one line."""
        result = self.outcome + (f": {self.code}" if self.code and self.code != self.outcome
                                 else "") + (f" ({self.message})" if self.message else "")
        record = (f"  [record {self.record[:8]} #{self.seq} from {self.workstation}]"
                  if self.record else "  [no console record]")
        return (f"{self.time}  {self.host}  {self.user} ({self.sid}) via {self.endpoint}  "
                f"{self.what.removesuffix(f' on {self.host}')}  {result}{record}")

    @property
    def what(self) -> str:
        """The call as a person reads it: "power start of shop-web01 on HV01"."""
        done = " ".join(p for p in (self.operation, self.action) if p) or "a call"
        vm = self.vm_name or self.vm_id
        return f"{done}{f' of {vm}' if vm else ''} on {self.host}"


EVENT_HEADER = ["time", "host", "user", "sid", "endpoint", "operation", "action", "vm_name",
                "vm_id", "outcome", "code", "message", "record", "seq", "sha256", "workstation",
                "event_id", "machine", "log_record"]


@dataclass(frozen=True)
class HostEvents:
    """What one host answered to a read of its events (newest first)."""

    host: str
    events: tuple[HostAuditEvent, ...]
    truncated: bool = False  # the host held more than were asked for: older ones were left out
    others: int = 0  # entries of the log's HvConsole ids that are not the console's documents

    @classmethod
    def from_data(cls, host: str, data: Any) -> HostEvents:
        """The `data` of an audit_events answer ({"events": [...], "truncated": bool})."""
        items = data.get("events") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise HostError(f"{host} answered something unexpected: no events list.", host=host)
        read = [HostAuditEvent.from_host(host, item) for item in items]
        events = tuple(e for e in read if e is not None)
        return cls(host, events, bool(data.get("truncated")), len(read) - len(events))


def since_time(day: str) -> str:
    """A --since value (YYYY-MM-DD, or a whole UTC time YYYY-MM-DDTHH:MM:SSZ) as a host takes it;
    ValueError names what is wrong."""
    text = day.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return datetime.strptime(text, "%Y-%m-%d").strftime("%Y-%m-%dT00:00:00Z")
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", text):
            return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").strftime("%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        pass
    raise ValueError(f"{day!r} is not a day (YYYY-MM-DD) or a UTC time (YYYY-MM-DDTHH:MM:SSZ)")


def select_events(events: Iterable[HostAuditEvent], since: str | None = None,
                  user: str | None = None, vm: str | None = None) -> list[HostAuditEvent]:
    """The events from `since` (an ISO date or time, UTC), of one person (name, DOMAIN\\name or
    SID) and of one VM (name or id), newest first."""
    def by(event: HostAuditEvent) -> bool:
        if since and event.time < since:
            return False
        if user:
            wanted = user.casefold()
            if wanted not in {event.sid.casefold(), event.user.casefold(),
                              event.user.rsplit("\\", 1)[-1].casefold()}:
                return False
        return not vm or vm.casefold() in {event.vm_name.casefold(), event.vm_id.casefold()}
    return sorted((e for e in events if by(e)), key=lambda e: (e.time, e.host, e.log_record),
                  reverse=True)


@dataclass(frozen=True)
class HostFinding:
    """One way the trail and the hosts' events disagree."""

    kind: str  # replaced | cut off | altered | missing on the host | missing locally | outcome
    text: str
    line: int | None = None  # the trail's line it is about

    def __str__(self) -> str:
        return f"{self.kind}: {self.text}"


@dataclass(frozen=True)
class HostComparison:
    findings: tuple[HostFinding, ...]
    records: int  # the trail's actions on hosts that were read
    matched: int  # of those, the ones a host holds with the same hash
    events: int  # the hosts' events that belong to this trail
    not_compared: tuple[str, ...] = ()  # hosts the trail names that were not read

    @property
    def ok(self) -> bool:
        return not self.findings


@dataclass(frozen=True)
class _Action:
    line: int
    sha256: str
    record: AuditRecord

    @property
    def what(self) -> str:
        r = self.record
        return f"{r.action} of {r.vm_name or r.vm_id} on {r.host}"


def compare_with_hosts(trail: AuditTrail, events: Iterable[HostAuditEvent],
                       hosts_read: Iterable[str], people: Iterable[str] = ()) -> HostComparison:
    """Hold the trail to the hosts' events (read from every host in `hosts_read`).

    The events that belong to this trail are those written for a record, by a caller the trail
    names (or one of `people`: names or SIDs, for a trail that names nobody any more), from a
    workstation it names (or this computer). Each action the trail says was done on a host that
    was read must be there with the same line hash; each such event must be in the trail.
    """
    actions: dict[str, _Action] = {}
    outcomes: dict[str, str] = {}
    sids: set[str] = set()
    names: set[str] = set()
    workstations = {trail.workstation.casefold()}
    last_seq, last_line = 0, 0
    for number, raw in trail._lines():
        record = _whole_record(raw)
        if record is None:
            continue
        last_seq, last_line = max(last_seq, record.seq), number
        sids.add(record.user_sid.casefold())
        workstations.add(record.workstation.casefold())
        if record.decision:
            digest = _sha256(raw if raw.endswith(b"\n") else raw + b"\n")
            actions.setdefault(record.correlation_id.lower(), _Action(number, digest, record))
        elif record.outcome:
            outcomes[record.correlation_id.lower()] = record.outcome
    for person in people:
        (sids if person.upper().startswith("S-1-") else names).add(person.casefold())

    def ours(event: HostAuditEvent) -> bool:
        who = {event.user.casefold(), event.user.rsplit("\\", 1)[-1].casefold()}
        return bool(event.record) and event.workstation.casefold() in workstations and (
            event.sid.casefold() in sids or bool(who & names))

    read = {h.casefold() for h in hosts_read}
    mine = sorted((e for e in events if ours(e)), key=lambda e: (e.seq, e.time))
    held: dict[str, HostAuditEvent] = {}
    for event in mine:
        held.setdefault(event.record, event)
    expected = [a for cid, a in actions.items() if a.record.decision == "allowed"
                and a.record.host and a.record.vm_id and a.record.host.casefold() in read
                and outcomes.get(cid) == "ok"]
    not_compared = sorted({a.record.host for a in actions.values() if a.record.decision == "allowed"
                           and a.record.host and a.record.host.casefold() not in read})

    altered = sorted(((actions[e.record], e) for e in held.values()
                      if e.record in actions and actions[e.record].sha256 != e.sha256),
                     key=lambda pair: pair[0].line)
    matched = [(actions[e.record], e) for e in held.values()
               if e.record in actions and actions[e.record].sha256 == e.sha256]
    unknown = [e for e in held.values() if e.record not in actions]
    later = [e for e in unknown if e.seq > last_seq]
    earlier = [e for e in unknown if e.seq <= last_seq]
    absent = [a for a in expected if a.record.correlation_id.lower() not in held]

    findings: list[HostFinding] = []
    if held and expected and not matched and not altered:
        findings.append(HostFinding("replaced", (
            f"none of the {_count(len(held), 'event')} the hosts hold for this trail matches a "
            f"record in it, and none of its {_count(len(expected), 'action')} done on those hosts "
            f"is there: the file is not the trail these actions were written to")))
    if later:
        seqs = sorted({e.seq for e in later})
        span = f"record {seqs[0]}" if len(seqs) == 1 else f"records {seqs[0]} to {seqs[-1]}"
        ends = (f"the trail ends at record {last_seq} (line {last_line})" if last_seq
                else "the trail holds no record")
        findings.append(HostFinding("cut off", (
            f"{ends}, but the hosts hold events of "
            f"{_count(len(later), 'later action')} ({span}: {_listed(e.what for e in later)}): "
            f"the end of the trail was removed"), last_line))
    if altered:
        first, event = altered[0]
        rest = len(altered) - 1
        findings.append(HostFinding("altered", (
            f"line {first.line} (record {first.record.seq}, {first.what}) hashes to "
            f"{first.sha256[:16]}..., but {event.host} recorded {event.sha256[:16]}...: that line, "
            f"or one since the last line that matches the hosts, was changed after the host acted"
            + (f"; {_count(rest, 'later action')} differ too, as a chain recomputed from there "
               f"makes them" if rest else "")), first.line))
    for action in absent:
        findings.append(HostFinding("missing on the host", (
            f"line {action.line} (record {action.record.seq}) says {action.what} was done, but "
            f"{action.record.host} holds no event of it: it never reached the host, or the record "
            f"was forged"), action.line))
    for event in earlier:
        findings.append(HostFinding("missing locally", (
            f"{event.host} holds an event of record {event.seq} ({event.what}, {event.time}, "
            f"{event.user}) that is not in the trail: it was removed")))
    for action, event in sorted(matched, key=lambda pair: pair[0].line):
        local = outcomes.get(action.record.correlation_id.lower(), "")
        if local in ("ok", "failed") and (local == "ok") != (event.outcome == "ok"):
            findings.append(HostFinding("outcome", (
                f"line {action.line} (record {action.record.seq}, {action.what}) ended {local} in "
                f"the trail, {event.outcome} on {event.host}"), action.line))
    return HostComparison(tuple(findings), len(expected), len(matched), len(held),
                          tuple(not_compared))


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _listed(items: Iterable[str], limit: int = 3) -> str:
    shown = list(items)
    more = len(shown) - limit
    return ", ".join(shown[:limit]) + (f" and {more} more" if more > 0 else "")


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

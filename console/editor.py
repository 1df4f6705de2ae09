"""Editing the delegation policy, for holders of policy.modify.

Edits go through tomlkit, which keeps the file's comments, blank lines, key order and quoting: a
grant or a VM description changed in place keeps its keys where they were (and their comments);
one removed takes only its own lines, the blank lines and comments after it stay for what follows
(tomlkit files them under the table above them); one added comes after its kind's last table. A
file whose [[grants]] or [vms] tables are interleaved with other tables is regrouped by tomlkit on
the first edit, which the diff shows. Every change is validated as a whole with the loader's own
rules, shown as a unified diff, and saved atomically (a temporary file in the same folder, then
os.replace) after a backup of the previous version, with an audit record before and after. A file
changed on disk since it was loaded is never overwritten.
"""
from __future__ import annotations

import contextlib
import difflib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import tomlkit
from filelock import FileLock
from tomlkit.items import (
    AoT, Comment, InlineTable, Item, Key, KeyType, Null, SingleKey, Table, Whitespace,
)

from .audit import AuditTrail
from .errors import Denied, PolicyChanged, PolicyError, Problem
from .identity import Identity
from .policy import Grant, Policy, normalize_vm_id

ACTION = "policy.modify"
# A save waits this long for another console's save of the same policy, then is refused.
_LOCK_WAIT_SECONDS = 10
_VM_FIELDS = ("name", "owner", "contact", "classification", "application", "tier", "tags", "notes")


@dataclass(frozen=True)
class NewGrant:
    """A grant to add. `scope` is the policy key (everything, host, cluster, vm, vm_name,
    application, tag) and `value` its value (ignored for everything)."""

    principal: str
    sid: str
    role: str
    scope: str
    value: str = ""
    effect: str = "allow"
    note: str = ""
    expires: date | None = None
    host: str = ""  # narrows a vm or vm_name scope to one host

    def table(self) -> dict[str, Any]:
        out: dict[str, Any] = {"principal": self.principal, "sid": self.sid, "role": self.role}
        if self.effect != "allow":
            out["effect"] = self.effect
        out[self.scope] = True if self.scope == "everything" else self.value
        if self.host and self.scope in ("vm", "vm_name"):
            out["host"] = self.host
        if self.note:
            out["note"] = self.note
        if self.expires:
            out["expires"] = self.expires
        return out


@dataclass(frozen=True)
class Change:
    """A validated proposal: the new text, and what it does."""

    summary: str
    old_text: str
    new_text: str
    policy: Policy  # the new text, loaded

    def diff(self, filename: str = "policy.toml") -> str:
        return "".join(difflib.unified_diff(
            self.old_text.splitlines(keepends=True), self.new_text.splitlines(keepends=True),
            f"a/{filename}", f"b/{filename}"))


class PolicyEditor:
    """One policy file as loaded; propose changes against it, then save one."""

    def __init__(self, path: str | Path, identity: Identity, audit: AuditTrail,
                 today: date | None = None) -> None:
        self.path = Path(path)
        self.identity = identity
        self.audit = audit
        self.today = today
        self.reload()

    def reload(self) -> None:
        """Read the file again (after someone else saved it)."""
        data = self.path.read_bytes()
        self.digest = hashlib.sha256(data).hexdigest()
        self.text = data.decode("utf-8")
        self.policy = Policy.from_text(self.text, str(self.path), _digest=self.digest,
                                       _path=self.path)

    @property
    def may_modify(self) -> bool:
        return self.policy.global_decision(self.identity, self.today).allows(ACTION)

    # --- proposals ---------------------------------------------------------------------------

    def add_grant(self, grant: NewGrant) -> Change:
        doc = tomlkit.parse(self.text)
        table = _new_table(grant.table())
        grants = doc.get("grants")
        if isinstance(grants, AoT) and len(grants):
            _add_after(grants[-1], table)
            grants.append(table)
        elif grants is None:
            if doc.as_string().strip() and not doc.as_string().endswith("\n\n"):
                doc.add(tomlkit.nl())  # a blank line before (tomlkit adds none before [[...]])
            doc.append("grants", tomlkit.aot())
            doc["grants"].append(table)
        else:
            raise self._not_editable("grants")
        return self._change(f"add grant: {grant.effect} {grant.principal} → {grant.role} on "
                            f"{grant.scope} {grant.value}".rstrip(), doc.as_string())

    def remove_grant(self, grant: Grant) -> Change:
        doc = tomlkit.parse(self.text)
        grants, index = self._grant_table(doc, grant)
        _remove(doc, grants[index], self._blank_before(grant.line))
        del grants[index]
        if not len(grants):
            doc.remove("grants")
        return self._change(f"remove grant on line {grant.line}: {grant.principal.name} → "
                            f"{grant.role} on {grant.scope.describe(self.policy.vms)}",
                            doc.as_string())

    def replace_grant(self, grant: Grant, new: NewGrant) -> Change:
        doc = tomlkit.parse(self.text)
        grants, index = self._grant_table(doc, grant)
        _update(grants[index], new.table())
        return self._change(f"change grant on line {grant.line}: {new.principal} → {new.role} "
                            f"on {new.scope} {new.value}".rstrip(), doc.as_string())

    def set_vm_doc(self, vm_id: str, fields: Mapping[str, Any]) -> Change:
        """Document a VM, or replace its documentation; empty fields are left out."""
        normalized = normalize_vm_id(vm_id)
        if normalized is None:
            raise PolicyError([Problem(str(self.path), None, f"'{vm_id}' is not a VM id (a GUID).")])
        unknown = set(fields) - set(_VM_FIELDS)
        if unknown:
            raise PolicyError([Problem(str(self.path), None, "unknown VM documentation field(s): "
                                       + ", ".join(sorted(unknown)) + ".")])
        values = {k: (list(v) if k == "tags" else v) for k in _VM_FIELDS if (v := fields.get(k))}
        name = values.get("name", normalized)
        doc = tomlkit.parse(self.text)
        vms, key = self._vm_table(doc, normalized)
        if vms is not None and key is not None:
            _update(vms[key], values)
            return self._change(f"change documentation of VM {name}", doc.as_string())
        table = _new_table(values)
        new_key = SingleKey(normalized, KeyType.Basic)  # written [vms."<id>"], as people do
        if vms is None:  # at the end of the file (tomlkit puts a blank line before a table)
            doc.append("vms", tomlkit.table(is_super_table=True))
            doc["vms"].append(new_key, table)
        else:
            described = [v for v in vms.values() if isinstance(v, Table)]
            if not described:
                raise self._not_editable("vms")
            _add_after(described[-1], table)  # beside the other VM descriptions
            vms.append(new_key, table)
        return self._change(f"document VM {name}", doc.as_string())

    def remove_vm_doc(self, vm_id: str) -> Change:
        described = self.policy.doc(vm_id)
        if described is None:
            raise PolicyError([Problem(str(self.path), None, f"VM {vm_id} is not documented.")])
        doc = tomlkit.parse(self.text)
        vms, key = self._vm_table(doc, described.vm_id)
        if vms is None or key is None:
            raise self._lost(described.line)
        if isinstance(vms[key], Table):
            _remove(doc, vms[key], self._blank_before(described.line))
        del vms[key]
        return self._change(f"remove documentation of VM {described.name}", doc.as_string())

    def _change(self, summary: str, text: str) -> Change:
        # The same rules as `policy check`: a change that leaves the policy invalid is refused.
        return Change(summary, self.text, text, Policy.from_text(text, str(self.path)))

    def _grant_table(self, doc: tomlkit.TOMLDocument, grant: Grant) -> tuple[AoT, int]:
        """The [[grants]] array and the position of `grant` in it: the loader keeps every grant
        of a valid policy, in order."""
        grants = doc.get("grants")
        if not isinstance(grants, AoT):
            raise self._not_editable("grants")
        index = next((n for n, g in enumerate(self.policy.grants) if g == grant), None)
        if index is None or len(grants) != len(self.policy.grants):
            raise self._lost(grant.line)
        return grants, index

    def _vm_table(self, doc: tomlkit.TOMLDocument,
                  vm_id: str) -> tuple[Table | None, str | None]:
        """The [vms] table and the key (as written) that describes `vm_id`, if any."""
        vms = doc.get("vms")
        if vms is None:
            return None, None
        if not isinstance(vms, Table):
            raise self._not_editable("vms")
        return vms, next((k for k in vms if normalize_vm_id(k) == vm_id), None)

    def _blank_before(self, line: int | None) -> bool:
        """Whether a blank line comes right before the header on `line`."""
        lines = self.text.splitlines()
        return line is not None and 2 <= line <= len(lines) + 1 and not lines[line - 2].strip()

    def _lost(self, line: int | None) -> PolicyError:
        return PolicyError([Problem(str(self.path), line, "this entry cannot be found in the "
                                    "file any more; reload the policy.")])

    def _not_editable(self, key: str) -> PolicyError:
        return PolicyError([Problem(str(self.path), None, f"'{key}' is written in a form the "
                                    'editor does not change (it edits [[grants]] and [vms."<id>"] '
                                    "tables); edit the file by hand.")])

    # --- saving ------------------------------------------------------------------------------

    def save(self, change: Change) -> Path:
        """Write the change; returns the backup of the previous version.

        Raises Denied without policy.modify, PolicyChanged when the file changed on disk since
        it was loaded (nothing is written: reload, then make the change again).
        """
        decision = self.policy.global_decision(self.identity, self.today)
        params = {"path": str(self.path), "summary": change.summary, "old_sha256": self.digest,
                  "new_sha256": hashlib.sha256(change.new_text.encode("utf-8")).hexdigest()}
        if change.old_text != self.text:
            raise PolicyChanged("This change was made against an older version of the policy: "
                                "make it again.")
        if not decision.allows(ACTION):
            self.audit.decided(self.identity, ACTION, "", "", "", params, False, decision.explain(ACTION))
            raise Denied(f"{self.identity.name} may not change the policy: no grant gives "
                         "policy.modify.")
        lock = FileLock(self.path.with_name(f".{self.path.name}.lock"), timeout=_LOCK_WAIT_SECONDS)
        try:
            held = lock.acquire()  # serialises savers of this policy, other consoles too
        except OSError as error:  # filelock.Timeout included
            raise PolicyError([Problem(str(self.path), None, "the policy could not be locked for "
                                       f"saving ({error.strerror or error}); nothing was "
                                       "written.")]) from None
        with held:
            on_disk = hashlib.sha256(self.path.read_bytes()).hexdigest()
            if on_disk != self.digest:
                raise PolicyChanged(f"{self.path} was changed by someone else since it was loaded;"
                                    " nothing was written. Reload it and make the change again.")
            correlation = self.audit.decided(self.identity, ACTION, "", "", "", params, True,
                                             decision.explain(ACTION))
            try:
                backup = self._write(change.new_text)
            except OSError as error:
                self.audit.outcome(correlation, self.identity, ACTION, "", "", "", "failed",
                                   str(error))
                raise PolicyError([Problem(str(self.path), None, "the policy could not be "
                                           f"written: {error.strerror or error}.")]) from None
            self.audit.outcome(correlation, self.identity, ACTION, "", "", "", "ok")
        self.reload()
        return backup

    def _write(self, text: str) -> Path:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        backup = self.path.with_name(f"{self.path.name}.{stamp}.bak")
        shutil.copy2(self.path, backup)
        fd, temporary = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(text.encode("utf-8"))
                out.flush()
                os.fsync(out.fileno())
            shutil.copymode(self.path, temporary)
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        return backup


# --- tomlkit ---------------------------------------------------------------------------------
# tomlkit files the blank lines and comments after a table's last key under that table, though
# they introduce what follows it; these keep them in place when tables come and go.

def _new_table(values: Mapping[str, Any]) -> Table:
    table = tomlkit.table()
    table.update(values)
    return table


def _update(table: Item, values: Mapping[str, Any]) -> None:
    """Make `table` hold `values`: a changed key keeps its place and its comment, an unchanged one
    is not touched (its quoting stays), a new one comes after the last key."""
    if not isinstance(table, Table | InlineTable):
        raise TypeError(f"not a table: {table!r}")
    tail = _take_trail(table) if isinstance(table, Table) else ""
    for key in [k for k in table if k not in values]:
        del table[key]
    for key, value in values.items():
        if key not in table or table[key] != value:
            table[key] = value
    if isinstance(table, Table):
        _put_trail(table, tail)


def _add_after(last: Table, new: Table) -> None:
    """Prepare `new` to follow `last`: what came after `last` now comes after `new`, and one blank
    line separates the two."""
    _put_trail(new, _take_trail(last))
    _put_trail(last, "\n")


def _remove(doc: tomlkit.TOMLDocument, table: Table, blank_before: bool) -> None:
    """Before `table` is deleted: move the blank lines and comments after it to where they will
    still come after what precedes it, with one blank line fewer where two would meet."""
    tail = _take_trail(table)
    tables = list(_tables(doc.body))
    at = next(n for n, t in enumerate(tables) if t is table)
    if at + 1 < len(tables):  # before the next table's header
        following = tables[at + 1]
        if blank_before and _starts_blank(tail):
            tail = "".join(tail.splitlines(keepends=True)[1:])
        following.trivia.indent = tail + following.trivia.indent
    elif at > 0:  # the last table: at the end of the one before
        preceding = tables[at - 1]
        _put_trail(preceding, _join(_take_trail(preceding), tail))
    else:  # the only table
        doc.body.extend(tomlkit.parse(tail).body)


def _tables(body: list[tuple[Key | None, Item]]) -> Iterator[Table]:
    """The tables written with a header, in the order of the text."""
    for _, item in body:
        tables = item.body if isinstance(item, AoT) else [item] if isinstance(item, Table) else []
        for table in tables:
            if not table.is_super_table():
                yield table
            yield from _tables(table.value.body)


def _take_trail(table: Table) -> str:
    """Take the blank lines and comments after a table's last key out of it."""
    body = table.value.body
    out = []
    while body and body[-1][0] is None and isinstance(body[-1][1], Whitespace | Comment | Null):
        out.append(body.pop()[1].as_string())
    return "".join(reversed(out))


def _put_trail(table: Table, text: str) -> None:
    """Blank lines and comments after a table's last key (parsed: keyless items, no values)."""
    table.value.body.extend(tomlkit.parse(text).body)


def _join(before: str, after: str) -> str:
    """Two runs of blank lines and comments made one: one blank line fewer where they meet,
    and none at the end of the file."""
    lines = before.splitlines(keepends=True)
    if lines and not lines[-1].strip() and (not after or _starts_blank(after)):
        lines.pop()
    return "".join(lines) + after


def _starts_blank(text: str) -> bool:
    return bool(text) and not text.splitlines()[0].strip()

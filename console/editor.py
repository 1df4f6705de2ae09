"""Editing the delegation policy, for holders of policy.modify.

Edits change the TOML text surgically (a [[grants]] block appended or removed by its lines, one
VM's documentation replaced), so comments and layout elsewhere survive. Every change is validated
as a whole with the loader's own rules, shown as a unified diff, and saved atomically (a temporary
file in the same folder, then os.replace) after a backup of the previous version, with an audit
record before and after. A file changed on disk since it was loaded is never overwritten.
"""
from __future__ import annotations

import contextlib
import difflib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import tomli_w
from filelock import FileLock

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
        text = self.text.rstrip("\n") + "\n\n" + _grant_block(grant)
        return self._change(f"add grant: {grant.effect} {grant.principal} → {grant.role} on "
                            f"{grant.scope} {grant.value}".rstrip(), text)

    def remove_grant(self, grant: Grant) -> Change:
        start, end = self._block(grant.line)
        return self._change(f"remove grant on line {grant.line}: {grant.principal.name} → "
                            f"{grant.role} on {grant.scope.describe(self.policy.vms)}",
                            self._splice(start, end, ""))

    def replace_grant(self, grant: Grant, new: NewGrant) -> Change:
        start, end = self._block(grant.line)
        return self._change(f"change grant on line {grant.line}: {new.principal} → {new.role} "
                            f"on {new.scope} {new.value}".rstrip(),
                            self._splice(start, end, _grant_block(new)))

    def set_vm_doc(self, vm_id: str, fields: Mapping[str, Any]) -> Change:
        """Document a VM, or replace its documentation; empty fields are left out."""
        normalized = normalize_vm_id(vm_id)
        if normalized is None:
            raise PolicyError([Problem(str(self.path), None, f"'{vm_id}' is not a VM id (a GUID).")])
        unknown = set(fields) - set(_VM_FIELDS)
        if unknown:
            raise PolicyError([Problem(str(self.path), None, "unknown VM documentation field(s): "
                                       + ", ".join(sorted(unknown)) + ".")])
        table = {k: (list(v) if k == "tags" else v) for k in _VM_FIELDS
                 if (v := fields.get(k))}
        block = f'[vms."{normalized}"]\n' + tomli_w.dumps(table)
        doc = self.policy.doc(normalized)
        name = table.get("name", normalized)
        if doc is None:
            # Beside the other VM descriptions, or at the end when there are none.
            last = max((d.line or 0 for d in self.policy.vms.values()), default=0)
            if not last:
                return self._change(f"document VM {name}", self.text.rstrip("\n") + "\n\n" + block)
            _, end = self._block(last)
            return self._change(f"document VM {name}", self._splice(end, end, "\n" + block))
        start, end = self._block(doc.line)
        return self._change(f"change documentation of VM {name}", self._splice(start, end, block))

    def remove_vm_doc(self, vm_id: str) -> Change:
        doc = self.policy.doc(vm_id)
        if doc is None:
            raise PolicyError([Problem(str(self.path), None, f"VM {vm_id} is not documented.")])
        start, end = self._block(doc.line)
        return self._change(f"remove documentation of VM {doc.name}", self._splice(start, end, ""))

    def _change(self, summary: str, text: str) -> Change:
        # The same rules as `policy check`: a change that leaves the policy invalid is refused.
        return Change(summary, self.text, text, Policy.from_text(text, str(self.path)))

    def _block(self, line: int | None) -> tuple[int, int]:
        """The 0-based [start, end) lines of the table whose header is on `line`: up to the next
        header, less the blank lines and comments that introduce what follows."""
        lines = self.text.splitlines()
        if line is None or not 1 <= line <= len(lines) or not lines[line - 1].lstrip().startswith("["):
            raise PolicyError([Problem(str(self.path), line, "this entry cannot be found in the "
                                       "file any more; reload the policy.")])
        end = line
        quote: str | None = None
        while end < len(lines):
            stripped = lines[end].strip()
            if quote is None and stripped.startswith("["):
                break
            for q in ('"""', "'''"):
                if stripped.count(q) % 2 == 1:
                    quote = None if quote == q else quote or q
            end += 1
        while end > line and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith("#")):
            end -= 1
        return line - 1, end

    def _splice(self, start: int, end: int, block: str) -> str:
        lines = self.text.splitlines(keepends=True)
        if not block:
            # Drop one blank line that separated the removed block from what precedes it.
            if start > 0 and not lines[start - 1].strip() and (end >= len(lines) or not lines[end].strip()):
                start -= 1
            return "".join(lines[:start] + lines[end:])
        return "".join(lines[:start]) + block + "".join(lines[end:])

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


def _grant_block(grant: NewGrant) -> str:
    return "[[grants]]\n" + tomli_w.dumps(grant.table())

"""The delegation policy: roles, grants, VM documentation and hosts, read from one TOML file.

A grant gives a principal (an AD group or user, decided by its SID) a role on a scope; an explicit
deny beats every allow. Loading checks the whole file and fails as a whole with every problem
(file, line, sentence): a policy with errors is never half-applied. The format is described in
docs/policy.md.

Evaluation is the hot path (every VM of every host, on each refresh): grants are indexed by SID,
then by scope, once per identity; role privileges are resolved at load; VMs matched by the same
grants share one result.
"""
from __future__ import annotations

import difflib
import hashlib
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol, TypeVar

from .errors import PolicyError, Problem
from .identity import WELL_KNOWN_LOGON_SIDS, Identity

VM_PRIVILEGES: tuple[str, ...] = (
    "vm.view", "vm.start", "vm.shutdown", "vm.turnoff", "vm.reset", "vm.save",
    "vm.checkpoint.create", "vm.checkpoint.delete", "vm.checkpoint.apply", "vm.media",
    "vm.console",
)
GLOBAL_PRIVILEGES: tuple[str, ...] = ("policy.read", "policy.modify", "audit.read")
PRIVILEGES: tuple[str, ...] = VM_PRIVILEGES + GLOBAL_PRIVILEGES
_VM_PRIVILEGE_SET = frozenset(VM_PRIVILEGES)
_GLOBAL_PRIVILEGE_SET = frozenset(GLOBAL_PRIVILEGES)

_HELPDESK = frozenset({"vm.view", "vm.start", "vm.shutdown", "vm.reset"})
# vm.console: the VM's screen, keyboard and mouse (Grant-VMConnectAccess on that VM only): what an
# owner needs to install from a mounted ISO; helpdesk staff restart, they do not log on to guests.
_OPERATOR = _HELPDESK | {"vm.turnoff", "vm.save", "vm.media", "vm.console"}
_OWNER = _OPERATOR | {"vm.checkpoint.create", "vm.checkpoint.delete", "vm.checkpoint.apply"}
BUILTIN_ROLES: dict[str, frozenset[str]] = {
    "viewer": frozenset({"vm.view"}),
    "helpdesk": _HELPDESK,
    "operator": _OPERATOR,
    "owner": _OWNER,
    "reviewer": frozenset({"vm.view", "policy.read", "audit.read"}),
    "admin": frozenset(PRIVILEGES),
}

CLASSIFICATIONS: tuple[str, ...] = ("public", "internal", "confidential", "restricted")
SCOPE_KINDS: tuple[str, ...] = ("everything", "host", "cluster", "vm", "application", "tag")
EFFECTS: tuple[str, ...] = ("allow", "deny")

# How an explanation names each privilege: "<who> may <verb> <VM>".
VERBS: dict[str, str] = {
    "vm.view": "view", "vm.start": "start", "vm.shutdown": "shut down",
    "vm.turnoff": "turn off", "vm.reset": "reset", "vm.save": "save or pause",
    "vm.checkpoint.create": "create checkpoints of", "vm.checkpoint.delete":
    "delete checkpoints of", "vm.checkpoint.apply": "apply checkpoints to",
    "vm.media": "mount media on", "vm.console": "connect to the console of",
    "policy.read": "read the policy",
    "policy.modify": "change the policy", "audit.read": "read the audit trail",
}

_SID = re.compile(r"^S-1-(\d{1,15})((?:-\d{1,10}){0,15})$", re.IGNORECASE)
_GUID = re.compile(r"^\{?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\}?$",
                   re.IGNORECASE)


def classification_rank(name: str) -> int:
    """public 0 < internal 1 < confidential 2 < restricted 3; ValueError for anything else."""
    try:
        return CLASSIFICATIONS.index(name.lower())
    except ValueError:
        raise ValueError(f"unknown classification {name!r}") from None


def normalize_sid(text: str) -> str | None:
    """The SID in canonical form (upper-case S), or None when the text is not a SID."""
    match = _SID.match(text.strip())
    if not match or any(int(part) > 0xFFFFFFFF for part in match.group(2).split("-")[1:]):
        return None
    return "S-1-" + match.group(1) + match.group(2)


def normalize_vm_id(text: str) -> str | None:
    """The VM id as Hyper-V reports it (lower case, no braces), or None when not a GUID."""
    match = _GUID.match(text.strip())
    return match.group(1).lower() if match else None


# --- values -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Principal:
    name: str  # DOMAIN\name as written in the policy; for people and to detect a re-used name
    sid: str  # decides: a re-created group with the same name has a new SID

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Scope:
    kind: str  # one of SCOPE_KINDS
    value: str = ""  # host/cluster name, VM id (or name when by_name), application, tag
    by_name: bool = False  # a VM named by its name: matched case-insensitively, a review finding
    host: str | None = None  # narrows a VM scope to one host (or cluster)

    def matches_host(self, host: str, cluster: str | None) -> bool:
        if self.host is None:
            return True
        wanted = self.host.lower()
        return wanted == host.lower() or (cluster is not None and wanted == cluster.lower())

    def describe(self, docs: Mapping[str, VMDoc] | None = None) -> str:
        where = f" on host {self.host}" if self.host else ""
        if self.kind == "everything":
            return "everything"
        if self.kind == "vm" and self.by_name:
            return f"the VM named '{self.value}'{where}"
        if self.kind == "vm":
            doc = (docs or {}).get(self.value)
            return f"VM {doc.name} ({self.value}){where}" if doc else f"VM {self.value}{where}"
        if self.kind in ("host", "cluster"):
            return f"{self.kind} {self.value}"
        return f"{self.kind} '{self.value}'"


@dataclass(frozen=True)
class Grant:
    principal: Principal
    role: str
    scope: Scope
    effect: str = "allow"  # "allow" or "deny"
    note: str = ""
    expires: date | None = None  # valid through this day; grants nothing afterwards
    line: int | None = None

    @property
    def is_deny(self) -> bool:
        return self.effect == "deny"

    def active(self, today: date) -> bool:
        return self.expires is None or today <= self.expires


@dataclass(frozen=True)
class Role:
    name: str
    privileges: frozenset[str]  # resolved: its own plus those of every role it extends
    declared: frozenset[str] = frozenset()
    extends: tuple[str, ...] = ()
    description: str = ""
    builtin: bool = False
    line: int | None = None


@dataclass(frozen=True)
class VMDoc:
    vm_id: str
    name: str  # for people; the id decides
    owner: str = ""
    contact: str = ""
    classification: str = ""
    application: str = ""
    tier: str = ""
    tags: tuple[str, ...] = ()
    notes: str = ""
    line: int | None = None


@dataclass(frozen=True)
class HostEntry:
    name: str
    classification: str
    iso_library: tuple[str, ...] = ()
    contact: str = ""
    cluster: str | None = None
    line: int | None = None


@dataclass(frozen=True)
class Target:
    """A VM to evaluate when no inventory VM is at hand (the CLI, the JEA generator, reviews)."""

    host: str
    vm_id: str
    name: str = ""
    cluster: str | None = None

    @property
    def id(self) -> str:  # the same attribute as console.inventory.VM
        return self.vm_id


class VMLike(Protocol):
    @property
    def host(self) -> str: ...
    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def cluster(self) -> str | None: ...


_VM = TypeVar("_VM", bound=VMLike)  # visible() gives back the caller's own VM type


@dataclass(frozen=True)
class Reason:
    """One grant that matched, and through which SID of the identity."""

    grant: Grant
    via_sid: str
    via_name: str
    nested: bool = False  # the SID is a group reached through another group

    def describe(self, self_sid: str, docs: Mapping[str, VMDoc] | None = None) -> str:
        if self.via_sid == self_sid:
            who = f"as {self.via_name}"
        else:
            who = f"member of {self.via_name}" + (" (nested group)" if self.nested else "")
        verb = "deny role" if self.grant.is_deny else "role"
        expiry = f" until {self.grant.expires.isoformat()}" if self.grant.expires else ""
        return f"{who} → {verb} {self.grant.role} on {self.grant.scope.describe(docs)}{expiry}"


@dataclass(frozen=True)
class Decision:
    """What one identity may do on one VM (or globally), and the grants behind each privilege."""

    subject: str  # the person, for sentences
    target: str  # the VM's name, or "" for global privileges
    self_sid: str
    privileges: frozenset[str]
    allowed_by: Mapping[str, tuple[Reason, ...]]  # every allow that gave the privilege
    denied_by: Mapping[str, tuple[Reason, ...]]  # every deny that matched, per privilege
    docs: Mapping[str, VMDoc] = field(default_factory=dict, repr=False, compare=False)

    def allows(self, privilege: str) -> bool:
        return privilege in self.privileges

    def reasons(self, privilege: str) -> tuple[Reason, ...]:
        """The grants that decide: the denies when denied, else the allows (empty: no grant)."""
        return self.denied_by.get(privilege) or self.allowed_by.get(privilege, ())

    def explain(self, privilege: str | None = None) -> str:
        """Sentences, one per line: why each privilege is held or refused.

        Without a privilege: every held privilege and every denied one, in vocabulary order.
        """
        if privilege is not None:
            return "\n".join(self._sentences(privilege))
        wanted = [p for p in PRIVILEGES if p in self.privileges or p in self.denied_by]
        if not wanted:
            return f"{self.subject} holds no privilege{self._on()}: no grant matches."
        return "\n".join(line for p in wanted for line in self._sentences(p))

    def _on(self) -> str:
        return f" on {self.target}" if self.target else ""

    def _sentences(self, privilege: str) -> list[str]:
        action = VERBS.get(privilege, privilege)
        target = f" {self.target}" if self.target and privilege in _VM_PRIVILEGE_SET else ""
        if privilege in self.privileges:
            head = f"{self.subject} may {action}{target}"
            return [f"{head}: {r.describe(self.self_sid, self.docs)}"
                    for r in self.allowed_by[privilege]]
        head = f"{self.subject} may not {action}{target}"
        if privilege in self.denied_by:
            return [f"{head}: {r.describe(self.self_sid, self.docs)}"
                    for r in self.denied_by[privilege]]
        return [f"{head}: no grant gives it."]


# --- the policy -------------------------------------------------------------------------------

_Result = tuple[frozenset[str], Mapping[str, tuple[Reason, ...]], Mapping[str, tuple[Reason, ...]]]


@dataclass(frozen=True)
class _Hit:
    grant: Grant
    reason: Reason
    privileges: frozenset[str]


class _Index:
    """The active grants of one identity, keyed by scope; built once per identity and day.

    Positions refer to `hits`; one dictionary per scope kind keeps the per-VM look-ups cheap.
    """

    def __init__(self, hits: list[_Hit], subject: str, self_sid: str) -> None:
        self.hits = hits
        self.subject = subject
        self.self_sid = self_sid
        self.everything: list[int] = []
        self.by_kind: dict[str, dict[str, list[int]]] = {
            kind: {} for kind in ("host", "cluster", "vm", "vm_name", "application", "tag")}
        self.narrowed: set[int] = set()  # VM scopes narrowed to a host
        for position, hit in enumerate(hits):
            scope = hit.grant.scope
            if scope.kind == "everything":
                self.everything.append(position)
                continue
            kind = "vm_name" if scope.by_name else scope.kind
            # Host, cluster and VM names ignore case (as Hyper-V's do); ids are lower case already.
            value = scope.value.lower() if kind in ("host", "cluster", "vm_name") else scope.value
            self.by_kind[kind].setdefault(value, []).append(position)
            if scope.host is not None:
                self.narrowed.add(position)
        self.needs_doc = bool(self.by_kind["application"] or self.by_kind["tag"])
        self.results: dict[tuple[int, ...], _Result] = {}


class Policy:
    """A loaded, valid policy. Build it with load() or from_text(); it never changes."""

    def __init__(self, *, roles: Mapping[str, Role] | None = None, grants: Iterable[Grant] = (),
                 vms: Iterable[VMDoc] = (), hosts: Iterable[HostEntry] = (),
                 path: Path | None = None, digest: str = "") -> None:
        all_roles = {name: Role(name, privs, privs, builtin=True)
                     for name, privs in BUILTIN_ROLES.items()}
        all_roles.update(roles or {})
        self.roles: dict[str, Role] = all_roles
        self.grants: tuple[Grant, ...] = tuple(grants)
        self.vms: dict[str, VMDoc] = {doc.vm_id: doc for doc in vms}
        self.hosts: dict[str, HostEntry] = {h.name.lower(): h for h in hosts}
        self.path = path
        self.digest = digest
        self._by_sid: dict[str, list[Grant]] = {}
        for grant in self.grants:
            self._by_sid.setdefault(grant.principal.sid, []).append(grant)
        self._cache: tuple[tuple[frozenset[str], str, date], _Index] | None = None

    # --- loading ---

    @classmethod
    def load(cls, path: str | Path) -> Policy:
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as error:
            reason = error.strerror or str(error)
            problem = Problem(str(path), None, f"the policy file cannot be read: {reason}.")
            raise PolicyError([problem]) from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as error:
            line = data[:error.start].count(b"\n") + 1
            problem = Problem(str(path), line, "the policy file is not UTF-8 text.")
            raise PolicyError([problem]) from None
        return cls.from_text(text, str(path), _digest=hashlib.sha256(data).hexdigest(), _path=path)

    @classmethod
    def from_text(cls, text: str, filename: str = "<policy>", *, _digest: str | None = None,
                  _path: Path | None = None) -> Policy:
        parsed = _Parser(text, filename).parse()
        return cls(**parsed, path=_path,
                   digest=_digest or hashlib.sha256(text.encode("utf-8")).hexdigest())

    # --- look-ups ---

    def doc(self, vm_id: str) -> VMDoc | None:
        return self.vms.get(vm_id.lower())

    def host(self, name: str) -> HostEntry | None:
        return self.hosts.get(name.lower())

    def role_privileges(self, role: str) -> frozenset[str]:
        found = self.roles.get(role)
        return found.privileges if found else frozenset()

    def active_grants(self, today: date | None = None) -> list[Grant]:
        today = today or date.today()
        return [g for g in self.grants if g.active(today)]

    def sid_of(self, principal_name: str) -> str | None:
        """The SID the grants give a principal name (case-insensitive), or None."""
        wanted = principal_name.lower()
        return next((g.principal.sid for g in self.grants if g.principal.name.lower() == wanted),
                    None)

    def docs_named(self, name: str) -> list[VMDoc]:
        wanted = name.lower()
        return [d for d in self.vms.values() if d.name.lower() == wanted]

    # --- evaluation ---

    def evaluate(self, identity: Identity, vm: VMLike, today: date | None = None) -> Decision:
        """The VM privileges of an identity on one VM, each with the grants that gave it."""
        index = self._index(identity, today)
        return self._decide(identity, index, vm)

    def visible(self, identity: Identity, vms: Iterable[_VM],
                today: date | None = None) -> list[tuple[_VM, Decision]]:
        """The VMs the identity may view, in the order given, each with its decision."""
        index = self._index(identity, today)
        out = []
        for vm in vms:
            decision = self._decide(identity, index, vm)
            if "vm.view" in decision.privileges:
                out.append((vm, decision))
        return out

    def global_decision(self, identity: Identity, today: date | None = None) -> Decision:
        """policy.read, policy.modify, audit.read: only grants with scope everything give them."""
        index = self._index(identity, today)
        privileges, allowed, denied = self._combine(index, tuple(index.everything),
                                                    _GLOBAL_PRIVILEGE_SET)
        return Decision(index.subject, "", index.self_sid, privileges, allowed, denied, self.vms)

    def _index(self, identity: Identity, today: date | None) -> _Index:
        today = today or date.today()
        sids = identity.sids
        key = (sids, identity.sid, today)
        # The memo (`# pragma: no mutate`): a mutant there only computes the index again.
        cached = self._cache  # pragma: no mutate
        if cached is not None and cached[0] == key:  # pragma: no mutate
            return cached[1]
        hits: list[_Hit] = []
        for sid in sids:
            group = identity.group(sid)
            for grant in self._by_sid.get(sid, ()):
                if grant.active(today):
                    reason = Reason(grant, sid, identity.name_of(sid),
                                    bool(group and group.nested))
                    hits.append(_Hit(grant, reason, self.role_privileges(grant.role)))
        hits.sort(key=lambda h: (h.grant.line or 0))
        index = _Index(hits, identity.sam_account_name, identity.sid)
        self._cache = (key, index)  # pragma: no mutate
        return index

    def _decide(self, identity: Identity, index: _Index, vm: VMLike) -> Decision:
        host, cluster, vm_id, name = vm.host, vm.cluster, vm.id, vm.name
        by_kind = index.by_kind
        found = index.everything + by_kind["host"].get(host.lower(), [])
        found += by_kind["vm"].get(vm_id, ())
        if cluster:
            found += by_kind["cluster"].get(cluster.lower(), ())
        if name:
            found += by_kind["vm_name"].get(name.lower(), ())
        if index.needs_doc:
            doc = self.vms.get(vm_id)
            if doc is not None:
                if doc.application:
                    found += by_kind["application"].get(doc.application, ())
                for tag in doc.tags:
                    found += by_kind["tag"].get(tag, ())
        if index.narrowed:
            hits = index.hits
            found = [p for p in found if p not in index.narrowed
                     or hits[p].grant.scope.matches_host(host, cluster)]
        found.sort()
        privileges, allowed, denied = self._combine(index, tuple(found), _VM_PRIVILEGE_SET)
        return Decision(index.subject, name or vm_id, index.self_sid, privileges, allowed,
                        denied, self.vms)

    @staticmethod
    def _combine(index: _Index, positions: tuple[int, ...],
                 universe: frozenset[str]) -> _Result:
        # VMs matched by the same grants share one result (most VMs of a host do). The memo
        # lines are not mutated: a mutant there only computes the result again.
        cache_key = positions + ((-1,) if universe is _GLOBAL_PRIVILEGE_SET else ())  # pragma: no mutate
        cached = index.results.get(cache_key)  # pragma: no mutate
        if cached is not None:
            return cached
        allowed: dict[str, list[Reason]] = {}
        denied: dict[str, list[Reason]] = {}
        for position in positions:
            hit = index.hits[position]
            target = denied if hit.grant.is_deny else allowed
            for privilege in hit.privileges & universe:
                target.setdefault(privilege, []).append(hit.reason)
        privileges = frozenset(allowed) - frozenset(denied)
        # Read-only views: one result is shared by every VM the same grants match.
        result = (privileges,
                  MappingProxyType({p: tuple(r) for p, r in allowed.items() if p in privileges}),
                  MappingProxyType({p: tuple(r) for p, r in denied.items()}))
        index.results[cache_key] = result  # pragma: no mutate
        return result

    def summary(self) -> str:
        custom = sum(1 for r in self.roles.values() if not r.builtin)
        return (f"{len(self.grants)} grants, {custom} custom roles, {len(self.vms)} VMs documented,"
                f" {len(self.hosts)} hosts; sha256 {self.digest[:16]}")


# --- parsing and validation -------------------------------------------------------------------

_TOP_KEYS = ("roles", "grants", "vms", "hosts")
_ROLE_KEYS = ("privileges", "extends", "description")
_GRANT_SCOPE_KEYS = ("everything", "host", "cluster", "vm", "vm_name", "application", "tag")
_GRANT_KEYS = ("principal", "sid", "role", "effect", "note", "expires") + _GRANT_SCOPE_KEYS
_VM_KEYS = ("name", "owner", "contact", "classification", "application", "tier", "tags", "notes")
_HOST_KEYS = ("classification", "iso_library", "contact", "cluster")


class _Lines:
    """Where each table and key sits in the text: tomllib gives no line numbers for values.

    Headers and keys are parsed with tomllib itself, so quoting and dotted keys resolve exactly
    as the loader resolves them; multi-line strings are skipped.
    """

    def __init__(self, text: str) -> None:
        self.at: dict[tuple[Any, ...], int] = {}
        table: tuple[Any, ...] = ()
        arrays: dict[tuple[Any, ...], int] = {}
        in_string: str | None = None
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if in_string:
                if line.count(in_string) % 2 == 1:
                    in_string = None
                continue
            if not line or line.startswith("#"):
                continue
            if line.startswith("["):
                path = _header_path(line)
                if path is None:
                    continue
                if line.startswith("[["):
                    arrays[path] = arrays.get(path, -1) + 1
                    table = path + (arrays[path],)
                else:
                    table = path
                self.at.setdefault(table, number)
                continue
            key = _key_path(line)
            if key is not None:
                self.at.setdefault(table + key, number)
                for quote in ('"""', "'''"):
                    if line.count(quote) % 2 == 1:
                        in_string = quote

    def line(self, *path: Any) -> int | None:
        """The line of the path, or of its nearest enclosing table or key."""
        while path:
            if path in self.at:
                return self.at[path]
            path = path[:-1]
        return None


def _header_path(line: str) -> tuple[Any, ...] | None:
    end = line.find("]]") + 2 if line.startswith("[[") else line.find("]") + 1
    try:
        node: Any = tomllib.loads(line[:end] if end > 0 else line)
    except tomllib.TOMLDecodeError:
        return None
    path: list[Any] = []
    while isinstance(node, (dict, list)) and node:
        if isinstance(node, list):
            node = node[-1]
            continue
        key = next(iter(node))
        path.append(key)
        node = node[key]
    return tuple(path)


def _key_path(line: str) -> tuple[Any, ...] | None:
    # The key is everything before the first '=' outside quotes.
    quote = None
    for position, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "=":
            try:
                node: Any = tomllib.loads(line[:position] + "= 0")
            except tomllib.TOMLDecodeError:
                return None
            path = []
            while isinstance(node, dict):
                key = next(iter(node))
                path.append(key)
                node = node[key]
            return tuple(path)
    return None


def _hint(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _listing(items: Iterable[str]) -> str:
    return ", ".join(items)


class _Parser:
    def __init__(self, text: str, filename: str) -> None:
        self.text = text
        self.file = filename
        self.problems: list[Problem] = []
        self.lines = _Lines(text)

    def problem(self, line: int | None, message: str) -> None:
        self.problems.append(Problem(self.file, line, message))

    def parse(self) -> dict[str, Any]:
        try:
            data = tomllib.loads(self.text)
        except tomllib.TOMLDecodeError as error:
            raise PolicyError([self._toml_problem(error)]) from None
        for key in data:
            if key not in _TOP_KEYS:
                self.problem(self.lines.line(key), f"unknown key '{key}'{_hint(key, _TOP_KEYS)}:"
                             f" a policy holds only {_listing(_TOP_KEYS)}.")
        roles = self._tables(data, "roles")
        hosts = self._hosts(self._tables(data, "hosts"))
        vms = self._vms(self._tables(data, "vms"))
        resolved = self._roles(roles)
        grants = self._grants(data.get("grants", []), resolved, hosts, vms)
        if self.problems:
            self.problems.sort(key=lambda p: (p.line is None, p.line or 0))
            raise PolicyError(self.problems)
        return {"roles": resolved, "grants": grants, "vms": vms, "hosts": hosts}

    def _toml_problem(self, error: tomllib.TOMLDecodeError) -> Problem:
        message = str(error)
        match = re.search(r"\s*\(at line (\d+), column \d+\)$", message)
        if match:
            line: int | None = int(match.group(1))
            message = message[:match.start()]
        else:
            line = max(1, len(self.text.splitlines())) if "end of document" in message else None
            message = re.sub(r"\s*\(at end of document\)$", " at the end of the file", message)
        return Problem(self.file, line, f"the file is not valid TOML: {message}.")

    def _tables(self, data: dict[str, Any], key: str) -> dict[str, dict[str, Any]]:
        section = data.get(key, {})
        if not isinstance(section, dict):
            self.problem(self.lines.line(key), f"'{key}' must be a table of tables, such as "
                         f"[{key}.NAME].")
            return {}
        out = {}
        for name, value in section.items():
            if isinstance(value, dict):
                out[name] = value
            else:
                self.problem(self.lines.line(key, name),
                             f"'{key}.{name}' must be a table, such as [{key}.\"{name}\"].")
        return out

    # --- typed values ---

    def _unknown_keys(self, table: dict[str, Any], allowed: tuple[str, ...], path: tuple[Any, ...],
                      what: str) -> None:
        for key in table:
            if key not in allowed:
                self.problem(self.lines.line(*path, key),
                             f"unknown key '{key}' in {what}{_hint(key, allowed)}; allowed keys:"
                             f" {_listing(allowed)}.")

    def _text(self, table: dict[str, Any], key: str, path: tuple[Any, ...], what: str,
              required: bool = False) -> str:
        value = table.get(key)
        if value is None:
            if required:
                self.problem(self.lines.line(*path), f"{what} has no '{key}', which is required.")
            return ""
        if not isinstance(value, str) or (required and not value.strip()):
            self.problem(self.lines.line(*path, key),
                         f"'{key}' of {what} must be non-empty text in quotes.")
            return ""
        return value.strip()

    def _text_list(self, table: dict[str, Any], key: str, path: tuple[Any, ...],
                   what: str) -> tuple[str, ...]:
        value = table.get(key, [])
        if isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value):
            return tuple(v.strip() for v in value)
        self.problem(self.lines.line(*path, key),
                     f"'{key}' of {what} must be a list of text, such as {key} = [\"a\", \"b\"].")
        return ()

    def _classification(self, table: dict[str, Any], path: tuple[Any, ...], what: str) -> str:
        value = self._text(table, "classification", path, what, required=True)
        if value and value.lower() not in CLASSIFICATIONS:
            self.problem(self.lines.line(*path, "classification"),
                         f"classification '{value}' of {what} is not one of "
                         f"{_listing(CLASSIFICATIONS)}{_hint(value.lower(), CLASSIFICATIONS)}.")
            return ""
        return value.lower()

    # --- sections ---

    def _roles(self, tables: dict[str, dict[str, Any]]) -> dict[str, Role]:
        declared: dict[str, tuple[frozenset[str], tuple[str, ...], str]] = {}
        for name, table in tables.items():
            path = ("roles", name)
            what = f"role '{name}'"
            if name in BUILTIN_ROLES:
                self.problem(self.lines.line(*path), f"role '{name}' is built in and cannot be "
                             "redefined; give the new role another name.")
                continue
            self._unknown_keys(table, _ROLE_KEYS, path, what)
            privileges = self._text_list(table, "privileges", path, what)
            for privilege in privileges:
                if privilege not in PRIVILEGES:
                    self.problem(self.lines.line(*path, "privileges"),
                                 f"unknown privilege '{privilege}' in {what}"
                                 f"{_hint(privilege, PRIVILEGES)}.")
            extends = self._text_list(table, "extends", path, what)
            if "privileges" not in table and "extends" not in table:
                self.problem(self.lines.line(*path), f"{what} has neither 'privileges' nor "
                             "'extends', so it would grant nothing.")
            description = self._text(table, "description", path, what)
            declared[name] = (frozenset(p for p in privileges if p in PRIVILEGES), extends,
                              description)
        known = set(declared) | set(BUILTIN_ROLES)
        for name, (_, extends, _) in declared.items():
            for parent in extends:
                if parent not in known:
                    self.problem(self.lines.line("roles", name, "extends"),
                                 f"role '{name}' extends unknown role '{parent}'"
                                 f"{_hint(parent, known)}.")
        resolved: dict[str, frozenset[str]] = {n: p for n, p in BUILTIN_ROLES.items()}
        reported: set[str] = set()

        def resolve(name: str, chain: tuple[str, ...]) -> frozenset[str]:
            if name in resolved:
                return resolved[name]
            if name not in declared:
                return frozenset()
            if name in chain:
                cycle = chain[chain.index(name):] + (name,)
                if not reported & set(cycle):
                    reported.update(cycle)
                    self.problem(self.lines.line("roles", cycle[0], "extends"),
                                 f"roles extend each other in a cycle: {' → '.join(cycle)}.")
                return frozenset()
            own, extends, _ = declared[name]
            privileges = own.union(*(resolve(p, chain + (name,)) for p in extends))
            resolved[name] = privileges
            return privileges

        roles = {}
        for name, (own, extends, description) in declared.items():
            roles[name] = Role(name, resolve(name, ()), own, extends, description,
                               line=self.lines.line("roles", name))
        return roles

    def _hosts(self, tables: dict[str, dict[str, Any]]) -> list[HostEntry]:
        hosts: list[HostEntry] = []
        seen: dict[str, str] = {}
        for name, table in tables.items():
            path = ("hosts", name)
            what = f"host '{name}'"
            if name.lower() in seen:
                self.problem(self.lines.line(*path), f"host '{name}' is described twice (also as "
                             f"'{seen[name.lower()]}'; host names ignore case).")
                continue
            seen[name.lower()] = name
            self._unknown_keys(table, _HOST_KEYS, path, what)
            classification = self._classification(table, path, what)
            library = self._text_list(table, "iso_library", path, what)
            for folder in library:
                if not re.match(r"^([A-Za-z]:\\|\\\\[^\\?.][^\\]*\\[^\\]+)", folder):
                    self.problem(self.lines.line(*path, "iso_library"),
                                 f"ISO library folder '{folder}' of {what} must be an absolute "
                                 "Windows path, such as 'D:\\ISO\\' or '\\\\server\\share\\ISO\\'.")
            contact = self._text(table, "contact", path, what)
            cluster = self._text(table, "cluster", path, what) or None
            hosts.append(HostEntry(name, classification, library, contact, cluster,
                                   self.lines.line(*path)))
        return hosts

    def _vms(self, tables: dict[str, dict[str, Any]]) -> list[VMDoc]:
        docs: dict[str, VMDoc] = {}
        for key, table in tables.items():
            path = ("vms", key)
            vm_id = normalize_vm_id(key)
            what = f"VM '{table.get('name') or key}'"
            line = self.lines.line(*path)
            if vm_id is None:
                self.problem(line, f"'{key}' is not a VM id: document a VM under its id (a GUID "
                             "such as [vms.\"42e4aaca-7231-5411-b96b-d03849b0dae1\"]).")
            elif vm_id in docs:
                self.problem(line, f"VM {vm_id} is documented twice (also on line "
                             f"{docs[vm_id].line}); keep one description.")
            self._unknown_keys(table, _VM_KEYS, path, what)
            doc = VMDoc(
                vm_id=vm_id or key, name=self._text(table, "name", path, what, required=True),
                owner=self._text(table, "owner", path, what),
                contact=self._text(table, "contact", path, what),
                classification=self._classification(table, path, what),
                application=self._text(table, "application", path, what),
                tier=self._text(table, "tier", path, what),
                tags=self._text_list(table, "tags", path, what),
                notes=self._text(table, "notes", path, what), line=line)
            docs.setdefault(doc.vm_id, doc)
        return list(docs.values())

    def _grants(self, items: Any, roles: dict[str, Role], hosts: list[HostEntry],
                vms: list[VMDoc]) -> list[Grant]:
        if not isinstance(items, list):
            self.problem(self.lines.line("grants"),
                         "'grants' must be written as [[grants]] tables.")
            return []
        host_names = {h.name.lower() for h in hosts}
        clusters = {h.cluster.lower() for h in hosts if h.cluster}
        applications = {d.application for d in vms if d.application}
        tags = {t for d in vms for t in d.tags}
        role_names = set(BUILTIN_ROLES) | set(roles)
        grants: list[Grant] = []
        names_by_sid: dict[str, tuple[str, int | None]] = {}
        sids_by_name: dict[str, tuple[str, int | None]] = {}
        for number, table in enumerate(items):
            path = ("grants", number)
            line = self.lines.line(*path)
            what = f"the grant on line {line}" if line else f"grant {number + 1}"
            if not isinstance(table, dict):
                self.problem(line, f"{what} must be a [[grants]] table.")
                continue
            self._unknown_keys(table, _GRANT_KEYS, path, what)
            name = self._text(table, "principal", path, what, required=True)
            if name and "\\" not in name and name not in WELL_KNOWN_LOGON_SIDS.values():
                self.problem(self.lines.line(*path, "principal"), f"principal '{name}' of {what}"
                             " must be written DOMAIN\\name, such as 'LAB\\HV-Helpdesk'.")
            sid_text = self._text(table, "sid", path, what, required=True)
            sid = normalize_sid(sid_text) if sid_text else None
            if sid_text and sid is None:
                self.problem(self.lines.line(*path, "sid"), f"'{sid_text}' of {what} is not a SID"
                             " (a SID looks like S-1-5-21-1000-2000-3000-1202).")
            if name and sid:
                self._same_principal(name, sid, line, names_by_sid, sids_by_name)
            role = self._text(table, "role", path, what, required=True)
            if role and role not in role_names:
                self.problem(self.lines.line(*path, "role"), f"{what} names unknown role "
                             f"'{role}'{_hint(role, role_names)}.")
            effect = table.get("effect", "allow")
            if effect not in EFFECTS:
                self.problem(self.lines.line(*path, "effect"), f"effect of {what} must be "
                             f"\"allow\" or \"deny\", not {effect!r}.")
            note = self._text(table, "note", path, what)
            expires = self._expires(table, path, what)
            scope = self._scope(table, path, what, host_names, clusters, applications, tags)
            if name and sid and role and scope and effect in EFFECTS:
                grants.append(Grant(Principal(name, sid), role, scope, effect, note, expires, line))
        return grants

    def _same_principal(self, name: str, sid: str, line: int | None,
                        names_by_sid: dict[str, tuple[str, int | None]],
                        sids_by_name: dict[str, tuple[str, int | None]]) -> None:
        # One SID, one name: a mismatch is a typo or a group re-created under the same name,
        # which must be resolved by a person, never silently re-bound.
        other_name, other_line = names_by_sid.setdefault(sid, (name, line))
        if other_name.lower() != name.lower():
            self.problem(line, f"SID {sid} is named '{name}' here but '{other_name}' on line "
                         f"{other_line}; one SID names one principal.")
        other_sid, other_line = sids_by_name.setdefault(name.lower(), (sid, line))
        if other_sid != sid:
            self.problem(line, f"'{name}' has SID {sid} here but {other_sid} on line "
                         f"{other_line}; check which one the directory holds.")

    def _expires(self, table: dict[str, Any], path: tuple[Any, ...], what: str) -> date | None:
        value = table.get("expires")
        if value is None:
            return None
        line = self.lines.line(*path, "expires")
        if isinstance(value, datetime):
            self.problem(line, f"expires of {what} must be a date (YYYY-MM-DD) without a time.")
            return None
        if isinstance(value, date):
            return value
        if isinstance(value, str):
            try:
                return date.fromisoformat(value.strip())
            except ValueError:
                pass
        self.problem(line, f"expires of {what} is not a valid date: {value!r} "
                     "(write it as 2026-12-31).")
        return None

    def _scope(self, table: dict[str, Any], path: tuple[Any, ...], what: str,
               host_names: set[str], clusters: set[str], applications: set[str],
               tags: set[str]) -> Scope | None:
        given = [k for k in _GRANT_SCOPE_KEYS if k in table]
        narrows_vm = "host" in given and ("vm" in given or "vm_name" in given)
        kinds = [k for k in given if not (narrows_vm and k == "host")]
        if not kinds:
            self.problem(self.lines.line(*path), f"{what} has no scope: give one of everything ="
                         " true, host, cluster, vm, vm_name, application or tag.")
            return None
        if len(kinds) > 1:
            self.problem(self.lines.line(*path, kinds[1]), f"{what} has several scopes "
                         f"({_listing(kinds)}); a grant has one scope, so split it.")
            return None
        kind = kinds[0]
        value = table[kind]
        line = self.lines.line(*path, kind)
        if kind == "everything":
            if value is not True:
                self.problem(line, f"everything of {what} must be true; to narrow the grant, "
                             "name another scope instead.")
                return None
            return Scope("everything")
        if not isinstance(value, str) or not value.strip():
            self.problem(line, f"'{kind}' of {what} must be non-empty text in quotes.")
            return None
        value = value.strip()
        host = None
        if narrows_vm:
            # Narrowed to one host, or to a cluster (docs/policy.md; Scope.matches_host).
            host = self._text(table, "host", path, what)
            if host and host.lower() not in host_names | clusters:
                self.problem(self.lines.line(*path, "host"), f"{what} names host '{host}', which"
                             " is neither in the hosts table nor a cluster of its hosts"
                             + _hint(host.lower(), host_names | clusters) + ".")
        if kind == "host" and value.lower() not in host_names:
            self.problem(line, f"{what} names host '{value}', which is not in the hosts table"
                         f"{_hint(value.lower(), host_names)}.")
        elif kind == "cluster" and value.lower() not in clusters:
            self.problem(line, f"{what} names cluster '{value}', but no host in the hosts table"
                         " belongs to it.")
        elif kind == "application" and value not in applications:
            self.problem(line, f"{what} names application '{value}', but no VM documentation "
                         f"names it{_hint(value, applications)}.")
        elif kind == "tag" and value not in tags:
            self.problem(line, f"{what} names tag '{value}', but no VM documentation carries it"
                         f"{_hint(value, tags)}.")
        elif kind == "vm":
            vm_id = normalize_vm_id(value)
            if vm_id is None:
                self.problem(line, f"vm '{value}' of {what} is not a VM id (a GUID); to name a VM"
                             " by its name, write vm_name instead.")
                return None
            return Scope("vm", vm_id, host=host)
        elif kind == "vm_name":
            return Scope("vm", value, by_name=True, host=host)
        return Scope(kind, value)

"""The demo directory: the accounts of docs/lab-world.md, for the demo and the GUI tests only.

It answers like Active Directory through the same interface as LdapDirectory: the same sentences
and codes (a disabled account is `disabled`, a wrong password and an unknown user are both
`bad_credentials`, another domain than LAB is `foreign_domain`, refused before any password is
checked), tokenGroups-like group lists with nesting and the primary group, and a lockout after
five bad passwords. Passwords are stored as salted scrypt hashes in
resources/lab/directory.toml; the clear passwords are documented for the demo's sign-in dialog.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

from console.directory import (SID_PATTERN, DomainNames, Member, Principal, check_password,
                               checked_account, group_order, parse_username, sign_in_error,
                               well_known)
from console.errors import ConfigError, DirectoryError
from console.identity import Group, Identity
from console.paths import LAB_DATA

DEMO_FILE = LAB_DATA / "directory.toml"
SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def hash_password(password: str, salt: bytes | None = None) -> str:
    """`scrypt$n$r$p$salt$hash` (base64), the form stored in directory.toml."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **SCRYPT)
    b64 = base64.b64encode
    return f"scrypt${SCRYPT['n']}${SCRYPT['r']}${SCRYPT['p']}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r),
                                p=int(p), dklen=len(expected))
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


@dataclass(frozen=True)
class _Account:
    name: str
    rid: int
    display_name: str
    password_hash: str = field(repr=False)
    groups: tuple[str, ...]
    primary_group: str
    enabled: bool
    mail: str


@dataclass(frozen=True)
class _Group:
    name: str
    rid: int
    groups: tuple[str, ...]  # the groups this group is a member of


class LabDirectory:
    """The lab's demo directory, behind the same interface as the real one."""

    demo = True

    def __init__(self, path: Path | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        path = path or DEMO_FILE
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
            self.domain: str = data["domain"]
            self.netbios: str = data["netbios"]
            self.domain_sid: str = data["domain_sid"]
            self.lockout_threshold: int = data.get("lockout_threshold", 5)
            self.lockout_seconds: float = data.get("lockout_minutes", 30) * 60
            self._groups = {g["name"].lower(): _Group(g["name"], g["rid"], tuple(g.get("groups", ())))
                            for g in data["groups"]}
            self._accounts = {u["name"].lower(): _Account(
                u["name"], u["rid"], u.get("display_name", ""), u["password"],
                tuple(u.get("groups", ())), u.get("primary_group", "Domain Users"),
                u.get("enabled", True), u.get("mail", "")) for u in data["users"]}
        except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError) as exc:
            raise ConfigError(f"The demo directory {path} cannot be used: {exc!r}.") from None
        self._clock = clock
        self._lock = threading.Lock()
        self._bad: dict[str, int] = {}
        self._locked_until: dict[str, float] = {}
        # an unknown user costs a hash like a known one, so timing does not tell who exists
        self._dummy_hash = hash_password(secrets.token_hex(8))

    def __repr__(self) -> str:
        return f"LabDirectory(domain={self.domain!r}, demo=True)"

    # -- the Directory interface

    def sign_in(self, username: str, password: str) -> Identity:
        with self.session(username, password) as session:
            return session.identity

    def session(self, username: str, password: str) -> LabSession:
        account = self._authenticate(username, password)
        return LabSession(self, self._identity(account))

    def unlock(self, name: str) -> None:
        with self._lock:
            self._bad.pop(name.lower(), None)
            self._locked_until.pop(name.lower(), None)

    # -- how AD decides: password first (so a wrong one never reveals the account's state)

    def _authenticate(self, username: str, password: str) -> _Account:
        # The domain first, as the real directory does before its bind: CHILD\\adam is never
        # LAB\\adam, and no password is checked (or counted) for another domain's name.
        typed = checked_account(parse_username(username, self.domain),
                                DomainNames(self.domain, self.netbios))
        check_password(password)
        account = self._own_account(typed.netbios, typed.upn, typed.sam)
        good = verify_password(password, account.password_hash if account else self._dummy_hash)
        if account is None:
            raise sign_in_error("525")
        key = account.name.lower()
        with self._lock:
            until = self._locked_until.get(key)
            if until is not None and self._clock() >= until:
                self._locked_until.pop(key)
                self._bad.pop(key, None)
                until = None
            if until is not None:
                raise sign_in_error("775")
            if not good:
                self._bad[key] = self._bad.get(key, 0) + 1
                if self._bad[key] >= self.lockout_threshold:
                    self._locked_until[key] = self._clock() + self.lockout_seconds
                raise sign_in_error("52e")
            self._bad.pop(key, None)
        if not account.enabled:
            raise sign_in_error("533")
        return account

    def _own_account(self, netbios: str, upn: str, sam: str) -> _Account | None:
        if netbios and netbios.lower() != self.netbios.lower():
            return None
        if upn and upn.rpartition("@")[2].lower() != self.domain.lower():
            return None
        return self._accounts.get(sam.lower())

    # -- identities and principals

    def sid(self, rid: int) -> str:
        return f"{self.domain_sid}-{rid}"

    def _dn(self, cn: str) -> str:
        return f"CN={cn},CN=Users," + ",".join(f"DC={p}" for p in self.domain.split("."))

    def _identity(self, account: _Account) -> Identity:
        direct = [*account.groups, account.primary_group]
        groups = {self._groups[g.lower()].name: False for g in direct}
        todo = list(direct)
        while todo:  # transitively, like tokenGroups
            for parent in self._groups[todo.pop().lower()].groups:
                if self._groups[parent.lower()].name not in groups:
                    groups[self._groups[parent.lower()].name] = True
                    todo.append(parent)
        return Identity(
            sid=self.sid(account.rid), name=f"{self.netbios}\\{account.name}",
            display_name=account.display_name, upn=f"{account.name}@{self.domain}",
            dn=self._dn(account.display_name or account.name), mail=account.mail,
            groups=group_order(Group(self.sid(self._groups[g.lower()].rid), f"{self.netbios}\\{g}",
                                     self._dn(g), nested) for g, nested in groups.items()),
            demo=True, extra={"directory": "demo"})

    def principal(self, name_or_sid: str) -> Principal | None:
        text = name_or_sid.strip()
        known = well_known(text)
        if known or not text:
            return known
        if SID_PATTERN.fullmatch(text):
            domain, _, rid = text.upper().rpartition("-")
            if domain != self.domain_sid.upper():
                return None
            account = next((a for a in self._accounts.values() if str(a.rid) == rid), None)
            group = next((g for g in self._groups.values() if str(g.rid) == rid), None)
        else:
            if "@" in text and "\\" not in text:
                sam, _, suffix = text.rpartition("@")
                if suffix.lower() != self.domain.lower():
                    return None
                account, group = self._accounts.get(sam.lower()), None
            else:
                domain, _, sam = text.rpartition("\\")
                if domain and domain.lower() != self.netbios.lower():
                    return None
                account, group = self._accounts.get(sam.lower()), self._groups.get(sam.lower())
        if account:
            return Principal("user", f"{self.netbios}\\{account.name}", self.sid(account.rid),
                             self._dn(account.display_name or account.name),
                             "enabled" if account.enabled else "disabled", account.display_name)
        if group:
            return Principal("group", f"{self.netbios}\\{group.name}", self.sid(group.rid),
                             self._dn(group.name))
        return None

    def members(self, group: str | Principal) -> list[Member]:
        target = group if isinstance(group, Principal) else self.principal(group)
        if target is None:
            raise DirectoryError(f"There is no group {group} in the directory.")
        if target.kind != "group":
            raise DirectoryError(f"{target.name} is not a group of the directory.")
        name = target.name.split("\\", 1)[1].lower()
        inside = {name}  # the group and every group nested in it
        while grown := {g.name.lower() for g in self._groups.values()
                        if g.name.lower() not in inside and _lower(g.groups) & inside}:
            inside |= grown
        objects = [(g.name, _lower(g.groups)) for g in self._groups.values()]
        objects += [(a.name, _lower((*a.groups, a.primary_group))) for a in self._accounts.values()]
        members = [Member(p, nested=name not in parents) for key, parents in objects
                   if key.lower() != name and parents & inside
                   and (p := self.principal(f"{self.netbios}\\{key}")) is not None]
        return sorted(members, key=lambda m: (m.nested, m.principal.name.lower()))


class LabSession:
    """A signed-in session of the demo directory."""

    def __init__(self, directory: LabDirectory, identity: Identity) -> None:
        self.directory = directory
        self._identity = identity

    def __repr__(self) -> str:
        return f"<LabSession {self._identity.name} (demo)>"

    @property
    def identity(self) -> Identity:
        return self._identity

    def resolve(self, principal: str) -> Principal | None:
        return self.directory.principal(principal)

    def members(self, group: str | Principal) -> list[Member]:
        return self.directory.members(group)

    def close(self) -> None:
        pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _lower(names: tuple[str, ...]) -> set[str]:
    return {n.lower() for n in names}

"""Who holds access to each VM's console on the hosts, against who may (the review's part).

A host keeps its own list of who may open each VM's console (Grant-VMConnectAccess's entries,
read with Get-VMConnectAccess: the console_acl operation, Get-HvcConsoleAccess on JEA). Connect
adds the person's entry, and the JEA endpoint takes back the caller's entries where the policy no
longer gives vm.console (when the person connects or signs in again). A person whose every grant
went never comes back to the endpoint, and an administrator may grant access by hand: so the
review holds every entry to the policy, and an entry the policy does not back is a finding.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from .identity import Group, Identity
from .inventory import VM
from .policy import Policy

CONSOLE_PRIVILEGE = "vm.console"


@dataclass(frozen=True)
class ConsoleGrant:
    """What the host answered a grant (or revoke) of console access: the caller as the host's
    token names them, and whether they hold access to the VM's console now."""

    vm_id: str
    name: str
    user: str  # DOMAIN\person, from the token on the host
    sid: str
    granted: bool
    enhanced: bool = False  # the host allows enhanced session mode (Set-VMHost)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ConsoleGrant:
        return cls(vm_id=str(d.get("vm_id") or "").lower(), name=str(d.get("name") or ""),
                   user=str(d.get("user") or ""), sid=str(d.get("sid") or ""),
                   granted=bool(d.get("granted")), enhanced=bool(d.get("enhanced")))


@dataclass(frozen=True)
class ConsoleEntry:
    """One entry of a VM's console access list, as the host reports it."""

    host: str
    vm_id: str
    vm_name: str
    user: str  # as granted: DOMAIN\person (or a SID the host could not name)
    sid: str  # "" when the host could not resolve the name

    @classmethod
    def from_json(cls, host: str, d: Mapping[str, Any]) -> ConsoleEntry:
        return cls(host, str(d.get("vm_id") or "").lower(), str(d.get("vm_name") or ""),
                   str(d.get("user") or ""), str(d.get("sid") or "").upper())


@dataclass(frozen=True)
class ConsoleHolder:
    """An entry and whether the policy gives that account vm.console on that VM."""

    entry: ConsoleEntry
    may: bool
    why: str  # the policy's explanation (its first line)


def identity_of(entry: ConsoleEntry, policy: Policy, directory: Any | None) -> Identity:
    """The account of an entry as a token: its SID, and (with a directory) the policy's groups it
    is a transitive member of; without one, the account alone."""
    if directory is None:
        return Identity(sid=entry.sid, name=entry.user)
    groups = []
    seen: set[str] = set()
    for grant in policy.grants:
        ref = grant.principal
        if ref.sid in seen or ref.sid == entry.sid:
            continue
        seen.add(ref.sid)
        target = directory.resolve(ref.name)
        if target is None or getattr(target, "kind", "") != "group" or target.sid != ref.sid:
            continue
        member = next((m for m in directory.members(target)
                       if m.principal.sid.upper() == entry.sid), None)
        if member is not None:
            groups.append(Group(ref.sid, ref.name, target.dn, member.nested))
    return Identity(sid=entry.sid, name=entry.user, groups=tuple(groups))


def holders(policy: Policy, inventory: Mapping[str, Sequence[VM]],
            acl: Mapping[str, Iterable[ConsoleEntry]], directory: Any | None = None,
            today: date | None = None) -> list[ConsoleHolder]:
    """Every entry of every host read, with whether the policy gives its account vm.console on
    its VM (decided as the console and the JEA endpoint decide: deny beats allow)."""
    out: list[ConsoleHolder] = []
    for host in sorted(acl, key=str.lower):
        vms = {vm.id: vm for vm in inventory.get(host, ())}
        for entry in acl[host]:
            vm = vms.get(entry.vm_id)
            if vm is None or not entry.sid:
                out.append(ConsoleHolder(entry, False, "the host could not name this account"
                                         if not entry.sid else "the VM is not in the inventory"))
                continue
            decision = policy.evaluate(identity_of(entry, policy, directory), vm, today)
            out.append(ConsoleHolder(entry, decision.allows(CONSOLE_PRIVILEGE),
                                     decision.explain(CONSOLE_PRIVILEGE).splitlines()[0]))
    return out

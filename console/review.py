"""Delegation review for administrators: who can do what on which VM and why, the findings an
administrator should act on, and the downtime impact of a host.

Every input is a plain value (the policy, the VMs of each host, the facts of each host, an
optional directory session, today), so a review is computed without I/O and tested the same way.
A principal is evaluated as a token holding that principal alone plus the well-known logon SIDs,
exactly as the policy engine would decide for it.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

from . import documentation
from .audit import HOST_EVENTS_DEFAULT, HostAuditEvent, HostEvents, select_events
from .console_access import ConsoleEntry, ConsoleHolder, holders
from .errors import ConsoleError
from .export import csv_text, html_page, mailto
from .hardening import HostHardening, hardening_findings, patch_findings, summary
from .identity import AUTHENTICATED_USERS, EVERYONE, WELL_KNOWN_LOGON_SIDS, Group, Identity
from .inventory import VM, HostFacts
from .policy import (
    GLOBAL_PRIVILEGES, PRIVILEGES, VM_PRIVILEGES, Decision, Grant, Policy, Target,
    classification_rank,
)

SEVERITIES: tuple[str, ...] = ("high", "medium", "low")
BUILTIN_SID_PREFIX = "S-1-5-32-"
# Groups every account of a domain is in: a grant to them is a grant to everyone.
LARGE_GROUP_SIDS = frozenset({EVERYONE, AUTHENTICATED_USERS, "S-1-5-32-545"})  # + BUILTIN\Users
LARGE_GROUP_RIDS = frozenset({"513", "515"})  # Domain Users, Domain Computers
_EMAIL = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


@dataclass(frozen=True)
class ReviewSettings:
    expiring_within_days: int = 14
    checkpoint_share: float = 0.5  # checkpoint disks above this share of the volume's free space
    min_free_share: float = 0.10  # a host volume with less free space than this share of its size
    max_update_age_days: int = 60  # a host whose newest update is older than this
    powerful_privileges: frozenset[str] = frozenset({
        "vm.turnoff", "vm.checkpoint.apply", "vm.media", "policy.modify"})


# --- values -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Finding:
    kind: str  # a stable token, e.g. "over-broad"
    severity: str  # high, medium or low
    summary: str  # what is wrong, one sentence
    objects: tuple[str, ...]  # the principals, grants, VMs and hosts involved
    fix: str  # how to fix it, one sentence
    line: int | None = None  # line of the policy file, when the finding is about one entry


@dataclass(frozen=True)
class PrincipalRef:
    name: str
    sid: str


@dataclass(frozen=True)
class Permission:
    """What one principal holds on one VM, and why."""

    principal: PrincipalRef
    host: str
    vm_id: str
    vm_name: str
    privileges: tuple[str, ...]  # vocabulary order
    denied: tuple[str, ...]  # privileges a deny takes away
    why: str  # the policy engine's explanation, one sentence a line


@dataclass(frozen=True)
class OtherTier:
    vm_name: str
    vm_id: str
    tier: str
    host: str
    state: str


@dataclass(frozen=True)
class Guest:
    vm: VM
    application: str
    tier: str
    owner: str
    contact: str
    classification: str
    other_tiers: tuple[OtherTier, ...]


@dataclass(frozen=True)
class HostImpact:
    host: str
    guests: tuple[Guest, ...]
    subject: str
    notice: str  # plain text an administrator sends to the owners before maintenance
    addresses: tuple[str, ...]

    @property
    def mailto(self) -> str:
        return mailto(list(self.addresses), self.subject, self.notice)


@dataclass(frozen=True)
class Review:
    today: date
    policy_digest: str
    findings: tuple[Finding, ...]
    permissions: tuple[Permission, ...]
    global_permissions: tuple[Permission, ...]  # policy.read, policy.modify, audit.read
    impacts: tuple[HostImpact, ...]
    settings: ReviewSettings = field(default_factory=ReviewSettings)
    hardening: tuple[HostHardening, ...] = ()  # of the hosts read (with_hardening), by name
    # Who holds access to each VM's console on the hosts read, and whether the policy backs it.
    console_access: tuple[ConsoleHolder, ...] = ()

    def by_vm(self, vm: str) -> list[Permission]:
        """Who can touch a VM (its id or name, names ignore case)."""
        wanted = vm.lower()
        return [p for p in self.permissions if p.privileges and wanted in (p.vm_id, p.vm_name.lower())]

    def by_principal(self, principal: str) -> list[Permission]:
        """What a principal (its name or SID) can do."""
        wanted = principal.lower()
        return [p for p in (*self.global_permissions, *self.permissions) if p.privileges
                and wanted in (p.principal.name.lower(), p.principal.sid.lower())]

    def impact(self, host: str) -> HostImpact | None:
        return next((i for i in self.impacts if i.host.lower() == host.lower()), None)


class Directory(Protocol):
    """The look-ups a review needs: console.directory.DirectorySession offers them."""

    def resolve(self, principal: str) -> Any: ...

    def members(self, group: Any) -> list[Any]: ...


Inventory = Mapping[str, Sequence[VM]]


# --- effective permissions ----------------------------------------------------------------------

@dataclass
class HostsRead:
    """What a review reads from the hosts: each one's VMs and facts, and the hosts that failed."""

    inventory: dict[str, list[VM]]
    facts: dict[str, HostFacts]
    failed: dict[str, ConsoleError]
    # Each host's console access entries (Get-VMConnectAccess), where the host let us read them.
    console_access: dict[str, list[ConsoleEntry]] = field(default_factory=dict)


def holds_grant_on_host(policy: Policy, identity: Identity, host: str, vms: Iterable[VM],
                        today: date | None = None) -> bool:
    """A grant of `identity` on `host` itself (everything, its cluster, the host) or on one of
    its VMs: who may read the host's facts (build, updates, storage, ISO library), as the JEA
    endpoint's Get-HvcHostFacts decides it too."""
    entry = policy.host(host)
    if policy.evaluate(identity, Target(host, "", "", entry.cluster if entry else None),
                       today).privileges:
        return True
    return any(policy.evaluate(identity, vm, today).privileges for vm in vms)


def read_hosts(pool: Any, policy: Policy, identity: Identity) -> HostsRead:
    """Every host's inventory (in parallel, through the pool) and facts: host calls, so a window
    runs this in a worker. A host that fails is left out and named in `failed`. Facts are read
    only of the hosts `identity` holds a grant on (`holds_grant_on_host`)."""
    result = pool.inventory_all()
    failed: dict[str, ConsoleError] = dict(result.errors)
    inventory = {n: list(r.vms) for n, r in result.hosts.items() if r.error is None}
    facts = {}
    for name in inventory:
        if not holds_grant_on_host(policy, identity, name, inventory[name]):
            continue
        entry = policy.host(name)
        try:
            facts[name] = pool.client(name).host_facts(list(entry.iso_library) if entry else [])
        except ConsoleError as error:
            failed[name] = error
    # Who holds console access is read for holders of audit.read, as the hosts answer it.
    consoles = (read_console_access(pool, inventory)
                if policy.global_decision(identity).allows("audit.read") else {})
    return HostsRead(inventory, facts, failed, consoles)


def read_console_access(pool: Any, inventory: Mapping[str, Any]) -> dict[str, list[ConsoleEntry]]:
    """Each host's console access entries: the admin endpoint answers its administrators, the
    JEA endpoint holders of audit.read (Get-HvcConsoleAccess). A host that refuses is left out:
    its entries are not reviewed (the review says which hosts it read)."""
    out: dict[str, list[ConsoleEntry]] = {}
    for name in inventory:
        client = pool.client(name)
        try:
            out[name] = [ConsoleEntry.from_json(name, e) for e in client.console_acl()]
        except (ConsoleError, AttributeError):
            continue
    return out


@dataclass(frozen=True)
class AuditRead:
    """The console's events of every host (console.audit.HostAuditEvent), newest first."""

    events: tuple[HostAuditEvent, ...]
    read: tuple[str, ...]  # the hosts that answered
    failed: dict[str, ConsoleError]  # the hosts that did not, and why
    truncated: tuple[str, ...] = ()  # hosts that hold more events than were asked for


def read_audit_events(pool: Any, since: str = "",
                      limit: int = HOST_EVENTS_DEFAULT) -> AuditRead:
    """Every host's events (their audit_events operation or Get-HvcAuditEvents, in parallel):
    host calls, so a window runs this in a worker. The hosts decide who may read them (audit.read
    on the JEA endpoint, administrators on the default one); a host that refuses or fails is
    named in `failed`. With untried credentials one host is asked first, as a refresh does, so a
    wrong password costs one bad attempt."""
    clients = list(pool.clients.values())
    answers: dict[str, HostEvents | ConsoleError] = {}

    def one(client: Any) -> HostEvents | ConsoleError:
        try:
            events: HostEvents = client.audit_events(since, limit)
            return events
        except ConsoleError as error:
            return error
    if clients and not pool.gate.confirmed:
        first = clients.pop(0)
        answers[first.name] = one(first)
    if clients:
        with ThreadPoolExecutor(max_workers=min(len(clients), 16),
                                thread_name_prefix="audit-read") as workers:
            for client, answer in zip(clients, workers.map(one, clients), strict=True):
                answers[client.name] = answer
    read = {n: a for n, a in answers.items() if isinstance(a, HostEvents)}
    events = select_events(e for answer in read.values() for e in answer.events)
    return AuditRead(tuple(events), tuple(read),
                     {n: a for n, a in answers.items() if isinstance(a, ConsoleError)},
                     tuple(n for n, a in read.items() if a.truncated))


def principals(policy: Policy) -> list[PrincipalRef]:
    """Every principal the policy names, once per SID, in the order of the file."""
    seen: dict[str, PrincipalRef] = {}
    for grant in policy.grants:
        seen.setdefault(grant.principal.sid, PrincipalRef(grant.principal.name, grant.principal.sid))
    return list(seen.values())


def principal_identity(ref: PrincipalRef) -> Identity:
    """A token holding this principal alone (plus the well-known SIDs every logon carries)."""
    return Identity(sid=ref.sid, name=ref.name)


def effective_permissions(policy: Policy, inventory: Inventory,
                          today: date) -> tuple[list[Permission], list[Permission]]:
    """(VM permissions for every principal and VM, global permissions for every principal)."""
    vms = [vm for host in sorted(inventory, key=str.lower) for vm in inventory[host]]
    per_vm: list[Permission] = []
    per_global: list[Permission] = []
    for ref in principals(policy):
        identity = principal_identity(ref)
        for vm in vms:
            per_vm.append(_permission(ref, vm.host, vm.id, _vm_name(policy, vm),
                                      policy.evaluate(identity, vm, today)))
        per_global.append(_permission(ref, "", "", "", policy.global_decision(identity, today)))
    return per_vm, per_global


def person_permissions(policy: Policy, directory: Directory, person: str, inventory: Inventory,
                       today: date) -> tuple[Identity, list[Permission]]:
    """What one person can do, and through which groups: the groups of the policy are expanded
    to their transitive members in the directory."""
    from .errors import DirectoryError

    found = directory.resolve(person)
    if found is None:
        raise DirectoryError(f"There is no {person} in the directory.")
    groups = []
    for ref in principals(policy):
        if ref.sid == found.sid or ref.sid in WELL_KNOWN_LOGON_SIDS:
            continue
        target = directory.resolve(ref.name)
        if target is None or target.kind != "group" or target.sid != ref.sid:
            continue  # gone or re-created: the grant names a SID nobody holds (see findings)
        member = next((m for m in directory.members(target) if m.principal.sid == found.sid), None)
        if member is not None:
            groups.append(Group(ref.sid, ref.name, target.dn, member.nested))
    identity = Identity(sid=found.sid, name=found.name, display_name=found.display_name,
                        groups=tuple(groups))
    ref = PrincipalRef(found.name, found.sid)
    rows = [_permission(ref, vm.host, vm.id, _vm_name(policy, vm), policy.evaluate(identity, vm, today))
            for host in sorted(inventory, key=str.lower) for vm in inventory[host]]
    rows.append(_permission(ref, "", "", "", policy.global_decision(identity, today)))
    return identity, [r for r in rows if r.privileges or r.denied]


def _permission(ref: PrincipalRef, host: str, vm_id: str, vm_name: str,
                decision: Decision) -> Permission:
    held = tuple(p for p in PRIVILEGES if p in decision.privileges)
    denied = tuple(p for p in PRIVILEGES if p in decision.denied_by)
    why = decision.explain() if held or denied else ""
    return Permission(ref, host, vm_id, vm_name, held, denied, why)


def _vm_name(policy: Policy, vm: VM) -> str:
    return vm.name or (policy.doc(vm.id).name if policy.doc(vm.id) else vm.id)  # type: ignore[union-attr]


# --- which VMs a grant's scope reaches ----------------------------------------------------------

def grant_matches(policy: Policy, grant: Grant, vm: VM | Target) -> bool:
    """Whether the grant's scope reaches the VM, as the policy engine decides it."""
    scope = grant.scope
    cluster = vm.cluster
    if scope.kind == "everything":
        return True
    if scope.kind == "host":
        return vm.host.lower() == scope.value.lower()
    if scope.kind == "cluster":
        return cluster is not None and cluster.lower() == scope.value.lower()
    if scope.kind == "vm":
        if scope.by_name:
            hit = bool(vm.name) and vm.name.lower() == scope.value.lower()
        else:
            hit = vm.id == scope.value
        return hit and scope.matches_host(vm.host, cluster)
    doc = policy.doc(vm.id)
    if doc is None:
        return False
    if scope.kind == "application":
        return doc.application == scope.value
    return scope.kind == "tag" and scope.value in doc.tags


def _candidates(policy: Policy, inventory: Inventory) -> list[VM | Target]:
    """The VMs of the inventory, and documented VMs no host reported (their host unknown)."""
    found: list[VM | Target] = [vm for vms in inventory.values() for vm in vms]
    seen = {vm.id for vm in found}
    found += [Target("", doc.vm_id, doc.name) for doc in policy.vms.values() if doc.vm_id not in seen]
    return found


# --- findings -----------------------------------------------------------------------------------

def findings(policy: Policy, inventory: Inventory, facts: Mapping[str, HostFacts],
             directory: Directory | None = None, today: date | None = None,
             settings: ReviewSettings | None = None, domain: str = "") -> list[Finding]:
    """Every finding, most severe first. `domain` (the NetBIOS name, e.g. LAB) tells a domain
    principal from a machine's local one; without it only BUILTIN and host names are local."""
    today = today or date.today()
    settings = settings or ReviewSettings()
    out: list[Finding] = []
    if directory is not None:
        out += _directory_findings(policy, directory)
    out += _principal_findings(policy, inventory, domain)
    out += _grant_findings(policy, inventory, today, settings)
    out += _documentation_findings(policy, inventory)
    out += _host_findings(policy, inventory, facts, today, settings)
    out += [Finding(f.kind, f.severity, f.summary, f.objects, f.fix)
            for f in patch_findings(facts, today, settings.max_update_age_days)]
    order = {s: i for i, s in enumerate(SEVERITIES)}
    return sorted(out, key=lambda f: (order[f.severity], f.kind, f.line or 0, f.objects))


def _grant_name(grant: Grant, policy: Policy) -> str:
    effect = "deny " if grant.is_deny else ""
    where = f" (line {grant.line})" if grant.line else ""
    return (f"{effect}{grant.principal.name} → {grant.role} on "
            f"{grant.scope.describe(policy.vms)}{where}")


def _directory_findings(policy: Policy, directory: Directory) -> list[Finding]:
    out = []
    for ref in principals(policy):
        if ref.sid in WELL_KNOWN_LOGON_SIDS or _is_local(ref, policy, {}, ""):
            continue
        lines = [g.line for g in policy.grants if g.principal.sid == ref.sid]
        line = min((n for n in lines if n), default=None)
        objects = (f"{ref.name} ({ref.sid})",)
        by_name = directory.resolve(ref.name)
        if by_name is None:
            by_sid = directory.resolve(ref.sid)
            if by_sid is None:
                out.append(Finding(
                    "principal-missing", "high",
                    f"{ref.name} is named in {len(lines)} grant(s) but no longer exists in the "
                    "directory.", objects,
                    "Remove its grants, or grant the group that took over its duties.", line))
            else:
                out.append(Finding(
                    "principal-sid-mismatch", "high",
                    f"The SID of {ref.name} now belongs to {by_sid.name} (renamed).",
                    objects + (by_sid.name,),
                    f"Write the grants under the directory's name {by_sid.name}.", line))
            continue
        if by_name.sid.upper() != ref.sid.upper():
            out.append(Finding(
                "principal-sid-mismatch", "high",
                f"{ref.name} has SID {by_name.sid} in the directory, not {ref.sid}: it was "
                "deleted and re-created, so its grants apply to nobody.", objects,
                "Check that the new object should hold these rights, then write its new SID in "
                "the grants (or remove them).", line))
        elif by_name.state != "enabled":
            out.append(Finding(
                f"principal-{by_name.state}", "medium",
                f"{ref.name} is {by_name.state} in the directory but still holds grants.", objects,
                "Remove the grants of an account that has left, or grant a group instead.", line))
    return out


def _is_local(ref: PrincipalRef, policy: Policy, inventory: Inventory, domain: str) -> bool:
    if ref.sid in WELL_KNOWN_LOGON_SIDS:
        return False
    prefix = ref.name.split("\\", 1)[0].lower() if "\\" in ref.name else ""
    hosts = {h.lower() for h in inventory} | set(policy.hosts)
    if ref.sid.upper().startswith(BUILTIN_SID_PREFIX) or prefix == "builtin" or prefix in hosts:
        return True
    # Well-known machine SIDs (LocalSystem, Local Service, ...) are no domain principals either.
    if re.fullmatch(r"S-1-5-(1[0-9]|20)", ref.sid.upper()):
        return True
    return bool(domain) and prefix not in ("", domain.lower(), "nt authority")


def _principal_findings(policy: Policy, inventory: Inventory, domain: str) -> list[Finding]:
    out = []
    for ref in principals(policy):
        if _is_local(ref, policy, inventory, domain):
            lines = [g.line for g in policy.grants if g.principal.sid == ref.sid and g.line]
            out.append(Finding(
                "local-principal", "medium",
                f"{ref.name} ({ref.sid}) is a local principal of one machine, not a domain one.",
                (ref.name,),
                "Grant a domain group instead: local accounts are managed on each host and "
                "escape central review.", min(lines, default=None)))
    for grant in policy.grants:
        if grant.scope.kind == "vm" and grant.scope.by_name:
            out.append(Finding(
                "vm-by-name", "medium",
                f"A grant names the VM '{grant.scope.value}' by its name, which any VM can "
                "take by being renamed or created under it.", (_grant_name(grant, policy),),
                "Name the VM by its id (vm = \"<GUID>\") instead of vm_name.", grant.line))
    return out


def _is_large_group(sid: str) -> bool:
    return sid in LARGE_GROUP_SIDS or (sid.startswith("S-1-5-21-") and sid.rsplit("-", 1)[1]
                                      in LARGE_GROUP_RIDS)


def _grant_findings(policy: Policy, inventory: Inventory, today: date,
                    settings: ReviewSettings) -> list[Finding]:
    out = []
    candidates = _candidates(policy, inventory)
    active = policy.active_grants(today)
    for grant in policy.grants:
        name = _grant_name(grant, policy)
        if not grant.active(today):
            out.append(Finding(
                "grant-expired", "low", f"A grant expired on {grant.expires} and grants nothing, "
                "but is still in the policy.", (name,),
                "Remove it, so the policy says only what is in force.", grant.line))
            continue
        if grant.expires and (grant.expires - today).days <= settings.expiring_within_days:
            out.append(Finding(
                "grant-expiring", "low",
                f"A grant expires on {grant.expires}, in {(grant.expires - today).days} day(s).",
                (name,), "Extend it with its owner's agreement, or let it lapse and remove it.",
                grant.line))
        privileges = policy.role_privileges(grant.role)
        if grant.is_deny:
            if not any(grant_matches(policy, grant, vm) for vm in candidates) \
                    and not (grant.scope.kind == "everything" and privileges & set(GLOBAL_PRIVILEGES)):
                out.append(Finding(
                    "deny-unused", "low", "A deny matches no VM any host reports or the "
                    "documentation describes.", (name,),
                    "Remove it, or correct its scope if it was meant to protect a VM.", grant.line))
            continue
        powerful = privileges & settings.powerful_privileges
        if powerful and _is_large_group(grant.principal.sid):
            out.append(Finding(
                "over-broad", "high",
                f"Every account holds {', '.join(sorted(powerful))} through a grant to "
                f"{grant.principal.name}.", (name,),
                "Grant a small group of the people who need it, and a lesser role (helpdesk or "
                "viewer) if anyone at all.", grant.line))
        elif powerful and grant.scope.kind == "everything":
            out.append(Finding(
                "over-broad", "medium",
                f"{grant.principal.name} holds {', '.join(sorted(powerful))} on every VM of "
                "every host.", (name,),
                "Narrow the scope to the hosts or applications the group runs, and keep the group "
                "to the administrators who need it.", grant.line))
        if _shadowed(policy, grant, active, candidates):
            out.append(Finding(
                "shadowed-grant", "low", "A grant gives nothing: a deny takes away every "
                "privilege it gives, on every VM it reaches.", (name,),
                "Remove the grant (or the deny, if the grant is what was meant).", grant.line))
    return out


def _shadowed(policy: Policy, grant: Grant, active: list[Grant],
              candidates: list[VM | Target]) -> bool:
    # A deny applies to whoever holds its SID: the grant's own principal, or a SID in every token.
    sids = {grant.principal.sid, *WELL_KNOWN_LOGON_SIDS}
    denies = [d for d in active if d.is_deny and d.principal.sid in sids]
    if not denies:
        return False
    privileges = policy.role_privileges(grant.role)
    if privileges & set(GLOBAL_PRIVILEGES) and grant.scope.kind == "everything":
        taken = set().union(*(policy.role_privileges(d.role) for d in denies
                              if d.scope.kind == "everything"))
        if not privileges & set(GLOBAL_PRIVILEGES) <= taken:
            return False
    reached = [vm for vm in candidates if grant_matches(policy, grant, vm)]
    vm_privileges = privileges & set(VM_PRIVILEGES)
    if not reached or not vm_privileges:
        return False
    for vm in reached:
        taken = set().union(*(policy.role_privileges(d.role) for d in denies
                              if grant_matches(policy, d, vm)))
        if not vm_privileges <= taken:
            return False
    return True


def _documentation_findings(policy: Policy, inventory: Inventory) -> list[Finding]:
    out = []
    reported = {vm.id for vms in inventory.values() for vm in vms}
    for doc in policy.vms.values():
        missing = [k for k in ("owner", "contact", "classification") if not getattr(doc, k)]
        if missing:
            out.append(Finding(
                "vm-doc-incomplete", "medium",
                f"The documentation of {doc.name} has no {' and no '.join(missing)}.",
                (f"{doc.name} ({doc.vm_id})",),
                "Ask the VM's users who owns it and fill in owner, contact and classification.",
                doc.line))
        if inventory and doc.vm_id not in reported:
            out.append(Finding(
                "doc-orphan", "low",
                f"{doc.name} is documented but no host reports it.", (f"{doc.name} ({doc.vm_id})",),
                "Remove its documentation if it was deleted (check any host that did not answer "
                "first).", doc.line))
    for host in sorted(inventory, key=str.lower):
        for vm in inventory[host]:
            if policy.doc(vm.id) is None:
                out.append(Finding(
                    "vm-undocumented", "medium",
                    f"{vm.name} on {host} is not documented: nobody is known to own it.",
                    (f"{vm.name} ({vm.id})", host),
                    "Document it under its VM id with owner, contact, classification, application"
                    " and tier, or remove the VM if nobody claims it."))
            # The owner line `hvconsole host document` wrote into the VM's Notes, read back.
            on_host = next((n for n in vm.notes.splitlines()
                            if n.startswith(documentation.NOTES_PREFIX)), None)
            wanted = documentation.notes_line(policy.doc(vm.id))
            if on_host is not None and on_host != wanted:
                out.append(Finding(
                    "host-notes-disagree", "medium",
                    f"The Notes of {vm.name} on {host} say \"{on_host}\"; the policy says "
                    f"\"{wanted}\".", (f"{vm.name} ({vm.id})", host),
                    f"Run hvconsole host document {host} (it keeps what is on the host beside "
                    "the new text), or correct the policy if the host is right."))
    return out


def _host_findings(policy: Policy, inventory: Inventory, facts: Mapping[str, HostFacts],
                   today: date, settings: ReviewSettings) -> list[Finding]:
    out = []
    for host in sorted(set(inventory) | set(facts), key=str.lower):
        vms = list(inventory.get(host, ()))
        out += _classification(policy, host, vms)
        out += _tiers(policy, host, vms)
        if host in facts:
            out += _storage(host, vms, facts[host], settings)
            out += _updates(host, facts[host], today, settings)
    return out + _cluster_classification(policy, inventory)


def cluster_nodes(policy: Policy, inventory: Inventory) -> dict[str, list[str]]:
    """Each failover cluster's nodes (by its lower-case name): the hosts the policy's host
    entries and the hosts' own configuration place in it."""
    found: dict[str, dict[str, None]] = {}
    for entry in policy.hosts.values():
        if entry.cluster:
            found.setdefault(entry.cluster.lower(), {})[entry.name] = None
    for host, vms in inventory.items():
        for vm in vms[:1]:
            if vm.cluster:
                found.setdefault(vm.cluster.lower(), {})[host] = None
    return {c: sorted(h, key=str.lower) for c, h in sorted(found.items())}


def _cluster_classification(policy: Policy, inventory: Inventory) -> list[Finding]:
    """A clustered role may run on any node of its cluster: each node must be classified as
    high as the most sensitive role (a VM that only runs on a node is the node's own finding)."""
    out = []
    everywhere = [vm for vms in inventory.values() for vm in vms]
    for cluster, members in cluster_nodes(policy, inventory).items():
        classified = [(classification_rank(d.classification), d.name.lower(), d, vm)
                      for vm in everywhere
                      if vm.clustered and (vm.cluster or "").lower() == cluster
                      and (d := policy.doc(vm.id)) is not None and d.classification]
        if not classified:
            continue
        rank, _, doc, role = max(classified, key=lambda x: (x[0], x[1]))
        for host in members:
            entry = policy.host(host)
            if entry is not None and classification_rank(entry.classification) >= rank:
                continue
            said = f"is classified {entry.classification}" if entry else "has no classification"
            out.append(Finding(
                "cluster-classification", "high",
                f"{host} {said}, but cluster {role.cluster} may move its clustered role "
                f"{doc.name} ({doc.classification}) onto it.", (host, str(role.cluster), doc.name),
                f"Classify every node of {role.cluster} as {doc.classification}, or keep "
                f"{doc.name} off {host} (the role's possible owners in Failover Cluster Manager).",
                entry.line if entry else None))
    return out


def _classification(policy: Policy, host: str, vms: list[VM]) -> list[Finding]:
    classified = [(classification_rank(d.classification), d) for vm in vms
                  if (d := policy.doc(vm.id)) is not None and d.classification]
    if not classified:
        return []
    rank, doc = max(classified, key=lambda x: x[0])
    entry = policy.host(host)
    host_rank = classification_rank(entry.classification) if entry else -1
    if host_rank >= rank:
        return []
    said = f"is classified {entry.classification}" if entry else "has no classification"
    return [Finding(
        "host-classification", "high",
        f"{host} {said}, but its guest {doc.name} is {doc.classification}.", (host, doc.name),
        f"Classify {host} as {doc.classification} and protect it accordingly, or move "
        f"{doc.name} to a host classified {doc.classification}.", entry.line if entry else None)]


def _tiers(policy: Policy, host: str, vms: list[VM]) -> list[Finding]:
    tiers: dict[str, dict[str, list[str]]] = {}
    for vm in vms:
        doc = policy.doc(vm.id)
        # A clustered role moves to another node when this one goes: it does not fall with it.
        if doc and doc.application and doc.tier and not vm.is_replica and not vm.clustered:
            tiers.setdefault(doc.application, {}).setdefault(doc.tier, []).append(doc.name)
    out = []
    for application, by_tier in sorted(tiers.items()):
        if len(by_tier) >= 2:
            names = tuple(n for t in sorted(by_tier) for n in by_tier[t])
            out.append(Finding(
                "tiers-together", "medium",
                f"{len(by_tier)} tiers of {application} ({', '.join(sorted(by_tier))}) run on "
                f"{host}: they fall together when it does.", (host, *names),
                f"Move a tier of {application} to another host so one host's downtime does not "
                "take the whole application down."))
    return out


def _storage(host: str, vms: list[VM], facts: HostFacts, settings: ReviewSettings) -> list[Finding]:
    out = []
    checkpoints = sum(vm.checkpoint_bytes for vm in vms)
    if checkpoints and checkpoints > settings.checkpoint_share * facts.free_bytes:
        heavy = sorted((vm for vm in vms if vm.checkpoint_bytes), key=lambda v: -v.checkpoint_bytes)
        out.append(Finding(
            "checkpoint-storage", "high",
            f"Checkpoints on {host} use {_gib(checkpoints)}, more than "
            f"{settings.checkpoint_share:.0%} of the {_gib(facts.free_bytes)} left free on "
            f"{facts.volume_path or 'its volume'}.", (host, *(vm.name for vm in heavy)),
            "Ask the owners to delete checkpoints they no longer need (merges free space when "
            "done), starting with the largest."))
    for place in facts.storage:  # every volume or share that holds VM files
        if place.total_bytes and place.free_bytes is not None and \
                place.free_bytes < settings.min_free_share * place.total_bytes:
            out.append(Finding(
                "low-free-space", "high",
                f"{place.path} on {host} has {_gib(place.free_bytes)} free of"
                f" {_gib(place.total_bytes)} (below {settings.min_free_share:.0%}); a full volume "
                "pauses every VM on it.", (host,),
                "Free space (checkpoints, old disks) or move VMs to another volume before it "
                "fills."))
    return out


def _updates(host: str, facts: HostFacts, today: date, settings: ReviewSettings) -> list[Finding]:
    if facts.last_update is None:
        return [Finding("updates-unknown", "low", f"{host} did not report its last update.",
                        (host,), "Check the host's update history by hand.")]
    age = (today - facts.last_update.date()).days
    if age <= settings.max_update_age_days:
        return []
    return [Finding(
        "stale-updates", "high" if age > 2 * settings.max_update_age_days else "medium",
        f"The newest update on {host} was installed {age} days ago "
        f"({facts.last_update.date()}).", (host,),
        f"Plan a maintenance window for {host} (see its downtime impact) and install updates.")]


def _gib(n: int) -> str:
    return f"{n / 1024 ** 3:.1f} GiB"


# --- host hardening -----------------------------------------------------------------------------

@dataclass(frozen=True)
class HardeningRead:
    """Each host's hardening (host_hardening), and the hosts that did not answer and why."""

    hosts: dict[str, HostHardening]
    failed: dict[str, ConsoleError]


def read_hardening(pool: Any, policy: Policy, identity: Identity,
                   hosts: Iterable[str]) -> HardeningRead:
    """Each host's hardening, for a holder of policy.read (others read nothing: who administers
    a host is the reviewers' business): host calls, so a window runs this in a worker. The admin
    endpoint answers its administrators, the JEA endpoint (Get-HvcHostHardening) holders of
    policy.read; a host that refuses or fails is named in `failed`."""
    if "policy.read" not in policy.global_decision(identity).privileges:
        return HardeningRead({}, {})
    def one(name: str) -> HostHardening | ConsoleError:
        try:
            hardening: HostHardening = pool.client(name).host_hardening()
            return hardening
        except ConsoleError as error:
            return error
    names = list(hosts)
    answers: dict[str, HostHardening | ConsoleError] = {}
    if names:
        with ThreadPoolExecutor(max_workers=min(len(names), 16),
                                thread_name_prefix="hardening-read") as workers:
            answers = dict(zip(names, workers.map(one, names), strict=True))
    return HardeningRead({n: a for n, a in answers.items() if isinstance(a, HostHardening)},
                         {n: a for n, a in answers.items() if isinstance(a, ConsoleError)})


def with_hardening(review: Review, hardening: Mapping[str, HostHardening]) -> Review:
    """The review with the hosts' hardening and its findings (console.hardening), in order."""
    from dataclasses import replace

    from .jea import ENDPOINT_NAME
    extra = [Finding(f.kind, f.severity, f.summary, f.objects, f.fix)
             for host in sorted(hardening, key=str.lower)
             for f in hardening_findings(host, hardening[host], ENDPOINT_NAME)]
    order = {s: i for i, s in enumerate(SEVERITIES)}
    return replace(review, findings=tuple(sorted(
        [*review.findings, *extra], key=lambda f: (order[f.severity], f.kind, f.line or 0, f.objects))),
        hardening=tuple(hardening[h] for h in sorted(hardening, key=str.lower)))


def hardening_text(review: Review) -> str:
    """Each host's hardening as rows of text (the CLI's report)."""
    lines = []
    for h in review.hardening:
        lines.append(f"Hardening of {h.name}:")
        lines += [f"  {what:<24} {value}" for what, value in summary(h)]
    return "\n".join(lines)


# --- downtime impact ----------------------------------------------------------------------------

def host_impact(policy: Policy, inventory: Inventory, host: str) -> HostImpact:
    """Every guest of a host with its owner, and where the other tiers of its application run."""
    name = next((h for h in inventory if h.lower() == host.lower()), host)
    everywhere = [vm for vms in inventory.values() for vm in vms]
    guests = []
    for vm in sorted(inventory.get(name, ()), key=lambda v: (v.name.lower(), v.id)):
        doc = policy.doc(vm.id)
        others: list[OtherTier] = []
        if doc and doc.application:
            for other in everywhere:
                odoc = policy.doc(other.id)
                if (odoc and odoc.application == doc.application and other.id != vm.id
                        and not other.is_replica):
                    others.append(OtherTier(other.name, other.id, odoc.tier, other.host, other.state))
            others.sort(key=lambda o: (o.tier, o.host.lower(), o.vm_name.lower()))
        guests.append(Guest(vm, doc.application if doc else "", doc.tier if doc else "",
                            doc.owner if doc else "", doc.contact if doc else "",
                            doc.classification if doc else "", tuple(others)))
    addresses = tuple(dict.fromkeys(a for g in guests for a in _EMAIL.findall(g.contact)))
    subject = f"Planned maintenance of Hyper-V host {name}"
    return HostImpact(name, tuple(guests), subject, _notice(name, guests), addresses)


def _notice(host: str, guests: list[Guest]) -> str:
    lines = ["Hello,", "",
             f"Hyper-V host {host} will be taken down for maintenance. These VMs run on it; "
             "those that are not clustered roles will be unavailable (shut down or saved) "
             "during the window:", ""]
    for g in guests:
        app = f", {g.application}/{g.tier}" if g.application else ""
        owner = f", owner {g.owner}" if g.owner else ", owner unknown"
        replica = " (Replica copy)" if g.vm.is_replica else ""
        moves = (f", a clustered role: moves to another node of {g.vm.cluster}, no downtime"
                 if g.vm.clustered and g.vm.cluster else "")
        lines.append(f"- {g.vm.name}{replica}: {g.vm.state}{moves}{app}{owner}")
        for o in g.other_tiers:
            lines.append(f"    {g.application} {o.tier} also runs as {o.vm_name} on {o.host} "
                         f"({o.state})")
    lines += ["", "Please tell us before the window if this time does not suit you, or if a VM "
              "must be shut down from inside the guest.", "", "Thank you."]
    return "\n".join(lines)


# --- the whole review ---------------------------------------------------------------------------

def build_review(policy: Policy, inventory: Inventory, facts: Mapping[str, HostFacts],
                 directory: Directory | None = None, today: date | None = None,
                 settings: ReviewSettings | None = None, domain: str = "",
                 console_access: Mapping[str, Sequence[ConsoleEntry]] | None = None) -> Review:
    today = today or date.today()
    settings = settings or ReviewSettings()
    per_vm, per_global = effective_permissions(policy, inventory, today)
    consoles = holders(policy, inventory, console_access or {}, directory, today)
    return Review(
        today=today, policy_digest=policy.digest,
        findings=tuple(sorted(
            [*findings(policy, inventory, facts, directory, today, settings, domain),
             *console_findings(consoles)],
            key=lambda f: ({s: i for i, s in enumerate(SEVERITIES)}[f.severity], f.kind,
                           f.line or 0, f.objects))),
        permissions=tuple(per_vm), global_permissions=tuple(per_global),
        impacts=tuple(host_impact(policy, inventory, h) for h in sorted(inventory, key=str.lower)),
        settings=settings, console_access=tuple(consoles))


def console_findings(consoles: Iterable[ConsoleHolder]) -> list[Finding]:
    """An entry of a VM's console access list that the policy does not back: the account can
    open that VM's screen, keyboard and mouse without vm.console."""
    out = []
    for holder in consoles:
        if holder.may:
            continue
        e = holder.entry
        out.append(Finding(
            "console-access", "high",
            f"{e.user} can open the console of {e.vm_name or e.vm_id} on {e.host}, which the "
            f"policy does not give them ({holder.why}).",
            (e.user, e.sid or "no SID", e.vm_name or e.vm_id, e.host),
            f"Revoke it on {e.host}: Revoke-VMConnectAccess -VMId {e.vm_id} -UserName "
            f"'{e.user}' (or grant vm.console in the policy if they should have it)."))
    return out


class HostSettings(Protocol):
    """What the transport finding reads of a host's configuration (console.config.HostConfig)."""

    name: str
    transport: str
    allow_ntlm: bool


def transport_findings(hosts: Iterable[HostSettings]) -> list[Finding]:
    """NTLM still allowed: a host the console may reach with NTLM (the last resort of negotiate,
    or the only way of transport = "ntlm") exposes NetNTLMv2 responses to capture and relay."""
    hosts = list(hosts)
    only = sorted((h.name for h in hosts if h.transport == "ntlm"), key=str.lower)
    allowed = sorted((h.name for h in hosts if h.transport != "ntlm" and h.allow_ntlm), key=str.lower)
    out = []
    if only:
        out.append(Finding(
            "ntlm-only", "high",
            f"The console speaks NTLM only to {', '.join(only)} (transport = \"ntlm\"): every "
            f"sign-in there sends a NetNTLMv2 response that can be captured and relayed.",
            tuple(only), 'Set transport = "negotiate" and allow_ntlm = false for each, once '
                         'Kerberos to it is confirmed (docs/verification.md).'))
    if allowed:
        out.append(Finding(
            "ntlm-allowed", "medium",
            f"NTLM is allowed to {', '.join(allowed)}: where Kerberos is not possible (no ticket, "
            f"no SPN, an address instead of a name) the console falls back to NTLM, whose "
            f"NetNTLMv2 responses can be captured and relayed.",
            tuple(allowed), "Set allow_ntlm = false in each host's table, once klist and Test-WSMan "
                            "-Authentication Kerberos confirm Kerberos to it (docs/verification.md)."))
    return out


def with_transport(review: Review, hosts: Iterable[HostSettings]) -> Review:
    """The review with the transport findings of the configured hosts, in order."""
    from dataclasses import replace

    order = {s: i for i, s in enumerate(SEVERITIES)}
    return replace(review, findings=tuple(sorted(
        [*review.findings, *transport_findings(hosts)],
        key=lambda f: (order[f.severity], f.kind, f.line or 0, f.objects))))


# --- exports (untrusted text: every format escapes for its reader) -------------------------------

FINDING_HEADER = ["severity", "kind", "summary", "objects", "fix", "line"]
PERMISSION_HEADER = ["principal", "sid", "host", "vm", "vm_id", "privileges", "denied", "why"]
IMPACT_HEADER = ["host", "vm", "vm_id", "state", "application", "tier", "owner", "contact",
                 "classification", "other tiers"]


def finding_rows(review: Review) -> list[list[object]]:
    return [[f.severity, f.kind, f.summary, "; ".join(f.objects), f.fix, f.line]
            for f in review.findings]


def permission_rows(permissions: Iterable[Permission]) -> list[list[object]]:
    return [[p.principal.name, p.principal.sid, p.host, p.vm_name, p.vm_id,
             " ".join(p.privileges), " ".join(p.denied), p.why]
            for p in permissions if p.privileges or p.denied]


def impact_rows(impact: HostImpact) -> list[list[object]]:
    return [[impact.host, g.vm.name, g.vm.id, g.vm.state, g.application, g.tier, g.owner,
             g.contact, g.classification,
             "; ".join(f"{o.tier}: {o.vm_name} on {o.host} ({o.state})" for o in g.other_tiers)]
            for g in impact.guests]


def findings_csv(review: Review) -> str:
    return csv_text(FINDING_HEADER, finding_rows(review))


def permissions_csv(review: Review) -> str:
    return csv_text(PERMISSION_HEADER,
                    permission_rows((*review.global_permissions, *review.permissions)))


def impact_csv(review: Review, host: str | None = None) -> str:
    impacts = [i for i in review.impacts if host is None or i.host.lower() == host.lower()]
    return csv_text(IMPACT_HEADER, [r for i in impacts for r in impact_rows(i)])


def to_json(review: Review) -> str:
    def permission(p: Permission) -> dict[str, Any]:
        return {"principal": p.principal.name, "sid": p.principal.sid, "host": p.host or None,
                "vm": p.vm_name or None, "vm_id": p.vm_id or None,
                "privileges": list(p.privileges), "denied": list(p.denied),
                "why": p.why.splitlines()}

    return json.dumps({
        "date": review.today.isoformat(), "policy_sha256": review.policy_digest,
        "findings": [{"severity": f.severity, "kind": f.kind, "summary": f.summary,
                      "objects": list(f.objects), "fix": f.fix, "line": f.line}
                     for f in review.findings],
        "permissions": [permission(p) for p in (*review.global_permissions, *review.permissions)
                        if p.privileges or p.denied],
        "hardening": [{"host": h.name, **{what.lower().replace(" ", "_").replace("-", ""): value
                                          for what, value in summary(h)}}
                      for h in review.hardening],
        "hosts": [{"host": i.host, "notice": i.notice, "mailto": i.mailto,
                   "guests": [{"vm": g.vm.name, "vm_id": g.vm.id, "state": g.vm.state,
                               "application": g.application, "tier": g.tier, "owner": g.owner,
                               "contact": g.contact, "classification": g.classification,
                               "other_tiers": [o.__dict__ for o in g.other_tiers]}
                              for g in i.guests]} for i in review.impacts],
        "console_access": [{"host": c.entry.host, "vm": c.entry.vm_name, "vm_id": c.entry.vm_id,
                            "user": c.entry.user, "sid": c.entry.sid, "may": c.may, "why": c.why}
                           for c in review.console_access],
    }, indent=2, ensure_ascii=False)


# Short column labels of the permission matrix, in vocabulary order.
ABBREVIATIONS: dict[str, str] = {
    "vm.view": "V", "vm.start": "St", "vm.shutdown": "Sd", "vm.turnoff": "Off", "vm.reset": "R",
    "vm.save": "Sv", "vm.checkpoint.create": "C+", "vm.checkpoint.delete": "C-",
    "vm.checkpoint.apply": "C<", "vm.media": "M", "vm.console": "Con", "policy.read": "PR",
    "policy.modify": "PM",
    "audit.read": "AR",
}

def to_html(review: Review) -> str:
    """One self-contained report: findings first, then the permission matrix, then host impact
    (resources/templates/review.html)."""
    impacts = [(i, [[str(c) for c in row[1:]] for row in impact_rows(i)]) for i in review.impacts]
    return html_page("review.html", review=review, finding_header=FINDING_HEADER[:-1],
                     impact_header=IMPACT_HEADER[1:], impacts=impacts, matrix=_matrix(review))


def _matrix(review: Review) -> dict[str, Any]:
    """The permission matrix: a row per VM, a column per principal, privileges abbreviated."""
    refs = list(dict.fromkeys(p.principal for p in review.global_permissions))
    cells: dict[tuple[str, str, str], Permission] = {
        (p.host, p.vm_id, p.principal.sid): p for p in review.permissions}
    vms = list(dict.fromkeys((p.host, p.vm_id, p.vm_name) for p in review.permissions))

    def short(p: Permission | None) -> str:
        return " ".join(ABBREVIATIONS[x] for x in p.privileges) if p else ""

    rows = [{"host": host, "vm_name": vm_name,
             "cells": [{"text": short(p), "why": p.why if p else ""}
                       for p in (cells.get((host, vm_id, ref.sid)) for ref in refs)]}
            for host, vm_id, vm_name in vms]
    return {"legend": ", ".join(f"{a} {p}" for p, a in ABBREVIATIONS.items()),
            "principals": refs, "rows": rows,
            "global_cells": [short(p) for p in review.global_permissions]}


def to_text(review: Review) -> str:
    """The findings and a summary, for a terminal (callers pass it through text.plain)."""
    lines = [f"Delegation review of {review.today} (policy sha256 {review.policy_digest[:16]}):",
             f"{len(review.findings)} findings."]
    for f in review.findings:
        where = f" [line {f.line}]" if f.line else ""
        lines.append(f"{f.severity.upper():6} {f.kind}{where}: {f.summary}")
        lines.append(f"       objects: {'; '.join(f.objects)}")
        lines.append(f"       fix: {f.fix}")
    held = [p for p in review.permissions if p.privileges]
    lines.append(f"{len(held)} (principal, VM) pairs hold privileges; "
                 f"{len(review.impacts)} hosts reviewed.")
    if review.console_access:
        backed = sum(1 for c in review.console_access if c.may)
        lines.append(f"{len(review.console_access)} console access entries on the hosts, "
                     f"{backed} backed by the policy:")
        for c in review.console_access:
            e = c.entry
            lines.append(f"- {e.host} {e.vm_name or e.vm_id}: {e.user} "
                         f"{'may' if c.may else 'MAY NOT'} ({c.why})")
    if review.hardening:
        lines.append(hardening_text(review))
    return "\n".join(lines)


def impact_text(impact: HostImpact) -> str:
    lines = [f"Downtime impact of {impact.host}: {len(impact.guests)} guest(s)."]
    for row in impact_rows(impact):
        _, name, vm_id, state, app, tier, owner, contact, cls, others = row
        lines.append(f"- {name} ({vm_id}) {state}; {app or '-'}/{tier or '-'}; owner "
                     f"{owner or 'unknown'} <{contact or 'no contact'}>; {cls or 'unclassified'}")
        if others:
            lines.append(f"    other tiers: {others}")
    lines += ["", f"Subject: {impact.subject}", impact.notice, "", f"mailto: {impact.mailto}"]
    return "\n".join(lines)

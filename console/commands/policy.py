"""`hvconsole policy`: check a policy file, and explain what it gives one person on one VM."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from datetime import date

from ..errors import ConsoleError, PolicyError
from ..identity import Group, Identity
from ..policy import PRIVILEGES, Decision, Policy, Reason, Target, normalize_sid, normalize_vm_id
from ..text import one_line, plain
from . import file_name, print_json

# A SID no grant can name: a user given without --sid matches only through their groups.
_UNNAMED_USER_SID = "S-1-0-0"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("policy", help="check a delegation policy, explain its decisions")
    commands = p.add_subparsers(dest="policy_command", metavar="ACTION", required=True)

    check = commands.add_parser("check", help="validate a policy file and list every problem")
    check.add_argument("file", metavar="FILE", type=file_name)
    check.set_defaults(func=run_check)

    explain = commands.add_parser(
        "explain", help="the privileges a person holds on a VM, and the grants behind them")
    explain.add_argument("file", metavar="FILE", type=file_name)
    explain.add_argument("--user", required=True, help="DOMAIN\\name of the person")
    explain.add_argument("--sid", help="the person's SID (needed only when grants name them)")
    explain.add_argument("--group", action="append", default=[], metavar="NAME[=SID]",
                         help="a group of the person; NAME alone when the policy names it")
    explain.add_argument("--host", required=True, help="the Hyper-V host (or cluster node)")
    explain.add_argument("--vm", required=True, help="VM id, or a name from the VM documentation")
    explain.add_argument("--date", type=date.fromisoformat, default=None, metavar="YYYY-MM-DD",
                         help="evaluate as of this day (expiry dates), today when left out")
    explain.add_argument("--json", action="store_true", help="machine-readable output")
    explain.set_defaults(func=run_explain)


def run_check(args: argparse.Namespace) -> int:
    try:
        policy = Policy.load(args.file)
    except PolicyError as error:
        _print_problems(error)
        return 2
    print(plain(f"{args.file}: valid: {policy.summary()}"))
    return 0


def run_explain(args: argparse.Namespace) -> int:
    try:
        policy = Policy.load(args.file)
    except PolicyError as error:
        _print_problems(error)
        return 2
    identity = _identity(policy, args.user, args.sid, args.group)
    target = _target(policy, args.host, args.vm)
    today = args.date or date.today()
    decision = policy.evaluate(identity, target, today)
    global_ = policy.global_decision(identity, today)
    if args.json:
        print_json(_as_json(policy, identity, target, decision, global_, today))
        return 0
    cluster = f", cluster {target.cluster}" if target.cluster else ""
    print(one_line(f"{identity.name} on {target.name or target.vm_id} "
                   f"(host {target.host}{cluster}, VM id {target.vm_id or 'unknown'}), {today}:"))
    held = [p for p in PRIVILEGES if p in decision.privileges or p in global_.privileges]
    print(one_line("privileges: " + (", ".join(held) if held else "none")))
    if not target.vm_id:
        print(one_line(f"note: {target.name} is not documented in the policy, so only grants on "
                       "its host or naming it by name can apply."))
    print(plain(decision.explain()))
    if global_.privileges or global_.denied_by:
        print(plain(global_.explain()))
    return 0


def _print_problems(error: PolicyError) -> None:
    for problem in error.problems:
        print(one_line(str(problem)), file=sys.stderr)
    count = len(error.problems)
    plural = "s" if count != 1 else ""
    print(f"{count} problem{plural}: the policy cannot be used.", file=sys.stderr)


def _identity(policy: Policy, user: str, sid: str | None, groups: list[str]) -> Identity:
    user_sid = _sid(sid, f"--sid of {user}") if sid else policy.sid_of(user) or _UNNAMED_USER_SID
    members = []
    for item in groups:
        name, _, group_sid = item.partition("=")
        name = name.strip()
        if not name:
            raise ConsoleError(f"--group '{item}' has no name; write NAME=SID or NAME.")
        if group_sid:
            members.append(Group(_sid(group_sid, f"--group {name}"), name))
            continue
        found = policy.sid_of(name)
        if found is None:
            raise ConsoleError(f"the policy names no principal '{name}': give its SID as "
                               f"--group '{name}=S-1-5-...'.")
        members.append(Group(found, name))
    return Identity(sid=user_sid, name=user, groups=tuple(members))


def _sid(text: str, what: str) -> str:
    sid = normalize_sid(text)
    if sid is None:
        raise ConsoleError(f"{what} is not a SID: '{text}' (a SID looks like S-1-5-21-…-1202).")
    return sid


def _target(policy: Policy, host: str, vm: str) -> Target:
    entry = policy.host(host)
    cluster = entry.cluster if entry else None
    host = entry.name if entry else host
    vm_id = normalize_vm_id(vm)
    if vm_id is not None:
        doc = policy.doc(vm_id)
        return Target(host, vm_id, doc.name if doc else "", cluster)
    docs = policy.docs_named(vm)
    if len(docs) > 1:
        ids = ", ".join(d.vm_id for d in docs)
        raise ConsoleError(f"several VMs are documented as '{vm}' ({ids}): give the VM id.")
    if docs:
        return Target(host, docs[0].vm_id, docs[0].name, cluster)
    # Undocumented: only its name is known, which grants by host or by name can still match.
    return Target(host, "", vm, cluster)


def _reason_json(policy: Policy, reason: Reason) -> dict[str, object]:
    grant = reason.grant
    return {
        "principal": grant.principal.name, "sid": grant.principal.sid, "role": grant.role,
        "effect": grant.effect, "scope": {"kind": grant.scope.kind, "value": grant.scope.value,
                                          "by_name": grant.scope.by_name, "host": grant.scope.host},
        "expires": grant.expires.isoformat() if grant.expires else None, "line": grant.line,
        "via_sid": reason.via_sid, "via_name": reason.via_name, "nested": reason.nested,
    }


def _as_json(policy: Policy, identity: Identity, target: Target, decision: Decision,
             global_: Decision, today: date) -> dict[str, object]:
    def reasons(mapping: Mapping[str, tuple[Reason, ...]]) -> dict[str, list[dict[str, object]]]:
        return {p: [_reason_json(policy, r) for r in rs] for p, rs in mapping.items()}

    return {
        "policy": {"path": str(policy.path), "sha256": policy.digest},
        "date": today.isoformat(),
        "user": {"name": identity.name, "sid": identity.sid, "sids": sorted(identity.sids)},
        "vm": {"host": target.host, "cluster": target.cluster, "id": target.vm_id or None,
               "name": target.name},
        "privileges": [p for p in PRIVILEGES if p in decision.privileges | global_.privileges],
        "allowed_by": reasons({**decision.allowed_by, **global_.allowed_by}),
        "denied_by": reasons({**decision.denied_by, **global_.denied_by}),
        "explanation": (decision.explain().splitlines()
                        + (global_.explain().splitlines()
                           if global_.privileges or global_.denied_by else [])),
    }

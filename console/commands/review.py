"""`hvconsole review` and `hvconsole host impact`: the delegation review and a host's downtime
impact, for people who hold policy.read (the `host` group itself is registered by
console/commands/host.py).

Both sign in (the configured directory, or the demo directory with --demo, which also starts the
lab hosts in this process), read every host's inventory and facts, and keep the directory
session open so stale grants are checked against the directory itself. The password is read from
stdin, never from the command line.
"""
from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from .. import downtime
from .. import review as core
from ..console_access import ConsoleEntry
from ..errors import ConfigError, ConsoleError
from ..export import csv_text
from ..hosts import HostPool
from ..identity import Identity
from ..inventory import VM, HostFacts
from ..policy import Policy
from ..session import open_session, ticket_session
from ..text import one_line
from . import downtime as downtime_commands
from . import add_sign_in_options, file_path, read_password, setup, sso_requested, write_document

FORMATS = ("text", "csv", "html", "json")
TABLES = ("findings", "permissions", "impact")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("review", help="review delegation: effective rights, findings, host impact")
    add_sign_in_options(p)
    p.add_argument("--format", choices=FORMATS, default="text")
    p.add_argument("--table", choices=TABLES, default="findings",
                   help="with --format csv: which table (default: findings)")
    p.add_argument("--out", type=file_path, metavar="FILE", help="write to FILE instead of stdout")
    p.add_argument("--date", type=date.fromisoformat, metavar="YYYY-MM-DD",
                   help="review as of this day (expiry dates), today when left out")
    p.set_defaults(func=run_review)


def register_impact(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`hvconsole host impact` (the `host` group is console/commands/host.py's)."""
    impact = commands.add_parser(
        "impact", help="every guest of a host, its owner and contact, and a notice for them")
    impact.add_argument("host", metavar="HOST")
    add_sign_in_options(impact)
    impact.add_argument("--format", choices=("text", "csv", "json"), default="text")
    impact.add_argument("--out", type=file_path, metavar="FILE")
    impact.set_defaults(func=run_impact)

    plan = commands.add_parser(
        "downtime", help="a maintenance plan: every VM, what happens to it, a message to the owners",
        description="Plan a maintenance window of HOST with its VMs' owners: each VM with its "
                    "owner and contact and what will happen to it (moved to another cluster node, "
                    "or stopped and started as its automatic stop and start actions say), the "
                    "teams tagged on its VMs, and one message asking every owner for a one-line "
                    "answer (printed with a mailto link, and as an .eml draft with --eml).")
    plan.add_argument("host", metavar="HOST")
    plan.add_argument("--window", required=True, metavar="START/LENGTH",
                      help='local start and length, e.g. "2026-12-12 22:00/4h" (or an end time)')
    plan.add_argument("--reason", default="", metavar="TEXT", help="why, for the owners")
    add_sign_in_options(plan)
    plan.add_argument("--format", choices=("text", "json"), default="text")
    plan.add_argument("--eml", type=file_path, metavar="FILE",
                      help="also write the message as an .eml draft to FILE")
    plan.add_argument("--out", type=file_path, metavar="FILE")
    plan.add_argument("--publish", action="store_true",
                      help="also write the plan to HOST's event log (its default endpoint), where "
                           "the owners read it when they sign in and answer it")
    plan.set_defaults(func=run_downtime)
    downtime_commands.register(commands)  # host plans, host answer: an owner's side of a plan


@dataclass
class Gathered:
    identity: Identity
    policy: Policy
    inventory: dict[str, list[VM]]
    facts: dict[str, HostFacts]
    directory: object
    failed: dict[str, ConsoleError]
    console_access: dict[str, list[ConsoleEntry]] = field(default_factory=dict)
    hosts: tuple[core.HostSettings, ...] = ()  # the configured hosts: NTLM allowed is a finding
    pool: HostPool | None = None  # the session's hosts, for a call after the reads (--publish)


class _NotAllowed(Exception):
    pass


@contextlib.contextmanager
def gather(args: argparse.Namespace) -> Iterator[Gathered]:
    """Sign in, check policy.read, and read the hosts; the directory session stays open."""
    sso = sso_requested(args)
    password = "" if sso else read_password(args)
    with contextlib.ExitStack() as stack:
        world = stack.enter_context(setup(args))
        directory = stack.enter_context(ticket_session(world.directory) if sso
                                        else world.directory.session(args.user, password))
        session = stack.enter_context(open_session(world, directory.identity, password, sso=sso))
        if not session.allows("policy.read"):
            raise _NotAllowed(f"{session.identity.name} may not review delegation: no grant gives "
                              "policy.read (ask for the reviewer role).")
        read = core.read_hosts(session.pool, world.policy, session.identity)
        yield Gathered(session.identity, world.policy, read.inventory, read.facts, directory,
                       read.failed, console_access=read.console_access,
                       hosts=tuple(world.config.hosts), pool=session.pool)


def _configured(g: Gathered, host: str) -> None:
    """A host the review read, or tried to: else a sentence naming it, before anything is made."""
    if host.lower() not in {h.lower() for h in (*g.inventory, *g.failed)}:
        raise ConfigError(f"{host} is not a configured host.", "hosts")


def _report_failures(failed: dict[str, ConsoleError]) -> None:
    for name, error in failed.items():
        print(one_line(f"{name}: not reviewed: {error}"), file=sys.stderr)


def _emit(text: str, out: Path | None, fmt: str) -> None:
    """The document into FILE as it is, or on standard output (escaped for a terminal)."""
    if out is not None:
        out.write_text(text, encoding="utf-8", newline="")
        print(one_line(f"written to {out}"), file=sys.stderr)
    else:
        write_document(text, fmt)


def run_review(args: argparse.Namespace) -> int:
    try:
        with gather(args) as g:
            r = core.build_review(g.policy, g.inventory, g.facts, g.directory,  # type: ignore[arg-type]
                                  args.date, domain=g.identity.name.split("\\")[0],
                                  console_access=g.console_access)
            # Each host's hardening (gather checked policy.read), read while signed in.
            hardening = core.read_hardening(g.pool, g.policy, g.identity, g.inventory)
    except _NotAllowed as refused:
        print(one_line(str(refused)), file=sys.stderr)
        return 1
    r = core.with_hardening(r, hardening.hosts)
    for name, error in hardening.failed.items():
        print(one_line(f"{name}: hardening not read: {error}"), file=sys.stderr)
    r = core.with_transport(r, g.hosts)
    if args.format == "csv":
        text = {"findings": core.findings_csv, "permissions": core.permissions_csv,
                "impact": core.impact_csv}[args.table](r)
    else:
        text = {"text": core.to_text, "html": core.to_html, "json": core.to_json}[args.format](r)
    _emit(text, args.out, args.format)
    _report_failures(g.failed)
    return 1 if g.failed else 0


def run_downtime(args: argparse.Namespace) -> int:
    try:
        window = downtime.parse_window(args.window, now=datetime.now().astimezone())
    except downtime.PlanError as e:  # before signing in: nothing is read for a bad window
        print(one_line(str(e)), file=sys.stderr)
        return 2
    try:
        with gather(args) as g:
            _configured(g, args.host)
            vms = [vm for vms in g.inventory.values() for vm in vms]
            plan = downtime.make_plan(g.policy, vms, args.host, window, args.reason,
                                      g.identity.name)
            if args.publish and args.host.lower() not in {h.lower() for h in g.failed}:
                plan.check_fits(g.identity.name)  # before anything is written
                assert g.pool is not None
                g.pool.publish_plan(plan)
                print(one_line(f"plan {plan.id} is published to {args.host}'s event log: its "
                               f"owners see it when they sign in"), file=sys.stderr)
    except _NotAllowed as refused:
        print(one_line(str(refused)), file=sys.stderr)
        return 1
    except downtime.PlanError as e:
        print(one_line(str(e)), file=sys.stderr)
        return 1
    _report_failures(g.failed)
    if args.host.lower() in {h.lower() for h in g.failed}:
        return 1  # a plan without the host's VMs would tell the owners nothing
    if args.eml is not None:
        args.eml.write_bytes(plan.eml())
        print(one_line(f"the message to the owners is written to {args.eml}"), file=sys.stderr)
    if args.format == "json":
        text = plan.to_json() + "\n"
    else:
        rows = "\n".join(f"  {i.vm_name:<24} {i.owner or '(no owner)':<20} {i.happens}"
                         for i in plan.items)
        text = (f"Plan {plan.id}: {plan.host}, {plan.window}\n{rows}\n"
                f"Teams: {', '.join(plan.teams) or 'none tagged'}\n"
                f"Owners asked: {', '.join(plan.owners) or 'none on record'}\n\n"
                f"{plan.message_text()}\n\n{plan.mailto()}\n")
    _emit(text, args.out, args.format)
    return 0


def run_impact(args: argparse.Namespace) -> int:
    try:
        # Every host is read: the other tiers of each guest's application may run anywhere.
        with gather(args) as g:
            _configured(g, args.host)
            impact = core.host_impact(g.policy, g.inventory, args.host)
    except _NotAllowed as refused:
        print(one_line(str(refused)), file=sys.stderr)
        return 1
    _report_failures(g.failed)
    if args.host.lower() in {h.lower() for h in g.failed}:
        return 1
    if args.format == "csv":
        text = csv_text(core.IMPACT_HEADER, core.impact_rows(impact))
    elif args.format == "json":
        review = core.Review(date.today(), g.policy.digest, (), (), (), (impact,))
        text = core.to_json(review)
    else:
        text = core.impact_text(impact)
    _emit(text, args.out, args.format)
    return 0

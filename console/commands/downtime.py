"""`hvconsole host plans` and `hvconsole host answer`: the downtime plans that touch your VMs and
your one-line answer to one, as the console window shows them to an owner (console/downtime.py).

    hvconsole host plans [--host HOST]... [--json] --user NAME --password-stdin
    hvconsole host answer HOST PLAN_ID approve|object [--text LINE] --user NAME --password-stdin

The hosts decide what is shown and who answers: through the JEA endpoint a plan holds only the
VMs you may view, and the host writes the answer with you from your token.
"""
from __future__ import annotations

import argparse
import contextlib
import re
import sys
from collections.abc import Callable, Iterator

from ..audit import ANSWER_TEXT_MAX, ANSWER_TEXT_PATTERN, PLAN_ID_PATTERN
from ..downtime import ANSWERS, PlansRead, read_plans
from ..errors import ConfigError
from ..session import Session, Setup
from ..text import one_line
from . import add_sign_in_options, print_json, setup, signed_in


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    plans = commands.add_parser(
        "plans", help="the downtime plans that touch your VMs, and the answers so far",
        description="The maintenance plans published to the hosts that touch VMs you hold a grant "
                    "on: the window, the reason, your VMs and what happens to each, and who "
                    "approved, objected or has not answered.")
    plans.add_argument("--host", action="append", default=[], metavar="HOST",
                       help="read this host only (repeat for more); every configured host else")
    add_sign_in_options(plans)
    plans.add_argument("--json", action="store_true")
    plans.set_defaults(func=run_plans)

    answer = commands.add_parser(
        "answer", help="approve or object to a downtime plan with one line",
        description="Your answer to plan PLAN_ID of HOST, written by the host to its event log "
                    "with you as its person (from your sign-in, never from the command line).")
    answer.add_argument("host", metavar="HOST")
    answer.add_argument("plan_id", metavar="PLAN_ID")
    answer.add_argument("answer", choices=ANSWERS)
    answer.add_argument("--text", default="", metavar="LINE",
                        help=f"one line for the planner, at most {ANSWER_TEXT_MAX} characters")
    add_sign_in_options(answer)
    answer.set_defaults(func=run_answer)


def _pattern(pattern: str) -> re.Pattern[str]:
    """A host's .NET pattern (\\A ... \\z) as Python reads it."""
    return re.compile(pattern.replace("\\z", "\\Z"))


@contextlib.contextmanager
def _signed_in(args: argparse.Namespace,
               hosts: list[str] | None = None) -> Iterator[tuple[Setup, Session]]:
    with setup(args) as world, signed_in(world, args, hosts) as session:
        yield world, session


def _names(world: Setup, session: Session) -> Callable[[str], str] | None:
    """A SID or account to its directory display name, signed in as the person (the policy
    names owners by display name)."""
    credentials = session.pool.gate.credentials
    if credentials is None or not credentials.password:
        return None
    found: dict[str, str] = {}

    def name(account: str) -> str:
        if account.lower() not in found:
            with world.directory.session(credentials.username, credentials.password) as d:
                principal = d.resolve(account)
            found[account.lower()] = principal.display_name if principal else ""
        return found[account.lower()]
    return name


def run_plans(args: argparse.Namespace) -> int:
    hosts = [h.lower() for h in args.host] or None
    with _signed_in(args, hosts) as (world, session):
        clients = [session.pool.client(h) for h in args.host] if args.host \
            else list(session.pool.clients.values())
        read: PlansRead = read_plans(clients, _names(world, session))
    current = read.current()
    if args.json:
        print_json({"plans": [{"host": p.host, "by": p.by, "time": p.time,
                               "plan": p.plan.publish_params()["plan"],
                               "answers": [a.__dict__ for a in read.answers_to(p)],
                               "tally": read.tally(p).line()} for p in current],
                    "failed": read.failed})
    else:
        print("\n\n".join(read.summary(p) for p in current) if current
              else "No planned maintenance touches your VMs.")
    for host, why in read.failed.items():
        print(one_line(f"{host}: not read: {why}"), file=sys.stderr)
    return 1 if read.failed and not read.shared else 0


def run_answer(args: argparse.Namespace) -> int:
    # Checked before signing in: nothing is sent for an answer the host would refuse.
    if not _pattern(PLAN_ID_PATTERN).match(args.plan_id):
        raise ConfigError(f"{args.plan_id!r} is not the id of a downtime plan "
                          "(HOST-YYYYMMDD-HHMM-xxxxxx, as `hvconsole host plans` shows it).",
                          "PLAN_ID")
    if not _pattern(ANSWER_TEXT_PATTERN).match(args.text):
        raise ConfigError(f"--text is one line of at most {ANSWER_TEXT_MAX} characters.", "--text")
    with _signed_in(args, [args.host.lower()]) as (_, session):
        done = session.pool.client(args.host).answer_plan(args.plan_id, args.answer, args.text)
    by = done.get("by") or "your account"
    print(one_line(f"The answer of {by} ({args.answer}) to plan {args.plan_id} is written to "
                   f"{args.host}'s event log."))
    return 0

"""`hvconsole audit verify|show|hosts`: check the audit trail, read it, and read what the hosts
recorded.

Reading records needs audit.read, so `show` signs in; `verify` reads no record's content (it
prints a count and the chain's last hash) and runs without sign-in, for scheduled checks on the
server that holds the trail. A trail kept in the person's own folder cannot protect itself
against that person, so `verify --hosts` signs in (audit.read) and holds the trail to the events
the hosts wrote of its actions (console.audit.compare_with_hosts): a record missing on either
side, altered, or cut off. `hosts` prints those events, every user's, from every host.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .. import review
from ..audit import (
    EVENT_HEADER, HOST_EVENTS_DEFAULT, HOST_EVENTS_MAX, AuditRecord, AuditTrail, HostComparison,
    compare_with_hosts, select_events, since_time,
)
from ..config import Config
from ..errors import AuditError, ConfigError
from ..export import csv_text
from ..session import Session
from ..text import one_line
from . import (
    add_sign_in_options, file_name, file_path, print_json, setup, signed_in, write_document,
)

TAMPERED = 2


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("audit", help="verify or read the console's audit trail")
    commands = p.add_subparsers(dest="audit_command", metavar="COMMAND", required=True)

    verify = commands.add_parser(
        "verify", help="check the hash chain; exit 2 at the first edited, removed, inserted, "
        "reordered or torn record; with --hosts also at a record the hosts' events disagree with")
    verify.add_argument("file", nargs="?", type=file_path, help="default: the configured trail")
    verify.add_argument("--hosts", action="store_true",
                        help="also hold the trail to the events every configured host wrote of "
                             "its actions (signs in; needs audit.read)")
    verify.add_argument("--config", type=file_path, metavar="FILE",
                        help="configuration file (with --hosts)")
    verify.add_argument("--demo", action="store_true", help="the built-in lab (with --hosts)")
    verify.add_argument("--user", help="your account, to sign in (with --hosts)")
    verify.add_argument("--password-stdin", action="store_true",
                        help="read the password from the first line of standard input (else a "
                             "prompt)")
    verify.add_argument("--sso", action="store_true",
                        help="with --hosts: sign in with your current Kerberos ticket, no password")
    verify.add_argument("--by", action="append", default=[], metavar="NAME|SID",
                        help="with --hosts: whose trail it is, when it names nobody any more "
                             "(repeatable)")
    verify.set_defaults(func=run_verify)

    show = commands.add_parser("show", help="print records, newest first (needs audit.read)")
    show.add_argument("file", nargs="?", type=file_path, help="default: the configured trail")
    add_sign_in_options(show, prompt=True)
    show.add_argument("--by", metavar="NAME|SID", help="only the records of this person")
    show.add_argument("--last", metavar="N", type=_positive, help="only the N newest records")
    show.add_argument("--json", action="store_true", help="a JSON array of records")
    show.set_defaults(func=run_show)

    hosts = commands.add_parser(
        "hosts", help="the events the hosts wrote of every user's calls, newest first (needs "
        "audit.read)")
    add_sign_in_options(hosts, prompt=True)
    hosts.add_argument("--since", type=_since, metavar="DATE",
                       help="from this day (YYYY-MM-DD) or UTC time (YYYY-MM-DDTHH:MM:SSZ) on")
    hosts.add_argument("--by", metavar="NAME|SID", help="only the calls of this person")
    hosts.add_argument("--vm", metavar="NAME|ID", help="only the calls on this VM")
    hosts.add_argument("--format", choices=("text", "csv", "json"), default="text")
    hosts.add_argument("--out", type=file_path, metavar="FILE", help="write to FILE instead of "
                       "stdout")
    hosts.add_argument("--limit", type=_limit, default=HOST_EVENTS_DEFAULT, metavar="N",
                       help=f"at most the N newest events of each host (default "
                            f"{HOST_EVENTS_DEFAULT}, at most {HOST_EVENTS_MAX})")
    hosts.set_defaults(func=run_hosts)


def run_verify(args: argparse.Namespace) -> int:
    if args.hosts:
        return _verify_with_hosts(args)
    if args.user or args.demo or args.by or args.sso:
        raise ConfigError("--user, --sso, --demo and --by go with --hosts: without it, audit "
                          "verify checks the chain alone and signs in nowhere.")
    path = _path(args.file)
    if not path.exists():
        raise AuditError(f"There is no audit trail at {path}.")
    return _print_chain(path, AuditTrail(path))


def _print_chain(path: Path, trail: AuditTrail) -> int:
    result = trail.verify()
    for line in result.repaired:
        print(f"line {line}: torn by an interrupted write, repaired by the record after it")
    for line in result.completed:
        print(f"line {line}: a whole record that lacked its newline, completed and kept by the "
              f"record after it")
    if result.unterminated is not None:
        print(f"line {result.unterminated}: a whole record without its newline; the next record "
              f"written completes it")
    if not result.ok:
        print(f"{path}: {one_line(result.problem or 'the chain is broken')}")
        print(f"{result.count} records intact before line {result.line}.")
        return TAMPERED
    print(f"{path}: {result.count} records, chain intact; last record's hash {result.head}")
    return 0


def _verify_with_hosts(args: argparse.Namespace) -> int:
    """The chain, then the trail held to every configured host's events of its actions."""
    if not args.user and not args.sso:
        raise ConfigError("audit verify --hosts signs in to read the hosts' events: give --user "
                          "(or --sso).")
    with setup(args) as world, signed_in(world, args) as session:
        session.require("audit.read")
        path = args.file if args.file is not None else world.audit.path
        if not path.exists():
            raise AuditError(f"There is no audit trail at {path}.")
        trail = AuditTrail(path)
        chained = _print_chain(path, trail)
        # Every event the hosts hold, not those after the trail's first record: a trail's own
        # times are what a replaced file would forge.
        read = review.read_audit_events(session.pool, "", HOST_EVENTS_MAX)
    compared = compare_with_hosts(trail, read.events, read.read, args.by)
    _print_comparison(compared, read)
    if chained or not compared.ok:
        return TAMPERED
    return 1 if read.failed or read.truncated else 0


def _print_comparison(compared: HostComparison, read: review.AuditRead) -> None:
    if read.read:
        print(one_line(f"hosts {', '.join(read.read)}: {compared.matched} of the trail's "
                       f"{compared.records} actions done on them match their events; "
                       f"{compared.events} events of the hosts belong to this trail"))
    for finding in compared.findings:
        print(one_line(str(finding)))
    for name, error in read.failed.items():
        print(one_line(f"{name}: not compared: its events could not be read: {error}"))
    for name in read.truncated:
        print(one_line(f"{name}: holds more than {HOST_EVENTS_MAX} events; older ones were not "
                       f"compared"))
    for name in compared.not_compared:
        print(one_line(f"{name}: not compared: it is not a configured host"))
    if compared.ok and read.read and not read.failed:
        print("the hosts' events agree with the trail")


def run_hosts(args: argparse.Namespace) -> int:
    with setup(args) as world, signed_in(world, args) as session:
        session.require("audit.read")
        read = review.read_audit_events(session.pool, args.since or "", args.limit)
    events = select_events(read.events, args.since, args.by, args.vm)
    if args.format == "json":
        text = json.dumps([e.to_json() for e in events], indent=2, ensure_ascii=False)
    elif args.format == "csv":
        text = csv_text(EVENT_HEADER, [e.row() for e in events])
    else:
        # one_line: a name holding a newline must not be able to print a fake event row.
        text = "".join(one_line(e.line()) + "\n" for e in events)
    if args.out is not None:
        args.out.write_text(text, encoding="utf-8", newline="")
        print(one_line(f"{len(events)} events written to {args.out}"), file=sys.stderr)
    elif text:
        write_document(text, args.format)
    for name, error in read.failed.items():
        print(one_line(f"{name}: not read: {error}"), file=sys.stderr)
    for name in read.truncated:
        print(one_line(f"{name}: only its {args.limit} newest events were read (--limit)"),
              file=sys.stderr)
    return 1 if read.failed else 0


def run_show(args: argparse.Namespace) -> int:
    with setup(args) as world, signed_in(world, args, hosts=()) as session:
        trail = session.audit_records() if args.file is None else _other_trail(session, args.file)
        if not trail.path.exists():
            raise AuditError(f"There is no audit trail at {trail.path}.")
        records = [r for r in trail.records() if _matches(r, args.by)]
    records.reverse()
    if args.last is not None:
        records = records[:args.last]
    if args.json:
        print_json([r.to_json() for r in records])
        return 0
    for record in records:
        print(_row(record))
    return 0


def _row(r: AuditRecord) -> str:
    target = f"{r.host}/{r.vm_name} ({r.vm_id})" if r.vm_id else r.host
    if r.decision:
        result = r.decision + (f": {r.reason}" if r.reason else "")
    elif r.outcome:
        result = r.outcome + (f": {r.error}" if r.error else "")
    else:
        result = r.reason  # a record of its own kind (config.insecure: the warning shown)
    if r.params:
        result += " " + json.dumps(r.params, sort_keys=True)
    # one_line: a name holding a newline must not be able to print a fake record row.
    return one_line(f"{r.time}  {r.user_name} on {r.workstation}  {r.action} {target}  {result}  "
                    f"[{r.correlation_id[:8]}]")


def _matches(record: AuditRecord, user: str | None) -> bool:
    if not user:
        return True
    wanted = user.casefold()
    return wanted in {record.user_sid.casefold(), record.user_name.casefold(),
                      record.user_name.rsplit("\\", 1)[-1].casefold()}


def _other_trail(session: Session, path: Path) -> AuditTrail:
    session.require("audit.read")
    return AuditTrail(path)


def _path(file: Path | None) -> Path:
    return file if file is not None else Config.load().audit_file


def _since(text: str) -> str:
    try:
        return since_time(file_name(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _limit(text: str) -> int:
    value = _positive(text)
    if value > HOST_EVENTS_MAX:
        raise argparse.ArgumentTypeError(f"at most {HOST_EVENTS_MAX}; got {text!r}")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number, 1 or more; got {text!r}")
    return value

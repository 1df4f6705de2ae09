"""`hvconsole audit verify|show`: check the hash chain of the audit trail and read it.

Reading records needs audit.read, so `show` signs in; `verify` reads no record's content (it
prints a count and the chain's last hash) and runs without sign-in, for scheduled checks on the
server that holds the trail.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..audit import AuditRecord, AuditTrail
from ..config import Config
from ..errors import AuditError
from ..session import Session, sign_in
from ..text import one_line
from . import add_sign_in_options, file_path, print_json, read_password, setup

TAMPERED = 2


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("audit", help="verify or read the console's audit trail")
    commands = p.add_subparsers(dest="audit_command", metavar="COMMAND", required=True)

    verify = commands.add_parser(
        "verify", help="check the hash chain; exit 2 at the first edited, removed, inserted, "
        "reordered or torn record")
    verify.add_argument("file", nargs="?", type=file_path, help="default: the configured trail")
    verify.set_defaults(func=run_verify)

    show = commands.add_parser("show", help="print records, newest first (needs audit.read)")
    show.add_argument("file", nargs="?", type=file_path, help="default: the configured trail")
    add_sign_in_options(show, prompt=True)
    show.add_argument("--by", metavar="NAME|SID", help="only the records of this person")
    show.add_argument("--last", metavar="N", type=_positive, help="only the N newest records")
    show.add_argument("--json", action="store_true", help="a JSON array of records")
    show.set_defaults(func=run_show)


def run_verify(args: argparse.Namespace) -> int:
    path = _path(args.file)
    if not path.exists():
        raise AuditError(f"There is no audit trail at {path}.")
    result = AuditTrail(path).verify()
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


def run_show(args: argparse.Namespace) -> int:
    password = read_password(args)
    with setup(args) as world, sign_in(world, args.user, password, hosts=()) as session:
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


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number, 1 or more; got {text!r}")
    return value

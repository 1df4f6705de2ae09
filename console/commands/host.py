"""`hvconsole host`: a Hyper-V host as a whole. `host impact` and `host downtime`
(console/commands/review.py); `host selftest` (console/selftest.py): certify a host by running
every operation against a VM the selftest makes and removes; `host document` (the VMs'
documentation kept on the host, console/documentation.py) and `host metering` (resource metering
on or off), both through the admin endpoint.

    hvconsole host selftest HV01 --user LAB\\adam [--jea-user LAB\\henry] [--password-stdin]
                            [--yes] [--report FILE] [--memory-mb 32]

The passwords never come from the command line: with --password-stdin the first line of standard
input is the administrator's (--user) and the second the delegated account's (--jea-user); else
each is asked for. Both accounts are checked against the directory first (the JEA account's
groups decide what its grants allow). Before anything is made the command says what it will
make and asks (--yes answers for a script; with passwords on standard input it must).
"""
from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import HostConfig
from ..documentation import DEFAULT_FOLDER
from ..errors import ConfigError, ConsoleError, CredentialsRejected, HostAccessDenied
from ..hosts import Credentials
from ..hosts import AdminClient, HostClient
from ..text import one_line, plain
from . import add_sign_in_options, file_path, read_password, setup
from .review import register_impact

if TYPE_CHECKING:  # the selftest loads only when one runs
    from ..selftest import Step

EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    host = sub.add_parser("host", help="a Hyper-V host as a whole")
    commands = host.add_subparsers(dest="host_command", metavar="ACTION", required=True)
    register_impact(commands)

    p = commands.add_parser(
        "selftest", help="certify a host: every operation against a disposable VM, then removed",
        description="Make a disposable VM (and an ISO in the host's library), run every "
                    "operation of the console against it through the admin endpoint and, with "
                    "--jea-user, the JEA endpoint, then remove both. Run it as a Hyper-V "
                    "administrator. docs/verification.md: 'Certify a host with hvconsole host "
                    "selftest'.",
        epilog=f"Exit codes: 0 every step passed and everything was removed, {EXIT_FAILED} a "
               f"step failed or something is left, {EXIT_INTERRUPTED} interrupted (after the "
               f"clean-up).")
    p.add_argument("host", metavar="HOST", help="a configured host")
    p.add_argument("--config", type=file_path, metavar="FILE",
                   help="configuration file (default: the user's config.toml)")
    p.add_argument("--demo", action="store_true",
                   help="use the built-in lab (demo directory, policy and hosts)")
    p.add_argument("--user", required=True,
                   help="a Hyper-V administrator of HOST: name, name@domain or DOMAIN\\name")
    p.add_argument("--jea-user", metavar="NAME",
                   help="also exercise the JEA endpoint as this delegated account")
    p.add_argument("--password-stdin", action="store_true",
                   help="read the passwords from standard input: the first line the "
                        "administrator's, the second the --jea-user's (else each is asked for)")
    p.add_argument("--yes", action="store_true",
                   help="do not ask before making the VM and ISO, or before removing what an "
                        "earlier run left")
    p.add_argument("--report", type=file_path, metavar="FILE",
                   help="the JSON report (default: hvconsole-selftest-HOST-TIME.json here)")
    p.add_argument("--memory-mb", type=_memory, default=32, metavar="MB",
                   help="the VM's startup memory (default 32, the least Hyper-V accepts; even)")
    p.set_defaults(func=run_selftest)

    d = commands.add_parser(
        "document", help="keep each VM's documentation on the host: a text file per VM and its Notes",
        description="Write, through the admin endpoint, one text file per VM of HOST into a folder "
                    "on the host (the policy's documentation of the VM and its configuration as the "
                    "host reports it) and an owner/contact line into each VM's Notes. What differs "
                    "from what is there is shown first; a file that is there is kept beside the new "
                    "one, and a file a person edited on the host is shown and asked about.")
    d.add_argument("host", metavar="HOST", help="a configured host")
    d.add_argument("--folder", default=DEFAULT_FOLDER, metavar="PATH",
                   help=f"the folder on the host (default {DEFAULT_FOLDER})")
    d.add_argument("--dry-run", action="store_true", help="show what would change, write nothing")
    d.add_argument("--yes", action="store_true",
                   help="do not ask before replacing files a person edited on the host")
    add_sign_in_options(d)
    d.set_defaults(func=run_document)

    m = commands.add_parser(
        "metering", help="Hyper-V resource metering on or off for every VM of a host",
        description="Turn Hyper-V resource metering on (Enable-VMResourceMetering) or off for "
                    "every VM of HOST, through the admin endpoint; the VM details then show what "
                    "Measure-VM reports (average CPU and memory since metering started).")
    m.add_argument("host", metavar="HOST", help="a configured host")
    m.add_argument("state", choices=("on", "off"))
    add_sign_in_options(m)
    m.set_defaults(func=run_metering)


def _memory(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of MB: {text!r}") from None
    if value < 32 or value % 2 or value > 4096:
        raise argparse.ArgumentTypeError("an even number of MB from 32 to 4096")
    return value


def _passwords(args: argparse.Namespace) -> tuple[str, str]:
    if args.password_stdin:
        admin = sys.stdin.readline().rstrip("\r\n")
        jea = sys.stdin.readline().rstrip("\r\n") if args.jea_user else ""
        if args.jea_user and not jea:
            raise ConsoleError("--password-stdin with --jea-user needs two lines on standard "
                               "input: the administrator's password, then the JEA account's.")
        return admin, jea
    admin = getpass.getpass(f"Password for {args.user}: ")
    jea = getpass.getpass(f"Password for {args.jea_user}: ") if args.jea_user else ""
    return admin, jea


def _ask(question: str, yes: bool) -> bool:
    """Ask on the terminal; --yes answers yes; without a terminal nothing is assumed."""
    if yes:
        return True
    if not sys.stdin.isatty():
        raise ConsoleError(f"{question} Standard input is not a terminal, so answer with --yes.")
    print(plain(f"{question} Type yes to go on: "), end="", file=sys.stderr, flush=True)
    return sys.stdin.readline().strip().lower() == "yes"


def _host_config(configs: list[HostConfig], name: str) -> HostConfig:
    found = next((h for h in configs if h.name.lower() == name.lower()), None)
    if found is None:
        raise ConfigError(f"{name} is not a configured host.", "hosts")
    return found


def _print_step(step: Step) -> None:
    mark = {"pass": "ok", "done": "..", "fail": "FAIL", "skip": "skip"}.get(step.outcome, "?")
    print(one_line(f"{mark:4} {step.endpoint:5} {step.group:10} {step.title} "
                   f"({step.seconds:.2f} s)"), flush=True)
    if step.outcome == "fail":
        print(one_line(f"     expected {step.expected}"))
        print(one_line(f"     {step.detail}"), flush=True)


def run_selftest(args: argparse.Namespace) -> int:
    from ..selftest import MiB, RecordingAdminClient, RecordingJeaClient, Selftest

    admin_password, jea_password = _passwords(args)
    with setup(args) as world:
        config = _host_config(world.config.hosts, args.host)
        admin_identity = world.directory.sign_in(args.user, admin_password)
        jea_identity = (world.directory.sign_in(args.jea_user, jea_password)
                        if args.jea_user else None)
        # The admin endpoint's kept PSRP session makes and removes things; the JEA endpoint is
        # the one delegated users reach, whatever this host's entry says.
        admin = RecordingAdminClient(replace(config, endpoint="admin", protocol="psrp"),
                                     Credentials(admin_identity.name, admin_password))
        jea = (RecordingJeaClient(replace(config, endpoint="jea", protocol="psrp"),
                                  Credentials(jea_identity.name, jea_password))
               if jea_identity else None)
        test = Selftest(config.name, admin, world.policy, jea=jea,
                        jea_sids=jea_identity.sids if jea_identity else (),
                        admin_user=admin_identity.name,
                        jea_user=jea_identity.name if jea_identity else "",
                        memory_bytes=args.memory_mb * MiB, progress=_print_step)
        try:
            found = test.find_leftovers()
            if not found.empty:
                print(f"An earlier selftest left this on {config.name}:", file=sys.stderr)
                for line in found.lines():
                    print(one_line(f"  {line}"), file=sys.stderr)
                if _ask("Remove it?", args.yes):
                    test.remove_leftovers(found)
                else:
                    print("Left as it is.", file=sys.stderr)
            print(f"This selftest makes on {config.name}:", file=sys.stderr)
            for line in test.plan():
                print(one_line(f"  {line}"), file=sys.stderr)
            if not _ask("Make them and run the selftest?", args.yes):
                print("Nothing was made.", file=sys.stderr)
                return EXIT_FAILED
            report = test.run(config.url)
        finally:
            admin.close()
            if jea is not None:
                jea.close()
    for line in report.summary():
        print(line)
    stamp = report.started.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    path: Path = args.report or Path(f"hvconsole-selftest-{config.name}-{stamp}.json")
    path.write_text(json.dumps(report.as_json(), indent=2, ensure_ascii=False) + "\n",
                    encoding="utf-8")
    print(one_line(f"report written to {path}"), file=sys.stderr)
    if report.interrupted:
        return EXIT_INTERRUPTED
    return 0 if report.ok else EXIT_FAILED


@contextlib.contextmanager
def _admin_client(args: argparse.Namespace) -> Iterator[tuple[Any, HostConfig, AdminClient | HostClient]]:
    """Sign in and open the host's admin endpoint: what only the host's administrators may
    change goes through it."""
    from ..hosts import admin_client

    password = read_password(args)
    with setup(args) as world:
        config = _host_config(world.config.hosts, args.host)
        identity = world.directory.sign_in(args.user, password)
        client = admin_client(config, Credentials(identity.name, password))
        try:
            yield world, config, client
        finally:
            client.close()


def _admin_failed(e: ConsoleError) -> int:
    print(one_line(str(e)), file=sys.stderr)
    if isinstance(e, HostAccessDenied | CredentialsRejected):
        print(one_line("This goes through the host's admin endpoint: run it as one of the "
                       "host's administrators."), file=sys.stderr)
    return EXIT_FAILED


def run_document(args: argparse.Namespace) -> int:
    from datetime import datetime

    from .. import documentation

    try:
        with _admin_client(args) as (world, config, client):
            changes = documentation.read_changes(client, world.policy, args.folder,
                                                 datetime.now())
            todo = documentation.to_write(changes)
            for c in changes:
                kept = f" (the file there is kept as {c.keep})" if c.keep and c in todo else ""
                notes = "; Notes: owner line updated" if c.notes_changed else ""
                print(one_line(f"{c.kind}: {c.vm.name}{kept}{notes}"))
                if c.kind == "edited on the host":
                    for line in c.diff().splitlines():
                        print(one_line(f"    {line}"))
            if args.dry_run:
                print("nothing written (--dry-run)")
                return 0
            edited = [c.vm.name for c in todo if c.kind == "edited on the host"]
            if edited and not _ask(f"{', '.join(edited)}: edited on {config.name}; the edits "
                                   "are kept beside the new file. Write?", args.yes):
                print("Nothing was written.", file=sys.stderr)
                return EXIT_FAILED
            client.write_documentation(args.folder, todo)
    except ConsoleError as e:
        return _admin_failed(e)
    print(one_line(f"{len(todo)} files written to {args.folder} on {config.name}"))
    return 0


def run_metering(args: argparse.Namespace) -> int:
    try:
        with _admin_client(args) as (_, config, client):
            total, on = client.set_metering(args.state == "on")
    except ConsoleError as e:
        return _admin_failed(e)
    print(one_line(f"Resource metering is on for {on} of {total} VMs on {config.name}."))
    return 0

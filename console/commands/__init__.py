"""Command groups of `hvconsole`; each module exposes register(subparsers).

What the commands share lives here: the sign-in options, reading the password, the world they act
in (and the warnings about it, on stderr), and writing documents to standard output: escaped for
a terminal, exact into a file or a pipe (console/text.py).
"""
from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..session import Extensions, Session, Setup, demo_world, sign_in, sign_in_with_ticket
from ..text import for_terminal, one_line


def file_name(text: str) -> str:
    """A file or folder name from the command line (argparse `type`): one the system can open,
    so a NUL character is a usage error, not a traceback."""
    if "\x00" in text:
        raise argparse.ArgumentTypeError("a file name cannot hold a NUL character")
    return text


def file_path(text: str) -> Path:
    return Path(file_name(text))


def add_sign_in_options(p: argparse.ArgumentParser, prompt: bool = False) -> None:
    """--config, --demo, --user and --password-stdin, or --sso. The password never comes from the
    command line (other users and shell history would see it): from stdin, or a prompt when
    `prompt`. With --sso there is none: the current Kerberos ticket signs in."""
    p.add_argument("--config", type=file_path, metavar="FILE",
                   help="configuration file (default: the user's config.toml); the policy always "
                        "comes from the computer's machine-wide configuration")
    p.add_argument("--demo", action="store_true",
                   help="use the built-in lab (demo directory, policy and hosts)")
    p.add_argument("--user", help="your account: name, name@domain or DOMAIN\\name (not with --sso)")
    p.add_argument("--password-stdin", action="store_true",
                   help="read the password from the first line of standard input"
                        + (" (else a prompt)" if prompt else ""))
    p.add_argument("--sso", action="store_true",
                   help="sign in with your current Kerberos ticket, no password: the Windows "
                        "sign-in, or the ticket cache of kinit (KRB5CCNAME honoured)")
    p.set_defaults(password_prompt=prompt)


def sso_requested(args: argparse.Namespace) -> bool:
    """--sso, checked against what it replaces (ConfigError when given with --user or
    --password-stdin)."""
    if not getattr(args, "sso", False):
        return False
    if args.user or args.password_stdin:
        raise ConfigError("--sso signs in with your Kerberos ticket: give neither --user nor "
                          "--password-stdin with it.", "--sso")
    return True


def read_password(args: argparse.Namespace) -> str:
    if sso_requested(args):
        raise ConfigError("--sso reads no password.", "--sso")
    if not args.user:
        raise ConfigError("Give --user NAME (with --password-stdin), or --sso to sign in with "
                          "your Kerberos ticket.", "--user")
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not getattr(args, "password_prompt", True):
        raise ConfigError("Give --password-stdin (the password is never read from the command "
                          "line), or --sso to sign in with your Kerberos ticket.", "--password-stdin")
    return getpass.getpass(f"Password for {args.user}: ")


def signed_in(world: Setup, args: argparse.Namespace,
              hosts: Iterable[str] | None = None) -> Session:
    """The session of --sso (the current Kerberos ticket) or of --user and its password."""
    if sso_requested(args):
        return sign_in_with_ticket(world, hosts=hosts)
    return sign_in(world, args.user, read_password(args), hosts=hosts)


def extensions(args: argparse.Namespace) -> Extensions:
    """What the application's entry point added (the demo, when the lab is shipped)."""
    return getattr(args, "extensions", None) or Extensions()


@contextlib.contextmanager
def setup(args: argparse.Namespace) -> Iterator[Setup]:
    """The configured world, or with --demo the demo world for as long as the command runs."""
    if args.demo:
        with demo_world(extensions(args)) as world:
            yield world
    else:
        world = Setup.load(args.config)
        warn(world.warnings)
        yield world


def warn(warnings: Iterable[str]) -> None:
    """Each warning about the world a command acts in, on stderr, before it signs in."""
    for warning in warnings:
        print(f"hvconsole: warning: {one_line(warning)}", file=sys.stderr)


def stdout_is_terminal() -> bool:
    isatty = getattr(sys.stdout, "isatty", None)
    return bool(isatty and isatty())


def write_document(text: str, fmt: str) -> None:
    """A document (text, csv, html, json) on standard output: escaped when that is a terminal,
    the exact data when it is a file or a pipe."""
    sys.stdout.write(for_terminal(text, fmt, stdout_is_terminal()))
    if not text.endswith("\n"):
        sys.stdout.write("\n")


def print_json(data: Any) -> None:
    """JSON on standard output (UTF-8 as it is; escaped for a terminal: `write_document`)."""
    write_document(json.dumps(data, indent=2, ensure_ascii=False), "json")

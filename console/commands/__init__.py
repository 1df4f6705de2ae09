"""Command groups of `hvconsole`; each module exposes register(subparsers).

What the commands that sign in share lives here: their options, reading the password, and the
policy they act under.
"""
from __future__ import annotations

import argparse
import contextlib
import getpass
import sys
from collections.abc import Iterator
from pathlib import Path

from ..session import Extensions, Setup, demo_world


def add_sign_in_options(p: argparse.ArgumentParser, prompt: bool = False) -> None:
    """--config, --demo, --user and --password-stdin. The password never comes from the command
    line (other users and shell history would see it): from stdin, or a prompt when `prompt`."""
    p.add_argument("--config", type=Path, metavar="FILE",
                   help="configuration file (default: the user's config.toml)")
    p.add_argument("--demo", action="store_true",
                   help="use the built-in lab (demo directory, policy and hosts)")
    p.add_argument("--user", required=True, help="your account: name, name@domain or DOMAIN\\name")
    p.add_argument("--password-stdin", action="store_true", required=not prompt,
                   help="read the password from the first line of standard input"
                        + (" (else a prompt)" if prompt else ""))


def read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return getpass.getpass(f"Password for {args.user}: ")


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
        yield Setup.load(args.config, extensions(args))

"""Command groups of `hvconsole`; each module exposes register(subparsers).

What the commands that sign in share lives here: their options, reading the password, and the
policy they act under.
"""
from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from ..config import Config
from ..errors import ConfigError
from ..lab.demo import DEMO_POLICY, demo_policy_text
from ..policy import Policy


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


def load_config(args: argparse.Namespace) -> Config:
    return Config.load(args.config) if args.config else Config.load()


def load_policy(config: Config) -> Policy:
    """The configured policy; a demo configuration without one gets today's demo policy."""
    if config.policy_path:
        return Policy.load(config.policy_path)
    if config.demo:
        return Policy.from_text(demo_policy_text(), str(DEMO_POLICY))
    raise ConfigError("No policy is configured: set policy.path in the machine-wide "
                      "configuration.", "policy.path")

"""`hvconsole`: the command line. Each command group lives in console/commands/<group>.py and
exposes `register(subparsers)`; a command function returns the exit code. The application's
entry point (hvconsole/cli.py) adds its own commands and the demo through `Extensions`.

No traceback reaches a person for bad input: a ConsoleError becomes its sentence and exit code 1
(or the code the command chose); anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from . import __version__
from .errors import ConsoleError
from .session import NO_EXTENSIONS, Extensions
from .text import plain


def build_parser(extensions: Extensions = NO_EXTENSIONS) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hvconsole", description="Hyper-V Delegation Console: delegated VM administration.")
    parser.add_argument("--version", action="version", version=f"hvconsole {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    from . import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub)
    for module in extensions.commands:
        module.register(sub)
    parser.set_defaults(extensions=extensions)
    return parser


def main(argv: Sequence[str] | None = None, extensions: Extensions = NO_EXTENSIONS) -> int:
    parser = build_parser(extensions)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except ConsoleError as error:
        print(f"hvconsole: {plain(str(error))}", file=sys.stderr)
        return getattr(error, "exit_code", 1)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

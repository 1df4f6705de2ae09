"""`hvconsole jea generate`: a host's JEA endpoint files from the delegation policy."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import jea
from ..errors import ConsoleError, PolicyError
from ..policy import Policy
from ..text import plain
from . import file_name


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("jea", help="generate the JEA endpoint that enforces the policy on a host")
    commands = p.add_subparsers(dest="jea_command", metavar="ACTION", required=True)
    generate = commands.add_parser(
        "generate", help="write HvConsole.psrc, HvConsole.pssc and HvConsole.Grants.psd1 for a host")
    generate.add_argument("--policy", required=True, type=file_name, metavar="FILE",
                          help="the delegation policy")
    generate.add_argument("--host", required=True, help="the host, as named in the policy")
    generate.add_argument("--out", required=True, type=file_name, metavar="DIR",
                          help="folder to write into")
    generate.set_defaults(func=run_generate)


def run_generate(args: argparse.Namespace) -> int:
    try:
        policy = Policy.load(args.policy)
    except PolicyError as error:
        for problem in error.problems:
            print(plain(str(problem)), file=sys.stderr)
        return 2
    try:
        written = jea.write(policy, args.host, Path(args.out))
    except OSError as error:
        raise ConsoleError(f"The JEA files cannot be written to {args.out}: "
                           f"{error.strerror or error}.") from None
    for path in written:
        print(plain(str(path)))
    print(plain(f"Endpoint {jea.ENDPOINT_NAME} for {args.host}, policy sha256 {policy.digest[:16]}: "
                f"copy the folder to the host and run installer/jea/Register-HvConsoleEndpoint.ps1 "
                f"-Source <folder> as an administrator."))
    return 0

"""`hvconsole demo`: the console against the built-in lab."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the console against the built-in lab (no Windows needed)")
    p.add_argument("--smoke", action="store_true", help="headless: sign in, load, print, exit")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print("The demo is not ready yet: the lab and the window are being built.")
    return 0

"""`hvconsole demo`: the console against the built-in lab.

The lab hosts and the demo directory run in this process; the audit trail and the window
settings of the demo live in a temporary folder, so the demo leaves nothing behind.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from console.session import Extensions, demo_world

SMOKE_USER = ("henry", "henry-demo")  # helpdesk: docs/lab-world.md


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("demo", help="run the console against the built-in lab (no Windows needed)")
    p.add_argument("--smoke", action="store_true",
                   help="headless: sign in as henry, load the VM list, print the count, exit")
    p.set_defaults(func=lambda args: run_demo(args.extensions, smoke=args.smoke))


def run_demo(extensions: Extensions, smoke: bool = False) -> int:
    if smoke:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from ui.main import launch

    with demo_world(extensions) as setup:
        folder = Path(setup.config.audit_path).parent  # the demo's temporary folder
        return int(launch(setup, settings_path=folder / "window.ini",
                          smoke_user=SMOKE_USER if smoke else None))

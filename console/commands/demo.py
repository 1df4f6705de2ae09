"""`hvconsole demo`: the console against the built-in lab.

The lab hosts and the demo directory run in this process; the audit trail and the window
settings of the demo live in a temporary folder, so the demo leaves nothing behind.
"""
from __future__ import annotations

import argparse
import importlib
import os
from pathlib import Path

from ..lab.demo import demo_lab

SMOKE_USER = ("henry", "henry-demo")  # helpdesk: docs/lab-world.md


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("demo", help="run the console against the built-in lab (no Windows needed)")
    p.add_argument("--smoke", action="store_true",
                   help="headless: sign in as henry, load the VM list, print the count, exit")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.smoke:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from ..audit import AuditTrail
    from ..directory import open_directory

    # The desktop console is a separate layer the core never imports; this command only launches
    # it, so it is looked up by name at run time.
    gui = importlib.import_module("ui.main")
    with demo_lab() as (config, policy):
        folder = Path(config.audit_path).parent  # the demo's temporary folder
        return int(gui.launch(config, open_directory(config.directory, demo=True), policy,
                              AuditTrail(config.audit_file), demo=True,
                              settings_path=folder / "window.ini",
                              smoke_user=SMOKE_USER if args.smoke else None))

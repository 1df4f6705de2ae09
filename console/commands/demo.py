"""`hvconsole demo`: the console against the built-in lab.

The lab hosts and the demo directory run in this process; the audit trail and the window
settings of the demo live in a temporary folder, so the demo leaves nothing behind.
"""
from __future__ import annotations

import argparse
import importlib
import os
import tempfile
from pathlib import Path

from ..config import Config
from ..errors import ConfigError
from ..lab.demo import demo_policy_file

SMOKE_USER = ("henry", "henry-demo")  # helpdesk: docs/lab-world.md


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the console against the built-in lab (no Windows needed)")
    p.add_argument("--smoke", action="store_true",
                   help="headless: sign in as henry, load the VM list, print the count, exit")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.smoke:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    try:
        from ..lab.runner import Lab
    except ImportError:
        raise ConfigError("The demo lab is not available in this build.") from None
    from ..audit import AuditTrail
    from ..directory import open_directory
    from ..policy import Policy

    # The desktop console is a separate layer the core never imports; this command only launches
    # it, so it is looked up by name at run time.
    gui = importlib.import_module("ui.main")
    with tempfile.TemporaryDirectory(prefix="hvconsole-demo-") as folder:
        policy_path = demo_policy_file(Path(folder))  # its dated grants moved to today
        policy = Policy.load(policy_path)
        # Delegated users reach the hosts through the JEA endpoint generated from the policy.
        lab = Lab.start(durations=None, jea_policy=policy)
        try:
            config = Config(hosts=lab.host_configs(), policy_path=str(policy_path),
                            audit_path=str(Path(folder) / "audit.jsonl"), demo=True)
            audit = AuditTrail(config.audit_file)
            directory = open_directory(config.directory, demo=True)
            return int(gui.launch(config, directory, policy, audit, demo=True,
                                  settings_path=Path(folder) / "window.ini",
                                  smoke_user=SMOKE_USER if args.smoke else None))
        finally:
            lab.stop()

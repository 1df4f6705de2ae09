"""Start the demo offscreen, sign in, and save a PNG of the main window to docs/screenshot.png.

    .venv/bin/python tools/screenshot.py [--user olivia] [--out docs/screenshot.png]
        [--screen 1024x768] [--scale 1.5]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from console.audit import AuditTrail  # noqa: E402
from console.config import Config, HostConfig  # noqa: E402
from console.session import Setup  # noqa: E402
from lab.demo import publish_demo_plan  # noqa: E402
from lab.directory import LabDirectory  # noqa: E402
from lab.runner import Lab  # noqa: E402
from console.paths import LAB_DATA  # noqa: E402
from console.policy import Policy  # noqa: E402
from PySide6.QtCore import QSettings  # noqa: E402
from ui.app import Services, make_application  # noqa: E402
from ui.main import sign_in_headless, wait_for  # noqa: E402
from ui.mainwindow import MainWindow  # noqa: E402
from ui.signin import DEMO_ACCOUNTS  # noqa: E402
from ui.tasks import Tasks  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--user", default="olivia")
    parser.add_argument("--select", default="shop-app01", help="VM to select for the details pane")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshot.png")
    parser.add_argument("--screen", default="1440x820",
                        help="the screen the window fills, in pixels (e.g. 1024x768)")
    parser.add_argument("--scale", type=float, default=1.0, help="display scaling, e.g. 1.5")
    args = parser.parse_args()
    # The scaling is read when the application starts: a 1024x768 screen at 150% holds a window
    # of 683x512 device-independent pixels.
    os.environ["QT_SCALE_FACTOR"] = str(args.scale)
    width, height = (int(int(n) / args.scale) for n in args.screen.split("x"))
    password = next(a.password for a in DEMO_ACCOUNTS if a.user == args.user)
    app = make_application()
    app.setStyle("Fusion")
    policy = Policy.load(LAB_DATA / "policy.toml")
    lab = Lab.start(jea_policy=policy)
    publish_demo_plan(lab, policy)  # the demo's downtime plan of HV02: its notice shows
    with tempfile.TemporaryDirectory() as folder:
        config = Config(hosts=[HostConfig(name=h.name, url=h.url, endpoint="jea")
                               for h in lab.hosts.values()], demo=True)
        services = Services(
            Setup(config, policy, LabDirectory(), AuditTrail(Path(folder) / "audit.jsonl")),
            settings=QSettings(str(Path(folder) / "window.ini"), QSettings.Format.IniFormat),
            demo_accounts=DEMO_ACCOUNTS)
        tasks = Tasks(lambda e: print(f"error: {e}", file=sys.stderr))
        dialog, session = sign_in_headless(services, tasks, args.user, password)
        if session is None:
            print(f"sign-in failed: {dialog.error.text()}", file=sys.stderr)
            return 1
        window = MainWindow(services, session, tasks)
        window.resize(width, height)
        window.show()
        done: list[bool] = []
        window.refreshed.connect(lambda: done.append(True))
        window.start()
        wait_for(lambda: bool(done), 60)
        wait_for(lambda: window.plans.read is not None, 30)
        window.refresh_timer.stop()
        window.select_vm(args.select)
        window.details.tabs.setCurrentIndex(1)  # the checkpoint tree
        window.details.tree.setCurrentIndex(window.details.checkpoint_model.index(0, 0))
        wait_for(lambda: False, 0.3)  # let layouts settle
        args.out.parent.mkdir(parents=True, exist_ok=True)
        window.grab().save(str(args.out))
        print(f"saved {args.out} ({window.model.rowCount()} VMs, signed in as {session.identity.name})")
        window.close()
        session.close()
    lab.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

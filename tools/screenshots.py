"""Every window of the console, against the demo lab, as a person sees it on a 1024x768 screen
and on the same screen at 150% scaling: docs/screens/<window>-<scale>.png.

    .venv/bin/python tools/screenshots.py [--scale 1.5] [--out docs/screens]

One scale a run (Qt reads the scaling when the application starts); without --scale it runs
itself once for each of 1 and 1.5.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SCREEN = (1024, 768)
# The offscreen platform's screen is 800x600 unless told: a 1024x768 one (Qt 6.5+ configfile).
_SCREEN_FILE = Path(tempfile.gettempdir()) / "hvconsole-screen.json"
_SCREEN_FILE.write_text(json.dumps({"screens": [{"name": "screen", "x": 0, "y": 0, "width": SCREEN[0],
                                                 "height": SCREEN[1], "logicalDpi": 96,
                                                 "logicalBaseDpi": 96, "dpr": 1}]}))
if os.environ.get("QT_QPA_PLATFORM") != "xcb":  # under Xvfb (--xvfb) the X screen is 1024x768
    os.environ["QT_QPA_PLATFORM"] = f"offscreen:configfile={_SCREEN_FILE}"


def shoot(scale: float, out: Path) -> list[Path]:
    os.environ["QT_SCALE_FACTOR"] = str(scale)
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QWidget

    from console.audit import AuditTrail
    from console.config import Config, HostConfig
    from console.inventory import Action, IsoFile
    from console.paths import LAB_DATA
    from console.policy import Policy
    from console.session import Setup
    from lab.demo import publish_demo_plan
    from lab.directory import LabDirectory
    from lab.runner import Lab
    from ui.activity import ActivityWindow
    from ui.app import Services, make_application
    from ui.dialogs import IsoDialog, SettingsDialog
    from ui.first_run import FirstRunDialog
    from ui.main import sign_in_headless, wait_for
    from ui.mainwindow import MainWindow
    from console.kerberos import Ticket
    from ui.signin import DEMO_ACCOUNTS, SignInDialog, WindowsSignIn
    from ui.tasks import Tasks
    from ui.text import fit_on_screen

    app = make_application()
    width, height = (int(n / scale) for n in SCREEN)
    suffix = "100" if scale == 1 else f"{round(scale * 100)}"
    written: list[Path] = []

    def save(name: str, widget: QWidget, size: tuple[int, int] | None = None) -> None:
        fit_on_screen(widget, *(size or (width, height)))
        widget.show()
        wait_for(lambda: False, 0.3)  # layouts and the first paint settle
        path = out / f"{name}-{suffix}.png"
        widget.grab().save(str(path))
        written.append(path)
        widget.close()

    policy = Policy.load(LAB_DATA / "policy.toml")
    with Lab.start(jea_policy=policy) as lab, tempfile.TemporaryDirectory() as folder:
        publish_demo_plan(lab, policy)  # HV02's downtime plan, answered by olivia and hannah
        config = Config(hosts=[HostConfig(name=h.name, url=h.url, endpoint="jea")
                               for h in lab.hosts.values()], demo=True)
        setup = Setup(config, policy, LabDirectory(), AuditTrail(Path(folder) / "audit.jsonl"))
        services = Services(setup, QSettings(str(Path(folder) / "w.ini"), QSettings.Format.IniFormat),
                            demo_accounts=DEMO_ACCOUNTS)
        tasks = Tasks(lambda e: print(f"error: {e}", file=sys.stderr))
        save("sign-in", SignInDialog(tasks, services.directory.sign_in, services.settings,
                                     DEMO_ACCOUNTS), (440, 300))
        # Windows sign-in as a domain-joined workstation offers it: the ticket's owner, one click.
        windows = WindowsSignIn(lambda: Ticket("olivia@LAB.EXAMPLE", "LAB.EXAMPLE", None),
                                lambda: services.directory.sign_in("olivia", "olivia-demo"))
        save("sign-in-windows", SignInDialog(tasks, services.directory.sign_in, services.settings,
                                             sso=windows), (440, 240))
        save("first-run", FirstRunDialog(None, tasks, config_path=Path(folder) / "c.toml",
                                         machine_policy=""), (760, 560))
        password = next(a.password for a in DEMO_ACCOUNTS if a.user == "adam")
        _, session = sign_in_headless(services, tasks, "adam", password)
        assert session is not None
        window = MainWindow(services, session, tasks)
        done: list[bool] = []
        window.refreshed.connect(lambda: done.append(True))
        window.start()
        wait_for(lambda: bool(done), 60)
        window.refresh_timer.stop()
        # One action of this person's, so the activity list and "My activity" have something.
        vm = next(r.vm for r in window.model.rows if r.vm.name == "shop-web01")
        window.perform(vm, Action.CHECKPOINT_CREATE, name="Before the patch")
        wait_for(lambda: not tasks.running, 60)
        window.select_vm("shop-web01")
        # Its screen and details, read from its host when its details are opened.
        hardware = window.details.hardware
        wait_for(lambda: window.details.screen_view.image is not None
                 and hardware.fields["version"].text() != "", 30)
        save("main", window)
        tabs = window.details.tabs
        tabs.setCurrentIndex(next(i for i in range(tabs.count()) if tabs.tabText(i) == "Hardware"))
        save("hardware", window)
        tabs.setCurrentIndex(0)
        # The checkpoint tree: "Now" under the checkpoint shop-app01 stands on, its menu's Revert.
        window.select_vm("shop-app01")
        tabs = window.details.tabs
        tabs.setCurrentIndex(next(i for i in range(tabs.count()) if tabs.tabText(i) == "Checkpoints"))
        save("checkpoints", window)
        tabs.setCurrentIndex(0)
        # The VMs grouped by cluster, host and application: the demo's cluster CL01 chosen.
        from ui.groups import Group

        window.groups_action.setChecked(True)
        window.groups.choose(Group("cluster", "CL01"))
        sizes = window._panes.sizes()
        if scale > 1:  # no room for three panes at 150%: the details pane put away, as a person
            window.details.hide()  # there would drag it shut
            window._panes.setSizes([160, max(sum(sizes) - 160, 300), 0])
        save("groups", window)
        window.details.show()
        window._panes.setSizes(sizes)
        window.groups.choose(Group("all"))
        # A host's capacity: memory, each place that holds VM files, its VMs by state.
        details = window.open_host_details("HV03")
        assert details is not None
        save("host-details", details, (620, 420))
        window.open_review()
        wait_for(lambda: window._review is not None, 60)
        assert window._review is not None
        save("review", window._review)
        # The Hardening tab: HV02's local accounts in Hyper-V Administrators (docs/lab-world.md).
        review = window._review
        review.tabs.setCurrentIndex(review.tabs.indexOf(review.hardening_view.parentWidget()))
        review.hardening_choice.setCurrentIndex(review.hardening_choice.findText("HV02"))
        save("review-hardening", review)
        activity = ActivityWindow(services.audit, session.identity, tasks)
        activity.reload()
        wait_for(lambda: not tasks.running, 30)
        save("activity", activity, (900, 420))
        save("settings", SettingsDialog(config, Path(folder) / "c.toml"), (640, 480))
        isos = [IsoFile("D:\\ISO\\WindowsServer2022.iso", 5 << 30),
                IsoFile("D:\\ISO\\ubuntu-24.04-live-server-amd64.iso", 2 << 30)]
        save("insert-iso", IsoDialog("HV01", isos, "shop-web01"), (640, 360))
        # Downtime: the plans touching this person's VMs (the notice's window), and the planner
        # of the review's Host impact tab with the answers to HV02's plan.
        wait_for(lambda: window.plans.read is not None, 30)
        plans = window.plans.open()
        assert plans is not None
        save("downtime-plans", plans, (860, 560))
        review = window._review
        review.host_choice.setCurrentIndex(review.host_choice.findData("HV02"))
        planner = review.plan_downtime()
        assert planner is not None
        planner.window_field.setText("2026-12-19 22:00/4h")
        planner.reason.setText("Storage controller replacement")
        planner.make()
        planner.read_answers()
        wait_for(lambda: not tasks.running, 30)
        save("downtime-planner", planner, (900, 620))
        # The VMs' documentation on HV01, read and shown before anything is written.
        review.host_choice.setCurrentIndex(review.host_choice.findData("HV01"))
        documenting = review.document_host()
        assert documenting is not None
        documenting.read()
        wait_for(lambda: documenting.model.rowCount() > 0, 60)
        save("host-documentation", documenting, (760, 520))
        wait_for(lambda: not tasks.running, 30)
        tasks.shutdown()
        session.close()
    app.quit()
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screens")
    parser.add_argument("--xvfb", action="store_true",
                        help="real X11 windows on a 1024x768 Xvfb screen (Debian: xvfb, libxcb-cursor0, ...)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.scale is None:
        for scale in ("1", "1.5"):
            command = [sys.executable, __file__, "--scale", scale, "--out", str(args.out)]
            env = dict(os.environ)
            if args.xvfb:
                command = ["xvfb-run", "-a", "-s", f"-screen 0 {SCREEN[0]}x{SCREEN[1]}x24", *command]
                env["QT_QPA_PLATFORM"] = "xcb"
            subprocess.run(command, check=True, env=env)
        return 0
    for path in shoot(args.scale, args.out):
        print(f"saved {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Start the console: sign in, open the main window, run until it closes."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEventLoop, QSettings, QTimer

from console.errors import ConfigError, ConsoleError

from .app import Services, Session, make_application
from .errors import install_excepthook, show_exception
from .mainwindow import MainWindow
from .signin import DEMO_ACCOUNTS, SignInDialog
from .tasks import Tasks


def run_console(services: Services) -> int:
    """The interactive console; returns the exit code."""
    app = make_application()
    install_excepthook()
    tasks = Tasks(show_exception)
    dialog = SignInDialog.ask(tasks, services.directory.sign_in, services.settings,
                              services.demo_accounts)
    if dialog is None or dialog.identity is None:
        tasks.shutdown()
        return 0
    session = services.open_session(dialog.identity, dialog.password)
    window = MainWindow(services, session, tasks)
    window.show()
    window.start()
    try:
        return app.exec()
    finally:
        tasks.shutdown()
        session.close()


def wait_for(condition: Callable[[], bool], timeout_s: float) -> bool:
    """Turn the event loop until `condition` holds or the time is up (for headless runs)."""
    loop = QEventLoop()
    poll = QTimer()
    poll.setInterval(20)
    poll.timeout.connect(lambda: loop.quit() if condition() else None)
    give_up = QTimer()
    give_up.setSingleShot(True)
    give_up.timeout.connect(loop.quit)
    poll.start()
    give_up.start(int(timeout_s * 1000))
    if not condition():
        loop.exec()
    poll.stop()
    give_up.stop()
    return condition()


def sign_in_headless(services: Services, tasks: Tasks, user: str, password: str,
                     timeout_s: float = 60.0) -> tuple[SignInDialog, Session | None]:
    """Drive the real sign-in dialog without a person (smoke test, screenshot)."""
    dialog = SignInDialog(tasks, services.directory.sign_in, services.settings,
                          services.demo_accounts)
    dialog.user_field.setText(user)
    dialog.password_field.setText(password)
    dialog.submit()
    wait_for(lambda: dialog.identity is not None or not dialog.signing_in, timeout_s)
    if dialog.identity is None:
        return dialog, None
    return dialog, services.open_session(dialog.identity, dialog.password)


def smoke(services: Services, user: str, password: str, timeout_s: float = 60.0) -> int:
    """Sign in, load the list, print how many VMs the user sees; 0 when all of that worked."""
    make_application()
    tasks = Tasks(lambda error: print(f"error: {error}", file=sys.stderr))
    dialog, session = sign_in_headless(services, tasks, user, password, timeout_s)
    if session is None:
        print(f"sign-in failed: {dialog.error.text() or 'no answer'}", file=sys.stderr)
        return 1
    window = MainWindow(services, session, tasks)
    done: list[bool] = []
    window.refreshed.connect(lambda: done.append(True))
    window.start()
    ok = wait_for(lambda: bool(done), timeout_s)
    window.refresh_timer.stop()
    hosts = window.hosts_bar.results
    print(f"signed in as {session.identity.name}; {window.model.rowCount()} VMs visible; hosts: "
          + ", ".join(f"{r.host} {r.status.value}" for r in hosts.values()))
    wait_for(lambda: not tasks.running, timeout_s)
    window.close()
    tasks.shutdown()
    session.close()
    return 0 if ok and all(r.error is None for r in hosts.values()) else 1


def launch(config: Any, directory: Any, policy: Any, audit: Any, *, demo: bool = False,
           settings_path: Path | None = None, smoke_user: tuple[str, str] | None = None) -> int:
    """Build the services from core objects and run the console (or its headless smoke run)."""
    make_application()
    settings = (QSettings(str(settings_path), QSettings.Format.IniFormat) if settings_path
                else QSettings())
    services = Services(config=config, directory=directory, policy=policy, audit=audit,
                        settings=settings, demo_accounts=DEMO_ACCOUNTS if demo else ())
    try:
        if smoke_user is not None:
            return smoke(services, *smoke_user)
        return run_console(services)
    finally:
        # Written now, while its folder exists (the demo's is removed when this returns): a
        # QSettings left to its destructor would create that folder again.
        settings.sync()


def start(config_path: Path | None = None) -> int:
    """`hvconsole` with no command: first-run set-up when nothing is configured, then sign-in and
    the main window against the configured directory, policy and hosts."""
    from console.audit import AuditTrail
    from console.config import Config, user_config_path
    from console.directory import open_directory
    from console.logs import setup_logging
    from console.policy import Policy

    from .first_run import FirstRunDialog, needs_first_run

    setup_logging()
    make_application()
    install_excepthook()
    path = config_path or user_config_path()
    if needs_first_run(path):
        choice = FirstRunDialog.ask(None, Tasks(show_exception), config_path=path)
        if choice is None:
            return 0
        if choice == FirstRunDialog.DEMO:
            from console.commands.demo import run as run_demo

            return run_demo(argparse.Namespace(smoke=False))
    try:
        config = Config.load(path)
        if not config.policy_path:
            raise ConfigError("No policy is configured: set policy.path in the machine-wide "
                              "configuration, or ask your administrators where it is.", "policy.path")
        policy = Policy.load(config.policy_path)
        directory = open_directory(config.directory, config.demo)
        audit = AuditTrail(config.audit_file)
    except ConsoleError as error:
        show_exception(error, None)
        return 1
    return launch(config, directory, policy, audit, demo=config.demo)

"""Start the console: sign in, open the main window, run until it closes."""
from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QEventLoop, QSettings, QTimer

from console.errors import ConsoleError
from console.session import NO_EXTENSIONS, Extensions, Session, Setup

from .app import Services, make_application
from .errors import install_excepthook, show_exception
from .mainwindow import MainWindow
from .signin import DEMO_ACCOUNTS, SignInDialog
from .tasks import Tasks


def run_console(services: Services) -> int:
    """The interactive console, again after each "Sign out"; returns the exit code."""
    app = make_application()
    install_excepthook()
    while True:
        tasks = Tasks(show_exception)
        dialog = SignInDialog.ask(tasks, services.directory.sign_in, services.settings,
                                  services.demo_accounts, warnings=services.setup.warnings,
                                  sso=services.windows_sign_in)
        if dialog is None or dialog.identity is None:
            tasks.shutdown()
            return 0
        session = services.open_session(dialog.identity, dialog.password, sso=dialog.sso)
        window = MainWindow(services, session, tasks)
        window.show()
        window.start()
        try:
            code = app.exec()
        finally:
            tasks.shutdown()
            session.close()
        if not window.signed_out:
            return code


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
                          services.demo_accounts, warnings=services.setup.warnings)
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


def launch(setup: Setup, *, settings_path: Path | None = None, config_path: Path | None = None,
           smoke_user: tuple[str, str] | None = None) -> int:
    """Run the console (or its headless smoke run) over a core `Setup`."""
    make_application()
    settings = (QSettings(str(settings_path), QSettings.Format.IniFormat) if settings_path
                else QSettings())
    services = Services(setup, settings, config_path=config_path,
                        demo_accounts=DEMO_ACCOUNTS if setup.demo else ())
    try:
        if smoke_user is not None:
            return smoke(services, *smoke_user)
        return run_console(services)
    finally:
        # Written now, while its folder exists (the demo's is removed when this returns): a
        # QSettings left to its destructor would create that folder again.
        settings.sync()


def start(config_path: Path | None = None, extensions: Extensions = NO_EXTENSIONS,
          run_demo: Callable[[], int] | None = None) -> int:
    """The desktop console: first-run set-up when nothing is configured (it offers the demo when
    `run_demo` is given), then sign-in and the main window against the configured world."""
    from console.config import user_config_path
    from console.logs import setup_logging

    from console.config import needs_first_run

    from .first_run import FirstRunDialog

    setup_logging()
    make_application()
    install_excepthook()
    path = config_path or user_config_path()
    if needs_first_run(path):
        choice = FirstRunDialog.ask(None, Tasks(show_exception), config_path=path,
                                    offer_demo=run_demo is not None)
        if choice is None:
            return 0
        if choice == FirstRunDialog.DEMO and run_demo is not None:
            return run_demo()
    try:
        setup = Setup.load(path)
    except ConsoleError as error:
        show_exception(error, None)
        return 1
    return launch(setup, config_path=config_path)

"""What the screens are given: the services before sign-in, and a session after it.

No screen looks anything up globally: the application builds `Services` around the core's
`Setup`, the sign-in dialog turns them into a core `Session`, and the main window gets both.
"""
from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QSettings
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QStyleFactory

from console.audit import AuditTrail
from console.config import Config
from console.identity import Identity
from console.paths import RESOURCES
from console.policy import Policy
from console.kerberos import current_ticket
from console.session import Session, Setup, open_session, ticket_identity

from .signin import DemoAccount, WindowsSignIn

if TYPE_CHECKING:  # ldap3 loads when someone signs in, not when the window module does
    from console.directory import Directory


@dataclass
class Services:
    setup: Setup  # configuration, policy, directory, audit trail
    settings: QSettings  # window geometry and the last user name only
    config_path: Path | None = None  # where Settings saves (None: the user's config file)
    demo_accounts: Sequence[DemoAccount] = ()
    slow_after: float = 5.0  # seconds after which a host's answer counts as slow

    @property
    def config(self) -> Config:
        return self.setup.config

    @property
    def directory(self) -> Directory:
        return self.setup.directory

    @property
    def policy(self) -> Policy:
        return self.setup.policy

    @property
    def audit(self) -> AuditTrail:
        return self.setup.audit

    def open_session(self, identity: Identity, password: str, sso: bool = False) -> Session:
        return open_session(self.setup, identity, password, slow_after=self.slow_after, sso=sso)

    @property
    def windows_sign_in(self) -> WindowsSignIn | None:
        """Single sign-on where the directory takes Kerberos tickets (the demo's does not)."""
        directory = self.directory
        if not hasattr(directory, "ticket_session"):
            return None
        return WindowsSignIn(current_ticket, lambda: ticket_identity(directory))


def platform_style(platform: str, offered: Sequence[str]) -> str | None:
    """The widget style to set: on Windows, Qt's Windows 11 style where this Qt offers it (Qt
    6.7 and later: QStyleFactory.keys() has "windows11"); otherwise None, Qt's own choice for
    the platform (windowsvista on Windows 10, Fusion or the desktop's style elsewhere)."""
    if platform == "win32" and any(k.lower() == "windows11" for k in offered):
        return "windows11"
    return None


def make_application(argv: Sequence[str] | None = None) -> QApplication:
    app = QApplication.instance() or QApplication(list(argv or sys.argv))
    assert isinstance(app, QApplication)
    app.setApplicationName("Hyper-V Console")
    app.setOrganizationName("hvconsole")
    style = platform_style(sys.platform, QStyleFactory.keys())
    if style is not None:
        app.setStyle(style)
    icon = RESOURCES / "icons" / "hvconsole.png"
    if icon.exists():
        app.setWindowIcon(QIcon(str(icon)))
    return app

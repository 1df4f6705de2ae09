"""What the screens are given: the services before sign-in, and a session after it.

No screen looks anything up globally: the application builds `Services`, the sign-in dialog turns
them into a `Session`, and the main window gets both.
"""
from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from console.actions import ActionService
from console.audit import AuditTrail
from console.config import Config
from console.hosts import Credentials, HostPool
from console.identity import Identity
from console.paths import RESOURCES
from console.policy import Policy

from .signin import DemoAccount


@dataclass
class Services:
    config: Config
    directory: Any  # console.directory.Directory: sign_in(username, password) -> Identity
    policy: Policy
    audit: AuditTrail
    settings: QSettings  # window geometry and the last user name only
    config_path: Path | None = None  # where Settings saves (None: the user's config file)
    demo_accounts: Sequence[DemoAccount] = ()
    slow_after: float = 5.0  # seconds after which a host's answer counts as slow

    def open_session(self, identity: Identity, password: str) -> Session:
        # The hosts authenticate the same domain account: DOMAIN\user works for NTLM and Kerberos.
        credentials = Credentials(identity.name, password)
        pool = HostPool(self.config.hosts, credentials, slow_after=self.slow_after)
        return Session(identity, pool, ActionService(self.policy, self.audit, pool))


@dataclass
class Session:
    identity: Identity
    pool: HostPool
    actions: ActionService
    extra: dict[str, Any] = field(default_factory=dict)

    def close(self) -> None:
        self.pool.close()


def make_application(argv: Sequence[str] | None = None) -> QApplication:
    app = QApplication.instance() or QApplication(list(argv or sys.argv))
    assert isinstance(app, QApplication)
    app.setApplicationName("Hyper-V Console")
    app.setOrganizationName("hvconsole")
    icon = RESOURCES / "icons" / "hvconsole.png"
    if icon.exists():
        app.setWindowIcon(QIcon(str(icon)))
    return app

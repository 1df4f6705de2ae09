"""A person's domain credentials, and the gate every host of a session shares: the first 401
from any host closes it, so 50 hosts refreshing with an old password cannot lock the account.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field


from ..errors import (
    CredentialsRejected,
)


@dataclass(frozen=True)
class Credentials:
    """A domain account's name and password, held in memory only; never shown in repr or str."""

    username: str  # DOMAIN\\user or user@domain
    password: str = field(repr=False)

    def __str__(self) -> str:
        return self.username


class CredentialGate:
    """Shared by every host of a session: closed by the first 401, reopened with new credentials.

    While closed, host calls fail at once without contacting their host. `confirmed` records that
    a host has accepted the current credentials: until then a pool tries one host before the rest.
    """

    def __init__(self, credentials: Credentials | None = None) -> None:
        self._lock = threading.Lock()
        self._credentials = credentials
        self._rejected_by: str | None = None
        self.generation = 0
        self.confirmed = False

    @property
    def credentials(self) -> Credentials | None:
        return self._credentials

    @property
    def is_open(self) -> bool:
        return self._rejected_by is None

    def check(self) -> None:
        rejected_by = self._rejected_by
        if rejected_by is not None:
            raise CredentialsRejected(
                f"{rejected_by} rejected the password of this account; enter the password again "
                f"(host calls are paused so the account is not locked out).", host=rejected_by)

    def close(self, host: str) -> None:
        with self._lock:
            if self._rejected_by is None:
                self._rejected_by = host

    def rejected(self, host: str) -> CredentialsRejected:
        """`host` answered 401: close the gate, and the error to raise for that call."""
        self.close(host)
        return CredentialsRejected(
            f"{host} rejected the user name or password (the account may also be locked out or "
            f"disabled); enter the password again. Other hosts are not contacted until then, so "
            f"the account is not locked out.", host=host)

    def accepted(self) -> None:
        self.confirmed = True

    def reopen(self, credentials: Credentials) -> None:
        with self._lock:
            self._credentials = credentials
            self._rejected_by = None
            self.generation += 1
            self.confirmed = False

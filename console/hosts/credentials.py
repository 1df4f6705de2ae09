"""A person's domain credentials, and the gate every host of a session shares: the first 401
from any host closes it, so 50 hosts refreshing with an old password cannot lock the account.
"""
from __future__ import annotations

import sys
import threading
from dataclasses import dataclass, field


from ..config import HostConfig
from ..errors import (
    CredentialsRejected, HostError,
)


@dataclass(frozen=True)
class Credentials:
    """A domain account's name and password, held in memory only; never shown in repr or str.
    With `sso`, no password: the logged-on person's Kerberos ticket (Windows sign-in, or a ticket
    cache from kinit) speaks for them, and `username` only names them."""

    username: str  # DOMAIN\\user or user@domain
    password: str = field(repr=False)
    sso: bool = False
    principal: str = ""  # user@REALM: the name a password's Kerberos logon uses (krb5 takes no DOMAIN\\)

    @classmethod
    def ticket(cls, username: str) -> Credentials:
        """The current Kerberos ticket of `username` (single sign-on)."""
        return cls(username, "", sso=True)

    def name_for(self, auth: str) -> str | None:
        """The name pyspnego is given: none with a ticket (the cache's), user@REALM for Kerberos."""
        if self.sso:
            return None
        return self.principal if auth == "kerberos" and self.principal else self.username

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

    def rejected(self, host: str, ntlm: bool = False) -> CredentialsRejected:
        """`host` answered 401: close the gate, and the error to raise for that call. `ntlm`: the
        logon was (or may have been) NTLM, which a host may refuse altogether."""
        self.close(host)
        if self._credentials is not None and self._credentials.sso:
            return CredentialsRejected(
                f"{host} refused your Kerberos ticket (the account may be locked out or disabled, "
                f"or the host cannot read tickets for its name); sign in again. Other hosts are "
                f"not contacted until then.", host=host)
        return CredentialsRejected(
            f"{host} rejected the user name or password (the account may also be locked out or "
            f"disabled); enter the password again. Other hosts are not contacted until then, so "
            f"the account is not locked out."
            + (f" If {host} refuses NTLM (Kerberos only), set its transport to \"negotiate\" and "
               f"sign in with a Kerberos ticket." if ntlm else ""), host=host)

    def accepted(self) -> None:
        self.confirmed = True

    def reopen(self, credentials: Credentials) -> None:
        with self._lock:
            self._credentials = credentials
            self._rejected_by = None
            self.generation += 1
            self.confirmed = False


def check_sso(name: str, config: HostConfig, credentials: Credentials) -> None:
    """A host set to NTLM only cannot take a Kerberos ticket: say so before any request."""
    if credentials.sso and config.transport == "ntlm":
        raise HostError(f"{name} is set to transport = \"ntlm\", which cannot use your Kerberos "
                        f"ticket: set its transport to \"negotiate\", or sign in with your "
                        f"password.", host=name, code="kerberos")


def auth_for(config: HostConfig, credentials: Credentials) -> str:
    """What pyspnego is asked for. A ticket without a password can fall back to NTLM only on
    Windows, where SSPI holds the logon's NTLM keys; elsewhere it is Kerberos or nothing (pyspnego
    would otherwise read an NTLM_USER_FILE, which is not this person's sign-in)."""
    if credentials.sso and config.auth == "negotiate" and sys.platform != "win32":
        return "kerberos"
    return config.auth

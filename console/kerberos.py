"""Single sign-on: who the current Kerberos ticket (or Windows logon) is, and Kerberos' refusals
as sentences.

On Windows the logged-on person's logon session is the credential (pyspnego uses SSPI; no
ticket cache is read here). Elsewhere MIT or Heimdal Kerberos' ticket cache is (KRB5CCNAME
honoured, as `kinit` and `klist` honour it), read through the `gssapi` package. Nothing here
holds a password: the ticket speaks for the person, and every host and the directory check it.

Every Kerberos failure the console can meet gets its own sentence, from the GSSAPI/KDC message
(MIT's English texts, which are stable; SSPI's status codes on Windows): no ticket, an expired
ticket, a ticket of a realm the service's realm does not trust, a service principal no account
holds, and a clock more than five minutes off the domain's.
"""
from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass

from spnego.exceptions import SpnegoError

from .errors import HostError, SignInError


def _kerberos_errors() -> tuple[type[BaseException], ...]:
    """What pyspnego lets through when no token can be made: its own errors, and those of the
    krb5 package (a password's Kerberos logon) and of gssapi, where they are installed."""
    errors: list[type[BaseException]] = [SpnegoError]
    try:
        from krb5 import Krb5Error
        errors.append(Krb5Error)
    except ImportError:  # Windows: SSPI, no krb5 package
        pass
    try:
        from gssapi.raw.misc import GSSError
        errors.append(GSSError)
    except ImportError:
        pass
    return tuple(errors)


KERBEROS_ERRORS = _kerberos_errors()

KINIT = ("sign in to Windows again" if sys.platform == "win32"
         else "get a new ticket with kinit (klist shows the current one)")


class TicketError(SignInError):
    """The current Kerberos ticket cannot be used to sign in; the message says why."""


@dataclass(frozen=True)
class Ticket:
    """The person the ticket cache (or the Windows logon) speaks for."""

    principal: str  # alice@LAB.EXAMPLE
    realm: str  # LAB.EXAMPLE
    seconds_left: int | None  # None: unknown (Windows renews tickets itself)

    @property
    def user(self) -> str:
        return self.principal.rsplit("@", 1)[0]


def current_ticket() -> Ticket:
    """Who the current ticket cache (KRB5CCNAME) or Windows logon is; TicketError if none can be
    used (no ticket, or an expired one)."""
    if sys.platform == "win32":  # pragma: no cover - Windows only: docs/verification.md
        return _windows_logon()
    try:
        import gssapi
        from gssapi.raw.exceptions import ExpiredCredentialsError
        from gssapi.raw.misc import GSSError
    except ImportError as error:
        raise TicketError("Single sign-on needs the gssapi package (python -m pip install "
                          "'pyspnego[kerberos]'), which is not installed here.",
                          code="no_kerberos") from error
    try:
        credentials = gssapi.Credentials(usage="initiate")
        name, lifetime = str(credentials.name), credentials.lifetime
    except ExpiredCredentialsError:
        raise ticket_expired() from None
    except GSSError as error:
        raise ticket_error(str(error)) from None
    principal = name.rstrip("\x00")
    realm = principal.rsplit("@", 1)[1] if "@" in principal else ""
    return Ticket(principal, realm.upper(), lifetime)


def _windows_logon() -> Ticket:  # pragma: no cover - Windows only: docs/verification.md
    """The logged-on person's domain account: NameSamCompatible (LAB\\olivia) and the logon's DNS
    domain (USERDNSDOMAIN, which Windows sets for a domain logon only), the realm its tickets
    are of. A UPN is not used: its suffix may be another than the realm."""
    import ctypes

    realm = os.environ.get("USERDNSDOMAIN", "").upper()
    secur32 = ctypes.WinDLL("secur32")  # type: ignore[attr-defined,unused-ignore]
    name_sam_compatible = 2
    size = ctypes.c_ulong(0)
    secur32.GetUserNameExW(name_sam_compatible, None, ctypes.byref(size))
    buffer = ctypes.create_unicode_buffer(size.value + 1)
    ok = size.value and secur32.GetUserNameExW(name_sam_compatible, buffer, ctypes.byref(size))
    if not ok or not realm or "\\" not in buffer.value:
        raise TicketError("This Windows account did not sign in to a domain, so there is no "
                          "Windows sign-in to use: sign in with your password.", code="no_ticket")
    user = buffer.value.split("\\", 1)[1]
    return Ticket(f"{user}@{realm}", realm, None)


def ticket_expired() -> TicketError:
    return TicketError(f"Your Kerberos ticket has expired: {KINIT}, then sign in again.",
                       code="ticket_expired")


def no_ticket() -> TicketError:
    where = os.environ.get("KRB5CCNAME", "")
    cache = f" (ticket cache {where})" if where else ""
    return TicketError(f"There is no Kerberos ticket to sign in with{cache}: {KINIT}, or sign in "
                       f"with your password.", code="no_ticket")


_PRINCIPAL = r"([^\s'\"]+)"


def ticket_error(message: str, service: str = "", ticket_realm: str = "") -> TicketError:
    """The sentence for a Kerberos failure reported as `message` (GSSAPI's or the KDC's text)
    while asking for a ticket to `service` (HTTP/hv01.lab.example, ldap/dc1.lab.example) with a
    ticket of `ticket_realm` (LAB.EXAMPLE; empty when unknown)."""
    text = " ".join(message.split())
    lower = text.lower()
    what = service or "the service"
    if "clock skew" in lower or "krb_ap_err_skew" in lower or "0x80090324" in lower:
        return TicketError(
            f"This computer's clock is more than five minutes off the domain's, so Kerberos "
            f"refuses the ticket for {what}: set the clock right (or let it follow the domain's "
            f"time), then sign in again.", code="clock_skew")
    if "expired" in lower or "0x80090317" in lower or "0x80090328" in lower:
        return ticket_expired()
    cross = re.search(r"krbtgt/" + _PRINCIPAL, text, re.I)
    service_realm = _realm_of(service)
    if "not found" in lower and (cross or (ticket_realm and service_realm
                                           and service_realm != ticket_realm.upper())):
        # No path from the ticket's realm to the service's: the ticket's KDC knows no such
        # service and has no trust to refer the request on.
        target, _, own = cross.group(1).partition("@") if cross else (service_realm, "", ticket_realm)
        return TicketError(
            f"Your Kerberos ticket is for realm {(own or ticket_realm).upper()}, which has no trust "
            f"with {target.upper()} (the realm of {what}): sign in with an account of "
            f"{target.upper()}, or with your password.", code="wrong_realm")
    if ("not found in kerberos database" in lower or "server not found" in lower
            or "s_principal_unknown" in lower or "0x80090303" in lower):
        return TicketError(
            f"No account of the domain holds the service principal {what}, so no Kerberos ticket "
            f"can be had for it: the domain administrators register it on the server's computer "
            f"account (setspn -S {what} <computer>), or the configuration names the SPN the "
            f"server really has (spn = \"...\").", code="spn_unknown")
    if ("no kerberos credentials" in lower or "no credentials cache" in lower
            or "credential cache did not exist" in lower or "no credentials were supplied" in lower
            or "0x8009030e" in lower):
        return no_ticket()
    return TicketError(f"Kerberos refused the sign-in to {what}: {text}", code="kerberos")


def _realm_of(service: str) -> str:
    """The realm a service's host name implies (AD: the DNS domain, upper case), or ""."""
    host = service.partition("/")[2].split(":", 1)[0]
    return host.split(".", 1)[1].upper() if host.count(".") >= 2 else ""


def cached_realm() -> str:
    """The current ticket's realm, or "" when there is none to read."""
    try:
        return current_ticket().realm
    except TicketError:
        return ""


def host_ticket_error(host: str, service: str, error: BaseException,
                      allow_ntlm: bool = True) -> HostError:
    """A host's Kerberos failure (pyspnego's error while making the token) as the host's error."""
    sentence = str(ticket_error(str(error), service, cached_realm()))
    if not allow_ntlm:
        sentence += " NTLM is not tried: the host's allow_ntlm is false."
    return HostError(f"{host}: {sentence}", host=host, code="kerberos")


def first_token(service: str, host: str, username: str | None = None,
                password: str | None = None) -> None:
    """Make the first Kerberos token for service/host before anything is sent, so a ticket that
    cannot be had fails here, with its sentence, and no request reaches the server (pyspnego
    raising inside requests' response hook would leave that response's connection open)."""
    import spnego

    spnego.client(username, password, hostname=host, service=service, protocol="kerberos").step()

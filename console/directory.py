"""Sign-in against Active Directory over LDAP, and the look-ups the review screens need.

The password only ever travels inside TLS: LDAPS, or StartTLS on 389, with the certificate checked
against the system store or a configured CA file. Domain controllers are tried in order, but only
while none could be reached: a rejected bind is final, because every attempt on another controller
would count one more bad password toward the account's lockout.

Who someone is comes from their token, not from a name: tokenGroups (every group, nested ones and
the primary group included) resolved to names in one search, so sign-in costs the bind plus three
searches however deep the nesting.

The domain a person types (`LAB\\adam`, `adam@lab.example`) must be the directory's own, or one of
the trusted domains configured with their own controllers ([[directory.trusted]]): `Directories`
sends `CHILD\\adam` and `adam@child.lab.example` to CHILD's controllers, a bare name and the
directory's own domain to the directory's. Wherever it goes, the domain typed must then be that
controller's own: its DNS and NetBIOS names come from the domain controller itself, in an LDAP ping
(the rootDSE's Netlogon attribute, which answers without a bind) on the connection before the bind.
Any other domain is refused with a sentence before anything is bound, so `OTHER\\adam` never becomes
LAB\\adam (whose account would then take a bad password at every host call). A controller that does
not answer the ping is asked for its defaultNamingContext instead, and the NetBIOS name is then read
from the domain's crossRef right after the bind, before the identity is used.

The identity of someone of a trusted domain is that domain's: their SID and the tokenGroups its
controller gives (its groups, nested and primary). Groups of other domains holding them (a domain
local group of the directory's domain through a foreign security principal, a universal group
elsewhere in the forest) are not in that token: finding them would need the trust and a global
catalog, which the console does not query. Grants to such groups do not apply to them.
"""
from __future__ import annotations

import datetime as dt
import logging
import math
import re
import ssl
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Protocol, Self, cast
from urllib.parse import urlparse

from ldap3 import BASE, KERBEROS, NONE, SASL, SIMPLE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPCertificateError, LDAPException
from ldap3.protocol.formatters.formatters import format_sid
from ldap3.utils.conv import escape_filter_chars

from .config import INSECURE_DIRECTORY, DirectoryConfig, ldap_in_clear
from .errors import ConfigError, DirectoryError, DirectoryUnavailable, SignInError
from .identity import WELL_KNOWN_LOGON_SIDS, Group, Identity
from .kerberos import Ticket, TicketError, ticket_error

log = logging.getLogger(__name__)

BUILTIN_PREFIX = "S-1-5-32-"
IN_CHAIN = "1.2.840.113556.1.4.1941"  # LDAP_MATCHING_RULE_IN_CHAIN: transitive membership
UAC_DISABLED = 0x2
NEVER_EXPIRES = (0, 0x7FFFFFFFFFFFFFFF)
SID_PATTERN = re.compile(r"S-1-\d+(-\d+)+", re.IGNORECASE)
DATA_CODE = re.compile(r"\bdata ([0-9a-f]{3,8})\b", re.IGNORECASE)
UNVERIFIED_WARNING = INSECURE_DIRECTORY

_BAD_CREDENTIALS = ("bad_credentials", "The user name or password is incorrect.")
# AD's bind diagnostics ("... AcceptSecurityContext error, data 52e, ...") to (code, sentence).
# 52e (wrong password) and 525 (no such user) read alike, so the sentence never tells which
# accounts exist.
BIND_FAILURES: dict[str, tuple[str, str]] = {
    "52e": _BAD_CREDENTIALS,
    "525": _BAD_CREDENTIALS,
    "530": ("logon_hours", "This account may not sign in at this time of day; ask your directory "
                           "administrator about its logon hours."),
    "531": ("workstation", "This account may not sign in from this computer; ask your directory "
                           "administrator."),
    "532": ("password_expired", "The password of this account has expired; change it, then sign "
                                "in again."),
    "533": ("disabled", "This account is disabled; ask your directory administrator."),
    "701": ("account_expired", "This account has expired; ask your directory administrator to "
                               "extend it."),
    "773": ("must_change_password", "The password of this account must be changed before it can "
                                    "sign in; change it, then sign in again."),
    "775": ("locked", "This account is locked after too many failed sign-ins; wait until it "
                      "unlocks or ask your directory administrator."),
}


def sign_in_error(data_code: str) -> SignInError:
    """The sign-in failure for an AD data code (an unknown code reads as bad credentials)."""
    code, sentence = BIND_FAILURES.get(data_code.lower(), _BAD_CREDENTIALS)
    return SignInError(sentence, code)


# --- values ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Principal:
    """A user, group or computer of the directory, as a grant names it."""

    kind: str  # "user", "group", "computer" or "well-known"
    name: str  # DOMAIN\sAMAccountName (BUILTIN\... for built-in groups)
    sid: str
    dn: str = ""
    state: str = "enabled"  # "enabled", "disabled" or "expired" (groups are always enabled)
    display_name: str = ""

    @property
    def enabled(self) -> bool:
        return self.state == "enabled"


@dataclass(frozen=True)
class Member:
    principal: Principal
    nested: bool  # a member through another group, not a direct (or primary group) member


@dataclass(frozen=True)
class Account:
    """A typed user name, split into what is sent in the bind and what is searched for."""

    bind_name: str  # alice@lab.example or LAB\alice
    sam: str  # the part before @, or after the backslash
    upn: str = ""  # only for the name@domain form
    netbios: str = ""  # only for the DOMAIN\name form


def parse_username(username: str, domain: str) -> Account:
    """Accept `name@domain`, `DOMAIN\\name` or a bare `name` (the configured domain is added)."""
    text = username.strip()
    if not text:
        raise SignInError("Enter a user name.", "empty_username")
    if "\\" in text:
        netbios, _, sam = text.partition("\\")
        if netbios and sam and "\\" not in sam:
            return Account(f"{netbios}\\{sam}", sam, netbios=netbios)
    elif "@" in text:
        sam, _, suffix = text.rpartition("@")
        if sam and suffix:
            return Account(text, sam, upn=text)
    else:
        if not domain:
            raise SignInError("Enter the user name as name@domain or DOMAIN\\name: no default "
                              "domain is configured (directory.domain).", "bad_username")
        return Account(f"{text}@{domain}", text, upn=f"{text}@{domain}")
    raise SignInError("Enter the user name as name, name@domain or DOMAIN\\name.", "bad_username")


@dataclass(frozen=True)
class DomainNames:
    """A domain's names, as its domain controller gives them."""

    dns: str  # lab.example
    netbios: str  # LAB; "" while it is not known
    # The answering controller's DNS name (dc1.lab.example), when the ping said: not part of the
    # domain's names, so two controllers' answers are the same domain.
    host: str = field(default="", compare=False)

    def __str__(self) -> str:
        return f"{self.netbios} ({self.dns})" if self.netbios else self.dns


# The LDAP ping: a search of the rootDSE for Netlogon, answered without a bind; NtVer asks for
# NETLOGON_NT_VERSION_5 | NETLOGON_NT_VERSION_5EX, so the answer is a
# NETLOGON_SAM_LOGON_RESPONSE_EX (MS-ADTS 6.3.1.9, opcode 23).
NETLOGON_FILTER = "(&(NtVer=\\06\\00\\00\\00))"  # an AND, as the ping is written
_LOGON_SAM_LOGON_RESPONSE_EX = 23


def netlogon_names(data: bytes) -> DomainNames:
    """The domain's DNS and NetBIOS names from a NETLOGON_SAM_LOGON_RESPONSE_EX: after the opcode,
    Sbz, flags and the domain GUID (24 bytes), DnsForestName, DnsDomainName, DnsHostName and
    NetbiosDomainName, each a name of RFC 1035 labels with compression. ValueError when `data`
    is not such an answer."""
    if len(data) < 25 or int.from_bytes(data[:2], "little") != _LOGON_SAM_LOGON_RESPONSE_EX:
        raise ValueError("not a NETLOGON_SAM_LOGON_RESPONSE_EX")
    offset, names = 24, []
    for _ in range(4):
        name, offset = _netlogon_name(data, offset)
        names.append(name)
    if not names[1] or not names[3]:
        raise ValueError("the answer names no domain")
    return DomainNames(names[1], names[3], names[2])


def _netlogon_name(data: bytes, offset: int) -> tuple[str, int]:
    labels: list[str] = []
    end: int | None = None
    for _ in range(64):  # a bound on compression pointers, so a loop of them ends
        if offset >= len(data):
            raise ValueError("a name runs past the end of the answer")
        length = data[offset]
        if length == 0:
            return ".".join(labels), end if end is not None else offset + 1
        if length & 0xC0 == 0xC0:
            if offset + 1 >= len(data):
                raise ValueError("a name runs past the end of the answer")
            if end is None:
                end = offset + 2
            offset = ((length & 0x3F) << 8) | data[offset + 1]
            continue
        labels.append(data[offset + 1:offset + 1 + length].decode("utf-8"))
        offset += 1 + length
    raise ValueError("a name of the answer does not end")


def checked_account(account: Account, names: DomainNames, configured_domain: str = "",
                    configured_netbios: str = "", key: str = "directory") -> Account:
    """The account to bind, once the domain the person typed is known to be the directory's:
    its DNS name (`lab.example\\adam` is bound as adam@lab.example) or its NetBIOS name. A
    NetBIOS prefix while the NetBIOS name is not known yet is left for the check after the bind.
    SignInError (foreign_domain) for any other domain; ConfigError when the name the person typed
    matched a setting that is not the controller's: a bare name's directory.domain, or the
    NetBIOS name a trusted domain was chosen by (`configured_netbios`, under `key`)."""
    typed = account.netbios or account.upn.rpartition("@")[2]
    if not names.dns:
        return account  # nothing known yet: checked after the bind
    label = names.netbios or names.dns
    if typed.lower() == names.dns.lower():
        return Account(f"{account.sam}@{names.dns}", account.sam, upn=f"{account.sam}@{names.dns}") \
            if account.netbios else account
    if names.netbios and typed.lower() == names.netbios.lower():
        return account if account.netbios else \
            Account(f"{names.netbios}\\{account.sam}", account.sam, netbios=names.netbios)
    if account.netbios and not names.netbios:
        return account  # its NetBIOS name is read after the bind, before anything uses it
    if configured_domain and typed.lower() == configured_domain.lower():
        raise ConfigError(f"{key}.domain is {configured_domain}, but the directory's domain is "
                          f"{names.dns}: set {key}.domain = \"{names.dns}\".", f"{key}.domain")
    if configured_netbios and names.netbios and typed.lower() == configured_netbios.lower():
        raise ConfigError(f"{key}.netbios is {configured_netbios} (set, or derived from its "
                          f"domain), but the domain controller of {names.dns} says its NetBIOS "
                          f"name is {names.netbios}: set {key}.netbios = \"{names.netbios}\".",
                          f"{key}.netbios")
    raise SignInError(f"{typed} is not the domain of this directory, {names}: sign in as "
                      f"{label}\\name, name@{names.dns} or the name alone.", "foreign_domain")


def check_password(password: str) -> None:
    # Many servers treat a simple bind with an empty password as an anonymous bind that succeeds.
    if not password:
        raise SignInError("Enter a password.", "empty_password")


# --- the interface both directories offer ---------------------------------------------------------

class DirectorySession(Protocol):
    """A signed-in connection: the identity, and look-ups made with the person's own rights."""

    @property
    def identity(self) -> Identity: ...

    def resolve(self, principal: str) -> Principal | None: ...

    def members(self, group: str | Principal) -> list[Member]: ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None: ...


class Directory(Protocol):
    demo: bool

    def session(self, username: str, password: str) -> DirectorySession: ...

    def sign_in(self, username: str, password: str) -> Identity: ...


def well_known(principal: str) -> Principal | None:
    """Everyone and Authenticated Users: in every token, but not objects one can search for."""
    for sid, name in WELL_KNOWN_LOGON_SIDS.items():
        if principal.upper() == sid or principal.lower() in {name.lower(), name.split("\\")[-1].lower()}:
            return Principal("well-known", name, sid)
    return None


def group_order(groups: Iterable[Group]) -> tuple[Group, ...]:
    """Direct memberships first, then nested ones, each by name."""
    return tuple(sorted(groups, key=lambda g: (g.nested, g.name.lower())))


# --- Active Directory -----------------------------------------------------------------------------

@dataclass(frozen=True)
class _Failure:
    url: str
    code: str  # unreachable, timeout or certificate
    reason: str  # completes "The domain controller <url> ..."


def check_directory_config(config: DirectoryConfig, key: str = "directory") -> None:
    """The settings of one domain's controllers, checked without connecting: ConfigError naming
    the key (`directory.urls[0]`, `directory.trusted[1].ca_file`) when they cannot be used."""
    if not config.urls:
        raise ConfigError(f"{key}.urls is empty: name at least one domain controller, "
                          "e.g. ldaps://dc1.example.com.", f"{key}.urls")
    for i, url in enumerate(config.urls):
        error = ldap_in_clear(url, config.start_tls, f"{key}.urls[{i}]", f"{key}.start_tls")
        if error is not None:
            raise error
    if config.ca_file:
        try:
            with open(config.ca_file, "rb"):
                pass
        except OSError as exc:
            raise ConfigError(f"{key}.ca_file {config.ca_file} cannot be read: "
                              f"{exc.strerror}.", f"{key}.ca_file") from None


class LdapDirectory:
    """One domain of Active Directory (or Samba AD) over LDAPS or StartTLS: the directory's own
    (`key` "directory"), or a trusted one (`key` "directory.trusted[N]", its settings from
    DirectoryConfig.trusted_config), whose errors name its settings and its domain."""

    demo = False

    def __init__(self, config: DirectoryConfig, key: str = "directory") -> None:
        self.config = config
        self.key = key
        self.trusted = key != "directory"
        check_directory_config(config, key)
        if config.skip_certificate_check and not self.trusted:
            log.warning(UNVERIFIED_WARNING)  # once: trusted domains follow the same switch

    def __repr__(self) -> str:
        return (f"LdapDirectory(urls={self.config.urls!r}, domain={self.config.domain!r}"
                + (f", key={self.key!r})" if self.trusted else ")"))

    @property
    def certificate_checked(self) -> bool:
        return not self.config.skip_certificate_check

    def sign_in(self, username: str, password: str) -> Identity:
        with self.session(username, password) as session:
            return session.identity

    def session(self, username: str, password: str) -> LdapSession:
        account = parse_username(username, self.config.domain)
        check_password(password)
        connection, url, account, names = self._bind(account, password)
        try:
            session = LdapSession(self, connection, url, names)
            session.sign_in(account)
        except BaseException:
            _discard(connection)
            raise
        return session

    def ticket_session(self, ticket: Ticket) -> LdapSession:
        """Signed in with the current Kerberos ticket (SASL GSSAPI over LDAPS or StartTLS, as
        the password's bind): no password; the identity is whom the controller says the ticket
        is, its groups the token's, as for a password."""
        connection, url, names = self._ticket_bind(ticket)
        try:
            session = LdapSession(self, connection, url, names)
            who = _who_am_i(connection)  # "u:LAB\\alice": the controller's word, not the cache's
            sam = who.rpartition("\\")[2] if who else ticket.user
            session.sign_in(Account(ticket.principal, sam, netbios=names.netbios))
        except BaseException:
            _discard(connection)
            raise
        return session

    def _ticket_bind(self, ticket: Ticket) -> tuple[Connection, str, DomainNames]:
        failures: list[_Failure] = []
        for url in self.config.urls:
            try:
                connection = self._connection(url)
                names = self._domain_names(connection)
            except (LDAPException, OSError) as exc:
                failures.append(self._failure(url, exc))
                continue
            realm = (names.dns or self.config.domain).upper()
            if ticket.realm != realm:
                _discard(connection)
                raise wrong_realm(ticket, realm)
            # The ticket is asked for ldap/<the controller's name>, whatever address the URL has.
            host = names.host or urlparse(url).hostname or ""
            connection.authentication, connection.sasl_mechanism = SASL, KERBEROS
            connection.sasl_credentials = (host,)
            try:
                connection.bind()
            except (LDAPException, OSError) as exc:
                _discard(connection)
                gss = next((e for e in _exception_chain(exc) if type(e).__module__.startswith("gssapi")),
                           None)
                if gss is not None:
                    raise ticket_error(str(gss), f"ldap/{host}", ticket.realm) from None
                raise self._unavailable([self._failure(url, exc)]) from None
            except Exception as exc:  # gssapi's errors, raised through ldap3 as they are
                _discard(connection)
                raise ticket_error(str(exc), f"ldap/{host}", ticket.realm) from None
            result = connection.result or {}
            if result.get("result") == 0:
                log.info("%s signed in with a Kerberos ticket at %s", ticket.principal, url)
                return connection, url, names
            _discard(connection)
            raise TicketError(f"The domain controller {url} refused the Kerberos ticket of "
                              f"{ticket.principal} ({result.get('description') or result.get('result')}"
                              f"): sign in with your password.", code="kerberos")
        raise self._unavailable(failures) from None

    # -- connecting

    def _connection(self, url: str) -> Connection:
        parsed = urlparse(url)
        use_ssl = parsed.scheme.lower() == "ldaps"
        tls = _CheckedTls(self.config.ca_file, verify=not self.config.skip_certificate_check)
        server = Server(parsed.hostname or "", port=parsed.port or (636 if use_ssl else 389),
                        use_ssl=use_ssl, tls=tls, get_info=NONE,
                        connect_timeout=self.config.timeout)
        # ldap3 packs the receive timeout into SO_RCVTIMEO as whole seconds.
        connection = Connection(server, authentication=SIMPLE, read_only=True, auto_referrals=False,
                                receive_timeout=max(1, math.ceil(self.config.timeout)),
                                collect_usage=True)
        try:
            connection.open(read_server_info=False)
            if not use_ssl:
                connection.start_tls(read_server_info=False)
        except BaseException:
            _discard(connection)
            raise
        return connection

    def _bind(self, account: Account,
              password: str) -> tuple[Connection, str, Account, DomainNames]:
        failures: list[_Failure] = []
        for url in self.config.urls:
            try:
                connection = self._connection(url)
            except (LDAPException, OSError) as exc:
                failure = self._failure(url, exc)
                log.info("domain controller %s %s", url, failure.reason)
                failures.append(failure)
                continue  # nothing was sent yet: the next controller may do
            try:
                names = self._domain_names(connection)
                if self.trusted:
                    self.check_trusted_controller(url, names)
                # Another domain is refused here, before any bind: no account counts a bad
                # password, and no namesake of ours is taken for the person.
                account = checked_account(account, names, self.config.domain,
                                          self.config.netbios_name if self.trusted else "",
                                          self.key)
            except (LDAPException, OSError) as exc:
                _discard(connection)
                failure = self._failure(url, exc)
                log.info("domain controller %s %s", url, failure.reason)
                failures.append(failure)
                continue  # nothing was bound yet: the next controller may do
            except BaseException:
                _discard(connection)
                raise
            connection.user = account.bind_name
            connection.password = password
            try:
                connection.bind()
            except (LDAPException, OSError) as exc:
                # The password may have been checked: never try it on another controller.
                _discard(connection)
                raise self._unavailable([self._failure(url, exc)]) from None
            finally:
                connection.password = None
                connection.request = None
            result = connection.result or {}
            if result.get("result") == 0:
                log.info("%s signed in at %s", account.bind_name, url)
                return connection, url, account, names
            _discard(connection)
            raise self._refused(account, url, result) from None
        raise self._unavailable(failures) from None

    def check_trusted_controller(self, url: str, names: DomainNames) -> None:
        """A trusted domain's controller must be of that domain: a URL of another domain's
        controller would check the person's password against the wrong accounts."""
        if names.dns and names.dns.lower() != self.config.domain.lower():
            raise ConfigError(f"{self.key} is the domain {self.config.domain}, but its domain "
                              f"controller {url} is of {names.dns}: correct {self.key}.urls "
                              f"(or {self.key}.domain).", f"{self.key}.urls")

    def _domain_names(self, connection: Connection) -> DomainNames:
        """The domain's names from the controller, before the bind: its LDAP ping, or else its
        defaultNamingContext (the NetBIOS name is then read after the bind)."""
        connection.search("", NETLOGON_FILTER, BASE, attributes=["Netlogon"])
        for entry in connection.response or []:
            raw = _raw(entry, "Netlogon") if entry.get("type") == "searchResEntry" else []
            if raw:
                try:
                    return netlogon_names(raw[0] if isinstance(raw[0], bytes) else b"")
                except ValueError as exc:
                    log.info("the LDAP ping's answer cannot be read (%s)", exc)
        connection.search("", "(objectClass=*)", BASE, attributes=["defaultNamingContext"])
        entries = [e for e in connection.response or [] if e.get("type") == "searchResEntry"]
        return DomainNames(_domain_of_dn(_text(entries[0], "defaultNamingContext"))
                           if entries else "", "")

    def _refused(self, account: Account, url: str, result: dict[str, Any]) -> SignInError:
        if result.get("result") == 49:
            match = DATA_CODE.search(str(result.get("message", "")))
            error = sign_in_error(match.group(1) if match else "52e")
            log.info("sign-in of %s refused by %s (%s)", account.bind_name, url, error.code)
            return error
        description = str(result.get("description") or result.get("result"))
        log.warning("sign-in of %s at %s failed: %s", account.bind_name, url, description)
        return SignInError(f"The domain controller {url} refused the sign-in ({description}).",
                           "rejected")

    def _failure(self, url: str, exc: BaseException) -> _Failure:
        chain = list(_exception_chain(exc))
        text = "; ".join(str(e) for e in chain)
        if any(isinstance(e, ssl.SSLCertVerificationError | LDAPCertificateError) for e in chain) \
                or "certificate verify failed" in text:
            detail = _certificate_detail(text)
            return _Failure(url, "certificate", f"presented a certificate that is not trusted ({detail})")
        if any(isinstance(e, TimeoutError) for e in chain) or "timed out" in text:
            seconds = f"{self.config.timeout:g} second{'s' if self.config.timeout != 1 else ''}"
            return _Failure(url, "timeout", f"did not answer within {seconds}")
        if any(isinstance(e, ConnectionRefusedError) for e in chain):
            return _Failure(url, "unreachable", "refused the connection")
        return _Failure(url, "unreachable", f"could not be reached ({_last_words(text)})")

    def _unavailable(self, failures: list[_Failure]) -> DirectoryUnavailable:
        codes = {f.code for f in failures}
        code = codes.pop() if len(codes) == 1 else "unreachable"
        if self.trusted:
            label = DomainNames(self.config.domain, self.config.netbios_name)
            tried = "; ".join(f"{f.url} {f.reason}" for f in failures)
            return DirectoryUnavailable(
                f"Accounts of {label}, a trusted domain, sign in at its own domain controllers, "
                f"and none of them could be used: {tried}.", code)
        if len(failures) == 1:
            f = failures[0]
            return DirectoryUnavailable(f"The domain controller {f.url} {f.reason}.", code)
        tried = "; ".join(f"{f.url} {f.reason}" for f in failures)
        return DirectoryUnavailable(f"No domain controller could be used: {tried}.", code)



class Directories:
    """The directory and the domains it trusts, as one Directory: a sign-in goes to the
    controllers of the domain the person typed. `CHILD\\adam`, `adam@child.lab.example` (or
    `child.lab.example\\adam`, `adam@CHILD`) go to the trusted domain of that DNS or NetBIOS name;
    a bare name and every other domain go to the directory's own controllers, which refuse a
    domain not theirs before any bind. Each trusted domain's LdapDirectory is made when someone of
    it first signs in; all their settings are checked here, without connecting. Nothing is bound
    at a controller whose LDAP ping names another domain than the one typed, so a wrong route
    costs no one a bad password."""

    demo = False

    def __init__(self, config: DirectoryConfig) -> None:
        self.config = config
        self.home = LdapDirectory(config)
        for i in range(len(config.trusted)):
            check_directory_config(config.trusted_config(i), self._key(i))
        self._trusted: dict[int, LdapDirectory] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        domains = [t.domain for t in self.config.trusted]
        return f"Directories({self.home!r}, trusted={domains!r})"

    @property
    def certificate_checked(self) -> bool:
        return self.home.certificate_checked

    def sign_in(self, username: str, password: str) -> Identity:
        with self.session(username, password) as session:
            return session.identity

    def session(self, username: str, password: str) -> LdapSession:
        return self.directory_for(username).session(username, password)

    def ticket_session(self, ticket: Ticket) -> LdapSession:
        """The ticket's realm picks the domain: the directory's own or a trusted one's."""
        if ticket.realm == self.config.domain.upper():
            return self.home.ticket_session(ticket)
        for i, trusted in enumerate(self.config.trusted):
            if ticket.realm == trusted.domain.upper():
                return self._trusted_directory(i).ticket_session(ticket)
        raise wrong_realm(ticket, self.config.domain.upper(),
                          [t.domain.upper() for t in self.config.trusted])

    def directory_for(self, username: str) -> LdapDirectory:
        """The domain's directory the name goes to (SignInError when it is malformed)."""
        account = parse_username(username, self.config.domain)
        typed = (account.netbios or account.upn.rpartition("@")[2]).lower()
        for i, trusted in enumerate(self.config.trusted):
            if typed in {trusted.domain.lower(), trusted.netbios_name.lower()}:
                return self._trusted_directory(i)
        return self.home

    def _trusted_directory(self, index: int) -> LdapDirectory:
        with self._lock:
            directory = self._trusted.get(index)
            if directory is None:
                directory = LdapDirectory(self.config.trusted_config(index), self._key(index))
                self._trusted[index] = directory
            return directory

    @staticmethod
    def _key(index: int) -> str:
        return f"directory.trusted[{index}]"


class _CheckedTls(Tls):
    """TLS with the host name checked by Python's ssl during the handshake: ldap3 checks it only
    afterwards (with the deprecated ssl.match_hostname) and then leaves the socket open."""

    def __init__(self, ca_file: str, verify: bool) -> None:
        super().__init__(validate=ssl.CERT_REQUIRED if verify else ssl.CERT_NONE,
                         ca_certs_file=ca_file or None)
        self.verify = verify

    def wrap_socket(self, connection: Connection, do_handshake: bool = False) -> None:
        # the system store, or only the configured CA file
        context = ssl.create_default_context(cafile=self.ca_certs_file)
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        connection.socket = context.wrap_socket(connection.socket, server_hostname=connection.server.host,
                                                do_handshake_on_connect=do_handshake)


def wrong_realm(ticket: Ticket, realm: str, trusted: Iterable[str] = ()) -> TicketError:
    """A ticket of a realm the console does not sign people in from: refused before any bind."""
    others = list(trusted)
    also = f" or its trusted domains ({', '.join(others)})" if others else ""
    return TicketError(f"Your Kerberos ticket is for realm {ticket.realm}, but this console signs in "
                       f"people of {realm}{also}: get a ticket of your account there, or sign in "
                       f"with your password.", code="wrong_realm")


def _who_am_i(connection: Connection) -> str:
    """The bound identity as the controller names it (RFC 4532), or "" when it will not say."""
    try:
        answer = connection.extend.standard.who_am_i()
    except (LDAPException, OSError):
        return ""
    return str(answer or "").removeprefix("u:")


def _discard(connection: Connection) -> None:
    """Close a connection whatever state it is in (ldap3 leaves the socket open when TLS fails)."""
    sock = connection.socket
    try:
        connection.unbind()
    except (LDAPException, OSError):
        pass
    if sock is not None:
        sock.close()


def _exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, its causes, and the per-address failures ldap3 keeps in its arguments."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo.extend(x for x in (e.__cause__, e.__context__) if x is not None)
        for arg in e.args:
            if isinstance(arg, list):
                todo.extend(item[0] for item in arg
                            if isinstance(item, tuple) and item and isinstance(item[0], BaseException))


def _certificate_detail(text: str) -> str:
    if "mismatch" in text or "doesn't match" in text:
        return "it was issued to another name"
    match = re.search(r"certificate verify failed: ([^(\]]+)", text)
    if match:
        return match.group(1).strip()
    return "verification failed"


def _last_words(text: str) -> str:
    return text.rsplit(": ", 1)[-1].strip() or "no reason given"


class LdapSession:
    """A bound connection with the signed-in person's own rights."""

    def __init__(self, directory: LdapDirectory, connection: Connection, url: str,
                 names: DomainNames | None = None) -> None:
        self.directory = directory
        self.connection = connection  # ldap3, with usage counters (connection.usage)
        self.url = url
        self._identity: Identity | None = None
        self.names = names or DomainNames("", "")
        self._base_dn = directory.config.base_dn or _dn_of_domain(
            directory.config.domain or self.names.dns)
        self._netbios = self.names.netbios or directory.config.netbios_name
        self._domain_sid = ""

    def __repr__(self) -> str:
        who = self._identity.name if self._identity else "?"
        return f"<LdapSession {who} at {self.url}>"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if not self.connection.closed:
            try:
                self.connection.unbind()
            except (LDAPException, OSError):
                pass  # the server went away first; nothing is left to release

    @property
    def identity(self) -> Identity:
        if self._identity is None:
            raise DirectoryError("Not signed in.")
        return self._identity

    # -- sign-in: the user, their tokenGroups, the names of those groups (three searches)

    def sign_in(self, account: Account) -> Identity:
        if not self._base_dn:
            self._base_dn = self._naming_context()
        if not (self.names.dns and self.names.netbios):
            # The controller did not answer the LDAP ping: the domain's names from its crossRef,
            # and the typed domain checked against them before the identity is used.
            self.names = self._crossref_names()
            directory, config = self.directory, self.directory.config
            if directory.trusted:
                directory.check_trusted_controller(self.url, self.names)
            checked_account(account, self.names, config.domain,
                            config.netbios_name if directory.trusted else "", directory.key)
            self._netbios = self.names.netbios or config.netbios_name
        user = self._find_user(account)
        self._domain_sid = _domain_of(user.sid)
        token = self._search(user.dn, "(objectClass=*)", ["tokenGroups"], scope=BASE)
        sids = [_sid_text(raw) for e in token for raw in e["raw_attributes"].get("tokenGroups", [])]
        direct_dns = {dn.lower() for dn in user.member_of}
        primary = f"{self._domain_sid}-{user.primary_group}"
        groups = []
        for entry in self._by_sids(sids):
            sid = _sid(entry)
            nested = not (entry["dn"].lower() in direct_dns or sid == primary)
            groups.append(Group(sid, self._name(sid, _text(entry, "sAMAccountName")), entry["dn"], nested))
        found = {g.sid for g in groups}
        groups += [Group(s, s, "", True) for s in sids if s not in found]  # e.g. a deleted trust
        extra = {"server": self.url}
        if not self.directory.certificate_checked:
            extra["warning"] = UNVERIFIED_WARNING
        self._identity = Identity(
            sid=user.sid, name=f"{self._netbios}\\{user.sam}", display_name=user.display_name,
            upn=user.upn, dn=user.dn, mail=user.mail, groups=group_order(groups), extra=extra)
        return self._identity

    def _crossref_names(self) -> DomainNames:
        root = self._search("", "(objectClass=*)", ["defaultNamingContext",
                                                    "configurationNamingContext"], scope=BASE)
        default = _text(root[0], "defaultNamingContext") if root else ""
        configuration = _text(root[0], "configurationNamingContext") if root else ""
        if not (default and configuration):
            raise DirectoryError("The domain controller did not name its domain.")
        entries = self._search(f"CN=Partitions,{configuration}",
                               f"(&(objectClass=crossRef)(nCName={escape_filter_chars(default)}))",
                               ["nETBIOSName", "dnsRoot"])
        if not entries:
            raise DirectoryError("The domain controller did not say its domain's NetBIOS name "
                                 "(its crossRef cannot be read).")
        return DomainNames(_text(entries[0], "dnsRoot") or _domain_of_dn(default),
                           _text(entries[0], "nETBIOSName"))

    def _naming_context(self) -> str:
        root = self._search("", "(objectClass=*)", ["defaultNamingContext"], scope=BASE)
        value = _text(root[0], "defaultNamingContext") if root else ""
        if not value:
            raise DirectoryError("The domain controller did not name its domain: set directory.base_dn.")
        return value

    def _find_user(self, account: Account) -> _User:
        sam = escape_filter_chars(account.sam)
        if account.upn:
            upn = escape_filter_chars(account.upn)
            own = account.upn.rpartition("@")[2].lower() == self.directory.config.domain.lower()
            # name@<our domain> binds through the implicit UPN even when userPrincipalName is unset
            which = (f"(|(userPrincipalName={upn})(sAMAccountName={sam}))" if own
                     else f"(userPrincipalName={upn})")
        else:
            which = f"(sAMAccountName={sam})"
        entries = self._search(self._base_dn, f"(&(objectClass=user){which})",
                               ["sAMAccountName", "userPrincipalName", "displayName", "mail",
                                "objectSid", "primaryGroupID", "memberOf"])
        if account.upn:  # an explicit UPN wins over another account's sAMAccountName
            entries.sort(key=lambda e: _text(e, "userPrincipalName").lower() != account.upn.lower())
        if not entries:
            raise DirectoryError(f"Signed in as {account.bind_name}, but that account is not found "
                                 f"under {self._base_dn}: check directory.base_dn.")
        e = entries[0]
        return _User(dn=e["dn"], sid=_sid(e), sam=_text(e, "sAMAccountName"),
                     upn=_text(e, "userPrincipalName"), display_name=_text(e, "displayName"),
                     mail=_text(e, "mail"), primary_group=_text(e, "primaryGroupID"),
                     member_of=tuple(_texts(e, "memberOf")))

    def _by_sids(self, sids: list[str]) -> list[dict[str, Any]]:
        if not sids:
            return []
        wanted = "".join(f"(objectSid={escape_filter_chars(s)})" for s in sids)
        return self._search(self._base_dn, f"(|{wanted})", ["sAMAccountName", "objectSid"], paged=True)

    # -- look-ups for the review screens

    def resolve(self, principal: str) -> Principal | None:
        """`DOMAIN\\name`, `name`, `name@domain` or a SID, to the object; None when not found."""
        text = principal.strip()
        known = well_known(text)
        if known or not text:
            return known
        if SID_PATTERN.fullmatch(text):
            which, domain = f"(objectSid={escape_filter_chars(text.upper())})", None
        elif "@" in text and "\\" not in text:
            which, domain = f"(userPrincipalName={escape_filter_chars(text)})", None
        else:
            domain, _, name = text.rpartition("\\")
            sam = escape_filter_chars(name)
            # a computer's account name ends in $, which people leave out
            which = f"(|(sAMAccountName={sam})(sAMAccountName={sam}$))" if not name.endswith("$") \
                else f"(sAMAccountName={sam})"
        entries = self._search(self._base_dn, f"(&(|(objectClass=user)(objectClass=group)){which})",
                               _PRINCIPAL_ATTRIBUTES)
        found = [self._principal(e) for e in entries]
        if domain:
            found = [p for p in found if p.name.split("\\")[0].lower() == domain.lower()]
        if len(found) > 1:  # name and name$ both exist: the exact name wins
            exact = "\\" + text.split("\\")[-1].lower()
            found = [p for p in found if p.name.lower().endswith(exact)] or found
        return found[0] if found else None

    def members(self, group: str | Principal) -> list[Member]:
        """Every transitive member: the in-chain rule, plus members by primary group (which the
        in-chain rule misses), also of the groups nested inside."""
        target = group if isinstance(group, Principal) else self.resolve(group)
        if target is None:
            raise DirectoryError(f"There is no group {group} in the directory.")
        if target.kind != "group" or not target.dn:
            raise DirectoryError(f"{target.name} is not a group of the directory.")
        dn, rid = escape_filter_chars(target.dn), target.sid.rsplit("-", 1)[1]
        entries = self._search(
            self._base_dn, f"(|(memberOf:{IN_CHAIN}:={dn})(primaryGroupID={rid}))",
            [*_PRINCIPAL_ATTRIBUTES, "memberOf", "primaryGroupID"], paged=True)
        members = {_sid(e): Member(self._principal(e), nested=not _is_direct(e, target.dn, rid))
                   for e in entries}
        domain = _domain_of(target.sid)
        rids = [m.principal.sid.rsplit("-", 1)[1] for m in members.values()
                if m.principal.kind == "group" and _domain_of(m.principal.sid) == domain]
        if rids:
            wanted = "".join(f"(primaryGroupID={r})" for r in rids)
            for e in self._search(self._base_dn, f"(|{wanted})", _PRINCIPAL_ATTRIBUTES, paged=True):
                members.setdefault(_sid(e), Member(self._principal(e), nested=True))
        return sorted(members.values(), key=lambda m: (m.nested, m.principal.name.lower()))

    def _principal(self, entry: dict[str, Any]) -> Principal:
        classes = {c.lower() for c in _texts(entry, "objectClass")}
        kind = "computer" if "computer" in classes else "group" if "group" in classes else "user"
        sid = _sid(entry)
        state = "enabled"
        if kind != "group":
            uac = int(_text(entry, "userAccountControl") or 0)
            expires = int(_text(entry, "accountExpires") or 0)
            if uac & UAC_DISABLED:
                state = "disabled"
            elif expires not in NEVER_EXPIRES and _filetime(expires) <= dt.datetime.now(dt.UTC):
                state = "expired"
        return Principal(kind, self._name(sid, _text(entry, "sAMAccountName")), sid, entry["dn"],
                         state, _text(entry, "displayName"))

    def _name(self, sid: str, sam: str) -> str:
        return f"BUILTIN\\{sam}" if sid.startswith(BUILTIN_PREFIX) else f"{self._netbios}\\{sam}"

    def _search(self, base: str, search_filter: str, attributes: list[str],
                scope: Literal["BASE", "SUBTREE"] = SUBTREE, paged: bool = False) -> list[dict[str, Any]]:
        conn = self.connection
        try:
            if paged:
                # AD returns at most 1000 entries a page (MaxPageSize); one page costs one round trip.
                conn.extend.standard.paged_search(base, search_filter, scope, attributes=attributes,
                                                  paged_size=1000, generator=False)
            else:
                conn.search(base, search_filter, scope, attributes=attributes)
        except LDAPException as exc:
            code = "timeout" if isinstance(exc, TimeoutError) else "unreachable"
            raise DirectoryUnavailable(f"The domain controller {self.url} stopped answering "
                                       f"({_last_words(str(exc))}).", code) from None
        result = conn.result or {}
        if result.get("result") not in (0, None) and result.get("description") != "noSuchObject":
            detail = _last_words(str(result.get("message", "")))
            raise DirectoryError(f"The directory refused a look-up at {self.url} "
                                 f"({result.get('description')}: {detail}).")
        return [e for e in conn.response or [] if e.get("type") == "searchResEntry"]


_PRINCIPAL_ATTRIBUTES = ["objectClass", "sAMAccountName", "objectSid", "userAccountControl",
                         "accountExpires", "displayName"]


@dataclass(frozen=True)
class _User:
    dn: str
    sid: str
    sam: str
    upn: str
    display_name: str
    mail: str
    primary_group: str
    member_of: tuple[str, ...]


def _raw(entry: dict[str, Any], name: str) -> list[bytes | str]:
    raw = entry.get("raw_attributes", {})
    values: list[bytes | str] = next((v for k, v in raw.items() if k.lower() == name.lower()), [])
    return values


def _texts(entry: dict[str, Any], name: str) -> list[str]:
    return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
            for v in _raw(entry, name)]


def _text(entry: dict[str, Any], name: str) -> str:
    values = _texts(entry, name)
    return values[0] if values else ""


def _sid(entry: dict[str, Any]) -> str:
    raw = entry.get("raw_attributes", {}).get("objectSid") or [b""]
    return _sid_text(raw[0])


# types-ldap3 leaves format_sid unannotated: it returns the S-1-... text, or the raw value it could
# not decode.
_format_sid = cast("Callable[[bytes], object]", format_sid)


def _sid_text(raw: bytes) -> str:
    return str(_format_sid(raw))


def _domain_of(sid: str) -> str:
    return sid.rsplit("-", 1)[0]


def _is_direct(entry: dict[str, Any], group_dn: str, rid: str) -> bool:
    return group_dn.lower() in {d.lower() for d in _texts(entry, "memberOf")} \
        or _text(entry, "primaryGroupID") == rid


def _filetime(value: int) -> dt.datetime:
    """A Windows FILETIME (100 ns since 1601) as an aware datetime."""
    epoch = dt.datetime(1601, 1, 1, tzinfo=dt.UTC)
    try:
        return epoch + dt.timedelta(microseconds=value // 10)
    except OverflowError:
        return dt.datetime.max.replace(tzinfo=dt.UTC)


def _dn_of_domain(domain: str) -> str:
    return ",".join(f"DC={part}" for part in domain.split(".") if part)


def _domain_of_dn(dn: str) -> str:
    """DC=lab,DC=example -> lab.example."""
    return ".".join(part.split("=", 1)[1] for part in dn.split(",")
                    if part.strip().upper().startswith("DC="))

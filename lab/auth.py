"""Lab domain accounts, per-host rights, and the NTLM or Kerberos logon of a lab host's connection.

`Accounts` plays the domain: every lab host of a process checks logons against one `Accounts`,
so bad logons add up across hosts and a locked account is refused everywhere, with the right
password too, as a domain's lockout policy does. pyspnego is the NTLM acceptor; it reads the
passwords from the file named by the environment variable NTLM_USER_FILE, which is one per
process, so one `Accounts` at a time owns it while hosts that use it are running.

Kerberos: a host given `KerberosKeys` (a keytab a domain controller exported, e.g. with `samba-tool
domain exportkeytab`, holding the key of its SPN HTTP/hv01.lab.example) accepts a ticket for that
SPN alone, through pyspnego and the `gssapi` package as a Windows host's SSPI does: the logon is
one leg, and the caller is the ticket's client principal, which must be an account of `Accounts`.
MIT Kerberos reads the acceptor's keytab from KRB5_KTNAME, one a process, like NTLM_USER_FILE.
"""
from __future__ import annotations

import base64
import os
import struct
import tempfile
import threading
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path

import spnego
from spnego.channel_bindings import GssChannelBindings

from console.errors import ConfigError

DEFAULT_LOCKOUT_THRESHOLD = 5
_NTLM_SIGNATURE = b"NTLMSSP\x00"


@dataclass(frozen=True)
class KerberosKeys:
    """What lets a lab host accept Kerberos: the keytab holding the key of its service principal."""

    keytab: Path
    spn: str  # HTTP/hv01.lab.example: the one principal this host accepts tickets for

    def __post_init__(self) -> None:
        service, _, host = self.spn.partition("/")
        if not service or not host or "@" in host:
            raise ConfigError(f"The lab host's SPN {self.spn!r} is not of the form HTTP/<host name>.",
                              key="spn")

    def use(self) -> None:
        """Point MIT Kerberos' acceptor at this keytab (process-wide: every lab host of a process
        shares the domain's one keytab)."""
        os.environ["KRB5_KTNAME"] = f"FILE:{self.keytab}"


@dataclass(frozen=True)
class LabUser:
    """The caller of a lab host, as the host's executor sees it."""

    name: str  # DOMAIN\user, e.g. LAB\henry
    sid: str
    admin: bool = False  # a host administrator on this host


@dataclass
class Account:
    name: str  # DOMAIN\user, the canonical spelling
    sid: str
    password: str
    enabled: bool = True
    bad_logons: int = 0
    locked: bool = False

    @property
    def sam_account_name(self) -> str:
        return self.name.split("\\", 1)[1]


class LogonOutcome(Enum):
    SUCCESS = "success"
    BAD_PASSWORD = "bad_password"
    UNKNOWN_USER = "unknown_user"
    DISABLED = "disabled"
    LOCKED_OUT = "locked_out"
    NTLM_REFUSED = "ntlm_refused"  # the host accepts Kerberos only
    BAD_TICKET = "bad_ticket"  # a Kerberos token the host cannot accept (another SPN, skew, ...)


@dataclass(frozen=True)
class LogonResult:
    outcome: LogonOutcome
    user: str  # canonical name when known, else what the client sent
    now_locked: bool = False  # this failure reached the lockout threshold


class Accounts:
    """The lab's domain: accounts, passwords, bad-logon counts and lockout.

    A logon with a wrong password counts one bad logon; at `lockout_threshold` the account
    locks until `unlock()`. A successful logon resets the count, as on a domain controller.
    Names are accepted as DOMAIN\\user, user@dns_domain, or a bare user of this domain.
    """

    def __init__(self, domain: str = "LAB", dns_domain: str = "lab.example",
                 lockout_threshold: int = DEFAULT_LOCKOUT_THRESHOLD) -> None:
        if lockout_threshold < 1:
            raise ConfigError("The lockout threshold must be at least 1.", key="lockout_threshold")
        self.domain = domain.upper()
        self.dns_domain = dns_domain.lower()
        self.lockout_threshold = lockout_threshold
        self._accounts: dict[str, Account] = {}
        self._lock = threading.RLock()
        folder = Path(tempfile.mkdtemp(prefix="hvconsole-lab-ntlm-"))
        self.user_file = folder / "users.txt"
        self._finalizer = weakref.finalize(self, _remove_folder, folder)
        self._write_file()

    # --- the directory --------------------------------------------------------------------------

    def add(self, name: str, sid: str, password: str, *, enabled: bool = True) -> Account:
        canonical = self._canonical_new(name)
        _check_password(password)
        with self._lock:
            self._accounts[canonical.lower()] = Account(canonical, sid, password, enabled)
            self._write_file()
            return replace(self._accounts[canonical.lower()])

    def set_password(self, name: str, password: str) -> None:
        _check_password(password)
        with self._lock:
            self._live(name).password = password
            self._write_file()

    def set_enabled(self, name: str, enabled: bool) -> None:
        with self._lock:
            self._live(name).enabled = enabled

    def unlock(self, name: str) -> None:
        with self._lock:
            account = self._live(name)
            account.locked, account.bad_logons = False, 0

    def get(self, name: str) -> Account | None:
        """A copy of the account (any accepted spelling of the name), or None."""
        with self._lock:
            canonical = self.canonical(name)
            account = self._accounts.get(canonical.lower()) if canonical else None
            return replace(account) if account else None

    def names(self) -> list[str]:
        with self._lock:
            return [a.name for a in self._accounts.values()]

    def canonical(self, name: str) -> str | None:
        """DOMAIN\\user for any accepted spelling of a name of this domain, else None."""
        if "\\" in name:
            domain, user = name.split("\\", 1)
        elif "@" in name:
            user, domain = name.rsplit("@", 1)
        else:
            domain, user = self.domain, name
        if not user or domain.upper() not in {self.domain, self.dns_domain.upper()}:
            return None
        account = self._accounts.get(f"{self.domain}\\{user}".lower())
        return account.name if account else f"{self.domain}\\{user}"

    # --- logons ---------------------------------------------------------------------------------

    def precheck(self, client_name: str) -> LogonResult | None:
        """Refuse before any password check: unknown, disabled or locked accounts."""
        with self._lock:
            canonical = self.canonical(client_name)
            account = self._accounts.get(canonical.lower()) if canonical else None
            if account is None:
                return LogonResult(LogonOutcome.UNKNOWN_USER, canonical or client_name)
            if account.locked:
                return LogonResult(LogonOutcome.LOCKED_OUT, account.name)
            if not account.enabled:
                return LogonResult(LogonOutcome.DISABLED, account.name)
            return None

    def record(self, client_name: str, password_ok: bool) -> LogonResult:
        """Count the outcome of a password check for an account that passed precheck()."""
        with self._lock:
            account = self._live(client_name)
            if password_ok:
                account.bad_logons = 0
                return LogonResult(LogonOutcome.SUCCESS, account.name)
            account.bad_logons += 1
            now_locked = account.bad_logons >= self.lockout_threshold and not account.locked
            account.locked = account.locked or now_locked
            return LogonResult(LogonOutcome.BAD_PASSWORD, account.name, now_locked)

    # --- the process-wide NTLM credential file --------------------------------------------------

    def acquire(self) -> None:
        """Point NTLM_USER_FILE at this domain's file while a host using it runs."""
        global _owner, _owner_count, _previous_env
        with _owner_lock:
            if _owner is not None and _owner is not self and _owner_count > 0:
                raise ConfigError(
                    "Another lab domain is in use by running lab hosts in this process; stop "
                    "them first or give every lab host the same Accounts.")
            if _owner is not self:
                _previous_env = os.environ.get("NTLM_USER_FILE")
                _owner, _owner_count = self, 0
            os.environ["NTLM_USER_FILE"] = str(self.user_file)
            _owner_count += 1

    def release(self) -> None:
        global _owner, _owner_count, _previous_env
        with _owner_lock:
            if _owner is not self or _owner_count == 0:
                return
            _owner_count -= 1
            if _owner_count == 0:
                if _previous_env is None:
                    os.environ.pop("NTLM_USER_FILE", None)
                else:
                    os.environ["NTLM_USER_FILE"] = _previous_env
                _owner, _previous_env = None, None

    def _write_file(self) -> None:
        # Every spelling a client may send: pyspnego matches the domain part exactly.
        lines = []
        for account in self._accounts.values():
            user, pw = account.sam_account_name, account.password
            lines += [f"{self.domain}:{user}:{pw}", f"{self.dns_domain}:{user}:{pw}",
                      f":{user}:{pw}", f":{user}@{self.dns_domain}:{pw}"]
        temp = self.user_file.with_suffix(".tmp")
        temp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        temp.chmod(0o600)
        os.replace(temp, self.user_file)

    def _canonical_new(self, name: str) -> str:
        canonical = self.canonical(name)
        if canonical is None or not _plain(canonical.split("\\", 1)[1]):
            raise ConfigError(f"The lab account name {name!r} is not a plain name of domain {self.domain}.")
        return canonical

    def _live(self, name: str) -> Account:
        canonical = self.canonical(name)
        account = self._accounts.get(canonical.lower()) if canonical else None
        if account is None:
            raise ConfigError(f"There is no lab account {name!r}.")
        return account


_owner_lock = threading.Lock()
_owner: Accounts | None = None
_owner_count = 0
_previous_env: str | None = None
_default: Accounts | None = None


def default_accounts() -> Accounts:
    """The process's lab domain, shared by every lab host not given its own Accounts."""
    global _default
    with _owner_lock:
        if _default is None:
            _default = Accounts()
        return _default


def _remove_folder(folder: Path) -> None:
    for path in folder.iterdir():
        path.unlink(missing_ok=True)
    folder.rmdir()


def _plain(text: str) -> bool:
    return bool(text) and not any(c in text for c in ':\n\r\\@/')


def _check_password(password: str) -> None:
    # The credential file is colon-separated, one account a line.
    if not password or any(c in password for c in ":\r\n"):
        raise ConfigError("A lab password must be non-empty and hold no colon or line break.")


@dataclass(frozen=True)
class HostRights:
    """Who may use one host: `users` may open a shell (None: every account of the domain);
    `admins` are host administrators and may always open a shell. Names in any spelling."""

    users: frozenset[str] | None = None
    admins: frozenset[str] = frozenset()

    @classmethod
    def of(cls, users: Iterable[str] | None = None, admins: Iterable[str] = ()) -> HostRights:
        return cls(None if users is None else frozenset(users), frozenset(admins))

    def may_connect(self, accounts: Accounts, name: str) -> bool:
        return self.is_admin(accounts, name) or self.users is None or _contains(accounts, self.users, name)

    def is_admin(self, accounts: Accounts, name: str) -> bool:
        return _contains(accounts, self.admins, name)


def _contains(accounts: Accounts, names: frozenset[str], name: str) -> bool:
    wanted = (accounts.canonical(name) or name).lower()
    return any((accounts.canonical(n) or n).lower() == wanted for n in names)


# --- one connection's logon ---------------------------------------------------------------------

def ntlm_identity(token: bytes) -> str | None:
    """DOMAIN\\user (or user@realm, or user) named in an NTLM AUTHENTICATE message, else None."""
    start = token.find(_NTLM_SIGNATURE)
    if start < 0 or len(token) < start + 64:
        return None
    message = token[start:]
    if struct.unpack_from("<I", message, 8)[0] != 3:
        return None
    flags = struct.unpack_from("<I", message, 60)[0]

    def field(offset: int) -> str:
        length, _, where = struct.unpack_from("<HHI", message, offset)
        raw = message[where:where + length]
        return raw.decode("utf-16-le" if flags & 1 else "cp437", errors="replace")

    domain, user = field(28), field(36)
    return f"{domain}\\{user}" if domain else user


def ntlm_message_type(token: bytes) -> int | None:
    start = token.find(_NTLM_SIGNATURE)
    if start < 0 or len(token) < start + 12:
        return None
    return int(struct.unpack_from("<I", token, start + 8)[0])


class _Sealing:
    """WinRM message encryption with the logon's security context, NTLM's or Kerberos'."""

    _context: spnego.ContextProxy | None

    def wrap(self, data: bytes) -> tuple[bytes, bytes]:
        """(signature or GSS wrap token header, sealed data): the message's two parts."""
        assert self._context is not None
        wrapped = self._context.wrap_winrm(data)
        return wrapped.header, wrapped.data

    def unwrap(self, header: bytes, data: bytes) -> bytes:
        assert self._context is not None
        return self._context.unwrap_winrm(header, data)


class NtlmLogon(_Sealing):
    """The NTLM acceptor of one TCP connection (NTLM authenticates the connection)."""

    def __init__(self, accounts: Accounts, channel_bindings: GssChannelBindings | None = None) -> None:
        self.accounts = accounts
        self.channel_bindings = channel_bindings
        self._context: spnego.ContextProxy | None = None
        self.user: str | None = None  # canonical name once the logon succeeded
        self.final_token: bytes | None = None  # SPNEGO's last word, sent with the first reply

    @property
    def complete(self) -> bool:
        return self.user is not None

    def negotiate(self, token: bytes) -> bytes:
        """First leg: a NEGOTIATE message (raw, or wrapped in SPNEGO) in, the CHALLENGE out."""
        self.user, self.final_token = None, None
        if token.startswith(_NTLM_SIGNATURE):  # pyspnego's own NTLM, never a system library
            self._context = spnego.server(protocol="ntlm", channel_bindings=self.channel_bindings,
                                          options=spnego.NegotiateOptions.use_ntlm)
        else:
            self._context = spnego.server(protocol="negotiate", channel_bindings=self.channel_bindings)
        return self._context.step(token) or b""

    def authenticate(self, token: bytes) -> LogonResult:
        """Third leg: check the AUTHENTICATE message against the domain."""
        context, self._context = self._context, None
        client_name = ntlm_identity(token) or ""
        refused = self.accounts.precheck(client_name)
        if refused is not None:
            return refused
        password_ok = False
        if context is not None:
            try:
                self.final_token = context.step(token)
                password_ok = context.complete
            except Exception:  # whatever the client sent does not prove the password
                password_ok = False
        result = self.accounts.record(client_name, password_ok)
        if result.outcome is LogonOutcome.SUCCESS:
            self.user, self._context = result.user, context
        return result

    protocol = "ntlm"


class KerberosLogon(_Sealing):
    """The Kerberos acceptor of one TCP connection: one leg, a ticket for the host's own SPN."""

    protocol = "kerberos"

    def __init__(self, accounts: Accounts, keys: KerberosKeys,
                 channel_bindings: GssChannelBindings | None = None) -> None:
        self.accounts = accounts
        self.keys = keys
        self.channel_bindings = channel_bindings
        self._context: spnego.ContextProxy | None = None
        self.user: str | None = None
        self.final_token: bytes | None = None  # the AP-REP (mutual authentication)
        self.reason = ""  # why a ticket was refused, for the host's event log

    @property
    def complete(self) -> bool:
        return self.user is not None

    def accept(self, token: bytes) -> LogonResult:
        service, _, host = self.keys.spn.partition("/")
        self.keys.use()
        context = spnego.server(hostname=host, service=service, protocol="negotiate",
                                channel_bindings=self.channel_bindings)
        try:
            self.final_token = context.step(token)
        except Exception as error:  # noqa: BLE001 - whatever it was, it is no valid ticket for us
            self.reason = str(error)
            return LogonResult(LogonOutcome.BAD_TICKET, "")
        principal = context.client_principal or ""
        if not context.complete or context.negotiated_protocol != "kerberos":
            self.reason = "the token was not a complete Kerberos logon"
            return LogonResult(LogonOutcome.BAD_TICKET, principal)
        refused = self.accounts.precheck(principal)
        if refused is not None:
            return refused
        self._context = context
        self.user = self.accounts.canonical(principal)
        return LogonResult(LogonOutcome.SUCCESS, self.user or principal)



def decode_auth_header(value: str) -> tuple[str, bytes] | None:
    """('Negotiate' or 'NTLM', token) from an Authorization header, else None."""
    scheme, _, encoded = value.strip().partition(" ")
    if scheme.lower() not in {"negotiate", "ntlm"} or not encoded:
        return None
    try:
        return scheme, base64.b64decode(encoded.strip(), validate=True)
    except ValueError:
        return None

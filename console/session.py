"""Signing in, the one way: the CLI commands, the desktop console and its first run all use this.

A `Setup` is what the console works with before anyone signs in: the configuration, the policy,
the directory and the audit trail. `sign_in` turns it into a `Session`: who signed in, their host
pool and their actions, and the global privileges (policy.read, policy.modify, audit.read) checked
in one place.

The product never builds the demo's parts itself: the demo directory and the demo world come from
the outside (`Extensions`, filled by the application's entry point), so the core works the same
whether or not the lab is part of a build. They are reached only through `--demo` and
`hvconsole demo` (`demo_world`, `demo_directory`), never through a configuration file: a person's
file that says `demo = true` is refused (console/config.py).

The configured world takes its policy only from the machine-wide file, and only when
administrators alone can change that file and the policy (console/trust.py): otherwise loading
stops with a sentence naming the file, and nothing else is offered in its place.
"""
from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .audit import AuditTrail
from .config import Config, trusted_policy
from .errors import ConfigError, Denied
from .identity import Identity
from .policy import GLOBAL_PRIVILEGES, VERBS, Policy

if TYPE_CHECKING:  # ldap3 and the host clients load only when someone signs in
    from .actions import ActionService
    from .directory import Directory, DirectorySession
    from .hosts import HostPool

NO_DEMO = "The demo lab is not part of this build."


@dataclass(frozen=True)
class Extensions:
    """What the application's entry point adds to the core: the demo, when the lab is shipped."""
    demo_directory: Callable[[], Directory] | None = None
    demo_world: Callable[[], AbstractContextManager[Setup]] | None = None
    commands: tuple[Any, ...] = ()  # modules with register(subparsers), like console.commands.*


NO_EXTENSIONS = Extensions()


@dataclass
class Setup:
    config: Config
    policy: Policy
    directory: Directory
    audit: AuditTrail

    @property
    def demo(self) -> bool:
        return self.config.demo

    @property
    def warnings(self) -> tuple[str, ...]:
        """What makes this world unsafe to sign in to (skip_certificate_check), each a sentence
        the windows and commands keep showing."""
        return self.config.directory.warnings

    @classmethod
    def load(cls, config_path: Path | None = None) -> Setup:
        """The configured world: the user's (or the given) configuration, the policy the
        machine-wide file names, the directory and the audit trail. Never the demo."""
        config = Config.load(config_path) if config_path else Config.load()
        return cls(config, load_policy(config), open_directory(config),
                   AuditTrail(config.audit_file))


def load_policy(config: Config) -> Policy:
    """The policy the machine-wide file names, once only administrators can change it."""
    if not config.policy_path:
        raise ConfigError("No policy is configured for this computer: an administrator sets "
                          "policy.path in the machine-wide configuration; ask your administrators.",
                          "policy.path")
    return Policy.load(trusted_policy(config.policy_path))


def open_directory(config: Config) -> Directory:
    """The configured Active Directory and the domains it trusts ([[directory.trusted]]), each
    signing its people in at its own controllers (never the demo directory: see
    `demo_directory`)."""
    from .directory import Directories

    if not config.directory.urls:
        raise ConfigError("No directory is configured: set directory.urls (and directory.domain), "
                          "or start the demo.", "directory.urls")
    return Directories(config.directory)


@contextlib.contextmanager
def demo_world(extensions: Extensions) -> Iterator[Setup]:
    """The demo world (`hvconsole demo`, `--demo`): the lab's hosts, policy and directory."""
    if extensions.demo_world is None:
        raise ConfigError(NO_DEMO)
    with extensions.demo_world() as setup:
        yield setup


def demo_directory(extensions: Extensions) -> Directory:
    """The demo directory alone (`hvconsole whoami --demo`: signing in needs no hosts)."""
    if extensions.demo_directory is None:
        raise ConfigError(NO_DEMO)
    return extensions.demo_directory()


def record_warnings(audit: AuditTrail, config: Config, identity: Identity) -> None:
    """Each unsafe setting the person signed in with, in the audit trail (action
    config.insecure): not only a log line. AuditError when the trail cannot be written."""
    for warning in config.directory.warnings:
        audit.insecure(identity, "directory.skip_certificate_check", warning,
                       {"urls": list(config.directory.urls)})


@dataclass
class Session:
    """Someone signed in: their identity, the hosts they may reach, and the actions they may take."""
    identity: Identity
    setup: Setup
    pool: HostPool
    actions: ActionService
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def policy(self) -> Policy:
        return self.setup.policy

    def allows(self, privilege: str) -> bool:
        """A global privilege (policy.read, policy.modify, audit.read) from the current policy."""
        if privilege not in GLOBAL_PRIVILEGES:
            raise ValueError(f"{privilege} is not a global privilege")
        return self.policy.global_decision(self.identity).allows(privilege)

    def require(self, privilege: str) -> None:
        """Raise Denied naming what was refused and why, unless the policy grants `privilege`."""
        if not self.allows(privilege):
            raise Denied(f"{self.identity.name} may not {VERBS[privilege]}: no grant "
                         f"gives {privilege}.")

    def audit_records(self) -> AuditTrail:
        """The audit trail, for holders of audit.read."""
        self.require("audit.read")
        return self.setup.audit

    def close(self) -> None:
        self.pool.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def kerberos_principal(identity: Identity) -> str:
    """user@REALM for a password's Kerberos logon at the hosts (the realm is the domain's DNS
    name from the user's DN, upper case); "" when the DN does not say."""
    realm = ".".join(part[3:] for part in identity.dn.split(",") if part.strip().upper().startswith("DC="))
    return f"{identity.sam_account_name}@{realm.upper()}" if realm else ""


def sign_in(setup: Setup, user: str, password: str, *, hosts: Iterable[str] | None = None,
            slow_after: float = 5.0) -> Session:
    """Check the password against the directory and open the person's host pool (all configured
    hosts, or only `hosts`). The hosts authenticate the same account, by the name the directory
    resolved (DOMAIN\\name), as Windows would."""
    return open_session(setup, setup.directory.sign_in(user, password), password, hosts=hosts,
                        slow_after=slow_after)


def sign_in_with_ticket(setup: Setup, *, hosts: Iterable[str] | None = None,
                        slow_after: float = 5.0) -> Session:
    """Single sign-on: the current Kerberos ticket (the Windows logon, or a `kinit` ticket cache;
    KRB5CCNAME honoured) signs in at the directory and at every host; no password is asked for."""
    return open_session(setup, ticket_identity(setup.directory), "", hosts=hosts,
                        slow_after=slow_after, sso=True)


def ticket_identity(directory: Directory) -> Identity:
    """Who the current Kerberos ticket is, as the directory says (SASL GSSAPI bind, tokenGroups);
    TicketError (a SignInError) says why not."""
    with ticket_session(directory) as session:
        return session.identity


def ticket_session(directory: Directory) -> DirectorySession:
    """The directory session of the current Kerberos ticket (its identity marked as a Windows
    sign-in); TicketError when there is no usable ticket or the directory takes none."""
    from .kerberos import TicketError, current_ticket

    bind = getattr(directory, "ticket_session", None)
    if bind is None:
        raise TicketError("This directory takes passwords only (the demo has no Kerberos): sign in "
                          "with your password.", code="no_kerberos")
    session: DirectorySession = bind(current_ticket())
    session.identity.extra["sign_in"] = SSO_SIGN_IN
    return session


SSO_SIGN_IN = "Windows sign-in"  # how the window names a sign-in with the logon's ticket


def open_session(setup: Setup, identity: Identity, password: str, *,
                 hosts: Iterable[str] | None = None, slow_after: float = 5.0,
                 sso: bool = False) -> Session:
    """A session for someone the directory has already signed in (the sign-in dialog did); with
    `sso` the hosts get the person's Kerberos ticket instead of a password."""
    from .actions import ActionService
    from .hosts import Credentials, HostPool

    configs = setup.config.hosts
    if hosts is not None:
        wanted = {h.lower() for h in hosts}
        configs = [h for h in configs if h.name.lower() in wanted]
        unknown = wanted - {h.name.lower() for h in configs}
        if unknown:
            raise ConfigError(f"{', '.join(sorted(unknown))} is not a configured host.", "hosts")
    record_warnings(setup.audit, setup.config, identity)
    credentials = (Credentials.ticket(identity.name) if sso
                   else Credentials(identity.name, password, principal=kerberos_principal(identity)))
    pool = HostPool(configs, credentials, slow_after=slow_after)
    return Session(identity, setup, pool, ActionService(setup.policy, setup.audit, pool))

"""Typed errors of the core. Each message is a sentence a person can act on.

One place in the GUI (`ui/errors.py`) and one in the CLI turn these into messages; anything that is
not a ConsoleError is a bug and is shown with its traceback.
"""
from __future__ import annotations

from dataclasses import dataclass


class ConsoleError(Exception):
    """Base of every expected failure; str(error) is the sentence shown to people."""


# --- configuration and policy -------------------------------------------------------------------

class ConfigError(ConsoleError):
    """A configuration value is missing or wrong; `key` names it (e.g. "directory.urls")."""

    def __init__(self, message: str, key: str | None = None, path: str | None = None) -> None:
        super().__init__(message)
        self.key = key
        self.path = path


@dataclass(frozen=True)
class Problem:
    """One validation problem of a file, printed as `FILE:LINE: message`."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line if self.line is not None else '?'}: {self.message}"


class PolicyError(ConsoleError):
    """The policy file cannot be used; `problems` lists every problem found (never half-applied)."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        first = str(self.problems[0]) if self.problems else "the policy is invalid"
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(first + more)


class Denied(ConsoleError):
    """The policy does not grant the privilege this action needs."""


class PolicyChanged(ConsoleError):
    """The policy file changed on disk since it was loaded: reload it, then make the change again."""


# --- directory ------------------------------------------------------------------------------------

class SignInError(ConsoleError):
    """Sign-in failed; `code` is a stable token (bad_credentials, disabled, expired, locked, ...)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class DirectoryUnavailable(ConsoleError):
    """No domain controller could be reached (or trusted); the message names each server tried."""

    def __init__(self, message: str, code: str = "unreachable") -> None:
        super().__init__(message)
        self.code = code


class DirectoryError(ConsoleError):
    """A directory look-up failed after sign-in (not found, insufficient rights, ...)."""


# --- hosts ----------------------------------------------------------------------------------------

class HostError(ConsoleError):
    """An operation on a Hyper-V host failed; `code` is the host contract's error code, and
    `advice` the next step a person can take, added after the host's own words."""

    code = "host_error"
    advice = ""

    def __init__(self, message: str, host: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.host = host
        if code is not None:
            self.code = code


class HostUnreachable(HostError):
    code = "unreachable"


class CertificateUntrusted(HostUnreachable):
    """The host's TLS certificate failed validation (unknown CA, wrong name, expired)."""

    code = "certificate_untrusted"


class HostTimeout(HostError):
    code = "timeout"


class CredentialsRejected(HostError):
    """A host answered 401: the password changed or is wrong. Every host call stops until re-entry."""

    code = "credentials_rejected"


class HostAccessDenied(HostError):
    """Signed in, but the host (or its JEA endpoint) refuses this user or this action."""

    code = "access_denied"


class VMNotFound(HostError):
    code = "not_found"


class WrongState(HostError):
    code = "wrong_state"


class NoShutdownService(HostError):
    code = "no_shutdown_service"
    advice = "Shut the guest down from inside it, or turn the VM off (unsaved work is lost)."


class GuestLocked(HostError):
    """The guest refused a shut down: its console is locked (Msvm_ShutdownComponent 32781)."""

    code = "guest_locked"
    advice = ("The guest's console is locked, so it refused to shut down: ask whoever is signed "
              "in to it to sign out, or turn the VM off (unsaved work in the guest is lost).")


class ObjectInUse(HostError):
    """A backup or a checkpoint merge holds the VM (error id ObjectInUse, 32774)."""

    code = "object_in_use"
    advice = "A backup or a checkpoint merge is using the VM; try again when it has finished."


class ConnectionLost(HostError):
    """The host's Hyper-V management service could not be reached from its own PowerShell."""

    code = "connection_lost"
    advice = ("The host's Hyper-V management service did not answer; try again in a minute, or "
              "ask the host's administrators.")


class ReplicaRefused(HostError):
    code = "replica"


class NotInLibrary(HostError):
    code = "not_in_library"


class NoDvdDrive(HostError):
    code = "no_dvd_drive"


class InvalidParameter(HostError):
    code = "invalid_parameter"


# --- audit ----------------------------------------------------------------------------------------

class AuditError(ConsoleError):
    """The audit trail could not be written or read; actions must not proceed without it."""

"""What a host answers: an operation's answer document read into data or its typed error
(docs/host-operations.md), an action's outcome, and a host's status in a refresh.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal



from ..errors import (
    ConnectionLost, CredentialsRejected, GuestLocked, HostAccessDenied,
    HostError, HostTimeout, HostUnreachable, InvalidParameter, NoDvdDrive, NoShutdownService,
    NotInLibrary, ObjectInUse, ReplicaRefused, VMNotFound, WrongState,
)
from ..inventory import VM, Checkpoint, DvdDrive, HostCapacity
from ..text import one_line
from ..console_access import ConsoleGrant


# The host contract's error codes (docs/host-operations.md) and the exception each one raises.
ERRORS: dict[str, type[HostError]] = {
    "not_found": VMNotFound,
    "wrong_state": WrongState,
    "no_shutdown_service": NoShutdownService,
    "replica": ReplicaRefused,
    "not_in_library": NotInLibrary,
    "no_dvd_drive": NoDvdDrive,
    "checkpoints_disabled": WrongState,
    "invalid_parameter": InvalidParameter,
    "access_denied": HostAccessDenied,
    "denied": HostAccessDenied,
    "guest_locked": GuestLocked,
    "object_in_use": ObjectInUse,
    "connection_lost": ConnectionLost,
}


@dataclass(frozen=True)
class ActionOutcome:
    """What became of an action: ok (the cmdlet returned), pending (the client's timeout ran out
    first: the host may still finish it, confirm by polling) or failed."""

    status: Literal["ok", "pending", "failed"]
    vm_state: str | None
    message: str = ""
    vm_status: str = ""
    checkpoint: Checkpoint | None = None
    drive: DvdDrive | None = None
    warning: str = ""  # beside a done action: e.g. the host could not write its event
    console: ConsoleGrant | None = None  # a grant or revoke of console access: who holds it

    @classmethod
    def pending(cls, host: str, operation: str, vm_id: str, timeout: float,
                cause: str) -> ActionOutcome:
        """No answer before the client's timeout: the host may still finish; never retried."""
        return cls("pending", None,
                   f"{host} has not answered the {operation} of VM {vm_id} within {timeout:g} s "
                   f"({cause}); it may still complete: check the VM's state before trying again.")

    @classmethod
    def done(cls, data: Any, message: str, warning: str = "") -> ActionOutcome:
        """The outcome of an action whose script answered `data` (its VM, checkpoint, drive)."""
        data = data if isinstance(data, dict) else {}
        vm = data.get("vm") if isinstance(data.get("vm"), dict) else {}
        checkpoint, drive = data.get("checkpoint"), data.get("drive")
        return cls(
            "ok", str(vm["state"]) if vm.get("state") else None, message,
            str(vm.get("status") or ""),
            checkpoint=Checkpoint.from_json(checkpoint) if isinstance(checkpoint, dict) else None,
            drive=DvdDrive.from_json(drive) if isinstance(drive, dict) else None,
            warning=warning,
            console=ConsoleGrant.from_json(data) if "granted" in data else None)


def answer_data(host: str, document: Any, shown: str, vm_id: str | None = None) -> Any:
    """The `data` of an operation's answer document (docs/host-operations.md), or its error code
    raised as the matching exception; `shown` is quoted when the answer is no such document.
    One reading for both endpoints, so they fail alike."""
    if not (isinstance(document, dict) and isinstance(document.get("ok"), bool)):
        raise HostError(f"{host} answered something unexpected: {one_line(shown[:200])}",
                        host=host)
    if document["ok"]:
        return document.get("data")
    error = document.get("error")
    if not isinstance(error, dict):
        error = {}
    code = str(error.get("code") or "host_error")
    message = str(error.get("message") or "the host reported an error")
    where = f"{host}, VM {vm_id}" if vm_id else host
    kind = ERRORS.get(code, HostError)
    raise kind(f"{where}: {message}" + (f" {kind.advice}" if kind.advice else ""), host=host,
               code=code)


def log_warning(host: str, document: Any) -> str:
    """The event a host could not write (`log_error` beside a done action's answer), as the
    warning the outcome carries; "" when it wrote it."""
    log_error = document.get("log_error") if isinstance(document, dict) else None
    return f"{host}: {one_line(str(log_error))}" if log_error else ""


def items_of(data: Any, key: str, host: str) -> list[dict[str, Any]]:
    items = data.get(key) if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise HostError(f"{host} answered something unexpected: no {key} list.", host=host)
    return [i for i in items if isinstance(i, dict)]


class HostStatus(StrEnum):
    OK = "ok"
    SLOW = "slow"
    UNREACHABLE = "unreachable"
    ACCESS_DENIED = "access denied"
    CREDENTIALS_REJECTED = "credentials rejected"
    ERROR = "error"


@dataclass(frozen=True)
class HostResult:
    host: str
    status: HostStatus
    vms: tuple[VM, ...] = ()
    error: HostError | None = None
    seconds: float = 0.0
    capacity: HostCapacity | None = None  # memory and storage, when the host reported them


@dataclass(frozen=True)
class PoolResult:
    """Per-host results: one dead host never blanks the others."""

    hosts: dict[str, HostResult]

    @property
    def vms(self) -> list[VM]:
        return [vm for result in self.hosts.values() for vm in result.vms]

    @property
    def errors(self) -> dict[str, HostError]:
        return {h: r.error for h, r in self.hosts.items() if r.error is not None}


def status_of(error: HostError | None, seconds: float, slow_after: float) -> HostStatus:
    if error is None:
        return HostStatus.SLOW if seconds > slow_after else HostStatus.OK
    if isinstance(error, CredentialsRejected):
        return HostStatus.CREDENTIALS_REJECTED
    if isinstance(error, HostAccessDenied):
        return HostStatus.ACCESS_DENIED
    if isinstance(error, (HostUnreachable, HostTimeout)):
        return HostStatus.UNREACHABLE
    return HostStatus.ERROR

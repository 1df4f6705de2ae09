"""The one place that performs an action on a VM.

Deny by default: right before the host is called, the policy is evaluated again and the VM's
current state is read from the host, so a stale window or a revoked grant cannot act. Every
attempt is audited, allowed, denied and failed alike: a decision record before the host call, an
outcome record after. If the audit trail cannot be written, the action does not happen. The host
call carries the decision record's reference (console.audit.RecordRef: its correlation id, number
and line hash), which the host writes in its own event with the caller's SID from the token, so
the trail can be held to the hosts' events (`hvconsole audit verify --hosts`).

Actions on one host run one at a time, in order (the pool's queue per host); the state check and
the action run in the same queued job, so nothing slips in between.
"""
from __future__ import annotations

from concurrent.futures import Future
from dataclasses import replace
from typing import Any

from .audit import AuditTrail, RecordRef
from .errors import AuditError, Denied, HostError, InvalidParameter, VMNotFound
from .hosts import ActionOutcome, Client, HostPool, confirm
from .identity import Identity
from .inventory import (
    CHECKPOINT_ACTIONS, MEDIA_ACTIONS, REQUIRED_PRIVILEGES, VM, Action, allowed_by_state,
)
from .policy import Policy
from .powershell import facts

CHECKPOINT_NAME_MAX = int(facts.host("checkpoints")["name_max_length"])

# Action -> the `action` parameter of the host's power / checkpoint / media script.
HOST_ACTION: dict[Action, str] = {
    Action.START: "start", Action.SHUTDOWN: "shutdown", Action.TURNOFF: "turnoff",
    Action.RESET: "reset", Action.SAVE: "save", Action.PAUSE: "pause", Action.RESUME: "resume",
    Action.DELETE_SAVED_STATE: "delete_saved_state",
    Action.CHECKPOINT_CREATE: "create", Action.CHECKPOINT_APPLY: "apply",
    Action.CHECKPOINT_DELETE: "delete", Action.CHECKPOINT_DELETE_SUBTREE: "delete_subtree",
    Action.CHECKPOINT_RENAME: "rename",
    Action.MOUNT_ISO: "mount", Action.EJECT: "eject",
    Action.CONNECT: "grant",  # console_access: the caller's own access to the VM's console
}
PARAMETERS = frozenset({"checkpoint_id", "name", "path", "controller_type", "controller",
                        "location"})


class ActionService:
    def __init__(self, policy: Policy, audit: AuditTrail, pool: HostPool,
                 shutdown_limit: float = 600.0, poll_interval: float = 2.0) -> None:
        self.policy = policy
        self.audit = audit
        self.pool = pool
        self.shutdown_limit = shutdown_limit  # how long a restart waits for the guest to be Off
        self.poll_interval = poll_interval

    def perform(self, identity: Identity, vm: VM, action: Action, **params: Any) -> ActionOutcome:
        """Check, audit and perform one action; Denied (with the reason) when refused.

        Host errors (wrong state, not found, unreachable, ...) are audited as failed and raised.
        """
        return self.submit(identity, vm, action, **params).result()

    def submit(self, identity: Identity, vm: VM, action: Action,
               **params: Any) -> Future[ActionOutcome]:
        """`perform` on the host's action queue: the caller holds no thread while the action
        waits its turn behind the host's earlier actions."""
        action = Action(action)
        unknown = set(params) - PARAMETERS
        if unknown:
            refused: Future[ActionOutcome] = Future()
            refused.set_exception(InvalidParameter(
                f"unknown parameter {', '.join(sorted(unknown))} for {action}"))
            return refused
        return self.pool.submit_action(
            vm.host, lambda client: self._perform(client, identity, vm, action, params))

    def refusal(self, identity: Identity, vm: VM, action: Action) -> str | None:
        """Why the policy or the VM's state refuses an action (None: allowed). No host call."""
        decision = self.policy.evaluate(identity, vm)
        for privilege in sorted(REQUIRED_PRIVILEGES[action]):
            if not decision.allows(privilege):
                return decision.explain(privilege).splitlines()[0]
        if vm.is_replica:
            return (f"{vm.name} on {vm.host} is a Replica copy: it is managed by replication, "
                    f"and starting it would be a failover")
        allowed, reason = allowed_by_state(vm, action)
        return None if allowed else reason

    # --- one queued job per action ------------------------------------------------------------

    def _perform(self, client: Client, identity: Identity, vm: VM, action: Action,
                 params: dict[str, Any]) -> ActionOutcome:
        audit_params = _audit_params(action, params)
        # Bad input (no checkpoint chosen, no such drive) is refused before anything else.
        call = None if action is Action.RESTART else self._host_call(client, vm, action, params)
        try:
            current = self._current(client, vm)
        except HostError as error:
            self._decided(identity, str(action), vm, audit_params, False,
                          f"the current state of {vm.name} could not be read: {error}")
            raise
        reason = self.refusal(identity, current, action)
        if reason is not None:
            self._decided(identity, str(action), current, audit_params, False, reason)
            raise Denied(_sentence(reason))
        if action is Action.RESTART:
            return self._restart(client, identity, current)
        return self._step(identity, str(action), current, audit_params,
                          self._grounds(identity, current, action), call)

    def _current(self, client: Client, vm: VM) -> VM:
        state = client.vm_state([vm.id]).get(vm.id)
        if state is None:
            raise VMNotFound(f"{vm.name} ({vm.id}) is no longer on {vm.host}.", host=vm.host)
        return replace(vm, state=state[0], status=state[1])

    def _restart(self, client: Client, identity: Identity, vm: VM) -> ActionOutcome:
        """Guest shut down, wait for Off, start: two audited steps, never a hard restart."""
        grounds = self._grounds(identity, vm, Action.RESTART)
        first = self._step(identity, str(Action.SHUTDOWN), vm, {"restart": "step 1 of 2"}, grounds,
                           lambda ref: client.power(vm.id, "shutdown", audit=ref))
        if first.vm_state != "Off":
            first = confirm(client, vm.id, {"Off"}, self.shutdown_limit, self.poll_interval)
            if first.status != "ok":
                return ActionOutcome("pending", first.vm_state,
                                     f"{vm.name} is not Off yet ({first.vm_state}); it was not "
                                     f"started again. Start it once the shutdown completes.")
        return self._step(identity, str(Action.START), replace(vm, state="Off"),
                          {"restart": "step 2 of 2"}, grounds,
                          lambda ref: client.power(vm.id, "start", audit=ref))

    def _step(self, identity: Identity, action: str, vm: VM, audit_params: dict[str, Any],
              grounds: str, call: Any) -> ActionOutcome:
        """The decision record, the host call carrying its reference, the outcome record."""
        record: RecordRef = self.audit.decision(identity, action, vm.host, vm.id, vm.name,
                                                audit_params, True, grounds)
        correlation = record.correlation_id
        try:
            outcome: ActionOutcome = call(record)
        except HostError as error:
            self._outcome(correlation, identity, action, vm, "failed", str(error))
            raise
        self._outcome(correlation, identity, action, vm, outcome.status,
                      "" if outcome.status == "ok" else outcome.message)
        return outcome

    def _host_call(self, client: Client, vm: VM, action: Action,
                   params: dict[str, Any]) -> Any:
        """The host call of an action, taking the decision record's reference it carries."""
        verb = HOST_ACTION[action]
        if action in CHECKPOINT_ACTIONS:
            checkpoint_id = params.get("checkpoint_id")
            if action is Action.CHECKPOINT_CREATE:
                name = params.get("name")
                return lambda ref: client.checkpoint(vm.id, verb, name=name, audit=ref)
            if not checkpoint_id:
                raise InvalidParameter(f"Choose the checkpoint of {vm.name} to {verb}.")
            if action is Action.CHECKPOINT_RENAME:
                new_name = _checkpoint_name(vm, params.get("name"))
                return lambda ref: client.checkpoint(vm.id, verb, checkpoint_id=checkpoint_id,
                                                     name=new_name, audit=ref)
            return lambda ref: client.checkpoint(vm.id, verb, checkpoint_id=checkpoint_id,
                                                 audit=ref)
        if action in MEDIA_ACTIONS:
            drive = _drive(vm, params)
            entry = self.policy.host(vm.host)
            library = list(entry.iso_library) if entry else []
            path = params.get("path")
            if action is Action.MOUNT_ISO and not path:
                raise InvalidParameter(f"Choose the ISO file to mount on {vm.name}.")
            return lambda ref: client.media(vm.id, verb, drive.controller_type, drive.controller,
                                            drive.location, path=path, library=library,
                                            audit=ref)
        if action is Action.CONNECT:
            return lambda ref: client.console_access(vm.id, verb, audit=ref)
        return lambda ref: client.power(vm.id, verb, audit=ref)

    def _grounds(self, identity: Identity, vm: VM, action: Action) -> str:
        decision = self.policy.evaluate(identity, vm)
        return "; ".join(decision.explain(p).splitlines()[0]
                         for p in sorted(REQUIRED_PRIVILEGES[action]))

    # --- the audit trail: refuse to act without it ---------------------------------------------

    def _decided(self, identity: Identity, action: str, vm: VM, params: dict[str, Any],
                 allowed: bool, reason: str) -> str:
        return self.audit.decided(identity, action, vm.host, vm.id, vm.name, params, allowed,
                                  reason)

    def _outcome(self, correlation: str, identity: Identity, action: str, vm: VM, status: str,
                 error: str) -> None:
        try:
            self.audit.outcome(correlation, identity, action, vm.host, vm.id, vm.name, status,
                               error)
        except AuditError as exc:
            raise AuditError(f"The {action} of {vm.name} ended {status}, but its outcome could "
                             f"not be written to the audit trail: {exc}") from exc


def _sentence(text: str) -> str:
    # Not capitalised: the sentence may start with a VM name, which is data.
    return text.strip().rstrip(".") + "."


def _audit_params(action: Action, params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


def _checkpoint_name(vm: VM, name: Any) -> str:
    """A checkpoint's new name, held to the rules of a new one's (host.toml [checkpoints]):
    not empty (Rename-VMSnapshot's -NewName refuses it), at most 100 characters, one line."""
    text = "" if name is None else str(name)
    if not text.strip():
        raise InvalidParameter(f"Give the checkpoint of {vm.name} a new name.")
    length = len(text.encode("utf-16-le")) // 2  # as .NET counts a string's Length
    if length > CHECKPOINT_NAME_MAX:
        raise InvalidParameter(f"A checkpoint name has at most {CHECKPOINT_NAME_MAX} characters; "
                               f"this one has {length}.")
    if any(ord(ch) < 0x20 for ch in text):
        raise InvalidParameter("A checkpoint name is one line, without control characters.")
    return text


def _drive(vm: VM, params: dict[str, Any]) -> Any:
    """The DVD drive named by controller type, controller and location, or the VM's only one."""
    wanted = {k: params[k] for k in ("controller_type", "controller", "location")
              if params.get(k) is not None}
    matches = [d for d in vm.dvd_drives
               if all(str(getattr(d, k)).lower() == str(v).lower() for k, v in wanted.items())]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise InvalidParameter(f"{vm.name} has no DVD drive at that controller and location.")
    slots = ", ".join(d.slot for d in matches)
    raise InvalidParameter(f"{vm.name} has several DVD drives ({slots}); choose one.")

"""The JEA endpoint over PSRP (delegated users): the generated functions of console/jea.py,
called with typed parameters on a kept session (console.hosts.psrp), with the same results and
errors as the default endpoint's clients.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pypsrp.powershell import PowerShell

from ..audit import HOST_EVENTS_DEFAULT, HostEvents, RecordRef
from ..config import HostConfig
from ..downtime import Plan, SharedPlans
from ..details import THUMBNAIL_SIZE, Thumbnail, VMDetails, check_size
from ..errors import HostAccessDenied, HostError, InvalidParameter
from ..hardening import HostHardening
from ..inventory import VM, HostFacts, HostInventory
from ..jea import ENDPOINT_NAME, JeaError, data_digest, host_grants
from ..policy import Policy
from ..text import one_line
from .credentials import CredentialGate, Credentials
from .outcomes import ActionOutcome, answer_data, items_of, log_warning
from .psrp import Pipeline, PsrpClient


class JeaClient(PsrpClient):
    """One host's JEA endpoint over PSRP: HostClient's operations, results and errors.

    Reads and actions run on one kept runspace pool (console.hosts.psrp): reopened once when
    broken for a read; an action is never sent twice, and pending when it outlasts the timeout.
    """

    def __init__(self, config: HostConfig, credentials: Credentials | None = None,
                 gate: CredentialGate | None = None,
                 configuration_name: str = ENDPOINT_NAME) -> None:
        super().__init__(config, credentials, gate, configuration_name=configuration_name,
                         described=f"its JEA endpoint {configuration_name}")

    # --- operations (console.hosts.HostClient's) ---

    def inventory(self) -> list[VM]:
        return list(self.read_inventory().vms)

    def read_inventory(self) -> HostInventory:
        """The VMs the caller may view and the host's capacity, in the one call of a refresh."""
        data = self._call("Get-HvcInventory", {})
        return HostInventory.from_json(self.name, data, items_of(data, "vms", self.name),
                                       self.config.cluster or None)

    def host_facts(self, library: Iterable[str] = ()) -> HostFacts:
        """The host's approved library folders decide (a caller's list is not trusted)."""
        return HostFacts.from_json(self._call("Get-HvcHostFacts", {}))

    def host_hardening(self) -> HostHardening:
        """Get-HvcHostHardening: answered only to holders of policy.read."""
        return HostHardening.from_json(self._call("Get-HvcHostHardening", {}))

    def vm_state(self, ids: Iterable[str]) -> dict[str, tuple[str, str]]:
        wanted = [i.lower() for i in ids]
        if not wanted:
            return {}
        data = self._call("Get-HvcVMState", {"VMId": wanted})
        return {str(v["id"]).lower(): (str(v.get("state") or "Other"), str(v.get("status") or ""))
                for v in items_of(data, "vms", self.name)}

    def details(self, vm_id: str) -> VMDetails:
        """Get-HvcVMDetails: answered only when the caller may view the VM."""
        return VMDetails.from_json(self.name, self._call("Get-HvcVMDetails",
                                                         {"VMId": vm_id.lower()}))

    def thumbnail(self, vm_id: str, width: int = THUMBNAIL_SIZE[0],
                  height: int = THUMBNAIL_SIZE[1]) -> Thumbnail:
        """Get-HvcVMThumbnail: the function reads the screen through CIM for the caller, who
        needs no WMI access; answered only when the caller may view the VM."""
        check_size(width, height)
        return Thumbnail.from_json(self.name, self._call(
            "Get-HvcVMThumbnail", {"VMId": vm_id.lower(), "Width": width, "Height": height}))

    def power(self, vm_id: str, action: str, audit: RecordRef | None = None) -> ActionOutcome:
        return self._perform("Invoke-HvcPower", _with_record(
            {"VMId": vm_id.lower(), "Action": action}, audit), vm_id, "power", action)

    def checkpoint(self, vm_id: str, action: str, checkpoint_id: str | None = None,
                   name: str | None = None, audit: RecordRef | None = None) -> ActionOutcome:
        params: dict[str, Any] = {"VMId": vm_id.lower(), "Action": action}
        if checkpoint_id is not None:
            params["CheckpointId"] = checkpoint_id.lower()
        if name:
            params["Name"] = name
        return self._perform("Invoke-HvcCheckpoint", _with_record(params, audit), vm_id,
                             "checkpoint", action)

    def media(self, vm_id: str, action: str, controller_type: str, controller: int, location: int,
              path: str | None = None, library: Iterable[str] = (),
              audit: RecordRef | None = None) -> ActionOutcome:
        params: dict[str, Any] = {"VMId": vm_id.lower(), "Action": action,
                                  "ControllerType": controller_type, "Controller": controller,
                                  "Location": location}
        if path is not None:
            params["Path"] = path
        return self._perform("Invoke-HvcMedia", _with_record(params, audit), vm_id, "media",
                             action)

    def console_access(self, vm_id: str, action: str,
                       audit: RecordRef | None = None) -> ActionOutcome:
        """Grant the caller access to the VM's console (Grant-HvcConsoleAccess: the caller is
        the session's token; the function first revokes the caller's access where the policy no
        longer gives vm.console). The endpoint grants only: access goes by that sweep."""
        if action != "grant":
            raise InvalidParameter(f"{self.name}'s JEA endpoint grants console access only; "
                                   f"it revokes what the policy no longer gives by itself.")
        return self._perform("Grant-HvcConsoleAccess", _with_record(
            {"VMId": vm_id.lower()}, audit), vm_id, "console_access", action)

    def sync_console_access(self) -> list[dict[str, str]]:
        """Sync-HvcConsoleAccess: the caller's console access on VMs where the policy no longer
        gives vm.console, revoked; the VMs concerned (vm_id, name, user)."""
        data = self._call("Sync-HvcConsoleAccess", {})
        return [{k: str(v.get(k) or "") for k in ("vm_id", "name", "user")}
                for v in items_of(data, "revoked", self.name)]

    def console_acl(self) -> list[dict[str, str]]:
        """Who holds access to each VM's console on this host (Get-HvcConsoleAccess, which the
        host answers only to holders of audit.read)."""
        data = self._call("Get-HvcConsoleAccess", {})
        return [{k: str(v.get(k) or "") for k in ("vm_id", "vm_name", "user", "sid", "access")}
                for v in items_of(data, "entries", self.name)]

    def audit_events(self, since: str = "", limit: int = HOST_EVENTS_DEFAULT) -> HostEvents:
        """The console's events of the host's Application log, every user's, newest first:
        Get-HvcAuditEvents, which the host answers only to holders of audit.read."""
        params: dict[str, Any] = {"MaxEvents": limit}
        if since:
            params["Since"] = since
        return HostEvents.from_data(self.name, self._call("Get-HvcAuditEvents", params))

    def downtime_plans(self) -> SharedPlans:
        """Get-HvcDowntimePlans: the plans touching a VM the caller may view, with only those
        VMs, and the answers to them so far."""
        return SharedPlans.from_data(self.name, self._call("Get-HvcDowntimePlans", {}))

    def publish_plan(self, plan: Plan) -> str:
        """Administrators publish plans through the default endpoint; the JEA endpoint reads and
        answers them only."""
        raise HostAccessDenied(f"{self.name}'s JEA endpoint does not publish downtime plans: "
                               f"an administrator publishes them through the host's default "
                               f"endpoint.", host=self.name)

    def answer_plan(self, plan_id: str, answer: str, text: str = "") -> dict[str, Any]:
        """Submit-HvcDowntimeAnswer: the caller's one-line answer; the host names the caller
        from the token and refuses a plan that touches none of the caller's VMs."""
        data = self._call("Submit-HvcDowntimeAnswer", {"PlanId": plan_id, "Answer": answer,
                                                       "Text": text})
        return data if isinstance(data, dict) else {}

    def enforced(self) -> Any:
        """The grants data the host's functions hold and enforce (HostGrants.as_data's shape)."""
        data = self._call("Get-HvcPolicyDigest", {})
        enforced = data.get("enforced") if isinstance(data, dict) else None
        if not isinstance(enforced, dict):
            raise HostError(f"{self.name} answered something unexpected: no enforced grants.",
                            host=self.name)
        return enforced

    def enforced_digest(self) -> str:
        """The sha256 of what the host enforces (data_digest of its functions' grants data),
        computed here: compare with host_grants(policy, host).sha256, or use lag()."""
        return data_digest(self.enforced())

    # --- calls: one function of the endpoint, typed parameters ---

    def _call(self, function: str, params: dict[str, Any]) -> Any:
        return self._document(self._read(_command(function, params)))

    def _perform(self, function: str, params: dict[str, Any], vm_id: str, operation: str,
                 action: str) -> ActionOutcome:
        done = self._act(_command(function, params), operation, vm_id)
        if isinstance(done, ActionOutcome):
            return done  # pending
        data = self._document(done, vm_id)
        # Done is done: an event the host could not write is a warning beside it (log_error).
        return ActionOutcome.done(data, f"{operation} {action} done on {self.name}.",
                                  warning=log_warning(self.name, _parse(done.output)))

    def _document(self, pipeline: Pipeline, vm_id: str | None = None) -> Any:
        if pipeline.failed or pipeline.errors:
            raise _refusal(self.name, pipeline.errors)
        return answer_data(self.name, _parse(pipeline.output), str(pipeline.output), vm_id)


def _with_record(params: dict[str, Any], audit: RecordRef | None) -> dict[str, Any]:
    """A function's parameters with the console record the action carries (the generated
    functions' AuditRecord, AuditSha256, AuditSeq and Workstation), when the host takes it."""
    if audit is None or not audit.valid:
        return params
    return {**params, "AuditRecord": audit.correlation_id, "AuditSha256": audit.sha256,
            "AuditSeq": audit.seq, "Workstation": audit.workstation}


def _command(function: str, params: dict[str, Any]) -> Callable[[PowerShell], object]:
    def build(ps: PowerShell) -> None:
        ps.add_cmdlet(function)
        for key, value in params.items():
            ps.add_parameter(key, value)
    return build


def _parse(output: list[Any]) -> Any:
    """The one JSON document a function answers, or None."""
    texts = [o for o in output if isinstance(o, str)]
    try:
        return json.loads(texts[-1]) if len(texts) == 1 else None
    except ValueError:
        return None


def _refusal(host: str, errors: list[Any]) -> HostError:
    """An error record of the endpoint itself (not the operation's JSON): a command JEA does not
    expose, a parameter outside its constraints."""
    record = errors[0] if errors else None
    fqid = str(getattr(record, "fq_error", "") or "")
    message = one_line(str(getattr(record, "message", "") or record or "an error without text"))
    if "ParameterArgumentValidationError" in fqid or "ParameterBinding" in fqid:
        return InvalidParameter(f"{host} refused a parameter: {message}", host=host)
    if "CommandNotFound" in fqid or "ScriptsNotAllowed" in fqid:
        return HostAccessDenied(f"{host}'s JEA endpoint does not offer this: {message}", host=host)
    return HostError(f"{host} reported an error: {message}", host=host)


@dataclass(frozen=True)
class Lag:
    """A host that enforces other grants than the policy gives it."""

    host: str
    enforced: str  # data_digest of what the host's functions hold
    current: str  # data_digest of host_grants(policy, host); "" when the policy has no such host

    def __str__(self) -> str:
        if not self.current:
            return (f"{self.host} enforces grants (sha256 {self.enforced[:12]}) but the policy "
                    f"has no such host: unregister its JEA endpoint, or add the host to the "
                    f"policy and register its files again.")
        return (f"{self.host} enforces an older policy (its grants sha256 {self.enforced[:12]}, "
                f"the policy gives it {self.current[:12]}): generate its JEA files and register "
                f"them again; until then a revoked grant still works there.")


def lag(host: str, enforced: str, policy: Policy) -> Lag | None:
    """None when `enforced` (JeaClient.enforced_digest: the digest of what the host's functions
    hold) is the digest of what the policy gives the host; else the Lag to show."""
    try:
        current = host_grants(policy, host).sha256
    except JeaError:
        current = ""
    return None if enforced == current else Lag(host, enforced, current)

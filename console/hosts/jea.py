"""The JEA endpoint over PSRP (delegated users): the generated functions of console/jea.py,
with the same results and errors as the default endpoint's client.
"""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import requests
from pypsrp.exceptions import AuthenticationError, WinRMError, WinRMTransportError, WSManFaultError
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from ..config import HostConfig
from ..errors import (
    CredentialsRejected, HostAccessDenied,
    HostError, HostTimeout, HostUnreachable, InvalidParameter,
)
from ..inventory import VM, HostFacts
from ..jea import ENDPOINT_NAME, JeaError, data_digest, host_grants
from ..policy import Policy
from ..text import one_line
from .credentials import CredentialGate, Credentials
from .network import network_error
from .outcomes import ActionOutcome, items_of, answer_data


class JeaClient:
    """One host's JEA endpoint over PSRP: HostClient's operations, results and errors.

    Reads share one runspace pool (reopened once when broken); each action opens its own, so a
    long guest shutdown never holds up a refresh, and an action is never retried.
    """

    def __init__(self, config: HostConfig, credentials: Credentials | None = None,
                 gate: CredentialGate | None = None,
                 configuration_name: str = ENDPOINT_NAME) -> None:
        self.config = config
        self.name = config.name
        self.gate = gate or CredentialGate(credentials)
        if self.gate.credentials is None and credentials is not None:
            self.gate.reopen(credentials)
        self.configuration_name = configuration_name
        self._lock = threading.Lock()
        self._pool: RunspacePool | None = None
        self._generation = self.gate.generation

    # --- operations (console.hosts.HostClient's) ---

    def inventory(self) -> list[VM]:
        data = self._read("Get-HvcInventory", {})
        cluster = self.config.cluster or None
        return [VM.from_json(self.name, d, cluster) for d in items_of(data, "vms", self.name)]

    def host_facts(self, library: Iterable[str] = ()) -> HostFacts:
        """The host's approved library folders decide (a caller's list is not trusted)."""
        return HostFacts.from_json(self._read("Get-HvcHostFacts", {}))

    def vm_state(self, ids: Iterable[str]) -> dict[str, tuple[str, str]]:
        wanted = [i.lower() for i in ids]
        if not wanted:
            return {}
        data = self._read("Get-HvcVMState", {"VMId": wanted})
        return {str(v["id"]).lower(): (str(v.get("state") or "Other"), str(v.get("status") or ""))
                for v in items_of(data, "vms", self.name)}

    def power(self, vm_id: str, action: str) -> ActionOutcome:
        return self._act("Invoke-HvcPower", {"VMId": vm_id.lower(), "Action": action}, vm_id,
                         "power", action)

    def checkpoint(self, vm_id: str, action: str, checkpoint_id: str | None = None,
                   name: str | None = None) -> ActionOutcome:
        params: dict[str, Any] = {"VMId": vm_id.lower(), "Action": action}
        if checkpoint_id is not None:
            params["CheckpointId"] = checkpoint_id.lower()
        if name:
            params["Name"] = name
        return self._act("Invoke-HvcCheckpoint", params, vm_id, "checkpoint", action)

    def media(self, vm_id: str, action: str, controller_type: str, controller: int, location: int,
              path: str | None = None, library: Iterable[str] = ()) -> ActionOutcome:
        params: dict[str, Any] = {"VMId": vm_id.lower(), "Action": action,
                                  "ControllerType": controller_type, "Controller": controller,
                                  "Location": location}
        if path is not None:
            params["Path"] = path
        return self._act("Invoke-HvcMedia", params, vm_id, "media", action)

    def enforced(self) -> Any:
        """The grants data the host's functions hold and enforce (HostGrants.as_data's shape)."""
        data = self._read("Get-HvcPolicyDigest", {})
        enforced = data.get("enforced") if isinstance(data, dict) else None
        if not isinstance(enforced, dict):
            raise HostError(f"{self.name} answered something unexpected: no enforced grants.",
                            host=self.name)
        return enforced

    def enforced_digest(self) -> str:
        """The sha256 of what the host enforces (data_digest of its functions' grants data),
        computed here: compare with host_grants(policy, host).sha256, or use lag()."""
        return data_digest(self.enforced())

    def close(self) -> None:
        with self._lock:
            self._drop()

    # --- calls ---

    def _read(self, function: str, params: dict[str, Any]) -> Any:
        self._before_call()
        with self._lock:
            for attempt in (1, 2):
                try:
                    if self._pool is None:
                        self._pool = self._open()
                    return self._document(self._invoke(self._pool, function, params))
                except HostError as error:
                    # A broken connection or pool is worth one reopen; a refusal is not.
                    if type(error) not in (HostUnreachable, HostError) or attempt == 2:
                        raise
                    self._drop()
        raise AssertionError("unreachable")

    def _act(self, function: str, params: dict[str, Any], vm_id: str, operation: str,
             action: str) -> ActionOutcome:
        self._before_call()
        pool = self._open()
        try:
            try:
                output = self._invoke(pool, function, params)
            except (HostTimeout, HostUnreachable) as error:
                return ActionOutcome.pending(self.name, operation, vm_id, self.config.timeout,
                                             str(error))
            document = _parse(output)
            data = answer_data(self.name, document, str(output), vm_id)
        finally:
            _close_quietly(pool)
        # Done is done: an event the host could not write is a warning beside it (log_error).
        log_error = document.get("log_error") if isinstance(document, dict) else None
        return ActionOutcome.done(data, f"{operation} {action} done on {self.name}.",
                                  warning=f"{self.name}: {one_line(str(log_error))}"
                                  if log_error else "")

    def _before_call(self) -> None:
        self.gate.check()
        if self.gate.generation != self._generation:
            with self._lock:
                self._generation = self.gate.generation
                self._drop()

    def _open(self) -> RunspacePool:
        credentials = self.gate.credentials
        if credentials is None:
            raise CredentialsRejected("Sign in before contacting a host.", host=self.name)
        url = urlparse(self.config.url)
        timeout = max(2, int(self.config.timeout + 0.999))
        wsman = WSMan(
            url.hostname or self.name, port=url.port, path=url.path.lstrip("/") or "wsman",
            ssl=url.scheme == "https", username=credentials.username,
            password=credentials.password,
            auth="kerberos" if self.config.transport == "kerberos" else (
                "negotiate" if self.config.transport == "negotiate" else "ntlm"),
            # pypsrp annotates cert_validation as bool, yet hands it to requests' `verify`, which
            # takes a CA bundle's path too (pypsrp's own code keeps a path: wsman.py, "if
            # cert_validation is a bool (no path specified)").
            cert_validation=self.config.ca_file or True,  # type: ignore[arg-type]
            encryption="auto",
            connection_timeout=timeout, read_timeout=timeout + 2,
            operation_timeout=max(1, min(20, timeout - 1)), no_proxy=True)
        pool = RunspacePool(wsman, configuration_name=self.configuration_name)
        self._guard(pool.open)
        return pool

    def _invoke(self, pool: RunspacePool, function: str, params: dict[str, Any]) -> list[Any]:
        ps = PowerShell(pool)
        ps.add_cmdlet(function)
        for key, value in params.items():
            ps.add_parameter(key, value)
        deadline = time.monotonic() + self.config.timeout
        self._guard(ps.begin_invoke)
        while ps.state == 1:  # PSInvocationState.RUNNING
            if time.monotonic() >= deadline:
                raise HostTimeout(f"{self.name} did not finish within {self.config.timeout:g} s.",
                                  host=self.name)
            self._guard(lambda: ps.poll_invoke(timeout=max(1, min(20, int(deadline - time.monotonic())))))
        self._guard(ps.close)
        if ps.had_errors or ps.streams.error:
            raise _refusal(self.name, ps.streams.error)
        return list(ps.output)

    def _guard(self, request: Any) -> Any:
        """One request; failures become console.errors' types, the network's mapped as the
        default endpoint's client maps them (console.hosts.network_error). An answer means the
        host took the credentials: the pool then asks every other host at once."""
        name = self.name
        try:
            result = request()
        except AuthenticationError:
            self.gate.close(name)
            raise CredentialsRejected(
                f"{name} rejected the user name or password (the account may also be locked "
                f"out or disabled); enter the password again. Other hosts are not contacted "
                f"until then, so the account is not locked out.", host=name) from None
        except WSManFaultError as fault:
            # pypsrp's fault has code, machine, reason, provider...: no subcode. 5 is
            # ERROR_ACCESS_DENIED, 0x80070005 its HRESULT.
            if fault.code in (5, 0x80070005):
                raise HostAccessDenied(
                    f"{name} refuses this account a session on its JEA endpoint "
                    f"{self.configuration_name}: {one_line(str(fault.reason or fault))}",
                    host=name) from None
            raise HostError(f"{name} reported a fault: {one_line(str(fault.reason or fault))}",
                            host=name) from None
        except WinRMTransportError as error:
            raise HostError(f"{name} answered HTTP {error.code}.", host=name) from None
        except (requests.exceptions.RequestException, TimeoutError, ConnectionError) as error:
            mapped = network_error(name, self.config, error)
            if mapped is None:
                raise HostError(f"{name} answered something unexpected "
                                f"({type(error).__name__}).", host=name) from None
            raise mapped from None
        except WinRMError as error:
            raise HostError(f"{name} answered something unexpected ({type(error).__name__}).",
                            host=name) from None
        self.gate.accepted()
        return result

    def _document(self, output: list[Any], vm_id: str | None = None) -> Any:
        return answer_data(self.name, _parse(output), str(output), vm_id)

    def _drop(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            _close_quietly(pool)


def _parse(output: list[Any]) -> Any:
    """The one JSON document a function answers, or None."""
    texts = [o for o in output if isinstance(o, str)]
    try:
        return json.loads(texts[-1]) if len(texts) == 1 else None
    except ValueError:
        return None


def _close_quietly(pool: RunspacePool) -> None:
    try:
        pool.close()
    except Exception:  # noqa: BLE001 - best effort: the host reaps abandoned pools
        pass
    finally:
        try:
            pool.connection.close()
        except Exception:  # noqa: BLE001
            pass


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

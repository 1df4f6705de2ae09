"""What every host client offers (the pool and the action service use nothing else), and the
confirmation of a pending action by polling its VM's state."""
from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, Protocol

from ..audit import RecordRef, HostEvents
from ..config import HostConfig
from ..details import Thumbnail, VMDetails
from ..downtime import Plan, SharedPlans
from ..hardening import HostHardening
from ..inventory import VM, HostFacts, HostInventory
from .outcomes import ActionOutcome


class Client(Protocol):
    """What the pool and the action service use of a host: the default endpoint's HostClient or
    the JEA endpoint's JeaClient, which answer alike."""

    name: str
    config: HostConfig

    def inventory(self) -> list[VM]: ...
    def read_inventory(self) -> HostInventory: ...  # the VMs and the host's capacity
    def host_facts(self, library: list[str]) -> HostFacts: ...
    # What the host runs beyond Hyper-V and who may reach it (the review, policy.read).
    def host_hardening(self) -> HostHardening: ...
    def vm_state(self, ids: Iterable[str]) -> dict[str, tuple[str, str]]: ...
    # One VM as Hyper-V Manager shows it, read when its details are opened, and its screen.
    def details(self, vm_id: str) -> VMDetails: ...
    def thumbnail(self, vm_id: str, width: int = ..., height: int = ...) -> Thumbnail: ...
    # `audit`: the console record the action carries to the host, which writes it in its event.
    def power(self, vm_id: str, action: str, audit: RecordRef | None = None) -> ActionOutcome: ...
    def checkpoint(self, vm_id: str, action: str, checkpoint_id: str | None = None,
                   name: str | None = None, audit: RecordRef | None = None) -> ActionOutcome: ...
    def media(self, vm_id: str, action: str, controller_type: str, controller: int,
              location: int, path: str | None = None, library: Iterable[str] = (),
              audit: RecordRef | None = None) -> ActionOutcome: ...
    def audit_events(self, since: str = "", limit: int = ...) -> HostEvents: ...
    # The caller's own access to a VM's console (the host names the caller from the token).
    def console_access(self, vm_id: str, action: str,
                       audit: RecordRef | None = None) -> ActionOutcome: ...
    def sync_console_access(self) -> list[dict[str, str]]: ...
    # Downtime plans shared through the host's event log: read (a JEA caller's own VMs only),
    # published (administrators), answered (the host names the caller from the token).
    def downtime_plans(self) -> SharedPlans: ...
    def publish_plan(self, plan: Plan) -> str: ...
    def answer_plan(self, plan_id: str, answer: str, text: str = "") -> dict[str, Any]: ...
    def close(self) -> None: ...


def with_record(params: dict[str, Any], audit: RecordRef | None) -> dict[str, Any]:
    """An admin operation's parameters with the record it carries (`audit`), when there is one a
    host takes (a reference off its pattern would refuse the action: it is left out instead)."""
    return {**params, "audit": audit.as_params()} if audit is not None and audit.valid else params


def confirm(client: Client, vm_id: str, expected_states: Iterable[str], limit: float = 120.0,
            interval: float = 1.0) -> ActionOutcome:
    """Poll a VM's state until it is one of `expected_states` (ok), it vanished (failed), or
    `limit` seconds passed (still pending). Reads only: nothing is sent again."""
    expected = set(expected_states)
    deadline = time.monotonic() + limit
    while True:
        found = client.vm_state([vm_id]).get(vm_id.lower())
        if found is None:
            return ActionOutcome("failed", None, f"VM {vm_id} is no longer on {client.name}.")
        state, status = found
        if state in expected:
            return ActionOutcome("ok", state, f"VM {vm_id} is {state}.", status)
        if time.monotonic() + interval > deadline:
            return ActionOutcome("pending", state, f"VM {vm_id} is still {state} after "
                                 f"{limit:g} s; the host may still finish the action.", status)
        time.sleep(interval)

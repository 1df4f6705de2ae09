"""Every host of a session: reads fan out over a bounded thread pool, each host's actions queue
in order behind each other and never in front of a read.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from typing import TypeVar


from ..config import HostConfig
from ..errors import (
    HostError,
)
from ..downtime import Plan
from ..inventory import HostInventory
from .admin import HostClient
from .client import Client
from .credentials import CredentialGate, Credentials
from .default import AdminClient
from .jea import JeaClient
from .outcomes import HostResult, PoolResult, status_of


T = TypeVar("T")


def make_client(config: HostConfig, credentials: Credentials | None, gate: CredentialGate,
                keep_shell: bool = True) -> Client:
    """The client of a host's configured endpoint and protocol: JEA for delegated users; for
    administrators the default endpoint over a kept PSRP session, or over WinRS (powershell.exe
    per operation) where the host allows only that (`protocol = "winrs"`)."""
    if config.endpoint == "jea":
        return JeaClient(config, credentials, gate)
    if config.protocol == "winrs":
        return HostClient(config, credentials, gate, keep_shell)
    return AdminClient(config, credentials, gate)


def admin_client(config: HostConfig, credentials: Credentials | None,
                 gate: CredentialGate | None = None) -> AdminClient | HostClient:
    """A client of the host's admin endpoint (Microsoft.PowerShell), whatever endpoint its entry
    gives delegated users: for what only the host's administrators may change (the VMs'
    documentation on the host, resource metering). The host refuses anyone else."""
    client = make_client(replace(config, endpoint="admin"), credentials,
                         gate or CredentialGate(credentials))
    assert isinstance(client, AdminClient | HostClient)
    return client


MAX_READ_WORKERS = 64


class HostPool:
    """Every configured host: reads fan out over a bounded thread pool; actions on one host run
    one at a time and in order (a single worker per host), on different hosts in parallel."""

    def __init__(self, configs: Iterable[HostConfig], credentials: Credentials | None,
                 max_workers: int | None = None, slow_after: float = 5.0,
                 keep_shell: bool = True) -> None:
        self.gate = CredentialGate(credentials)
        self.clients: dict[str, Client] = {
            c.name.lower(): make_client(c, credentials, self.gate, keep_shell) for c in configs}
        self.slow_after = slow_after
        # Reads wait on hosts, not on the CPU: one worker per host (up to 64) keeps a refresh of
        # many hosts close to the time of the slowest one (benchmarks/bench_inventory.py).
        workers = max_workers or max(1, min(len(self.clients), MAX_READ_WORKERS))
        self._reads = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="host-read")
        self._actions: dict[str, ThreadPoolExecutor] = {}
        self._actions_lock = threading.Lock()

    def __enter__(self) -> HostPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def client(self, host: str) -> Client:
        try:
            return self.clients[host.lower()]
        except KeyError:
            raise HostError(f"{host} is not a configured host.", host=host) from None

    def publish_plan(self, plan: Plan) -> str:
        """Write a downtime plan to its host's event log through the host's default endpoint,
        whichever endpoint the host is configured with for the rest: publishing is an
        administrator's (the JEA endpoint reads and answers plans only), and the host refuses it
        to anyone outside its administrators."""
        if self.client(plan.host).config.endpoint != "jea":
            return self.run_action(plan.host, lambda c: c.publish_plan(plan))
        return self.on_admin_endpoint(plan.host, lambda admin: admin.publish_plan(plan))

    def on_admin_endpoint(self, host: str, work: Callable[[AdminClient | HostClient], T]) -> T:
        """`work` on a client of `host`'s admin endpoint with the session's credentials and gate,
        opened for it and closed after: what only the host's administrators may do (publish a
        downtime plan, write the VMs' documentation, turn resource metering on or off)."""
        admin = admin_client(self.client(host).config, self.gate.credentials, self.gate)
        try:
            return work(admin)
        finally:
            admin.close()

    def inventory_all(self) -> PoolResult:
        return PoolResult(self._fan_out(lambda c: c.read_inventory()))

    def _fan_out(self, read: Callable[[Client], HostInventory]) -> dict[str, HostResult]:
        clients = list(self.clients.values())
        results: dict[str, HostResult] = {}
        if clients and not self.gate.confirmed:
            # Untried credentials: one host first, so a wrong password costs one bad attempt.
            first = clients.pop(0)
            results[first.name] = self._timed(first, read)
        futures = {c.name: self._reads.submit(self._timed, c, read) for c in clients}
        for name, future in futures.items():
            results[name] = future.result()
        return {c.name: results[c.name] for c in self.clients.values()}

    def _timed(self, client: Client, read: Callable[[Client], HostInventory]) -> HostResult:
        start = time.monotonic()
        try:
            inventory: HostInventory | None = read(client)
            error = None
        except HostError as exc:
            inventory, error = None, exc
        seconds = time.monotonic() - start
        return HostResult(client.name, status_of(error, seconds, self.slow_after),
                          inventory.vms if inventory else (), error, seconds,
                          inventory.capacity if inventory else None)

    def submit_read(self, host: str) -> Future[HostResult]:
        """One host's inventory and status, read by the pool's read workers (one per host), so a
        refresh of many hosts takes about as long as the slowest one and never waits behind an
        action."""
        return self._reads.submit(self._timed, self.client(host), lambda c: c.read_inventory())

    def submit_action(self, host: str, work: Callable[[Client], T]) -> Future[T]:
        """Queue an action for a host: it runs after the host's earlier actions, never beside
        them."""
        client = self.client(host)
        with self._actions_lock:
            executor = self._actions.get(client.name)
            if executor is None:
                executor = ThreadPoolExecutor(max_workers=1,
                                              thread_name_prefix=f"host-action-{client.name}")
                self._actions[client.name] = executor
        return executor.submit(work, client)

    def run_action(self, host: str, work: Callable[[Client], T]) -> T:
        return self.submit_action(host, work).result()

    def close(self) -> None:
        self._reads.shutdown(wait=True)
        with self._actions_lock:
            executors = list(self._actions.values())
            self._actions.clear()
        for executor in executors:
            executor.shutdown(wait=True)
        for client in self.clients.values():
            client.close()

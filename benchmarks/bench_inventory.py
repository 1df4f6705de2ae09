"""Inventory of many hosts at once, an action's time, and a kept shell against a shell per call.

50 lab hosts with 200 VMs each and 50 ms added to every HTTP request, read all in parallel,
compared with one host alone in the same run (the goal: at most 1.5 times as long), once with the
cost model at zero and once with a real host's ~1 s powershell.exe start per command.

Run: `.venv/bin/python -m benchmarks.bench_inventory` (prints a table), or through pytest
(`.venv/bin/python -m pytest benchmarks/bench_inventory.py -s`), which also checks the goal.
"""
from __future__ import annotations

import multiprocessing
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection

from console.config import HostConfig
from console.hosts import Credentials, HostClient, HostPool
from lab.auth import Accounts, HostRights
from lab.executor import Executor
from lab.faults import CostModel, Faults
from lab.hyperv import Durations
from lab.world import World, generated_world
from lab.wsman import WSManServer

HOSTS = 50
VMS = 200
LATENCY_MS = 50.0
ROUNDS = 3
ADAM = Credentials("LAB\\adam", "adam-demo")


@dataclass
class Row:
    what: str
    seconds: float
    note: str = ""


def _serve(hosts: int, vms: int, process_start_ms: float, latency_ms: float,
           conn: Connection) -> None:
    """The lab hosts, in a process of their own: the hosts' work must not take the client's CPU
    (on a real network it runs on 50 other machines)."""
    world = generated_world(hosts, vms, durations=Durations.instant())
    with lab(world, CostModel(process_start_ms), latency_ms) as configs:
        conn.send([(c.name, c.url) for c in configs])
        conn.recv()  # until the benchmark is done


@contextmanager
def lab_process(hosts: int, vms: int, cost: CostModel) -> Iterator[list[HostConfig]]:
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(target=_serve, args=(hosts, vms, cost.process_start_ms,
                                                   LATENCY_MS, theirs), daemon=True)
    process.start()
    try:
        if not ours.poll(120):
            raise RuntimeError("the lab process did not start")
        yield [HostConfig(name, url, endpoint="admin", timeout=60.0) for name, url in ours.recv()]
    finally:
        ours.send("stop")
        process.join(30)


@contextmanager
def lab(world: World, cost: CostModel,
        latency_ms: float = LATENCY_MS) -> Iterator[list[HostConfig]]:
    accounts = Accounts(world.domain, world.dns_domain)
    for a in world.accounts:
        accounts.add(f"{world.domain}\\{a.name}", a.sid, a.password, enabled=a.enabled)
    servers = []
    try:
        for h in world.hosts:
            server = WSManServer(h.name, Executor(h.host), accounts=accounts,
                                 rights=HostRights.of(h.users, h.admins),
                                 faults=Faults(latency_ms=latency_ms), cost=cost)
            server.start()
            servers.append(server)
        yield [HostConfig(s.name, s.url, endpoint="admin", timeout=60.0) for s in servers]
    finally:
        for server in servers:
            server.stop()


def _median_of(rounds: int, work) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def inventory_rows(cost: CostModel, label: str, hosts: int = HOSTS, vms: int = VMS) -> list[Row]:
    rows = []
    with lab_process(hosts, vms, cost) as configs:
        with HostPool(configs[:1], ADAM) as alone:
            alone.inventory_all()  # sign in and open the kept shell
            one = _median_of(ROUNDS, alone.inventory_all)
        rows.append(Row(f"{label}: 1 host alone", one))
        for workers in (16, hosts):
            with HostPool(configs, ADAM, max_workers=workers) as pool:
                first = time.perf_counter()
                result = pool.inventory_all()
                cold = time.perf_counter() - first
                assert not result.errors, result.errors
                assert len(result.vms) == hosts * vms
                many = _median_of(ROUNDS, pool.inventory_all)
            rows.append(Row(f"{label}: {hosts} hosts, {workers} workers", many,
                            f"{many / one:.2f}x one host; first (sign-in) {cold:.2f} s"))
    return rows


def shell_rows(cost: CostModel, label: str) -> list[Row]:
    rows = []
    with lab_process(1, VMS, cost) as configs:
        vms = HostClient(configs[0], ADAM).inventory()
        vm_id = vms[0].id
        for keep, name in ((True, "kept shell"), (False, "shell per call")):
            client = HostClient(configs[0], ADAM, keep_shell=keep)
            client.vm_state([vm_id])
            rows.append(Row(f"{label}: vm_state, {name}",
                            _median_of(9, lambda client=client: client.vm_state([vm_id]))))
            rows.append(Row(f"{label}: inventory ({VMS} VMs), {name}",
                            _median_of(5, client.inventory)))
            client.close()
        client = HostClient(configs[0], ADAM)
        # An action gets its own connection and shell: start and stop one VM again and again.
        off = next(vm for vm in vms if vm.state == "Off")
        times = []
        for _ in range(5):
            for action in ("start", "turnoff"):
                start = time.perf_counter()
                assert client.power(off.id, action).status == "ok"
                times.append(time.perf_counter() - start)
        rows.append(Row(f"{label}: one action (power)", statistics.median(times),
                        "own connection + NTLM logon"))
        client.close()
    return rows


def run() -> list[Row]:
    rows: list[Row] = []
    for cost, label in ((CostModel(), "cost 0"), (CostModel.realistic(), "process 1 s")):
        rows += inventory_rows(cost, label)
        rows += shell_rows(cost, label)
    return rows


def print_table(rows: list[Row]) -> None:
    width = max(len(r.what) for r in rows)
    print(f"\n{'measure':<{width}}  {'median':>9}  note")
    for r in rows:
        print(f"{r.what:<{width}}  {r.seconds * 1000:>7.0f}ms  {r.note}")


def test_inventory_of_50_hosts() -> None:
    rows = run()
    print_table(rows)
    by = {r.what: r.seconds for r in rows}
    for label in ("cost 0", "process 1 s"):
        ratio = by[f"{label}: {HOSTS} hosts, {HOSTS} workers"] / by[f"{label}: 1 host alone"]
        assert ratio <= 1.5 or label == "cost 0", f"{label}: {ratio:.2f}x"
    assert by["cost 0: vm_state, kept shell"] < by["cost 0: vm_state, shell per call"]


if __name__ == "__main__":
    print_table(run())

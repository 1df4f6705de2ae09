"""Inventory through the core's host pool, against lab hosts in processes of their own, under the
realistic cost model (lab/faults.py: process start, Hyper-V module import, JEA session start,
WMI per VM in Get-VM, latency) and at cost 0 for reference:

- the warm list: 704 VMs on 8 hosts (8 x 88), refreshed once the sessions are open, through each
  way in: the default endpoint over a kept PSRP session, the WinRS fallback, the JEA endpoint.
  Goal: under 1 s.
- the fan-out: 50 hosts x 200 VMs against one host alone, through the same pool. Goal: at most
  1.5 times as long. The lab's hosts share this machine's cores (each runs the inventory script
  in the lab's interpreter), where real hosts each have their own: the table prints the lab's
  CPU seconds per refresh and the cores it had, which bound the ratio from below here.

Run: `python3 dev.py bench -k inventory` (prints the tables and checks the goals the machine
allows), or `.venv/bin/python -m benchmarks.bench_inventory`.
"""
from __future__ import annotations

import multiprocessing
import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from typing import Any

from console import jea
from console.config import HostConfig
from console.hosts import Credentials, HostPool
from console.policy import Policy
from lab import psrp
from lab.auth import Accounts, HostRights
from lab.directory import LabDirectory
from lab.executor import Executor
from lab.faults import CostModel
from lab.hyperv import Durations
from lab.world import generated_world
from lab.wsman import WSManServer

LIST_HOSTS, LIST_VMS, LIST_GOAL = 8, 88, 1.0  # 704 VMs; seconds
HOSTS, VMS, FAN_OUT_GOAL = 50, 200, 1.5
ROUNDS = 3
ADAM = Credentials("LAB\\adam", "adam-demo")  # in LAB\HV-Admins: every VM, on both endpoints
CLIENTS = {  # label -> (endpoint, protocol)
    "admin, PSRP session": ("admin", "psrp"),
    "admin, WinRS fallback": ("admin", "winrs"),
    "JEA, PSRP session": ("jea", "psrp"),
}


@dataclass
class Row:
    what: str
    seconds: float
    note: str = ""
    goal: str = ""
    ratio: float = 0.0  # the fan-out: times one host alone
    floor: float = 0.0  # the fan-out: the least this machine allows (lab CPU over its cores)


def policy_for(hosts: int) -> Policy:
    """A policy naming the generated hosts, the host administrators' group granted everything."""
    tables = "".join(f"[hosts.HV{i:03d}]\nclassification = \"internal\"\n"
                     f"iso_library = ['D:\\ISO\\']\n\n" for i in range(1, hosts + 1))
    return Policy.from_text(tables + "[[grants]]\nprincipal = 'LAB\\HV-Admins'\n"
                            "sid = \"S-1-5-21-1000-2000-3000-1204\"\nrole = \"admin\"\n"
                            "everything = true\n")


# --- the lab, in processes of their own -----------------------------------------------------------

def _serve(hosts: int, vms: int, cost: dict[str, float], part: int, parts: int,
           conn: Connection) -> None:
    """This process's share of the hosts (every parts-th), each serving WinRS, the default
    PowerShell endpoint and the JEA endpoint; answers "cpu" with its CPU seconds until "stop".
    Out of the client's process: on a real network the hosts' work runs on other machines."""
    world = generated_world(hosts, vms, durations=Durations.instant())
    accounts = Accounts(world.domain, world.dns_domain)
    for a in world.accounts:
        accounts.add(f"{world.domain}\\{a.name}", a.sid, a.password, enabled=a.enabled)
    policy = policy_for(hosts)
    tokens = psrp.directory_tokens(LabDirectory(), accounts)
    model = CostModel(**cost)
    servers = []
    try:
        for h in world.hosts[part::parts]:
            executor = Executor(h.host)
            server = WSManServer(h.name, executor, accounts=accounts,
                                 rights=HostRights.of(h.users, h.admins), cost=model)
            psrp.attach_default(server, executor)
            psrp.attach(server, executor, jea.generate(policy, h.name), tokens)
            server.start()
            servers.append(server)
        conn.send([(s.name, s.url) for s in servers])
        while (message := conn.recv()) != "stop":
            conn.send(time.process_time() if message == "cpu" else None)
    finally:
        for server in servers:
            server.stop()


class Farm:
    """Lab hosts spread over one process per core."""

    def __init__(self, hosts: int, vms: int, cost: CostModel) -> None:
        self.parts = max(1, min(os.cpu_count() or 1, hosts))
        context = multiprocessing.get_context("spawn")
        self._conns: list[Connection] = []
        self._processes = []
        for part in range(self.parts):
            ours, theirs = context.Pipe()
            process = context.Process(target=_serve, args=(hosts, vms, asdict(cost), part,
                                                           self.parts, theirs), daemon=True)
            process.start()
            self._conns.append(ours)
            self._processes.append(process)
        self.urls: dict[str, str] = {}
        for conn in self._conns:
            if not conn.poll(300):
                raise RuntimeError("a lab process did not start")
            self.urls.update(conn.recv())

    def configs(self, endpoint: str, protocol: str, count: int | None = None) -> list[HostConfig]:
        names = sorted(self.urls)[:count]
        return [HostConfig(n, self.urls[n], endpoint=endpoint, protocol=protocol, timeout=120.0)
                for n in names]

    def cpu(self) -> float:
        """The lab processes' CPU seconds so far."""
        total = 0.0
        for conn in self._conns:
            conn.send("cpu")
            total += float(conn.recv())
        return total

    def stop(self) -> None:
        for conn in self._conns:
            conn.send("stop")
        for process in self._processes:
            process.join(30)


@contextmanager
def farm(hosts: int, vms: int, cost: CostModel) -> Iterator[Farm]:
    started = Farm(hosts, vms, cost)
    try:
        yield started
    finally:
        started.stop()


def _warm(pool: HostPool, expected: int, rounds: int = ROUNDS) -> tuple[float, float]:
    """(first refresh, median of the warm ones) in seconds; every VM answered each time."""
    def refresh() -> None:
        result = pool.inventory_all()
        assert not result.errors, result.errors
        assert len(result.vms) == expected, len(result.vms)
    first = _timed(refresh)
    return first, statistics.median(_timed(refresh) for _ in range(rounds))


def _timed(work: Callable[[], Any]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


# --- the measures ---------------------------------------------------------------------------------

def list_rows(cost: CostModel, label: str) -> list[Row]:
    rows = []
    with farm(LIST_HOSTS, LIST_VMS, cost) as lab:
        for client, (endpoint, protocol) in CLIENTS.items():
            with HostPool(lab.configs(endpoint, protocol), ADAM) as pool:
                first, warm = _warm(pool, LIST_HOSTS * LIST_VMS)
            rows.append(Row(f"{label}: list {LIST_HOSTS * LIST_VMS} VMs on {LIST_HOSTS} hosts, "
                            f"{client}", warm, f"first (sessions open) {first:.2f} s",
                            "met" if warm < LIST_GOAL else "not met"))
    return rows


def fan_out_rows(cost: CostModel, label: str) -> list[Row]:
    rows = []
    with farm(HOSTS, VMS, cost) as lab:
        with HostPool(lab.configs("admin", "psrp", 1), ADAM) as alone:
            _, one = _warm(alone, VMS)
        rows.append(Row(f"{label}: {VMS} VMs on 1 host alone (admin, PSRP)", one))
        with HostPool(lab.configs("admin", "psrp"), ADAM) as pool:
            pool.inventory_all()  # sign in, open the sessions
            cpu, mine = lab.cpu(), time.process_time()
            _, many = _warm(pool, HOSTS * VMS, rounds=ROUNDS)
            lab_cpu = (lab.cpu() - cpu) / (ROUNDS + 1)
            own_cpu = (time.process_time() - mine) / (ROUNDS + 1)
        ratio, cores = many / one, os.cpu_count() or 1
        # The hosts' simulated work shares this machine's cores: no refresh can take less than
        # the lab's CPU seconds spread over all of them.
        floor = lab_cpu / cores / one
        judged = floor <= FAN_OUT_GOAL
        rows.append(Row(f"{label}: {HOSTS * VMS} VMs on {HOSTS} hosts (admin, PSRP)", many,
                        f"{ratio:.2f}x one host; the lab's hosts took {lab_cpu:.1f} s CPU a "
                        f"refresh on {cores} cores (at least {floor:.2f}x here), the console "
                        f"{own_cpu:.1f} s",
                        ("met" if ratio <= FAN_OUT_GOAL else "not met") if judged
                        else "lab-bound", ratio, floor))
    return rows


def run() -> list[Row]:
    rows: list[Row] = []
    for cost, label in ((CostModel.realistic(), "realistic"), (CostModel(), "cost 0")):
        rows += list_rows(cost, label)
        rows += fan_out_rows(cost, label)
    return rows


def print_table(rows: list[Row]) -> None:
    width = max(len(r.what) for r in rows)
    print(f"\ngoals: the list under {LIST_GOAL:g} s; {HOSTS} hosts at most {FAN_OUT_GOAL:g}x one host "
          f"(lab-bound: this machine cannot host the lab's {HOSTS} hosts fast enough to judge it)")
    print(f"{'measure':<{width}}  {'median':>9}  {'goal':<7}  note")
    for r in rows:
        print(f"{r.what:<{width}}  {r.seconds * 1000:>7.0f}ms  {r.goal:<7}  {r.note}")


def test_inventory_list_and_fan_out() -> None:
    rows = run()
    print_table(rows)
    by = {r.what: r for r in rows}
    for client in ("admin, PSRP session", "JEA, PSRP session"):
        listed = by[f"realistic: list {LIST_HOSTS * LIST_VMS} VMs on {LIST_HOSTS} hosts, {client}"]
        assert listed.seconds < LIST_GOAL, listed
    fan_out = by[f"realistic: {HOSTS * VMS} VMs on {HOSTS} hosts (admin, PSRP)"]
    # Judged only where the lab's own CPU lets the goal be reached at all.
    assert fan_out.goal != "not met", fan_out


if __name__ == "__main__":
    print_table(run())

"""Several lab hosts in one process: the simulated Hyper-V of each host behind its own
WS-Management server on 127.0.0.1 (an ephemeral port each), sharing one lab domain.

    with Lab.start() as lab:                      # the demo world of resources/lab/lab.toml
        url = lab.hosts["HV01"].url
        user, password = lab.admin
    with Lab.start(hosts=20, vms_per_host=50, https=True) as lab:   # a generated world
        ...lab.ca_file...

The servers share one `Accounts` (lab/auth.py), which points the process's
NTLM_USER_FILE at its password file while a server runs (pyspnego reads it per process).
"""
from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from console import jea
from console.config import HostConfig
from .directory import LabDirectory
from console.policy import Policy
from . import psrp
from .auth import Accounts, HostRights
from .certs import make_ca, make_server_cert
from .executor import Executor
from .faults import CostModel
from .hyperv import Clock, Durations, Host
from .vmconnect import ConsoleListener
from .world import World, generated_world, load_world, restore_state, save_state
from .wsman import EventLog, WSManServer


@dataclass
class LabHostHandle:
    """One running lab host: its endpoint, its simulation, its server, executor and event log."""

    name: str
    url: str
    host: Host
    server: WSManServer
    executor: Executor
    events: EventLog
    default: psrp.DefaultEndpoint | None = None  # Microsoft.PowerShell over PSRP
    console: ConsoleListener | None = None  # stands for port 2179 (Virtual Machine Connection)


@dataclass
class Lab:
    world: World
    accounts: Accounts
    hosts: dict[str, LabHostHandle] = field(default_factory=dict)
    credentials: dict[str, str] = field(default_factory=dict)  # LAB\user -> password (enabled)
    admins: frozenset[str] = frozenset()  # LAB\user of the host administrators
    ca_file: Path | None = None
    state_file: Path | None = None
    _folder: Path | None = None

    @classmethod
    def start(cls, world: World | Path | None = None, https: bool = False, hosts: int | None = None,
              vms_per_host: int | None = None, latency_ms: float = 0.0,
              durations: Durations | None = None, state: Path | None = None,
              cost: CostModel | None = None, clock: Clock | None = None,
              first_use_progress: bool = False, jea_policy: Policy | None = None) -> Lab:
        """Start a server per host of `world` (a World, a lab file, or the demo world), or of a
        generated world of `hosts` x `vms_per_host`. `durations` replaces the cmdlet durations
        (Durations.instant() in tests); `state` is restored now if the file exists. `cost`: every
        host's cost model (lab/faults.py; CostModel.realistic() for the benchmarks).
        Every host serves WinRS and the default PowerShell endpoint (Microsoft.PowerShell) over
        PSRP to its administrators. With `jea_policy`, every host also serves the JEA endpoint
        generated from that policy, the callers' tokens coming from the demo directory (as a
        domain logon would build them)."""
        if hosts is not None:
            world = generated_world(hosts, vms_per_host or 10, durations=durations, clock=clock)
        elif not isinstance(world, World):
            world = load_world(world, durations=durations, clock=clock)
        if state is not None:
            restore_state(world, state)
        accounts = Accounts(world.domain, world.dns_domain)
        for account in world.accounts:
            accounts.add(account.name, account.sid, account.password, enabled=account.enabled)
        lab = cls(world, accounts, state_file=state)
        lab.credentials = {f"{world.domain}\\{a.name}": a.password for a in world.accounts if a.enabled}
        lab.admins = frozenset(f"{world.domain}\\{n}" for h in world.hosts for n in h.admins)
        tls = None
        if https:
            lab._folder = Path(tempfile.mkdtemp(prefix="hvconsole-lab-tls-"))
            ca = make_ca(lab._folder)
            tls = make_server_cert(ca, lab._folder, ["127.0.0.1", "localhost"])
            lab.ca_file = ca.cert
        tokens: psrp.TokenSource | None = None
        try:
            for lab_host in world.hosts:
                events = EventLog(lab_host.name)
                executor = Executor(lab_host.host, log=events)
                if latency_ms:
                    lab_host.faults.latency_ms = latency_ms
                server = WSManServer(
                    lab_host.name, executor, accounts=accounts,
                    rights=HostRights.of(lab_host.users, lab_host.admins), events=events,
                    faults=lab_host.faults, cost=cost, tls=tls, first_use_progress=first_use_progress)
                default = psrp.attach_default(server, executor)
                url = server.start()
                if jea_policy is not None:
                    tokens = tokens or psrp.directory_tokens(LabDirectory(), accounts)
                    psrp.attach(server, executor, jea.generate(jea_policy, lab_host.name), tokens)
                console = ConsoleListener(lab_host.host, frozenset(
                    f"{world.domain}\\{n}".lower() for n in lab_host.admins), world.domain)
                console.start()
                lab.hosts[lab_host.name] = LabHostHandle(lab_host.name, url, lab_host.host, server,
                                                         executor, events, default, console)
        except BaseException:
            lab.stop()
            raise
        return lab

    def host_configs(self, endpoint: str = "jea") -> list[HostConfig]:
        """The console's host entries for this lab (JEA unless asked for the admin endpoint)."""
        ca = str(self.ca_file) if self.ca_file else ""
        return [HostConfig(name=name, url=handle.url, endpoint=endpoint, ca_file=ca,
                           console_port=handle.console.port if handle.console else 2179)
                for name, handle in self.hosts.items()]

    @property
    def admin(self) -> tuple[str, str]:
        """(user, password) of a host administrator, for tests and the demo."""
        name = min(self.admins & set(self.credentials))
        return name, self.credentials[name]

    def save(self, path: Path | None = None) -> Path | None:
        """Save every host's VMs to `path` (or the state file given at start)."""
        target = path or self.state_file
        return save_state(self.world, target) if target is not None else None

    def stop(self) -> None:
        for handle in self.hosts.values():
            handle.server.stop()
            if handle.console is not None:
                handle.console.stop()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

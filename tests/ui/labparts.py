"""The lab for the GUI tests: the demo world, its accounts and one WS-Management server per host.

Every account may use the hosts' default endpoint here (as a host administrator would): these
tests are about what the window shows and does through the console's policy and ActionService;
the hosts' own enforcement (JEA) has its tests in tests/lab.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from console.config import Config, HostConfig
from lab.auth import Accounts, HostRights
from lab.executor import Executor
from lab.hyperv import Durations
from lab.world import World, load_world
from lab import psrp
from lab.wsman import WSManServer
from console.paths import LAB_DATA


@dataclass
class TestLab:
    world: World
    accounts: Accounts
    servers: list[WSManServer]
    _config: Config

    def config(self) -> Config:
        return self._config


@contextlib.contextmanager
def start_lab(timeout: float = 15.0) -> Iterator[Any]:
    world = load_world(durations=Durations.instant())
    accounts = Accounts(world.domain, world.dns_domain)
    for a in world.accounts:
        accounts.add(a.name, a.sid, a.password, enabled=a.enabled)
    servers: list[WSManServer] = []
    try:
        for h in world.hosts:
            executor = Executor(h.host)
            server = WSManServer(h.name, executor, accounts=accounts,
                                 rights=HostRights.of(None, [a.name for a in world.accounts]),
                                 faults=h.faults)
            # The admin endpoint as the console reaches it by default: a kept PSRP session to
            # Microsoft.PowerShell (WinRS stays served for hosts configured with protocol winrs).
            psrp.attach_default(server, executor)
            server.start()
            servers.append(server)
        config = Config(hosts=[HostConfig(name=s.name, url=s.url, endpoint="admin", timeout=timeout)
                               for s in servers],
                        policy_path=str(LAB_DATA / "policy.toml"), demo=True)
        yield TestLab(world, accounts, servers, config)
    finally:
        for server in servers:
            server.stop()

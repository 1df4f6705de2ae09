"""One action through the JEA endpoint (pypsrp, typed call, policy check on the host) against the
same action through the admin endpoint (pywinrm, encoded script), on the same lab host, in one run.

Both use NTLM with message encryption over loopback and open their own connection per action, as
the clients do. The figures are printed; `dev.py bench` collects them.
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from console import jea
from console.config import HostConfig
from console.hosts import Credentials, HostClient, JeaClient
from lab import psrp
from lab.auth import Accounts, HostRights
from lab.executor import Executor
from lab.hyperv import Durations
from lab.world import load_world
from lab.wsman import WSManServer
from lab.directory import LabDirectory
from console.paths import LAB_DATA
from console.policy import Policy

WEB01 = "42e4aaca-7231-5411-b96b-d03849b0dae1"
ROUNDS = 20


def _median_ms(action: Callable[[str], object]) -> float:
    times = []
    for n in range(ROUNDS):
        start = time.perf_counter()
        action("pause" if n % 2 == 0 else "resume")
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def test_one_action_jea_against_admin() -> None:
    world = load_world(durations=Durations.instant())
    accounts = Accounts()
    accounts.add("LAB\\adam", "S-1-5-21-1000-2000-3000-1103", "adam-demo")
    executor = Executor(world.host("HV01").host)
    server = WSManServer("HV01", executor, accounts=accounts,
                         rights=HostRights.of(admins=["LAB\\adam"]))
    policy = Policy.load(LAB_DATA / "policy.toml")
    psrp.attach(server, executor, jea.generate(policy, "HV01"),
                psrp.directory_tokens(LabDirectory(), accounts))
    url = server.start()
    try:
        credentials = Credentials("LAB\\adam", "adam-demo")
        config = HostConfig("HV01", url, timeout=10)
        jea_client, admin_client = JeaClient(config, credentials), HostClient(config, credentials)
        jea_client.power(WEB01, "pause")  # first call: the token is built once per user
        jea_client.power(WEB01, "resume")
        jea_ms = _median_ms(lambda action: jea_client.power(WEB01, action))
        admin_ms = _median_ms(lambda action: admin_client.power(WEB01, action))
    finally:
        server.stop()
    print(f"\none power action, median of {ROUNDS}: JEA {jea_ms:.1f} ms, admin endpoint "
          f"{admin_ms:.1f} ms (x{jea_ms / admin_ms:.2f})")
    assert jea_ms > 0 and admin_ms > 0

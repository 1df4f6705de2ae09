"""One action through the JEA endpoint (typed call, the policy checked on the host) against the
same action through the default endpoint, on the same lab host, in one run: over a kept PSRP
session each, and over the WinRS fallback. At cost 0 (the protocol and the lab's own work) and
under the realistic cost model (lab/faults.py), where opening a JEA session costs a process, a
virtual account and the role's modules, and a WinRS operation a process and the Hyper-V module.

All use NTLM with message encryption over loopback. The figures are printed; `python3 dev.py
bench -k jea` collects them.
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from console.config import HostConfig
from console.hosts import AdminClient, Credentials, HostClient, JeaClient
from console.paths import LAB_DATA
from console.policy import Policy
from lab.faults import CostModel
from lab.hyperv import Durations
from lab.runner import Lab

WEB01 = "42e4aaca-7231-5411-b96b-d03849b0dae1"
ROUNDS = 10
ADAM = Credentials("LAB\\adam", "adam-demo")


def _median_ms(action: Callable[[str], object]) -> float:
    times = []
    for n in range(ROUNDS):
        start = time.perf_counter()
        action("pause" if n % 2 == 0 else "resume")
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def measure(cost: CostModel) -> dict[str, tuple[float, float]]:
    """client -> (its first call: the session opened, ms; one power action, median ms)."""
    found: dict[str, tuple[float, float]] = {}
    with Lab.start(durations=Durations.instant(), cost=cost,
                   jea_policy=Policy.load(LAB_DATA / "policy.toml")) as lab:
        url = lab.hosts["HV01"].url
        clients = {
            "JEA (PSRP session)": JeaClient(HostConfig("HV01", url, timeout=30), ADAM),
            "admin (PSRP session)": AdminClient(
                HostConfig("HV01", url, endpoint="admin", timeout=30), ADAM),
            "admin (WinRS)": HostClient(
                HostConfig("HV01", url, endpoint="admin", protocol="winrs", timeout=30), ADAM),
        }
        for label, client in clients.items():
            start = time.perf_counter()
            client.power(WEB01, "pause")  # the session opens (JEA: the caller's token is built)
            first = (time.perf_counter() - start) * 1000
            client.power(WEB01, "resume")
            found[label] = (first, _median_ms(lambda action, c=client: c.power(WEB01, action)))
            client.close()
    return found


def test_one_action_jea_against_admin() -> None:
    print(f"\none power action on HV01, median of {ROUNDS}; the first call opens the session")
    for name, cost in (("cost 0", CostModel()), ("realistic", CostModel.realistic())):
        found = measure(cost)
        jea_ms = found["JEA (PSRP session)"][1]
        for label, (first, action) in found.items():
            print(f"{name:<9}  {label:<21}  first call {first:>6.0f} ms  one action "
                  f"{action:>6.1f} ms  (x{action / jea_ms:.2f} JEA)")
        assert all(action > 0 for _, action in found.values())

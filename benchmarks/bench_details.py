"""What opening a VM's details costs: its details (details.ps1, Get-HvcVMDetails) and its first
screen (thumbnail.ps1, Get-HvcVMThumbnail) through the JEA endpoint on a kept PSRP session, beside
the inventory of the whole host, on the same lab host. At cost 0 (the protocol, the interpreter
and the lab's own work) and under the realistic cost model (lab/faults.py: a network round trip
per request, the module already loaded in the kept session). The lab charges no time for the WMI
queries behind each property, which a real host adds (docs/verification.md). `python3 dev.py
bench -k details` prints the figures.
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from console.config import HostConfig
from console.hosts import Credentials, JeaClient
from console.paths import LAB_DATA
from console.policy import Policy
from lab.faults import CostModel
from lab.hyperv import Durations
from lab.runner import Lab

WEB01 = "42e4aaca-7231-5411-b96b-d03849b0dae1"
ROUNDS = 10
OLIVIA = Credentials("LAB\\olivia", "olivia-demo")


def _median_ms(call: Callable[[], object]) -> float:
    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def measure(cost: CostModel) -> dict[str, float]:
    with Lab.start(durations=Durations.instant(), cost=cost,
                   jea_policy=Policy.load(LAB_DATA / "policy.toml")) as lab:
        client = JeaClient(HostConfig("HV01", lab.hosts["HV01"].url, timeout=30), OLIVIA)
        try:
            client.inventory()  # the session opens
            found = {
                "inventory of HV01": _median_ms(client.inventory),
                "details of one VM": _median_ms(lambda: client.details(WEB01)),
                "screen of one VM (160x120)": _median_ms(lambda: client.thumbnail(WEB01)),
            }
            size = len(client.thumbnail(WEB01).pixels)
        finally:
            client.close()
    found["screen bytes"] = size
    return found


def test_what_opening_the_details_costs() -> None:
    print(f"\nopening shop-web01's details as olivia through HV01's JEA endpoint, median of "
          f"{ROUNDS}")
    for name, cost in (("cost 0", CostModel()), ("realistic", CostModel.realistic())):
        found = measure(cost)
        for label, value in found.items():
            unit = "" if label == "screen bytes" else " ms"
            print(f"{name:<9}  {label:<28} {value:>8.1f}{unit}")
        assert found["details of one VM"] > 0 and found["screen bytes"] == 160 * 120 * 2

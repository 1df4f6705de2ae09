"""The lab runner serves the JEA endpoint generated from a policy on every host."""
from __future__ import annotations

import pytest

from console import hosts
from console.config import HostConfig
from console.errors import HostAccessDenied
from console.hosts import Credentials
from console.hosts import JeaClient
from lab.demo import demo_policy_text
from lab.hyperv import Durations
from lab.runner import Lab
from console.policy import Policy


def test_each_lab_host_enforces_the_policy_through_jea() -> None:
    policy = Policy.from_text(demo_policy_text(), "policy.toml")
    with Lab.start(durations=Durations.instant(), jea_policy=policy) as lab:
        def client(host: str, user: str) -> JeaClient:
            return JeaClient(HostConfig(name=host, url=lab.hosts[host].url, endpoint="jea"),
                             Credentials(f"LAB\\{user}", lab.credentials[f"LAB\\{user}"]))

        henry = client("HV02", "henry")
        try:
            assert sorted(v.name for v in henry.inventory()) == [
                "office-files", "office-print", "shop-web02"]
            assert hosts.lag("HV02", henry.enforced_digest(), policy) is None
            payroll = next(v for v in lab.hosts["HV02"].host.inventory()["vms"]
                           if v["name"] == "payroll-db")
            with pytest.raises(HostAccessDenied):
                henry.power(payroll["id"], "start")
        finally:
            henry.close()
        assert lab.hosts["HV02"].host.vm(payroll["id"]).state == "Off"

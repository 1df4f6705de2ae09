"""The details and the thumbnail through each endpoint the console uses, against the lab's real
WS-Management hosts: the JEA functions (Get-HvcVMDetails, Get-HvcVMThumbnail) answer only a
caller who may view the VM, and every client (JEA, admin over PSRP, admin over WinRS) answers
alike."""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from console import hosts, jea
from console.config import HostConfig
from console.details import VMDetails
from console.errors import HostAccessDenied, InvalidParameter, VMNotFound
from console.hosts import Credentials
from console.policy import Policy
from lab import psrp, vmdetail
from lab.auth import Accounts, HostRights
from lab.directory import LabDirectory
from lab.executor import Executor
from lab.hyperv import Durations
from lab.world import load_world
from lab.wsman import WSManServer

POLICY = Path(__file__).parents[1] / "golden" / "jea" / "policy.toml"
PASSWORDS = {"olivia": "olivia-demo", "henry": "henry-demo", "adam": "adam-demo",
             "rita": "rita-demo"}
RIDS = {"olivia": 1101, "henry": 1102, "adam": 1103, "rita": 1104}
WEB01 = "42e4aaca-7231-5411-b96b-d03849b0dae1"  # HV01, shop: olivia's
DB01 = "606602fb-a784-5dc2-a658-664e33ff98a2"  # HV01, shop
OFFICE_FILES = "bc797c1d-65e1-5032-8525-d184e732f820"  # HV01's Replica copy: not olivia's


@pytest.fixture(scope="module")
def hv01() -> Iterator[tuple[WSManServer, Executor]]:
    accounts = Accounts()
    for user, password in PASSWORDS.items():
        accounts.add(f"LAB\\{user}", f"S-1-5-21-1000-2000-3000-{RIDS[user]}", password)
    world = load_world(durations=Durations.instant())
    lab_host = next(h for h in world.hosts if h.name == "HV01")
    executor = Executor(lab_host.host)
    server = WSManServer("HV01", executor, accounts=accounts,
                         rights=HostRights.of(admins=["LAB\\adam"]))
    psrp.attach(server, executor, jea.generate(Policy.load(POLICY), "HV01"),
                psrp.directory_tokens(LabDirectory(), accounts))
    psrp.attach_default(server, executor)
    server.start()
    yield server, executor
    server.stop()


def _jea(server: WSManServer, user: str) -> hosts.JeaClient:
    return hosts.JeaClient(HostConfig("HV01", server.url, timeout=20),
                           Credentials(f"LAB\\{user}", PASSWORDS[user]))


def test_an_owner_reads_details_and_thumbnail_through_jea(hv01: tuple[WSManServer, Executor]) -> None:
    server, executor = hv01
    olivia = _jea(server, "olivia")
    try:
        details = olivia.details(WEB01)
        shot = olivia.thumbnail(WEB01)
    finally:
        olivia.close()
    host = executor.host
    assert details.name == "shop-web01" and details.guest_os
    assert details.adapters[0].addresses == vmdetail.hardware(host, host.vm(WEB01)).adapters[0].ips
    assert (shot.width, shot.height) == (160, 120) and len(shot.pixels) == 160 * 120 * 2


def test_without_vm_view_a_person_gets_nothing(hv01: tuple[WSManServer, Executor]) -> None:
    server, executor = hv01
    olivia = _jea(server, "olivia")
    before = len(executor.events)
    try:
        with pytest.raises(HostAccessDenied, match="vm.view"):
            olivia.details(OFFICE_FILES)
        with pytest.raises(HostAccessDenied, match="vm.view"):
            olivia.thumbnail(OFFICE_FILES)
    finally:
        olivia.close()
    refused = [e for e in executor.events[before:] if e.user == "LAB\\olivia"]
    assert [(e.operation, e.vm_id, e.outcome) for e in refused] == [
        ("details", OFFICE_FILES, "denied"), ("thumbnail", OFFICE_FILES, "denied")]
    # Henry holds nothing on HV01 at all: the endpoint does not even let him in.
    henry = _jea(server, "henry")
    try:
        with pytest.raises(HostAccessDenied):
            henry.details(WEB01)
    finally:
        henry.close()


def test_the_endpoint_holds_the_thumbnail_size_to_its_limits(
        hv01: tuple[WSManServer, Executor]) -> None:
    server, _ = hv01
    olivia = _jea(server, "olivia")
    try:
        with pytest.raises(InvalidParameter, match="outside"):
            olivia.thumbnail(WEB01, 4000, 3000)  # the console refuses before sending
        # Straight at the endpoint, its ValidateRange refuses too.
        call = olivia._call  # noqa: SLF001 (the endpoint's own refusal, bypassing the client)
        with pytest.raises(InvalidParameter):
            call("Get-HvcVMThumbnail", {"VMId": WEB01, "Width": 4000, "Height": 3000})
    finally:
        olivia.close()


def test_every_client_answers_alike(hv01: tuple[WSManServer, Executor]) -> None:
    server, _ = hv01
    config = HostConfig("HV01", server.url, endpoint="admin", timeout=20)
    admin = Credentials("LAB\\adam", PASSWORDS["adam"])
    clients = [_jea(server, "adam"), hosts.AdminClient(config, admin),
               hosts.HostClient(config, admin)]
    try:
        answers = [c.details(DB01) for c in clients]
        for client in clients:
            with pytest.raises(VMNotFound):
                client.details("5e0f3a51-0000-4000-8000-000000000000")
    finally:
        for c in clients:
            c.close()
    # Memory demand and CPU move with the clock between calls; everything else is equal.
    plain = [{**json.loads(json.dumps(a.__dict__, default=lambda o: o.__dict__)),
              "memory": None, "cpu_pct": None} for a in answers]
    assert plain[0] == plain[1] == plain[2]
    assert isinstance(answers[0], VMDetails)


def test_what_opening_the_details_costs(hv01: tuple[WSManServer, Executor],
                                        record_property: pytest.RecordProperty) -> None:
    """One details read and one thumbnail through the JEA endpoint on a kept session: the
    figure the report gives (the lab charges no WMI time, so a real host adds its own)."""
    server, _ = hv01
    olivia = _jea(server, "olivia")
    try:
        olivia.details(WEB01)  # the session opens
        start = time.perf_counter()
        for _ in range(5):
            olivia.details(WEB01)
        details_s = (time.perf_counter() - start) / 5
        start = time.perf_counter()
        for _ in range(5):
            olivia.thumbnail(WEB01)
        thumbnail_s = (time.perf_counter() - start) / 5
    finally:
        olivia.close()
    record_property("details_ms", round(details_s * 1000))
    record_property("thumbnail_ms", round(thumbnail_s * 1000))
    print(f"details {details_s * 1000:.0f} ms, thumbnail {thumbnail_s * 1000:.0f} ms")
    assert details_s < 5 and thumbnail_s < 5

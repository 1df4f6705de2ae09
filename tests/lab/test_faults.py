"""Fault injection and the cost model of a lab host, measured through the real pywinrm client."""
from __future__ import annotations

import random
import time

import pytest
import requests
from winrm.exceptions import WinRMError, WSManFaultError

from lab.faults import CostModel, Faults, Outcome
from lab.wsman import INTERNAL_ERROR_CODE
from tests.lab import test_wsman
from tests.lab.test_wsman import Clients

# The transport tests' fixtures, shared by name (bound here rather than imported, so the tests'
# parameters of the same name shadow no import).
accounts, clients, start_host = test_wsman.accounts, test_wsman.clients, test_wsman.start_host

MARGIN = 1.5  # seconds of slack for a loaded test machine


def test_added_latency_delays_every_request(start_host, clients: Clients) -> None:
    host = start_host()
    protocol = clients.protocol(host.url)
    started = time.monotonic()
    protocol.open_shell()  # logon and one message, no latency yet
    baseline = time.monotonic() - started
    host.faults.latency_ms = 300  # changed while the host runs
    started = time.monotonic()
    protocol.open_shell()
    elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 0.3 + MARGIN
    assert baseline < 0.3


def test_share_of_failed_calls_is_reproducible_with_a_seed(start_host, clients: Clients) -> None:
    host = start_host(faults=Faults(fail_share=0.25, seed=11))
    protocol = clients.protocol(host.url)
    failures = 0
    for _ in range(40):
        try:
            protocol.open_shell()  # one message, one draw
        except WSManFaultError as fault:
            assert isinstance(fault, WinRMError) and fault.code == 500
            assert fault.wsman_fault_code == INTERNAL_ERROR_CODE
            failures += 1
    draws = random.Random(11)
    expected = sum(draws.random() < 0.25 for _ in range(40))
    assert failures == expected == host.stats.injected_failures
    assert 0 < expected < 40


def test_dropped_connection_is_a_client_error_within_the_read_timeout(start_host, clients: Clients) -> None:
    host = start_host(faults=Faults(drop_share=1.0))
    session = clients.session(host.url, read_timeout_sec=3, operation_timeout_sec=1)
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ConnectionError):
        session.run_cmd("echo", ["x"])
    assert time.monotonic() - started < 3 + MARGIN
    assert host.stats.dropped == 1


def test_silent_host_times_out_the_client_then_recovers(start_host, clients: Clients) -> None:
    host = start_host(faults=Faults(silent=True))
    session = clients.session(host.url, read_timeout_sec=2, operation_timeout_sec=1)
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        session.run_cmd("echo", ["x"])
    elapsed = time.monotonic() - started
    assert 2 <= elapsed < 2 + MARGIN
    assert host.stats.connections == 1 and host.stats.logons == 0
    host.faults.clear()
    assert clients.session(host.url).run_cmd("echo", ["back"]).std_out == b"back"


def test_process_start_cost_delays_the_command_not_its_reply(start_host, clients: Clients) -> None:
    host = start_host(cost=CostModel(process_start_ms=400))
    protocol = clients.protocol(host.url)
    shell = protocol.open_shell()
    started = time.monotonic()
    command = protocol.run_command(shell, "echo", ["x"])
    replied = time.monotonic() - started
    assert protocol.get_command_output(shell, command) == (b"x", b"", 0)
    finished = time.monotonic() - started
    assert replied < 0.4 <= finished < 0.4 + MARGIN
    host.cost.process_start_ms = 0
    started = time.monotonic()
    command = protocol.run_command(shell, "echo", ["y"])
    protocol.get_command_output(shell, command)
    assert time.monotonic() - started < 0.4
    protocol.close_shell(shell)


def test_roll_draws_once_per_message_and_reseeds() -> None:
    faults = Faults(drop_share=0.2, fail_share=0.3, seed=5)
    first = [faults.roll() for _ in range(200)]
    faults.reseed()
    assert [faults.roll() for _ in range(200)] == first
    draws = random.Random(5)
    expected = [Outcome.DROP if d < 0.2 else Outcome.FAIL if d < 0.5 else Outcome.ANSWER
                for d in (draws.random() for _ in range(200))]
    assert first == expected
    assert {Outcome.DROP, Outcome.FAIL, Outcome.ANSWER} == set(first)


def test_invalid_shares_are_refused_and_clear_heals() -> None:
    faults = Faults(fail_share=0.7, drop_share=0.5, latency_ms=10, silent=True)
    with pytest.raises(ValueError, match="add up"):
        faults.roll()
    faults.clear()
    assert (faults.fail_share, faults.drop_share, faults.latency_ms, faults.silent) == (0, 0, 0, False)
    assert faults.roll() is Outcome.ANSWER
    assert CostModel.realistic().process_start_ms == 1000 and CostModel().process_start_ms == 0

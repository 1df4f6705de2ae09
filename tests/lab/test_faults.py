"""Fault injection and the cost model of a lab host, measured through the real pywinrm and pypsrp
clients."""
from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import fields
from typing import Any

import pytest
import requests
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan
from winrm.exceptions import WinRMError, WSManFaultError

from lab.faults import CostModel, Faults, Outcome
from lab.hyperv import Durations
from lab.runner import Lab
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


def test_the_realistic_cost_model_sets_every_cost_and_the_default_none() -> None:
    realistic, default = CostModel.realistic(), CostModel()
    names = [f.name for f in fields(CostModel)]
    assert {"process_start_ms", "module_import_ms", "jea_session_ms", "wmi_per_vm_ms",
            "latency_ms"} <= set(names)
    assert all(getattr(realistic, n) > 0 for n in names)
    assert all(getattr(default, n) == 0 for n in names)
    assert realistic.process_start_ms == 1000 and realistic.module_import_ms == 1000


# --- the costs PowerShell pays on the host: a process per WinRS command, a kept PSRP runspace -------

WEB01 = "42e4aaca-7231-5411-b96b-d03849b0dae1"
ADAM = ("LAB\\adam", "adam-demo")


def _timed(work: Callable[[], Any]) -> tuple[float, Any]:
    started = time.monotonic()
    result = work()
    return time.monotonic() - started, result


def test_a_winrs_command_starts_a_process_and_imports_hyperv_every_time() -> None:
    from winrm.protocol import Protocol
    from console import scripts
    cost = CostModel(process_start_ms=200, module_import_ms=300)
    with Lab.start(durations=Durations.instant(), cost=cost) as lab:
        host = lab.hosts["HV01"]
        assert host.executor.cost is host.server.cost is cost  # one model per host
        protocol = Protocol(host.url, transport="ntlm", username=ADAM[0], password=ADAM[1],
                            message_encryption="always")
        shell = protocol.open_shell()
        executable, args, stdin = scripts.command("vm_state", {"vm_ids": [WEB01]})
        for n in (1, 2):
            def call() -> tuple[bytes, bytes, int]:
                command = protocol.run_command(shell, executable, args)
                protocol.send_command_input(shell, command, stdin.encode("ascii"), end=True)
                return protocol.get_command_output(shell, command)
            elapsed, (out, _, code) = _timed(call)
            assert code == 0 and b'"ok":true' in out
            assert 0.5 <= elapsed < 0.5 + MARGIN
            assert host.server.stats.process_starts == n and host.executor.module_imports == n
        protocol.close_shell(shell)


def test_a_psrp_pool_starts_one_process_and_each_runspace_imports_once() -> None:
    from console import scripts
    cost = CostModel(process_start_ms=300, module_import_ms=600, wmi_per_vm_ms=20)
    with Lab.start(durations=Durations.instant(), cost=cost) as lab:
        host = lab.hosts["HV01"]
        wsman = WSMan("127.0.0.1", port=host.server.port, ssl=False, auth="ntlm",
                      username=ADAM[0], password=ADAM[1], encryption="always")
        opened, pool = _timed(lambda: RunspacePool(wsman, max_runspaces=2).__enter__())
        try:
            assert 0.3 <= opened < 0.3 + MARGIN and host.server.stats.process_starts == 1

            def state() -> list[Any]:
                ps = PowerShell(pool)
                ps.add_script(scripts.script("vm_state", {"vm_ids": [WEB01]}))
                return ps.invoke()
            first, _ = _timed(state)
            again, output = _timed(state)
            assert '"ok":true' in output[0]
            assert 0.6 <= first < 0.6 + MARGIN and again < 0.45  # the module stays loaded
            assert host.executor.module_imports == 1 and host.server.stats.process_starts == 1
            # Get-VM pays its WMI queries per VM it lists.
            count = len(host.host.vms)
            listed, _ = _timed(lambda: PowerShell(pool).add_script("$null = Get-VM").invoke())
            assert count * 0.02 <= listed < count * 0.02 + MARGIN
        finally:
            pool.close()


def test_a_jea_pool_pays_its_session_start_and_has_the_module_loaded() -> None:
    from console.paths import LAB_DATA
    from console.policy import Policy
    cost = CostModel(process_start_ms=200, jea_session_ms=400, module_import_ms=600)
    with Lab.start(durations=Durations.instant(), cost=cost,
                   jea_policy=Policy.load(LAB_DATA / "policy.toml")) as lab:
        host = lab.hosts["HV01"]
        wsman = WSMan("127.0.0.1", port=host.server.port, ssl=False, auth="ntlm",
                      username=ADAM[0], password=ADAM[1], encryption="always")
        opened, pool = _timed(lambda: RunspacePool(wsman, configuration_name="HvConsole")
                              .__enter__())
        try:
            assert 0.6 <= opened < 0.6 + MARGIN and host.server.stats.process_starts == 1
            ps = PowerShell(pool)
            ps.add_cmdlet("Get-HvcVMState").add_parameter("VMId", [WEB01])
            elapsed, output = _timed(ps.invoke)
            assert '"ok":true' in output[0] and elapsed < 0.45  # ModulesToImport: loaded at open
            assert host.executor.module_imports == 0
        finally:
            pool.close()


def test_latency_of_the_cost_model_delays_every_request() -> None:
    with Lab.start(durations=Durations.instant(), cost=CostModel(latency_ms=150)) as lab:
        host = lab.hosts["HV01"]
        wsman = WSMan("127.0.0.1", port=host.server.port, ssl=False, auth="ntlm",
                      username=ADAM[0], password=ADAM[1], encryption="always")
        with RunspacePool(wsman) as pool:
            before = host.server.stats.requests
            elapsed, _ = _timed(lambda: PowerShell(pool).add_script("1").invoke())
            requests_sent = host.server.stats.requests - before
            assert requests_sent >= 2
            assert 0.15 * requests_sent <= elapsed < 0.15 * requests_sent + MARGIN

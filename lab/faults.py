"""Fault injection and the cost model of one lab host, both changeable while the host runs.

The tests and the lab configuration set these values on a running host (they are read on every
request), so a host can turn slow, flaky or silent in the middle of a session. Shares are drawn
from a seeded random.Random: the same seed and the same sequence of requests fail the same way.
"""
from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from enum import Enum


class Outcome(Enum):
    """What the host does with one WS-Management message."""

    ANSWER = "answer"
    FAIL = "fail"  # HTTP 500 with a SOAP fault
    DROP = "drop"  # close the connection without a reply


@dataclass
class Faults:
    """Faults of one host. Latency applies to every HTTP request (authentication legs too);
    fail and drop shares apply to each WS-Management message after the logon, one draw each."""

    latency_ms: float = 0.0
    fail_share: float = 0.0
    drop_share: float = 0.0
    silent: bool = False  # accepts TCP, reads the request, never answers
    seed: int = 0
    _rng: random.Random = field(init=False, repr=False, compare=False)
    _lock: threading.Lock = field(init=False, repr=False, compare=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.reseed(self.seed)

    def reseed(self, seed: int | None = None) -> None:
        """Restart the random sequence (from `seed`, or from the current seed)."""
        with self._lock:
            if seed is not None:
                self.seed = seed
            self._rng = random.Random(self.seed)

    def clear(self) -> None:
        """Back to a healthy host (the random sequence goes on)."""
        self.latency_ms = self.fail_share = self.drop_share = 0.0
        self.silent = False

    def roll(self) -> Outcome:
        """The fate of one message: exactly one draw, drop first, then failure."""
        drop, fail = self.drop_share, self.fail_share
        if not (0.0 <= drop <= 1.0 and 0.0 <= fail <= 1.0 and drop + fail <= 1.0):
            raise ValueError(f"fault shares must lie in [0, 1] and add up to at most 1 "
                             f"(drop {drop}, fail {fail})")
        with self._lock:
            draw = self._rng.random()
        if draw < drop:
            return Outcome.DROP
        if draw < drop + fail:
            return Outcome.FAIL
        return Outcome.ANSWER


@dataclass
class CostModel:
    """Time a real host spends that the protocol does not show; all 0 by default (tests), and
    `realistic()` for the benchmarks. Each value is changeable while the host runs.

    process_start_ms: a new process: powershell.exe for every WinRS command, wsmprovhost.exe for
    every PSRP session (runspace pool) opened; the command, or the pool's opening, waits this long.
    module_import_ms: Import-Module Hyper-V, paid by the first Hyper-V cmdlet a new process or
    runspace calls (PowerShell's module autoloading); a WinRS command pays it every time.
    jea_session_ms: opening a JEA session on top of its process: the virtual account's logon, the
    role capabilities merged, the ModulesToImport (Hyper-V, Storage) imported into the session.
    wmi_per_vm_ms: Get-VM, per VM it returns (the per-VM WMI queries behind its properties).
    latency_ms: every HTTP request, authentication legs included: the network's round trip and
    the WinRM service's own handling of a request (added to Faults.latency_ms).

    The realistic values are estimates to confirm on a real host: docs/verification.md gives the
    command that measures each one.
    """

    process_start_ms: float = 0.0
    module_import_ms: float = 0.0
    jea_session_ms: float = 0.0
    wmi_per_vm_ms: float = 0.0
    latency_ms: float = 0.0

    @classmethod
    def realistic(cls) -> CostModel:
        """A Hyper-V host of Windows Server 2019/2022 on the same LAN as the console (estimates,
        docs/verification.md):
        - process start 1 s: powershell.exe (or wsmprovhost.exe) loading the engine's assemblies
          and the WinRM plugin, as `Measure-Command { powershell -NoProfile -Command exit }`
          shows on a busy host (0.5-1 s);
        - Hyper-V module import 1 s: `Measure-Command { Import-Module Hyper-V }` in a new
          process (the module loads its own assemblies, types and formats);
        - JEA session 1.5 s on top of the process start (2.5 s in all): the virtual account's
          logon and profile, and the ModulesToImport (Hyper-V, Storage);
        - 5 ms per VM in Get-VM (its state, uptime, memory and CPU figures come from WMI queries
          per VM), `(Measure-Command { Get-VM }).TotalMilliseconds / @(Get-VM).Count` in a session
          that has the module loaded;
        - 2 ms per HTTP request: a LAN round trip under 1 ms plus HTTP.sys, the WinRM service and
          message sealing.
        """
        return cls(process_start_ms=1000.0, module_import_ms=1000.0, jea_session_ms=1500.0,
                   wmi_per_vm_ms=5.0, latency_ms=2.0)


@dataclass
class CmdletFaults:
    """Hyper-V cmdlets of one host that misbehave, changeable while the host runs: what a host
    with a broken management service or driver might do, for the tests that hold the host
    selftest (console/selftest.py) to reporting it as a failed step.

    no_op: cmdlets that return as if they had succeeded and change nothing (Stop-VM "succeeds"
    and the VM keeps running). fail: cmdlets that fail with id OperationFailed (WMI job error
    32768, "failed") and the given message."""

    no_op: set[str] = field(default_factory=set)
    fail: dict[str, str] = field(default_factory=dict)

    def clear(self) -> None:
        """Every cmdlet behaves again."""
        self.no_op.clear()
        self.fail.clear()

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
    """Time a real host spends that the protocol does not show.

    process_start_ms: starting powershell.exe for every WinRS command; the command (and so the
    first Receive) waits this long before it runs. About a second on a real host, 0 in tests.
    """

    process_start_ms: float = 0.0

    @classmethod
    def realistic(cls) -> CostModel:
        return cls(process_start_ms=1000.0)

"""Shared set-up of the lab tests: the demo world on a clock the test moves."""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from console import scripts
from lab.auth import LabUser
from lab.executor import Executor
from lab.hyperv import Durations, ManualClock
from lab.world import World, load_world

ADAM = LabUser("LAB\\adam", "S-1-5-21-1000-2000-3000-1103", admin=True)
HENRY = LabUser("LAB\\henry", "S-1-5-21-1000-2000-3000-1102", admin=False)
# Cmdlet durations on the manual clock: nothing moves until the test advances it.
DURATIONS = Durations(start=3, shutdown=60, turnoff=1, reset=2, save=3, pause=1, resume=1,
                      delete_saved_state=1, checkpoint=2, apply=2, delete=1, merge=30, media=0)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def world(clock: ManualClock) -> World:
    return load_world(durations=DURATIONS, clock=clock)


class Lab:
    """The executors of the demo world's hosts and a way to call them as the client does."""

    def __init__(self, world: World, clock: ManualClock) -> None:
        self.world, self.clock = world, clock
        self.executors = {h.name: Executor(h.host) for h in world.hosts}

    def call(self, host: str, operation: str, user: LabUser = ADAM, **params: Any) -> dict[str, Any]:
        executable, args, stdin = scripts.command(operation, params)
        result = self.executors[host].run(user, " ".join([executable, *args]),
                                          lambda: stdin.encode("ascii"))
        assert result.exit_code == 0 and result.stderr == b"", result
        return json.loads(result.stdout)

    def ok(self, host: str, operation: str, **params: Any) -> Any:
        document = self.call(host, operation, **params)
        assert document["ok"], document
        return document["data"]

    def error(self, host: str, operation: str, **params: Any) -> str:
        document = self.call(host, operation, **params)
        assert not document["ok"], document
        assert document["error"]["message"]
        return document["error"]["code"]

    def state(self, host: str, vm_id: str) -> tuple[str, str]:
        vms = self.ok(host, "vm_state", vm_ids=[vm_id])["vms"]
        return vms[0]["state"], vms[0]["status"]

    def vm(self, host: str, vm_id: str) -> dict[str, Any]:
        return next(v for v in self.ok(host, "inventory")["vms"] if v["id"] == vm_id)

    def in_background(self, host: str, operation: str, **params: Any) -> Callable[[], dict]:
        """Run a call on another thread (as the server does); returns a function to join it."""
        out: dict[str, Any] = {}
        thread = threading.Thread(target=lambda: out.update(self.call(host, operation, **params)))
        thread.start()

        def join() -> dict[str, Any]:
            thread.join(10)
            assert not thread.is_alive()
            return out
        join.thread = thread  # type: ignore[attr-defined]
        return join

    def wait_for(self, host: str, vm_id: str, state: str, limit: float = 5.0) -> None:
        deadline = time.monotonic() + limit
        while self.state(host, vm_id)[0] != state:
            assert time.monotonic() < deadline, f"{vm_id} never became {state}"
            time.sleep(0.005)

    def act(self, host: str, operation: str, **params: Any) -> dict[str, Any]:
        """A call whose cmdlet takes time: the clock runs on until it returns."""
        return self.finish(self.in_background(host, operation, **params), 0)

    def finish(self, join: Callable[[], dict], seconds: float) -> dict[str, Any]:
        """Move the clock by `seconds`, then on in steps until the call returns."""
        self.clock.advance(seconds)
        deadline = time.monotonic() + 10
        while join.thread.is_alive():  # type: ignore[attr-defined]
            assert time.monotonic() < deadline, "the call never returned"
            time.sleep(0.002)
            self.clock.advance(0.5)
        return join()


@pytest.fixture
def lab(world: World, clock: ManualClock) -> Lab:
    return Lab(world, clock)

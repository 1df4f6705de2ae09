"""Background work: every directory and host call runs off the GUI thread, through one facade.

    tasks.run(pool.inventory_all).on_success(self.show).on_failure(self.explain)
    tasks.watch(pool.submit_action(host, act), label="save shop-web01")

The work runs on Python threads (a ThreadPoolExecutor, or a future the core already returns, such
as a host's action queue); its end is announced to the GUI thread by a signal carrying only the
task's number, and the callbacks run there, so no Python object crosses threads through Qt (a
queued Signal(object) from a pool thread has damaged refcounts with PySide6) and no Qt object is
owned by a worker. A task is released as soon as it has been delivered: nothing it carried (a
host's whole answer) outlives the delivery. A failure nobody handles goes to the facade's
default handler (a dialog), so no screen forgets errors. A cancelled task still runs to its end
(a directory bind cannot be interrupted) but its result is dropped.
"""
from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal, Slot

# Workers wait on the network, not the CPU: a slow host must not hold up the others' reads.
MAX_WORKERS = 32


class Task:
    """One piece of background work; configure it right after `Tasks.run` (same event-loop turn:
    the result is delivered on a later turn)."""

    def __init__(self, label: str, future: Future[Any]) -> None:
        self.label = label
        self.started = time.monotonic()
        self.cancelled = False
        self.done = False
        self.ended = 0.0
        self._future: Future[Any] | None = future
        self._success: list[Callable[[Any], None]] = []
        self._failure: Callable[[BaseException], None] | None = None
        self._finally: list[Callable[[], None]] = []

    def on_success(self, fn: Callable[[Any], None]) -> Task:
        self._success.append(fn)
        return self

    def on_failure(self, fn: Callable[[BaseException], None]) -> Task:
        self._failure = fn
        return self

    def on_finished(self, fn: Callable[[], None]) -> Task:
        """Runs after success or failure, not after a cancel."""
        self._finally.append(fn)
        return self

    def cancel(self) -> bool:
        """Deliver nothing of this task any more. True when its work had not started and now
        never will (its future was cancelled); False when it runs on regardless."""
        self.cancelled = True
        future = self._future
        return bool(future is not None and future.cancel())

    @property
    def elapsed(self) -> float:
        return (self.ended or time.monotonic()) - self.started

    @property
    def holds_result(self) -> bool:
        """Whether the task still holds its future (and with it the work's value)."""
        return self._future is not None

    def _deliver(self, default_error_handler: Callable[[BaseException], None]) -> None:
        """In the GUI thread: run the callbacks, then let go of everything."""
        future, self._future = self._future, None
        success, failure, last = self._success, self._failure, self._finally
        self._success, self._failure, self._finally = [], None, []
        self.done, self.ended = True, time.monotonic()
        if future is None or self.cancelled:
            return
        error = future.exception()
        if error is None:
            value = future.result()
            del future
            for fn in success:
                fn(value)
            del value
        else:
            (failure or default_error_handler)(error)
        for then in last:
            then()


class Tasks(QObject):
    """The one way screens start background work."""

    changed = Signal()  # a task started or ended (for busy indicators)
    _ended = Signal(int)  # a task's number, from the thread that finished it

    def __init__(self, default_error_handler: Callable[[BaseException], None],
                 executor: ThreadPoolExecutor | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.default_error_handler = default_error_handler
        self._own_executor = executor is None
        self._executor = executor or ThreadPoolExecutor(MAX_WORKERS,
                                                        thread_name_prefix="hvconsole-task")
        self._numbers = itertools.count(1)
        self._running: dict[int, Task] = {}
        self._ended.connect(self._deliver, Qt.ConnectionType.QueuedConnection)

    def run(self, fn: Callable[..., Any], *args: Any, label: str = "", **kwargs: Any) -> Task:
        """Run `fn(*args, **kwargs)` on a worker thread."""
        return self.watch(self._executor.submit(fn, *args, **kwargs),
                          label or getattr(fn, "__name__", "task"))

    def watch(self, future: Future[Any], label: str) -> Task:
        """Deliver a future's outcome (one the core started, e.g. a host's action queue) to the
        GUI thread as a task."""
        number = next(self._numbers)
        task = Task(label, future)
        self._running[number] = task

        def ended(_: Future[Any]) -> None:  # on the thread that finished the future
            self._ended.emit(number)

        future.add_done_callback(ended)
        self._changed()
        return task

    @property
    def running(self) -> list[Task]:
        return sorted(self._running.values(), key=lambda t: t.started)

    def cancel_all(self) -> None:
        for task in list(self._running.values()):
            task.cancel()

    def shutdown(self) -> None:
        """Cancel everything and stop the workers (at exit): nothing is delivered afterwards."""
        self.cancel_all()
        if self._own_executor:
            self._executor.shutdown(wait=False, cancel_futures=True)

    @Slot(int)
    def _deliver(self, number: int) -> None:
        task = self._running.pop(number, None)
        if task is not None:
            task._deliver(self.default_error_handler)
            self._changed()

    def _changed(self) -> None:
        self.changed.emit()

"""Background work: every directory and host call runs off the GUI thread, through one facade.

    tasks.run(pool.inventory_all).on_success(self.show).on_failure(self.explain)

A `Worker` (QRunnable) runs the function on the global thread pool and reports through a separate
`WorkerSignals` QObject, which lives in the GUI thread, so the slots run there; the worker never
touches a widget. A failure nobody handles goes to the facade's default handler (a dialog), so no
screen forgets errors. A cancelled task still runs to its end (a directory bind cannot be
interrupted) but its result is ignored.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot


RETIRE_AFTER_S = 5.0


class WorkerSignals(QObject):
    result = Signal(object)
    error = Signal(object)  # the exception instance
    finished = Signal()


class Worker(QRunnable):
    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        super().__init__()
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.signals = WorkerSignals()

    def run(self) -> None:
        try:
            value = self.fn(*self.args, **self.kwargs)
        except BaseException as exc:  # noqa: BLE001 - every failure is reported, none kills the pool
            self.signals.error.emit(exc)
        else:
            self.signals.result.emit(value)
        finally:
            self.signals.finished.emit()


class Task(QObject):
    """One piece of background work; configure it right after `Tasks.run` (same event-loop turn).

    A QObject living in the GUI thread, so the worker's signals are delivered to it there.
    """

    def __init__(self, tasks: Tasks, label: str) -> None:
        super().__init__()
        self._tasks = tasks
        self.label = label
        self.started = time.monotonic()
        self.cancelled = False
        self.done = False
        self.ended = 0.0
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

    def cancel(self) -> None:
        self.cancelled = True

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    # -- slots, in the GUI thread
    @Slot(object)
    def _result(self, value: Any) -> None:
        if not self.cancelled:
            for fn in self._success:
                fn(value)

    @Slot(object)
    def _error(self, exc: BaseException) -> None:
        if not self.cancelled:
            (self._failure or self._tasks.default_error_handler)(exc)

    @Slot()
    def _finished(self) -> None:
        self.done = True
        self.ended = time.monotonic()
        self._tasks._retire(self)
        if not self.cancelled:
            for fn in self._finally:
                fn()
        self._tasks._changed()


class Tasks(QObject):
    """The one way screens start background work."""

    changed = Signal()  # a task started or ended (for busy indicators)

    def __init__(self, default_error_handler: Callable[[BaseException], None],
                 pool: QThreadPool | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.default_error_handler = default_error_handler
        self.pool = pool or QThreadPool.globalInstance()
        # Workers wait on the network, not the CPU: an action queued behind others on its host,
        # or a slow host, must not hold up the reads of the rest.
        self.pool.setMaxThreadCount(max(self.pool.maxThreadCount(), 16))
        self._running: set[Task] = set()
        # Finished tasks are kept a little longer: the worker thread may still be returning from
        # the emit that delivered `finished`, and the task (the slot's receiver) and the signals
        # object must not be deleted under it, nor inside the task's own slot.
        self._retired: list[Task] = []

    def _retire(self, task: Task) -> None:
        self._running.discard(task)
        now = time.monotonic()
        self._retired = [t for t in self._retired if now - t.ended < RETIRE_AFTER_S]
        self._retired.append(task)

    def run(self, fn: Callable[..., Any], *args: Any, label: str = "", **kwargs: Any) -> Task:
        task = Task(self, label or getattr(fn, "__name__", "task"))
        worker = Worker(fn, args, kwargs)
        # The signals object must outlive the runnable (auto-deleted by the pool): the task keeps it.
        task._signals = worker.signals  # type: ignore[attr-defined]
        worker.signals.result.connect(task._result)
        worker.signals.error.connect(task._error)
        worker.signals.finished.connect(task._finished)
        self._running.add(task)
        self.pool.start(worker)
        self._changed()
        return task

    @property
    def running(self) -> list[Task]:
        return sorted(self._running, key=lambda t: t.started)

    def cancel_all(self) -> None:
        for task in list(self._running):
            task.cancel()

    def _changed(self) -> None:
        self.changed.emit()

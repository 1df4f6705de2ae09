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
    """Announcements only: the value or exception stays on the worker, read in the GUI thread.

    Python objects sent through a queued Signal(object) from a pool thread have shown refcount
    damage with this PySide6 (a returned `True` ended in "bool_dealloc" and later segfaults).
    """

    result = Signal()
    error = Signal()
    finished = Signal()


class Worker(QRunnable):
    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        super().__init__()
        # The task owns this runnable (and its signals) until well after run() returned; Qt's
        # auto-delete would free it on the pool thread under a Python wrapper still in use.
        self.setAutoDelete(False)
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.value: Any = None
        self.exception: BaseException | None = None
        self.signals = WorkerSignals()

    def run(self) -> None:
        try:
            self.value = self.fn(*self.args, **self.kwargs)
        except BaseException as exc:  # noqa: BLE001 - every failure is reported, none kills the pool
            self.exception = exc
            self.signals.error.emit()
        else:
            self.signals.result.emit()
        finally:
            self.signals.finished.emit()


class Task(QObject):
    """One piece of background work; configure it right after `Tasks.run` (same event-loop turn).

    A QObject living in the GUI thread, so the worker's signals are delivered to it there.
    """

    def __init__(self, tasks: Tasks, label: str, worker: Worker) -> None:
        super().__init__()
        self._tasks = tasks
        self._worker = worker
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
    @Slot()
    def _result(self) -> None:
        if not self.cancelled:
            for fn in self._success:
                fn(self._worker.value)

    @Slot()
    def _error(self) -> None:
        if not self.cancelled:
            exc = self._worker.exception
            assert exc is not None
            (self._failure or self._tasks.default_error_handler)(exc)

    @Slot()
    def _finished(self) -> None:
        self.done = True
        self.ended = time.monotonic()
        self._tasks._retire(self)
        if not self.cancelled:
            for fn in self._finally:
                fn()
        # Drop the callbacks: they hold screens, which must not be kept alive by a retired task.
        self._success, self._failure, self._finally = [], None, []
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
        worker = Worker(fn, args, kwargs)
        task = Task(self, label or getattr(fn, "__name__", "task"), worker)
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

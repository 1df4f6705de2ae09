"""Each refresh learnt into the person's baselines, off the GUI thread, and the deviations that
lasted handed back to the window (console/baseline.py holds the rules)."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime

from PySide6.QtCore import QObject, Signal

from console.baseline import BaselineError, Baselines, Deviation, samples
from console.inventory import VM

Alerts = dict[str, dict[str, str]]  # VM id -> metric -> the sentence to show


class BaselineWatcher(QObject):
    """`observe` after each refresh; `alerts` is emitted with every deviation still open that
    has lasted (an empty dict when none), `failed` once when the file cannot be used."""

    alerts = Signal(object)  # Alerts
    failed = Signal(str)

    def __init__(self, open_baselines: Callable[[], Baselines],
                 now: Callable[[], datetime] = lambda: datetime.now().astimezone(),
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._open = open_baselines
        self._now = now
        self._baselines: Baselines | None = None
        self._broken = False
        # One thread: refreshes are learnt in order, and SQLite sees one writer.
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="baselines")

    def observe(self, vms: Sequence[VM]) -> Future[None] | None:
        if self._broken:
            return None
        # The samples are made in the worker too: 10,000 VMs are 20,000 of them.
        return self._worker.submit(self._observe, self._now(), list(vms))

    def _observe(self, at: datetime, vms: list[VM]) -> None:
        try:
            if self._baselines is None:
                self._baselines = self._open()
            lasted = self._baselines.observe(at, samples(vms))
        except BaselineError as e:
            self._broken = True  # said once; the console works on without baselines
            self.failed.emit(str(e))
            return
        self.alerts.emit(alerts_of(lasted, at))

    def close(self) -> None:
        self._worker.shutdown(wait=True)
        if self._baselines is not None:
            self._baselines.close()


def alerts_of(deviations: Sequence[Deviation], at: datetime) -> Alerts:
    out: Alerts = {}
    for d in deviations:
        if not d.key.startswith("host:"):
            out.setdefault(d.key, {})[d.metric] = d.sentence(at)
    return out

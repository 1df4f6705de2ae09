"""Each refresh learnt into the person's baselines, off the GUI thread, and the deviations that
lasted handed back to the window (console/baseline.py holds the rules)."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime

from PySide6.QtCore import QObject, Signal

from console.baseline import BaselineError, Baselines, Deviation, hour_of_week, samples
from console.inventory import VM, Metered

Alerts = dict[str, dict[str, str]]  # VM id -> metric -> the sentence to show


class BaselineWatcher(QObject):
    """`observe` after each refresh; `alerts` is emitted with every deviation still open that
    has lasted (an empty dict when none), `failed` once when the file cannot be used."""

    alerts = Signal(object)  # Alerts
    failed = Signal(str)
    usual = Signal(str, object)  # the focused VM's id, {metric: Usual or None} at this hour

    def __init__(self, open_baselines: Callable[[], Baselines],
                 now: Callable[[], datetime] = lambda: datetime.now().astimezone(),
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._open = open_baselines
        self._now = now
        self._baselines: Baselines | None = None
        self._broken = False
        self._focus: str | None = None
        self._metered: dict[str, Metered] = {}  # the last metering report of each VM (worker's)
        # One thread: refreshes are learnt in order, and SQLite sees one writer.
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="baselines")

    def observe(self, vms: Sequence[VM]) -> Future[None] | None:
        if self._broken:
            return None
        # The samples are made in the worker too: 10,000 VMs are 20,000 of them.
        return self._worker.submit(self._observe, self._now(), list(vms))

    @property
    def focused(self) -> str | None:
        return self._focus

    def focus(self, vm_id: str | None) -> None:
        """The VM whose details are shown: its usual ranges come with every refresh, and now."""
        self._focus = vm_id
        if vm_id is not None and not self._broken:
            self._worker.submit(self._tell_usual, self._now(), vm_id)

    def _observe(self, at: datetime, vms: list[VM]) -> None:
        try:
            lasted = self._opened().observe(at, samples(vms, self._metered))
        except BaselineError as e:
            self._broken = True  # said once; the console works on without baselines
            self.failed.emit(str(e))
            return
        self.alerts.emit(alerts_of(lasted, at))
        if self._focus is not None:
            self._tell_usual(at, self._focus)

    def _opened(self) -> Baselines:
        if self._baselines is None:
            self._baselines = self._open()
        return self._baselines

    def _tell_usual(self, at: datetime, vm_id: str) -> None:
        try:
            base, how = self._opened(), hour_of_week(at)
            self.usual.emit(vm_id, {m: base.usual(vm_id, m, how) for m in ("cpu", "memory")})
        except BaselineError:
            pass  # _observe says it, once

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

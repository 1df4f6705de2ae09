"""Baselines and alerts: each VM's and host's usual range by hour of the week, and the deviations
that last (the denial-of-service detection Hyper-V's security guidance asks for).

Kept in a local SQLite file per person (no server): one row per object, metric and hour of the
week holding a running mean and variance (Welford), so a year of refreshes costs the same few
rows as a week. A sample far outside the usual range starts a deviation; it is reported once it
has lasted `sustain` (20 minutes by default) and ends when a sample is back in range. Samples
taken during a deviation are not learnt, or a long attack would become the baseline.

An object is its VM id (a VM keeps its baseline when it moves to another cluster node) or
`host:<name>`.
"""
from __future__ import annotations

import math
import re
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from .config import user_data_dir
from .inventory import VM, Metered

HOURS_OF_WEEK = 7 * 24
Rows = dict[tuple[int, int, int], tuple[int, float, float, int]]
DAYS = ("Mondays", "Tuesdays", "Wednesdays", "Thursdays", "Fridays", "Saturdays", "Sundays")


@dataclass(frozen=True)
class Metric:
    """How one figure is judged: `floor` is the least width of the usual range either side of
    the mean (a VM that idles at exactly 2 % must not alert at 3 %), `ratio` the least factor a
    high value must also reach, `unit` how it is written."""
    name: str
    title: str
    unit: str
    floor: float
    ratio: float = 1.0


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("cpu", "CPU", "%", floor=10.0, ratio=3.0),
    Metric("memory", "memory", "MB", floor=256.0, ratio=1.5),
    Metric("network", "network", "KB/s", floor=64.0, ratio=5.0),
    Metric("disk", "disk", "IOPS", floor=50.0, ratio=5.0),
)}
_METRIC_NUMBER = {name: i for i, name in enumerate(METRICS)}  # stored: never reorder METRICS


@dataclass(frozen=True)
class Usual:
    """What a metric usually is at one hour of the week."""
    samples: int
    mean: float
    low: float
    high: float
    zero_share: float  # how often it was exactly 0: a VM whose network is never 0 has gone quiet

    def holds(self, value: float) -> bool:
        if value == 0:
            return self.zero_share >= 0.01
        return self.low <= value <= self.high


@dataclass(frozen=True)
class Deviation:
    key: str
    name: str  # the VM's or host's name when it was seen
    metric: str
    value: float
    usual: Usual
    since: datetime
    hour_of_week: int

    @property
    def kind(self) -> str:
        return "high" if self.value > self.usual.high else "low"

    def lasted(self, now: datetime) -> timedelta:
        return now - self.since

    def sentence(self, now: datetime) -> str:
        m = METRICS[self.metric]
        minutes = int(self.lasted(now).total_seconds() // 60)
        day, hour = DAYS[self.hour_of_week // 24], self.hour_of_week % 24
        if self.value == 0:
            what = f"{self.name}: no {m.title} for {minutes} min"
        else:
            what = f"{self.name}: {m.title} {_num(self.value)} {m.unit} for {minutes} min"
        return (f"{what}, usually {_num(self.usual.mean)} {m.unit} "
                f"({_num(self.usual.low)}–{_num(self.usual.high)}) on {day} at {hour:02d}:00.")


def _num(x: float) -> str:
    return f"{x:.0f}" if abs(x) >= 10 or x == int(x) else f"{x:.1f}"


def hour_of_week(at: datetime) -> int:
    """0 is Monday 00:00-00:59 in local time: people's weeks (office hours, nightly jobs) are local."""
    local = at.astimezone()
    return local.weekday() * 24 + local.hour


def samples(vms: Iterable[VM], last: dict[str, Metered] | None = None
            ) -> list[tuple[str, str, str, float]]:
    """One refresh's samples: CPU and memory of each running VM (a stopped VM's zero is no news),
    each host's memory taken by its running VMs as `host:<name>`, and, given `last` (the metering
    reports of the refresh before, updated here), each metered VM's network traffic in KB/s
    between the two: metering's total only grows, until it is reset or turned off and on."""
    out: list[tuple[str, str, str, float]] = []
    hosts: dict[str, float] = {}
    for vm in vms:
        if vm.state != "Running" or vm.unreadable:
            continue
        out.append((vm.id, vm.name, "cpu", float(vm.cpu_pct)))
        out.append((vm.id, vm.name, "memory", float(vm.memory_bytes >> 20)))
        hosts[vm.host] = hosts.get(vm.host, 0.0) + (vm.memory_bytes >> 20)
        if last is not None and vm.metered is not None:
            before, now = last.get(vm.id), vm.metered
            last[vm.id] = now
            if before is not None and now.seconds > before.seconds \
                    and now.network_mb >= before.network_mb:
                rate = (now.network_mb - before.network_mb) * 1024 / (now.seconds - before.seconds)
                out.append((vm.id, vm.name, "network", rate))
    out += [(f"host:{h.lower()}", h, "memory", mb) for h, mb in sorted(hosts.items())]
    return out


def path_for(sid: str) -> Path:
    """The person's baseline file: under the user's data folder, one per account (by SID), so
    two people sharing a workstation profile never mix their VMs' baselines."""
    safe = re.sub(r"[^A-Za-z0-9-]", "_", sid)
    return user_data_dir() / f"baseline-{safe}.sqlite"


class BaselineError(Exception):
    """The baseline file cannot be opened or written."""


class Baselines:
    """The usual ranges of one person's objects, and the deviations open now.

    `min_samples`: an hour of the week knows its usual range after that many samples (an hour of
    refreshes a minute apart); until then the object's all-week range stands in, and with fewer
    samples than that nothing is judged. `spread`: how many standard deviations from the mean the
    usual range reaches.
    """

    def __init__(self, path: Path, sustain: timedelta = timedelta(minutes=20),
                 min_samples: int = 30, spread: float = 4.0) -> None:
        self.path = path
        self.sustain = sustain
        self.min_samples = min_samples
        self.spread = spread
        self._open: dict[tuple[str, str], Deviation] = {}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            # Objects by a small number, metrics by their place in METRICS: a row is about 30
            # bytes, so 169 rows a VM and metric stay affordable for an administrator's 10,000 VMs.
            self._db.executescript(
                "CREATE TABLE IF NOT EXISTS objects (id INTEGER PRIMARY KEY, key TEXT UNIQUE NOT NULL);"
                "CREATE TABLE IF NOT EXISTS usual (obj INTEGER, metric INTEGER, how INTEGER, "
                "n INTEGER, mean REAL, m2 REAL, zeros INTEGER, PRIMARY KEY (obj, metric, how)) "
                "WITHOUT ROWID;")
            self._ids = dict(self._db.execute("SELECT key, id FROM objects"))
        except (OSError, sqlite3.Error) as e:
            raise BaselineError(f"The baseline file {path} cannot be used: {e}.") from e

    def close(self) -> None:
        self._db.close()

    def usual(self, key: str, metric: str, how: int) -> Usual | None:
        """The usual range at hour `how` of the week, or all week while that hour knows too little."""
        return self._pick(self._rows(how, key, metric), key, metric, how)

    def _rows(self, how: int, key: str | None = None, metric: str | None = None) -> Rows:
        query = "SELECT obj, metric, how, n, mean, m2, zeros FROM usual WHERE how IN (?, -1)"
        args: tuple[object, ...] = (how,)
        if key is not None and metric is not None:
            query += " AND obj=? AND metric=?"
            args += (self._ids.get(key, -1), _METRIC_NUMBER[metric])
        return {(o, m, h): (n, mean, m2, z) for o, m, h, n, mean, m2, z in self._db.execute(query, args)}

    def _pick(self, rows: Rows, key: str, metric: str, how: int) -> Usual | None:
        obj = self._ids.get(key)
        if obj is None:
            return None
        for h in (how, -1):
            row = rows.get((obj, _METRIC_NUMBER[metric], h))
            if row is not None and row[0] >= self.min_samples:
                return self._range(metric, *row)
        return None

    def _range(self, metric: str, n: int, mean: float, m2: float, zeros: int) -> Usual:
        sd = math.sqrt(m2 / (n - 1)) if n > 1 else 0.0
        width = max(self.spread * sd, METRICS[metric].floor)
        high = max(mean + width, mean * METRICS[metric].ratio)
        return Usual(n, mean, max(0.0, mean - width), high, zeros / n)

    def observe(self, at: datetime, samples: Iterable[tuple[str, str, str, float]]) -> list[Deviation]:
        """One refresh's samples, (key, name, metric, value) each: learn those in range, follow
        the deviations, and return those that have lasted `sustain` and are still open."""
        how = hour_of_week(at)
        rows = self._rows(how)  # one query for the whole refresh, not one a sample
        learn: list[tuple[str, str, float]] = []
        seen: set[tuple[str, str]] = set()
        for key, name, metric, value in samples:
            if metric not in METRICS:
                raise ValueError(f"unknown metric {metric!r}; known: {', '.join(METRICS)}")
            seen.add((key, metric))
            usual = self._pick(rows, key, metric, how)
            if usual is not None and not usual.holds(value):
                open_ = self._open.get((key, metric))
                since = open_.since if open_ else at
                self._open[(key, metric)] = Deviation(key, name, metric, value, usual, since, how)
                continue
            self._open.pop((key, metric), None)
            learn.append((key, metric, value))
        # An object that was not sampled (stopped, host silent) closes nothing and opens nothing.
        self._learn(how, learn)
        return [d for k, d in self._open.items() if k in seen and at - d.since >= self.sustain]

    def open_deviations(self) -> list[Deviation]:
        return list(self._open.values())

    def _learn(self, how: int, values: list[tuple[str, str, float]]) -> None:
        if not values:
            return
        try:
            with self._db:
                new = sorted({key for key, _, _ in values if key not in self._ids})
                self._db.executemany("INSERT INTO objects (key) VALUES (?)", [(k,) for k in new])
                if new:
                    self._ids = dict(self._db.execute("SELECT key, id FROM objects"))
                self._db.executemany(
                    "INSERT INTO usual VALUES (?, ?, ?, 1, ?, 0, ?) "
                    "ON CONFLICT (obj, metric, how) DO UPDATE SET "
                    # Welford's update; every right-hand side reads the row's old values
                    "n = n + 1, mean = mean + (excluded.mean - mean) / (n + 1), "
                    "m2 = m2 + (excluded.mean - mean) * "
                    "(excluded.mean - (mean + (excluded.mean - mean) / (n + 1))), "
                    "zeros = zeros + excluded.zeros",
                    [(self._ids[key], _METRIC_NUMBER[metric], h, value, int(value == 0))
                     for key, metric, value in values
                     for h in (how, -1)])  # the hour of the week and the whole week
        except sqlite3.Error as e:
            raise BaselineError(f"The baseline file {self.path} cannot be written: {e}.") from e

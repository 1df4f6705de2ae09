"""Baselines by hour of the week and the deviations that last."""
from __future__ import annotations

import random
import statistics
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from console.baseline import Baselines, BaselineError, hour_of_week

# A Tuesday at 10:00, local time (the hour of the week is the person's local hour).
TUESDAY_10 = datetime(2026, 12, 8, 10, 0).astimezone()
VM = "6a1f0c36-8f0e-4a3c-9d4e-0c1b2a3d4e5f"


def learn(b: Baselines, values: list[float], metric: str = "cpu", at: datetime = TUESDAY_10,
          key: str = VM) -> None:
    for i, v in enumerate(values):
        assert b.observe(at + timedelta(seconds=i), [(key, "shop-web", metric, v)]) == []


def test_hour_of_week_starts_monday_midnight_local() -> None:
    assert hour_of_week(datetime(2026, 12, 7, 0, 30).astimezone()) == 0  # a Monday
    assert hour_of_week(TUESDAY_10) == 24 + 10
    assert hour_of_week(datetime(2026, 12, 13, 23, 59).astimezone()) == 167  # a Sunday


def test_the_usual_range_is_the_running_mean_and_spread(tmp_path: Path) -> None:
    rng = random.Random(7)
    values = [rng.gauss(40, 6) for _ in range(200)]
    b = Baselines(tmp_path / "b.sqlite", min_samples=30, spread=4.0)
    learn(b, values)
    usual = b.usual(VM, "cpu", hour_of_week(TUESDAY_10))
    assert usual is not None and usual.samples == 200
    assert usual.mean == pytest.approx(statistics.fmean(values))
    sd = statistics.stdev(values)
    assert usual.low == pytest.approx(statistics.fmean(values) - 4 * sd)
    # CPU's high end is also at least 3x the mean, the "CPU 5x its usual" kind of rule
    assert usual.high == pytest.approx(max(statistics.fmean(values) + 4 * sd, 3 * statistics.fmean(values)))


def test_nothing_is_judged_before_enough_samples(tmp_path: Path) -> None:
    b = Baselines(tmp_path / "b.sqlite", min_samples=30, sustain=timedelta(0))
    learn(b, [10.0] * 29)
    assert b.usual(VM, "cpu", hour_of_week(TUESDAY_10)) is None
    assert b.observe(TUESDAY_10, [(VM, "shop-web", "cpu", 95.0)]) == []  # learnt, not judged
    assert b.open_deviations() == []


def test_a_deviation_is_reported_once_it_has_lasted(tmp_path: Path) -> None:
    b = Baselines(tmp_path / "b.sqlite", min_samples=30, sustain=timedelta(minutes=20))
    learn(b, [8.0, 10.0, 12.0] * 20)
    start = TUESDAY_10 + timedelta(minutes=5)
    for minute in range(20):
        assert b.observe(start + timedelta(minutes=minute), [(VM, "shop-web", "cpu", 60.0)]) == []
    assert len(b.open_deviations()) == 1  # open, not yet reported
    [d] = b.observe(start + timedelta(minutes=20), [(VM, "shop-web", "cpu", 62.0)])
    assert (d.key, d.metric, d.kind, d.since, d.value) == (VM, "cpu", "high", start, 62.0)
    sentence = d.sentence(start + timedelta(minutes=20))
    assert sentence.startswith("shop-web: CPU 62 % for 20 min, usually 10 % (0–30) on Tuesdays at 10:00")
    # back in range: closed, and a later spike starts a new one from its own start
    assert b.observe(start + timedelta(minutes=21), [(VM, "shop-web", "cpu", 11.0)]) == []
    assert b.open_deviations() == []


def test_samples_during_a_deviation_are_not_learnt(tmp_path: Path) -> None:
    b = Baselines(tmp_path / "b.sqlite", min_samples=30)
    learn(b, [10.0] * 40)
    how = hour_of_week(TUESDAY_10)
    for minute in range(100):
        b.observe(TUESDAY_10 + timedelta(minutes=minute, seconds=30), [(VM, "shop-web", "cpu", 90.0)])
    usual = b.usual(VM, "cpu", how)
    assert usual is not None and (usual.samples, usual.mean) == (40, 10.0)


def test_zero_when_it_never_is_zero_is_a_deviation(tmp_path: Path) -> None:
    b = Baselines(tmp_path / "b.sqlite", min_samples=30, sustain=timedelta(0))
    learn(b, [30.0, 50.0] * 20, metric="network")  # 30-50 KB/s, never 0
    [d] = b.observe(TUESDAY_10 + timedelta(minutes=1), [(VM, "shop-web", "network", 0.0)])
    assert d.kind == "low"
    assert d.sentence(TUESDAY_10 + timedelta(minutes=21)).startswith("shop-web: no network for 20 min")
    # a VM that is often at 0 is not alerted for being at 0
    other = "c0ffee00-0000-4000-8000-000000000001"
    learn(b, [0.0, 40.0] * 20, metric="network", key=other)
    assert b.observe(TUESDAY_10 + timedelta(minutes=2), [(other, "build-01", "network", 0.0)]) == []


def test_the_week_stands_in_for_an_hour_that_knows_too_little(tmp_path: Path) -> None:
    b = Baselines(tmp_path / "b.sqlite", min_samples=30, sustain=timedelta(0))
    learn(b, [10.0] * 40)  # Tuesdays at 10
    wednesday_3 = TUESDAY_10 + timedelta(hours=17)
    assert b.usual(VM, "cpu", hour_of_week(wednesday_3)) is not None  # all week: 40 samples
    assert len(b.observe(wednesday_3, [(VM, "shop-web", "cpu", 80.0)])) == 1


def test_an_object_not_sampled_keeps_its_deviation_but_is_not_reported(tmp_path: Path) -> None:
    b = Baselines(tmp_path / "b.sqlite", min_samples=30, sustain=timedelta(0))
    learn(b, [10.0] * 40)
    assert len(b.observe(TUESDAY_10, [(VM, "shop-web", "cpu", 80.0)])) == 1
    assert b.observe(TUESDAY_10 + timedelta(minutes=1), []) == []  # its host did not answer
    assert len(b.open_deviations()) == 1


def test_the_baseline_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "person" / "baseline.sqlite"
    b = Baselines(path, min_samples=30)
    learn(b, [20.0] * 35, metric="memory")
    b.close()
    again = Baselines(path, min_samples=30)
    usual = again.usual(VM, "memory", hour_of_week(TUESDAY_10))
    assert usual is not None and (usual.samples, usual.mean) == (35, 20.0)


def test_an_unusable_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "dir.sqlite").mkdir()
    with pytest.raises(BaselineError, match=r"The baseline file .*dir\.sqlite cannot be used"):
        Baselines(tmp_path / "dir.sqlite")


def test_an_unknown_metric_is_named(tmp_path: Path) -> None:
    b = Baselines(tmp_path / "b.sqlite")
    with pytest.raises(ValueError, match="unknown metric 'temperature'; known: cpu, memory"):
        b.observe(TUESDAY_10, [(VM, "shop-web", "temperature", 1.0)])


def test_a_refresh_gives_running_vms_and_each_hosts_memory() -> None:
    from console.baseline import samples
    from console.inventory import VM as InventoryVM

    mib = 1 << 20
    vms = [InventoryVM(host="HV01", id="a", name="web", state="Running", cpu_pct=12, memory_bytes=2048 * mib),
           InventoryVM(host="HV01", id="b", name="db", state="Running", cpu_pct=40, memory_bytes=4096 * mib),
           InventoryVM(host="HV01", id="c", name="off", state="Off", cpu_pct=0, memory_bytes=0),
           InventoryVM(host="HV02", id="d", name="bad", state="Running", unreadable="no config")]
    assert samples(vms) == [("a", "web", "cpu", 12.0), ("a", "web", "memory", 2048.0),
                            ("b", "db", "cpu", 40.0), ("b", "db", "memory", 4096.0),
                            ("host:hv01", "HV01", "memory", 6144.0)]


def test_each_person_has_a_file_of_their_own(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from console import baseline

    monkeypatch.setattr(baseline, "user_data_dir", lambda: tmp_path)
    assert baseline.path_for("S-1-5-21-1000-2000-3000-1101") == \
        tmp_path / "baseline-S-1-5-21-1000-2000-3000-1101.sqlite"
    assert baseline.path_for("../../etc/x").parent == tmp_path


def test_network_is_the_rate_between_two_metering_reports() -> None:
    from console.baseline import samples
    from console.inventory import VM as InventoryVM, Metered

    def web(seconds: int, network_mb: int) -> InventoryVM:
        return InventoryVM(host="HV01", id="a", name="web", state="Running", cpu_pct=5,
                           memory_bytes=1 << 30, metered=Metered(seconds, 2400, 1024, network_mb))

    last: dict = {}
    assert [s for s in samples([web(600, 100)], last) if s[2] == "network"] == []  # one report: no rate
    assert ("a", "web", "network", 120 * 1024 / 60) in samples([web(660, 220)], last)
    # metering reset (its duration went back): no rate this time, the next one counts again
    assert [s for s in samples([web(30, 5)], last) if s[2] == "network"] == []
    assert ("a", "web", "network", 1024 / 30) in samples([web(60, 6)], last)
    # without the reports of the refresh before, no network sample at all
    assert [s for s in samples([web(120, 9)]) if s[2] == "network"] == []


def test_the_lab_reports_metering_with_the_inventory_where_it_is_on() -> None:
    from console.inventory import VM as InventoryVM
    from lab.world import load_world

    host = load_world().host("HV02").host
    host.operation("metering", {"enable": False})
    vms = [InventoryVM.from_json("HV02", v) for v in host.operation("inventory", {})["vms"]]
    assert all(vm.metered is None for vm in vms)
    host.operation("metering", {"enable": True})
    vms = [InventoryVM.from_json("HV02", v) for v in host.operation("inventory", {})["vms"]]
    running = [vm for vm in vms if vm.state == "Running"]
    assert running and all(vm.metered is not None and vm.metered.network_mb > 0 for vm in running)

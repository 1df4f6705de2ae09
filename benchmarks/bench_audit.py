"""Cost of the audit trail: one fsynced append (paid before every action) and a full verify."""
from __future__ import annotations

from pathlib import Path

import pytest

from console.audit import AuditTrail
from console.identity import Identity

OLIVIA = Identity(sid="S-1-5-21-1000-2000-3000-1101", name="LAB\\olivia")
WEB01 = ("HV01", "42e4aaca-7231-5411-b96b-d03849b0dae1", "shop-web01")
RECORDS = 10_000


@pytest.fixture(scope="module")
def big_trail(tmp_path_factory: pytest.TempPathFactory) -> AuditTrail:
    trail = AuditTrail(tmp_path_factory.mktemp("audit") / "audit.jsonl", workstation="WS")
    for n in range(RECORDS // 2):
        cid = trail.decided(OLIVIA, "vm.start", *WEB01, {"n": n}, True, "owner on shop")
        trail.outcome(cid, OLIVIA, "vm.start", *WEB01, "ok")
    return trail


def test_append_one_decision(benchmark, tmp_path: Path) -> None:
    trail = AuditTrail(tmp_path / "audit.jsonl", workstation="WS")
    benchmark(trail.decided, OLIVIA, "vm.start", *WEB01, {}, True, "owner on shop")
    assert trail.verify().ok


def test_append_to_a_long_trail(benchmark, big_trail: AuditTrail) -> None:
    # Only the tail is read under the lock, so the cost must not grow with the file.
    benchmark(big_trail.decided, OLIVIA, "vm.start", *WEB01, {}, True, "owner on shop")


def test_verify_10k_records(benchmark, big_trail: AuditTrail) -> None:
    result = benchmark(big_trail.verify)
    assert result.ok and result.count >= RECORDS


def test_records_of_one_user_10k(benchmark, big_trail: AuditTrail) -> None:
    assert len(benchmark(big_trail.records, OLIVIA.sid)) >= RECORDS

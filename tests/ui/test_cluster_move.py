"""A clustered role known by its id wherever it runs: after a live migration between two nodes
of a cluster the window shows it on its new node in the same row, with its rights, its
documentation and the history of this session."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from console.audit import AuditTrail
from console.paths import LAB_DATA
from console.policy import Policy
from console.session import Setup
from lab.directory import LabDirectory
from ui.app import Services

from .labparts import start_lab
from .test_mainwindow import Opened, World


@pytest.fixture
def cluster_world(tmp_path: Path) -> Iterator[World]:
    with start_lab() as lab:
        config = lab.config()
        nodes = {"HV01", "HV02"}
        config = replace(config, hosts=[replace(h, cluster="CL01") if h.name in nodes else h
                                        for h in config.hosts])
        for name in nodes:
            lab.world.host(name).cluster = "CL01"
        services = Services(
            Setup(config, Policy.load(LAB_DATA / "policy.toml"), LabDirectory(),
                  AuditTrail(tmp_path / "audit.jsonl")),
            settings=QSettings(str(tmp_path / "window.ini"), QSettings.Format.IniFormat))
        yield World(lab, services)


def test_a_clustered_role_keeps_its_row_rights_and_history_on_its_new_node(
        qtbot, cluster_world: World) -> None:  # type: ignore[no-untyped-def]
    o = Opened(qtbot, cluster_world, "olivia")
    try:
        o.load()
        before = o.row("shop-web01")
        assert before.vm.host == "HV01" and before.vm.cluster == "CL01"
        cluster_world.lab.world.host("HV01").host.vm(before.vm.id).clustered = True
        with qtbot.waitSignal(o.window.refreshed, timeout=30_000):
            o.window.refresh()
        seen = len(o.window.history.of(before.vm.key).cpu)
        cluster_world.lab.world.migrate(before.vm.id, "HV02")
        with qtbot.waitSignal(o.window.refreshed, timeout=30_000):
            o.window.refresh()
        after = o.row("shop-web01")
        assert (after.vm.host, after.vm.key, after.vm.clustered) == ("HV02", before.vm.key, True)
        assert [r.vm.name for r in o.window.model.rows].count("shop-web01") == 1
        assert after.privileges == before.privileges and after.doc == before.doc
        assert len(o.window.history.of(after.vm.key).cpu) == seen + 1  # the same history, on
    finally:
        o.close()

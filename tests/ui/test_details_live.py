"""The details pane's host reads: a VM's hardware and screen, read in workers when its details
are opened (and its screen again while they stay open), never for a VM the person may not view,
and never shown for a VM no longer selected. The host side is a lab host running the real
scripts; the main window's own wiring at the end runs against the lab's WinRM hosts."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
from PySide6.QtCore import QSettings

from console.audit import AuditTrail
from console.details import Thumbnail, VMDetails
from console.errors import HostError
from console.inventory import VM
from console.paths import LAB_DATA
from console.policy import Policy
from console.session import Setup
from lab.hyperv import Durations, Host
from lab.world import load_world
from ui.app import Services
from ui.details import DetailsPane
from ui.mainwindow import MainWindow
from ui.models import VMRow
from ui.signin import DEMO_ACCOUNTS
from ui.tasks import Tasks

from lab.directory import LabDirectory

from .labparts import start_lab

WEB01 = "42e4aaca-7231-5411-b96b-d03849b0dae1"  # HV01, Running
APP01 = "a8c164c6-ea2b-525b-b0de-c3c08e182c75"  # HV01, Running
OFFICE_FILES = "bc797c1d-65e1-5032-8525-d184e732f820"  # HV01 (its Replica copy), Off


class LabClient:
    """A host client over a lab host's own scripts (no network), counting its reads; `gate`
    holds every read until it is set."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.reads: list[tuple[str, str]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.fail: str | None = None

    def details(self, vm_id: str) -> VMDetails:
        self.reads.append(("details", vm_id))
        self.gate.wait(10)
        if self.fail:
            raise HostError(self.fail, host=self.host.name)
        return VMDetails.from_json(self.host.name, self.host.operation("details", {"vm_id": vm_id}))

    def thumbnail(self, vm_id: str, width: int = 160, height: int = 120) -> Thumbnail:
        self.reads.append(("thumbnail", vm_id))
        self.gate.wait(10)
        if self.fail:
            raise HostError(self.fail, host=self.host.name)
        return Thumbnail.from_json(self.host.name, self.host.operation(
            "thumbnail", {"vm_id": vm_id, "width": width, "height": height}))


@pytest.fixture
def pane(qtbot) -> Iterator[tuple[DetailsPane, LabClient, Tasks]]:
    world = load_world(durations=Durations.instant())
    client = LabClient(world.hosts[0].host)
    errors: list[BaseException] = []
    tasks = Tasks(errors.append)
    details = DetailsPane()
    qtbot.addWidget(details)
    details.attach(tasks, lambda host: client)
    assert details.live is not None
    details.live.timer.setInterval(100)  # the screen every 0.1 s instead of every 5 s
    details.resize(400, 700)
    details.show()
    yield details, client, tasks
    assert details.live is not None
    details.live.stop()
    client.gate.set()
    qtbot.waitUntil(lambda: not tasks.running, timeout=10_000)
    tasks.shutdown()
    assert errors == []


def _row(client: LabClient, vm_id: str, privileges: frozenset[str] = frozenset({"vm.view"}),
         **changes: str) -> VMRow:
    lab_vm = client.host.vm(vm_id)
    vm = VM(host=client.host.name, id=vm_id, name=lab_vm.name, state=lab_vm.state, generation=2)
    return VMRow(replace(vm, **changes), decision=SimpleNamespace(privileges=privileges))


def test_opening_a_vm_reads_its_details_once_and_its_screen_while_open(qtbot, pane) -> None:
    details, client, tasks = pane
    row = _row(client, WEB01)
    details.show_rows([row])
    qtbot.waitUntil(lambda: details.hardware.fields["guest_os"].text() != "", timeout=10_000)
    assert details.hardware.fields["guest_os"].text() == "Windows Server 2022 Datacenter"
    assert details.hardware.fields["processors"].text().isdigit()
    assert "IP 10." in details.hardware.network.text()
    qtbot.waitUntil(lambda: details.screen_view.image is not None, timeout=10_000)
    assert details.screen_view.image.width() == 160
    # The screen is read again while the details stay open; the details are not.
    qtbot.waitUntil(lambda: client.reads.count(("thumbnail", WEB01)) >= 3, timeout=10_000)
    details.show_rows([row])  # a refresh of the same VM, same state: nothing read again
    qtbot.wait(50)
    assert client.reads.count(("details", WEB01)) == 1
    # A change of state reads the details again.
    details.show_rows([_row(client, WEB01, state="Paused")])
    qtbot.waitUntil(lambda: client.reads.count(("details", WEB01)) == 2, timeout=10_000)
    # Another tab shown: the screen is not read meanwhile.
    details.tabs.setCurrentWidget(details.hardware)
    qtbot.waitUntil(lambda: not tasks.running, timeout=10_000)
    shots = client.reads.count(("thumbnail", WEB01))
    qtbot.wait(300)
    assert client.reads.count(("thumbnail", WEB01)) == shots
    details.tabs.setCurrentIndex(0)
    qtbot.waitUntil(lambda: client.reads.count(("thumbnail", WEB01)) > shots, timeout=10_000)
    # Nothing selected: the screen stops.
    details.show_rows([])
    qtbot.waitUntil(lambda: not tasks.running, timeout=10_000)
    shots = client.reads.count(("thumbnail", WEB01))
    qtbot.wait(300)
    assert client.reads.count(("thumbnail", WEB01)) == shots
    assert details.screen_view.image is None


def test_moving_through_the_list_reads_only_where_the_selection_rests(qtbot, pane) -> None:
    details, client, tasks = pane
    for vm_id in (WEB01, APP01, OFFICE_FILES, WEB01, APP01):  # arrow keys through the table
        details.show_rows([_row(client, vm_id)])
    qtbot.waitUntil(lambda: details.hardware.fields["version"].text() != "", timeout=10_000)
    qtbot.waitUntil(lambda: not tasks.running, timeout=10_000)
    assert [r for r in client.reads if r[0] == "details"] == [("details", APP01)]


def test_no_read_without_vm_view_and_no_screen_of_an_off_vm(qtbot, pane) -> None:
    details, client, _ = pane
    details.show_rows([_row(client, WEB01, privileges=frozenset())])
    qtbot.wait(200)
    assert client.reads == []
    assert "vm.view" in details.hardware.note.text()
    details.show_rows([_row(client, OFFICE_FILES)])
    qtbot.waitUntil(lambda: details.hardware.fields["version"].text() != "", timeout=10_000)
    qtbot.wait(300)
    assert ("thumbnail", OFFICE_FILES) not in client.reads
    assert details.screen_view.text() == "No screen: the VM is off."


def test_an_answer_for_a_vm_no_longer_shown_is_dropped(qtbot, pane) -> None:
    details, client, tasks = pane
    client.gate.clear()  # the host is slow
    details.show_rows([_row(client, WEB01)])
    qtbot.waitUntil(lambda: ("details", WEB01) in client.reads, timeout=10_000)
    details.show_rows([_row(client, APP01)])
    client.gate.set()
    qtbot.waitUntil(lambda: not tasks.running and details.hardware.fields["version"].text() != "",
                    timeout=10_000)
    assert details.live is not None and details.live.details is not None
    assert details.live.details.id == APP01
    assert details.screen_view.shown is None or details.screen_view.shown.vm_id == APP01


def test_a_failed_read_says_why_and_stops_asking(qtbot, pane) -> None:
    details, client, tasks = pane
    client.fail = "HV01 is not responding"
    details.show_rows([_row(client, WEB01)])
    qtbot.waitUntil(lambda: "not responding" in details.hardware.note.text(), timeout=10_000)
    qtbot.waitUntil(lambda: "not responding" in details.screen_view.text(), timeout=10_000)
    shots = client.reads.count(("thumbnail", WEB01))
    qtbot.wait(300)
    assert client.reads.count(("thumbnail", WEB01)) == shots  # not every tick after a failure


def test_the_memory_cell_says_what_is_assigned_and_what_the_guest_asks_for(qtbot) -> None:
    from PySide6.QtCore import Qt

    from ui.models import COL_MEMORY, VMTableModel
    model = VMTableModel()
    vm = VM(host="HV01", id=WEB01, name="shop-web01", state="Running", memory_bytes=4 << 30,
            memory_demand_bytes=3 << 29)
    model.set_rows([VMRow(vm), VMRow(replace(vm, id=APP01, memory_demand_bytes=0))])
    tip = model.index(0, COL_MEMORY).data(Qt.ItemDataRole.ToolTipRole)
    assert "Assigned: 4.0 GB" in tip and "Demand: 1.5 GB" in tip
    assert "not reported" in model.index(1, COL_MEMORY).data(Qt.ItemDataRole.ToolTipRole)


def test_the_main_window_shows_a_vms_hardware_and_screen(qtbot, tmp_path: Path) -> None:
    with start_lab() as lab:
        config = lab.config()
        services = Services(
            Setup(config, Policy.load(LAB_DATA / "policy.toml"), LabDirectory(),
                  AuditTrail(tmp_path / "audit.jsonl")),
            settings=QSettings(str(tmp_path / "window.ini"), QSettings.Format.IniFormat))
        password = next(a.password for a in DEMO_ACCOUNTS if a.user == "olivia")
        session = services.open_session(services.directory.sign_in("olivia", password), password)
        errors: list[BaseException] = []
        tasks = Tasks(errors.append)
        window = MainWindow(services, session, tasks)
        try:
            with qtbot.waitSignal(window.refreshed, timeout=30_000):
                window.start()
            window.refresh_timer.stop()
            assert window.select_vm("shop-web01")
            hardware = window.details.hardware
            qtbot.waitUntil(lambda: hardware.fields["guest_os"].text().startswith("Windows"),
                            timeout=30_000)
            qtbot.waitUntil(lambda: window.details.screen_view.image is not None, timeout=30_000)
            assert "SCSI 0:0" in hardware.disks.text()
        finally:
            window.refresh_timer.stop()
            window.details.live.stop() if window.details.live else None
            qtbot.waitUntil(lambda: not tasks.running, timeout=30_000)
            window.close()
            window.deleteLater()
            qtbot.wait(10)
            session.close()
        assert errors == []


def test_metering_is_drawn_across_the_memory_chart(qtbot, pane) -> None:
    from lab import vmdetail
    details, client, _ = pane
    world = load_world(durations=Durations.instant())
    host, metered = next((h.host, vm) for h in world.hosts for vm in h.host.vms
                         if vm.running and vmdetail.hardware(h.host, vm).metering)
    client.host = host  # the pane asks this client whatever the host
    details.show_rows([_row(client, metered.id)])
    qtbot.waitUntil(lambda: details.metered.text() != "", timeout=10_000)
    assert "Hyper-V resource metering" in details.metered.text()
    assert details.memory_chart.reference == metered.memory_bytes >> 20
    assert "metering" in details.memory_chart.toolTip()
    other = next(vm for vm in host.vms if vm.id != metered.id)
    details.show_rows([_row(client, other.id)])  # another VM: no line of the one before
    assert details.memory_chart.reference is None

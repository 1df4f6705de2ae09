"""Host capacity against the lab: memory and storage in the host status bar and a host details
view, from the hosts' inventories (one call a host a refresh)."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from console.inventory import HostCapacity, Storage
from ui.hosts import capacity_lines, capacity_short, is_low, shortages
from ui.text import human_bytes

from . import test_mainwindow

world = test_mainwindow.world
open_as = test_mainwindow.open_as
GiB = 1024 ** 3


def test_the_status_bar_shows_each_hosts_free_memory_and_storage(open_as, qtbot) -> None:
    adam = open_as("adam")
    window, bar = adam.window, adam.window.hosts_bar
    hv03 = bar.capacity["hv03"]
    # HV03: 48 GB, of which the host keeps 8 and its running VMs 26 (lab.toml).
    assert (hv03.memory_total_bytes, hv03.memory_free_bytes) == (48 * GiB, 14 * GiB)
    assert [s.path for s in hv03.storage] == ["D:\\"] and hv03.storage[0].total_bytes == 1024 * GiB
    # D: is nearly full (HV03's volume has no room for another checkpoint): marked.
    figures = f" · ⚠ 14.0 GB RAM, D:\\ {human_bytes(hv03.storage[0].free_bytes or 0)} free"
    window.show()
    window.resize(1600, 900)
    qtbot.waitUntil(lambda: bar.width() > 1400)
    text = bar.labels["hv03"].text()
    assert text.startswith("● HV03: ok") and text.endswith(figures)
    tooltip = bar.labels["hv03"].toolTip()
    assert "14.0 GB of 48.0 GB memory free" in tooltip and "Click for its details" in tooltip
    # Too narrow for every figure: the status alone, the figures stay in the tooltip.
    window.resize(700, 600)
    qtbot.waitUntil(lambda: not bar.labels["hv03"].text().endswith(figures))
    assert bar.labels["hv03"].text().startswith("● HV03: ok")
    assert "48.0 GB memory free" in bar.labels["hv03"].toolTip()


def test_the_host_details_view(open_as, qtbot) -> None:
    olivia = open_as("olivia")
    window = olivia.window
    label = window.hosts_bar.labels["hv01"]
    QTest.mouseClick(label, Qt.MouseButton.LeftButton)
    view = window.host_details["hv01"]
    assert view.isVisible() and view.windowTitle() == "Host HV01"
    assert view.memory.text() == "92.0 GB of 128.0 GB memory free"
    assert view.memory_bar.value() == 28  # 36 of 128 GB used
    assert view.storage.rowCount() == 1
    row = [view.storage.index(0, c).data() for c in range(view.storage.columnCount())]
    assert row[0] == "D:\\" and row[1] == "volume" and row[-1].endswith("%")
    # The VMs she may see there, by state, and when the host reported the figures.
    assert view.vms.text().startswith(f"{len(window.model.rows_of('HV01'))} you may see: ")
    assert view.warnings.isHidden()  # HV01 has room
    hv03 = window.open_host_details("HV03")
    assert hv03 is not None and "D:\\ is nearly full (under 1% free)" in hv03.warnings.text()
    assert "As the host reported them at " in view.note.text()
    # The same view again, kept up to date by the next refresh; the menu opens the selected VM's.
    assert window.open_host_details("HV01") is view
    with qtbot.waitSignal(window.refreshed, timeout=30_000):
        window.refresh()
    assert view.memory.text() == "92.0 GB of 128.0 GB memory free"
    olivia.select("shop-web02")  # on HV02
    menu = next(a for a in window.menuBar().actions() if a.text() == "&View").menu()
    next(a for a in menu.actions() if a.text() == "&Host details...").trigger()
    assert window.host_details["hv02"].isVisible()
    view.close()
    assert "hv01" not in window.host_details


def test_capacity_sentences() -> None:
    capacity = HostCapacity(64 * GiB, 4 * GiB, (
        Storage("D:\\", free_bytes=500 * GiB, total_bytes=1000 * GiB),
        Storage("\\\\fs01\\vms", kind="share"),
        Storage("E:\\", error="Access is denied.")))
    assert capacity_short(capacity) == " · ⚠ 4.0 GB RAM, D:\\ 500.0 GB free"
    assert shortages(capacity) == ["Memory is short: 4.0 GB of 64.0 GB memory free; a VM that "
                                   "starts may not get its memory."]
    assert capacity_lines(capacity) == [
        "4.0 GB of 64.0 GB memory free", "D:\\ 500.0 GB of 1000.0 GB free",
        "\\\\fs01\\vms: a share, its free space is the file server's",
        "E:\\: free space not read (Access is denied.)"]
    assert is_low(capacity)  # 4 of 64 GB free is under a tenth
    roomy = HostCapacity(64 * GiB, 32 * GiB, (Storage("D:\\", free_bytes=9, total_bytes=100),))
    assert shortages(roomy) == ["D:\\ is nearly full (9% free): a checkpoint or a growing disk "
                                "may pause its VMs (PausedCritical)."]
    assert capacity_short(HostCapacity(64 * GiB, 32 * GiB)) == " · 32.0 GB RAM free"
    assert not is_low(HostCapacity(64 * GiB, 32 * GiB))
    assert capacity_short(None) == "" and capacity_lines(None) == ["capacity not reported yet"]
    assert capacity_lines(HostCapacity(error="Invalid class")) == [
        "capacity not read: Invalid class"]


def test_an_administrator_turns_metering_on_from_the_host_details(open_as, qtbot) -> None:
    adam = open_as("adam")
    window = adam.window
    view = window.open_host_details("HV02")
    assert view is not None
    running = [r.vm for r in window.model.rows_of("HV02") if r.vm.state == "Running"]
    # The demo world meters some VMs: the button offers what is missing.
    assert view.metering_button.text() == "Turn metering on"
    view.metering_button.click()
    # The host is read again once it answered: the view follows the new inventory.
    qtbot.waitUntil(lambda: view.metering_button.text() == "Turn metering off", timeout=30_000)
    assert view.metering.text() == f"on for {len(running)} of the {len(running)} running VMs you may see"
    assert all(r.vm.metered is not None for r in window.model.rows_of("HV02") if r.vm.state == "Running")


def test_metering_refused_by_the_host_says_who_may(open_as, qtbot, monkeypatch) -> None:
    from console.errors import HostAccessDenied

    olivia = open_as("olivia")
    window = olivia.window

    def refused(host, work):  # type: ignore[no-untyped-def]
        raise HostAccessDenied("HV01 refuses this account a session on its default PowerShell "
                               "endpoint Microsoft.PowerShell: Access is denied.", host="HV01")
    monkeypatch.setattr(olivia.session.pool, "on_admin_endpoint", refused)
    window.set_metering("HV01", True)
    qtbot.waitUntil(lambda: "metering not changed" in window.notice.text.text(), timeout=10_000)
    assert "turned on and off by the host's administrators" in window.notice.text.text()

"""The groups pane against the lab: VMs by host, under the cluster the policy names (the demo's
CL01: HV01 and HV02), and by application; a chosen group filters the table and survives a
refresh."""
from __future__ import annotations

from console.inventory import VM
from ui.groups import Group, GroupTree, NO_APPLICATION, application_of
from ui.models import VMRow

from . import test_mainwindow

world = test_mainwindow.world
open_as = test_mainwindow.open_as


def texts(tree: GroupTree) -> list[str]:
    """Every node's text, indented by depth."""
    out: list[str] = []

    def walk(item, depth: int) -> None:
        out.append("  " * depth + item.text(0))
        for i in range(item.childCount()):
            walk(item.child(i), depth + 1)
    for i in range(tree.topLevelItemCount()):
        walk(tree.topLevelItem(i), 0)
    return out


def shown(window) -> set[str]:
    return {window.proxy.index(r, 0).data() for r in range(window.proxy.rowCount())}


def test_vms_grouped_by_cluster_host_and_application(open_as, qtbot) -> None:
    adam = open_as("adam")
    window = adam.window
    qtbot.waitUntil(lambda: texts(window.groups)[:1] == ["All VMs (15)"])
    hv01, hv02, hv03 = (len(window.model.rows_of(h)) for h in ("HV01", "HV02", "HV03"))
    nodes = texts(window.groups)
    assert nodes[:6] == ["All VMs (15)", "Hosts", f"  CL01 (cluster, {hv01 + hv02})",
                         f"    HV01 ({hv01})", f"    HV02 ({hv02})", f"  HV03 ({hv03})"]
    assert nodes[6] == "Applications" and "  shop (4)" in nodes
    assert nodes[-1].startswith(f"  {NO_APPLICATION} (")  # legacy-ftp and the old agent copy

    assert window.groups.choose(Group("host", "HV03"))
    assert shown(window) == {r.vm.name for r in window.model.rows_of("HV03")}
    assert window.count_label.text() == f"{hv03} of 15 VMs"
    assert window.groups.choose(Group("cluster", "CL01"))
    assert shown(window) == {r.vm.name for h in ("HV01", "HV02") for r in window.model.rows_of(h)}
    assert window.groups.choose(Group("application", "shop"))
    assert shown(window) == {"shop-web01", "shop-web02", "shop-app01", "shop-db01"}
    assert all(application_of(r) == "shop" for r in window.model.rows if r.vm.name in shown(window))

    # The chosen group stays through a refresh; a search that finds nothing in it says so.
    with qtbot.waitSignal(window.refreshed, timeout=30_000):
        window.refresh()
    qtbot.wait(300)  # the pane is rebuilt after the model's writes settle
    assert window.groups.chosen == Group("application", "shop") and len(shown(window)) == 4
    window.search.setText("build-agent")
    assert window.proxy.rowCount() == 0
    assert "No VM of shop matches" in window.empty_line.text()
    window.search.clear()
    assert window.groups.choose(Group("all"))
    assert window.proxy.rowCount() == 15


def test_a_group_that_goes_away_shows_every_vm_again(qtbot) -> None:
    tree = GroupTree()
    qtbot.addWidget(tree)
    chosen: list[Group] = []
    tree.group_chosen.connect(chosen.append)

    def row(name: str, host: str) -> VMRow:
        return VMRow(VM(host, f"id-{name}", name, "Running"))

    tree.show_rows([row("a", "HV01"), row("b", "HV09")], ["HV01"], {"HV01": "CL01"})
    assert texts(tree) == ["All VMs (2)", "Hosts", "  CL01 (cluster, 1)", "    HV01 (1)",
                           "  HV09 (1)", "Applications", f"  {NO_APPLICATION} (2)"]
    assert tree.choose(Group("host", "hv09")) and chosen[-1] == Group("host", "HV09")
    accepts = chosen[-1].accepts(tree.clusters)
    assert accepts is not None and accepts(row("c", "HV09")) and not accepts(row("d", "HV01"))
    tree.show_rows([row("a", "HV01")], ["HV01"], {"HV01": "CL01"})  # HV09 is gone
    assert chosen[-1] == Group("all") and tree.chosen == Group("all")

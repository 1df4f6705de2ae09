"""The groups pane: the VMs grouped by host (under its cluster where the policy names one) and by
application, as the inventory trees of Hyper-V Manager, Failover Cluster Manager and the
vSphere Client group them. Choosing a group shows only its VMs in the table.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QAbstractItemView, QTreeWidget, QTreeWidgetItem, QWidget

from .models import VMRow

GROUP_ROLE = Qt.ItemDataRole.UserRole + 1
NO_APPLICATION = "(no application)"


@dataclass(frozen=True)
class Group:
    """One node of the pane: every VM (kind "all"), a cluster, a host or an application."""

    kind: str  # all | cluster | host | application
    name: str = ""

    def accepts(self, clusters: Mapping[str, str]) -> Callable[[VMRow], bool] | None:
        """Whether a row belongs to the group (None: every row does)."""
        wanted = self.name.lower()
        if self.kind == "host":
            return lambda row: row.vm.host.lower() == wanted
        if self.kind == "cluster":
            return lambda row: cluster_of(row, clusters).lower() == wanted
        if self.kind == "application":
            return lambda row: (application_of(row) or NO_APPLICATION).lower() == wanted
        return None


def cluster_of(row: VMRow, clusters: Mapping[str, str]) -> str:
    """A VM's cluster: the connection's (config), else the policy's entry for its host."""
    return row.vm.cluster or clusters.get(row.vm.host.lower(), "")


def application_of(row: VMRow) -> str:
    doc = row.doc
    return str(getattr(doc, "application", "") or "") if doc is not None else ""


class GroupTree(QTreeWidget):
    """All VMs; Hosts (clusters with their hosts, then hosts on their own); Applications. Each
    node says how many VMs it holds; the chosen node survives a refresh."""

    group_chosen = Signal(object)  # the Group

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setHeaderHidden(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setRootIsDecorated(True)
        self.setAccessibleName("VM groups")
        self.chosen = Group("all")
        self.clusters: dict[str, str] = {}  # host (lower case) -> cluster, from the policy
        self.currentItemChanged.connect(self._changed)

    def show_rows(self, rows: Iterable[VMRow], hosts: Iterable[str],
                  clusters: Mapping[str, str]) -> None:
        """Rebuild the nodes from the rows (and every configured host, answering or not)."""
        rows = list(rows)
        self.clusters = {h.lower(): c for h, c in clusters.items() if c}
        per_host: dict[str, int] = {h.lower(): 0 for h in hosts}
        names: dict[str, str] = {h.lower(): h for h in hosts}
        per_app: dict[str, int] = {}
        apps: dict[str, str] = {}
        host_cluster: dict[str, str] = {}
        for row in rows:
            key = row.vm.host.lower()
            per_host[key] = per_host.get(key, 0) + 1
            names.setdefault(key, row.vm.host)
            cluster = cluster_of(row, self.clusters)
            if cluster:
                host_cluster[key] = cluster
            app = application_of(row) or NO_APPLICATION
            per_app[app.lower()] = per_app.get(app.lower(), 0) + 1
            apps.setdefault(app.lower(), app)
        for host in per_host:
            if host in self.clusters:
                host_cluster.setdefault(host, self.clusters[host])
        self.blockSignals(True)
        try:
            self.clear()
            all_vms = self._item(None, f"All VMs ({len(rows)})", Group("all"))
            hosts_node = self._item(None, "Hosts", None)
            by_cluster: dict[str, list[str]] = {}
            for host, cluster in host_cluster.items():
                by_cluster.setdefault(cluster, []).append(host)
            for cluster in sorted(by_cluster, key=str.lower):
                members = sorted(by_cluster[cluster])
                node = self._item(hosts_node, f"{cluster} (cluster, "
                                  f"{sum(per_host.get(h, 0) for h in members)})",
                                  Group("cluster", cluster))
                for host in members:
                    self._item(node, f"{names[host]} ({per_host.get(host, 0)})",
                               Group("host", names[host]))
            for host in sorted(h for h in per_host if h not in host_cluster):
                self._item(hosts_node, f"{names[host]} ({per_host[host]})", Group("host", names[host]))
            apps_node = self._item(None, "Applications", None)
            for app in sorted(per_app, key=lambda a: (a == NO_APPLICATION.lower(), a)):
                self._item(apps_node, f"{apps[app]} ({per_app[app]})",
                           Group("application", apps[app]))
            self.expandAll()
            current = self._find(self.chosen) or all_vms
            self.setCurrentItem(current)
        finally:
            self.blockSignals(False)
        item = self.currentItem()
        found = item.data(0, GROUP_ROLE) if item is not None else None
        if found != self.chosen:  # the chosen group is gone: every VM again
            self.chosen = Group("all")
            self.group_chosen.emit(self.chosen)

    def choose(self, group: Group) -> bool:
        item = self._find(group)
        if item is not None:
            self.setCurrentItem(item)
        return item is not None

    def _item(self, parent: QTreeWidgetItem | None, text: str, group: Group | None) -> QTreeWidgetItem:
        item = QTreeWidgetItem([text])
        item.setData(0, GROUP_ROLE, group)
        item.setToolTip(0, text)
        if group is None:  # a heading: not a group of its own
            item.setFlags(Qt.ItemFlag.ItemIsEnabled)
        if parent is None:
            self.addTopLevelItem(item)
        else:
            parent.addChild(item)
        return item

    def _find(self, group: Group) -> QTreeWidgetItem | None:
        stack = [self.topLevelItem(i) for i in range(self.topLevelItemCount())]
        while stack:
            item = stack.pop()
            if item is None:
                continue
            found = item.data(0, GROUP_ROLE)
            if isinstance(found, Group) and found.kind == group.kind \
                    and found.name.lower() == group.name.lower():
                return item
            stack.extend(item.child(i) for i in range(item.childCount()))
        return None

    def _changed(self, current: QTreeWidgetItem | None, _previous: QTreeWidgetItem | None) -> None:
        group = current.data(0, GROUP_ROLE) if current is not None else None
        if isinstance(group, Group) and group != self.chosen:
            self.chosen = group
            self.group_chosen.emit(group)


__all__ = ["Group", "GroupTree", "NO_APPLICATION", "application_of", "cluster_of"]

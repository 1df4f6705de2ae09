"""Failover clusters: a clustered role is known by its id on whichever node runs it, may move to
any node (so every node is classified as high as it), and does not tie its application to one
node; the lab live-migrates it between two nodes."""
from __future__ import annotations

from dataclasses import replace

import pytest

from console.errors import ConfigError
from console.inventory import VM
from console.policy import Policy
from console.review import cluster_nodes, findings, host_impact
from lab.world import load_world

POLICY = Policy.from_text('''
[hosts.HV04]
classification = "internal"
cluster = "CL01"

[hosts.HV05]
classification = "confidential"
cluster = "CL01"

[vms."00000000-0000-4000-8000-000000000001"]
name = "payroll-db"
owner = "Hannah HR"
contact = "hannah@lab.example"
classification = "confidential"
application = "payroll"
tier = "db"

[vms."00000000-0000-4000-8000-000000000002"]
name = "payroll-web"
owner = "Hannah HR"
contact = "hannah@lab.example"
classification = "internal"
application = "payroll"
tier = "web"

[vms."00000000-0000-4000-8000-000000000003"]
name = "build-01"
owner = "Bea Build"
contact = "bea@lab.example"
classification = "confidential"
application = "build"
tier = "agent"
''')


def vm(n: int, name: str, host: str, clustered: bool) -> VM:
    return VM(host=host, id=f"00000000-0000-4000-8000-00000000000{n}", name=name,
              state="Running", cluster="CL01", clustered=clustered)


def kinds(found: list, kind: str) -> list[tuple[str, ...]]:
    return [f.objects for f in found if f.kind == kind]


def test_the_nodes_of_a_cluster() -> None:
    inventory = {"HV06": [replace(vm(9, "x", "HV06", False), cluster="cl01")]}
    assert cluster_nodes(POLICY, inventory) == {"cl01": ["HV04", "HV05", "HV06"]}


def test_every_node_is_classified_as_high_as_the_clusters_most_sensitive_role() -> None:
    inventory = {"HV05": [vm(1, "payroll-db", "HV05", clustered=True)], "HV04": []}
    found = findings(POLICY, inventory, {})
    assert kinds(found, "cluster-classification") == [("HV04", "CL01", "payroll-db")]
    [finding] = [f for f in found if f.kind == "cluster-classification"]
    assert "may move its clustered role payroll-db (confidential) onto it" in finding.summary
    assert finding.severity == "high" and finding.line is not None


def test_a_vm_that_only_runs_on_a_node_does_not_bind_the_other_nodes() -> None:
    # build-01 is confidential but not a clustered role: it never moves to HV04.
    inventory = {"HV05": [vm(3, "build-01", "HV05", clustered=False)], "HV04": []}
    assert kinds(findings(POLICY, inventory, {}), "cluster-classification") == []


def test_tiers_on_one_node_fall_together_unless_a_tier_is_a_clustered_role() -> None:
    both_local = {"HV05": [vm(1, "payroll-db", "HV05", False), vm(2, "payroll-web", "HV05", False)]}
    assert kinds(findings(POLICY, both_local, {}), "tiers-together") == [
        ("HV05", "payroll-db", "payroll-web")]
    one_moves = {"HV05": [vm(1, "payroll-db", "HV05", True), vm(2, "payroll-web", "HV05", False)]}
    assert kinds(findings(POLICY, one_moves, {}), "tiers-together") == []


def test_host_impact_says_which_vms_move_and_which_go_down() -> None:
    inventory = {"HV05": [vm(1, "payroll-db", "HV05", True), vm(3, "build-01", "HV05", False)]}
    notice = host_impact(POLICY, inventory, "HV05").notice
    assert "- payroll-db: Running, a clustered role: moves to another node of CL01, no downtime" in notice
    assert "- build-01: Running, build/agent" in notice


def test_the_lab_moves_a_clustered_role_between_two_nodes_of_its_cluster() -> None:
    world = load_world()
    hv01, hv02, hv03 = (world.host(n) for n in ("HV01", "HV02", "HV03"))
    hv01.cluster = hv02.cluster = "CL01"
    role = hv01.host.vms[0]
    with pytest.raises(ConfigError, match="is not a clustered role"):
        world.migrate(role.id, "HV02")
    role.clustered = True
    with pytest.raises(ConfigError, match="HV01 and HV03 are not two nodes of one cluster"):
        world.migrate(role.id, "HV03")
    state, checkpoints = role.state, list(role.checkpoints)
    moved = world.migrate(role.id, "HV02")
    assert moved is role and role.id not in {v.id for v in hv01.host.vms}
    assert hv02.host.vm(role.id).state == state and hv02.host.vm(role.id).checkpoints == checkpoints


def test_after_a_migration_the_new_node_reports_the_role_under_the_same_key() -> None:
    world = load_world()
    hv01, hv02 = world.host("HV01"), world.host("HV02")
    hv01.cluster = hv02.cluster = "CL01"
    role = hv01.host.vms[0]
    role.clustered = True

    def read(host: str) -> dict[str, VM]:
        data = world.host(host).host.operation("inventory", {})
        return {v["id"]: VM.from_json(host, v, "CL01") for v in data["vms"]}

    before = read("HV01")[role.id]
    assert before.clustered and not any(v.clustered for k, v in read("HV01").items() if k != role.id)
    world.migrate(role.id, "HV02")
    assert role.id not in read("HV01")
    after = read("HV02")[role.id]
    # The console keys a VM by (cluster, id): its row, history and grants carry over.
    assert (after.host, after.key, after.name, after.clustered) == ("HV02", before.key, before.name, True)

"""The simulated Hyper-V hosts and the lab world: loading, state across restarts, generation."""
from __future__ import annotations

from pathlib import Path

import pytest

from console.errors import ConfigError
from lab.hyperv import GiB, Durations, HyperVError, ManualClock
from lab.world import generated_world, load_world, restore_state, save_state

APP01 = "a8c164c6-ea2b-525b-b0de-c3c08e182c75"
FILES = "bc797c1d-65e1-5032-8525-d184e732f820"


def test_demo_world_matches_the_documented_world() -> None:
    world = load_world(durations=Durations.instant())
    assert [h.name for h in world.hosts] == ["HV01", "HV02", "HV03"]
    assert {a.name for a in world.accounts if not a.enabled} == {"dan"}
    assert next(a for a in world.accounts if a.name == "henry").sid == "S-1-5-21-1000-2000-3000-1102"
    assert all(h.admins == ["adam"] for h in world.hosts)
    hv03 = world.host("hv03").host
    assert hv03.last_update_days == 120 and hv03.free_bytes < hv03.critical_free_bytes
    # The Replica copy has the primary's id on another host.
    assert world.host("HV01").host.vm(FILES).replication_mode == "Replica"
    assert world.host("HV02").host.vm(FILES).replication_mode == "Primary"
    assert len({vm.id for h in world.hosts for vm in h.host.vms}) == 14
    with pytest.raises(ConfigError):
        world.host("HV09")


def test_lab_durations_and_their_scaling() -> None:
    world = load_world()
    assert world.hosts[0].host.durations.shutdown == 5.0
    assert Durations(shutdown=4).scaled(0.5).shutdown == 2.0
    assert Durations.instant().merge == 0
    with pytest.raises(ValueError):
        Durations.from_dict({"boot": 1})


def test_a_bad_lab_file_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "lab.toml"
    bad.write_text('[[hosts]]\nname = "X"\n[[hosts.vms]]\nid = "not a guid"\nname = "a"\n')
    with pytest.raises(ConfigError, match="not valid"):
        load_world(bad)
    with pytest.raises(ConfigError, match="cannot be read"):
        load_world(tmp_path / "missing.toml")


def test_state_survives_a_restart_with_checkpoints_merges_and_media(tmp_path: Path) -> None:
    clock = ManualClock()
    world = load_world(durations=Durations.instant().scaled(1), clock=clock)
    host = world.host("HV01").host
    host.durations = Durations(**{**vars(Durations.instant()), "merge": 30.0})
    made = host.checkpoint(APP01, "create", name="kept")["checkpoint"]
    host.checkpoint(APP01, "delete", checkpoint_id="5e0f3a51-8c2d-4b7a-a1e4-6d9c2f8b3a10")
    host.media(APP01, "mount", "SCSI", 0, 1, "D:\\ISO\\SystemRescue-11.iso", ["D:\\ISO\\"])
    clock.advance(10)
    path = save_state(world, tmp_path / "state.json")

    again = load_world(durations=Durations.instant(), clock=clock)
    assert restore_state(again, path)
    vm = again.host("HV01").host.vm(APP01)
    assert made["id"] in {c.id for c in vm.checkpoints} and vm.current_checkpoint_id == made["id"]
    assert vm.status == "Merging disks" and vm.dvd_drives[0].path == "D:\\ISO\\SystemRescue-11.iso"
    clock.advance(21)
    assert again.host("HV01").host.vm_state([APP01])["vms"][0]["status"] == "Operating normally"
    assert not restore_state(again, tmp_path / "none.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ConfigError, match="delete it"):
        restore_state(again, tmp_path / "broken.json")


def test_generated_world() -> None:
    world = generated_world(3, 40, durations=Durations.instant())
    assert [h.name for h in world.hosts] == ["HV001", "HV002", "HV003"]
    vms = [vm for h in world.hosts for vm in h.host.vms]
    assert len(vms) == 120 and len({vm.id for vm in vms}) == 120
    assert {vm.state for vm in vms} == {"Running", "Off", "Saved", "Paused"}
    assert sum(1 for vm in vms if vm.checkpoints) == 39
    assert world.accounts and world.hosts[0].admins == ["adam"]
    # The same names give the same ids: a benchmark's runs are comparable.
    assert generated_world(1, 2).hosts[0].host.vms[0].id == world.hosts[0].host.vms[0].id


def test_host_errors_carry_contract_codes() -> None:
    host = load_world(durations=Durations.instant()).host("HV01").host
    with pytest.raises(HyperVError) as error:
        host.vm("00000000-0000-0000-0000-000000000000")
    assert error.value.code == "not_found"
    assert host.total_bytes - host.free_bytes >= sum(vm.disk_bytes for vm in host.vms)
    assert host.checkpoint(APP01, "create")["checkpoint"]["name"].startswith("shop-app01 - (")
    assert host.vm(APP01).checkpoint_bytes == (6 + 3 + 2) * GiB

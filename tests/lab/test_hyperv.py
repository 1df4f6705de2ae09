"""The simulated Hyper-V hosts and the lab world: loading, state across restarts, generation."""
from __future__ import annotations

from pathlib import Path
from typing import Any

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


# --- the cmdlets the host selftest's scripts use (console/selftest.py) ----------------------------

def _lab_host() -> tuple[Any, Any]:
    from lab.executor import Executor
    world = load_world(durations=Durations.instant())
    host = world.host("HV01").host
    return host, Executor(host)


def _run(executor: Any, text: str, user: Any = None) -> Any:
    from lab.executor import ADMINISTRATOR
    return executor.runspace(user or ADMINISTRATOR).run(text)


def test_new_vm_without_a_disk_as_the_cmdlet_makes_it() -> None:
    host, executor = _lab_host()
    out = _run(executor, "$v=New-VM -Name 'hvc-t' -MemoryStartupBytes 32MB -Generation 2 -NoVHD "
                         "-BootDevice CD;$v.Name;\"$($v.State)\";$v.MemoryStartup;"
                         "@(Get-VMDvdDrive -VM $v).Count;@(Get-VMHardDiskDrive -VM $v).Count")
    assert out.error is None, out.error
    assert out.output == ["hvc-t", "Off", 32 * 1024 * 1024, 1, 0]
    vm = next(v for v in host.vms if v.name == "hvc-t")
    assert (vm.generation, vm.disk_bytes, vm.automatic_checkpoints, vm.checkpoint_type) == (
        2, 0, False, "Production")
    assert [(d.controller_type, d.controller, d.location) for d in vm.dvd_drives] == [("SCSI", 0, 0)]
    # Generation 1 (New-VM's default) gets its DVD drive at IDE 1:0; no guest answers anything.
    out = _run(executor, "$v=New-VM -Name 'hvc-g1' -NoVHD;$v.Generation;"
                         "@(Get-VMDvdDrive -VM $v)[0].ControllerNumber")
    assert out.output == [1, 1]
    assert not next(v for v in host.vms if v.name == "hvc-g1").shutdown_service


@pytest.mark.parametrize(("text", "fqid"), [
    ("New-VM -Name 'x' -MemoryStartupBytes 16MB -NoVHD", "InvalidParameter,"),
    ("New-VM -Name 'x' -MemoryStartupBytes 33MB -NoVHD", "InvalidParameter,"),
    ("New-VM -Name 'x' -Generation 2 -BootDevice IDE -NoVHD", "InvalidArgument,"),
    ("New-VM -Name 'x' -NoVHD -SwitchName 'LAN'", "NotSimulated"),
    ("New-VM -Name 'x' -Bogus", "NamedParameterNotFound,New-VM"),
])
def test_new_vm_refusals(text: str, fqid: str) -> None:
    host, executor = _lab_host()
    before = len(host.vms)
    out = _run(executor, f"$ErrorActionPreference='Stop';{text}")
    assert out.error is not None and out.error.fqid.startswith(fqid), out.error
    assert len(host.vms) == before


def test_set_vm_and_remove_vm() -> None:
    host, executor = _lab_host()
    out = _run(executor, "$ErrorActionPreference='Stop';$v=New-VM -Name 'hvc-r' -NoVHD;"
                         "Set-VM -VM $v -CheckpointType Standard -AutomaticCheckpointsEnabled $true;"
                         "\"$((Get-VM -Id $v.Id).CheckpointType)\";Start-VM -VM $v")
    assert out.error is None, out.error
    assert out.output[0] == "Standard"
    vm = next(v for v in host.vms if v.name == "hvc-r")
    assert vm.automatic_checkpoints and vm.state == "Running"
    # Remove-VM asks first: a non-interactive session must say -Force.
    out = _run(executor, f"$ErrorActionPreference='Stop';Remove-VM -VM (Get-VM -Id '{vm.id}')")
    assert out.error is not None and "NonInteractive" in out.error.message
    # A running VM is turned off and removed, with its checkpoints.
    out = _run(executor, f"$ErrorActionPreference='Stop';$v=Get-VM -Id '{vm.id}';"
                         f"Checkpoint-VM -VM $v;Remove-VM -VM $v -Force")
    assert out.error is None, out.error
    assert all(v.id != vm.id for v in host.vms)
    assert [e.operation for e in executor.events][-2:] == ["Checkpoint-VM", "Remove-VM"]


def test_byte_files_written_hashed_and_removed_seen_by_a_kept_runspace() -> None:
    import hashlib

    from lab.executor import ADMINISTRATOR
    host, executor = _lab_host()
    rs = executor.runspace(ADMINISTRATOR)  # kept, as a PSRP runspace is
    assert rs.run("Test-Path -LiteralPath 'D:\\ISO\\t.iso'").output == [False]
    out = rs.run("$ErrorActionPreference='Stop';"
                 "$b=[Convert]::FromBase64String('AAEC');$c=[Convert]::FromBase64String('/w==');"
                 "Set-Content -LiteralPath 'D:\\ISO\\t.iso' -Value $b -Encoding Byte;"
                 "Add-Content -LiteralPath 'D:\\ISO\\t.iso' -Value $c -Encoding Byte;"
                 "(Get-Item -LiteralPath 'D:\\ISO\\t.iso').Length;"
                 "(Get-FileHash -LiteralPath 'D:\\ISO\\t.iso' -Algorithm SHA256).Hash")
    assert out.error is None, out.error
    assert out.output == [4, hashlib.sha256(b"\x00\x01\x02\xff").hexdigest().upper()]
    assert host.contents["D:\\ISO\\t.iso"] == b"\x00\x01\x02\xff"
    assert rs.run("Remove-Item -LiteralPath 'D:\\ISO\\t.iso' -Force;"
                  "Test-Path -LiteralPath 'D:\\ISO\\t.iso'").output == [False]
    assert "D:\\ISO\\t.iso" not in host.files
    # A folder that does not exist, and text (not simulated) are refused.
    out = rs.run("$ErrorActionPreference='Stop';Set-Content -LiteralPath 'D:\\Nope\\t.iso' "
                 "-Value ([Convert]::FromBase64String('AA==')) -Encoding Byte")
    assert out.error is not None and out.error.fqid.startswith("GetContentWriterDirectoryNotFoundError")
    out = rs.run("$ErrorActionPreference='Stop';Set-Content -LiteralPath 'D:\\ISO\\t.txt' -Value 'x'")
    assert out.error is not None and out.error.fqid == "NotSimulated"


def test_the_hosts_own_reads_of_windows_and_its_modules() -> None:
    host, executor = _lab_host()
    out = _run(executor, "$o=Get-CimInstance -ClassName Win32_OperatingSystem;$o.Caption;"
                         "$o.Version;@(Get-Module -Name Hyper-V -ListAvailable|"
                         "ForEach-Object{\"$($_.Version)\"})")
    assert out.error is None, out.error
    assert out.output == [host.os_caption, "10.0.20348", "2.0.0.0", "1.1"]


def test_cmdlet_faults_succeed_without_acting_or_fail() -> None:
    host, executor = _lab_host()
    vm = host.vms[0]
    if vm.state == "Off":
        host.power(vm.id, "start")
    host.cmdlet_faults.no_op.add("Stop-VM")
    assert host.power(vm.id, "turnoff")["vm"]["state"] == "Running"  # "done", and still running
    host.cmdlet_faults.clear()
    host.cmdlet_faults.fail["Stop-VM"] = "The driver hung."
    with pytest.raises(HyperVError, match="The driver hung") as caught:
        host.power(vm.id, "turnoff")
    assert caught.value.code == "host_error"
    host.cmdlet_faults.clear()
    assert host.power(vm.id, "turnoff")["vm"]["state"] == "Off"

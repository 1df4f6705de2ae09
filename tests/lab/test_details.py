"""The details and the thumbnail scripts, run by the lab's hosts as a real host would run them
(WinRS, the interpreter, the lab's cmdlets): what Hyper-V Manager shows of a VM, read on demand."""
from __future__ import annotations

import pytest

from console import scripts
from console.details import THUMBNAIL_LIMITS, Thumbnail, VMDetails
from lab import vmdetail
from lab.cmdlets import disk_path

from .conftest import HENRY, Lab

WEB01 = "42e4aaca-7231-5411-b96b-d03849b0dae1"  # HV01, Running, generation 2
OFFICE_FILES = "bc797c1d-65e1-5032-8525-d184e732f820"  # HV01 holds its Replica copy, Off
LEGACY_FTP = "aa1b7eff-d986-5c91-8fe6-f37064778c8c"  # HV03, generation 1
BUILD_02 = "da59d30f-6c6b-573d-9c74-76e0920fc508"  # HV03, Off


def test_a_running_vm_as_hyper_v_manager_shows_it(lab: Lab) -> None:
    host = lab.world.hosts[0].host
    vm = host.vm(WEB01)
    model = vmdetail.hardware(host, vm)
    details = VMDetails.from_json("HV01", lab.ok("HV01", "details", vm_id=WEB01))
    assert (details.id, details.name, details.state, details.generation) == (
        WEB01, "shop-web01", "Running", 2)
    assert details.processors == model.processors and details.version == model.version
    assert details.cpu_pct == host.cpu_usage(vm)
    assert details.memory.startup_bytes == vm.memory_bytes
    assert details.memory.assigned_bytes == vm.memory_bytes
    assert 0 < details.memory.demand_bytes < vm.memory_bytes
    assert details.memory.dynamic is model.dynamic_memory
    # The adapter with the addresses its guest reports, and its VLAN.
    [adapter] = details.adapters
    assert adapter.addresses == model.adapters[0].ips and adapter.addresses
    assert adapter.mac == model.adapters[0].mac and len(adapter.mac_text) == 17
    assert adapter.vlan_mode == model.adapters[0].vlan_mode
    # Disk: the path the VM's drive holds, with Get-VHD's sizes.
    [disk] = details.disks
    assert disk.path == disk_path(host, vm) and disk.type == "Dynamic"
    assert disk.file_bytes == vm.disk_bytes and disk.size_bytes is not None
    assert disk.size_bytes >= disk.file_bytes and details.disk_error == ""
    assert {s.title for s in details.integration} >= {"Heartbeat", "Shutdown", "Data exchange"}
    assert all(s.status == "Ok" for s in details.integration)
    assert details.secure_boot is True and details.secure_boot_template == "MicrosoftWindows"
    assert details.tpm is True
    assert details.guest_os == "Windows Server 2022 Datacenter"  # the guest's OSName pair
    assert (details.replication_mode, details.replication_state) == ("None", "Disabled")


def test_an_off_vm_reports_no_guest_data_and_generation_1_no_secure_boot(lab: Lab) -> None:
    off = VMDetails.from_json("HV03", lab.ok("HV03", "details", vm_id=BUILD_02))
    assert off.state == "Off" and off.guest_os == ""
    assert off.adapters and all(a.addresses == () for a in off.adapters)
    assert all(s.status == "" for s in off.integration)  # no status while off
    assert off.memory.assigned_bytes == off.memory.demand_bytes == 0
    old = VMDetails.from_json("HV03", lab.ok("HV03", "details", vm_id=LEGACY_FTP))
    # Secure boot is UEFI's: the script never asks Get-VMFirmware about a generation 1 VM,
    # which would refuse it and fail the call.
    assert old.generation == 1 and old.secure_boot is None and old.tpm is False


def test_a_replica_copy_shows_its_replication(lab: Lab) -> None:
    replica = VMDetails.from_json("HV01", lab.ok("HV01", "details", vm_id=OFFICE_FILES))
    assert (replica.replication_mode, replica.replication_state, replica.replication_health) == (
        "Replica", "Replicating", "Normal")


def test_metering_where_it_is_enabled(lab: Lab) -> None:
    for lab_host in lab.world.hosts:
        for vm in lab_host.host.vms:
            if vm.running and vmdetail.hardware(lab_host.host, vm).metering:
                lab.clock.advance(600)
                details = VMDetails.from_json(lab_host.name, lab.ok(lab_host.name, "details",
                                                                    vm_id=vm.id))
                assert details.metering is not None
                assert details.metering.seconds >= 600 and details.metering.memory_mb > 0
                return
    pytest.fail("the demo world has no running VM with resource metering")


def test_details_refusals(lab: Lab) -> None:
    assert lab.error("HV01", "details", vm_id="5e0f3a51-0000-4000-8000-000000000000") == "not_found"
    assert lab.error("HV01", "details", vm_id="not a guid") == "invalid_parameter"
    assert lab.error("HV01", "details") == "invalid_parameter"
    # A host's non-administrator reaches nothing (Hyper-V's own refusal).
    document = lab.call("HV01", "details", user=HENRY, vm_id=WEB01)
    assert document["ok"] is False and document["error"]["code"] == "access_denied"


def test_the_inventory_carries_memory_demand_beside_what_is_assigned(lab: Lab) -> None:
    # Both from the host's summary of its VMs, in the one inventory call (no query per VM).
    host = lab.world.hosts[0].host
    vms = {v["id"]: v for v in lab.ok("HV01", "inventory")["vms"]}
    running = vms[WEB01]
    assert running["memory_bytes"] == host.vm(WEB01).memory_bytes
    assert running["memory_demand"] == vmdetail.memory_demand(host, host.vm(WEB01)) > 0
    assert running["cpu_pct"] == host.cpu_usage(host.vm(WEB01))
    assert vms[OFFICE_FILES]["memory_demand"] == vms[OFFICE_FILES]["memory_bytes"] == 0


def test_thumbnail_of_a_running_vm_is_its_screen(lab: Lab) -> None:
    host = lab.world.hosts[0].host
    shot = Thumbnail.from_json("HV01", lab.ok("HV01", "thumbnail", vm_id=WEB01, width=160,
                                              height=120))
    assert (shot.width, shot.height, shot.code) == (160, 120, 0)
    assert shot.pixels == vmdetail.thumbnail(host, host.vm(WEB01), 160, 120)
    rows = vmdetail.decode(shot.pixels, 160)
    assert rows[60][80] == vmdetail.decode(vmdetail.Frame(1, 1, vmdetail.rgb565(16, 60, 140))
                                           .data(), 1)[0][0]  # the running desktop's colour
    # The bar of seconds grows as time passes: a refresh shows the screen moving.
    lab.clock.advance(20)
    later = Thumbnail.from_json("HV01", lab.ok("HV01", "thumbnail", vm_id=WEB01, width=160,
                                               height=120))
    assert later.pixels != shot.pixels


def test_thumbnail_of_an_off_vm_is_none_and_sizes_are_held_to_limits(lab: Lab) -> None:
    off = Thumbnail.from_json("HV03", lab.ok("HV03", "thumbnail", vm_id=BUILD_02, width=80,
                                             height=60))
    assert off.pixels == b"" and off.state == "Off"
    low_w, high_w, low_h, high_h = THUMBNAIL_LIMITS
    for width, height in ((low_w - 1, 60), (high_w + 1, 60), (80, low_h - 1), (80, high_h + 1)):
        assert lab.error("HV01", "thumbnail", vm_id=WEB01, width=width, height=height) == \
            "invalid_parameter"
    # The script holds the same limits as the console.
    text = scripts.body("thumbnail")
    assert f"$w -lt {low_w} -or $w -gt {high_w} -or $h -lt {low_h} -or $h -gt {high_h}" in text

"""Each VM's automatic stop and start actions (Get-VM's AutomaticStopAction and
AutomaticStartAction, host.toml [automatic_actions]) as the inventory reads them in the lab."""
from __future__ import annotations

from console.inventory import VM
from console.powershell import facts
from tests.lab.conftest import Lab


def test_the_inventory_reads_each_vms_automatic_actions_as_set_vm_names_them(lab: Lab) -> None:
    vms = {v["name"]: VM.from_json("HV02", v) for v in lab.ok("HV02", "inventory")["vms"]}
    assert (vms["office-print"].automatic_stop_action,
            vms["office-print"].automatic_start_action) == ("TurnOff", "Start")
    assert (vms["shop-web02"].automatic_stop_action,
            vms["shop-web02"].automatic_start_action) == ("ShutDown", "StartIfRunning")
    assert (vms["payroll-db"].automatic_stop_action,
            vms["payroll-db"].automatic_start_action) == ("Save", "StartIfRunning")
    # The names are the ones Set-VM accepts, on every Windows Server the facts hold, and the
    # facts' table holds the same.
    set_vm = facts.command("Set-VM")
    assert set_vm is not None
    table = facts.host("automatic_actions")
    for target in set_vm.targets.values():
        for name, key in (("AutomaticStopAction", "stop_values"),
                          ("AutomaticStartAction", "start_values")):
            parameter = target.parameter(name)
            assert parameter is not None and set(parameter.values) == set(table[key])
    for vm in vms.values():
        assert vm.automatic_stop_action in table["stop_values"]
        assert vm.automatic_start_action in table["start_values"]

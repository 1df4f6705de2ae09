"""The operation scripts: they fit a real host's command line, target VMs only by id, call only
known cmdlets, and keep the helpers that several scripts define identical."""
from __future__ import annotations

import re

import pytest

from console import scripts
from console.paths import POWERSHELL

VM_ID = "42e4aaca-7231-5411-b96b-d03849b0dae1"
LIBRARY = ["D:\\ISO\\", "E:\\Library\\Images\\Operating systems\\Microsoft\\Windows Server"]
# The largest parameters the console sends: a 100-character checkpoint name of 4-byte
# characters, a 260-character (MAX_PATH) ISO path with two library folders, 20 polled VMs.
LARGEST: dict[str, dict] = {
    "inventory": {},
    "host_facts": {"library": LIBRARY * 2},
    "vm_state": {"vm_ids": [VM_ID] * 20},
    "power": {"vm_id": VM_ID, "action": "delete_saved_state"},
    "checkpoint": {"vm_id": VM_ID, "action": "delete_subtree", "checkpoint_id": VM_ID,
                   "name": "\U0001f600" * 50},
    "media": {"vm_id": VM_ID, "action": "mount", "controller_type": "SCSI", "controller": 3,
              "location": 63, "path": "D:\\ISO\\" + "a" * 249 + ".iso", "library": LIBRARY},
}
ALLOWED_CMDLETS = {
    "ConvertFrom-Json", "ConvertTo-Json", "Where-Object", "Sort-Object",
    "Select-Object", "Split-Path", "Get-ItemProperty", "Get-HotFix", "Get-PSDrive",
    "Get-ChildItem", "Get-Item", "Test-Path",
    "Get-VM", "Get-VMHost", "Get-VMSnapshot", "Get-VMDvdDrive", "Get-VMHardDiskDrive",
    "Get-VMIntegrationService", "Start-VM", "Stop-VM", "Restart-VM", "Save-VM", "Suspend-VM",
    "Resume-VM", "Remove-VMSavedState", "Checkpoint-VM", "Restore-VMSnapshot",
    "Remove-VMSnapshot", "Set-VMDvdDrive",
}
HELPERS = {"F", "C", "Y", "U", "V", "S", "D", "K", "W"}
SCRIPTS = sorted(POWERSHELL.glob("*.ps1"))


def test_largest_command_of_each_operation_fits_the_command_line() -> None:
    lengths = {op: len(scripts.command_line(op, LARGEST[op])) for op in scripts.OPERATIONS}
    assert all(n <= scripts.COMMAND_LINE_LIMIT for n in lengths.values()), lengths
    assert "_common" not in lengths


def test_a_longer_path_is_refused_before_sending() -> None:
    params = dict(LARGEST["media"], path="D:\\ISO\\" + "a" * 400 + ".iso")
    with pytest.raises(scripts.InvalidParameter):
        scripts.command_line("media", params)


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_script_is_safe_and_compact(path) -> None:
    text = path.read_text(encoding="utf-8")
    code = scripts.compact(text)
    assert "<#" not in text and "@'" not in text and '@"' not in text  # compact() keeps neither
    assert not re.search(r"Invoke-Expression|\biex\b|-AsJob|\b\w+-Job\b|Add-Type", code, re.I)
    # VMs and checkpoints are targeted by id: no -Name / -VMName (they take wildcards).
    assert not re.search(r"-(VM)?Name\b", code, re.I)
    cmdlets = set(re.findall(r"\b([A-Z][a-z]+-[A-Z][A-Za-z]+)\b", code))
    assert cmdlets <= ALLOWED_CMDLETS, cmdlets - ALLOWED_CMDLETS
    # Functions have names of no built-in alias (r and h are Invoke-History and Get-History).
    for name in re.findall(r"\bfunction (\w+)", code):
        assert name in HELPERS and name.lower() not in {"r", "h"}, name
    assert "\t" not in code


def test_every_vm_lookup_is_by_id() -> None:
    for path in SCRIPTS:
        code = scripts.compact(path.read_text(encoding="utf-8"))
        for call in re.findall(r"Get-VM\b[^|;})\n]*", code):
            assert call.strip() in {"Get-VM", "Get-VM -Id $g"}, (path.name, call)


def test_helpers_defined_in_several_scripts_are_identical() -> None:
    definitions: dict[str, set[str]] = {}
    for path in SCRIPTS:
        for line in scripts.compact(path.read_text(encoding="utf-8")).splitlines():
            match = re.match(r"function (\w+)", line)
            if match:
                definitions.setdefault(match.group(1), set()).add(line)
    assert definitions.keys() >= {"D", "K", "Y", "F", "C", "U", "V", "S"}
    assert all(len(lines) == 1 for lines in definitions.values()), definitions


def test_the_shutdown_service_is_found_by_its_id() -> None:
    power = scripts.body("power")
    assert "9F8233AC-BE49-4C79-8EE3-E7E1985B2077" in power and "Stop-VM -VM $v}" in power
    assert "-Force" not in power.split("shutdown{")[1].split("}")[0]


def test_prelude_decodes_parameters_and_stops_on_errors() -> None:
    prelude = scripts.compact((POWERSHELL / "_common.ps1").read_text(encoding="utf-8"))
    assert prelude.startswith("$ErrorActionPreference='Stop'\n$ProgressPreference='SilentlyContinue'")
    assert "[Convert]::FromBase64String($p)" in prelude and "ConvertFrom-Json" in prelude
    assert "-Depth 8 -Compress" in prelude


def test_script_lengths(capsys) -> None:
    for op in scripts.OPERATIONS:
        print(op, len(scripts.body(op)), len(scripts.command_line(op, LARGEST[op])))
    out = capsys.readouterr().out
    assert out.count("\n") == len(scripts.OPERATIONS)


# The .NET types ConstrainedLanguage permits (about_Language_Modes, Windows PowerShell 5.1) that
# the scripts may name; every other type literal fails on a WDAC/AppLocker host.
CLM_TYPES = {"guid", "ref", "cultureinfo", "regex", "int", "long", "bool", "string", "datetime",
             "hashtable", "array", "pscustomobject"}
TYPE_LITERAL = re.compile(r"\[([A-Za-z][\w.]*)\](?!\s*\()")


@pytest.mark.parametrize("operation", scripts.OPERATIONS)
def test_operations_run_in_constrained_language(operation: str) -> None:
    # The parameter-decoding line is the one exception: the JEA endpoint drops it and builds $a
    # from typed parameters; a WDAC host's admin endpoint would need the scripts signed.
    lines = [line for line in scripts.body(operation).splitlines()
             if not line.startswith("$a=[Text.Encoding]")]
    text = "\n".join(lines)
    types = {m.group(1).lower() for m in TYPE_LITERAL.finditer(text)
             if not re.fullmatch(r"\d+", m.group(1))}
    assert types <= CLM_TYPES, f"{operation} names types ConstrainedLanguage refuses: {types - CLM_TYPES}"
    for forbidden in ("New-Object", "Add-Type", "::new(", ".Data["):
        assert forbidden not in text, f"{operation} uses {forbidden}"

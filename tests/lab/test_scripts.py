"""The operation scripts as sent: within a real host's limits, one line the grammar reads as the
script, VMs targeted only by id, the state table's own power table, and the helpers that several
scripts define identical. Commands, parameter sets and types are the checker's
(tests/powershell/test_shipped_powershell.py)."""
from __future__ import annotations

import re

import pytest

from console import scripts, states
from console.powershell.syntax import parse, walk
from console.paths import POWERSHELL

VM_ID = "42e4aaca-7231-5411-b96b-d03849b0dae1"
LIBRARY = ["D:\\ISO\\", "E:\\Library\\Images\\Operating systems\\Microsoft\\Windows Server"]
# The largest parameters the console sends: a 100-character checkpoint name of 4-byte
# characters, a 260-character (MAX_PATH) ISO path with two library folders, 20 polled VMs.
LARGEST: dict[str, dict] = {
    "inventory": {},
    # A downtime plan as long as one event holds (host.toml [event_log] message_max), and an
    # answer of 500 4-byte characters.
    "downtime_plans": {},
    "downtime_publish": {"plan": {"id": "HV02-20261212-2200-abcdef", "host": "HV02",
                                  "reason": "r" * 31000, "items": []}},
    "downtime_answer": {"plan_id": "HV02-20261212-2200-abcdef", "answer": "object",
                        "text": "\U0001f600" * 500},
    "host_facts": {"library": LIBRARY * 2},
    "vm_state": {"vm_ids": [VM_ID] * 20},
    "power": {"vm_id": VM_ID, "action": "delete_saved_state"},
    "checkpoint": {"vm_id": VM_ID, "action": "delete_subtree", "checkpoint_id": VM_ID,
                   "name": "\U0001f600" * 50},
    "media": {"vm_id": VM_ID, "action": "mount", "controller_type": "SCSI", "controller": 3,
              "location": 63, "path": "D:\\ISO\\" + "a" * 249 + ".iso", "library": LIBRARY},
    "audit_events": {"since": "2026-01-01T00:00:00Z", "max": 100000},
    "details": {"vm_id": VM_ID},
    "thumbnail": {"vm_id": VM_ID, "width": 320, "height": 240},
    "host_hardening": {},
    "console_access": {"vm_id": VM_ID, "action": "revoke"},
    "console_acl": {},
    "document": {"mode": "write", "folder": "C:\\Documentation\\VMs", "files": [
        {"vm_id": VM_ID, "file": "x" * 80 + f" {VM_ID}.txt", "data": "A" * 8000,
         "keep": "x" * 80 + f" {VM_ID}.20261202-101010.txt", "notes": "n" * 300}]},
    "metering": {"enable": True},
}
HELPERS = {"F", "C", "Y", "U", "V", "S", "D", "K", "W", "G", "O", "N", "E"}
SCRIPTS = sorted(POWERSHELL.glob("*.ps1"))


@pytest.mark.parametrize("operation", scripts.OPERATIONS)
def test_every_operation_stays_within_its_limits(operation: str) -> None:
    # The command line cmd.exe sees is at most 75% of its 8191 characters; the script itself
    # travels on standard input, far below WinRM's 500 KB envelope.
    executable, args, stdin = scripts.command(operation, LARGEST[operation])
    assert len(" ".join([executable, *args])) <= scripts.COMMAND_LINE_BUDGET
    # A published downtime plan is its own payload, bounded first by one event's message
    # (31,839 characters): within the limit, not a quarter of it.
    limit = scripts.STDIN_LIMIT if operation == "downtime_publish" else scripts.STDIN_LIMIT // 4
    assert len(stdin) <= limit, f"{operation} is {len(stdin)} characters"
    assert stdin.isascii() and stdin.count("\n") == 1 and stdin.endswith("\r\n")


def test_a_longer_parameter_is_refused_before_sending() -> None:
    params = dict(LARGEST["checkpoint"], name="x" * scripts.STDIN_LIMIT)
    with pytest.raises(scripts.InvalidParameter, match="too long"):
        scripts.command("checkpoint", params)


@pytest.mark.parametrize("operation", scripts.OPERATIONS)
def test_the_one_line_form_reads_as_the_script(operation: str) -> None:
    # powershell.exe reads -Command - line by line: the script is sent as one line, which the
    # grammar must read as the same statements as the script's lines.
    text = scripts.script(operation, LARGEST[operation])
    def shape(code: str) -> list[str]:
        return [n.type for n in walk(parse(code).root_node)
                if n.is_named and n.type != "empty_statement"]
    one = scripts.one_line(text)
    assert shape(one) == shape(text)
    assert not [n for n in walk(parse(one).root_node) if n.type == "ERROR" or n.is_missing]


def test_helpers_are_sent_only_to_the_operations_that_call_them() -> None:
    assert "function V" not in scripts.body("inventory") and "function V" in scripts.body("power")
    assert not scripts.body("inventory").startswith("$a=") and "$a=" not in scripts.body("inventory")
    assert "$a=[Text.Encoding]" in scripts.body("power")


def test_the_power_table_is_the_state_table() -> None:
    body = scripts.body("power")
    table = re.search(r"\$t=@\{(.*?)\}", body)
    assert table and "%ACCEPTS%" not in body
    sent = {k: set(v.split()) for k, v in re.findall(r"(\w+)='([^']*)'", table.group(1))}
    assert sent == {a: set(states.power_accepts(a)) for a in states.POWER_CMDLETS}
    # The review's finding 4: no reset from Paused, no turn-off of a VM that is Stopping.
    assert "Paused" not in sent["reset"] and "Stopping" not in sent["turnoff"]


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_script_is_compact_and_names_its_helpers(path) -> None:
    text = path.read_text(encoding="utf-8")
    code = scripts.compact(text)
    assert "<#" not in text and "@'" not in text and '@"' not in text  # compact() keeps neither
    # VMs and checkpoints are targeted by id: no -Name / -VMName (they take wildcards).
    assert not re.search(r"-(VM)?Name\b", code, re.I)
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
    assert definitions.keys() >= {"D", "K", "Y", "F", "C", "U", "V", "S", "O"}
    definitions.pop("O")  # each operation's own work
    assert all(len(lines) == 1 for lines in definitions.values()), definitions


def test_the_shutdown_service_is_found_by_its_id() -> None:
    power = scripts.body("power")
    assert "9F8233AC-BE49-4C79-8EE3-E7E1985B2077" in power and "Stop-VM -VM $v}" in power
    assert "-Force" not in power.split("shutdown{")[1].split("}")[0]

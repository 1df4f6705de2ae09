"""Write tests/powershell/pester/cases.json: what the Pester tests run, and what they expect, as
the Python side says it.

    .venv/bin/python tools/pester_cases.py           # write the file
    .venv/bin/python tools/pester_cases.py --check   # exit 1 when the committed file differs

The Pester tests (tests/powershell/pester/) run the host-side PowerShell on Windows, where the
Python tests cannot; this file is how they stay in step with the Python code instead of keeping
their own copy of its tables:

- `operations`: per operation, the one-line script body exactly as console.scripts sends it
  (compacted, helpers tree-shaken, %ACCEPTS% filled in), and a sample call: its parameters, the
  `$p` line and the whole standard input of the WinRS command (console.scripts.command).
- `transport`: whole standard inputs that touch no Hyper-V cmdlet, for piping to a real
  `powershell -NoProfile -NonInteractive -Command -`.
- `power`: the state table: every power action from every VM state of the facts, accepted or
  refused as console.states says, each with the `$p` line the console would send.
- `errors`: each Hyper-V failure of resources/powershell/facts/host.toml [errors] (and the few
  the prelude maps that the facts do not list), raised by the cmdlet of an operation, with the
  contract's error code (docs/host-operations.md) the script must answer.
- `binding`: parameters that must arrive at the cmdlets unchanged (or be refused) whatever they
  hold.
- `stubs`: the Hyper-V and Storage cmdlets the scripts call, as stub functions with the
  parameters and sets of resources/powershell/facts/commands.json (Windows Server 2022), so
  that Pester has commands to mock on a machine without Hyper-V; and the other commands the
  scripts call, stubbed only where the running PowerShell lacks them (Write-EventLog in 7).
- `jea`: the generated functions of the golden hosts (tests/golden/jea/), the callers of the lab
  directory with their token SIDs, and what each may do on each VM of the lab world on given days,
  decided by console.jea.HostGrants.rights (which tests/test_jea_generate.py holds to the policy).

tests/powershell/test_pester.py fails when the committed file is not what this script writes,
so a change of the state table, the scripts, the facts or the policy that the Pester tests would
not see fails the Python suite first. The JSON is ASCII (non-ASCII as \\u escapes): Windows
PowerShell 5.1 reads it with -Encoding UTF8 either way.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "powershell" / "pester" / "cases.json"
GOLDEN = ROOT / "tests" / "golden" / "jea"
GOLDEN_POLICY = GOLDEN / "policy.toml"
HOST_OPERATIONS = ROOT / "docs" / "host-operations.md"

# Ids of the samples (any GUIDs; lower case, as the console writes them).
VM = "42e4aaca-7231-5411-b96b-d03849b0dae1"
OTHER_VM = "080fa935-119d-5f94-bd91-af6a3ffc1820"
CHECKPOINT = "5f1c2d3e-4a5b-4c6d-8e7f-901a2b3c4d5e"
# A checkpoint name the console may send: non-ASCII, PowerShell's curly quotes, a subexpression,
# a double quote. It must reach Checkpoint-VM as these very characters, never as code.
TRICKY_NAME = "Pr\u00fcfung \u2018vor\u2019 $(Get-Date) \"x\"; exit"
# The library of the samples: on drive C:, which every Windows machine has (Pester resolves a
# mocked provider cmdlet's dynamic parameters, -File of Get-ChildItem, for the path's drive).
LIBRARY = "C:\\ISO\\"

# The console record an action carries (console.audit.RecordRef.as_params).
RECORD = {"record": "0f3c8a52-9e1b-4d57-a3c2-6b7e8f9a0b1c", "sha256": "ab" * 32, "seq": 7,
          "workstation": "WS-OLIVIA"}

SAMPLES: dict[str, dict[str, Any]] = {
    "inventory": {},
    "downtime_plans": {},
    "downtime_publish": {"plan": {"id": "HV01-20261212-2200-abcdef", "host": "HV01",
                                  "start": "2026-12-12T22:00:00+01:00",
                                  "end": "2026-12-13T02:00:00+01:00", "reason": TRICKY_NAME,
                                  "planned_by": "LAB\\adam", "teams": [], "subject": "s",
                                  "items": [{"vm_id": VM, "vm_name": "web", "state": "Running",
                                             "happens": "saved", "owner": "O", "contact": "",
                                             "application": ""}]}},
    "downtime_answer": {"plan_id": "HV01-20261212-2200-abcdef", "answer": "object",
                        "text": TRICKY_NAME},
    "host_facts": {"library": [LIBRARY]},
    "vm_state": {"vm_ids": [VM, OTHER_VM]},
    "power": {"vm_id": VM, "action": "start", "audit": RECORD},
    "checkpoint": {"vm_id": VM, "action": "create", "name": TRICKY_NAME},
    "media": {"vm_id": VM, "action": "mount", "controller_type": "SCSI", "controller": 0,
              "location": 1, "path": LIBRARY + "setup.iso", "library": [LIBRARY]},
    "audit_events": {"since": "2026-01-01T00:00:00Z", "max": 100},
    "console_access": {"vm_id": VM, "action": "grant", "audit": RECORD},
    "console_acl": {},
    "details": {"vm_id": VM},
    "thumbnail": {"vm_id": VM, "width": 16, "height": 12},
    "host_hardening": {},
    "document": {"mode": "read", "folder": "C:\\Documentation\\VMs",
                 "files": [{"vm_id": VM, "file": f"web {VM}.txt"}]},
    "metering": {"enable": True},
}

# Standard inputs that reach no Hyper-V cmdlet: safe to run in a real powershell.exe anywhere.
TRANSPORT: tuple[tuple[str, str, dict[str, Any], str | None], ...] = (
    ("no ids: an empty answer", "vm_state", {"vm_ids": []}, None),
    ("an id that is no GUID", "vm_state", {"vm_ids": ["not-an-id"]}, "invalid_parameter"),
    ("a power action on an id that is no GUID", "power", {"vm_id": "*", "action": "start"},
     "invalid_parameter"),
)

# Parameters that travel through the `$p` line: what the cmdlet must receive, or the refusal.
BINDING: tuple[dict[str, Any], ...] = (
    {"name": "a checkpoint name with quotes, a subexpression and non-ASCII reaches Checkpoint-VM as text",
     "operation": "checkpoint", "params": {"vm_id": VM, "action": "create", "name": TRICKY_NAME},
     "command": "Checkpoint-VM", "parameter": "SnapshotName", "value": TRICKY_NAME},
    {"name": "a checkpoint name of 100 characters is taken",
     "operation": "checkpoint", "params": {"vm_id": VM, "action": "create", "name": "n" * 100},
     "command": "Checkpoint-VM", "parameter": "SnapshotName", "value": "n" * 100},
    {"name": "a checkpoint name of 101 characters is refused",
     "operation": "checkpoint", "params": {"vm_id": VM, "action": "create", "name": "n" * 101},
     "code": "invalid_parameter"},
    {"name": "an upper-case VM id is the same VM",
     "operation": "power", "params": {"vm_id": VM.upper(), "action": "start"},
     "command": "Start-VM", "parameter": "VM", "value": None},
    {"name": "a VM id with a wildcard is refused before Get-VM",
     "operation": "power", "params": {"vm_id": "42e4aaca-*", "action": "start"},
     "code": "invalid_parameter"},
    {"name": "a power action is case-sensitive",
     "operation": "power", "params": {"vm_id": VM, "action": "Start"}, "code": "invalid_parameter"},
    {"name": "a controller that is no number is refused (InvalidCast)",
     "operation": "media", "params": {"vm_id": VM, "action": "eject", "controller_type": "SCSI",
                                      "controller": "one", "location": 1, "library": [LIBRARY]},
     "code": "invalid_parameter"},
    {"name": "a checkpoint id that is no GUID is refused",
     "operation": "checkpoint", "params": {"vm_id": VM, "action": "apply", "checkpoint_id": "latest"},
     "code": "invalid_parameter"},
)

HYPERV_CLASS = "Microsoft.HyperV.PowerShell.Commands."
# Modules whose cmdlets are always stubbed (never the real ones, even where installed: the tests'
# VMs are plain objects, which a real cmdlet's typed parameters would refuse).
STUBBED_MODULES = ("Hyper-V", "Storage", "SmbShare")
STUB_TARGET = "2022"
STUB_FALLBACK_TARGETS = ("5.1", "7.4", "2022", "2019", "2025")


def _facts() -> Any:
    from console.powershell import facts
    return facts


# --- operations, transport, binding ------------------------------------------------------------

def operations() -> dict[str, Any]:
    from console import scripts
    out: dict[str, Any] = {}
    for op in scripts.OPERATIONS:
        body = scripts.one_line(scripts.body(op))
        params = SAMPLES[op]
        p = scripts.encode_params(params)
        _, _, stdin = scripts.command(op, params)
        # How the Pester tests assemble a call; if the console's assembly changes, so must they.
        if stdin != f"$p='{p}';{body}\r\n":
            raise SystemExit(f"console.scripts.command({op!r}) is no longer \"$p='...';\" + the "
                             f"one-line body + CRLF: update tests/powershell/pester/Common.ps1 too")
        out[op] = {"body": body, "sample": {"params": params, "p": p, "stdin": stdin}}
    return out


def command() -> dict[str, Any]:
    from console import scripts
    return {"executable": scripts.EXECUTABLE, "arguments": list(scripts.ARGUMENTS)}


def transport() -> list[dict[str, Any]]:
    from console import scripts
    return [{"name": name, "operation": op, "params": params, "stdin": scripts.command(op, params)[2],
             "code": code} for name, op, params, code in TRANSPORT]


def binding() -> list[dict[str, Any]]:
    from console import scripts
    return [{**case, "p": scripts.encode_params(case["params"])} for case in BINDING]


# --- the state table ----------------------------------------------------------------------------

def power() -> dict[str, Any]:
    from console import scripts, states
    facts = _facts()
    commands = {a: spec.split() for a, spec in states.POWER_CMDLETS.items()}
    switches_of: dict[str, set[str]] = {}
    for name, *switches in commands.values():
        switches_of.setdefault(name, set()).update(s.lstrip("-") for s in switches)
    actions = {}
    for action, (name, *switches) in commands.items():
        on = {s.lstrip("-") for s in switches}
        actions[action] = {
            "command": name,
            "switches": {s: s in on for s in sorted(switches_of[name])},
            "accepts": sorted(states.power_accepts(action)),
            "cmdlet_accepts": sorted(facts.cmdlet_states(states.POWER_CMDLETS[action])),
            "p": scripts.encode_params({"vm_id": VM, "action": action}),
        }
    cases = [{"action": action, "state": state, "base_state": states.base_state(state),
              "accepted": states.base_state(state) in states.power_accepts(action)}
             for action in states.POWER_CMDLETS for state in facts.STATES]
    return {"vm_id": VM, "states": list(facts.STATES), "actions": actions, "cases": cases}


# --- the error mapping --------------------------------------------------------------------------

def contract_codes() -> list[str]:
    """The error codes of docs/host-operations.md's table, in its order."""
    text = HOST_OPERATIONS.read_text(encoding="utf-8")
    section = text.split("## Error codes", 1)[1]
    return re.findall(r"^\| `(\w+)` \|", section, re.M)


def _error(fact: str | None, *, error_id: str, category: str, command: str,
           error_code: int | None = None, issue: str | None = None, exception: str = "") -> dict[str, Any]:
    inner = exception or ("VirtualizationOperationFailedException" if error_code is not None
                          else "ServerConnectionException" if issue else "Exception")
    return {"fact": fact, "command": command,
            "id": f"{error_id},{HYPERV_CLASS}{command.replace('-', '')}",
            "category": category, "error_code": error_code, "issue": issue, "inner": inner,
            "message": f"Hyper-V refused: {error_id} ({fact or 'prelude'}) from {command}."}


def errors() -> list[dict[str, Any]]:
    """Each Hyper-V failure the facts list, from a cmdlet an operation calls, with its code."""
    from console import scripts
    facts = _facts()
    table = facts.host("errors")

    def from_facts(key: str, command: str, **extra: Any) -> dict[str, Any]:
        fact = table[key]
        return _error(key, error_id=fact["id"], category=fact["category"], command=command,
                      error_code=fact.get("wmi") if "issue" not in extra else None,
                      exception=fact.get("exception", ""), **extra)

    raw: list[tuple[str, dict[str, Any], str | None, dict[str, Any], str, str]] = [
        # (operation, parameters, VM state, failing command's error, expected code, source)
        ("checkpoint", {"action": "create"}, "Running", from_facts("InvalidState", "Checkpoint-VM"),
         "wrong_state", "host.toml [errors.InvalidState]"),
        ("checkpoint", {"action": "apply", "checkpoint_id": CHECKPOINT}, "Running",
         from_facts("InvalidState", "Restore-VMSnapshot"), "wrong_state",
         "host.toml [errors.InvalidState]"),
        ("checkpoint", {"action": "create"}, "Running", from_facts("ObjectInUse", "Checkpoint-VM"),
         "object_in_use", "host.toml [errors.ObjectInUse]"),
        ("checkpoint", {"action": "delete", "checkpoint_id": CHECKPOINT}, "Running",
         from_facts("ObjectInUse", "Remove-VMSnapshot"), "object_in_use",
         "host.toml [errors.ObjectInUse]"),
        ("power", {"action": "start"}, "Off", from_facts("AccessDenied", "Start-VM"),
         "access_denied", "host.toml [errors.AccessDenied]"),
        ("inventory", {}, None, from_facts("ServerConnection", "Get-VM", issue="AccessDenied"),
         "access_denied", "host.toml [errors.ServerConnection]; docs/host-operations.md access_denied"),
        ("power", {"action": "start"}, "Off",
         from_facts("ServerConnection", "Get-VM", issue="AccessDenied"), "access_denied",
         "host.toml [errors.ServerConnection]: a refusal is never 'no such VM'"),
        ("vm_state", {"vm_ids": [VM]}, "Running",
         from_facts("ServerConnection", "Get-VM", issue="AccessDenied"), "access_denied",
         "host.toml [errors.ServerConnection]: a refusal is never 'no such VM'"),
        ("power", {"action": "shutdown"}, "Running", from_facts("GuestLocked", "Stop-VM"),
         "guest_locked", "host.toml [errors.GuestLocked]"),
        # What the prelude maps beyond the facts' table (docs/host-operations.md, _common.ps1 C, N).
        ("power", {"action": "start"}, "Off",
         _error(None, error_id="InvalidParameter", category="InvalidArgument", command="Get-VM"),
         "not_found", "docs/verification.md: Get-VM -Id of an unknown id (the scripts accept both)"),
        ("power", {"action": "start"}, "Off",
         _error(None, error_id="ObjectNotFound", category="ObjectNotFound", command="Get-VM"),
         "not_found", "docs/verification.md: Get-VM -Id of an unknown id (the scripts accept both)"),
        ("inventory", {}, None,
         _error(None, error_id="Unspecified", category="NotSpecified", command="Get-VM",
                issue="RpcServerUnavailable"),
         "connection_lost", "docs/host-operations.md connection_lost; _common.ps1 C"),
        ("power", {"action": "start"}, "Off",
         _error(None, error_id="Unspecified", category="NotSpecified", command="Get-VM",
                issue="ServerResolution"),
         "connection_lost", "docs/host-operations.md connection_lost; _common.ps1 C"),
        ("power", {"action": "save"}, "Running",
         _error(None, error_id="Unspecified", category="NotSpecified", command="Save-VM"),
         "host_error", "docs/host-operations.md: anything else is host_error, message kept"),
    ]
    out = []
    for op, params, state, error, code, source in raw:
        if op in ("power", "checkpoint"):
            params = {"vm_id": VM, **params}
        failing = error.pop("command")
        detail = error["issue"] or error["error_code"]
        name = f"{failing} fails {error['id'].split(',')[0]}{f' ({detail})' if detail else ''}: {op}"
        out.append({"name": f"{name} {params['action']}" if "action" in params else name,
                    "operation": op, "params": params, "p": scripts.encode_params(params),
                    "vm_state": state, "command": failing, "error": error, "code": code,
                    "source": source})
    return out


# --- stubs ----------------------------------------------------------------------------------------

def called_commands() -> set[str]:
    """Every command the operation scripts and the generated JEA functions call (facts names)."""
    from console import jea, scripts
    from console.policy import Policy
    facts = _facts()
    names: set[str] = set()
    for op in scripts.OPERATIONS:
        names |= scripts._calls(scripts.body(op))
    policy = Policy.load(GOLDEN_POLICY)
    for spec in jea.FUNCTIONS:
        names |= scripts._calls(jea.function_text(spec, jea.host_grants(policy, "HV01")))
    out = set()
    for name in names:
        known = facts.command(name)
        if known is not None:
            out.add(known.name)
    return out


def stub(name: str) -> str:
    """A stub function with the command's parameter names, sets, positions and mandatory flags
    (which decide the set, as Restart-VM's -Wait does), untyped but for switches: the tests' VMs
    are plain objects, and the checker holds the calls to Microsoft's types. It throws when a test
    calls it unmocked."""
    facts = _facts()
    known = facts.command(name)
    target = known.targets.get(STUB_TARGET) or next(
        known.targets[t] for t in STUB_FALLBACK_TARGETS if t in known.targets)
    should_process = any(p in params for params in target.sets.values() for p in ("Confirm", "WhatIf"))
    all_sets = facts.ALL_SETS
    per_parameter: dict[str, list[tuple[str, int | None, bool]]] = {}
    switches: set[str] = set()
    for set_name, params in target.sets.items():
        positions = [p.position for p in params.values() if p.position is not None]
        for p in params.values():
            if p.name in ("Confirm", "WhatIf"):
                continue
            unique = p.position is not None and positions.count(p.position) == 1
            per_parameter.setdefault(p.name, []).append(
                (set_name, p.position if unique else None, p.mandatory))
            if p.switch:
                switches.add(p.name)
    binding = []
    if target.default_set and target.default_set != all_sets:
        binding.append(f"DefaultParameterSetName='{target.default_set}'")
    if should_process:
        binding.append("SupportsShouldProcess=$true")
    lines = [f"function {name} {{", f"[CmdletBinding({', '.join(binding)})]", "param("]
    declared = []
    for pname in sorted(per_parameter):
        attributes = []
        for set_name, position, mandatory in per_parameter[pname]:
            parts = [] if set_name == all_sets else [f"ParameterSetName='{set_name}'"]
            if mandatory:
                parts.append("Mandatory=$true")
            if position is not None:
                parts.append(f"Position={position}")
            attributes.append(f"[Parameter({', '.join(parts)})]")
        kind = "[switch]" if pname in switches else ""
        declared.append("".join(attributes) + f"{kind}${pname}")
    lines.append(",\n".join(declared))
    lines.append(")")
    lines.append(f"throw 'HvcPester: {name} was called without a Mock (a stub of {known.module}).'")
    lines.append("}")
    return "\n".join(lines)


def stubs() -> dict[str, Any]:
    facts = _facts()
    modules: dict[str, list[str]] = {}
    if_missing: list[dict[str, str]] = []
    for name in sorted(called_commands()):
        known = facts.command(name)
        if known.module in STUBBED_MODULES:
            modules.setdefault(known.module, []).append(stub(name))
        else:
            if_missing.append({"name": name, "module": known.module, "text": stub(name)})
    return {"modules": {m: "\n".join(texts) for m, texts in sorted(modules.items())},
            "if_missing": if_missing}


# --- the JEA functions --------------------------------------------------------------------------

# The lab directory's accounts (docs/lab-world.md) and a caller no grant names (not even Domain
# Users: an account of another domain, in Everyone and Authenticated Users only).
USERS = {"olivia": "olivia-demo", "henry": "henry-demo", "adam": "adam-demo",
         "rita": "rita-demo", "bea": "bea-demo", "hannah": "hannah-demo"}
STRANGER = {"name": "OTHER\\stranger", "user": "S-1-5-21-4000-5000-6000-1999",
            "groups": ["S-1-1-0", "S-1-5-11"]}


def callers() -> list[dict[str, Any]]:
    from lab.directory import LabDirectory
    directory = LabDirectory()
    out = []
    for user, password in USERS.items():
        identity = directory.sign_in(f"LAB\\{user}", password)
        out.append({"name": identity.name, "user": identity.sid,
                    "groups": sorted(s for s in identity.sids if s != identity.sid)})
    out.append(dict(STRANGER))
    return out


def _days(grants: Any) -> list[date]:
    """The days that decide: each expiry day (still valid) and the day after (expired)."""
    days = {date.fromisoformat(g.expires) for g in (*grants.grants, *grants.audit) if g.expires}
    out = sorted(days | {d + timedelta(days=1) for d in days})
    return out or [date(2026, 1, 1)]


def jea_actions(grants: Any) -> list[dict[str, Any]]:
    """One call per action of the endpoint, with the VM state it is accepted from."""
    from console import jea, states
    out = []
    for action, privilege in jea.POWER_PRIVILEGE.items():
        out.append({"name": f"power {action}", "function": "Invoke-HvcPower",
                    "arguments": {"Action": action}, "privilege": privilege,
                    "state": sorted(states.power_accepts(action))[0]})
    for action, privilege in jea.CHECKPOINT_PRIVILEGE.items():
        arguments: dict[str, Any] = {"Action": action}
        if action != "create":
            arguments["CheckpointId"] = CHECKPOINT
        if action == "rename":
            arguments["Name"] = TRICKY_NAME
        out.append({"name": f"checkpoint {action}", "function": "Invoke-HvcCheckpoint",
                    "arguments": arguments, "privilege": privilege, "state": "Running"})
    for action, privilege in jea.MEDIA_PRIVILEGE.items():
        arguments = {"Action": action, "ControllerType": "IDE", "Controller": 0, "Location": 1}
        if action == "mount":
            arguments["Path"] = grants.library[0].rstrip("\\") + "\\setup.iso"
        out.append({"name": f"media {action}", "function": "Invoke-HvcMedia",
                    "arguments": arguments, "privilege": privilege, "state": "Running"})
    return out


def jea_hosts() -> list[dict[str, Any]]:
    from console import jea
    from console.policy import Policy
    from lab.world import load_world
    policy = Policy.load(GOLDEN_POLICY)
    world = {h.name: h for h in load_world().hosts}
    people = callers()
    out = []
    for host in sorted(p.name for p in policy.hosts.values()):
        grants = jea.host_grants(policy, host)
        vms = [{"id": vm.id, "name": vm.name} for vm in world[host].host.vms]
        days = _days(grants)
        actions = jea_actions(grants)
        views, decisions = [], []
        for caller in people:
            sids = [caller["user"], *caller["groups"]]
            for day in days:
                visible = [vm["id"] for vm in vms
                           if "vm.view" in grants.rights(sids, vm["id"], vm["name"], day)]
                # Host facts need a grant on this host or rights on one of its VMs (not any
                # allow grant in the host's data): HostGrants.may_read_facts.
                facts = grants.may_read_facts(sids, [(vm["id"], vm["name"]) for vm in vms], day)
                views.append({"caller": caller["name"], "today": day.isoformat(),
                              "connect": grants.may_connect(sids, day), "facts": facts,
                              "audit": grants.may_read_audit(sids, day),
                              "hardening": grants.may_read_hardening(sids, day),
                              "visible": visible})
            for vm in vms:
                seen: list[frozenset[str]] = []
                for day in days:
                    rights = grants.rights(sids, vm["id"], vm["name"], day)
                    if rights in seen:  # the same answer as on a day already listed
                        continue
                    seen.append(rights)
                    decisions.append({"caller": caller["name"], "vm": vm["id"], "vm_name": vm["name"],
                                      "today": day.isoformat(),
                                      "allowed": [a["name"] for a in actions if a["privilege"] in rights],
                                      "console": "vm.console" in rights})
        out.append({
            "name": host,
            "psrc": f"tests/golden/jea/{host}/{jea.PSRC_FILE}",
            "library": list(grants.library),
            "enforced": grants.as_data(),
            "vms": vms,
            "actions": actions,
            "views": views,
            "decisions": decisions,
        })
    return out


def jea_cases() -> dict[str, Any]:
    from console import audit, jea
    guard = "if($PSVersionTable.PSVersion.Major -ge 6){'" + jea.REFUSED_ON_POWERSHELL_6 + "';return}"
    return {
        "functions": list(jea.FUNCTION_NAMES),
        "guard": guard,
        "refused_on_6": jea.REFUSED_ON_POWERSHELL_6,
        "event_source": jea.EVENT_SOURCE,
        "event_ids": dict(audit.HOST_EVENT_IDS),
        "record": RECORD,
        "checkpoint_id": CHECKPOINT,
        "callers": callers(),
        "hosts": jea_hosts(),
    }


# --- the file -------------------------------------------------------------------------------------

def build() -> dict[str, Any]:
    return {
        "_": "Written by tools/pester_cases.py from console/ and resources/powershell/; do not edit: "
             "run the script (tests/powershell/test_pester.py fails when this file is stale).",
        "command": command(),
        "contract_codes": contract_codes(),
        "operations": operations(),
        "transport": transport(),
        "power": power(),
        "errors": errors(),
        "binding": binding(),
        "stubs": stubs(),
        "jea": jea_cases(),
    }


def render(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when the committed file is not what this script writes")
    args = parser.parse_args(argv)
    text = render(build())
    if args.check:
        try:
            current = json.loads(OUT.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            print(f"{OUT.relative_to(ROOT)} cannot be read: {error}", file=sys.stderr)
            return 1
        if current != json.loads(text):  # parsed: a checkout's line endings do not matter
            print(f"{OUT.relative_to(ROOT)} is stale: run tools/pester_cases.py", file=sys.stderr)
            return 1
        return 0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text, encoding="utf-8", newline="\n")
    print(f"wrote {OUT.relative_to(ROOT)} ({len(text.encode())} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The host-side registration script (installer/jea/Register-HvConsoleEndpoint.ps1), read as a
PowerShell syntax tree: no Windows runs here, so these tests hold its structure to what Microsoft's
sources say a real Windows Server host does (docs/jea.md, docs/verification.md).

Each rule is a function returning the problems it finds, and each is shown to find one in a
variant of the script that breaks it, so none can pass vacuously.

"Document order" is the order the script runs its top-level code: a function's body counts where
the function is called, and a call counts as a change when the function it calls changes something.
"""
from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pytest

from console import jea
from console.powershell.syntax import Node, parse, text_of, walk
from lab import psd1

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "installer" / "jea" / "Register-HvConsoleEndpoint.ps1"
HOST_FACTS = ROOT / "resources" / "powershell" / "facts" / "host.toml"
GOLDEN = ROOT / "tests" / "golden" / "jea"

# Commands that change the host (files, ACLs, the event log, WinRM's configuration).
CHANGING = frozenset({
    "register-pssessionconfiguration", "unregister-pssessionconfiguration",
    "set-pssessionconfiguration", "set-acl", "copy-item", "move-item", "new-item", "remove-item",
    "rename-item", "set-content", "new-eventlog", "new-modulemanifest", "restart-service",
    "icacls", "icacls.exe",
})
LIVE, STAGED = "HvConsole", "HvConsole.Next"


def _name(command: Node) -> str:
    for child in command.children:
        if child.type == "command_name":
            return text_of(child).lower()
    return ""


def _inside(node: Node, kind: str) -> bool:
    parent = node.parent
    while parent is not None:
        if parent.type == kind:
            return True
        parent = parent.parent
    return False


def _enclosing(node: Node, kind: str) -> Node:
    parent = node.parent
    while parent is not None and parent.type != kind:
        parent = parent.parent
    return parent if parent is not None else node


def _line(node: Node) -> int:
    return node.start_point[0] + 1


@dataclass
class Script:
    text: str
    root: Node = field(init=False)

    def __post_init__(self) -> None:
        self.root = parse(self.text).root_node

    @cached_property
    def functions(self) -> dict[str, Node]:
        out = {}
        for node in walk(self.root):
            if node.type == "function_statement":
                name = next(c for c in node.children if c.type == "function_name")
                out[text_of(name).lower()] = node
        return out

    def commands(self, within: Node | None = None) -> list[Node]:
        """The commands of top-level code (or of `within`), in document order."""
        if within is not None:
            return [n for n in walk(within) if n.type == "command"]
        return [n for n in walk(self.root)
                if n.type == "command" and not _inside(n, "function_statement")]

    def effects(self, name: str, seen: frozenset[str] = frozenset()) -> set[str]:
        """The command names a call of `name` runs: itself and, for a function of the script,
        everything its body calls."""
        out = {name}
        if name in self.functions and name not in seen:
            for command in self.commands(self.functions[name]):
                out |= self.effects(_name(command), seen | {name})
        return out

    def changes(self, command: Node) -> bool:
        return bool(self.effects(_name(command)) & CHANGING)

    @cached_property
    def first_change(self) -> Node:
        return next(c for c in self.commands() if self.changes(c))

    def argument(self, command: Node, parameter: str) -> str | None:
        """The text of the argument after -parameter (or None)."""
        elements = next((c for c in command.children if c.type == "command_elements"), None)
        if elements is None:
            return None
        items = [c for c in elements.children if c.type != "command_argument_sep"]
        for i, item in enumerate(items):
            if item.type == "command_parameter" and text_of(item).lower() == "-" + parameter.lower() \
                    and i + 1 < len(items) and items[i + 1].type != "command_parameter":
                return text_of(items[i + 1])
        return None

    @cached_property
    def literals(self) -> dict[str, str]:
        """Top-level `$Variable = 'literal'` assignments."""
        out: dict[str, str] = {}
        for match in re.finditer(r"^\$(\w+) = '([^']*)'", self.text, re.M):
            out.setdefault(match.group(1).lower(), match.group(2))
        return out

    def value(self, argument: str | None) -> str | None:
        if argument is None:
            return None
        if argument.startswith("$"):
            return self.literals.get(argument[1:].lower())
        return argument.strip("'\"")

    def in_unregister_branch(self, node: Node) -> bool:
        """Inside the `if ($Unregister) { ... }` block (the -Unregister mode)."""
        parent = node.parent
        while parent is not None:
            if parent.type == "if_statement":
                condition = next(c for c in parent.children if c.type == "pipeline")
                if text_of(condition).strip() == "$Unregister":
                    return True
            parent = parent.parent
        return False


def script() -> Script:
    return Script(SCRIPT.read_text(encoding="utf-8"))


def variant(old: str, new: str, text: str | None = None) -> Script:
    """The script with one edit (the edited text must be there)."""
    text = SCRIPT.read_text(encoding="utf-8") if text is None else text
    assert old in text, old
    return Script(text.replace(old, new, 1))


def _calls(s: Script, name: str) -> Iterator[Node]:
    return (c for c in s.commands() if _name(c) == name.lower())


# --- the rules ------------------------------------------------------------------------------------

def principal_check_problems(s: Script) -> list[str]:
    """Every principal of the .pssc's RoleDefinitions is resolved (one by one, each failure
    named) before the first change, and a failure refuses the run."""
    resolvers = {name for name, body in s.functions.items()
                 if any(_name(c) == "get-ciminstance" and "Win32_Account" in text_of(c)
                        for c in s.commands(body))}
    loops = [n for n in walk(s.root) if n.type == "foreach_statement"
             and not _inside(n, "function_statement")
             and "RoleDefinitions" in text_of(n.children[n.children.index(
                 next(c for c in n.children if c.type == "in")) + 1])
             and any(_name(c) in resolvers for c in s.commands(n))]
    if not loops:
        return ["no loop over the RoleDefinitions resolves each principal (Win32_Account)"]
    loop, first = loops[0], s.first_change
    problems = []
    if loop.start_byte > first.start_byte:
        problems.append(f"principals are resolved (line {_line(loop)}) after a change: "
                        f"{text_of(first)[:60]} (line {_line(first)})")
    assignment = loop.parent
    while assignment is not None and assignment.type != "assignment_expression":
        assignment = assignment.parent
    missing = text_of(assignment.children[0]).strip() if assignment is not None else None
    refusals = [n for n in walk(s.root) if n.type == "flow_control_statement"
                and text_of(n).startswith("throw") and missing and missing in text_of(n)
                and loop.end_byte < n.start_byte < first.start_byte]
    if not refusals:
        problems.append("no refusal naming the principals that do not resolve before the first change")
    return problems


def core_type_names() -> frozenset[str]:
    table = tomllib.loads(HOST_FACTS.read_text(encoding="utf-8"))["constrained_language"]["core_types"]
    names = set()
    for full, accelerators in table.items():
        names |= {full.lower(), full.lower().removeprefix("system.")}
        names |= {a.lower() for a in accelerators}
    return frozenset(names)


def type_problems(s: Script) -> list[str]:
    """No type (literal, attribute, New-Object) outside ConstrainedLanguage's core types."""
    allowed = core_type_names()
    found = []
    for node in walk(s.root):
        if node.type == "type_spec" and node.parent is not None \
                and node.parent.type in ("type_literal", "attribute_name"):
            found.append((node, text_of(node)))
    for command in _calls(s, "New-Object"):
        found.append((command, s.argument(command, "TypeName") or text_of(command).split()[1]))
    problems = []
    for node, name in found:
        bare = re.sub(r"[(\[].*$", "", name).strip().lower()
        if bare not in allowed:
            problems.append(f"line {_line(node)}: [{name}] is not a ConstrainedLanguage core type")
    return problems


def group_problems(s: Script) -> list[str]:
    """Hyper-V Administrators is found by its SID before any change, and WinRM is never given
    the generated .pssc (which names the group in English), only the installed one."""
    problems = []
    lookups = [c for c in _calls(s, "Get-LocalGroup")
               if s.value(s.argument(c, "SID")) == "S-1-5-32-578"]
    if not lookups or lookups[0].start_byte > s.first_change.start_byte:
        problems.append("the local group is not looked up by SID S-1-5-32-578 before the first change")
    generated = {f"${m.group(1)}".lower() for m in re.finditer(
        r"^\s*\$(\w+) = Join-Path -Path \$Source -ChildPath 'HvConsole\.pssc'", s.text, re.M)}
    for command in _calls(s, "Register-PSSessionConfiguration"):
        path = (s.argument(command, "Path") or "").lower()
        if path in generated or "$source" in path:
            problems.append(f"line {_line(command)}: registers the generated .pssc itself")
    return problems


def pwsh_problems(s: Script) -> list[str]:
    """PowerShell 7 is refused, in a sentence, before anything changes."""
    refusals = [n for n in walk(s.root) if n.type == "if_statement"
                and not _inside(n, "function_statement")
                and "PSEdition" in text_of(n.children[2]) and "'Desktop'" in text_of(n.children[2])
                and re.search(r"throw ['\"].*(pwsh|PowerShell 7)", text_of(n))]
    if not refusals:
        return ["no refusal of PowerShell 7 ($PSVersionTable.PSEdition)"]
    if refusals[0].start_byte > s.first_change.start_byte:
        return [f"the PowerShell 7 refusal (line {_line(refusals[0])}) comes after a change"]
    return []


def switch_problems(s: Script) -> list[str]:
    """Registering never unregisters the live endpoint first: the new configuration registers
    under a second name, then replaces the live one, then the second name goes. The -Unregister
    mode still removes the live one."""
    problems = []
    steps = [(c, _name(c), s.value(s.argument(c, "Name"))) for c in s.commands()
             if _name(c) in ("register-pssessionconfiguration", "unregister-pssessionconfiguration")
             and not s.in_unregister_branch(c)]
    registers = [(c, n) for c, kind, n in steps if kind.startswith("register")]
    for command, kind, name in steps:
        if kind.startswith("unregister") and name == LIVE:
            problems.append(f"line {_line(command)}: unregisters the live endpoint {LIVE}")
    if not registers or registers[0][1] != STAGED:
        problems.append(f"the first registration is not the side-by-side one ({STAGED})")
    live = [c for c, n in registers if n == LIVE]
    if not live or (registers and live[0].start_byte < registers[0][0].start_byte):
        problems.append(f"{LIVE} is not registered after {STAGED}")
    for command, kind, name in steps:
        if kind.startswith("unregister") and name == STAGED and live \
                and command.start_byte < live[0].start_byte:
            problems.append(f"line {_line(command)}: {STAGED} is removed before {LIVE} is registered")
    removal = [c for c in s.commands() if s.in_unregister_branch(c)
               and _name(c) == "unregister-pssessionconfiguration"]
    if not removal:
        problems.append("-Unregister does not unregister the endpoint")
    return problems


def reparse_problems(s: Script) -> list[str]:
    """Links are told by LinkType; no test rejects every reparse point (deduplicated and
    cloud-tiered files are reparse points too)."""
    problems = [f"line {_line(n)}: {text_of(n)[:60]}" for n in walk(s.root)
                if n.type in ("string_literal", "generic_token") and "reparse" in text_of(n).lower()]
    if not any(n.type == "member_access" and text_of(n).endswith(".LinkType") for n in walk(s.root)):
        problems.append("links are not told by LinkType")
    return problems


def confirmation_problems(s: Script) -> list[str]:
    """Before the first change the script says that WinRM restarts and, unless -Force, asks."""
    first = s.first_change
    warnings = [c for c in _calls(s, "Write-Warning") if "WinRM" in text_of(c)]
    asks = [c for c in _calls(s, "Read-Host") if "$Force" in text_of(_enclosing(c, "if_statement"))]
    problems = []
    if not warnings or warnings[0].start_byte > first.start_byte:
        problems.append("no warning that WinRM restarts before the first change")
    if not asks or asks[0].start_byte > first.start_byte:
        problems.append("no confirmation (unless -Force) before the first change")
    return problems


def host_name_problems(s: Script) -> list[str]:
    """The host name is the short name or the FQDN, compared without regard to case."""
    problems = []
    if re.search(r"-c?(ne|eq)\s+\$env:COMPUTERNAME", s.text, re.I):
        problems.append("compares the host with $env:COMPUTERNAME alone")
    if not any("Win32_ComputerSystem" in text_of(c) for c in _calls(s, "Get-CimInstance")):
        problems.append("does not read the DNS host name and domain (Win32_ComputerSystem)")
    if not re.search(r"-notin \$\w+", s.text):
        problems.append("no case-insensitive comparison with the host's names")
    return problems


RULES: dict[str, Callable[[Script], list[str]]] = {
    "principals": principal_check_problems, "types": type_problems, "group": group_problems,
    "pwsh": pwsh_problems, "switch": switch_problems, "reparse": reparse_problems,
    "confirmation": confirmation_problems, "host_name": host_name_problems,
}


# --- the script keeps every rule ------------------------------------------------------------------

def test_the_script_parses() -> None:
    assert not script().root.has_error


@pytest.mark.parametrize("rule", sorted(RULES))
def test_the_script_keeps_the_rule(rule: str) -> None:
    assert RULES[rule](script()) == []


# --- and each rule finds a script that breaks it --------------------------------------------------

# The registration script before this rework (main at f6f89d8), in the parts the rules judge.
OLD_SCRIPT = r"""
param([string]$Source, [switch]$Unregister)
$ErrorActionPreference = 'Stop'
$Name = 'HvConsole'
$grants = Import-PowerShellDataFile -LiteralPath (Join-Path $Source 'HvConsole.Grants.psd1')
if ($grants.Host -ne $env:COMPUTERNAME) { throw "These files were generated for $($grants.Host)." }
Copy-Item (Join-Path $Source 'HvConsole.psrc') -Destination $Roles -Force
$acl = New-Object System.Security.AccessControl.DirectorySecurity
Set-Acl -Path $Module -AclObject $acl
if (-not [System.Diagnostics.EventLog]::SourceExists('HvConsole')) {
    New-EventLog -LogName Application -Source 'HvConsole'
}
$vmAccounts = New-Object System.Security.Principal.SecurityIdentifier('S-1-5-83-0')
foreach ($i in Get-ChildItem -LiteralPath $folder) { if ("$($i.Attributes)" -match 'ReparsePoint') { continue } }
if (Get-PSSessionConfiguration -Name $Name -ErrorAction SilentlyContinue) {
    Unregister-PSSessionConfiguration -Name $Name -Force -NoServiceRestart
}
Register-PSSessionConfiguration -Name $Name -Path $pssc -Force | Out-Null
"""  # noqa: E501 (a PowerShell script, its lines as written)


@pytest.mark.parametrize("rule", sorted(RULES))
def test_each_rule_finds_the_old_script_wrong(rule: str) -> None:
    assert RULES[rule](Script(OLD_SCRIPT)), rule


def test_a_change_before_the_principal_check_is_found() -> None:
    s = variant("$Name = 'HvConsole'\n",
                "$Name = 'HvConsole'\nCopy-Item -LiteralPath $Source -Destination $Roles\n")
    assert any("after a change" in p for p in principal_check_problems(s))
    # A function that changes something counts where it is called.
    s = variant("$Name = 'HvConsole'\n",
                "$Name = 'HvConsole'\nfunction Early { New-Item -Path $Roles }\nEarly\n")
    assert any("after a change" in p for p in principal_check_problems(s))
    s = variant("if ($missing.Count -gt 0) {", "if ($false) {")
    assert principal_check_problems(s) == []  # the refusal is still there, only never taken...
    s = variant('throw "Nothing was changed. These role definitions',
                'Write-Warning -Message "These role definitions')
    assert principal_check_problems(s)  # ...but without it, the check is found missing


def test_types_outside_the_core_types_are_found() -> None:
    problems = type_problems(variant("[long]$rights", "[System.Int128]$rights"))
    assert problems and "System.Int128" in problems[0]
    assert len(type_problems(Script(OLD_SCRIPT))) == 3  # DirectorySecurity, EventLog, SecurityIdentifier


def test_the_group_by_its_english_name_is_found() -> None:
    s = variant("Get-LocalGroup -SID 'S-1-5-32-578'", "Get-LocalGroup -Name 'Hyper-V Administrators'")
    assert group_problems(s)
    s = variant("Register-PSSessionConfiguration -Name $Name -Path $installed",
                "Register-PSSessionConfiguration -Name $Name -Path $pssc")
    assert any("generated .pssc" in p for p in group_problems(s))


def test_a_missing_pwsh_refusal_is_found() -> None:
    assert pwsh_problems(variant("$PSVersionTable.PSEdition -ne 'Desktop'", "$false"))


def test_unregistering_the_live_endpoint_first_is_found() -> None:
    s = variant("try {\n    Register-PSSessionConfiguration -Name $Staged",
                "Unregister-PSSessionConfiguration -Name $Name -Force\n"
                "try {\n    Register-PSSessionConfiguration -Name $Staged")
    assert any("unregisters the live endpoint" in p for p in switch_problems(s))
    s = variant("Unregister-PSSessionConfiguration -Name $Staged -Force -NoServiceRestart\n", "")
    s = variant("$previous = Get-PSSessionConfiguration",
                "Unregister-PSSessionConfiguration -Name $Staged -Force\n"
                "$previous = Get-PSSessionConfiguration", s.text)
    assert any("removed before" in p for p in switch_problems(s))


def test_rejecting_every_reparse_point_is_found() -> None:
    s = variant("if ($item.LinkType -notin 'SymbolicLink', 'Junction') { continue }",
                "if (\"$($item.Attributes)\" -notmatch 'ReparsePoint') { continue }")
    assert reparse_problems(s)


def test_a_missing_confirmation_is_found() -> None:
    assert confirmation_problems(variant("(Read-Host -Prompt 'Type yes to continue') -ne 'yes'", "$false"))


# --- what the script relies on in the generated files ---------------------------------------------

def generated_pssc() -> str:
    # The golden files are what the generator writes (tests/test_jea_generate.py holds it to them).
    return (GOLDEN / "HV01" / jea.PSSC_FILE).read_text(encoding="utf-8-sig")


def test_the_group_line_the_script_rewrites_is_the_generated_one() -> None:
    # The script replaces this exact text with the group's local name; if the generator wrote it
    # differently, a non-English host would get the English name.
    match = re.search(r'^\s*\$generated = "(.*)"$', SCRIPT.read_text(encoding="utf-8"), re.M)
    assert match, "the script names the generated RunAsVirtualAccountGroups line"
    assert match.group(1) in generated_pssc()
    assert "Hyper-V Administrators" in match.group(1)


def test_the_host_and_digest_the_script_reads_are_in_the_generated_description() -> None:
    # The script reads them with -notmatch ' of (?<host>\S+), policy sha256 (?<digest>[0-9a-f]{64})'.
    config = psd1.parse_psd1(generated_pssc())
    match = re.search(r" of (?P<host>\S+), policy sha256 (?P<digest>[0-9a-f]{64})", config["Description"])
    assert match and match.group("host") == "HV01"
    assert "' of (?<host>\\S+), policy sha256 (?<digest>[0-9a-f]{64})'" in SCRIPT.read_text(encoding="utf-8")

"""Extract PowerShell command facts from Microsoft's help sources into resources/powershell/facts.

    .venv/bin/python tools/psfacts.py            # writes resources/powershell/facts/commands.json
    .venv/bin/python tools/psfacts.py --check    # exit 1 when the committed file differs

The help sources are git repositories (bare clones are fine; files are read with `git show`):

- MicrosoftDocs/PowerShell-Docs: reference/5.1/<Module>/<Command>.md and reference/7.4/...
  (targets "5.1" and "7.4": Windows PowerShell 5.1 and PowerShell 7.4)
- MicrosoftDocs/windows-powershell-docs: docset/winserverYYYY-ps/<Module>/<Command>.md
  (targets "2019", "2022", "2025": the modules of Windows Server 2019, 2022, 2025)

The pages are platyPS markdown: `## SYNTAX` has one fenced block per parameter set under
`### SetName` (`(Default)` marks the default set), `## PARAMETERS` has `### -Name` with yaml
blocks (Type, Parameter Sets, Aliases, Required, Position, Accept pipeline input); a parameter
whose Required/Position differ by set has several yaml blocks. Only derived facts (names, types,
sets) are written, with the repository, commit and licence of the pages they come from
(the docs text is CC BY 4.0).
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "resources" / "powershell" / "facts" / "commands.json"
MIRROR = Path("/work/.mirror")
POWERSHELL_DOCS = MIRROR / "MicrosoftDocs+PowerShell-Docs" / "repo"
WINDOWS_DOCS = MIRROR / "MicrosoftDocs+windows-powershell-docs" / "repo"

PS_REPO = "MicrosoftDocs/PowerShell-Docs"
WIN_REPO = "MicrosoftDocs/windows-powershell-docs"
LICENCE = "CC BY 4.0"

# Every command the project's PowerShell calls, by the module that exports it (the page's
# "Module Name" must agree; the extractor stops when it does not).
COMMANDS: dict[str, list[str]] = {
    "Microsoft.PowerShell.Utility": [
        "ConvertFrom-Json", "ConvertTo-Json", "Select-Object", "Sort-Object", "Measure-Object",
        "Get-Date", "Import-PowerShellDataFile", "New-Object", "Write-Output", "Get-FileHash",
        "Get-Member", "Get-Unique", "Group-Object", "Write-Warning", "Write-Host",
        "Write-Verbose", "Read-Host",
    ],
    "Microsoft.PowerShell.Core": [
        "Where-Object", "ForEach-Object", "Out-Null", "Register-PSSessionConfiguration",
        "Unregister-PSSessionConfiguration", "Get-PSSessionConfiguration",
        "Set-PSSessionConfiguration", "Test-PSSessionConfigurationFile",
        "New-PSSessionConfigurationFile", "New-PSRoleCapabilityFile", "Get-Command",
        "Get-Module", "Import-Module",
    ],
    "Microsoft.PowerShell.Management": [
        "Get-ItemProperty", "Get-HotFix", "Split-Path", "Join-Path", "Get-PSDrive",
        "Get-ChildItem", "Get-Item", "Test-Path", "Write-EventLog", "New-EventLog",
        "Get-EventLog", "New-Item", "Copy-Item", "Move-Item", "Remove-Item", "Rename-Item",
        "Get-Content", "Set-Content", "Add-Content", "Resolve-Path", "Restart-Service",
        "Get-Service",
    ],
    "CimCmdlets": ["Get-CimInstance", "Invoke-CimMethod"],
    "Microsoft.PowerShell.Diagnostics": ["Get-WinEvent"],
    "Microsoft.PowerShell.Security": ["Get-Acl", "Set-Acl"],
    "Microsoft.PowerShell.LocalAccounts": ["Get-LocalGroup", "Get-LocalGroupMember", "Get-LocalUser"],
    "Microsoft.WSMan.Management": ["Get-WSManInstance"],
    "ServerManager": ["Get-WindowsFeature"],
    "Hyper-V": [
        "Get-VM", "Get-VMSnapshot", "Checkpoint-VM", "Restore-VMSnapshot", "Remove-VMSnapshot",
        "Rename-VMSnapshot", "Get-VMHost", "Get-VMDvdDrive", "Get-VMHardDiskDrive",
        "Get-VMIntegrationService", "Set-VMDvdDrive", "Start-VM", "Stop-VM", "Restart-VM",
        "Save-VM", "Suspend-VM", "Resume-VM", "Remove-VMSavedState", "New-VM", "Remove-VM",
        "Set-VM", "Get-VMNetworkAdapter", "Get-VMProcessor", "Get-VMMemory", "Get-VMFirmware",
        "Grant-VMConnectAccess", "Revoke-VMConnectAccess", "Get-VMConnectAccess", "Measure-VM",
        "Enable-VMResourceMetering", "Disable-VMResourceMetering", "Get-VHD", "Get-VMSecurity",
        "Get-VMNetworkAdapterVlan",
    ],
    "Storage": ["Get-Volume"],
    "SmbShare": ["Get-SmbShare"],
}

# Modules documented in windows-powershell-docs (one docset per Windows Server release); every
# other module is documented in PowerShell-Docs.
WINDOWS_SERVER_MODULES = frozenset({"Hyper-V", "Storage", "SmbShare", "ServerManager"})


@dataclass(frozen=True)
class TargetSpec:
    name: str
    repo: str
    folder: str  # the folder holding <Module>/<Command>.md
    engine: str  # the PowerShell whose common parameters apply


TARGETS: tuple[TargetSpec, ...] = (
    TargetSpec("5.1", PS_REPO, "reference/5.1", "5.1"),
    TargetSpec("7.4", PS_REPO, "reference/7.4", "7.4"),
    # Windows Server's modules run in the server's Windows PowerShell 5.1.
    TargetSpec("2019", WIN_REPO, "docset/winserver2019-ps", "5.1"),
    TargetSpec("2022", WIN_REPO, "docset/winserver2022-ps", "5.1"),
    TargetSpec("2025", WIN_REPO, "docset/winserver2025-ps", "5.1"),
)
ENGINES = ("5.1", "7.4")
ALL_SETS = "__AllParameterSets"


class PageError(ValueError):
    """A help page that does not have the platyPS shape this extractor reads."""


# ---------------------------------------------------------------------------------------------
# platyPS markdown


def _front_matter(text: str) -> dict[str, str]:
    lines = text.lstrip("\ufeff").splitlines()
    if not lines or lines[0].strip() != "---":
        return {}
    out: dict[str, str] = {}
    for line in lines[1:]:
        if line.strip() == "---":
            break
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out


def _sections(text: str, level: str) -> dict[str, list[str]]:
    """The lines under each heading of `level` ('## '), up to the next heading of that level;
    fenced code blocks never end a section."""
    out: dict[str, list[str]] = {}
    current: list[str] | None = None
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        if not fenced and line.startswith(level) and not line.startswith(level + "#"):
            current = out.setdefault(line[len(level):].strip(), [])
            continue
        if current is not None:
            current.append(line)
    return out


def _fenced_blocks(lines: list[str]) -> list[tuple[str | None, str, list[str]]]:
    """(the last `### ` heading before it, the fence's info string, its lines) for each block."""
    out: list[tuple[str | None, str, list[str]]] = []
    heading: str | None = None
    block: list[str] | None = None
    info = ""
    for line in lines:
        stripped = line.strip()
        if block is None:
            if stripped.startswith("```"):
                block, info = [], stripped[3:].strip().lower()
            elif line.startswith("### "):
                heading = line[4:].strip()
        elif stripped.startswith("```"):
            out.append((heading, info, block))
            block = None
        else:
            block.append(line)
    return out


def _yaml(lines: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in lines:
        key, sep, value = line.partition(":")
        if sep and key.strip():
            out[key.strip()] = value.strip()
    return out


_DOTTED = re.compile(r"\b(?:[A-Za-z_]\w*\.)+([A-Za-z_]\w*)")


def short_type(text: str) -> str:
    """`System.String[]` -> `String[]`, `Microsoft.HyperV.PowerShell.VMSnapshot` -> `VMSnapshot`."""
    return _DOTTED.sub(r"\1", text.strip())


def _position(text: str, where: str) -> int | None:
    value = text.strip()
    if value.lower() in ("named", ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise PageError(f"{where}: position {value!r} is neither Named nor a number") from None


def _required(text: str, where: str) -> bool:
    words = set(text.strip().lower().split())
    value = words.pop() if len(words) == 1 else text  # "False False" (a typo on one page)
    if value in ("true", "false"):
        return value == "true"
    raise PageError(f"{where}: Required {text!r} is neither True nor False")


_PER_SET = re.compile(r"\s*(\w+)\s*\(([^)]*)\)\s*,?")


def _by_set(text: str, sets: list[str], where: str, warnings: list[str]) -> dict[str, str]:
    """`True (A, B), False (C)` (the value differs by set, written on one line) -> {A: True, ...};
    a plain value applies to every set."""
    if "(" not in text:
        return {name: text for name in sets}
    out: dict[str, str] = {}
    end = 0
    for match in _PER_SET.finditer(text):
        if match.start() != end:
            break
        end = match.end()
        for name in _list(match[2]):
            if name in sets:
                out[name] = match[1]
            else:
                warnings.append(f"{where}: {text!r} names {name}, not a set of this parameter; ignored")
    if end != len(text.rstrip()) or set(out) != set(sets):
        raise PageError(f"{where}: cannot read {text!r} for the sets {sets}")
    return out


def _list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


_SET_HEADING = re.compile(r"^(?P<name>.+?)\s*(?P<default>\(Default\))?\s*(?:-\s+[\w ]*providers?)?$")
# "This is a dynamic parameter made available by the **FileSystem** provider." or
# "This parameter is only available in the [FileSystem](../about_FileSystem_Provider.md) provider."
_DYNAMIC = re.compile(r"(?:dynamic parameter (?:made )?available (?:by|in)|parameter is only available in)"
                      r"\s+the\s+\[?\**(\w+)\**\]?(?:\([^)]*\))?\s+provider", re.I)
_SYNTAX_PARAMETER = re.compile(r"(?<![\w<])-([A-Za-z_]\w*)")


def parse_page(text: str, where: str = "page") -> dict[str, Any]:
    """The facts of one platyPS page: module, default set, sets of parameters, common parameters.

    Returns {"module", "default_set", "common_parameters", "sets": {set: {param: {...}}},
    "warnings": [...]} where warnings name disagreements between SYNTAX and PARAMETERS.
    """
    front = _front_matter(text)
    sections = _sections(text, "## ")
    if "SYNTAX" not in sections or "PARAMETERS" not in sections:
        raise PageError(f"{where}: no ## SYNTAX or ## PARAMETERS section")
    warnings: list[str] = []

    # SYNTAX: the sets, their order, the default, and which parameters each block shows.
    set_names: list[str] = []
    default_set: str | None = None
    syntax_params: dict[str, set[str]] = {}
    common = False
    for heading, _info, block in _fenced_blocks(sections["SYNTAX"]):
        # "pathSet (Default) - WSMan provider": provider pages show a set once per provider.
        heading_match = _SET_HEADING.match(heading or ALL_SETS)
        if not heading_match:
            raise PageError(f"{where}: cannot read the syntax heading {heading!r}")
        name = heading_match["name"]
        if heading_match["default"]:
            if default_set not in (None, name):
                raise PageError(f"{where}: two default sets, {default_set} and {name}")
            default_set = name
        body = " ".join(block)
        common = common or "<CommonParameters>" in body
        if name not in syntax_params:
            set_names.append(name)
            syntax_params[name] = set()
        syntax_params[name] |= set(_SYNTAX_PARAMETER.findall(body.replace("<CommonParameters>", "")))
    if not set_names:
        raise PageError(f"{where}: ## SYNTAX has no syntax block")
    if default_set is None and len(set_names) == 1:
        default_set = set_names[0]

    # PARAMETERS: one or more yaml blocks per parameter.
    spelled = {name.lower(): name for name in set_names}
    entries: list[tuple[str, dict[str, str], str | None, list[str] | None]] = []
    for name_line, lines in _sections("\n".join(sections["PARAMETERS"]), "### ").items():
        if not name_line.startswith("-"):
            continue  # ### CommonParameters
        param = name_line[1:].split()[0]
        blocks = [_yaml(b) for _h, info, b in _fenced_blocks(lines) if info in ("yaml", "yml")]
        dynamic = _DYNAMIC.search(" ".join(line.lstrip("> ") for line in lines))
        if not blocks:
            warnings.append(f"{where}: -{param} has no yaml block; left out")
        for block in blocks:
            sets: list[str] | None = _list(block.get("Parameter Sets", "(All)"))
            if sets and len(sets) == 1 and sets[0].lower() in ("(all)", "all", ALL_SETS.lower()) \
                    and sets[0].lower() not in spelled:
                sets = None  # every set
            entries.append((param, block, dynamic[1] if dynamic else None, sets))

    # Sets that only PARAMETERS names: SYNTAX's headings misname them (7.4's Import-Module shows
    # UseWindowsPowerShell where the cmdlet and PARAMETERS say WinCompat). Then the SYNTAX sets
    # that no parameter names are the misnamed ones.
    named = {name.lower(): name for *_rest, sets in entries for name in sets or ()}
    only_yaml = [name for key, name in named.items() if key not in spelled]
    if only_yaml:
        for name in list(set_names):
            if name.lower() not in named and name != default_set:
                warnings.append(f"{where}: set {name} is in SYNTAX only, no parameter names it; left out")
                set_names.remove(name)
        for name in only_yaml:
            warnings.append(f"{where}: set {name} is not in SYNTAX; added")
            set_names.append(name)
            syntax_params.setdefault(name, set())
        spelled = {name.lower(): name for name in set_names}

    per_set: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in set_names}
    for param, block, provider, block_sets in entries:
        here = f"{where} -{param}"
        # Set names as SYNTAX spells them (one page writes DESCRIPTION there, Description here).
        sets = list(set_names) if block_sets is None else [spelled[name.lower()] for name in block_sets]
        required = _by_set(block.get("Required", "False"), sets, here, warnings)
        position = _by_set(block.get("Position", "Named"), sets, here, warnings)
        for set_name in sets:
            fact: dict[str, Any] = {
                "type": short_type(block.get("Type", "Object")),
                "mandatory": _required(required[set_name], here),
                "position": _position(position[set_name], here),
                "pipeline": block.get("Accept pipeline input", "False").lower().startswith("true"),
                "aliases": _list(block.get("Aliases", "")),
            }
            values = _list(block.get("Accepted values", ""))
            if values:
                fact["values"] = values
            if provider:
                fact["provider"] = provider
            per_set[set_name][param] = fact

    provider_params = {name.lower() for facts in per_set.values() for name, fact in facts.items()
                       if "provider" in fact}
    for set_name in set_names:
        # Provider parameters (dynamic) are documented in every set but shown in none.
        documented = {name.lower() for name, fact in per_set[set_name].items() if "provider" not in fact}
        shown = {name.lower() for name in syntax_params[set_name]} - provider_params
        if shown - documented:
            warnings.append(f"{where}: set {set_name}: SYNTAX shows {sorted(shown - documented)} "
                            "that PARAMETERS does not place in it")
        if documented - shown:
            warnings.append(f"{where}: set {set_name}: PARAMETERS places {sorted(documented - shown)} "
                            "in it that SYNTAX does not show")
    return {
        "title": front.get("title", ""),
        "module": front.get("Module Name", ""),
        "default_set": default_set,
        "common_parameters": common,
        "sets": per_set,
        "warnings": warnings,
    }


_ADDED_IN = re.compile(r"added in\s+PowerShell\s+(\d+)\.(\d+)", re.IGNORECASE)


def parse_common_parameters(text: str, engine: str) -> dict[str, dict[str, Any]]:
    """The common parameters of about_CommonParameters' "## Common parameters" section, leaving
    out any the page says was added in a later PowerShell than `engine`."""
    section = _sections(text, "## ").get("Common parameters")
    if not section:
        raise PageError("about_CommonParameters: no '## Common parameters' section")
    major, minor = (int(part) for part in engine.split("."))
    out: dict[str, dict[str, Any]] = {}
    for name_line, lines in _sections("\n".join(section), "### ").items():
        if not name_line.startswith("-"):
            continue
        added = _ADDED_IN.search(" ".join(lines))
        if added and (int(added[1]), int(added[2])) > (major, minor):
            continue
        blocks = [_yaml(b) for _h, info, b in _fenced_blocks(lines) if info in ("yaml", "yml")]
        if not blocks:
            raise PageError(f"about_CommonParameters: {name_line} has no yaml block")
        out[name_line[1:].strip()] = {
            "type": short_type(blocks[0].get("Type", "Object")),
            "aliases": _list(blocks[0].get("Aliases", "")),
        }
    return out


# ---------------------------------------------------------------------------------------------
# reading the repositories


class Repo:
    def __init__(self, name: str, git_dir: Path) -> None:
        self.name = name
        self.git_dir = git_dir
        self.commit = self._git("rev-parse", "HEAD").strip()
        self.files = set(self._git("ls-tree", "-r", "--name-only", self.commit).splitlines())

    def _git(self, *args: str) -> str:
        return subprocess.run(["git", f"--git-dir={self.git_dir}", *args], check=True,
                              capture_output=True, text=True, encoding="utf-8").stdout

    def read(self, path: str) -> str:
        return self._git("show", f"{self.commit}:{path}")


def extract(repos: dict[str, Repo], log: Any = None) -> dict[str, Any]:
    log = log or sys.stderr
    commands: dict[str, Any] = {}
    left_out: list[str] = []
    warnings: list[str] = []
    for module, names in COMMANDS.items():
        windows = module in WINDOWS_SERVER_MODULES
        for name in names:
            targets: dict[str, Any] = {}
            for spec in TARGETS:
                if (spec.repo == WIN_REPO) != windows:
                    continue
                repo = repos[spec.repo]
                path = f"{spec.folder}/{module}/{name}.md"
                if path not in repo.files:
                    left_out.append(f"{name} ({module}): no page for target {spec.name} ({path})")
                    continue
                page = parse_page(repo.read(path), f"{spec.name}:{path}")
                if page["module"] != module:
                    raise PageError(f"{path}: Module Name is {page['module']!r}, COMMANDS says {module!r}")
                if page["title"] and page["title"].lower() != name.lower():
                    raise PageError(f"{path}: title is {page['title']!r}, not {name!r}")
                warnings.extend(page["warnings"])
                targets[spec.name] = {
                    "source": f"{spec.repo}:{path}",
                    "engine": spec.engine,
                    "default_set": page["default_set"],
                    "common_parameters": page["common_parameters"],
                    "sets": page["sets"],
                }
            if not targets:
                left_out.append(f"{name} ({module}): no target at all")
                continue
            commands[name] = {"module": module, "targets": targets}

    common: dict[str, Any] = {}
    for engine in ENGINES:
        path = f"reference/{engine}/Microsoft.PowerShell.Core/About/about_CommonParameters.md"
        common[engine] = {
            "source": f"{PS_REPO}:{path}",
            "parameters": parse_common_parameters(repos[PS_REPO].read(path), engine),
        }

    for line in warnings:
        print(f"warning: {line}", file=log)
    for line in left_out:
        print(f"left out: {line}", file=log)
    return {
        "sources": {repo.name: {"commit": repo.commit, "licence": LICENCE} for repo in repos.values()},
        "targets": {spec.name: {"folder": f"{spec.repo}:{spec.folder}", "engine": spec.engine}
                    for spec in TARGETS},
        "common_parameters": common,
        "commands": commands,
    }


def render(facts: dict[str, Any]) -> str:
    return json.dumps(facts, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--powershell-docs", type=Path, default=POWERSHELL_DOCS,
                        help="git directory of MicrosoftDocs/PowerShell-Docs")
    parser.add_argument("--windows-docs", type=Path, default=WINDOWS_DOCS,
                        help="git directory of MicrosoftDocs/windows-powershell-docs")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 when --out differs from what would be written")
    args = parser.parse_args(argv)
    repos = {PS_REPO: Repo(PS_REPO, args.powershell_docs), WIN_REPO: Repo(WIN_REPO, args.windows_docs)}
    text = render(extract(repos))
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is not what the sources give: run tools/psfacts.py", file=sys.stderr)
            return 1
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8", newline="\n")
    print(f"wrote {args.out} ({len(json.loads(text)['commands'])} commands)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

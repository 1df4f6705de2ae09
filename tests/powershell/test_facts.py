"""The PowerShell facts: the extractor (tools/psfacts.py), the committed data, and bind()."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from console.powershell import facts
from console.powershell.facts import BindingError, bind
from tests.support import tool

ROOT = Path(__file__).resolve().parents[2]
FACTS = ROOT / "resources" / "powershell" / "facts"


psfacts = tool("psfacts")

# A small platyPS page (written for this test): two sets, a parameter whose Required and Position
# differ by set (two yaml blocks), one written per set on one line, (All), aliases, pipeline input,
# accepted values, a provider's dynamic parameter.
PAGE = """---
external help file: Example.dll-Help.xml
Module Name: Example.Module
schema: 2.0.0
title: Get-Widget
---

# Get-Widget

## SYNOPSIS
Gets widgets.

## SYNTAX

### ByName (Default)

```
Get-Widget [-Name] <String[]> [-Kind <WidgetKind>] [-Force] [-WhatIf] [<CommonParameters>]
```

### ById

```
Get-Widget -Id <Guid> [[-Name] <String[]>] [-Kind <WidgetKind>] [-Force] [-WhatIf] [<CommonParameters>]
```

## DESCRIPTION
A made-up cmdlet. `Get-Widget -Bogus` in prose is not a parameter.

## EXAMPLES

### Example 1
```powershell
Get-Widget -Name a
```

## PARAMETERS

### -Name
The names.

```yaml
Type: System.String[]
Parameter Sets: ByName
Aliases: WidgetName, WN

Required: True
Position: 0
Default value: None
Accept pipeline input: True (ByPropertyName, ByValue)
Accept wildcard characters: True
```

```yaml
Type: System.String[]
Parameter Sets: ById
Aliases: WidgetName, WN

Required: False
Position: 1
Default value: None
Accept pipeline input: False
Accept wildcard characters: True
```

### -Id
The id.

```yaml
Type: System.Guid
Parameter Sets: ById
Aliases:

Required: True
Position: Named
Default value: None
Accept pipeline input: True (ByPropertyName)
Accept wildcard characters: False
```

### -Kind
The kind.

```yaml
Type: Example.Module.WidgetKind
Parameter Sets: ByName, ById
Aliases:
Accepted values: Round, Square

Required: False (ByName), True (ById)
Position: Named
Default value: None
Accept pipeline input: False
Accept wildcard characters: False
```

### -Force
> [!NOTE]
> This is a dynamic parameter made available by the **FileSystem** provider.

```yaml
Type: System.Management.Automation.SwitchParameter
Parameter Sets: (All)
Aliases:

Required: False
Position: Named
Default value: False
Accept pipeline input: False
Accept wildcard characters: False
```

### -WhatIf
Shows what would happen.

```yaml
Type: System.Management.Automation.SwitchParameter
Parameter Sets: (All)
Aliases: wi

Required: False
Position: Named
Default value: False
Accept pipeline input: False
Accept wildcard characters: False
```

### CommonParameters
This cmdlet supports the common parameters.

## INPUTS

## OUTPUTS
"""

ABOUT_COMMON = """---
title: about_CommonParameters
---
# about_CommonParameters

## Common parameters

### -ErrorAction
Says what to do on an error.

```yaml
Type: ActionPreference
Aliases: ea
Required: False
```

### -ProgressAction
The `ProgressAction` parameter was added in PowerShell 7.4.

```yaml
Type: ActionPreference
Aliases: proga
Required: False
```

## Risk management parameters

### -WhatIf

```yaml
Type: SwitchParameter
Aliases: wi
```
"""


# ---------------------------------------------------------------------------------------------
# the extractor


def test_parse_page_reads_sets_parameters_and_per_set_values() -> None:
    page = psfacts.parse_page(PAGE, "test")
    assert page["module"] == "Example.Module"
    assert page["default_set"] == "ByName"
    assert page["common_parameters"] is True
    assert set(page["sets"]) == {"ByName", "ById"}
    by_name, by_id = page["sets"]["ByName"], page["sets"]["ById"]
    assert "Id" not in by_name
    assert by_name["Name"] == {"type": "String[]", "mandatory": True, "position": 0, "pipeline": True,
                               "aliases": ["WidgetName", "WN"]}
    assert by_id["Name"]["mandatory"] is False and by_id["Name"]["position"] == 1
    assert by_id["Name"]["pipeline"] is False
    assert by_id["Id"]["position"] is None and by_id["Id"]["type"] == "Guid"
    assert by_name["Kind"]["mandatory"] is False and by_id["Kind"]["mandatory"] is True
    assert by_name["Kind"]["values"] == ["Round", "Square"] and by_name["Kind"]["type"] == "WidgetKind"
    assert by_name["Force"]["provider"] == "FileSystem" and by_id["Force"]["type"] == "SwitchParameter"
    assert by_name["WhatIf"]["aliases"] == ["wi"]
    assert "Bogus" not in by_name
    assert page["warnings"] == []


def test_parse_page_without_set_headings_is_one_set_and_reports_disagreements() -> None:
    text = PAGE.replace("### ByName (Default)\n", "").replace(
        "### ById\n\n```\nGet-Widget -Id <Guid> [[-Name] <String[]>] [-Kind <WidgetKind>] [-Force] [-WhatIf] "
        "[<CommonParameters>]\n```\n", "")
    text = text.replace("Parameter Sets: ByName\n", "Parameter Sets: (All)\n")
    text = text.replace("Parameter Sets: ById\n", "Parameter Sets: (All)\n")
    text = text.replace("Parameter Sets: ByName, ById\n", "Parameter Sets: (All)\n")
    text = text.replace("Required: False (ByName), True (ById)", "Required: False")
    page = psfacts.parse_page(text, "test")
    assert list(page["sets"]) == ["__AllParameterSets"]
    assert page["default_set"] == "__AllParameterSets"
    # The second yaml block of -Name (now also (All)) is read after the first: the later one wins.
    assert page["sets"]["__AllParameterSets"]["Name"]["position"] == 1
    # SYNTAX does not show -Id, PARAMETERS places it: said, not hidden.
    assert any("['id']" in w for w in page["warnings"])


def test_parse_page_refuses_a_page_without_syntax() -> None:
    with pytest.raises(psfacts.PageError):
        psfacts.parse_page("# Get-Widget\n\n## PARAMETERS\n", "test")


def test_common_parameters_leave_out_later_ones() -> None:
    assert set(psfacts.parse_common_parameters(ABOUT_COMMON, "5.1")) == {"ErrorAction"}
    both = psfacts.parse_common_parameters(ABOUT_COMMON, "7.4")
    assert both["ProgressAction"] == {"type": "ActionPreference", "aliases": ["proga"]}
    assert "WhatIf" not in both  # a risk management parameter, on the pages that have it


def _git_repo(path: Path, files: dict[str, str]) -> str:
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text, encoding="utf-8")

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(path), *args], check=True, capture_output=True,
                              text=True).stdout

    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-q", "-m", "pages")
    return git("rev-parse", "HEAD").strip()


def test_extractor_end_to_end_on_small_repositories(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    split_path = PAGE.replace("Example.Module", "Microsoft.PowerShell.Management") \
        .replace("Get-Widget", "Split-Path")
    stop_vm = PAGE.replace("Example.Module", "Hyper-V").replace("Get-Widget", "Stop-VM")
    about = "reference/{}/Microsoft.PowerShell.Core/About/about_CommonParameters.md"
    ps_commit = _git_repo(tmp_path / "ps", {
        "reference/5.1/Microsoft.PowerShell.Management/Split-Path.md": split_path,
        about.format("5.1"): ABOUT_COMMON, about.format("7.4"): ABOUT_COMMON,
    })
    win_commit = _git_repo(tmp_path / "win", {"docset/winserver2022-ps/Hyper-V/Stop-VM.md": stop_vm})
    out = tmp_path / "commands.json"
    args = ["--powershell-docs", str(tmp_path / "ps" / ".git"),
            "--windows-docs", str(tmp_path / "win" / ".git"), "--out", str(out)]
    assert psfacts.main(args) == 0
    text = out.read_text(encoding="utf-8")
    data = json.loads(text)
    assert text.endswith("}\n") and text == psfacts.render(data)  # sorted keys, indent 1
    assert data["sources"] == {
        "MicrosoftDocs/PowerShell-Docs": {"commit": ps_commit, "licence": "CC BY 4.0"},
        "MicrosoftDocs/windows-powershell-docs": {"commit": win_commit, "licence": "CC BY 4.0"},
    }
    assert set(data["commands"]) == {"Split-Path", "Stop-VM"}
    split = data["commands"]["Split-Path"]
    assert split["module"] == "Microsoft.PowerShell.Management" and set(split["targets"]) == {"5.1"}
    assert split["targets"]["5.1"]["source"] == \
        "MicrosoftDocs/PowerShell-Docs:reference/5.1/Microsoft.PowerShell.Management/Split-Path.md"
    assert set(data["commands"]["Stop-VM"]["targets"]) == {"2022"}
    assert set(data["common_parameters"]["5.1"]["parameters"]) == {"ErrorAction"}
    err = capsys.readouterr().err
    assert "left out: Split-Path (Microsoft.PowerShell.Management): no page for target 7.4" in err
    assert "left out: Stop-VM (Hyper-V): no page for target 2019" in err
    assert "left out: Get-VM (Hyper-V): no target at all" in err
    assert psfacts.main([*args, "--check"]) == 0
    out.write_text(text.replace("ByName", "ByNom"), encoding="utf-8")
    assert psfacts.main([*args, "--check"]) == 1


def test_extractor_refuses_a_page_of_another_module(tmp_path: Path) -> None:
    about = "reference/{}/Microsoft.PowerShell.Core/About/about_CommonParameters.md"
    _git_repo(tmp_path / "ps", {
        "reference/5.1/Microsoft.PowerShell.Management/Split-Path.md":
            PAGE.replace("Get-Widget", "Split-Path"),
        about.format("5.1"): ABOUT_COMMON, about.format("7.4"): ABOUT_COMMON,
    })
    _git_repo(tmp_path / "win", {"README.md": "empty\n"})
    with pytest.raises(psfacts.PageError, match="Module Name"):
        psfacts.main(["--powershell-docs", str(tmp_path / "ps" / ".git"), "--windows-docs",
                      str(tmp_path / "win" / ".git"), "--out", str(tmp_path / "out.json")])


MIRRORS = Path("/work/.mirror")


@pytest.mark.skipif(not (psfacts.POWERSHELL_DOCS.exists() and psfacts.WINDOWS_DOCS.exists()),
                    reason="Microsoft's help repositories are not mirrored on this machine")
def test_committed_commands_json_is_what_the_sources_give() -> None:
    assert psfacts.main(["--check"]) == 0


# ---------------------------------------------------------------------------------------------
# the committed data


def test_every_listed_command_is_in_the_data_with_a_target() -> None:
    listed = {name for names in psfacts.COMMANDS.values() for name in names}
    data = json.loads((FACTS / "commands.json").read_text(encoding="utf-8"))
    assert set(data["commands"]) == listed
    for name in listed:
        command = facts.command(name)
        assert command is not None and command.targets, name
        for target in command.targets.values():
            assert target.sets and target.common_parameters, name
            assert target.default_set is None or target.default_set in target.sets, name


def test_the_sources_are_recorded_with_commit_and_licence() -> None:
    sources = facts.sources()
    assert set(sources) == {"MicrosoftDocs/PowerShell-Docs", "MicrosoftDocs/windows-powershell-docs"}
    for fact in sources.values():
        assert re.fullmatch(r"[0-9a-f]{40}", fact["commit"]) and fact["licence"] == "CC BY 4.0"
    for command in facts.commands():
        for target in command.targets.values():
            repo, _, path = target.source.partition(":")
            assert repo in sources and path.endswith(f"/{command.name}.md"), target.source


def test_hyperv_and_windows_server_modules_have_the_three_server_targets() -> None:
    for name in psfacts.COMMANDS["Hyper-V"] + ["Get-Volume", "Get-SmbShare"]:
        command = facts.command(name)
        assert command is not None and set(command.targets) == {"2019", "2022", "2025"}, name
    assert set(facts.command("Split-Path").targets) == {"5.1", "7.4"}  # type: ignore[union-attr]
    assert set(facts.command("Write-EventLog").targets) == {"5.1"}  # type: ignore[union-attr]
    assert facts.command("Out-Null").module == "Microsoft.PowerShell.Core"  # type: ignore[union-attr]


def test_split_path_literal_path_set_has_no_parent() -> None:
    command = facts.command("split-path")
    assert command is not None and command.module == "Microsoft.PowerShell.Management"
    for target in ("5.1", "7.4"):
        sets = command.targets[target].sets
        assert "Parent" not in sets["LiteralPathSet"]
        assert "Parent" in sets["ParentSet"] and sets["ParentSet"]["Path"].position == 0
        assert "PSPath" in sets["LiteralPathSet"]["LiteralPath"].aliases
        assert command.targets[target].default_set == "ParentSet"


def test_stop_vm_has_turn_off_in_every_set() -> None:
    command = facts.command("Hyper-V\\Stop-VM")
    assert command is not None
    for target in command.targets.values():
        assert {"Name", "VMObject"} <= set(target.sets)
        for parameters in target.sets.values():
            assert parameters["TurnOff"].switch and "Confirm" in parameters
    assert facts.command("Microsoft.PowerShell.Core\\Stop-VM") is None


def test_snapshot_types_are_the_help_pages_accepted_values() -> None:
    command = facts.command("Get-VMSnapshot")
    assert command is not None
    for target in command.targets.values():
        values = {p.values for ps in target.sets.values() for p in ps.values() if p.name == "SnapshotType"}
        assert values == {facts.snapshot_types()}
    assert "Production" not in facts.snapshot_types()


# ---------------------------------------------------------------------------------------------
# bind


def _fails(fqid: str, name: str, named: list[str], **kwargs: object) -> BindingError:
    with pytest.raises(BindingError) as caught:
        bind(name, named, **kwargs)  # type: ignore[arg-type]
    assert caught.value.fqid == fqid, caught.value
    return caught.value


def test_split_path_literal_path_with_parent_cannot_bind() -> None:
    # media.ps1's `Split-Path -LiteralPath $c -Parent`, which broke every ISO mount.
    error = _fails("AmbiguousParameterSet", "Split-Path", ["-LiteralPath", "-Parent"])
    assert "Split-Path" in str(error)
    _fails("AmbiguousParameterSet", "Split-Path", ["-LiteralPath", "-Parent"], target="5.1")


def test_split_path_path_with_parent_binds() -> None:
    assert bind("Split-Path", ["-Path", "-Parent"]) == {"5.1": "ParentSet", "7.4": "ParentSet"}


def test_split_path_leaf_binds_the_path_by_position() -> None:
    assert bind("Split-Path", ["-Leaf"], positional=1) == {"5.1": "LeafSet", "7.4": "LeafSet"}
    _fails("MissingMandatoryParameter", "Split-Path", ["-Leaf"])
    _fails("PositionalParameterNotFound", "Split-Path", ["-Leaf"], positional=2)


def test_hyperv_calls_by_object_and_id() -> None:
    every = {"2019", "2022", "2025"}
    assert bind("Stop-VM", ["-VM", "-TurnOff"]) == dict.fromkeys(every, "VMObject")
    assert bind("Restore-VMSnapshot", ["-VMSnapshot", "-Confirm:$false"]) \
        == dict.fromkeys(every, "SnapshotObject")
    assert bind("Get-VM", ["-Id"]) == dict.fromkeys(every, "Id")
    assert bind("Hyper-V\\Get-VM", ["-Id"], target="2022") == {"2022": "Id"}
    _fails("MissingMandatoryParameter", "Stop-VM", ["-TurnOff"])


def test_names_resolve_by_prefix_and_alias_as_powershell_does() -> None:
    assert bind("Split-Path", ["-Lit"]) == {"5.1": "LiteralPathSet", "7.4": "LiteralPathSet"}
    assert bind("Split-Path", ["-PSPath"], target="5.1") == {"5.1": "LiteralPathSet"}
    assert bind("Split-Path", ["-literalpath", "\u2013Resolve"], target="5.1") == {"5.1": "LiteralPathSet"}
    # -Ver: Verb (Get-Command's own) and Verbose (common): the command's own parameter wins.
    assert bind("Get-Command", ["-Ver"], target="5.1") == {"5.1": "CmdletSet"}
    error = _fails("AmbiguousParameter", "Split-Path", ["-P"], target="5.1")
    assert "-Path" in error.message and "-Parent" in error.message
    _fails("ParameterAlreadyBound", "Split-Path", ["-LiteralPath", "-PSPath"])
    _fails("ParameterAlreadyBound", "Split-Path", ["-Path", "-ea", "-ErrorAction"], target="5.1")


def test_unknown_names_are_not_found() -> None:
    _fails("NamedParameterNotFound", "Split-Path", ["-Path", "-Folder"])
    _fails("NamedParameterNotFound", "Stop-VM", ["-VM", "-Kill"])
    _fails("CommandNotFoundException", "Split-Pat", ["-Path"])
    _fails("CommandNotFoundException", "Write-EventLog", ["-LogName"], target="7.4")


def test_common_parameters_bind_in_every_set() -> None:
    for named in (["-LiteralPath", "-ErrorAction"], ["-LiteralPath", "-ea"],
                  ["-LiteralPath", "-Verbose", "-ov"]):
        assert bind("Split-Path", named) == {"5.1": "LiteralPathSet", "7.4": "LiteralPathSet"}
    assert bind("Get-VM", ["-Id", "-ErrorAction"]) == dict.fromkeys({"2019", "2022", "2025"}, "Id")
    # ProgressAction is a common parameter from PowerShell 7.4 only.
    assert bind("Split-Path", ["-Path", "-ProgressAction"], target="7.4") == {"7.4": "ParentSet"}
    _fails("NamedParameterNotFound", "Split-Path", ["-Path", "-ProgressAction"], target="5.1")


def test_pipeline_input_fills_a_mandatory_pipeline_parameter() -> None:
    every_set = {"5.1": "__AllParameterSets", "7.4": "__AllParameterSets"}
    assert bind("ConvertFrom-Json", [], pipeline=True) == every_set
    assert bind("ConvertFrom-Json", [], positional=1) == every_set
    _fails("MissingMandatoryParameter", "ConvertFrom-Json", [])


def test_remaining_arguments_take_extra_positionals() -> None:
    assert bind("Write-Output", [], positional=3, target="5.1") == {"5.1": "__AllParameterSets"}
    assert bind("ForEach-Object", [], positional=3, target="5.1") == {"5.1": "ScriptBlockSet"}
    _fails("PositionalParameterNotFound", "ConvertTo-Json", [], positional=2)


def test_default_set_then_the_one_complete_set_else_ambiguous(monkeypatch: pytest.MonkeyPatch) -> None:
    def p(name: str, mandatory: bool = False, position: int | None = None,
          pipeline: bool = False) -> facts.Parameter:
        return facts.Parameter(name, "String", mandatory, position, pipeline, ())

    widget = facts.CommandFacts("Test-Widget", "Example", {"t": facts.Target(
        source="test", default_set="C", common_parameters=True, sets={
            "A": {"W": p("W"), "X": p("X", mandatory=True, pipeline=True)},
            "B": {"W": p("W"), "Y": p("Y", mandatory=True)},
            "C": {"Z": p("Z")},
        })})
    monkeypatch.setattr(facts, "_commands", lambda: {"test-widget": widget})
    assert bind("Test-Widget", []) == {"t": "C"}  # several remain: the default
    _fails("AmbiguousParameterSet", "Test-Widget", ["-W"])  # default gone, none complete
    assert bind("Test-Widget", ["-W"], pipeline=True) == {"t": "A"}  # pipeline completes A only
    assert bind("Test-Widget", ["-W", "-Y"]) == {"t": "B"}
    _fails("AmbiguousParameterSet", "Test-Widget", ["-X", "-Y"])  # no set holds both


# ---------------------------------------------------------------------------------------------
# host facts


def test_cmdlet_states_are_the_cmdlets_own_tables() -> None:
    assert facts.cmdlet_states("Start-VM") == {"Off", "Saved", "Paused", "FastSaved", "Hibernated"}
    assert facts.cmdlet_states("Stop-VM") == {"Running"}
    assert facts.cmdlet_states("Stop-VM -TurnOff") == {"Running", "Paused", "Saved", "FastSaved"}
    assert facts.cmdlet_states("Save-VM") == {"Running", "Paused"}
    assert facts.cmdlet_states("Suspend-VM") == {"Running"}
    assert facts.cmdlet_states("Resume-VM") == {"Paused"}
    assert facts.cmdlet_states("Restart-VM") == {"Running"}  # never from Paused
    assert facts.cmdlet_states("Remove-VMSavedState") == {"Saved", "FastSaved"}
    assert "Stopping" not in facts.cmdlet_states("Stop-VM -TurnOff")
    with pytest.raises(KeyError):
        facts.cmdlet_states("source")


def test_states_and_their_base_states() -> None:
    for name in ("Running", "Off", "Saved", "Paused", "Starting", "Stopping", "Saving", "Pausing",
                 "Resuming", "Reset", "FastSaved", "FastSaving", "ForceShutdown", "ForceReboot",
                 "Hibernated", "ComponentServicing", "Other"):
        assert name in facts.STATES and facts.base_state(name) == name
    critical = [s for s in facts.STATES if s.endswith("Critical")]
    assert len(critical) == 12
    for name in critical:
        assert facts.base_state(name) == name[: -len("Critical")]
    assert facts.base_state("pausedcritical") == "Paused"
    assert facts.base_state("Teleporting") == "Teleporting"
    every_state = {s for key in ("Start-VM", "Stop-VM", "Stop-VM -TurnOff", "Save-VM", "Resume-VM")
                   for s in facts.cmdlet_states(key)}
    assert every_state <= set(facts.STATES)


def test_core_types_and_quotes() -> None:
    types = facts.core_types()
    for name in ("guid", "system.guid", "pscustomobject", "hashtable", "system.collections.hashtable",
                 "collections.hashtable", "datetime", "string", "int", "regex", "cultureinfo", "ref"):
        assert name in types, name
    for name in ("system.io.file", "io.path", "system.security.principal.securityidentifier",
                 "system.diagnostics.eventlog", "uint", "ordered"):
        assert name not in types, name
    assert "uint" in facts.core_types("7") and types < facts.core_types("7")
    assert facts.single_quotes() == {"'", "\u2018", "\u2019", "\u201a", "\u201b"}
    assert facts.double_quotes() == {'"', "\u201c", "\u201d", "\u201e"}


def test_what_a_jea_function_can_reach() -> None:
    # Windows PowerShell 5.1's Utility script functions: never, even module-qualified (JEA#42).
    for name in ("Import-PowerShellDataFile", "Microsoft.PowerShell.Utility\\Import-PowerShellDataFile",
                 "Get-FileHash"):
        assert not facts.jea_reachable(name, ["Hyper-V", "Microsoft.PowerShell.Utility"]), name
    # Binary cmdlets of the engine snap-ins: loaded (private, callable from functions).
    for name in ("Microsoft.PowerShell.Utility\\Select-Object", "ConvertFrom-Json", "Where-Object",
                 "Get-WinEvent", "Get-Acl", "Split-Path"):
        assert facts.jea_reachable(name, []), name
    # Every other module only through ModulesToImport.
    assert not facts.jea_reachable("Hyper-V\\Get-VM", [])
    assert facts.jea_reachable("Hyper-V\\Get-VM", ["hyper-v"])
    assert facts.jea_reachable("Get-VM", "Hyper-V")
    assert not facts.jea_reachable("Get-CimInstance", ["Hyper-V"])
    assert facts.jea_reachable("Get-CimInstance", ["CimCmdlets"])
    assert not facts.jea_reachable("Storage\\Get-Volume", ["Hyper-V"])
    assert not facts.jea_reachable("Microsoft.PowerShell.Utility\\Get-VM", ["Hyper-V"])
    assert not facts.jea_reachable("Invoke-Nothing", ["Hyper-V"])
    assert "Select-Object" in facts.jea_restricted_proxies()


def test_every_host_table_names_its_source() -> None:
    for table in ("states", "cmdlet_states", "snapshot_types", "errors", "jea", "constrained_language",
                  "quotes", "culture", "remaining_arguments", "event_log"):
        fact = facts.host(table)
        assert any(key == "source" or key.endswith("_source") for key in fact), table
    errors = facts.host("errors")
    assert (errors["InvalidState"]["id"], errors["InvalidState"]["category"]) \
        == ("InvalidState", "InvalidOperation")
    assert errors["ObjectInUse"]["wmi"] == 32774
    assert (errors["ServerConnection"]["id"], errors["ServerConnection"]["category"]) \
        == ("Unspecified", "NotSpecified")
    assert (errors["GuestLocked"]["id"], errors["GuestLocked"]["wmi"]) == ("Unspecified", 32781)
    checkpoints = facts.host("checkpoints")
    assert (checkpoints["standard_state"], checkpoints["production_state"]) == ("Saved", "Off")
    assert checkpoints["name_max_length"] == 100
    assert facts.host("jea")["autoloading"] == "None"
    assert set(facts.host("culture")["sensitive"]) >= {"Get-Date -Format", "-f operator"}


def test_the_event_log_facts_the_scripts_and_the_lab_follow() -> None:
    from console import scripts
    event_log = facts.host("event_log")
    assert (event_log["no_events"], event_log["no_provider"]) == (
        "NoMatchingEventsFound", "NoMatchingProvidersFound")
    assert event_log["order"] == "newest_first" and event_log["write_needs_registered_source"]
    assert {"LogName", "ProviderName", "ID", "StartTime"} <= set(event_log["filter_keys"])
    # audit_events.ps1 answers both errors as no events, and filters on the documented keys only.
    body = scripts.body("audit_events")
    assert "NoMatching(Events|Providers)Found" in body
    keys = set(re.findall(r"(\w+)=", body.split("$f=@{", 1)[1].split("}", 1)[0]))
    assert keys == {"LogName", "ProviderName", "Id"} and "$f['StartTime']" in body
    # Write-EventLog and Get-WinEvent are Windows PowerShell 5.1's; the JEA session reaches both.
    for name in ("Write-EventLog", "Get-WinEvent"):
        assert "5.1" in facts.command(name).targets  # type: ignore[union-attr]
        assert facts.jea_reachable(name, [])
    assert facts.bind("Get-WinEvent", ["-FilterHashtable", "-MaxEvents"])["5.1"] == "HashQuerySet"


def test_a_providers_dynamic_parameter_is_never_missing() -> None:
    # New-Item's path form lists the WSMan provider's mandatory -ConnectionURI; a file-system
    # call binds without it, as on a host.
    assert facts.bind("New-Item", ["-Path", "-ItemType", "-Force"])["5.1"] == "pathSet"
    parameter = facts.command("New-Item").targets["5.1"].sets["pathSet"]["ConnectionURI"]
    assert parameter.mandatory and parameter.provider == "WSMan"

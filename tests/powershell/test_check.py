"""The PowerShell checker, rule by rule: one small bad snippet gives exactly that finding, and the
good form gives none. The four regressions of issue 12 (Import-PowerShellDataFile and Hyper-V
unreachable in JEA functions, Split-Path -LiteralPath -Parent, a literal ended by U+2019) are
among them."""
from __future__ import annotations

import pytest

from console.powershell.check import (
    Context, Finding, check, check_data, decode_single_quoted, literals, read_data,
)

SCRIPT = Context("script", constrained=False)
CONSTRAINED = Context("script", constrained=True)
JEA = Context("jea_function", constrained=True)
JEA_HYPERV = Context("jea_function", constrained=True, modules_to_import=("Hyper-V",))
REGISTRATION = Context("registration", constrained=True, externals=frozenset({"icacls.exe"}))


def rules(text: str, context: Context = SCRIPT) -> list[str]:
    return [f.rule for f in check(text, context=context)]


BAD: list[tuple[str, str, Context, str]] = [
    # (rule, snippet, context, a word the message must hold)
    ("unknown-command", "gci -LiteralPath 'C:\\x'", SCRIPT, "gci"),
    ("unknown-command", "$x | % { $_ }", SCRIPT, "%"),
    ("unknown-command", "Get-VM | select Name", SCRIPT, "select"),
    ("unknown-command", "icacls.exe 'C:\\x' /grant 'y'", SCRIPT, "icacls.exe"),
    ("unknown-command", "Get-HvcThing -Id 1", SCRIPT, "Get-HvcThing"),
    ("parameter-binding", "$p = Split-Path -LiteralPath $c -Parent", SCRIPT, "AmbiguousParameterSet"),
    ("parameter-binding", "Get-VM -Idd $g", SCRIPT, "NamedParameterNotFound"),
    ("parameter-binding", "$p = Join-Path -Path $a", SCRIPT, "MissingMandatoryParameter"),
    ("parameter-binding", "Get-VM -Id $g -Id $h", SCRIPT, "ParameterAlreadyBound"),
    ("splatting", "Get-VM @p", SCRIPT, "@p"),
    ("jea-unreachable", "$d = Microsoft.PowerShell.Utility\\Import-PowerShellDataFile -LiteralPath $f",
     JEA_HYPERV, "Import-PowerShellDataFile"),
    ("jea-unreachable", "$d = Import-PowerShellDataFile -LiteralPath $f", JEA_HYPERV,
     "Import-PowerShellDataFile"),
    ("jea-unreachable", "$v = Hyper-V\\Get-VM -Id $g", JEA, "Hyper-V\\Get-VM"),
    ("jea-unreachable", "$v = Get-VM -Id $g", JEA, "Get-VM"),
    ("jea-unreachable", "$x = $v | Select-Object -First 1", JEA_HYPERV,
     "Microsoft.PowerShell.Utility\\Select-Object"),
    ("type", "[System.Diagnostics.EventLog]::SourceExists('HvConsole')", CONSTRAINED, "EventLog"),
    ("type", "$a = New-Object System.Security.AccessControl.DirectorySecurity", CONSTRAINED,
     "DirectorySecurity"),
    ("type", "$a = New-Object -TypeName System.IO.FileInfo -ArgumentList 'x'", CONSTRAINED, "FileInfo"),
    ("type", "$t = [Text.Encoding]::UTF8", CONSTRAINED, "Text.Encoding"),
    ("type", "$x = [IO.Path[]]@()", CONSTRAINED, "IO.Path"),
    ("type", "function G {\n  param([IO.FileInfo]$f)\n  $f\n}", CONSTRAINED, "IO.FileInfo"),
    ("dynamic-code", "Invoke-Expression $s", SCRIPT, "Invoke-Expression"),
    ("dynamic-code", "$b = [scriptblock]::Create($s)", SCRIPT, "Create"),
    ("dynamic-code", "& $b", SCRIPT, "$b"),
    ("dynamic-code", ". $b", SCRIPT, "$b"),
    ("dynamic-code", "& ('Get-' + 'VM')", SCRIPT, "Get-"),
    ("dynamic-code", "Add-Type -TypeDefinition $s", SCRIPT, "Add-Type"),
    ("dynamic-code", "Start-Job -ScriptBlock { 1 }", SCRIPT, "Start-Job"),
    ("dynamic-code", "Start-VM -VM $v -AsJob", SCRIPT, "AsJob"),
    ("culture", "$t = Get-Date -Format 'yyyy-MM-dd'", SCRIPT, "Get-Date"),
    ("culture", "$t = Get-Date -UFormat '%Y'", SCRIPT, "Get-Date"),
    ("culture", "$t = $d.ToString('yyyy-MM-dd')", SCRIPT, "ToString"),
    ("culture", "$t = '{0:N1}' -f $n", SCRIPT, "-f"),
    ("culture", "$d = [datetime]::Parse($s)", SCRIPT, "Parse"),
    ("culture", "$d = [DateTime]::ParseExact($s, 'yyyy-MM-dd')", SCRIPT, "ParseExact"),
    ("literal", "$x = 'it\u2019s'", SCRIPT, "\u2019"),
    ("literal", '$x = "say \u201chi"', SCRIPT, "\u201c"),
    ("syntax", "if ($x) { Get-VM", SCRIPT, ""),
]

GOOD: list[tuple[str, str, Context]] = [
    ("unknown-command", "Get-ChildItem -LiteralPath 'C:\\x'", SCRIPT),
    ("unknown-command", "$x | ForEach-Object { $_ } | Where-Object { $_ }", SCRIPT),
    ("unknown-command", "function W { 1 }\n$d = W", SCRIPT),
    ("unknown-command", "HvcRights $id $name", Context("jea_function", True, ("Hyper-V",),
                                                      frozenset({"HvcRights"}))),
    ("unknown-command", "icacls.exe 'C:\\x' /grant 'y'", REGISTRATION),
    ("parameter-binding", "$p = Split-Path -Path $c -Parent", SCRIPT),
    ("parameter-binding", "$p = Split-Path -LiteralPath $c", SCRIPT),
    ("parameter-binding", "$n = Split-Path -Leaf $h.Path", SCRIPT),
    ("parameter-binding", "$c = Get-VMSnapshot -VM $v | Where-Object Id -eq $g", SCRIPT),
    ("parameter-binding", "$null = Restore-VMSnapshot -VMSnapshot $c -Confirm:$false", SCRIPT),
    ("parameter-binding", "$null = Stop-VM -VM $v -TurnOff", SCRIPT),
    ("parameter-binding", "$null = Remove-VMSnapshot -VMSnapshot:$c -IncludeAllChildSnapshots", SCRIPT),
    ("parameter-binding", "$r = $out | ConvertFrom-Json", SCRIPT),
    ("parameter-binding", "ConvertTo-Json $r -Depth 8 -Compress", SCRIPT),
    ("parameter-binding", "$u = Get-VM 2>$null", SCRIPT),
    ("jea-unreachable", "$v = Hyper-V\\Get-VM -Id $g", JEA_HYPERV),
    ("jea-unreachable", "$j = $o | Microsoft.PowerShell.Utility\\ConvertTo-Json -Compress", JEA_HYPERV),
    ("jea-unreachable", "$x = $v | Microsoft.PowerShell.Utility\\Select-Object -First 1", JEA_HYPERV),
    ("type", "$g = [guid]::Empty; $n = [int]$a.controller; [string[]]$s = @()", CONSTRAINED),
    ("type", "function G {\n  [CmdletBinding()]\n  param([Parameter(Mandatory=$true)][guid[]]$Id)\n  $Id\n}",
     CONSTRAINED),
    ("type", "$a = New-Object -TypeName System.Collections.Hashtable", CONSTRAINED),
    ("type", "[System.Diagnostics.EventLog]::SourceExists('HvConsole')", SCRIPT),
    ("dynamic-code", "$r = & { 1 }", SCRIPT),
    ("dynamic-code", ". { $x = 1 }", SCRIPT),
    ("dynamic-code", "& Get-VM -Id $g", SCRIPT),
    ("culture", "$t = $d.ToUniversalTime().ToString('yyyy-MM-dd', [cultureinfo]::InvariantCulture)",
     SCRIPT),
    ("culture", "$d = [datetime]::ParseExact($s, 'yyyy-MM-dd', [cultureinfo]::InvariantCulture)",
     SCRIPT),
    ("culture", "$s = \"$($v.State)\"; $t = $v.Id.ToString()", SCRIPT),
    ("culture", "$now = Get-Date", SCRIPT),
    ("literal", "$x = 'it''s'; $y = 'it\u2019\u2019s'; $z = \"say \u201c\u201chi\"", SCRIPT),
    ("syntax", "if ($x) { $v = Get-VM }", SCRIPT),
]


@pytest.mark.parametrize(("rule", "text", "context", "word"), BAD,
                         ids=[f"{r}:{t[:40]}" for r, t, _c, _w in BAD])
def test_a_bad_snippet_gives_exactly_its_finding(rule: str, text: str, context: Context,
                                                 word: str) -> None:
    found = check(text, context=context)
    assert [f.rule for f in found] == [rule], "\n".join(map(str, found))
    assert word in found[0].message


@pytest.mark.parametrize(("rule", "text", "context"), GOOD,
                         ids=[f"{r}:{t[:40]}" for r, t, _c in GOOD])
def test_the_good_form_gives_none(rule: str, text: str, context: Context) -> None:
    found = check(text, context=context)
    assert found == [], "\n".join(map(str, found))


def test_a_finding_reads_line_column_rule_message() -> None:
    found = check("$ok = 1\n  $p = Split-Path -LiteralPath $c -Parent", context=SCRIPT)
    assert [str(f) for f in found] == [str(Finding(2, 8, "parameter-binding", found[0].message))]
    assert str(found[0]).startswith("2:8: parameter-binding: Split-Path -LiteralPath -Parent: "
                                    "AmbiguousParameterSet on ")
    assert Finding(1, 5, "r", "m").moved(10, 3) == Finding(10, 7, "r", "m")
    assert Finding(2, 5, "r", "m").moved(10, 3) == Finding(11, 5, "r", "m")


def test_each_target_is_bound_and_named() -> None:
    # -LiteralPath's set lacks -Parent in Windows PowerShell 5.1 and PowerShell 7.4 alike.
    message = check("Split-Path -LiteralPath $c -Parent", context=SCRIPT)[0].message
    assert "5.1" in message and "7.4" in message


def test_pipeline_input_counts_in_binding() -> None:
    # Alone, Where-Object has nothing to filter: its InputObject comes from the pipeline.
    assert rules("Get-VM | Where-Object Id -eq $g") == []
    assert rules("Get-VM | Stop-VM -TurnOff") == []
    assert rules("Stop-VM -TurnOff") == ["parameter-binding"]


def test_module_qualified_names_and_defined_functions() -> None:
    assert rules("Microsoft.PowerShell.Management\\Split-Path -LiteralPath $c -Parent") == [
        "parameter-binding"]
    defined = Context("jea_function", True, ("Hyper-V",), frozenset({"Get-HvcInventory"}))
    assert rules("Get-HvcInventory", defined) == []
    assert rules("function Y($b) { 1 }\nY { 2 }") == []


def test_allowed_externals_are_explicit() -> None:
    assert rules("icacls 'C:\\x' /grant y", REGISTRATION) == ["unknown-command"]
    assert rules("icacls 'C:\\x' /grant y",
                 Context("registration", True, externals=frozenset({"icacls"}))) == []


# --- PowerShell's single-quoted strings ---------------------------------------------------------------

@pytest.mark.parametrize(("token", "value"), [
    ("'plain'", "plain"),
    ("''", ""),
    ("'it''s'", "it's"),
    ("'it\u2019\u2019s'", "it\u2019s"),
    # A quote followed by any quote is one quote: the second (tokenizer.cs ScanStringLiteral).
    ("'a\u2018'b'", "a'b"),
    ("'a'\u2018b'", "a\u2018b"),
    ("\u2018curly both ends\u2019", "curly both ends"),
    ("\u201a\u201b\u201b\u201a", "\u201b"),
])
def test_decode_single_quoted(token: str, value: str) -> None:
    assert decode_single_quoted(token) == value


@pytest.mark.parametrize("token", ["'x\u2019y'", "'open", "no quote", "'a' + 'b'"])
def test_decode_refuses_what_is_not_one_literal(token: str) -> None:
    with pytest.raises(ValueError):
        decode_single_quoted(token)


def test_literals_split_by_powershells_rule() -> None:
    # The grammar (and an ASCII-only writer) sees one string 'x’y'; PowerShell sees 'x’ then code.
    assert literals("@{ A = 'x\u2019y'; B = 'b' }") == ["x", "; B = ", " }"]
    text = "# a 'comment'\n@{ A = 'a''b'; B = \"d'q $('in')\"; C = { 'code' } <# 'no' #> }"
    assert literals(text) == ["a'b", "in", "code"]


def test_check_data_reports_a_literal_that_decodes_to_another_value() -> None:
    good = "@{\r\n    Principal = 'LAB\\x\u2019\u2019y'\r\n}"
    assert check_data(good, {"LAB\\x\u2019y"}) == []
    bad = "@{\r\n    Principal = 'LAB\\x\u2019y'\r\n    Sid = 'S-1-1-0'\r\n}"
    found = check_data(bad, {"LAB\\x\u2019y", "S-1-1-0"})
    literal = [f for f in found if f.rule == "literal"]
    assert (literal[0].line, literal[0].column) == (2, 17)
    assert "'LAB\\\\x'" in literal[0].message  # the value PowerShell reads
    # What follows the early end is code: the file no longer reads as data at all.
    assert {f.rule for f in found} == {"literal", "syntax"}


def test_read_data_reads_a_role_capability() -> None:
    text = ("\ufeff# generated\r\n@{\r\n    ModulesToImport = 'Hyper-V', @{ModuleName = 'Storage'}\r\n"
            "    FunctionDefinitions = @(\r\n        @{\r\n            Name = 'Get-X'\r\n"
            "            ScriptBlock = {\r\nparam()\r\n'}' ; @{a=1}\r\n            }\r\n        })\r\n"
            "    RunAsVirtualAccount = $true\r\n}\r\n")
    value = read_data(text)
    assert value["ModulesToImport"] == ["Hyper-V", {"ModuleName": "Storage"}]
    block = value["FunctionDefinitions"][0]["ScriptBlock"]
    assert text[block.start:block.end].strip() == "param()\r\n'}' ; @{a=1}"
    assert value["RunAsVirtualAccount"] == "$true"

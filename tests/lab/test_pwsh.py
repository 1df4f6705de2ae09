"""The lab's PowerShell interpreter (lab.pwsh): each test holds one rule of Windows
PowerShell 5.1 that the project's scripts rely on, with a snippet whose result would differ if
the interpreter got the rule wrong."""
from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lab.pwsh import (BUILTINS, Call, Command, MemoryProvider, Outcome, PSEnum,
                              PSError, PSObject, Runspace)
from lab.pwsh.compiler import compile_text


def run(text: str, commands: list[Command] | None = None, **kwargs: Any) -> Outcome:
    return Runspace([*BUILTINS, *(commands or [])], **kwargs).run(text)


def out(text: str, **kwargs: Any) -> list[Any]:
    outcome = run(text, **kwargs)
    assert outcome.error is None, outcome.error
    return outcome.output


def one(text: str, **kwargs: Any) -> Any:
    result = out(text, **kwargs)
    assert len(result) == 1, result
    return result[0]


def error_of(text: str, **kwargs: Any) -> Any:
    outcome = run("$ErrorActionPreference='Stop'\n" + text, **kwargs)
    assert outcome.error is not None, outcome.output
    return outcome.error


# --- pipeline output ------------------------------------------------------------------------------

def test_each_statement_writes_to_the_output_and_arrays_unroll_one_level() -> None:
    assert out("1; 'a'; @(2,3); ,@(4,5)") == [1, "a", 2, 3, [4, 5]]


def test_a_pipeline_of_one_output_is_that_value_of_several_a_list_of_none_null() -> None:
    assert out("function F{1}; function G{1;2}; function H{}; $a=F; $b=G; $c=H; "
               "$a.GetType().FullName; $b.Count; $null -eq $c") == ["System.Int32", 2, True]


def test_a_variable_assigned_no_output_holds_nothing_but_reads_as_null() -> None:
    # AutomationNull: @($x) is empty and $x | ... sends nothing, but $x -eq $null.
    text = ("function H{}; $x = H; $y = $null; @($x).Count; @($y).Count; $null -eq $x; "
            "@($x | ForEach-Object {'ran'}).Count; @($y | ForEach-Object {'ran'}).Count; $x; 'end'")
    assert out(text) == [0, 1, True, 0, 1, "end"]


def test_array_subexpression_is_always_a_list() -> None:
    assert out("function F{7}; @(F).Count; @().Count; @($null).Count; @(@(1,2)).Count") == [1, 0, 1, 2]


def test_assignment_writes_nothing_and_null_assignment_discards() -> None:
    assert out("$x = 5; $null = 6; [void]7; $x") == [5]


def test_a_void_method_call_writes_nothing() -> None:
    assert out("$h=@{}; $h.Add('a',1); $h.Remove('a'); $h.Count") == [0]


# --- assignment -----------------------------------------------------------------------------------

def test_compound_assignment_on_numbers_strings_arrays_and_hashtables() -> None:
    assert out("$n=1; $n+=2; $s='a'; $s+='b'; $a=@(1); $a+=2; $h=@{a=1}; $h+=@{b=2}; "
               "$n; $s; $a.Count; $h.Count") == [3, "ab", 2, 2]


def test_adding_to_a_missing_key_starts_from_null() -> None:
    # inventory.ps1 groups devices with $ss[$id] += @($o)
    assert out("$ss=@{}; foreach($o in 1,2,3){$ss['k']+=@($o)}; $ss['k'].Count; $ss.k[2]") == [3, 3]


def test_array_plus_creates_a_new_array_and_leaves_the_old_one() -> None:
    assert out("$a=@(1); $b=$a; $a+=2; $b.Count; $a.Count") == [1, 2]


def test_assignment_to_a_property_of_a_custom_object_and_a_missing_property_fails() -> None:
    assert out("$o=[pscustomobject]@{a=1}; $o.a=2; $o.a") == [2]
    assert error_of("$o=[pscustomobject]@{a=1}; $o.b=2").fqid == "PropertyNotFound"


def test_assignment_to_an_index_and_out_of_bounds() -> None:
    assert out("$a=1,2,3; $a[1]=9; $a[-1]=8; $a -join ','") == ["1,9,8"]
    assert "outside the bounds" in error_of("$a=@(1); $a[3]=1").message


# --- control flow ---------------------------------------------------------------------------------

def test_if_elseif_else() -> None:
    text = "foreach($x in 1,2,3){if($x -eq 1){'one'}elseif($x -eq 2){'two'}else{'many'}}"
    assert out(text) == ["one", "two", "many"]


def test_foreach_over_null_does_not_run_and_over_a_hashtable_runs_once() -> None:
    assert out("foreach($x in $null){'ran'}; foreach($h in @{a=1;b=2}){$h.Count}") == [2]


def test_break_and_continue_in_loops() -> None:
    assert out("foreach($i in 1..5){if($i -eq 2){continue}; if($i -eq 4){break}; $i}") == [1, 3]


def test_break_and_continue_in_every_kind_of_loop() -> None:
    # (tree-sitter-powershell does not parse `break <label>`, so labels are not exercised.)
    for inner in ("for($j=0; $j -lt 3; $j++){if($j -eq 1){break}; \"$i$j\"}",
                  "$j=0; do{if($j -eq 1){break}; \"$i$j\"; $j++}while($j -lt 3)",
                  "$j=0; while($j -lt 3){if($j -eq 1){break}; \"$i$j\"; $j++}"):
        assert out("foreach($i in 1..2){" + inner + "}") == ["10", "20"], inner
    assert out("$n=0; do{$n++; if($n -lt 3){continue}; $n}until($n -ge 4)") == [3, 4]
    assert out("for($i=0; $i -lt 4; $i++){if($i -eq 1){continue}; $i}") == [0, 2, 3]


def test_while_loop() -> None:
    assert out("$c='C:\\a\\b'; while($c.Length -gt 3){$c; $c=Split-Path -Path $c -Parent}") == \
        ["C:\\a\\b", "C:\\a"]


def test_switch_bare_word_labels_and_default() -> None:
    text = "foreach($x in 'create','apply','other'){switch($x){\ncreate{'c'}\napply{'a'}\ndefault{'d'}}}"
    assert out(text) == ["c", "a", "d"]


def test_switch_is_case_insensitive_unless_case_sensitive() -> None:
    assert out("switch('CREATE'){\ncreate{'matched'}\n}") == ["matched"]
    assert out("switch -CaseSensitive ('CREATE'){\ncreate{'matched'}\ndefault{'no'}\n}") == ["no"]


def test_switch_over_an_array_iterates_and_break_leaves_it() -> None:
    assert out("switch(1,2,3){\n2{'two'; break}\ndefault{$_}\n}") == [1, "two"]


def test_return_keeps_what_the_function_wrote_before() -> None:
    assert out("function F{'a'; return 'b'; 'c'}; F") == ["a", "b"]


# --- errors ---------------------------------------------------------------------------------------

def test_throw_of_a_string_in_try_catch() -> None:
    text = ("try{throw 'hvc_not_found:No VM'}catch{$_.Exception.Message; $_.FullyQualifiedErrorId; "
            "\"$($_.CategoryInfo.Category)\"; $_.Exception.GetType().FullName; \"$_\"}")
    assert out(text) == ["hvc_not_found:No VM", "hvc_not_found:No VM", "OperationStopped",
                         "System.Management.Automation.RuntimeException", "hvc_not_found:No VM"]


def test_throw_dollar_underscore_rethrows_the_same_record() -> None:
    text = "try{try{[int]'x'}catch{throw $_}}catch{$_.FullyQualifiedErrorId}"
    assert out(text) == ["InvalidCastFromStringToInteger"]


def test_uncaught_throw_ends_the_script_whatever_the_preference() -> None:
    outcome = run("'before'; throw 'stop here'; 'after'")
    assert outcome.output == ["before"]
    assert outcome.error is not None and outcome.error.message == "stop here"


def test_a_runtime_error_under_continue_ends_only_its_statement() -> None:
    outcome = run("'a'; $x = 1/0; 'b'")
    assert outcome.output == ["a", "b"] and outcome.error is None
    assert outcome.errors[0].message == "Attempted to divide by zero."


def test_a_runtime_error_under_stop_ends_the_script() -> None:
    outcome = run("$ErrorActionPreference='Stop'; 'a'; $x = 1/0; 'b'")
    assert outcome.output == ["a"] and outcome.error is not None


def test_statement_errors_are_caught_by_try_even_under_continue() -> None:
    assert out("try{$x = 1/0; 'not here'}catch{'caught'}") == ["caught"]


def test_finally_runs() -> None:
    assert out("try{try{throw 'x'}finally{'cleanup'}}catch{'caught'}") == ["cleanup", "caught"]


# --- functions and scopes -------------------------------------------------------------------------

def test_function_parameters_by_position_and_by_name() -> None:
    assert out("function F($c,$m){\"$c|$m\"}; F a b; F -m b -c a; F a") == ["a|b", "a|b", "a|"]


def test_function_with_param_block_types_and_defaults() -> None:
    text = ("function F{param([int]$n=3,[string]$s,[switch]$w)\n\"$($n+1)|$($null -eq $s)|$w\"}; "
            "F; F -n '4' -w")
    assert out(text) == ["4|False|False", "5|False|True"]


def test_dynamic_scoping_a_function_reads_its_callers_variables() -> None:
    # V in _common.ps1 reads $a, set by the caller's scope, not where V was defined.
    text = "function V{$a.vm_id}; function O{$a=@{vm_id='x'}; V}; O; $null -eq (V)"
    assert out(text) == ["x", True]


def test_assignments_in_a_function_do_not_leak_to_the_caller() -> None:
    assert out("$x=1; function F{$x=2; $x}; F; $x") == [2, 1]


def test_a_function_defined_in_a_block_exists_only_there() -> None:
    outcome = run("function O{function W{'w'}; W}; O; W")
    assert outcome.output == ["w"]
    assert outcome.errors[0].fqid == "CommandNotFoundException"


def test_call_operator_on_a_literal_block_and_a_variable() -> None:
    assert out("$b={'in block'; $y=1}; & {'literal'}; & $b; $null -eq $y") == ["literal", "in block", True]


# --- variables ------------------------------------------------------------------------------------

def test_automatic_and_environment_variables() -> None:
    sender = PSObject("System.Management.Automation.Remoting.PSSenderInfo", {"ConnectedUser": "LAB\\henry"})
    text = ("$env:computername; $true; $false; $null; $PSVersionTable.PSVersion.Major; "
            "$PSSenderInfo.ConnectedUser")
    assert out(text, env={"COMPUTERNAME": "HV01"}, variables={"PSSenderInfo": sender}) == \
        ["HV01", True, False, None, 5, "LAB\\henry"]


# --- strings --------------------------------------------------------------------------------------

def test_single_quoted_strings_double_the_quote() -> None:
    assert one("'it''s $x'") == "it's $x"


def test_single_quoted_string_ends_at_any_of_the_five_quotes() -> None:
    # PowerShell ends '...' at U+2018..U+201B too: the rest becomes code.
    assert out("$v = 'abc\u2019; $w = \u2018def'; $v; $w") == ["abc", "def"]
    assert one("'a\u2019\u2019b'") == "a\u2019b"


def test_expandable_strings_variables_subexpressions_and_escapes() -> None:
    assert one('$x=\'v\'; $h=@{k=1}; "[$x] $($h.k + 1) `t`"q`" ""d"" `$x $ 5"') == '[v] 2 \t"q" "d" $x $ 5'


def test_a_variable_followed_by_a_colon_in_a_string_is_a_parse_error() -> None:
    outcome = run('$c="x"; "hvc_$c:"')
    assert outcome.error is not None and outcome.error.fqid == "InvalidVariableReferenceWithDrive"
    assert outcome.output == []  # nothing of a text that does not parse runs


def test_here_strings() -> None:
    assert out("$x='v'\n@\"\na $x\n\"@\n@'\nb $x\n'@") == ["a v", "b $x"]


def test_stringification_of_values() -> None:
    g = uuid.UUID("0F8FAD5B-D9CB-469F-A165-70867728950E")
    text = ('"$g|$([datetime]::new(2024,1,2))|$($e)|$(1,2,3)|$(@{a=1})|$true|$null|$(1.5)"; '
            'try{throw "boom"}catch{"$_"}')
    assert out(text, variables={"g": g, "e": PSEnum("Running", 2)}) == [
        "0f8fad5b-d9cb-469f-a165-70867728950e|01/02/2024 00:00:00|Running|1 2 3|"
        "System.Collections.Hashtable|True||1.5", "boom"]


# --- literals -------------------------------------------------------------------------------------

def test_numbers() -> None:
    assert out("0x10; 5kb; 1.5; 2e3; 10l") == [16, 5120, 1.5, 2000.0, 10]


def test_hashtables_are_case_insensitive_and_keep_the_first_spelling() -> None:
    assert out("$h=@{Name='a'}; $h.name; $h['NAME']; $h.NAME='b'; $h.Keys") == ["a", "a", "Name"]


def test_duplicate_keys_in_a_hash_literal_do_not_parse() -> None:
    outcome = run("'before'; @{a=1; A=2}")
    assert outcome.output == [] and outcome.error is not None
    assert outcome.error.fqid == "DuplicateKeyInHashLiteral"


def test_unary_comma_makes_an_array_of_one() -> None:
    assert out("$a = ,1; $a.Count; (,@(1,2)).Count") == [1, 1]


def test_range() -> None:
    assert out("(1..4) -join ','; (3..1) -join ','") == ["1,2,3,4", "3,2,1"]


# --- members --------------------------------------------------------------------------------------

def test_member_access_on_objects_hashtables_and_member_enumeration() -> None:
    vms = [PSObject("VM", {"Name": "a"}), PSObject("VM", {"Name": "b"})]
    assert out("$vms.Name -join ','; $vms[0].name; $vms[0].Missing; $vms.Count; 'abc'.Length",
               variables={"vms": vms}) == ["a,b", "a", None, 2, 3]


def test_every_value_has_count_and_a_single_object_indexes_as_itself() -> None:
    # media.ps1: $d=W (one drive, unrolled from @(...)); $d.Count -ne 1; $d[0]
    drive = PSObject("DvdDrive", {"Path": "x"})
    assert out("$d.Count; $null.Count; $d[0].Path; $d[-1].Path; $null -eq $d[1]; (5).Count",
               variables={"d": drive}) == [1, 0, "x", "x", True, 1]


def test_indexing() -> None:
    assert out("$a=1,2,3; $a[-1]; $null -eq $a[5]; $h=@{k='v'}; $h['k']; 'abc'[1]") == [3, True, "v", "b"]
    assert error_of("$n=$null; $n[0]").fqid == "NullArray"


def test_string_methods() -> None:
    text = ("$s='C:\\Lib\\'; $s.TrimEnd('\\'); $s.Substring(0,3); $s.Replace('Lib','X'); "
            "$s.StartsWith('c:'); $s.ToLower(); $s.Contains('Lib'); $s.IndexOf('L'); "
            "('a,b'.Split(',')).Count")
    assert out(text) == ["C:\\Lib", "C:\\", "C:\\X\\", False, "c:\\lib\\", True, 3, 2]


def test_substring_out_of_range_is_a_method_invocation_error() -> None:
    error = error_of("'abc'.Substring(5)")
    assert error.fqid == "ArgumentOutOfRangeException"
    assert error.exception_type == "System.Management.Automation.MethodInvocationException"


def test_hashtable_members() -> None:
    text = "$h=@{a=1}; $h.ContainsKey('A'); $h.Contains('b'); $h.Add('b',2); $h.Count; @($h.Values).Count"
    assert out(text) == [True, False, 2, 2]
    assert "already been added" in error_of("$h=@{a=1}; $h.Add('A',2)").message


def test_datetime_members_and_universal_time_with_the_runspace_offset() -> None:
    text = ("$d=[datetime]::new(2024,3,1); $d.ToUniversalTime().ToString(\"yyyy-MM-dd'T'HH:mm:ss'Z'\","
            "[cultureinfo]::InvariantCulture); $d.AddDays(-1).Day; $d.Date.Year; $d.Month")
    assert out(text, utc_offset=timedelta(hours=2)) == ["2024-02-29T22:00:00Z", 29, 2024, 3]


def test_a_utc_datetime_stays_where_it_is() -> None:
    d = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert one("$d.ToUniversalTime().ToString('yyyy-MM-dd HH:mm:ss')", variables={"d": d},
               utc_offset=timedelta(hours=5)) == "2024-01-02 03:04:05"


def test_timespan_members() -> None:
    assert out("$t.TotalSeconds; [long]$t.TotalSeconds; $t.Minutes",
               variables={"t": timedelta(minutes=2, seconds=2.5)}) == [122.5, 122, 2]


def test_guid_statics_and_try_parse_forms() -> None:
    text = ("foreach($s in '0f8fad5b-d9cb-469f-a165-70867728950e','0f8fad5bd9cb469fa16570867728950e',"
            "'{0f8fad5b-d9cb-469f-a165-70867728950e}','(0f8fad5b-d9cb-469f-a165-70867728950e)',"
            "'urn:uuid:0f8fad5b-d9cb-469f-a165-70867728950e','x'){"
            "$g=[guid]::Empty; [guid]::TryParse($s,[ref]$g)}; "
            "\"$([guid]::Empty)\"; [guid]::NewGuid() -ne [guid]::Empty")
    assert out(text) == [True, True, True, True, False, False, "00000000-0000-0000-0000-000000000000", True]


def test_try_parse_fills_the_referenced_variable() -> None:
    assert one("$g=[guid]::Empty; "
               "$null=[guid]::TryParse('0F8FAD5BD9CB469FA16570867728950E',[ref]$g); \"$g\"") == \
        "0f8fad5b-d9cb-469f-a165-70867728950e"


def test_other_statics() -> None:
    text = ("[regex]::Escape('a.b(c)'); [string]::IsNullOrEmpty(''); [string]::IsNullOrEmpty('x'); "
            "[datetime]::new(2024,1,2).DayOfWeek; "
            "[Text.Encoding]::UTF8.GetString([Convert]::FromBase64String('aMOp'))")
    assert out(text) == ["a\\.b\\(c\\)", True, False, "Tuesday", "hé"] or \
        [str(x) for x in out(text)] == ["a\\.b\\(c\\)", "True", "False", "Tuesday", "hé"]


# --- casts ----------------------------------------------------------------------------------------

def test_integer_casts_round_half_to_even_and_read_strings() -> None:
    assert out("[int]2.5; [int]3.5; [long]'12'; [int]''; [int]$null; [int]'0x10'") == [2, 4, 12, 0, 0, 16]


def test_a_failed_cast_has_powershells_error_id() -> None:
    error = error_of("[int]'abc'")
    assert error.fqid == "InvalidCastFromStringToInteger"
    assert error.exception_type == "System.Management.Automation.PSInvalidCastException"


def test_guid_datetime_bool_string_array_and_hashtable_casts() -> None:
    text = ("\"$([guid]'0F8FAD5B-D9CB-469F-A165-70867728950E')\"; ([datetime]'2024-01-02').Day; "
            "[bool]'False'; [bool]''; [bool]0; [string]$null; $null -eq [array]$null; ([array]5).Count; "
            "([hashtable]@{a=1}).a")
    assert out(text) == ["0f8fad5b-d9cb-469f-a165-70867728950e", 2, True, False, False, "", True, 1, 1]
    assert error_of("[guid]'nope'").fqid.startswith("InvalidCast")


def test_pscustomobject_cast_keeps_the_order_of_the_literal() -> None:
    assert one("([pscustomobject]@{z=1;a=2;m=3} | ConvertTo-Json -Compress)") == '{"z":1,"a":2,"m":3}'


# --- operators ------------------------------------------------------------------------------------

def test_equality_is_case_insensitive_unless_c_prefixed() -> None:
    assert out("'ABC' -eq 'abc'; 'ABC' -ceq 'abc'; 'ABC' -ieq 'abc'; 'a' -ne 'A'; 'a' -cne 'A'") == \
        [True, False, True, False, True]


def test_the_right_side_is_converted_to_the_left_sides_type() -> None:
    assert out("1 -eq '1'; '1' -eq 1; '01' -eq 1; 1 -eq '01'; 2 -gt '10'; '2' -gt '10'") == \
        [True, True, False, True, False, True]


def test_an_array_on_the_left_filters() -> None:
    assert out("(1,2,3,2) -eq 2; ('a','b') -like 'a*'; @(1,2) -eq 5") == [2, 2, "a"]


def test_enum_and_guid_comparisons() -> None:
    g = uuid.UUID(int=5)
    assert out("$e -eq 'running'; $e -eq 2; $g -eq '00000000-0000-0000-0000-000000000005'; $g -eq $g2",
               variables={"e": PSEnum("Running", 2), "g": g, "g2": uuid.UUID(int=5)}) \
        == [True, True, True, True]


def test_like_and_notlike() -> None:
    assert out("'file.ISO' -like '*.iso'; 'file.iso' -clike '*.ISO'; '.avhdx' -like '.avhd*'; "
               "'a' -notlike 'b*'") == [True, False, True, True]


def test_match_sets_matches_and_notmatch() -> None:
    assert out("if('hvc_not_found:x' -match '^hvc_(\\w+):'){$matches[1]; $matches[0]}; "
               "'a' -notmatch 'b'") == ["not_found", "hvc_not_found:", True]


def test_match_is_case_insensitive_and_cmatch_is_not() -> None:
    assert out("'ABC' -match 'b'; 'ABC' -cmatch 'b'") == [True, False]


def test_dotnet_regex_syntax() -> None:
    assert out("'x\n' -match 'x$'; 'x\n' -match 'x\\z'; 'ab' -match '(?<first>a)'; $matches.first") == \
        [True, False, True, "a"]


def test_replace() -> None:
    assert out("'C:\\a\\b.vhdx' -replace '\\.[^.]*$'; 'ab' -replace '(a)(b)','$2$1'; "
               "'hvc_x:msg' -replace '^hvc_\\w+:'; 'Ab' -creplace 'a','z'") == ["C:\\a\\b", "ba", "msg", "Ab"]


def test_contains_in_and_their_negations() -> None:
    assert out("'a','b' -contains 'B'; 'a','b' -ccontains 'B'; 'x' -in 'a','x'; 'x' -notin 'a'; "
               "1,2 -notcontains 3") == [True, False, True, True, True]


def test_logical_operators() -> None:
    assert out("$true -and $false; $false -or 1; -not 0; !''; !'x'; !@()") \
        == [False, True, True, True, False, True]


def test_split_and_join() -> None:
    assert out("(-split ' Off  Saved ').Count; ('a,b,c' -split ',').Count; ('aXb' -split 'x')[1]; "
               "(1,2) -join '+'; -join ('a','b')") == [2, 3, "b", "1+2", "ab"]


def test_addition_of_strings_numbers_arrays_hashtables_and_null() -> None:
    assert out("'a'+1; 1+'2'; (@(1)+@(2,3)).Count; ($null+@(4)).Count; (@{a=1}+@{b=2}).Count; $null+1") == \
        ["a1", 3, 3, 1, 2, 1]
    assert "already been added" in error_of("@{a=1}+@{A=2}").message


def test_arithmetic() -> None:
    assert out("7-2; 3*2; 'ab'*2; 6/3; 7/2; 7%3; -(2)") == [5, 6, "abab", 2, 3.5, 1, -2]


# --- commands -------------------------------------------------------------------------------------

def test_an_unknown_command_is_not_recognised() -> None:
    error = error_of("Get-Nothing -Id 1")
    assert error.fqid == "CommandNotFoundException" and error.category == "ObjectNotFound"
    assert error.message.startswith("The term 'Get-Nothing' is not recognized as the name of a cmdlet")


def _recorder(calls: list[Call], name: str = "Get-VM", module: str = "Hyper-V") -> Command:
    def run_(call: Call) -> list[Any]:
        calls.append(call)
        return ["ran"]
    return Command(name, module, run_)


def test_module_qualified_names_resolve_only_from_a_loaded_module() -> None:
    calls: list[Call] = []
    cmd = _recorder(calls)
    assert out("Hyper-V\\Get-VM", commands=[cmd]) == ["ran"]
    assert error_of("Microsoft.PowerShell.Utility\\Get-VM", commands=[cmd]).fqid == "CommandNotFoundException"
    assert error_of("Hyper-V\\Get-VM", commands=[cmd], modules=["Microsoft.PowerShell.Core"]).fqid == \
        "CommandNotFoundException"


def test_functions_come_before_the_sessions_commands() -> None:
    assert out("function Get-VM{'mine'}; Get-VM", commands=[_recorder([])]) == ["mine"]


def test_parameters_bind_by_the_facts_prefixes_aliases_and_positions() -> None:
    calls: list[Call] = []
    cmd = _recorder(calls)
    out("Get-VM -Id $g; Get-VM -Na 'x'; Get-VM 'y'; Get-VM -VMName z", commands=[cmd],
        variables={"g": uuid.UUID(int=1)})
    assert [(c.params, c.set_name) for c in calls] == [
        ({"Id": uuid.UUID(int=1)}, "Id"), ({"Name": "x"}, "Name"), ({"Name": "y"}, "Name"),
        ({"Name": "z"}, "Name")]


def test_a_switch_takes_no_argument_and_colon_gives_one() -> None:
    calls: list[Call] = []
    cmd = _recorder(calls, "Restore-VMSnapshot")
    out("Restore-VMSnapshot -VMSnapshot $s -Confirm:$false; Restore-VMSnapshot -Passthru -VMSnapshot $s",
        commands=[cmd], variables={"s": PSObject("VMSnapshot")})
    assert calls[0].params["Confirm"] is False
    assert calls[1].params["Passthru"] is True and isinstance(calls[1].params["VMSnapshot"], PSObject)


def test_split_path_literal_path_parent_does_not_bind() -> None:
    # The fault a review found in media.ps1: -Parent is not in the LiteralPath set.
    error = error_of("Split-Path -LiteralPath 'C:\\a\\b' -Parent")
    assert error.fqid == "AmbiguousParameterSet,Split-Path"
    assert error.message == "Parameter set cannot be resolved using the specified named parameters."
    assert error.exception_type == "System.Management.Automation.ParameterBindingException"
    assert error.category == "InvalidArgument"


def test_unknown_and_ambiguous_parameters() -> None:
    assert error_of("Split-Path -Nope 'x'").fqid == "NamedParameterNotFound,Split-Path"
    assert error_of("Get-ChildItem -F 'x'").fqid == "AmbiguousParameter,Get-ChildItem"


def test_too_many_positional_arguments() -> None:
    assert error_of("Join-Path 'a' 'b' 'c'").fqid == "PositionalParameterNotFound,Join-Path"


def test_binding_errors_are_caught_like_any_other() -> None:
    assert out("try{Split-Path -LiteralPath 'x' -Parent}catch{'caught'}") == ["caught"]


def _failing(name: str = "Get-VM") -> Command:
    def run_(call: Call) -> Any:
        yield "partial"
        raise PSError("Hyper-V was unable to find a virtual machine.",
                      "InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM", "InvalidArgument")
    return Command(name, "Hyper-V", run_)


def test_a_cmdlet_error_under_stop_is_terminating_and_catchable() -> None:
    text = "$ErrorActionPreference='Stop'; try{$v=Get-VM -Id $g; 'not here'}catch{$_.FullyQualifiedErrorId}"
    assert out(text, commands=[_failing()], variables={"g": uuid.UUID(int=1)}) == \
        ["InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM"]


def test_a_cmdlet_error_under_continue_is_recorded_and_the_script_goes_on() -> None:
    outcome = run("$v = Get-VM -Id $g; \"got $v\"; 'after'", [_failing()], variables={"g": uuid.UUID(int=1)})
    assert outcome.error is None
    assert outcome.output == ["got partial", "after"]
    assert outcome.errors[0].fqid.startswith("InvalidParameter")


def test_error_action_parameter_overrides_the_preference() -> None:
    text = "$ErrorActionPreference='Stop'; $v = Get-VM -Id $g -ErrorAction SilentlyContinue; 'after'"
    assert out(text, commands=[_failing()], variables={"g": uuid.UUID(int=1)}) == ["after"]


# --- ConstrainedLanguage --------------------------------------------------------------------------

CL = {"language_mode": "ConstrainedLanguage"}


def test_constrained_language_refuses_methods_of_non_core_types() -> None:
    error = error_of("[Text.Encoding]::UTF8.GetString([Convert]::FromBase64String('aMOp'))", **CL)
    assert error.fqid == "MethodInvocationNotSupportedInConstrainedLanguage"
    assert error.message == ("Cannot invoke method. Method invocation is supported only on core types in "
                             "this language mode.")


def test_constrained_language_refuses_casts_to_non_core_types() -> None:
    error = error_of("[System.Text.Encoding]'x'", **CL)
    assert error.fqid == "ConversionSupportedOnlyToCoreTypes"
    assert error.exception_type == "System.Management.Automation.PSInvalidCastException"


def test_constrained_language_refuses_get_type_of_an_exception() -> None:
    assert error_of("try{throw 'x'}catch{$_.Exception.GetType().FullName}", **CL).fqid == \
        "MethodInvocationNotSupportedInConstrainedLanguage"


def test_constrained_language_allows_core_types_and_to_string() -> None:
    text = ("$g=[guid]::Empty; [guid]::TryParse('0f8fad5bd9cb469fa16570867728950e',[ref]$g); $h=@{}; "
            "$h.ContainsKey('a'); [regex]::Escape('.'); [datetime]::new(2024,1,1).ToString('yyyy'); "
            "$o=[pscustomobject]@{a=1}; $o.a=2; $o.a; $e.ToString()")
    assert out(text, variables={"e": PSObject("Other.Type", text="t")}, **CL) == \
        [True, False, "\\.", "2024", 2, "t"]


def test_full_language_allows_the_decoding_statics() -> None:
    assert one("[Text.Encoding]::UTF8.GetString([Convert]::FromBase64String('aMOp'))") == "hé"


# --- the operation frame --------------------------------------------------------------------------

FRAME = r"""$ErrorActionPreference='Stop'
function F($c,$m){throw "hvc_$($c):$m"}
function C($r){$i="$($r.FullyQualifiedErrorId)"
if("$($r.Exception.Message)" -match '^hvc_(\w+):'){$matches[1]}elseif("$($r.CategoryInfo.Category)" -eq 'PermissionDenied' -or $i -like 'AccessDenied*'){'access_denied'}elseif($i -like 'InvalidState*'){'wrong_state'}elseif($i -like 'InvalidCast*'){'invalid_parameter'}else{'host_error'}}
function Y{try{$r=@{ok=$true;data=(O)}}catch{$r=@{ok=$false;error=@{code=(C $_);message=("$($_.Exception.Message)" -replace '^hvc_\w+:')}}};ConvertTo-Json $r -Depth 8 -Compress}
function U($s,$w){$g=[guid]::Empty;if(![guid]::TryParse("$s",[ref]$g)){F invalid_parameter "$w is not an id."};$g}
"""  # noqa: E501 (the operation scripts' compact frame, its lines as shipped)


def test_the_frame_answers_a_thrown_contract_error_as_json() -> None:
    outcome = run(FRAME + "function O{F not_found 'No VM 1 on this host.'}\nY")
    assert json.loads(outcome.stdout) == {"ok": False, "error": {"code": "not_found",
                                                                 "message": "No VM 1 on this host."}}
    assert outcome.stdout.endswith("\r\n")


def test_the_frame_maps_error_ids_and_casts() -> None:
    state = PSError("The operation cannot be performed while the object is in its current state.",
                    "InvalidState,Microsoft.HyperV.PowerShell.Commands.StartVM", "InvalidOperation")
    cmd = Command("Start-VM", "Hyper-V", lambda call: (_ for _ in ()).throw(state))
    outcome = run(FRAME + "function O{Start-VM -Name x}\nY", [cmd])
    assert json.loads(outcome.stdout)["error"]["code"] == "wrong_state"
    outcome = run(FRAME + "function O{U 'nope' vm_id}\nY")
    assert json.loads(outcome.stdout)["error"] == {"code": "invalid_parameter",
                                                   "message": "vm_id is not an id."}
    outcome = run(FRAME + "function O{[int]'x'}\nY")
    assert json.loads(outcome.stdout)["error"]["code"] == "invalid_parameter"


def test_the_frame_answers_data() -> None:
    outcome = run(FRAME + "function O{@{vms=@(@{id='a';n=1})}}\nY")
    assert json.loads(outcome.stdout) == {"ok": True, "data": {"vms": [{"id": "a", "n": 1}]}}


# --- built-in cmdlets -----------------------------------------------------------------------------

def test_where_object_script_block_and_simplified_forms() -> None:
    items = [PSObject("X", {"Id": uuid.UUID(int=1), "Effect": "allow", "On": None}),
             PSObject("X", {"Id": uuid.UUID(int=2), "Effect": "deny", "On": datetime(2024, 1, 1)})]
    text = ("@($i | Where-Object {$_.Effect -eq 'deny'}).Count; ($i | Where-Object Id -eq $g).Effect; "
            "@($i | Where-Object Effect -eq 'ALLOW').Count; @($i | Where-Object Effect -ceq 'ALLOW').Count; "
            "@($i | Where-Object On).Count; @(@{Effect='allow'} | Where-Object Effect -eq 'allow').Count")
    assert out(text, variables={"i": items, "g": uuid.UUID(int=2)}) == [1, "deny", 1, 0, 1, 1]


def test_foreach_object_block_and_member_name() -> None:
    assert out("1,2 | ForEach-Object {$_ * 10}; @{Path='p'},@{Path='q'} | ForEach-Object Path") \
        == [10, 20, "p", "q"]


def test_sort_and_select() -> None:
    items = [PSObject("H", {"On": datetime(2024, 1, d)}) for d in (3, 1, 2)]
    text = ("($i | Sort-Object On | Select-Object -Last 1).On.Day; "
            "($i | Sort-Object -Property On -Descending)[0].On.Day; "
            "(1..5 | Select-Object -First 2) -join ','; ($i | Select-Object -ExpandProperty On).Count; "
            "($i | Select-Object -Property On -First 1).On.Day; ('b','A','c' | Sort-Object) -join ','")
    assert out(text, variables={"i": items}) == [3, 3, "1,2", 3, 3, "A,b,c"]


def test_measure_object_count() -> None:
    assert out("(1,2,3 | Measure-Object).Count; (@() | Measure-Object).Count") == [3, 0]


def test_convertto_json_depth_flattens_deeper_levels_to_text() -> None:
    # 5.1's default depth is 2: the third level is written as its text.
    assert one("ConvertTo-Json @{a=@{b=@{c=@{d=1}}}} -Compress") \
        == '{"a":{"b":{"c":"System.Collections.Hashtable"}}}'
    assert one("ConvertTo-Json @{a=@{b=@{c=@(1,2)}}} -Compress") == '{"a":{"b":{"c":"1 2"}}}'
    assert one("ConvertTo-Json @{a=@{b=@{c=@{d=1}}}} -Depth 8 -Compress") == '{"a":{"b":{"c":{"d":1}}}}'


def test_convertto_json_escapes_enums_dates_and_arrays_of_one() -> None:
    text = ("ConvertTo-Json @{s=\"<a href='x'>&\";e=$e;d=$d;one=@(1);g=$g;n=$null;t=$true;f=1.5} -Compress")
    result = one(text, variables={"e": PSEnum("Running", 2), "d": datetime(2024, 1, 2, tzinfo=UTC),
                                  "g": uuid.UUID(int=1)})
    assert result == ('{"s":"\\u003ca href=\\u0027x\\u0027\\u003e\\u0026","e":2,'
                      '"d":"\\/Date(1704153600000)\\/","one":[1],"g":"00000000-0000-0000-0000-000000000001","n":null,"t":true,"f":1.5}')


def test_convertto_json_pipeline_unrolls_an_array_of_one() -> None:
    assert out("@(1) | ConvertTo-Json -Compress; ConvertTo-Json @(1) -Compress; "
               "@(1,2) | ConvertTo-Json -Compress") == ["1", "[1]", "[1,2]"]


def test_convertto_json_layout_of_windows_powershell() -> None:
    assert one("ConvertTo-Json @{a=1;b=@(1,2)}") == ('{\r\n    "a":  1,\r\n    "b":  [\r\n'
                                                     '              1,\r\n'
                                                     '              2\r\n          ]\r\n}')


def test_convertfrom_json() -> None:
    text = ("$r='{\"ok\":true,\"data\":{\"vms\":[{\"id\":\"a\",\"created\":\"2024-01-02T03:04:05Z\"}]}}'"
            " | ConvertFrom-Json; "
            "$r.ok; $r.data.vms[0].id; $r.data.vms[0].created.GetType().FullName; "
            "$r.data.GetType().FullName; "
            "$r.data.vms=@(); ConvertTo-Json $r -Depth 8 -Compress")
    assert out(text) == [True, "a", "System.String", "System.Management.Automation.PSCustomObject",
                         '{"ok":true,"data":{"vms":[]}}']


def test_convertfrom_json_writes_an_array_as_one_object() -> None:
    assert out("@('[1,2]' | ConvertFrom-Json).Count; ('[1,2]' | ConvertFrom-Json).Count") == [1, 2]


def test_convertfrom_json_refuses_keys_that_differ_only_in_case() -> None:
    assert error_of("'{\"a\":1,\"A\":2}' | ConvertFrom-Json").fqid.startswith("DuplicateKeysInJsonString")


def test_write_output_out_null_and_get_date() -> None:
    now = datetime(2024, 5, 6, 7, 8, 9)
    assert out("Write-Output 1,2; 3 | Out-Null; Get-Date -Format 'yyyy-MM-dd'; (Get-Date).Hour",
               now=lambda: now) == [1, 2, "2024-05-06", 7]


@pytest.mark.parametrize("culture, shown", [("en-US", "2026-12-01"), ("th-TH", "2569-12-01"),
                                             ("ar-SA", "1448-06-20")])
def test_get_date_format_uses_the_sessions_calendar_and_an_invariant_provider_does_not(
        culture: str, shown: str) -> None:
    # Issue 12, item 21: a PSRP session runs in the client's culture.
    text = "Get-Date -Format 'yyyy-MM-dd'; (Get-Date).ToString('yyyy-MM-dd',[cultureinfo]::InvariantCulture)"
    assert out(text, culture=culture, now=lambda: datetime(2026, 12, 1, 10)) == [shown, "2026-12-01"]


def test_join_path_and_split_path() -> None:
    text = ("Join-Path 'C:\\Program Files\\' 'a\\b'; Split-Path -Path 'C:\\a\\b.vhdx' -Parent; "
            "Split-Path 'C:\\a\\b.vhdx'; Split-Path -Path 'C:\\a' -Parent; Split-Path -Path 'C:\\' -Parent; "
            "Split-Path -Path 'C:\\a\\b.vhdx' -Leaf; Split-Path -Leaf 'C:\\a\\b.vhdx'; "
            "Split-Path -Path 'C:\\a' -Qualifier; Split-Path -Path '\\\\srv\\share\\x\\y' -Parent")
    assert out(text) == ["C:\\Program Files\\a\\b", "C:\\a", "C:\\a", "C:\\", "", "b.vhdx", "b.vhdx", "C:",
                         "\\\\srv\\share\\x"]


@pytest.fixture
def disk() -> MemoryProvider:
    p = MemoryProvider()
    p.add_file("C:\\ISO\\a.iso", 100)
    p.add_file("C:\\ISO\\b.isox", 5)
    p.add_file("C:\\ISO\\hidden.iso", 7, attributes="Archive, Hidden")
    p.add_file("C:\\ISO\\dedup.iso", 9, attributes="Archive, ReparsePoint")
    p.add_folder("C:\\ISO\\link", link_type="Junction", target="D:\\Elsewhere")
    p.add_registry("HKLM:\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion",
                   {"CurrentBuild": "20348", "UBR": 2227})
    p.add_drive("C", free=10, used=20)
    return p


def test_test_path_and_path_types(disk: MemoryProvider) -> None:
    text = ("Test-Path -LiteralPath 'c:\\iso\\A.ISO' -PathType Leaf; "
            "Test-Path -LiteralPath 'C:\\ISO' -PathType Container; "
            "Test-Path -LiteralPath 'C:\\ISO' -PathType Leaf; Test-Path -LiteralPath 'C:\\nope'; "
            "Test-Path -Path 'C:\\ISO\\*.iso'")
    assert out(text, provider=disk) == [True, True, False, False, True]


def test_get_item_needs_force_for_hidden_files_and_fails_for_missing_ones(disk: MemoryProvider) -> None:
    assert out("(Get-Item -LiteralPath 'C:\\ISO\\hidden.iso' -Force).Length; "
               "(Get-Item -LiteralPath 'C:\\ISO\\link').LinkType", provider=disk) == [7, "Junction"]
    assert error_of("Get-Item -LiteralPath 'C:\\ISO\\hidden.iso'", provider=disk).fqid \
        .startswith("ItemNotFound")
    error = error_of("Get-Item -LiteralPath 'C:\\nope'", provider=disk)
    assert error.fqid == "PathNotFound,Microsoft.PowerShell.Commands.GetItemCommand"
    assert error.category == "ObjectNotFound"


def test_get_childitem_filter_file_and_force(disk: MemoryProvider) -> None:
    text = ("(Get-ChildItem -LiteralPath 'C:\\ISO' -Filter *.iso -File | ForEach-Object Name) -join ','; "
            "(Get-ChildItem -LiteralPath 'C:\\ISO' -Filter *.iso -File -Force | ForEach-Object Name)"
            " -join ','; "
            "\"$((Get-Item -LiteralPath 'C:\\ISO\\dedup.iso').Attributes)\"")
    # *.iso also finds b.isox, as Windows' 8.3 names make it do.
    assert out(text, provider=disk) == ["a.iso,b.isox,dedup.iso", "a.iso,b.isox,hidden.iso,dedup.iso",
                                        "Archive, ReparsePoint"]


def test_get_itemproperty_of_the_registry_and_get_psdrive(disk: MemoryProvider) -> None:
    text = ("$k=Get-ItemProperty -Path 'HKLM:\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion'; "
            "\"$($k.CurrentBuild).$($k.UBR)\"; "
            "$d=Get-PSDrive C -PSProvider FileSystem; $d.Free+$d.Used")
    assert out(text, provider=disk) == ["20348.2227", 30]
    assert error_of("Get-PSDrive Q", provider=disk).fqid.startswith("GetDriveNoMatchingDrive")


def test_an_empty_path_does_not_bind(disk: MemoryProvider) -> None:
    assert error_of("Test-Path -LiteralPath ''", provider=disk).fqid.startswith(
        "ParameterArgumentValidationErrorEmptyStringNotAllowed")


# --- invoke: a JEA function's script block --------------------------------------------------------

JEA_BLOCK = """[CmdletBinding()]
param(
[Parameter(Mandatory=$true)][guid]$VMId,
[Parameter(Mandatory=$true)][ValidateSet('start','stop')][string]$Action,
[guid]$CheckpointId=[guid]::Empty,
[ValidateLength(0,100)][string]$Name='',
[guid[]]$More,
[int]$Count
)
"$VMId|$Action|$($CheckpointId -eq [guid]::Empty)|[$Name]|$($More.Count)|$Count|$($VMId.GetType().FullName)"
"""


def test_invoke_binds_and_casts_typed_parameters() -> None:
    rs = Runspace(BUILTINS)
    outcome = rs.invoke(JEA_BLOCK, {"VMId": "0F8FAD5B-D9CB-469F-A165-70867728950E", "Action": "start",
                                    "More": ["0f8fad5bd9cb469fa16570867728950e"], "Count": "3"})
    assert outcome.error is None
    assert outcome.output == ["0f8fad5b-d9cb-469f-a165-70867728950e|start|True|[]|1|3|System.Guid"]


CALLER = """[CmdletBinding()]
param([Parameter(Mandatory=$true)][guid]$VMId)
$ErrorActionPreference='Stop'
$hvcData=@{Grants=@(@{Sid='S-1-5-21-1-513';Effect='allow';Scope='host';Values=@();Privileges=@('vm.view','vm.start')},
@{Sid='S-1-5-21-1-1102';Effect='deny';Scope='vms';Values=@('0f8fad5b-d9cb-469f-a165-70867728950e');Privileges=@('vm.start')},
@{Sid='S-1-5-21-1-999';Effect='allow';Scope='host';Values=@();Privileges=@('vm.reset')})}
$hvcWho=$PSSenderInfo.UserInfo.WindowsIdentity
$hvcSids=@("$($hvcWho.User.Value)")+@(foreach($x in $hvcWho.Groups){"$($x.Value)"})
$hvcMine=@(foreach($x in $hvcData.Grants){if($hvcSids -contains $x.Sid){$x}})
function HvcRights($id){$al=@{};$de=@{}
foreach($x in $hvcMine){if($x.Scope -eq 'host' -or ($x.Scope -eq 'vms' -and $x.Values -contains $id)){
foreach($q in $x.Privileges){if($x.Effect -eq 'deny'){$de[$q]=1}else{$al[$q]=1}}}}
@($al.Keys|Microsoft.PowerShell.Core\\Where-Object{!$de.ContainsKey($_)})}
(HvcRights "$VMId") -join ','
"""


def test_a_jea_style_caller_check_reads_the_callers_token() -> None:
    def sid(value: str) -> PSObject:
        return PSObject("System.Security.Principal.SecurityIdentifier", {"Value": value}, text=value)
    identity = PSObject("System.Security.Principal.WindowsIdentity", {
        "Name": "LAB\\henry", "User": sid("S-1-5-21-1-1102"),
        "Groups": [sid("S-1-1-0"), sid("S-1-5-21-1-513")]})
    sender = PSObject("System.Management.Automation.Remoting.PSSenderInfo", {
        "UserInfo": PSObject("System.Management.Automation.Remoting.PSPrincipal",
                             {"WindowsIdentity": identity})})
    rs = Runspace(BUILTINS, variables={"PSSenderInfo": sender}, language_mode="ConstrainedLanguage",
                  modules=["Microsoft.PowerShell.Core", "Microsoft.PowerShell.Utility"])
    denied = rs.invoke(CALLER, {"VMId": "0f8fad5b-d9cb-469f-a165-70867728950e"})
    other = rs.invoke(CALLER, {"VMId": str(uuid.UUID(int=1))})
    assert (denied.error, other.error) == (None, None)
    assert (denied.output, other.output) == (["vm.view"], ["vm.view,vm.start"])


def test_invoke_runs_the_body_in_its_own_scope() -> None:
    rs = Runspace(BUILTINS)
    rs.invoke("param($x)\n$y = $x", {"x": 1})
    assert rs.run("$null -eq $y").output == [True]


# --- output and compilation -----------------------------------------------------------------------

def test_stdout_is_what_powershell_prints() -> None:
    assert run("'a'; 1; $true; $null; 1.5").stdout == "a\r\n1\r\nTrue\r\n1.5\r\n"


def test_text_that_does_not_parse_runs_nothing() -> None:
    outcome = run("'before'; if (")
    assert outcome.output == [] and outcome.error is not None and outcome.error.category == "ParserError"


def test_a_text_is_compiled_once() -> None:
    text = "'compiled once " + str(uuid.uuid4()) + "'"
    first = compile_text(text)
    assert compile_text(text) is first

# Prelude of every operation script (see docs/host-operations.md). The parameters arrive in $p as
# base64 UTF-8 JSON and are decoded here into $a: they never become script text.
# Helpers that only some operations need live in those scripts (D, K). Names are short on purpose: the whole command must fit cmd.exe's 8191-character line, and the
# encoded command costs 2.7 characters per script character. Windows PowerShell 5.1 has the
# single-letter aliases r and h, which would win over functions of those names.
$ErrorActionPreference='Stop'
$ProgressPreference='SilentlyContinue'
# The one line that needs FullLanguage; the JEA endpoint drops it and builds $a from typed
# parameters instead.
$a=[Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($p))|ConvertFrom-Json
# Below the line above, everything also runs in ConstrainedLanguage (WDAC/AppLocker hosts, and the
# JEA endpoint's functions there): cmdlets, strings and the core types only, no other .NET type.
# F: fail with one of the contract's error codes, carried in the message as "hvc_<code>:".
function F($c,$m){throw "hvc_$($c):$m"}
# C: an error record's contract code: our own F's, else from the error id or category, never
# from the localised message text. VM and checkpoint look-ups raise their own not_found.
function C($r){$i="$($r.FullyQualifiedErrorId)"
if("$($r.Exception.Message)" -match '^hvc_(\w+):'){$matches[1]}elseif("$($r.CategoryInfo.Category)" -eq 'PermissionDenied' -or $i -like 'AccessDenied*'){'access_denied'}elseif($i -like 'InvalidState*'){'wrong_state'}elseif($i -like 'InvalidCast*'){'invalid_parameter'}else{'host_error'}}
# Y: the frame every operation runs in; exactly one JSON document on stdout, whatever happens.
# The client opens its shell with code page 65001, so names travel as UTF-8.
function Y($b){try{$r=@{ok=$true;data=(& $b)}}catch{$r=@{ok=$false;error=@{code=(C $_);message=("$($_.Exception.Message)" -replace '^hvc_\w+:')}}};ConvertTo-Json $r -Depth 8 -Compress}
# U: a GUID parameter, or invalid_parameter.
function U($s,$w){$g=[guid]::Empty;if(![guid]::TryParse("$s",[ref]$g)){F invalid_parameter "$w is not an id."};$g}
# V: the VM named by $a.vm_id, always by -Id (-Name takes wildcards: '*' would be every VM).
function V{$g=U $a.vm_id vm_id;$v=$null;try{$v=Get-VM -Id $g}catch{if((C $_) -eq 'access_denied'){throw}};if(!$v){F not_found "No VM $g on this host."};$v}
# S: a VM's state, read again after an action.
function S($g){$v=Get-VM -Id $g;@{id="$($v.Id)";state="$($v.State)";status="$($v.Status)"}}

# Prelude of every operation script (see docs/host-operations.md). The parameters arrive in $p as
# base64 UTF-8 JSON and are decoded here into $a: they never become script text.
# Each operation script defines its work as function O and ends with Y, the frame that runs it.
# Names are short on purpose: the whole command must fit cmd.exe's 8191-character line (at most
# 75% of it, tests/lab/test_scripts.py), and the encoded command costs 2.7 characters per script
# character. Windows PowerShell 5.1 has the single-letter aliases r and h, which would win over
# functions of those names.
$ErrorActionPreference='Stop'
$ProgressPreference='SilentlyContinue'
# The one line that needs FullLanguage; the JEA endpoint drops it and builds $a from typed
# parameters instead.
$a=[Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($p))|ConvertFrom-Json
# Below the line above, everything also runs in ConstrainedLanguage (WDAC/AppLocker hosts, and the
# JEA endpoint's functions there): cmdlets, properties, strings and the core types only.
# F: fail with one of the contract's error codes, carried in the message as "hvc_<code>:".
function F($c,$m){throw "hvc_$($c):$m"}
# C: an error record's contract code, from our own F, the error id, or the Hyper-V exception the
# cmdlet wrapped (VirtualizationException.InnerException: a WMI job's ErrorCode, or a refused
# connection's Issue); never from the localised message text. A caller outside Hyper-V
# Administrators gets id Unspecified with Issue AccessDenied; 32781 is a locked guest console;
# 32774 (ObjectInUse) a backup or merge holding the VM.
function C($r){$i="$($r.FullyQualifiedErrorId)";$x=$r.Exception.InnerException;$s="$($x.Issue)"
if("$($r.Exception.Message)" -match '^hvc_(\w+):'){$matches[1]}elseif($s -eq 'AccessDenied' -or "$($r.CategoryInfo.Category)" -eq 'PermissionDenied' -or $i -like 'AccessDenied*'){'access_denied'}elseif("$($x.ErrorCode)" -eq '32781'){'guest_locked'}elseif($i -like 'ObjectInUse*'){'object_in_use'}elseif($i -like 'InvalidState*'){'wrong_state'}elseif($i -like 'ObjectNotFound*'){'not_found'}elseif($s -in 'RpcServerUnavailable','ServerResolution'){'connection_lost'}elseif($i -like 'InvalidCast*'){'invalid_parameter'}else{'host_error'}}
# Y: the frame; exactly one JSON document on stdout, whatever happens.
# The client opens its shell with code page 65001, so names travel as UTF-8.
function Y{try{$r=@{ok=$true;data=(O)}}catch{$r=@{ok=$false;error=@{code=(C $_);message=("$($_.Exception.Message)" -replace '^hvc_\w+:')}}};ConvertTo-Json $r -Depth 8 -Compress}
# U: a GUID parameter, or invalid_parameter.
function U($s,$w){$g=[guid]::Empty;if(![guid]::TryParse("$s",[ref]$g)){F invalid_parameter "$w is not an id."};$g}
# V: the VM named by $a.vm_id, always by -Id (-Name takes wildcards: '*' would be every VM). Get-VM
# reports an unknown id as an error, InvalidParameter as for -Name or ObjectNotFound
# (docs/verification.md); anything else (a refusal, a lost connection, a command the session
# lacks) stays what it is, never "no such VM".
function N($r){"$($r.FullyQualifiedErrorId)" -match '^(InvalidParameter|ObjectNotFound),'}
function V{$g=U $a.vm_id vm_id;$v=$null;try{$v=Get-VM -Id $g}catch{if(!(N $_)){throw}};if(!$v){F not_found "No VM $g on this host."};$v}
# S: a VM's state, read again after an action.
function S($g){$v=Get-VM -Id $g;@{id="$($v.Id)";state="$($v.State)";status="$($v.Status)"}}
# E: the admin endpoint's frame of an action (console/scripts.py ends power, checkpoint and media
# with it instead of Y; the JEA functions keep Y and write their own event, HvcLog): Y's answer,
# and one event in the Application log, source %EVENT_SOURCE%, one event id per outcome (ok
# %EVENT_OK%, denied %EVENT_DENIED%, failed %EVENT_FAILED%), whose message is a JSON document: the
# caller from the process's own token (WindowsIdentity::GetCurrent: the session runs as the
# caller; never a parameter), the operation, the VM, the outcome, and the console record the call
# carries in $a.audit (its id, number, line hash and workstation, each held to its pattern: a
# reference that fails one refuses the call before anything is done). An event the log refuses is
# reported beside the answer (log_error), never instead of it. FullLanguage only, like the $a= line.
function E{$w=[System.Security.Principal.WindowsIdentity]::GetCurrent();$u=$a.audit;$k=@{record='';sha256='';seq=0;workstation=''};$o=$null;if($u){if("$($u.record)" -cmatch '%RECORD_PATTERN%' -and "$($u.sha256)" -cmatch '%SHA256_PATTERN%' -and "$($u.seq)" -cmatch '\A[1-9][0-9]{0,9}\z' -and [long]"$($u.seq)" -le %SEQ_MAX% -and "$($u.workstation)" -cmatch '%WORKSTATION_PATTERN%'){$k=@{record="$($u.record)";sha256="$($u.sha256)";seq=[int]"$($u.seq)";workstation="$($u.workstation)"}}else{$o=ConvertTo-Json @{ok=$false;error=@{code='invalid_parameter';message='The audit record reference of this call is not valid.'}} -Compress}};if(!$o){$o=Y};$r=$o|ConvertFrom-Json;$c='ok';$m='';if(!$r.ok){$c="$($r.error.code)";$m="$($r.error.message)"};if($m.Length -gt 2000){$m=$m.Substring(0,2000)};$x=$(if($c -eq 'ok'){'ok'}elseif($c -eq 'denied'){'denied'}else{'failed'});$g=[guid]::Empty;$n='';$i="$($a.vm_id)";if([guid]::TryParse($i,[ref]$g)){$i="$g";try{$n="$((Get-VM -Id $g).Name)"}catch{}};$t=ConvertTo-Json @{v=%EVENT_VERSION%;endpoint='admin';user="$($w.Name)";sid="$($w.User.Value)";operation='%OPERATION%';action="$($a.action)";vm=$i;name=$n;outcome=$x;code=$(if($c -eq 'ok'){''}else{$c});message=$m;record=$k.record;sha256=$k.sha256;seq=$k.seq;workstation=$k.workstation} -Compress;try{Write-EventLog -LogName %EVENT_LOG% -Source %EVENT_SOURCE% -EventId $(if($x -eq 'ok'){%EVENT_OK%}elseif($x -eq 'denied'){%EVENT_DENIED%}else{%EVENT_FAILED%}) -EntryType $(if($x -eq 'ok'){'Information'}else{'Warning'}) -Message $t;$o}catch{$o.Substring(0,$o.Length-1)+',"log_error":'+(ConvertTo-Json "The event of this call was not written to the Application log: $($_.Exception.Message)" -Compress)+'}'}}

# downtime_plans: the downtime plans administrators published to this host and the owners' answers
# (Application log, source %EVENT_SOURCE%, event %PLAN_EVENT% a plan, %ANSWER_EVENT% an answer;
# docs/host-operations.md), newest first, at most %PLANS_MAX% events. Each message is the JSON
# document downtime_publish.ps1 or downtime_answer.ps1 wrote, read from Properties (as
# audit_events.ps1 reads) and parsed here, so the JEA function can keep what the caller may see;
# a message that is not one is left out and counted. No event, and a source never registered,
# are an empty answer (host.toml [event_log] no_events, no_provider).
# D is the same as in inventory.ps1 (tests/lab/test_scripts.py checks it).
function D($d){if($d){$d.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'",[cultureinfo]::InvariantCulture)}}
function O{
$e=@()
try{$e=@(Get-WinEvent -FilterHashtable @{LogName='%EVENT_LOG%';ProviderName='%EVENT_SOURCE%';Id=@(%PLAN_EVENT%,%ANSWER_EVENT%)} -MaxEvents %PLANS_MAX%)}catch{if("$($_.FullyQualifiedErrorId)" -notmatch '^NoMatching(Events|Providers)Found,'){throw}}
$p=@();$r=@();$n=0
foreach($x in $e){$j=$null
try{$j="$($x.Properties[0].Value)"|ConvertFrom-Json}catch{}
if($j -and $x.Id -eq %PLAN_EVENT% -and $j.plan){$p+=@{time=D $x.TimeCreated;record_id=$x.RecordId;by="$($j.user)";sid="$($j.sid)";plan=$j.plan}}
elseif($j -and $x.Id -eq %ANSWER_EVENT% -and $j.plan_id){$r+=@{time=D $x.TimeCreated;record_id=$x.RecordId;by="$($j.user)";sid="$($j.sid)";plan_id="$($j.plan_id)";answer="$($j.answer)";text="$($j.text)"}}
else{$n++}}
@{plans=$p;answers=$r;others=$n;truncated=($e.Count -ge %PLANS_MAX%)}
}
Y

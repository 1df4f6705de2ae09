# downtime_answer: the caller's one-line answer (approve or object) to a downtime plan published to
# this host, written as one event (source %EVENT_SOURCE%, id %ANSWER_EVENT%) whose person is the
# caller from the token (%CALLER%: the process's on the admin endpoint, $PSSenderInfo's in the JEA
# function), never a name the client sends. The plan is read back from the log (every event of its
# id: a large plan is written in parts, console/downtime.py Plan.parts); an answer to a plan
# the host does not hold is not_found, and to one that touches none of the caller's VMs (%HOLDS%:
# every VM on the admin endpoint, those the caller may view in the JEA function) is denied.
function O{
$w=%CALLER%
$i="$($a.plan_id)";$c="$($a.answer)";$x="$($a.text)"
if($i -cnotmatch '%PLAN_ID_PATTERN%'){F invalid_parameter 'plan_id is not the id of a downtime plan.'}
if($c -cne 'approve' -and $c -cne 'object'){F invalid_parameter 'An answer is approve or object.'}
if($x -cnotmatch '%ANSWER_PATTERN%'){F invalid_parameter 'An answer is one line of at most %ANSWER_MAX% characters.'}
$e=@();$p=$null;$q=@()
try{$e=@(Get-WinEvent -FilterHashtable @{LogName='%EVENT_LOG%';ProviderName='%EVENT_SOURCE%';Id=%PLAN_EVENT%} -MaxEvents %PLANS_MAX%)}catch{if("$($_.FullyQualifiedErrorId)" -notmatch '^NoMatching(Events|Providers)Found,'){throw}}
foreach($y in $e){$j=$null
try{$j="$($y.Properties[0].Value)"|ConvertFrom-Json}catch{}
if($j -and "$($j.plan.id)" -ceq $i){$p=$j.plan;$q+=@($j.plan.items)}}
if(!$p){F not_found "No downtime plan $i was published to this host."}
$m=@(foreach($t in $q){if(%HOLDS%){"$($t.vm_id)"}})
if(!$m.Count){F denied "$($w.Name) holds none of the VMs plan $i touches: only their owners answer it."}
$t=ConvertTo-Json @{v=%EVENT_VERSION%;user="$($w.Name)";sid="$($w.User.Value)";plan_id=$i;answer=$c;text=$x;vms=$m} -Compress
Write-EventLog -LogName %EVENT_LOG% -Source %EVENT_SOURCE% -EventId %ANSWER_EVENT% -EntryType Information -Message $t
@{plan_id=$i;answer=$c;by="$($w.Name)";vms=$m}
}
Y

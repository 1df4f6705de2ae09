# downtime_publish: one downtime plan (console/downtime.py Plan, in $a.plan; a large plan is sent in
# parts, one call each, Plan.parts) written to this host's Application log as one event (source
# %EVENT_SOURCE%, id %PLAN_EVENT%), so the owners of its VMs
# read it through the JEA endpoint and answer it there: no server of the console's own. The
# publisher is the process's own token (%CALLER%), never a parameter. A plan for another host, or
# one whose event would be longer than an event's message may be (%MESSAGE_MAX% characters,
# host.toml [event_log] message_max), is refused before anything is written.
function O{
$w=%CALLER%
$p=$a.plan
if(!$p -or "$($p.id)" -cnotmatch '%PLAN_ID_PATTERN%'){F invalid_parameter 'The plan has no valid id.'}
$h="$($p.host)" -replace '\..*$'
if($h -ne $env:COMPUTERNAME){F invalid_parameter "Plan $($p.id) is for host $($p.host), not for this host ($env:COMPUTERNAME)."}
$t=ConvertTo-Json @{v=%EVENT_VERSION%;user="$($w.Name)";sid="$($w.User.Value)";plan=$p} -Depth 8 -Compress
if($t.Length -gt %MESSAGE_MAX%){F invalid_parameter "Plan $($p.id) makes an event of $($t.Length) characters; an event holds at most %MESSAGE_MAX%. Shorten its reason."}
Write-EventLog -LogName %EVENT_LOG% -Source %EVENT_SOURCE% -EventId %PLAN_EVENT% -EntryType Information -Message $t
@{plan_id="$($p.id)";by="$($w.Name)";characters=$t.Length}
}
Y

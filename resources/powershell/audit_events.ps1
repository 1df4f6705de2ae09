# audit_events: the console's events in this host's Application log (source %EVENT_SOURCE%, event
# ids %EVENT_OK% ok, %EVENT_DENIED% denied, %EVENT_FAILED% failed), newest first: what the host
# wrote of each call it was asked to make, every user's. At most $a.max events (1 to %EVENTS_MAX%), from
# $a.since (UTC, yyyy-MM-ddTHH:mm:ssZ) when given. An event's message is the JSON document the
# admin frame E or a JEA function wrote, passed on as written: its only insertion string, read
# from Properties (Message would need the source's message file). Get-WinEvent reports no event,
# and a source never registered, as an error (NoMatchingEventsFound, NoMatchingProvidersFound):
# both are an empty answer here.
# D is the same as in inventory.ps1 and checkpoint.ps1 (tests/lab/test_scripts.py checks it).
function D($d){if($d){$d.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'",[cultureinfo]::InvariantCulture)}}
function O{
$s="$($a.since)";$n=0
if(!("$($a.max)" -cmatch '\A[0-9]{1,6}\z' -and [int]"$($a.max)" -ge 1 -and [int]"$($a.max)" -le %EVENTS_MAX%)){F invalid_parameter 'max must be a whole number from 1 to %EVENTS_MAX%.'}
$n=[int]"$($a.max)"
$f=@{LogName='%EVENT_LOG%';ProviderName='%EVENT_SOURCE%';Id=@(%EVENT_OK%,%EVENT_DENIED%,%EVENT_FAILED%)}
if($s){if($s -cnotmatch '\A[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z\z'){F invalid_parameter 'since must be a UTC time, yyyy-MM-ddTHH:mm:ssZ.'}
# A cast reads the invariant culture whatever the session's; the Z makes it UTC.
$f['StartTime']=[datetime]$s}
$e=@()
try{$e=@(Get-WinEvent -FilterHashtable $f -MaxEvents $n)}catch{if("$($_.FullyQualifiedErrorId)" -notmatch '^NoMatching(Events|Providers)Found,'){throw}}
@{events=@(foreach($x in $e){@{time=D $x.TimeCreated;id=$x.Id;record_id=$x.RecordId;machine="$($x.MachineName)";message="$($x.Properties[0].Value)"}});truncated=($e.Count -ge $n)}
}
Y

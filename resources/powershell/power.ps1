# power: one action on one VM, refused on a Replica copy (starting one is a failover; a test
# failover copy, TestReplica, exists to be started) and in a state the cmdlet does not accept.
# Returns the VM's state after the cmdlet returned.
function O{
$v=V
if('Replica','ExtendedReplica' -contains "$($v.ReplicationMode)"){F replica "$($v.Name) is a Replica copy: power actions are refused."}
$x="$($a.action)"
# The states each action is accepted from, filled in by console/scripts.py from the one state
# table (console/states.py, from resources/powershell/facts/host.toml). The cmdlets act on the
# base state: a *Critical state is its base state with a health problem shown.
$t=@{%ACCEPTS%}
$s="$($v.State)" -replace 'Critical$'
if($t.Keys -cnotcontains $x){F invalid_parameter "Unknown power action $x."}
if((-split $t[$x]) -cnotcontains $s){F wrong_state "$($v.Name) is $($v.State)."}
if($x -eq 'shutdown'){
# The guest shutdown service, found by its id: without it Stop-VM would prompt, and a shutdown
# never silently becomes a turn-off (no -Force: it turns the VM off when the guest refuses).
$i=Get-VMIntegrationService -VM $v|Where-Object{$_.Id -like '*\9F8233AC-BE49-4C79-8EE3-E7E1985B2077'}
if(!($i.Enabled -and "$($i.PrimaryOperationalStatus)" -eq 'Ok')){F no_shutdown_service "$($v.Name) has no working shutdown integration service."}}
switch -CaseSensitive ($x) {
start{$null=Start-VM -VM $v}
shutdown{$null=Stop-VM -VM $v}
turnoff{$null=Stop-VM -VM $v -TurnOff}
reset{$null=Restart-VM -VM $v -Force}
save{$null=Save-VM -VM $v}
pause{$null=Suspend-VM -VM $v}
resume{$null=Resume-VM -VM $v}
delete_saved_state{$null=Remove-VMSavedState -VM $v}}
@{vm=S $v.Id}
}
Y

# power: one action on one VM, refused on a Replica copy (starting one is a failover) and in a
# state that does not allow it. Returns the VM's state after the cmdlet returned.
Y {
$v=V
if('Replica','TestReplica','ExtendedReplica' -contains "$($v.ReplicationMode)"){F replica "$($v.Name) is a Replica copy: power actions are refused."}
$x="$($a.action)";$s="$($v.State)"
# The states each action is accepted from (Start-VM on a running VM only warns: refuse it here).
$t=@{start='Off Saved FastSaved Hibernated';shutdown='Running';turnoff='Running Paused Stopping RunningCritical PausedCritical StoppingCritical';reset='Running Paused';save='Running Paused';pause='Running';resume='Paused PausedCritical';delete_saved_state='Saved FastSaved'}
if($t.Keys -cnotcontains $x){F invalid_parameter "Unknown power action $x."}
if((-split $t[$x]) -cnotcontains $s){F wrong_state "$($v.Name) is $s."}
if($x -eq 'shutdown'){
# The guest shutdown service, found by its id: a shutdown never silently becomes a turn-off.
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

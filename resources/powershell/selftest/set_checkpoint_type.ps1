# selftest set_checkpoint_type: the selftest VM's checkpoint type ($a.checkpoint_type), so that
# both a production and a standard checkpoint are taken.
function O{
$v=Q
if(!$v){F not_found "No VM $($a.vm_id) on this host."}
$t="$($a.checkpoint_type)"
if('Standard','Production','ProductionOnly','Disabled' -cnotcontains $t){F invalid_parameter "Unknown checkpoint type $t."}
$null=Set-VM -VM $v -CheckpointType $t
@{vm=@{id="$($v.Id)";checkpoint_type="$((Get-VM -Id $v.Id).CheckpointType)"}}
}
Y

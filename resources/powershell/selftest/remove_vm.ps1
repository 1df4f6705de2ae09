# selftest remove_vm: the selftest VM turned off, whatever its state, and removed with its
# checkpoints. A VM that is gone already is no error (removed is then false).
function O{
$v=Q
if(!$v){return @{removed=$false;id="$($a.vm_id)"}}
$s="$($v.State)" -replace 'Critical$'
try{if('Running','Paused' -contains $s){$null=Stop-VM -VM $v -TurnOff}elseif($s -eq 'Saved'){$null=Remove-VMSavedState -VM $v}}catch{}
$null=Remove-VM -VM $v -Force
@{removed=$true;id="$($v.Id)";name="$($v.Name)"}
}
Y

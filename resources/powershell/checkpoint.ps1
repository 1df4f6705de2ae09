# checkpoint: create, apply, delete (children kept, disks merged in the background), delete a
# subtree, or rename. Checkpoints are targeted by id, never by name (Rename-VMSnapshot -Name takes
# wildcards: it is given the checkpoint object instead).
# D and K are the same as in inventory.ps1 (tests/lab/test_scripts.py checks it). A checkpoint's
# SnapshotType never says Production (Standard, Recovery, Planned, Replica, ...): its State does
# (Off: no memory saved, a production checkpoint or one of an Off VM).
function D($d){if($d){$d.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'",[cultureinfo]::InvariantCulture)}}
function K($s){@{id="$($s.Id)";name=$s.Name;type="$($s.SnapshotType)";state="$($s.State)";automatic=[bool]$s.IsAutomaticCheckpoint;parent_id=$(if($s.ParentSnapshotId){"$($s.ParentSnapshotId)"});created=D $s.CreationTime}}
function O{
$v=V
$x="$($a.action)"
$c=$null
if('apply','delete','delete_subtree','rename' -ccontains $x){$g=U $a.checkpoint_id checkpoint_id
$c=Get-VMSnapshot -VM $v|Where-Object Id -eq $g
if(!$c){F not_found "$($v.Name) has no checkpoint $g."}}
switch -CaseSensitive ($x) {
create{if("$($v.CheckpointType)" -eq 'Disabled'){F checkpoints_disabled "Checkpoints are disabled on $($v.Name)."}
$n="$($a.name)"
if($n.Length -gt 100){F invalid_parameter 'A checkpoint name has at most 100 characters.'}
if($n){$c=Checkpoint-VM -VM $v -SnapshotName $n -Passthru}else{$c=Checkpoint-VM -VM $v -Passthru}}
rename{$n="$($a.name)"
if(!$n.Trim() -or $n.Length -gt 100){F invalid_parameter 'A checkpoint name has 1 to 100 characters.'}
$c=Rename-VMSnapshot -VMSnapshot $c -NewName $n -Passthru}
apply{$null=Restore-VMSnapshot -VMSnapshot $c -Confirm:$false}
delete{$null=Remove-VMSnapshot -VMSnapshot $c -Confirm:$false;$c=$null}
delete_subtree{$null=Remove-VMSnapshot -VMSnapshot $c -IncludeAllChildSnapshots -Confirm:$false;$c=$null}
default{F invalid_parameter "Unknown checkpoint action $x."}}
@{vm=S $v.Id;checkpoint=$(if($c){K $c})}
}
Y

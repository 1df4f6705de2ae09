# selftest create_vm: the disposable VM $a.name (the prefix and a random part): generation 2, no
# virtual disk, $a.memory_bytes of startup memory, a DVD drive (booting from CD adds one at
# SCSI 0:0), automatic checkpoints off. Refused when a VM of that name exists.
function O{
$n="$($a.name)"
if($n -notlike '%PREFIX%*' -or $n -notmatch '^[a-z0-9-]+$'){F invalid_parameter "$n is not a selftest VM name."}
if(@(Get-VM|Where-Object{"$($_.Name)" -eq $n})){F invalid_parameter "A VM named $n exists already."}
$v=New-VM -Name $n -MemoryStartupBytes ([long]$a.memory_bytes) -Generation 2 -NoVHD -BootDevice CD
$null=Set-VM -VM $v -AutomaticCheckpointsEnabled $false
$v=Get-VM -Id $v.Id
@{vm=@{id="$($v.Id)";name="$($v.Name)";state="$($v.State)";generation=$v.Generation;memory_startup_bytes=$v.MemoryStartup;checkpoint_type="$($v.CheckpointType)";automatic_checkpoints=[bool]$v.AutomaticCheckpointsEnabled;dvd_drives=@(Get-VMDvdDrive -VM $v|ForEach-Object{@{controller_type="$($_.ControllerType)";controller=$_.ControllerNumber;location=$_.ControllerLocation;path=$_.Path}})}}
}
Y

# metering: Hyper-V resource metering on ($a.enable) or off for every VM of the host, so that
# Measure-VM reports each VM's averages (the details' charts). Answers how many VMs the host has
# and how many have metering on afterwards (ResourceMeteringEnabled, read again).
function O{
$vs=@(Get-VM)
if($vs){if($a.enable -eq $true){Enable-VMResourceMetering -VM $vs}elseif($a.enable -eq $false){Disable-VMResourceMetering -VM $vs}else{F invalid_parameter 'enable must be true or false.'}}
@{vms=$vs.Count;enabled=@(Get-VM|Where-Object ResourceMeteringEnabled).Count}
}
Y

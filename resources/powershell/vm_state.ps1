# vm_state: cheap polling of a few VMs by id; ids not found on this host are left out.
function O{
@{vms=@(foreach($i in @($a.vm_ids)){$g=U $i vm_ids;$v=$null
try{$v=Get-VM -Id $g}catch{if(!(N $_)){throw}}
if($v){S $g}})}
}
Y

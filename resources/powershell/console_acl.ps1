# console_acl: who holds access to each VM's console on this host (Get-VMConnectAccess of every
# VM, by id): what the review holds to the policy's vm.console grants. An entry's SID is empty
# when its name maps to no account.
function O{
@{entries=@(foreach($v in @(Get-VM)){foreach($e in @(Get-VMConnectAccess -VMId $v.Id)){@{vm_id="$($v.Id)";vm_name="$($v.Name)";user="$($e.UserName)";sid="$($e.UserId.Value)";access="$($e.Access)"}}})}
}
Y

# console_access: the caller's access to one VM's console (Virtual Machine Connection, the host's
# port 2179): grant it (Grant-VMConnectAccess) or take it back (Revoke-VMConnectAccess), on that VM
# only, by id. The caller is the token's, never a parameter, so a client cannot name anyone else:
# %CALLER% is the process's own token on the admin endpoint (the session runs as the caller) and
# the connected user's token ($PSSenderInfo) in a JEA function (console/scripts.py CALLER). The
# cmdlets act in every VM state (host.toml [console_access]). A grant already held is not made
# again, and only entries the caller holds are revoked. Answers who holds access afterwards and
# whether enhanced session mode is available on this VM now: its Msvm_ComputerSystem's
# EnhancedSessionModeState is 2 (Available: the host allows it and the running guest offers it;
# the Hyper-V module's RdpEnhancedModeAvailable); a host that cannot say answers false.
function O{
$v=V
$w=%CALLER%
$u="$($w.Name)";$s="$($w.User.Value)";$x="$($a.action)"
$e=@(Get-VMConnectAccess -VMId $v.Id -UserName $u)
if($x -ceq 'grant'){if(!$e.Count){$null=Grant-VMConnectAccess -VMId $v.Id -UserName $u}}
elseif($x -ceq 'revoke'){foreach($i in $e){$null=Revoke-VMConnectAccess -VMId $v.Id -UserName "$($i.UserName)"}}
else{F invalid_parameter "Unknown console action $x."}
$e=@(Get-VMConnectAccess -VMId $v.Id -UserName $u)
$m=$false;try{$m=@(Get-CimInstance -Namespace 'root\virtualization\v2' -ClassName Msvm_ComputerSystem -Filter "Name='$($v.Id)'"|Where-Object{"$($_.EnhancedSessionModeState)" -eq '2'}).Count -gt 0}catch{}
@{vm_id="$($v.Id)";name="$($v.Name)";user=$u;sid=$s;granted=($e.Count -gt 0);enhanced=$m}
}
Y

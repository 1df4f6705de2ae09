# host_hardening: how much a host runs beyond Hyper-V and who may reach it (console/hardening.py;
# facts: host.toml [hardening]): the installation type (Server Core or the Desktop Experience), the
# roles and features installed, the enabled local accounts, the members of Administrators, Hyper-V
# Administrators and Remote Desktop Users (each group by its well-known SID, never its localised
# name; each member with its PrincipalSource: Local or ActiveDirectory), Remote Desktop allowed or
# not (Group Policy's value wins over the local one), the WinRM listeners and the registered
# session configurations. Read by the review for holders of policy.read. A part the session may
# not read (Get-PSSessionConfiguration wants an administrator) is named in `unread` with its
# error, and the rest is still answered.
function O{
$k=Get-ItemProperty -Path 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion';$u=@{}
$f=$null;try{$f=@(Get-WindowsFeature|Where-Object Installed|ForEach-Object{"$($_.Name)"})}catch{$u.features="$($_.Exception.Message)"}
$l=$null;try{$l=@(Get-LocalUser|Where-Object Enabled|ForEach-Object{@{name="$($_.Name)";sid="$($_.SID.Value)"}})}catch{$u.local_users="$($_.Exception.Message)"}
# Get-LocalGroupMember fails for the whole group when one member cannot be resolved (an orphaned
# SID): that group is answered with its error.
$g=@(foreach($s in 'S-1-5-32-544','S-1-5-32-578','S-1-5-32-555'){try{@{sid=$s;members=@(Get-LocalGroupMember -SID $s|ForEach-Object{@{name="$($_.Name)";sid="$($_.SID.Value)";source="$($_.PrincipalSource)";class="$($_.ObjectClass)"}})}}catch{@{sid=$s;error="$($_.Exception.Message)"}}})
$r=$null;$y=$false;try{$d=(Get-ItemProperty -Path 'HKLM:\SYSTEM\CurrentControlSet\Control\Terminal Server').fDenyTSConnections
$q=$null;try{$q=(Get-ItemProperty -Path 'HKLM:\SOFTWARE\Policies\Microsoft\Windows NT\Terminal Services').fDenyTSConnections}catch{}
if($null -ne $q){$d=$q;$y=$true};$r="$d" -eq '0'}catch{$u.rdp="$($_.Exception.Message)"}
$w=$null;try{$w=@(Get-WSManInstance -ResourceURI 'winrm/config/listener' -Enumerate|ForEach-Object{@{transport="$($_.Transport)";port="$($_.Port)";address="$($_.Address)";enabled="$($_.Enabled)" -eq 'true'}})}catch{$u.listeners="$($_.Exception.Message)"}
$e=$null;try{$e=@(Get-PSSessionConfiguration|ForEach-Object{@{name="$($_.Name)";permission="$($_.Permission)"}})}catch{$u.endpoints="$($_.Exception.Message)"}
@{name=$env:COMPUTERNAME;installation_type="$($k.InstallationType)";os_build="$($k.CurrentBuild).$($k.UBR)";features=$f;local_users=$l;groups=$g;rdp_enabled=$r;rdp_by_policy=$y;listeners=$w;endpoints=$e;unread=$u}
}
Y

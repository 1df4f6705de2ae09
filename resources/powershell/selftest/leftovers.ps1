# selftest leftovers: what an earlier run left behind (interrupted, or its clean-up failed): VMs
# whose name starts with the prefix, and ISOs so named directly in a library folder ($a.library).
# Changes nothing.
function O{
$v=@(Get-VM|Where-Object{"$($_.Name)" -like '%PREFIX%*'}|ForEach-Object{@{id="$($_.Id)";name="$($_.Name)";state="$($_.State)"}})
$i=@(foreach($l in @($a.library)){if("$l" -match '^[A-Za-z]:\\' -and (Test-Path -LiteralPath "$l" -PathType Container)){Get-ChildItem -LiteralPath "$l" -Filter '%PREFIX%*.iso' -File|ForEach-Object{@{path="$($_.FullName)";size_bytes=$_.Length}}}})
@{vms=$v;isos=$i}
}
Y

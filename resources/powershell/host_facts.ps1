# host_facts: name, OS build (with its update revision), newest installed update, the volume that
# holds the VMs, and the ISO files of the approved library folders given in the parameters.
# D is the same as in inventory.ps1 (tests/lab/test_scripts.py checks it).
function D($d){if($d){$d.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'",[cultureinfo]::InvariantCulture)}}
Y {
$k=Get-ItemProperty 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion'
$u=Get-HotFix|Where-Object InstalledOn|Sort-Object InstalledOn|Select-Object -Last 1
$vp=(Get-VMHost).VirtualHardDiskPath
# The file-system drive's free space works without administrator rights, unlike the Storage CIM
# cmdlets (a volume mounted in a folder is counted with its drive letter's volume).
$dv=Get-PSDrive ($vp -replace '^([A-Za-z]):.*','$1') -PSProvider FileSystem
# Only regular .iso files directly in a library folder: no reparse point, no longer extension
# (a 3-letter pattern also matches longer extensions).
$l=@(foreach($f in @($a.library)){if(Test-Path -LiteralPath "$f" -PathType Container){
foreach($i in Get-ChildItem -LiteralPath "$f" -Filter *.iso -File -Force){
if($i.Extension -eq '.iso' -and "$($i.Attributes)" -notmatch 'ReparsePoint'){@{path=$i.FullName;size_bytes=$i.Length}}}}})
@{name=$env:COMPUTERNAME;os_build="$($k.CurrentBuild).$($k.UBR)";last_update=D $u.InstalledOn
volume=@{path=$vp;free_bytes=$dv.Free;total_bytes=$dv.Free+$dv.Used};isos=$l}
}

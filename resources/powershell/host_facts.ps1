# host_facts: name, OS build with its update revision (the registry: the reliable base of the
# patch level), the newest update's day, every place that holds VM files with its free and total
# space, and the ISO files of the approved library folders given in the parameters. One odd entry
# never fails the call: an update whose date cannot be read is skipped, a place whose space
# cannot be read is listed without it, a library folder that cannot be listed is skipped.
function O{
$k=Get-ItemProperty -Path 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion'
# InstalledOn is a script property that throws on dates it cannot parse; it is a local day with
# no time, written as that day (no conversion to UTC, which can move it).
$u=$null;foreach($h in Get-HotFix){try{$d=$h.InstalledOn;if($d -and (!$u -or $d -gt $u)){$u=$d}}catch{}}
# Where VM files live: the defaults, each VM's configuration and every virtual disk. Local paths
# are grouped by volume (Get-Volume -FilePath knows mount points and Cluster Shared Volumes); a
# share (SMB3) is listed by its root, its space is the file server's.
$m=Get-VMHost;$vs=@(Get-VM)
$ps=@($m.VirtualHardDiskPath,$m.VirtualMachinePath)+@($vs|ForEach-Object{$_.Path})+@(if($vs){Get-VMHardDiskDrive -VM $vs|ForEach-Object{if("$($_.Path)" -match '\\'){Split-Path -Path $_.Path -Parent}}})
$w=@{};foreach($p in $ps){if("$p" -match '^(\\\\[^\\]+\\[^\\]+)'){$w[$matches[1]]=@{path=$matches[1];kind='share'}}elseif($p){try{$e=Get-Volume -FilePath $p;$w["$($e.Path)"]=@{path=$(if($e.DriveLetter){"$($e.DriveLetter):\"}else{$p});label=$e.FileSystemLabel;kind='volume';free_bytes=[long]$e.SizeRemaining;total_bytes=[long]$e.Size;holds=$p}}catch{$w["$p"]=@{path=$p;kind='volume';error="$($_.Exception.Message)"}}}}
# Only .iso files directly in a library folder, no symbolic links (a 3-letter pattern also
# matches longer extensions).
$l=@(foreach($f in @($a.library)){try{foreach($i in Get-ChildItem -LiteralPath "$f" -Filter *.iso -File -Force){if($i.Extension -eq '.iso' -and $i.LinkType -ne 'SymbolicLink'){@{path=$i.FullName;size_bytes=$i.Length}}}}catch{}})
@{name=$env:COMPUTERNAME;os_build="$($k.CurrentBuild).$($k.UBR)";last_update=$(if($u){$u.ToString('yyyy-MM-dd',[cultureinfo]::InvariantCulture)});storage=@($w.Values);isos=$l}
}
Y

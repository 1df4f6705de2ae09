# inventory: every VM of the host in one call. Devices, checkpoints and integration services are
# fetched once for all VMs (a property such as ProcessorCount or HardDrives would cost one WMI
# query per VM) and grouped by VM id. When a bulk read fails (one VM whose configuration cannot
# be read fails it for all), they are read VM by VM and only the failing VM is marked unreadable.
# D and K are the same as in checkpoint.ps1 (tests/lab/test_scripts.py checks it). A checkpoint's
# size is not read: which differencing disk holds which checkpoint's changes takes Get-VHD per disk
# (ParentPath) or each checkpoint's drives; the VM's checkpoint files are summed below instead.
# ParentSnapshotId is the checkpoint the VM stands on ("Now"; host.toml [checkpoints] parent_*).
# Whether a VM is a clustered role is its Key-Value Pair Exchange component's IsClustered, read
# from the components fetched in bulk (VM.IsClustered would query them again, per VM; host.toml
# [cluster]).
# AutomaticStopAction/AutomaticStartAction: what the host does with the VM when it goes down and
# comes back (host.toml [automatic_actions]; from the settings Notes is read from too).
function D($d){if($d){$d.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'",[cultureinfo]::InvariantCulture)}}
function K($s){@{id="$($s.Id)";name=$s.Name;type="$($s.SnapshotType)";state="$($s.State)";automatic=[bool]$s.IsAutomaticCheckpoint;parent_id=$(if($s.ParentSnapshotId){"$($s.ParentSnapshotId)"});created=D $s.CreationTime}}
# G: the devices of the VMs $l, added to the tables by VM id. Integration services by id, never
# by their localised names (Heartbeat 84EAAE65, Shutdown 9F8233AC).
function G($l){foreach($o in Get-VMSnapshot -VM $l){$ss["$($o.VMId)"]+=@($o)}
foreach($o in Get-VMDvdDrive -VM $l){$ds["$($o.VMId)"]+=@($o)}
foreach($o in Get-VMHardDiskDrive -VM $l){$hs["$($o.VMId)"]+=@($o)}
foreach($o in Get-VMIntegrationService -VM $l){$is["$($o.VMId)"+($o.Id -replace '.*\\')]=$o}}
function O{
$vs=@(Get-VM)
$ss=@{};$ds=@{};$hs=@{};$is=@{};$bad=@{}
if($vs){try{G $vs}catch{$ss=@{};$ds=@{};$hs=@{};$is=@{};foreach($v in $vs){try{G @($v)}catch{$bad["$($v.Id)"]="$($_.Exception.Message)"}}}}
# Resource metering where it is on (ResourceMeteringEnabled, from the VM's settings): one
# Measure-VM for those VMs; its network traffic is a running total in MB since metering started,
# which the console turns into a rate between refreshes. Metering that cannot be read is left out.
$mt=@{};$z=@($vs|Where-Object ResourceMeteringEnabled);if($z){try{foreach($u in Measure-VM -VM $z){$mt["$($u.VMId)"]=$u}}catch{}}
# The host's capacity, in the same call: physical memory (Win32_OperatingSystem, in KB) and the
# free space of each place that holds VM files, one Get-Volume a volume: a path counts under its
# share root, its Cluster Shared Volume folder or its drive (host_facts.ps1 asks Get-Volume for
# every path, so a volume mounted in a folder shows there). Nothing of it fails the inventory.
$cap=@{};try{$o=Get-CimInstance -ClassName Win32_OperatingSystem;$cap.memory_total_bytes=1024*[long]$o.TotalVisibleMemorySize;$cap.memory_free_bytes=1024*[long]$o.FreePhysicalMemory
$m=Get-VMHost;$w=@{}
foreach($p in @($m.VirtualHardDiskPath,$m.VirtualMachinePath)+@($vs|ForEach-Object{$_.Path})+@(foreach($l in $hs.Values){foreach($h in $l){$h.Path}})){if("$p" -match '^(\\\\[^\\]+\\[^\\]+)'){$w[$matches[1]]=@{path=$matches[1];kind='share'}}elseif("$p" -match '^([A-Za-z]:\\ClusterStorage\\[^\\]+|[A-Za-z]:\\)'){$q=$matches[1];if(!$w[$q]){try{$e=Get-Volume -FilePath $q;$w[$q]=@{path=$q;label=$e.FileSystemLabel;kind='volume';free_bytes=[long]$e.SizeRemaining;total_bytes=[long]$e.Size}}catch{$w[$q]=@{path=$q;kind='volume';error="$($_.Exception.Message)"}}}}}
$cap.storage=@($w.Values)}catch{$cap.error="$($_.Exception.Message)"}
@{host=$env:COMPUTERNAME;capacity=$cap;vms=@(foreach($v in $vs){$k="$($v.Id)"
try{$hb=$is[$k+'84EAAE65-2F2E-45F5-9BB5-0E857DC8EB47']
$sd=$is[$k+'9F8233AC-BE49-4C79-8EE3-E7E1985B2077']
# Disk use from file sizes, not Get-VHD (one WMI call per disk): the current disk and every
# differencing disk Hyper-V made for checkpoints beside it (<stem>_<guid>.avhdx). A disk whose
# folder cannot be read counts 0 rather than failing the inventory.
$db=0;$cb=0
foreach($h in $hs[$k]){try{$n=(Split-Path -Path $h.Path -Leaf) -replace '\.[^.]*$' -replace '_[\w-]{36}$'
foreach($f in Get-ChildItem -LiteralPath (Split-Path -Path $h.Path -Parent) -Filter "$n*" -File -Force){if($f.Name -match ('^'+[regex]::Escape($n)+'(_[\w-]{36})?\.a?vhdx?$')){$db+=$f.Length;if($f.Extension -like '.avhd*'){$cb+=$f.Length}}}}catch{}}
@{id=$k;name=$v.Name;state="$($v.State)";status="$($v.Status)";uptime_s=[long]$v.Uptime.TotalSeconds
cpu_pct=[int]$v.CPUUsage;memory_bytes=[long]$v.MemoryAssigned;memory_demand=[long]$v.MemoryDemand;generation=[int]$v.Generation
heartbeat=$(if($hb.Enabled -and $hb.PrimaryOperationalStatus){"$($hb.PrimaryOperationalStatus)"})
shutdown_service=[bool]($sd.Enabled -and "$($sd.PrimaryOperationalStatus)" -eq 'Ok')
clustered=[bool]$is[$k+'2A34B1C2-FD73-4043-8A5B-DD2159BC743F'].IsClustered
metering=$(if($u=$mt[$k]){@{seconds=[long]$u.MeteringDuration.TotalSeconds;cpu_mhz=[long]$u.AverageProcessorUsage;memory_mb=[long]$u.AverageMemoryUsage;network_mb=[long](@($u.NetworkMeteredTrafficReport|Measure-Object -Property TotalTraffic -Sum).Sum)}})
replication_mode="$($v.ReplicationMode)";checkpoint_type="$($v.CheckpointType)"
automatic_stop_action="$($v.AutomaticStopAction)";automatic_start_action="$($v.AutomaticStartAction)"
checkpoints=@(foreach($s in $ss[$k]){K $s});parent_checkpoint_id=$(if($v.ParentSnapshotId){"$($v.ParentSnapshotId)"})
dvd_drives=@(foreach($d in $ds[$k]){@{controller_type="$($d.ControllerType)";controller=[int]$d.ControllerNumber;location=[int]$d.ControllerLocation;path=$d.Path}})
notes="$($v.Notes)";disk_bytes=$db;checkpoint_bytes=$cb;unreadable=$bad[$k]}}catch{@{id=$k;name="$($v.Name)";state="$($v.State)";unreadable="$($_.Exception.Message)"}}})}
}
Y

# details: one VM as Hyper-V Manager shows it, read when its details are opened. Each property
# here costs WMI queries for this VM alone (memory and processor settings, adapters, disks, the
# firmware, the security settings, the guest's key-value pairs), which is why the inventory leaves
# them out; CPUUsage, MemoryAssigned and MemoryDemand come from the summary the inventory reads
# too. Facts and sources: resources/powershell/facts/host.toml [details]. A part the host cannot
# read (a disk whose file is gone, a generation 1 VM's firmware) is left empty, never the whole call.
function O{
if(!$a.vm_id){F invalid_parameter 'No vm_id given.'}
$v=V;$g=$v.Id
$m=@{startup=[long]$v.MemoryStartup;minimum=[long]$v.MemoryMinimum;maximum=[long]$v.MemoryMaximum;assigned=[long]$v.MemoryAssigned;demand=[long]$v.MemoryDemand;dynamic=[bool]$v.DynamicMemoryEnabled}
# IPAddresses: what the guest reports through its integration services (empty without them).
$n=@(foreach($d in Get-VMNetworkAdapter -VM $v){$l=$null;try{$l=Get-VMNetworkAdapterVlan -VMNetworkAdapter $d}catch{}
@{name=$d.Name;switch=$d.SwitchName;mac=$d.MacAddress;ips=@(foreach($i in @($d.IPAddresses)){if($i){"$i"}});vlan_mode=$(if($l){"$($l.OperationMode)"});vlan_id=$(if($l){[int]$l.AccessVlanId})}})
# Sizes of every disk of the VM in one call; a disk Get-VHD cannot open is listed without them.
$x=@{};$e=$null;try{foreach($h in @(Get-VHD -VMId $g)){$x["$($h.Path)"]=$h}}catch{$e="$($_.Exception.Message)"}
$k=@(foreach($d in Get-VMHardDiskDrive -VM $v){$h=$x["$($d.Path)"]
@{path=$d.Path;controller_type="$($d.ControllerType)";controller=[int]$d.ControllerNumber;location=[int]$d.ControllerLocation;type=$(if($h){"$($h.VhdType)"});size_bytes=$(if($h){[long]$h.Size});file_bytes=$(if($h){[long]$h.FileSize})}})
# Integration services by id (their names are localised); no status while the VM is off.
$s=@(foreach($i in Get-VMIntegrationService -VM $v){@{id=($i.Id -replace '.*\\');name=$i.Name;enabled=[bool]$i.Enabled;status=$(if($i.PrimaryOperationalStatus){"$($i.PrimaryOperationalStatus)"})}})
# Secure boot is a UEFI setting: generation 2 only (Get-VMFirmware refuses generation 1).
$b=$null;$t=$null;if($v.Generation -eq 2){$f=Get-VMFirmware -VM $v;$b="$($f.SecureBoot)" -eq 'On';$t=$f.SecureBootTemplate}
$c=$null;try{$c=[bool](Get-VMSecurity -VM $v).TpmEnabled}catch{}
# The guest's OS name from its key-value pairs (Msvm_KvpExchangeDataItem OSName), as CIM-XML text:
# read with patterns, as ConstrainedLanguage allows. Absent while the guest does not report it.
$o=$null;try{foreach($i in @((Get-CimInstance -Namespace 'root\virtualization\v2' -ClassName Msvm_KvpExchangeComponent -Filter "SystemName='$g'").GuestIntrinsicExchangeItems)){if("$i" -match '<PROPERTY NAME="Name"[^>]*>\s*<VALUE>OSName</VALUE>' -and "$i" -match '<PROPERTY NAME="Data"[^>]*>\s*<VALUE>([^<]*)</VALUE>'){$o=$matches[1] -replace '&lt;','<' -replace '&gt;','>' -replace '&quot;','"' -replace '&apos;',"'" -replace '&amp;','&'}}}catch{}
# Resource metering: averages since it was enabled or last reset (Measure-VM), where it is on.
$r=$null;if($v.ResourceMeteringEnabled){$u=Measure-VM -VM $v;$r=@{seconds=[long]$u.MeteringDuration.TotalSeconds;cpu_mhz=[long]$u.AverageProcessorUsage;memory_mb=[long]$u.AverageMemoryUsage;memory_min_mb=[long]$u.MinimumMemoryUsage;memory_max_mb=[long]$u.MaximumMemoryUsage}}
@{id="$g";name=$v.Name;state="$($v.State)";status="$($v.Status)";generation=[int]$v.Generation;version="$($v.Version)";processors=[int]$v.ProcessorCount;cpu_pct=[int]$v.CPUUsage;memory=$m;adapters=$n;disks=$k;disk_error=$e;integration=$s;secure_boot=$b;secure_boot_template=$t;tpm=$c;guest_os=$o;replication=@{mode="$($v.ReplicationMode)";state="$($v.ReplicationState)";health="$($v.ReplicationHealth)"};metering=$r}
}
Y

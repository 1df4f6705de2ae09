# thumbnail: a small picture of a VM's screen, as Hyper-V Manager shows under its VM list:
# Msvm_VirtualSystemManagementService.GetVirtualSystemThumbnailImage on the VM's realized settings
# (Msvm_VirtualSystemSettingData), which answers raw RGB 565 pixels, two bytes each, little-endian
# (resources/powershell/facts/host.toml [thumbnail]). The bytes travel as hex: [Convert]'s base64
# is not among ConstrainedLanguage's types, and -f would format in the client's culture. A VM with
# no screen (off, saved) answers no image and the method's return code, never an error.
function O{
$v=V;$w=[int]$a.width;$h=[int]$a.height
if($w -lt 16 -or $w -gt 320 -or $h -lt 12 -or $h -gt 240){F invalid_parameter "A thumbnail of $($w)x$h pixels is outside 16x12 to 320x240."}
$q='root\virtualization\v2';$d=$null;$c=$null
# Its screen is read from the VM's own settings, not a checkpoint's (theirs carry its identifier).
if("$($v.State)" -notin 'Off','Saved','OffCritical','SavedCritical'){
$s=$null;foreach($i in @(Get-CimInstance -Namespace $q -ClassName Msvm_VirtualSystemSettingData -Filter "VirtualSystemIdentifier='$($v.Id)'")){if("$($i.VirtualSystemType)" -like '*:System:Realized'){$s=$i}}
$r=Invoke-CimMethod -InputObject (Get-CimInstance -Namespace $q -ClassName Msvm_VirtualSystemManagementService) -MethodName GetVirtualSystemThumbnailImage -Arguments @{TargetSystem=$s;WidthPixels=[uint16]$w;HeightPixels=[uint16]$h}
$c=[int]$r.ReturnValue;if($c -eq 0 -and $r.ImageData){$x='0123456789abcdef';$d=-join @(foreach($b in $r.ImageData){$x[$b -shr 4];$x[$b -band 15]})}}
@{id="$($v.Id)";state="$($v.State)";width=$w;height=$h;format='rgb565';image=$d;code=$c}
}
Y

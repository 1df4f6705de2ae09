# document: the console's documentation of this host's VMs, kept on the host itself: one text file
# per VM in the folder $a.folder (a local path), and each VM's Notes (console/documentation.py
# makes the texts). Files travel as base64, so any bytes survive; names come from the console,
# which makes them safe for Windows. $a.mode 'read' answers each named file that is there; 'write'
# first moves a file that is there to its $a.files[].keep name beside it (a person's edits on the
# host are kept, never overwritten), then writes the file and, when given, the VM's Notes.
# Files are bytes (-Encoding Byte: Windows PowerShell 5.1, which the hosts run).
function O{
$d="$($a.folder)"
if($d -cnotmatch '\A[A-Za-z]:\\'){F invalid_parameter "The documentation folder must be a local path such as C:\Documentation\VMs, not '$d'."}
$m="$($a.mode)"
if('read','write' -cnotcontains $m){F invalid_parameter "Unknown document mode $m."}
if($m -ceq 'write' -and !(Test-Path -LiteralPath $d -PathType Container)){$null=New-Item -ItemType Directory -Path $d -Force}
@{folder=$d;files=@(foreach($x in @($a.files)){
$f=Join-Path -Path $d -ChildPath "$($x.file)"
$e=Test-Path -LiteralPath $f -PathType Leaf
if($m -ceq 'read'){$t=$null
if($e){$b=Get-Content -LiteralPath $f -Encoding Byte -Raw;$t=$(if($b){[Convert]::ToBase64String($b)}else{''})}
@{vm_id="$($x.vm_id)";file="$($x.file)";exists=$e;data=$t}}
else{$k=$null
if($e -and "$($x.keep)"){$k=Join-Path -Path $d -ChildPath "$($x.keep)";Move-Item -LiteralPath $f -Destination $k}
Set-Content -LiteralPath $f -Value ([Convert]::FromBase64String("$($x.data)")) -Encoding Byte
if($null -ne $x.notes){$g=U $x.vm_id vm_id;$v=Get-VM -Id $g;Set-VM -VM $v -Notes "$($x.notes)"}
@{vm_id="$($x.vm_id)";file="$($x.file)";kept=$k}}})}
}
Y

# media: mount an ISO of the approved library on the DVD drive at a controller and location, or
# eject it. The path passes every check before Hyper-V sees it, and is read back afterwards.
function O{
$v=V
$x="$($a.action)";$q="$($a.controller_type)";$n=[int]$a.controller;$o=[int]$a.location
# W: the drive in that slot. A VM may have none, or several (IDE on generation 1, SCSI on 2).
function W{@(Get-VMDvdDrive -VM $v|Where-Object{"$($_.ControllerType)" -eq $q -and $_.ControllerNumber -eq $n -and $_.ControllerLocation -eq $o})}
$d=W
if($d.Count -ne 1){F no_dvd_drive "No DVD drive at $q $($n):$o."}
$f=$null
if($x -ceq 'mount'){$p="$($a.path)";$z="$p is not an ISO file of this host's library."
# Refused: device and UNC prefixes, alternate data streams (':' after the drive), 8.3 short
# names, empty components, trailing dots or spaces in any component ('.' and '..' too), anything
# but .iso. What passes is already a full, normalised path: no resolving is needed.
if($p -notmatch '^[A-Za-z]:\\[^/:*?"<>|\x00-\x1f]+$' -or $p -match '~\d|[. ]($|\\)|\\\\' -or $p -notmatch '\.iso$'){F not_in_library $z}
$f=$p
# Inside a library folder (compared without regard to case, as Windows does), a regular file.
$b=@($a.library)|Where-Object{$l="$_".TrimEnd('\')+'\';"$_" -match '^[A-Za-z]:\\' -and $f.Length -gt $l.Length -and $f.Substring(0,$l.Length) -eq $l}|Select-Object -First 1
if(!$b -or !(Test-Path -LiteralPath $f -PathType Leaf)){F not_in_library $z}
# No link (junction, symbolic link) below the library folder, wherever it leads: each component up
# to it is read once. Other reparse points are fine (deduplicated and cloud-tiered files), and so
# is a file with several names (5.1 calls it HardLink: its data is this file, on this volume).
$l="$b".TrimEnd('\');$c=$f;while($c.Length -gt $l.Length){if('Junction','SymbolicLink' -contains (Get-Item -LiteralPath $c -Force).LinkType){F not_in_library $z};$c=Split-Path -Path $c -Parent}}
elseif($x -cne 'eject'){F invalid_parameter "Unknown media action $x."}
$null=Set-VMDvdDrive -VMDvdDrive $d[0] -Path $f
$d=W
if($f -and "$($d[0].Path)" -ne $f){$null=Set-VMDvdDrive -VMDvdDrive $d[0] -Path $null;F not_in_library "The drive read back another file than $f; it was ejected."}
@{drive=@{controller_type="$($d[0].ControllerType)";controller=$n;location=$o;path=$d[0].Path}}
}
Y

# selftest write_iso: one chunk ($a.data, base64) of the selftest's ISO at $a.offset. The first
# chunk creates the file (refused when one of that name exists), each other one appends where the
# file ends; the last ($a.last) also answers the file's SHA256.
function O{
$f=I
$b=[Convert]::FromBase64String("$($a.data)")
if($a.offset -eq 0){if(Test-Path -LiteralPath $f){F invalid_parameter "$f exists already."};Set-Content -LiteralPath $f -Value $b -Encoding Byte}
else{$l=(Get-Item -LiteralPath $f).Length;if($l -ne $a.offset){F invalid_parameter "$f holds $l bytes, not $($a.offset)."};Add-Content -LiteralPath $f -Value $b -Encoding Byte}
$r=@{path=$f;size_bytes=(Get-Item -LiteralPath $f).Length}
if($a.last){$r.sha256="$((Get-FileHash -LiteralPath $f -Algorithm SHA256).Hash)"}
$r
}
Y

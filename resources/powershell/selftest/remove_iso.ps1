# selftest remove_iso: the selftest's ISO removed from the library (removed is false when there
# was none).
function O{
$f=I
if(Test-Path -LiteralPath $f -PathType Leaf){Remove-Item -LiteralPath $f -Force;@{removed=$true;path=$f}}else{@{removed=$false;path=$f}}
}
Y

# Helpers of the host selftest's own scripts (console/selftest.py runs each as the prelude
# _common.ps1, this file, then the script; %PREFIX% is the selftest's name prefix). They touch
# only what a selftest made: a VM, or an ISO directly in a library folder, named with the prefix.
# Q: the VM named by $a.vm_id, $null when there is none; refused unless it is a selftest VM.
function Q{$g=U $a.vm_id vm_id;$v=$null;try{$v=Get-VM -Id $g}catch{if(!(N $_)){throw}};if($v -and "$($v.Name)" -notlike '%PREFIX%*'){F invalid_parameter "$($v.Name) is not a selftest VM: it is left alone."};$v}
# I: the ISO path $a.path, refused unless it is a selftest ISO (the prefix, letters, digits and
# dashes, .iso) directly in one of the library folders $a.library.
function I{$f="$($a.path)";if($f -notmatch '^[A-Za-z]:\\([^/:*?"<>|\x00-\x1f]+\\)?[a-z0-9-]+\.iso$' -or $f -match '~\d|[. ]\\|\\\\'){F not_in_library "$f is not a selftest ISO path."};$n=Split-Path -Path $f -Leaf;$d=(Split-Path -Path $f -Parent).TrimEnd('\')+'\';if($n -notlike '%PREFIX%*' -or !@(@($a.library)|Where-Object{"$_".TrimEnd('\')+'\' -eq $d})){F not_in_library "$f is not a selftest ISO of a library folder."};$f}

#Requires -RunAsAdministrator
<#
.SYNOPSIS
    Registers (or removes) the Hyper-V Delegation Console's JEA endpoint on this Hyper-V host.
.DESCRIPTION
    -Source is the folder written by `hvconsole jea generate --host <this host>`: HvConsole.psrc,
    HvConsole.Grants.psd1 and HvConsole.pssc. The role capability and the grants go to
    $env:ProgramFiles\WindowsPowerShell\Modules\HvConsole\RoleCapabilities (only administrators
    can write there), the session configuration is registered as 'HvConsole' (replacing an older
    one), the event source HvConsole is created in the Application log, the transcript folder is
    readable by administrators only, and each ISO library folder of the grants is checked for
    read access by NT VIRTUAL MACHINE\Virtual Machines (Hyper-V opens the ISO as the VM's account).
.EXAMPLE
    .\Register-HvConsoleEndpoint.ps1 -Source C:\Temp\hvconsole-jea
.EXAMPLE
    .\Register-HvConsoleEndpoint.ps1 -Unregister
#>
[CmdletBinding(DefaultParameterSetName = 'Register')]
param(
    [Parameter(Mandatory = $true, ParameterSetName = 'Register')][string]$Source,
    [Parameter(Mandatory = $true, ParameterSetName = 'Unregister')][switch]$Unregister
)
$ErrorActionPreference = 'Stop'
$Name = 'HvConsole'
$Module = Join-Path $env:ProgramFiles 'WindowsPowerShell\Modules\HvConsole'
$Roles = Join-Path $Module 'RoleCapabilities'

if ($Unregister) {
    if (Get-PSSessionConfiguration -Name $Name -ErrorAction SilentlyContinue) {
        Unregister-PSSessionConfiguration -Name $Name -Force
    }
    if (Test-Path $Module) { Remove-Item $Module -Recurse -Force }
    Write-Output "The $Name endpoint is removed; transcripts and events are kept."
    return
}

foreach ($file in 'HvConsole.psrc', 'HvConsole.Grants.psd1', 'HvConsole.pssc') {
    if (-not (Test-Path (Join-Path $Source $file))) { throw "$file is missing in $Source; run hvconsole jea generate first." }
}
$pssc = Join-Path $Source 'HvConsole.pssc'
if (-not (Test-PSSessionConfigurationFile -Path $pssc)) { throw "$pssc is not a valid session configuration file." }
$grants = Import-PowerShellDataFile -LiteralPath (Join-Path $Source 'HvConsole.Grants.psd1')
if ($grants.Host -ne $env:COMPUTERNAME) {
    throw "These files were generated for $($grants.Host), not for $env:COMPUTERNAME."
}

# The module folder: a manifest makes RoleCapabilities discoverable.
New-Item -ItemType Directory -Path $Roles -Force | Out-Null
if (-not (Test-Path (Join-Path $Module 'HvConsole.psd1'))) {
    New-ModuleManifest -Path (Join-Path $Module 'HvConsole.psd1') -ModuleVersion '1.0.0' -Description 'Hyper-V Delegation Console JEA role'
}
Copy-Item (Join-Path $Source 'HvConsole.psrc'), (Join-Path $Source 'HvConsole.Grants.psd1') -Destination $Roles -Force
# Only administrators and SYSTEM may change what the endpoint enforces.
$acl = New-Object System.Security.AccessControl.DirectorySecurity
$acl.SetAccessRuleProtection($true, $false)
foreach ($who in 'BUILTIN\Administrators', 'NT AUTHORITY\SYSTEM') {
    $acl.AddAccessRule((New-Object System.Security.AccessControl.FileSystemAccessRule($who, 'FullControl', 'ContainerInherit,ObjectInherit', 'None', 'Allow')))
}
$acl.AddAccessRule((New-Object System.Security.AccessControl.FileSystemAccessRule('BUILTIN\Users', 'ReadAndExecute', 'ContainerInherit,ObjectInherit', 'None', 'Allow')))
Set-Acl -Path $Module -AclObject $acl

# Transcripts: administrators only (they hold every refused command line).
$transcripts = (Import-PowerShellDataFile -LiteralPath $pssc).TranscriptDirectory
New-Item -ItemType Directory -Path $transcripts -Force | Out-Null
$tacl = New-Object System.Security.AccessControl.DirectorySecurity
$tacl.SetAccessRuleProtection($true, $false)
foreach ($who in 'BUILTIN\Administrators', 'NT AUTHORITY\SYSTEM') {
    $tacl.AddAccessRule((New-Object System.Security.AccessControl.FileSystemAccessRule($who, 'FullControl', 'ContainerInherit,ObjectInherit', 'None', 'Allow')))
}
Set-Acl -Path $transcripts -AclObject $tacl

# The functions write who, what, which VM and the outcome to the Application log.
if (-not [System.Diagnostics.EventLog]::SourceExists('HvConsole')) {
    New-EventLog -LogName Application -Source 'HvConsole'
}

# ISO library: Hyper-V opens a mounted ISO as the VM's own account.
$vmAccounts = New-Object System.Security.Principal.SecurityIdentifier('S-1-5-83-0')  # NT VIRTUAL MACHINE\Virtual Machines
foreach ($folder in $grants.Library) {
    if (-not (Test-Path -LiteralPath $folder -PathType Container)) { Write-Warning "ISO library $folder does not exist."; continue }
    $readable = (Get-Acl -LiteralPath $folder).Access | Where-Object {
        $_.AccessControlType -eq 'Allow' -and ($_.FileSystemRights -band [System.Security.AccessControl.FileSystemRights]::Read) -eq [System.Security.AccessControl.FileSystemRights]::Read -and
        ($_.IdentityReference.Translate([System.Security.Principal.SecurityIdentifier]) -eq $vmAccounts -or
         $_.IdentityReference.Translate([System.Security.Principal.SecurityIdentifier]).Value -in 'S-1-1-0', 'S-1-5-32-545', 'S-1-5-11')
    }
    if ($readable) { Write-Output "ISO library $folder is readable by NT VIRTUAL MACHINE\Virtual Machines." }
    else { Write-Warning "ISO library $folder is NOT readable by NT VIRTUAL MACHINE\Virtual Machines: mounting will fail. Grant it Read: icacls `"$folder`" /grant `"*S-1-5-83-0:(OI)(CI)R`"" }
}

if (Get-PSSessionConfiguration -Name $Name -ErrorAction SilentlyContinue) {
    Unregister-PSSessionConfiguration -Name $Name -Force -NoServiceRestart
}
Register-PSSessionConfiguration -Name $Name -Path $pssc -Force | Out-Null
Write-Output "The $Name endpoint of $env:COMPUTERNAME now enforces policy sha256 $($grants.Digest)."

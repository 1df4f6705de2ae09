#Requires -RunAsAdministrator
<#
.SYNOPSIS
    Registers (or removes) the Hyper-V Delegation Console's JEA endpoint on this Hyper-V host.
.DESCRIPTION
    -Source is the folder written by `hvconsole jea generate --host <this host>`: HvConsole.pssc,
    HvConsole.psrc and, if the generator writes one, a data file HvConsole.<name>.psd1.

    Run it elevated, in 64-bit Windows PowerShell 5.1, on the host itself (its console or a Remote
    Desktop session): registering restarts WinRM, which would end a remote session half-way. It
    works in ConstrainedLanguage (WDAC/AppLocker hosts): cmdlets, core types and icacls.exe only.

    First it checks, changing nothing: the files, that they were generated for this host (its short
    name or FQDN), that every principal of the role definitions resolves (naming each one that does
    not), the local name of Hyper-V Administrators (S-1-5-32-578), the event source, and each ISO
    library folder. Then, after confirmation (or with -Force): the role capability (and data file)
    go to $env:ProgramFiles\WindowsPowerShell\Modules\HvConsole (administrators write, users read),
    the transcript folder becomes administrators-only, the event source HvConsole is created in the
    Application log, and the session configuration is registered side by side as HvConsole.Next,
    then as HvConsole, and HvConsole.Next is removed. A failure at any step leaves the previous
    HvConsole endpoint registered.
.EXAMPLE
    .\Register-HvConsoleEndpoint.ps1 -Source C:\Temp\hv01-jea
.EXAMPLE
    .\Register-HvConsoleEndpoint.ps1 -Unregister
#>
[CmdletBinding(DefaultParameterSetName = 'Register')]
param(
    [Parameter(Mandatory = $true, ParameterSetName = 'Register')][string]$Source,
    [Parameter(Mandatory = $true, ParameterSetName = 'Unregister')][switch]$Unregister,
    # Do not ask before restarting WinRM.
    [switch]$Force
)
$ErrorActionPreference = 'Stop'

# From PowerShell 7, Register-PSSessionConfiguration registers an endpoint that runs PowerShell 7,
# which has no Write-EventLog and whose ConvertFrom-Json turns date strings into local DateTimes;
# it does not list Windows PowerShell's endpoints either, so it could not replace or remove this one.
if ($PSVersionTable.PSEdition -ne 'Desktop') {
    throw 'Run this script in Windows PowerShell 5.1 (powershell.exe), not PowerShell 7 (pwsh): an endpoint registered from pwsh runs PowerShell 7, which has no Write-EventLog, and the endpoint''s functions need Windows PowerShell 5.1.'
}
# 32-bit Windows PowerShell reads "Program Files (x86)" as $env:ProgramFiles, where the endpoint's
# 64-bit sessions never look for the role capability.
if ($env:PROCESSOR_ARCHITEW6432) {
    throw 'Run this script in 64-bit Windows PowerShell (C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe).'
}
# Registering restarts WinRM, which "terminates all PowerShell remoting sessions" (register-jea.md):
# a remote session running this script would end between two steps.
if ($PSSenderInfo) {
    throw 'Run this script on the host itself (its console or a Remote Desktop session), not in a remote PowerShell session: registering restarts WinRM, which would end this session half-way.'
}

$Name = 'HvConsole'
$Staged = 'HvConsole.Next'  # the new configuration, beside the live one until the switch
$Module = Join-Path -Path $env:ProgramFiles -ChildPath 'WindowsPowerShell\Modules\HvConsole'
$Roles = Join-Path -Path $Module -ChildPath 'RoleCapabilities'
$EventLogKey = 'HKLM:\SYSTEM\CurrentControlSet\Services\EventLog'

function ConvertTo-WqlString([string]$Text) {
    "'" + ($Text -replace '([\\''])', '\$1') + "'"
}

# Whether this host resolves DOMAIN\name (or a bare name). Register-PSSessionConfiguration uses
# NTAccount.Translate, a type ConstrainedLanguage refuses; WMI's account classes answer the same
# question (a query for one Domain and Name is answered without enumerating the domain).
function Test-Principal([string]$Principal) {
    $domain, $account = if ($Principal -match '\\') { $Principal -split '\\', 2 } else { '', $Principal }
    $name = ConvertTo-WqlString -Text $account
    if ($domain -and (Get-CimInstance -ClassName 'Win32_Account' -Filter "Domain = $(ConvertTo-WqlString -Text $domain) AND Name = $name" -ErrorAction SilentlyContinue)) {
        return $true
    }
    # Local and well-known names (BUILTIN\..., NT AUTHORITY\..., Everyone) are the host's own.
    if ($domain -and $domain -notin 'BUILTIN', 'NT AUTHORITY', $env:COMPUTERNAME) { return $false }
    return [bool](Get-CimInstance -ClassName 'Win32_Account' -Filter "Name = $name AND LocalAccount = TRUE" -ErrorAction SilentlyContinue) -or
        [bool](Get-CimInstance -ClassName 'Win32_SystemAccount' -Filter "Name = $name" -ErrorAction SilentlyContinue)
}

# Whether files created in a folder are readable by NT VIRTUAL MACHINE\Virtual Machines
# (S-1-5-83-0), directly or as Everyone (WD), Users (BU) or Authenticated Users (AU): Hyper-V opens
# a mounted ISO as the VM's account. Read from the SDDL string, by SID: no entry is translated to a
# name, so one that maps to no account cannot fail the check.
function Test-VMRead([string]$Folder) {
    foreach ($ace in ((Get-Acl -LiteralPath $Folder).Sddl -split '(?=\()')) {
        if ($ace -notmatch '^\(A;(?<flags>[^;]*);(?<rights>[^;]*);[^;]*;[^;]*;(S-1-5-83-0|WD|BU|AU)\)$') { continue }
        $flags, $rights = $Matches.flags, $Matches.rights
        # FILE_GENERIC_READ is 0x120089 (FR); FA and the generic GA and GR include it.
        $read = $rights -cmatch '^(FA|FR|GA|GR)' -or ($rights -match '^0x[0-9a-f]+$' -and ([long]$rights -band 0x120089) -eq 0x120089)
        if ($read -and $flags -match 'OI') { return $true }
    }
    return $false
}

function Test-Inside([string]$Path, [string[]]$Folders) {
    foreach ($folder in $Folders) {
        $root = $folder.TrimEnd('\') + '\'
        if ($Path.Length -gt $root.Length -and $Path.Substring(0, $root.Length) -eq $root) { return $true }
    }
    return $false
}

# The .iso entries of a library folder that are links (junctions, symbolic links) leading out of
# the library. Other reparse points are fine: deduplicated and cloud-tiered files are reparse
# points too, and only a link can point elsewhere. (5.1's LinkType is also 'HardLink' for a file
# with several names, FileSystemProvider.cs InternalGetLinkType: its data is the file in the folder.)
function Get-OutsideLink([string]$Folder, [string[]]$Library) {
    foreach ($item in Get-ChildItem -LiteralPath $Folder -Filter '*.iso' -Force) {
        if ($item.LinkType -notin 'SymbolicLink', 'Junction') { continue }
        foreach ($target in @($item.Target)) {
            if ($target -notmatch '^([A-Za-z]:)?\\') { $target = Join-Path -Path $Folder -ChildPath $target }
            $final = Resolve-Path -LiteralPath $target -ErrorAction SilentlyContinue
            if (-not $final -or -not (Test-Inside -Path $final.ProviderPath -Folders $Library)) { "$($item.FullName) -> $target" }
        }
    }
}

# The permissions of a folder, by SID (the same on every language, nothing to translate). Set-Acl
# would need an ACL object built with methods ConstrainedLanguage refuses; icacls.exe is the
# documented command. /reset drops entries added by hand, /inheritance:r the inherited ones.
function Set-FolderAccess([string]$Path, [string[]]$Grants) {
    icacls.exe $Path /reset /T /Q | Out-Null
    if ($LASTEXITCODE -eq 0) { icacls.exe $Path /inheritance:r /grant:r @Grants /Q | Out-Null }
    if ($LASTEXITCODE -ne 0) { throw "icacls.exe could not set the permissions of $Path (exit code $LASTEXITCODE)." }
}

# --- Checks: nothing on the host changes until every one has passed -----------------------------
if (-not $Unregister) {
    $pssc = Join-Path -Path $Source -ChildPath 'HvConsole.pssc'
    $psrc = Join-Path -Path $Source -ChildPath 'HvConsole.psrc'
    foreach ($file in $pssc, $psrc) {
        if (-not (Test-Path -LiteralPath $file -PathType Leaf)) {
            throw "$file is missing: write the files with hvconsole jea generate --host <this host> --out <folder> first."
        }
    }
    if (-not (Test-PSSessionConfigurationFile -Path $pssc)) {
        throw "$pssc is not a valid session configuration file (Test-PSSessionConfigurationFile -Path $pssc -Verbose says why)."
    }
    $config = Import-PowerShellDataFile -LiteralPath $pssc
    $null = Import-PowerShellDataFile -LiteralPath $psrc
    # A data file is installed only if the generator wrote one (the grants, apart from the functions).
    $data = @(Get-ChildItem -LiteralPath $Source -Filter 'HvConsole.*.psd1' -File)
    $facts = @(foreach ($file in $data) { Import-PowerShellDataFile -LiteralPath $file.FullName })
    if (-not $config.RoleDefinitions -or $config.RoleDefinitions.Count -eq 0) {
        throw "$pssc gives no principal access: the policy grants nothing on this host."
    }

    # The host the files were generated for, as the policy names it ("HvConsole JEA endpoint of
    # <host>, policy sha256 <digest>" in the .pssc's Description). The policy may name the host by
    # its short name or its FQDN: DNSHostName and Domain of Win32_ComputerSystem (Domain is the AD
    # domain when PartOfDomain is true; learn.microsoft.com/windows/win32/cimwin32prov/win32-computersystem).
    if ($config.Description -notmatch ' of (?<host>\S+), policy sha256 (?<digest>[0-9a-f]{64})') {
        throw "$pssc does not say which host and policy it was generated for."
    }
    $forHost = $Matches.host.TrimEnd('.')
    $digest = $Matches.digest
    $computer = Get-CimInstance -ClassName 'Win32_ComputerSystem'
    $hostNames = @($env:COMPUTERNAME, $computer.DNSHostName)
    if ($computer.PartOfDomain) { $hostNames += "$($computer.DNSHostName).$($computer.Domain)" }
    if ($forHost -notin $hostNames) {
        throw "These files were generated for $forHost, not for this host ($($hostNames -join ', ')): generate them with --host set to this host's name as the policy writes it."
    }

    # Register-PSSessionConfiguration translates each RoleDefinitions name and reports only the
    # last one that fails (CustomShellCommands.cs, ComputeSDDLFromConfiguration): check each one
    # here and name every one that does not resolve.
    $missing = @(foreach ($principal in $config.RoleDefinitions.Keys) {
            if (-not (Test-Principal -Principal $principal)) { $principal }
        })
    if ($missing.Count -gt 0) {
        throw "Nothing was changed. These role definitions name accounts or groups that do not resolve on this host: $($missing -join '; '). Correct them in the policy (renamed or deleted groups), generate again and register."
    }

    # RunAsVirtualAccountGroups takes local group names, and 'Hyper-V Administrators' is the name
    # of S-1-5-32-578 on English hosts only: the installed .pssc names it as this host does.
    $hyperVAdmins = Get-LocalGroup -SID 'S-1-5-32-578' -ErrorAction SilentlyContinue
    if (-not $hyperVAdmins) {
        throw 'The local group Hyper-V Administrators (S-1-5-32-578) does not exist: install the Hyper-V role first.'
    }
    $generated = "RunAsVirtualAccountGroups = @('Hyper-V Administrators')"
    $localName = "RunAsVirtualAccountGroups = @('" + ($hyperVAdmins.Name -replace '[''\u2018-\u201B]', '$0$0') + "')"
    $psscText = (Get-Content -LiteralPath $pssc -Raw).Replace($generated, $localName)
    if (-not $psscText.Contains($localName)) {
        throw "$pssc does not say $generated; generate it with this console's version."
    }

    # A source belongs to one log: registered under another one, Write-EventLog -LogName
    # Application would fail in every function.
    $sourceKey = "$EventLogKey\Application\HvConsole"
    $newSource = -not (Test-Path -LiteralPath $sourceKey)
    if ($newSource -and (Test-Path -Path "$EventLogKey\*\HvConsole")) {
        throw 'The event source HvConsole belongs to another log than Application: remove it (Remove-EventLog -Source HvConsole), then run this again.'
    }

    # ISO libraries (warnings only: the endpoint works without them).
    $library = @($facts | ForEach-Object -Process { $_['Library'] } | Where-Object -FilterScript { $_ })
    foreach ($folder in $library) {
        if (-not (Test-Path -LiteralPath $folder -PathType Container)) { Write-Warning -Message "ISO library $folder does not exist."; continue }
        if (-not (Test-VMRead -Folder $folder)) {
            Write-Warning -Message "ISO library $folder is not readable by NT VIRTUAL MACHINE\Virtual Machines: mounting will fail. Grant it: icacls.exe `"$folder`" /grant `"*S-1-5-83-0:(OI)(CI)R`""
        }
        foreach ($link in Get-OutsideLink -Folder $folder -Library $library) {
            Write-Warning -Message "$link is a link out of the ISO library: the console does not offer it."
        }
    }
}

# --- Confirmation --------------------------------------------------------------------------------
Write-Warning -Message "This restarts the WinRM service of $env:COMPUTERNAME: every remote PowerShell session and WinRM connection to it ends, the console's included (they reconnect)."
if (-not $Force -and (Read-Host -Prompt 'Type yes to continue') -ne 'yes') {
    Write-Output -InputObject 'Nothing was changed.'
    return
}

if ($Unregister) {
    foreach ($configuration in $Name, $Staged) {
        if (Get-PSSessionConfiguration -Name $configuration -ErrorAction SilentlyContinue) {
            Unregister-PSSessionConfiguration -Name $configuration -Force
        }
    }
    if (Test-Path -LiteralPath $Module) { Remove-Item -LiteralPath $Module -Recurse -Force }
    Write-Output -InputObject "The $Name endpoint is removed; transcripts and events are kept."
    return
}

# --- Changes ------------------------------------------------------------------------------------
# The role capability (and data file) are read at each session start by every registered
# configuration that names the role HvConsole, the live one included: the new functions and grants
# apply from here on. What the registrations below change is who may connect (RoleDefinitions),
# the virtual account's group and the transcript folder.
New-Item -Path $Module -Name 'RoleCapabilities' -ItemType Directory -Force | Out-Null
$manifest = Join-Path -Path $Module -ChildPath 'HvConsole.psd1'
if (-not (Test-Path -LiteralPath $manifest)) {
    # A manifest named like the folder makes it a module, where JEA looks for RoleCapabilities.
    Set-Content -LiteralPath $manifest -Value "@{ ModuleVersion = '1.0.0'; Description = 'Hyper-V Delegation Console JEA role' }" -Encoding UTF8
}
# Only administrators and SYSTEM may change what the endpoint enforces; users read it.
Set-FolderAccess -Path $Module -Grants '*S-1-5-32-544:(OI)(CI)F', '*S-1-5-18:(OI)(CI)F', '*S-1-5-32-545:(OI)(CI)RX'
Copy-Item -LiteralPath $psrc -Destination $Roles -Force
foreach ($file in $data) { Copy-Item -LiteralPath $file.FullName -Destination $Roles -Force }
# A data file the generator no longer writes would misstate what the endpoint enforces.
Get-ChildItem -LiteralPath $Roles -Filter 'HvConsole.*.psd1' | Where-Object -FilterScript { $_.Name -notin $data.Name } | Remove-Item -Force
$installed = Join-Path -Path $Module -ChildPath 'HvConsole.pssc'
Set-Content -LiteralPath $installed -Value $psscText -Encoding UTF8 -NoNewline
if (-not (Test-PSSessionConfigurationFile -Path $installed)) { throw "$installed is not a valid session configuration file." }

# Transcripts hold every command line, refused ones included: administrators and SYSTEM only
# (SYSTEM writes them).
$transcripts = $config.TranscriptDirectory
New-Item -Path (Split-Path -Path $transcripts -Parent) -Name (Split-Path -Path $transcripts -Leaf) -ItemType Directory -Force | Out-Null
Set-FolderAccess -Path $transcripts -Grants '*S-1-5-32-544:(OI)(CI)F', '*S-1-5-18:(OI)(CI)F'

# The functions write who, what, which VM and the outcome to the Application log.
if ($newSource) {
    New-EventLog -LogName 'Application' -Source 'HvConsole' -ErrorAction Stop
    if (-not (Test-Path -LiteralPath $sourceKey)) { throw 'The event source HvConsole was not created in the Application log.' }
}

# The switch. Register-PSSessionConfiguration -Force with the name of an existing configuration
# first unregisters it and then creates the new one, in the same command, after resolving every
# RoleDefinitions principal (CustomShellCommands.cs: ConstructPluginContent, then its registration
# script's "if ($force) { ... Unregister-PSSessionConfiguration ... }" before
# "new-item -path WSMan:\localhost\Plugin"). WinRM cannot rename a configuration, and a failure
# between that unregistering and new-item would leave no HvConsole. So the new file is registered
# first as HvConsole.Next, beside the live HvConsole, which proves it registers on this host; then
# HvConsole is replaced from the same file, and if that fails the previous file (saved from its
# ConfigFilePath, which unregistering deletes) is registered again. Each registration restarts
# WinRM in 5.1 (its -NoServiceRestart "isn't implemented", per its help).
try {
    Register-PSSessionConfiguration -Name $Staged -Path $installed -Force | Out-Null
}
catch {
    throw "The new configuration did not register (as $Staged): $($_.Exception.Message) The $Name endpoint is unchanged."
}
$previous = Get-PSSessionConfiguration -Name $Name -ErrorAction SilentlyContinue
$backup = $null
if ($previous -and $previous.ConfigFilePath) {
    $backup = Join-Path -Path $Module -ChildPath 'HvConsole.previous.pssc'
    Copy-Item -LiteralPath $previous.ConfigFilePath -Destination $backup -Force
}
try {
    Register-PSSessionConfiguration -Name $Name -Path $installed -Force | Out-Null
}
catch {
    $reason = $_.Exception.Message
    if ($backup -and -not (Get-PSSessionConfiguration -Name $Name -ErrorAction SilentlyContinue)) {
        Register-PSSessionConfiguration -Name $Name -Path $backup -Force | Out-Null
    }
    throw "The $Name endpoint was not replaced: $reason $Name is the previous configuration, if there was one; the new one is registered as $Staged."
}
Unregister-PSSessionConfiguration -Name $Staged -Force -NoServiceRestart
Write-Output -InputObject "The $Name endpoint of $env:COMPUTERNAME now enforces policy sha256 $digest; its virtual account is in $($hyperVAdmins.Name)."

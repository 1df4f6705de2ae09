# Shared by Operations.Tests.ps1 and Jea.Tests.ps1. Dot-source it in BeforeDiscovery (for the case
# data) and in BeforeAll (for the helpers): dot-sourced, everything here lives in the test file's
# session state, which is where Pester's mocks are. A module would not do: a script block created
# inside a module runs in the module's session state, where the mocks are not seen.
#
# cases.json is written by tools/pester_cases.py from the Python side (console/scripts.py,
# console/states.py, console/jea.py, resources/powershell/facts); never edit it by hand.

$HvcPesterDir = $PSScriptRoot
$HvcRepoRoot = [IO.Path]::GetFullPath([IO.Path]::Combine($PSScriptRoot, '..', '..', '..'))
$HvcOnWindows = [Environment]::OSVersion.Platform -eq [PlatformID]::Win32NT
$HvcIsCore = $PSVersionTable.PSEdition -eq 'Core'
# The shutdown and heartbeat integration services, by id (their names are localised on a host).
$HvcShutdownServiceId = '9F8233AC-BE49-4C79-8EE3-E7E1985B2077'
$HvcHeartbeatServiceId = '84EAAE65-2F2E-45F5-9BB5-0E857DC8EB47'
# Off Windows, what the admin frame E reads instead of the process's token (Invoke-HvcText).
$HvcPesterIdentity = [pscustomobject]@{ Name = 'PESTER\user'; User = [pscustomobject]@{ Value = 'S-1-5-21-1-1-1-1001' } }

function Read-HvcCases {
    $path = Join-Path $HvcPesterDir 'cases.json'
    Get-Content -LiteralPath $path -Raw -Encoding UTF8 | ConvertFrom-Json
}

function Initialize-HvcHost {
    # Stands in for a Hyper-V host: the exception types the Hyper-V cmdlets throw, and stub
    # modules named Hyper-V and Storage whose functions carry the cmdlets' parameter names and
    # sets (from the facts), so that Pester has commands to mock. Pester 5 refuses to mock a
    # command that does not exist ("Could not find Command"). The stubs are used even where the
    # real module is installed: its typed parameters would refuse the tests' plain objects, and a
    # test must never reach a real VM. Commands the scripts call that this PowerShell lacks
    # (Write-EventLog in PowerShell 7; Get-HotFix off Windows) get a stub too, and an alias under
    # the module-qualified name the JEA functions use (Microsoft.PowerShell.Management\...).
    param([Parameter(Mandatory = $true)]$Cases)
    if (-not ('HvcPester.VirtualizationException' -as [type])) {
        Add-Type -TypeDefinition @'
namespace HvcPester
{
    // Stand-ins for Microsoft.HyperV.PowerShell.VirtualizationException and what it wraps: a WMI
    // job's failure (ErrorCode) or a refused connection (Issue). The scripts read these two
    // properties only (resources/powershell/_common.ps1, function C).
    public class VirtualizationException : System.Exception
    {
        public VirtualizationException(string message, System.Exception inner) : base(message, inner) { }
    }
    public class VirtualizationOperationFailedException : System.Exception
    {
        public VirtualizationOperationFailedException(string message, long errorCode) : base(message) { ErrorCode = errorCode; }
        public long ErrorCode { get; private set; }
    }
    public class ServerConnectionException : System.Exception
    {
        public ServerConnectionException(string message, string issue) : base(message) { Issue = issue; }
        public string Issue { get; private set; }
    }
}
'@
    }
    foreach ($module in $Cases.stubs.modules.PSObject.Properties) {
        Remove-Module -Name $module.Name -Force -ErrorAction SilentlyContinue
        New-Module -Name $module.Name -ScriptBlock ([scriptblock]::Create($module.Value)) |
            Import-Module -Global -Force
    }
    $missing = @($Cases.stubs.if_missing | Where-Object { -not (Get-Command -Name $_.name -ErrorAction SilentlyContinue) })
    if ($missing.Count) {
        $text = ($missing | ForEach-Object { $_.text }) -join "`n"
        Remove-Module -Name 'HvcPester.Missing' -Force -ErrorAction SilentlyContinue
        New-Module -Name 'HvcPester.Missing' -ScriptBlock ([scriptblock]::Create($text)) |
            Import-Module -Global -Force
        foreach ($command in $missing) {
            Set-Alias -Name "$($command.module)\$($command.name)" -Value $command.name -Scope Global
        }
    }
}

function ConvertTo-HvcParameterLine {
    # The parameters as the `$p` line carries them: base64 of UTF-8 JSON (any JSON: the prelude
    # decodes it with ConvertFrom-Json). Cases from cases.json carry the console's own line (`p`).
    param([Parameter(Mandatory = $true)][hashtable]$Parameters)
    $json = ConvertTo-Json -InputObject $Parameters -Compress -Depth 10
    [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes($json))
}

function Get-HvcScriptText {
    # What the console writes to powershell.exe's standard input, less the final CRLF:
    # "$p='<base64>';" and the operation's one-line body (console.scripts.command). $Cases is the
    # test file's, read in its BeforeAll.
    param([Parameter(Mandatory = $true)][string]$Operation, [Parameter(Mandatory = $true)][string]$Line)
    "`$p='$Line';" + $Cases.operations.$Operation.body
}

function Invoke-HvcText {
    # Runs one console text as the host does (powershell -NoProfile -NonInteractive -Command -
    # with the text on standard input), with one difference: here it runs as one script block in a
    # child scope ([scriptblock]::Create and &), so that Pester's mocks stand in for Hyper-V. Not
    # Invoke-Expression: that runs in the caller's own scope, where the script's
    # $ErrorActionPreference='Stop', its $p and $a and its functions would stay behind in the test.
    # The text is one line, so -Command - would also parse it as a whole before running it.
    param([Parameter(Mandatory = $true)][string]$Text)
    if (-not $HvcOnWindows) {
        # Off Windows there is no token for the admin frame E to read: a stand-in identity.
        $Text = $Text.Replace('[System.Security.Principal.WindowsIdentity]::GetCurrent()', '$HvcPesterIdentity')
    }
    $block = [scriptblock]::Create($Text)
    $out = @(& $block)
    if ($out.Count -ne 1 -or $out[0] -isnot [string]) {
        throw "The script printed $($out.Count) objects, not one JSON document: $($out -join ' | ')"
    }
    [pscustomobject]@{ Raw = $out[0]; Answer = ($out[0] | ConvertFrom-Json) }
}

function Invoke-HvcOperation {
    # One operation with the console's parameter line (-Line, from cases.json) or with
    # parameters of the test's own (-Parameters).
    param(
        [Parameter(Mandatory = $true)][string]$Operation,
        [string]$Line,
        [hashtable]$Parameters
    )
    if (-not $Line) {
        $Line = ConvertTo-HvcParameterLine -Parameters $Parameters
    }
    Invoke-HvcText -Text (Get-HvcScriptText -Operation $Operation -Line $Line)
}

function Format-HvcValue {
    # A value as canonical text (object properties sorted): to compare decoded parameters.
    param($Value)
    if ($null -eq $Value) { return 'null' }
    if ($Value -is [string]) { return ConvertTo-Json -InputObject $Value -Compress }
    if ($Value -is [bool]) { return "$Value".ToLowerInvariant() }
    if ($Value -is [System.Collections.IDictionary]) {
        $keys = @($Value.Keys | Sort-Object)
        return '{' + (($keys | ForEach-Object { (ConvertTo-Json -InputObject "$_" -Compress) + ':' + (Format-HvcValue $Value[$_]) }) -join ',') + '}'
    }
    if ($Value -is [System.Management.Automation.PSCustomObject]) {
        $names = @($Value.PSObject.Properties.Name | Sort-Object)
        return '{' + (($names | ForEach-Object { (ConvertTo-Json -InputObject "$_" -Compress) + ':' + (Format-HvcValue $Value.$_) }) -join ',') + '}'
    }
    if ($Value -is [System.Collections.IEnumerable]) {
        return '[' + ((@($Value) | ForEach-Object { Format-HvcValue $_ }) -join ',') + ']'
    }
    "$Value"
}

function New-HvcVM {
    # Get-VM's VirtualMachine, the properties the scripts read; enum values as their names.
    param(
        [Parameter(Mandatory = $true)][string]$Id,
        [string]$Name = 'vm1',
        [string]$State = 'Running',
        [string]$Status = 'Operating normally',
        [string]$ReplicationMode = 'None',
        [string]$CheckpointType = 'Standard',
        [string]$Path = 'C:\ProgramData\Microsoft\Windows\Hyper-V\vm1'
    )
    [pscustomobject]@{
        Id = [guid]$Id; VMId = [guid]$Id; Name = $Name; VMName = $Name; State = $State; Status = $Status
        Uptime = [timespan]::FromSeconds(3600); CPUUsage = 7; MemoryAssigned = [long]2147483648
        Generation = 2; ReplicationMode = $ReplicationMode; CheckpointType = $CheckpointType
        Notes = 'notes'; Path = $Path
    }
}

function New-HvcIntegrationService {
    # Get-VMIntegrationService's VMIntegrationComponent: Id is '<vendor>:<vm id>\<service id>'.
    param(
        [Parameter(Mandatory = $true)][string]$VMId,
        [Parameter(Mandatory = $true)][string]$ServiceId,
        [bool]$Enabled = $true,
        [string]$Status = 'Ok'
    )
    [pscustomobject]@{
        VMId = [guid]$VMId; Id = "Microsoft:$($VMId.ToUpperInvariant())\$ServiceId"
        Enabled = $Enabled; PrimaryOperationalStatus = $Status
    }
}

function New-HvcSnapshot {
    # Get-VMSnapshot's VMSnapshot.
    param(
        [Parameter(Mandatory = $true)][string]$Id,
        [Parameter(Mandatory = $true)][string]$VMId,
        [string]$Name = 'checkpoint',
        [string]$ParentId = '',
        [string]$State = 'Saved',
        [string]$SnapshotType = 'Standard'
    )
    [pscustomobject]@{
        Id = [guid]$Id; VMId = [guid]$VMId; Name = $Name; SnapshotType = $SnapshotType; State = $State
        IsAutomaticCheckpoint = $false; ParentSnapshotId = $(if ($ParentId) { [guid]$ParentId } else { $null })
        CreationTime = [datetime]::SpecifyKind([datetime]'2026-11-30T10:00:00', [DateTimeKind]::Utc)
    }
}

function New-HvcDvdDrive {
    param(
        [Parameter(Mandatory = $true)][string]$VMId,
        [string]$ControllerType = 'SCSI',
        [int]$ControllerNumber = 0,
        [int]$ControllerLocation = 1,
        $Path = $null
    )
    [pscustomobject]@{
        VMId = [guid]$VMId; ControllerType = $ControllerType; ControllerNumber = $ControllerNumber
        ControllerLocation = $ControllerLocation; Path = $Path
    }
}

function New-HvcHostError {
    # The ErrorRecord a Hyper-V cmdlet fails with: its error id ('<Id>,Microsoft.HyperV.PowerShell.
    # Commands.<Cmdlet>'), its category, and a VirtualizationException wrapping the WMI job's
    # ErrorCode or the connection's Issue (what the prelude's C maps; never the message text).
    param([Parameter(Mandatory = $true)]$Fault)
    $inner = switch ($Fault.inner) {
        'VirtualizationOperationFailedException' { [HvcPester.VirtualizationOperationFailedException]::new($Fault.message, [long]$Fault.error_code) }
        'ServerConnectionException' { [HvcPester.ServerConnectionException]::new($Fault.message, [string]$Fault.issue) }
        default { [System.Exception]::new($Fault.message) }
    }
    $exception = [HvcPester.VirtualizationException]::new($Fault.message, $inner)
    [System.Management.Automation.ErrorRecord]::new($exception, $Fault.id,
        [System.Management.Automation.ErrorCategory]$Fault.category, $null)
}

function Test-HvcSwitches {
    # In a ParameterFilter: each listed switch bound exactly as expected (true: present).
    param($Bound, $Expected)
    foreach ($switch in $Expected.PSObject.Properties) {
        if ([bool]$Bound[$switch.Name] -ne [bool]$switch.Value) {
            return $false
        }
    }
    $true
}

function Get-HvcJeaFunction {
    # The FunctionDefinitions of a generated role capability (.psrc), read with PowerShell's own
    # parser (Import-PowerShellDataFile is not used: Windows PowerShell 5.1's may refuse script
    # blocks). Each ScriptBlock's text is made into a script block as the JEA session does with
    # it. -DropGuard removes that exact text once (the functions' refusal to run in PowerShell 6
    # or later, so that PowerShell 7 can test the rest of them) and fails if it is not there.
    param([Parameter(Mandatory = $true)][string]$Path, [string]$DropGuard)
    $tokens = $null
    $parseErrors = $null
    $ast = [System.Management.Automation.Language.Parser]::ParseFile($Path, [ref]$tokens, [ref]$parseErrors)
    if ($parseErrors.Count) {
        throw "$Path does not parse: $($parseErrors[0])"
    }
    $definitions = $ast.FindAll({
            param($node)
            $node -is [System.Management.Automation.Language.HashtableAst] -and
            @($node.KeyValuePairs | Where-Object { "$($_.Item1.Value)" -eq 'ScriptBlock' }).Count -eq 1
        }, $true)
    foreach ($definition in $definitions) {
        $name = $null
        $text = $null
        foreach ($pair in $definition.KeyValuePairs) {
            $value = $pair.Item2.GetPureExpression()
            if ("$($pair.Item1.Value)" -eq 'Name') {
                $name = $value.Value
            }
            elseif ("$($pair.Item1.Value)" -eq 'ScriptBlock') {
                $braced = $value.Extent.Text
                $text = $braced.Substring(1, $braced.Length - 2)
            }
        }
        if ($DropGuard) {
            $at = $text.IndexOf($DropGuard)
            if ($at -lt 0 -or $text.IndexOf($DropGuard, $at + 1) -ge 0) {
                throw "$name in $Path does not hold the PowerShell 6 guard exactly once"
            }
            $text = $text.Remove($at, $DropGuard.Length)
        }
        [pscustomobject]@{ Name = $name; Text = $text; ScriptBlock = [scriptblock]::Create($text) }
    }
}

function New-HvcSenderInfo {
    # $PSSenderInfo as a JEA session gives it, the members the generated functions read:
    # UserInfo.WindowsIdentity's Name, User.Value and each Groups[].Value (the caller's token).
    param([Parameter(Mandatory = $true)]$Caller)
    $groups = @(foreach ($sid in $Caller.groups) { [pscustomobject]@{ Value = $sid } })
    $identity = [pscustomobject]@{
        Name = $Caller.name
        User = [pscustomobject]@{ Value = $Caller.user }
        Groups = $groups
    }
    [pscustomobject]@{ UserInfo = [pscustomobject]@{ WindowsIdentity = $identity } }
}

function Invoke-HvcJea {
    # One call of a generated function as a JEA session makes it: by name, with typed parameters;
    # it must print exactly one JSON document. The caller is the $PSSenderInfo of the calling scope.
    param([Parameter(Mandatory = $true)][string]$Name, [hashtable]$Arguments = @{})
    $out = @(& $Name @Arguments)
    if ($out.Count -ne 1 -or $out[0] -isnot [string]) {
        throw "$Name printed $($out.Count) objects, not one JSON document: $($out -join ' | ')"
    }
    [pscustomobject]@{ Raw = $out[0]; Answer = ($out[0] | ConvertFrom-Json) }
}

function ConvertTo-HvcDay {
    # A case's day (yyyy-MM-dd) at 15:30 local time: the functions compare dates, never times.
    param([Parameter(Mandatory = $true)]$Day)
    if ($Day -is [datetime]) {
        return $Day.Date.AddHours(15.5)
    }
    [datetime]::ParseExact("$Day", 'yyyy-MM-dd', [cultureinfo]::InvariantCulture).AddHours(15.5)
}

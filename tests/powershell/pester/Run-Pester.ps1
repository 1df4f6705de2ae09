<#
.SYNOPSIS
Runs the Pester tests of the host-side PowerShell: the operation scripts as the console sends them
(Operations.Tests.ps1) and the generated JEA functions of the golden hosts (Jea.Tests.ps1).

.DESCRIPTION
Needs no Hyper-V, no administrator rights and no network but to install Pester: the Hyper-V
cmdlets are mocked. Uses Pester 5 (5.5.0 or later, below 6); when no such version is installed,
installs the newest 5.x for the current user from the PowerShell Gallery. Exits 0 when every test
passed, 1 otherwise.

Run it on any Windows machine, in both shells the hosts and the console meet:

    powershell -NoProfile -NonInteractive -ExecutionPolicy Bypass -File tests\powershell\pester\Run-Pester.ps1
    pwsh -NoProfile -NonInteractive -File tests/powershell/pester/Run-Pester.ps1

PowerShell 7 on Linux or macOS runs them too; the tests that need Windows (the registry, Windows
paths, powershell.exe) are skipped there and say so.

.PARAMETER ResultFile
Also write the results as NUnit XML to this file (for CI, or to send back).

.PARAMETER Output
Pester's verbosity: None, Normal, Detailed or Diagnostic.
#>
[CmdletBinding()]
param(
    [string]$ResultFile,
    [ValidateSet('None', 'Normal', 'Detailed', 'Diagnostic')]
    [string]$Output = 'Normal'
)

$ErrorActionPreference = 'Stop'
$minimum = [version]'5.5.0'
$below = [version]'6.0.0'

function Find-Pester {
    Get-Module -ListAvailable -Name Pester |
        Where-Object { $_.Version -ge $minimum -and $_.Version -lt $below } |
        Sort-Object -Property Version -Descending |
        Select-Object -First 1
}

$pester = Find-Pester
if (-not $pester) {
    Write-Host "Pester $minimum or a later 5.x is not installed: installing it for the current user from the PowerShell Gallery."
    if ($PSVersionTable.PSEdition -ne 'Core') {
        # Windows PowerShell 5.1: the Gallery needs TLS 1.2, and PowerShellGet 1.0 the NuGet provider.
        [Net.ServicePointManager]::SecurityProtocol = [Net.ServicePointManager]::SecurityProtocol -bor [Net.SecurityProtocolType]::Tls12
        $nuget = Get-PackageProvider -ListAvailable -Name NuGet -ErrorAction SilentlyContinue |
            Where-Object { $_.Version -ge [version]'2.8.5.201' }
        if (-not $nuget) {
            $null = Install-PackageProvider -Name NuGet -MinimumVersion 2.8.5.201 -Scope CurrentUser -Force
        }
    }
    # -SkipPublisherCheck: Windows ships Pester 3.4.0 signed by Microsoft, later versions are signed
    # by Pester's own certificate (pester.dev, "Installation and Update").
    Install-Module -Name Pester -MinimumVersion $minimum -MaximumVersion '5.99.99' -Scope CurrentUser -Repository PSGallery -Force -SkipPublisherCheck
    $pester = Find-Pester
    if (-not $pester) {
        throw "Pester $minimum or a later 5.x could not be installed."
    }
}
Remove-Module -Name Pester -Force -ErrorAction SilentlyContinue
Import-Module -Name $pester.Path -Force

$configuration = New-PesterConfiguration
$configuration.Run.Path = @($PSScriptRoot)
$configuration.Run.PassThru = $true
$configuration.Output.Verbosity = $Output
if ($ResultFile) {
    $configuration.TestResult.Enabled = $true
    $configuration.TestResult.OutputFormat = 'NUnitXml'
    $configuration.TestResult.OutputPath = $ResultFile
}
$result = Invoke-Pester -Configuration $configuration

$os = [Environment]::OSVersion.VersionString
Write-Host "Pester $($pester.Version) on PowerShell $($PSVersionTable.PSVersion) ($($PSVersionTable.PSEdition)), ${os}: $($result.PassedCount) passed, $($result.FailedCount) failed, $($result.SkippedCount) skipped, $($result.NotRunCount) not run."
if ($result.Result -ne 'Passed') {
    exit 1
}
exit 0

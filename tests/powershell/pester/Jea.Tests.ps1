# Pester 5 tests of the generated JEA functions: the FunctionDefinitions of the golden role
# capabilities (tests/golden/jea/<host>/HvConsole.psrc, which tests/test_jea_generate.py holds to
# `hvconsole jea generate`), loaded with PowerShell's parser and defined as the session defines
# them. The caller is $PSSenderInfo.UserInfo.WindowsIdentity, as the functions read it (its Name,
# User.Value and Groups[].Value); what each caller may do on each VM of the lab world on each day
# that matters comes from cases.json (console.jea.HostGrants.rights, tools/pester_cases.py).
#
# In PowerShell 6 or later the functions refuse to run (they need Windows PowerShell 5.1): there,
# one test checks that refusal, and the others run the functions with that one guard line taken
# out (the exact text from console/jea.py; it must be there exactly once). Windows PowerShell 5.1
# runs them as generated.
#
#   pwsh -NoProfile -NonInteractive -File tests/powershell/pester/Run-Pester.ps1
#   powershell -NoProfile -NonInteractive -ExecutionPolicy Bypass -File tests\powershell\pester\Run-Pester.ps1

BeforeDiscovery {
    . (Join-Path $PSScriptRoot 'Common.ps1')
    $Cases = Read-HvcCases
    $IsCoreEdition = $HvcIsCore
    $JeaHosts = @(foreach ($hostCase in $Cases.jea.hosts) {
            @{
                HostName = $hostCase.name
                Views = @(foreach ($view in $hostCase.views) { @{ Caller = $view.caller; Today = $view.today; View = $view } })
                Decisions = @(foreach ($decision in $hostCase.decisions) {
                        @{ Caller = $decision.caller; VmName = $decision.vm_name; Today = $decision.today; Decision = $decision }
                    })
            }
        })
}

BeforeAll {
    . (Join-Path $PSScriptRoot 'Common.ps1')
    $Cases = Read-HvcCases
    Initialize-HvcHost -Cases $Cases
    $DropGuard = if ($HvcIsCore) { $Cases.jea.guard } else { '' }
    $Callers = @{}
    foreach ($caller in $Cases.jea.callers) {
        $Callers[$caller.name] = $caller
    }
    # The smallest valid call of each function (the refusal test and the typed-parameter tests).
    $AnyVm = '42e4aaca-7231-5411-b96b-d03849b0dae1'
    $MinimalCalls = [ordered]@{
        'Get-HvcInventory' = @{}
        'Get-HvcHostFacts' = @{}
        'Get-HvcVMState' = @{ VMId = @($AnyVm) }
        'Get-HvcVMDetails' = @{ VMId = $AnyVm }
        'Get-HvcVMThumbnail' = @{ VMId = $AnyVm }
        'Invoke-HvcPower' = @{ VMId = $AnyVm; Action = 'start' }
        'Invoke-HvcCheckpoint' = @{ VMId = $AnyVm; Action = 'create' }
        'Invoke-HvcMedia' = @{ VMId = $AnyVm; Action = 'eject'; ControllerType = 'IDE'; Controller = 0; Location = 1 }
        'Get-HvcAuditEvents' = @{}
        'Get-HvcHostHardening' = @{}
        'Get-HvcDowntimePlans' = @{}
        'Submit-HvcDowntimeAnswer' = @{ PlanId = 'HV02-20261212-2200-abcdef'; Answer = 'approve' }
        'Get-HvcPolicyDigest' = @{}
    }
}

Describe 'the generated JEA functions of <HostName> (Get-HvcInventory, Get-HvcHostFacts, Get-HvcVMState, Get-HvcVMDetails, Get-HvcVMThumbnail, Invoke-HvcPower, Invoke-HvcCheckpoint, Invoke-HvcMedia, Get-HvcAuditEvents, Get-HvcPolicyDigest)' -ForEach $JeaHosts {
    BeforeAll {
        $HostCase = @($Cases.jea.hosts | Where-Object { $_.name -eq $HostName })[0]
        $Psrc = Join-Path $HvcRepoRoot $HostCase.psrc
        $Functions = @(Get-HvcJeaFunction -Path $Psrc -DropGuard $DropGuard)
        foreach ($function in $Functions) {
            Set-Item -Path "function:$($function.Name)" -Value $function.ScriptBlock
        }
        $HostVms = @{}
        foreach ($vm in $HostCase.vms) {
            $HostVms[$vm.id] = $vm
        }
        $TheState = @{ Value = 'Running' }
        $Drive = @{ Path = $null }
        $Now = Get-Date
        Mock Get-Date { $Now }
        Mock Get-VM {
            if ($PesterBoundParameters.ContainsKey('Id')) {
                $vm = $HostVms["$($PesterBoundParameters.Id)"]
                if ($vm) { New-HvcVM -Id $vm.id -Name $vm.name -State $TheState.Value }
            }
            else {
                foreach ($vm in $HostCase.vms) { New-HvcVM -Id $vm.id -Name $vm.name -State $TheState.Value }
            }
        }
        Mock Get-VMIntegrationService { foreach ($vm in $PesterBoundParameters.VM) { New-HvcIntegrationService -VMId "$($vm.Id)" -ServiceId $HvcShutdownServiceId } }
        Mock Get-VMSnapshot { foreach ($vm in $PesterBoundParameters.VM) { New-HvcSnapshot -Id $Cases.jea.checkpoint_id -VMId "$($vm.Id)" } }
        Mock Get-VMDvdDrive { foreach ($vm in $PesterBoundParameters.VM) { New-HvcDvdDrive -VMId "$($vm.Id)" -ControllerType 'IDE' -ControllerNumber 0 -ControllerLocation 1 -Path $Drive.Path } }
        Mock Get-VMHardDiskDrive { @() }
        Mock Set-VMDvdDrive { $Drive.Path = $PesterBoundParameters.Path }
        Mock Checkpoint-VM { New-HvcSnapshot -Id $Cases.jea.checkpoint_id -VMId "$(@($PesterBoundParameters.VM)[0].Id)" }
        Mock Rename-VMSnapshot { New-HvcSnapshot -Id $Cases.jea.checkpoint_id -VMId "$($PesterBoundParameters.VMSnapshot.VMId)" -Name $PesterBoundParameters.NewName }
        foreach ($command in 'Start-VM', 'Stop-VM', 'Restart-VM', 'Save-VM', 'Suspend-VM', 'Resume-VM', 'Remove-VMSavedState', 'Restore-VMSnapshot', 'Remove-VMSnapshot') {
            Mock -CommandName $command -MockWith { @() }
        }
        Mock Test-Path { $true }
        Mock Get-Item { [pscustomobject]@{ LinkType = $null } }
        Mock Write-EventLog { @() }
        # The Application log holds one event of the console's (Get-HvcAuditEvents passes its
        # message on as written).
        $EventMessage = '{"v":1,"endpoint":"jea","operation":"power","outcome":"ok"}'
        Mock Get-WinEvent { [pscustomobject]@{ TimeCreated = [datetime]'2026-03-01T10:00:00Z'; Id = 1000; RecordId = [long]7; MachineName = $HostName; Properties = @([pscustomobject]@{ Value = $EventMessage }) } }
        Mock Get-ItemProperty { [pscustomobject]@{ CurrentBuild = '20348'; UBR = 3091 } }
        Mock Get-HotFix { @() }
        Mock Get-VMHost { [pscustomobject]@{ VirtualHardDiskPath = 'C:\Hyper-V\Disks'; VirtualMachinePath = 'C:\Hyper-V' } }
        Mock Get-Volume { [pscustomobject]@{ Path = '\\?\Volume{c}\'; DriveLetter = 'C'; FileSystemLabel = 'OS'; SizeRemaining = [long]1; Size = [long]2 } }
        Mock Get-ChildItem { @() }
        # What Get-HvcVMDetails reads beyond the inventory's cmdlets.
        Mock Get-VMNetworkAdapter { @() }
        Mock Get-VHD { @() }
        Mock Get-VMFirmware { [pscustomobject]@{ SecureBoot = 'On'; SecureBootTemplate = 'MicrosoftWindows' } }
        Mock Get-VMSecurity { [pscustomobject]@{ TpmEnabled = $false } }
        Mock Get-CimInstance { @() }
    }

    It 'the role capability defines exactly the functions console/jea.py generates, in its order' {
        ($Functions.Name -join ',') | Should -BeExactly ($Cases.jea.functions -join ',')
        ($MinimalCalls.Keys -join ',') | Should -BeExactly ($Cases.jea.functions -join ',')
    }

    It 'in PowerShell 6 or later every function answers only that it must be registered from Windows PowerShell 5.1' -Skip:(-not $IsCoreEdition) {
        $PSSenderInfo = New-HvcSenderInfo -Caller $Callers['LAB\adam']
        foreach ($function in @(Get-HvcJeaFunction -Path $Psrc)) {
            $arguments = $MinimalCalls[$function.Name]
            $out = @(& $function.ScriptBlock @arguments)
            ($out -join "`n") | Should -BeExactly $Cases.jea.refused_on_6 -Because $function.Name
        }
        Should -Invoke Get-VM -Times 0 -Exactly -Scope It
    }

    Context 'Get-HvcInventory: the VMs the caller may view (vm.view), on each day that decides' {
        It '<Caller> on <Today>' -ForEach $Views {
            $PSSenderInfo = New-HvcSenderInfo -Caller $Callers[$Caller]
            $Now = ConvertTo-HvcDay $Today
            $result = Invoke-HvcJea -Name 'Get-HvcInventory'
            if ($View.connect) {
                $result.Answer.ok | Should -BeTrue -Because $result.Raw
                (@($result.Answer.data.vms | ForEach-Object { $_.id }) -join ',') | Should -BeExactly (@($View.visible) -join ',')
            }
            else {
                $result.Answer.error.code | Should -BeExactly 'denied' -Because $result.Raw
                $result.Answer.error.message | Should -BeExactly "$Caller holds no grant on this host."
                Should -Invoke Get-VM -Times 0 -Exactly -Scope It
            }
        }
    }

    Context 'Get-HvcVMState: only the VMs the caller may view are polled' {
        It '<Caller> on <Today>' -ForEach $Views {
            $PSSenderInfo = New-HvcSenderInfo -Caller $Callers[$Caller]
            $Now = ConvertTo-HvcDay $Today
            $result = Invoke-HvcJea -Name 'Get-HvcVMState' -Arguments @{ VMId = @($HostCase.vms | ForEach-Object { $_.id }) }
            if ($View.connect) {
                $result.Answer.ok | Should -BeTrue -Because $result.Raw
                (@($result.Answer.data.vms | ForEach-Object { $_.id }) -join ',') | Should -BeExactly (@($View.visible) -join ',')
            }
            else {
                $result.Answer.error.code | Should -BeExactly 'denied' -Because $result.Raw
            }
        }
    }

    Context 'Get-HvcVMDetails, Get-HvcVMThumbnail: a VM''s details and screen only to a caller who may view it (denied otherwise)' {
        It '<Caller> on <Today>' -ForEach $Views {
            $PSSenderInfo = New-HvcSenderInfo -Caller $Callers[$Caller]
            $Now = ConvertTo-HvcDay $Today
            $TheState.Value = 'Off'  # no screen to read: the thumbnail answers without CIM
            $mismatches = @(foreach ($vm in $HostCase.vms) {
                    $visible = @($View.visible) -contains $vm.id
                    foreach ($name in 'Get-HvcVMDetails', 'Get-HvcVMThumbnail') {
                        $result = Invoke-HvcJea -Name $name -Arguments @{ VMId = $vm.id }
                        if ($visible -and $result.Answer.error.code -eq 'denied') { "$name $($vm.name): may view, but denied: $($result.Raw)" }
                        elseif (-not $visible -and $result.Answer.error.code -ne 'denied') { "$name $($vm.name): may not view, but answered $($result.Raw)" }
                    }
                })
            $TheState.Value = 'Running'
            $mismatches | Should -BeNullOrEmpty
        }
    }

    Context 'Invoke-HvcPower, Invoke-HvcCheckpoint, Invoke-HvcMedia: every action as the grants allow it, refused (denied) otherwise' {
        It '<Caller> on <VmName> (<Today>)' -ForEach $Decisions {
            $PSSenderInfo = New-HvcSenderInfo -Caller $Callers[$Caller]
            $Now = ConvertTo-HvcDay $Today
            $mismatches = @(foreach ($action in $HostCase.actions) {
                    $TheState.Value = $action.state
                    $Drive.Path = $null
                    $arguments = @{ VMId = $Decision.vm }
                    foreach ($argument in $action.arguments.PSObject.Properties) {
                        $arguments[$argument.Name] = $argument.Value
                    }
                    $result = Invoke-HvcJea -Name $action.function -Arguments $arguments
                    $allowed = @($Decision.allowed) -contains $action.name
                    if ($allowed -and -not $result.Answer.ok) {
                        "$($action.name): allowed by the grants, but answered $($result.Raw)"
                    }
                    elseif (-not $allowed -and $result.Answer.error.code -ne 'denied') {
                        "$($action.name): not allowed by the grants, but answered $($result.Raw)"
                    }
                })
            $mismatches | Should -BeNullOrEmpty
        }
    }

    Context 'Get-HvcPolicyDigest: any caller with an allow grant here; Get-HvcHostFacts: a grant on this host or on one of its VMs' {
        It '<Caller> on <Today>' -ForEach @($Views | Where-Object { $_.Today -eq $Views[0].Today }) {
            $PSSenderInfo = New-HvcSenderInfo -Caller $Callers[$Caller]
            $Now = ConvertTo-HvcDay $Today
            foreach ($name in 'Get-HvcHostFacts', 'Get-HvcPolicyDigest') {
                $result = Invoke-HvcJea -Name $name
                $allowed = if ($name -eq 'Get-HvcHostFacts') { $View.facts } else { $View.connect }
                if ($allowed) {
                    $result.Answer.error.code | Should -Not -Be 'denied' -Because "$name answered $($result.Raw)"
                }
                else {
                    $result.Answer.error.code | Should -BeExactly 'denied' -Because "$name answered $($result.Raw)"
                }
            }
        }

        It 'Get-HvcHostFacts answers the host''s facts, the library being the policy''s' -Skip:(-not $HvcOnWindows) {
            $PSSenderInfo = New-HvcSenderInfo -Caller $Callers['LAB\rita']
            $result = Invoke-HvcJea -Name 'Get-HvcHostFacts'
            $result.Answer.ok | Should -BeTrue -Because $result.Raw
            $result.Answer.data.os_build | Should -BeExactly '20348.3091'
            $result.Answer.data.name | Should -Be $env:COMPUTERNAME
        }

        It 'Get-HvcPolicyDigest answers the grants the functions hold, as console/jea.py generated them (Windows PowerShell 5.1 writes their arrays as arrays)' {
            $PSSenderInfo = New-HvcSenderInfo -Caller $Callers['LAB\adam']
            $result = Invoke-HvcJea -Name 'Get-HvcPolicyDigest'
            $result.Answer.ok | Should -BeTrue -Because $result.Raw
            Format-HvcValue $result.Answer.data.enforced | Should -BeExactly (Format-HvcValue $HostCase.enforced)
        }
    }

    Context 'Get-HvcAuditEvents: the console''s events of this host, to holders of audit.read only' {
        It '<Caller> on <Today>' -ForEach $Views {
            $PSSenderInfo = New-HvcSenderInfo -Caller $Callers[$Caller]
            $Now = ConvertTo-HvcDay $Today
            $result = Invoke-HvcJea -Name 'Get-HvcAuditEvents' -Arguments @{ Since = '2026-01-01T00:00:00Z'; MaxEvents = 50 }
            if ($View.audit) {
                $result.Answer.ok | Should -BeTrue -Because $result.Raw
                $result.Answer.data.events[0].message | Should -BeExactly $EventMessage
                $result.Answer.data.events[0].id | Should -Be 1000
                $result.Answer.data.events[0].time | Should -BeExactly '2026-03-01T10:00:00Z'
                Should -Invoke Get-WinEvent -Times 1 -Exactly -Scope It -ParameterFilter {
                    $FilterHashtable.LogName -eq 'Application' -and $FilterHashtable.ProviderName -eq $Cases.jea.event_source -and
                    (@($FilterHashtable.Id) -join ',') -eq "$($Cases.jea.event_ids.ok),$($Cases.jea.event_ids.denied),$($Cases.jea.event_ids.failed)" -and
                    $FilterHashtable.StartTime.ToUniversalTime() -eq [datetime]::new(2026, 1, 1, 0, 0, 0, [DateTimeKind]::Utc) -and $MaxEvents -eq 50
                }
            }
            else {
                $result.Answer.error.code | Should -BeExactly 'denied' -Because $result.Raw
                $result.Answer.error.message | Should -BeExactly "$Caller may not read the audit events of this host: no grant gives audit.read."
                Should -Invoke Get-WinEvent -Times 0 -Exactly -Scope It
            }
        }
    }

    Context 'Get-HvcHostHardening: the host''s hardening, to holders of policy.read only' {
        BeforeAll {
            Mock Get-WindowsFeature { [pscustomobject]@{ Name = 'Hyper-V'; Installed = $true } }
            Mock Get-LocalUser { [pscustomobject]@{ Name = 'Administrator'; Enabled = $true; SID = [pscustomobject]@{ Value = 'S-1-5-21-1-2-3-500' } } }
            Mock Get-LocalGroupMember { @() }
            Mock Get-WSManInstance { [pscustomobject]@{ Transport = 'HTTP'; Port = '5985'; Address = '*'; Enabled = 'true' } }
            Mock Get-PSSessionConfiguration { [pscustomobject]@{ Name = 'HvConsole'; Permission = '' } }
        }

        # The registry parts read this machine's own registry: Windows only.
        It '<Caller> on <Today>' -ForEach $Views -Skip:(-not $HvcOnWindows) {
            $PSSenderInfo = New-HvcSenderInfo -Caller $Callers[$Caller]
            $Now = ConvertTo-HvcDay $Today
            $result = Invoke-HvcJea -Name 'Get-HvcHostHardening'
            if ($View.hardening) {
                $result.Answer.ok | Should -BeTrue -Because $result.Raw
                $result.Answer.data.endpoints[0].name | Should -BeExactly 'HvConsole'
                Should -Invoke Get-LocalGroupMember -Times 3 -Exactly -Scope It
            }
            else {
                $result.Answer.error.code | Should -BeExactly 'denied' -Because $result.Raw
                $result.Answer.error.message | Should -BeExactly "$Caller may not read the hardening of this host: no grant gives policy.read."
                Should -Invoke Get-LocalGroupMember -Times 0 -Exactly -Scope It
            }
        }
    }

    Context 'Get-HvcDowntimePlans and Submit-HvcDowntimeAnswer: to any caller with a grant here; an answer only to a plan the host holds' {
        It '<Caller> on <Today>' -ForEach $Views {
            $PSSenderInfo = New-HvcSenderInfo -Caller $Callers[$Caller]
            $Now = ConvertTo-HvcDay $Today
            $plans = Invoke-HvcJea -Name 'Get-HvcDowntimePlans' -Arguments @{}
            # The log's one event is an action's (id 1000 here), no plan: nothing to answer.
            $answer = Invoke-HvcJea -Name 'Submit-HvcDowntimeAnswer' -Arguments @{ PlanId = 'HV02-20261212-2200-abcdef'; Answer = 'approve' }
            if ($View.connect) {
                $plans.Answer.ok | Should -BeTrue -Because $plans.Raw
                @($plans.Answer.data.plans).Count | Should -Be 0
                $answer.Answer.error.code | Should -BeExactly 'not_found' -Because $answer.Raw
            }
            else {
                $plans.Answer.error.code | Should -BeExactly 'denied' -Because $plans.Raw
                $answer.Answer.error.code | Should -BeExactly 'denied' -Because $answer.Raw
            }
            Should -Invoke Write-EventLog -Scope It -ParameterFilter { $EventId -eq 1011 } -Times 0 -Exactly
        }
    }

    Context 'Grant-HvcConsoleAccess, Sync-HvcConsoleAccess, Get-HvcConsoleAccess: a VM''s console to a vm.console holder, for the token''s own account; the entries to audit.read holders' {
        BeforeAll {
            Mock Get-VMConnectAccess { @() }
            Mock Grant-VMConnectAccess { @() }
            Mock Revoke-VMConnectAccess { @() }
        }

        It 'Grant-HvcConsoleAccess: <Caller> on <VmName> (<Today>)' -ForEach $Decisions {
            $PSSenderInfo = New-HvcSenderInfo -Caller $Callers[$Caller]
            $Now = ConvertTo-HvcDay $Today
            $result = Invoke-HvcJea -Name 'Grant-HvcConsoleAccess' -Arguments @{ VMId = $Decision.vm }
            if ($Decision.console) {
                $result.Answer.ok | Should -BeTrue -Because $result.Raw
                # The account is the token's name: no parameter of the function names a user.
                Should -Invoke Grant-VMConnectAccess -Scope It -Times 1 -Exactly -ParameterFilter { "$($PesterBoundParameters.VMId)" -eq $Decision.vm -and $PesterBoundParameters.UserName -eq $Caller }
            }
            else {
                $result.Answer.error.code | Should -BeExactly 'denied' -Because $result.Raw
                Should -Invoke Grant-VMConnectAccess -Scope It -Times 0 -Exactly
            }
        }

        It 'Sync-HvcConsoleAccess and Get-HvcConsoleAccess: <Caller> on <Today>' -ForEach $Views {
            $PSSenderInfo = New-HvcSenderInfo -Caller $Callers[$Caller]
            $Now = ConvertTo-HvcDay $Today
            $sync = Invoke-HvcJea -Name 'Sync-HvcConsoleAccess'
            $list = Invoke-HvcJea -Name 'Get-HvcConsoleAccess'
            if ($View.connect) {
                $sync.Answer.ok | Should -BeTrue -Because $sync.Raw
                @($sync.Answer.data.revoked).Count | Should -Be 0  # no entry held: nothing to take back
            }
            else {
                $sync.Answer.error.code | Should -BeExactly 'denied' -Because $sync.Raw
            }
            if ($View.audit) {
                $list.Answer.ok | Should -BeTrue -Because $list.Raw
            }
            else {
                $list.Answer.error.code | Should -BeExactly 'denied' -Because $list.Raw
            }
            Should -Invoke Revoke-VMConnectAccess -Scope It -Times 0 -Exactly
        }
    }

    Context 'the caller check: refusals, events (HvcDeny, HvcLog) and the caller''s own token' {
        BeforeAll {
            $Refused = @($HostCase.decisions | Where-Object { @($_.allowed) -notcontains 'power start' })[0]
            $Granted = @($HostCase.decisions | Where-Object { @($_.allowed) -contains 'power start' })[0]
            $Refused | Should -Not -BeNullOrEmpty
            $Granted | Should -Not -BeNullOrEmpty
        }
        BeforeEach {
            $TheState.Value = 'Off'
        }

        It 'a refusal names the caller and the privilege, starts nothing, and writes event 1001 (Warning) to the Application log' {
            $caller = $Callers[$Refused.caller]
            $PSSenderInfo = New-HvcSenderInfo -Caller $caller
            $Now = ConvertTo-HvcDay $Refused.today
            $result = Invoke-HvcJea -Name 'Invoke-HvcPower' -Arguments @{ VMId = $Refused.vm; Action = 'start' }
            $result.Answer.error.code | Should -BeExactly 'denied'
            $result.Answer.error.message | Should -BeExactly "$($caller.name) may not start this VM (vm.start)."
            Should -Invoke Start-VM -Times 0 -Exactly -Scope It
            Should -Invoke Write-EventLog -Times 1 -Exactly -Scope It -ParameterFilter {
                $e = $Message | ConvertFrom-Json
                $LogName -eq 'Application' -and $Source -eq $Cases.jea.event_source -and $EventId -eq $Cases.jea.event_ids.denied -and "$EntryType" -eq 'Warning' -and
                $e.user -eq $caller.name -and $e.sid -eq $caller.user -and $e.endpoint -eq 'jea' -and $e.operation -eq 'power' -and $e.action -eq 'start' -and
                $e.vm -eq $Refused.vm -and $e.name -eq $Refused.vm_name -and $e.outcome -eq 'denied' -and $e.code -eq 'denied' -and $e.record -eq ''
            }
        }

        It 'an action writes the console record it carries (AuditRecord, AuditSha256, AuditSeq, Workstation) beside the caller from the token' {
            $caller = $Callers[$Granted.caller]
            $record = $Cases.jea.record
            $PSSenderInfo = New-HvcSenderInfo -Caller $caller
            $Now = ConvertTo-HvcDay $Granted.today
            $result = Invoke-HvcJea -Name 'Invoke-HvcPower' -Arguments @{ VMId = $Granted.vm; Action = 'start'; AuditRecord = $record.record; AuditSha256 = $record.sha256; AuditSeq = $record.seq; Workstation = $record.workstation }
            $result.Answer.ok | Should -BeTrue -Because $result.Raw
            Should -Invoke Write-EventLog -Times 1 -Exactly -Scope It -ParameterFilter {
                $e = $Message | ConvertFrom-Json
                $EventId -eq $Cases.jea.event_ids.ok -and $e.sid -eq $caller.user -and $e.outcome -eq 'ok' -and $e.record -eq $record.record -and
                $e.sha256 -eq $record.sha256 -and $e.seq -eq $record.seq -and $e.workstation -eq $record.workstation
            }
        }

        It 'an allowed call acts, answers the operation''s own answer and writes event 1000 (Information)' {
            $caller = $Callers[$Granted.caller]
            $PSSenderInfo = New-HvcSenderInfo -Caller $caller
            $Now = ConvertTo-HvcDay $Granted.today
            $result = Invoke-HvcJea -Name 'Invoke-HvcPower' -Arguments @{ VMId = $Granted.vm; Action = 'start' }
            $result.Answer.ok | Should -BeTrue -Because $result.Raw
            $result.Answer.data.vm.id | Should -BeExactly $Granted.vm
            Should -Invoke Start-VM -Times 1 -Exactly -Scope It -ParameterFilter { "$($VM.Id)" -eq $Granted.vm }
            Should -Invoke Write-EventLog -Times 1 -Exactly -Scope It -ParameterFilter { $EventId -eq 1000 -and "$EntryType" -eq 'Information' -and ($Message | ConvertFrom-Json).outcome -eq 'ok' }
        }

        It 'an allowed call the operation refuses keeps the operation''s code and writes event 1002' {
            $TheState.Value = 'Running'
            $PSSenderInfo = New-HvcSenderInfo -Caller $Callers[$Granted.caller]
            $Now = ConvertTo-HvcDay $Granted.today
            $result = Invoke-HvcJea -Name 'Invoke-HvcPower' -Arguments @{ VMId = $Granted.vm; Action = 'start' }
            $result.Answer.error.code | Should -BeExactly 'wrong_state'
            Should -Invoke Write-EventLog -Times 1 -Exactly -Scope It -ParameterFilter { $e = $Message | ConvertFrom-Json; $EventId -eq 1002 -and "$EntryType" -eq 'Warning' -and $e.outcome -eq 'failed' -and $e.code -eq 'wrong_state' }
        }

        It 'an event the log refuses is reported beside the answer (log_error), never instead of it' {
            Mock Write-EventLog { throw 'The source was not found.' }
            $PSSenderInfo = New-HvcSenderInfo -Caller $Callers[$Granted.caller]
            $Now = ConvertTo-HvcDay $Granted.today
            $result = Invoke-HvcJea -Name 'Invoke-HvcPower' -Arguments @{ VMId = $Granted.vm; Action = 'start' }
            $result.Answer.ok | Should -BeTrue -Because $result.Raw
            $result.Answer.log_error | Should -BeExactly 'The event of this call was not written to the Application log: The source was not found.'
            Should -Invoke Start-VM -Times 1 -Exactly -Scope It
        }

        It 'SIDs are compared without regard to case, as the token and the policy may spell them differently' {
            $caller = $Callers[$Granted.caller]
            $lower = [pscustomobject]@{ name = $caller.name; user = $caller.user.ToLowerInvariant(); groups = @($caller.groups | ForEach-Object { $_.ToLowerInvariant() }) }
            $PSSenderInfo = New-HvcSenderInfo -Caller $lower
            $Now = ConvertTo-HvcDay $Granted.today
            $result = Invoke-HvcJea -Name 'Invoke-HvcPower' -Arguments @{ VMId = $Granted.vm; Action = 'start' }
            $result.Answer.ok | Should -BeTrue -Because $result.Raw
        }

        It 'a caller with no token groups and an unknown user SID is refused everything' {
            $PSSenderInfo = New-HvcSenderInfo -Caller ([pscustomobject]@{ name = 'OTHER\nobody'; user = 'S-1-5-21-9-9-9-9'; groups = @() })
            $Now = ConvertTo-HvcDay $Granted.today
            foreach ($name in $MinimalCalls.Keys) {
                $arguments = $MinimalCalls[$name]
                $result = Invoke-HvcJea -Name $name -Arguments $arguments
                $result.Answer.error.code | Should -BeExactly 'denied' -Because "$name answered $($result.Raw)"
            }
            Should -Invoke Start-VM -Times 0 -Exactly -Scope It
            Should -Invoke Set-VMDvdDrive -Times 0 -Exactly -Scope It
            Should -Invoke Checkpoint-VM -Times 0 -Exactly -Scope It
        }

        It 'the action runs as the set spells it, whatever case the caller used (START)' {
            $PSSenderInfo = New-HvcSenderInfo -Caller $Callers[$Granted.caller]
            $Now = ConvertTo-HvcDay $Granted.today
            $result = Invoke-HvcJea -Name 'Invoke-HvcPower' -Arguments @{ VMId = $Granted.vm; Action = 'START' }
            $result.Answer.ok | Should -BeTrue -Because $result.Raw
            Should -Invoke Start-VM -Times 1 -Exactly -Scope It
        }

        It 'typed parameters refuse what the endpoint does not take (<Why>)' -ForEach @(
            @{ Why = 'Invoke-HvcPower: an action outside the set'; FunctionName = 'Invoke-HvcPower'; Arguments = @{ VMId = '42e4aaca-7231-5411-b96b-d03849b0dae1'; Action = 'hibernate' } }
            @{ Why = 'Invoke-HvcPower: a VM id that is no GUID'; FunctionName = 'Invoke-HvcPower'; Arguments = @{ VMId = 'shop-web01'; Action = 'start' } }
            @{ Why = 'Invoke-HvcCheckpoint: a name with a line break'; FunctionName = 'Invoke-HvcCheckpoint'; Arguments = @{ VMId = '42e4aaca-7231-5411-b96b-d03849b0dae1'; Action = 'create'; Name = "a`nb" } }
            @{ Why = 'Invoke-HvcCheckpoint: a name ending in a line break'; FunctionName = 'Invoke-HvcCheckpoint'; Arguments = @{ VMId = '42e4aaca-7231-5411-b96b-d03849b0dae1'; Action = 'create'; Name = "ab`n" } }
            @{ Why = 'Invoke-HvcCheckpoint: a name of 101 characters'; FunctionName = 'Invoke-HvcCheckpoint'; Arguments = @{ VMId = '42e4aaca-7231-5411-b96b-d03849b0dae1'; Action = 'create'; Name = ('n' * 101) } }
            @{ Why = 'Invoke-HvcMedia: a path that is no ISO'; FunctionName = 'Invoke-HvcMedia'; Arguments = @{ VMId = '42e4aaca-7231-5411-b96b-d03849b0dae1'; Action = 'mount'; ControllerType = 'SCSI'; Controller = 0; Location = 1; Path = 'D:\ISO\disk.vhdx' } }
            @{ Why = 'Invoke-HvcMedia: a controller out of range'; FunctionName = 'Invoke-HvcMedia'; Arguments = @{ VMId = '42e4aaca-7231-5411-b96b-d03849b0dae1'; Action = 'eject'; ControllerType = 'SCSI'; Controller = 4; Location = 1 } }
            @{ Why = 'Invoke-HvcMedia: a controller type outside the set'; FunctionName = 'Invoke-HvcMedia'; Arguments = @{ VMId = '42e4aaca-7231-5411-b96b-d03849b0dae1'; Action = 'eject'; ControllerType = 'USB'; Controller = 0; Location = 1 } }
            @{ Why = 'Get-HvcVMState: no id'; FunctionName = 'Get-HvcVMState'; Arguments = @{ VMId = @() } }
            @{ Why = 'Invoke-HvcPower: a record id that is no GUID'; FunctionName = 'Invoke-HvcPower'; Arguments = @{ VMId = '42e4aaca-7231-5411-b96b-d03849b0dae1'; Action = 'start'; AuditRecord = 'latest' } }
            @{ Why = 'Invoke-HvcPower: a record hash that is not 64 hex digits'; FunctionName = 'Invoke-HvcPower'; Arguments = @{ VMId = '42e4aaca-7231-5411-b96b-d03849b0dae1'; Action = 'start'; AuditSha256 = ('a' * 63) + 'g' } }
            @{ Why = 'Invoke-HvcPower: a record number below 1'; FunctionName = 'Invoke-HvcPower'; Arguments = @{ VMId = '42e4aaca-7231-5411-b96b-d03849b0dae1'; Action = 'start'; AuditSeq = 0 } }
            @{ Why = 'Invoke-HvcPower: a workstation with a line break'; FunctionName = 'Invoke-HvcPower'; Arguments = @{ VMId = '42e4aaca-7231-5411-b96b-d03849b0dae1'; Action = 'start'; Workstation = "WS`nforged" } }
            @{ Why = 'Get-HvcAuditEvents: a since that is no UTC time'; FunctionName = 'Get-HvcAuditEvents'; Arguments = @{ Since = 'yesterday' } }
            @{ Why = 'Get-HvcAuditEvents: more events than a read may ask for'; FunctionName = 'Get-HvcAuditEvents'; Arguments = @{ MaxEvents = 100001 } }
        ) {
            $PSSenderInfo = New-HvcSenderInfo -Caller $Callers['LAB\adam']
            { & $FunctionName @Arguments } | Should -Throw
            Should -Invoke Get-VM -Times 0 -Exactly -Scope It
        }
    }
}

# Pester 5 tests of the operation scripts (resources/powershell/), run as the console sends them:
# the one-line text console/scripts.py builds, with the console's own `$p` parameter line, both
# taken from cases.json (tools/pester_cases.py writes it; tests/powershell/test_pester.py fails
# when it is stale). Hyper-V is mocked: Common.ps1 loads stub modules with the cmdlets' parameter
# names and sets from resources/powershell/facts, and each test mocks what its host answers.
#
#   pwsh -NoProfile -NonInteractive -File tests/powershell/pester/Run-Pester.ps1
#   powershell -NoProfile -NonInteractive -ExecutionPolicy Bypass -File tests\powershell\pester\Run-Pester.ps1

BeforeDiscovery {
    . (Join-Path $PSScriptRoot 'Common.ps1')
    $Cases = Read-HvcCases
    $OnWindows = $HvcOnWindows
    $HasPowerShellExe = [bool](Get-Command -Name $Cases.command.executable -CommandType Application -ErrorAction SilentlyContinue)
    $OperationCases = @(foreach ($name in $Cases.operations.PSObject.Properties.Name) { @{ Operation = $name } })
    $PowerCases = @(foreach ($case in $Cases.power.cases) {
            @{ Action = $case.action; State = $case.state; Accepted = $case.accepted }
        })
    $ErrorCases = @(foreach ($case in $Cases.errors) { @{ Title = $case.name; Code = $case.code; Case = $case } })
    $BindingCases = @(foreach ($case in $Cases.binding) { @{ Title = $case.name; Case = $case } })
    $TransportCases = @(foreach ($case in $Cases.transport) { @{ Title = $case.name; Case = $case } })
}

BeforeAll {
    . (Join-Path $PSScriptRoot 'Common.ps1')
    $Cases = Read-HvcCases
    Initialize-HvcHost -Cases $Cases
    $VmId = $Cases.power.vm_id
    $CheckpointId = $Cases.jea.checkpoint_id
    # Every action writes its event (the admin frame E); never into this machine's own log.
    Mock Write-EventLog { @() }
}

Describe 'parameter binding: every operation (inventory, host_facts, vm_state, power, checkpoint, media, audit_events, document, metering) runs from the console''s own text' {
    It '<Operation>: the standard input is the $p line, the one-line body and CRLF, as console/scripts.py writes it' -ForEach $OperationCases {
        $spec = $Cases.operations.$Operation
        ((Get-HvcScriptText -Operation $Operation -Line $spec.sample.p) + "`r`n") | Should -BeExactly $spec.sample.stdin
    }

    It '<Operation>: the text is one line of ASCII, and PowerShell''s parser reads it without errors' -ForEach $OperationCases {
        $text = $Cases.operations.$Operation.sample.stdin.TrimEnd("`r", "`n")
        $text.Contains("`n") -or $text.Contains("`r") | Should -BeFalse
        @($text.ToCharArray() | Where-Object { [int]$_ -gt 127 }).Count | Should -Be 0
        $tokens = $null
        $parseErrors = $null
        $null = [System.Management.Automation.Language.Parser]::ParseInput($text, [ref]$tokens, [ref]$parseErrors)
        @($parseErrors).Count | Should -Be 0 -Because "$(@($parseErrors) -join '; ')"
    }

    It '<Operation>: the $p line decodes, by the prelude''s own statement, to the parameters the console encoded' -ForEach $OperationCases {
        $spec = $Cases.operations.$Operation
        $tokens = $null
        $parseErrors = $null
        $ast = [System.Management.Automation.Language.Parser]::ParseInput($spec.sample.stdin, [ref]$tokens, [ref]$parseErrors)
        $decode = @($ast.FindAll({
                    param($node)
                    $node -is [System.Management.Automation.Language.AssignmentStatementAst] -and $node.Left.Extent.Text -eq '$a'
                }, $false))
        $decode.Count | Should -Be 1
        $decoder = [scriptblock]::Create("`$p='$($spec.sample.p)';" + $decode[0].Extent.Text + ';$a')
        Format-HvcValue (& $decoder) | Should -BeExactly (Format-HvcValue $spec.sample.params)
    }

    It 'inventory: the sample lists the host''s VMs' {
        Mock Get-VM { New-HvcVM -Id $VmId -Name 'web' }
        Mock Get-VMSnapshot { @() }
        Mock Get-VMDvdDrive { @() }
        Mock Get-VMHardDiskDrive { @() }
        Mock Get-VMIntegrationService { @() }
        # The host's capacity, in the same call: memory in KB, one Get-Volume for the drive.
        Mock Get-CimInstance { [pscustomobject]@{ TotalVisibleMemorySize = 1024; FreePhysicalMemory = 512 } }
        Mock Get-VMHost { [pscustomobject]@{ VirtualHardDiskPath = 'C:\Hyper-V\Disks'; VirtualMachinePath = 'C:\Hyper-V' } }
        Mock Get-Volume { [pscustomobject]@{ DriveLetter = 'C'; FileSystemLabel = 'OS'; SizeRemaining = 100; Size = 1000 } }
        $result = Invoke-HvcText -Text $Cases.operations.inventory.sample.stdin
        $result.Answer.ok | Should -BeTrue -Because $result.Raw
        @($result.Answer.data.vms).Count | Should -Be 1
        $result.Answer.data.vms[0].id | Should -BeExactly $VmId
        $result.Answer.data.capacity.memory_total_bytes | Should -Be 1048576
        $result.Answer.data.capacity.memory_free_bytes | Should -Be 524288
        @($result.Answer.data.capacity.storage).Count | Should -Be 1
        $result.Answer.data.capacity.storage[0].path | Should -BeExactly 'C:\'
        Should -Invoke Get-Volume -Times 1 -Exactly -Scope It
        Should -Invoke Get-VM -Times 1 -Exactly -Scope It -ParameterFilter { -not $PesterBoundParameters.ContainsKey('Id') -and -not $PesterBoundParameters.ContainsKey('Name') }
    }

    It 'host_facts: the sample lists the ISO files of the library it names' -Skip:(-not $OnWindows) {
        Mock Get-ItemProperty { [pscustomobject]@{ CurrentBuild = '20348'; UBR = 3091 } }
        Mock Get-HotFix { @() }
        Mock Get-VMHost { [pscustomobject]@{ VirtualHardDiskPath = 'C:\Hyper-V\Disks'; VirtualMachinePath = 'C:\Hyper-V' } }
        Mock Get-VM { @() }
        Mock Get-Volume { [pscustomobject]@{ Path = '\\?\Volume{c}\'; DriveLetter = 'C'; FileSystemLabel = 'OS'; SizeRemaining = 100; Size = 1000 } }
        Mock Get-ChildItem { [pscustomobject]@{ FullName = 'C:\ISO\setup.iso'; Length = 42; Extension = '.iso'; LinkType = $null } }
        $library = $Cases.operations.host_facts.sample.params.library[0]
        $result = Invoke-HvcText -Text $Cases.operations.host_facts.sample.stdin
        $result.Answer.ok | Should -BeTrue -Because $result.Raw
        $result.Answer.data.isos[0].path | Should -BeExactly 'C:\ISO\setup.iso'
        Should -Invoke Get-ChildItem -Times 1 -Exactly -Scope It -ParameterFilter { @($LiteralPath) -ceq $library -and $Filter -eq '*.iso' -and $File -and $Force }
    }

    It 'vm_state: the sample answers the VMs found and leaves out an id this host does not have' {
        $known = $Cases.operations.vm_state.sample.params.vm_ids[0]
        $fault = [pscustomobject]@{ id = 'InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM'; category = 'InvalidArgument'; inner = 'Exception'; message = 'No VM with that id.' }
        Mock Get-VM { if ("$($PesterBoundParameters.Id)" -eq $known) { New-HvcVM -Id $known -State 'Saved' } else { throw (New-HvcHostError -Fault $fault) } }
        $result = Invoke-HvcText -Text $Cases.operations.vm_state.sample.stdin
        $result.Answer.ok | Should -BeTrue -Because $result.Raw
        @($result.Answer.data.vms).Count | Should -Be 1
        $result.Answer.data.vms[0].id | Should -BeExactly $known
        $result.Answer.data.vms[0].state | Should -BeExactly 'Saved'
        Should -Invoke Get-VM -Scope It -ParameterFilter { $Id -is [guid] }
    }

    It 'power: the sample starts the VM it names, found by -Id' {
        Mock Get-VM { New-HvcVM -Id $VmId -State 'Off' }
        Mock Start-VM { @() }
        $result = Invoke-HvcText -Text $Cases.operations.power.sample.stdin
        $result.Answer.ok | Should -BeTrue -Because $result.Raw
        Should -Invoke Start-VM -Times 1 -Exactly -Scope It -ParameterFilter { "$($VM.Id)" -eq $VmId }
        Should -Invoke Get-VM -Times 0 -Exactly -Scope It -ParameterFilter { $PesterBoundParameters.ContainsKey('Name') }
    }

    It 'checkpoint: the sample''s name (quotes, a subexpression, non-ASCII) reaches Checkpoint-VM as text and comes back' {
        $name = $Cases.operations.checkpoint.sample.params.name
        Mock Get-VM { New-HvcVM -Id $VmId }
        Mock Get-Date { throw 'Get-Date ran: the name was evaluated as code' }
        Mock Checkpoint-VM { New-HvcSnapshot -Id $CheckpointId -VMId $VmId -Name $PesterBoundParameters.SnapshotName }
        $result = Invoke-HvcText -Text $Cases.operations.checkpoint.sample.stdin
        $result.Answer.ok | Should -BeTrue -Because $result.Raw
        $result.Answer.data.checkpoint.name | Should -BeExactly $name
        Should -Invoke Checkpoint-VM -Times 1 -Exactly -Scope It -ParameterFilter { $SnapshotName -ceq $name -and $Passthru }
        Should -Invoke Get-Date -Times 0 -Exactly -Scope It
    }

    It 'media: the sample mounts the ISO it names on the drive it names' {
        $sample = $Cases.operations.media.sample.params
        $drive = @{ Path = $null }
        Mock Get-VM { New-HvcVM -Id $VmId }
        Mock Get-VMDvdDrive { New-HvcDvdDrive -VMId $VmId -ControllerType $sample.controller_type -ControllerNumber $sample.controller -ControllerLocation $sample.location -Path $drive.Path }
        Mock Set-VMDvdDrive { $drive.Path = $PesterBoundParameters.Path }
        Mock Test-Path { $true }
        Mock Get-Item { [pscustomobject]@{ LinkType = $null } }
        $result = Invoke-HvcText -Text $Cases.operations.media.sample.stdin
        $result.Answer.ok | Should -BeTrue -Because $result.Raw
        $result.Answer.data.drive.path | Should -BeExactly $sample.path
        Should -Invoke Set-VMDvdDrive -Times 1 -Exactly -Scope It -ParameterFilter { $Path -ceq $sample.path }
    }

    Context 'parameters that travel in the $p line (cases.json binding)' {
        BeforeAll {
            Mock Get-VM { New-HvcVM -Id $VmId -State 'Off' }
            Mock Start-VM { @() }
            Mock Checkpoint-VM { New-HvcSnapshot -Id $CheckpointId -VMId $VmId -Name $PesterBoundParameters.SnapshotName }
            Mock Get-VMSnapshot { New-HvcSnapshot -Id $CheckpointId -VMId $VmId }
            Mock Restore-VMSnapshot { @() }
            Mock Get-VMDvdDrive { New-HvcDvdDrive -VMId $VmId }
            Mock Set-VMDvdDrive { @() }
        }

        It '<Title>' -ForEach $BindingCases {
            $result = Invoke-HvcOperation -Operation $Case.operation -Line $Case.p
            if ($Case.code) {
                $result.Answer.ok | Should -BeFalse -Because $result.Raw
                $result.Answer.error.code | Should -BeExactly $Case.code
                Should -Invoke Start-VM -Times 0 -Exactly -Scope It
                Should -Invoke Checkpoint-VM -Times 0 -Exactly -Scope It
                Should -Invoke Restore-VMSnapshot -Times 0 -Exactly -Scope It
                Should -Invoke Set-VMDvdDrive -Times 0 -Exactly -Scope It
            }
            elseif ($Case.parameter -eq 'VM') {
                $result.Answer.ok | Should -BeTrue -Because $result.Raw
                Should -Invoke -CommandName $Case.command -Times 1 -Exactly -Scope It -ParameterFilter { "$($VM.Id)" -eq $VmId }
            }
            else {
                $result.Answer.ok | Should -BeTrue -Because $result.Raw
                Should -Invoke -CommandName $Case.command -Times 1 -Exactly -Scope It -ParameterFilter { $PesterBoundParameters[$Case.parameter] -ceq $Case.value }
            }
        }
    }
}

Describe 'power: the state table of console/states.py, every action from every state (wrong_state)' {
    BeforeAll {
        $PowerCommands = @($Cases.power.actions.PSObject.Properties | ForEach-Object { $_.Value.command } | Sort-Object -Unique)
        Mock Get-VM { $TheVm }
        Mock Get-VMIntegrationService { New-HvcIntegrationService -VMId $VmId -ServiceId $HvcShutdownServiceId }
        foreach ($command in $PowerCommands) {
            Mock -CommandName $command -MockWith { @() }
        }
    }

    It 'the table holds every state of the facts for every action, and only states the cmdlet itself accepts' {
        @($Cases.power.cases).Count | Should -Be (@($Cases.power.states).Count * @($Cases.power.actions.PSObject.Properties).Count)
        foreach ($spec in $Cases.power.actions.PSObject.Properties.Value) {
            foreach ($state in $spec.accepts) {
                $spec.cmdlet_accepts | Should -Contain $state
            }
        }
    }

    It '<Action> from <State>: accepted is <Accepted>; refused as wrong_state before any cmdlet acts' -ForEach $PowerCases {
        $TheVm = New-HvcVM -Id $VmId -Name 'vm1' -State $State
        $spec = $Cases.power.actions.$Action
        $result = Invoke-HvcOperation -Operation power -Line $spec.p
        if ($Accepted) {
            $result.Answer.ok | Should -BeTrue -Because $result.Raw
            $result.Answer.data.vm.id | Should -BeExactly $VmId
            $result.Answer.data.vm.state | Should -BeExactly $State
            Should -Invoke -CommandName $spec.command -Times 1 -Exactly -Scope It -ParameterFilter {
                "$($VM.Id)" -eq $VmId -and (Test-HvcSwitches -Bound $PesterBoundParameters -Expected $spec.switches)
            }
        }
        else {
            $result.Answer.ok | Should -BeFalse -Because $result.Raw
            $result.Answer.error.code | Should -BeExactly 'wrong_state'
            $result.Answer.error.message | Should -BeExactly "vm1 is $State."
        }
        foreach ($command in $PowerCommands) {
            $times = if ($Accepted -and $command -eq $spec.command) { 1 } else { 0 }
            Should -Invoke -CommandName $command -Times $times -Exactly -Scope It
        }
    }
}

Describe 'the error mapping: each Hyper-V failure of the facts answers the contract''s code' {
    BeforeAll {
        Mock Get-VM { $TheVm }
        Mock Get-VMIntegrationService { New-HvcIntegrationService -VMId $VmId -ServiceId $HvcShutdownServiceId }
        Mock Get-VMSnapshot { New-HvcSnapshot -Id $CheckpointId -VMId $VmId }
        Mock Get-VMDvdDrive { @() }
        Mock Get-VMHardDiskDrive { @() }
        foreach ($command in 'Start-VM', 'Stop-VM', 'Save-VM', 'Checkpoint-VM', 'Restore-VMSnapshot', 'Remove-VMSnapshot') {
            Mock -CommandName $command -MockWith { @() }
        }
    }

    It 'a stand-in failure reaches a catch block as a Hyper-V cmdlet''s does: error id, category, inner exception' {
        $fault = @($Cases.errors | Where-Object { $_.error.error_code })[0].error
        $record = New-HvcHostError -Fault $fault
        Mock Start-VM { throw $record }
        $caught = $null
        try {
            Start-VM -VM (New-HvcVM -Id $VmId)
        }
        catch {
            $caught = $_
        }
        $caught | Should -Not -BeNullOrEmpty
        $caught.FullyQualifiedErrorId | Should -BeExactly $fault.id
        "$($caught.CategoryInfo.Category)" | Should -BeExactly $fault.category
        "$($caught.Exception.InnerException.ErrorCode)" | Should -BeExactly "$($fault.error_code)"
        $caught.Exception.Message | Should -BeExactly $fault.message
    }

    It '<Title>: <Code>' -ForEach $ErrorCases {
        $TheVm = if ($Case.vm_state) { New-HvcVM -Id $VmId -State $Case.vm_state } else { $null }
        $record = New-HvcHostError -Fault $Case.error
        Mock -CommandName $Case.command -MockWith { throw $record }
        $result = Invoke-HvcOperation -Operation $Case.operation -Line $Case.p
        $result.Answer.ok | Should -BeFalse -Because $result.Raw
        $result.Answer.error.code | Should -BeExactly $Case.code -Because $Case.source
        if ($Case.code -eq 'not_found') {
            $result.Answer.error.message | Should -BeExactly "No VM $VmId on this host."
        }
        else {
            $result.Answer.error.message | Should -BeExactly $Case.error.message
        }
    }

    It 'every error code of docs/host-operations.md but denied (the JEA endpoint''s) is answered by some case of these tests' {
        $covered = @($Cases.errors.code) + @($Cases.binding.code) + @($Cases.transport.code) +
        'wrong_state', 'no_shutdown_service', 'replica', 'not_in_library', 'no_dvd_drive', 'checkpoints_disabled'
        foreach ($code in $Cases.contract_codes) {
            if ($code -ne 'denied') {
                $covered | Should -Contain $code
            }
        }
    }
}

Describe 'power: the script''s own refusals (replica, no_shutdown_service, not_found, invalid_parameter)' {
    BeforeAll {
        Mock Get-VM { $TheVm }
        Mock Get-VMIntegrationService { $TheServices }
        foreach ($command in 'Start-VM', 'Stop-VM', 'Restart-VM', 'Save-VM', 'Suspend-VM', 'Resume-VM', 'Remove-VMSavedState') {
            Mock -CommandName $command -MockWith { @() }
        }
    }

    It 'replica: a power action on a <Mode> copy is refused' -ForEach @(@{ Mode = 'Replica' }, @{ Mode = 'ExtendedReplica' }) {
        $TheVm = New-HvcVM -Id $VmId -Name 'files' -State 'Off' -ReplicationMode $Mode
        $result = Invoke-HvcOperation -Operation power -Parameters @{ vm_id = $VmId; action = 'start' }
        $result.Answer.error.code | Should -BeExactly 'replica'
        $result.Answer.error.message | Should -BeExactly 'files is a Replica copy: power actions are refused.'
        Should -Invoke Start-VM -Times 0 -Exactly -Scope It
    }

    It 'a test failover copy (TestReplica) may be started' {
        $TheVm = New-HvcVM -Id $VmId -State 'Off' -ReplicationMode 'TestReplica'
        $result = Invoke-HvcOperation -Operation power -Parameters @{ vm_id = $VmId; action = 'start' }
        $result.Answer.ok | Should -BeTrue -Because $result.Raw
        Should -Invoke Start-VM -Times 1 -Exactly -Scope It
    }

    It 'no_shutdown_service: a shut down without a working shutdown service (<Why>) is refused, never turned into a turn-off' -ForEach @(
        @{ Why = 'disabled'; Enabled = $false; Status = 'Ok'; Present = $true }
        @{ Why = 'no contact'; Enabled = $true; Status = 'NoContact'; Present = $true }
        @{ Why = 'absent'; Enabled = $true; Status = 'Ok'; Present = $false }
    ) {
        $TheVm = New-HvcVM -Id $VmId -Name 'db' -State 'Running'
        $TheServices = @(
            New-HvcIntegrationService -VMId $VmId -ServiceId $HvcHeartbeatServiceId
            if ($Present) { New-HvcIntegrationService -VMId $VmId -ServiceId $HvcShutdownServiceId -Enabled $Enabled -Status $Status }
        )
        $result = Invoke-HvcOperation -Operation power -Parameters @{ vm_id = $VmId; action = 'shutdown' }
        $result.Answer.error.code | Should -BeExactly 'no_shutdown_service'
        $result.Answer.error.message | Should -BeExactly 'db has no working shutdown integration service.'
        Should -Invoke Stop-VM -Times 0 -Exactly -Scope It
    }

    It 'shutdown asks the guest: Stop-VM without -Force, -TurnOff or -Save' {
        $TheVm = New-HvcVM -Id $VmId -State 'Running'
        $TheServices = @(New-HvcIntegrationService -VMId $VmId -ServiceId $HvcShutdownServiceId)
        $result = Invoke-HvcOperation -Operation power -Parameters @{ vm_id = $VmId; action = 'shutdown' }
        $result.Answer.ok | Should -BeTrue -Because $result.Raw
        Should -Invoke Stop-VM -Times 1 -Exactly -Scope It -ParameterFilter { -not $Force -and -not $TurnOff -and -not $Save }
    }

    It 'reset is a hard reset without a prompt: Restart-VM -Force' {
        $TheVm = New-HvcVM -Id $VmId -State 'Running'
        $result = Invoke-HvcOperation -Operation power -Parameters @{ vm_id = $VmId; action = 'reset' }
        $result.Answer.ok | Should -BeTrue -Because $result.Raw
        Should -Invoke Restart-VM -Times 1 -Exactly -Scope It -ParameterFilter { $Force }
    }

    It 'not_found: Get-VM -Id returns nothing' {
        $TheVm = $null
        $result = Invoke-HvcOperation -Operation power -Parameters @{ vm_id = $VmId; action = 'start' }
        $result.Answer.error.code | Should -BeExactly 'not_found'
        $result.Answer.error.message | Should -BeExactly "No VM $VmId on this host."
    }

    It 'invalid_parameter: an unknown power action' {
        $TheVm = New-HvcVM -Id $VmId -State 'Running'
        $result = Invoke-HvcOperation -Operation power -Parameters @{ vm_id = $VmId; action = 'hibernate' }
        $result.Answer.error.code | Should -BeExactly 'invalid_parameter'
    }

    It 'the answer is the VM as Get-VM reads it after the cmdlet returned' {
        $TheVm = New-HvcVM -Id $VmId -State 'Off' -Status 'Operating normally'
        Mock Start-VM { $TheVm.State = 'Running' }
        $result = Invoke-HvcOperation -Operation power -Parameters @{ vm_id = $VmId; action = 'start' }
        $result.Answer.data.vm.state | Should -BeExactly 'Running'
        $result.Answer.data.vm.status | Should -BeExactly 'Operating normally'
    }
}

Describe 'checkpoint: create, apply, delete, delete_subtree (checkpoints_disabled, not_found, invalid_parameter)' {
    BeforeAll {
        $ChildId = '6f1c2d3e-4a5b-4c6d-8e7f-901a2b3c4d5f'
        Mock Get-VM { $TheVm }
        Mock Get-VMSnapshot {
            New-HvcSnapshot -Id $CheckpointId -VMId $VmId -Name 'before update'
            New-HvcSnapshot -Id $ChildId -VMId $VmId -Name 'after update' -ParentId $CheckpointId -State 'Off'
        }
        Mock Checkpoint-VM { New-HvcSnapshot -Id $ChildId -VMId $VmId -Name "$($PesterBoundParameters.SnapshotName)" }
        Mock Restore-VMSnapshot { @() }
        Mock Remove-VMSnapshot { @() }
    }
    BeforeEach {
        $TheVm = New-HvcVM -Id $VmId -Name 'app' -State 'Running'
    }

    It 'create with a name: Checkpoint-VM -SnapshotName -Passthru, and the new checkpoint in the answer' {
        $result = Invoke-HvcOperation -Operation checkpoint -Parameters @{ vm_id = $VmId; action = 'create'; name = 'nightly' }
        $result.Answer.ok | Should -BeTrue -Because $result.Raw
        Should -Invoke Checkpoint-VM -Times 1 -Exactly -Scope It -ParameterFilter { $SnapshotName -ceq 'nightly' -and $Passthru -and "$($VM.Id)" -eq $VmId }
        $checkpoint = $result.Answer.data.checkpoint
        $checkpoint.id | Should -BeExactly $ChildId
        $checkpoint.name | Should -BeExactly 'nightly'
        $checkpoint.type | Should -BeExactly 'Standard'
        $checkpoint.automatic | Should -BeFalse
        $result.Raw | Should -Match '"created":"2026-11-30T10:00:00Z"'
        $result.Answer.data.vm.id | Should -BeExactly $VmId
    }

    It 'create without a name: Hyper-V names it (no -SnapshotName)' {
        $result = Invoke-HvcOperation -Operation checkpoint -Parameters @{ vm_id = $VmId; action = 'create' }
        $result.Answer.ok | Should -BeTrue -Because $result.Raw
        Should -Invoke Checkpoint-VM -Times 1 -Exactly -Scope It -ParameterFilter { -not $PesterBoundParameters.ContainsKey('SnapshotName') }
    }

    It 'checkpoints_disabled: a VM whose checkpoint type is Disabled' {
        $TheVm = New-HvcVM -Id $VmId -Name 'app' -CheckpointType 'Disabled'
        $result = Invoke-HvcOperation -Operation checkpoint -Parameters @{ vm_id = $VmId; action = 'create' }
        $result.Answer.error.code | Should -BeExactly 'checkpoints_disabled'
        $result.Answer.error.message | Should -BeExactly 'Checkpoints are disabled on app.'
        Should -Invoke Checkpoint-VM -Times 0 -Exactly -Scope It
    }

    It 'apply: Restore-VMSnapshot of the checkpoint with that id, without a prompt' {
        $result = Invoke-HvcOperation -Operation checkpoint -Parameters @{ vm_id = $VmId; action = 'apply'; checkpoint_id = $ChildId }
        $result.Answer.ok | Should -BeTrue -Because $result.Raw
        Should -Invoke Restore-VMSnapshot -Times 1 -Exactly -Scope It -ParameterFilter {
            "$($VMSnapshot.Id)" -eq $ChildId -and $PesterBoundParameters.ContainsKey('Confirm') -and -not $PesterBoundParameters['Confirm']
        }
        $result.Answer.data.checkpoint.id | Should -BeExactly $ChildId
        $result.Answer.data.checkpoint.parent_id | Should -BeExactly $CheckpointId
        $result.Answer.data.checkpoint.state | Should -BeExactly 'Off'
    }

    It 'delete keeps the children (no -IncludeAllChildSnapshots); the answer has no checkpoint' {
        $result = Invoke-HvcOperation -Operation checkpoint -Parameters @{ vm_id = $VmId; action = 'delete'; checkpoint_id = $CheckpointId }
        $result.Answer.ok | Should -BeTrue -Because $result.Raw
        Should -Invoke Remove-VMSnapshot -Times 1 -Exactly -Scope It -ParameterFilter {
            "$($VMSnapshot.Id)" -eq $CheckpointId -and -not $IncludeAllChildSnapshots -and $PesterBoundParameters.ContainsKey('Confirm')
        }
        $result.Answer.data.checkpoint | Should -BeNullOrEmpty
    }

    It 'delete_subtree: Remove-VMSnapshot -IncludeAllChildSnapshots' {
        $result = Invoke-HvcOperation -Operation checkpoint -Parameters @{ vm_id = $VmId; action = 'delete_subtree'; checkpoint_id = $CheckpointId }
        $result.Answer.ok | Should -BeTrue -Because $result.Raw
        Should -Invoke Remove-VMSnapshot -Times 1 -Exactly -Scope It -ParameterFilter { $IncludeAllChildSnapshots }
    }

    It 'not_found: a checkpoint id the VM does not have; nothing is applied' {
        $unknown = '00000000-0000-0000-0000-000000000001'
        $result = Invoke-HvcOperation -Operation checkpoint -Parameters @{ vm_id = $VmId; action = 'apply'; checkpoint_id = $unknown }
        $result.Answer.error.code | Should -BeExactly 'not_found'
        $result.Answer.error.message | Should -BeExactly "app has no checkpoint $unknown."
        Should -Invoke Restore-VMSnapshot -Times 0 -Exactly -Scope It
    }

    It 'invalid_parameter: an unknown action, and an action in the wrong case (<Action>)' -ForEach @(@{ Action = 'rename' }, @{ Action = 'Create' }) {
        $result = Invoke-HvcOperation -Operation checkpoint -Parameters @{ vm_id = $VmId; action = $Action }
        $result.Answer.error.code | Should -BeExactly 'invalid_parameter'
        Should -Invoke Checkpoint-VM -Times 0 -Exactly -Scope It
    }
}

Describe 'media: mount and eject on one drive (not_in_library, no_dvd_drive, invalid_parameter)' {
    BeforeAll {
        $Library = 'C:\ISO\'
        Mock Get-VM { New-HvcVM -Id $VmId -Name 'web' }
        Mock Get-VMDvdDrive { $TheDrives | ForEach-Object { New-HvcDvdDrive -VMId $VmId -ControllerType $_.Type -ControllerNumber $_.Number -ControllerLocation $_.Location -Path $_.Path } }
        Mock Set-VMDvdDrive { foreach ($drive in $TheDrives) { if ($drive.Location -eq $PesterBoundParameters.VMDvdDrive.ControllerLocation) { $drive.Path = & $ReadBack $PesterBoundParameters.Path } } }
        Mock Test-Path { $true }
        Mock Get-Item { [pscustomobject]@{ LinkType = $Links["$($PesterBoundParameters.LiteralPath)"] } }
    }
    BeforeEach {
        $TheDrives = @(@{ Type = 'SCSI'; Number = 0; Location = 1; Path = $null }, @{ Type = 'SCSI'; Number = 0; Location = 2; Path = $null })
        $ReadBack = { param($path) $path }
        $Links = @{}
    }

    It 'mount: Set-VMDvdDrive with the path, read back into the answer' {
        $result = Invoke-HvcOperation -Operation media -Parameters @{ vm_id = $VmId; action = 'mount'; controller_type = 'SCSI'; controller = 0; location = 1; path = 'C:\ISO\setup.iso'; library = @($Library) }
        $result.Answer.ok | Should -BeTrue -Because $result.Raw
        $result.Answer.data.drive.path | Should -BeExactly 'C:\ISO\setup.iso'
        $result.Answer.data.drive.controller_type | Should -BeExactly 'SCSI'
        $result.Answer.data.drive.location | Should -Be 1
        Should -Invoke Set-VMDvdDrive -Times 1 -Exactly -Scope It -ParameterFilter { $Path -ceq 'C:\ISO\setup.iso' -and $VMDvdDrive.ControllerLocation -eq 1 }
        Should -Invoke Test-Path -Scope It -ParameterFilter { $LiteralPath -ceq 'C:\ISO\setup.iso' -and $PathType -eq 'Leaf' }
    }

    It 'mount: the library folder is compared without regard to case, as Windows does' {
        $result = Invoke-HvcOperation -Operation media -Parameters @{ vm_id = $VmId; action = 'mount'; controller_type = 'SCSI'; controller = 0; location = 1; path = 'c:\iso\Setup.ISO'; library = @($Library) }
        $result.Answer.ok | Should -BeTrue -Because $result.Raw
    }

    It 'not_in_library: <Why> (<Path>) is refused before Hyper-V sees it' -ForEach @(
        @{ Why = 'a UNC path'; Path = '\\server\share\setup.iso' }
        @{ Why = 'a device path'; Path = '\\?\C:\ISO\setup.iso' }
        @{ Why = 'a parent component'; Path = 'C:\ISO\..\Windows\setup.iso' }
        @{ Why = 'an 8.3 short name'; Path = 'C:\ISO\SETUP~1.ISO' }
        @{ Why = 'a trailing dot'; Path = 'C:\ISO\setup.iso.' }
        @{ Why = 'a trailing space in a component'; Path = 'C:\ISO\sub \setup.iso' }
        @{ Why = 'an alternate data stream'; Path = 'C:\ISO\setup.iso:hidden' }
        @{ Why = 'an empty component'; Path = 'C:\ISO\\setup.iso' }
        @{ Why = 'another extension'; Path = 'C:\ISO\setup.vhdx' }
        @{ Why = 'a relative path'; Path = 'ISO\setup.iso' }
        @{ Why = 'outside the library'; Path = 'C:\Other\setup.iso' }
        @{ Why = 'a folder beside the library with its name as prefix'; Path = 'C:\ISO2\setup.iso' }
    ) {
        $result = Invoke-HvcOperation -Operation media -Parameters @{ vm_id = $VmId; action = 'mount'; controller_type = 'SCSI'; controller = 0; location = 1; path = $Path; library = @($Library) }
        $result.Answer.error.code | Should -BeExactly 'not_in_library'
        Should -Invoke Set-VMDvdDrive -Times 0 -Exactly -Scope It
    }

    It 'not_in_library: a path that is not a file' {
        Mock Test-Path { $false }
        $result = Invoke-HvcOperation -Operation media -Parameters @{ vm_id = $VmId; action = 'mount'; controller_type = 'SCSI'; controller = 0; location = 1; path = 'C:\ISO\missing.iso'; library = @($Library) }
        $result.Answer.error.code | Should -BeExactly 'not_in_library'
        Should -Invoke Set-VMDvdDrive -Times 0 -Exactly -Scope It
    }

    It 'not_in_library: a <LinkType> below the library folder, wherever it leads' -Skip:(-not $OnWindows) -ForEach @(@{ LinkType = 'Junction' }, @{ LinkType = 'SymbolicLink' }) {
        $Links['C:\ISO\sub'] = $LinkType
        $result = Invoke-HvcOperation -Operation media -Parameters @{ vm_id = $VmId; action = 'mount'; controller_type = 'SCSI'; controller = 0; location = 1; path = 'C:\ISO\sub\setup.iso'; library = @($Library) }
        $result.Answer.error.code | Should -BeExactly 'not_in_library'
        Should -Invoke Set-VMDvdDrive -Times 0 -Exactly -Scope It
    }

    It 'a file with several names (HardLink) below the library is mounted' {
        $Links['C:\ISO\setup.iso'] = 'HardLink'
        $result = Invoke-HvcOperation -Operation media -Parameters @{ vm_id = $VmId; action = 'mount'; controller_type = 'SCSI'; controller = 0; location = 1; path = 'C:\ISO\setup.iso'; library = @($Library) }
        $result.Answer.ok | Should -BeTrue -Because $result.Raw
    }

    It 'not_in_library: the drive reads back another file; it is ejected again' {
        $ReadBack = { param($path) if ($path) { 'C:\Other\evil.iso' } else { $null } }
        $result = Invoke-HvcOperation -Operation media -Parameters @{ vm_id = $VmId; action = 'mount'; controller_type = 'SCSI'; controller = 0; location = 1; path = 'C:\ISO\setup.iso'; library = @($Library) }
        $result.Answer.error.code | Should -BeExactly 'not_in_library'
        Should -Invoke Set-VMDvdDrive -Times 2 -Exactly -Scope It
        Should -Invoke Set-VMDvdDrive -Times 1 -Exactly -Scope It -ParameterFilter { $null -eq $Path }
    }

    It 'no_dvd_drive: no drive at that controller and location' {
        $result = Invoke-HvcOperation -Operation media -Parameters @{ vm_id = $VmId; action = 'eject'; controller_type = 'IDE'; controller = 0; location = 1; library = @($Library) }
        $result.Answer.error.code | Should -BeExactly 'no_dvd_drive'
        $result.Answer.error.message | Should -BeExactly 'No DVD drive at IDE 0:1.'
    }

    It 'eject: Set-VMDvdDrive -Path $null on that drive only' {
        $TheDrives[0].Path = 'C:\ISO\setup.iso'
        $result = Invoke-HvcOperation -Operation media -Parameters @{ vm_id = $VmId; action = 'eject'; controller_type = 'SCSI'; controller = 0; location = 1; library = @($Library) }
        $result.Answer.ok | Should -BeTrue -Because $result.Raw
        $result.Answer.data.drive.path | Should -BeNullOrEmpty
        Should -Invoke Set-VMDvdDrive -Times 1 -Exactly -Scope It -ParameterFilter { $null -eq $Path -and $VMDvdDrive.ControllerLocation -eq 1 }
    }

    It 'invalid_parameter: an unknown media action' {
        $result = Invoke-HvcOperation -Operation media -Parameters @{ vm_id = $VmId; action = 'burn'; controller_type = 'SCSI'; controller = 0; location = 1; library = @($Library) }
        $result.Answer.error.code | Should -BeExactly 'invalid_parameter'
        Should -Invoke Set-VMDvdDrive -Times 0 -Exactly -Scope It
    }
}

Describe 'inventory: every VM in one call, read in bulk, one unreadable VM marked alone' {
    BeforeAll {
        $OtherId = '080fa935-119d-5f94-bd91-af6a3ffc1820'
        $ChildId = '6f1c2d3e-4a5b-4c6d-8e7f-901a2b3c4d5f'
        $Folder = Join-Path $TestDrive 'vms'
        $null = New-Item -ItemType Directory -Path $Folder -Force
        # The disk, the differencing disk Hyper-V made for a checkpoint beside it, another VM's
        # disk whose name starts the same, and a file that is no disk.
        $sizes = @{ 'web.vhdx' = 1000; "web_$($ChildId.ToUpperInvariant()).avhdx" = 200; 'webserver.vhdx' = 5000; 'web.txt' = 7 }
        foreach ($file in $sizes.Keys) {
            [IO.File]::WriteAllBytes((Join-Path $Folder $file), [byte[]]::new($sizes[$file]))
        }
        $TheVms = @(
            New-HvcVM -Id $VmId -Name 'web' -State 'Running'
            New-HvcVM -Id $OtherId -Name 'db' -State 'Off'
        )
        Mock Get-VM { $TheVms }
        Mock Get-VMSnapshot {
            foreach ($vm in $PesterBoundParameters.VM) {
                if ("$($vm.Id)" -eq $VmId) {
                    New-HvcSnapshot -Id $CheckpointId -VMId $VmId -Name 'first'
                    New-HvcSnapshot -Id $ChildId -VMId $VmId -Name 'second' -ParentId $CheckpointId
                }
            }
        }
        Mock Get-VMDvdDrive { foreach ($vm in $PesterBoundParameters.VM) { New-HvcDvdDrive -VMId "$($vm.Id)" -Path 'C:\ISO\setup.iso' } }
        Mock Get-VMHardDiskDrive {
            foreach ($vm in $PesterBoundParameters.VM) {
                if ("$($vm.Id)" -eq $OtherId -and $Unreadable) { throw 'The configuration of db cannot be read.' }
                if ("$($vm.Id)" -eq $VmId) { [pscustomobject]@{ VMId = $vm.Id; Path = (Join-Path $Folder 'web.vhdx') } }
            }
        }
        Mock Get-VMIntegrationService {
            foreach ($vm in $PesterBoundParameters.VM) {
                if ("$($vm.Id)" -eq $VmId) {
                    New-HvcIntegrationService -VMId $VmId -ServiceId $HvcHeartbeatServiceId
                    New-HvcIntegrationService -VMId $VmId -ServiceId $HvcShutdownServiceId
                }
            }
        }
    }
    BeforeEach {
        $Unreadable = $false
    }

    It 'lists each VM with its state, services, checkpoints, drives and disk use' {
        $result = Invoke-HvcOperation -Operation inventory -Parameters @{}
        $result.Answer.ok | Should -BeTrue -Because $result.Raw
        $result.Answer.data.host | Should -Be $env:COMPUTERNAME
        $web, $db = $result.Answer.data.vms
        $web.id | Should -BeExactly $VmId
        $web.state | Should -BeExactly 'Running'
        $web.uptime_s | Should -Be 3600
        $web.heartbeat | Should -BeExactly 'Ok'
        $web.shutdown_service | Should -BeTrue
        @($web.checkpoints).Count | Should -Be 2
        $web.checkpoints[1].parent_id | Should -BeExactly $CheckpointId
        @($web.dvd_drives)[0].path | Should -BeExactly 'C:\ISO\setup.iso'
        $web.disk_bytes | Should -Be 1200
        $web.checkpoint_bytes | Should -Be 200
        $web.unreadable | Should -BeNullOrEmpty
        $db.heartbeat | Should -BeNullOrEmpty
        $db.shutdown_service | Should -BeFalse
        @($db.checkpoints).Count | Should -Be 0
        $result.Raw | Should -Match '"created":"2026-11-30T10:00:00Z"'
    }

    It 'reads devices once for all VMs when it can' {
        $null = Invoke-HvcOperation -Operation inventory -Parameters @{}
        Should -Invoke Get-VMSnapshot -Times 1 -Exactly -Scope It
        Should -Invoke Get-VMHardDiskDrive -Times 1 -Exactly -Scope It
    }

    It 'a VM whose configuration cannot be read is marked unreadable; the others are listed in full' {
        $Unreadable = $true
        $result = Invoke-HvcOperation -Operation inventory -Parameters @{}
        $result.Answer.ok | Should -BeTrue -Because $result.Raw
        $web, $db = $result.Answer.data.vms
        $db.unreadable | Should -BeExactly 'The configuration of db cannot be read.'
        $web.unreadable | Should -BeNullOrEmpty
        @($web.checkpoints).Count | Should -Be 2
        $web.disk_bytes | Should -Be 1200
    }

    It 'a host without VMs answers an empty list' {
        $TheVms = @()
        $result = Invoke-HvcOperation -Operation inventory -Parameters @{}
        $result.Answer.ok | Should -BeTrue -Because $result.Raw
        @($result.Answer.data.vms).Count | Should -Be 0
        Should -Invoke Get-VMSnapshot -Times 0 -Exactly -Scope It
    }
}

Describe 'host_facts: build, last update, storage and the ISO library' -Skip:(-not $OnWindows) {
    BeforeAll {
        $Iso = Join-Path $TestDrive 'ISO'
        $null = New-Item -ItemType Directory -Path (Join-Path $Iso 'folder.iso') -Force
        [IO.File]::WriteAllBytes((Join-Path $Iso 'setup.iso'), [byte[]]::new(3))
        [IO.File]::WriteAllBytes((Join-Path $Iso 'OLD.ISO'), [byte[]]::new(5))
        [IO.File]::WriteAllBytes((Join-Path $Iso 'setup.isox'), [byte[]]::new(7))
        [IO.File]::WriteAllBytes((Join-Path $Iso 'notes.txt'), [byte[]]::new(1))
        Mock Get-ItemProperty { [pscustomobject]@{ CurrentBuild = '20348'; UBR = 3091 } }
        $broken = [pscustomobject]@{ HotFixID = 'KB3' }
        $broken | Add-Member -MemberType ScriptProperty -Name InstalledOn -Value { throw 'The date cannot be read.' }
        Mock Get-HotFix {
            [pscustomobject]@{ HotFixID = 'KB1'; InstalledOn = [datetime]'2026-10-01' }
            $broken
            [pscustomobject]@{ HotFixID = 'KB2'; InstalledOn = [datetime]'2026-11-10' }
        }
        Mock Get-VMHost { [pscustomobject]@{ VirtualHardDiskPath = 'C:\Hyper-V\Disks'; VirtualMachinePath = 'C:\Hyper-V' } }
        Mock Get-VM { New-HvcVM -Id $VmId -Path 'D:\VMs\web' }
        Mock Get-VMHardDiskDrive { [pscustomobject]@{ Path = '\\fs01\vms\web\web.vhdx' }; [pscustomobject]@{ Path = 'E:\VMs\web\web.vhdx' } }
        Mock Get-Volume {
            switch -Wildcard ("$($PesterBoundParameters.FilePath)") {
                'C:\*' { [pscustomobject]@{ Path = '\\?\Volume{c}\'; DriveLetter = 'C'; FileSystemLabel = 'OS'; SizeRemaining = [long]100; Size = [long]1000 } }
                'D:\*' { [pscustomobject]@{ Path = '\\?\Volume{d}\'; DriveLetter = 'D'; FileSystemLabel = 'VMs'; SizeRemaining = [long]200; Size = [long]2000 } }
                default { throw 'The volume cannot be read.' }
            }
        }
    }

    It 'answers the build with its update revision and the newest update''s day, skipping a date it cannot read' {
        $result = Invoke-HvcOperation -Operation host_facts -Parameters @{ library = @($Iso) }
        $result.Answer.ok | Should -BeTrue -Because $result.Raw
        $result.Answer.data.os_build | Should -BeExactly '20348.3091'
        $result.Answer.data.last_update | Should -BeExactly '2026-11-10'
        Should -Invoke Get-ItemProperty -Scope It -ParameterFilter { $Path -eq 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion' }
    }

    It 'groups the places that hold VM files by volume, lists a share by its root, and keeps a volume it cannot read' {
        $result = Invoke-HvcOperation -Operation host_facts -Parameters @{ library = @() }
        $storage = @($result.Answer.data.storage)
        @($storage.path | Sort-Object) | Should -Be @('\\fs01\vms', 'C:\', 'D:\', 'E:\VMs\web' | Sort-Object)
        ($storage | Where-Object path -EQ 'C:\').free_bytes | Should -Be 100
        ($storage | Where-Object path -EQ '\\fs01\vms').kind | Should -BeExactly 'share'
        ($storage | Where-Object path -EQ 'E:\VMs\web').error | Should -BeExactly 'The volume cannot be read.'
    }

    It 'lists only the .iso files directly in each library folder; a folder it cannot list is skipped' {
        $result = Invoke-HvcOperation -Operation host_facts -Parameters @{ library = @($Iso, (Join-Path $TestDrive 'missing')) }
        $result.Answer.ok | Should -BeTrue -Because $result.Raw
        $isos = @($result.Answer.data.isos)
        @($isos.path | Sort-Object) | Should -Be @((Join-Path $Iso 'OLD.ISO'), (Join-Path $Iso 'setup.iso') | Sort-Object)
        ($isos | Where-Object { $_.path -like '*setup.iso' }).size_bytes | Should -Be 3
    }
}

Describe 'vm_state: cheap polling by id' {
    BeforeAll {
        $Gone = '00000000-0000-0000-0000-00000000000a'
        $Missing = '00000000-0000-0000-0000-00000000000b'
        $notFound = [pscustomobject]@{ id = 'ObjectNotFound,Microsoft.HyperV.PowerShell.Commands.GetVM'; category = 'ObjectNotFound'; inner = 'Exception'; message = 'No such VM.' }
        Mock Get-VM {
            switch ("$($PesterBoundParameters.Id)") {
                $VmId { New-HvcVM -Id $VmId -State 'Paused' -Status 'Operating normally' }
                $Gone { throw (New-HvcHostError -Fault $notFound) }
                default { @() }
            }
        }
    }

    It 'answers id, state and status of the VMs found; ids not found either way are left out' {
        $result = Invoke-HvcOperation -Operation vm_state -Parameters @{ vm_ids = @($Gone, $VmId, $Missing) }
        $result.Answer.ok | Should -BeTrue -Because $result.Raw
        @($result.Answer.data.vms).Count | Should -Be 1
        $result.Answer.data.vms[0].id | Should -BeExactly $VmId
        $result.Answer.data.vms[0].state | Should -BeExactly 'Paused'
        $result.Answer.data.vms[0].status | Should -BeExactly 'Operating normally'
    }

    It 'invalid_parameter: an id that is no GUID' {
        $result = Invoke-HvcOperation -Operation vm_state -Parameters @{ vm_ids = @($VmId, 'shop-web01') }
        $result.Answer.error.code | Should -BeExactly 'invalid_parameter'
        $result.Answer.error.message | Should -BeExactly 'vm_ids is not an id.'
    }
}

Describe 'details: one VM as Hyper-V Manager shows it, read when its details are opened (not_found, invalid_parameter)' {
    BeforeAll {
        $TheVm = New-HvcVM -Id $VmId -Name 'web' -State 'Running'
        $TheVm | Add-Member -NotePropertyMembers @{
            ProcessorCount = [long]4; MemoryStartup = [long]4294967296; MemoryMinimum = [long]536870912
            MemoryMaximum = [long]8589934592; MemoryDemand = [long]1073741824; DynamicMemoryEnabled = $true
            Version = '9.0'; ReplicationState = 'Disabled'; ReplicationHealth = 'NotApplicable'
            ResourceMeteringEnabled = $true
        }
        Mock Get-VM { if ("$($PesterBoundParameters.Id)" -eq $VmId) { $TheVm } }
        $Adapter = [pscustomobject]@{ VMId = [guid]$VmId; Name = 'Network Adapter'; SwitchName = 'External'; MacAddress = '00155D010203'; IPAddresses = @('10.0.0.5', 'fe80::1') }
        Mock Get-VMNetworkAdapter { $Adapter }
        Mock Get-VMNetworkAdapterVlan { [pscustomobject]@{ OperationMode = 'Access'; AccessVlanId = 20 } }
        $DiskPath = 'C:\VMs\web\Virtual Hard Disks\web.vhdx'
        Mock Get-VHD { [pscustomobject]@{ Path = $DiskPath; VhdType = 'Dynamic'; FileSize = [uint64]1000; Size = [uint64]5000 } }
        Mock Get-VMHardDiskDrive { [pscustomobject]@{ VMId = [guid]$VmId; Path = $DiskPath; ControllerType = 'SCSI'; ControllerNumber = 0; ControllerLocation = 0 } }
        Mock Get-VMIntegrationService { New-HvcIntegrationService -VMId $VmId -ServiceId $HvcHeartbeatServiceId }
        Mock Get-VMFirmware { [pscustomobject]@{ SecureBoot = 'On'; SecureBootTemplate = 'MicrosoftWindows' } }
        Mock Get-VMSecurity { [pscustomobject]@{ TpmEnabled = $true } }
        Mock Measure-VM { [pscustomobject]@{ MeteringDuration = [timespan]::FromHours(2); AverageProcessorUsage = [uint64]480; AverageMemoryUsage = [uint64]2048; MinimumMemoryUsage = [uint64]1024; MaximumMemoryUsage = [uint64]4096 } }
        # The guest's key-value pairs as WMI gives them: embedded instances as CIM-XML text.
        $Pair = '<INSTANCE CLASSNAME="Msvm_KvpExchangeDataItem"><PROPERTY NAME="Data" TYPE="string"><VALUE>Windows Server 2022 &amp; more</VALUE></PROPERTY><PROPERTY NAME="Name" TYPE="string"><VALUE>OSName</VALUE></PROPERTY></INSTANCE>'
        Mock Get-CimInstance { [pscustomobject]@{ SystemName = $VmId.ToUpperInvariant(); GuestIntrinsicExchangeItems = @($Pair) } } -ParameterFilter { $ClassName -eq 'Msvm_KvpExchangeComponent' }
    }

    It 'answers processors, memory, adapters with the guest''s addresses and VLAN, disks with their sizes, integration services, firmware, TPM, the guest OS and metering' {
        $result = Invoke-HvcOperation -Operation details -Line $Cases.operations.details.sample.p
        $result.Answer.ok | Should -BeTrue -Because $result.Raw
        $d = $result.Answer.data
        $d.processors | Should -Be 4
        $d.memory.dynamic | Should -BeTrue
        $d.memory.demand | Should -Be 1073741824
        $d.adapters[0].ips -join ',' | Should -BeExactly '10.0.0.5,fe80::1'
        $d.adapters[0].vlan_mode | Should -BeExactly 'Access'
        $d.adapters[0].vlan_id | Should -Be 20
        $d.disks[0].type | Should -BeExactly 'Dynamic'
        $d.disks[0].size_bytes | Should -Be 5000
        $d.integration[0].id | Should -BeExactly $HvcHeartbeatServiceId
        $d.secure_boot | Should -BeTrue
        $d.tpm | Should -BeTrue
        $d.guest_os | Should -BeExactly 'Windows Server 2022 & more'
        $d.metering.cpu_mhz | Should -Be 480
        Should -Invoke Get-CimInstance -Times 1 -Exactly -ParameterFilter { $Namespace -eq 'root\virtualization\v2' -and $Filter -eq "SystemName='$VmId'" }
    }

    It 'a disk Get-VHD cannot open is listed without sizes, and the reason is given' {
        Mock Get-VHD { throw 'The file is in use.' }
        $result = Invoke-HvcOperation -Operation details -Line $Cases.operations.details.sample.p
        $result.Answer.ok | Should -BeTrue -Because $result.Raw
        $result.Answer.data.disks[0].path | Should -BeExactly $DiskPath
        $result.Answer.data.disks[0].size_bytes | Should -BeNullOrEmpty
        $result.Answer.data.disk_error | Should -Match 'in use'
    }

    It 'not_found: no VM with that id; invalid_parameter: no id' {
        $result = Invoke-HvcOperation -Operation details -Parameters @{ vm_id = '00000000-0000-0000-0000-00000000000c' }
        $result.Answer.error.code | Should -BeExactly 'not_found'
        $result = Invoke-HvcOperation -Operation details -Parameters @{ other = 1 }
        $result.Answer.error.code | Should -BeExactly 'invalid_parameter'
    }
}

Describe 'thumbnail: the screen through CIM, RGB 565 as hex (invalid_parameter)' {
    BeforeAll {
        $TheState = @{ Value = 'Running' }
        Mock Get-VM { if ("$($PesterBoundParameters.Id)" -eq $VmId) { New-HvcVM -Id $VmId -State $TheState.Value } }
        Mock Get-CimInstance {
            switch ($ClassName) {
                'Msvm_VirtualSystemSettingData' {
                    [pscustomobject]@{ InstanceID = 'snapshot'; VirtualSystemType = 'Microsoft:Hyper-V:Snapshot:Realized' }
                    [pscustomobject]@{ InstanceID = 'vm'; VirtualSystemType = 'Microsoft:Hyper-V:System:Realized' }
                }
                'Msvm_VirtualSystemManagementService' { [pscustomobject]@{ Name = 'vmms' } }
            }
        }
        $Pixels = [byte[]]@(foreach ($i in 0..383) { $i % 256 })
        Mock Invoke-CimMethod { [pscustomobject]@{ ReturnValue = [uint32]0; ImageData = $Pixels } }
    }

    It 'asks the management service for the VM''s own settings at the size given, and answers the bytes as hex' {
        $result = Invoke-HvcOperation -Operation thumbnail -Line $Cases.operations.thumbnail.sample.p
        $result.Answer.ok | Should -BeTrue -Because $result.Raw
        $result.Answer.data.image | Should -BeExactly ((@($Pixels | ForEach-Object { $_.ToString('x2') })) -join '')
        Should -Invoke Invoke-CimMethod -Times 1 -Exactly -ParameterFilter {
            $MethodName -eq 'GetVirtualSystemThumbnailImage' -and $Arguments.TargetSystem.InstanceID -eq 'vm' -and
            $Arguments.WidthPixels -eq 16 -and $Arguments.HeightPixels -eq 12 -and $Arguments.WidthPixels -is [uint16]
        }
    }

    It 'an off VM has no screen: no image, and the method is not called' {
        $TheState.Value = 'Off'
        $result = Invoke-HvcOperation -Operation thumbnail -Line $Cases.operations.thumbnail.sample.p
        $TheState.Value = 'Running'
        $result.Answer.ok | Should -BeTrue -Because $result.Raw
        $result.Answer.data.image | Should -BeNullOrEmpty
        Should -Invoke Invoke-CimMethod -Times 0 -Exactly -Scope It
    }

    It 'invalid_parameter: a size outside 16x12 to 320x240' {
        $result = Invoke-HvcOperation -Operation thumbnail -Parameters @{ vm_id = $VmId; width = 4000; height = 3000 }
        $result.Answer.error.code | Should -BeExactly 'invalid_parameter'
    }
}

Describe 'document: one file per VM and its Notes, an old file kept beside the new one (invalid_parameter)' -Skip:($PSVersionTable.PSEdition -ne 'Desktop') {
    # -Encoding Byte is Windows PowerShell 5.1's (the hosts'); PowerShell 7 calls it -AsByteStream.
    BeforeAll {
        $Folder = Join-Path $TestDrive 'Documentation\VMs'
        $File = "web $VmId.txt"
        function Encode($text) { [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes($text)) }
        Mock Get-VM { New-HvcVM -Id $VmId }
        Mock Set-VM { $null }
    }

    It 'write makes the folder, writes the bytes and sets the Notes of the VM found by -Id' {
        $files = @(@{ vm_id = $VmId; file = $File; data = (Encode "web`r`nOwner: Olivia`r`n"); keep = $null; notes = 'Owner: Olivia' })
        $result = Invoke-HvcOperation -Operation document -Parameters @{ mode = 'write'; folder = $Folder; files = $files }
        $result.Answer.ok | Should -BeTrue -Because $result.Raw
        [IO.File]::ReadAllText((Join-Path $Folder $File)) | Should -BeExactly "web`r`nOwner: Olivia`r`n"
        Should -Invoke Set-VM -Scope It -Times 1 -ParameterFilter { $Notes -ceq 'Owner: Olivia' }
        Should -Invoke Get-VM -Scope It -ParameterFilter { "$Id" -eq $VmId }
    }

    It 'read answers the bytes of a file that is there, and nothing for one that is not' {
        $files = @(@{ vm_id = $VmId; file = $File }, @{ vm_id = $CheckpointId; file = 'none.txt' })
        $result = Invoke-HvcOperation -Operation document -Parameters @{ mode = 'read'; folder = $Folder; files = $files }
        $result.Answer.ok | Should -BeTrue -Because $result.Raw
        $found = @($result.Answer.data.files)
        [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($found[0].data)) | Should -BeExactly "web`r`nOwner: Olivia`r`n"
        $found[1].exists | Should -BeFalse
    }

    It 'a second write keeps the file that was there under its keep name, and leaves the Notes when none are given' {
        $files = @(@{ vm_id = $VmId; file = $File; data = (Encode 'new'); keep = "web $VmId.old.txt"; notes = $null })
        $result = Invoke-HvcOperation -Operation document -Parameters @{ mode = 'write'; folder = $Folder; files = $files }
        $result.Answer.ok | Should -BeTrue -Because $result.Raw
        [IO.File]::ReadAllText((Join-Path $Folder "web $VmId.old.txt")) | Should -BeExactly "web`r`nOwner: Olivia`r`n"
        [IO.File]::ReadAllText((Join-Path $Folder $File)) | Should -BeExactly 'new'
        Should -Invoke Set-VM -Scope It -Times 0
    }

    It 'invalid_parameter: a folder that is not a local path' {
        $result = Invoke-HvcOperation -Operation document -Parameters @{ mode = 'read'; folder = '\\server\share'; files = @() }
        $result.Answer.error.code | Should -BeExactly 'invalid_parameter'
    }
}

Describe 'host_hardening: installation, features, local accounts, groups by SID, RDP, listeners, endpoints (a part not read is named)' -Skip:(-not $OnWindows) {
    BeforeAll {
        function Sid($Value) { [pscustomobject]@{ Value = $Value } }
        Mock Get-ItemProperty { [pscustomobject]@{ CurrentBuild = '20348'; UBR = 2340; InstallationType = 'Server' } } -ParameterFilter { $Path -like '*\Windows NT\CurrentVersion' }
        Mock Get-ItemProperty { [pscustomobject]@{ fDenyTSConnections = 1 } } -ParameterFilter { $Path -like '*\Control\Terminal Server' }
        Mock Get-ItemProperty { [pscustomobject]@{ fDenyTSConnections = 0 } } -ParameterFilter { $Path -like '*\Policies\Microsoft\Windows NT\Terminal Services' }
        Mock Get-WindowsFeature { @([pscustomobject]@{ Name = 'Hyper-V'; Installed = $true }, [pscustomobject]@{ Name = 'Web-Server'; Installed = $true }, [pscustomobject]@{ Name = 'DHCP'; Installed = $false }) }
        Mock Get-LocalUser { @([pscustomobject]@{ Name = 'Administrator'; Enabled = $true; SID = (Sid 'S-1-5-21-1-2-3-500') }, [pscustomobject]@{ Name = 'Guest'; Enabled = $false; SID = (Sid 'S-1-5-21-1-2-3-501') }) }
        Mock Get-LocalGroupMember { throw 'An unspecified error occurred.' } -ParameterFilter { "$SID" -eq 'S-1-5-32-544' }
        Mock Get-LocalGroupMember { [pscustomobject]@{ Name = 'HV09\hvadmin'; SID = (Sid 'S-1-5-21-1-2-3-1000'); PrincipalSource = 'Local'; ObjectClass = 'User' } } -ParameterFilter { "$SID" -eq 'S-1-5-32-578' }
        Mock Get-LocalGroupMember { [pscustomobject]@{ Name = 'LAB\bob'; SID = (Sid 'S-1-5-21-9-9-9-1150'); PrincipalSource = 'ActiveDirectory'; ObjectClass = 'User' } } -ParameterFilter { "$SID" -eq 'S-1-5-32-555' }
        Mock Get-WSManInstance { [pscustomobject]@{ Transport = 'HTTP'; Port = '5985'; Address = '*'; Enabled = 'true' } }
        Mock Get-PSSessionConfiguration { throw 'Access is denied.' }
    }

    It 'answers every part it read, Group Policy''s RDP value over the local one, and names what it could not read' {
        $result = Invoke-HvcOperation -Operation host_hardening -Line $Cases.operations.host_hardening.sample.p
        $result.Answer.ok | Should -BeTrue -Because $result.Raw
        $d = $result.Answer.data
        $d.installation_type | Should -BeExactly 'Server'
        $d.os_build | Should -BeExactly '20348.2340'
        $d.features -join ',' | Should -BeExactly 'Hyper-V,Web-Server'
        @($d.local_users).Count | Should -Be 1
        $d.local_users[0].sid | Should -BeExactly 'S-1-5-21-1-2-3-500'
        ($d.groups | Where-Object sid -eq 'S-1-5-32-544').error | Should -Match 'unspecified'
        ($d.groups | Where-Object sid -eq 'S-1-5-32-578').members[0].source | Should -BeExactly 'Local'
        ($d.groups | Where-Object sid -eq 'S-1-5-32-555').members[0].name | Should -BeExactly 'LAB\bob'
        $d.rdp_enabled | Should -BeTrue
        $d.rdp_by_policy | Should -BeTrue
        $d.listeners[0].port | Should -BeExactly '5985'
        $d.listeners[0].enabled | Should -BeTrue
        $d.endpoints | Should -BeNullOrEmpty
        $d.unread.endpoints | Should -Match 'denied'
    }
}

Describe 'metering: resource metering on or off for every VM of the host (invalid_parameter)' {
    BeforeAll {
        Mock Get-VM { New-HvcVM -Id $VmId }
        Mock Enable-VMResourceMetering { $null }
        Mock Disable-VMResourceMetering { $null }
    }

    It 'on: Enable-VMResourceMetering -VM with every VM, and the count answered' {
        $result = Invoke-HvcOperation -Operation metering -Parameters @{ enable = $true }
        $result.Answer.ok | Should -BeTrue -Because $result.Raw
        $result.Answer.data.vms | Should -Be 1
        Should -Invoke Enable-VMResourceMetering -Scope It -Times 1
        Should -Invoke Disable-VMResourceMetering -Scope It -Times 0
    }

    It 'off: Disable-VMResourceMetering -VM' {
        $result = Invoke-HvcOperation -Operation metering -Parameters @{ enable = $false }
        $result.Answer.ok | Should -BeTrue -Because $result.Raw
        Should -Invoke Disable-VMResourceMetering -Scope It -Times 1
    }

    It 'invalid_parameter: enable that is not a boolean' {
        $result = Invoke-HvcOperation -Operation metering -Parameters @{ enable = 'yes' }
        $result.Answer.error.code | Should -BeExactly 'invalid_parameter'
    }
}

Describe 'console_access and console_acl: the caller''s own access to one VM''s console by id, and every VM''s entries (invalid_parameter)' -Skip:(-not $OnWindows) {
    # The admin endpoint's caller is the process token (WindowsIdentity::GetCurrent): Windows only.
    BeforeAll {
        Mock Get-VM { New-HvcVM -Id $VmId }
        $Held = @{ Entries = @() }
        Mock Get-VMConnectAccess { @($Held.Entries) }
        Mock Grant-VMConnectAccess { $Held.Entries = @([pscustomobject]@{ UserName = "$($PesterBoundParameters.UserName)"; UserId = $null; Access = 'Allowed' }) }
        Mock Revoke-VMConnectAccess { $Held.Entries = @() }
        Mock Get-CimInstance { @() }
        $Me = [System.Security.Principal.WindowsIdentity]::GetCurrent().Name
    }

    It 'console_access grant: Grant-VMConnectAccess -VMId for the token''s own account, once' {
        $want = "$VmId"
        $result = Invoke-HvcOperation -Operation console_access -Parameters @{ vm_id = $VmId; action = 'grant' }
        $result.Answer.ok | Should -BeTrue -Because $result.Raw
        $result.Answer.data.granted | Should -BeTrue
        $result.Answer.data.user | Should -BeExactly $Me
        Should -Invoke Grant-VMConnectAccess -Scope It -Times 1 -Exactly -ParameterFilter { "$($PesterBoundParameters.VMId)" -eq $want -and $PesterBoundParameters.UserName -eq $Me }
        # held already: not granted twice
        $null = Invoke-HvcOperation -Operation console_access -Parameters @{ vm_id = $VmId; action = 'grant' }
        Should -Invoke Grant-VMConnectAccess -Scope It -Times 1 -Exactly
    }

    It 'console_access revoke: only the entries the caller holds' {
        $result = Invoke-HvcOperation -Operation console_access -Parameters @{ vm_id = $VmId; action = 'revoke' }
        $result.Answer.ok | Should -BeTrue -Because $result.Raw
        $result.Answer.data.granted | Should -BeFalse
        Should -Invoke Revoke-VMConnectAccess -Scope It -Times 1 -Exactly
    }

    It 'console_access invalid_parameter: an unknown console action' {
        $result = Invoke-HvcOperation -Operation console_access -Parameters @{ vm_id = $VmId; action = 'share' }
        $result.Answer.error.code | Should -BeExactly 'invalid_parameter'
    }

    It 'console_acl: every VM''s entries, by id' {
        $Held.Entries = @([pscustomobject]@{ UserName = 'LAB\henry'; UserId = [pscustomobject]@{ Value = 'S-1-5-21-1000-2000-3000-1102' }; Access = 'Allowed' })
        $result = Invoke-HvcOperation -Operation console_acl -Parameters @{}
        $result.Answer.ok | Should -BeTrue -Because $result.Raw
        $entry = @($result.Answer.data.entries)[0]
        $entry.user | Should -BeExactly 'LAB\henry'
        $entry.sid | Should -BeExactly 'S-1-5-21-1000-2000-3000-1102'
        $entry.vm_id | Should -Be $VmId
    }
}

Describe 'the event of an action (the admin frame E): the caller from the token, the record the call carries' {
    BeforeAll {
        Mock Get-VM { New-HvcVM -Id $VmId -Name 'web' -State 'Off' }
        Mock Start-VM { @() }
        $Record = $Cases.jea.record
        $Me = if ($HvcOnWindows) { [System.Security.Principal.WindowsIdentity]::GetCurrent() } else { $HvcPesterIdentity }
    }

    It 'power: one event (ok) with the process''s own SID, whatever SID the parameters carry' {
        $result = Invoke-HvcOperation -Operation power -Parameters @{ vm_id = $VmId; action = 'start'; sid = 'S-1-5-21-1-2-3-999'; audit = @{ record = $Record.record; sha256 = $Record.sha256; seq = $Record.seq; workstation = $Record.workstation; sid = 'S-1-5-21-1-2-3-999' } }
        $result.Answer.ok | Should -BeTrue -Because $result.Raw
        Should -Invoke Write-EventLog -Times 1 -Exactly -Scope It -ParameterFilter {
            $e = $Message | ConvertFrom-Json
            $LogName -eq 'Application' -and $Source -eq $Cases.jea.event_source -and $EventId -eq $Cases.jea.event_ids.ok -and "$EntryType" -eq 'Information' -and
            $e.endpoint -eq 'admin' -and $e.sid -eq "$($Me.User.Value)" -and $e.user -eq "$($Me.Name)" -and $e.operation -eq 'power' -and $e.action -eq 'start' -and
            $e.vm -eq $VmId -and $e.name -eq 'web' -and $e.outcome -eq 'ok' -and $e.record -eq $Record.record -and $e.sha256 -eq $Record.sha256 -and
            $e.seq -eq $Record.seq -and $e.workstation -eq $Record.workstation
        }
    }

    It 'a record reference off its pattern (<Why>) refuses the action before Hyper-V acts; the refusal is an event too' -ForEach @(
        @{ Why = 'an upper-case id'; Field = 'record'; Value = '0F3C8A52-9E1B-4D57-A3C2-6B7E8F9A0B1C' }
        @{ Why = 'a hash of 63 digits'; Field = 'sha256'; Value = ('a' * 63) }
        @{ Why = 'a number with code after it'; Field = 'seq'; Value = '7;Stop-VM' }
        @{ Why = 'a workstation with a line break'; Field = 'workstation'; Value = "WS`nforged" }
    ) {
        $audit = @{ record = $Record.record; sha256 = $Record.sha256; seq = $Record.seq; workstation = $Record.workstation }
        $audit[$Field] = $Value
        $result = Invoke-HvcOperation -Operation power -Parameters @{ vm_id = $VmId; action = 'start'; audit = $audit }
        $result.Answer.error.code | Should -BeExactly 'invalid_parameter'
        Should -Invoke Start-VM -Times 0 -Exactly -Scope It
        Should -Invoke Write-EventLog -Times 1 -Exactly -Scope It -ParameterFilter { $EventId -eq $Cases.jea.event_ids.failed -and ($Message | ConvertFrom-Json).code -eq 'invalid_parameter' }
    }

    It 'an event the log refuses is reported beside the answer (log_error), never instead of it' {
        Mock Write-EventLog { throw 'The source name "HvConsole" does not exist on computer "localhost".' }
        $result = Invoke-HvcOperation -Operation power -Parameters @{ vm_id = $VmId; action = 'start' }
        $result.Answer.ok | Should -BeTrue -Because $result.Raw
        $result.Answer.log_error | Should -BeLike 'The event of this call was not written to the Application log: *'
        Should -Invoke Start-VM -Times 1 -Exactly -Scope It
    }
}

Describe 'audit_events: the console''s events of the Application log, newest first (invalid_parameter)' {
    BeforeAll {
        $Message = '{"v":1,"endpoint":"admin","operation":"power","outcome":"ok"}'
        Mock Get-WinEvent { [pscustomobject]@{ TimeCreated = [datetime]'2026-03-01T10:00:00Z'; Id = 1000; RecordId = [long]7; MachineName = 'HV01'; Properties = @([pscustomobject]@{ Value = $Message }) } }
    }

    It 'the sample asks Get-WinEvent for the source''s event ids from a time on, at most so many, and passes each message on as written' {
        $result = Invoke-HvcText -Text $Cases.operations.audit_events.sample.stdin
        $result.Answer.ok | Should -BeTrue -Because $result.Raw
        $result.Answer.data.events[0].message | Should -BeExactly $Message
        $result.Answer.data.events[0].time | Should -BeExactly '2026-03-01T10:00:00Z'
        $result.Answer.data.events[0].record_id | Should -Be 7
        $result.Answer.data.truncated | Should -BeFalse
        Should -Invoke Get-WinEvent -Times 1 -Exactly -Scope It -ParameterFilter {
            $FilterHashtable.LogName -eq 'Application' -and $FilterHashtable.ProviderName -eq $Cases.jea.event_source -and
            (@($FilterHashtable.Id) -join ',') -eq "$($Cases.jea.event_ids.ok),$($Cases.jea.event_ids.denied),$($Cases.jea.event_ids.failed)" -and
            $FilterHashtable.StartTime.ToUniversalTime() -eq [datetime]::new(2026, 1, 1, 0, 0, 0, [DateTimeKind]::Utc) -and
            $MaxEvents -eq $Cases.operations.audit_events.sample.params.max
        }
    }

    It 'no event yet (<Id>) is an empty answer' -ForEach @(@{ Id = 'NoMatchingEventsFound' }, @{ Id = 'NoMatchingProvidersFound' }) {
        Mock Get-WinEvent { throw [System.Management.Automation.ErrorRecord]::new([System.Exception]::new('No events were found that match the specified selection criteria.'), "$Id,Microsoft.PowerShell.Commands.GetWinEventCommand", 'ObjectNotFound', $null) }
        $result = Invoke-HvcOperation -Operation audit_events -Parameters @{ since = ''; max = 10 }
        $result.Answer.ok | Should -BeTrue -Because $result.Raw
        @($result.Answer.data.events).Count | Should -Be 0
    }

    It 'invalid_parameter: <Why>' -ForEach @(
        @{ Why = 'a since that is no UTC time'; Since = '2026-01-01'; Max = 10 }
        @{ Why = 'no maximum'; Since = ''; Max = 0 }
        @{ Why = 'a maximum above 100000'; Since = ''; Max = 100001 }
    ) {
        $result = Invoke-HvcOperation -Operation audit_events -Parameters @{ since = $Since; max = $Max }
        $result.Answer.error.code | Should -BeExactly 'invalid_parameter'
        Should -Invoke Get-WinEvent -Times 0 -Exactly -Scope It
    }
}

Describe 'transport: the console''s command, a real powershell -NoProfile -NonInteractive -Command - reading the text on standard input' -Skip:(-not $HasPowerShellExe) {
    It '<Title>: exactly one JSON document on stdout' -ForEach $TransportCases {
        $executable = $Cases.command.executable
        $arguments = @($Cases.command.arguments)
        $out = @($Case.stdin | & $executable @arguments)
        $LASTEXITCODE | Should -Be 0
        $text = ($out -join "`n").Trim()
        @($out | Where-Object { "$_".Trim() }).Count | Should -Be 1 -Because $text
        $answer = $text | ConvertFrom-Json
        if ($Case.code) {
            $answer.ok | Should -BeFalse -Because $text
            $answer.error.code | Should -BeExactly $Case.code
        }
        else {
            $answer.ok | Should -BeTrue -Because $text
            @($answer.data.vms).Count | Should -Be 0
        }
    }
}

# Downtime plans (downtime_publish, downtime_answer, downtime_plans): event ids 1010 (a plan) and
# 1011 (an answer), console/audit.py HOST_PLAN_EVENT_ID and HOST_ANSWER_EVENT_ID.
Describe 'downtime plans: downtime_publish, downtime_answer and downtime_plans over the Application log' {
    BeforeAll {
        $PlanId = 'HV01-20261212-2200-abcdef'
        # The person the admin frame's token names: this process's own on Windows, Common.ps1's
        # stand-in elsewhere.
        $Me = if ($HvcOnWindows) { [System.Security.Principal.WindowsIdentity]::GetCurrent().Name } else { $HvcPesterIdentity.Name }
        function New-HvcPlan {
            param([string]$HostName = "$env:COMPUTERNAME", [string]$Reason = 'firmware')
            @{ id = $PlanId; host = $HostName; start = '2026-12-12T22:00:00+01:00'; end = '2026-12-13T02:00:00+01:00'
                reason = $Reason; planned_by = 'LAB\adam'; teams = @(); subject = 's'
                items = @(@{ vm_id = $VmId; vm_name = 'web'; state = 'Running'; happens = 'saved'; owner = 'O'; contact = ''; application = '' })
            }
        }
        function New-HvcEvent {
            param([int]$Id, [hashtable]$Document)
            $text = ConvertTo-Json $Document -Depth 8 -Compress
            [pscustomobject]@{ TimeCreated = [datetime]'2026-03-01T10:00:00Z'; Id = $Id; RecordId = [long]7; MachineName = 'HV01'; Properties = @([pscustomobject]@{ Value = $text }) }
        }
    }

    Describe 'downtime_publish: one event 1010 holding the plan, the publisher from the token' {
        It 'writes the plan as one Information event of the console''s source' {
            $result = Invoke-HvcOperation -Operation downtime_publish -Parameters @{ plan = (New-HvcPlan) }
            $result.Answer.ok | Should -BeTrue -Because $result.Raw
            $result.Answer.data.plan_id | Should -BeExactly $PlanId
            Should -Invoke Write-EventLog -Times 1 -Exactly -Scope It -ParameterFilter {
                $document = $Message | ConvertFrom-Json
                $LogName -eq 'Application' -and $Source -eq $Cases.jea.event_source -and $EventId -eq 1010 -and
                $document.user -eq $Me -and $document.plan.id -eq $PlanId -and $document.plan.items[0].vm_id -eq $VmId
            }
        }

        It 'invalid_parameter, nothing written: <Why>' -ForEach @(
            @{ Why = 'a plan of another host'; HostName = 'NOT-THIS-HOST'; Reason = 'firmware' }
            @{ Why = 'a plan longer than an event holds'; HostName = "$env:COMPUTERNAME"; Reason = ('x' * 32000) }
        ) {
            $result = Invoke-HvcOperation -Operation downtime_publish -Parameters @{ plan = (New-HvcPlan -HostName $HostName -Reason $Reason) }
            $result.Answer.error.code | Should -BeExactly 'invalid_parameter' -Because $result.Raw
            Should -Invoke Write-EventLog -Times 0 -Exactly -Scope It
        }
    }

    Describe 'downtime_answer: one event 1011, the person from the token, to a plan the host holds' {
        It 'writes the answer with the plan''s id and the VMs it touches' {
            Mock Get-WinEvent { New-HvcEvent -Id 1010 -Document @{ v = 1; user = 'LAB\adam'; sid = 'S-1-5-21-1'; plan = (New-HvcPlan) } }
            $result = Invoke-HvcOperation -Operation downtime_answer -Parameters @{ plan_id = $PlanId; answer = 'object'; text = 'Not that night' }
            $result.Answer.ok | Should -BeTrue -Because $result.Raw
            $result.Answer.data.by | Should -BeExactly $Me
            Should -Invoke Write-EventLog -Times 1 -Exactly -Scope It -ParameterFilter {
                $document = $Message | ConvertFrom-Json
                $EventId -eq 1011 -and $document.plan_id -eq $PlanId -and $document.answer -eq 'object' -and
                $document.text -eq 'Not that night' -and $document.user -eq $Me -and @($document.vms)[0] -eq $VmId
            }
        }

        It 'not_found when the host holds no such plan (<Id>)' -ForEach @(@{ Id = 'NoMatchingEventsFound' }, @{ Id = 'NoMatchingProvidersFound' }) {
            Mock Get-WinEvent { throw [System.Management.Automation.ErrorRecord]::new([System.Exception]::new('No events were found that match the specified selection criteria.'), "$Id,Microsoft.PowerShell.Commands.GetWinEventCommand", 'ObjectNotFound', $null) }
            $result = Invoke-HvcOperation -Operation downtime_answer -Parameters @{ plan_id = $PlanId; answer = 'approve'; text = '' }
            $result.Answer.error.code | Should -BeExactly 'not_found' -Because $result.Raw
            Should -Invoke Write-EventLog -Times 0 -Exactly -Scope It
        }

        It 'invalid_parameter, nothing read or written: <Why>' -ForEach @(
            @{ Why = 'an answer that is neither approve nor object'; Answer = 'maybe'; Text = '' }
            @{ Why = 'two lines'; Answer = 'approve'; Text = "one`ntwo" }
        ) {
            Mock Get-WinEvent { @() }
            $result = Invoke-HvcOperation -Operation downtime_answer -Parameters @{ plan_id = $PlanId; answer = $Answer; text = $Text }
            $result.Answer.error.code | Should -BeExactly 'invalid_parameter' -Because $result.Raw
            Should -Invoke Get-WinEvent -Times 0 -Exactly -Scope It
            Should -Invoke Write-EventLog -Times 0 -Exactly -Scope It
        }
    }

    Describe 'downtime_plans: the plans and answers of the log, parsed' {
        It 'answers each plan with its publisher and each answer, and counts what is not the console''s' {
            Mock Get-WinEvent {
                New-HvcEvent -Id 1011 -Document @{ v = 1; user = 'LAB\olivia'; sid = 'S-1-5-21-2'; plan_id = $PlanId; answer = 'approve'; text = 'ok'; vms = @($VmId) }
                New-HvcEvent -Id 1010 -Document @{ v = 1; user = 'LAB\adam'; sid = 'S-1-5-21-1'; plan = (New-HvcPlan) }
                [pscustomobject]@{ TimeCreated = [datetime]'2026-03-01T10:00:00Z'; Id = 1010; RecordId = [long]3; MachineName = 'HV01'; Properties = @([pscustomobject]@{ Value = 'not JSON' }) }
            }
            $result = Invoke-HvcOperation -Operation downtime_plans -Parameters @{}
            $result.Answer.ok | Should -BeTrue -Because $result.Raw
            @($result.Answer.data.plans).Count | Should -Be 1
            $result.Answer.data.plans[0].by | Should -BeExactly 'LAB\adam'
            $result.Answer.data.plans[0].plan.id | Should -BeExactly $PlanId
            $result.Answer.data.answers[0].by | Should -BeExactly 'LAB\olivia'
            $result.Answer.data.answers[0].answer | Should -BeExactly 'approve'
            $result.Answer.data.others | Should -Be 1
            Should -Invoke Get-WinEvent -Times 1 -Exactly -Scope It -ParameterFilter {
                $FilterHashtable.ProviderName -eq $Cases.jea.event_source -and (@($FilterHashtable.Id) -join ',') -eq '1010,1011'
            }
        }
    }
}

# selftest environment: what the report names the host by (its Windows, PowerShell, the Hyper-V
# module's versions and the session's cultures: a PSRP session takes the client's, the system's
# languages are the operating system's). Changes nothing.
function O{
$k=Get-ItemProperty -LiteralPath 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion'
$o=Get-CimInstance -ClassName Win32_OperatingSystem
$m=@(Get-Module -Name Hyper-V -ListAvailable|ForEach-Object{"$($_.Version)"})
@{computer_name="$env:COMPUTERNAME";os_caption="$($o.Caption)";os_version="$($o.Version)";os_build="$($k.CurrentBuild).$($k.UBR)";installation_type="$($k.InstallationType)";os_languages=@(@($o.MUILanguages)|ForEach-Object{"$_"});powershell_version="$($PSVersionTable.PSVersion)";powershell_edition="$($PSVersionTable.PSEdition)";hyperv_module_versions=$m;culture=[cultureinfo]::CurrentCulture.Name;ui_culture=[cultureinfo]::CurrentUICulture.Name}
}
Y

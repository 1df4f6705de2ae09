; Inno Setup 6 definition of the Windows installer for the one-folder build.
;
;   python installer\build                 (makes dist\hvconsole\)
;   iscc installer\hvconsole.iss           (makes dist\hvconsole-<version>-setup.exe)
;
; Installs for the current user (no administrator rights, under %LOCALAPPDATA%\Programs) or,
; when the person chooses so in the first dialog, for all users (under Program Files).
; Uninstalling removes exactly the files installed here: the person's configuration, audit trail
; and logs (%LOCALAPPDATA%\hvconsole, and %APPDATA%\hvconsole if present) stay, so a reinstall
; or an upgrade keeps them. Remembered passwords live in Windows Credential Manager.

#ifndef BuildDir
  #define BuildDir "..\dist\hvconsole"
#endif
#define AppExe "hvconsolew.exe"
#define CliExe "hvconsole.exe"
; The version comes from the built program's version resource, which the PyInstaller spec
; writes from pyproject.toml: one place to change it.
#ifndef AppVersion
  #define AppVersion GetStringFileInfo(AddBackslash(BuildDir) + CliExe, "ProductVersion")
#endif

[Setup]
AppId={{6A0F3D4E-5C2B-4E7A-9B1D-2F8C4A6E0B13}
AppName=Hyper-V Delegation Console
AppVersion={#AppVersion}
AppPublisher=hvconsole
AppVerName=Hyper-V Delegation Console {#AppVersion}
DefaultDirName={autopf}\hvconsole
DefaultGroupName=Hyper-V Delegation Console
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
SetupIconFile=..\resources\icons\hvconsole.ico
UninstallDisplayIcon={app}\{#AppExe}
OutputDir=..\dist
OutputBaseFilename=hvconsole-{#AppVersion}-setup
Compression=lzma2
SolidCompression=yes
WizardStyle=modern
; A running console keeps its files open: ask to close it before replacing them.
CloseApplications=yes

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
; The whole PyInstaller folder: both executables and _internal\ (libraries, resources).
Source: "{#BuildDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\Hyper-V Delegation Console"; Filename: "{app}\{#AppExe}"
Name: "{autodesktop}\Hyper-V Delegation Console"; Filename: "{app}\{#AppExe}"; Tasks: desktopicon

[Run]
Filename: "{app}\{#AppExe}"; Description: "{cm:LaunchProgram,Hyper-V Delegation Console}"; Flags: nowait postinstall skipifsilent

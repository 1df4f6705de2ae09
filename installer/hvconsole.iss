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
;
; Installed for all users, it also creates the machine-wide configuration folder,
; %ProgramData%\hvconsole, where administrators write machine.toml ([policy] path = ...): owned by
; Administrators, writable by SYSTEM and Administrators only, readable by Users. The console uses
; machine.toml and the policy it names only when no one else can change them or their folders,
; so a standard user who creates that folder first (ProgramData lets Users create folders) gains
; nothing: they own it, and the console refuses it. The folder is never uninstalled (it holds the
; administrators' file). A per-user install cannot create it: an administrator does, as above.

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

[Dirs]
; Permissions only adds entries: the [Run] lines below remove what the folder inherits from
; ProgramData (Users: create files, CREATOR OWNER: full control) and make Administrators its owner.
Name: "{commonappdata}\hvconsole"; Permissions: admins-full system-full users-readexec; Flags: uninsneveruninstall; Check: IsAdminInstallMode

[Files]
; The whole PyInstaller folder: both executables and _internal\ (libraries, resources).
Source: "{#BuildDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\Hyper-V Delegation Console"; Filename: "{app}\{#AppExe}"
Name: "{autodesktop}\Hyper-V Delegation Console"; Filename: "{app}\{#AppExe}"; Tasks: desktopicon

[Run]
; S-1-5-18 SYSTEM, S-1-5-32-544 Administrators, S-1-5-32-545 Users: names that hold in every language.
Filename: "{sys}\icacls.exe"; Parameters: """{commonappdata}\hvconsole"" /inheritance:r /grant:r *S-1-5-18:(OI)(CI)F *S-1-5-32-544:(OI)(CI)F *S-1-5-32-545:(OI)(CI)RX"; StatusMsg: "Restricting the machine-wide configuration folder to administrators..."; Flags: runhidden waituntilterminated; Check: IsAdminInstallMode
Filename: "{sys}\icacls.exe"; Parameters: """{commonappdata}\hvconsole"" /setowner *S-1-5-32-544"; Flags: runhidden waituntilterminated; Check: IsAdminInstallMode
Filename: "{app}\{#AppExe}"; Description: "{cm:LaunchProgram,Hyper-V Delegation Console}"; Flags: nowait postinstall skipifsilent

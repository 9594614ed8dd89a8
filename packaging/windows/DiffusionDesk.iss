; Inno Setup script for Diffusion Desk (per-user install, no administrator rights needed).
; build_installer.py runs: iscc /DAppVersion=X.Y.Z /DSourceDir=... /DOutputDir=... /DIconFile=... DiffusionDesk.iss
#ifndef AppVersion
  #define AppVersion "0.0.0"
#endif
#ifndef SourceDir
  #define SourceDir "..\..\dist\DiffusionDesk"
#endif
#ifndef OutputDir
  #define OutputDir "..\..\dist"
#endif
#ifndef IconFile
  #define IconFile "..\..\build\installer\icons\app.ico"
#endif

[Setup]
AppId={{6C0E3A52-9E7B-4D8B-A1E4-2F1D4C7B9D31}
AppName=Diffusion Desk
AppVersion={#AppVersion}
AppPublisher=Diffusion Desk
VersionInfoVersion={#AppVersion}
DefaultDirName={autopf}\Diffusion Desk
DefaultGroupName=Diffusion Desk
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir={#OutputDir}
OutputBaseFilename=DiffusionDesk-{#AppVersion}-setup
SetupIconFile={#IconFile}
UninstallDisplayIcon={app}\DiffusionDesk.exe
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
Source: "{#SourceDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\Diffusion Desk"; Filename: "{app}\DiffusionDesk.exe"
Name: "{autodesktop}\Diffusion Desk"; Filename: "{app}\DiffusionDesk.exe"; Tasks: desktopicon

[Run]
Filename: "{app}\DiffusionDesk.exe"; Description: "{cm:LaunchProgram,Diffusion Desk}"; Flags: nowait postinstall skipifsilent

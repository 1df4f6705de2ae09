"""The desktop build: the Inno Setup definition, and the frozen one-folder app built and run.

The slow tests build with PyInstaller into a temporary folder (about 15-30 s) and run the program
from there, with a fresh home folder, so nothing comes from the source tree or the person's files.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from hvconsole.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
ISS = ROOT / "installer" / "hvconsole.iss"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
WINDOWS = sys.platform == "win32"
SIZE_GOAL_MB = 150


def iss_defines(text: str, overrides: dict[str, str]) -> dict[str, str]:
    defines = dict(overrides)
    for name, value in re.findall(r'^\s*#define\s+(\w+)\s+"([^"]*)"', text, re.M):
        defines.setdefault(name, value)
    return defines


def iss_references(text: str, build_dir: Path | None) -> list[tuple[str, str]]:
    """(section, path) for every file the definition reads or points at, defines resolved.

    Without `build_dir`, the references into the build ({#BuildDir}, {app}) are left out."""
    defines = iss_defines(text, {"BuildDir": str(build_dir)} if build_dir else {})
    section, refs = "", []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith((";", "#")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        if build_dir is None and ("{#BuildDir}" in line or "{app}" in line):
            continue
        line = re.sub(r"\{#(\w+)\}", lambda m: defines.get(m.group(1), m.group(0)), line)
        if section == "Setup" and line.startswith("SetupIconFile="):
            refs.append((section, line.split("=", 1)[1]))
        for key in ("Source", "Filename"):
            match = re.search(rf'\b{key}:\s*"([^"]+)"', line)
            if match and section in {"Files", "Icons"}:
                refs.append((section, match.group(1)))
    return refs


def platform_name(name: str) -> str:
    """A Windows executable's name in this platform's build: the same on Windows; elsewhere
    without `.exe`, and the windowed twin (hvconsolew) is the one console program."""
    if WINDOWS:
        return name
    stem = name.removesuffix(".exe")
    return PROJECT["name"] if stem == PROJECT["name"] + "w" else stem


def missing_references(build_dir: Path | None) -> list[str]:
    missing = []
    for section, ref in iss_references(ISS.read_text(encoding="utf-8"), build_dir):
        if ref.startswith("{app}\\"):
            target = build_dir / platform_name(ref.removeprefix("{app}\\")).replace("\\", "/")
        elif "{" in ref:
            missing.append(f"[{section}] {ref}: unresolved constant")
            continue
        else:
            ref = ref.replace("\\", "/")
            target = Path(ref) if Path(ref).is_absolute() else ISS.parent / ref
        found = any(target.parent.glob(target.name)) if "*" in target.name else target.exists()
        if not found:
            missing.append(f"[{section}] {ref} -> {target}")
    return missing


def test_iss_reads_the_icon_and_keeps_the_persons_configuration() -> None:
    text = ISS.read_text(encoding="utf-8")
    refs = iss_references(text, None)
    assert ("Setup", r"..\resources\icons\hvconsole.ico") in refs
    assert missing_references(None) == []
    assert re.search(r"^PrivilegesRequiredOverridesAllowed=dialog$", text, re.M)
    assert re.search(r"^PrivilegesRequired=lowest$", text, re.M)
    # Uninstalling never deletes the person's configuration (it deletes only what it installed).
    assert "[UninstallDelete]" not in text and "[Code]" not in text
    assert not re.search(r"\{(user|local)appdata\}", text, re.I)
    # A Start menu entry that runs the windowed program.
    assert re.search(r'^Name: "\{autoprograms\}\\[^"]+"; Filename: "\{app\}\\\{#AppExe\}"', text, re.M)
    assert ("Icons", r"{app}\hvconsolew.exe") in iss_references(text, ROOT / "dist" / "hvconsole")


def test_iss_reference_check_notices_a_missing_file(tmp_path: Path) -> None:
    (tmp_path / "hvconsole").mkdir()  # an empty build folder: nothing to install, no program
    missing = missing_references(tmp_path / "hvconsole")
    assert any(m.startswith("[Icons]") for m in missing), missing
    assert any(m.startswith("[Files]") for m in missing), missing


# --- the frozen application -------------------------------------------------------------------

@pytest.fixture(scope="module")
def frozen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build once into a temporary folder; returns the app folder (…/hvconsole)."""
    dist = tmp_path_factory.mktemp("frozen") / "dist"
    started = time.monotonic()
    result = subprocess.run([sys.executable, str(ROOT / "installer" / "build"), "--dist", str(dist)],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    app = dist / PROJECT["name"]
    last = result.stdout.strip().splitlines()[-1]
    print(f"\nPyInstaller build: {time.monotonic() - started:.1f} s; {last}")
    return app


def run_frozen(app: Path, home: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    program = app / (PROJECT["name"] + (".exe" if WINDOWS else ""))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(HOME=str(home), USERPROFILE=str(home), APPDATA=str(home / "AppData"),
               LOCALAPPDATA=str(home / "Local"), XDG_CONFIG_HOME=str(home / ".config"),
               XDG_DATA_HOME=str(home / ".local/share"), XDG_STATE_HOME=str(home / ".local/state"),
               XDG_CACHE_HOME=str(home / ".cache"), QT_QPA_PLATFORM="offscreen",
               PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring")
    return subprocess.run([str(program), *args], cwd=home, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.slow
def test_frozen_app_is_within_the_size_goal(frozen: Path) -> None:
    size = sum(p.stat().st_size for p in frozen.rglob("*") if p.is_file() and not p.is_symlink())
    print(f"\nbuilt size: {size / 1e6:.1f} MB")
    assert size / 1e6 < SIZE_GOAL_MB
    assert not list(frozen.rglob("*QtWebEngine*")) and not list(frozen.rglob("*QtQuick*"))
    assert (frozen / "_internal" / "resources" / "icons" / "hvconsole.png").is_file()


@pytest.mark.slow
def test_frozen_app_runs_outside_the_source_tree(frozen: Path, tmp_path: Path) -> None:
    result = run_frozen(frozen, tmp_path, "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{PROJECT['name']} {PROJECT['version']}"
    # Every command group is found by pkgutil inside the bundle (hidden imports collected).
    result = run_frozen(frozen, tmp_path, "--help")
    groups = set(next(a for a in build_parser()._actions if a.dest == "command").choices)
    listed = set(re.findall(r"^\s{4}(\w+)\s", result.stdout, re.M))
    assert groups <= listed, (groups - listed, result.stdout)


@pytest.mark.slow
def test_frozen_demo_smoke_signs_in_and_lists_vms(frozen: Path, tmp_path: Path) -> None:
    if not (ROOT / "lab" / "runner.py").exists():
        pytest.skip("the demo lab (lab/runner.py) is not in this tree yet")
    started = time.monotonic()
    result = run_frozen(frozen, tmp_path, "demo", "--smoke")
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    print(f"\ndemo --smoke from the frozen build: {elapsed:.2f} s")
    assert re.search(r"\b\d+\b.*\bVMs?\b", result.stdout), result.stdout


@pytest.mark.slow
def test_iss_files_exist_in_the_build_output(frozen: Path) -> None:
    refs = iss_references(ISS.read_text(encoding="utf-8"), frozen)
    assert {section for section, _ in refs} == {"Setup", "Files", "Icons"}
    assert missing_references(frozen) == []


def iss_section(text: str, name: str) -> list[str]:
    """The entries of one section, comments left out."""
    lines, inside = [], False
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("["):
            inside = line == f"[{name}]"
        elif inside and line and not line.startswith((";", "#")):
            lines.append(line)
    return lines


def test_iss_makes_the_machine_folder_writable_by_administrators_only() -> None:
    text = ISS.read_text(encoding="utf-8")
    (folder,) = [d for d in iss_section(text, "Dirs") if "{commonappdata}" in d]
    assert folder.startswith('Name: "{commonappdata}\\hvconsole";')
    permissions = re.search(r"Permissions: ([^;]+);", folder)
    assert permissions is not None
    assert set(permissions.group(1).split()) == {"admins-full", "system-full", "users-readexec"}
    # Only an all-users (administrator) install can create it; never removed by an uninstall.
    assert "Check: IsAdminInstallMode" in folder and "uninsneveruninstall" in folder
    # Permissions only add entries: what ProgramData passes down (Users may create files there)
    # is removed, and the folder is Administrators', not the installing account's.
    icacls = [r for r in iss_section(text, "Run") if r.startswith('Filename: "{sys}\\icacls.exe"')]
    assert len(icacls) == 2 and all("Check: IsAdminInstallMode" in r for r in icacls)
    assert all('""{commonappdata}\\hvconsole""' in r for r in icacls)
    restrict = icacls[0]
    assert "/inheritance:r" in restrict and "/grant:r" in restrict
    grants = re.findall(r"\*(S-1-5-[\d-]+):\(OI\)\(CI\)(\w+)", restrict)
    assert dict(grants) == {"S-1-5-18": "F", "S-1-5-32-544": "F", "S-1-5-32-545": "RX"}
    assert "/setowner *S-1-5-32-544" in icacls[1] and "/T" not in icacls[1]
    # Nothing anyone else could use to write there.
    assert not re.search(r"users-(modify|full|write)|everyone-|authusers-(modify|full|write)",
                         text, re.I)
    # The restriction runs during the install, before the console may be started from its end.
    run = iss_section(text, "Run")
    assert run.index(icacls[1]) < next(i for i, r in enumerate(run) if "postinstall" in r)

"""The Windows workflow (.github/workflows/windows.yml), held to its rules without running it:
every action pinned to a commit (its version in a comment) or a full version tag; the steps the
Windows side needs (Pester in PowerShell 7 and in Windows PowerShell 5.1, the PyInstaller build,
the frozen app's --version and demo --smoke, Inno Setup, the installer artifact) are there; every
repository path a step runs exists; and every native command's exit code is checked, since a pwsh
step stops on PowerShell errors but looks only at the last native exit code."""
from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "windows.yml"
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@(?P<ref>[0-9a-f]{40}|v\d+\.\d+\.\d+)$")
# Repository paths in run scripts: a top-level folder or file of this repository, then a path.
REPO_PATH = re.compile(r"(?<![\w./\\-])((?:tests|tools|installer|resources|console|lab|ui|hvconsole)"
                       r"[/\\][\w./\\-]*[\w-]|dev\.py)")
# A line that runs a native program: an executable by name, or `& $variable`.
NATIVE = re.compile(r"^\s*(?:\$\w+\s*=\s*)?(?:python|pwsh|powershell|choco|iscc|&\s*\$\w+)\b", re.I)


@cache
def workflow() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    return data


def steps() -> list[dict[str, Any]]:
    return [step for job in workflow()["jobs"].values() for step in job["steps"]]


def runs() -> list[tuple[str, str]]:
    return [(step.get("name", "?"), step["run"]) for step in steps() if "run" in step]


def step_running(command: str, *words: str) -> dict[str, Any]:
    """The one step with a line that runs `command` (first on the line, or after `$x = `) with
    these words after it, in order."""
    pattern = re.compile(r"^\s*(?:\$\w+\s*=\s*)?" + re.escape(command) + r"(?=\s|$)"
                         + "".join(".*" + re.escape(w) for w in words), re.I)
    found = [s for s in steps()
             if "run" in s and any(pattern.search(line) for line in s["run"].splitlines())]
    assert len(found) == 1, (f"expected one step running {command} {' '.join(words)}, "
                             f"found {[s.get('name') for s in found]}")
    return found[0]


def test_the_workflow_triggers_and_runs_on_windows_2022_in_pwsh() -> None:
    data = workflow()
    triggers = data.get("on", data.get(True))  # YAML 1.1 reads a bare `on` as true
    assert {"push", "pull_request"} <= set(triggers)
    assert data["permissions"] == {"contents": "read"}
    for job in data["jobs"].values():
        assert job["runs-on"] == "windows-2022"
        assert job["defaults"]["run"]["shell"] == "pwsh"


def test_every_action_is_pinned_to_a_commit_or_a_full_version() -> None:
    uses = [step["uses"] for step in steps() if "uses" in step]
    assert uses, "the workflow uses no action"
    loose = [u for u in uses if not PINNED.match(u)]
    assert loose == [], f"pin these to a commit SHA or a full vX.Y.Z tag: {loose}"


def test_a_commit_pin_names_its_version_in_a_comment() -> None:
    lines = [line for line in WORKFLOW.read_text(encoding="utf-8").splitlines()
             if re.search(r"\buses:\s*\S+@[0-9a-f]{40}\b", line)]
    assert lines
    bare = [line.strip() for line in lines if not re.search(r"#\s*v\d+\.\d+\.\d+\s*$", line)]
    assert bare == [], f"say which version each SHA is: {bare}"


def test_checkout_and_python_3_11_with_the_pip_cache() -> None:
    actions = {step["uses"].split("@")[0]: step for step in steps() if "uses" in step}
    assert "actions/checkout" in actions
    python = actions["actions/setup-python"]["with"]
    assert str(python["python-version"]) == "3.11"
    assert python["cache"] == "pip"
    assert (ROOT / python["cache-dependency-path"]).is_file()
    assert steps()[0]["uses"].startswith("actions/checkout@")


def test_pester_runs_in_powershell_7_and_in_windows_powershell_5_1() -> None:
    for shell in ("pwsh", "powershell"):
        step = step_running(shell, "-NonInteractive", "-File", "tests/powershell/pester/Run-Pester.ps1")
        assert "$LASTEXITCODE" in step["run"]
    assert "-ExecutionPolicy Bypass" in step_running("powershell", "Run-Pester.ps1")["run"]
    step_running("python", "tools/pester_cases.py", "--check")


def test_the_app_is_built_run_frozen_and_packed_into_an_uploaded_installer() -> None:
    step_running("python", "installer/build")
    frozen = step_running("& $app", "--version")
    assert "demo --smoke" in frozen["run"]
    assert frozen["env"]["QT_QPA_PLATFORM"] == "offscreen"
    installer = step_running("& $iscc", "installer\\hvconsole.iss")
    assert re.search(r"choco install innosetup --version \$env:INNO_SETUP_VERSION", installer["run"])
    assert re.fullmatch(r"\d+\.\d+\.\d+", str(workflow()["jobs"]["windows"]["env"]["INNO_SETUP_VERSION"]))
    uploads = [s for s in steps() if s.get("uses", "").startswith("actions/upload-artifact@")]
    setup = [s for s in uploads if s["with"]["path"].endswith("-setup.exe")]
    assert len(setup) == 1 and setup[0]["with"]["if-no-files-found"] == "error"
    # The installer is compiled after the build and the frozen run, and uploaded last.
    names = [s.get("name") for s in steps()]
    order = [names.index(s.get("name")) for s in
             (step_running("python", "installer/build"), frozen, installer, setup[0])]
    assert order == sorted(order)


@pytest.mark.parametrize(("name", "script"), runs(), ids=[name for name, _ in runs()])
def test_every_repository_path_a_step_runs_exists(name: str, script: str) -> None:
    for path in REPO_PATH.findall(script):
        assert (ROOT / path.replace("\\", "/")).exists(), f"{name}: {path} is not in the repository"


@pytest.mark.parametrize(("name", "script"), runs(), ids=[name for name, _ in runs()])
def test_every_native_command_has_its_exit_code_checked(name: str, script: str) -> None:
    lines = [line for line in script.splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if NATIVE.match(line):
            following = lines[i + 1] if i + 1 < len(lines) else ""
            assert "$LASTEXITCODE" in following, f"{name}: no exit code check after `{line.strip()}`"


def test_the_paths_the_artifacts_name_are_where_the_build_writes() -> None:
    iss = (ROOT / "installer" / "hvconsole.iss").read_text(encoding="utf-8")
    assert re.search(r"^OutputDir=\.\.\\dist$", iss, re.M)
    assert re.search(r"^OutputBaseFilename=hvconsole-\{#AppVersion\}-setup$", iss, re.M)
    frozen = step_running("& $app", "--version")["run"]
    assert "dist\\hvconsole\\hvconsole.exe" in frozen

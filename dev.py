#!/usr/bin/env python3
"""Set-up and everyday commands, with nothing but Python 3.11+ on the machine.

    python3 dev.py demo      the console against the built-in lab (no Windows needed)
    python3 dev.py test      the whole test suite
    python3 dev.py lint      ruff, mypy (strict on console/) and the import contracts
    python3 dev.py bench     the benchmarks under benchmarks/

The first call creates `.venv/` beside this file and installs the project into it; later calls
reinstall only when pyproject.toml changed.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".installed"


def ensure_venv() -> None:
    # Run by whatever python3 the machine has, so the version check stays (not dead code).
    if sys.version_info < (3, 11):  # noqa: UP036
        sys.exit(f"Python 3.11 or newer is needed; this is {sys.version.split()[0]}.")
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted and PYTHON.exists():
        return
    if not PYTHON.exists():
        print(f"Creating {VENV} ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("Installing the console and its test tools into .venv ...", flush=True)
    subprocess.run([str(PYTHON), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    subprocess.run([str(PYTHON), "-m", "pip", "install", "-q", "-e", f"{ROOT}[test]"], check=True,
                   env=build_env())
    STAMP.write_text(wanted)


def build_env() -> dict[str, str]:
    """pip's environment: the gssapi and krb5 packages (pyspnego[kerberos], Linux and macOS) have
    no wheels there and are compiled; without debug information (-g0) their modules take 9 MB
    instead of 26, which the frozen app carries (tests/test_installer.py's size goal)."""
    return dict(os.environ, CFLAGS=f"{os.environ.get('CFLAGS', '')} -g0".strip())


def lint() -> int:
    """Each checker in turn, all of them run; non-zero if any finds something."""
    failed = []
    for name, cmd in (("ruff", [str(BIN / "ruff"), "check", "."]),
                      ("mypy", [str(BIN / "mypy")]),
                      ("lint-imports", [str(BIN / "lint-imports")])):
        print(f"== {name}", flush=True)
        if subprocess.call(cmd, cwd=ROOT) != 0:
            failed.append(name)
    if failed:
        print(f"lint failed: {', '.join(failed)}", flush=True)
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"demo", "test", "lint", "bench", "shell"}:
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    ensure_venv()
    if command == "demo":
        cmd = [str(BIN / "hvconsole"), "demo", *rest]
    elif command == "lint":
        return lint()
    elif command == "test":
        cmd = [str(PYTHON), "-m", "pytest", *rest]
    elif command == "bench":
        cmd = [str(PYTHON), "-m", "pytest", "benchmarks", "-o", "python_files=bench_*.py", "-s", *rest]
    else:
        cmd = [str(PYTHON), *rest]
    return subprocess.call(cmd, cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

from __future__ import annotations

import subprocess
import sys

from console import __version__
from console.cli import main


def test_version(capsys) -> None:
    try:
        main(["--version"])
    except SystemExit as exit_:
        assert exit_.code == 0
    assert __version__ in capsys.readouterr().out


def test_console_script_runs_without_qt() -> None:
    code = ("import sys; from console.cli import main; main(['--help']) if False else None; "
            "import console.cli, console.policy, console.audit; "
            "assert 'PySide6' not in sys.modules, sorted(m for m in sys.modules if 'PySide' in m)")
    subprocess.run([sys.executable, "-c", code], check=True)

"""The core never imports Qt: checked by import-linter's contract in pyproject.toml."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_contract_holds() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "The core never imports Qt KEPT" in result.stdout


def test_no_qt_name_anywhere_in_core_source() -> None:
    # Belt and braces: import-linter sees only static imports; this also catches
    # importlib.import_module("PySide6...") and __import__ strings.
    offenders = []
    for path in (ROOT / "console").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and node.value.startswith(("PySide6", "shiboken6")):
                offenders.append(f"{path}:{node.lineno}")
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                if any(n.split(".")[0] in {"PySide6", "shiboken6", "ui"} for n in names):
                    offenders.append(f"{path}:{node.lineno}")
    assert offenders == []

"""The core never imports Qt, nor the GUI layer that imports it.

Three checks, each seeing what the others cannot:
- import-linter's contract (pyproject.toml): the static imports between modules, directly or
  through other modules of console/ and ui/;
- the source scan below: every import statement of console/, and a module of ui/ or of Qt named in
  a string (importlib.import_module("ui.main"), __import__, a name kept for later), which no import
  graph contains;
- importing every module of console/ in a fresh interpreter: Qt reached through anything else (a
  third-party package, a module outside the tree), which neither of the others follows.
Each is shown to fail on a violation planted in a copy of the tree.
"""
from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# What the core must not reach: Qt, the desktop console, the lab and the application around them.
FORBIDDEN = {"PySide6", "shiboken6", "ui", "lab", "hvconsole"}
QT = ("PySide6", "shiboken6")
# Calls that import a module given by name.
IMPORTING_CALLS = {"import_module", "__import__", "find_spec", "resolve_name", "run_module"}
def _gui_modules(root: Path) -> set[str]:
    """ui's modules by dotted name; "ui" alone is also a configuration table's name, so it counts
    only where a call imports it."""
    return {"ui." + ".".join(p.relative_to(root / "ui").with_suffix("").parts)
            for p in (root / "ui").rglob("*.py") if p.name != "__init__.py"}


def _names_forbidden(text: str, gui_modules: set[str]) -> bool:
    """A string that names Qt or a module of the GUI layer ("ui.main", "ui.main:start")."""
    return text.startswith(QT) or text.split(":")[0] in gui_modules


def forbidden_references(source: str, gui_modules: set[str]) -> list[tuple[int, str]]:
    """(line, name) for each way the source reaches Qt or ui/: an import statement, or the
    module's name in a string. A string that only looks alike ("ui.refresh_seconds", a config key)
    names no module of ui/ and is left alone."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] in FORBIDDEN]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                and node.module.split(".")[0] in FORBIDDEN:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and _names_forbidden(node.value, gui_modules):
            found.append((node.lineno, node.value))
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name not in IMPORTING_CALLS:
                continue
            for arg in [*node.args, *(k.value for k in node.keywords)]:
                # A name built at run time (f"ui.{x}"): its leading text decides.
                head = arg.values[0] if isinstance(arg, ast.JoinedStr) and arg.values else arg
                if isinstance(head, ast.Constant) and isinstance(head.value, str) \
                        and re.split(r"[.:]", head.value)[0] in FORBIDDEN:
                    found.append((node.lineno, head.value))
    return sorted(set(found))


def scan(root: Path) -> set[tuple[str, str]]:
    """(path under root, name) for every reference to Qt or ui/ in console/'s source."""
    gui = _gui_modules(root)
    return {(path.relative_to(root).as_posix(), name)
            for path in sorted((root / "console").rglob("*.py"))
            for _, name in forbidden_references(path.read_text(encoding="utf-8"), gui)}


_IMPORT_ALL = """
import importlib, json, pkgutil, sys
import console
names = ["console"] + [m.name for m in pkgutil.walk_packages(console.__path__, "console.")]
for name in names:
    importlib.import_module(name)
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in %r)))
"""


def loaded_by_the_core(root: Path) -> list[str]:
    """The Qt and ui/ modules in sys.modules after importing every module of root/console."""
    result = subprocess.run([sys.executable, "-c", _IMPORT_ALL % sorted(FORBIDDEN)], cwd=root,
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(root)})
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout))


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of console/ and ui/ to plant violations in (resources/ as it is)."""
    for part in ("console", "ui"):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "resources").symlink_to(ROOT / "resources", target_is_directory=True)
    return tmp_path


# --- the real tree --------------------------------------------------------------------------------

def test_import_contract_holds() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "The core never imports Qt KEPT" in result.stdout


def test_the_core_names_neither_qt_nor_ui() -> None:
    assert scan(ROOT) == set(), "console/ reaches Qt, ui/ or the lab"


def test_importing_every_core_module_loads_no_qt() -> None:
    assert loaded_by_the_core(ROOT) == []


# --- each check fails on a planted violation ------------------------------------------------------

@pytest.mark.parametrize("source", [
    "import ui",
    "import ui.main as gui",
    "from ui.main import start",
    "from ui import main",
    "import PySide6.QtCore",
    "from PySide6 import QtWidgets",
    "from shiboken6 import isValid",
    "import importlib\nimportlib.import_module('ui.main')",
    "from importlib import import_module\ngui = import_module('ui.models')",
    "__import__('PySide6.QtWidgets')",
    "import importlib\nimportlib.import_module(f'ui.{1}')",
    "import importlib\nimportlib.import_module('.main', package='ui')",
    "import pkgutil\npkgutil.resolve_name('ui.main:start')",
    "GUI = 'ui.main'  # imported later, by name",
])
def test_the_source_scan_finds_each_way_in(source: str) -> None:
    assert forbidden_references(source, _gui_modules(ROOT)), source


@pytest.mark.parametrize("source", [
    "data.get('ui', {})",  # a configuration table's name
    "raise ValueError('ui.refresh_seconds must be 5 or more')",
    "import uuid\nimport console.ui_text",
])
def test_the_source_scan_leaves_lookalikes_alone(source: str) -> None:
    assert forbidden_references(source, _gui_modules(ROOT)) == []


def test_the_source_scan_finds_a_module_planted_in_the_core(tree: Path) -> None:
    assert scan(tree) == scan(ROOT)
    (tree / "console" / "planted.py").write_text("import importlib\n\n\ndef window() -> object:\n"
                                                 "    return importlib.import_module('ui.app')\n")
    assert scan(tree) - scan(ROOT) == {("console/planted.py", "ui.app")}


def test_importing_the_core_finds_qt_reached_through_another_package(tree: Path) -> None:
    # A package outside both trees that imports Qt: no import graph of console/ and ui/ holds its
    # import, and console/ names nothing forbidden.
    (tree / "helper_pkg").mkdir()
    (tree / "helper_pkg" / "__init__.py").write_text("import PySide6.QtCore  # noqa: F401\n")
    (tree / "console" / "planted.py").write_text("import helper_pkg  # noqa: F401\n")
    assert scan(tree) == scan(ROOT)
    assert "PySide6.QtCore" in loaded_by_the_core(tree)


def test_importing_the_core_finds_ui_loaded_at_import_time(tree: Path) -> None:
    (tree / "console" / "planted.py").write_text(textwrap.dedent("""\
        import importlib

        _name = "".join(["u", "i.app"])  # no string names it
        importlib.import_module(_name)
    """))
    assert scan(tree) == scan(ROOT)
    assert "ui.app" in loaded_by_the_core(tree)

"""Where the console finds its bundled resources, in a checkout and in a frozen build."""
from __future__ import annotations

import sys
from pathlib import Path


def resources_dir() -> Path:
    """The `resources/` folder: next to the package in a checkout, inside the bundle when frozen."""
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        return Path(bundle) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


RESOURCES = resources_dir()
# The documentation: docs/ of a checkout (the README beside it), or the bundle's docs/ (the
# README copied in by installer/hvconsole.spec).
DOCS = RESOURCES.parent / "docs"
README = DOCS / "README.md" if (DOCS / "README.md").exists() else RESOURCES.parent / "README.md"
POWERSHELL = RESOURCES / "powershell"
LAB_DATA = RESOURCES / "lab"

"""Helpers for tests that need a real service (a directory server, a port, a package)."""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
ROOT = Path(__file__).resolve().parent.parent


def tool(name: str) -> ModuleType:
    """tools/<name>.py, which is a script and not a package, loaded as module `name` (registered
    in sys.modules first: its dataclasses look their module up)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def service_missing(reason: str) -> None:
    """A service a test needs is missing: a failure in CI, a skip with the reason elsewhere."""
    if IN_CI:
        pytest.fail(f"required service missing in CI: {reason}", pytrace=False)
    pytest.skip(reason)

"""Helpers for tests that need a real service (a directory server, a port, a package)."""
from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def service_missing(reason: str) -> None:
    """A service a test needs is missing: a failure in CI, a skip with the reason elsewhere."""
    if IN_CI:
        pytest.fail(f"required service missing in CI: {reason}", pytrace=False)
    pytest.skip(reason)

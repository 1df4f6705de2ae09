"""Shared test set-up. Qt runs offscreen; tests that need a QApplication are marked `gui`."""
from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Never touch the person's real keyring or configuration from a test.
os.environ.setdefault("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=60)
settings.load_profile("default")

GUI_FIXTURES = {"qtbot", "qapp", "qtmodeltester"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if GUI_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.gui)

# The Samba AD DC session fixtures (real directory servers for the sign-in tests): the
# directory's own domain, and a second one configured as a trusted domain.
from tests.samba import samba_dc, samba_other_dc  # noqa: E402, F401

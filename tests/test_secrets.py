"""Remembered passwords: a missing or switched-off store is reported with its reason, a working
store round-trips, and a store that fails never crashes sign-in."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail, null
from keyring.errors import KeyringLocked, PasswordDeleteError

from console import secrets


class MemoryKeyring(KeyringBackend):
    """A real backend that keeps passwords in a dict (a stand-in for Credential Manager)."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.store.pop((service, username), None) is None:
            raise PasswordDeleteError("no such password")


class LockedKeyring(KeyringBackend):
    """A store that is present but refuses every call (a locked collection, a broken D-Bus)."""

    priority = 1  # type: ignore[assignment]

    def get_password(self, service: str, username: str) -> str | None:
        raise KeyringLocked("Failed to unlock the collection!")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise KeyringLocked("Failed to unlock the collection!")

    def delete_password(self, service: str, username: str) -> None:
        raise RuntimeError("D-Bus connection lost")


@pytest.fixture
def use() -> Iterator:
    before = keyring.get_keyring()
    yield keyring.set_keyring
    keyring.set_keyring(before)


def test_null_backend_is_unavailable_with_its_reason(use) -> None:
    use(null.Keyring())
    available, reason = secrets.credential_store_available()
    assert not available and "turned off" in reason
    assert secrets.remember("LAB\\henry", "henry-demo") is False
    assert secrets.recall("LAB\\henry") is None


def test_missing_store_is_unavailable_with_its_reason(use) -> None:
    use(fail.Keyring())
    available, reason = secrets.credential_store_available()
    assert not available and "No credential store was found" in reason
    assert secrets.remember("LAB\\henry", "henry-demo") is False
    assert secrets.forget("LAB\\henry") is False


def test_a_working_store_remembers_recalls_and_forgets(use) -> None:
    store = MemoryKeyring()
    use(store)
    assert secrets.credential_store_available() == (True, store.name)
    assert secrets.remember("LAB\\henry", "henry-demo")
    assert store.store == {(secrets.SERVICE, "LAB\\henry"): "henry-demo"}
    assert secrets.recall("LAB\\henry") == "henry-demo"
    assert secrets.recall("LAB\\olivia") is None
    assert secrets.forget("LAB\\henry") and store.store == {}
    assert secrets.forget("LAB\\henry")  # nothing left: still True, no error
    assert secrets.remember("", "x") is False and secrets.remember("LAB\\henry", "") is False


def test_a_failing_store_never_crashes_and_leaves_a_warning(use, caplog) -> None:
    use(LockedKeyring())
    assert secrets.credential_store_available()[0] is True  # present; it fails only when used
    with caplog.at_level(logging.WARNING, logger="console.secrets"):
        assert secrets.remember("LAB\\henry", "henry-demo") is False
        assert secrets.recall("LAB\\henry") is None
        assert secrets.forget("LAB\\henry") is False
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 3 and all("KeyringLocked" in m for m in messages)
    assert not any("henry-demo" in m for m in messages)


def test_a_misconfigured_keyring_is_unavailable_not_a_crash() -> None:
    # keyring reads PYTHON_KEYRING_BACKEND when it first starts: a fresh process shows the effect.
    env = dict(os.environ, PYTHON_KEYRING_BACKEND="no.such.module.Keyring")
    code = ("from console import secrets; ok, why = secrets.credential_store_available(); "
            "print(ok); print(why); print(secrets.remember('u', 'p'))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out[0] == "False" and "could not be opened" in out[1] and out[2] == "False"

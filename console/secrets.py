"""Remembered passwords, in the platform's credential store (Windows Credential Manager, macOS
Keychain, Secret Service / KWallet) through `keyring`, and only when the person ticks "remember me".

A headless Linux box has no store: keyring then picks its `fail` backend (every call raises) or is
configured with the `null` one (every call does nothing). `credential_store_available()` says so,
with a reason the GUI shows on the disabled "remember me" box. None of these functions raises:
a store that fails becomes a logged warning and False/None, and the person types the password.
"""
from __future__ import annotations

import logging

import keyring
from keyring.backend import KeyringBackend
from keyring.backends import chainer, fail, null

from .logs import redact

SERVICE = "hvconsole"
log = logging.getLogger(__name__)


def credential_store_available() -> tuple[bool, str]:
    """(True, store name) when passwords can be remembered, else (False, the reason why not)."""
    try:
        backend = keyring.get_keyring()
    except Exception as exc:  # noqa: BLE001 - a broken keyring configuration must not stop sign-in
        return False, f"The credential store could not be opened ({_describe(exc)})."
    return _usable(backend)


def _usable(backend: KeyringBackend) -> tuple[bool, str]:
    if isinstance(backend, fail.Keyring):
        return False, ("No credential store was found on this computer (such as Windows Credential "
                       "Manager or a Secret Service keyring), so passwords are kept for this "
                       "session only.")
    if isinstance(backend, null.Keyring):
        return False, ("The credential store is turned off on this computer (keyring's null "
                       "backend), so passwords are kept for this session only.")
    if isinstance(backend, chainer.ChainerBackend):
        usable = [b for b in backend.backends if _usable(b)[0]]
        if not usable:
            return False, "No usable credential store was found, so passwords are kept for this session only."
        return True, ", ".join(_name(b) for b in usable)
    return True, _name(backend)


def _name(backend: KeyringBackend) -> str:
    return str(getattr(backend, "name", type(backend).__name__))


def _describe(exc: BaseException) -> str:
    # keyring errors rarely carry a secret, but the message goes through the log's filter anyway.
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def remember(user: str, password: str) -> bool:
    """Store the password for `user`; False (and a warning in the log) when the store refuses."""
    redact(password)
    if not user or not password or not credential_store_available()[0]:
        return False
    try:
        keyring.set_password(SERVICE, user, password)
    except Exception as exc:  # noqa: BLE001 - any store failure means "not remembered", nothing more
        log.warning("The password of %s could not be remembered: %s", user, _describe(exc))
        return False
    return True


def recall(user: str) -> str | None:
    """The remembered password of `user`, or None (none stored, or no usable store)."""
    if not user or not credential_store_available()[0]:
        return None
    try:
        password = keyring.get_password(SERVICE, user)
    except Exception as exc:  # noqa: BLE001
        log.warning("The remembered password of %s could not be read: %s", user, _describe(exc))
        return None
    if password:
        redact(password)
    return password or None


def forget(user: str) -> bool:
    """Remove the remembered password of `user`; True when none is left behind."""
    if not user or not credential_store_available()[0]:
        return False
    try:
        if keyring.get_password(SERVICE, user) is None:
            return True
        keyring.delete_password(SERVICE, user)
    except Exception as exc:  # noqa: BLE001
        log.warning("The remembered password of %s could not be removed: %s", user, _describe(exc))
        return False
    return True

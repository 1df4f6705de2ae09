"""The network's failures as typed errors, one mapping for both endpoints' clients.
"""
from __future__ import annotations

import re

import requests

from ..config import HostConfig
from ..errors import (
    CertificateUntrusted, HostError, HostTimeout, HostUnreachable,
)


def network_error(name: str, config: HostConfig, error: BaseException) -> HostError | None:
    """The network's failures as typed errors, one mapping for both endpoints' clients (None:
    not a network failure). SSLError and ConnectTimeout are ConnectionErrors: they come first."""
    if isinstance(error, requests.exceptions.SSLError):
        return CertificateUntrusted(
            f"{name}'s certificate is not trusted ({_ssl_reason(error)}); check the host's "
            f"address and its CA file in the configuration.", host=name)
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return HostUnreachable(f"{name} did not accept a connection within "
                               f"{config.timeout:g} s.", host=name)
    if isinstance(error, (requests.exceptions.ReadTimeout, TimeoutError)):
        return HostTimeout(f"{name} did not answer within {config.timeout:g} s.", host=name)
    if isinstance(error, (requests.exceptions.ConnectionError, ConnectionError)):
        return HostUnreachable(f"{name} cannot be reached at {config.url} "
                               f"({_connection_reason(error)}).", host=name)
    return None


def clixml_text(stderr: bytes) -> str:
    """Readable text of PowerShell's CLIXML error stream (or the raw text)."""
    text = stderr.decode("utf-8", errors="replace")
    if not text.startswith("#< CLIXML"):
        return text.strip()
    strings = re.findall(r"<S S=\"Error\">(.*?)</S>", text, flags=re.S)
    return "".join(strings).replace("_x000D__x000A_", " ").strip() or "an error without text"


def _ssl_reason(error: Exception) -> str:
    text = str(error)
    for reason in ("certificate verify failed", "hostname mismatch", "certificate has expired",
                   "self-signed certificate", "unable to get local issuer certificate",
                   "IP address mismatch", "wrong version number"):
        if reason.lower() in text.lower():
            return reason
    return "TLS handshake failed"


def _connection_reason(error: Exception) -> str:
    text = str(error).lower()
    if "refused" in text:
        return "connection refused: is WinRM listening on that port?"
    if "reset" in text or "aborted" in text or "remote end closed" in text:
        return "the connection was dropped"
    if "name or service not known" in text or "getaddrinfo" in text or "nodename" in text:
        return "the name does not resolve"
    return "no connection"

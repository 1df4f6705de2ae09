"""The default endpoint over WinRS (administrators): one WinRS command per operation.

Each operation is ONE WinRS command built by `console.scripts.command` (powershell.exe with the
fixed script, its parameters a base64 JSON document, on its standard input) whose stdout is
exactly one JSON document (docs/host-operations.md). pywinrm's `Protocol` is used directly:
`Session.run_ps` opens a new TCP connection and NTLM handshake per call, while a kept shell costs
four requests a command (command, its input, output, clean-up).

Reads share one kept connection and shell per host (reopened once when broken). Each action gets
its own connection and shell: a guest shutdown that takes minutes never holds up a refresh, and an
action is never retried. When an action outlasts the client's timeout the outcome is "pending",
not failed: the host may still finish it, and `confirm` polls the VM's state.

Credentials: NTLM with message encryption over HTTP, TLS over HTTPS (certificates validated);
Kerberos (a ticket: single sign-on, or a password with allow_ntlm = false) through pyspnego, as
the PSRP clients, with the same WinRM message encryption; never Basic (it works only for local
accounts). The first 401
from any host closes the shared CredentialGate: 50 hosts refreshing with an old password would
lock the account, so every other call stops until the person enters the password again.
"""
from __future__ import annotations

import json
import math
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import requests
import winrm.transport
from pypsrp.negotiate import HTTPNegotiateAuth
from winrm.encryption import Encryption
from winrm.exceptions import (
    InvalidCredentialsError, WinRMError, WinRMOperationTimeoutError, WinRMTransportError,
    WSManFaultError,
)
from winrm.protocol import Protocol as WinRMProtocol

from .. import scripts
from ..config import HostConfig
from ..errors import (
    CredentialsRejected, HostAccessDenied,
    HostError, HostTimeout, HostUnreachable,
)
from ..text import one_line
from .client import confirm
from ..kerberos import KERBEROS_ERRORS, first_token, host_ticket_error
from .credentials import CredentialGate, Credentials, auth_for, check_sso
from .network import clixml_text, network_error
from .operations import ScriptOperations
from .outcomes import ActionOutcome, answer_data, log_warning


T = TypeVar("T")


_ACCESS_DENIED = 5  # WSManFault code of ERROR_ACCESS_DENIED


_UTF8 = 65001  # shell code page: VM names and paths come back in any script


_KEEP_ALIVE_IDLE = 60.0  # a host drops an idle HTTP connection; start a fresh one before that


class _Pending(Exception):
    """The command was sent, but no answer came before the deadline (or the connection broke)."""

    def __init__(self, cause: HostError) -> None:
        super().__init__(str(cause))
        self.cause = cause


class HostClient(ScriptOperations):
    """One Hyper-V host. Thread safe: reads share the kept shell one at a time."""

    def __init__(self, config: HostConfig, credentials: Credentials | None = None,
                 gate: CredentialGate | None = None, keep_shell: bool = True) -> None:
        self.config = config
        self.name = config.name
        self.gate = gate or CredentialGate(credentials)
        if self.gate.credentials is None and credentials is not None:
            self.gate.reopen(credentials)
        self._credentials = credentials or self.gate.credentials
        self._generation = self.gate.generation
        self.keep_shell = keep_shell
        self._lock = threading.Lock()  # the kept protocol and shell
        self._protocol: WinRMProtocol | None = None
        self._shell_id: str | None = None
        self._last_used = 0.0
        self.transport = self._transport_name()
        # "kerberos" or "ntlm" once a connection is made: NTLM is shown in the host's status.
        self.auth_protocol: str | None = None

    # --- operations: ScriptOperations, over _read_operation and _act_operation ---------------

    def confirm(self, vm_id: str, expected_states: Iterable[str], limit: float = 120.0,
                interval: float = 1.0) -> ActionOutcome:
        """Poll the VM's state until it is one of `expected_states` or `limit` seconds pass."""
        return confirm(self, vm_id, expected_states, limit, interval)

    def close(self) -> None:
        """Delete the kept shell (best effort: the host reaps idle shells anyway)."""
        with self._lock:
            self._drop_kept(delete_shell=True)

    # --- reads: the kept shell, reopened once when broken -------------------------------------

    def _read_operation(self, operation: str, params: dict[str, Any]) -> Any:
        command = scripts.command(operation, params)  # InvalidParameter before sending
        self._before_call()
        deadline = time.monotonic() + self.config.timeout
        if not self.keep_shell:
            return self._document(self._fresh_call(command, deadline, action=False))
        with self._lock:
            for attempt in (1, 2):
                try:
                    out = self._kept_call(command, deadline)
                    break
                except HostError as error:
                    self._drop_kept(delete_shell=not isinstance(error, _SILENT))
                    # A timeout or a refusal is not cured by a new shell; a broken one is.
                    if attempt == 2 or not _broken(error) or time.monotonic() >= deadline:
                        raise
        return self._document(out)

    def _kept_call(self, command: tuple[str, list[str], str],
                   deadline: float) -> tuple[bytes, bytes, int]:
        now = time.monotonic()
        if self._protocol is not None and now - self._last_used > _KEEP_ALIVE_IDLE:
            # The host has likely closed the idle connection, and with it the NTLM context.
            self._protocol.transport.close_session()
        if self._protocol is None:
            self._protocol = self._new_protocol()
        protocol = self._protocol
        try:
            if self._shell_id is None:
                self._shell_id = self._guard(protocol, deadline, lambda: protocol.open_shell(
                    noprofile=True, codepage=_UTF8))
            shell_id = self._shell_id
            command_id = self._start(protocol, shell_id, command, deadline)
            out = self._receive(protocol, shell_id, command_id, deadline)
            self._guard(protocol, deadline, lambda: protocol.cleanup_command(shell_id, command_id))
            return out
        finally:
            self._last_used = time.monotonic()

    def _drop_kept(self, delete_shell: bool) -> None:
        protocol, shell_id = self._protocol, self._shell_id
        self._protocol, self._shell_id = None, None
        if protocol is None:
            return
        try:
            if delete_shell and shell_id is not None:
                protocol.transport.read_timeout_sec = 2
                protocol.close_shell(shell_id)
        except Exception:  # noqa: BLE001 - best effort; the host reaps abandoned shells
            pass
        finally:
            protocol.transport.close_session()

    # --- actions: a connection and shell of their own, never retried ---------------------------

    def _act_operation(self, operation: str, params: dict[str, Any], vm_id: str) -> ActionOutcome:
        command = scripts.command(operation, params)  # InvalidParameter before sending
        self._before_call()
        deadline = time.monotonic() + self.config.timeout
        try:
            out = self._fresh_call(command, deadline, action=True)
        except _Pending as pending:
            return ActionOutcome.pending(self.name, operation, vm_id, self.config.timeout,
                                         str(pending.cause))
        data = self._document(out, vm_id)
        return ActionOutcome.done(data, f"{operation} {params.get('action')} done on {self.name}.",
                                  warning=log_warning(self.name, _answer(out[0])))

    def _start(self, protocol: WinRMProtocol, shell_id: str, command: tuple[str, list[str], str],
               deadline: float) -> str:
        """Start powershell.exe and hand it the script on its standard input."""
        executable, args, stdin = command
        command_id: str = self._guard(protocol, deadline,
                                      lambda: protocol.run_command(shell_id, executable, args))
        self._guard(protocol, deadline, lambda: protocol.send_command_input(
            shell_id, command_id, stdin.encode("ascii"), end=True))
        return command_id

    def _fresh_call(self, command: tuple[str, list[str], str], deadline: float,
                    action: bool) -> tuple[bytes, bytes, int]:
        """One shell for one command. For an action, once the command is sent, a timeout or a
        broken connection means "pending", and the shell is left alone: deleting it would stop
        the cmdlet mid-way."""
        protocol = self._new_protocol()
        shell_id: str | None = None
        sent = False
        try:
            shell_id = self._guard(protocol, deadline, lambda: protocol.open_shell(
                noprofile=True, codepage=_UTF8))
            sid = shell_id
            sent = True
            command_id = self._start(protocol, sid, command, deadline)
            out = self._receive(protocol, sid, command_id, deadline)
        except (HostTimeout, HostUnreachable) as error:
            if action and sent:
                protocol.transport.close_session()
                raise _Pending(error) from error
            self._discard(protocol, shell_id, error)
            raise
        except BaseException as error:
            self._discard(protocol, shell_id, error)
            raise
        try:
            self._guard(protocol, deadline, lambda: protocol.cleanup_command(sid, command_id))
            self._guard(protocol, deadline, lambda: protocol.close_shell(sid))
        except HostError:
            pass  # the answer is in hand; a failed clean-up is the host's idle timeout's job
        finally:
            protocol.transport.close_session()
        return out

    def _discard(self, protocol: WinRMProtocol, shell_id: str | None, error: BaseException) -> None:
        try:
            if shell_id is not None and not isinstance(error, _SILENT):
                protocol.transport.read_timeout_sec = 2
                protocol.close_shell(shell_id)
        except Exception:  # noqa: BLE001 - best effort
            pass
        finally:
            protocol.transport.close_session()

    # --- the wire ---------------------------------------------------------------------------

    def _before_call(self) -> None:
        self.gate.check()
        if self.gate.generation != self._generation:
            # New credentials: the kept connection authenticated with the old ones.
            with self._lock:
                self._generation = self.gate.generation
                self._credentials = self.gate.credentials
                self._drop_kept(delete_shell=False)

    def _transport_name(self) -> str:
        """"kerberos": pyspnego's Kerberos through _KerberosTransport (with a Windows ticket, SSPI's
        Negotiate); "ntlm": pywinrm's NTLM, for a password over negotiate or ntlm, as before."""
        credentials = self._credentials
        if credentials is not None and (credentials.sso
                                        or auth_for(self.config, credentials) == "kerberos"):
            return "kerberos"
        return "ntlm"

    def _new_protocol(self) -> WinRMProtocol:
        credentials = self._credentials
        if credentials is None:
            raise CredentialsRejected("Sign in before contacting a host.", host=self.name)
        check_sso(self.name, self.config, credentials)
        self.transport = self._transport_name()
        self.auth_protocol = self.transport  # pywinrm's "ntlm" is NTLM: no Negotiate inside
        timeout = self.config.timeout
        # pywinrm wants whole seconds with read > operation; the real per-request read timeout is
        # set from each call's deadline (see _guard), so sub-second timeouts work too.
        read = max(2, math.ceil(timeout))
        protocol = WinRMProtocol(
            endpoint=self.config.url, transport=self.transport,  # type: ignore[arg-type]
            username=credentials.username, password=credentials.password,
            server_cert_validation="validate",
            ca_trust_path=self.config.ca_file or None,  # type: ignore[arg-type]
            message_encryption="auto", read_timeout_sec=read,
            operation_timeout_sec=max(1, min(20, read - 1)),
            # WinRM goes straight to the host: a web proxy would also break NTLM, which
            # authenticates the connection.
            proxy=None)
        if self.transport == "kerberos":
            service, host = self.config.service_principal
            provider = auth_for(self.config, credentials)  # negotiate: a ticket on Windows
            name = credentials.name_for(provider)
            password = None if credentials.sso else credentials.password
            if provider == "kerberos":
                try:
                    first_token(service, host, name, password)  # no ticket: nothing is sent
                except KERBEROS_ERRORS as error:
                    raise host_ticket_error(self.name, f"{service}/{host}", error,
                                            self.config.allow_ntlm) from None
            protocol.transport = _KerberosTransport(
                _KerberosAuth(name, password, auth_provider=provider, service=service,
                              hostname_override=host, wrap_required=True),
                endpoint=self.config.url, auth_method="kerberos", server_cert_validation="validate",
                ca_trust_path=self.config.ca_file or None,
                message_encryption="auto", read_timeout_sec=read, proxy=None)
        return protocol

    def _receive(self, protocol: WinRMProtocol, shell_id: str, command_id: str,
                 deadline: float) -> tuple[bytes, bytes, int]:
        stdout: list[bytes] = []
        stderr: list[bytes] = []
        while True:
            try:
                out, err, code, done = self._guard(
                    protocol, deadline,
                    lambda: protocol.get_command_output_raw(shell_id, command_id))
            except _OperationTimeout:
                # The host's "no output yet" answer: keep waiting until our own deadline.
                if time.monotonic() >= deadline:
                    raise HostTimeout(f"{self.name} did not finish within "
                                      f"{self.config.timeout:g} s.", host=self.name) from None
                continue
            stdout.append(out)
            stderr.append(err)
            if done:
                return b"".join(stdout), b"".join(stderr), code

    def _guard(self, protocol: WinRMProtocol, deadline: float, request: Callable[[], T]) -> T:
        """Send one request with what is left of the call's time; WinRM and HTTP failures become
        the typed errors of console.errors."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise HostTimeout(f"{self.name} did not answer within {self.config.timeout:g} s.",
                              host=self.name)
        protocol.transport.read_timeout_sec = remaining  # type: ignore[assignment]
        # The host answers "no output yet" before our read timeout ends, so long commands go on.
        protocol.operation_timeout_sec = max(1, min(20, int(remaining * 0.8)))
        name = self.name
        try:
            result = request()
        except InvalidCredentialsError:
            raise self.gate.rejected(name, ntlm=self.transport == "ntlm") from None
        except KERBEROS_ERRORS as error:
            service, host = self.config.service_principal
            raise host_ticket_error(name, f"{service}/{host}", error,
                                    self.config.allow_ntlm) from None
        except WinRMOperationTimeoutError:
            raise _OperationTimeout() from None
        except WSManFaultError as fault:
            if fault.wsman_fault_code == _ACCESS_DENIED or (fault.fault_subcode or "").endswith(
                    "AccessDenied"):
                raise HostAccessDenied(f"{name} refuses this account access to remote "
                                       f"management: {one_line(fault.reason)}", host=name) from None
            raise HostError(f"{name} reported a fault: {one_line(fault.reason)}",
                            host=name) from None
        except WinRMTransportError as error:
            raise HostError(f"{name} answered HTTP {error.code}: "
                            f"{one_line(str(error.response_text)[:200])}", host=name) from None
        except (requests.exceptions.RequestException, TimeoutError, ConnectionError) as error:
            mapped = network_error(name, self.config, error)
            if mapped is None:
                raise
            raise mapped from None
        except PermissionError:
            # requests_ntlm: the host offered no NTLM/Negotiate (Basic is never used).
            raise HostAccessDenied(f"{name} offers no sign-in method this console uses "
                                   f"(NTLM, Kerberos); enable Negotiate on its WinRM service.",
                                   host=name) from None
        except (WinRMError, ET.ParseError, StopIteration, AssertionError, KeyError,
                ValueError) as error:
            raise HostError(f"{name} answered something unexpected "
                            f"({type(error).__name__}).", host=name) from None
        self.gate.accepted()
        return result

    def _document(self, out: tuple[bytes, bytes, int], vm_id: str | None = None) -> Any:
        """The `data` of the one JSON document on stdout; the host's error code as its exception."""
        stdout, stderr, exit_code = out
        text = _text(stdout)
        document = _answer(stdout)
        shown = text or clixml_text(stderr) or f"nothing (exit code {exit_code})"
        return answer_data(self.name, document, shown, vm_id)


def _text(stdout: bytes) -> str:
    try:
        return stdout.decode("utf-8").lstrip("\ufeff").strip()
    except UnicodeDecodeError:
        return stdout.decode("utf-8", errors="replace")


def _answer(stdout: bytes) -> Any:
    """The one JSON document on stdout, or None."""
    try:
        return json.loads(_text(stdout))
    except ValueError:
        return None


# Failures after which the host is not asked to delete a shell (it would not answer, or it would
# count another bad password).
_SILENT = (HostUnreachable, HostTimeout, CredentialsRejected)


class _OperationTimeout(Exception):
    """The host's WS-Management "no output yet" answer to a Receive."""


def _broken(error: HostError) -> bool:
    """Whether a read failed because the kept connection or shell broke (worth one reopen)."""
    return type(error) in (HostUnreachable, HostError)


class _KerberosAuth(HTTPNegotiateAuth):
    """pypsrp's Negotiate auth (pyspnego) with the two calls pywinrm's message encryption makes
    of a Kerberos auth: its own needs pykerberos, a C module of its own, where pyspnego's context
    already wraps as Windows does (MS-WSMV 2.2.9.1.1)."""

    def wrap_winrm(self, host: str, message: bytes) -> tuple[bytes, bytes]:
        wrapped = self.contexts[host].wrap_winrm(message)
        return wrapped.data, wrapped.header

    def unwrap_winrm(self, host: str, message: bytes, signature: bytes) -> bytes:
        return bytes(self.contexts[host].unwrap_winrm(signature, message))


class _KerberosTransport(winrm.transport.Transport):
    """pywinrm's transport, its session authenticated by pyspnego's Kerberos (_KerberosAuth)."""

    def __init__(self, auth: _KerberosAuth, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._auth = auth

    def build_session(self) -> requests.Session:
        if self.session:
            return self.session
        # pywinrm's own session (proxies off, the CA file, its headers) without its Kerberos.
        self.auth_method = "plaintext"
        try:
            session = super().build_session()
        finally:
            self.auth_method = "kerberos"
        session.auth = self._auth
        if self.message_encryption != "never" and not self.endpoint.lower().startswith("https"):
            self.setup_encryption(session)  # the first (empty) request authenticates
        return session

    def setup_encryption(self, session: requests.Session) -> None:
        super().setup_encryption(session)
        self.encryption = Encryption(session, "kerberos")

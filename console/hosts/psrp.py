"""One host's PowerShell session over PSRP (pypsrp), kept open: what the JEA endpoint's client
and the default endpoint's PSRP client share.

A session is one runspace pool on one session configuration (`HvConsole`, or the default
`Microsoft.PowerShell`), sized for a few operations at once (MAX_RUNSPACES), opened on first use
and kept: an operation is one pipeline on it (Command, Receive, Signal: three requests), and
starts no process on the host, where a WinRS command starts powershell.exe and imports the
Hyper-V module every time. Reads and actions both run on it:
- a read whose connection or pool broke is run once more on a new pool;
- an action is never sent twice; once its Command may have reached the host, a timeout or a
  broken connection makes it "pending" (ActionOutcome.pending), not failed: the host may still
  finish it, its pipeline is left running (never stopped, never its pool deleted under it), and
  `confirm` polls the VM's state.

The pool's requests go one at a time over one connection: NTLM seals each message with the
connection's keys in sequence, so two threads may not send at once. A pipeline's Receive waits at
most POLL_SECONDS on the host, so a long action (a guest shut down) lets the other operations'
requests through at least that often. Every request is bounded by what is left of its
operation's time (HostConfig.timeout); a connection idle for a minute, or abandoned by a timeout,
is replaced by a new one (a new NTLM logon) for the same pool, which the host keeps for its
owner whatever the connection.

Failures become console.errors' types, as the WinRS client maps them; the first 401 closes the
session's CredentialGate.
"""
from __future__ import annotations

import contextlib
import functools
import math
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple, TypeVar
from urllib.parse import urlparse

import requests
from pypsrp.complex_objects import PSInvocationState
from pypsrp.exceptions import AuthenticationError, WinRMError, WinRMTransportError, WSManFaultError
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from ..config import HostConfig
from ..errors import CredentialsRejected, HostAccessDenied, HostError, HostTimeout, HostUnreachable
from ..text import one_line
from .client import confirm
from ..kerberos import KERBEROS_ERRORS, first_token, host_ticket_error
from .credentials import CredentialGate, Credentials, auth_for, check_sso
from .network import network_error
from .outcomes import ActionOutcome

T = TypeVar("T")

MAX_RUNSPACES = 4  # a refresh, a state poll, an action and one more at once on one host
POLL_SECONDS = 1  # the longest one Receive of a pipeline waits on the host
_KEEP_ALIVE_IDLE = 60.0  # a host drops an idle HTTP connection; start a fresh one before that
_CLOSE_SECONDS = 2.0  # deleting a pool is best effort: the host reaps abandoned ones anyway
_SHELL_NOT_FOUND = 2150858843  # the pool is gone from the host (WinRM restarted, reaped)
_ACCESS_DENIED = (5, 0x80070005)  # ERROR_ACCESS_DENIED, and as an HRESULT


class Pipeline(NamedTuple):
    """What a finished pipeline gave: its output objects and its error records."""

    output: list[Any]
    errors: list[Any]
    failed: bool  # the pipeline ended Failed (a terminating error)


class _Transport:
    """pypsrp's HTTP transport with each request bounded by its operation's deadline, not by
    pypsrp's own guess (OperationTimeout + 2 s: a busy host answering a Receive late is not a
    failure while the operation has time left), and never retried by pypsrp itself (it would
    retry a Receive five times, sleeping in between)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.deadline = math.inf

    @property
    def endpoint(self) -> str:
        return str(self.inner.endpoint)

    def send(self, message: bytes, *, retries_on_read_timeout: int = 0,
             timeout: float | tuple[float, float] | None = None) -> bytes:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise requests.exceptions.ReadTimeout("the operation's time ran out")
        return bytes(self.inner.send(message, retries_on_read_timeout=0, timeout=remaining))

    def reset(self) -> None:
        """A new connection (and NTLM logon) for the next request: the old one idled out, or a
        request on it was abandoned, so its sealing sequence cannot go on."""
        try:
            self.inner.close()
        finally:
            self.inner.session = None
            self.inner.encryption = None

    def close(self) -> None:
        self.inner.close()


class _Turns:
    """A lock taken in the order it was asked for: a pipeline polling in a loop must not take
    the connection again and again while another operation waits for one request."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._waiting: deque[object] = deque()
        self._held = False

    def acquire(self, timeout: float = -1) -> bool:
        me = object()
        with self._changed:
            self._waiting.append(me)
            if self._changed.wait_for(lambda: not self._held and self._waiting[0] is me,
                                      None if timeout < 0 else timeout):
                self._waiting.popleft()
                self._held = True
                return True
            self._waiting.remove(me)
            self._changed.notify_all()
            return False

    def release(self) -> None:
        with self._changed:
            self._held = False
            self._changed.notify_all()

    def __enter__(self) -> _Turns:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class PsrpClient:
    """One host's kept PSRP session on one configuration (see the module). Thread safe."""

    def __init__(self, config: HostConfig, credentials: Credentials | None = None,
                 gate: CredentialGate | None = None, *, configuration_name: str,
                 described: str, max_runspaces: int = MAX_RUNSPACES) -> None:
        self.config = config
        self.name = config.name
        self.gate = gate or CredentialGate(credentials)
        if self.gate.credentials is None and credentials is not None:
            self.gate.reopen(credentials)
        self.configuration_name = configuration_name
        self.described = described  # "its JEA endpoint HvConsole": for refusals
        self.max_runspaces = max_runspaces
        self._lock = threading.Lock()  # the kept pool: opened, dropped
        self._wire = _Turns()  # one request at a time on the pool's connection, in turn
        self._pool: RunspacePool | None = None
        self._pending: weakref.WeakSet[RunspacePool] = weakref.WeakSet()  # an action left pending
        self._last_used = 0.0
        self._generation = self.gate.generation
        # What the kept pool's connection authenticated with: "kerberos" or "ntlm" (None: not
        # yet); NTLM is shown in the host's status, as the last resort it is.
        self.auth_protocol: str | None = None

    def confirm(self, vm_id: str, expected_states: Iterable[str], limit: float = 120.0,
                interval: float = 1.0) -> ActionOutcome:
        """Poll the VM's state until it is one of `expected_states` or `limit` seconds pass."""
        return confirm(self, vm_id, expected_states, limit, interval)  # type: ignore[arg-type]

    def close(self) -> None:
        """Delete the kept pool (best effort), unless an action left pending still runs on it:
        deleting it would stop that action mid-way; the host reaps it once idle."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            self._discard(pool, delete=pool not in self._pending)

    # --- operations: a read, run again once on a new pool; an action, never sent twice ---------

    def _read(self, build: Callable[[PowerShell], object]) -> Pipeline:
        self._before_call()
        deadline = time.monotonic() + self.config.timeout
        for attempt in (1, 2):
            pool = self._kept(deadline)
            try:
                return self._run(pool, build, deadline)
            except HostError as error:
                # A broken connection or pool is worth one new pool; a refusal or a timeout is not.
                if type(error) not in (HostUnreachable, HostError, _PoolGone) or attempt == 2 \
                        or time.monotonic() >= deadline:
                    raise
                self._drop(pool)
        raise AssertionError("unreachable")

    def _act(self, build: Callable[[PowerShell], object], operation: str,
             vm_id: str) -> Pipeline | ActionOutcome:
        """The action's pipeline, or its pending outcome when no answer came in time."""
        self._before_call()
        deadline = time.monotonic() + self.config.timeout
        pool = self._kept(deadline)  # nothing sent yet: a failure here is a plain failure
        try:
            return self._run(pool, build, deadline, action=True)
        except _Sent as sent:
            self._pending.add(pool)
            if isinstance(sent.cause, HostUnreachable):
                self._forget(pool)  # the next call opens a new pool; this one is left running
            return ActionOutcome.pending(self.name, operation, vm_id, self.config.timeout,
                                         str(sent.cause))
        except (_PoolGone, HostUnreachable):
            self._forget(pool)  # the next call opens a new pool
            raise

    def _run(self, pool: RunspacePool, build: Callable[[PowerShell], object], deadline: float,
             action: bool = False) -> Pipeline:
        """One pipeline, holding the connection from its Command to its end, except between
        two Receives of a pipeline still running: others' requests go first then, in turn."""
        ps = PowerShell(pool)
        build(ps)
        with self._turn(deadline) as turn:
            try:
                self._request(pool, ps.begin_invoke, deadline)
            except (HostTimeout, HostUnreachable) as error:
                if action:  # the Command may have reached the host
                    raise _Sent(error) from error
                raise
            try:
                while True:
                    # What is left of the time bounds each request itself (_Transport).
                    self._request(pool, functools.partial(ps.poll_invoke, timeout=POLL_SECONDS),
                                  deadline)
                    if ps.state != PSInvocationState.RUNNING:
                        break
                    if time.monotonic() >= deadline:
                        raise HostTimeout(f"{self.name} did not finish within "
                                          f"{self.config.timeout:g} s.", host=self.name)
                    turn.pass_on()
            except (HostTimeout, HostUnreachable) as error:
                if action:
                    raise _Sent(error) from error
                raise
            try:
                self._request(pool, ps.close, deadline)  # the host frees the pipeline
            except HostError:
                pass  # the answer is in hand; the host drops the pipeline with its pool
        return Pipeline(list(ps.output), list(ps.streams.error),
                        ps.state == PSInvocationState.FAILED)

    # --- the kept pool ----------------------------------------------------------------------

    def _before_call(self) -> None:
        self.gate.check()
        if self.gate.generation != self._generation:
            # New credentials: the kept pool's connection authenticated with the old ones.
            with self._lock:
                self._generation = self.gate.generation
                pool, self._pool = self._pool, None
            if pool is not None:
                self._discard(pool, delete=False)

    def _kept(self, deadline: float) -> RunspacePool:
        with self._lock:
            if self._pool is None:
                self._pool = self._open(deadline)
            return self._pool

    def _open(self, deadline: float) -> RunspacePool:
        credentials = self.gate.credentials
        if credentials is None:
            raise CredentialsRejected("Sign in before contacting a host.", host=self.name)
        url = urlparse(self.config.url)
        timeout = max(2, math.ceil(self.config.timeout))
        service, spn_host = self.config.service_principal
        check_sso(self.name, self.config, credentials)
        auth = auth_for(self.config, credentials)
        if auth == "kerberos":
            try:
                first_token(service, spn_host, credentials.name_for(auth),
                            None if credentials.sso else credentials.password)
            except KERBEROS_ERRORS as error:
                raise host_ticket_error(self.name, f"{service}/{spn_host}", error,
                                        self.config.allow_ntlm) from None
        wsman = WSMan(
            url.hostname or self.name, port=url.port, path=url.path.lstrip("/") or "wsman",
            ssl=url.scheme == "https",
            # Single sign-on: no name nor password, so pyspnego takes the ticket cache (SSPI's
            # logon session on Windows).
            username=credentials.name_for(auth),
            password=None if credentials.sso else credentials.password,
            auth=auth,
            # The ticket is asked for the host's SPN, whatever address the URL names.
            negotiate_service=service, negotiate_hostname_override=spn_host,
            # pypsrp annotates cert_validation as bool, yet hands it to requests' `verify`, which
            # takes a CA bundle's path too (pypsrp's own code keeps a path: wsman.py, "if
            # cert_validation is a bool (no path specified)").
            cert_validation=self.config.ca_file or True,  # type: ignore[arg-type]
            encryption="auto",
            connection_timeout=timeout, read_timeout=timeout + 2,
            operation_timeout=max(1, min(20, timeout - 1)), no_proxy=True)
        wsman.transport = _Transport(wsman.transport)  # type: ignore[assignment]
        pool = RunspacePool(wsman, configuration_name=self.configuration_name,
                            max_runspaces=self.max_runspaces)
        try:
            with self._turn(deadline):
                self._request(pool, pool.open, deadline)
        except BaseException:
            wsman.close()
            raise
        self.auth_protocol = _negotiated(wsman) or self.auth_protocol
        return pool

    def _drop(self, pool: RunspacePool) -> None:
        """A broken pool: forgotten, and deleted on the host unless an action runs on it."""
        self._forget(pool)
        self._discard(pool, delete=pool not in self._pending)

    def _forget(self, pool: RunspacePool) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None

    def _discard(self, pool: RunspacePool, delete: bool) -> None:
        with self._wire:
            transport = _transport(pool)
            try:
                if delete:
                    transport.deadline = time.monotonic() + _CLOSE_SECONDS
                    pool.close()
            except Exception:  # noqa: BLE001 - best effort: the host reaps abandoned pools
                pass
            finally:
                transport.close()

    # --- the wire ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _turn(self, deadline: float) -> Iterator[_Turn]:
        """The kept connection, for this thread's requests until the block ends."""
        turn = _Turn(self, deadline)
        turn.take()
        try:
            yield turn
        finally:
            turn.give()

    def _request(self, pool: RunspacePool, request: Callable[[], T], deadline: float) -> T:
        """One WS-Management request (or a few: opening a pool) on the kept connection, within
        the operation's deadline; the caller has the turn (_turn)."""
        transport = _transport(pool)
        transport.deadline = deadline
        if self._last_used and time.monotonic() - self._last_used > _KEEP_ALIVE_IDLE:
            transport.reset()  # the host has likely closed the idle connection
        try:
            return self._guard(request)
        except (HostTimeout, HostUnreachable):
            transport.reset()  # an abandoned request: its connection cannot go on
            raise
        finally:
            self._last_used = time.monotonic()

    def _guard(self, request: Callable[[], T]) -> T:
        """One request; failures become console.errors' types, the network's mapped as the
        WinRS client maps them (console.hosts.network_error). An answer means the host took the
        credentials: the pool then asks every other host at once."""
        name = self.name
        try:
            result = request()
        except AuthenticationError:
            raise self.gate.rejected(name, ntlm=self.auth_protocol != "kerberos" and auth_for(
                self.config, self.gate.credentials or Credentials("", "")) != "kerberos") from None
        except KERBEROS_ERRORS as error:
            # No token could be made: no ticket, an expired one, no SPN, a realm without trust.
            service, host = self.config.service_principal
            raise host_ticket_error(name, f"{service}/{host}", error,
                                    self.config.allow_ntlm) from None
        except WSManFaultError as fault:
            # pypsrp's fault has code, machine, reason, provider...: no subcode.
            reason = one_line(str(fault.reason or fault))
            if fault.code in _ACCESS_DENIED:
                raise HostAccessDenied(f"{name} refuses this account a session on "
                                       f"{self.described}: {reason}", host=name) from None
            kind = _PoolGone if fault.code == _SHELL_NOT_FOUND else HostError
            raise kind(f"{name} reported a fault: {reason}", host=name) from None
        except WinRMTransportError as error:
            raise HostError(f"{name} answered HTTP {error.code}.", host=name) from None
        except (requests.exceptions.RequestException, TimeoutError, ConnectionError) as error:
            mapped = network_error(name, self.config, error)
            if mapped is None:
                raise HostError(f"{name} answered something unexpected "
                                f"({type(error).__name__}).", host=name) from None
            raise mapped from None
        except WinRMError as error:
            raise HostError(f"{name} answered something unexpected ({type(error).__name__}).",
                            host=name) from None
        self.gate.accepted()
        return result


class _Turn:
    """One thread's use of the kept connection: taken, passed on to whoever waits, given back."""

    def __init__(self, client: PsrpClient, deadline: float) -> None:
        self.client, self.deadline, self.held = client, deadline, False

    def take(self) -> None:
        if not self.client._wire.acquire(timeout=max(0.0, self.deadline - time.monotonic())):
            raise HostTimeout(f"{self.client.name} did not answer within "
                              f"{self.client.config.timeout:g} s.", host=self.client.name)
        self.held = True

    def give(self) -> None:
        if self.held:
            self.held = False
            self.client._wire.release()

    def pass_on(self) -> None:
        """Let the requests that wait go first, then go on."""
        self.give()
        self.take()


class _PoolGone(HostError):
    """The host no longer has the kept pool (WinRM restarted, or it reaped an idle pool)."""


class _Sent(Exception):
    """An action's Command may have reached the host, and no answer came: pending."""

    def __init__(self, cause: HostError) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _negotiated(wsman: WSMan) -> str | None:
    """The protocol pyspnego settled on for the connection ("kerberos", "ntlm"), if any."""
    inner = getattr(wsman.transport, "inner", wsman.transport)
    auth = getattr(getattr(inner, "session", None), "auth", None)
    for context in getattr(auth, "contexts", {}).values():
        protocol = getattr(context, "negotiated_protocol", None)
        if protocol:
            return str(protocol)
    return None


def _transport(pool: RunspacePool) -> _Transport:
    transport = pool.connection.transport
    assert isinstance(transport, _Transport)
    return transport


def texts(output: list[Any]) -> list[str]:
    """The string objects of a pipeline's output."""
    return [o for o in output if isinstance(o, str)]

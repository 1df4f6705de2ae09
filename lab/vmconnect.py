"""A lab host's Virtual Machine Connection listener: what stands for the host's TCP port 2179,
up to the point where a real host would start drawing the VM's screen.

A viewer (vmconnect.exe, FreeRDP's /vmconnect) opens a TCP connection and first sends an RDP
preconnection PDU (MS-RDPEPS 2.2.1.2, PRECONNECTION_PDU_V2: cbSize, Flags, Version and Id, four
little-endian 32-bit numbers, then cchPCB, a 16-bit count of UTF-16 characters with the final
null, and wszPCB, the preconnection blob) whose blob names the VM by id; Hyper-V also reads
";EnhancedMode=1" after the id. Then comes the X.224 Connection Request of MS-RDPBCGR 2.2.1.1 in a
TPKT (its cookie "Cookie: mstshash=NAME" names the account) and, on a real host, the TLS and
CredSSP handshake that authenticates the account.

The lab checks what a real host decides before it shows a screen: the blob names a VM of this
host, and the account may open that VM's console (the host's administrators, or an entry that
Grant-VMConnectAccess made: lab.hyperv.Host.may_open_console). The account is the cookie's (the
lab runs no CredSSP: docs/lab-world.md says so); a bare name is taken in the lab's domain. It
answers an allowed request with the X.224 Connection Confirm (choosing the security protocol the
client asked for) and closes the connection; a refused one is closed without an answer, as
vmms.exe drops a connection it refuses. Every attempt is recorded in `attempts`.
"""
from __future__ import annotations

import socket
import struct
import threading
import uuid
from dataclasses import dataclass, field

from .hyperv import Host, HyperVError

PRECONNECTION_PDU_V1 = 1
PRECONNECTION_PDU_V2 = 2
_HEADER = struct.Struct("<IIII")  # cbSize, Flags, Version, Id
_MAX_PDU = 64 * 1024
TYPE_RDP_NEG_REQ = 0x01
TYPE_RDP_NEG_RSP = 0x02


class ProtocolError(Exception):
    """What the viewer sent is not what Hyper-V's listener takes."""


@dataclass(frozen=True)
class Preconnection:
    version: int
    id: int
    blob: str  # wszPCB without its final null; "" in a V1 PDU

    @property
    def vm_id(self) -> str | None:
        """The VM id the blob starts with (before any ";option"), lower case; None if none."""
        first = self.blob.split(";", 1)[0].strip()
        try:
            return str(uuid.UUID(first))
        except ValueError:
            return None

    @property
    def enhanced(self) -> bool:
        return any(p.strip().lower() == "enhancedmode=1" for p in self.blob.split(";")[1:])


def preconnection_pdu(blob: str, session_id: int = 0) -> bytes:
    """A PRECONNECTION_PDU_V2 carrying `blob` (what a viewer sends first)."""
    text = (blob + "\0").encode("utf-16-le")
    size = _HEADER.size + 2 + len(text)
    return _HEADER.pack(size, 0, PRECONNECTION_PDU_V2, session_id) + struct.pack(
        "<H", len(text) // 2) + text


def parse_preconnection(data: bytes) -> Preconnection:
    """A preconnection PDU (V1 or V2); ProtocolError naming what is wrong."""
    if len(data) < _HEADER.size:
        raise ProtocolError("The preconnection PDU is shorter than its 16-byte header.")
    size, flags, version, session = _HEADER.unpack_from(data)
    if size != len(data):
        raise ProtocolError(f"The preconnection PDU says {size} bytes but has {len(data)}.")
    if flags != 0:
        raise ProtocolError(f"The preconnection PDU's Flags must be 0, not {flags}.")
    if version == PRECONNECTION_PDU_V1:
        return Preconnection(version, session, "")
    if version != PRECONNECTION_PDU_V2:
        raise ProtocolError(f"Unknown preconnection PDU version {version}.")
    if len(data) < _HEADER.size + 2:
        raise ProtocolError("The preconnection PDU V2 has no cchPCB.")
    (count,) = struct.unpack_from("<H", data, _HEADER.size)
    text = data[_HEADER.size + 2:]
    if len(text) != 2 * count:
        raise ProtocolError(f"cchPCB says {count} characters, the PDU holds {len(text) / 2:g}.")
    blob = text.decode("utf-16-le", errors="replace")
    if count and blob[-1] != "\0":
        raise ProtocolError("wszPCB does not end with a null character.")
    # FreeRDP 2.11 counts one null more than it needs and sends two (its first bytes, read by
    # tests/test_console_access.py): every final null is dropped.
    return Preconnection(version, session, blob.rstrip("\0"))


@dataclass(frozen=True)
class ConnectionRequest:
    cookie: str  # the mstshash cookie's name; "" when the request carries none
    protocols: int | None  # RDP_NEG_REQ's requestedProtocols; None without negotiation data


def connection_request(cookie: str, protocols: int | None = None) -> bytes:
    """An X.224 Connection Request in a TPKT, with a cookie and optional RDP_NEG_REQ."""
    body = f"Cookie: mstshash={cookie}\r\n".encode("ascii") if cookie else b""
    if protocols is not None:
        body += struct.pack("<BBHI", TYPE_RDP_NEG_REQ, 0, 8, protocols)
    x224 = bytes([6 + len(body), 0xE0, 0, 0, 0, 0, 0]) + body
    return struct.pack(">BBH", 3, 0, 4 + len(x224)) + x224


def parse_connection_request(tpkt: bytes) -> ConnectionRequest:
    if len(tpkt) < 11 or tpkt[0] != 3 or tpkt[5] & 0xF0 != 0xE0:
        raise ProtocolError("After the preconnection PDU came no X.224 Connection Request.")
    rest = tpkt[11:]
    cookie = ""
    if rest.startswith(b"Cookie: mstshash="):
        end = rest.find(b"\r\n")
        if end < 0:
            raise ProtocolError("The request's cookie does not end with CR LF.")
        cookie = rest[len(b"Cookie: mstshash="):end].decode("ascii", errors="replace")
        rest = rest[end + 2:]
    protocols = None
    if len(rest) >= 8 and rest[0] == TYPE_RDP_NEG_REQ:
        protocols = struct.unpack_from("<I", rest, 4)[0]
    return ConnectionRequest(cookie, protocols)


def connection_confirm(protocols: int | None) -> bytes:
    """The X.224 Connection Confirm; with RDP_NEG_RSP choosing the client's strongest protocol."""
    body = b""
    if protocols is not None:
        chosen = next((p for p in (8, 2, 1) if protocols & p), 0)  # RDSTLS, HYBRID, SSL, RDP
        body = struct.pack("<BBHI", TYPE_RDP_NEG_RSP, 0, 8, chosen)
    x224 = bytes([6 + len(body), 0xD0, 0, 0, 0x12, 0x34, 0]) + body
    return struct.pack(">BBH", 3, 0, 4 + len(x224)) + x224


@dataclass(frozen=True)
class Attempt:
    """One connection to the listener and what the lab decided."""

    vm_id: str | None
    account: str
    enhanced: bool
    allowed: bool
    reason: str = ""


@dataclass
class ConsoleListener:
    """Port 2179 of one lab host (any free port on 127.0.0.1 here)."""

    host: Host
    admins: frozenset[str] = frozenset()  # the host's administrators, DOMAIN\user, lower case
    domain: str = "LAB"
    address: str = "127.0.0.1"
    port: int = 0
    attempts: list[Attempt] = field(default_factory=list)
    timeout: float = 5.0

    def __post_init__(self) -> None:
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> int:
        server = socket.create_server((self.address, self.port))
        self._socket = server
        self.port = server.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, name=f"vmconnect-{self.host.name}",
                                        daemon=True)
        self._thread.start()
        return self.port

    def stop(self) -> None:
        if self._socket is not None:
            # shutdown wakes the thread blocked in accept(): close alone leaves the port
            # listening until accept returns (Linux).
            try:
                self._socket.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._socket.close()
            self._socket = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _serve(self) -> None:
        server = self._socket
        while server is not None:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(self.timeout)
            try:
                pdu = _read_pdu(conn)
                pre = parse_preconnection(pdu)
            except (OSError, ProtocolError) as error:
                attempt, reply = Attempt(None, "", False, False, str(error)), b""
            else:
                try:
                    attempt, reply = self.decide(pdu, _read_tpkt(conn))
                except (OSError, ProtocolError) as error:
                    attempt, reply = Attempt(pre.vm_id, "", pre.enhanced, False, str(error)), b""
            with self._lock:
                self.attempts.append(attempt)
            if reply:
                try:
                    conn.sendall(reply)
                except OSError:
                    pass

    def decide(self, pdu: bytes, request: bytes) -> tuple[Attempt, bytes]:
        """What the host's listener does with a preconnection PDU and a connection request."""
        pre = parse_preconnection(pdu)
        req = parse_connection_request(request)
        account = req.cookie if "\\" in req.cookie else f"{self.domain}\\{req.cookie}"
        vm_id = pre.vm_id
        if vm_id is None:
            return Attempt(None, account, pre.enhanced, False,
                           f"the preconnection blob {pre.blob!r} names no VM id"), b""
        try:
            vm = self.host.vm(vm_id)
        except HyperVError:
            return Attempt(vm_id, account, pre.enhanced, False,
                           f"no VM {vm_id} on {self.host.name}"), b""
        if not req.cookie or not self.host.may_open_console(
                vm, account, None, account.lower() in self.admins):
            return Attempt(vm_id, account, pre.enhanced, False,
                           f"{account or 'an unnamed account'} may not open the console of "
                           f"{vm.name}"), b""
        return Attempt(vm_id, account, pre.enhanced, True), connection_confirm(req.protocols)


def _read_exact(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise ProtocolError(f"The viewer closed the connection after {len(data)} of {n} "
                                f"bytes.")
        data += chunk
    return data


def _read_pdu(conn: socket.socket) -> bytes:
    head = _read_exact(conn, 4)
    (size,) = struct.unpack("<I", head)
    if not _HEADER.size <= size <= _MAX_PDU:
        raise ProtocolError(f"A preconnection PDU of {size} bytes is not one Hyper-V takes.")
    return head + _read_exact(conn, size - 4)


def _read_tpkt(conn: socket.socket) -> bytes:
    head = _read_exact(conn, 4)
    if head[0] == 0x16:
        # A TLS handshake record: the direct approach (FreeRDP's -nego and /vmconnect), where
        # TLS and CredSSP authenticate the account before the X.224 request, inside TLS.
        raise ProtocolError("The viewer began TLS and CredSSP right after the preconnection "
                            "PDU (the direct approach); the lab's listener runs no CredSSP.")
    if head[0] != 3:
        raise ProtocolError("After the preconnection PDU came no TPKT (version 3).")
    (size,) = struct.unpack(">H", head[2:])
    if size < 11:
        raise ProtocolError(f"A TPKT of {size} bytes holds no connection request.")
    return head + _read_exact(conn, size - 4)

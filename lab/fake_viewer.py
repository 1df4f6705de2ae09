"""A stand-in for FreeRDP where it is not installed: it takes FreeRDP's command line as
console.viewer builds it, connects, and sends what the lab's listener (lab/vmconnect.py) reads:
the preconnection PDU with the blob (/vmconnect:ID or /pcb:BLOB) and an X.224 Connection
Request whose cookie names the account (/u:). It reads the password from standard input when
told to (/from-stdin), as FreeRDP does, and exits 0 when the listener confirmed the connection,
1 when it refused it (the reason on standard error), 2 for a command line FreeRDP would refuse.

    python -m lab.fake_viewer /v:127.0.0.1:50123 /pcb:ID -nego /u:LAB\\olivia /from-stdin:force
"""
from __future__ import annotations

import socket
import sys

from .vmconnect import connection_request, preconnection_pdu

PROTOCOL_HYBRID = 2  # CredSSP, what FreeRDP asks Hyper-V's listener for


def main(argv: list[str]) -> int:
    options: dict[str, str] = {}
    for arg in argv:
        if arg.startswith("/"):
            name, _, value = arg[1:].partition(":")
            options[name] = value
        elif not arg.startswith(("-", "+")):
            print(f"unexpected argument {arg!r}", file=sys.stderr)
            return 2
    server, _, port_text = options.get("v", "").rpartition(":")
    blob = options.get("pcb") or options.get("vmconnect")
    if not server or not port_text.isdigit() or not blob:
        print("need /v:SERVER:PORT and /pcb:BLOB or /vmconnect:VMID", file=sys.stderr)
        return 2
    port = 2179 if "vmconnect" in options else int(port_text)  # /vmconnect fixes the port
    if "from-stdin" in options and not sys.stdin.readline().rstrip("\n"):
        print("no password on standard input", file=sys.stderr)
        return 2
    with socket.create_connection((server, port), timeout=10) as conn:
        conn.sendall(preconnection_pdu(blob) + connection_request(options.get("u", ""),
                                                                  PROTOCOL_HYBRID))
        answer = conn.recv(64)
    if len(answer) >= 6 and answer[0] == 3 and answer[5] == 0xD0:
        print(f"connected to {blob} on {server}:{port}")
        return 0
    print(f"the listener on {server}:{port} refused the console of {blob}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""A VM's console on this computer: which viewer shows it, and its command line.

Connecting is two steps. The host grants the person access to that VM's console
(Grant-VMConnectAccess through the JEA endpoint, for the caller's own account from the token:
console_access.ps1, console/jea.py Grant-HvcConsoleAccess), then a viewer opens a session to the
host's Virtual Machine Connection listener, TCP port 2179, which shows only that VM's screen.
Nothing else on the host is opened to the person: no RDP logon to the host, no host group.

- Windows: Virtual Machine Connection itself, `vmconnect.exe SERVER VMNAME -G VMID` (the Hyper-V
  management tools install it in System32); it offers enhanced session mode by itself where the
  host allows it and the guest supports it, and falls back to the basic session.
- Linux and macOS: FreeRDP (xfreerdp3, sdl-freerdp3, xfreerdp, sdl-freerdp) to port 2179 with the
  VM id as the preconnection blob: `/vmconnect:VMID` sets the blob, the port and the direct
  security layer Hyper-V's listener wants (FreeRDP 2.x and 3.x; on any other port, as the
  lab's listener has, `/pcb:VMID -nego` does the same). The password travels on the viewer's standard input
  (`/from-stdin:force`), never on its command line, where other users of this computer see it.

docs/console.md says which versions were checked and how. The viewer is started detached: it
lives on when the console closes, as vmconnect does from Hyper-V Manager.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .config import HostConfig
from .errors import InvalidParameter
from .powershell import facts

# Hyper-V's Virtual Machine Connection listener (host.toml [console_access], with its source).
CONSOLE_PORT = int(facts.host("console_access")["console_port"])
# FreeRDP's clients, newest first: 3.x installs xfreerdp3 / sdl-freerdp3 beside a 2.x xfreerdp.
FREERDP = ("xfreerdp3", "sdl-freerdp3", "xfreerdp", "sdl-freerdp")
VMCONNECT = "vmconnect.exe"
# What Hyper-V reads after the VM id in the blob to open an enhanced session (host.toml
# [console_access] enhanced_blob, with its source; unconfirmed for FreeRDP: docs/verification.md).
ENHANCED_MODE = str(facts.host("console_access")["enhanced_blob"])

_GUID = re.compile(r"\A[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                   r"[0-9a-fA-F]{12}\Z")
# A host name or address as a URL carries it: letters, digits, dots, hyphens, colons (IPv6).
_HOST = re.compile(r"\A[A-Za-z0-9._:-]{1,253}\Z")


@dataclass(frozen=True)
class Viewer:
    """A console viewer found on this computer."""

    kind: str  # vmconnect | freerdp
    path: str

    @property
    def program(self) -> str:
        return Path(self.path).name


def find_viewer(platform: str = sys.platform,
                which: Callable[[str], str | None] = shutil.which,
                environ: Mapping[str, str] = os.environ) -> Viewer | None:
    """The viewer this computer has: vmconnect.exe on Windows, FreeRDP elsewhere; None when
    there is none (missing_viewer says what to install)."""
    if platform == "win32":
        system = Path(environ.get("SystemRoot", r"C:\Windows")) / "System32" / VMCONNECT
        found = which(VMCONNECT) or (str(system) if system.is_file() else None)
        return Viewer("vmconnect", found) if found else None
    for name in FREERDP:
        found = which(name)
        if found:
            return Viewer("freerdp", found)
    return None


def missing_viewer(platform: str = sys.platform) -> str:
    """Why Connect is unavailable when find_viewer found nothing, and what to install."""
    if platform == "win32":
        return ("Virtual Machine Connection (vmconnect.exe) is not installed: add the Hyper-V "
                "GUI Management Tools (Windows features) to connect to a VM's console.")
    if platform == "darwin":
        return ("No console viewer is installed: install FreeRDP (brew install freerdp) to "
                "connect to a VM's console.")
    return ("No console viewer is installed: install FreeRDP (xfreerdp3 or xfreerdp; on Debian "
            "and Ubuntu the package freerdp3-x11 or freerdp2-x11) to connect to a VM's console.")


def console_server(url: str) -> str:
    """The host's address for the viewer: the one its WinRM URL names (the same machine)."""
    server = urlsplit(url).hostname or ""
    if not _HOST.match(server):
        raise InvalidParameter(f"The host's address {server or url!r} cannot be given to a "
                               f"console viewer.")
    return server


@dataclass(frozen=True)
class ViewerCommand:
    """A viewer's command line, and what it reads on its standard input (None: nothing)."""

    argv: list[str]
    stdin: str | None = None

    def shown(self) -> str:
        """The command line for people and logs (it never holds the password)."""
        return " ".join(a if a and not re.search(r"[\s\"']", a) else f'"{a}"' for a in self.argv)


def command(viewer: Viewer, server: str, vm_name: str, vm_id: str, *, user: str = "",
            password: str | None = None, port: int = CONSOLE_PORT,
            enhanced: bool = False) -> ViewerCommand:
    """The viewer's command line for one VM's console on `server`.

    vmconnect takes the server, the VM's name and, with -G, its id (the id decides: names are not
    unique on a host); it chooses enhanced session mode itself. FreeRDP connects to `port` with
    the VM id as the preconnection blob, followed by ";EnhancedMode=1" when `enhanced` (the host
    said the VM offers it now); the account is `user` (DOMAIN\\person) and its password, when
    given, is read from standard input.
    """
    if not _GUID.match(vm_id):
        raise InvalidParameter(f"{vm_id!r} is not a VM id; the console is opened by VM id.")
    if not _HOST.match(server):
        raise InvalidParameter(f"{server!r} is not a host name or address a viewer can reach.")
    if not 0 < port < 65536:
        raise InvalidParameter(f"The console port {port} is not a TCP port (1 to 65535).")
    if any(ord(c) < 0x20 for c in vm_name + user):
        raise InvalidParameter("A VM name or account for the console viewer is one line, "
                               "without control characters.")
    if viewer.kind == "vmconnect":
        return ViewerCommand([viewer.path, server, vm_name, "-G", vm_id.lower()])
    # /vmconnect sets port 2179 after /v is read (FreeRDP applies its options in its own order),
    # so a listener on another port (the lab's) gets the same PDU and direct security layer
    # through /pcb and -nego.
    blob = vm_id.lower() + (ENHANCED_MODE if enhanced else "")
    target = [f"/vmconnect:{blob}"] if port == CONSOLE_PORT else [f"/pcb:{blob}", "-nego"]
    argv = [viewer.path, f"/v:{server}:{port}", *target, f"/t:{vm_name} on {server}"]
    if user:
        argv.append(f"/u:{user}")
    if password is not None:
        argv.append("/from-stdin:force")
        return ViewerCommand(argv, password + "\n")
    return ViewerCommand(argv)


def launch(viewer_command: ViewerCommand,
           popen: Callable[..., Any] = subprocess.Popen) -> Any:
    """Start the viewer detached from the console (its own session or process group; no console
    window on Windows), its password written to its standard input and closed. Returns the
    process; OSError when it cannot start."""
    options: dict[str, Any] = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL,
                               "stdin": subprocess.PIPE if viewer_command.stdin is not None
                               else subprocess.DEVNULL, "close_fds": True}
    if sys.platform == "win32":
        options["creationflags"] = (getattr(subprocess, "DETACHED_PROCESS", 0)
                                    | getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0))
    else:
        options["start_new_session"] = True
    process = popen(list(viewer_command.argv), **options)
    if viewer_command.stdin is not None and process.stdin is not None:
        try:
            process.stdin.write(viewer_command.stdin.encode("utf-8"))
            process.stdin.close()
        except OSError:
            pass  # the viewer ended at once; its exit status says why
    return process


def argv_values(argv: Sequence[str]) -> dict[str, str]:
    """FreeRDP's /name:value options of a command line, by name (for tests and diagnostics)."""
    out: dict[str, str] = {}
    for arg in argv[1:]:
        if arg.startswith("/"):
            name, _, value = arg[1:].partition(":")
            out[name] = value
    return out


def console_command(viewer: Viewer, config: HostConfig, vm_name: str, vm_id: str,
                    user: str = "", password: str | None = None,
                    enhanced: bool = False) -> ViewerCommand:
    """The viewer's command line for a VM of the host `config` describes: the host's address
    from its WinRM URL, its console port (2179 unless configured), the signed-in account. On
    Windows vmconnect signs in with the person's Windows logon (or asks), so only FreeRDP is
    given the account and its password."""
    freerdp = viewer.kind == "freerdp"
    return command(viewer, console_server(config.url), vm_name, vm_id,
                   user=user if freerdp else "", password=password if freerdp else None,
                   port=config.console_port, enhanced=enhanced)

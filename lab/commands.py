"""`hvconsole lab serve`: run the lab's simulated Hyper-V hosts until interrupted."""
from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path
from types import FrameType

from console.text import one_line


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("lab", help="the lab: simulated Hyper-V hosts that speak WinRM")
    lab_sub = p.add_subparsers(dest="lab_command", metavar="COMMAND", required=True)
    serve = lab_sub.add_parser("serve", help="serve the lab hosts on 127.0.0.1 until Ctrl+C")
    serve.add_argument("--config", type=Path, help="lab file (default: the demo world)")
    serve.add_argument("--hosts", type=int, help="a generated world of this many hosts")
    serve.add_argument("--vms", type=int, default=10, help="VMs per generated host (default 10)")
    serve.add_argument("--latency-ms", type=float, default=0.0, help="added to every request")
    serve.add_argument("--https", action="store_true", help="HTTPS with a throw-away test CA")
    serve.add_argument("--state", type=Path, help="restore the VMs from this file, save on exit")
    serve.add_argument("--speed", type=float, default=1.0,
                       help="multiply the cmdlet durations (0: every action completes at once)")
    serve.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    from console.errors import ConfigError
    from .hyperv import Durations
    from .runner import Lab
    from .world import load_world

    if args.hosts is not None and (args.hosts < 1 or args.vms < 0):
        raise ConfigError("--hosts must be at least 1 and --vms at least 0.")
    if args.speed < 0:
        raise ConfigError("--speed must be 0 or more.")
    durations = None
    if args.speed != 1.0:
        base = load_world(args.config).hosts[0].host.durations if args.hosts is None else Durations()
        durations = base.scaled(args.speed)
    stop = threading.Event()

    def interrupted(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, interrupted) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with Lab.start(args.config, https=args.https, hosts=args.hosts, vms_per_host=args.vms,
                       latency_ms=args.latency_ms, durations=durations, state=args.state) as lab:
            print(f"Lab hosts ({'HTTPS' if args.https else 'HTTP with NTLM message encryption'}):")
            for name, handle in lab.hosts.items():
                print(f"  {one_line(name)} {handle.url}")
            if lab.ca_file:
                print(f"CA certificate: {lab.ca_file}")
            print("Accounts (user password):")
            for user, password in lab.credentials.items():
                role = " (host administrator)" if user in lab.admins else ""
                print(f"  {one_line(user)} {one_line(password)}{role}")
            print("Ready. Press Ctrl+C to stop.", flush=True)
            while not stop.wait(0.2):
                pass
            saved = lab.save()
        if saved is not None:
            print(f"State saved to {saved}.")
        print("Lab stopped.", flush=True)
        return 0
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)

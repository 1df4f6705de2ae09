"""`hvconsole vms` and `hvconsole vm`: the VMs delegated to a person, and one action on one VM.

Both sign in (the configured directory, or the demo directory with --demo, which also starts the
lab hosts in this process), evaluate the policy and talk to the hosts over WinRM. The password is
read from stdin, never from the command line (where other users and shell history see it).
"""
from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from typing import Any

from ..errors import ConsoleError, InvalidParameter
from ..hosts import ActionOutcome
from ..inventory import DESTRUCTIVE_ACTIONS, VM, Action
from ..session import Session
from ..text import one_line, plain
from . import add_sign_in_options, print_json, setup, signed_in

EXIT_PENDING = 3  # the action was sent but not yet confirmed


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    vms = sub.add_parser("vms", help="list the VMs delegated to you, with their state")
    add_sign_in_options(vms)
    vms.add_argument("--json", action="store_true", help="machine-readable output")
    vms.set_defaults(func=run_vms)

    vm = sub.add_parser(
        "vm", help="perform one action on one VM (checked against the policy, audited)",
        epilog=f"Exit codes: 0 done, 1 refused or failed, {EXIT_PENDING} sent but not yet "
               "confirmed (check the VM's state before trying again).")
    vm.add_argument("action", metavar="ACTION", type=_action,
                    help="one of: " + ", ".join(a.value.replace("_", "-") for a in Action))
    vm.add_argument("host", metavar="HOST")
    vm.add_argument("vm", metavar="VM", help="the VM's name (or its id)")
    vm.add_argument("--id", dest="vm_id", metavar="GUID",
                    help="the VM id, when several VMs share the name")
    vm.add_argument("--checkpoint", metavar="NAME",
                    help="checkpoint-create: the new checkpoint's name; apply/delete/rename: the "
                         "checkpoint's name or id")
    vm.add_argument("--new-name", metavar="NAME",
                    help="checkpoint-rename: the checkpoint's new name (at most 100 characters)")
    vm.add_argument("--iso", metavar="PATH", help="mount-iso: the ISO file in the host's library")
    vm.add_argument("--drive", metavar="SLOT",
                    help="mount-iso/eject: the DVD drive, e.g. 'SCSI 0:1' (needed only when the "
                         "VM has several)")
    vm.add_argument("--yes", action="store_true",
                    help="do not ask before an action that loses data")
    add_sign_in_options(vm)
    vm.set_defaults(func=run_vm)


def _action(text: str) -> Action:
    try:
        return Action(text.replace("-", "_").lower())
    except ValueError:
        raise argparse.ArgumentTypeError(f"unknown action {text!r}") from None


# --- a signed-in session ------------------------------------------------------------------------

@contextlib.contextmanager
def _session(args: argparse.Namespace, hosts: list[str] | None = None) -> Iterator[Session]:
    with setup(args) as world, signed_in(world, args, hosts) as session:
        yield session


# --- hvconsole vms ------------------------------------------------------------------------------

def run_vms(args: argparse.Namespace) -> int:
    with _session(args) as s:
        result = s.pool.inventory_all()
        visible = [vm for vm, _ in s.policy.visible(s.identity, result.vms)]
        visible.sort(key=lambda vm: (vm.host.lower(), vm.name.lower(), vm.id))
        if args.json:
            print_json({
                "user": s.identity.name,
                "vms": [_vm_json(vm) for vm in visible],
                "hosts": {name: {"status": str(r.status), "seconds": round(r.seconds, 3),
                                 "error": str(r.error) if r.error else None,
                                 "auth": _auth(s, name)}
                          for name, r in result.hosts.items()},
            })
        else:
            _print_table(visible)
            for name, r in result.hosts.items():
                if r.error is not None:
                    print(one_line(f"{name}: {r.status}: {r.error}"), file=sys.stderr)
                elif _auth(s, name) == "ntlm":
                    print(one_line(f"{name}: signed in with NTLM, as Kerberos was not possible "
                                   f"(allow_ntlm = false refuses it)"), file=sys.stderr)
        return 1 if result.errors else 0


def _auth(s: Session, host: str) -> str | None:
    """"kerberos" or "ntlm": what the host's connection signed in with (None: not known)."""
    return getattr(s.pool.client(host), "auth_protocol", None)


def _vm_json(vm: VM) -> dict[str, Any]:
    return {"host": vm.host, "id": vm.id, "name": vm.name, "state": vm.state,
            "status": vm.status, "replication_mode": vm.replication_mode,
            "checkpoints": len(vm.checkpoints)}


def _print_table(vms: list[VM]) -> None:
    rows = [("HOST", "VM", "STATE", "ID")] + [
        (one_line(vm.host), one_line(vm.name),
         one_line(vm.state + (f" ({vm.status})" if vm.status else "")), vm.id) for vm in vms]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths, strict=True)) + "  " + row[3])
    if not vms:
        print("(no VM is delegated to you)")


# --- hvconsole vm ACTION HOST VM ----------------------------------------------------------------

def run_vm(args: argparse.Namespace) -> int:
    action: Action = args.action
    with _session(args, hosts=[args.host.lower()]) as s:
        client = s.pool.client(args.host)
        vm = _find(client.inventory(), args.vm, args.vm_id, client.name)
        params = _params(action, vm, args)
        # A refused action is performed anyway below: perform() audits the refusal and raises.
        if s.actions.refusal(s.identity, vm, action) is None and action in DESTRUCTIVE_ACTIONS:
            _confirm(action, vm, params, args.yes)
        outcome = s.actions.perform(s.identity, vm, action, **params)
        _print_outcome(action, vm, outcome)
        if action is Action.CONNECT and outcome.status == "ok":
            return _open_console(s, client.config, vm,
                                 bool(outcome.console and outcome.console.enhanced))
        return EXIT_PENDING if outcome.status == "pending" else 0 if outcome.status == "ok" else 1


def _open_console(s: Session, config: Any, vm: VM, enhanced: bool) -> int:
    """After the host granted the person access to the VM's console: the viewer, detached."""
    from ..viewer import console_command, find_viewer, launch, missing_viewer

    viewer = find_viewer()
    if viewer is None:
        print(one_line(missing_viewer()), file=sys.stderr)
        return 1
    credentials = s.pool.gate.credentials
    launch(console_command(viewer, config, vm.name, vm.id,
                           credentials.username if credentials else "",
                           credentials.password if credentials else None, enhanced))
    print(one_line(f"Opened the console of {vm.name} on {vm.host} in {viewer.program}."))
    return 0


def _find(vms: list[VM], name: str, vm_id: str | None, host: str) -> VM:
    wanted = (vm_id or "").lower().strip("{}")
    if not wanted and _looks_like_id(name):
        wanted = name.lower().strip("{}")
    if wanted:
        match = [vm for vm in vms if vm.id == wanted]
    else:
        match = [vm for vm in vms if vm.name.lower() == name.lower()]
    if not match:
        raise ConsoleError(f"There is no VM {name} on {host}.")
    if len(match) > 1:
        ids = ", ".join(vm.id for vm in match)
        raise ConsoleError(f"Several VMs on {host} are named {name} ({ids}); choose one with --id.")
    return match[0]


def _looks_like_id(text: str) -> bool:
    t = text.strip("{}")
    return len(t) == 36 and t.count("-") == 4 and all(c in "0123456789abcdefABCDEF-" for c in t)


def _params(action: Action, vm: VM, args: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if action is Action.CHECKPOINT_CREATE:
        if args.checkpoint is not None:
            params["name"] = args.checkpoint
    elif action in {Action.CHECKPOINT_APPLY, Action.CHECKPOINT_DELETE,
                    Action.CHECKPOINT_DELETE_SUBTREE, Action.CHECKPOINT_RENAME}:
        if not args.checkpoint:
            raise InvalidParameter(f"Name the checkpoint of {vm.name} with --checkpoint.")
        params["checkpoint_id"] = _checkpoint_id(vm, args.checkpoint)
        if action is Action.CHECKPOINT_RENAME:
            if not getattr(args, "new_name", None):
                raise InvalidParameter(f"Give the checkpoint of {vm.name} its new name with "
                                       f"--new-name.")
            params["name"] = args.new_name
    elif action in {Action.MOUNT_ISO, Action.EJECT}:
        if action is Action.MOUNT_ISO:
            if not args.iso:
                raise InvalidParameter(f"Name the ISO file to mount on {vm.name} with --iso.")
            params["path"] = args.iso
        if args.drive:
            kind, _, place = args.drive.strip().partition(" ")
            controller, _, location = place.partition(":")
            if not (controller.isdigit() and location.isdigit()):
                raise InvalidParameter(f"--drive must look like 'SCSI 0:1', not {args.drive!r}.")
            params.update(controller_type=kind.upper(), controller=int(controller),
                          location=int(location))
    return params


def _checkpoint_id(vm: VM, text: str) -> str:
    match = vm.checkpoint(text.strip("{}")) if _looks_like_id(text) else None
    if match is not None:
        return match.id
    named = [c for c in vm.checkpoints if c.name == text]
    if len(named) == 1:
        return named[0].id
    if named:
        ids = ", ".join(c.id for c in named)
        raise InvalidParameter(f"Several checkpoints of {vm.name} are named {text} ({ids}); "
                               f"give the id.")
    raise InvalidParameter(f"{vm.name} has no checkpoint {text}.")


_LOSS = {
    Action.TURNOFF: "turns {vm} off at once, like pulling the plug: unsaved work in the guest "
                    "is lost",
    Action.RESET: "resets {vm} at once: unsaved work in the guest is lost",
    Action.DELETE_SAVED_STATE: "deletes the saved state of {vm}: its memory contents are lost",
    Action.CHECKPOINT_APPLY: "rolls {vm} back to the checkpoint: its current state is lost",
    Action.CHECKPOINT_DELETE: "deletes the checkpoint of {vm} (its children are kept)",
    Action.CHECKPOINT_DELETE_SUBTREE: "deletes the checkpoint of {vm} and all checkpoints "
                                      "below it",
}


def _confirm(action: Action, vm: VM, params: dict[str, Any], yes: bool) -> None:
    if yes:
        return
    what = _LOSS.get(action, "{vm}: this action loses data").format(vm=f"{vm.name} on {vm.host}")
    if not sys.stdin.isatty():
        raise ConsoleError(f"This {what}; stdin is not a terminal, so confirm with --yes.")
    print(plain(f"This {what}. Type yes to go on: "), end="", file=sys.stderr, flush=True)
    if sys.stdin.readline().strip().lower() != "yes":
        raise ConsoleError("Nothing was done.")


def _print_outcome(action: Action, vm: VM, outcome: ActionOutcome) -> None:
    state = f": {vm.name} is {outcome.vm_state}" if outcome.vm_state else ""
    if outcome.status == "ok":
        extra = ""
        if outcome.checkpoint is not None:
            extra = f" (checkpoint {outcome.checkpoint.name}, {outcome.checkpoint.id})"
        if outcome.drive is not None:
            extra = f" ({outcome.drive.slot}: {outcome.drive.path or 'empty'})"
        if outcome.console is not None:
            extra = f" (console access for {outcome.console.user})"
        print(one_line(f"{action.value.replace('_', '-')} done{state}{extra}"))
        if outcome.warning:
            print(one_line(f"warning: {outcome.warning}"), file=sys.stderr)
    else:
        print(one_line(f"{outcome.status}: {outcome.message}"))

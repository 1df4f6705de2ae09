"""What each VM action looks like, and whether the selection allows it (and why not).

The GUI only mirrors the policy: an action is enabled when the user holds its privileges on every
selected VM and every VM's state allows it. ActionService re-checks both before anything reaches
a host.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from console.inventory import (CHECKPOINT_ACTIONS, DESTRUCTIVE_ACTIONS, POWER_ACTIONS,
                               REQUIRED_PRIVILEGES, VM, Action, allowed_by_state)

from .review import privilege_titles


@dataclass(frozen=True)
class ActionSpec:
    action: Action
    label: str  # menu text
    verb: str  # "start", used in sentences
    shortcut: str = ""
    loses: str = ""  # what is lost, for the confirmation of destructive actions
    pending_label: str = ""  # shown on the row until an inventory confirms

    @property
    def title(self) -> str:
        """The label without its mnemonic and ellipsis, for titles and sentences."""
        return self.label.replace("&", "").rstrip(".")


# Shortcuts follow Hyper-V's Virtual Machine Connection where it has one.
SPECS: dict[Action, ActionSpec] = {s.action: s for s in (
    ActionSpec(Action.START, "&Start", "start", "Ctrl+S", pending_label="starting"),
    ActionSpec(Action.SHUTDOWN, "Shut &Down", "shut down", "Ctrl+D",
               "The guest's operating system shuts down: its programs close, and its users and "
               "services are cut off until someone starts it again.", "shutting down"),
    ActionSpec(Action.RESTART, "Res&tart (guest)", "restart", "Ctrl+Shift+R",
               "The guest's operating system shuts down and starts again: its programs close, and "
               "its users and services are cut off for the time it takes.", "restarting"),
    ActionSpec(Action.TURNOFF, "Turn &Off", "turn off", "Ctrl+O",
               "Unsaved work in the guest is lost, as if the power cord were pulled.",
               "turning off"),
    ActionSpec(Action.RESET, "R&eset", "reset", "Ctrl+E",
               "Unsaved work in the guest is lost: the VM restarts at once without shutting down.",
               "resetting"),
    ActionSpec(Action.SAVE, "S&ave", "save", "Ctrl+Shift+A",
               "The guest stops where it is and its memory is written to disk: its users and "
               "services are cut off until someone starts it again.", "saving"),
    ActionSpec(Action.PAUSE, "&Pause", "pause", "Ctrl+P",
               "The guest stops running until resumed: its network connections may time out.",
               "pausing"),
    ActionSpec(Action.RESUME, "Res&ume", "resume", "Ctrl+R", pending_label="resuming"),
    ActionSpec(Action.DELETE_SAVED_STATE, "Delete Saved State", "delete the saved state of",
               "", "The saved memory is lost (with unsaved work in the guest); "
               "the next start is a cold boot.",
               "deleting saved state"),
    ActionSpec(Action.CHECKPOINT_CREATE, "&Checkpoint...", "take a checkpoint of", "Ctrl+N",
               pending_label="checkpointing"),
    ActionSpec(Action.CHECKPOINT_APPLY, "Apply Checkpoint...", "apply a checkpoint to", "Ctrl+Shift+V",
               "Everything since the checkpoint is lost: the VM's current state is discarded.",
               "applying checkpoint"),
    ActionSpec(Action.CHECKPOINT_DELETE, "Delete Checkpoint...", "delete a checkpoint of", "",
               "The checkpoint can no longer be applied (its changes are merged; its children are kept).",
               "deleting checkpoint"),
    ActionSpec(Action.CHECKPOINT_DELETE_SUBTREE, "Delete Checkpoint Subtree...",
               "delete a checkpoint subtree of", "",
               "The checkpoint and every checkpoint below it can no longer be applied.",
               "deleting checkpoints"),
    # F2 in the checkpoint tree renames, as in Hyper-V Manager (ui/mainwindow.py).
    ActionSpec(Action.CHECKPOINT_RENAME, "Re&name Checkpoint...", "rename a checkpoint of",
               pending_label="renaming checkpoint"),
    ActionSpec(Action.MOUNT_ISO, "&Insert ISO...", "insert an ISO into", "Ctrl+I",
               pending_label="inserting ISO"),
    ActionSpec(Action.EJECT, "E&ject ISO", "eject the ISO of", "Ctrl+J", pending_label="ejecting"),
    # Enter on a VM connects too (ui/mainwindow.py), as a double click does in Hyper-V Manager.
    ActionSpec(Action.CONNECT, "Co&nnect...", "connect to", "Ctrl+Shift+C"),
)}

TOOLBAR_ACTIONS: tuple[Action, ...] = (
    Action.CONNECT, Action.START, Action.SHUTDOWN, Action.RESTART, Action.TURNOFF, Action.RESET, Action.SAVE,
    Action.PAUSE, Action.RESUME, Action.CHECKPOINT_CREATE, Action.MOUNT_ISO, Action.EJECT,
)
# Power actions and taking a checkpoint may act on several VMs at once; the others act on one VM
# (and one checkpoint).
BULK_ACTIONS = POWER_ACTIONS | {Action.CHECKPOINT_CREATE}
NEEDS_CHECKPOINT = CHECKPOINT_ACTIONS - {Action.CHECKPOINT_CREATE}
# Asked before they run: every action that loses data or interrupts a running guest.
ASKS = DESTRUCTIVE_ACTIONS | {Action.SHUTDOWN, Action.RESTART, Action.SAVE, Action.PAUSE}
assert set(SPECS) == set(Action) and {a for a, s in SPECS.items() if s.loses} == ASKS


def availability(action: Action, vms: Sequence[VM], privileges: Callable[[VM], frozenset[str]],
                 checkpoint_selected: bool = False,
                 busy: Callable[[VM], bool] = lambda vm: False,
                 contact: Callable[[VM], str] = lambda vm: "") -> tuple[bool, str]:
    """(enabled, reason) for `action` on the selection; the reason names the VM concerned, and
    for a right the person lacks, whom to ask (the VM's or its host's contact in the policy)."""
    spec = SPECS[action]
    if not vms:
        return False, "Select a VM first."
    if len(vms) > 1 and action not in BULK_ACTIONS:
        return False, f"Select a single VM to {spec.verb} it."
    for vm in vms:
        missing = REQUIRED_PRIVILEGES[action] - privileges(vm)
        if missing:
            ask = contact(vm)
            # The privilege as people name it ("Turn off"), not its policy id (vm.turnoff).
            return False, (f"You may not {spec.verb} {vm.name}: the policy does not grant you "
                           f"“{privilege_titles(sorted(missing))}” on it."
                           + (f" {ask} can grant it." if ask else ""))
    for vm in vms:
        ok, why = allowed_by_state(vm, action)
        if not ok:
            return False, f"Cannot {spec.verb} {vm.name}: {why}."
    for vm in vms:
        if busy(vm):
            return False, f"An action on {vm.name} is still running."
    if action in NEEDS_CHECKPOINT and not checkpoint_selected:
        return False, "Choose a checkpoint in the Checkpoints tree of the details pane."
    return True, ""


# Hyper-V Manager's Revert: apply the checkpoint the VM stands on ("Now"'s parent).
REVERT_LABEL = "Re&vert..."


def revert_availability(vms: Sequence[VM], privileges: Callable[[VM], frozenset[str]],
                        busy: Callable[[VM], bool] = lambda vm: False,
                        contact: Callable[[VM], str] = lambda vm: "") -> tuple[bool, str]:
    """(enabled, reason) for Revert: one VM that stands on a checkpoint, which it may apply."""
    if len(vms) > 1:
        return False, "Select a single VM to revert it."
    if vms and vms[0].parent_checkpoint is None:
        return False, (f"{vms[0].name} stands on no checkpoint: there is nothing to revert to."
                       if vms[0].checkpoints else f"{vms[0].name} has no checkpoints.")
    return availability(Action.CHECKPOINT_APPLY, vms, privileges, checkpoint_selected=True,
                        busy=busy, contact=contact)

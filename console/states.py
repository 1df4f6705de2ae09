"""One table of VM states and the actions each allows.

What the console offers (console.inventory), what the power script checks before acting
(console.scripts fills it into power.ps1) and what the lab's cmdlets accept all come from here,
and the cmdlets' own tables come from resources/powershell/facts/host.toml, with their sources.
A *Critical state is a display state (the VM's health is not OK) over a base state; the cmdlets
act on the base state.
"""
from __future__ import annotations

from functools import cache

from .powershell import facts

# The cmdlet (and switch) each power action runs: its accepted states are the cmdlet's own.
POWER_CMDLETS: dict[str, str] = {
    "start": "Start-VM",
    "shutdown": "Stop-VM",
    "turnoff": "Stop-VM -TurnOff",
    "reset": "Restart-VM",
    "save": "Save-VM",
    "pause": "Suspend-VM",
    "resume": "Resume-VM",
    "delete_saved_state": "Remove-VMSavedState",
}
# Start-VM on a Paused VM resumes it; the console offers Resume there, under its own name.
NOT_OFFERED: dict[str, frozenset[str]] = {"start": frozenset({"Paused"})}

# Checkpoints and media: the Hyper-V management service decides, not the cmdlet, and no source
# states its table (docs/verification.md). The console offers them in the stable states where
# Hyper-V Manager does; Restore-VMSnapshot saves a Running or Paused VM first.
CHECKPOINT_FROM = frozenset({"Running", "Off", "Saved", "Paused"})
OTHER_ACTIONS: dict[str, frozenset[str]] = {
    "checkpoint_create": CHECKPOINT_FROM,
    "checkpoint_apply": CHECKPOINT_FROM,
    "checkpoint_delete": CHECKPOINT_FROM,
    "checkpoint_delete_subtree": CHECKPOINT_FROM,
    "checkpoint_rename": CHECKPOINT_FROM,  # Rename-VMSnapshot writes the name (a settings Put)
    "mount_iso": frozenset({"Running", "Off", "Paused"}),
    "eject": frozenset({"Running", "Off", "Paused"}),
}
# Connect is offered where the VM has a screen to show and is not in motion (a state in motion
# allows nothing): Running or Paused; an Off or Saved VM has none. A health problem
# (RunningCritical) does not take the screen away, so this follows the base state.
CONSOLE_FROM = frozenset({"Running", "Paused"})


def base_state(state: str) -> str:
    """The state the cmdlets act on: RunningCritical is Running with a health problem shown."""
    return facts.base_state(state)


def is_critical(state: str) -> bool:
    return base_state(state) != state


@cache
def power_accepts(action: str) -> frozenset[str]:
    """The base states a power action is accepted from (its cmdlet's table, minus NOT_OFFERED)."""
    return facts.cmdlet_states(POWER_CMDLETS[action]) - NOT_OFFERED.get(action, frozenset())


@cache
def actions_for(state: str) -> frozenset[str]:
    """Every action a VM in `state` allows. Power actions follow the base state; checkpoints and
    media are not offered while the VM's health is not OK (its storage may be lost or full).
    An unknown state allows nothing."""
    if state not in facts.STATES:
        return frozenset()
    base = base_state(state)
    power = {a for a in POWER_CMDLETS if base in power_accepts(a)}
    other = set() if is_critical(state) else {a for a, s in OTHER_ACTIONS.items() if base in s}
    console = {"connect"} if base in CONSOLE_FROM else set()
    return frozenset(power | other | console)


def power_table_literal() -> str:
    """The power script's table as a PowerShell hashtable body: action='State State ...'."""
    return ";".join(f"{a}='{' '.join(sorted(power_accepts(a)))}'" for a in POWER_CMDLETS)

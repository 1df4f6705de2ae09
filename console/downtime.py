"""Downtime plans made with the owners: a host's maintenance window, what happens to each VM on
it, one message asking every owner for a one-line answer, and who has answered.

A plan is a value: it travels as JSON (to be written to the host's event log, where the owners'
answers go too, so the console needs no server of its own) and is tallied from the answers read
back. What happens to a VM follows the host's own settings: a clustered VM moves to another node;
any other stops as its AutomaticStopAction says (shut down, saved, turned off) and comes back as
its AutomaticStartAction says (Set-VM's accepted values: resources/powershell/facts).
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses
from typing import Any

from .export import mailto
from .inventory import VM
from .policy import Policy

_WINDOW = re.compile(r"^\s*(\d{4}-\d{2}-\d{2})[ T](\d{1,2}:\d{2})\s*/\s*(.+?)\s*$")
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m(?:in)?)?$")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
ANSWERS = ("approve", "object")


class PlanError(ValueError):
    """A window, an answer or a stored plan that cannot be read; the message names what."""


@dataclass(frozen=True)
class Window:
    start: datetime  # aware, in the planner's local time
    end: datetime

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    def __str__(self) -> str:
        hours, rest = divmod(int(self.duration.total_seconds()) // 60, 60)
        length = f"{hours} h" + (f" {rest} min" if rest else "") if hours else f"{rest} min"
        return f"{self.start:%Y-%m-%d %H:%M} to {self.end:%Y-%m-%d %H:%M %Z} ({length})".rstrip()


def parse_window(text: str, now: datetime | None = None) -> Window:
    """`2026-12-12 22:00/4h` (a start in local time and a length: 4h, 90m, 1h30m, 2d) or
    `2026-12-12 22:00/2026-12-13 02:00` (a start and an end)."""
    m = _WINDOW.match(text)
    if not m:
        raise PlanError(f"The window {text!r} is not a start and a length such as "
                        "\"2026-12-12 22:00/4h\".")
    try:
        start = datetime.fromisoformat(f"{m[1]} {m[2]:0>5}").astimezone()
    except ValueError:
        raise PlanError(f"The window's start {m[1]} {m[2]} is not a date and time.") from None
    rest = m[3]
    d = _DURATION.match(rest)
    if d and any(d.groups()):
        days, hours, minutes = (int(g or 0) for g in d.groups())
        end = start + timedelta(days=days, hours=hours, minutes=minutes)
    else:
        try:
            end = datetime.fromisoformat(rest.replace("T", " ")).astimezone()
        except ValueError:
            raise PlanError(f"The window's length {rest!r} is neither a duration (4h, 90m, "
                            "1h30m) nor an end time.") from None
    if end <= start:
        raise PlanError(f"The window {text!r} ends before it starts.")
    if now is not None and end <= now:
        raise PlanError(f"The window {text!r} is over already.")
    return Window(start, end)


# What Hyper-V does with a VM when its host goes down, by AutomaticStopAction, and what it does
# when the host comes back, by AutomaticStartAction (values: Set-VM's accepted values).
STOP = {"ShutDown": "shut down", "Save": "saved", "TurnOff": "turned off (no guest shut down)"}
START = {"Nothing": "stays off until someone starts it",
         "StartIfRunning": "started again if it was running",
         "Start": "started again"}


def what_happens(vm: VM) -> str:
    # Only a clustered role moves: a VM that merely runs on a cluster node goes down with it.
    if vm.clustered and vm.cluster:
        return f"moved to another node of cluster {vm.cluster} (live migration), no downtime"
    if vm.state != "Running":
        return f"{vm.state.lower()}: not affected"
    if not vm.automatic_stop_action:
        return "stopped as the host's automatic stop action says (not read)"
    stop = STOP.get(vm.automatic_stop_action, f"stopped ({vm.automatic_stop_action})")
    start = START.get(vm.automatic_start_action, "started as the host's automatic start action says")
    return f"{stop}, then {start}"


@dataclass(frozen=True)
class PlanItem:
    vm_id: str
    vm_name: str
    state: str
    happens: str
    owner: str
    contact: str
    application: str = ""


@dataclass(frozen=True)
class Answer:
    """One owner's one line, as read back from the host's event log."""
    plan_id: str
    by: str  # the person (DOMAIN\\name) the host saw, not what the client said
    answer: str  # approve or object
    text: str
    at: str  # ISO 8601, UTC

    def __post_init__(self) -> None:
        if self.answer not in ANSWERS:
            raise PlanError(f"An answer is approve or object, not {self.answer!r}.")


@dataclass(frozen=True)
class Plan:
    id: str
    host: str
    start: str  # ISO 8601 with offset
    end: str
    reason: str
    planned_by: str
    items: tuple[PlanItem, ...]
    teams: tuple[str, ...] = ()
    subject: str = field(default="", compare=False)

    @property
    def window(self) -> Window:
        return Window(datetime.fromisoformat(self.start), datetime.fromisoformat(self.end))

    @property
    def owners(self) -> list[str]:
        """Everyone asked, once each, in the plan's order: the owners named in the policy."""
        return list(dict.fromkeys(i.owner for i in self.items if i.owner))

    @property
    def addresses(self) -> list[str]:
        return list(dict.fromkeys(a for i in self.items for a in _EMAIL.findall(i.contact)))

    def touches(self, vm_ids: Iterable[str]) -> bool:
        wanted = {v.lower() for v in vm_ids}
        return any(i.vm_id in wanted for i in self.items)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Plan:
        try:
            data: dict[str, Any] = json.loads(text)
            items = tuple(PlanItem(**i) for i in data.pop("items"))
            data["teams"] = tuple(data.get("teams", ()))
            return cls(items=items, **data)
        except (ValueError, TypeError, KeyError) as e:
            raise PlanError(f"A stored downtime plan cannot be read: {e}.") from e

    # --- the message to the owners -----------------------------------------------------------

    def message_text(self) -> str:
        lines = ["Hello,", "",
                 f"Hyper-V host {self.host} will be down for maintenance from {self.window}.",
                 *( [f"Reason: {self.reason}"] if self.reason else []), "",
                 "Your VMs on it, and what will happen to each:", ""]
        for i in self.items:
            owner = f" (owner {i.owner})" if i.owner else " (no owner on record)"
            lines.append(f"- {i.vm_name}{owner}: {i.happens}")
        lines += ["", "Please answer with one line: open the Hyper-V Delegation Console and "
                  f"approve or object to plan {self.id} (shown when you sign in), or reply to "
                  "this message.", "", f"{self.planned_by}"]
        return "\n".join(lines)

    def mailto(self) -> str:
        return mailto(self.addresses, self.subject, self.message_text())

    def eml(self, sender: str = "", now: datetime | None = None) -> bytes:
        """The message as an .eml file any mail client opens as a draft."""
        msg = EmailMessage()
        msg["Subject"] = " ".join(self.subject.splitlines())
        if sender:
            msg["From"] = sender
        if self.addresses:
            msg["To"] = ", ".join(a for _, a in getaddresses(self.addresses))
        msg["Date"] = format_datetime(now or datetime.now().astimezone())
        msg["X-Unsent"] = "1"  # Outlook opens it as a draft to send, not as a received mail
        msg.set_content(self.message_text())
        return bytes(msg)


def make_plan(policy: Policy, vms: Iterable[VM], host: str, window: Window, reason: str,
              planned_by: str) -> Plan:
    """The plan for `host`: each of its VMs (the inventory's) with its owner from the policy."""
    items = []
    teams: dict[str, None] = {}
    for vm in sorted((v for v in vms if v.host.lower() == host.lower()),
                     key=lambda v: (v.name.lower(), v.id)):
        doc = policy.doc(vm.id)
        items.append(PlanItem(vm.id, vm.name, vm.state, what_happens(vm),
                              doc.owner if doc else "", doc.contact if doc else "",
                              doc.application if doc else ""))
        teams.update(dict.fromkeys(doc.tags if doc else ()))
    digest = hashlib.sha256(f"{host.lower()}|{window.start.isoformat()}|{planned_by}".encode())
    return Plan(id=f"{host.upper()}-{window.start:%Y%m%d-%H%M}-{digest.hexdigest()[:6]}",
                host=host, start=window.start.isoformat(), end=window.end.isoformat(),
                reason=reason.strip(), planned_by=planned_by, items=tuple(items),
                teams=tuple(sorted(teams)),
                subject=f"Planned maintenance of Hyper-V host {host}: {window}")


@dataclass(frozen=True)
class Tally:
    approved: dict[str, Answer]
    objected: dict[str, Answer]
    waiting: list[str]

    def line(self) -> str:
        parts = [f"{len(self.approved)} approved", f"{len(self.objected)} objected"]
        if self.waiting:
            parts.append(f"{len(self.waiting)} not answered ({', '.join(self.waiting)})")
        return ", ".join(parts)


def tally(plan: Plan, answers: Iterable[Answer], same_person: Mapping[str, str] | None = None) -> Tally:
    """Each owner's latest answer to this plan. `same_person` maps an answering account to the
    owner it stands for (an owner in the policy may be named differently from DOMAIN\\name);
    answers from anyone else are kept out: only the people asked are counted."""
    latest: dict[str, Answer] = {}
    owners = {o.lower(): o for o in plan.owners}
    for a in sorted((a for a in answers if a.plan_id == plan.id), key=lambda a: a.at):
        who = (same_person or {}).get(a.by.lower(), a.by)
        owner = owners.get(who.lower())
        if owner is not None:
            latest[owner] = a
    approved = {o: a for o, a in latest.items() if a.answer == "approve"}
    objected = {o: a for o, a in latest.items() if a.answer == "object"}
    return Tally(approved, objected, [o for o in plan.owners if o not in latest])

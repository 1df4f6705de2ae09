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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses
from typing import Any

from . import audit
from .errors import ConsoleError
from .export import mailto
from .inventory import VM
from .policy import Policy
from .powershell import facts

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
    sid: str = ""  # the person's SID, from the host's token

    def __post_init__(self) -> None:
        if self.answer not in ANSWERS:
            raise PlanError(f"An answer is approve or object, not {self.answer!r}.")

    def line(self) -> str:
        said = f": {self.text}" if self.text else ""
        return f"{self.by} {'approved' if self.answer == 'approve' else 'objected'}{said} ({self.at})"


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
            data = json.loads(text)
        except ValueError as e:
            raise PlanError(f"A stored downtime plan cannot be read: {e}.") from e
        return cls.from_data(data)

    @classmethod
    def from_data(cls, data: Any) -> Plan:
        """A plan as its JSON reads back (from a file or a host's event); unknown keys are left
        out, so a plan written by a newer console still reads."""
        try:
            if not isinstance(data, Mapping):
                raise TypeError("not an object")
            known = {f for f in cls.__dataclass_fields__}
            item_keys = set(PlanItem.__dataclass_fields__)
            raw_items = data["items"]
            items = tuple(PlanItem(**{k: str(v) for k, v in i.items() if k in item_keys})
                          for i in (raw_items if isinstance(raw_items, (list, tuple)) else [raw_items]))
            rest = {k: v for k, v in data.items() if k in known and k != "items"}
            rest["teams"] = tuple(str(t) for t in rest.get("teams") or ())
            return cls(items=items, **rest)
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            raise PlanError(f"A stored downtime plan cannot be read: {e}.") from e

    # --- shared through the host's event log ---------------------------------------------------

    def event_length(self, publisher: str, sid: str = "S-1-5-21-0000000000-0000000000-0000000000-"
                     "0000000000") -> int:
        """At most how many characters the host's event of this plan takes (downtime_publish.ps1:
        {v, user, sid, plan} as Windows PowerShell 5.1's ConvertTo-Json writes it, which also
        escapes < > & ' as \\uXXXX: counted here as six characters each)."""
        text = json.dumps({"v": audit.HOST_EVENT_VERSION, "user": publisher, "sid": sid,
                           "plan": asdict(self)}, ensure_ascii=False, separators=(",", ":"))
        return len(text) + 5 * sum(text.count(c) for c in "<>&'")

    def parts(self, publisher: str) -> list[Plan]:
        """The plan as the events that hold it on the host: one event's message holds at most
        31,839 characters (host.toml [event_log] message_max), about 120 VMs of usual names
        and contacts, so a plan of a larger host is written as several events of the same id,
        each with some of its VMs, which the reading side joins again (SharedPlans). PlanError,
        saying so, when even one VM with the plan's reason would not fit an event."""
        limit = int(facts.host("event_log")["message_max"])
        publisher = publisher.ljust(104)  # the host names the publisher from its token
        parts: list[Plan] = []
        chunk: list[PlanItem] = []
        for item in self.items:
            if chunk and replace(self, items=(*chunk, item)).event_length(publisher) > limit:
                parts.append(replace(self, items=tuple(chunk)))
                chunk = []
            chunk.append(item)
            if replace(self, items=tuple(chunk)).event_length(publisher) > limit:
                length = replace(self, items=tuple(chunk)).event_length(publisher)
                raise PlanError(
                    f"Plan {self.id} makes an event of up to {length:,} characters on {self.host} "
                    f"with a single VM ({item.vm_name}); one event holds at most {limit:,}. "
                    f"Shorten the reason, or send the message without publishing it.")
        if chunk or not parts:
            last = replace(self, items=tuple(chunk))
            if last.event_length(publisher) > limit:  # no VM at all: the reason alone
                raise PlanError(
                    f"Plan {self.id} makes an event of up to {last.event_length(publisher):,} "
                    f"characters on {self.host} without any VM; one event holds at most "
                    f"{limit:,}. Shorten the reason.")
            parts.append(last)
        return parts

    def check_fits(self, publisher: str) -> None:
        """PlanError, saying so, when the plan cannot be published (parts())."""
        self.parts(publisher)

    def publish_params(self) -> dict[str, Any]:
        """The parameters of downtime_publish.ps1."""
        return {"plan": asdict(self)}

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


# --- plans and answers as a host's event log holds them ------------------------------------------

@dataclass(frozen=True)
class Published:
    """A plan as a host holds it: who published it (the host's token) and when."""
    host: str
    plan: Plan
    by: str
    time: str  # ISO 8601, UTC
    sid: str = ""


@dataclass(frozen=True)
class SharedPlans:
    """What one host answered to a read of its plans and answers (downtime_plans.ps1; through the
    JEA endpoint only the plans touching the caller's VMs, with only those VMs)."""
    host: str
    plans: tuple[Published, ...]
    answers: tuple[Answer, ...]
    unreadable: int = 0  # events of the plan and answer ids that are not the console's documents
    truncated: bool = False

    @classmethod
    def from_data(cls, host: str, data: Any) -> SharedPlans:
        if not isinstance(data, Mapping) or not isinstance(data.get("plans"), list) \
                or not isinstance(data.get("answers"), list):
            raise PlanError(f"{host} answered something unexpected: no plans and answers lists.")
        unreadable = int(data.get("others") or 0)
        plans: dict[str, Published] = {}
        for item in reversed(data["plans"]):  # oldest first
            try:
                plan = Plan.from_data(item.get("plan"))
            except (PlanError, AttributeError):
                unreadable += 1
                continue
            # The events of one id are the parts of one plan (Plan.parts): their VMs joined,
            # once each (a part written again by a retried call adds nothing), the newest
            # event's window and reason.
            earlier = plans.get(plan.id)
            if earlier is not None:
                known = {i.vm_id for i in plan.items}
                plan = replace(plan, items=tuple(sorted(
                    (*plan.items, *(i for i in earlier.plan.items if i.vm_id not in known)),
                    key=lambda i: (i.vm_name.lower(), i.vm_id))))
            plans[plan.id] = Published(host, plan, str(item.get("by") or ""),
                                       str(item.get("time") or ""), str(item.get("sid") or ""))
        answers = []
        for item in reversed(data["answers"]):  # oldest first: the log's order among equal times
            try:
                answers.append(Answer(str(item["plan_id"]), str(item.get("by") or ""),
                                      str(item.get("answer") or ""), str(item.get("text") or ""),
                                      str(item.get("time") or ""), str(item.get("sid") or "")))
            except (PlanError, KeyError, TypeError):
                unreadable += 1
        return cls(host, tuple(sorted(plans.values(), key=lambda p: p.plan.start)),
                   tuple(sorted(answers, key=lambda a: a.at)), unreadable,
                   bool(data.get("truncated")))

    def answers_to(self, plan_id: str) -> list[Answer]:
        return [a for a in self.answers if a.plan_id == plan_id]

    def current(self, now: datetime | None = None) -> list[Published]:
        """The plans whose window has not ended."""
        moment = now or datetime.now().astimezone()
        return [p for p in self.plans if p.plan.window.end > moment]


@dataclass(frozen=True)
class PlansRead:
    """Every host's plans and answers as one person may read them, and each answering account's
    display name from the directory (owners in the policy are display names: "Olivia Owner")."""
    shared: tuple[SharedPlans, ...]
    failed: dict[str, str]  # host -> why it was not read
    names: dict[str, str] = field(default_factory=dict)  # account or SID (lower) -> display name

    def current(self, now: datetime | None = None) -> list[Published]:
        """The plans whose window has not ended, soonest first."""
        return sorted((p for s in self.shared for p in s.current(now)),
                      key=lambda p: (p.plan.start, p.host))

    def answers_to(self, published: Published) -> list[Answer]:
        return [a for s in self.shared if s.host.lower() == published.host.lower()
                for a in s.answers_to(published.plan.id)]

    def tally(self, published: Published) -> Tally:
        return tally(published.plan, self.answers_to(published), self.same_person)

    @property
    def same_person(self) -> dict[str, str]:
        return {k: v for k, v in self.names.items() if v}

    def summary(self, published: Published) -> str:
        """The plan as its reader sees it: the window, the reason, the VMs (a JEA reader's own)
        and what happens to each, who approved, objected or has not answered, and any other
        answer (an owner sees only the owners of their own VMs counted)."""
        plan = published.plan
        lines = [f"Plan {plan.id}: {plan.host} down for maintenance from {plan.window}",
                 *([f"Reason: {plan.reason}"] if plan.reason else []),
                 f"Planned by {plan.planned_by}; published by {published.by} at {published.time}.",
                 "", "VMs and what happens to each:"]
        lines += [f"- {i.vm_name} ({f'owner {i.owner}' if i.owner else 'no owner on record'}): "
                  f"{i.happens}" for i in plan.items]
        return "\n".join([*lines, "", *self.answer_lines(published)])

    def answer_lines(self, published: Published) -> list[str]:
        """Who approved, objected or has not answered (the tally, with each one's line), then
        anyone else who answered."""
        counted = self.tally(published)
        lines = [f"Answers: {counted.line()}."]
        lines += [f"Approved by {o}: {a.text or '(no text)'} ({a.by}, {a.at})"
                  for o, a in counted.approved.items()]
        lines += [f"Objected by {o}: {a.text or '(no text)'} ({a.by}, {a.at})"
                  for o, a in counted.objected.items()]
        lines += [f"Not answered: {o}" for o in counted.waiting]
        seen = {id(a) for a in (*counted.approved.values(), *counted.objected.values())}
        others = [a for a in self.answers_to(published) if id(a) not in seen]
        latest = {a.by.lower(): a for a in others}  # each other person's latest
        lines += [f"Also answered: {a.line()}" for a in latest.values()
                  if not any(a.by.lower() == b.by.lower()
                             for b in (*counted.approved.values(), *counted.objected.values()))]
        return lines


def read_plans(clients: Iterable[Any], resolve: Callable[[str], str] | None = None,
               ) -> PlansRead:
    """Each client's host's plans and answers (`Client.downtime_plans`), and the display name of
    every answering account (`resolve`: a SID or DOMAIN\\name to its directory display name, ""
    when unknown), so that tally() counts an account's answer for the owner the policy names by
    display name. A host that cannot be read is named in `failed`, never fatal."""
    shared, failed = [], {}
    for client in clients:
        try:
            shared.append(client.downtime_plans())
        except ConsoleError as e:
            failed[str(client.name)] = str(e)
    names: dict[str, str] = {}
    if resolve is not None:
        for answer in (a for s in shared for a in s.answers):
            key = answer.by.lower()
            if key not in names:
                try:
                    names[key] = resolve(answer.sid or answer.by)
                except ConsoleError:
                    names[key] = ""
    return PlansRead(tuple(shared), failed, names)

"""`hvconsole host selftest HOST`: certify a real Hyper-V host in minutes.

A Hyper-V administrator runs it against one host. Through the admin endpoint (the kept PSRP
session of console/hosts/default.py) it makes one disposable VM (`hvconsole-selftest-<random>`:
generation 2, no virtual disk, the smallest startup memory, a DVD drive, automatic checkpoints
off) and, where the policy gives the host an ISO library folder, a small ISO-9660 image it builds
itself (pycdlib), written into the first library folder in base64 chunks. Then it runs every
operation the console has through the admin endpoint and, when a delegated account is given,
through the JEA endpoint as that account:

- inventory, host facts and the state poll;
- every power action from every state the state table (console/states.py) accepts it in, the VM
  brought into each state first, and from one state where it is refused (wrong_state);
- a production and a standard checkpoint created, each applied, one deleted, the rest deleted
  as a subtree;
- the ISO mounted and ejected (Off and Running), and refused outside the library and while Saved;
- a VM id that is not on the host; for the JEA account, every operation its grants refuse on the
  selftest VM (the generated grants decide what it may: HostGrants.rights), and the endpoint's
  digest against the policy's (JeaClient.enforced_digest, console.jea.lag).

Each step records what was sent (operation and parameters), what came back (the answer document
and the error stream, as raw text), what the host contract (docs/host-operations.md) and the state
table expected, pass or fail, and its time. The clean-up always runs, after a failure or Ctrl+C
too: the VM (with its checkpoints) and the ISO are removed, and what an interrupted run left
behind (a VM whose name starts with the prefix, an ISO so named in a library folder) is found by
`find_leftovers` and offered for removal the next time.

The set-up and clean-up scripts are resources/powershell/selftest/*.ps1, run after the prelude
_common.ps1 like the operations (parameters as one base64 JSON document), held to Microsoft's
facts by the checker (tools/pscheck.py) and run by the lab in the tests. No Qt, no lab here.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import io
import secrets
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cache
from typing import Any

from . import __version__, scripts, states
from .errors import HostError
from .hosts import ActionOutcome, AdminClient, JeaClient, lag
from .hosts.psrp import Pipeline
from .inventory import VM, HostFacts
from .jea import CHECKPOINT_PRIVILEGE, MEDIA_PRIVILEGE, POWER_PRIVILEGE, HostGrants, JeaError, host_grants
from .paths import POWERSHELL
from .policy import Policy
from .text import one_line

PREFIX = "hvconsole-selftest-"  # every VM and ISO the selftest makes is named so, and only those
FOLDER = POWERSHELL / "selftest"
SCRIPTS = ("environment", "leftovers", "create_vm", "set_checkpoint_type", "remove_vm",
           "write_iso", "remove_iso")
MiB = 1024 * 1024
# New-VM -MemoryStartupBytes: the help names no minimum (only the default, 512 MB) and the cmdlet
# checks none (NewVM.cs hands it to the management service). 32 MB is the least Hyper-V Manager
# accepts; a host that refuses it fails the creation step with its own words (--memory-mb).
MEMORY_BYTES = 32 * MiB
ISO_LIMIT = 1 * MiB  # the selftest's ISO is about 50 KB; anything near this is a bug
CHUNK_BYTES = 24 * 1024  # 32 KB of base64 a script: far below the 64 KB a host call may carry
# The states the selftest can bring a VM into; FastSaved and Hibernated it cannot.
STABLE_STATES = ("Off", "Running", "Saved", "Paused")
# The state each power action leaves the VM in (its cmdlet's documented effect).
RESULT: dict[str, str] = {
    "start": "Running", "shutdown": "Off", "turnoff": "Off", "reset": "Running",
    "save": "Saved", "pause": "Paused", "resume": "Running", "delete_saved_state": "Off",
}
# The JEA endpoint's function for each operation (console/jea.py FUNCTIONS).
FUNCTIONS = {"inventory": "Get-HvcInventory", "host_facts": "Get-HvcHostFacts",
             "vm_state": "Get-HvcVMState", "power": "Invoke-HvcPower",
             "checkpoint": "Invoke-HvcCheckpoint", "media": "Invoke-HvcMedia",
             "digest": "Get-HvcPolicyDigest"}


# --- the scripts ---------------------------------------------------------------------------------

@cache
def _body(name: str) -> str:
    """The prelude's settings and the helpers the script calls (each helper is one line, as
    console.scripts.body takes them), the selftest's helpers it calls, then the script."""
    if name not in SCRIPTS:
        raise ValueError(f"unknown selftest script {name!r}")
    own = scripts.compact((FOLDER / f"{name}.ps1").read_text(encoding="utf-8"))
    helpers = [line for text in ("_common.ps1", "selftest/_selftest.ps1")
               for line in scripts.compact((POWERSHELL / text).read_text(encoding="utf-8"))
               .splitlines()]
    wanted = scripts.called_helpers(helpers, own)
    kept = [line for line in helpers
            if (defined := scripts.defined_function(line)) is None or defined in wanted]
    return "\n".join([*kept, own]).replace("%PREFIX%", PREFIX)


def script(name: str, params: dict[str, Any]) -> str:
    """A selftest script as sent: its parameters as the operations' are ($p, base64 JSON), then
    the prelude, the selftest's helpers and the script itself."""
    return f"$p='{scripts.encode_params(params)}'\n" + _body(name)


def shipped_texts() -> dict[str, str]:
    """Every selftest script as sent, with representative parameters (tools/pscheck.py checks
    them as it checks the operations)."""
    vm, library = "42e4aaca-7231-5411-b96b-d03849b0dae1", ["D:\\ISO\\"]
    iso = f"D:\\ISO\\{PREFIX}0a1b2c.iso"
    params: dict[str, dict[str, Any]] = {
        "environment": {}, "leftovers": {"library": library},
        "create_vm": {"name": f"{PREFIX}0a1b2c", "memory_bytes": MEMORY_BYTES},
        "set_checkpoint_type": {"vm_id": vm, "checkpoint_type": "Standard"},
        "remove_vm": {"vm_id": vm},
        "write_iso": {"path": iso, "library": library, "offset": 0, "last": True,
                      "data": "AAAA"},
        "remove_iso": {"path": iso, "library": library},
    }
    return {name: script(name, params[name]) for name in SCRIPTS}


def make_iso() -> bytes:
    """A small ISO-9660 image holding one text file: what the media steps mount."""
    import pycdlib  # only the selftest needs it

    text = b"hvconsole host selftest: a disposable ISO, removed when the selftest ends.\r\n"
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=1, vol_ident="HVCSELFTEST")
    iso.add_fp(io.BytesIO(text), len(text), "/README.TXT;1")
    out = io.BytesIO()
    iso.write_fp(out)
    iso.close()
    data = out.getvalue()
    if len(data) > ISO_LIMIT:
        raise ValueError(f"the selftest ISO is {len(data)} bytes, more than {ISO_LIMIT}")
    return data


# --- what came back ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Answer:
    """A call's raw answer: the pipeline's output objects (the answer document) and its error
    stream, as text."""

    output: tuple[str, ...]
    errors: tuple[str, ...]

    @classmethod
    def of(cls, pipeline: Pipeline) -> Answer:
        return cls(tuple(o if isinstance(o, str) else str(o) for o in pipeline.output),
                   tuple(_error_text(e) for e in pipeline.errors))

    def as_json(self) -> dict[str, Any]:
        return {"output": list(self.output), "errors": list(self.errors)}


def _error_text(record: Any) -> str:
    message = str(getattr(record, "message", "") or record)
    fqid = str(getattr(record, "fq_error", "") or "")
    return f"{message} ({fqid})" if fqid else message


class RecordingAdminClient(AdminClient):
    """The admin endpoint's client, keeping the raw answer of its last call (`last`)."""

    last: Answer | None = None

    def _document(self, pipeline: Pipeline, vm_id: str | None = None) -> Any:
        self.last = Answer.of(pipeline)
        return super()._document(pipeline, vm_id)


class RecordingJeaClient(JeaClient):
    """The JEA endpoint's client, keeping the raw answer of its last call (`last`)."""

    last: Answer | None = None

    def _document(self, pipeline: Pipeline, vm_id: str | None = None) -> Any:
        self.last = Answer.of(pipeline)
        return super()._document(pipeline, vm_id)


Recording = RecordingAdminClient | RecordingJeaClient


# --- steps and the report ----------------------------------------------------------------------

@dataclass
class Step:
    """One call and its judgement. outcome: pass, fail or skip for a test; done or fail for a
    set-up or clean-up step (group setup / cleanup)."""

    number: int
    endpoint: str  # admin | jea
    group: str  # setup, inventory, host_facts, vm_state, digest, power, checkpoint, media, absent, cleanup
    title: str
    sent: dict[str, Any]
    expected: str
    outcome: str
    detail: str = ""
    answer: Answer | None = None
    seconds: float = 0.0

    @property
    def is_test(self) -> bool:
        return self.group not in ("setup", "cleanup")

    def as_json(self) -> dict[str, Any]:
        return {"number": self.number, "endpoint": self.endpoint, "group": self.group,
                "title": self.title, "sent": self.sent, "expected": self.expected,
                "outcome": self.outcome, "detail": self.detail,
                "answer": self.answer.as_json() if self.answer else None,
                "seconds": round(self.seconds, 3)}


@dataclass(frozen=True)
class Expect:
    """What a call should give. code: the contract's refusal code it must fail with (None: it
    must succeed); why: the table or contract that says so; check: on success, None or what is
    wrong with the result; after: a read-back (admin endpoint) afterwards, None or what is
    wrong."""

    why: str
    code: str | None = None
    check: Callable[[Any], str | None] | None = None
    after: Callable[[], str | None] | None = None

    def text(self) -> str:
        head = f"refused with {self.code}" if self.code else "done"
        return f"{head}: {self.why}" if self.why else head


@dataclass(frozen=True)
class Leftovers:
    """What earlier runs left on the host: VMs and library ISOs named with the prefix."""

    vms: tuple[dict[str, Any], ...] = ()
    isos: tuple[dict[str, Any], ...] = ()

    @property
    def empty(self) -> bool:
        return not self.vms and not self.isos

    def lines(self) -> list[str]:
        return ([f"VM {v.get('name')} ({v.get('id')}, {v.get('state')})" for v in self.vms]
                + [f"ISO {i.get('path')} ({i.get('size_bytes')} bytes)" for i in self.isos])

    def as_json(self) -> dict[str, Any]:
        return {"vms": list(self.vms), "isos": list(self.isos)}


@dataclass
class Report:
    host: str
    url: str
    admin_user: str
    jea_user: str
    started: datetime
    seconds: float
    environment: dict[str, Any]
    created: dict[str, Any]
    steps: list[Step]
    interrupted: bool
    cleaned: bool  # everything the run made is gone (read back)
    left: Leftovers = field(default_factory=Leftovers)

    def count(self, outcome: str) -> int:
        return sum(1 for s in self.steps if s.is_test and s.outcome == outcome)

    @property
    def setup_failures(self) -> int:
        return sum(1 for s in self.steps if not s.is_test and s.outcome == "fail")

    @property
    def ok(self) -> bool:
        return (not self.interrupted and self.cleaned and self.count("fail") == 0
                and self.setup_failures == 0)

    def as_json(self) -> dict[str, Any]:
        return {
            "tool": "hvconsole host selftest", "version": __version__, "host": self.host,
            "url": self.url, "admin_user": self.admin_user, "jea_user": self.jea_user or None,
            "started": self.started.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "seconds": round(self.seconds, 3), "environment": self.environment,
            "created": self.created,
            "summary": {"passed": self.count("pass"), "failed": self.count("fail"),
                        "skipped": self.count("skip"), "setup_failures": self.setup_failures,
                        "interrupted": self.interrupted, "cleaned": self.cleaned, "ok": self.ok},
            "left": self.left.as_json(),
            "steps": [s.as_json() for s in self.steps],
        }

    def summary(self) -> list[str]:
        """The readable summary: the host, every failed or skipped step with why, the counts,
        the clean-up."""
        env = self.environment
        lines = [f"hvconsole host selftest of {self.host} ({self.url})",
                 f"  {env.get('os_caption', '?')}, build {env.get('os_build', '?')}; PowerShell "
                 f"{env.get('powershell_version', '?')}; Hyper-V module "
                 f"{', '.join(env.get('hyperv_module_versions') or ['?'])}; culture "
                 f"{env.get('culture') or '(invariant)'}, system languages "
                 f"{', '.join(env.get('os_languages') or ['?'])}",
                 f"  admin endpoint as {self.admin_user}"
                 + (f"; JEA endpoint as {self.jea_user}" if self.jea_user else "; no JEA account")]
        for s in self.steps:
            if s.outcome in ("fail", "skip"):
                lines.append(f"  {s.outcome.upper():4}  #{s.number} {s.endpoint} {s.group}: {s.title}")
                if s.expected != "-":
                    lines.append(f"        expected {s.expected}")
                if s.detail:
                    lines.append(f"        {s.detail}")
        lines.append(f"  {self.count('pass')} passed, {self.count('fail')} failed, "
                     f"{self.count('skip')} skipped, {self.setup_failures} set-up or clean-up "
                     f"failures, in {self.seconds:.1f} s"
                     + (" (interrupted)" if self.interrupted else ""))
        if self.cleaned:
            lines.append("  cleaned up: the VM, its checkpoints and the ISO are gone")
        else:
            lines.append("  NOT cleaned up; left on the host (the next selftest offers to remove "
                         "them):")
            lines.extend(f"    {line}" for line in self.left.lines() or ["(could not be read)"])
        return [one_line(line) if i else line for i, line in enumerate(lines)]


# --- the selftest --------------------------------------------------------------------------------

class Selftest:
    """One run against one host. `admin`: the admin endpoint's client (a Hyper-V administrator);
    `jea`, `jea_sids`: the JEA endpoint's client and the delegated account's token SIDs, or None.
    `progress` sees each step as it ends (the command prints it)."""

    def __init__(self, host: str, admin: RecordingAdminClient, policy: Policy, *,
                 jea: RecordingJeaClient | None = None, jea_sids: Iterable[str] = (),
                 admin_user: str = "", jea_user: str = "", today: date | None = None,
                 memory_bytes: int = MEMORY_BYTES, tag: str | None = None,
                 progress: Callable[[Step], None] = lambda step: None) -> None:
        self.host, self.admin, self.jea, self.policy = host, admin, jea, policy
        self.jea_sids = frozenset(jea_sids)
        self.admin_user, self.jea_user = admin_user, jea_user
        self.today = today or date.today()
        self.memory_bytes = memory_bytes
        self.progress = progress
        self.tag = tag or secrets.token_hex(3)
        self.vm_name = PREFIX + self.tag
        entry = policy.host(host)
        self.library: tuple[str, ...] = tuple(entry.iso_library) if entry else ()
        self.iso_path = (self.library[0].rstrip("\\") + "\\" + self.vm_name + ".iso"
                         if self.library else None)
        try:
            self.grants: HostGrants | None = host_grants(policy, host)
        except JeaError:
            self.grants = None
        self.steps: list[Step] = []
        self.environment: dict[str, Any] = {}
        self.vm_id: str | None = None
        self.drive: tuple[str, int, int] | None = None
        self.state: str | None = None  # the selftest VM's state as last answered
        self.iso: bytes | None = None
        self.iso_written = False
        self.jea_silent = ""  # why the JEA endpoint gave no answer at all
        self.broken: set[tuple[str, str]] = set()  # (state, action) moves that failed

    # --- what it makes --------------------------------------------------------------------

    def plan(self) -> list[str]:
        """What the run will make on the host, for the question before it does."""
        out = [f"VM {self.vm_name}: generation 2, no virtual disk, "
               f"{self.memory_bytes // MiB} MB startup memory, a DVD drive, automatic checkpoints "
               f"off; started, saved, paused, reset, turned off, checkpointed and restored"]
        if self.iso_path:
            out.append(f"ISO {self.iso_path}: about 50 KB, written into the library folder "
                       f"{self.library[0]} and mounted on that VM")
        else:
            out.append(f"no ISO: the policy gives {self.host} no ISO library folder, so the media "
                       f"steps are skipped")
        out.append("both are removed at the end, also after a failure or Ctrl+C")
        return out

    # --- leftovers of earlier runs ----------------------------------------------------------

    def find_leftovers(self) -> Leftovers:
        data = self.admin.run_script(script("leftovers", {"library": list(self.library)}))
        data = data if isinstance(data, dict) else {}
        return Leftovers(tuple(v for v in data.get("vms") or [] if isinstance(v, dict)),
                         tuple(i for i in data.get("isos") or [] if isinstance(i, dict)))

    def remove_leftovers(self, found: Leftovers) -> None:
        """Remove what an earlier run left (the scripts refuse anything not named with the
        prefix); each removal is a clean-up step."""
        for vm in found.vms:
            self._script_step("cleanup", f"remove the leftover VM {vm.get('name')}",
                              "remove_vm", {"vm_id": str(vm.get("id"))},
                              "the VM turned off and removed with its checkpoints")
        for iso in found.isos:
            self._script_step("cleanup", f"remove the leftover ISO {iso.get('path')}",
                              "remove_iso", {"path": str(iso.get("path")),
                                             "library": list(self.library)},
                              "the ISO removed from the library")

    # --- the run --------------------------------------------------------------------------

    def run(self, url: str = "") -> Report:
        """Make, test, clean up; the clean-up runs whatever happens (KeyboardInterrupt is
        recorded as `interrupted`, anything else is raised after it)."""
        started, start = datetime.now(UTC), time.monotonic()
        interrupted = False
        try:
            if self._environment():
                self._create()
                if self.vm_id:
                    self._battery("admin")
                    if self.jea is not None:
                        self._battery("jea")
        except KeyboardInterrupt:
            interrupted = True
            # The interrupted call's connection cannot go on: the clean-up opens a new session.
            self.admin.close()
        finally:
            cleaned, left = self._cleanup_shielded()
        return Report(self.host, url, self.admin_user, self.jea_user, started,
                      time.monotonic() - start, self.environment, self._created(), self.steps,
                      interrupted or cleaned is None, bool(cleaned), left)

    def _created(self) -> dict[str, Any]:
        return {"vm": {"name": self.vm_name, "id": self.vm_id, "generation": 2,
                       "memory_startup_bytes": self.memory_bytes,
                       "dvd_drive": list(self.drive) if self.drive else None},
                "iso": {"path": self.iso_path, "size_bytes": len(self.iso) if self.iso else None,
                        "sha256": hashlib.sha256(self.iso).hexdigest() if self.iso else None}
                if self.iso_path else None}

    # --- set-up ---------------------------------------------------------------------------

    def _environment(self) -> bool:
        step, data = self._script_step("setup", "read the host's environment", "environment", {},
                                       "the Windows build, PowerShell, Hyper-V module and cultures")
        if isinstance(data, dict):
            self.environment = data
        return step.outcome == "done"

    def _create(self) -> None:
        def check(data: Any) -> str | None:
            vm = data.get("vm") if isinstance(data, dict) else None
            if not isinstance(vm, dict) or not vm.get("id"):
                return "the answer names no VM"
            self.vm_id = str(vm["id"]).lower()
            self.state = str(vm.get("state") or "")
            drives = [d for d in vm.get("dvd_drives") or [] if isinstance(d, dict)]
            if drives:
                d = drives[0]
                self.drive = (str(d.get("controller_type")), int(d.get("controller") or 0),
                              int(d.get("location") or 0))
            problems = [what for what, bad in (
                (f"state {vm.get('state')}, not Off", vm.get("state") != "Off"),
                (f"generation {vm.get('generation')}", vm.get("generation") != 2),
                (f"startup memory {vm.get('memory_startup_bytes')}",
                 vm.get("memory_startup_bytes") != self.memory_bytes),
                ("automatic checkpoints on", vm.get("automatic_checkpoints") is not False),
                ("no DVD drive", not drives)) if bad]
            return "; ".join(problems) or None

        step, _ = self._script_step(
            "setup", f"create the VM {self.vm_name}", "create_vm",
            {"name": self.vm_name, "memory_bytes": self.memory_bytes},
            "New-VM -Generation 2 -NoVHD -BootDevice CD: Off, the memory asked for, a DVD drive, "
            "automatic checkpoints off", check)
        if self.vm_id is None and step.answer is None:
            self._adopt_by_name()  # no answer: it may have been made all the same
        if self.iso_path and self.vm_id:
            self._write_iso()

    def _adopt_by_name(self) -> None:
        try:
            found = self.find_leftovers()
        except HostError:
            return
        for vm in found.vms:
            if vm.get("name") == self.vm_name:
                self.vm_id = str(vm.get("id")).lower()

    def _write_iso(self) -> None:
        assert self.iso_path
        self.iso = make_iso()
        digest = hashlib.sha256(self.iso).hexdigest()
        chunks = [self.iso[i:i + CHUNK_BYTES] for i in range(0, len(self.iso), CHUNK_BYTES)]
        for n, chunk in enumerate(chunks):
            offset, last = n * CHUNK_BYTES, n == len(chunks) - 1

            def check(data: Any, size: int = offset + len(chunk), last: bool = last) -> str | None:
                held = data.get("size_bytes") if isinstance(data, dict) else "?"
                if held != size:
                    return f"the file holds {held} bytes, not {size}"
                if last and str(data.get("sha256") or "").lower() != digest:
                    return f"its SHA256 is {data.get('sha256')}, not {digest}"
                return None

            params = {"path": self.iso_path, "library": list(self.library), "offset": offset,
                      "last": last, "data": _b64(chunk)}
            step, _ = self._script_step(
                "setup", f"write the ISO, part {n + 1} of {len(chunks)}", "write_iso", params,
                f"{self.iso_path} holds {offset + len(chunk)} bytes"
                + (f", SHA256 {digest}" if last else ""), check)
            if n == 0 and (step.answer is not None or step.outcome == "done"):
                self.iso_written = True  # whatever became of it, the clean-up removes it
            if step.outcome != "done":
                return

    # --- the operations, through one endpoint ---------------------------------------------------

    def _battery(self, endpoint: str) -> None:
        if endpoint == "jea" and self.grants is None:
            self._skip("jea", "all", "every JEA step", "", f"{self.host} is not in the policy's "
                       f"hosts table: there are no generated grants to hold its endpoint to")
            return
        self._inventory(endpoint)
        if endpoint == "jea" and self.jea_silent:
            self._skip("jea", "all", "the other JEA steps", "", f"the JEA endpoint gave no "
                       f"answer: {self.jea_silent}")
            return
        self._host_facts(endpoint)
        self._vm_state(endpoint)
        if endpoint == "jea":
            self._digest()
        self._power(endpoint)
        self._checkpoints(endpoint)
        self._media(endpoint)
        self._absent(endpoint)

    def _rights(self, endpoint: str, vm_id: str, name: str) -> frozenset[str] | None:
        """The JEA account's privileges on a VM by the generated grants; None: the admin
        endpoint, which may do anything."""
        if endpoint == "admin" or self.grants is None:
            return None
        return self.grants.rights(self.jea_sids, vm_id, name, self.today)

    def _may(self, endpoint: str, privilege: str) -> bool:
        rights = self._rights(endpoint, self.vm_id or "", self.vm_name)
        return rights is None or privilege in rights

    def _denied(self, privilege: str, after: Callable[[], str | None] | None = None) -> Expect:
        return Expect(f"the generated grants give {self.jea_user} no {privilege} on "
                      f"{self.vm_name}", code="denied", after=after)

    # reads

    def _inventory(self, endpoint: str) -> None:
        client = self._client(endpoint)
        if endpoint == "jea" and self.grants is not None and not self.grants.may_connect(
                self.jea_sids, self.today):
            expect = Expect(f"{self.jea_user} holds no allow grant on {self.host}", code="denied")
        else:
            view = self._may(endpoint, "vm.view")

            def check(vms: Any) -> str | None:
                mine = [v for v in vms if v.id == self.vm_id]
                if endpoint == "jea":
                    hidden = [v.name for v in vms if "vm.view" not in (
                        self._rights("jea", v.id, v.name) or frozenset())]
                    if hidden:
                        return f"shows VMs the grants do not let {self.jea_user} view: {', '.join(hidden)}"
                    if bool(mine) != view:
                        return f"the selftest VM is {'missing' if view else 'shown'}"
                    if not view:
                        return None
                if not mine:
                    return "the selftest VM is missing"
                return _vm_problems(mine[0], self.state)

            expect = Expect("every VM the caller may view, the selftest VM as made (generation "
                            "2, its state, no disk, no checkpoint, its DVD drive)"
                            if view else f"the VMs {self.jea_user} may view, not the selftest VM",
                            check=check)
        step, _ = self._call(endpoint, "inventory", "inventory", "the inventory", {},
                             client.inventory, expect)
        if endpoint == "jea" and step.answer is None and step.outcome == "fail":
            self.jea_silent = step.detail

    def _host_facts(self, endpoint: str) -> None:
        client = self._client(endpoint)
        library = list(self.library)
        if endpoint == "jea":
            assert self.grants is not None
            vms = self._admin_vms()
            allowed = self.grants.may_read_facts(self.jea_sids, [(v.id, v.name) for v in vms],
                                                 self.today)
            if not allowed:
                self._call(endpoint, "host_facts", "host_facts", "the host's facts", {},
                           lambda: client.host_facts(library),
                           Expect(f"{self.jea_user} holds no grant on {self.host} or on any of "
                                  f"its VMs (HostGrants.may_read_facts)", code="denied"))
                return

        def check(facts: Any) -> str | None:
            assert isinstance(facts, HostFacts)
            problems = []
            build = self.environment.get("os_build")
            if not facts.name:
                problems.append("no host name")
            if build and facts.os_build != build:
                problems.append(f"build {facts.os_build}, the registry says {build}")
            if not facts.storage:
                problems.append("no storage listed")
            if self.iso_written and self.iso is not None:
                found = [i for i in facts.isos if i.path.lower() == str(self.iso_path).lower()]
                if not found:
                    problems.append(f"the selftest ISO {self.iso_path} is not listed")
                elif found[0].size_bytes != len(self.iso):
                    problems.append(f"the ISO's size is {found[0].size_bytes}, not {len(self.iso)}")
            return "; ".join(problems) or None

        self._call(endpoint, "host_facts", "host_facts", "the host's facts",
                   {"library": library} if endpoint == "admin" else {},
                   lambda: client.host_facts(library),
                   Expect("its name, the build the registry gives, its storage, the library's "
                          "ISOs (the selftest's among them)", check=check))

    def _vm_state(self, endpoint: str) -> None:
        client = self._client(endpoint)
        assert self.vm_id
        absent = str(uuid.uuid4())
        view = self._may(endpoint, "vm.view")

        def check(found: Any) -> str | None:
            if absent in found:
                return "an id that is not on the host is listed"
            if not view:
                return "the selftest VM is listed" if self.vm_id in found else None
            got = found.get(self.vm_id)
            if got is None:
                return "the selftest VM is not listed"
            return None if got[0] == self.state else f"state {got[0]}, expected {self.state}"

        self._call(endpoint, "vm_state", "vm_state", "the selftest VM's state, and an unknown id",
                   {"vm_ids": [self.vm_id, absent]},
                   lambda: client.vm_state([self.vm_id or "", absent]),
                   Expect(f"the selftest VM {self.state}, the unknown id left out" if view else
                          f"nothing: {self.jea_user} may not view the selftest VM, and the "
                          f"unknown id is left out", check=check))

    def _digest(self) -> None:
        assert self.jea is not None and self.grants is not None
        jea, grants = self.jea, self.grants
        if not grants.may_connect(self.jea_sids, self.today):
            self._call("jea", "digest", "digest", "the grants the endpoint enforces", {},
                       jea.enforced_digest,
                       Expect(f"{self.jea_user} holds no allow grant on {self.host}",
                              code="denied"))
            return

        def check(enforced: Any) -> str | None:
            behind = lag(self.host, str(enforced), self.policy)
            return str(behind) if behind else None

        self._call("jea", "digest", "digest", "the grants the endpoint enforces", {},
                   jea.enforced_digest,
                   Expect(f"sha256 {grants.sha256[:12]}..., the digest of the grants the policy "
                          f"gives {self.host} (console.jea.host_grants)", check=check))

    # power

    def _power(self, endpoint: str) -> None:
        """Every (state, action) the table accepts, and one refusal per action."""
        todo: list[tuple[str, str, bool]] = []  # (state, action, refused)
        for action in states.POWER_CMDLETS:
            accepts = states.power_accepts(action)
            allowed = [s for s in STABLE_STATES if s in accepts]
            refused_in = next((s for s in STABLE_STATES if s not in accepts), None)
            if not self._may(endpoint, POWER_PRIVILEGE[action]):
                todo.append((allowed[0], action, False))  # one refusal by the grants is enough
                continue
            todo.extend((s, action, False) for s in allowed)
            if refused_in is not None:
                todo.append((refused_in, action, True))
            for state in sorted(accepts - set(STABLE_STATES)):
                self._skip(endpoint, "power", f"{action} from {state}",
                           f"done: the state table accepts {action} from {state}",
                           f"the selftest cannot bring a VM into {state}")
        while todo:
            current = self.state or ""
            here = [t for t in todo if t[0] == current]
            pick = min(here, key=lambda t: (not t[2], t[1])) if here else min(
                todo, key=lambda t: (_distance(current, t[0], self.broken), t[1]))
            todo.remove(pick)
            state, action, refused = pick
            why = self._ensure(state)
            if why:
                self._skip(endpoint, "power", f"{action} from {state}", "", why)
                continue
            self._power_step(endpoint, state, action, refused)

    def _power_step(self, endpoint: str, state: str, action: str, refused: bool) -> None:
        client = self._client(endpoint)
        assert self.vm_id
        vm_id = self.vm_id
        unchanged = self._unchanged(state)
        if not self._may(endpoint, POWER_PRIVILEGE[action]):
            expect = self._denied(POWER_PRIVILEGE[action], unchanged)
        elif refused:
            expect = Expect(f"the state table does not accept {action} from {state} "
                            f"(console/states.py)", code="wrong_state", after=unchanged)
        elif action == "shutdown":
            expect = Expect("the VM has no guest operating system, so its shutdown integration "
                            "service cannot answer (host contract: no_shutdown_service)",
                            code="no_shutdown_service", after=unchanged)
        else:
            result = RESULT[action]

            def check(outcome: Any) -> str | None:
                return None if outcome.vm_state == result else \
                    f"the VM is {outcome.vm_state} afterwards, not {result}"

            expect = Expect(f"the state table accepts {action} from {state}; "
                            f"{states.POWER_CMDLETS[action]} leaves the VM {result}", check=check)
        step, outcome = self._call(endpoint, "power", "power", f"{action} from {state}",
                                   {"vm_id": vm_id, "action": action},
                                   lambda: client.power(vm_id, action), expect)
        if step.outcome == "fail" and endpoint == "admin" and not refused:
            self.broken.add((state, action))  # the set-up moves go around it
        self._track(outcome, step)

    def _unchanged(self, state: str) -> Callable[[], str | None]:
        def after() -> str | None:
            now = self._read_state()
            return None if now == state else f"the VM is {now} afterwards, not {state} as before"
        return after

    def _track(self, outcome: Any, step: Step) -> None:
        """The VM's state after a step: from its answer when it passed, else read again."""
        if step.outcome in ("pass", "done") and isinstance(outcome, ActionOutcome) \
                and outcome.vm_state:
            self.state = outcome.vm_state
        else:
            self.state = self._read_state()

    def _ensure(self, state: str) -> str:
        """Bring the selftest VM into `state` through the admin endpoint (set-up steps), around
        any move that failed before; "" when it is there, else why not."""
        if self.state is None:
            self.state = self._read_state()
        failed = ""
        while self.state != state:
            route = _route(self.state or "", state, self.broken)
            if not route:
                return (f"the VM could not be brought to {state} ({failed})" if failed else
                        f"the VM is {self.state or 'unknown'} and the selftest knows no way to "
                        f"{state}")
            assert self.vm_id
            vm_id, action = self.vm_id, route[0]
            before, expected = self.state or "", RESULT[action]

            def check(outcome: Any, expected: str = expected) -> str | None:
                return None if outcome.vm_state == expected else \
                    f"the VM is {outcome.vm_state}, not {expected}"

            step, outcome = self._setup_call(
                f"bring the VM to {state}: {action} from {before}", "power",
                {"vm_id": vm_id, "action": action},
                functools.partial(self.admin.power, vm_id, action), f"the VM {expected}", check)
            self._track(outcome, step)
            if step.outcome != "done":
                self.broken.add((before, action))
                failed = step.detail
        return ""

    # checkpoints

    def _checkpoints(self, endpoint: str) -> None:
        assert self.vm_id
        why = self._ensure("Off") or self._set_checkpoint_type("Production")
        if why:
            self._skip(endpoint, "checkpoint", "every checkpoint step", "", why)
            return
        prod = self._checkpoint(endpoint, "create a production checkpoint of the Off VM",
                                "create", name=f"{PREFIX}production",
                                why="a production checkpoint holds no memory: type Standard, "
                                    "state Off (host.toml [checkpoints]); the VM stays Off",
                                checkpoint=("Standard", "Off", None), vm="Off")
        why = self._set_checkpoint_type("Standard") or self._ensure("Running")
        if why or prod is None:
            self._skip(endpoint, "checkpoint", "the other checkpoint steps", "",
                       why or "the production checkpoint was not made")
            self._set_checkpoint_type("Production")
            return
        std = self._checkpoint(endpoint, "create a standard checkpoint of the Running VM",
                               "create", name=f"{PREFIX}standard",
                               why="a standard checkpoint of a running VM holds its memory: state "
                                   "Saved, below the production one; the VM keeps running",
                               checkpoint=("Standard", "Saved", prod), vm="Running")
        child = self._checkpoint(endpoint, "create a second standard checkpoint", "create",
                                 name=f"{PREFIX}child", why="below the standard one",
                                 checkpoint=("Standard", "Saved", std), vm="Running") if std else None
        self._checkpoint(endpoint, "apply the production checkpoint to the Running VM", "apply",
                         checkpoint_id=prod,
                         why="Restore-VMSnapshot saves a Running VM first and starts it again "
                             "only with a checkpoint that holds memory: the VM Off "
                             "(host.toml [checkpoints] applied)", vm="Off")
        if std:
            self._checkpoint(endpoint, "apply the standard checkpoint to the Off VM", "apply",
                             checkpoint_id=std, why="a checkpoint holding memory leaves the VM "
                             "Saved", vm="Saved")
        if child:
            self._checkpoint(endpoint, "delete the newest checkpoint", "delete",
                             checkpoint_id=child, why="that checkpoint gone, the others kept",
                             gone={child}, kept={prod, *([std] if std else [])})
        self._checkpoint(endpoint, "delete the production checkpoint and its subtree",
                         "delete_subtree", checkpoint_id=prod,
                         why="it and every checkpoint below it gone",
                         gone={prod, *([std] if std else [])})
        self._set_checkpoint_type("Production")

    def _checkpoint(self, endpoint: str, title: str, action: str, *, why: str,
                    name: str | None = None, checkpoint_id: str | None = None,
                    checkpoint: tuple[str, str, str | None] | None = None, vm: str | None = None,
                    gone: set[str] | None = None, kept: set[str] | None = None) -> str | None:
        """One checkpoint action through `endpoint`; when the grants refuse it there, the
        refusal is the step and the admin endpoint does it as set-up, so the sequence goes on.
        The new checkpoint's id, or None."""
        assert self.vm_id
        vm_id = self.vm_id
        privilege = CHECKPOINT_PRIVILEGE[action]
        params: dict[str, Any] = {"vm_id": vm_id, "action": action}
        if checkpoint_id:
            params["checkpoint_id"] = checkpoint_id
        if name:
            params["name"] = name

        def run(client: Any) -> Callable[[], Any]:
            return lambda: client.checkpoint(vm_id, action, checkpoint_id, name)

        def check(outcome: Any) -> str | None:
            problems = []
            if vm and outcome.vm_state != vm:
                problems.append(f"the VM is {outcome.vm_state}, not {vm}")
            if checkpoint:
                made = outcome.checkpoint
                kind, state, parent = checkpoint
                if made is None:
                    problems.append("the answer holds no checkpoint")
                elif (made.type, made.state) != (kind, state) or made.parent_id != parent:
                    problems.append(f"type {made.type}, state {made.state}, parent "
                                    f"{made.parent_id}; expected {kind}, {state}, {parent}")
            if gone is not None or kept is not None:
                ids = self._checkpoint_ids()
                if ids is None:
                    problems.append("the checkpoints could not be read back")
                else:
                    problems += [f"{i} is still there" for i in sorted((gone or set()) & ids)]
                    problems += [f"{i} is gone" for i in sorted((kept or set()) - ids)]
            return "; ".join(problems) or None

        expect = Expect(why, check=check)
        if not self._may(endpoint, privilege):
            before = self._checkpoint_ids()
            self._call(endpoint, "checkpoint", "checkpoint", title, params, run(self._client(endpoint)),
                       self._denied(privilege, lambda: None if self._checkpoint_ids() == before
                                    else "the VM's checkpoints changed"))
            step, outcome = self._setup_call(f"{title} (as set-up: the JEA account may not)",
                                             "checkpoint", params, run(self.admin),
                                             expect.why, check)
        else:
            step, outcome = self._call(endpoint, "checkpoint", "checkpoint", title, params,
                                       run(self._client(endpoint)), expect)
        self._track(outcome, step)
        ok = step.outcome in ("pass", "done")
        made = outcome.checkpoint if isinstance(outcome, ActionOutcome) else None
        return made.id if ok and made is not None else None

    def _set_checkpoint_type(self, kind: str) -> str:
        assert self.vm_id
        step, _ = self._script_step("setup", f"set the VM's checkpoint type to {kind}",
                                    "set_checkpoint_type",
                                    {"vm_id": self.vm_id, "checkpoint_type": kind},
                                    f"Set-VM -CheckpointType {kind}")
        return "" if step.outcome == "done" else f"the checkpoint type could not be set ({step.detail})"

    def _checkpoint_ids(self) -> set[str] | None:
        vm = self._admin_vm()
        return {c.id for c in vm.checkpoints} if vm else None

    # media

    def _media(self, endpoint: str) -> None:
        if not self.iso_path:
            self._skip(endpoint, "media", "mount and eject", "",
                       f"the policy gives {self.host} no ISO library folder")
            return
        if not (self.iso_written and self.drive):
            self._skip(endpoint, "media", "mount and eject", "",
                       "the VM has no DVD drive" if not self.drive else "the ISO was not written")
            return
        iso = self.iso_path
        if not self._may(endpoint, "vm.media"):
            why = self._ensure("Off")
            if why:
                self._skip(endpoint, "media", "mount the ISO", "", why)
                return
            self._media_step(endpoint, "mount the ISO", "mount", iso,
                             self._denied("vm.media", self._drive_holds(None)))
            return
        outside = f"C:\\{PREFIX}outside.iso"
        for state in ("Off", "Running"):
            why = self._ensure(state)
            if why:
                self._skip(endpoint, "media", f"mount and eject while {state}", "", why)
                continue
            self._media_step(endpoint, f"mount the ISO while {state}", "mount", iso,
                             Expect(f"the state table accepts media while {state}; the drive "
                                    f"reads back {iso}", check=_drive_is(iso)))
            self._media_step(endpoint, f"eject while {state}", "eject", None,
                             Expect("the drive reads back empty", check=_drive_is(None)))
            if state == "Off" and not any(self._inside(outside, lib) for lib in self.library):
                self._media_step(endpoint, "mount an ISO outside the library", "mount", outside,
                                 Expect("the path passes no library check (host contract: "
                                        "not_in_library)", code="not_in_library",
                                        after=self._drive_holds(None)))
        why = self._ensure("Saved")
        if why:
            self._skip(endpoint, "media", "mount while Saved", "", why)
        else:
            self._media_step(endpoint, "mount the ISO while Saved", "mount", iso,
                             Expect("the state table does not accept media while Saved "
                                    "(Set-VMDvdDrive: InvalidState)", code="wrong_state",
                                    after=self._drive_holds(None)))

    @staticmethod
    def _inside(path: str, folder: str) -> bool:
        return path.lower().startswith(folder.rstrip("\\").lower() + "\\")

    def _media_step(self, endpoint: str, title: str, action: str, path: str | None,
                    expect: Expect) -> None:
        assert self.vm_id and self.drive
        client = self._client(endpoint)
        vm_id, (kind, controller, location), library = self.vm_id, self.drive, list(self.library)
        params: dict[str, Any] = {"vm_id": vm_id, "action": action, "controller_type": kind,
                                  "controller": controller, "location": location}
        if path is not None:
            params["path"] = path
        if endpoint == "admin":
            params["library"] = library
        self._call(endpoint, "media", "media", title, params,
                   lambda: client.media(vm_id, action, kind, controller, location, path, library),
                   expect)

    def _drive_holds(self, path: str | None) -> Callable[[], str | None]:
        def after() -> str | None:
            vm = self._admin_vm()
            if vm is None:
                return "the VM could not be read back"
            held = [d.path for d in vm.dvd_drives if self.drive == (d.controller_type,
                                                                   d.controller, d.location)]
            return None if held == [path] else f"the drive holds {held[0] if held else '?'}"
        return after

    # an id that is not on the host

    def _absent(self, endpoint: str) -> None:
        client = self._client(endpoint)
        absent = str(uuid.uuid4())
        rights = self._rights(endpoint, absent, "")
        calls: list[tuple[str, str, dict[str, Any], Callable[[], Any], str]] = [
            ("power", "start", {"vm_id": absent, "action": "start"},
             lambda: client.power(absent, "start"), POWER_PRIVILEGE["start"]),
            ("checkpoint", "create", {"vm_id": absent, "action": "create"},
             lambda: client.checkpoint(absent, "create"), CHECKPOINT_PRIVILEGE["create"]),
            ("media", "eject", {"vm_id": absent, "action": "eject", "controller_type": "SCSI",
                                "controller": 0, "location": 0},
             lambda: client.media(absent, "eject", "SCSI", 0, 0, None, list(self.library)),
             MEDIA_PRIVILEGE["eject"]),
        ]
        for operation, action, params, call, privilege in calls:
            if rights is not None and privilege not in rights:
                expect = Expect(f"the generated grants give {self.jea_user} no {privilege} on "
                                f"an id no grant names", code="denied")
            else:
                expect = Expect("no VM has that id (host contract: not_found)", code="not_found")
            self._call(endpoint, "absent", operation, f"{operation} {action} of a VM id that is "
                       f"not on the host", params, call, expect)

    # --- clean-up ------------------------------------------------------------------------------

    def _cleanup_shielded(self) -> tuple[bool | None, Leftovers]:
        """The clean-up; a second Ctrl+C during it leaves what remains for the next run (None)."""
        try:
            return self._cleanup()
        except KeyboardInterrupt:
            self._add(Step(len(self.steps) + 1, "admin", "cleanup", "the clean-up", {},
                           "everything removed", "fail", "interrupted: what remains is offered "
                           "for removal by the next selftest"))
            return None, Leftovers()

    def _cleanup(self) -> tuple[bool, Leftovers]:
        if self.vm_id is None and self.environment:
            self._adopt_by_name()
        if self.vm_id:
            self._script_step("cleanup", f"remove the VM {self.vm_name}", "remove_vm",
                              {"vm_id": self.vm_id},
                              "the VM turned off and removed with its checkpoints")
        if self.iso_written and self.iso_path:
            self._script_step("cleanup", f"remove the ISO {self.iso_path}", "remove_iso",
                              {"path": self.iso_path, "library": list(self.library)},
                              "the ISO removed from the library")
        if not (self.vm_id or self.iso_written):
            return True, Leftovers()
        left = Leftovers()

        def check(data: Any) -> str | None:
            nonlocal left
            found = data if isinstance(data, dict) else {}
            vms = tuple(v for v in found.get("vms") or [] if isinstance(v, dict)
                        and (str(v.get("id")).lower() == self.vm_id or v.get("name") == self.vm_name))
            isos = tuple(i for i in found.get("isos") or [] if isinstance(i, dict)
                         and str(i.get("path")).lower() == str(self.iso_path).lower())
            left = Leftovers(vms, isos)
            return "; ".join(left.lines()) or None

        step, _ = self._script_step("cleanup", "read back that nothing is left", "leftovers",
                                    {"library": list(self.library)},
                                    "neither the VM nor the ISO on the host", check)
        return step.outcome == "done", left

    # --- calls and steps -------------------------------------------------------------------------

    def _client(self, endpoint: str) -> Recording:
        if endpoint == "jea":
            assert self.jea is not None
            return self.jea
        return self.admin

    def _admin_vms(self) -> list[VM]:
        try:
            return self.admin.inventory()
        except HostError:
            return []

    def _admin_vm(self) -> VM | None:
        try:
            return next((v for v in self.admin.inventory() if v.id == self.vm_id), None)
        except HostError:
            return None

    def _read_state(self) -> str | None:
        try:
            found = self.admin.vm_state([self.vm_id or ""]).get(self.vm_id or "")
        except HostError:
            return None
        return found[0] if found else None

    def _call(self, endpoint: str, group: str, operation: str, title: str,
              params: dict[str, Any], call: Callable[[], Any],
              expect: Expect, setup: bool = False) -> tuple[Step, Any]:
        """A test step: the call through `endpoint`, judged by `expect` (a set-up or clean-up
        step, `setup`, is done or failed)."""
        client = self._client(endpoint)
        sent: dict[str, Any] = {"operation": operation, "params": _shown(params)}
        if operation.startswith("script "):
            sent = {"script": f"resources/powershell/selftest/{operation[7:]}.ps1",
                    "params": _shown(params)}
        elif endpoint == "jea":
            sent["function"] = FUNCTIONS[operation]
        client.last = None
        start = time.monotonic()
        result: Any = None
        error: HostError | None = None
        try:
            result = call()
        except HostError as exc:
            error = exc
        seconds = time.monotonic() - start
        outcome, detail = _judge(expect, result, error)
        if setup:
            outcome = "done" if outcome == "pass" else "fail"
        step = self._add(Step(len(self.steps) + 1, endpoint, group, title, sent, expect.text(),
                              outcome, detail, client.last, seconds))
        return step, (result if error is None else None)

    def _setup_call(self, title: str, operation: str, params: dict[str, Any],
                    call: Callable[[], Any], expected: str,
                    check: Callable[[Any], str | None] | None = None,
                    group: str = "setup") -> tuple[Step, Any]:
        """A set-up or clean-up step through the admin endpoint: done or fail."""
        return self._call("admin", group, operation, title, params, call,
                          Expect(expected, check=check), setup=True)

    def _script_step(self, group: str, title: str, name: str, params: dict[str, Any],
                     expected: str, check: Callable[[Any], str | None] | None = None,
                     ) -> tuple[Step, Any]:
        text = script(name, params)
        return self._setup_call(title, f"script {name}", params,
                                lambda: self.admin.run_script(text), expected, check, group)

    def _skip(self, endpoint: str, group: str, title: str, expected: str, why: str) -> None:
        self._add(Step(len(self.steps) + 1, endpoint, group, title, {}, expected or "-", "skip",
                       why))

    def _add(self, step: Step) -> Step:
        self.steps.append(step)
        self.progress(step)
        return step


def _judge(expect: Expect, result: Any, error: HostError | None) -> tuple[str, str]:
    """pass or fail, and what came back in a sentence."""
    if isinstance(result, ActionOutcome) and result.status != "ok":
        return "fail", f"{result.status}: {result.message}"
    if expect.code:
        if error is None:
            return "fail", f"expected the refusal {expect.code}; the host did it ({_said(result)})"
        if error.code != expect.code:
            return "fail", f"expected {expect.code}; the host answered {error.code}: {error}"
        problem = expect.after() if expect.after else None
        return ("fail", f"refused as expected, but {problem}") if problem else (
            "pass", f"{error.code}: {error}")
    if error is not None:
        return "fail", f"{error.code}: {error}"
    problem = expect.check(result) if expect.check else None
    if problem is None and expect.after:
        problem = expect.after()
    return ("fail", problem) if problem else ("pass", _said(result))


def _said(result: Any) -> str:
    if isinstance(result, ActionOutcome):
        parts = [f"VM {result.vm_state}" if result.vm_state else "",
                 f"checkpoint {result.checkpoint.name} ({result.checkpoint.id}, "
                 f"{result.checkpoint.state})" if result.checkpoint else "",
                 f"drive {result.drive.slot}: {result.drive.path or 'empty'}" if result.drive else ""]
        return ", ".join(p for p in parts if p) or "done"
    if isinstance(result, list):
        return f"{len(result)} VMs"
    if isinstance(result, HostFacts):
        return f"{result.name}, build {result.os_build}, {len(result.isos)} ISOs"
    if isinstance(result, dict):
        if not result:
            return "nothing"
        return one_line(", ".join(f"{k}={v}" for k, v in list(result.items())[:6]))[:200]
    return one_line(str(result))[:200]


def _vm_problems(vm: VM, state: str | None) -> str | None:
    problems = [what for what, bad in (
        (f"state {vm.state}, expected {state}", state is not None and vm.state != state),
        (f"generation {vm.generation}", vm.generation != 2),
        (f"{vm.disk_bytes} bytes of disk", vm.disk_bytes != 0),
        (f"{len(vm.checkpoints)} checkpoints", bool(vm.checkpoints)),
        ("no DVD drive", not vm.dvd_drives),
        (f"unreadable: {vm.unreadable}", bool(vm.unreadable))) if bad]
    return "; ".join(problems) or None


def _drive_is(path: str | None) -> Callable[[Any], str | None]:
    def check(outcome: Any) -> str | None:
        drive = outcome.drive
        if drive is None:
            return "the answer holds no drive"
        return None if (drive.path or None) == path else \
            f"the drive reads back {drive.path or 'empty'}, not {path or 'empty'}"
    return check


def _route(start: str, goal: str,
           avoid: Iterable[tuple[str, str]] = ()) -> list[str] | None:
    """The fewest power actions (the table's, guest shut down left out, and the moves in
    `avoid`) from `start` to `goal`, through the states the selftest can reach; None when there
    is no way."""
    if start == goal:
        return []
    broken = set(avoid)
    edges = {s: [(a, RESULT[a]) for a in states.POWER_CMDLETS if a != "shutdown"
                 and s in states.power_accepts(a) and (s, a) not in broken] for s in STABLE_STATES}
    seen, queue = {start}, deque([(start, list[str]())])
    while queue:
        state, path = queue.popleft()
        for action, after in edges.get(state, []):
            if after == goal:
                return [*path, action]
            if after not in seen:
                seen.add(after)
                queue.append((after, [*path, action]))
    return None


def _distance(start: str, goal: str, avoid: Iterable[tuple[str, str]]) -> int:
    route = _route(start, goal, avoid)
    return len(route) if route is not None else 99


def _shown(params: dict[str, Any]) -> dict[str, Any]:
    """Parameters as the report shows them: an ISO chunk's base64 by its size."""
    return {k: (f"<{len(v)} characters of base64>" if k == "data" and isinstance(v, str) else v)
            for k, v in params.items()}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")

"""The demo's policy, told the same way on any day.

resources/lab/policy.toml holds fixed dates (tests pass their own `today`); the demo copies it
with each `expires = ...  # demo: today±N` moved relative to today, so "a grant that expired last
month" and "one that expires next week" stay true whenever someone runs the demo.
"""
from __future__ import annotations

import contextlib
from functools import partial
import re
import tempfile
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from console import scripts
from console.audit import AuditTrail
from console.config import Config
from console.errors import ConfigError
from console.paths import LAB_DATA
from console.policy import Policy
from console.session import Setup

from .auth import LabUser
from .directory import LabDirectory
from .executor import script_of

if TYPE_CHECKING:
    from .runner import Lab

DEMO_POLICY = LAB_DATA / "policy.toml"
_DATED = re.compile(r"^(\s*expires\s*=\s*)\d{4}-\d{2}-\d{2}(\s*#\s*demo:\s*today([+-]\d+).*)$", re.M)


def demo_policy_text(today: date | None = None) -> str:
    today = today or date.today()
    text = DEMO_POLICY.read_text(encoding="utf-8")
    return _DATED.sub(
        lambda m: f"{m.group(1)}{(today + timedelta(days=int(m.group(3)))).isoformat()}{m.group(2)}",
        text)


def demo_policy_file(folder: Path, today: date | None = None) -> Path:
    """Write today's demo policy into `folder` and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "policy.toml"
    path.write_text(demo_policy_text(today), encoding="utf-8")
    return path


@contextlib.contextmanager
def demo_lab(today: date | None = None) -> Iterator[tuple[Config, Policy]]:
    """The demo world in this process: the lab hosts, each serving the JEA endpoint generated from
    today's demo policy (as delegated users reach real hosts), with a configuration naming them,
    that policy and an audit trail in a temporary folder that lasts as long as the lab."""
    try:
        from .runner import Lab  # the servers load only when a demo runs
    except ImportError:
        raise ConfigError("The demo lab is not available in this build.") from None
    with tempfile.TemporaryDirectory(prefix="hvconsole-demo-") as folder:
        policy_path = demo_policy_file(Path(folder), today)
        policy = Policy.load(policy_path)
        with Lab.start(jea_policy=policy) as lab:
            publish_demo_plan(lab, policy)
            yield Config(hosts=lab.host_configs(), policy_path=str(policy_path),
                         audit_path=str(Path(folder) / "audit.jsonl"), demo=True), policy


# The demo's downtime plan (docs/lab-world.md): HV02's firmware update next Saturday night, which
# Olivia approved and Hannah objected to; IT (office-print, office-files) has not answered.
DEMO_PLAN_HOST = "HV02"
DEMO_PLAN_REASON = "Firmware and BIOS update of HV02 (vendor advisory)"
DEMO_ANSWERS = (("olivia", "approve", "Fine for the shop: traffic is lowest then."),
                ("hannah", "object", "Payroll runs that night; please move it a week."))


def publish_demo_plan(lab: Lab, policy: Policy, today: date | None = None) -> str:
    """Publish the demo's downtime plan to HV02 and answer it, through the same scripts the
    console sends (downtime_publish.ps1 as a host administrator, downtime_answer.ps1 as each
    owner, who the host names from the caller's token): its event log then holds them as a
    host's would. The plan's id."""
    from console.downtime import make_plan, parse_window
    from console.inventory import VM

    handle = lab.hosts[DEMO_PLAN_HOST]
    day = today or date.today()
    saturday = day + timedelta(days=(5 - day.weekday()) % 7 or 7)
    vms = [VM.from_json(DEMO_PLAN_HOST, v) for v in handle.host.inventory()["vms"]]
    admin = min(lab.admins)
    plan = make_plan(policy, vms, DEMO_PLAN_HOST, parse_window(f"{saturday} 22:00/4h"),
                     DEMO_PLAN_REASON, admin)
    sids = {f"{lab.world.domain}\\{a.name}".lower(): a.sid for a in lab.world.accounts}
    callers = [(LabUser(admin, sids[admin.lower()], admin=True), "downtime_publish",
                plan.publish_params())]
    callers += [(LabUser(f"{lab.world.domain}\\{name}",
                         sids[f"{lab.world.domain}\\{name}".lower()]), "downtime_answer",
                 {"plan_id": plan.id, "answer": answer, "text": text})
                for name, answer, text in DEMO_ANSWERS]
    for user, operation, params in callers:
        executable, args, stdin = scripts.command(operation, params)
        result = handle.executor.run_script(user, script_of(" ".join([executable, *args]),
                                                            partial(stdin.encode, "ascii")))
        if b'"ok":true' not in result.stdout:
            raise RuntimeError(f"The demo's downtime plan was not {operation}ed: {result}")
    return plan.id


@contextlib.contextmanager
def demo_setup(today: date | None = None) -> Iterator[Setup]:
    """The demo world as the console's `Setup`: its configuration, policy, the demo directory
    and the audit trail in the demo's temporary folder."""
    with demo_lab(today) as (config, policy):
        yield Setup(config, policy, LabDirectory(), AuditTrail(config.audit_file))

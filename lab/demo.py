"""The demo's policy, told the same way on any day.

resources/lab/policy.toml holds fixed dates (tests pass their own `today`); the demo copies it
with each `expires = ...  # demo: today±N` moved relative to today, so "a grant that expired last
month" and "one that expires next week" stay true whenever someone runs the demo.
"""
from __future__ import annotations

import contextlib
import re
import tempfile
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

from console.audit import AuditTrail
from console.config import Config
from console.errors import ConfigError
from console.paths import LAB_DATA
from console.policy import Policy
from console.session import Setup

from .directory import LabDirectory

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
            yield Config(hosts=lab.host_configs(), policy_path=str(policy_path),
                         audit_path=str(Path(folder) / "audit.jsonl"), demo=True), policy


@contextlib.contextmanager
def demo_setup(today: date | None = None) -> Iterator[Setup]:
    """The demo world as the console's `Setup`: its configuration, policy, the demo directory
    and the audit trail in the demo's temporary folder."""
    with demo_lab(today) as (config, policy):
        yield Setup(config, policy, LabDirectory(), AuditTrail(config.audit_file))

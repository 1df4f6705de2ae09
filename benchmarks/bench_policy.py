"""How fast one identity's view of a large estate is computed: 10,000 VMs against 500 grants.

Run on demand: `.venv/bin/python -m pytest benchmarks/bench_policy.py`. The target is < 50 ms
for the whole estate (a console refresh), on one core.
"""
from __future__ import annotations

import random
from datetime import date

import pytest

from console.identity import Group, Identity
from console.policy import Policy, Target

TODAY = date(2026, 11, 26)
D = "S-1-5-21-1000-2000-3000-"
HOSTS = 100
VMS = 10_000
GRANTS = 500
ROLES = ["viewer", "helpdesk", "operator", "owner", "admin", "reviewer", "checkpointer"]


def generate() -> tuple[str, list[Target], Identity]:
    """A policy text (hosts, 2,000 documented VMs, 500 grants over 60 groups), its VMs, a user."""
    rng = random.Random(7)
    lines = ['[roles.checkpointer]\nprivileges = ["vm.checkpoint.create", "vm.checkpoint.delete",'
             ' "vm.checkpoint.apply"]\n']
    for h in range(HOSTS):
        lines.append(f'[hosts.HV{h:03}]\nclassification = "internal"\ncluster = "C{h // 10}"\n'
                     "iso_library = ['D:\\ISO\\']\n")
    vms = [Target(f"HV{i % HOSTS:03}", f"{i:08x}-0000-4000-8000-{i:012x}", f"vm-{i:05}",
                  f"C{(i % HOSTS) // 10}") for i in range(VMS)]
    for n, vm in enumerate(vms[::5]):
        lines.append(f'[vms."{vm.vm_id}"]\nname = "{vm.name}"\nclassification = "internal"\n'
                     f'application = "app{n % 40}"\ntags = ["tag{n % 25}"]\n')
    for g in range(GRANTS):
        kind = rng.choice(["host", "cluster", "vm", "vm_name", "application", "tag", "everything"])
        value = {
            "host": lambda: f'host = "HV{rng.randrange(HOSTS):03}"',
            "cluster": lambda: f'cluster = "C{rng.randrange(10)}"',
            "vm": lambda: f'vm = "{rng.choice(vms).vm_id}"',
            "vm_name": lambda: f'vm_name = "{rng.choice(vms).name}"',
            "application": lambda: f'application = "app{rng.randrange(40)}"',
            "tag": lambda: f'tag = "tag{rng.randrange(25)}"',
            "everything": lambda: "everything = true",
        }[kind]()
        rid = 5000 + g % 60
        # A few denies, never on everything (that would hide the whole estate).
        effect = "deny" if g % 17 == 0 and kind != "everything" else "allow"
        lines.append(f"[[grants]]\nprincipal = 'LAB\\G{rid}'\nsid = \"{D}{rid}\"\n"
                     f'role = "{rng.choice(ROLES)}"\neffect = "{effect}"\n{value}\n')
    # A person in 12 of the 60 groups (some nested), holding about a fifth of the grants.
    groups = tuple(Group(f"{D}{5000 + k}", f"LAB\\G{5000 + k}", nested=k % 2 == 1)
                   for k in range(0, 60, 5))
    identity = Identity(sid=f"{D}1234", name="LAB\\someone", groups=groups)
    return "\n".join(lines), vms, identity


@pytest.fixture(scope="module")
def estate() -> tuple[Policy, list[Target], Identity]:
    text, vms, identity = generate()
    policy = Policy.from_text(text, "bench.toml")
    assert len(policy.grants) == GRANTS and len(policy.vms) == VMS // 5
    return policy, vms, identity


def test_visible_10000_vms_500_grants(benchmark, estate) -> None:
    policy, vms, identity = estate

    def run() -> int:
        policy._cache = None  # a fresh identity index each round, as after sign-in
        return len(policy.visible(identity, vms, TODAY))

    seen = benchmark(run)
    assert 0 < seen < VMS
    # The best round: other work on a shared machine only ever slows the others down.
    assert benchmark.stats.stats.min < 0.050, "10,000 VMs must be evaluated in < 50 ms"


def test_evaluate_each_of_10000_vms(benchmark, estate) -> None:
    policy, vms, identity = estate

    def run() -> int:
        policy._cache = None
        return sum(len(policy.evaluate(identity, vm, TODAY).privileges) for vm in vms)

    assert benchmark(run) > 0
    # The best round: other work on a shared machine only ever slows the others down.
    assert benchmark.stats.stats.min < 0.050, "10,000 VMs must be evaluated in < 50 ms"


def test_loading_the_generated_policy(benchmark) -> None:
    text, _, _ = generate()
    policy = benchmark(Policy.from_text, text, "bench.toml")
    assert len(policy.grants) == GRANTS

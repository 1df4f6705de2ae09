"""Mutation testing of the policy, the configuration and the action service, with mutmut.

Run on demand (minutes, not part of the test run nor of `python3 dev.py bench`, which collects
only bench_*.py):

    .venv/bin/python benchmarks/mutation.py                 # policy, config and actions
    .venv/bin/python benchmarks/mutation.py policy          # one or more of them
    .venv/bin/python benchmarks/mutation.py --max-children 1

Each module is mutated against its own unit tests only (no Samba, no GUI, no subprocess), in a
copy of the working tree under .mutmut/<module>/ (git-ignored), so the mutmut configuration is
made here per module and nothing in the checkout is touched. Every run starts afresh: mutmut keeps
a surviving mutant's verdict until its function changes, even after a test that kills it is added.

Prints killed / surviving / total and the survival rate per module; a mutant survives when the
selected tests pass with it, or when no selected test reaches its function. Exits 1 when
policy.py's rate is 5 % or more (the bar of the "quality bar" issue), 2 when mutmut itself failed.
Inspect a survivor with `cd .mutmut/policy && ../../.venv/bin/mutmut show <name>`.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import tomli_w

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".mutmut"
BIN = Path(sys.executable).parent
POLICY_BAR = 0.05


@dataclass(frozen=True)
class Module:
    source: str
    tests: tuple[str, ...]
    bar: float | None = None  # the survival rate that fails the run


MODULES: dict[str, Module] = {
    # test_policy_cli.py is left out: it runs the CLI in subprocesses, which mutmut cannot follow.
    "policy": Module("console/policy.py", ("tests/test_policy.py", "tests/test_policy_validation.py",
                                           "tests/test_policy_properties.py"), POLICY_BAR),
    "config": Module("console/config.py", ("tests/test_config.py",)),
    "actions": Module("console/actions.py", ("tests/test_actions.py",)),
}
# Not copied into a module's work folder: history, environments, caches, earlier runs.
SKIP = (".git", ".venv", ".mutmut", "mutants", "__pycache__", ".hypothesis", ".benchmarks",
        ".pytest_cache", ".mypy_cache", ".ruff_cache", "build", "dist", "*.egg-info", "tmp")


@dataclass(frozen=True)
class Result:
    name: str
    killed: int
    survived: int
    no_tests: int
    other: int  # suspicious, interrupted, not checked: neither killed nor surviving
    seconds: float
    survivors: tuple[str, ...]

    @property
    def total(self) -> int:
        return self.killed + self.survived + self.no_tests + self.other

    @property
    def surviving(self) -> int:
        return self.survived + self.no_tests

    @property
    def rate(self) -> float:
        return self.surviving / self.total if self.total else 0.0


def prepare(name: str, module: Module) -> Path:
    """A fresh copy of the working tree with this module's mutmut configuration."""
    folder = WORK / name
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(ROOT, folder, ignore=shutil.ignore_patterns(*SKIP), symlinks=True)
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    # mutmut copies source_paths, tests/ and pyproject.toml into mutants/; the tests also need
    # the other top-level folders (resources/ beside console/, the lab's packages).
    others = sorted(p.name for p in folder.iterdir()
                    if p.is_dir() and p.name not in {"console", "tests"} and p.name != "mutants")
    data.setdefault("tool", {})["mutmut"] = {
        "source_paths": ["console"],
        "only_mutate": [module.source],
        "also_copy": others,
        "pytest_add_cli_args_test_selection": list(module.tests),
        # The same examples on every run, so a verdict does not depend on Hypothesis's draw.
        # Each mutant is a pytest session of its own: without the unraisable-exception plugin
        # (a full gc.collect at every session's end) and the benchmark plugin it starts and
        # ends in half the time, more than most tests take.
        "pytest_add_cli_args": ["--hypothesis-seed=0", "-p", "no:unraisableexception",
                                "-p", "no:benchmark"],
    }
    (folder / "pyproject.toml").write_text(tomli_w.dumps(data), encoding="utf-8")
    return folder


def run(name: str, module: Module, max_children: int) -> Result:
    folder = prepare(name, module)
    log = folder / "mutmut.log"
    mutmut = str(BIN / "mutmut")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    started = time.monotonic()
    with log.open("w") as out:
        code = subprocess.call([mutmut, "run", "--max-children", str(max_children)], cwd=folder,
                               stdout=out, stderr=subprocess.STDOUT, env=env)
    seconds = time.monotonic() - started
    if code != 0:
        print(log.read_text(errors="replace")[-4000:])
        raise SystemExit(f"mutmut run failed for {module.source} (exit {code}); log: {log}")
    subprocess.run([mutmut, "export-cicd-stats"], cwd=folder, check=True, capture_output=True)
    stats = json.loads((folder / "mutants" / "mutmut-cicd-stats.json").read_text())
    listing = subprocess.run([mutmut, "results"], cwd=folder, check=True, capture_output=True,
                             text=True).stdout
    survivors = tuple(line.strip() for line in listing.splitlines()
                      if line.strip().endswith((": survived", ": no tests")))
    killed = stats["killed"] + stats["timeout"] + stats["segfault"]
    survived, no_tests = stats["survived"], stats["no_tests"]
    return Result(name, killed, survived, no_tests,
                  stats["total"] - stats["skipped"] - killed - survived - no_tests,
                  seconds, survivors)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", metavar="MODULE",
                        help=f"one or more of {', '.join(MODULES)} (default: all)")
    parser.add_argument("--max-children", type=int, default=min(2, os.cpu_count() or 1),
                        help="mutants tested at once (default: 2; the machine is shared)")
    args = parser.parse_args(argv)
    names = args.modules or list(MODULES)
    unknown = [n for n in names if n not in MODULES]
    if unknown:
        parser.error(f"unknown module {', '.join(unknown)}; choose from {', '.join(MODULES)}")
    started = time.monotonic()
    results = [run(name, MODULES[name], args.max_children) for name in names]
    print(f"\n{'module':<20} {'killed':>7} {'surviving':>10} {'total':>6} {'rate':>7} {'time':>7}")
    for r in results:
        print(f"{MODULES[r.name].source:<20} {r.killed:>7} {r.surviving:>10} {r.total:>6} "
              f"{r.rate:>7.1%} {r.seconds:>6.0f}s" + (f"  ({r.other} undecided)" if r.other else ""))
    print(f"total time {time.monotonic() - started:.0f}s")
    failed = 0
    for r in results:
        if r.survivors:
            print(f"\nsurviving in {MODULES[r.name].source} (cd .mutmut/{r.name} && "
                  f"{BIN / 'mutmut'} show NAME):")
            print("\n".join(f"  {s}" for s in r.survivors))
        bar = MODULES[r.name].bar
        if bar is not None and r.rate >= bar:
            print(f"\nFAIL: {r.rate:.1%} of {MODULES[r.name].source}'s mutants survive "
                  f"(the bar is under {bar:.0%})")
            failed = 1
    return failed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Check every PowerShell text of a checkout against Microsoft's facts (console.powershell.check).

    .venv/bin/python tools/pscheck.py                    # this checkout
    .venv/bin/python tools/pscheck.py --repo DIR         # another checkout (a git worktree)
    .venv/bin/python tools/pscheck.py --policy FILE ...  # also the JEA files of these policies

The texts are those a host receives: each operation as console.scripts sends it, the host
selftest's set-up and clean-up scripts as console/selftest.py sends them, the functions of
the JEA role capability generated for every host of resources/lab/policy.toml and
tests/golden/jea/policy.toml (with the .psrc's ModulesToImport), the generated data files (each
literal as PowerShell decodes it must be a value the generator was given), and the registration
script installer/jea/Register-HvConsoleEndpoint.ps1. Findings are printed grouped by text; the
exit code is 1 when there is any.

The texts of another checkout are produced by that checkout's own code, in a subprocess with the
checkout first on PYTHONPATH; the facts and the checker are always this checkout's.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ("resources/lab/policy.toml", "tests/golden/jea/policy.toml")
REGISTRATION = "installer/jea/Register-HvConsoleEndpoint.ps1"
# The registration script may warn with an icacls command line for the administrator to run.
REGISTRATION_EXTERNALS = frozenset({"icacls", "icacls.exe"})
_VM = "42e4aaca-7231-5411-b96b-d03849b0dae1"
# Representative parameters: the script text is the same for any, only the $p line differs.
PARAMS: dict[str, dict[str, Any]] = {
    "inventory": {},
    "host_facts": {"library": ["D:\\ISO\\"]},
    "vm_state": {"vm_ids": [_VM]},
    "power": {"vm_id": _VM, "action": "start"},
    "checkpoint": {"vm_id": _VM, "action": "create", "name": "before the update"},
    "media": {"vm_id": _VM, "action": "mount", "controller_type": "SCSI", "controller": 0,
              "location": 1, "path": "D:\\ISO\\setup.iso", "library": ["D:\\ISO\\"]},
    "console_access": {"vm_id": _VM, "action": "grant"},
}


# --- collecting the texts (runs with the checked checkout's `console` package) -----------------------

def collect(repo: Path, policies: Iterable[str]) -> dict[str, Any]:
    """The raw texts of `repo`, made by its own code: must import only that checkout's console
    (scripts, jea, policy), which may predate console.powershell."""
    import console
    from console import jea, scripts
    from console.policy import Policy

    # A text that cannot be made is reported, not fatal: the other texts are still checked.
    operations: dict[str, str] = {}
    errors: list[dict[str, str]] = []
    for op in scripts.OPERATIONS:
        try:
            operations[op] = scripts.script(op, PARAMS.get(op, {}))
        except Exception as error:  # noqa: BLE001 - any failure of the checkout's own code
            errors.append({"label": f"operation {op}", "error": f"{type(error).__name__}: {error}"})
    generated = []
    for name in policies:
        path = Path(name) if Path(name).is_absolute() else repo / name
        policy = Policy.load(path)
        for entry in policy.hosts.values():
            try:
                files, strings, blocks = _generate_recorded(jea, policy, entry.name)
            except Exception as error:  # noqa: BLE001
                errors.append({"label": f"JEA files of {entry.name} of {name}",
                               "error": f"{type(error).__name__}: {error}"})
                continue
            generated.append({"policy": name, "host": entry.name, "files": files,
                              "strings": sorted(strings), "blocks": sorted(blocks)})
    registration = (repo / REGISTRATION).read_text(encoding="utf-8-sig")
    return {"console": str(Path(console.__file__).resolve().parent), "operations": operations,
            "selftest": _selftest_texts(errors), "jea": generated,
            "registration": registration, "errors": errors}


def _selftest_texts(errors: list[dict[str, str]]) -> dict[str, str]:
    """The host selftest's set-up and clean-up scripts as it sends them (console/selftest.py;
    a checkout from before it has none)."""
    try:
        from console import selftest
    except ImportError:
        return {}
    try:
        return dict(selftest.shipped_texts())
    except Exception as error:  # noqa: BLE001 - any failure of the checkout's own code
        errors.append({"label": "selftest scripts", "error": f"{type(error).__name__}: {error}"})
        return {}


def _generate_recorded(jea: Any, policy: Any, host: str) -> tuple[dict[str, str], set[str], set[str]]:
    """The generated files, and every string the writer was given: jea.psd1 calls itself for each
    value, so wrapping the module's psd1 sees them all (the expected values of the literal rule)."""
    strings: set[str] = set()
    blocks: set[str] = set()
    original = jea.psd1

    def recording(value: Any, *args: Any, **kwargs: Any) -> str:
        if isinstance(value, str):
            strings.add(value)
        elif type(value).__name__ == "ScriptBlock":
            blocks.add(str(value.text))
        return original(value, *args, **kwargs)

    jea.psd1 = recording
    try:
        files = {name: data.decode("utf-8") for name, data in jea.generate(policy, host).items()}
    finally:
        jea.psd1 = original
    return files, strings, blocks


def collect_in(repo: Path, policies: Iterable[str]) -> dict[str, Any]:
    """collect() for this checkout in this process, for another in a subprocess of its own."""
    policies = list(policies)
    if repo.resolve() == ROOT:
        return collect(ROOT, policies)
    env = dict(os.environ, PYTHONPATH=str(repo.resolve()))
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--collect", "--repo", str(repo),
         *[arg for name in policies for arg in ("--policy", name)]],
        cwd=repo, env=env, capture_output=True, text=True, encoding="utf-8")
    if done.returncode:
        raise SystemExit(f"collecting the texts of {repo} failed:\n{done.stderr}")
    data = json.loads(done.stdout)
    if Path(data["console"]) != (repo / "console").resolve():
        raise SystemExit(f"the subprocess imported {data['console']}, not {repo}'s console")
    return data


# --- the texts and their checks (this checkout's checker and facts) ---------------------------------------

@dataclass
class Text:
    """One PowerShell text and how it is checked; `line`/`column`: where it starts in its file."""

    label: str
    kind: str  # script | jea_function | registration | data
    text: str
    constrained: bool = False
    modules_to_import: tuple[str, ...] = ()
    defined: frozenset[str] = frozenset()
    externals: frozenset[str] = frozenset()
    expected: frozenset[str] = frozenset()
    line: int = 1
    column: int = 1
    where: list[str] = field(default_factory=list)  # the hosts and policies it was made for

    def findings(self) -> list[Any]:
        from console.powershell import check
        if self.kind == "error":  # the checkout's code could not make this text
            return [check.Finding(1, 1, "generation", self.text)]
        if self.kind == "data":
            return check.check_data(self.text, self.expected)
        context = check.Context(self.kind, self.constrained,  # type: ignore[arg-type]
                                self.modules_to_import, self.defined, self.externals)
        return [f.moved(self.line, self.column) for f in check.check(self.text, context=context)]


def texts(data: dict[str, Any]) -> list[Text]:
    from console.powershell import check

    out: list[Text] = [Text(e["label"], "error", e["error"]) for e in data.get("errors", [])]
    for op, text in data["operations"].items():
        # The admin endpoint runs the operations in full language (docs: "full language,
        # parameters as the JSON document"); their code also runs inside the JEA functions,
        # which are checked in ConstrainedLanguage.
        out.append(Text(f"operation {op}", "script", text))
    for name, text in data.get("selftest", {}).items():
        # The selftest's scripts run on the admin endpoint, in full language, like the operations.
        out.append(Text(f"selftest {name}", "script", text))
    for generated in data["jea"]:
        where = f"{generated['host']} of {generated['policy']}"
        files: dict[str, str] = generated["files"]
        expected = set(generated["strings"])
        for name, text in sorted(files.items()):
            try:
                value = check.read_data(text)
            except check.DataError:
                value = None  # check_data reports it
            # The code of script blocks is checked as functions; its literals are its own.
            for block in _blocks(value):
                expected.update(check.literals(text[block.start:block.end]))
            if isinstance(value, dict) and "FunctionDefinitions" in value:
                out.extend(_functions(name, text, value, where))
            out.append(Text(name, "data", text, expected=frozenset(expected), where=[where]))
    out.append(Text(REGISTRATION, "registration", data["registration"], constrained=True,
                    externals=REGISTRATION_EXTERNALS))
    return out


def _blocks(value: Any) -> Iterable[Any]:
    from console.powershell import check
    if isinstance(value, check.Block):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _blocks(item)
    elif isinstance(value, list):
        for item in value:
            yield from _blocks(item)


def _functions(file: str, text: str, capability: dict[str, Any], where: str) -> list[Text]:
    from console.powershell import check

    definitions = capability["FunctionDefinitions"]
    definitions = definitions if isinstance(definitions, list) else [definitions]
    names = [str(d.get("Name", "")) for d in definitions if isinstance(d, dict)]
    modules = _modules(capability.get("ModulesToImport", []))
    out = []
    for definition in definitions:
        block = definition.get("ScriptBlock") if isinstance(definition, dict) else None
        if not isinstance(block, check.Block):
            continue
        name = str(definition.get("Name", ""))
        line, column = check.position(text, block.start)
        out.append(Text(f"{file} {name}", "jea_function", text[block.start:block.end],
                        constrained=True, modules_to_import=modules,
                        defined=frozenset(n for n in names if n != name), line=line,
                        column=column, where=[where]))
    return out


def _modules(value: Any) -> tuple[str, ...]:
    """ModulesToImport: names, or hashtables with ModuleName."""
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if isinstance(item, dict):
            item = item.get("ModuleName", "")
        if isinstance(item, str) and item:
            out.append(item)
    return tuple(out)


def run(repo: Path, policies: Iterable[str], out: Any = sys.stdout) -> int:
    started = time.perf_counter()
    data = collect_in(repo, policies)
    checked = texts(data)
    # The same function text for several hosts is one group with every host named.
    groups: dict[tuple[str, str, tuple[str, ...]], list[str]] = {}
    count = 0
    for item in checked:
        found = item.findings()
        count += len(found)
        if found:
            key = (item.label, item.kind, tuple(str(f) for f in found))
            groups.setdefault(key, []).extend(item.where)
    elapsed = time.perf_counter() - started
    for (label, kind, found), where in groups.items():
        hosts = f" [{'; '.join(where)}]" if where else ""
        print(f"== {label} ({kind}){hosts}", file=out)
        for line in found:
            print(f"  {line}", file=out)
    print(f"{count} findings in {len(checked)} texts of {repo} ({elapsed:.2f} s)", file=out)
    return 1 if count else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=ROOT, help="the checkout whose texts are checked")
    parser.add_argument("--policy", action="append", default=[],
                        help="another policy file to generate JEA files from (repeatable)")
    parser.add_argument("--collect", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.collect:  # the subprocess side of collect_in: only the checked checkout's code
        json.dump(collect(args.repo.resolve(), args.policy), sys.stdout)
        return 0
    policies = [*POLICIES, *(str(Path(p).resolve()) for p in args.policy)]
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return run(args.repo, policies)


if __name__ == "__main__":
    sys.exit(main())

"""PowerShell and Hyper-V facts from Microsoft's sources, and PowerShell's parameter binding.

The data lives in resources/powershell/facts/ (see its README.md for the sources, commits and
licences):

- commands.json, extracted from Microsoft's help pages by tools/psfacts.py: for every command the
  project's PowerShell calls, its module and, per target ("5.1", "7.4" for PowerShell's modules;
  "2019", "2022", "2025" for Windows Server's Hyper-V, Storage and SmbShare), its parameter sets.
- host.toml: facts no help page's syntax states (VM states and the states each cmdlet acts in,
  checkpoint types, error ids, what a JEA session reaches, ConstrainedLanguage's core types,
  quote characters, culture), each with its source.

`bind` resolves a command's named parameters and positional arguments to one parameter set as
PowerShell's binder does (CmdletParameterBinderController), raising `BindingError` with
PowerShell's error id where PowerShell fails.
"""
from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from console.paths import POWERSHELL

FACTS_DIR = POWERSHELL / "facts"
ALL_SETS = "__AllParameterSets"

# PowerShell takes any of these as the dash of a parameter (CharTraits.IsDash).
_DASHES = "-\u2013\u2014\u2015"


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str  # as the help page writes it, namespaces dropped: "String[]", "SwitchParameter"
    mandatory: bool
    position: int | None  # None: named only
    pipeline: bool  # accepts pipeline input (by value or by property name)
    aliases: tuple[str, ...]
    values: tuple[str, ...] = ()  # the page's "Accepted values" (a ValidateSet), if any
    provider: str | None = None  # a provider's dynamic parameter (FileSystem, Certificate, ...)

    @property
    def switch(self) -> bool:
        """A switch takes no argument: `-Parent`, never `-Parent $x`."""
        return self.type == "SwitchParameter"


@dataclass(frozen=True)
class Target:
    source: str  # "MicrosoftDocs/PowerShell-Docs:reference/5.1/<Module>/<Command>.md"
    default_set: str | None
    sets: Mapping[str, Mapping[str, Parameter]]
    common_parameters: bool
    engine: str = "5.1"  # the PowerShell whose common parameters apply

    def parameter(self, name: str) -> Parameter | None:
        """The parameter of that exact name (any case) in any set."""
        for parameters in self.sets.values():
            for parameter in parameters.values():
                if parameter.name.lower() == name.lower():
                    return parameter
        return None


@dataclass(frozen=True)
class CommandFacts:
    name: str
    module: str
    targets: Mapping[str, Target]


class BindingError(Exception):
    """PowerShell would refuse the call: `fqid` is its error id (NamedParameterNotFound,
    AmbiguousParameter, ParameterAlreadyBound, PositionalParameterNotFound, AmbiguousParameterSet,
    MissingMandatoryParameter; CommandNotFoundException for a command the target lacks)."""

    def __init__(self, fqid: str, message: str) -> None:
        super().__init__(f"{fqid}: {message}")
        self.fqid = fqid
        self.message = message


# ---------------------------------------------------------------------------------------------
# loading


@cache
def _commands_json() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FACTS_DIR / "commands.json").read_text(encoding="utf-8"))
    return data


@cache
def _host() -> dict[str, Any]:
    with (FACTS_DIR / "host.toml").open("rb") as handle:
        return tomllib.load(handle)


def _parameter(name: str, fact: Mapping[str, Any]) -> Parameter:
    return Parameter(
        name=name,
        type=str(fact["type"]),
        mandatory=bool(fact["mandatory"]),
        position=fact["position"],
        pipeline=bool(fact["pipeline"]),
        aliases=tuple(fact["aliases"]),
        values=tuple(fact.get("values", ())),
        provider=fact.get("provider"),
    )


@cache
def _commands() -> dict[str, CommandFacts]:
    out: dict[str, CommandFacts] = {}
    for name, fact in _commands_json()["commands"].items():
        targets = {
            target: Target(
                source=t["source"],
                default_set=t["default_set"],
                sets={s: {p: _parameter(p, pf) for p, pf in ps.items()} for s, ps in t["sets"].items()},
                common_parameters=bool(t["common_parameters"]),
                engine=t.get("engine", "5.1"),
            )
            for target, t in fact["targets"].items()
        }
        out[name.lower()] = CommandFacts(name=name, module=fact["module"], targets=targets)
    return out


def _split_module(name: str) -> tuple[str | None, str]:
    """`Hyper-V\\Get-VM` -> ("Hyper-V", "Get-VM"); `Get-VM` -> (None, "Get-VM")."""
    module, sep, bare = name.rpartition("\\")
    return (module, bare) if sep and module else (None, name)


def command(name: str) -> CommandFacts | None:
    """The facts of a command, by name in any case; `Module\\Name` must name its module."""
    module, bare = _split_module(name.strip())
    facts = _commands().get(bare.lower())
    if facts is None or (module is not None and module.lower() != facts.module.lower()):
        return None
    return facts


def commands() -> tuple[CommandFacts, ...]:
    return tuple(_commands().values())


def sources() -> dict[str, dict[str, str]]:
    """The repositories the command facts come from: {"MicrosoftDocs/PowerShell-Docs":
    {"commit": ..., "licence": "CC BY 4.0"}, ...}."""
    return {repo: dict(fact) for repo, fact in _commands_json()["sources"].items()}


def host(table: str) -> dict[str, Any]:
    """A table of host.toml as written (its values and their `source` strings)."""
    value = _host()[table]
    if not isinstance(value, dict):
        raise KeyError(table)
    return value


@cache
def common_parameters(engine: str = "5.1") -> dict[str, Parameter]:
    """PowerShell's common parameters (Verbose, ErrorAction, ...; about_CommonParameters)."""
    facts = _commands_json()["common_parameters"][engine]["parameters"]
    return {
        name: Parameter(name=name, type=fact["type"], mandatory=False, position=None, pipeline=False,
                        aliases=tuple(fact["aliases"]))
        for name, fact in facts.items()
    }


# ---------------------------------------------------------------------------------------------
# Hyper-V


STATES: tuple[str, ...] = tuple(_host()["states"]["names"])


@cache
def _critical() -> dict[str, str]:
    return {display.lower(): base for display, base in _host()["states"]["critical"].items()}


@cache
def _state_names() -> dict[str, str]:
    return {name.lower(): name for name in STATES}


def base_state(state: str) -> str:
    """The state the cmdlets act on: `RunningCritical` -> `Running`; a base state as itself (in
    the enum's spelling); an unknown name unchanged."""
    key = state.strip().lower()
    return _critical().get(key) or _state_names().get(key) or state


def cmdlet_states(key: str) -> frozenset[str]:
    """The base states in which a Hyper-V cmdlet acts ("Start-VM", "Stop-VM" (guest shut down),
    "Stop-VM -TurnOff", "Stop-VM -Save", "Save-VM", "Suspend-VM", "Resume-VM", "Restart-VM",
    "Remove-VMSavedState"); in others it fails with InvalidState."""
    table = _host()["cmdlet_states"]
    value = table.get(key)
    if not isinstance(value, list):
        raise KeyError(key)
    return frozenset(value)


def snapshot_types() -> tuple[str, ...]:
    """VMSnapshot.SnapshotType's values (no Production: a production checkpoint is Standard)."""
    return tuple(_host()["snapshot_types"]["values"])


# ---------------------------------------------------------------------------------------------
# the language


@cache
def core_types(engine: str = "5.1") -> frozenset[str]:
    """ConstrainedLanguage's core types, lower-case: accelerators (`guid`, `pscustomobject`), full
    names (`system.guid`) and full names without `system.` (`guid`, `collections.hashtable`).
    Arrays, enums and Nullable of these are allowed too (not listed). `engine` "5.1" (the hosts)
    or "7" (PowerShell 7's longer list)."""
    table = _host()["constrained_language"]["core_types" if engine == "5.1" else "core_types_7"]
    out: set[str] = set()
    for full, accelerators in table.items():
        out.add(full.lower())
        if full.lower().startswith("system."):
            out.add(full.lower()[len("system."):])
        out.update(a.lower() for a in accelerators)
    return frozenset(out)


def single_quotes() -> frozenset[str]:
    """Every character that ends a single-quoted string: ' and U+2018..U+201B."""
    return frozenset(_host()["quotes"]["single"])


def double_quotes() -> frozenset[str]:
    """Every character that ends a double-quoted string: " and U+201C..U+201E."""
    return frozenset(_host()["quotes"]["double"])


# ---------------------------------------------------------------------------------------------
# JEA


def jea_restricted_proxies() -> frozenset[str]:
    """Commands a RestrictedRemoteServer session replaces with restricted proxy functions; call
    them module-qualified for the full cmdlet."""
    return frozenset(_host()["jea"]["restricted_proxies"])


def jea_reachable(name: str, modules_to_import: Iterable[str]) -> bool:
    """Whether a function of a JEA session (RestrictedRemoteServer, Visible* entries, so module
    autoloading None) can call `name` (plain or `Module\\Name`): the binary cmdlets of the engine
    snap-ins are loaded (private, callable); Windows PowerShell 5.1's Utility script functions
    (Import-PowerShellDataFile, Get-FileHash, ...) never are; any other module only through the
    role capability's ModulesToImport. A command not in the facts is not reachable."""
    jea = _host()["jea"]
    module, bare = _split_module(name.strip())
    if bare.lower() in {f.lower() for f in jea["utility_script_functions"]}:
        return bool(jea["utility_via_modules_to_import"]) \
            and _imports(modules_to_import, "Microsoft.PowerShell.Utility")
    facts = command(name)
    if facts is None:
        return False
    module = facts.module
    if module.lower() in {m.lower() for m in jea["engine_snapins"]}:
        return True
    return _imports(modules_to_import, module)


def _imports(modules_to_import: Iterable[str], module: str) -> bool:
    names = [modules_to_import] if isinstance(modules_to_import, str) else list(modules_to_import)
    return module.lower() in {m.lower() for m in names}


# ---------------------------------------------------------------------------------------------
# binding


def _strip(token: str) -> str:
    """`-Path`, `-Confirm:$false`, `–Path` (en dash) -> the parameter name as written."""
    name = token.strip()
    if name[:1] and name[0] in _DASHES:
        name = name[1:]
    return name.split(":", 1)[0]


@dataclass(frozen=True)
class _Candidate:
    name: str
    aliases: tuple[str, ...]
    common: bool


def _candidates(target: Target) -> list[_Candidate]:
    seen: dict[str, _Candidate] = {}
    for parameters in target.sets.values():
        for parameter in parameters.values():
            key = parameter.name.lower()
            previous = seen.get(key)
            aliases = tuple(dict.fromkeys((previous.aliases if previous else ()) + parameter.aliases))
            seen[key] = _Candidate(parameter.name, aliases, common=False)
    if target.common_parameters:
        for parameter in common_parameters(target.engine).values():
            seen.setdefault(parameter.name.lower(),
                            _Candidate(parameter.name, parameter.aliases, common=True))
    return list(seen.values())


def _resolve(written: str, candidates: list[_Candidate], where: str) -> _Candidate:
    """PowerShell's MergedCommandParameterMetadata.GetMatchingParameter: an exact name, else an
    exact alias, else the one parameter whose name or alias starts with `written` (a cmdlet's own
    parameter wins over common ones)."""
    key = written.lower()
    for candidate in candidates:
        if candidate.name.lower() == key:
            return candidate
    for candidate in candidates:
        if any(alias.lower() == key for alias in candidate.aliases):
            return candidate
    matches = [c for c in candidates
               if c.name.lower().startswith(key) or any(a.lower().startswith(key) for a in c.aliases)]
    if len(matches) > 1:
        own = [c for c in matches if not c.common]
        if len(own) == 1:
            return own[0]
        names = " ".join(f"-{c.name}" for c in matches)
        raise BindingError("AmbiguousParameter", f"{where}: parameter name '{written}' is ambiguous. "
                                                 f"Possible matches include: {names}.")
    if not matches:
        raise BindingError("NamedParameterNotFound",
                           f"{where}: a parameter cannot be found that matches parameter name '{written}'.")
    return matches[0]


def _remaining(command_name: str) -> frozenset[str]:
    table = _host().get("remaining_arguments", {})
    for key, value in table.items():
        if key.lower() == command_name.lower() and isinstance(value, list):
            return frozenset(v.lower() for v in value)
    return frozenset()


def _bind_target(facts: CommandFacts, target_name: str, target: Target, named: Sequence[str],
                 positional: int, pipeline: bool) -> str:
    where = f"{facts.name} ({target_name})"
    candidates = _candidates(target)

    bound: set[str] = set()  # lower-case names of the cmdlet's own parameters bound by name
    for token in named:
        written = _strip(token)
        if not written:
            raise BindingError("NamedParameterNotFound", f"{where}: an empty parameter name.")
        candidate = _resolve(written, candidates, where)
        key = candidate.name.lower()
        if key in bound or (candidate.common and f"common:{key}" in bound):
            raise BindingError("ParameterAlreadyBound",
                               f"{where}: parameter '{candidate.name}' is specified more than once.")
        bound.add(f"common:{key}" if candidate.common else key)

    def lower_params(set_name: str) -> dict[str, Parameter]:
        return {name.lower(): p for name, p in target.sets[set_name].items()}

    # The sets that hold every named parameter (common parameters are in every set).
    own = {name for name in bound if not name.startswith("common:")}
    sets = [s for s in target.sets if own <= set(lower_params(s))]
    if not sets:
        raise BindingError("AmbiguousParameterSet",
                           f"{where}: parameter set cannot be resolved using the specified named "
                           f"parameters ({', '.join(sorted(own))}): no set holds them all.")

    # Positional arguments: in each set, the unbound positional parameters in order of position;
    # a ValueFromRemainingArguments parameter takes the rest.
    remaining = _remaining(facts.name)
    by_positional: dict[str, set[str]] = {}
    for set_name in sets:
        parameters = lower_params(set_name)
        free = sorted((p.position, key) for key, p in parameters.items()
                      if p.position is not None and key not in bound)
        taken = {key for _pos, key in free[:positional]}
        extra = positional - len(taken)
        if extra > 0:
            varargs = [key for key in parameters if key in remaining and key not in bound]
            if not varargs:
                continue
            taken.add(varargs[0])
        by_positional[set_name] = taken
    if positional and not by_positional:
        raise BindingError("PositionalParameterNotFound",
                           f"{where}: a positional parameter cannot be found that accepts argument "
                           f"{positional} (of {positional}).")
    sets = [s for s in sets if s in by_positional]

    def missing(set_name: str) -> list[str]:
        # A provider's dynamic parameter (New-Item's -ConnectionURI is the WSMan provider's) is
        # mandatory only where that provider's path is given; the facts cannot tell, so it
        # never counts as missing.
        done = own | by_positional[set_name]
        return [p.name for key, p in lower_params(set_name).items()
                if p.mandatory and p.provider is None and key not in done
                and not (pipeline and p.pipeline)]

    if len(sets) == 1:
        chosen = sets[0]
    elif target.default_set in sets:
        chosen = target.default_set
    else:
        complete = [s for s in sets if not missing(s)]
        if len(complete) != 1:
            raise BindingError("AmbiguousParameterSet",
                               f"{where}: parameter set cannot be resolved using the specified named "
                               f"parameters; sets {', '.join(sets)} remain.")
        chosen = complete[0]
    absent = missing(chosen)
    if absent:
        raise BindingError("MissingMandatoryParameter",
                           f"{where}: missing mandatory parameters: {', '.join(absent)} (set {chosen}).")
    return chosen


def bind(name: str, named: Sequence[str], positional: int = 0, pipeline: bool = False,
         target: str | None = None) -> dict[str, str]:
    """The parameter set a call binds to, per target: {target: set name}.

    `named`: the parameter names as written (`-Path`, `Lit`, `-Confirm:$false`); `positional`: how
    many arguments are not a parameter's value (a switch takes none: the caller decides);
    `pipeline`: the command receives pipeline input. Every target of the command is checked
    unless `target` names one. Raises BindingError with PowerShell's error id.
    """
    if isinstance(named, str):
        raise TypeError("named is a sequence of parameter names, not one string")
    facts = command(name)
    if facts is None:
        raise BindingError("CommandNotFoundException", f"{name}: not a command in the facts.")
    if target is not None and target not in facts.targets:
        raise BindingError("CommandNotFoundException",
                           f"{facts.name}: no such command in target {target} "
                           f"(it has {', '.join(facts.targets)}).")
    names = [target] if target is not None else list(facts.targets)
    return {t: _bind_target(facts, t, facts.targets[t], named, positional, pipeline) for t in names}

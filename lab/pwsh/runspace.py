"""A runspace: the session state a script runs in (variables, functions, the session's commands,
language mode) and the engine's rules around commands: resolution (functions, then the
session's commands; `Module\\Name` only from a loaded module), parameter binding by Microsoft's
facts (console.powershell.facts.bind), error actions, and ConstrainedLanguage's type rules."""
from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from functools import cache, lru_cache
from typing import Any

from console.powershell import facts
from . import convert as cv
from . import members
from .compiler import _NO_VALUE, ParseError, compile_text
from .convert import PSType
from .members import ExceptionView
from .runtime import (MISSING, BoundElement, BreakSignal, ContinueSignal, Ctx, Element, ExitSignal,
                      Param, ReturnSignal, Scope, ScriptBlock)
from .values import (Call, Command, ErrorRecord, Hashtable, Outcome, Provider, PSEnum, PSError,
                     PSObject)

RUNTIME = "System.Management.Automation.RuntimeException"
BINDING = "System.Management.Automation.ParameterBindingException"
NOT_FOUND = ("The term '{0}' is not recognized as the name of a cmdlet, function, script file, or "
             "operable program. Check the spelling of the name, or if a path was included, verify "
             "that the path is correct and try again.")
_BINDING_MESSAGES = {
    "NamedParameterNotFound": "A parameter cannot be found that matches parameter name '{name}'.",
    "AmbiguousParameter": "Parameter cannot be processed because the parameter name '{name}' is "
                          "ambiguous. Possible matches include: {matches}.",
    "AmbiguousParameterSet": "Parameter set cannot be resolved using the specified named parameters.",
    "PositionalParameterNotFound": "A positional parameter cannot be found that accepts argument "
                                   "'{argument}'.",
    "MissingMandatoryParameter": "Cannot process command because of one or more missing mandatory "
                                 "parameters: {missing}.",
    "ParameterAlreadyBound": "Cannot bind parameter because parameter '{name}' is specified more than "
                             "once. To provide multiple values to parameters that can accept multiple "
                             "values, use the array syntax. For example, "
                             "\"-parameter value1,value2,value3\".",
    "MissingArgument": "Missing an argument for parameter '{name}'. Specify a parameter of type "
                       "'{type}' and try again.",
}
_TYPE_DEFAULTS = {"system.string": "", "system.int32": 0, "system.int64": 0, "system.boolean": False,
                  "system.double": 0.0, "system.guid": uuid.UUID(int=0)}


def _utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@cache
def _is_core(full_name: str) -> bool:
    low = full_name.lower()
    while low.endswith("[]"):
        low = low[:-2]
    core = facts.core_types("5.1")
    return low in ("system.object", "system.object[]") or low in core or (
        low.startswith("system.") and low[7:] in core)


class _Binding:
    """A cmdlet's parameters as the facts give them for one target: canonical names, aliases,
    switches, positions per set."""

    def __init__(self, target: facts.Target) -> None:
        self.target = target
        self.params: dict[str, facts.Parameter] = {}
        own: list[tuple[str, tuple[str, ...], bool]] = []
        for parameters in target.sets.values():
            for p in parameters.values():
                if p.name.lower() not in self.params:
                    self.params[p.name.lower()] = p
                    own.append((p.name, p.aliases, False))
        if target.common_parameters:
            for p in facts.common_parameters(target.engine).values():
                if p.name.lower() not in self.params:
                    self.params[p.name.lower()] = p
                    own.append((p.name, p.aliases, True))
        self.candidates = own

    def resolve(self, written: str, command: str) -> facts.Parameter:
        """An exact name, an exact alias, else the one name or alias it is a prefix of (the
        cmdlet's own parameters win over common ones), as PowerShell's binder resolves them."""
        key = written.lower()
        if key in self.params:
            return self.params[key]
        for name, aliases, _common in self.candidates:
            if any(a.lower() == key for a in aliases):
                return self.params[name.lower()]
        matches = [(name, common) for name, aliases, common in self.candidates
                   if name.lower().startswith(key) or any(a.lower().startswith(key) for a in aliases)]
        if len(matches) > 1:
            own = [m for m in matches if not m[1]]
            if len(own) == 1:
                return self.params[own[0][0].lower()]
            raise _binding_error("AmbiguousParameter", command, name=written,
                                 matches=" ".join(f"-{m[0]}" for m in matches))
        if not matches:
            raise _binding_error("NamedParameterNotFound", command, name=written)
        return self.params[matches[0][0].lower()]

    def positions(self, set_name: str) -> list[str]:
        parameters = self.target.sets[set_name]
        return [p.name for p in sorted(parameters.values(), key=lambda p: p.position or 0)
                if p.position is not None]


@lru_cache(maxsize=4096)
def _bind(name: str, named: tuple[str, ...], positional: int, pipeline: bool,
          target: str) -> tuple[str, str]:
    """facts.bind, remembered per distinct call shape: ("", set name) or (error id, message)."""
    try:
        return "", facts.bind(name, list(named), positional, pipeline, target)[target]
    except facts.BindingError as error:
        return error.fqid, error.message


def _binding_error(fqid: str, command: str, **words: str) -> PSError:
    message = _BINDING_MESSAGES.get(fqid, fqid).format(**{k: v for k, v in words.items()},
                                                         **{k: "" for k in ("name", "matches", "argument",
                                                                           "missing", "type")
                                                            if k not in words})
    error = PSError(message, f"{fqid},{command}" if command else fqid, "InvalidArgument", BINDING)
    error.kind = "statement"
    return error


class Runspace:
    """A PowerShell session the lab runs scripts in.

    `commands`: the session's commands (only those exist); `modules`: the modules loaded (None:
    all of the commands' modules); `targets`: which facts judge the binding ("powershell": "5.1",
    "hyperv": "2019"/"2022"/"2025"); `now`: the clock of Get-Date and [datetime]::Now (naive:
    local time); `utc_offset`: local time minus UTC, used by ToUniversalTime; `culture`: the
    session's culture (a PSRP session takes the client's), whose calendar Get-Date -Format and
    DateTime.ToString() without a provider use (th-TH Buddhist years, ar-SA Hijri); `identity`:
    the process's token as [System.Security.Principal.WindowsIdentity]::GetCurrent() returns
    it (None: a local user's)."""

    def __init__(self, commands: Iterable[Command], *, variables: Mapping[str, Any] | None = None,
                 env: Mapping[str, str] | None = None, language_mode: str = "FullLanguage",
                 targets: Mapping[str, str] | None = None, modules: Iterable[str] | None = None,
                 now: Callable[[], datetime] = _utc_now, provider: Provider | None = None,
                 utc_offset: timedelta = timedelta(0), culture: str = "en-US",
                 identity: Any = None) -> None:
        self.commands: dict[str, list[Command]] = {}
        for c in commands:
            self.commands.setdefault(c.name.lower(), []).append(c)
        self.modules = None if modules is None else {m.lower() for m in modules}
        self.targets = dict(targets or {"powershell": "5.1", "hyperv": "2022"})
        self.language_mode = language_mode
        self.constrained = language_mode.lower() == "constrainedlanguage"
        self._now = now
        self.utc_offset = utc_offset
        self.culture = culture
        self.identity = identity
        self.provider = provider
        self.env = {k.lower(): (k, v) for k, v in (env or {}).items()}
        self.global_scope = Scope(None)
        self.errors: list[ErrorRecord] = []
        self.current_errors: list[PSError] = []
        self._ctx: Ctx | None = None
        self._bindings: dict[tuple[str, str], _Binding] = {}
        g = self.global_scope.vars
        g["erroractionpreference"] = "Continue"
        g["progresspreference"] = "Continue"
        g["warningpreference"] = "Continue"
        g["verbosepreference"] = "SilentlyContinue"
        g["psversiontable"] = Hashtable({"PSVersion": cv.version("5.1.17763.1"), "PSEdition": "Desktop",
                                         "CLRVersion": cv.version("4.0.30319.42000")})
        g["error"] = self.errors
        for name, value in (variables or {}).items():
            g[name.lower()] = value

    # --- running ----------------------------------------------------------------------------------

    def run(self, text: str) -> Outcome:
        """Run a whole script (as `powershell -Command -` does) in the global scope."""
        try:
            block = compile_text(text)
        except ParseError as error:
            return Outcome([], error.record, "", [])
        ctx = Ctx(self, self.global_scope)
        return self._execute(ctx, lambda out: block.body(ctx, out))

    def invoke(self, script_block_text: str, arguments: Mapping[str, Any] | None = None) -> Outcome:
        """Run a ScriptBlock text (a JEA function's body: `[CmdletBinding()] param(...)` then
        statements) with its parameters bound by name from `arguments`, already validated."""
        try:
            block = compile_text(script_block_text)
        except ParseError as error:
            return Outcome([], error.record, "", [])
        ctx = Ctx(self, self.global_scope)
        elements: list[BoundElement] = []
        for name, value in (arguments or {}).items():
            elements.append(BoundElement("param", name=name, value=value, colon=True, has_value=True))
        return self._execute(ctx, lambda out: out.extend(self.invoke_block(ctx, block, elements)))

    def _execute(self, ctx: Ctx, body: Callable[[list[Any]], None]) -> Outcome:
        out: list[Any] = []
        error: ErrorRecord | None = None
        saved, self._ctx = self._ctx, ctx
        first_error = len(self.errors)
        try:
            body(out)
        except PSError as e:
            error = e.record
        except (ExitSignal, ReturnSignal, BreakSignal, ContinueSignal):
            pass
        except RecursionError:
            error = ErrorRecord("The script failed due to call depth overflow.", "CallDepthOverflow",
                                "InvalidOperation", "System.Management.Automation.ScriptCallDepthException")
        finally:
            self._ctx = saved
        return Outcome(out, error, self.format_output(out), list(self.errors[first_error:]))

    @staticmethod
    def format_output(out: list[Any]) -> str:
        """What powershell.exe prints for the output: each object's text on its own line."""
        lines = []
        for o in out:
            if o is None:
                continue
            lines.append(o if type(o) is str else cv.to_str(o))
        return "".join(line + "\r\n" for line in lines)

    def now(self) -> datetime:
        return self._now()

    # --- errors -----------------------------------------------------------------------------------

    def statement_error(self, ctx: Ctx, error: PSError) -> None:
        """A statement failed: `throw` and errors under Stop end the script (unless a try catches
        them); others end only the statement, recorded in $Error."""
        if error.kind == "script" or ctx.try_depth > 0:
            raise error
        if error.kind is None:
            error.kind = "statement"
        if self._preference(ctx) == "stop":
            error.kind = "script"
            raise error
        self.errors.append(error.record)

    def _preference(self, ctx: Ctx, explicit: Any = None) -> str:
        value = explicit if explicit is not None else ctx.lookup("erroractionpreference")
        return cv.to_str(value).lower() if value is not None else "continue"

    def write_error(self, error: PSError, action: Any = None) -> None:
        """A cmdlet's non-terminating error (WriteError), under its -ErrorAction or
        $ErrorActionPreference."""
        ctx = self._ctx
        preference = self._preference(ctx, action) if ctx is not None \
            else cv.to_str(action or "continue").lower()
        if preference in ("stop", "inquire"):
            error.kind = "script"
            raise error
        if preference != "ignore":
            self.errors.append(error.record)

    def throw(self, ctx: Ctx, value: Any) -> PSError:
        if value is _NO_VALUE:
            if self.current_errors:
                error = self.current_errors[-1]
                error.kind = "script"
                return error
            value = None
        if isinstance(value, ErrorRecord):
            error = PSError(value)
        elif isinstance(value, ExceptionView):
            error = PSError(value.record)
        elif value is None:
            error = PSError("ScriptHalted", "ScriptHalted", "OperationStopped", RUNTIME)
        else:
            text = cv.to_str(value)
            error = PSError(text, text, "OperationStopped", RUNTIME, value)
        error.kind = "script"
        return error

    # --- language-mode rules ----------------------------------------------------------------------

    def check_method(self, type_name: str, method: str) -> None:
        if not self.constrained or _is_core(type_name):
            return
        if method.lower().startswith("set_"):
            raise PSError("Cannot set property. Property setting is supported only on core types in "
                          "this language mode.", "PropertySetterNotSupportedInConstrainedLanguage",
                          "InvalidOperation", RUNTIME)
        if method.lower() == "tostring":
            return
        raise PSError("Cannot invoke method. Method invocation is supported only on core types in this "
                      "language mode.", "MethodInvocationNotSupportedInConstrainedLanguage",
                      "InvalidOperation", RUNTIME)

    def check_type(self, t: PSType) -> None:
        if self.constrained and not _is_core(t.full_name):
            raise PSError(f'Cannot convert value to type "{t.full_name}". Only core types are supported '
                          "in this language mode.", "ConversionSupportedOnlyToCoreTypes",
                          "InvalidArgument", cv.INVALID_CAST)

    def cast(self, value: Any, t: PSType) -> Any:
        self.check_type(t)
        return cv.cast(value, t.full_name)

    # --- variables and items ----------------------------------------------------------------------

    def get_env(self, name: str) -> Any:
        item = self.env.get(name)
        return item[1] if item else None

    def set_env(self, name: str, value: Any) -> None:
        if value is None or value == "":
            self.env.pop(name, None)
        else:
            self.env[name] = (self.env.get(name, (name, ""))[0], cv.to_str(value))

    def scope_for(self, ctx: Ctx, scope: str) -> Scope:
        return self.global_scope if scope == "global" else ctx.script_scope

    def matches_setter(self, ctx: Ctx) -> Callable[[Hashtable], None]:
        vars_ = ctx.scope.vars
        return lambda found: vars_.__setitem__("matches", found)

    def get_index(self, target: Any, index: Any) -> Any:
        t = type(target)
        if t is list or t is tuple:
            if type(index) is list:
                return [self.get_index(target, i) for i in index]
            i = cv.to_int(index)
            n = len(target)
            return target[i] if -n <= i < n else None
        if isinstance(target, Hashtable):
            if type(index) is list:
                return [target.get(i) for i in index]
            return target.get(index)
        if target is None:
            raise PSError("Cannot index into a null array.", "NullArray", "InvalidOperation", RUNTIME)
        if t is str:
            i = cv.to_int(index)
            return target[i] if -len(target) <= i < len(target) else None
        if isinstance(target, bytes):
            i = cv.to_int(index)
            return target[i] if -len(target) <= i < len(target) else None
        # Anything else is not indexable: $x[0] and $x[-1] are $x, other indexes $null
        # (ArrayOps.GetNonIndexable).
        if type(index) in (int, float, str) and cv.equals(0, index) or cv.equals(-1, index):
            return target
        return None

    def set_index(self, target: Any, index: Any, value: Any) -> None:
        if isinstance(target, Hashtable):
            target[index] = value
            return
        if type(target) is list:
            i = cv.to_int(index)
            if not -len(target) <= i < len(target):
                raise PSError("Index was outside the bounds of the array.", "System.IndexOutOfRangeException",
                              "InvalidOperation", RUNTIME)
            target[i] = value
            return
        if target is None:
            raise PSError("Cannot index into a null array.", "NullArray", "InvalidOperation", RUNTIME)
        raise PSError(f"Unable to index into an object of type {cv.type_of(target)}.", "CannotIndex",
                      "InvalidOperation", RUNTIME)

    # --- commands ---------------------------------------------------------------------------------

    def find_function(self, ctx: Ctx, name: str) -> Any:
        key = name.lower()
        s: Scope | None = ctx.scope
        while s is not None:
            if s.funcs is not None and key in s.funcs:
                return s.funcs[key]
            s = s.parent
        return None

    def find_command(self, name: str) -> Command | None:
        module, _, bare = name.rpartition("\\")
        for c in self.commands.get(bare.lower(), ()):
            if self.modules is not None and c.module.lower() not in self.modules:
                continue
            if module and c.module.lower() != module.lower():
                continue
            return c
        return None

    def invoke_command(self, ctx: Ctx, target: Any, elements: list[Element], items: list[Any] | None,
                       dot: bool = False, line: int = 0) -> list[Any]:
        bound = [BoundElement(e.kind, e.name, e.value(ctx) if e.value is not None else None, e.colon,
                              e.value is not None, e.text) for e in elements]
        if isinstance(target, ScriptBlock):
            return self.invoke_block(ctx, target, bound, input=items, dot=dot)
        if isinstance(target, str):
            if "\\" not in target:
                fn = self.find_function(ctx, target)
                if fn is not None:
                    return self.invoke_block(ctx, fn.block, bound, input=items, dot=dot)
            command = self.find_command(target)
            if command is not None:
                return self.run_cmdlet(ctx, command, target, bound, items)
            error = PSError(NOT_FOUND.format(target), "CommandNotFoundException", "ObjectNotFound",
                            "System.Management.Automation.CommandNotFoundException", target)
            error.kind = "statement"
            raise error
        error = PSError("The expression after '&' in a pipeline element produced an object that was not "
                        "valid. It must result in a command name, a script block, or a CommandInfo object.",
                        "BadExpression", "InvalidOperation", RUNTIME, target)
        error.kind = "statement"
        raise error

    def _binding(self, command: Command) -> tuple[_Binding, str] | None:
        known = facts.command(command.name)
        if known is None:
            return None
        target = self.targets.get("powershell", "5.1")
        if target not in known.targets:
            target = self.targets.get("hyperv", "2022")
        if target not in known.targets:
            return None
        key = (known.name.lower(), target)
        binding = self._bindings.get(key)
        if binding is None:
            binding = self._bindings[key] = _Binding(known.targets[target])
        return binding, target

    def bind_cmdlet(self, command: Command, bound: list[BoundElement],
                    pipeline: bool) -> tuple[dict[str, Any], str]:
        """Named parameters to canonical names, the parameter set by the facts, positional
        arguments to the set's positions; PowerShell's binding errors."""
        found = self._binding(command)
        name = command.name
        params: dict[str, Any] = {}
        positional: list[Any] = []
        if found is None:
            # A command the facts do not know: named parameters as written, the rest positional.
            for e in bound:
                if e.kind == "param":
                    params[e.name] = e.value if e.has_value else True
                else:
                    positional.append(e.value)
            if positional:
                params["__positional"] = positional
            return params, ""
        binding, target = found
        i = 0
        while i < len(bound):
            e = bound[i]
            if e.kind == "param":
                if e.name == "-":  # `--`: the rest are arguments
                    positional.extend(x.value for x in bound[i + 1:])
                    break
                p = binding.resolve(e.name, name)
                if p.name in params:
                    raise _binding_error("ParameterAlreadyBound", name, name=p.name)
                if e.colon:
                    params[p.name] = e.value
                elif p.switch:
                    params[p.name] = True
                elif i + 1 < len(bound) and bound[i + 1].kind == "arg":
                    params[p.name] = bound[i + 1].value
                    i += 1
                else:
                    raise _binding_error("MissingArgument", name, name=p.name, type=p.type)
            else:
                positional.append(e.value)
            i += 1
        _by_type(binding, params, positional)
        fqid, set_name = _bind(name, tuple(params), len(positional), pipeline, target)
        if fqid:
            words = {"argument": cv.to_str(positional[-1]) if positional else ""}
            m = re.search(r"missing mandatory parameters: ([^(]*?)(?: \(set|$)", set_name)
            if m:
                words["missing"] = m.group(1).strip()
            raise _binding_error(fqid, name, **words)
        free = [n for n in binding.positions(set_name) if n not in params]
        for n, value in zip(free, positional, strict=False):  # the surplus is handled below
            params[n] = value
        if len(positional) > len(free):
            rest = positional[len(free):]
            remaining = [p.name for p in binding.target.sets[set_name].values()
                         if p.name not in params and p.name.lower() in facts._remaining(name)]
            if remaining:
                params[remaining[0]] = rest
        return params, set_name

    def run_cmdlet(self, ctx: Ctx, command: Command, written: str, bound: list[BoundElement],
                   items: list[Any] | None) -> list[Any]:
        params, set_name = self.bind_cmdlet(command, bound, items is not None)
        action = params.get("ErrorAction")
        call = Call(command.name, params, items if items is not None else [], set_name, self)
        out: list[Any] = []
        try:
            result = command.run(call)
            if result is not None:
                if isinstance(result, (str, bytes, PSObject, Hashtable, PSEnum)):
                    out.append(result)
                else:
                    for o in result:
                        out.append(o)
        except PSError as error:
            if error.kind is not None:
                if error.kind == "statement" and action is not None and \
                        cv.to_str(action).lower() in ("silentlycontinue", "ignore"):
                    return out
                raise
            self.write_error(error, action)
        return out

    def invoke_block(self, ctx: Ctx, block: ScriptBlock, bound: list[BoundElement],
                     positional: list[Any] | None = None, input: list[Any] | None = None,
                     dot: bool = False) -> list[Any]:
        """Call a function or script block: bind its parameters, run it in a new scope (the
        caller's child: dynamic scoping) or, dot-sourced, in the caller's."""
        params = block.params or []
        values: dict[str, Any] = {}
        rest: list[Any] = []
        pending = list(positional or [])
        i = 0
        while i < len(bound):
            e = bound[i]
            if e.kind == "param":
                p = _match_param(params, e.name)
                if p is None:
                    if block.advanced:
                        raise _binding_error("NamedParameterNotFound", "", name=e.name)
                    rest.append("-" + e.name + (":" if e.colon else ""))
                    if e.colon:
                        rest.append(e.value)
                elif e.colon:
                    values[p.key] = e.value
                elif p.switch:
                    values[p.key] = True
                elif i + 1 < len(bound) and bound[i + 1].kind == "arg":
                    values[p.key] = bound[i + 1].value
                    i += 1
                else:
                    raise _binding_error("MissingArgument", "", name=p.name, type=p.type_name or "Object")
            else:
                pending.append(e.value)
            i += 1
        for p in params:
            if p.key not in values and not p.switch and pending:
                values[p.key] = pending.pop(0)
        if block.advanced and pending:
            raise _binding_error("PositionalParameterNotFound", "", argument=cv.to_str(pending[0]))
        rest.extend(pending)
        scope = ctx.scope if dot else Scope(ctx.scope)
        saved = ctx.scope
        ctx.scope = scope
        out: list[Any] = []
        try:
            vars_ = scope.vars
            for p in params:
                if p.key in values:
                    v = values[p.key]
                    if p.type_name:
                        v = self.cast(v, PSType(p.type_name))
                elif p.switch:
                    v = False
                elif p.default is not None:
                    v = p.default(ctx)
                    if p.type_name:
                        v = self.cast(v, PSType(p.type_name))
                elif p.mandatory:
                    raise _binding_error("MissingMandatoryParameter", "", missing=p.name)
                else:
                    v = _TYPE_DEFAULTS.get(p.type_name.lower()) if p.type_name else None
                vars_[p.key] = v
            if not dot:
                vars_["args"] = rest
            if input is not None:
                vars_["input"] = input
            if block.begin or block.process or block.end:
                self._named_blocks(ctx, block, input, out)
            else:
                try:
                    block.body(ctx, out)
                except ReturnSignal:
                    pass
        finally:
            ctx.scope = saved
        return out

    def _named_blocks(self, ctx: Ctx, block: ScriptBlock, input: list[Any] | None, out: list[Any]) -> None:
        try:
            if block.begin:
                block.begin(ctx, out)
            if block.process:
                for item in (input if input is not None else [None]):
                    ctx.scope.vars["_"] = item
                    try:
                        block.process(ctx, out)
                    except ReturnSignal:
                        pass
            if block.end:
                block.end(ctx, out)
        except ReturnSignal:
            pass

    def invoke_dotted(self, ctx: Ctx, block: Any, item: Any) -> list[Any]:
        """A script block run for one pipeline object in the caller's scope with $_ set (as
        Where-Object, ForEach-Object and switch run theirs)."""
        if not isinstance(block, ScriptBlock):
            return [block]
        vars_ = ctx.scope.vars
        saved = vars_.get("_", MISSING)
        vars_["_"] = item
        out: list[Any] = []
        try:
            block.body(ctx, out)
        except ReturnSignal:
            pass
        finally:
            if saved is MISSING:
                vars_.pop("_", None)
            else:
                vars_["_"] = saved
        return out

    def run_block(self, block: Any, item: Any) -> list[Any]:
        """For a cmdlet: run a script block argument for one object, where the cmdlet was called."""
        assert self._ctx is not None, "run_block is for cmdlets called by a running script"
        return self.invoke_dotted(self._ctx, block, item)

    def member(self, obj: Any, name: str) -> Any:
        """For a cmdlet: $obj.Name as a script reads it."""
        return members.get_member(self, obj, name)


def _is_block_type(type_name: str) -> bool:
    return type_name.lower().rstrip("[]") == "scriptblock"


def _by_type(binding: _Binding, params: dict[str, Any], positional: list[Any]) -> None:
    """Where the type of a positional argument decides the set (`Where-Object {...}` binds
    FilterScript, `ForEach-Object Name` binds MemberName), bind it by name, as PowerShell's
    binder does by trying arguments without coercion first."""
    if not positional or not any(isinstance(v, ScriptBlock) for v in positional) and not any(
            _is_block_type(p.type) for p in binding.params.values() if p.position is not None):
        return
    choices: dict[tuple[str, ...], None] = {}
    for set_name, set_params in binding.target.sets.items():
        if any(n not in set_params for n in params if n in binding.params and not n.startswith("__")
               and n.lower() not in {c.lower() for c in facts.common_parameters(binding.target.engine)}):
            continue
        free = [n for n in binding.positions(set_name) if n not in params]
        if len(free) < len(positional):
            continue
        if all(isinstance(v, ScriptBlock) == _is_block_type(set_params[n].type)
               for n, v in zip(free, positional, strict=False)):  # free may be the longer
            choices[tuple(free[:len(positional)])] = None
    if len(choices) == 1:
        names = next(iter(choices))
        for n, v in zip(names, positional, strict=True):
            params[n] = v
        positional.clear()


def _match_param(params: list[Param], written: str) -> Param | None:
    key = written.lower()
    for p in params:
        if p.key == key:
            return p
    found = [p for p in params if p.key.startswith(key)]
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise _binding_error("AmbiguousParameter", "", name=written,
                             matches=" ".join(f"-{p.name}" for p in found))
    return None

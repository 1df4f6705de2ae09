"""The interpreter's run-time structures: scopes (dynamic, as PowerShell's), the execution
context, script blocks and functions, and the signals of return/break/continue/exit."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .convert import ScriptBlockBase
from .values import PSError

if TYPE_CHECKING:
    from .runspace import Runspace

MISSING = object()


class _AutomationNull:
    """What a variable holds when it was assigned a pipeline that wrote nothing
    (AutomationNull.Value): $null to every expression, but nothing to @(...), a pipeline, a
    foreach or the output (`$x = Get-Nothing; @($x).Count` is 0, `@($null).Count` is 1)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "AutomationNull"

    def __bool__(self) -> bool:
        return False


NOTHING = _AutomationNull()


class Scope:
    """Variables and functions of one scope; lookups walk to the parent (the caller's scope:
    PowerShell scopes are dynamic)."""

    __slots__ = ("vars", "funcs", "parent")

    def __init__(self, parent: Scope | None) -> None:
        self.vars: dict[str, Any] = {}
        self.funcs: dict[str, FunctionDef] | None = None
        self.parent = parent


class Ctx:
    """One run: the runspace, the current scope, how many try blocks enclose the code."""

    __slots__ = ("rs", "scope", "try_depth", "script_scope")

    def __init__(self, rs: Runspace, scope: Scope) -> None:
        self.rs = rs
        self.scope = scope
        self.script_scope = scope
        self.try_depth = 0

    def lookup(self, name: str) -> Any:
        s: Scope | None = self.scope
        while s is not None:
            v = s.vars.get(name, MISSING)
            if v is not MISSING:
                return None if v is NOTHING else v
            s = s.parent
        return None


Expr = Callable[[Ctx], Any]
Stmt = Callable[[Ctx, list[Any]], None]


@dataclass
class Param:
    """A parameter of a function or script block."""

    name: str
    type_name: str | None = None  # .NET full name of its declared type
    default: Expr | None = None
    switch: bool = False
    mandatory: bool = False
    key: str = ""  # the lower-case name: variables are found by it

    def __post_init__(self) -> None:
        self.key = self.name.lower()


class ScriptBlock(ScriptBlockBase):
    """{ ... }: compiled once; runs in a new scope (`&`) or the current one (`.`, Where-Object)."""

    __slots__ = ("params", "body", "text", "advanced", "begin", "process", "end")

    def __init__(self, params: list[Param] | None, body: Stmt, text: str, advanced: bool = False,
                 begin: Stmt | None = None, process: Stmt | None = None, end: Stmt | None = None) -> None:
        self.params = params
        self.body = body
        self.text = text
        self.advanced = advanced
        self.begin, self.process, self.end = begin, process, end

    def __repr__(self) -> str:
        return f"ScriptBlock({self.text[:40]!r})"


@dataclass
class FunctionDef:
    name: str
    block: ScriptBlock


@dataclass
class Element:
    """One element of a command's arguments as compiled: a parameter (`-Name`, maybe with a
    `-Name:value` value) or an argument."""

    kind: str  # "param" | "arg"
    name: str = ""
    value: Expr | None = None
    colon: bool = False
    text: str = ""


@dataclass
class BoundElement:
    kind: str
    name: str = ""
    value: Any = None
    colon: bool = False
    has_value: bool = False
    text: str = ""


class ReturnSignal(Exception):
    pass


class BreakSignal(Exception):
    def __init__(self, label: str | None = None) -> None:
        super().__init__(label)
        self.label = label


class ContinueSignal(Exception):
    def __init__(self, label: str | None = None) -> None:
        super().__init__(label)
        self.label = label


class ExitSignal(Exception):
    def __init__(self, code: int = 0) -> None:
        super().__init__(code)
        self.code = code


def runtime_error(message: str, fqid: str, category: str = "InvalidOperation",
                  exception_type: str = "System.Management.Automation.RuntimeException",
                  target: Any = None) -> PSError:
    return PSError(message, fqid, category, exception_type, target)


@dataclass
class ParseFailure:
    """A text PowerShell would not parse: running it fails before any statement runs."""

    message: str
    fqid: str
    line: int = 0
    column: int = 0
    extra: list[str] = field(default_factory=list)

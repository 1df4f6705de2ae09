"""PowerShell's operators: arithmetic, comparison (case-insensitive by default; an array on the
left filters), matching (-like, -match setting $matches), -replace, -split, -join, -f."""
from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from . import convert as cv
from .convert import PSType
from .values import Hashtable, PSEnum, PSError, PSObject

RUNTIME = "System.Management.Automation.RuntimeException"


def _no_op(name: str, left: Any) -> PSError:
    return PSError(f"Method invocation failed because [{cv.type_of(left)}] does not contain a method "
                   f"named '{name}'.", "MethodNotFound", "InvalidOperation", RUNTIME)


# --- arithmetic -----------------------------------------------------------------------------------

def add(a: Any, b: Any) -> Any:
    t = type(a)
    if t is int or t is float:
        tb = type(b)
        return a + (b if tb is int or tb is float else cv.to_number(b))
    if t is str:
        return a + (b if type(b) is str else cv.to_str(b))
    if t is list or t is tuple:
        return [*a, *b] if type(b) is list or type(b) is tuple else [*a, b]
    if a is None:
        if type(b) is list or type(b) is tuple:
            return list(b)
        return b
    if t is bool:
        return int(a) + cv.to_number(b)
    if isinstance(a, Hashtable):
        if not isinstance(b, Hashtable):
            raise PSError("A hash table can only be added to another hash table.",
                          "AddHashTableToNonHashTable", "InvalidOperation", RUNTIME)
        merged = a.copy()
        for k, v in b.items():
            if k in merged:
                raise PSError(f"Item has already been added. Key in dictionary: '{cv.to_str(k)}'  Key "
                              f"being added: '{cv.to_str(k)}'", "ArgumentException", "NotSpecified",
                              "System.ArgumentException")
            merged[k] = v
        return merged
    if isinstance(a, datetime) and isinstance(b, timedelta):
        return a + b
    if isinstance(a, timedelta) and isinstance(b, timedelta):
        return a + b
    if isinstance(a, PSEnum):
        return a.value + cv.to_number(b)
    raise _no_op("op_Addition", a)


def subtract(a: Any, b: Any) -> Any:
    if isinstance(a, datetime):
        if isinstance(b, timedelta):
            return a - b
        if isinstance(b, datetime):
            return cv.naive(a) - cv.naive(b)
    if isinstance(a, timedelta) and isinstance(b, timedelta):
        return a - b
    if isinstance(a, (list, Hashtable, PSObject, uuid.UUID)):
        raise _no_op("op_Subtraction", a)
    return cv.to_number(a) - cv.to_number(b)


def multiply(a: Any, b: Any) -> Any:
    if type(a) is str:
        return a * cv.to_int(b)
    if type(a) is list:
        return a * cv.to_int(b)
    if isinstance(a, (Hashtable, PSObject, uuid.UUID, datetime)):
        raise _no_op("op_Multiply", a)
    return cv.to_number(a) * cv.to_number(b)


def divide(a: Any, b: Any) -> Any:
    if isinstance(a, (list, Hashtable, PSObject, uuid.UUID, datetime)):
        raise _no_op("op_Division", a)
    x, y = cv.to_number(a), cv.to_number(b)
    if y == 0:
        raise PSError("Attempted to divide by zero.", "RuntimeException", "NotSpecified", RUNTIME)
    if type(x) is int and type(y) is int and x % y == 0:
        return x // y
    return x / y


def modulo(a: Any, b: Any) -> Any:
    x, y = cv.to_number(a), cv.to_number(b)
    if y == 0:
        raise PSError("Attempted to divide by zero.", "RuntimeException", "NotSpecified", RUNTIME)
    if type(x) is int and type(y) is int:
        return int(math.fmod(x, y))  # the sign of the dividend, as in .NET
    return math.fmod(x, y)


def negate(a: Any) -> Any:
    n = cv.to_number(a)
    return -n


def range_of(a: Any, b: Any) -> list[int]:
    x, y = cv.to_int(a), cv.to_int(b)
    return list(range(x, y + 1)) if x <= y else list(range(x, y - 1, -1))


# --- comparison -----------------------------------------------------------------------------------

def _match(rs_set_matches: Callable[[Hashtable], None] | None, left: Any, pattern: Any,
           cs: bool) -> bool:
    m = cv.regex(cv.to_str(pattern), cs).search(cv.to_str(left))
    if m is None:
        return False
    if rs_set_matches is not None:
        found = Hashtable()
        found[0] = m.group(0)
        for i, g in enumerate(m.groups(), 1):
            if g is not None:
                found[i] = g
        for name, g in m.groupdict().items():
            if g is not None:
                found[name] = g
        rs_set_matches(found)
    return True


def compare_op(op: str, cs: bool, left: Any, right: Any,
               set_matches: Callable[[Hashtable], None] | None) -> Any:
    """A comparison operator by its base name ('eq', 'like', ...), case-sensitive or not."""
    if op in ("contains", "notcontains"):
        items = left if type(left) is list or type(left) is tuple else [left]
        found = any(cv.equals(i, right, cs) for i in items)
        return found if op == "contains" else not found
    if op in ("in", "notin"):
        items = right if type(right) is list or type(right) is tuple else [right]
        found = any(cv.equals(i, left, cs) for i in items)
        return found if op == "in" else not found
    test = _SCALAR[op]
    if type(left) is list or type(left) is tuple:
        # An array on the left filters; -match on an array does not set $matches.
        return [i for i in left if test(i, right, cs, None)]
    return test(left, right, cs, set_matches)


def _eq(a: Any, b: Any, cs: bool, _: Any) -> bool:
    return cv.equals(a, b, cs)


def _like(a: Any, b: Any, cs: bool, _: Any) -> bool:
    return cv.wildcard(cv.to_str(b), cs).match(cv.to_str(a)) is not None


_SCALAR: dict[str, Callable[[Any, Any, bool, Any], bool]] = {
    "eq": _eq,
    "ne": lambda a, b, cs, _: not cv.equals(a, b, cs),
    "gt": lambda a, b, cs, _: cv.compare(a, b, cs) > 0,
    "ge": lambda a, b, cs, _: cv.compare(a, b, cs) >= 0,
    "lt": lambda a, b, cs, _: cv.compare(a, b, cs) < 0,
    "le": lambda a, b, cs, _: cv.compare(a, b, cs) <= 0,
    "like": _like,
    "notlike": lambda a, b, cs, _: not _like(a, b, cs, None),
    "match": lambda a, b, cs, sm: _match(sm, a, b, cs),
    "notmatch": lambda a, b, cs, sm: not _match(sm, a, b, cs),
}
COMPARISONS = frozenset([*_SCALAR, "contains", "notcontains", "in", "notin"])


def replace(left: Any, right: Any, cs: bool) -> Any:
    if type(right) is list or type(right) is tuple:
        if len(right) > 2:
            raise PSError("The -replace operator allows only two elements to follow it, not "
                          f"{len(right)}.", "BadReplaceArgument", "InvalidOperation", RUNTIME)
        pattern, repl = (right[0], right[1]) if len(right) == 2 else (right[0], "")
    else:
        pattern, repl = right, ""
    rx = cv.regex(cv.to_str(pattern), cs)
    fn = cv.replacement(cv.to_str(repl))
    if type(left) is list or type(left) is tuple:
        return [rx.sub(fn, cv.to_str(i)) for i in left]
    return rx.sub(fn, cv.to_str(left))


def split(left: Any, right: Any, cs: bool) -> list[str]:
    limit = 0
    if type(right) is list or type(right) is tuple:
        pattern = right[0]
        if len(right) > 1:
            limit = cv.to_int(right[1])
    else:
        pattern = right
    rx = cv.regex(cv.to_str(pattern), cs)
    items = left if type(left) is list or type(left) is tuple else [left]
    out: list[str] = []
    for item in items:
        out.extend(rx.split(cv.to_str(item), maxsplit=max(limit - 1, 0)))
    return out


def unary_split(value: Any) -> list[str]:
    items = value if type(value) is list else [value]
    out: list[str] = []
    for item in items:
        out.extend(cv.to_str(item).split())
    return out


def join(left: Any, right: Any) -> str:
    items = left if type(left) is list or type(left) is tuple else [left]
    return cv.to_str(right).join(cv.to_str(i) for i in items)


def is_type(value: Any, t: Any) -> bool:
    if not isinstance(t, PSType):
        t = PSType(cv.type_full_name(cv.to_str(t)) or cv.to_str(t))
    name: str = t.full_name.lower()
    actual = cv.type_of(value).lower()
    if name == "system.object":
        return value is not None
    if name in ("system.array", "system.object[]"):
        return type(value) is list or type(value) is tuple
    if name == "system.management.automation.psobject":
        return value is not None
    if name == "system.management.automation.pscustomobject":
        return isinstance(value, PSObject) and actual == name
    if name == "system.int32" or name == "system.int64":
        return type(value) is int and actual == name
    return actual == name


_FORMAT_ITEM = re.compile(r"\{\{|\}\}|\{(\d+)(?:,(-?\d+))?(?::([^}]*))?\}")


def format_op(fmt: Any, args: Any) -> str:
    """"{0} {1:N2}" -f $a, $b: .NET composite formatting, invariant."""
    values = list(args) if type(args) is list else [args]

    def one(m: re.Match[str]) -> str:
        if m.group(0) == "{{":
            return "{"
        if m.group(0) == "}}":
            return "}"
        index = int(m.group(1))
        if index >= len(values):
            raise PSError("Error formatting a string: Index (zero based) must be greater than or equal "
                          "to zero and less than the size of the argument list..", "FormatError",
                          "InvalidOperation", RUNTIME)
        text = format_value(values[index], m.group(3))
        width = int(m.group(2)) if m.group(2) else 0
        return text.rjust(width) if width > 0 else text.ljust(-width)
    return _FORMAT_ITEM.sub(one, cv.to_str(fmt))


def format_value(value: Any, spec: str | None) -> str:
    if not spec:
        return cv.to_str(value)
    if isinstance(value, datetime):
        return cv.format_datetime(value, spec)
    kind, digits = spec[0].upper(), spec[1:]
    if type(value) in (int, float) and kind in "NFDXP" and (digits == "" or digits.isdigit()):
        n = int(digits) if digits else None
        if kind == "N":
            return f"{value:,.{2 if n is None else n}f}"
        if kind == "F":
            return f"{value:.{2 if n is None else n}f}"
        if kind == "D":
            return str(int(value)).zfill(n or 0)
        if kind == "X":
            text = format(int(value), "X" if spec[0] == "X" else "x")
            return text.zfill(n or 0)
        if kind == "P":
            return f"{value * 100:,.{2 if n is None else n}f} %"
    return cv.to_str(value)

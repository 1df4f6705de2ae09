"""Windows PowerShell 5.1's own cmdlets that the project's scripts use, over the lab host's
Provider for the file system and the registry. Each is a `Command` whose parameters arrive bound
by the facts (canonical names); errors carry the real error ids and cmdlet class names."""
from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from . import convert as cv
from . import jsonps, ops
from .runtime import ScriptBlock
from .values import CUSTOM_OBJECT_TYPE, Call, Command, Hashtable, Provider, PSError, PSObject

CORE = "Microsoft.PowerShell.Core"
UTILITY = "Microsoft.PowerShell.Utility"
MANAGEMENT = "Microsoft.PowerShell.Management"
ITEM_NOT_FOUND = "System.Management.Automation.ItemNotFoundException"


def _items(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if type(value) is list or type(value) is tuple else [value]


def _input(call: Call, param: str = "InputObject") -> list[Any]:
    """The objects to work on: the pipeline's, else the parameter's value (one object)."""
    if call.input or not call.has(param):
        return call.input
    return [call.get(param)]


def _collect(out: list[Any]) -> Any:
    return None if not out else out[0] if len(out) == 1 else out


# --- Core -----------------------------------------------------------------------------------------

_WHERE_OPS = {"eq", "ne", "gt", "ge", "lt", "le", "like", "notlike", "match", "notmatch", "contains",
              "notcontains", "in", "notin"}


def where_object(call: Call) -> Iterator[Any]:
    rs = call.runspace
    items = _input(call)
    block = call.get("FilterScript")
    if block is not None:
        for item in items:
            if cv.to_bool(_collect(rs.run_block(block, item))):
                yield item
        return
    prop = cv.to_str(call.get("Property"))
    op, cs = None, False
    for name in call.params:
        low = name.lower()
        if low in _WHERE_OPS or low in ("is", "isnot"):
            op = low
        elif low[:1] == "c" and low[1:] in _WHERE_OPS:
            op, cs = low[1:], True
    has_value = call.has("Value")
    value = call.get("Value")
    for item in items:
        left = rs.member(item, prop)
        if op is None:
            ok = cv.to_bool(left) if not has_value else cv.equals(left, value)
        elif op in ("is", "isnot"):
            ok = ops.is_type(left, value) != (op == "isnot")
        else:
            ok = cv.to_bool(ops.compare_op(op, cs, left, value, None))
        if ok:
            yield item


def foreach_object(call: Call) -> Iterator[Any]:
    rs = call.runspace
    items = _input(call)
    member = call.get("MemberName")
    if member is not None:
        for item in items:
            yield from _items(rs.member(item, cv.to_str(member)))
        return
    for block in _items(call.get("Begin")):
        yield from rs.run_block(block, None)
    blocks = _items(call.get("Process"))
    for item in items:
        for block in blocks:
            yield from rs.run_block(block, item)
    for block in _items(call.get("End")):
        yield from rs.run_block(block, None)


def out_null(call: Call) -> None:
    return None


# --- Utility --------------------------------------------------------------------------------------

def _key_of(rs: Any, item: Any, prop: Any) -> Any:
    if prop is None:
        return item
    if isinstance(prop, ScriptBlock):
        return _collect(rs.run_block(prop, item))
    if isinstance(prop, Hashtable):
        expr = prop.get("Expression") or prop.get("e")
        return _key_of(rs, item, expr)
    return rs.member(item, cv.to_str(prop))


def _order(a: Any, b: Any, cs: bool) -> int:
    if a is None or b is None:
        return (a is not None) - (b is not None)
    try:
        return cv.compare(a, b, cs)
    except PSError:
        return cv.compare(cv.to_str(a), cv.to_str(b), cs)


def sort_object(call: Call) -> list[Any]:
    rs = call.runspace
    items = list(call.input) if call.input else _items(call.get("InputObject"))
    props = _items(call.get("Property")) or [None]
    descending = cv.to_bool(call.get("Descending"))
    cs = cv.to_bool(call.get("CaseSensitive"))
    keyed = [([_key_of(rs, i, p) for p in props], i) for i in items]

    def compare(x: tuple[list[Any], Any], y: tuple[list[Any], Any]) -> int:
        for a, b in zip(x[0], y[0], strict=True):  # one key per property
            c = _order(a, b, cs)
            if c:
                return -c if descending else c
        return 0
    keyed.sort(key=functools.cmp_to_key(compare))
    result = [i for _, i in keyed]
    if cv.to_bool(call.get("Unique")):
        unique: list[Any] = []
        for i in result:
            if not any(cv.equals(i, u, cs) for u in unique):
                unique.append(i)
        result = unique
    return result


def select_object(call: Call) -> Iterator[Any]:
    rs = call.runspace
    items = list(call.input) if call.input else _items(call.get("InputObject"))
    if call.has("Skip"):
        items = items[cv.to_int(call.get("Skip")):]
    if call.has("First") or call.has("Last"):
        picked: list[Any] = []
        if call.has("First"):
            picked += items[:max(cv.to_int(call.get("First")), 0)]
        if call.has("Last"):
            n = cv.to_int(call.get("Last"))
            picked += items[len(items) - n:] if n > 0 else []
        items = picked
    if call.has("Index"):
        index = [cv.to_int(i) for i in _items(call.get("Index"))]
        items = [items[i] for i in index if -len(items) <= i < len(items)]
    expand = call.get("ExpandProperty")
    props = _items(call.get("Property"))
    for item in items:
        if expand is not None:
            value = rs.member(item, cv.to_str(expand))
            if value is None and not _has_member(item, cv.to_str(expand)):
                raise PSError(f'Property "{cv.to_str(expand)}" cannot be found.',
                              "ExpandPropertyNotFound,Microsoft.PowerShell.Commands.SelectObjectCommand",
                              "InvalidArgument", "System.Management.Automation.PSArgumentException", item)
            yield from _items(value)
        elif props:
            selected = Hashtable()
            for p in props:
                if isinstance(p, Hashtable):
                    name = cv.to_str(p.get("Name") or p.get("n") or p.get("Label") or p.get("l"))
                    selected[name] = _key_of(rs, item, p)
                else:
                    selected[cv.to_str(p)] = rs.member(item, cv.to_str(p))
            yield PSObject(CUSTOM_OBJECT_TYPE, selected)
        else:
            yield item


def _has_member(item: Any, name: str) -> bool:
    if isinstance(item, PSObject):
        return name in item.props
    if isinstance(item, Hashtable):
        return name in item
    return False


def measure_object(call: Call) -> Iterator[Any]:
    rs = call.runspace
    items = list(call.input) if call.input else _items(call.get("InputObject"))
    prop = call.get("Property")
    values = [rs.member(i, cv.to_str(prop)) if prop is not None else i for i in items]
    numbers = [cv.to_number(v) for v in values if v is not None] if any(
        call.has(x) for x in ("Sum", "Average", "Maximum", "Minimum")) else []
    yield PSObject("Microsoft.PowerShell.Commands.GenericMeasureInfo", {
        "Count": len([v for v in values if v is not None]) if prop is not None else len(items),
        "Average": sum(numbers) / len(numbers) if numbers and call.has("Average") else None,
        "Sum": sum(numbers) if call.has("Sum") else None,
        "Maximum": max(numbers) if numbers and call.has("Maximum") else None,
        "Minimum": min(numbers) if numbers and call.has("Minimum") else None,
        "Property": cv.to_str(prop) if prop is not None else None})


def convertto_json(call: Call) -> Iterator[str]:
    items = list(call.input) if call.input else [call.get("InputObject")]
    if call.input and not items:
        return
    value = items[0] if len(items) == 1 else items
    depth = cv.to_int(call.get("Depth")) if call.has("Depth") else 2
    yield jsonps.to_json(value, depth, cv.to_bool(call.get("Compress")), call.runspace.utc_offset)


def convertfrom_json(call: Call) -> Iterator[Any]:
    texts = [cv.to_str(t) for t in (call.input if call.input else _items(call.get("InputObject")))]
    if not texts:
        return
    # Windows PowerShell 5.1 writes a JSON array as one object (it does not enumerate it).
    yield jsonps.from_json("\n".join(texts))


def write_output(call: Call) -> Iterator[Any]:
    if call.input:
        yield from call.input
        return
    value = call.get("InputObject")
    if cv.to_bool(call.get("NoEnumerate")):
        yield value
    else:
        yield from _items(value)


def get_date(call: Call) -> Iterator[Any]:
    rs = call.runspace
    value: datetime = cv.to_datetime(call.get("Date")) if call.get("Date") is not None else rs.now()
    parts = {p.lower(): cv.to_int(call.get(p)) for p in ("Year", "Month", "Day", "Hour", "Minute", "Second")
             if call.has(p)}
    if parts:
        value = value.replace(year=parts.get("year", value.year), month=parts.get("month", value.month),
                              day=parts.get("day", value.day), hour=parts.get("hour", value.hour),
                              minute=parts.get("minute", value.minute),
                              second=parts.get("second", value.second))
    if call.has("Format"):
        # The session's culture formats it (a PSRP session runs in the client's culture).
        yield cv.format_datetime(value, cv.to_str(call.get("Format")), rs.utc_offset, rs.culture)
    else:
        yield value


# --- Management: paths ----------------------------------------------------------------------------

_QUALIFIER = re.compile(r"^([A-Za-z][A-Za-z0-9]*):")


def join_path(call: Call) -> Iterator[str]:
    child = cv.to_str(call.get("ChildPath"))
    for parent in _items(call.get("Path")):
        p = cv.to_str(parent)
        if not child:
            yield p
        elif not p:
            yield child
        else:
            yield p.rstrip("\\/") + "\\" + child.lstrip("\\/").replace("/", "\\")


def _parent(path: str) -> str:
    p = path.replace("/", "\\")
    if p.startswith("\\\\"):
        parts = p.rstrip("\\").split("\\")
        return "" if len(parts) <= 4 else "\\".join(parts[:-1])
    m = _QUALIFIER.match(p)
    qualifier = m.group(0) if m else ""
    rest = p[len(qualifier):]
    stripped = rest.rstrip("\\")
    if stripped == "":
        return ""  # the parent of a drive's root is nothing
    cut = stripped.rfind("\\")
    if cut == -1:
        return qualifier
    if cut == 0:
        return qualifier + "\\"
    return qualifier + stripped[:cut]


def _leaf(path: str) -> str:
    p = path.replace("/", "\\").rstrip("\\")
    return p.rsplit("\\", 1)[-1] if "\\" in p else (p if not _QUALIFIER.fullmatch(p) else "")


def split_path(call: Call) -> Iterator[Any]:
    literal = call.has("LiteralPath")
    paths = _items(call.get("LiteralPath") if literal else call.get("Path"))
    for raw in paths:
        p = cv.to_str(raw)
        if cv.to_bool(call.get("Leaf")):
            yield _leaf(p)
        elif cv.to_bool(call.get("Qualifier")):
            m = _QUALIFIER.match(p)
            if not m:
                raise PSError(f"Cannot parse path because path '{p}' does not have a qualifier specified.",
                              "ParsePathError,Microsoft.PowerShell.Commands.SplitPathCommand",
                              "InvalidArgument", "System.Management.Automation.PSArgumentException", p)
            yield m.group(0)
        elif cv.to_bool(call.get("NoQualifier")):
            m = _QUALIFIER.match(p)
            yield p[len(m.group(0)):] if m else p
        elif cv.to_bool(call.get("IsAbsolute")):
            yield bool(re.match(r"^([A-Za-z]:\\|\\\\)", p))
        else:
            yield _parent(p)


# --- Management: items ----------------------------------------------------------------------------

def _provider(call: Call) -> Provider:
    provider = call.runspace.provider
    if provider is None:
        raise PSError("The lab host has no file system or registry here.", "ProviderNotFound",
                      "ObjectNotFound", "System.Management.Automation.ProviderNotFoundException")
    return provider


def _paths(call: Call, cmdlet: str) -> tuple[list[str], bool]:
    literal = call.has("LiteralPath")
    name = "LiteralPath" if literal else "Path"
    values = _items(call.get(name))
    for v in values:
        if v is None or cv.to_str(v) == "":
            kind = "Null" if v is None else "EmptyString"
            what = "null" if v is None else "an empty string"
            error = PSError(f"Cannot bind argument to parameter '{name}' because it is {what}.",
                            f"ParameterArgumentValidationError{kind}NotAllowed,Microsoft.PowerShell.Commands.{cmdlet}",
                            "InvalidData", "System.Management.Automation.ParameterBindingValidationException")
            error.kind = "statement"
            raise error
    return [cv.to_str(v) for v in values], literal


def _is_registry(path: str) -> bool:
    return bool(re.match(r"^(HKLM|HKCU|HKCR|HKU|HKCC|Registry::)", path, re.IGNORECASE))


def _wild(path: str) -> bool:
    return bool(re.search(r"[*?\[]", path))


def _resolve(provider: Provider, path: str, literal: bool) -> list[PSObject]:
    """The items a path names: itself, or with -Path the matches of its wildcards in the leaf."""
    if literal or not _wild(path):
        item = provider.item(path)
        return [item] if item is not None else []
    parent, leaf = _parent(path), _leaf(path)
    pattern = cv.wildcard(leaf)
    return [c for c in provider.children(parent) if pattern.match(cv.to_str(c.get("Name")))]


def _hidden(item: PSObject) -> bool:
    attributes = cv.to_str(item.get("Attributes"))
    return "Hidden" in attributes or "System" in attributes.split(", ")


def test_path(call: Call) -> Iterator[bool]:
    provider = _provider(call)
    paths, literal = _paths(call, "TestPathCommand")
    kind = cv.to_str(call.get("PathType") or "Any").lower()
    for p in paths:
        if _is_registry(p):
            found = provider.registry(p) is not None
            yield found and kind != "leaf"
            continue
        items = _resolve(provider, p, literal)
        if kind == "container":
            yield any(cv.to_bool(i.get("PSIsContainer")) for i in items)
        elif kind == "leaf":
            yield any(not cv.to_bool(i.get("PSIsContainer")) for i in items)
        else:
            yield bool(items)


def _not_found(path: str, cmdlet: str) -> PSError:
    return PSError(f"Cannot find path '{path}' because it does not exist.",
                   f"PathNotFound,Microsoft.PowerShell.Commands.{cmdlet}", "ObjectNotFound",
                   ITEM_NOT_FOUND, path)


def get_item(call: Call) -> Iterator[PSObject]:
    provider = _provider(call)
    paths, literal = _paths(call, "GetItemCommand")
    force = cv.to_bool(call.get("Force"))
    for p in paths:
        items = _resolve(provider, p, literal)
        if not items:
            call.error(_not_found(p, "GetItemCommand"))
            continue
        for item in items:
            if not force and _hidden(item):
                call.error(PSError(f"Could not find item {p}.",
                                   "ItemNotFound,Microsoft.PowerShell.Commands.GetItemCommand",
                                   "ObjectNotFound", "System.IO.IOException", p))
                continue
            yield item


def _filter(pattern: str) -> re.Pattern[str]:
    # FindFirstFile also matches 8.3 short names: `*.iso` finds `x.isox` too (a 3-letter extension
    # pattern matches longer extensions), which the scripts guard against.
    m = re.fullmatch(r"\*\.([^.*?]{3})", pattern)
    if m:
        return re.compile(r".*\." + re.escape(m.group(1)) + r"[^.]*\Z", re.IGNORECASE | re.DOTALL)
    return cv.wildcard(pattern)


def get_childitem(call: Call) -> Iterator[PSObject]:
    provider = _provider(call)
    if not call.has("Path") and not call.has("LiteralPath"):
        raise PSError("Get-ChildItem needs a path in the lab (there is no current location).",
                      "PathNotFound,Microsoft.PowerShell.Commands.GetChildItemCommand", "ObjectNotFound",
                      ITEM_NOT_FOUND)
    paths, literal = _paths(call, "GetChildItemCommand")
    force = cv.to_bool(call.get("Force"))
    files_only = cv.to_bool(call.get("File"))
    dirs_only = cv.to_bool(call.get("Directory"))
    name_filter = _filter(cv.to_str(call.get("Filter"))) if call.get("Filter") else None
    for p in paths:
        items = _resolve(provider, p, literal)
        if not items:
            call.error(_not_found(p, "GetChildItemCommand"))
            continue
        for item in items:
            children: Iterable[PSObject] = provider.children(p) if cv.to_bool(item.get("PSIsContainer")) \
                else [item]
            for child in children:
                container = cv.to_bool(child.get("PSIsContainer"))
                if (files_only and container) or (dirs_only and not container):
                    continue
                if not force and _hidden(child):
                    continue
                if name_filter is not None and not name_filter.match(cv.to_str(child.get("Name"))):
                    continue
                yield child


def get_itemproperty(call: Call) -> Iterator[PSObject]:
    provider = _provider(call)
    paths, _literal = _paths(call, "GetItemPropertyCommand")
    names = [cv.to_str(n) for n in _items(call.get("Name"))]
    for p in paths:
        values = provider.registry(p) if _is_registry(p) else None
        if values is None:
            item = provider.item(p) if not _is_registry(p) else None
            if item is None:
                call.error(_not_found(p, "GetItemPropertyCommand"))
                continue
            values = dict(item.props.items())
        props = Hashtable({k: v for k, v in values.items() if not names or k.lower() in
                           {n.lower() for n in names}})
        leaf = _leaf(p)
        props["PSPath"] = ("Microsoft.PowerShell.Core\\Registry::" if _is_registry(p) else
                           "Microsoft.PowerShell.Core\\FileSystem::") + p
        props["PSParentPath"] = _parent(p)
        props["PSChildName"] = leaf
        props["PSProvider"] = "Microsoft.PowerShell.Core\\" + (
            "Registry" if _is_registry(p) else "FileSystem")
        yield PSObject(CUSTOM_OBJECT_TYPE, props)


def get_psdrive(call: Call) -> Iterator[PSObject]:
    provider = _provider(call)
    names = [cv.to_str(n) for n in _items(call.get("Name") or call.get("LiteralName"))]
    wanted = cv.to_str(call.get("PSProvider")).lower() if call.has("PSProvider") else None
    for name in names:
        drive = provider.drive(name)
        if drive is not None and wanted and wanted not in cv.to_str(drive.get("Provider")).lower():
            drive = None
        if drive is None:
            call.error(PSError(f"Cannot find drive. A drive with the name '{name}' does not exist.",
                               "GetDriveNoMatchingDrive,Microsoft.PowerShell.Commands.GetPSDriveCommand",
                               "ObjectNotFound", "System.Management.Automation.DriveNotFoundException", name))
            continue
        yield drive


BUILTINS: tuple[Command, ...] = (
    Command("Where-Object", CORE, where_object),
    Command("ForEach-Object", CORE, foreach_object),
    Command("Out-Null", CORE, out_null),
    Command("Sort-Object", UTILITY, sort_object),
    Command("Select-Object", UTILITY, select_object),
    Command("Measure-Object", UTILITY, measure_object),
    Command("ConvertTo-Json", UTILITY, convertto_json),
    Command("ConvertFrom-Json", UTILITY, convertfrom_json),
    Command("Write-Output", UTILITY, write_output),
    Command("Get-Date", UTILITY, get_date),
    Command("Join-Path", MANAGEMENT, join_path),
    Command("Split-Path", MANAGEMENT, split_path),
    Command("Test-Path", MANAGEMENT, test_path),
    Command("Get-Item", MANAGEMENT, get_item),
    Command("Get-ChildItem", MANAGEMENT, get_childitem),
    Command("Get-ItemProperty", MANAGEMENT, get_itemproperty),
    Command("Get-PSDrive", MANAGEMENT, get_psdrive),
)


def builtins(*names: str) -> list[Command]:
    """The built-in cmdlets, all or those named."""
    if not names:
        return list(BUILTINS)
    wanted = {n.lower() for n in names}
    return [c for c in BUILTINS if c.name.lower() in wanted]

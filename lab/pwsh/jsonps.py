"""ConvertTo-Json and ConvertFrom-Json as Windows PowerShell 5.1 does them (JavaScriptSerializer
underneath): depth 2 by default with deeper levels flattened to their text, enums as numbers,
dates as \\/Date(ms)\\/, < > & ' escaped as \\u003c etc., 5.1's own indentation; JSON objects
read into PSCustomObjects, arrays into arrays (an array is one output object), duplicate keys
(any case) refused."""
from __future__ import annotations

import json
import math
import re
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from . import convert as cv
from .values import CUSTOM_OBJECT_TYPE, ErrorRecord, Hashtable, PSEnum, PSError, PSObject

_EPOCH = datetime(1970, 1, 1)


class _Date:
    __slots__ = ("ms",)

    def __init__(self, ms: int) -> None:
        self.ms = ms


def _process(obj: Any, depth: int, max_depth: int, utc_offset: timedelta) -> Any:
    if obj is None:
        return None
    t = type(obj)
    if t is str or t is bool or t is int or t is float:
        return obj
    if isinstance(obj, PSEnum):
        return obj.value
    if isinstance(obj, datetime):
        utc = obj.replace(tzinfo=None) if obj.tzinfo is not None else obj - utc_offset
        return _Date(int((utc - _EPOCH) / timedelta(milliseconds=1)))
    if isinstance(obj, uuid.UUID):
        return str(obj)
    if depth > max_depth:
        return cv.to_str(obj)
    if isinstance(obj, Hashtable):
        return {k if type(k) is str else cv.to_str(k): _process(v, depth + 1, max_depth, utc_offset)
                for k, v in obj.pairs()}
    if t is list or t is tuple:
        return [_process(v, depth + 1, max_depth, utc_offset) for v in obj]
    if isinstance(obj, bytes):
        return [_process(v, depth + 1, max_depth, utc_offset) for v in obj]
    if isinstance(obj, PSObject):
        return {k if type(k) is str else cv.to_str(k): _process(v, depth + 1, max_depth, utc_offset)
                for k, v in obj.props.pairs()}
    if isinstance(obj, timedelta):
        ticks = cv.timespan_ticks(obj)
        seconds = ticks / 10_000_000
        return {"Ticks": ticks, "Days": obj.days, "Hours": obj.seconds // 3600,
                "Milliseconds": obj.microseconds // 1000, "Minutes": obj.seconds // 60 % 60,
                "Seconds": obj.seconds % 60, "TotalDays": seconds / 86400, "TotalHours": seconds / 3600,
                "TotalMilliseconds": seconds * 1000, "TotalMinutes": seconds / 60, "TotalSeconds": seconds}
    if isinstance(obj, ErrorRecord):
        return cv.to_str(obj)
    return cv.to_str(obj)


_ESCAPE = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_NEEDS = re.compile(r'["\\\x00-\x1f<>&\']')


def _string(s: str) -> str:
    if not _NEEDS.search(s):
        return '"' + s + '"'
    return '"' + _NEEDS.sub(lambda m: _ESCAPE.get(m.group(0)) or f"\\u{ord(m.group(0)):04x}", s) + '"'


def _number(x: float) -> str:
    if math.isnan(x) or math.isinf(x):
        return '"' + cv.fmt_double(x) + '"'
    if x == int(x) and abs(x) < 1e15:
        return str(int(x))
    text = repr(x)
    if "e" in text:
        mant, exp = text.split("e")
        sign = exp[0] if exp[0] in "+-" else "+"
        text = f"{mant}E{sign}{exp.lstrip('+-').rjust(2, '0')}"
    return text


def _compact(v: Any, out: list[str]) -> None:
    if v is None:
        out.append("null")
    elif v is True:
        out.append("true")
    elif v is False:
        out.append("false")
    elif type(v) is int:
        out.append(str(v))
    elif type(v) is float:
        out.append(_number(v))
    elif type(v) is str:
        out.append(_string(v))
    elif type(v) is dict:
        out.append("{")
        first = True
        for k, item in v.items():
            if not first:
                out.append(",")
            first = False
            out.append(_string(k))
            out.append(":")
            _compact(item, out)
        out.append("}")
    elif type(v) is list:
        out.append("[")
        for i, item in enumerate(v):
            if i:
                out.append(",")
            _compact(item, out)
        out.append("]")
    elif isinstance(v, _Date):
        out.append(f'"\\/Date({v.ms})\\/"')
    else:
        out.append(_string(str(v)))


def _pretty(v: Any, pad: int) -> str:
    """Windows PowerShell 5.1's layout: four spaces in, two spaces after a colon, a nested
    container aligned under where its value starts."""
    if type(v) is dict:
        if not v:
            return "{\r\n\r\n" + " " * pad + "}"
        lines = []
        for k, item in v.items():
            head = " " * (pad + 4) + _string(k) + ":  "
            lines.append(head + _pretty(item, len(head)))
        return "{\r\n" + ",\r\n".join(lines) + "\r\n" + " " * pad + "}"
    if type(v) is list:
        if not v:
            return "[\r\n\r\n" + " " * pad + "]"
        lines = [" " * (pad + 4) + _pretty(item, pad + 4) for item in v]
        return "[\r\n" + ",\r\n".join(lines) + "\r\n" + " " * pad + "]"
    out: list[str] = []
    _compact(v, out)
    return "".join(out)


def to_json(value: Any, depth: int = 2, compress: bool = False,
            utc_offset: timedelta = timedelta(0)) -> str:
    tree = _process(value, 0, depth, utc_offset)
    if compress:
        return _fast_compact(tree)
    return _pretty(tree, 0)


_NONCE = secrets.token_hex(8)  # no string a script holds can pass for a mark
_MARK = f"\x00{_NONCE}\x00"
_MARKED = re.compile(r'"\\u0000' + _NONCE + r'\\u0000(D|N)([^"\\]*)\\u0000"')
_JS_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "'": "\\u0027"}


def _mark(v: Any) -> Any:
    """Dates and numbers json.dumps would write otherwise, as marked strings."""
    t = type(v)
    if t is dict:
        return {k: _mark(x) for k, x in v.items()}
    if t is list:
        return [_mark(x) for x in v]
    if t is float:
        text = _number(v)
        return int(text) if re.fullmatch(r"-?\d+", text) else _MARK + "N" + text + "\x00"
    if isinstance(v, _Date):
        return _MARK + "D" + str(v.ms) + "\x00"
    return v


def _fast_compact(tree: Any) -> str:
    """The compressed form through the C encoder: JSON's structure never holds < > & ', so they
    are escaped afterwards; dates and exponent numbers travel as marked strings."""
    text = json.dumps(_mark(tree), ensure_ascii=False, separators=(",", ":"))
    if "<" in text or ">" in text or "&" in text or "'" in text:
        text = re.sub(r"[<>&']", lambda m: _JS_ESCAPES[m.group(0)], text)
    if _NONCE in text:
        text = _MARKED.sub(lambda m: f'"\\/Date({m.group(2)})\\/"' if m.group(1) == "D" else m.group(2), text)
    return text


_DATE = re.compile(r"/Date\((-?\d+)(?:[+-]\d{4})?\)/\Z")
FROM_JSON = "Microsoft.PowerShell.Commands.ConvertFromJsonCommand"


def _object(pairs: list[tuple[str, Any]]) -> PSObject:
    props = Hashtable()
    for k, v in pairs:
        if k in props:
            raise PSError("Cannot convert the JSON string because a dictionary that was converted from the "
                          f"string contains the duplicated keys '{props._items[k.lower()][0]}' and '{k}'.",
                          f"DuplicateKeysInJsonString,{FROM_JSON}", "InvalidOperation",
                          "System.InvalidOperationException")
        props[k] = v
    obj = PSObject(CUSTOM_OBJECT_TYPE)
    obj.props = props
    return obj


def _dates(value: Any) -> Any:
    """JavaScriptSerializer reads "\\/Date(ms)\\/" as a DateTime (UTC)."""
    if type(value) is str:
        m = _DATE.match(value)
        if m:
            return (_EPOCH + timedelta(milliseconds=int(m.group(1)))).replace(tzinfo=UTC)
        return value
    if type(value) is list:
        return [_dates(v) for v in value]
    if isinstance(value, PSObject):
        for k, v in list(value.props.items()):
            value.props[k] = _dates(v)
    return value


def from_json(text: str) -> Any:
    try:
        value = json.loads(text, object_pairs_hook=_object)
    except json.JSONDecodeError as exc:
        raise PSError(f"Invalid JSON primitive: {text[exc.pos:exc.pos + 20]}.",
                      f"System.ArgumentException,{FROM_JSON}", "NotSpecified",
                      "System.ArgumentException", text) from None
    if "\\/Date(" in text:
        value = _dates(value)
    return value

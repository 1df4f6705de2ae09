"""PowerShell's conversions and operators over the Python values of `values`: truth, text,
numbers, casts, comparison (case-insensitive by default, the right side converted to the left's
type), .NET regex and wildcard matching, and the date formats the scripts use."""
from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from .values import CUSTOM_OBJECT_TYPE, ErrorRecord, Hashtable, PSEnum, PSError, PSObject

INVALID_CAST = "System.Management.Automation.PSInvalidCastException"
CUSTOM_OBJECT = CUSTOM_OBJECT_TYPE
EPOCH = datetime(1970, 1, 1)


class PSType:
    """A type as scripts see it (`[guid]`, `$x.GetType()`): its .NET full name."""

    __slots__ = ("full_name",)

    def __init__(self, full_name: str) -> None:
        self.full_name = full_name

    @property
    def name(self) -> str:
        return self.full_name.rsplit(".", 1)[-1]

    def __str__(self) -> str:
        return self.full_name

    def __repr__(self) -> str:
        return f"PSType({self.full_name!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PSType) and other.full_name.lower() == self.full_name.lower()

    def __hash__(self) -> int:
        return hash(self.full_name.lower())


class Ref:
    """[ref]$v: reads and writes the variable it was made from (its .Value)."""

    __slots__ = ("get", "set")

    def __init__(self, get: Callable[[], Any], set: Callable[[Any], None]) -> None:
        self.get, self.set = get, set


class ScriptBlockBase:
    """A script block value; the interpreter's subclass knows how to run it."""

    text: str = ""

    def __str__(self) -> str:
        return self.text


# --- type names -----------------------------------------------------------------------------------

# Accelerators and short names the scripts use, to the .NET full name.
_ACCELERATORS = {
    "int": "System.Int32", "int32": "System.Int32", "long": "System.Int64", "int64": "System.Int64",
    "short": "System.Int16", "int16": "System.Int16", "byte": "System.Byte", "sbyte": "System.SByte",
    "uint": "System.UInt32", "uint32": "System.UInt32", "ulong": "System.UInt64",
    "uint64": "System.UInt64", "ushort": "System.UInt16", "uint16": "System.UInt16",
    "bool": "System.Boolean", "boolean": "System.Boolean", "string": "System.String",
    "char": "System.Char", "double": "System.Double", "float": "System.Single",
    "single": "System.Single", "decimal": "System.Decimal", "guid": "System.Guid",
    "datetime": "System.DateTime", "timespan": "System.TimeSpan", "array": "System.Array",
    "hashtable": "System.Collections.Hashtable", "object": "System.Object",
    "psobject": "System.Management.Automation.PSObject",
    "pscustomobject": "System.Management.Automation.PSObject",
    "ref": "System.Management.Automation.PSReference", "regex": "System.Text.RegularExpressions.Regex",
    "cultureinfo": "System.Globalization.CultureInfo", "void": "System.Void",
    "switch": "System.Management.Automation.SwitchParameter", "version": "System.Version",
    "scriptblock": "System.Management.Automation.ScriptBlock", "xml": "System.Xml.XmlDocument",
    "convert": "System.Convert", "math": "System.Math", "environment": "System.Environment",
    "text.encoding": "System.Text.Encoding", "io.path": "System.IO.Path", "uri": "System.Uri",
    "ordered": "System.Collections.Specialized.OrderedDictionary",
    "globalization.cultureinfo": "System.Globalization.CultureInfo",
    "text.regularexpressions.regex": "System.Text.RegularExpressions.Regex",
    "management.automation.pscustomobject": CUSTOM_OBJECT,
    "collections.hashtable": "System.Collections.Hashtable",
}


def type_full_name(written: str) -> str | None:
    """The .NET full name of a type as written in a script (`guid`, `System.Guid`, `int[]`), or
    None when the lab does not know it (PowerShell: "Unable to find type")."""
    name = written.strip()
    if name.endswith("[]"):
        inner = type_full_name(name[:-2])
        return inner + "[]" if inner else None
    low = name.lower()
    bare = low[7:] if low.startswith("system.") else low
    if bare in _ACCELERATORS:
        return _ACCELERATORS[bare]
    if low.startswith("system.") or low.startswith("microsoft."):
        return name  # a full name: accepted as written (only the core ones can be used anyway)
    return None


def type_of(value: Any) -> str:
    """The .NET full name of a value's type."""
    if value is None:
        return "System.Object"
    t = type(value)
    if t is str:
        return "System.String"
    if t is bool:
        return "System.Boolean"
    if t is int:
        return "System.Int32" if -2**31 <= value < 2**31 else "System.Int64"
    if t is float:
        return "System.Double"
    if t is list or t is tuple:
        return "System.Object[]"
    if isinstance(value, Hashtable):
        return "System.Collections.Hashtable"
    if isinstance(value, PSObject):
        return value.type_name
    if isinstance(value, PSEnum):
        return value.type_name
    if isinstance(value, uuid.UUID):
        return "System.Guid"
    if isinstance(value, datetime):
        return "System.DateTime"
    if isinstance(value, timedelta):
        return "System.TimeSpan"
    if isinstance(value, bytes):
        return "System.Byte[]"
    if isinstance(value, ErrorRecord):
        return "System.Management.Automation.ErrorRecord"
    if isinstance(value, PSType):
        return "System.RuntimeType"
    if isinstance(value, Ref):
        return "System.Management.Automation.PSReference"
    if isinstance(value, ScriptBlockBase):
        return "System.Management.Automation.ScriptBlock"
    if isinstance(value, re.Pattern):
        return "System.Text.RegularExpressions.Regex"
    return "System.Object"


# --- truth and text -------------------------------------------------------------------------------

def to_bool(value: Any) -> bool:
    """LanguagePrimitives.IsTrue."""
    if value is None:
        return False
    if type(value) is bool:  # type(value) itself, not a saved `t`: mypy narrows on it
        return value
    if type(value) is str:
        return value != ""
    if type(value) is int or type(value) is float:
        return value != 0
    t = type(value)
    if t is list or t is tuple:
        n = len(value)
        return False if n == 0 else to_bool(value[0]) if n == 1 else True
    if isinstance(value, PSEnum):
        return value.value != 0  # an enum's truth is its number's
    return True


def fmt_double(x: float) -> str:
    """Double.ToString() of .NET Framework: 15 significant digits, invariant."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == int(x) and abs(x) < 1e15:
        return str(int(x))
    text = format(x, ".15g")
    if "e" in text:
        mant, exp = text.split("e")
        sign = exp[0]
        digits = exp[1:].lstrip("0").rjust(2, "0")
        text = f"{mant}E{sign}{digits}"
    return text


def fmt_timespan(span: timedelta) -> str:
    ticks = timespan_ticks(span)
    sign = "-" if ticks < 0 else ""
    ticks = abs(ticks)
    days, rest = divmod(ticks, 864_000_000_000)
    hours, rest = divmod(rest, 36_000_000_000)
    minutes, rest = divmod(rest, 600_000_000)
    seconds, fraction = divmod(rest, 10_000_000)
    text = f"{sign}{f'{days}.' if days else ''}{hours:02}:{minutes:02}:{seconds:02}"
    return text + (f".{fraction:07}" if fraction else "")


def timespan_ticks(span: timedelta) -> int:
    return (span.days * 86400 + span.seconds) * 10_000_000 + span.microseconds * 10


def to_str(value: Any) -> str:
    """"$value": PowerShell's conversion to text, culture-invariant."""
    if value is None:
        return ""
    if type(value) is str:  # type(value) itself: mypy narrows on it
        return value
    t = type(value)
    if t is bool:
        return "True" if value else "False"
    if t is int:
        return str(value)
    if t is float:
        return fmt_double(value)
    if t is list or t is tuple:
        # $OFS is a space; a nested array shows its type name, as .NET's ToString does.
        return " ".join("System.Object[]" if type(v) in (list, tuple) else to_str(v) for v in value)
    if isinstance(value, datetime):
        return value.strftime("%m/%d/%Y %H:%M:%S")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Hashtable):
        return "System.Collections.Hashtable"
    if isinstance(value, timedelta):
        return fmt_timespan(value)
    if isinstance(value, bytes):
        return " ".join(str(b) for b in value)
    if isinstance(value, PSType):
        return value.full_name
    if isinstance(value, re.Pattern):
        return str(value.pattern)  # a str pattern's text (re.Pattern's AnyStr reads as Any)
    return str(value)


# --- numbers --------------------------------------------------------------------------------------

_NUMBER = re.compile(r"\s*([+-]?)(?:(0x[0-9a-f]+)|(\d*\.?\d*(?:e[+-]?\d+)?))\s*(kb|mb|gb|tb|pb)?\s*\Z",
                     re.IGNORECASE)
_MULTIPLIERS = {"kb": 2**10, "mb": 2**20, "gb": 2**30, "tb": 2**40, "pb": 2**50}


def parse_number(text: str) -> int | float | None:
    """A string as PowerShell reads a number from it (arithmetic and casts); None if it is not."""
    m = _NUMBER.match(text)
    if not m or not (m.group(2) or m.group(3)):
        return None
    sign = -1 if m.group(1) == "-" else 1
    mult = _MULTIPLIERS.get((m.group(4) or "").lower(), 1)
    if m.group(2):
        return sign * int(m.group(2), 16) * mult
    body = m.group(3)
    if body in (".", ""):
        return None
    if re.fullmatch(r"\d+", body):
        return sign * int(body) * mult
    try:
        return sign * float(body) * mult
    except ValueError:
        return None


def cast_error(value: Any, target: str, error_id: str, detail: str = "") -> PSError:
    shown = to_str(value)
    message = f'Cannot convert value "{shown}" to type "{target}".'
    if detail:
        message += f' Error: "{detail}"'
    if value is None:
        message = f'Cannot convert null to type "{target}".'
    return PSError(message, error_id, "InvalidArgument", INVALID_CAST, value)


def to_number(value: Any, for_op: str = "") -> int | float:
    """A value as a number for arithmetic and numeric comparison."""
    if type(value) is int or type(value) is float:  # type(value) itself: mypy narrows on it
        return value
    t = type(value)
    if value is None:
        return 0
    if t is bool:
        return int(value)
    if t is str:
        if value.strip() == "":
            return 0
        n = parse_number(value)
        if n is None:
            raise cast_error(value, "System.Int32", "InvalidCastFromStringToInteger",
                             "Input string was not in a correct format.")
        return n
    if isinstance(value, PSEnum):
        return value.value
    if t is list and len(value) == 1:
        return to_number(value[0])
    raise cast_error(value, "System.Int32", "InvalidCastFromAnyTypeToInteger" if t is not list
                     else "ConvertToFinalInvalidCastException")


def _round_even(x: float) -> int:
    return int(round(x))  # Python rounds half to even, as .NET's Convert does


def to_int(value: Any, bits: int = 32) -> int:
    name = "System.Int32" if bits == 32 else "System.Int64"
    t = type(value)
    if t is int:
        result: int = value
    elif t is bool:
        result = int(value)
    elif t is float:
        if math.isnan(value) or math.isinf(value):
            raise cast_error(value, name, "InvalidCastIConvertible",
                             "Value was either too large or too small.")
        result = _round_even(value)
    elif value is None:
        return 0
    elif t is str:
        if value.strip() == "":
            return 0
        n = parse_number(value)
        if n is None:
            raise cast_error(value, name, "InvalidCastFromStringToInteger",
                             "Input string was not in a correct format.")
        result = _round_even(n) if isinstance(n, float) else n
    elif isinstance(value, PSEnum):
        result = value.value
    elif isinstance(value, timedelta | datetime | uuid.UUID) or t is list and len(value) != 1:
        raise cast_error(value, name, "InvalidCastFromAnyTypeToInteger" if t is not list
                         else "ConvertToFinalInvalidCastException")
    elif t is list:
        return to_int(value[0], bits)
    else:
        raise cast_error(value, name, "InvalidCastFromAnyTypeToInteger")
    limit = 2 ** (bits - 1)
    if not -limit <= result < limit:
        raise cast_error(value, name, "InvalidCastIConvertible",
                         f"Value was either too large or too small for an {name[7:]}.")
    return result


def to_float(value: Any) -> float:
    if isinstance(value, str) and value.strip() and parse_number(value) is None:
        raise cast_error(value, "System.Double", "InvalidCastFromStringToDoubleOrSingle",
                         "Input string was not in a correct format.")
    return float(to_number(value))


# --- GUIDs and dates ------------------------------------------------------------------------------

_HEX = "[0-9a-fA-F]"
_GUID_FORMS = [
    re.compile(rf"{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}\Z"),  # D
    re.compile(rf"{_HEX}{{32}}\Z"),  # N
    re.compile(rf"\{{{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}\}}\Z"),  # B
    re.compile(rf"\({_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}\)\Z"),  # P
]
_GUID_X = re.compile(r"\{\s*0x([0-9a-f]{1,8})\s*,\s*0x([0-9a-f]{1,4})\s*,\s*0x([0-9a-f]{1,4})\s*,\s*\{"
                     + r"\s*,\s*".join([r"\s*0x([0-9a-f]{1,2})"] * 8) + r"\s*\}\s*\}\Z", re.IGNORECASE)


def parse_guid(text: str) -> uuid.UUID | None:
    """Guid.TryParse: the D, N, B, P and X forms, surrounding white space allowed; nothing else
    (Python's UUID also takes urn:uuid: and braces without dashes, which .NET refuses)."""
    s = text.strip()
    for form in _GUID_FORMS:
        if form.match(s):
            return uuid.UUID(re.sub(r"[^0-9a-fA-F]", "", s))
    m = _GUID_X.match(s)
    if m:
        parts = m.groups()
        hexes = parts[0].rjust(8, "0") + parts[1].rjust(4, "0") + parts[2].rjust(4, "0") + \
            "".join(p.rjust(2, "0") for p in parts[3:])
        return uuid.UUID(hexes)
    return None


def to_guid(value: Any) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, list) and len(value) == 1:
        return to_guid(value[0])
    if isinstance(value, str):
        g = parse_guid(value)
        if g is not None:
            return g
        raise cast_error(value, "System.Guid", "InvalidCastParseTargetInvocation",
                         'Exception calling "Parse" with "1" argument(s): "Guid should contain 32 '
                         'digits with 4 dashes (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)."')
    raise cast_error(value, "System.Guid", "InvalidCastFromAnyTypeToGuid" if value is not None
                     else "InvalidCastFromNullToGuid")


_DATE_FORMATS = ("%m/%d/%Y %H:%M:%S", "%m/%d/%Y", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S",
                 "%Y-%m-%d", "%Y-%m-%dT%H:%M:%S.%f", "%m/%d/%Y %I:%M:%S %p")


def to_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        s = value.strip()
        utc = s.endswith("Z")
        core = s[:-1] if utc else s
        for form in _DATE_FORMATS:
            try:
                parsed = datetime.strptime(core, form)
            except ValueError:
                continue
            return parsed.replace(tzinfo=UTC) if utc else parsed
        raise cast_error(value, "System.DateTime", "InvalidCastParseTargetInvocation",
                         "String was not recognized as a valid DateTime.")
    raise cast_error(value, "System.DateTime", "InvalidCastFromAnyTypeToDateTime" if value is not None
                     else "InvalidCastFromNullToDateTime")


def naive(d: datetime) -> datetime:
    """DateTime compares its ticks whatever its Kind."""
    return d.replace(tzinfo=None) if d.tzinfo is not None else d


def datetime_ticks(d: datetime) -> int:
    delta = naive(d) - datetime(1, 1, 1)
    return timespan_ticks(delta)


_DOTNET_FORMAT = re.compile(
    r"'[^']*'|\"[^\"]*\"|\\.|yyyy+|yy|y|MMMM|MMM|MM|M|dddd|ddd|dd|d|HH|H|hh|h|mm|m|ss|s|f{1,7}|"
    r"F{1,7}|tt|t|zzz|zz|z|K|.", re.DOTALL)
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def _hijri(d: datetime) -> tuple[int, int, int]:
    """The tabular Islamic calendar's (year, month, day) of a Gregorian date: ar-SA's Um Al-Qura
    calendar to within a day or two, and the same year (what a culture-formatted date shows)."""
    jd = d.toordinal() + 1721425
    ell = jd - 1948440 + 10632
    n = (ell - 1) // 10631
    ell = ell - 10631 * n + 354
    j = ((10985 - ell) // 5316) * ((50 * ell) // 17719) + (ell // 5670) * ((43 * ell) // 15238)
    ell = ell - ((30 - j) // 15) * ((17719 * j) // 50) - (j // 16) * ((15238 * j) // 43) + 29
    month = (24 * ell) // 709
    day = ell - (709 * month) // 24
    return 30 * n + j - 30, month, day


def calendar_date(d: datetime, culture: str) -> tuple[int, int, int]:
    """(year, month, day) in the calendar a culture formats dates with: th-TH counts Buddhist
    years (+543), ar-SA the Hijri calendar, the others (and the invariant culture) Gregorian."""
    c = culture.lower()
    if c == "th-th":
        return d.year + 543, d.month, d.day
    if c == "ar-sa":
        return _hijri(d)
    return d.year, d.month, d.day


def format_datetime(d: datetime, fmt: str | None, utc_offset: timedelta = timedelta(0),
                    culture: str = "") -> str:
    """DateTime.ToString(format) in a culture ("" invariant): its calendar decides the year,
    month and day shown; names and separators stay the invariant culture's."""
    if not fmt:
        return to_str(d)
    year, month, day = calendar_date(d, culture)
    standard = {"o": "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffK",
                "O": "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffK",
                "s": "yyyy'-'MM'-'dd'T'HH':'mm':'ss", "u": "yyyy'-'MM'-'dd HH':'mm':'ss'Z'",
                "d": "MM/dd/yyyy", "D": "dddd, dd MMMM yyyy", "t": "HH:mm", "T": "HH:mm:ss",
                "g": "MM/dd/yyyy HH:mm", "G": "MM/dd/yyyy HH:mm:ss", "yyyy": "yyyy"}
    if len(fmt) == 1:
        if fmt not in standard:
            raise PSError("Input string was not in a correct format.", "FormatException",
                          "NotSpecified", "System.FormatException")
        fmt = standard[fmt]
    out = []
    for tok in _DOTNET_FORMAT.findall(fmt):
        c = tok[0]
        if c in "'\"":
            out.append(tok[1:-1])
        elif c == "\\":
            out.append(tok[1:])
        elif c == "y":
            out.append(str(year).zfill(len(tok)) if len(tok) != 2 else f"{year % 100:02}")
            if len(tok) == 1:
                out[-1] = str(year % 100)
        elif c == "M":
            out.append({1: str(month), 2: f"{month:02}", 3: _MONTHS[month - 1][:3]}.get(
                len(tok), _MONTHS[month - 1]))
        elif c == "d":
            out.append({1: str(day), 2: f"{day:02}", 3: _DAYS[d.weekday()][:3]}.get(
                len(tok), _DAYS[d.weekday()]))
        elif c == "H":
            out.append(f"{d.hour:02}" if len(tok) == 2 else str(d.hour))
        elif c == "h":
            h = d.hour % 12 or 12
            out.append(f"{h:02}" if len(tok) == 2 else str(h))
        elif c == "m":
            out.append(f"{d.minute:02}" if len(tok) == 2 else str(d.minute))
        elif c == "s":
            out.append(f"{d.second:02}" if len(tok) == 2 else str(d.second))
        elif c in "fF":
            digits = f"{d.microsecond:06}0"[:len(tok)]
            out.append(digits if c == "f" else digits.rstrip("0"))
        elif c == "t":
            out.append(("AM" if d.hour < 12 else "PM")[:len(tok)])
        elif c == "z":
            off = d.utcoffset() if d.tzinfo else utc_offset
            minutes = int(off.total_seconds() // 60) if off is not None else 0
            sign = "+" if minutes >= 0 else "-"
            hh, mm = divmod(abs(minutes), 60)
            out.append({1: f"{sign}{hh}", 2: f"{sign}{hh:02}"}.get(len(tok), f"{sign}{hh:02}:{mm:02}"))
        elif c == "K":
            if d.tzinfo is not None:
                out.append("Z")
            else:
                minutes = int(utc_offset.total_seconds() // 60)
                sign = "+" if minutes >= 0 else "-"
                hh, mm = divmod(abs(minutes), 60)
                out.append(f"{sign}{hh:02}:{mm:02}")
        else:
            out.append(tok)
    return "".join(out)


# --- regular expressions and wildcards ------------------------------------------------------------

_NET_TOKENS = re.compile(r"\\.|\(\?<(?![=!])|\[[^\]]*\]|.", re.DOTALL)


@lru_cache(maxsize=512)
def regex(pattern: str, case_sensitive: bool = False) -> re.Pattern[str]:
    """A .NET pattern for Python's re: named groups (?<n>..) -> (?P<n>..), \\z -> \\Z,
    \\Z -> end or before a final newline. Case-insensitive unless asked otherwise."""
    out = []
    for tok in _NET_TOKENS.findall(pattern):
        if tok == "(?<":
            out.append("(?P<")
        elif tok == "\\z":
            out.append("\\Z")
        elif tok == "\\Z":
            out.append("(?=\\n?\\Z)")
        elif tok == "\\k" or tok.startswith("\\k<"):
            out.append(tok)
        else:
            out.append(tok)
    flags = 0 if case_sensitive else re.IGNORECASE
    try:
        return re.compile("".join(out).replace("\\k<", "(?P="), flags)
    except re.error as exc:
        raise PSError(f'The regular expression pattern {pattern} is not valid.', "InvalidRegularExpression",
                      "InvalidOperation", "System.Management.Automation.RuntimeException", pattern) from exc


def replacement(text: str) -> Callable[[re.Match[str]], str]:
    """A .NET replacement string ($1, ${name}, $&, $$) as a function of the match."""
    parts = re.split(r"(\$\$|\$&|\$\{\w+\}|\$\d+)", text)

    def group(m: re.Match[str], key: str, written: str) -> str:
        try:
            return m.group(int(key) if key.isdigit() else key) or ""
        except (IndexError, KeyError):
            return written  # .NET leaves a reference to a group that does not exist as written

    def expand(m: re.Match[str]) -> str:
        out = []
        for p in parts:
            if p == "$$":
                out.append("$")
            elif p == "$&":
                out.append(m.group(0))
            elif p.startswith("${"):
                out.append(group(m, p[2:-1], p))
            elif p.startswith("$") and p[1:].isdigit():
                out.append(group(m, p[1:], p))
            else:
                out.append(p)
        return "".join(out)
    return expand


@lru_cache(maxsize=512)
def wildcard(pattern: str, case_sensitive: bool = False) -> re.Pattern[str]:
    """A -like pattern: * ? [a-z], with ` escaping the next character."""
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "`" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(c))
            else:
                out.append("[" + pattern[i + 1:end].replace("\\", "\\\\") + "]")
                i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z", re.DOTALL | (0 if case_sensitive else re.IGNORECASE))


# --- comparison -----------------------------------------------------------------------------------

def equals(left: Any, right: Any, case_sensitive: bool = False) -> bool:
    """LanguagePrimitives.Equals: the right side converted to the left's type."""
    if left is None:
        return right is None
    if right is None:
        return False
    # type(left) itself, not a saved `t`: mypy narrows on it
    if type(left) is str:
        r = right if type(right) is str else to_str(right)
        return left == r if case_sensitive else (left == r or left.lower() == r.lower())
    if type(left) is bool:
        return left == to_bool(right)
    if type(left) is int or type(left) is float:
        if type(right) is int or type(right) is float:
            return left == right
        try:
            return left == to_number(right)
        except PSError:
            return False
    if isinstance(left, uuid.UUID):
        if isinstance(right, uuid.UUID):
            return left == right
        if isinstance(right, str):
            return parse_guid(right) == left
        return False
    if isinstance(left, PSEnum):
        if isinstance(right, str):
            r = right.strip()
            return left.name.lower() == r.lower() or (r.lstrip("-").isdigit() and int(r) == left.value)
        if isinstance(right, PSEnum):
            return left.value == right.value
        if type(right) is int or type(right) is float:
            return left.value == right
        return False
    if isinstance(left, datetime):
        try:
            return naive(left) == naive(to_datetime(right))
        except PSError:
            return False
    if isinstance(left, timedelta):
        return isinstance(right, timedelta) and left == right
    if isinstance(left, PSType):
        return isinstance(right, PSType) and left == right or isinstance(right, str) and \
            left.full_name.lower() == right.lower()
    return left is right or (type(left) is type(right) and left == right and not isinstance(left, PSObject))


def compare(left: Any, right: Any, case_sensitive: bool = False) -> int:
    """LanguagePrimitives.Compare: <0, 0, >0; the right side converted to the left's type."""
    if left is None:
        if right is None:
            return 0
        # $null is less than anything except an empty string / zero compares as their value
        if isinstance(right, str):
            return 0 if right == "" else -1
        if type(right) in (int, float):
            return -1 if right > 0 else (0 if right == 0 else 1)
        return -1
    t = type(left)
    if type(left) is str:  # type(left) itself: mypy narrows on it
        r = to_str(right)
        sa, sb = (left, r) if case_sensitive else (left.lower(), r.lower())
        return (sa > sb) - (sa < sb)
    if t in (int, float, bool) or isinstance(left, PSEnum):
        na = to_number(left)
        if right is None:
            return 1 if na >= 0 else -1
        nb = to_number(right)
        return (na > nb) - (na < nb)
    if isinstance(left, datetime):
        if right is None:
            return 1
        da, db = naive(left), naive(to_datetime(right))
        return (da > db) - (da < db)
    if isinstance(left, timedelta):
        if not isinstance(right, timedelta):
            raise _not_comparable(left)
        return (left > right) - (left < right)
    if isinstance(left, uuid.UUID):
        g = to_guid(right)
        return (left.bytes_le > g.bytes_le) - (left.bytes_le < g.bytes_le)
    raise _not_comparable(left)


def _not_comparable(left: Any) -> PSError:
    return PSError(f'Cannot compare "{to_str(left)}" because it is not IComparable.', "NotIcomparable",
                   "InvalidOperation", "System.Management.Automation.RuntimeException", left)


# --- casts ----------------------------------------------------------------------------------------

def version(text: str) -> PSObject:
    parts = [int(p) for p in text.split(".")] + [-1, -1, -1, -1]
    return PSObject("System.Version", {"Major": parts[0], "Minor": max(parts[1], 0),
                                       "Build": parts[2], "Revision": parts[3]}, text=text)


def to_list(value: Any) -> list[Any] | None:
    """[array]$x / [object[]]$x: $null stays $null, a list is copied, anything else is wrapped."""
    if value is None:
        return None
    if type(value) is list or type(value) is tuple:
        return list(value)
    if isinstance(value, bytes):
        return list(value)
    return [value]


def _to_timespan(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if type(value) is int:
        return timedelta(microseconds=value / 10)
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(-)?(?:(\d+)\.)?(\d+):(\d+)(?::(\d+)(?:\.(\d{1,7}))?)?\s*", value)
        if m:
            sign = -1 if m.group(1) else 1
            ticks = ((int(m.group(2) or 0) * 24 + int(m.group(3))) * 3600 + int(m.group(4)) * 60
                     + int(m.group(5) or 0)) * 10_000_000 + int((m.group(6) or "0").ljust(7, "0"))
            return timedelta(microseconds=sign * ticks / 10)
    raise cast_error(value, "System.TimeSpan", "InvalidCastParseTargetInvocation"
                     if isinstance(value, str) else "InvalidCastFromAnyTypeToTimeSpan")


def cast(value: Any, full_name: str) -> Any:
    """[T]$value for the types the lab knows (full_name from type_full_name)."""
    low = full_name.lower()
    if low.endswith("[]"):
        element = full_name[:-2]
        items = to_list(value)
        if items is None:
            return None
        return items if element.lower() == "system.object" else [cast(v, element) for v in items]
    if low == "system.int32":
        return to_int(value, 32)
    if low == "system.int64":
        return to_int(value, 64)
    if low in ("system.int16", "system.byte", "system.sbyte", "system.uint16", "system.uint32",
               "system.uint64"):
        return to_int(value, 64)
    if low == "system.string":
        return to_str(value)
    if low == "system.boolean" or low == "system.management.automation.switchparameter":
        return to_bool(value)
    if low in ("system.double", "system.single", "system.decimal"):
        return to_float(value)
    if low == "system.guid":
        return to_guid(value)
    if low == "system.datetime":
        return to_datetime(value)
    if low == "system.timespan":
        return _to_timespan(value)
    if low == "system.array":
        return to_list(value)
    if low == "system.object":
        return value
    if low == "system.management.automation.psobject":
        if isinstance(value, Hashtable):  # [pscustomobject]@{...}
            return PSObject(CUSTOM_OBJECT, value)
        return value
    if low == "system.collections.hashtable":
        if isinstance(value, Hashtable) or value is None:
            return value
        raise cast_error(value, full_name, "ConvertToFinalInvalidCastException")
    if low == "system.text.regularexpressions.regex":
        return regex(to_str(value))
    if low == "system.char":
        if isinstance(value, str) and len(value) == 1:
            return value
        if type(value) is int:
            return chr(value)
        raise cast_error(value, full_name, "InvalidCastParseTargetInvocation",
                         "String must be exactly one character long.")
    if low == "system.version":
        if isinstance(value, str) and re.fullmatch(r"\d+(\.\d+){1,3}", value.strip()):
            return version(value.strip())
        raise cast_error(value, full_name, "InvalidCastParseTargetInvocation")
    if low == "system.void":
        return None
    if type_of(value).lower() == low:
        return value
    raise PSError(f'Cannot convert the "{to_str(value)}" value of type "{type_of(value)}" to type '
                  f'"{full_name}".', "ConvertToFinalInvalidCastException", "InvalidArgument",
                  INVALID_CAST, value)

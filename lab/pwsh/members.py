""".NET members of the values scripts touch: properties, instance methods and statics, with
ConstrainedLanguage's rule (a method only on a core type, ToString on any) applied by the
caller through `Host.check_method`."""
from __future__ import annotations

import base64
import binascii
import math
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from . import convert as cv
from .convert import PSType, Ref
from .values import CUSTOM_OBJECT_TYPE, ErrorRecord, Getter, Hashtable, PSEnum, PSError, PSObject

RUNTIME = "System.Management.Automation.RuntimeException"
METHOD_INVOCATION = "System.Management.Automation.MethodInvocationException"


class Host(Protocol):
    """What member access needs of the runspace."""

    utc_offset: timedelta
    culture: str  # the session's culture ("en-US"): a PSRP session takes the client's
    identity: Any  # the process's token (a WindowsIdentity object), or None

    def check_method(self, type_name: str, method: str) -> None: ...

    def now(self) -> datetime: ...


def method_not_found(type_name: str, name: str) -> PSError:
    return PSError(f"Method invocation failed because [{type_name}] does not contain a method named "
                   f"'{name}'.", "MethodNotFound", "InvalidOperation", RUNTIME)


def method_failed(name: str, args: list[Any], exc_type: str, message: str) -> PSError:
    return PSError(f'Exception calling "{name}" with "{len(args)}" argument(s): "{message}"',
                   exc_type.rsplit(".", 1)[-1], "NotSpecified", METHOD_INVOCATION)


def null_method() -> PSError:
    return PSError("You cannot call a method on a null-valued expression.", "InvokeMethodOnNull",
                   "InvalidOperation", RUNTIME)


# --- views of error records -----------------------------------------------------------------------

class ExceptionView(PSObject):
    """$_.Exception: Message, GetType().FullName."""

    __slots__ = ("record",)

    def __init__(self, record: ErrorRecord) -> None:
        super().__init__(record.exception_type, {"Message": record.message, "ErrorRecord": record,
                                                 "InnerException": getattr(record, "inner", None),
                                                 "HResult": -2146233087},
                         text=record.message)
        self.record = record

    def gettype(self, *args: Any) -> PSType:
        return PSType(self.record.exception_type)


def error_member(record: ErrorRecord, name: str) -> Any:
    low = name.lower()
    if low == "exception":
        return ExceptionView(record)
    if low == "fullyqualifiederrorid":
        return record.fqid
    if low == "categoryinfo":
        short = record.exception_type.rsplit(".", 1)[-1]
        return PSObject("System.Management.Automation.ErrorCategoryInfo", {
            "Category": PSEnum(record.category, _CATEGORIES.get(record.category, 0),
                               "System.Management.Automation.ErrorCategory"),
            "Activity": "", "Reason": short, "TargetName": cv.to_str(record.target),
            "TargetType": cv.type_of(record.target) if record.target is not None else ""},
            text=f"{record.category}: ({cv.to_str(record.target)}:{cv.type_of(record.target)}) [], {short}")
    if low == "targetobject":
        return record.target
    if low in ("invocationinfo", "errordetails", "scriptstacktrace", "pipelineiterationinfo"):
        return None
    return None


_CATEGORIES = {name: i for i, name in enumerate(
    ["NotSpecified", "OpenError", "CloseError", "DeviceError", "DeadlockDetected", "InvalidArgument",
     "InvalidData", "InvalidOperation", "InvalidResult", "InvalidType", "MetadataError",
     "NotImplemented", "NotInstalled", "ObjectNotFound", "OperationStopped", "OperationTimeout",
     "SyntaxError", "ParserError", "PermissionDenied", "ResourceBusy", "ResourceExists",
     "ResourceUnavailable", "ReadError", "WriteError", "FromStdErr", "SecurityError",
     "ProtocolError", "ConnectionError", "AuthenticationError", "LimitsExceeded", "QuotaExceeded",
     "NotEnabled"])}


# --- instance properties --------------------------------------------------------------------------

def _read(name: str, getter: Getter) -> Any:
    try:
        return getter.read()
    except PSError as error:
        raise PSError(f'Exception getting "{name}": "{error.record.message}"',
                      "CatchFromBaseAdapterGetValue", "NotSpecified",
                      "System.Management.Automation.GetValueInvocationException") from None


def get_member(host: Host, obj: Any, name: str) -> Any:
    """$obj.Name; $null for what does not exist (not strict mode). Count and Length exist on
    everything (PowerShell 3's intrinsic members): 0 for $null, 1 for one object."""
    low = name.lower()
    if obj is None:
        return 0 if low in ("count", "length") else None
    t = type(obj)
    if isinstance(obj, PSObject):
        item = obj.props._items.get(low)
        if item is not None:
            if isinstance(item[1], Getter):
                return _read(item[0], item[1])
            return item[1]
        if low == "psobject":
            return obj
        return 1 if low in ("count", "length") else None
    if t is str:
        if low == "length":
            return len(obj)
        return 1 if low == "count" else None
    if t is list or t is tuple:
        if low in ("count", "length", "longlength"):
            return len(obj)
        if low == "rank":
            return 1
        # member enumeration: the property of each element, one level flattened
        found: list[Any] = []
        for item in obj:
            if item is None:
                continue
            value = get_member(host, item, name)
            if type(value) is list:
                found.extend(value)
            elif value is not None:
                found.append(value)
        return None if not found else found[0] if len(found) == 1 else found
    if isinstance(obj, Hashtable):
        item = obj._items.get(low)
        if item is not None:
            return item[1]
        if low == "count":
            return len(obj)
        if low == "keys":
            return list(obj.keys())
        if low == "values":
            return list(obj.values())
        return None
    if isinstance(obj, datetime):
        return _datetime_prop(host, obj, low)
    if isinstance(obj, timedelta):
        return _timespan_prop(obj, low)
    if isinstance(obj, PSEnum):
        return obj.value if low == "value__" else None
    if isinstance(obj, ErrorRecord):
        return error_member(obj, name)
    if isinstance(obj, PSType):
        if low == "fullname":
            return obj.full_name
        if low == "name":
            return obj.name
        return None
    if isinstance(obj, Ref):
        return obj.get() if low == "value" else None
    if isinstance(obj, bytes):
        return len(obj) if low in ("count", "length") else None
    if low in ("count", "length"):
        return 1
    return None


def set_member(host: Host, obj: Any, name: str, value: Any, constrained: bool) -> None:
    """$obj.Name = value."""
    if isinstance(obj, Hashtable):
        obj[name] = value
        return
    if isinstance(obj, Ref) and name.lower() == "value":
        obj.set(value)
        return
    if isinstance(obj, PSObject) and name in obj.props:
        if constrained and obj.type_name != CUSTOM_OBJECT_TYPE:
            # Instance (note) properties of a PSCustomObject are handled before the language check;
            # properties of other .NET objects need a core type.
            host.check_method(obj.type_name, "set_" + name)
        obj.props[name] = value
        return
    if obj is None:
        raise PSError(f"The property '{name}' cannot be found on this object. Verify that the "
                      "property exists and can be set.", "PropertyNotFound", "InvalidOperation", RUNTIME)
    raise PSError(f"The property '{name}' cannot be found on this object. Verify that the property "
                  "exists and can be set.", "PropertyNotFound", "InvalidOperation", RUNTIME)


def _datetime_prop(host: Host, d: datetime, low: str) -> Any:
    if low == "year":
        return d.year
    if low == "month":
        return d.month
    if low == "day":
        return d.day
    if low == "hour":
        return d.hour
    if low == "minute":
        return d.minute
    if low == "second":
        return d.second
    if low == "millisecond":
        return d.microsecond // 1000
    if low == "date":
        return d.replace(hour=0, minute=0, second=0, microsecond=0)
    if low == "dayofweek":
        day = (d.weekday() + 1) % 7
        return PSEnum(["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
                       "Saturday"][day], day, "System.DayOfWeek")
    if low == "dayofyear":
        return d.timetuple().tm_yday
    if low == "kind":
        return PSEnum("Utc", 1, "System.DateTimeKind") if d.tzinfo else \
            PSEnum("Local", 2, "System.DateTimeKind")
    if low == "ticks":
        return cv.datetime_ticks(d)
    if low == "timeofday":
        return timedelta(hours=d.hour, minutes=d.minute, seconds=d.second, microseconds=d.microsecond)
    return None


def _timespan_prop(s: timedelta, low: str) -> Any:
    ticks = cv.timespan_ticks(s)
    total = ticks / 10_000_000
    props: dict[str, Callable[[], Any]] = {
        "totalseconds": lambda: total, "totalminutes": lambda: total / 60,
        "totalhours": lambda: total / 3600, "totaldays": lambda: total / 86400,
        "totalmilliseconds": lambda: ticks / 10_000, "ticks": lambda: ticks,
        "days": lambda: int(ticks / 864_000_000_000),
        "hours": lambda: _part(ticks, 36_000_000_000, 24),
        "minutes": lambda: _part(ticks, 600_000_000, 60), "seconds": lambda: _part(ticks, 10_000_000, 60),
        "milliseconds": lambda: _part(ticks, 10_000, 1000)}
    fn = props.get(low)
    return fn() if fn else None


def _part(ticks: int, unit: int, modulo: int) -> int:
    sign = 1 if ticks >= 0 else -1
    return sign * (abs(ticks) // unit % modulo)


# --- instance methods -----------------------------------------------------------------------------

def call_method(host: Host, obj: Any, name: str, args: list[Any]) -> Any:
    """$obj.Name(args)."""
    if obj is None:
        raise null_method()
    low = name.lower()
    type_name = cv.type_of(obj)
    host.check_method(type_name, name)
    if low == "gettype" and not args:
        return PSType(type_name)
    if low == "tostring" and not args and not isinstance(obj, datetime | uuid.UUID | PSEnum):
        return _to_string(obj)
    if low == "equals" and len(args) == 1 and not isinstance(obj, str):
        return cv.equals(obj, args[0], case_sensitive=True)
    t = type(obj)
    try:
        if t is str:
            return _string_method(obj, low, name, args)
        if isinstance(obj, PSObject):
            return _object_method(obj, low, name, args)
        if isinstance(obj, Hashtable):
            return _hashtable_method(obj, low, name, args)
        if t is list or t is tuple:
            return _list_method(host, obj, low, name, args)
        if isinstance(obj, datetime):
            return _datetime_method(host, obj, low, name, args)
        if isinstance(obj, uuid.UUID):
            if low == "tostring":
                return _guid_string(obj, cv.to_str(args[0]) if args else "D", name, args)
            if low == "tobytearray":
                return obj.bytes_le
        if isinstance(obj, PSEnum):
            if low == "tostring":
                return obj.name
            if low == "hasflag" and len(args) == 1:
                flag = args[0].value if isinstance(args[0], PSEnum) else cv.to_int(args[0])
                return obj.value & flag == flag
        if isinstance(obj, timedelta) and low == "tostring":
            return cv.fmt_timespan(obj)
        if isinstance(obj, re.Pattern):
            return _regex_method(obj, low, name, args)
    except (IndexError, ValueError, TypeError) as exc:
        raise method_failed(name, args, "System.ArgumentException", str(exc)) from None
    raise method_not_found(type_name, name)


def _to_string(obj: Any) -> str:
    if type(obj) is list or type(obj) is tuple:
        return "System.Object[]"
    if isinstance(obj, bytes):
        return "System.Byte[]"
    return cv.to_str(obj)


def _chars(args: list[Any]) -> str:
    return "".join(cv.to_str(a) for a in args)


def _string_method(s: str, low: str, name: str, args: list[Any]) -> Any:
    n = len(args)
    if low == "substring":
        start = cv.to_int(args[0])
        if start < 0 or start > len(s):
            raise method_failed(name, args, "System.ArgumentOutOfRangeException",
                                "startIndex cannot be larger than length of string.\r\n"
                                "Parameter name: startIndex" if start > len(s) else
                                "StartIndex cannot be less than zero.\r\nParameter name: startIndex")
        if n == 1:
            return s[start:]
        length = cv.to_int(args[1])
        if length < 0 or start + length > len(s):
            raise method_failed(name, args, "System.ArgumentOutOfRangeException",
                                "Index and length must refer to a location within the string.\r\n"
                                "Parameter name: length")
        return s[start:start + length]
    if low in ("trim", "trimend", "trimstart"):
        chars = _chars(args) if args else None
        if chars is None:
            return {"trim": s.strip, "trimend": s.rstrip, "trimstart": s.lstrip}[low]()
        return {"trim": s.strip, "trimend": s.rstrip, "trimstart": s.lstrip}[low](chars)
    if low == "replace" and n == 2:
        old = cv.to_str(args[0])
        if old == "":
            raise method_failed(name, args, "System.ArgumentException",
                                "String cannot be of zero length.\r\nParameter name: oldValue")
        return s.replace(old, cv.to_str(args[1]))
    if low in ("startswith", "endswith", "contains", "indexof", "lastindexof", "equals") and n >= 1:
        other = cv.to_str(args[0])
        ignore = n >= 2 and "ignorecase" in cv.to_str(args[-1]).lower()
        a, b = (s.lower(), other.lower()) if ignore else (s, other)
        if low == "startswith":
            return a.startswith(b)
        if low == "endswith":
            return a.endswith(b)
        if low == "contains":
            return b in a
        if low == "equals":
            return a == b
        if low == "indexof":
            start = cv.to_int(args[1]) if n >= 2 and type(args[1]) is int else 0
            return a.find(b, start)
        return a.rfind(b)
    if low in ("tolower", "tolowerinvariant"):
        return s.lower()
    if low in ("toupper", "toupperinvariant"):
        return s.upper()
    if low == "split":
        seps = _chars(args[:1]) if args else " "
        if not seps:
            return [s]
        return re.split("|".join(re.escape(c) for c in seps), s)
    if low in ("padleft", "padright") and n >= 1:
        width = cv.to_int(args[0])
        fill = cv.to_str(args[1])[:1] if n > 1 else " "
        return s.rjust(width, fill) if low == "padleft" else s.ljust(width, fill)
    if low == "tostring":
        return s
    if low == "tochararray":
        return list(s)
    if low == "insert" and n == 2:
        i = cv.to_int(args[0])
        return s[:i] + cv.to_str(args[1]) + s[i:]
    if low == "remove":
        i = cv.to_int(args[0])
        return s[:i] if n == 1 else s[:i] + s[i + cv.to_int(args[1]):]
    if low == "compareto" and n == 1:
        return cv.compare(s, args[0], case_sensitive=True)
    raise method_not_found("System.String", name)


def _object_method(obj: PSObject, low: str, name: str, args: list[Any]) -> Any:
    # Methods a PSObject subclass defines (lower-case names); never the base class's helpers.
    for klass in type(obj).__mro__:
        if klass is PSObject:
            break
        fn = klass.__dict__.get(low)
        if callable(fn):
            return fn(obj, *args)
    if low == "tostring":
        return str(obj)
    raise method_not_found(obj.type_name, name)


def _hashtable_method(h: Hashtable, low: str, name: str, args: list[Any]) -> Any:
    n = len(args)
    if low in ("containskey", "contains") and n == 1:
        return args[0] in h
    if low == "containsvalue" and n == 1:
        return any(cv.equals(v, args[0], case_sensitive=True) for v in h.values())
    if low == "add" and n == 2:
        if args[0] is None:
            raise method_failed(name, args, "System.ArgumentNullException",
                                "Key cannot be null.\r\nParameter name: key")
        if args[0] in h:
            raise method_failed(name, args, "System.ArgumentException",
                                f"Item has already been added. Key in dictionary: '{cv.to_str(args[0])}'  "
                                f"Key being added: '{cv.to_str(args[0])}'")
        h[args[0]] = args[1]
        return None
    if low == "remove" and n == 1:
        if args[0] in h:
            del h[args[0]]
        return None
    if low == "clear":
        h.clear()
        return None
    if low == "clone":
        return h.copy()
    if low == "getenumerator":
        return [PSObject("System.Collections.DictionaryEntry", {"Key": k, "Value": v, "Name": k})
                for k, v in h.items()]
    if low == "tostring":
        return "System.Collections.Hashtable"
    raise method_not_found("System.Collections.Hashtable", name)


def _list_method(host: Host, items: list[Any] | tuple[Any, ...], low: str, name: str,
                 args: list[Any]) -> Any:
    if low == "contains" and len(args) == 1:
        return any(cv.equals(v, args[0], case_sensitive=True) for v in items)
    if low == "indexof" and len(args) == 1:
        return next((i for i, v in enumerate(items) if cv.equals(v, args[0], case_sensitive=True)), -1)
    if low == "clone":
        return list(items)
    if low in ("add", "remove", "insert", "clear", "removeat"):
        raise method_failed(name, args, "System.NotSupportedException", "Collection was of a fixed size.")
    if low == "tostring":
        return "System.Object[]"
    # method enumeration: the method of each element
    results = [call_method(host, item, name, args) for item in items if item is not None]
    return None if not results else results[0] if len(results) == 1 else results


def _datetime_method(host: Host, d: datetime, low: str, name: str, args: list[Any]) -> Any:
    n = len(args)
    if low == "touniversaltime":
        if d.tzinfo is not None:
            return d
        return (d - host.utc_offset).replace(tzinfo=UTC)
    if low == "tolocaltime":
        if d.tzinfo is None:
            return d
        return d.replace(tzinfo=None) + host.utc_offset
    if low == "tostring":
        # The culture is the provider's when one is given, else the session's.
        fmt = args[0] if n >= 1 and isinstance(args[0], str) else None
        provider = args[-1] if n >= 1 and isinstance(args[-1], PSObject) else None
        culture = cv.to_str(provider.get("Name")) if provider is not None else host.culture
        if fmt is None:
            fmt = "M/d/yyyy h:mm:ss tt" if culture.lower() == "en-us" else \
                "MM/dd/yyyy HH:mm:ss" if culture == "" else "dd/MM/yyyy HH:mm:ss"
        return cv.format_datetime(d, fmt, host.utc_offset, culture)
    adders = {"adddays": "days", "addhours": "hours", "addminutes": "minutes",
              "addseconds": "seconds", "addmilliseconds": "milliseconds"}
    if low in adders and n == 1:
        return d + timedelta(**{adders[low]: cv.to_float(args[0])})
    if low == "addticks" and n == 1:
        return d + timedelta(microseconds=cv.to_int(args[0], 64) / 10)
    if low in ("addmonths", "addyears") and n == 1:
        months = cv.to_int(args[0]) * (12 if low == "addyears" else 1)
        total = d.year * 12 + d.month - 1 + months
        year, month = divmod(total, 12)
        day = min(d.day, _days_in_month(year, month + 1))
        return d.replace(year=year, month=month + 1, day=day)
    if low == "subtract" and n == 1:
        other = args[0]
        if isinstance(other, timedelta):
            return d - other
        return cv.naive(d) - cv.naive(cv.to_datetime(other))
    if low == "compareto" and n == 1:
        return cv.compare(d, args[0])
    if low == "toshortdatestring":
        return cv.format_datetime(d, "M/d/yyyy" if host.culture.lower() == "en-us" else "dd/MM/yyyy",
                                  host.utc_offset, host.culture)
    if low == "tofiletimeutc":
        return (cv.datetime_ticks(d) - 504911232000000000)
    raise method_not_found("System.DateTime", name)


def _days_in_month(year: int, month: int) -> int:
    if month == 12:
        return 31
    return (datetime(year, month + 1, 1) - datetime(year, month, 1)).days


def _guid_string(g: uuid.UUID, fmt: str, name: str, args: list[Any]) -> str:
    f = fmt.upper() if fmt else "D"
    text = str(g)
    if f == "D":
        return text
    if f == "N":
        return g.hex
    if f == "B":
        return "{" + text + "}"
    if f == "P":
        return "(" + text + ")"
    raise method_failed(name, args, "System.FormatException",
                        'Format String can be only "D", "d", "N", "n", "P", "p", "B", "b", "X" or "x".')


def _regex_method(r: re.Pattern[str], low: str, name: str, args: list[Any]) -> Any:
    if low == "ismatch" and args:
        return r.search(cv.to_str(args[0])) is not None
    if low == "replace" and len(args) == 2:
        return r.sub(cv.replacement(cv.to_str(args[1])), cv.to_str(args[0]))
    if low == "tostring":
        return r.pattern
    raise method_not_found("System.Text.RegularExpressions.Regex", name)


# --- statics --------------------------------------------------------------------------------------

class Encoding(PSObject):
    """[Text.Encoding]::UTF8 and friends (not a core type: ConstrainedLanguage refuses GetString)."""

    __slots__ = ("codec",)

    def __init__(self, type_name: str, codec: str, web_name: str) -> None:
        super().__init__(type_name, {"WebName": web_name, "EncodingName": web_name}, text=type_name)
        self.codec = codec

    def getstring(self, data: Any, *rest: Any) -> str:
        raw = data if isinstance(data, bytes) else bytes(cv.to_int(b) for b in cv.to_list(data) or [])
        return raw.decode(self.codec, errors="replace")

    def getbytes(self, text: Any, *rest: Any) -> bytes:
        return cv.to_str(text).encode(self.codec)


INVARIANT_CULTURE = PSObject("System.Globalization.CultureInfo",
                             {"Name": "", "DisplayName": "Invariant Language (Invariant Country)"}, text="")


LOCAL_USER = PSObject("System.Security.Principal.WindowsIdentity", {
    "Name": "LABHOST\\user", "Groups": [],
    "User": PSObject("System.Security.Principal.SecurityIdentifier",
                     {"Value": "S-1-5-21-1-1-1-1001"}, text="S-1-5-21-1-1-1-1001")},
    text="System.Security.Principal.WindowsIdentity")


def get_static(host: Host, t: PSType, name: str) -> Any:
    """[T]::Name (reading a static property is allowed in every language mode)."""
    low = name.lower()
    key = t.full_name.lower()
    if key == "system.guid" and low == "empty":
        return uuid.UUID(int=0)
    if key == "system.string" and low == "empty":
        return ""
    if key == "system.globalization.cultureinfo" and low in ("invariantculture", "currentculture",
                                                             "currentuiculture"):
        return INVARIANT_CULTURE if low == "invariantculture" else PSObject(
            "System.Globalization.CultureInfo", {"Name": host.culture}, text=host.culture)
    if key == "system.datetime":
        if low == "now":
            return host.now()
        if low == "utcnow":
            return (host.now() - host.utc_offset).replace(tzinfo=UTC)
        if low == "today":
            return host.now().replace(hour=0, minute=0, second=0, microsecond=0)
        if low == "minvalue":
            return datetime(1, 1, 1)
        if low == "maxvalue":
            return datetime(9999, 12, 31, 23, 59, 59, 999999)
    if key == "system.text.encoding":
        codecs = {"utf8": ("System.Text.UTF8Encoding", "utf-8", "utf-8"),
                  "unicode": ("System.Text.UnicodeEncoding", "utf-16-le", "utf-16"),
                  "ascii": ("System.Text.ASCIIEncoding", "ascii", "us-ascii")}
        if low in codecs:
            return Encoding(*codecs[low])
    if key in ("system.int32", "system.int64"):
        bits = 31 if key == "system.int32" else 63
        if low == "maxvalue":
            return 2**bits - 1
        if low == "minvalue":
            return -(2**bits)
    if key == "system.timespan" and low == "zero":
        return timedelta(0)
    if key == "system.environment" and low == "newline":
        return "\r\n"
    return None


def call_static(host: Host, t: PSType, name: str, args: list[Any]) -> Any:
    """[T]::Name(args); ConstrainedLanguage allows it only on core types."""
    host.check_method(t.full_name, name)
    low = name.lower()
    key = t.full_name.lower()
    n = len(args)
    if key == "system.guid":
        if low == "newguid" and n == 0:
            return uuid.uuid4()
        if low == "tryparse" and n == 2:
            g = cv.parse_guid(cv.to_str(args[0])) if args[0] is not None else None
            ref = args[1]
            if not isinstance(ref, Ref):
                raise method_failed(name, args, "System.Management.Automation.PSInvalidCastException",
                                    "Argument: '2' should be a System.Management.Automation.PSReference. "
                                    "Use [ref].")
            ref.set(g if g is not None else uuid.UUID(int=0))
            return g is not None
        if low == "parse" and n == 1:
            g = cv.parse_guid(cv.to_str(args[0]))
            if g is None:
                raise method_failed(name, args, "System.FormatException",
                                    "Guid should contain 32 digits with 4 dashes "
                                    "(xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx).")
            return g
        if low == "new" and n == 1:
            return cv.to_guid(args[0])
    if key == "system.string":
        if low == "isnullorempty" and n == 1:
            return args[0] is None or cv.to_str(args[0]) == ""
        if low == "isnullorwhitespace" and n == 1:
            return args[0] is None or cv.to_str(args[0]).strip() == ""
        if low == "join" and n >= 2:
            items = args[1] if n == 2 and type(args[1]) is list else args[1:]
            return cv.to_str(args[0]).join(cv.to_str(i) for i in items)
    if key == "system.text.regularexpressions.regex":
        if low == "escape" and n == 1:
            return _regex_escape(cv.to_str(args[0]))
        if low == "ismatch" and n >= 2:
            return cv.regex(cv.to_str(args[1]), True).search(cv.to_str(args[0])) is not None
        if low == "replace" and n >= 3:
            return cv.regex(cv.to_str(args[1]), True).sub(cv.replacement(cv.to_str(args[2])),
                                                         cv.to_str(args[0]))
    if key == "system.datetime":
        if low == "new" and n in (3, 6, 7):
            parts = [cv.to_int(a) for a in args] + [0, 0, 0, 0]
            try:
                return datetime(parts[0], parts[1], parts[2], parts[3], parts[4], parts[5],
                                parts[6] * 1000 if n == 7 else 0)
            except ValueError as exc:
                raise method_failed(name, args, "System.ArgumentOutOfRangeException",
                                    "Year, Month, and Day parameters describe an un-representable "
                                    "DateTime.") from exc
        if low == "parse" and n >= 1:
            return cv.to_datetime(cv.to_str(args[0]))
        if low == "daysinmonth" and n == 2:
            return _days_in_month(cv.to_int(args[0]), cv.to_int(args[1]))
    if key == "system.timespan":
        units = {"fromseconds": "seconds", "fromminutes": "minutes", "fromhours": "hours",
                 "fromdays": "days", "frommilliseconds": "milliseconds"}
        if low in units and n == 1:
            return timedelta(**{units[low]: cv.to_float(args[0])})
    if key == "system.globalization.cultureinfo" and low == "getcultureinfo" and n == 1:
        culture = cv.to_str(args[0])
        return INVARIANT_CULTURE if culture == "" else PSObject(
            "System.Globalization.CultureInfo", {"Name": culture}, text=culture)
    if key == "system.convert":
        if low == "frombase64string" and n == 1:
            try:
                return base64.b64decode(cv.to_str(args[0]), validate=True)
            except (binascii.Error, ValueError):
                raise method_failed(name, args, "System.FormatException",
                                    "The input is not a valid Base-64 string as it contains a non-base 64 "
                                    "character, more than two padding characters, or an illegal character "
                                    "among the padding characters. ") from None
        if low == "tobase64string" and n == 1:
            data = args[0] if isinstance(args[0], bytes) else bytes(cv.to_list(args[0]) or [])
            return base64.b64encode(data).decode("ascii")
        if low == "toint32" and n == 1:
            return cv.to_int(args[0])
        if low == "tostring" and n == 1:
            return cv.to_str(args[0])
    if key == "system.security.principal.windowsidentity" and low == "getcurrent" and n == 0:
        # The token the process runs with: Name, User (its SID), Groups; a session the lab made
        # for no one in particular runs as a local user.
        return host.identity if host.identity is not None else LOCAL_USER
    if key in ("system.int32", "system.int64") and low == "parse" and n == 1:
        return cv.to_int(cv.to_str(args[0]), 32 if key == "system.int32" else 64)
    if key == "system.math":
        if low == "round":
            value = cv.to_float(args[0])
            return round(value, cv.to_int(args[1])) if n == 2 else float(round(value))
        if low in ("floor", "ceiling", "truncate") and n == 1:
            value = cv.to_float(args[0])
            return float(math.floor(value) if low == "floor" else math.ceil(value) if low == "ceiling"
                         else math.trunc(value))
        if low in ("max", "min") and n == 2:
            return (max if low == "max" else min)(cv.to_number(args[0]), cv.to_number(args[1]))
        if low == "abs" and n == 1:
            return abs(cv.to_number(args[0]))
    raise method_not_found(t.full_name, name)


def _regex_escape(s: str) -> str:
    """Regex.Escape: \\, *, +, ?, |, {, [, (, ), ^, $, ., #, white space (not ] or })."""
    out = []
    for c in s:
        if c in "\\*+?|{[()^$.#":
            out.append("\\" + c)
        elif c == " ":
            out.append("\\ ")
        elif c == "\t":
            out.append("\\t")
        elif c == "\n":
            out.append("\\n")
        elif c == "\r":
            out.append("\\r")
        elif c == "\f":
            out.append("\\f")
        else:
            out.append(c)
    return "".join(out)

"""The values a lab PowerShell script sees, and the contract between the interpreter and the
Python cmdlets (Hyper-V and the lab host's providers) that it calls.

Python values stand for PowerShell's: $null None; bool; int (Int32/Int64 alike); float; str;
uuid.UUID for [guid]; datetime for [DateTime] (naive = Local kind, aware UTC = Utc kind);
timedelta for [TimeSpan]; list for arrays; Hashtable for @{}; PSObject for PSCustomObject and
cmdlet objects; PSEnum for enum values; bytes for byte[]; ErrorRecord for $_ in a catch.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .runspace import Runspace

RUNTIME_EXCEPTION = "System.Management.Automation.RuntimeException"
CUSTOM_OBJECT_TYPE = "System.Management.Automation.PSCustomObject"


def _key(key: Any) -> Any:
    # Hashtable and property names compare without regard to case (OrdinalIgnoreCase); a bool
    # key must not collide with 1/0 as it would in a Python dict.
    if isinstance(key, str):
        return key.lower()
    if isinstance(key, bool):
        return (bool, key)
    return key


class Hashtable(MutableMapping[Any, Any]):
    """@{}: keys compare case-insensitively; iteration in insertion order (.NET's Hashtable has
    no order, so nothing may depend on it; insertion order keeps the lab's output stable)."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[Any, Any] | Iterable[tuple[Any, Any]] | None = None,
                 **kwargs: Any) -> None:
        self._items: dict[Any, tuple[Any, Any]] = {}
        if items is not None:
            pairs = items.items() if isinstance(items, Mapping) else items
            for k, v in pairs:
                self[k] = v
        for k, v in kwargs.items():
            self[k] = v

    def __getitem__(self, key: Any) -> Any:
        return self._items[_key(key)][1]

    def __setitem__(self, key: Any, value: Any) -> None:
        k = _key(key)
        old = self._items.get(k)
        # Setting an existing key keeps the key's first spelling, as .NET does.
        self._items[k] = (old[0] if old else key, value)

    def __delitem__(self, key: Any) -> None:
        del self._items[_key(key)]

    def __contains__(self, key: object) -> bool:
        return _key(key) in self._items

    def __iter__(self) -> Iterator[Any]:
        return (k for k, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Any, default: Any = None) -> Any:
        item = self._items.get(_key(key))
        return default if item is None else item[1]

    def copy(self) -> Hashtable:
        h = Hashtable()
        h._items = dict(self._items)
        return h

    def pairs(self) -> list[tuple[Any, Any]]:
        """(key, value) in order; faster than items() for the interpreter's loops."""
        return list(self._items.values())

    def __repr__(self) -> str:
        return "Hashtable({" + ", ".join(f"{k!r}: {v!r}" for k, v in self.items()) + "})"


class PSObject:
    """A .NET object as scripts see it: properties by name without regard to case; reading an
    unknown property gives $null (scripts do not run in strict mode). `text` is its ToString().

    Methods: a subclass defines them in lower case (`def tostring(self, *args)`); the
    interpreter finds them case-insensitively. A script may set a property the object has;
    setting one it lacks fails as in PowerShell (PropertyNotFound)."""

    __slots__ = ("type_name", "props", "text")

    def __init__(self, type_name: str, props: Mapping[str, Any] | None = None, *,
                 text: str | None = None) -> None:
        self.type_name = type_name
        self.props = Hashtable(props or {})
        self.text = text

    def __getitem__(self, name: str) -> Any:
        return self.props.get(name)

    def __setitem__(self, name: str, value: Any) -> None:
        self.props[name] = value

    def __contains__(self, name: str) -> bool:
        return name in self.props

    def get(self, name: str, default: Any = None) -> Any:
        return self.props.get(name, default)

    def __str__(self) -> str:
        if self.text is not None:
            return self.text
        if self.type_name == CUSTOM_OBJECT_TYPE:
            # "$o" of a PSCustomObject: @{a=1; b=2}
            return "@{" + "; ".join(f"{k}={_plain(v)}" for k, v in self.props.items()) + "}"
        return self.type_name

    def __repr__(self) -> str:
        return f"PSObject({self.type_name!r}, {dict(self.props.items())!r})"


def _plain(value: Any) -> str:
    return "" if value is None else str(value)


class Getter:
    """An ETS script property (Get-HotFix's InstalledOn is one): read each time it is read, and
    a failure of its getter reaches the script as GetValueInvocationException."""

    __slots__ = ("read",)

    def __init__(self, read: Callable[[], Any]) -> None:
        self.read = read


class PSEnum:
    """An enum value: its string is its name (flags: "Archive, ReparsePoint"); -eq compares its
    name with a string without regard to case, or its number with a number; ConvertTo-Json of
    Windows PowerShell 5.1 writes the number."""

    __slots__ = ("name", "value", "type_name")

    def __init__(self, name: str, value: int, type_name: str = "System.Enum") -> None:
        self.name, self.value, self.type_name = name, value, type_name

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"PSEnum({self.name!r}, {self.value!r}, {self.type_name!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PSEnum):
            return self.value == other.value and self.type_name == other.type_name
        if isinstance(other, str):
            return self.name.lower() == other.lower()
        if isinstance(other, int) and not isinstance(other, bool):
            return self.value == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.type_name, self.value))

    def tostring(self, *args: Any) -> str:
        return self.name


@dataclass
class ErrorRecord:
    """What $_ is in a catch block. Scripts read $_.Exception.Message,
    $_.Exception.GetType().FullName, $_.FullyQualifiedErrorId, $_.CategoryInfo.Category (the
    category's name), $_.TargetObject; "$_" is the message."""

    message: str
    fqid: str
    category: str = "NotSpecified"
    exception_type: str = RUNTIME_EXCEPTION
    target: Any = None
    # $_.Exception.InnerException: what a Hyper-V cmdlet's VirtualizationException wraps (a PSObject
    # with ErrorCode, the WMI job's result, or Issue, why the connection was refused).
    inner: Any = None

    def __str__(self) -> str:
        return self.message


class PSError(Exception):
    """An error a cmdlet (or the language) raises. `PSError(record)` or
    `PSError(message, fqid, category, exception_type, target)`.

    `kind` says how far it reaches: None (the default) is decided where it is raised: from a
    cmdlet it is a non-terminating error (WriteError: terminating under the error action Stop,
    else recorded in $Error while the script goes on), from the language a statement-terminating
    one; "statement" makes a cmdlet's error statement-terminating (ThrowTerminatingError);
    "script" is `throw` (ends the script unless a try catches it)."""

    def __init__(self, message: str | ErrorRecord, fqid: str = "", category: str = "NotSpecified",
                 exception_type: str = RUNTIME_EXCEPTION, target: Any = None) -> None:
        if isinstance(message, ErrorRecord):
            self.record = message
        else:
            self.record = ErrorRecord(message, fqid or message, category, exception_type, target)
        self.kind: str | None = None
        super().__init__(self.record.message)


@dataclass
class Call:
    """One cmdlet invocation handed to a Python cmdlet.

    `params`: canonical parameter names as in the facts (switches True, `-Confirm:$false`
    False); values as evaluated, the cmdlet converts them. `input`: what came down the pipeline
    (empty when the cmdlet is first in its pipeline). `set_name`: the parameter set bound."""

    name: str
    params: dict[str, Any]
    input: list[Any]
    set_name: str
    runspace: Runspace

    def has(self, name: str) -> bool:
        return any(k.lower() == name.lower() for k in self.params)

    def get(self, name: str, default: Any = None) -> Any:
        for k, v in self.params.items():
            if k.lower() == name.lower():
                return v
        return default

    def error(self, error: PSError) -> None:
        """A non-terminating error (WriteError): raised when the error action is Stop, else
        recorded (or ignored for SilentlyContinue) and the cmdlet goes on."""
        self.runspace.write_error(error, self.params.get("ErrorAction"))


Cmdlet = Callable[[Call], "Iterable[Any] | None"]


@dataclass
class Command:
    """A command of the session: `module` as in the facts ("Hyper-V",
    "Microsoft.PowerShell.Management", ...)."""

    name: str
    module: str
    run: Cmdlet


@dataclass
class Outcome:
    """What running a script gave: its output objects, the terminating error that ended it (or
    None), and what powershell.exe would print for the output."""

    output: list[Any]
    error: ErrorRecord | None
    stdout: str
    errors: list[ErrorRecord] = field(default_factory=list)  # non-terminating ($Error)


class Provider(Protocol):
    """The lab host's file system and registry, as the FileSystem and Registry providers show
    them. Paths are Windows paths, compared without regard to case."""

    def item(self, path: str) -> PSObject | None:
        """A FileInfo/DirectoryInfo-like object: FullName, Name, Extension, Length,
        Attributes (PSEnum, e.g. "Archive, ReparsePoint"), LinkType, Target, PSIsContainer;
        None when nothing is there."""

    def children(self, path: str) -> list[PSObject]:
        """The items directly in a folder (hidden ones included: Get-ChildItem -Force)."""

    def registry(self, path: str) -> Mapping[str, Any] | None:
        """The values of a registry key (`HKLM:\\SOFTWARE\\...`), or None."""

    def drive(self, name: str) -> PSObject | None:
        """A PSDrive: Name, Provider, Root, Free, Used."""

"""The JEA endpoint of a host, generated from the policy, and the client that calls it.

Filtering in the console can be bypassed by anyone holding the same credentials and a PowerShell
prompt, so each host enforces the policy too, through a JEA endpoint generated here:

- `HvConsole.psrc`: one function per host operation. Each refuses to run under PowerShell 6 or
  later, holds the host's grants as a literal (`$hvcData=@{...}`: principal SID, effect, VM
  privileges, scope resolved to "host", VM ids or VM names, expiry; the ISO library folders; the
  host's name), identifies the caller from `$PSSenderInfo.UserInfo.WindowsIdentity` (the caller's
  own token: user and group SIDs, nested groups included), decides on those SIDs, runs the
  operation with the very text of resources/powershell/ (console.scripts.body, commands
  module-qualified), and writes an event; an event the log refuses is reported beside the answer
  (`log_error`), never instead of it. A JEA session loads no module on its own, so the functions
  read no file: the role capability imports Hyper-V (and any other module they call).
- `HvConsole.pssc`: RestrictedRemoteServer (NoLanguage), a virtual account in Hyper-V
  Administrators, transcripts to an administrators-only folder, and a role definition for every
  principal that holds an allow grant on the host.
- `HvConsole.Grants.psd1`: the same grants data, the policy's digest and the data's digest, for
  people and the registration script to read. The host never reads it.

Generation never depends on the date (expiry is decided on the host at each call, comparing
dates, never culture-formatted text), so the same policy always gives the same bytes. Every
literal is written by PowerShell's quoting rule (all five single-quote characters doubled).

`HostGrants.rights` is the same decision in Python, on the same data: the lab host
(console/lab/psrp.py) reads each function's literal and decides exactly as the function does.
`Get-HvcPolicyDigest` answers the data the functions hold; the console computes its digest
(`data_digest`) and compares it with that of `host_grants(policy, host)` (`lag`).

`JeaClient` calls the endpoint over PSRP (pypsrp, configuration name `HvConsole`): the same
operations, results and errors as console.hosts.HostClient, with typed parameters instead of
script text.
"""
from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import requests
from pypsrp.exceptions import AuthenticationError, WinRMError, WinRMTransportError, WSManFaultError
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from . import scripts
from .config import HostConfig
from .errors import (
    ConsoleError, CredentialsRejected, HostAccessDenied, HostError, HostTimeout, HostUnreachable,
    InvalidParameter,
)
from .hosts import ActionOutcome, CredentialGate, Credentials, answer_data, network_error
from .inventory import REQUIRED_PRIVILEGES, VM, Action, HostFacts
from .policy import VM_PRIVILEGES, Grant, Policy
from .powershell import facts
from .text import one_line

ENDPOINT_NAME = "HvConsole"  # the session configuration's name, fixed
ROLE_CAPABILITY = "HvConsole"
MODULE_FOLDER = r"WindowsPowerShell\Modules\HvConsole"  # under $env:ProgramFiles
GRANTS_FILE = "HvConsole.Grants.psd1"
PSRC_FILE = "HvConsole.psrc"
PSSC_FILE = "HvConsole.pssc"
EVENT_SOURCE = "HvConsole"
TRANSCRIPTS = r"C:\ProgramData\HvConsole\Transcripts"
VIRTUAL_ACCOUNT_GROUPS = ("Hyper-V Administrators",)

# Host operation actions and the privileges they need (console.inventory's table decides).
POWER_PRIVILEGE = {a: next(iter(REQUIRED_PRIVILEGES[Action(a)])) for a in (
    "start", "shutdown", "turnoff", "reset", "save", "pause", "resume", "delete_saved_state")}
CHECKPOINT_PRIVILEGE = {a: next(iter(REQUIRED_PRIVILEGES[Action("checkpoint_" + a)]))
                        for a in ("create", "apply", "delete", "delete_subtree")}
MEDIA_PRIVILEGE = {"mount": next(iter(REQUIRED_PRIVILEGES[Action.MOUNT_ISO])),
                   "eject": next(iter(REQUIRED_PRIVILEGES[Action.EJECT]))}

# Calls are written module-qualified, each command's module from Microsoft's facts
# (console.powershell.facts), so JEA's restricted proxies (Select-Object, ...) and any function of
# the same name never stand in. A script that calls a command the facts do not know cannot be
# generated.
_CMDLET = re.compile(r"(?<![\w\\$.-])([A-Z][A-Za-z]+-[A-Z][A-Za-z]*)(?![\w-])")

# Parameter constraints: every exposed parameter is typed, and strings are validated.
# Anchored with \A and \z: .NET's `$` also matches before a final newline, so a `$`-anchored
# pattern lets "name\n" through.
NAME_PATTERN = r"\A[^\x00-\x1f]{0,100}\z"
ISO_PATTERN = r'\A[A-Za-z]:\\[^/:*?"<>|\x00-\x1f]+\.[Ii][Ss][Oo]\z'


class JeaError(ConsoleError):
    """The endpoint cannot be generated from this policy for this host."""


# --- PowerShell data files: the subset the generator writes ---------------------------------------

# The characters PowerShell's tokenizer takes for quotes (CharTraits.cs IsSingleQuote and
# IsDoubleQuote): a single-quoted string ends at any of the five, so each is doubled to stay text.
SINGLE_QUOTES = "'\u2018\u2019\u201a\u201b"
DOUBLE_QUOTES = '"\u201c\u201d\u201e'
_SINGLE_QUOTE = re.compile(f"[{SINGLE_QUOTES}]")


def quote(value: str) -> str:
    """`value` as a PowerShell single-quoted literal: each of the five quote characters doubled."""
    return "'" + _SINGLE_QUOTE.sub(lambda m: m.group(0) * 2, value) + "'"


def read_quoted(text: str, i: int) -> tuple[str, int]:
    """The single-quoted literal opening at text[i], read by PowerShell's rule (tokenizer.cs
    ScanStringLiteral): a quote character followed by another one stands for the second; any other
    quote character ends the string. Returns (value, the offset after the closing quote)."""
    if i >= len(text) or text[i] not in SINGLE_QUOTES:
        raise DataFileError(f"a quoted string expected at offset {i}")
    out, i = [], i + 1
    while True:
        match = _SINGLE_QUOTE.search(text, i)
        if match is None:
            raise DataFileError("unterminated string")
        end = match.start()
        out.append(text[i:end])
        if end + 1 < len(text) and text[end + 1] in SINGLE_QUOTES:
            out.append(text[end + 1])
            i = end + 2
            continue
        return "".join(out), end + 1


@dataclass(frozen=True)
class ScriptBlock:
    """A `{ ... }` literal of a data file (FunctionDefinitions); `text` is what is inside."""

    text: str


def psd1(value: Any, indent: int = 0) -> str:
    """A PowerShell data file value: hashtables with sorted keys, arrays, strings, booleans."""
    pad, inner = "    " * indent, "    " * (indent + 1)
    if isinstance(value, bool):
        return "$true" if value else "$false"
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, ScriptBlock):
        return "{\r\n" + value.text + "\r\n" + pad + "}"
    if isinstance(value, Mapping):
        if not value:
            return "@{}"
        if len({k.lower() for k in value}) != len(value):
            raise ValueError("keys that differ only in case are one key to PowerShell")
        lines = [f"{inner}{_key(k)} = {psd1(value[k], indent + 1)}" for k in sorted(value)]
        return "@{\r\n" + "\r\n".join(lines) + "\r\n" + pad + "}"
    if isinstance(value, (list, tuple)):
        if not value:
            return "@()"
        if all(isinstance(v, str) for v in value):
            return "@(" + ", ".join(psd1(v) for v in value) + ")"
        return "@(\r\n" + ",\r\n".join(inner + psd1(v, indent + 1) for v in value) + "\r\n" + pad + ")"
    raise TypeError(f"no data file form for {type(value).__name__}")


def _key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) else psd1(name)


class DataFileError(ValueError):
    """Text outside the data file subset (hashtable, array, string, boolean, script block)."""


def parse_psd1(text: str) -> Any:
    """Read what `psd1` writes (comments allowed); DataFileError for anything else."""
    parser = _DataParser(text.lstrip("\ufeff"))
    value = parser.value()
    parser.blank()
    if parser.i != len(parser.text):
        raise DataFileError(f"unexpected text at offset {parser.i}")
    return value


def read_value(text: str, i: int) -> tuple[Any, int]:
    """The data value (as `psd1` writes it) starting at text[i], and the offset after it."""
    parser = _DataParser(text)
    parser.i = i
    value = parser.value()
    return value, parser.i


class _DataParser:
    def __init__(self, text: str) -> None:
        self.text, self.i = text, 0

    def blank(self, newlines: bool = True) -> None:
        text = self.text
        while self.i < len(text):
            ch = text[self.i]
            if ch == "#":
                end = text.find("\n", self.i)
                self.i = len(text) if end < 0 else end
            elif ch in " \t" or (newlines and ch in "\r\n;"):
                self.i += 1
            else:
                return

    def take(self, token: str) -> bool:
        self.blank()
        if self.text.startswith(token, self.i):
            self.i += len(token)
            return True
        return False

    def value(self) -> Any:
        self.blank()
        text = self.text
        if self.take("@{"):
            table: dict[str, Any] = {}
            while not self.take("}"):
                key = self.key()
                if not self.take("="):
                    raise DataFileError(f"'=' expected after {key!r}")
                if key.lower() in (k.lower() for k in table):  # PowerShell's keys ignore case
                    raise DataFileError(f"key {key!r} given twice")
                table[key] = self.value()
            return table
        if self.take("@("):
            items: list[Any] = []
            while not self.take(")"):
                items.append(self.value())
                self.take(",")
            return items
        if self.i < len(text) and text[self.i] in SINGLE_QUOTES:
            return self.string()
        if self.take("$true"):
            return True
        if self.take("$false"):
            return False
        if text.startswith("{", self.i):
            end = skip_code(text, self.i + 1, "}")
            block = text[self.i + 1:end - 1]
            self.i = end
            return ScriptBlock(block.lstrip("\r\n").rstrip(" \t\r\n"))
        raise DataFileError(f"a value expected at offset {self.i}: {text[self.i:self.i + 20]!r}")

    def key(self) -> str:
        self.blank()
        if self.i < len(self.text) and self.text[self.i] in SINGLE_QUOTES:
            return self.string()
        match = re.compile(r"[A-Za-z_][A-Za-z0-9_]*").match(self.text, self.i)
        if not match:
            raise DataFileError(f"a key expected at offset {self.i}")
        self.i = match.end()
        return match.group(0)

    def string(self) -> str:
        value, self.i = read_quoted(self.text, self.i)
        return value


def skip_code(text: str, i: int, closer: str) -> int:
    """The offset after the `closer` that ends PowerShell code starting at `i`: strings, `$(...)`
    inside double quotes, comments and nested brackets are stepped over."""
    pairs = {"{": "}", "(": ")", "[": "]"}
    while i < len(text):
        ch = text[i]
        if ch == closer:
            return i + 1
        if ch in pairs:
            i = skip_code(text, i + 1, pairs[ch])
        elif ch in SINGLE_QUOTES:
            i = read_quoted(text, i)[1]
        elif ch in DOUBLE_QUOTES:
            i += 1
            while i < len(text):
                if text[i] in DOUBLE_QUOTES:  # doubled: one quote of the text; else the end
                    if i + 1 < len(text) and text[i + 1] in DOUBLE_QUOTES:
                        i += 2
                        continue
                    break
                if text[i] == "`":
                    i += 2
                elif text.startswith("$(", i):
                    i = skip_code(text, i + 2, ")")
                else:
                    i += 1
            i += 1
        elif ch == "#" and (i == 0 or text[i - 1] in " \t\r\n;{(") :
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
        elif ch == "`":
            i += 2
        else:
            i += 1
    raise DataFileError(f"'{closer}' missing in a script block")


# --- the grants of one host -------------------------------------------------------------------------

@dataclass(frozen=True)
class HostGrant:
    """A grant as the host reads it: scope resolved to the whole host, VM ids, or VM names."""

    sid: str
    principal: str
    effect: str  # allow | deny
    privileges: tuple[str, ...]  # VM privileges only, sorted
    scope: str  # host | vms | vm_names
    values: tuple[str, ...] = ()
    expires: str = ""  # YYYY-MM-DD, valid through that day; "" never expires

    def active(self, today: date) -> bool:
        """Valid through its expiry day: dates compared, as the generated functions compare a
        `[datetime]` cast of Expires (invariant, Gregorian) with today's date."""
        return not self.expires or today <= date.fromisoformat(self.expires)

    def matches(self, vm_id: str, vm_name: str) -> bool:
        # -contains in PowerShell: case-insensitive, like Hyper-V's names.
        if self.scope == "host":
            return True
        wanted = vm_id.lower() if self.scope == "vms" else vm_name.lower()
        return any(v.lower() == wanted for v in self.values)

    def as_data(self) -> dict[str, Any]:
        return {"Sid": self.sid, "Principal": self.principal, "Effect": self.effect,
                "Privileges": list(self.privileges), "Scope": self.scope,
                "Values": list(self.values), "Expires": self.expires}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> HostGrant:
        return cls(str(data["Sid"]), str(data["Principal"]), str(data["Effect"]),
                   tuple(data["Privileges"]), str(data["Scope"]), tuple(data["Values"]),
                   str(data["Expires"]))


def data_digest(data: Any) -> str:
    """The sha256 of grants data in one canonical form (JSON, sorted keys, no spaces, UTF-8):
    the console computes it of what a host reports it enforces (Get-HvcPolicyDigest answers the
    data its functions hold) and of what the policy gives the host, the same way."""
    text = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class HostGrants:
    """What one host's endpoint enforces: the data every generated function holds as a literal
    (`$hvcData=@{...}` in its caller check), read by nothing else on the host."""

    host: str
    library: tuple[str, ...]
    grants: tuple[HostGrant, ...]
    policy_digest: str = ""  # the policy it was generated from: shown, not enforced

    def rights(self, sids: Iterable[str], vm_id: str, vm_name: str, today: date) -> frozenset[str]:
        """The caller's VM privileges on one VM: matching allows minus matching denies, as the
        generated HvcRights function decides."""
        mine = self.active_for(sids, today)
        allowed = {p for g in mine if g.effect == "allow" and g.matches(vm_id, vm_name)
                   for p in g.privileges}
        denied = {p for g in mine if g.effect == "deny" and g.matches(vm_id, vm_name)
                  for p in g.privileges}
        return frozenset(allowed - denied)

    def active_for(self, sids: Iterable[str], today: date) -> list[HostGrant]:
        held = {s.upper() for s in sids}
        return [g for g in self.grants if g.sid.upper() in held and g.active(today)]

    def may_connect(self, sids: Iterable[str], today: date) -> bool:
        """Any active allow grant: what the host-wide functions (facts, digest) ask for."""
        return any(g.effect == "allow" for g in self.active_for(sids, today))

    def as_data(self) -> dict[str, Any]:
        """The enforced data, exactly as the functions' literal holds it."""
        return {"Host": self.host, "Library": list(self.library),
                "Grants": [g.as_data() for g in self.grants]}

    @property
    def sha256(self) -> str:
        """The digest of what is enforced (data_digest of as_data): what lag() compares."""
        return data_digest(self.as_data())

    @classmethod
    def from_data(cls, data: Mapping[str, Any], policy_digest: str = "") -> HostGrants:
        return cls(str(data["Host"]), tuple(data["Library"]),
                   tuple(HostGrant.from_data(g) for g in data["Grants"]), policy_digest)

    @classmethod
    def parse(cls, text: str) -> HostGrants:
        """The readable copy, HvConsole.Grants.psd1 (the enforced data and the policy's digest)."""
        data = parse_psd1(text)
        return cls.from_data(data, str(data.get("Digest", "")))

    @classmethod
    def embedded(cls, function: str) -> HostGrants:
        """The grants a generated function's text holds (what that function enforces)."""
        return cls.from_data(embedded_data(function))


# The line of each generated function that holds the grants data.
_DATA_LINE = re.compile(r"^\$hvcData=", re.MULTILINE)


def embedded_data(function: str) -> Any:
    """The literal of the `$hvcData=` line of a generated function's text; DataFileError when
    there is none, or more than one."""
    found = list(_DATA_LINE.finditer(function))
    if len(found) != 1:
        raise DataFileError(f"{len(found)} $hvcData lines in a function; one expected")
    return read_value(function, found[0].end())[0]


def host_grants(policy: Policy, host: str) -> HostGrants:
    """The grants that can apply on `host`, scopes resolved with the policy's VM documentation."""
    entry = policy.host(host)
    if entry is None:
        raise JeaError(f"{host} is not in the policy's hosts table; add it there first.")
    cluster = entry.cluster
    out: list[HostGrant] = []
    for grant in policy.grants:  # in file order: the endpoint's data reads like the policy
        resolved = _resolve(policy, grant, entry.name, cluster)
        if resolved is None:
            continue
        privileges = tuple(p for p in VM_PRIVILEGES if p in policy.role_privileges(grant.role))
        if not privileges:
            continue  # a role of global privileges only (policy.read, ...) acts on no VM
        scope, values = resolved
        out.append(HostGrant(grant.principal.sid, grant.principal.name, grant.effect,
                             tuple(sorted(privileges)), scope, values,
                             grant.expires.isoformat() if grant.expires else ""))
    return HostGrants(entry.name, tuple(entry.iso_library), tuple(out), policy.digest)


def _resolve(policy: Policy, grant: Grant, host: str,
             cluster: str | None) -> tuple[str, tuple[str, ...]] | None:
    scope = grant.scope
    if scope.kind == "everything":
        return "host", ()
    if scope.kind == "host":
        return ("host", ()) if scope.value.lower() == host.lower() else None
    if scope.kind == "cluster":
        return ("host", ()) if cluster and scope.value.lower() == cluster.lower() else None
    if scope.kind == "vm":
        if not scope.matches_host(host, cluster):
            return None
        return ("vm_names", (scope.value,)) if scope.by_name else ("vms", (scope.value,))
    # application / tag: the documented VMs that carry it (the host knows no documentation)
    if scope.kind == "application":
        ids = sorted(d.vm_id for d in policy.vms.values() if d.application == scope.value)
    else:
        ids = sorted(d.vm_id for d in policy.vms.values() if scope.value in d.tags)
    return ("vms", tuple(ids)) if ids else None


# --- the generated files ------------------------------------------------------------------------------

@dataclass(frozen=True)
class FunctionSpec:
    name: str
    operation: str  # the operation script it runs, or "" (the digest)
    params: str  # the param() block's inside
    body: str  # PowerShell between the caller check and the shared code


# What each function answers when the endpoint was registered from PowerShell 6 or later: there
# Write-EventLog does not exist and ConvertFrom-Json turns date strings into local DateTimes.
REFUSED_ON_POWERSHELL_6 = (
    '{"ok":false,"error":{"code":"host_error","message":"The HvConsole endpoint runs in '
    'PowerShell 6 or later, where its functions cannot work: register this endpoint from Windows '
    'PowerShell 5.1 (powershell.exe)."}}')

# The caller check every function starts with, and its helpers. ConstrainedLanguage-safe:
# properties of the identity only, hashtables, strings and core types. %DATA% is the host's
# grants as a literal (HostGrants.as_data): a JEA session loads no module on its own, so the
# functions read no file (Import-PowerShellDataFile is a script function of Windows PowerShell
# 5.1's Utility module, which such a session cannot reach). Expiry compares dates, never text:
# a session takes its culture from the client (a date formatted under ar-SA is in year 1448),
# while a [datetime] cast is culture-invariant and a DateTime's date is Gregorian.
# The PowerShell here is the generated text, one statement a line as written to the host: its long
# lines carry `noqa: E501` at each string's end (the golden files in tests/golden/jea pin them).
_CALLER_CHECK = r"""$ErrorActionPreference='Stop'
if($PSVersionTable.PSVersion.Major -ge 6){'%REFUSED6%';return}
$hvcData=%DATA%
$hvcWho=$PSSenderInfo.UserInfo.WindowsIdentity
$hvcSids=@("$($hvcWho.User.Value)")+@(foreach($x in $hvcWho.Groups){"$($x.Value)"})
$hvcToday=(Microsoft.PowerShell.Utility\Get-Date).Date
$hvcMine=@(foreach($x in $hvcData.Grants){if($hvcSids -contains $x.Sid -and !($x.Expires -and [datetime]$x.Expires -lt $hvcToday)){$x}})
function HvcRights($id,$name){$al=@{};$de=@{}
foreach($x in $hvcMine){if($x.Scope -eq 'host' -or ($x.Scope -eq 'vms' -and $x.Values -contains $id) -or ($x.Scope -eq 'vm_names' -and $x.Values -contains $name)){
foreach($q in $x.Privileges){if($x.Effect -eq 'deny'){$de[$q]=1}else{$al[$q]=1}}}}
@($al.Keys|Microsoft.PowerShell.Core\Where-Object{!$de.ContainsKey($_)})}
function HvcVM($id){$v=$null;try{$v=Hyper-V\Get-VM -Id $id}catch{};if($v){"$($v.Name)"}else{''}}
function HvcLog($op,$act,$id,$name,$out){try{$c='ok';$m=''
$r=$out|Microsoft.PowerShell.Utility\ConvertFrom-Json
if(!$r.ok){$c="$($r.error.code)";$m="$($r.error.message)"}
$t="user=$($hvcWho.Name) sid=$($hvcSids[0]) operation=$op action=$act vm=$id name=$name outcome=$c $m"
Microsoft.PowerShell.Management\Write-EventLog -LogName Application -Source %SOURCE% -EventId $(if($c -eq 'ok'){1000}elseif($c -eq 'denied'){1001}else{1002}) -EntryType $(if($c -eq 'ok'){'Information'}else{'Warning'}) -Message $t
$out}catch{$o="$out".Trim()
if(!$o.EndsWith('}')){$out;return}
$o.Substring(0,$o.Length-1)+',"log_error":'+(Microsoft.PowerShell.Utility\ConvertTo-Json "The event of this call was not written to the Application log: $($_.Exception.Message)" -Compress)+'}'}}
function HvcDeny($op,$act,$id,$name,$why){HvcLog $op $act $id $name (Microsoft.PowerShell.Utility\ConvertTo-Json @{ok=$false;error=@{code='denied';message="$($hvcWho.Name) $why"}} -Compress)}"""  # noqa: E501 (PowerShell as generated)


def caller_check(grants: HostGrants) -> str:
    """The caller check every generated function of this host starts with (LF line ends)."""
    return (_CALLER_CHECK.replace("%REFUSED6%", REFUSED_ON_POWERSHELL_6)
            .replace("%SOURCE%", EVENT_SOURCE)
            .replace("%DATA%", psd1(grants.as_data()).replace("\r\n", "\n")))


def _choices(keys: Iterable[str]) -> str:
    return ",".join(quote(k) for k in keys)


CONTROLLER_TYPES = ("IDE", "SCSI")
# The inventory's filter (shared_code's view): of the VMs O found, those the caller may view.
INVENTORY_VIEW = ("$d.vms=@(foreach($v in @($d.vms)){if((HvcRights \"$($v.id)\" \"$($v.name)\") "
                  "-contains 'vm.view'){$v}});$d")

# %PICK_ACTION% sets $hvcAct to the set's own spelling of $Action: ValidateSet accepts any casing
# and keeps the caller's, and the operation scripts compare case-sensitively. `-eq` compares as
# ValidateSet does (invariant culture, ignoring case); a hashtable would compare in the session's
# (client's) culture.
FUNCTIONS: tuple[FunctionSpec, ...] = (
    # The inventory keeps only the VMs the caller may view, filtered as objects before the frame
    # encodes them once (%SHARED_VIEW%): a decode and encode of the JSON would pass the dates
    # through ConvertFrom-Json, which PowerShell 6+ turns into local DateTimes.
    FunctionSpec("Get-HvcInventory", "inventory", "", r"""if(!@($hvcMine|Microsoft.PowerShell.Core\Where-Object Effect -eq 'allow')){HvcDeny 'inventory' '' '' '' 'holds no grant on this host.';return}
$a=@{}
& {
%SHARED_VIEW%
}"""),  # noqa: E501 (PowerShell as generated)
    FunctionSpec("Get-HvcHostFacts", "host_facts", "", r"""if(!@($hvcMine|Microsoft.PowerShell.Core\Where-Object Effect -eq 'allow')){HvcDeny 'host_facts' '' '' '' 'holds no grant on this host.';return}
$a=@{library=@($hvcData.Library)}
& {
%SHARED%
}"""),  # noqa: E501 (PowerShell as generated)
    FunctionSpec("Get-HvcVMState", "vm_state",
                 "[Parameter(Mandatory=$true)][ValidateCount(1,256)][guid[]]$VMId",
                 r"""if(!@($hvcMine|Microsoft.PowerShell.Core\Where-Object Effect -eq 'allow')){HvcDeny 'vm_state' '' '' '' 'holds no grant on this host.';return}
$a=@{vm_ids=@(foreach($i in $VMId){if((HvcRights "$i" (HvcVM $i)) -contains 'vm.view'){"$i"}})}
& {
%SHARED%
}"""),  # noqa: E501 (PowerShell as generated)
    FunctionSpec("Invoke-HvcPower", "power",
                 "[Parameter(Mandatory=$true)][guid]$VMId,\r\n"
                 "[Parameter(Mandatory=$true)][ValidateSet(%POWER%)][string]$Action",
                 r"""%PICK_ACTION%
$hvcNeed=@{%POWER_MAP%}[$hvcAct]
$hvcName=HvcVM $VMId
if((HvcRights "$VMId" $hvcName) -notcontains $hvcNeed){HvcDeny 'power' $hvcAct "$VMId" $hvcName "may not $hvcAct this VM ($hvcNeed).";return}
$a=@{vm_id="$VMId";action=$hvcAct}
HvcLog 'power' $hvcAct "$VMId" $hvcName (& {
%SHARED%
})"""),  # noqa: E501 (PowerShell as generated)
    FunctionSpec("Invoke-HvcCheckpoint", "checkpoint",
                 "[Parameter(Mandatory=$true)][guid]$VMId,\r\n"
                 "[Parameter(Mandatory=$true)][ValidateSet(%CHECKPOINT%)][string]$Action,\r\n"
                 "[guid]$CheckpointId=[guid]::Empty,\r\n"
                 f"[ValidateLength(0,100)][ValidatePattern('{NAME_PATTERN}')][string]$Name=''",
                 r"""%PICK_ACTION%
$hvcNeed=@{%CHECKPOINT_MAP%}[$hvcAct]
$hvcName=HvcVM $VMId
if((HvcRights "$VMId" $hvcName) -notcontains $hvcNeed){HvcDeny 'checkpoint' $hvcAct "$VMId" $hvcName "may not $hvcAct checkpoints of this VM ($hvcNeed).";return}
$a=@{vm_id="$VMId";action=$hvcAct}
if($CheckpointId -ne [guid]::Empty){$a.checkpoint_id="$CheckpointId"}
if($Name){$a.name=$Name}
HvcLog 'checkpoint' $hvcAct "$VMId" $hvcName (& {
%SHARED%
})"""),  # noqa: E501 (PowerShell as generated)
    FunctionSpec("Invoke-HvcMedia", "media",
                 "[Parameter(Mandatory=$true)][guid]$VMId,\r\n"
                 "[Parameter(Mandatory=$true)][ValidateSet(%MEDIA%)][string]$Action,\r\n"
                 f"[Parameter(Mandatory=$true)][ValidateSet({_choices(CONTROLLER_TYPES)})][string]$ControllerType,\r\n"
                 "[Parameter(Mandatory=$true)][ValidateRange(0,3)][int]$Controller,\r\n"
                 "[Parameter(Mandatory=$true)][ValidateRange(0,63)][int]$Location,\r\n"
                 f"[ValidateLength(0,260)][ValidatePattern('{ISO_PATTERN}')][string]$Path",
                 r"""%PICK_ACTION%
%PICK_CONTROLLER%
$hvcNeed=@{%MEDIA_MAP%}[$hvcAct]
$hvcName=HvcVM $VMId
if((HvcRights "$VMId" $hvcName) -notcontains $hvcNeed){HvcDeny 'media' $hvcAct "$VMId" $hvcName "may not $hvcAct media on this VM ($hvcNeed).";return}
$a=@{vm_id="$VMId";action=$hvcAct;controller_type=$hvcCt;controller=$Controller;location=$Location;library=@($hvcData.Library)}
if($Path){$a.path=$Path}
HvcLog 'media' $hvcAct "$VMId" $hvcName (& {
%SHARED%
})"""),  # noqa: E501 (PowerShell as generated)
    # What the host enforces, as its functions hold it: the console computes the digest of this
    # (no hashing command is reachable in the session: Get-FileHash is a script function of 5.1's
    # Utility module, and ConstrainedLanguage refuses .NET's crypto types).
    FunctionSpec("Get-HvcPolicyDigest", "", "",
                 r"""if(!@($hvcMine|Microsoft.PowerShell.Core\Where-Object Effect -eq 'allow')){HvcDeny 'digest' '' '' '' 'holds no grant on this host.';return}
Microsoft.PowerShell.Utility\ConvertTo-Json @{ok=$true;data=@{enforced=$hvcData}} -Depth 8 -Compress"""),  # noqa: E501 (PowerShell as generated)
)
FUNCTION_NAMES: tuple[str, ...] = tuple(f.name for f in FUNCTIONS)

# The modules every JEA session has (RestrictedRemoteServer imports the engine's snap-ins): the
# compiled cmdlets of these are reachable module-qualified. Any other module a function calls goes
# in the role capability's ModulesToImport (a JEA session autoloads nothing).
SESSION_MODULES = frozenset(facts.host("jea")["engine_snapins"])


def qualify(text: str) -> str:
    """Every Verb-Noun call written Module\\Verb-Noun; JeaError for a command the facts lack."""
    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        known = facts.command(name)
        if known is None:
            raise JeaError(f"The operation scripts call {name}, which the PowerShell facts "
                           f"(resources/powershell/facts) do not know; add it there.")
        return f"{known.module}\\{name}"
    return _CMDLET.sub(one, text)


def shared_code(operation: str, view: str = "") -> str:
    """What the admin endpoint runs for `operation` (console.scripts.body: the prelude's helpers
    and the operation script, which defines its work as function O and ends with the frame Y),
    minus the prelude's decoding of `$p`: here the function builds `$a` from typed parameters.
    With `view`, O's result passes through that filter before Y encodes it: the script's O is
    renamed HvcWork, and O returns what `view` makes of `$d` (HvcWork's result)."""
    lines = scripts.body(operation).splitlines()
    decode = [line for line in lines if line.startswith("$a=")]
    if len(decode) > 1:
        raise JeaError("The prelude _common.ps1 must decode $p into $a on one line.")
    lines = [line for line in lines if not line.startswith("$a=")]
    if view:
        work = [i for i, line in enumerate(lines) if line.startswith("function O{")]
        others = [line for i, line in enumerate(lines[:-1])
                  if work and i != work[0] and not line.startswith("function Y{")]
        if len(work) != 1 or lines[-1] != "Y" or any(
                re.search(r"(?<![\w$-])O(?![\w-])", line) for line in others):
            raise JeaError(f"{operation}.ps1 must define its work as function O (one line starting "
                           f"'function O{{', called by the frame Y only) and end with Y.")
        lines[work[0]] = "function HvcWork{" + lines[work[0]][len("function O{"):]
        lines[-1:] = ["function O{$d=HvcWork;" + view + "}", "Y"]
    return qualify("\n".join(lines)).replace("\n", "\r\n")


def _map(table: Mapping[str, str]) -> str:
    return ";".join(f"{k}={quote(v)}" for k, v in table.items())


def _pick(variable: str, parameter: str, choices: Iterable[str]) -> str:
    """`$variable` = the choice `-eq` to `$parameter` (the set's spelling), else ''."""
    return (f"${variable}='';foreach($c in {_choices(choices)}){{if($c -eq ${parameter})"
            f"{{${variable}=$c}}}}")


def function_text(spec: FunctionSpec, grants: HostGrants) -> str:
    """The ScriptBlock of one exposed function of this host."""
    body = spec.body.replace("%SHARED%", shared_code(spec.operation) if spec.operation else "")
    if "%SHARED_VIEW%" in body:
        body = body.replace("%SHARED_VIEW%", shared_code(spec.operation, INVENTORY_VIEW))
    params = spec.params
    for name, table in (("POWER", POWER_PRIVILEGE), ("CHECKPOINT", CHECKPOINT_PRIVILEGE),
                        ("MEDIA", MEDIA_PRIVILEGE)):
        params = params.replace(f"%{name}%", _choices(table))
        body = body.replace(f"%{name}_MAP%", _map(table))
    tables = {"power": POWER_PRIVILEGE, "checkpoint": CHECKPOINT_PRIVILEGE,
              "media": MEDIA_PRIVILEGE}
    if spec.operation in tables:
        body = body.replace("%PICK_ACTION%", _pick("hvcAct", "Action", tables[spec.operation]))
    body = body.replace("%PICK_CONTROLLER%", _pick("hvcCt", "ControllerType", CONTROLLER_TYPES))
    text = ("[CmdletBinding()]\r\nparam(" + (params and "\r\n" + params + "\r\n") + ")\r\n"
            + caller_check(grants) + "\r\n" + body)
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


def modules_to_import(texts: Iterable[str]) -> list[str]:
    """The modules the functions call into beyond those every JEA session has (Hyper-V)."""
    called = {m.group(1) for text in texts
              for m in re.finditer(r"(?<![\w.-])([A-Za-z][\w.-]*)\\([A-Z][A-Za-z]+-[A-Z]\w*)", text)
              if facts.command(f"{m.group(1)}\\{m.group(2)}") is not None}
    return sorted(called - SESSION_MODULES, key=str.lower)


def role_capability(grants: HostGrants) -> dict[str, Any]:
    texts = {f.name: function_text(f, grants) for f in FUNCTIONS}
    return {
        "Author": "Hyper-V Delegation Console",
        "Description": f"HvConsole operations on {grants.host}, policy sha256 {grants.policy_digest}",
        "ModulesToImport": modules_to_import(texts.values()),
        "VisibleCmdlets": [],
        "VisibleFunctions": list(FUNCTION_NAMES),
        "VisibleExternalCommands": [],
        "VisibleProviders": [],
        "FunctionDefinitions": [{"Name": name, "ScriptBlock": ScriptBlock(text)}
                                for name, text in texts.items()],
    }


def session_configuration(grants: HostGrants) -> dict[str, Any]:
    # JEA role definitions take names; the functions decide on SIDs. A principal with only deny
    # grants on this host needs no session at all. Names are one key whatever their case (a
    # hashtable literal refuses keys that differ in case only).
    principals: dict[str, str] = {}
    for grant in grants.grants:
        if grant.effect == "allow":
            principals.setdefault(grant.principal.lower(), grant.principal)
    return {
        "SchemaVersion": "2.0.0.0",
        "Author": "Hyper-V Delegation Console",
        "Description": f"HvConsole JEA endpoint of {grants.host}, policy sha256 {grants.policy_digest}",
        "SessionType": "RestrictedRemoteServer",
        "LanguageMode": "NoLanguage",
        "RunAsVirtualAccount": True,
        "RunAsVirtualAccountGroups": list(VIRTUAL_ACCOUNT_GROUPS),
        "TranscriptDirectory": TRANSCRIPTS,
        "RoleDefinitions": {p: {"RoleCapabilities": [ROLE_CAPABILITY]} for p in principals.values()},
    }


_HEADER = ("# Generated by hvconsole jea generate from the delegation policy; do not edit: change "
           "the policy,\r\n# generate again and register (installer/jea/Register-HvConsoleEndpoint.ps1).\r\n")
_GRANTS_HEADER = (
    "# For reading only: what this host's endpoint enforces. Each function in HvConsole.psrc holds\r\n"
    "# this data itself and the host never reads this file, so editing it changes nothing.\r\n"
    "# Digest is the sha256 of the policy; GrantsSha256 that of the enforced data, as the console\r\n"
    "# computes it from Get-HvcPolicyDigest's answer.\r\n")


def readable_grants(grants: HostGrants) -> dict[str, Any]:
    """HvConsole.Grants.psd1: the enforced data, the policy's digest and the data's digest."""
    return {**grants.as_data(), "Digest": grants.policy_digest, "GrantsSha256": grants.sha256}


def generate(policy: Policy, host: str) -> dict[str, bytes]:
    """The endpoint's files for one host: name -> bytes (UTF-8 with BOM: Windows PowerShell 5.1
    reads a file without one as ANSI). The same policy always gives the same bytes."""
    grants = host_grants(policy, host)
    texts = {
        GRANTS_FILE: _GRANTS_HEADER + psd1(readable_grants(grants)),
        PSRC_FILE: psd1(role_capability(grants)),
        PSSC_FILE: psd1(session_configuration(grants)),
    }
    return {name: ("\ufeff" + _HEADER + text + "\r\n").encode("utf-8") for name, text in texts.items()}


def write(policy: Policy, host: str, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in generate(policy, host).items():
        path = folder / name
        path.write_bytes(data)
        written.append(path)
    return written


# --- the client ------------------------------------------------------------------------------------

class JeaClient:
    """One host's JEA endpoint over PSRP: HostClient's operations, results and errors.

    Reads share one runspace pool (reopened once when broken); each action opens its own, so a
    long guest shutdown never holds up a refresh, and an action is never retried.
    """

    def __init__(self, config: HostConfig, credentials: Credentials | None = None,
                 gate: CredentialGate | None = None,
                 configuration_name: str = ENDPOINT_NAME) -> None:
        self.config = config
        self.name = config.name
        self.gate = gate or CredentialGate(credentials)
        if self.gate.credentials is None and credentials is not None:
            self.gate.reopen(credentials)
        self.configuration_name = configuration_name
        self._lock = threading.Lock()
        self._pool: RunspacePool | None = None
        self._generation = self.gate.generation

    # --- operations (console.hosts.HostClient's) ---

    def inventory(self) -> list[VM]:
        data = self._read("Get-HvcInventory", {})
        cluster = self.config.cluster or None
        return [VM.from_json(self.name, d, cluster) for d in _list(data, "vms", self.name)]

    def host_facts(self, library: Iterable[str] = ()) -> HostFacts:
        """The host's approved library folders decide (a caller's list is not trusted)."""
        return HostFacts.from_json(self._read("Get-HvcHostFacts", {}))

    def vm_state(self, ids: Iterable[str]) -> dict[str, tuple[str, str]]:
        wanted = [i.lower() for i in ids]
        if not wanted:
            return {}
        data = self._read("Get-HvcVMState", {"VMId": wanted})
        return {str(v["id"]).lower(): (str(v.get("state") or "Other"), str(v.get("status") or ""))
                for v in _list(data, "vms", self.name)}

    def power(self, vm_id: str, action: str) -> ActionOutcome:
        return self._act("Invoke-HvcPower", {"VMId": vm_id.lower(), "Action": action}, vm_id,
                         "power", action)

    def checkpoint(self, vm_id: str, action: str, checkpoint_id: str | None = None,
                   name: str | None = None) -> ActionOutcome:
        params: dict[str, Any] = {"VMId": vm_id.lower(), "Action": action}
        if checkpoint_id is not None:
            params["CheckpointId"] = checkpoint_id.lower()
        if name:
            params["Name"] = name
        return self._act("Invoke-HvcCheckpoint", params, vm_id, "checkpoint", action)

    def media(self, vm_id: str, action: str, controller_type: str, controller: int, location: int,
              path: str | None = None, library: Iterable[str] = ()) -> ActionOutcome:
        params: dict[str, Any] = {"VMId": vm_id.lower(), "Action": action,
                                  "ControllerType": controller_type, "Controller": controller,
                                  "Location": location}
        if path is not None:
            params["Path"] = path
        return self._act("Invoke-HvcMedia", params, vm_id, "media", action)

    def enforced(self) -> Any:
        """The grants data the host's functions hold and enforce (HostGrants.as_data's shape)."""
        data = self._read("Get-HvcPolicyDigest", {})
        enforced = data.get("enforced") if isinstance(data, dict) else None
        if not isinstance(enforced, dict):
            raise HostError(f"{self.name} answered something unexpected: no enforced grants.",
                            host=self.name)
        return enforced

    def enforced_digest(self) -> str:
        """The sha256 of what the host enforces (data_digest of its functions' grants data),
        computed here: compare with host_grants(policy, host).sha256, or use lag()."""
        return data_digest(self.enforced())

    def close(self) -> None:
        with self._lock:
            self._drop()

    # --- calls ---

    def _read(self, function: str, params: dict[str, Any]) -> Any:
        self._before_call()
        with self._lock:
            for attempt in (1, 2):
                try:
                    if self._pool is None:
                        self._pool = self._open()
                    return self._document(self._invoke(self._pool, function, params))
                except HostError as error:
                    # A broken connection or pool is worth one reopen; a refusal is not.
                    if type(error) not in (HostUnreachable, HostError) or attempt == 2:
                        raise
                    self._drop()
        raise AssertionError("unreachable")

    def _act(self, function: str, params: dict[str, Any], vm_id: str, operation: str,
             action: str) -> ActionOutcome:
        self._before_call()
        pool = self._open()
        try:
            try:
                output = self._invoke(pool, function, params)
            except (HostTimeout, HostUnreachable) as error:
                return ActionOutcome.pending(self.name, operation, vm_id, self.config.timeout,
                                             str(error))
            document = _parse(output)
            data = answer_data(self.name, document, str(output), vm_id)
        finally:
            _close_quietly(pool)
        # Done is done: an event the host could not write is a warning beside it (log_error).
        log_error = document.get("log_error") if isinstance(document, dict) else None
        return ActionOutcome.done(data, f"{operation} {action} done on {self.name}.",
                                  warning=f"{self.name}: {one_line(str(log_error))}"
                                  if log_error else "")

    def _before_call(self) -> None:
        self.gate.check()
        if self.gate.generation != self._generation:
            with self._lock:
                self._generation = self.gate.generation
                self._drop()

    def _open(self) -> RunspacePool:
        credentials = self.gate.credentials
        if credentials is None:
            raise CredentialsRejected("Sign in before contacting a host.", host=self.name)
        url = urlparse(self.config.url)
        timeout = max(2, int(self.config.timeout + 0.999))
        wsman = WSMan(
            url.hostname or self.name, port=url.port, path=url.path.lstrip("/") or "wsman",
            ssl=url.scheme == "https", username=credentials.username,
            password=credentials.password,
            auth="kerberos" if self.config.transport == "kerberos" else (
                "negotiate" if self.config.transport == "negotiate" else "ntlm"),
            # pypsrp annotates cert_validation as bool, yet hands it to requests' `verify`, which
            # takes a CA bundle's path too (pypsrp's own code keeps a path: wsman.py, "if
            # cert_validation is a bool (no path specified)").
            cert_validation=self.config.ca_file or True,  # type: ignore[arg-type]
            encryption="auto",
            connection_timeout=timeout, read_timeout=timeout + 2,
            operation_timeout=max(1, min(20, timeout - 1)), no_proxy=True)
        pool = RunspacePool(wsman, configuration_name=self.configuration_name)
        self._guard(pool.open)
        return pool

    def _invoke(self, pool: RunspacePool, function: str, params: dict[str, Any]) -> list[Any]:
        ps = PowerShell(pool)
        ps.add_cmdlet(function)
        for key, value in params.items():
            ps.add_parameter(key, value)
        deadline = time.monotonic() + self.config.timeout
        self._guard(ps.begin_invoke)
        while ps.state == 1:  # PSInvocationState.RUNNING
            if time.monotonic() >= deadline:
                raise HostTimeout(f"{self.name} did not finish within {self.config.timeout:g} s.",
                                  host=self.name)
            self._guard(lambda: ps.poll_invoke(timeout=max(1, min(20, int(deadline - time.monotonic())))))
        self._guard(ps.close)
        if ps.had_errors or ps.streams.error:
            raise _refusal(self.name, ps.streams.error)
        return list(ps.output)

    def _guard(self, request: Any) -> Any:
        """One request; failures become console.errors' types, the network's mapped as the
        default endpoint's client maps them (console.hosts.network_error). An answer means the
        host took the credentials: the pool then asks every other host at once."""
        name = self.name
        try:
            result = request()
        except AuthenticationError:
            self.gate.close(name)
            raise CredentialsRejected(
                f"{name} rejected the user name or password (the account may also be locked "
                f"out or disabled); enter the password again. Other hosts are not contacted "
                f"until then, so the account is not locked out.", host=name) from None
        except WSManFaultError as fault:
            # pypsrp's fault has code, machine, reason, provider...: no subcode. 5 is
            # ERROR_ACCESS_DENIED, 0x80070005 its HRESULT.
            if fault.code in (5, 0x80070005):
                raise HostAccessDenied(
                    f"{name} refuses this account a session on its JEA endpoint "
                    f"{self.configuration_name}: {one_line(str(fault.reason or fault))}",
                    host=name) from None
            raise HostError(f"{name} reported a fault: {one_line(str(fault.reason or fault))}",
                            host=name) from None
        except WinRMTransportError as error:
            raise HostError(f"{name} answered HTTP {error.code}.", host=name) from None
        except (requests.exceptions.RequestException, TimeoutError, ConnectionError) as error:
            mapped = network_error(name, self.config, error)
            if mapped is None:
                raise HostError(f"{name} answered something unexpected "
                                f"({type(error).__name__}).", host=name) from None
            raise mapped from None
        except WinRMError as error:
            raise HostError(f"{name} answered something unexpected ({type(error).__name__}).",
                            host=name) from None
        self.gate.accepted()
        return result

    def _document(self, output: list[Any], vm_id: str | None = None) -> Any:
        return answer_data(self.name, _parse(output), str(output), vm_id)

    def _drop(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            _close_quietly(pool)


def _parse(output: list[Any]) -> Any:
    """The one JSON document a function answers, or None."""
    texts = [o for o in output if isinstance(o, str)]
    try:
        return json.loads(texts[-1]) if len(texts) == 1 else None
    except ValueError:
        return None


def _close_quietly(pool: RunspacePool) -> None:
    try:
        pool.close()
    except Exception:  # noqa: BLE001 - best effort: the host reaps abandoned pools
        pass
    finally:
        try:
            pool.connection.close()
        except Exception:  # noqa: BLE001
            pass


def _refusal(host: str, errors: list[Any]) -> HostError:
    """An error record of the endpoint itself (not the operation's JSON): a command JEA does not
    expose, a parameter outside its constraints."""
    record = errors[0] if errors else None
    fqid = str(getattr(record, "fq_error", "") or "")
    message = one_line(str(getattr(record, "message", "") or record or "an error without text"))
    if "ParameterArgumentValidationError" in fqid or "ParameterBinding" in fqid:
        return InvalidParameter(f"{host} refused a parameter: {message}", host=host)
    if "CommandNotFound" in fqid or "ScriptsNotAllowed" in fqid:
        return HostAccessDenied(f"{host}'s JEA endpoint does not offer this: {message}", host=host)
    return HostError(f"{host} reported an error: {message}", host=host)


def _list(data: Any, key: str, host: str) -> list[dict[str, Any]]:
    items = data.get(key) if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise HostError(f"{host} answered something unexpected: no {key} list.", host=host)
    return [i for i in items if isinstance(i, dict)]


@dataclass(frozen=True)
class Lag:
    """A host that enforces other grants than the policy gives it."""

    host: str
    enforced: str  # data_digest of what the host's functions hold
    current: str  # data_digest of host_grants(policy, host); "" when the policy has no such host

    def __str__(self) -> str:
        if not self.current:
            return (f"{self.host} enforces grants (sha256 {self.enforced[:12]}) but the policy "
                    f"has no such host: unregister its JEA endpoint, or add the host to the "
                    f"policy and register its files again.")
        return (f"{self.host} enforces an older policy (its grants sha256 {self.enforced[:12]}, "
                f"the policy gives it {self.current[:12]}): generate its JEA files and register "
                f"them again; until then a revoked grant still works there.")


def lag(host: str, enforced: str, policy: Policy) -> Lag | None:
    """None when `enforced` (JeaClient.enforced_digest: the digest of what the host's functions
    hold) is the digest of what the policy gives the host; else the Lag to show."""
    try:
        current = host_grants(policy, host).sha256
    except JeaError:
        current = ""
    return None if enforced == current else Lag(host, enforced, current)

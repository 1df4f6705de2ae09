"""The JEA endpoint of a host, generated from the policy, and the client that calls it.

Filtering in the console can be bypassed by anyone holding the same credentials and a PowerShell
prompt, so each host enforces the policy too, through a JEA endpoint generated here:

- `HvConsole.psrc`: one function per host operation. Each refuses to run under PowerShell 6 or
  later, holds the host's grants as a literal (`$hvcData=@{...}`: principal SID, effect, VM
  privileges, scope resolved to "host", VM ids or VM names, expiry; the ISO library folders; the
  host's name), identifies the caller from `$PSSenderInfo.UserInfo.WindowsIdentity` (the caller's
  own token: user and group SIDs, nested groups included), decides on those SIDs, runs the
  operation with the very text of resources/powershell/ (console.scripts.shared_body, commands
  module-qualified), and writes an event (Application log, source HvConsole, one event id per
  outcome: console.audit.HOST_EVENT_IDS) whose JSON message holds the caller's SID from that token,
  the operation, the VM, the outcome and the console record the call carried (AuditRecord,
  AuditSha256, AuditSeq, Workstation: each held to its pattern); an event the log refuses is
  reported beside the answer (`log_error`), never instead of it. `Get-HvcAuditEvents` reads those
  events back for holders of audit.read (the data's `Audit` grants: scope everything, as the
  policy gives that privilege). A JEA session loads no module on its own, so the functions
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
(lab/psrp.py) reads each function's literal and decides exactly as the function does.
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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any


from . import audit, scripts
from .errors import (
    ConsoleError,
)
from .details import THUMBNAIL_LIMITS
from .inventory import REQUIRED_PRIVILEGES, Action
from .policy import VM_PRIVILEGES, Grant, Policy
from .powershell import facts

ENDPOINT_NAME = "HvConsole"  # the session configuration's name, fixed
ROLE_CAPABILITY = "HvConsole"
MODULE_FOLDER = r"WindowsPowerShell\Modules\HvConsole"  # under $env:ProgramFiles
GRANTS_FILE = "HvConsole.Grants.psd1"
PSRC_FILE = "HvConsole.psrc"
PSSC_FILE = "HvConsole.pssc"
EVENT_SOURCE = audit.HOST_EVENT_SOURCE
TRANSCRIPTS = r"C:\ProgramData\HvConsole\Transcripts"
VIRTUAL_ACCOUNT_GROUPS = ("Hyper-V Administrators",)

# Host operation actions and the privileges they need (console.inventory's table decides).
POWER_PRIVILEGE = {a: next(iter(REQUIRED_PRIVILEGES[Action(a)])) for a in (
    "start", "shutdown", "turnoff", "reset", "save", "pause", "resume", "delete_saved_state")}
CHECKPOINT_PRIVILEGE = {a: next(iter(REQUIRED_PRIVILEGES[Action("checkpoint_" + a)]))
                        for a in ("create", "apply", "delete", "delete_subtree", "rename")}
MEDIA_PRIVILEGE = {"mount": next(iter(REQUIRED_PRIVILEGES[Action.MOUNT_ISO])),
                   "eject": next(iter(REQUIRED_PRIVILEGES[Action.EJECT]))}
CONSOLE_PRIVILEGE = next(iter(REQUIRED_PRIVILEGES[Action.CONNECT]))  # vm.console

# Calls are written module-qualified, each command's module from Microsoft's facts
# (console.powershell.facts), so JEA's restricted proxies (Select-Object, ...) and any function of
# the same name never stand in. A script that calls a command the facts do not know cannot be
# generated.
_CMDLET = re.compile(r"(?<![\w\\$.-])([A-Z][A-Za-z]+-[A-Z][A-Za-z]*)(?![\w-])")

# Parameter constraints: every exposed parameter is typed, and strings are validated.
# Anchored with \A and \z: .NET's `$` also matches before a final newline, so a `$`-anchored
# pattern lets "name\n" through.
NAME_PATTERN = r"\A[^\x00-\x1f]{0,100}\z"
SINCE_PATTERN = r"\A([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z)?\z"
MAX_EVENTS = audit.HOST_EVENTS_MAX  # what one read of a host's audit events may ask for
DEFAULT_EVENTS = audit.HOST_EVENTS_DEFAULT
# The console record an action carries (console.audit.RecordRef): optional, so a call without one
# (a person at a prompt) is still done and written, with empty record fields.
AUDIT_PARAMS = (
    "[guid]$AuditRecord=[guid]::Empty,\r\n"
    f"[ValidateLength(64,64)][ValidatePattern('{audit.SHA256_PATTERN}')][string]$AuditSha256='',\r\n"
    f"[ValidateRange(1,{audit.SEQ_MAX})][int]$AuditSeq=0,\r\n"
    f"[ValidateLength(0,255)][ValidatePattern('{audit.WORKSTATION_PATTERN}')][string]$Workstation=''")
# What the event of an action holds of its record (the caller check's default is empty).
AUDIT_REF = (r"$hvcRef=@{record=$(if($AuditRecord -ne [guid]::Empty){" + '"$AuditRecord"'
             + r"}else{''});sha256=$AuditSha256;seq=$AuditSeq;workstation=$Workstation}")
ISO_PATTERN = r'\A[A-Za-z]:\\[^/:*?"<>|\x00-\x1f]+\.[Ii][Ss][Oo]\z'


class JeaError(ConsoleError):
    """The endpoint cannot be generated from this policy for this host."""


# --- PowerShell data files: the subset the generator writes ---------------------------------------

# The characters PowerShell's tokenizer takes for quotes (CharTraits.cs IsSingleQuote and
# IsDoubleQuote): a single-quoted string ends at any of the five, so each is doubled to stay text.
SINGLE_QUOTES = "'\u2018\u2019\u201a\u201b"
DOUBLE_QUOTES = '"\u201c\u201d\u201e'
SINGLE_QUOTE_PATTERN = re.compile(f"[{SINGLE_QUOTES}]")


def quote(value: str) -> str:
    """`value` as a PowerShell single-quoted literal: each of the five quote characters doubled."""
    return "'" + SINGLE_QUOTE_PATTERN.sub(lambda m: m.group(0) * 2, value) + "'"


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
    # Who may read the audit events (audit.read, a global privilege: grants of scope everything
    # only, allow and deny, privileges ("audit.read",)): what Get-HvcAuditEvents decides on.
    audit: tuple[HostGrant, ...] = ()
    # Who may read the hosts' hardening (policy.read, a global privilege: grants of scope
    # everything only, allow and deny, privileges ("policy.read",)): Get-HvcHostHardening.
    review: tuple[HostGrant, ...] = ()

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
        """Any active allow grant: what the digest and the inventory ask for (the inventory then
        shows only the VMs the caller may view)."""
        return any(g.effect == "allow" for g in self.active_for(sids, today))

    def may_read_facts(self, sids: Iterable[str], vms: Iterable[tuple[str, str]],
                       today: date) -> bool:
        """A grant on this host, or on one of its VMs (`vms`: id and name of each VM the host
        holds): what Get-HvcHostFacts asks for. An allow grant is not enough by itself: an
        application, tag or VM grant is written into every host's data, also of hosts that hold
        none of those VMs, and a host's build, updates and storage are not theirs to read."""
        mine = self.active_for(sids, today)
        if any(g.effect == "allow" and g.scope == "host" for g in mine):
            return True
        return any(self.rights(sids, vm_id, name, today) for vm_id, name in vms)

    def may_read_audit(self, sids: Iterable[str], today: date) -> bool:
        """An active allow of audit.read and no active deny of it: what Get-HvcAuditEvents asks,
        as Policy.global_decision decides audit.read."""
        held = {s.upper() for s in sids}
        mine = [g for g in self.audit if g.sid.upper() in held and g.active(today)]
        return any(g.effect == "allow" for g in mine) and not any(g.effect == "deny" for g in mine)

    def may_read_hardening(self, sids: Iterable[str], today: date) -> bool:
        """An active allow of policy.read and no active deny of it: what Get-HvcHostHardening
        asks, as Policy.global_decision decides policy.read."""
        held = {s.upper() for s in sids}
        mine = [g for g in self.review if g.sid.upper() in held and g.active(today)]
        return any(g.effect == "allow" for g in mine) and not any(g.effect == "deny" for g in mine)

    def as_data(self) -> dict[str, Any]:
        """The enforced data, exactly as the functions' literal holds it."""
        return {"Host": self.host, "Library": list(self.library),
                "Grants": [g.as_data() for g in self.grants],
                "Audit": [g.as_data() for g in self.audit],
                "Review": [g.as_data() for g in self.review]}

    @property
    def sha256(self) -> str:
        """The digest of what is enforced (data_digest of as_data): what lag() compares."""
        return data_digest(self.as_data())

    @classmethod
    def from_data(cls, data: Mapping[str, Any], policy_digest: str = "") -> HostGrants:
        return cls(str(data["Host"]), tuple(data["Library"]),
                   tuple(HostGrant.from_data(g) for g in data["Grants"]), policy_digest,
                   tuple(HostGrant.from_data(g) for g in data.get("Audit") or ()),
                   tuple(HostGrant.from_data(g) for g in data.get("Review") or ()))


def host_grants(policy: Policy, host: str) -> HostGrants:
    """The grants that can apply on `host`, scopes resolved with the policy's VM documentation."""
    entry = policy.host(host)
    if entry is None:
        raise JeaError(f"{host} is not in the policy's hosts table; add it there first.")
    cluster = entry.cluster
    out: list[HostGrant] = []
    readers: list[HostGrant] = []
    reviewers: list[HostGrant] = []
    for grant in policy.grants:  # in file order: the endpoint's data reads like the policy
        if grant.scope.kind == "everything" and "audit.read" in policy.role_privileges(grant.role):
            readers.append(HostGrant(grant.principal.sid, grant.principal.name, grant.effect,
                                     ("audit.read",), "host", (),
                                     grant.expires.isoformat() if grant.expires else ""))
        if grant.scope.kind == "everything" and "policy.read" in policy.role_privileges(grant.role):
            reviewers.append(HostGrant(grant.principal.sid, grant.principal.name, grant.effect,
                                       ("policy.read",), "host", (),
                                       grant.expires.isoformat() if grant.expires else ""))
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
    return HostGrants(entry.name, tuple(entry.iso_library), tuple(out), policy.digest,
                      tuple(readers), tuple(reviewers))


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
$hvcRef=@{record='';sha256='';seq=0;workstation=''}
function HvcRights($id,$name){$al=@{};$de=@{}
foreach($x in $hvcMine){if($x.Scope -eq 'host' -or ($x.Scope -eq 'vms' -and $x.Values -contains $id) -or ($x.Scope -eq 'vm_names' -and $x.Values -contains $name)){
foreach($q in $x.Privileges){if($x.Effect -eq 'deny'){$de[$q]=1}else{$al[$q]=1}}}}
@($al.Keys|Microsoft.PowerShell.Core\Where-Object{!$de.ContainsKey($_)})}
function HvcVM($id){$v=$null;try{$v=Hyper-V\Get-VM -Id $id}catch{};if($v){"$($v.Name)"}else{''}}
function HvcLog($op,$act,$id,$name,$out){try{$c='ok';$m=''
$r=$out|Microsoft.PowerShell.Utility\ConvertFrom-Json
if(!$r.ok){$c="$($r.error.code)";$m="$($r.error.message)"}
if($m.Length -gt 2000){$m=$m.Substring(0,2000)}
$x=$(if($c -eq 'ok'){'ok'}elseif($c -eq 'denied'){'denied'}else{'failed'})
$t=Microsoft.PowerShell.Utility\ConvertTo-Json @{v=%EVENT_VERSION%;endpoint='jea';user="$($hvcWho.Name)";sid=$hvcSids[0];operation=$op;action=$act;vm=$id;name=$name;outcome=$x;code=$(if($c -eq 'ok'){''}else{$c});message=$m;record=$hvcRef.record;sha256=$hvcRef.sha256;seq=$hvcRef.seq;workstation=$hvcRef.workstation} -Compress
Microsoft.PowerShell.Management\Write-EventLog -LogName %EVENT_LOG% -Source %SOURCE% -EventId $(if($x -eq 'ok'){%EVENT_OK%}elseif($x -eq 'denied'){%EVENT_DENIED%}else{%EVENT_FAILED%}) -EntryType $(if($x -eq 'ok'){'Information'}else{'Warning'}) -Message $t
$out}catch{$o="$out".Trim()
if(!$o.EndsWith('}')){$out;return}
$o.Substring(0,$o.Length-1)+',"log_error":'+(Microsoft.PowerShell.Utility\ConvertTo-Json "The event of this call was not written to the Application log: $($_.Exception.Message)" -Compress)+'}'}}
function HvcDeny($op,$act,$id,$name,$why){HvcLog $op $act $id $name (Microsoft.PowerShell.Utility\ConvertTo-Json @{ok=$false;error=@{code='denied';message="$($hvcWho.Name) $why"}} -Compress)}"""  # noqa: E501 (PowerShell as generated)


def caller_check(grants: HostGrants) -> str:
    """The caller check every generated function of this host starts with (LF line ends)."""
    return (_CALLER_CHECK.replace("%REFUSED6%", REFUSED_ON_POWERSHELL_6)
            .replace("%SOURCE%", EVENT_SOURCE).replace("%EVENT_LOG%", audit.HOST_EVENT_LOG)
            .replace("%EVENT_OK%", str(audit.HOST_EVENT_IDS["ok"]))
            .replace("%EVENT_DENIED%", str(audit.HOST_EVENT_IDS["denied"]))
            .replace("%EVENT_FAILED%", str(audit.HOST_EVENT_IDS["failed"]))
            .replace("%EVENT_VERSION%", str(audit.HOST_EVENT_VERSION))
            .replace("%DATA%", psd1(grants.as_data()).replace("\r\n", "\n")))


# The caller's console access on VMs where the caller no longer holds vm.console, revoked: the
# entries Get-VMConnectAccess finds by the caller's name or SID (its -UserName matches either),
# each revoked by the name it carries and written as an event (operation console_access, action
# revoke). $hvcGone holds the VMs concerned. One Get-VMConnectAccess per VM the caller may not
# connect to: this runs when the person connects or signs in, not on every refresh.
CONSOLE_SWEEP = (
    "$hvcGone=@(foreach($v in @(Hyper-V\\Get-VM)){if((HvcRights \"$($v.Id)\" \"$($v.Name)\") "
    "-notcontains '%CONSOLE%'){foreach($e in @(Hyper-V\\Get-VMConnectAccess -VMId $v.Id "
    "-UserName \"$($hvcWho.Name)\",$hvcSids[0])){$null=Hyper-V\\Revoke-VMConnectAccess -VMId "
    "$v.Id -UserName \"$($e.UserName)\";$null=HvcLog 'console_access' 'revoke' \"$($v.Id)\" "
    "\"$($v.Name)\" (Microsoft.PowerShell.Utility\\ConvertTo-Json @{ok=$true;data=@{vm_id="
    "\"$($v.Id)\";user=\"$($e.UserName)\";reason='%CONSOLE% is no longer granted'}} -Compress);"
    "@{vm_id=\"$($v.Id)\";name=\"$($v.Name)\";user=\"$($e.UserName)\"}}}})")


def _holders_only(data: str, var: str, operation: str, refusal: str) -> str:
    """The lines that let a function go on only for a holder of a global privilege: the caller's
    unexpired grants of the data's `data` list (Audit: audit.read, Review: policy.read) in
    `var`; none that allows, or one that denies, is a refusal (an event, as HvcDeny writes it)."""
    return (f"{var}=@(foreach($x in @($hvcData.{data})){{if($hvcSids -contains $x.Sid -and "
            f"!($x.Expires -and [datetime]$x.Expires -lt $hvcToday)){{$x}}}})\n"
            f"if(!@({var}|Microsoft.PowerShell.Core\\Where-Object Effect -eq 'allow') -or "
            f"@({var}|Microsoft.PowerShell.Core\\Where-Object Effect -eq 'deny')){{HvcDeny "
            f"'{operation}' '' '' '' '{refusal}';return}}\n")


def _choices(keys: Iterable[str]) -> str:
    return ",".join(quote(k) for k in keys)


CONTROLLER_TYPES = ("IDE", "SCSI")
DOWNTIME_ANSWERS = ("approve", "object")  # console.downtime.ANSWERS
# The downtime plans' filter (shared_code's view): of the plans O found, those touching a VM the
# caller may view, each with only those VMs, and the answers to the plans kept.
PLANS_VIEW = ("$k=@{};$d.plans=@(foreach($x in @($d.plans)){$i=@(foreach($t in @($x.plan.items)){"
              "if((HvcRights \"$($t.vm_id)\" \"$($t.vm_name)\") -contains 'vm.view'){$t}});"
              "if($i.Count){$x.plan.items=$i;$k[\"$($x.plan.id)\"]=1;$x}});"
              "$d.answers=@(foreach($x in @($d.answers)){if($k.ContainsKey(\"$($x.plan_id)\")){$x}});$d")
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
    # The host's build, updates, storage and ISO library: only to a caller with a grant on this
    # host or on one of its VMs (HostGrants.may_read_facts), not to any allow grant its data holds.
    FunctionSpec("Get-HvcHostFacts", "host_facts", "", r"""if(!@($hvcMine|Microsoft.PowerShell.Core\Where-Object Effect -eq 'allow')){HvcDeny 'host_facts' '' '' '' 'holds no grant on this host.';return}
if(!@($hvcMine|Microsoft.PowerShell.Core\Where-Object{$_.Effect -eq 'allow' -and $_.Scope -eq 'host'}) -and !@(foreach($v in @(Hyper-V\Get-VM)){if(@(HvcRights "$($v.Id)" "$($v.Name)")){$v}})){HvcDeny 'host_facts' '' '' '' 'holds no grant on this host or on any of its VMs.';return}
$a=@{library=@($hvcData.Library)}
& {
%SHARED%
}"""),  # noqa: E501 (PowerShell as generated)
    # The host's hardening (host_hardening.ps1): who administers it, what it runs, RDP and its
    # endpoints: only to a holder of policy.read (the data's Review grants), as the policy gives it.
    FunctionSpec("Get-HvcHostHardening", "host_hardening", "",
                 _holders_only("Review", "$hvcRv", "host_hardening",
                               "may not read the hardening of this host: no grant gives "
                               "policy.read.") + r"""$a=@{}
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
    # One VM as Hyper-V Manager shows it (details.ps1), read when its details are opened, and a
    # thumbnail of its screen (thumbnail.ps1: CIM, run by the function, so the caller needs no
    # WMI access of their own): only for a caller who may view that VM. A refusal is an event.
    FunctionSpec("Get-HvcVMDetails", "details", "[Parameter(Mandatory=$true)][guid]$VMId",
                 r"""$hvcName=HvcVM $VMId
if((HvcRights "$VMId" $hvcName) -notcontains 'vm.view'){HvcDeny 'details' '' "$VMId" $hvcName 'may not view this VM (vm.view).';return}
$a=@{vm_id="$VMId"}
& {
%SHARED%
}"""),  # noqa: E501 (PowerShell as generated)
    FunctionSpec("Get-HvcVMThumbnail", "thumbnail",
                 "[Parameter(Mandatory=$true)][guid]$VMId,\r\n"
                 f"[ValidateRange({THUMBNAIL_LIMITS[0]},{THUMBNAIL_LIMITS[1]})][int]$Width=160,\r\n"
                 f"[ValidateRange({THUMBNAIL_LIMITS[2]},{THUMBNAIL_LIMITS[3]})][int]$Height=120",
                 r"""$hvcName=HvcVM $VMId
if((HvcRights "$VMId" $hvcName) -notcontains 'vm.view'){HvcDeny 'thumbnail' '' "$VMId" $hvcName 'may not view this VM (vm.view).';return}
$a=@{vm_id="$VMId";width=$Width;height=$Height}
& {
%SHARED%
}"""),  # noqa: E501 (PowerShell as generated)
    FunctionSpec("Invoke-HvcPower", "power",
                 "[Parameter(Mandatory=$true)][guid]$VMId,\r\n"
                 "[Parameter(Mandatory=$true)][ValidateSet(%POWER%)][string]$Action,\r\n"
                 + AUDIT_PARAMS,
                 r"""%AUDIT_REF%
%PICK_ACTION%
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
                 f"[ValidateLength(0,100)][ValidatePattern('{NAME_PATTERN}')][string]$Name='',\r\n"
                 + AUDIT_PARAMS,
                 r"""%AUDIT_REF%
%PICK_ACTION%
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
                 f"[ValidateLength(0,260)][ValidatePattern('{ISO_PATTERN}')][string]$Path,\r\n"
                 + AUDIT_PARAMS,
                 r"""%AUDIT_REF%
%PICK_ACTION%
%PICK_CONTROLLER%
$hvcNeed=@{%MEDIA_MAP%}[$hvcAct]
$hvcName=HvcVM $VMId
if((HvcRights "$VMId" $hvcName) -notcontains $hvcNeed){HvcDeny 'media' $hvcAct "$VMId" $hvcName "may not $hvcAct media on this VM ($hvcNeed).";return}
$a=@{vm_id="$VMId";action=$hvcAct;controller_type=$hvcCt;controller=$Controller;location=$Location;library=@($hvcData.Library)}
if($Path){$a.path=$Path}
HvcLog 'media' $hvcAct "$VMId" $hvcName (& {
%SHARED%
})"""),  # noqa: E501 (PowerShell as generated)
    # The caller's access to one VM's console: first the caller's entries on VMs where the caller
    # no longer holds vm.console are revoked (%CONSOLE_SWEEP%: the grant that allowed them went),
    # then, if the caller holds vm.console on this VM, Grant-VMConnectAccess for the caller from
    # the token (console_access.ps1; no parameter names a user). Each revoke is an event of its
    # own, without the console record (it is not the call's action).
    FunctionSpec("Grant-HvcConsoleAccess", "console_access",
                 "[Parameter(Mandatory=$true)][guid]$VMId,\r\n" + AUDIT_PARAMS,
                 r"""%CONSOLE_SWEEP%
%AUDIT_REF%
$hvcName=HvcVM $VMId
if((HvcRights "$VMId" $hvcName) -notcontains '%CONSOLE%'){HvcDeny 'console_access' 'grant' "$VMId" $hvcName 'may not connect to the console of this VM (%CONSOLE%).';return}
$a=@{vm_id="$VMId";action='grant'}
HvcLog 'console_access' 'grant' "$VMId" $hvcName (& {
%SHARED%
})"""),  # noqa: E501 (PowerShell as generated)
    # The sweep alone, which the console calls once per host when a person signs in: access the
    # caller no longer holds goes even when the caller never connects again. Answers the VMs whose
    # console access was revoked.
    FunctionSpec("Sync-HvcConsoleAccess", "", "",
                 r"""if(!@($hvcMine|Microsoft.PowerShell.Core\Where-Object Effect -eq 'allow')){HvcDeny 'console_access' 'sync' '' '' 'holds no grant on this host.';return}
%CONSOLE_SWEEP%
Microsoft.PowerShell.Utility\ConvertTo-Json @{ok=$true;data=@{revoked=@($hvcGone)}} -Depth 4 -Compress"""),  # noqa: E501 (PowerShell as generated)
    # Who holds access to each VM's console on this host (console_acl.ps1), for the review: to
    # holders of audit.read, as Get-HvcAuditEvents (the data's Audit grants).
    FunctionSpec("Get-HvcConsoleAccess", "console_acl", "",
                 _holders_only("Audit", "$hvcAu", "console_acl",
                               "may not read who holds console access on this host: no grant "
                               "gives audit.read.") + r"""$a=@{}
& {
%SHARED%
}"""),  # noqa: E501 (PowerShell as generated)
    # The console's events in this host's Application log (audit_events.ps1), every user's: only
    # to a holder of audit.read (the data's Audit grants), as the policy gives it. A refusal is
    # itself an event (denied, operation audit_events).
    FunctionSpec("Get-HvcAuditEvents", "audit_events",
                 f"[ValidateLength(0,20)][ValidatePattern('{SINCE_PATTERN}')][string]$Since='',\r\n"
                 f"[ValidateRange(1,{MAX_EVENTS})][int]$MaxEvents={DEFAULT_EVENTS}",
                 _holders_only("Audit", "$hvcAu", "audit_events",
                               "may not read the audit events of this host: no grant gives "
                               "audit.read.") + r"""$a=@{since=$Since;max=$MaxEvents}
& {
%SHARED%
}"""),  # noqa: E501 (PowerShell as generated)
    # Downtime plans published to this host that touch a VM the caller may view, with only those
    # of their VMs, and the answers to them so far (downtime_plans.ps1, %SHARED_PLANS%: filtered
    # as objects before the frame encodes them once). Any allow grant on this host opens it.
    FunctionSpec("Get-HvcDowntimePlans", "downtime_plans", "", r"""if(!@($hvcMine|Microsoft.PowerShell.Core\Where-Object Effect -eq 'allow')){HvcDeny 'downtime_plans' '' '' '' 'holds no grant on this host.';return}
$a=@{}
& {
%SHARED_PLANS%
}"""),  # noqa: E501 (PowerShell as generated)
    # The caller's one-line answer to a plan (downtime_answer.ps1): the person is the token's
    # ($hvcWho), the plan must touch a VM the caller may view (%HOLDS%); a refusal is an event.
    FunctionSpec("Submit-HvcDowntimeAnswer", "downtime_answer",
                 f"[Parameter(Mandatory=$true)][ValidateLength(1,100)][ValidatePattern('{audit.PLAN_ID_PATTERN}')][string]$PlanId,\r\n"
                 f"[Parameter(Mandatory=$true)][ValidateSet({_choices(DOWNTIME_ANSWERS)})][string]$Answer,\r\n"
                 f"[ValidateLength(0,{audit.ANSWER_TEXT_MAX})][ValidatePattern('{audit.ANSWER_TEXT_PATTERN}')][string]$Text=''",
                 r"""%PICK_ANSWER%
if(!@($hvcMine|Microsoft.PowerShell.Core\Where-Object Effect -eq 'allow')){HvcDeny 'downtime_answer' $hvcAn '' '' 'holds no grant on this host.';return}
$a=@{plan_id=$PlanId;answer=$hvcAn;text=$Text}
$hvcOut=& {
%SHARED%
}
if("$hvcOut" -like '*"code":"denied"*'){HvcLog 'downtime_answer' $hvcAn '' '' $hvcOut}else{$hvcOut}"""),  # noqa: E501 (PowerShell as generated)
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
    lines = scripts.shared_body(operation).splitlines()
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
    if "%SHARED_PLANS%" in body:
        body = body.replace("%SHARED_PLANS%", shared_code(spec.operation, PLANS_VIEW))
    body = body.replace("%PICK_ANSWER%", _pick("hvcAn", "Answer", DOWNTIME_ANSWERS))
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
    body = body.replace("%CONSOLE_SWEEP%", CONSOLE_SWEEP).replace("%CONSOLE%", CONSOLE_PRIVILEGE)
    body = body.replace("%AUDIT_REF%", AUDIT_REF)
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
    for grant in (*grants.grants, *grants.audit, *grants.review):
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

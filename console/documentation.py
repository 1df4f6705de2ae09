"""VM documentation kept on the host too, as Hyper-V's security guidance asks where no
documentation system exists: one text file per VM in a folder on the host (C:\\Documentation\\VMs
by default) and a short owner/contact line in each VM's Notes.

The texts are made here from the policy's documentation of the VM and what the host reports; a
file the console wrote carries a digest of its body, so a person's edit on the host is told apart
from an outdated file: both are kept beside the new one (never overwritten silently), and an edit
is shown before anything is written.
"""
from __future__ import annotations

import base64
import difflib
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from .details import VMDetails
from .errors import ConsoleError
from .inventory import VM
from .policy import Policy, VMDoc

DEFAULT_FOLDER = "C:\\Documentation\\VMs"
NOTES_PREFIX = "Owner: "  # the line of the Notes the console writes and reads back
_SIGNATURE = re.compile(r"^-- written by the Hyper-V Delegation Console, (\S+) sha256:([0-9a-f]{64})\r?$",
                        re.MULTILINE)
# Windows file names: no control characters, none of <>:"/\|?*, no trailing dot or space, and
# not a device name (CON, NUL, COM1, ...), whatever the extension.
_BAD_CHARS = re.compile(r'[\x00-\x1f<>:"/\\|?*]')
_DEVICES = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)),
            *(f"lpt{i}" for i in range(1, 10))}


def file_name(vm: VM) -> str:
    """`<name> <id>.txt`: the id keeps two VMs of one name apart, the name is for people."""
    name = _BAD_CHARS.sub("_", vm.name).strip(" .")[:80].rstrip(" .") or "vm"
    if name.split(".")[0].lower() in _DEVICES:
        name = "_" + name
    return f"{name} {vm.id}.txt"


def notes_line(doc: VMDoc | None) -> str:
    """What the VM's Notes say of it: owner, contact, application/tier, classification."""
    if doc is None or not doc.owner:
        return NOTES_PREFIX + "none on record (ask the Hyper-V team)"
    parts = [doc.owner, doc.contact, "/".join(p for p in (doc.application, doc.tier) if p),
             doc.classification]
    return NOTES_PREFIX + " · ".join(p for p in parts if p)


def vm_text(vm: VM, doc: VMDoc | None, written: datetime, details: VMDetails | None = None) -> str:
    """The file's text: what the policy documents, then the VM's configuration as the host reports
    it (what changes by itself — state, usage, addresses — is left out, so a file is only
    rewritten when something documented changed), then the signature line (the body's digest)."""
    def line(label: str, value: object) -> str:
        return f"  {label + ':':<16}{value}"
    gib = 1024 ** 3
    body = [vm.name, "=" * min(len(vm.name), 80), "",
            line("VM id", vm.id),
            line("Host", vm.host + (f" (cluster {vm.cluster})" if vm.cluster else "")),
            "", "Documented in the delegation policy"]
    if doc is None:
        body.append("  (not documented: no owner, contact or classification on record)")
    else:
        body += [line("Owner", doc.owner or "-"), line("Contact", doc.contact or "-"),
                 line("Classification", doc.classification or "-"),
                 line("Application", "/".join(p for p in (doc.application, doc.tier) if p) or "-"),
                 line("Tags", ", ".join(doc.tags) or "-")]
        if doc.notes:
            body.append(line("Notes", doc.notes))
    body += ["", "Configuration reported by the host", line("Generation", vm.generation),
             line("Checkpoints", vm.checkpoint_type), line("Replication", vm.replication_mode)]
    if vm.automatic_stop_action:
        body.append(line("Host stops", vm.automatic_stop_action))
    if vm.automatic_start_action:
        body.append(line("Host starts", vm.automatic_start_action))
    if details is not None:
        m = details.memory
        memory = (f"{m.startup_bytes >> 20} MB startup, dynamic {m.minimum_bytes >> 20}-"
                  f"{m.maximum_bytes >> 20} MB" if m.dynamic else f"{m.startup_bytes >> 20} MB, static")
        body += [line("Version", details.version), line("Processors", details.processors),
                 line("Memory", memory)]
        if details.secure_boot is not None:
            body.append(line("Secure boot", "on" if details.secure_boot else "off"))
        for d in details.disks:
            size = f", {d.size_bytes / gib:.0f} GiB" if d.size_bytes else ""
            body.append(line("Disk", f"{d.path} ({d.type or 'type unknown'}{size}, "
                                     f"{d.controller_type} {d.controller}:{d.location})"))
        for n in details.adapters:
            vlan = f", VLAN {n.vlan_id}" if n.vlan_id else ""
            body.append(line("Network", f"{n.name}: {n.switch or 'not connected'}, MAC {n.mac}{vlan}"))
    text = "\r\n".join(body) + "\r\n"  # Notepad's line ends: the file is read on the host
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return text + (f"\r\n-- written by the Hyper-V Delegation Console, "
                   f"{written:%Y-%m-%dT%H:%M} sha256:{digest}\r\n")


def _body_and_digest(text: str) -> tuple[str, str | None]:
    m = next(reversed(list(_SIGNATURE.finditer(text))), None)  # the last one is the console's
    if m is None:
        return text, None
    body = text[:m.start()]
    return (body[:-2] if body.endswith("\r\n\r\n") else body), m.group(2)


def edited_on_host(text: str) -> bool:
    """A file whose body no longer matches the digest the console signed it with, or that the
    console never signed: someone wrote in it on the host."""
    body, digest = _body_and_digest(text)
    return digest is None or hashlib.sha256(body.encode("utf-8")).hexdigest() != digest


@dataclass(frozen=True)
class Change:
    """One VM's documentation: what is on the host and what would be written."""
    vm: VM
    file: str
    old: str | None  # the file's text on the host, None when there is none
    new: str
    old_notes: str
    new_notes: str
    keep: str | None  # the name the old file is kept under, when there is one that differs

    @property
    def kind(self) -> str:
        if self.old is None:
            return "new"
        if _body_and_digest(self.old)[0] == _body_and_digest(self.new)[0]:
            return "same"
        return "edited on the host" if edited_on_host(self.old) else "outdated"

    @property
    def notes_changed(self) -> bool:
        return self.old_notes != self.new_notes

    def diff(self) -> str:
        """The file's change as a unified diff (the signature lines left out)."""
        old = _body_and_digest(self.old or "")[0].splitlines()
        new = _body_and_digest(self.new)[0].splitlines()
        return "\n".join(difflib.unified_diff(old, new, f"{self.file} (on the host)",
                                              f"{self.file} (new)", lineterm=""))


def merged_notes(current: str, line: str) -> str:
    """The VM's Notes with the console's owner line replaced (or put first): whatever else a person
    wrote in the Notes stays."""
    kept = [n for n in current.splitlines() if not n.startswith(NOTES_PREFIX)]
    return "\n".join([line, *kept]).strip("\n")


def plan_changes(policy: Policy, vms: Iterable[VM], existing: Mapping[str, str | None],
                 written: datetime, details: Mapping[str, VMDetails] | None = None) -> list[Change]:
    """Each VM's change; `existing` holds the text of each file found on the host by VM id,
    `details` what the host reported of each VM's configuration (by id) where it was read."""
    changes = []
    stamp = f"{written:%Y%m%d-%H%M%S}"
    for vm in sorted(vms, key=lambda v: (v.name.lower(), v.id)):
        doc = policy.doc(vm.id)
        name = file_name(vm)
        old = existing.get(vm.id)
        new = vm_text(vm, doc, written, (details or {}).get(vm.id))
        keep = f"{name[:-4]}.{stamp}.txt" if old is not None else None
        change = Change(vm, name, old, new, vm.notes, merged_notes(vm.notes, notes_line(doc)), keep)
        changes.append(change if change.kind != "same" else
                       Change(vm, name, old, new, vm.notes, change.new_notes, None))
    return changes


class DocumentingClient(Protocol):
    """What writing the documentation needs of a host: the admin endpoint's operations."""
    def inventory(self) -> list[VM]: ...
    def details(self, vm_id: str) -> VMDetails: ...
    def read_documentation(self, folder: str, files: dict[str, str]) -> dict[str, str | None]: ...


def read_changes(client: DocumentingClient, policy: Policy, folder: str,
                 written: datetime) -> list[Change]:
    """Every VM of the host with what is on the host and what would be written: its inventory,
    each VM's configuration (one details call a VM: this runs on demand, not with a refresh) and
    the files already in `folder`."""
    vms = client.inventory()
    details: dict[str, VMDetails] = {}
    for vm in vms:
        try:
            details[vm.id] = client.details(vm.id)
        except ConsoleError:
            pass  # documented without its configuration, as the file then says
    existing = client.read_documentation(folder, {vm.id: file_name(vm) for vm in vms})
    return plan_changes(policy, vms, existing, written, details)


def to_write(changes: Iterable[Change]) -> list[Change]:
    """The changes that write something: a file that differs, or Notes that do."""
    return [c for c in changes if c.kind != "same" or c.notes_changed]


def decode(data: str | None) -> str | None:
    """A file's base64 bytes as the host answered them, as text (UTF-8 with or without a BOM; a
    file a person saved in another encoding is shown with replacement characters, never lost:
    it is kept as it is on the host)."""
    if data is None:
        return None
    return base64.b64decode(data).decode("utf-8-sig", errors="replace")


BATCH_BYTES = 8000  # of file data a call: a few files, far below a command's limits


def batches(files: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The files in calls of at most BATCH_BYTES of data each (a larger file goes alone)."""
    out: list[list[dict[str, Any]]] = []
    size = BATCH_BYTES
    for f in files:
        if size + len(f["data"]) > BATCH_BYTES:
            out.append([])
            size = 0
        out[-1].append(f)
        size += len(f["data"])
    return out


def encode(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")

"""The console's operations as the scripts of resources/powershell/ take them, for both ways an
administrator's client sends a script (a kept PSRP session: default.AdminClient; WinRS:
admin.HostClient): one place that builds each operation's parameters and reads its answer."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .. import documentation
from ..audit import HOST_EVENTS_DEFAULT, HostEvents, RecordRef
from ..config import HostConfig
from ..downtime import Plan, SharedPlans
from ..details import THUMBNAIL_SIZE, Thumbnail, VMDetails, check_size
from ..hardening import HostHardening
from ..inventory import VM, HostFacts, HostInventory
from .client import with_record
from .outcomes import ActionOutcome, items_of


class ScriptOperations:
    """The operations; a client gives `_read_operation` (a read, retried once when its
    connection broke) and `_act_operation` (an action, never sent twice)."""

    name: str
    config: HostConfig

    def _read_operation(self, operation: str, params: dict[str, Any]) -> Any:
        raise NotImplementedError

    def _act_operation(self, operation: str, params: dict[str, Any], vm_id: str) -> ActionOutcome:
        raise NotImplementedError

    def inventory(self) -> list[VM]:
        return list(self.read_inventory().vms)

    def read_inventory(self) -> HostInventory:
        """The VMs and the host's capacity, in the one call of a refresh."""
        data = self._read_operation("inventory", {})
        return HostInventory.from_json(self.name, data, items_of(data, "vms", self.name),
                                       self.config.cluster or None)

    def host_facts(self, library: list[str]) -> HostFacts:
        return HostFacts.from_json(self._read_operation("host_facts", {"library": list(library)}))

    def host_hardening(self) -> HostHardening:
        """What the host runs beyond Hyper-V and who may reach it (host_hardening.ps1)."""
        return HostHardening.from_json(self._read_operation("host_hardening", {}))

    def read_documentation(self, folder: str, files: dict[str, str]) -> dict[str, str | None]:
        """The console's documentation files found in `folder` (document.ps1): the text of each
        file named in `files` (VM id -> file name) that is there, by VM id."""
        data = self._read_operation("document", {"mode": "read", "folder": folder, "files": [
            {"vm_id": vm_id, "file": name} for vm_id, name in files.items()]})
        return {str(f["vm_id"]).lower(): documentation.decode(f.get("data"))
                for f in items_of(data, "files", self.name) if f.get("exists")}

    def write_documentation(self, folder: str, changes: Iterable[documentation.Change]) -> list[str]:
        """Write each change's file (the old one kept beside it under its `keep` name) and the
        VM's Notes, a few files a call (each call stays far below a command's size limit); the
        kept files' paths."""
        kept: list[str] = []
        for batch in documentation.batches([
                {"vm_id": c.vm.id, "file": c.file, "data": documentation.encode(c.new),
                 "keep": c.keep, "notes": c.new_notes if c.notes_changed else None}
                for c in changes]):
            data = self._read_operation("document", {"mode": "write", "folder": folder,
                                                     "files": batch})
            kept += [str(f["kept"]) for f in items_of(data, "files", self.name) if f.get("kept")]
        return kept

    def set_metering(self, enable: bool) -> tuple[int, int]:
        """Resource metering on or off for every VM of the host (metering.ps1): (VMs, on)."""
        data = self._read_operation("metering", {"enable": enable})
        return int(data["vms"]), int(data["enabled"])

    def vm_state(self, ids: Iterable[str]) -> dict[str, tuple[str, str]]:
        data = self._read_operation("vm_state", {"vm_ids": [i.lower() for i in ids]})
        return {str(v["id"]).lower(): (str(v.get("state") or "Other"), str(v.get("status") or ""))
                for v in items_of(data, "vms", self.name)}

    def details(self, vm_id: str) -> VMDetails:
        """One VM as Hyper-V Manager shows it (details.ps1): what costs WMI queries per VM, read
        only when its details are opened."""
        return VMDetails.from_json(self.name, self._read_operation(
            "details", {"vm_id": vm_id.lower()}))

    def thumbnail(self, vm_id: str, width: int = THUMBNAIL_SIZE[0],
                  height: int = THUMBNAIL_SIZE[1]) -> Thumbnail:
        """A small picture of the VM's screen (thumbnail.ps1), RGB 565."""
        check_size(width, height)
        return Thumbnail.from_json(self.name, self._read_operation(
            "thumbnail", {"vm_id": vm_id.lower(), "width": width, "height": height}))

    def power(self, vm_id: str, action: str, audit: RecordRef | None = None) -> ActionOutcome:
        return self._act_operation("power", with_record(
            {"vm_id": vm_id.lower(), "action": action}, audit), vm_id)

    def checkpoint(self, vm_id: str, action: str, checkpoint_id: str | None = None,
                   name: str | None = None, audit: RecordRef | None = None) -> ActionOutcome:
        params: dict[str, Any] = {"vm_id": vm_id.lower(), "action": action}
        if checkpoint_id is not None:
            params["checkpoint_id"] = checkpoint_id.lower()
        if name is not None:
            params["name"] = name
        return self._act_operation("checkpoint", with_record(params, audit), vm_id)

    def media(self, vm_id: str, action: str, controller_type: str, controller: int, location: int,
              path: str | None = None, library: Iterable[str] = (),
              audit: RecordRef | None = None) -> ActionOutcome:
        params: dict[str, Any] = {"vm_id": vm_id.lower(), "action": action,
                                  "controller_type": controller_type, "controller": controller,
                                  "location": location, "library": list(library)}
        if path is not None:
            params["path"] = path
        return self._act_operation("media", with_record(params, audit), vm_id)

    def console_access(self, vm_id: str, action: str,
                       audit: RecordRef | None = None) -> ActionOutcome:
        """Grant (or revoke) the caller's own access to the VM's console: the script names the
        caller from the session's token, never from a parameter."""
        return self._act_operation("console_access", with_record(
            {"vm_id": vm_id.lower(), "action": action}, audit), vm_id)

    def sync_console_access(self) -> list[dict[str, str]]:
        """Nothing to take back on the default endpoint: its callers administer the host."""
        return []

    def console_acl(self) -> list[dict[str, str]]:
        """Who holds access to each VM's console on this host (Get-VMConnectAccess): the
        entries (vm_id, vm_name, user, sid, access) for the review."""
        data = self._read_operation("console_acl", {})
        return [{k: str(v.get(k) or "") for k in ("vm_id", "vm_name", "user", "sid", "access")}
                for v in items_of(data, "entries", self.name)]

    def audit_events(self, since: str = "", limit: int = HOST_EVENTS_DEFAULT) -> HostEvents:
        """The console's events of the host's Application log, every user's, newest first (at
        most `limit`, from `since`: YYYY-MM-DDTHH:MM:SSZ, UTC)."""
        return HostEvents.from_data(self.name, self._read_operation(
            "audit_events", {"since": since, "max": limit}))

    def downtime_plans(self) -> SharedPlans:
        """The downtime plans published to this host and the answers to them (every plan: the
        default endpoint's callers administer the host)."""
        return SharedPlans.from_data(self.name, self._read_operation("downtime_plans", {}))

    def publish_plan(self, plan: Plan) -> str:
        """Write `plan` to the host's event log (downtime_publish.ps1), one event a part
        (Plan.parts: as many of its VMs as one event holds); its id. The publisher is the
        session's token. A read that broke may be sent again: a part written twice reads as one
        (SharedPlans joins the parts of an id, each VM once)."""
        for part in plan.parts(plan.planned_by):
            data = self._read_operation("downtime_publish", part.publish_params())
        return str(data.get("plan_id") if isinstance(data, dict) else plan.id)

    def answer_plan(self, plan_id: str, answer: str, text: str = "") -> dict[str, Any]:
        """The caller's one-line answer to a plan (downtime_answer.ps1): the host names the
        caller from the token. Sent again after a broken connection at most once, which a tally
        reads as the same latest answer."""
        data = self._read_operation("downtime_answer", {"plan_id": plan_id, "answer": answer,
                                                        "text": text})
        return data if isinstance(data, dict) else {}

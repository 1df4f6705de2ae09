"""pypsrp against the lab's JEA endpoint over NTLM with message encryption: each operation, a
refusal for each privilege, inventory filtered per user, script text refused, and the JEA client
answering as the admin endpoint's clients (PSRP and WinRS) do for the same lab; the default
endpoint's own PSRP session (Microsoft.PowerShell) at the end."""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from console import hosts, jea
from console.audit import RecordRef
from console.config import HostConfig
from console.errors import (HostAccessDenied, HostError, InvalidParameter, ReplicaRefused, VMNotFound,
                            WrongState)
from console.hosts import Credentials, HostClient
from lab import psrp
from lab.auth import Accounts, HostRights
from lab.executor import Executor
from lab.hyperv import Durations
from lab.world import World, load_world
from lab.directory import LabDirectory
from console.policy import Policy, Target

POLICY = Path(__file__).parents[1] / "golden" / "jea" / "policy.toml"
PASSWORDS = {"olivia": "olivia-demo", "henry": "henry-demo", "adam": "adam-demo",
             "rita": "rita-demo", "bea": "bea-demo", "hannah": "hannah-demo"}
RIDS = {"olivia": 1101, "henry": 1102, "adam": 1103, "rita": 1104, "bea": 1106, "hannah": 1107}
WEB01 = "42e4aaca-7231-5411-b96b-d03849b0dae1"  # HV01, shop (olivia owns it)
APP01 = "a8c164c6-ea2b-525b-b0de-c3c08e182c75"  # HV01, shop, two checkpoints
PAYROLL = "a2c68177-4057-539b-9428-2fbc40894332"  # HV02, hannah's
OFFICE_FILES = "bc797c1d-65e1-5032-8525-d184e732f820"  # a Replica copy on HV01


@dataclass
class LabHost:
    server: Any
    executor: Executor
    endpoint: psrp.JeaEndpoint
    default: psrp.DefaultEndpoint


@pytest.fixture(scope="module")
def accounts() -> Iterator[Accounts]:
    domain = Accounts()
    for user, password in PASSWORDS.items():
        domain.add(f"LAB\\{user}", f"S-1-5-21-1000-2000-3000-{RIDS[user]}", password)
    yield domain


@pytest.fixture(scope="module")
def tokens(accounts: Accounts) -> psrp.TokenSource:
    return psrp.directory_tokens(LabDirectory(), accounts)


@pytest.fixture(scope="module")
def policy() -> Policy:
    return Policy.load(POLICY)


@pytest.fixture
def lab(accounts: Accounts, tokens: psrp.TokenSource, policy: Policy) -> Iterator[dict[str, LabHost]]:
    from lab.wsman import WSManServer
    world: World = load_world(durations=Durations.instant())
    hosts = {}
    for lab_host in world.hosts:
        executor = Executor(lab_host.host)
        server = WSManServer(lab_host.name, executor, accounts=accounts,
                             rights=HostRights.of(admins=["LAB\\adam"]))
        endpoint = psrp.attach(server, executor, jea.generate(policy, lab_host.name), tokens)
        default = psrp.attach_default(server, executor)
        server.start()
        hosts[lab_host.name] = LabHost(server, executor, endpoint, default)
    yield hosts
    for host in hosts.values():
        host.server.stop()


def config(host: LabHost, timeout: float = 10) -> HostConfig:
    return HostConfig(host.server.name, host.server.url, timeout=timeout)


def client(host: LabHost, user: str) -> hosts.JeaClient:
    return hosts.JeaClient(config(host), Credentials(f"LAB\\{user}", PASSWORDS[user]))


def raw(host: LabHost, user: str, command: str, script: bool = False,
        configuration: str = jea.ENDPOINT_NAME, **params: Any) -> tuple[list, list]:
    """pypsrp straight at the endpoint, bypassing the console: (output, error records)."""
    wsman = WSMan("127.0.0.1", port=host.server.port, ssl=False, auth="ntlm",
                  username=f"LAB\\{user}", password=PASSWORDS[user], encryption="always")
    with RunspacePool(wsman, configuration_name=configuration) as pool:
        ps = PowerShell(pool)
        ps.add_script(command) if script else ps.add_cmdlet(command)
        for key, value in params.items():
            ps.add_parameter(key, value)
        output = ps.invoke()
        return output, list(ps.streams.error)


def state(host: LabHost, vm_id: str) -> str:
    return host.executor.host.vm(vm_id).state


def denials(host: LabHost, user: str) -> list:
    return [e for e in host.executor.events if e.user == f"LAB\\{user}" and e.outcome == "denied"]


# --- each operation ---------------------------------------------------------------------------------

def test_each_operation_for_an_owner(lab: dict[str, LabHost], policy: Policy) -> None:
    hv01 = lab["HV01"]
    olivia = client(hv01, "olivia")
    assert sorted(v.name for v in olivia.inventory()) == ["shop-app01", "shop-db01", "shop-web01"]
    facts = olivia.host_facts(["C:\\Windows"])  # the host's own library decides, not the caller
    assert {i.path for i in facts.isos} >= {"D:\\ISO\\WindowsServer2022.iso"}
    assert olivia.vm_state([WEB01, PAYROLL]) == {WEB01: ("Running", "Operating normally")}
    assert olivia.power(WEB01, "save").vm_state == "Saved"
    assert olivia.power(WEB01, "start").vm_state == "Running"
    created = olivia.checkpoint(APP01, "create", name="before patch")
    assert created.checkpoint is not None and created.checkpoint.name == "before patch"
    assert olivia.checkpoint(APP01, "delete", checkpoint_id=created.checkpoint.id).status == "ok"
    drive = next(v for v in olivia.inventory() if v.id == WEB01).dvd_drives[0]
    mounted = olivia.media(WEB01, "mount", drive.controller_type, drive.controller, drive.location,
                           path="D:\\ISO\\WindowsServer2022.iso")
    assert mounted.drive is not None and mounted.drive.path == "D:\\ISO\\WindowsServer2022.iso"
    assert olivia.media(WEB01, "eject", drive.controller_type, drive.controller,
                        drive.location).drive.path in (None, "")
    assert olivia.enforced_digest() == jea.host_grants(policy, "HV01").sha256
    assert hosts.lag("HV01", olivia.enforced_digest(), policy) is None
    olivia.close()
    stats = hv01.server.stats.as_dict()
    assert stats["encrypted_requests"] == stats["requests_after_logon"] > 0
    assert stats["unencrypted_refused"] == 0
    performed = [e for e in hv01.executor.events if e.user == "LAB\\olivia"]
    assert [(e.operation, e.action, e.outcome) for e in performed] == [
        ("power", "save", "ok"), ("power", "start", "ok"), ("checkpoint", "create", "ok"),
        ("checkpoint", "delete", "ok"), ("media", "mount", "ok"), ("media", "eject", "ok")]


def test_rename_through_the_endpoint_and_now_in_its_inventory(lab: dict[str, LabHost]) -> None:
    # An owner renames a checkpoint (vm.checkpoint.create), by id; the inventory the endpoint
    # filters still carries the VM's parent checkpoint ("Now").
    hv01 = lab["HV01"]
    olivia = client(hv01, "olivia")
    app01 = next(v for v in olivia.inventory() if v.id == APP01)
    assert app01.parent_checkpoint is not None
    target = app01.parent_checkpoint.id
    renamed = olivia.checkpoint(APP01, "rename", checkpoint_id=target, name="after 4.3 \u2019ok\u2019")
    assert renamed.checkpoint is not None and renamed.checkpoint.id == target
    assert renamed.checkpoint.name == "after 4.3 \u2019ok\u2019"
    assert hv01.executor.calls_of("Rename-VMSnapshot")[-1].params["NewName"] == "after 4.3 \u2019ok\u2019"
    olivia.close()
    output, errors = raw(hv01, "rita", "Invoke-HvcCheckpoint", VMId=APP01, Action="rename",
                         CheckpointId=target, Name="x")
    assert errors == [] and "vm.checkpoint.create" in json.loads(output[0])["error"]["message"]
    assert hv01.executor.host.vm(APP01).checkpoint(target).name == "after 4.3 \u2019ok\u2019"


def test_the_endpoints_inventory_carries_the_hosts_capacity(lab: dict[str, LabHost]) -> None:
    # Memory and storage come with the VMs the caller may view, in the same call.
    henry = client(lab["HV02"], "henry")
    inventory = henry.read_inventory()
    assert inventory.capacity is not None and inventory.capacity.error == ""
    assert inventory.capacity.memory_total_bytes == 64 * 1024 ** 3
    assert [s.path for s in inventory.capacity.storage] == ["D:\\"]
    assert "payroll-db" not in {v.name for v in inventory.vms}  # still filtered per caller
    henry.close()


# --- a refusal for each privilege -------------------------------------------------------------------

CALLS = {
    "vm.start": ("Invoke-HvcPower", {"Action": "resume"}),
    "vm.shutdown": ("Invoke-HvcPower", {"Action": "shutdown"}),
    "vm.turnoff": ("Invoke-HvcPower", {"Action": "turnoff"}),
    "vm.reset": ("Invoke-HvcPower", {"Action": "reset"}),
    "vm.save": ("Invoke-HvcPower", {"Action": "save"}),
    "vm.checkpoint.create": ("Invoke-HvcCheckpoint", {"Action": "create"}),
    "vm.checkpoint.delete": ("Invoke-HvcCheckpoint", {
        "Action": "delete_subtree", "CheckpointId": "9a1c1c1c-0000-4000-8000-000000000001"}),
    "vm.checkpoint.apply": ("Invoke-HvcCheckpoint", {"Action": "apply",
                                                     "CheckpointId": "9a1c1c1c-0000-4000-8000-000000000001"}),
    "vm.media": ("Invoke-HvcMedia", {"Action": "eject", "ControllerType": "SCSI", "Controller": 0,
                                     "Location": 1}),
}


@pytest.mark.parametrize("privilege", sorted(CALLS))
def test_a_reviewer_is_refused_every_action(lab: dict[str, LabHost], privilege: str) -> None:
    hv01 = lab["HV01"]
    function, params = CALLS[privilege]
    before = hv01.executor.host.snapshot()
    output, errors = raw(hv01, "rita", function, VMId=WEB01, **params)
    assert errors == []
    document = json.loads(output[0])
    assert document["ok"] is False and document["error"]["code"] == "denied"
    assert privilege in document["error"]["message"]
    assert hv01.executor.host.snapshot() == before  # nothing changed on the host
    assert [e.vm_id for e in denials(hv01, "rita")] == [WEB01]
    assert hv01.executor.calls_of("power") == hv01.executor.calls_of("checkpoint") == []


def test_helpdesk_may_start_but_not_turn_off(lab: dict[str, LabHost]) -> None:
    hv02 = lab["HV02"]
    henry = client(hv02, "henry")
    office_print = next(v for v in henry.inventory() if v.name == "office-print")
    with pytest.raises(HostAccessDenied, match="vm.turnoff"):
        henry.power(office_print.id, "turnoff")
    assert state(hv02, office_print.id) == "Running"
    assert henry.power(office_print.id, "reset").status == "ok"


def test_bypassing_the_console_reaches_only_your_own_vms(lab: dict[str, LabHost]) -> None:
    hv02 = lab["HV02"]
    output, _ = raw(hv02, "olivia", "Invoke-HvcPower", VMId=PAYROLL, Action="start")
    assert json.loads(output[0])["error"]["code"] == "denied"
    assert state(hv02, PAYROLL) == "Off"
    output, _ = raw(hv02, "henry", "Get-HvcVMState", VMId=[PAYROLL])  # denied by an explicit deny
    assert json.loads(output[0]) == {"ok": True, "data": {"vms": []}}
    assert [e.operation for e in denials(hv02, "olivia")] == ["power"]


# --- inventory per user -----------------------------------------------------------------------------

@pytest.mark.parametrize("user", sorted(PASSWORDS))
def test_inventory_is_filtered_per_user(lab: dict[str, LabHost], policy: Policy, user: str) -> None:
    identity = LabDirectory().sign_in(f"LAB\\{user}", PASSWORDS[user])
    for name, host in lab.items():
        seen = sorted(v.id for v in client(host, user).inventory())
        expected = sorted(vm.id for vm in host.executor.host.vms if policy.evaluate(
            identity, Target(name, vm.id, vm.name)).allows("vm.view"))
        assert seen == expected, (user, name)


# --- NoLanguage --------------------------------------------------------------------------------------

@pytest.mark.parametrize("command, script, fqid", [
    ("Get-HvcInventory; Get-Process", True, "ScriptsNotAllowed"),
    ("Invoke-Expression", False, "CommandNotFoundException"),
    ("Get-Process", False, "CommandNotFoundException"),
])
def test_script_text_and_unlisted_commands_are_refused(lab: dict[str, LabHost], command: str,
                                                       script: bool, fqid: str) -> None:
    hv01 = lab["HV01"]
    output, errors = raw(hv01, "adam", command, script=script)
    assert output == [] and [e.fq_error for e in errors] == [fqid]
    assert hv01.executor.calls == []
    assert [(e.operation, e.outcome) for e in hv01.executor.events if e.user == "LAB\\adam"] == [
        ("command", "access_denied")]


def test_parameters_outside_their_constraints_are_refused(lab: dict[str, LabHost]) -> None:
    hv01 = lab["HV01"]
    adam = client(hv01, "adam")
    with pytest.raises(InvalidParameter):
        adam.media(WEB01, "mount", "SCSI", 0, 1, path="D:\\ISO\\..\\..\\Windows\\x.iso\u0007")
    with pytest.raises(InvalidParameter):
        adam.power(WEB01, "explode")
    assert hv01.executor.calls == []


def test_a_user_no_role_names_gets_no_session(lab: dict[str, LabHost], policy: Policy) -> None:
    text = POLICY.read_text(encoding="utf-8")
    narrowed = Policy.from_text(text.replace("principal = 'LAB\\Domain Users'",
                                             "principal = 'LAB\\HV-Admins'").replace(
        'sid = "S-1-5-21-1000-2000-3000-513"', 'sid = "S-1-5-21-1000-2000-3000-1204"'))
    hv01 = lab["HV01"]
    hv01.endpoint.replace_files(jea.generate(narrowed, "HV01"))
    with pytest.raises(HostAccessDenied, match="HvConsole"):
        client(hv01, "henry").inventory()
    assert any(e.operation == "session" and e.outcome == "access_denied"
               for e in hv01.executor.events)
    found = hosts.lag("HV01", client(hv01, "adam").enforced_digest(), policy)
    assert found is not None and "older policy" in str(found)


# --- the same results and errors as the admin endpoint -----------------------------------------------

@pytest.fixture(params=["admin-psrp", "admin-winrs", "jea"])
def adam(request: pytest.FixtureRequest, lab: dict[str, LabHost]) -> Any:
    host = lab["HV01"]
    credentials = Credentials("LAB\\adam", PASSWORDS["adam"])
    made = {"admin-psrp": hosts.AdminClient, "admin-winrs": HostClient,
            "jea": hosts.JeaClient}[request.param](config(host), credentials)
    yield made
    made.close()


def test_shared_operations_answer_alike(adam: Any, lab: dict[str, LabHost]) -> None:
    vms = {v.id: v for v in adam.inventory()}
    assert len(vms) == len(lab["HV01"].executor.host.vms)
    assert vms[WEB01].name == "shop-web01" and vms[WEB01].state == "Running"
    assert adam.vm_state([WEB01]) == {WEB01: ("Running", "Operating normally")}
    assert adam.power(WEB01, "pause").vm_state == "Paused"
    assert adam.power(WEB01, "resume").vm_state == "Running"
    with pytest.raises(WrongState):
        adam.power(WEB01, "start")
    with pytest.raises(ReplicaRefused):
        adam.power(OFFICE_FILES, "start")
    with pytest.raises(VMNotFound):
        adam.power("00000000-0000-4000-8000-00000000abcd", "start")
    outcome = adam.checkpoint(APP01, "create", name="same")
    assert outcome.checkpoint is not None and outcome.checkpoint.name == "same"


# --- what the endpoint enforces: the grants its functions hold ----------------------------------------

def test_the_grants_file_is_never_read_the_functions_grants_are(lab: dict[str, LabHost],
                                                                  policy: Policy) -> None:
    hv01 = lab["HV01"]
    files = dict(jea.generate(policy, "HV01"))
    tampered = jea.HostGrants(
        "HV01", ("C:\\",), (jea.HostGrant("S-1-1-0", "Everyone", "allow", ("vm.start", "vm.view"),
                                          "host"),) + jea.host_grants(policy, "HV01").grants)
    files[jea.GRANTS_FILE] = jea.psd1(jea.readable_grants(tampered)).encode("utf-8")
    hv01.endpoint.replace_files(files)
    output, _ = raw(hv01, "rita", "Invoke-HvcPower", VMId=WEB01, Action="shutdown")
    assert json.loads(output[0])["error"]["code"] == "denied"
    del files[jea.GRANTS_FILE]  # the host needs no such file at all
    hv01.endpoint.replace_files(files)
    assert hosts.lag("HV01", client(hv01, "rita").enforced_digest(), policy) is None


def test_an_edited_grant_in_the_registered_files_shows_as_lag(lab: dict[str, LabHost],
                                                                policy: Policy) -> None:
    # Someone edits the registered role capability: the reviewers' view-only grant now starts
    # VMs too. The policy digest written in its description is unchanged.
    hv01 = lab["HV01"]
    files = dict(jea.generate(policy, "HV01"))
    psrc = files[jea.PSRC_FILE].decode("utf-8")
    viewer = ("            Privileges = @('vm.view')\r\n            Scope = 'host'\r\n"
              "            Sid = 'S-1-5-21-1000-2000-3000-1205'")
    assert psrc.count(viewer) == len(jea.FUNCTIONS)
    files[jea.PSRC_FILE] = psrc.replace(viewer, viewer.replace(
        "@('vm.view')", "@('vm.shutdown', 'vm.view')")).encode("utf-8")
    hv01.endpoint.replace_files(files)
    found = hosts.lag("HV01", client(hv01, "rita").enforced_digest(), policy)
    assert found is not None and "older policy" in str(found)
    output, _ = raw(hv01, "rita", "Invoke-HvcPower", VMId=WEB01, Action="shutdown")
    assert json.loads(output[0])["ok"] is True  # the edit is what the host enforces
    hv01.endpoint.replace_files(jea.generate(policy, "HV01"))
    assert hosts.lag("HV01", client(hv01, "rita").enforced_digest(), policy) is None


# --- a done action is reported done --------------------------------------------------------------------

def test_an_event_the_log_refuses_is_a_warning_beside_a_done_action(lab: dict[str, LabHost]) -> None:
    hv01 = lab["HV01"]
    hv01.endpoint.event_log_error = "The source HvConsole is not registered in log Application."
    olivia = client(hv01, "olivia")
    outcome = olivia.power(WEB01, "save")
    assert outcome.status == "ok" and outcome.vm_state == "Saved" == state(hv01, WEB01)
    assert "not written to the Application log" in outcome.warning
    assert "HvConsole is not registered" in outcome.warning and outcome.warning.startswith("HV01")
    with pytest.raises(HostAccessDenied):  # a refusal stays a refusal
        olivia.power(PAYROLL, "start")
    hv01.endpoint.event_log_error = None
    assert olivia.power(WEB01, "start").warning == ""


# --- the event of each call, and reading the events back -------------------------------------------

RECORD = RecordRef("0f3c8a52-9e1b-4d57-a3c2-6b7e8f9a0b1c", "ab" * 32, 7, "WS-OLIVIA")


def test_an_action_writes_the_record_it_carries_and_the_caller_from_the_token(
        lab: dict[str, LabHost]) -> None:
    hv01 = lab["HV01"]
    assert client(hv01, "olivia").power(WEB01, "save", audit=RECORD).status == "ok"
    (entry,) = hv01.executor.event_log
    assert (entry.source, entry.event_id) == ("HvConsole", 1000)
    assert json.loads(entry.message) == {
        "v": 1, "endpoint": "jea", "user": "LAB\\olivia", "sid": "S-1-5-21-1000-2000-3000-1101",
        "operation": "power", "action": "save", "vm": WEB01, "name": "shop-web01", "outcome": "ok",
        "code": "", "message": "", "record": RECORD.correlation_id, "sha256": RECORD.sha256,
        "seq": 7, "workstation": "WS-OLIVIA"}
    # Bypassing the console: a SID of someone else's cannot be passed (there is no such
    # parameter), and the record fields are held to their patterns before anything is done.
    _, errors = raw(hv01, "olivia", "Invoke-HvcPower", VMId=WEB01, Action="start",
                    Sid="S-1-5-21-1000-2000-3000-1103")
    assert [e.fq_error for e in errors][0].startswith("NamedParameterNotFound")
    for bad in ({"AuditSha256": "AB" * 31 + "zz"}, {"AuditSeq": 0}, {"AuditRecord": "latest"},
                {"Workstation": "WS\nforged"}):
        _, errors = raw(hv01, "olivia", "Invoke-HvcPower", VMId=WEB01, Action="start", **bad)
        assert errors, bad
    assert state(hv01, WEB01) == "Saved" and len(hv01.executor.event_log) == 1
    # A call without a record (a person at a prompt) is done and written, its record empty.
    output, errors = raw(hv01, "olivia", "Invoke-HvcPower", VMId=WEB01, Action="start")
    assert errors == [] and json.loads(output[0])["ok"]
    assert json.loads(hv01.executor.event_log[-1].message)["record"] == ""


def test_audit_events_are_read_by_holders_of_audit_read_only(lab: dict[str, LabHost]) -> None:
    hv01 = lab["HV01"]
    client(hv01, "olivia").power(WEB01, "save", audit=RECORD)
    with pytest.raises(HostAccessDenied, match="may not read the audit events of this host"):
        client(hv01, "olivia").audit_events()
    with pytest.raises(HostAccessDenied):
        client(hv01, "henry").audit_events()
    read = client(hv01, "rita").audit_events()  # the reviewer role: audit.read everywhere
    assert not read.truncated and read.others == 0
    henry, refused, done = read.events  # newest first: two refused reads, then her save
    assert (henry.user, henry.operation, henry.outcome) == ("LAB\\henry", "audit_events", "denied")
    assert (done.user, done.sid, done.endpoint, done.outcome, done.record, done.seq) == (
        "LAB\\olivia", "S-1-5-21-1000-2000-3000-1101", "jea", "ok", RECORD.correlation_id, 7)
    assert (done.host, done.event_id, done.machine, done.vm_name) == ("HV01", 1000, "HV01",
                                                                     "shop-web01")
    assert (refused.operation, refused.outcome, refused.event_id, refused.user) == (
        "audit_events", "denied", 1001, "LAB\\olivia")
    assert len(client(hv01, "adam").audit_events(limit=1).events) == 1  # HV-Admins: admin role
    assert client(hv01, "rita").audit_events(limit=1).truncated
    assert client(hv01, "rita").audit_events(since="2999-01-01T00:00:00Z").events == ()
    with pytest.raises(InvalidParameter):
        client(hv01, "rita").audit_events(since="yesterday")


def test_the_default_endpoint_reads_and_writes_the_same_events(lab: dict[str, LabHost]) -> None:
    hv01 = lab["HV01"]
    admin = hosts.AdminClient(config(hv01), Credentials("LAB\\adam", PASSWORDS["adam"]))
    try:
        assert admin.power(WEB01, "save", audit=RECORD).status == "ok"
        client(hv01, "olivia").power(WEB01, "start")
        (jea_start, admin_save) = admin.audit_events().events
        assert (admin_save.endpoint, admin_save.user, admin_save.sid, admin_save.record) == (
            "admin", "LAB\\adam", "S-1-5-21-1000-2000-3000-1103", RECORD.correlation_id)
        assert (jea_start.endpoint, jea_start.user, jea_start.record) == ("jea", "LAB\\olivia", "")
        assert admin.audit_events() == client(hv01, "rita").audit_events()
    finally:
        admin.close()


# --- expiry, decided on dates ------------------------------------------------------------------------

@pytest.mark.parametrize("day, works", [(0, True), (1, False)])
def test_an_expiring_grant_works_through_its_day_on_the_endpoint(
        lab: dict[str, LabHost], day: int, works: bool) -> None:
    from datetime import date, timedelta
    hv02 = lab["HV02"]
    expiring = next(g for g in hv02.endpoint.files.grants["Invoke-HvcPower"].grants
                    if g.expires and g.principal == "LAB\\HV-Shop-Owners" and g.scope == "host")
    hv02.endpoint.today = lambda: date.fromisoformat(expiring.expires) + timedelta(days=day)
    office_print = "58a006d8-4cd7-53ac-aa46-a10dc2e2cb10"  # HV02, reached only through that grant
    output, _ = raw(hv02, "olivia", "Invoke-HvcPower", VMId=office_print, Action="save")
    assert json.loads(output[0])["ok"] is works


# --- binding as PowerShell binds -----------------------------------------------------------------------

def test_an_action_in_any_casing_runs_in_the_sets_spelling(lab: dict[str, LabHost]) -> None:
    hv01 = lab["HV01"]
    output, _ = raw(hv01, "olivia", "Invoke-HvcMedia", VMId=WEB01, Action="Eject",
                    ControllerType="scsi", Controller=0, Location=1)
    answer = json.loads(output[0])
    assert answer["ok"] is True and answer["data"]["drive"]["controller_type"] == "SCSI", output
    output, errors = raw(hv01, "olivia", "Invoke-HvcPower", VMId=WEB01, Action="SAVE")
    assert errors == [] and json.loads(output[0])["data"]["vm"]["state"] == "Saved"
    # The events the function wrote name the actions in the set's spelling.
    assert [e.action for e in hv01.executor.events if e.user == "LAB\\olivia"] == ["eject", "save"]


def test_a_guid_in_any_form_a_guid_parameter_takes_reaches_the_script_as_d(
        lab: dict[str, LabHost]) -> None:
    hv01 = lab["HV01"]
    n_form = WEB01.replace("-", "").upper()
    output, errors = raw(hv01, "olivia", "Invoke-HvcPower", VMId=n_form, Action="pause")
    assert errors == [] and json.loads(output[0])["ok"] is True
    output, _ = raw(hv01, "olivia", "Get-HvcVMState", VMId=["{" + WEB01.upper() + "}", f"({APP01})"])
    assert sorted(v["id"] for v in json.loads(output[0])["data"]["vms"]) == sorted([WEB01, APP01])
    assert [e.vm_id for e in hv01.executor.events if e.user == "LAB\\olivia"] == [WEB01]
    _, errors = raw(hv01, "olivia", "Invoke-HvcPower", VMId=f"urn:uuid:{WEB01}", Action="pause")
    assert [e.fq_error for e in errors] == ["ParameterArgumentTransformationError,Invoke-HvcPower"]


def test_a_checkpoint_name_ending_in_a_newline_is_refused(lab: dict[str, LabHost]) -> None:
    hv01 = lab["HV01"]
    with pytest.raises(InvalidParameter, match="refused a parameter"):
        client(hv01, "olivia").checkpoint(APP01, "create", name="before patch\n")
    assert hv01.executor.calls_of("checkpoint") == []


FUNCTION = """[CmdletBinding()]
param(
[Parameter(Mandatory=$true)][ValidateSet('start','delete_saved_state')][string]$Action,
[Parameter(Mandatory=$true)][guid]$VMId,
[ValidateCount(1,2)][guid[]]$More,
[ValidateRange(0,63)][int]$Location,
[ValidateLength(0,3)][ValidatePattern('\\A[a-z]+\\z')][string]$Name='',
[Parameter(Mandatory=$true)][ValidatePattern('^x$')][string]$Dollar
)
"""


def test_param_specs_read_the_block_as_powershell_does() -> None:
    specs = {s.name: s for s in psrp.param_specs(FUNCTION)}
    assert specs["Action"] == psrp.ParamSpec("Action", "string", True, ("start", "delete_saved_state"))
    assert specs["More"].type == "guid[]" and specs["More"].count == (1, 2)
    assert specs["Name"].pattern == "\\A[a-z]+\\z" and specs["Name"].length == (0, 3)
    assert specs["Location"] == psrp.ParamSpec("Location", "int", range=(0, 63))


def _bind(**args: Any) -> dict[str, Any]:
    base = {"Action": "start", "VMId": WEB01, "Dollar": "x"}
    return psrp._bind("F", psrp.param_specs(FUNCTION), list({**base, **args}.items()))


@pytest.mark.parametrize("args, bound", [
    ({"Action": "START"}, {"Action": "START"}),  # ValidateSet ignores case, keeps the caller's
    ({"Action": "Delete_Saved_State"}, {"Action": "Delete_Saved_State"}),
    ({"VMId": WEB01.replace("-", "")}, {"VMId": WEB01}),  # N
    ({"VMId": "{" + WEB01.upper() + "}"}, {"VMId": WEB01}),  # B
    ({"VMId": f" ({WEB01}) "}, {"VMId": WEB01}),  # P, white space around
    ({"VMId": "{0x42e4aaca,0x7231,0x5411,{0xb9,0x6b,0xd0,0x38,0x49,0xb0,0xda,0xe1}}"}, {"VMId": WEB01}),
    ({"More": WEB01}, {"More": [WEB01]}),
    ({"Location": "0x10"}, {"Location": 16}),
    ({"Location": " 7 "}, {"Location": 7}),
    ({"Location": "2.5"}, {"Location": 2}),  # through a double, rounded to even
    ({"Location": True}, {"Location": 1}),
    ({"Location": 3.5}, {"Location": 4}),
    ({"Name": "ABC"}, {"Name": "ABC"}),  # ValidatePattern ignores case
    ({"Dollar": "x\n"}, {"Dollar": "x\n"}),  # .NET's $ matches before a final newline
])
def test_binding_converts_and_validates_as_powershell(args: dict[str, Any], bound: dict[str, Any]) -> None:
    result = _bind(**args)
    assert {k: result[k] for k in bound} == bound


@pytest.mark.parametrize("args, fqid", [
    ({"Action": "stop"}, "ParameterArgumentValidationError"),
    ({"VMId": f"urn:uuid:{WEB01}"}, "ParameterArgumentTransformationError"),
    ({"VMId": WEB01[:-1]}, "ParameterArgumentTransformationError"),
    ({"VMId": "{" + WEB01}, "ParameterArgumentTransformationError"),
    ({"More": [WEB01, APP01, PAYROLL]}, "ParameterArgumentValidationError"),
    ({"Location": "seven"}, "ParameterArgumentTransformationError"),
    ({"Location": 64}, "ParameterArgumentValidationError"),
    ({"Location": 2**31}, "ParameterArgumentTransformationError"),
    ({"Name": "ab\n"}, "ParameterArgumentValidationError"),  # \z: the very end
    ({"Name": "abcd"}, "ParameterArgumentValidationError"),
    ({"Name": "\U0001f600"}, "ParameterArgumentValidationError"),
    ({"Dollar": ""}, "ParameterArgumentValidationError"),
    ({"Dollar": None}, "ParameterArgumentValidationErrorNullNotAllowed"),
])
def test_binding_refuses_as_powershell(args: dict[str, Any], fqid: str) -> None:
    with pytest.raises(psrp.Refusal) as refused:
        _bind(**args)
    assert refused.value.fqid == f"{fqid},F"


def test_dotnet_patterns_read_alike_in_python() -> None:
    assert psrp.dotnet_pattern(r"\Aa\z") == r"\Aa\Z"
    assert psrp.dotnet_pattern(r"a\Z") == r"a(?=\n?\Z)"
    assert psrp.dotnet_pattern(r"\\z") == r"\\z"  # an escaped backslash, then z
    import re
    for pattern, text, matches in [(r"^a$", "a\n", True), (r"\Aa\z", "a\n", False),
                                   (r"a\Z", "a\n", True), (r"a\Z", "a\n\n", False)]:
        assert bool(re.search(psrp.dotnet_pattern(pattern), text)) is matches, (pattern, text)


# --- what a JEA session reaches --------------------------------------------------------------------

def _edited(files: dict[str, bytes], old: str, new: str) -> dict[str, bytes]:
    text = files[jea.PSRC_FILE].decode("utf-8")
    assert old in text
    return {**files, jea.PSRC_FILE: text.replace(old, new).encode("utf-8")}


def test_a_function_reaches_only_what_the_session_loads(lab: dict[str, LabHost],
                                                        policy: Policy) -> None:
    # Findings 1 and 2, as the lab now judges them: without ModulesToImport no Hyper-V cmdlet is
    # found, and the 5.1 Utility module's script functions are never reachable.
    hv01 = lab["HV01"]
    files = jea.generate(policy, "HV01")
    modules = ("ModulesToImport = @('CimCmdlets', 'Hyper-V', 'Microsoft.PowerShell.LocalAccounts', "
               "'ServerManager', 'Storage')")
    hv01.endpoint.replace_files(_edited(files, modules, "ModulesToImport = @()"))
    output, _ = raw(hv01, "olivia", "Invoke-HvcPower", VMId=WEB01, Action="save")
    answer = json.loads(output[0])
    assert answer["ok"] is False and "Get-VM" in answer["error"]["message"]
    assert state(hv01, WEB01) == "Running"
    hv01.endpoint.replace_files(_edited(
        files, "$hvcWho=$PSSenderInfo",
        "$null=Microsoft.PowerShell.Utility\\Import-PowerShellDataFile -LiteralPath x\n"
        "$hvcWho=$PSSenderInfo"))
    output, errors = raw(hv01, "olivia", "Get-HvcInventory")
    assert output == [] and "Import-PowerShellDataFile" in str(errors[0])
    hv01.endpoint.replace_files(files)
    assert json.loads(raw(hv01, "olivia", "Invoke-HvcPower", VMId=WEB01, Action="save")[0][0])["ok"]


# --- the JEA client's failures, mapped as the default endpoint's ----------------------------------

def test_any_wsman_fault_is_a_host_error_and_access_denied_its_own(lab: dict[str, LabHost]) -> None:
    # pypsrp's WSManFaultError has no subcode: reading one made every other fault a traceback.
    from pypsrp.exceptions import WSManFaultError
    jea_client = client(lab["HV01"], "olivia")

    def fault(code: int) -> None:
        raise WSManFaultError(code, "HV01", "The WS-Management service cannot process the request.",
                              None, None, None)
    with pytest.raises(HostError, match="reported a fault") as other:
        jea_client._guard(lambda: fault(2150858843))
    assert not isinstance(other.value, HostAccessDenied)
    with pytest.raises(HostAccessDenied):
        jea_client._guard(lambda: fault(5))


def test_network_failures_read_alike_on_both_endpoints(lab: dict[str, LabHost]) -> None:
    import requests
    from console.errors import CertificateUntrusted, HostTimeout, HostUnreachable
    jea_client = client(lab["HV01"], "olivia")
    admin = HostClient(config(lab["HV01"]), Credentials("LAB\\adam", PASSWORDS["adam"]))
    for error, kind in ((requests.exceptions.SSLError("certificate verify failed"), CertificateUntrusted),
                        (requests.exceptions.ConnectTimeout("slow"), HostUnreachable),
                        (requests.exceptions.ReadTimeout("slow"), HostTimeout),
                        (requests.exceptions.ConnectionError("refused"), HostUnreachable)):
        def boom(error: Exception = error) -> None:
            raise error
        with pytest.raises(kind) as from_jea:
            jea_client._guard(boom)
        protocol = admin._new_protocol()
        with pytest.raises(kind) as from_admin:
            admin._guard(protocol, time.monotonic() + 5, boom)
        assert str(from_jea.value) == str(from_admin.value)


def test_a_jea_answer_confirms_the_credentials_for_the_other_hosts(lab: dict[str, LabHost]) -> None:
    # Until a host has taken the password, a pool asks one host before the rest: a JEA client
    # that never confirmed made every JEA refresh read one host alone first.
    jea_client = client(lab["HV01"], "olivia")
    assert not jea_client.gate.confirmed
    jea_client.inventory()
    assert jea_client.gate.confirmed


def test_psrp_has_no_command_line_limit(lab: dict[str, LabHost]) -> None:
    # Finding 15: the lab once sent the JEA functions' scripts through cmd.exe's 8191-character
    # limit, which a real PSRP endpoint does not have: 256 ids are about 10,000 characters.
    import uuid
    ids = [WEB01, *(str(uuid.uuid4()) for _ in range(255))]
    assert client(lab["HV01"], "adam").vm_state(ids) == {WEB01: ("Running", "Operating normally")}


# --- the default endpoint (Microsoft.PowerShell): full PowerShell for the host's administrators ---------

DEFAULT = psrp.DEFAULT_CONFIGURATION


def admin_pool(host: LabHost, max_runspaces: int = 1) -> RunspacePool:
    wsman = WSMan("127.0.0.1", port=host.server.port, ssl=False, auth="ntlm",
                  username="LAB\\adam", password=PASSWORDS["adam"], encryption="always")
    pool = RunspacePool(wsman, configuration_name=DEFAULT, max_runspaces=max_runspaces)
    pool.open()
    return pool


def run_script(pool: RunspacePool, text: str) -> tuple[list, list]:
    ps = PowerShell(pool)
    ps.add_script(text)
    output = ps.invoke()
    ps.close()
    return output, [str(e) for e in ps.streams.error]


def test_only_administrators_open_the_default_endpoint(lab: dict[str, LabHost]) -> None:
    from pypsrp.exceptions import WSManFaultError
    hv01 = lab["HV01"]
    with pytest.raises(WSManFaultError) as refused:  # olivia may use JEA, not a full PowerShell
        raw(hv01, "olivia", "$env:COMPUTERNAME", script=True, configuration=DEFAULT)
    assert refused.value.code == 5
    assert hv01.server.events.where(user="LAB\\olivia", event="session", outcome="access_denied")
    assert hv01.default.pools == 0
    output, errors = raw(hv01, "adam", "$env:COMPUTERNAME", script=True, configuration=DEFAULT)
    assert (output, errors) == (["HV01"], [])


def test_the_default_endpoint_runs_an_operation_script_as_winrs_does(lab: dict[str, LabHost]) -> None:
    from console import scripts
    hv01 = lab["HV01"]
    pool = admin_pool(hv01)
    try:
        output, errors = run_script(pool, scripts.script("inventory", {}))
        executable, args, stdin = scripts.command("inventory", {})
        winrs = hv01.executor.run(psrp.LabUser("LAB\\adam", "S-1-5-21-1000-2000-3000-1103", True),
                                  " ".join([executable, *args]), lambda: stdin.encode("ascii"))
        # One JSON document, the very one powershell.exe prints for the same script.
        assert errors == [] and len(output) == 1
        assert json.loads(output[0]) == json.loads(winrs.stdout)
        output, _ = run_script(pool, scripts.script("power", {"vm_id": WEB01, "action": "save"}))
        assert json.loads(output[0])["data"]["vm"]["state"] == "Saved" == state(hv01, WEB01)
        # Recorded as every changing cmdlet is: who called it, with what.
        call = hv01.executor.calls_of("Save-VM")[-1]
        assert call.user == "LAB\\adam"
        assert [e.outcome for e in hv01.executor.events if e.operation == "Save-VM"] == ["ok"]
    finally:
        pool.close()


def test_the_default_endpoint_judges_scripts_by_the_facts(lab: dict[str, LabHost]) -> None:
    hv01 = lab["HV01"]
    pool = admin_pool(hv01)
    try:
        # A parameter Get-VM does not have, a command the host lacks: refused as on Windows.
        _, errors = run_script(pool, "Get-VM -Identity x")
        assert "A parameter cannot be found that matches parameter name 'Identity'" in errors[0]
        _, errors = run_script(pool, "Get-VMHostPower")
        assert "'Get-VMHostPower' is not recognized" in errors[0]
        # Full language: .NET methods work (ConstrainedLanguage would refuse this one).
        output, errors = run_script(pool, "[Convert]::ToBase64String([byte[]](104,118))")
        assert (output, errors) == (["aHY="], [])
        # A non-terminating error is an error record beside the output, not the end of it.
        output, errors = run_script(pool, "Get-VM -Id 00000000-0000-4000-8000-000000000000; 'after'")
        assert output == ["after"] and "unable to find a virtual machine" in errors[0]
        # A pipeline of cmdlets is not simulated: said, not guessed at.
        ps = PowerShell(pool)
        ps.add_cmdlet("Get-VM")
        ps.invoke()
        assert ps.had_errors and "simulates one script" in str(ps.streams.error[0])
    finally:
        pool.close()
    # A WDAC host runs remote sessions in ConstrainedLanguage, the default endpoint's too.
    hv01.executor.language_mode = "ConstrainedLanguage"
    pool = admin_pool(hv01)
    try:
        _, errors = run_script(pool, "[Convert]::ToBase64String([byte[]](104,118))")
        assert "Method invocation is supported only on core types" in errors[0]
    finally:
        pool.close()


def test_a_kept_pool_starts_one_process_and_imports_hyperv_once_per_runspace(
        lab: dict[str, LabHost]) -> None:
    from console import scripts
    hv01 = lab["HV01"]
    stats, executor = hv01.server.stats, hv01.executor
    before_starts, before_imports = stats.process_starts, executor.module_imports
    pool = admin_pool(hv01)
    try:
        assert stats.process_starts == before_starts + 1  # wsmprovhost.exe
        for _ in range(3):
            output, _ = run_script(pool, scripts.script("vm_state", {"vm_ids": [WEB01]}))
            assert json.loads(output[0])["ok"]
        assert stats.process_starts == before_starts + 1 and stats.commands == 0
        assert executor.module_imports == before_imports + 1
        # The runspace keeps its global scope from one pipeline to the next (AddScript).
        run_script(pool, "$kept = 'from before'")
        assert run_script(pool, "$kept")[0] == ["from before"]
    finally:
        pool.close()


def test_a_pool_runs_up_to_its_max_runspaces_pipelines_at_once(lab: dict[str, LabHost]) -> None:
    hv01 = lab["HV01"]
    hv01.executor.host.durations.pause = 1.0
    other = "a8c164c6-ea2b-525b-b0de-c3c08e182c75"
    for runspaces, at_least, below in ((2, 1.0, 1.9), (1, 2.0, 4.0)):
        pool = admin_pool(hv01, runspaces)
        try:
            first, second = PowerShell(pool), PowerShell(pool)
            first.add_script(f"Suspend-VM -VM (Get-VM -Id {WEB01}); 'a'")
            second.add_script(f"Suspend-VM -VM (Get-VM -Id {other}); 'b'")
            start = time.monotonic()
            first.begin_invoke()
            second.begin_invoke()
            for ps in (first, second):
                ps.end_invoke()
            elapsed = time.monotonic() - start
            assert at_least <= elapsed < below, (runspaces, elapsed)
            assert (first.output, second.output) == (["a"], ["b"])
            run_script(pool, f"Resume-VM -VM (Get-VM -Id {WEB01}); Resume-VM -VM (Get-VM -Id {other})")
        finally:
            pool.close()


# --- the JEA client's kept session: reads and actions on one pool ----------------------------------------

def test_the_jea_client_runs_reads_and_actions_on_one_kept_session(lab: dict[str, LabHost]) -> None:
    hv01 = lab["HV01"]
    olivia = client(hv01, "olivia")
    olivia.inventory()
    stats = hv01.server.stats
    starts, requests = stats.process_starts, stats.requests
    assert olivia.vm_state([WEB01]) == {WEB01: ("Running", "Operating normally")}
    assert olivia.power(WEB01, "save").vm_state == "Saved"
    assert stats.process_starts == starts == 1  # one session, opened by the first read
    assert stats.requests - requests == 6  # Command, Receive, Signal each
    assert hv01.endpoint.pools == 1
    olivia.close()
    assert hv01.endpoint.pools == 0


def test_a_jea_action_slower_than_the_timeout_is_pending_and_sent_once(
        lab: dict[str, LabHost]) -> None:
    hv01 = lab["HV01"]
    hv01.executor.host.durations.shutdown = 2.0
    olivia = hosts.JeaClient(config(hv01, timeout=1.0),
                             Credentials("LAB\\olivia", PASSWORDS["olivia"]))
    olivia.vm_state([WEB01])  # the session opens (the caller's token built) before the action
    outcome = olivia.power(WEB01, "shutdown")
    assert outcome.status == "pending" and "may still complete" in outcome.message
    assert olivia.vm_state([WEB01])[WEB01][0] == "Stopping"  # the same session, still open
    assert olivia.confirm(WEB01, {"Off"}, limit=5.0, interval=0.2).vm_state == "Off"
    assert len(hv01.executor.calls_of("Stop-VM")) == 1
    assert hv01.server.stats.process_starts == 1
    olivia.close()

"""The host hardening report: what host_hardening.ps1 answers (through the lab's cmdlets, by the
facts of host.toml [hardening]), its findings (each kind with a host that has it and one that does
not), the patch level against the other hosts, the JEA function for holders of policy.read, and
the review's exports and text."""
from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from console import jea
from console import review as core
from console.config import HostConfig
from console.errors import HostError
from console.hardening import (
    HostHardening, hardening_findings, patch_findings, summary,
)
from console.hosts import AdminClient, Credentials, JeaClient
from console.inventory import HostFacts
from console.policy import Policy
from lab.demo import demo_policy_text
from lab.hyperv import Durations
from lab.runner import Lab
from lab.world import load_world

TODAY = date(2026, 12, 2)
MACHINE = "S-1-5-21-11-22-33"
DOMAIN = "S-1-5-21-1000-2000-3000"


def doc(**changes: Any) -> dict[str, Any]:
    """A well-hardened host's answer, with `changes`."""
    base: dict[str, Any] = {
        "name": "HV09", "installation_type": "Server Core", "os_build": "20348.2340",
        "features": ["Hyper-V", "RSAT-Hyper-V-Tools", "Hyper-V-PowerShell", "PowerShell",
                     "Failover-Clustering"],
        "local_users": [{"name": "Administrator", "sid": f"{MACHINE}-500"}],
        "groups": [
            {"sid": "S-1-5-32-544", "members": [
                {"name": "HV09\\Administrator", "sid": f"{MACHINE}-500", "source": "Local",
                 "class": "User"},
                {"name": "LAB\\Domain Admins", "sid": f"{DOMAIN}-512", "source": "ActiveDirectory",
                 "class": "Group"}]},
            {"sid": "S-1-5-32-578", "members": [
                {"name": "LAB\\HV-Admins", "sid": f"{DOMAIN}-1204", "source": "ActiveDirectory",
                 "class": "Group"}]},
            {"sid": "S-1-5-32-555", "members": []}],
        "rdp_enabled": False, "rdp_by_policy": False,
        "listeners": [{"transport": "HTTP", "port": "5985", "address": "*", "enabled": True}],
        "endpoints": [{"name": "microsoft.powershell"}, {"name": "Microsoft.PowerShell32"},
                      {"name": "HvConsole"}],
        "unread": {}}
    base.update(changes)
    return base


def kinds(d: dict[str, Any]) -> list[str]:
    return [f.kind for f in hardening_findings("HV09", HostHardening.from_json(d), "HvConsole")]


def member(name: str, sid: str, source: str) -> dict[str, str]:
    return {"name": name, "sid": sid, "source": source, "class": "User"}


def test_a_well_hardened_host_has_no_finding() -> None:
    assert kinds(doc()) == []


def test_the_full_desktop_experience_is_a_finding_server_core_is_not() -> None:
    found = hardening_findings("HV03", HostHardening.from_json(doc(installation_type="Server")),
                               "HvConsole")
    assert [f.kind for f in found] == ["host-desktop"]
    assert found[0].summary.startswith("HV03 runs the full desktop experience")
    assert kinds(doc(installation_type="Server Core")) == []


def test_roles_beyond_hyper_v_are_named_what_it_needs_is_not() -> None:
    found = hardening_findings("HV09", HostHardening.from_json(doc(features=[
        "Hyper-V", "Web-Server", "hyper-v-powershell", "DHCP"])), "HvConsole")
    assert [f.kind for f in found] == ["host-extra-features"]
    assert found[0].objects == ("HV09", "Web-Server", "DHCP")


def test_local_accounts_in_hyper_v_administrators_are_a_high_finding() -> None:
    groups = doc()["groups"]
    groups[1]["members"] += [member("HV02\\hvadmin", f"{MACHINE}-1000", "Local"),
                             member("HV02\\backup", f"{MACHINE}-1001", "Local")]
    found = hardening_findings("HV02", HostHardening.from_json(doc(groups=groups)), "HvConsole")
    assert [(f.kind, f.severity) for f in found] == [("host-local-members", "high")]
    assert found[0].summary == ("HV02: 2 local account(s) are members of Hyper-V Administrators: "
                                "HV02\\hvadmin, HV02\\backup; use domain groups.")


def test_the_built_in_administrator_alone_is_no_local_member_finding() -> None:
    # It is always a member of Administrators; another local member is a finding.
    assert kinds(doc()) == []
    groups = doc()["groups"]
    groups[0]["members"].append(member("HV09\\helper", f"{MACHINE}-1003", "Local"))
    assert kinds(doc(groups=groups)) == ["host-local-members"]


def test_without_a_principal_source_the_name_tells_local_from_domain() -> None:
    """Before Server 2016 PrincipalSource is blank: HOST\\name is the host's own account."""
    groups = doc()["groups"]
    groups[1]["members"] = [member("LAB\\HV-Admins", f"{DOMAIN}-1204", ""),
                            member("HV09\\old", f"{MACHINE}-1009", "")]
    found = hardening_findings("HV09", HostHardening.from_json(doc(groups=groups)), "HvConsole")
    assert [f.objects for f in found] == [("HV09", "HV09\\old")]


def test_enabled_local_accounts_besides_the_built_in_one_are_a_low_finding() -> None:
    users = [{"name": "Administrator", "sid": f"{MACHINE}-500"},
             {"name": "svc", "sid": f"{MACHINE}-1000"}]
    found = hardening_findings("HV09", HostHardening.from_json(doc(local_users=users)), "HvConsole")
    assert [(f.kind, f.severity, f.objects) for f in found] == [
        ("host-local-accounts", "low", ("HV09", "svc"))]


def test_each_rdp_user_is_a_finding_when_rdp_is_allowed() -> None:
    groups = doc()["groups"]
    groups[2]["members"] = [member("LAB\\bob", f"{DOMAIN}-1150", "ActiveDirectory")]
    found = hardening_findings("HV01", HostHardening.from_json(doc(groups=groups, rdp_enabled=True)),
                               "HvConsole")
    assert [f.kind for f in found] == ["host-rdp-user"]
    assert found[0].summary == ("LAB\\bob may log on to HV01 over RDP; the console makes that "
                                "unnecessary.")
    # RDP off: the group's members cannot log on, no finding.
    assert kinds(doc(groups=groups, rdp_enabled=False)) == []


def test_rdp_allowed_for_administrators_only_is_a_low_finding() -> None:
    found = hardening_findings("HV09", HostHardening.from_json(
        doc(rdp_enabled=True, rdp_by_policy=True)), "HvConsole")
    assert [(f.kind, f.severity) for f in found] == [("host-rdp-enabled", "low")]
    assert "(set by Group Policy)" in found[0].summary


def test_an_endpoint_neither_windows_nor_the_consoles_is_a_finding() -> None:
    endpoints = [*doc()["endpoints"], {"name": "BuildTools"}]
    found = hardening_findings("HV03", HostHardening.from_json(doc(endpoints=endpoints)),
                               "HvConsole")
    assert [(f.kind, f.objects) for f in found] == [
        ("host-unexpected-endpoint", ("HV03", "BuildTools"))]
    assert kinds(doc(endpoints=[{"name": "microsoft.powershell.workflow"},
                                {"name": "HVCONSOLE"}])) == []


def test_parts_the_host_did_not_answer_are_a_low_finding_and_read_as_not_read() -> None:
    groups = doc()["groups"]
    groups[0] = {"sid": "S-1-5-32-544", "error": "An unspecified error occurred."}
    h = HostHardening.from_json(doc(endpoints=None, groups=groups,
                                    unread={"endpoints": "Access is denied."}))
    found = hardening_findings("HV09", h, "HvConsole")
    assert [f.kind for f in found] == ["host-hardening-unread"]
    assert "endpoints: Access is denied." in found[0].summary
    assert "group Administrators: An unspecified error occurred." in found[0].summary
    rows = dict(summary(h))
    assert rows["Endpoints"] == "not read"
    assert rows["Administrators"] == "not read: An unspecified error occurred."
    assert kinds(doc()) == []


def test_the_summary_marks_each_member_local_or_domain() -> None:
    rows = dict(summary(HostHardening.from_json(doc())))
    assert rows["Administrators"] == "HV09\\Administrator (local), LAB\\Domain Admins (domain)"
    assert rows["Remote Desktop"] == "off" and rows["Remote Desktop Users"] == "nobody"
    assert rows["WinRM listeners"] == "HTTP 5985"
    assert rows["Extra features"] == "none"


# --- patch level ------------------------------------------------------------------------------

def facts(name: str, build: str, day: date | None) -> HostFacts:
    return HostFacts(name, build, datetime(day.year, day.month, day.day, tzinfo=UTC) if day else None)


def test_a_host_behind_the_newest_revision_of_its_release_says_how_long_it_waited() -> None:
    found = patch_findings({"HV01": facts("HV01", "20348.2402", date(2026, 11, 20)),
                            "HV02": facts("HV02", "20348.2340", date(2026, 10, 1)),
                            "HV03": facts("HV03", "17763.5206", date(2026, 8, 1))}, TODAY, 60)
    assert [(f.kind, f.severity, f.objects) for f in found] == [
        ("patch-behind", "medium", ("HV02", "HV01"))]
    assert found[0].summary == ("HV02 runs 20348.2340, behind 20348.2402 on HV01: it has waited "
                                "12 day(s), since HV01 installed it on 2026-11-20.")


def test_a_long_wait_is_high_and_an_unknown_day_is_said() -> None:
    found = patch_findings({"HV01": facts("HV01", "20348.2402", date(2026, 8, 1)),
                            "HV02": facts("HV02", "20348.2340", None)}, TODAY, 60)
    assert [f.severity for f in found] == ["high"]
    found = patch_findings({"HV01": facts("HV01", "20348.2402", None),
                            "HV02": facts("HV02", "20348.2340", None)}, TODAY, 60)
    assert "has waited since an unknown day" in found[0].summary


def test_hosts_at_the_same_level_or_of_another_release_are_not_behind() -> None:
    assert patch_findings({"HV01": facts("HV01", "20348.2340", TODAY),
                           "HV02": facts("HV02", "20348.2340", TODAY),
                           "HV03": facts("HV03", "17763.9999", TODAY),
                           "HV04": facts("HV04", "", TODAY)}, TODAY, 60) == []


# --- the review: findings, text and exports ----------------------------------------------------

def test_the_review_carries_the_findings_and_each_host_into_its_exports() -> None:
    policy = Policy.from_text(demo_policy_text(), "policy.toml")
    groups = doc()["groups"]
    groups[2]["members"] = [member("LAB\\bob", f"{DOMAIN}-1150", "ActiveDirectory")]
    hardening = {"HV01": HostHardening.from_json(doc(name="HV01", groups=groups, rdp_enabled=True))}
    r = core.with_hardening(core.build_review(policy, {}, {}, today=TODAY), hardening)
    assert "host-rdp-user" in [f.kind for f in r.findings]
    order = [core.SEVERITIES.index(f.severity) for f in r.findings]
    assert order == sorted(order)
    data = json.loads(core.to_json(r))
    assert data["hardening"][0]["host"] == "HV01"
    assert data["hardening"][0]["remote_desktop_users"] == "LAB\\bob (domain)"
    assert any(f["kind"] == "host-rdp-user" for f in data["findings"])
    assert "host-rdp-user" in core.findings_csv(r)
    assert "LAB\\bob may log on to HV01 over RDP" in core.to_html(r)
    assert "Hardening of HV01:" in core.to_text(r)


# --- through the lab: the script, both endpoints -----------------------------------------------

def test_the_demo_world_has_one_example_of_each_finding() -> None:
    found = {}
    for lab_host in load_world().hosts:
        h = HostHardening.from_json(lab_host.host.operation("host_hardening", {}))
        for f in hardening_findings(lab_host.name, h, jea.ENDPOINT_NAME):
            found[f.kind] = f
    assert found["host-local-members"].summary.startswith(
        "HV02: 2 local account(s) are members of Hyper-V Administrators")
    assert found["host-desktop"].objects == ("HV03",)
    assert found["host-rdp-user"].objects == ("HV01", "LAB\\bob")
    assert found["host-unexpected-endpoint"].objects == ("HV03", "BuildTools")
    assert found["host-extra-features"].objects == ("HV03", "Web-Server", "Web-WebServer")


@pytest.fixture
def lab() -> Any:  # per test: the CLI test below starts the demo's own lab
    policy = Policy.from_text(demo_policy_text(), "policy.toml")
    with Lab.start(durations=Durations.instant(), jea_policy=policy) as running:
        yield running


def test_the_admin_endpoint_answers_its_administrator(lab: Any) -> None:
    client = AdminClient(HostConfig(name="HV02", url=lab.hosts["HV02"].url, endpoint="admin"),
                         Credentials("LAB\\adam", lab.credentials["LAB\\adam"]))
    try:
        h = client.host_hardening()
    finally:
        client.close()
    assert h.name == "HV02" and h.installation_type == "Server Core"
    members = h.group("S-1-5-32-578").members  # type: ignore[union-attr]
    assert [(m.name, m.source) for m in members] == [
        ("LAB\\HV-Admins", "ActiveDirectory"), ("HV02\\hvadmin", "Local"), ("HV02\\backup", "Local")]
    assert [(x.transport, x.port) for x in h.listeners or ()] == [("HTTP", 5985), ("HTTPS", 5986)]
    assert h.unread == ()


def test_the_jea_function_answers_policy_read_holders_only(lab: Any) -> None:
    def client(user: str) -> JeaClient:
        return JeaClient(HostConfig(name="HV01", url=lab.hosts["HV01"].url, endpoint="jea"),
                         Credentials(f"LAB\\{user}", lab.credentials[f"LAB\\{user}"]))

    rita = client("rita")  # reviewer: policy.read on everything
    try:
        h = rita.host_hardening()
    finally:
        rita.close()
    assert h.rdp_enabled is True
    assert [m.name for m in h.group("S-1-5-32-555").members] == ["LAB\\bob"]  # type: ignore[union-attr]
    olivia = client("olivia")  # owns VMs on HV01, holds no policy.read
    try:
        with pytest.raises(HostError, match="no grant gives policy.read"):
            olivia.host_hardening()
    finally:
        olivia.close()


def test_policy_read_reaches_the_endpoints_data_allow_and_deny() -> None:
    text = demo_policy_text() + (
        "\n[[grants]]\nprincipal = 'LAB\\olivia'\nsid = \"S-1-5-21-1000-2000-3000-1101\"\n"
        "role = \"reviewer\"\neverything = true\neffect = \"deny\"\n")
    grants = jea.host_grants(Policy.from_text(text, "policy.toml"), "HV01")
    assert {(g.principal, g.effect) for g in grants.review} >= {
        ("LAB\\HV-Reviewers", "allow"), ("LAB\\olivia", "deny")}
    reviewer = next(g.sid for g in grants.review if g.principal == "LAB\\HV-Reviewers")
    assert grants.may_read_hardening([reviewer], TODAY)
    assert not grants.may_read_hardening([reviewer, "S-1-5-21-1000-2000-3000-1101"], TODAY)
    assert not grants.may_read_hardening(["S-1-5-21-1000-2000-3000-1102"], TODAY)
    assert jea.HostGrants.from_data(grants.as_data()).review == grants.review


def test_hvconsole_review_reports_the_demo_hosts_hardening(tmp_path: Any, monkeypatch: Any,
                                                            capsys: Any) -> None:
    """`hvconsole review --demo` as the reviewer (the JEA endpoint, Get-HvcHostHardening)."""
    import io

    from hvconsole.cli import main
    out_file = tmp_path / "review.json"
    monkeypatch.setattr("sys.stdin", io.StringIO("rita-demo\n"))
    code = main(["review", "--demo", "--user", "rita", "--password-stdin", "--format", "json",
                 "--out", str(out_file)])
    err = capsys.readouterr().err
    assert code == 0, err
    data = json.loads(out_file.read_text(encoding="utf-8"))
    kinds = {(f["kind"], f["objects"][0]) for f in data["findings"]}
    assert {("host-rdp-user", "HV01"), ("host-local-members", "HV02"), ("host-desktop", "HV03"),
            ("host-unexpected-endpoint", "HV03")} <= kinds
    assert [h["host"] for h in data["hardening"]] == ["HV01", "HV02", "HV03"]
    monkeypatch.setattr("sys.stdin", io.StringIO("rita-demo\n"))
    assert main(["review", "--demo", "--user", "rita", "--password-stdin"]) == 0
    text = capsys.readouterr().out
    assert "LAB\\bob may log on to HV01 over RDP" in text and "Hardening of HV03:" in text

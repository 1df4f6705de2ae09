"""The delegation policy: evaluation, explanations, and the demo policy of the lab world."""
from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from console.identity import Group, Identity
from console.inventory import VM
from console.paths import LAB_DATA
from console.policy import (
    BUILTIN_ROLES, CLASSIFICATIONS, PRIVILEGES, Grant, HostEntry, Policy, Principal, Role, Scope,
    Target, VMDoc, classification_rank, normalize_sid,
)

TODAY = date(2026, 11, 26)
D = "S-1-5-21-1000-2000-3000-"
DOMAIN_USERS = Group(D + "513", "LAB\\Domain Users")


def account(name: str, rid: int, *groups: Group) -> Identity:
    return Identity(sid=f"{D}{rid}", name=f"LAB\\{name}", groups=(DOMAIN_USERS, *groups))


OLIVIA = account("olivia", 1101, Group(D + "1201", "LAB\\HV-Shop-Owners"))
HENRY = account("henry", 1102, Group(D + "1202", "LAB\\HV-Helpdesk"),
                Group(D + "1203", "LAB\\IT-Support", nested=True))
ADAM = account("adam", 1103, Group(D + "1204", "LAB\\HV-Admins"))
RITA = account("rita", 1104, Group(D + "1205", "LAB\\HV-Reviewers"))
BEA = account("bea", 1106, Group(D + "1206", "LAB\\HV-Build"))
HANNAH = account("hannah", 1107, Group(D + "1207", "LAB\\HR-Payroll"))

# The lab's inventory (docs/lab-world.md), the Replica copy of office-files included.
LAB_VMS = [
    Target("HV01", "42e4aaca-7231-5411-b96b-d03849b0dae1", "shop-web01"),
    Target("HV02", "080fa935-119d-5f94-bd91-af6a3ffc1820", "shop-web02"),
    Target("HV01", "a8c164c6-ea2b-525b-b0de-c3c08e182c75", "shop-app01"),
    Target("HV01", "606602fb-a784-5dc2-a658-664e33ff98a2", "shop-db01"),
    Target("HV02", "a2c68177-4057-539b-9428-2fbc40894332", "payroll-db"),
    Target("HV02", "58a006d8-4cd7-53ac-aa46-a10dc2e2cb10", "office-print"),
    Target("HV02", "bc797c1d-65e1-5032-8525-d184e732f820", "office-files"),
    Target("HV01", "bc797c1d-65e1-5032-8525-d184e732f820", "office-files"),  # Replica copy
    Target("HV03", "1b3c1181-a846-5987-a10a-850aabc945a5", "build-agent-01"),
    Target("HV03", "da59d30f-6c6b-573d-9c74-76e0920fc508", "build-agent-02"),
    Target("HV03", "73a32aa9-af87-512f-9d0f-a4b7cb52346b", "build-agent-03"),
    Target("HV03", "8573cf54-7277-5d6f-b6d0-c78bf9ed5a8c", "build-agent-04"),
    Target("HV03", "91a8a101-382a-54d5-8622-e182c03b2381", "build-agent-05"),
    Target("HV03", "48e46d42-5071-51e0-8572-f699c3fccf5e", "build-agent-05"),  # old copy
    Target("HV03", "aa1b7eff-d986-5c91-8fe6-f37064778c8c", "legacy-ftp"),
]
HELPDESK = BUILTIN_ROLES["helpdesk"]
OPERATOR = BUILTIN_ROLES["operator"]
OWNER = BUILTIN_ROLES["owner"]
CHECKPOINTS = {"vm.checkpoint.create", "vm.checkpoint.delete", "vm.checkpoint.apply"}


@pytest.fixture(scope="module")
def demo() -> Policy:
    return Policy.load(LAB_DATA / "policy.toml")


OLD_COPY = LAB_VMS[13]  # build-agent-05's undocumented namesake


def seen(policy: Policy, who: Identity, today: date = TODAY) -> dict[tuple[str, str], frozenset]:
    """(host, name) -> privileges of every visible VM; the old copy is named "old-copy"."""
    result = {}
    for vm, decision in policy.visible(who, LAB_VMS, today):
        key = (vm.host, "old-copy" if vm is OLD_COPY else vm.name)
        assert key not in result
        result[key] = decision.privileges
    return result


def names(*vms: Target) -> list[tuple[str, str]]:
    return [(vm.host, "old-copy" if vm is OLD_COPY else vm.name) for vm in vms]


# --- the demo world: "What each account sees" -------------------------------------------------

def test_demo_policy_loads_cleanly_with_digest_and_path(demo: Policy) -> None:
    import hashlib

    data = (LAB_DATA / "policy.toml").read_bytes()
    assert demo.digest == hashlib.sha256(data).hexdigest()
    assert demo.path == LAB_DATA / "policy.toml"
    assert len(demo.grants) == 11 and set(demo.hosts) == {"hv01", "hv02", "hv03"}
    assert demo.role_privileges("checkpointer") == CHECKPOINTS


def test_olivia_sees_the_shop_with_owner_rights(demo: Policy) -> None:
    assert seen(demo, OLIVIA) == {
        ("HV01", "shop-web01"): OWNER, ("HV02", "shop-web02"): OWNER,
        ("HV01", "shop-app01"): OWNER, ("HV01", "shop-db01"): OWNER,
        ("HV03", "legacy-ftp"): OPERATOR,
    }


def test_henry_sees_hv02_with_helpdesk_rights_but_never_payroll(demo: Policy) -> None:
    assert seen(demo, HENRY) == {
        ("HV02", "shop-web02"): HELPDESK, ("HV02", "office-print"): HELPDESK,
        ("HV02", "office-files"): HELPDESK, ("HV03", "legacy-ftp"): OPERATOR,
    }


def test_adam_sees_every_vm_with_every_privilege(demo: Policy) -> None:
    result = seen(demo, ADAM)
    assert len(result) == len(LAB_VMS)
    assert set(result.values()) == {frozenset(p for p in PRIVILEGES if p.startswith("vm."))}
    assert demo.global_decision(ADAM, TODAY).privileges == {
        "policy.read", "policy.modify", "audit.read"}


def test_rita_views_every_vm_and_reads_policy_and_audit(demo: Policy) -> None:
    result = seen(demo, RITA)
    assert len(result) == len(LAB_VMS)
    assert {k: v for k, v in result.items() if k[1] != "legacy-ftp"} == {
        key: {"vm.view"} for key in names(*LAB_VMS) if key[1] != "legacy-ftp"}
    assert demo.global_decision(RITA, TODAY).privileges == {"policy.read", "audit.read"}


def test_bea_operates_hv03_checkpoints_build_agents_and_views_office(demo: Policy) -> None:
    result = seen(demo, BEA)
    agents = {f"build-agent-0{i}" for i in range(1, 6)}
    expected = {key: OPERATOR for key in names(*LAB_VMS) if key[0] == "HV03"}
    # The old copy of build-agent-05 is undocumented: no tag, so no checkpoint rights.
    expected.update({("HV03", name): OPERATOR | CHECKPOINTS for name in agents})
    expected.update({("HV02", "office-print"): {"vm.view"}, ("HV02", "office-files"): {"vm.view"},
                     ("HV01", "office-files"): {"vm.view"}})
    assert result == expected
    assert result[("HV03", "old-copy")] == OPERATOR


def test_hannah_owns_payroll_db(demo: Policy) -> None:
    assert seen(demo, HANNAH) == {("HV02", "payroll-db"): OWNER, ("HV03", "legacy-ftp"): OPERATOR}


def test_every_signed_in_account_operates_legacy_ftp_by_name(demo: Policy) -> None:
    nobody_else = Identity(sid=D + "1999", name="LAB\\someone", groups=(DOMAIN_USERS,))
    decision = demo.evaluate(nobody_else, LAB_VMS[-1], TODAY)
    assert decision.privileges == OPERATOR
    assert all(r.grant.scope.by_name for r in decision.allowed_by["vm.view"])


def test_the_expired_grant_gives_nothing_and_the_expiring_one_ends_after_its_day(
        demo: Policy) -> None:
    # HV-Shop-Owners' operator grant on HV02 expired on 2026-10-31.
    assert demo.evaluate(OLIVIA, LAB_VMS[5], date(2026, 10, 31)).privileges == OPERATOR
    assert demo.evaluate(OLIVIA, LAB_VMS[5], TODAY).privileges == frozenset()
    # HV-Build's view of office is valid through 2026-12-03.
    assert ("HV02", "office-print") in seen(demo, BEA, date(2026, 12, 3))
    assert ("HV02", "office-print") not in seen(demo, BEA, date(2026, 12, 4))


# --- explanations ----------------------------------------------------------------------------

def test_explain_names_the_nested_group_the_role_and_the_scope(demo: Policy) -> None:
    decision = demo.evaluate(HENRY, LAB_VMS[5], TODAY)
    assert decision.explain("vm.start") == (
        "henry may start office-print: member of LAB\\IT-Support (nested group) → role helpdesk"
        " on host HV02")
    assert decision.explain("vm.turnoff") == (
        "henry may not turn off office-print: no grant gives it.")


def test_explain_shows_the_deny_that_beats_the_allow(demo: Policy) -> None:
    decision = demo.evaluate(HENRY, LAB_VMS[4], TODAY)  # payroll-db
    assert decision.privileges == frozenset()
    assert "vm.start" in decision.denied_by
    assert decision.explain("vm.view").startswith(
        "henry may not view payroll-db: member of LAB\\IT-Support (nested group) → deny role "
        "admin on VM payroll-db")
    assert decision.reasons("vm.view")[0].grant.is_deny


def test_explain_of_a_grant_to_the_user_and_of_global_privileges() -> None:
    policy = Policy(grants=[Grant(Principal("LAB\\rita", RITA.sid), "reviewer", Scope("everything"),
                                  expires=date(2027, 1, 1))])
    text = policy.global_decision(RITA, TODAY).explain()
    assert text.splitlines() == [
        "rita may read the policy: as LAB\\rita → role reviewer on everything until 2027-01-01",
        "rita may read the audit trail: as LAB\\rita → role reviewer on everything until "
        "2027-01-01",
    ]
    assert policy.evaluate(HENRY, LAB_VMS[0], TODAY).explain() == (
        "henry holds no privilege on shop-web01: no grant matches.")


# --- scope matching --------------------------------------------------------------------------

def policy_with(scope: Scope) -> Policy:
    return Policy(grants=[Grant(Principal("LAB\\HV-Build", D + "1206"), "viewer", scope)])


def test_host_and_cluster_names_ignore_case_vm_ids_are_exact() -> None:
    vm = VM(host="hv03", id="1b3c1181-a846-5987-a10a-850aabc945a5", name="b1", state="Off",
            cluster="Clu1")
    assert policy_with(Scope("host", "HV03")).evaluate(BEA, vm, TODAY).allows("vm.view")
    assert policy_with(Scope("cluster", "CLU1")).evaluate(BEA, vm, TODAY).allows("vm.view")
    assert policy_with(Scope("vm", vm.id)).evaluate(BEA, vm, TODAY).allows("vm.view")
    other = Target("hv03", "1b3c1181-a846-5987-a10a-850aabc945a6", "b1")
    assert not policy_with(Scope("vm", vm.id)).evaluate(BEA, other, TODAY).privileges
    assert not policy_with(Scope("host", "HV01")).evaluate(BEA, vm, TODAY).privileges


def test_a_vm_named_by_name_matches_any_case_and_can_be_narrowed_to_a_host() -> None:
    by_name = policy_with(Scope("vm", "Legacy-FTP", by_name=True))
    assert by_name.evaluate(BEA, Target("HV03", "x", "legacy-ftp"), TODAY).allows("vm.view")
    narrowed = policy_with(Scope("vm", "legacy-ftp", by_name=True, host="hv03"))
    assert narrowed.evaluate(BEA, Target("HV03", "x", "LEGACY-FTP"), TODAY).allows("vm.view")
    assert not narrowed.evaluate(BEA, Target("HV01", "x", "legacy-ftp"), TODAY).privileges


def test_application_and_tag_come_from_the_documentation_by_vm_id(demo: Policy) -> None:
    # A VM renamed on the host keeps its documentation, so its application still applies.
    renamed = Target("HV01", "42e4aaca-7231-5411-b96b-d03849b0dae1", "web-new")
    assert demo.evaluate(OLIVIA, renamed, TODAY).privileges == OWNER
    # A VM that only carries a documented name, not its id, gets nothing from application grants.
    impostor = Target("HV01", "00000000-0000-0000-0000-000000000001", "shop-web01")
    assert demo.evaluate(OLIVIA, impostor, TODAY).privileges == frozenset()


def test_a_sid_decides_not_the_name() -> None:
    policy = Policy(grants=[Grant(Principal("LAB\\HV-Build", D + "1206"), "owner",
                                  Scope("everything"))])
    recreated = Identity(sid=D + "1106", name="LAB\\bea",
                         groups=(Group(D + "9206", "LAB\\HV-Build"),))
    assert policy.evaluate(recreated, LAB_VMS[0], TODAY).privileges == frozenset()
    assert policy.evaluate(BEA, LAB_VMS[0], TODAY).privileges == OWNER


def test_global_privileges_come_only_from_grants_on_everything() -> None:
    policy = Policy(grants=[Grant(Principal("LAB\\HV-Build", D + "1206"), "admin",
                                  Scope("host", "HV03"))])
    assert policy.global_decision(BEA, TODAY).privileges == frozenset()
    vm = policy.evaluate(BEA, LAB_VMS[8], TODAY)
    assert vm.privileges == {p for p in PRIVILEGES if p.startswith("vm.")}


def test_the_evaluation_cache_follows_the_identity_and_the_day(demo: Policy) -> None:
    assert demo.evaluate(BEA, LAB_VMS[5], date(2026, 12, 3)).allows("vm.view")
    assert not demo.evaluate(BEA, LAB_VMS[5], date(2026, 12, 4)).allows("vm.view")
    assert not demo.evaluate(OLIVIA, LAB_VMS[5], date(2026, 12, 3)).allows("vm.view")


# --- helpers ----------------------------------------------------------------------------------

def test_classification_rank_orders_the_levels() -> None:
    assert [classification_rank(c) for c in CLASSIFICATIONS] == [0, 1, 2, 3]
    assert classification_rank("Restricted") > classification_rank("internal")
    with pytest.raises(ValueError, match="unknown classification 'secret'"):
        classification_rank("secret")


def test_builtin_roles_nest_as_designed() -> None:
    assert BUILTIN_ROLES["viewer"] < HELPDESK < OPERATOR < OWNER < BUILTIN_ROLES["admin"]
    assert BUILTIN_ROLES["reviewer"] == {"vm.view", "policy.read", "audit.read"}
    assert BUILTIN_ROLES["admin"] == set(PRIVILEGES) and len(PRIVILEGES) == 14


def test_console_access_is_the_owners_and_operators_not_helpdesks() -> None:
    assert "vm.console" in OWNER and "vm.console" in OPERATOR
    assert "vm.console" not in HELPDESK and "vm.console" not in BUILTIN_ROLES["viewer"]
    assert "vm.console" not in BUILTIN_ROLES["reviewer"]


def test_lookups(demo: Policy) -> None:
    assert demo.doc("42E4AACA-7231-5411-B96B-D03849B0DAE1").name == "shop-web01"
    assert demo.host("hv02").classification == "internal"
    assert demo.sid_of("lab\\it-support") == D + "1203"
    assert [d.vm_id for d in demo.docs_named("Payroll-DB")] == [
        "a2c68177-4057-539b-9428-2fbc40894332"]
    assert len(demo.active_grants(TODAY)) == 10 and len(demo.active_grants(date(2026, 10, 1))) == 11


def test_load_of_a_missing_file_is_a_policy_error(tmp_path: Path) -> None:
    from console.errors import PolicyError

    with pytest.raises(PolicyError) as raised:
        Policy.load(tmp_path / "absent.toml")
    assert [str(p) for p in raised.value.problems] == [
        f"{tmp_path / 'absent.toml'}:?: the policy file cannot be read: No such file or directory."]


# --- narrowing, written in a policy file ------------------------------------------------------

NARROWED = """\
[hosts.HV01]
classification = "internal"
[hosts.HV02]
classification = "internal"
cluster = "CL1"
[hosts.HV03]
classification = "internal"
cluster = "CL1"

[[grants]]
principal = 'LAB\\HV-Build'
sid = "S-1-5-21-1000-2000-3000-1206"
role = "operator"
vm_name = "legacy-ftp"
host = "HV03"

[[grants]]
principal = 'LAB\\HV-Build'
sid = "S-1-5-21-1000-2000-3000-1206"
role = "viewer"
vm_name = "build-agent-05"
host = "cl1"

[[grants]]
principal = 'LAB\\HV-Build'
sid = "S-1-5-21-1000-2000-3000-1206"
role = "helpdesk"
vm = "91A8A101-382A-54D5-8622-E182C03B2381"
host = "hv03"
"""


def test_a_vm_name_grant_narrowed_to_a_host_applies_on_that_host_only() -> None:
    policy = Policy.from_text(NARROWED)
    assert policy.evaluate(BEA, Target("HV03", "x", "legacy-ftp", "CL1"), TODAY).privileges == \
        OPERATOR
    # A namesake on another host, even on the same cluster, gets nothing from the grant.
    assert not policy.evaluate(BEA, Target("HV01", "y", "legacy-ftp"), TODAY).privileges
    assert not policy.evaluate(BEA, Target("HV02", "z", "legacy-ftp", "CL1"), TODAY).privileges


def test_a_vm_name_grant_narrowed_to_a_cluster_applies_on_its_nodes_only() -> None:
    policy = Policy.from_text(NARROWED)
    for host in ("HV02", "HV03"):
        assert policy.evaluate(BEA, Target(host, host, "build-agent-05", "CL1"), TODAY) \
            .privileges == {"vm.view"}
    assert not policy.evaluate(BEA, Target("HV01", "w", "build-agent-05"), TODAY).privileges
    assert not policy.evaluate(BEA, Target("HV01", "w", "build-agent-05", "CL2"), TODAY).privileges


def test_a_vm_grant_narrowed_to_a_host_does_not_follow_the_id_elsewhere() -> None:
    policy = Policy.from_text(NARROWED)
    agent = LAB_VMS[12]  # build-agent-05 on HV03
    assert policy.evaluate(BEA, agent, TODAY).privileges == HELPDESK
    replica = Target("HV01", agent.vm_id, agent.name)  # the same VM, replicated to HV01
    assert not policy.evaluate(BEA, replica, TODAY).privileges


def test_the_explanation_names_the_narrowing() -> None:
    policy = Policy.from_text(NARROWED)
    decision = policy.evaluate(BEA, Target("HV03", "x", "legacy-ftp"), TODAY)
    assert decision.explain("vm.turnoff") == (
        "bea may turn off legacy-ftp: member of LAB\\HV-Build → role operator on the VM named "
        "'legacy-ftp' on host HV03")
    decision = policy.evaluate(BEA, LAB_VMS[12], TODAY)
    assert decision.explain("vm.start") == (
        "bea may start build-agent-05: member of LAB\\HV-Build → role helpdesk on VM "
        "91a8a101-382a-54d5-8622-e182c03b2381 on host hv03")


def test_a_scope_that_is_not_narrowed_matches_every_host() -> None:
    # The JEA generator and the review ask this of every scope, narrowed or not.
    assert Scope("host", "HV01").matches_host("HV02", None)
    assert Scope("vm", "x", host="cl1").matches_host("HV09", "CL1")
    assert not Scope("vm", "x", host="cl1").matches_host("HV09", "CL2")


def test_application_and_tag_names_keep_their_case() -> None:
    vm_id = "42e4aaca-7231-5411-b96b-d03849b0dae1"
    docs = [VMDoc(vm_id, "shop-web01", application="Shop", tags=("Internet-Facing",))]
    web = Target("HV01", vm_id, "shop-web01")
    for scope in (Scope("application", "Shop"), Scope("tag", "Internet-Facing")):
        policy = Policy(grants=[Grant(Principal("LAB\\HV-Build", D + "1206"), "viewer", scope)],
                        vms=docs)
        assert policy.evaluate(BEA, web, TODAY).allows("vm.view"), scope


# --- explanations, continued ------------------------------------------------------------------

BEA_SELF = Principal("LAB\\bea", BEA.sid)
BUILD = Principal("LAB\\HV-Build", D + "1206")
WEB = LAB_VMS[0]  # shop-web01, documented below


def explained(*grants: Grant) -> Policy:
    return Policy(grants=grants, vms=[VMDoc(WEB.vm_id, "shop-web01")],
                  hosts=[HostEntry("HV01", "internal", cluster="CL1")])


def test_explain_says_as_whom_a_grant_to_the_person_herself_applies() -> None:
    decision = explained(Grant(BEA_SELF, "viewer", Scope("vm", WEB.vm_id)),
                         Grant(BEA_SELF, "operator", Scope("vm", WEB.vm_id), "deny")
                         ).evaluate(BEA, WEB, TODAY)
    assert decision.explain("vm.view") == (
        "bea may not view shop-web01: as LAB\\bea → deny role operator on VM shop-web01 "
        f"({WEB.vm_id})")
    decision = explained(Grant(BEA_SELF, "viewer", Scope("vm", WEB.vm_id))).evaluate(BEA, WEB, TODAY)
    assert decision.explain("vm.view") == (
        f"bea may view shop-web01: as LAB\\bea → role viewer on VM shop-web01 ({WEB.vm_id})")


def test_explain_gives_one_line_per_grant_and_reasons_the_grants_that_decide() -> None:
    decision = explained(Grant(BUILD, "viewer", Scope("cluster", "CL1")),
                         Grant(BUILD, "helpdesk", Scope("host", "HV01"))
                         ).evaluate(BEA, Target("HV01", WEB.vm_id, "shop-web01", "CL1"), TODAY)
    assert decision.explain("vm.view").splitlines() == [
        "bea may view shop-web01: member of LAB\\HV-Build → role viewer on cluster CL1",
        "bea may view shop-web01: member of LAB\\HV-Build → role helpdesk on host HV01"]
    assert [r.grant.role for r in decision.reasons("vm.view")] == ["viewer", "helpdesk"]
    assert [r.grant.role for r in decision.reasons("vm.start")] == ["helpdesk"]
    assert decision.reasons("vm.turnoff") == ()
    # Global privileges are not about the VM: the sentence does not name it.
    assert decision.explain("policy.read") == "bea may not read the policy: no grant gives it."


def test_explain_of_an_undocumented_vm_by_id_and_of_nobodys_global_privileges() -> None:
    other = "00000000-0000-0000-0000-000000000042"
    decision = explained(Grant(BUILD, "viewer", Scope("vm", other, host="HV01"))).evaluate(
        BEA, Target("HV01", other, ""), TODAY)
    assert decision.explain("vm.view") == (
        f"bea may view {other}: member of LAB\\HV-Build → role viewer on VM {other} on host HV01")
    assert explained().global_decision(BEA, TODAY).explain() == (
        "bea holds no privilege: no grant matches.")


def test_summary_counts_what_the_policy_holds() -> None:
    text = LAB_DATA.joinpath("policy.toml").read_text(encoding="utf-8")
    policy = Policy.from_text(text)
    import hashlib

    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert policy.digest == digest
    assert policy.summary() == (
        f"11 grants, 1 custom roles, {len(policy.vms)} VMs documented, 3 hosts; sha256 {digest[:16]}")
    # The built-in roles are there, as built-in roles.
    assert policy.roles["viewer"] == Role("viewer", frozenset({"vm.view"}), frozenset({"vm.view"}),
                                          builtin=True)


def test_unknown_roles_and_names_give_nothing(demo: Policy) -> None:
    assert demo.role_privileges("no-such-role") == frozenset()
    assert demo.sid_of("LAB\\nobody") is None


def test_a_sid_sub_authority_is_32_bits() -> None:
    assert normalize_sid("s-1-5-21-4294967295-1") == "S-1-5-21-4294967295-1"
    assert normalize_sid("S-1-5-4294967296-1") is None
    assert normalize_sid("S-1-5-21-1-4294967296") is None
    assert normalize_sid(" S-1-5-32-544 ") == "S-1-5-32-544"
    assert normalize_sid("LAB\\HV-Build") is None

"""Properties of evaluation that must hold for every policy (hypothesis)."""
from __future__ import annotations

from datetime import date, timedelta

import tomli_w
from hypothesis import given
from hypothesis import strategies as st

from console.identity import Group, Identity
from console.policy import (
    BUILTIN_ROLES, GLOBAL_PRIVILEGES, VM_PRIVILEGES, Grant, HostEntry, Policy, Principal, Scope,
    Target, VMDoc,
)

TODAY = date(2026, 11, 26)
D = "S-1-5-21-7-8-9-"
SIDS = [f"{D}{rid}" for rid in range(1100, 1106)]  # the identity holds the first three
ME = Identity(sid=SIDS[0], name="LAB\\me", groups=(
    Group(SIDS[1], "LAB\\g1"), Group(SIDS[2], "LAB\\g2", nested=True)))
OUTSIDER = Identity(sid=f"{D}2000", name="LAB\\outsider", groups=(Group(f"{D}2001", "LAB\\x"),))

HOSTS = [HostEntry("HV1", "internal", cluster="C1"), HostEntry("HV2", "internal")]
DOCS = [
    VMDoc("00000000-0000-0000-0000-000000000001", "a1", application="app", tags=("t1",)),
    VMDoc("00000000-0000-0000-0000-000000000002", "a2", application="app", tags=("t1", "t2")),
    VMDoc("00000000-0000-0000-0000-000000000003", "b1", application="other"),
]
VMS = [
    Target("HV1", DOCS[0].vm_id, "a1", "C1"), Target("hv2", DOCS[1].vm_id, "A2"),
    Target("HV2", DOCS[2].vm_id, "b1"), Target("HV1", "00000000-0000-0000-0000-000000000009",
                                                "undocumented", "C1"),
]

scopes = st.one_of(
    st.just(Scope("everything")),
    st.sampled_from([Scope("host", "hv1"), Scope("host", "HV2"), Scope("cluster", "c1")]),
    st.sampled_from([Scope("vm", d.vm_id) for d in DOCS]),
    st.sampled_from([Scope("vm", "A1", by_name=True), Scope("vm", "undocumented", by_name=True),
                     Scope("vm", "a2", by_name=True, host="HV2"),
                     Scope("vm", DOCS[0].vm_id, host="HV2"),
                     # Narrowed to a cluster, and to a host that is not the VM's.
                     Scope("vm", "undocumented", by_name=True, host="c1"),
                     Scope("vm", "b1", by_name=True, host="HV1")]),
    st.sampled_from([Scope("application", "app"), Scope("application", "other"),
                     Scope("tag", "t1"), Scope("tag", "t2")]),
)
expiries = st.one_of(st.none(), st.integers(-3, 3).map(lambda d: TODAY + timedelta(days=d)))


def grant_strategy(effect: str | None = None, sids: list[str] = SIDS) -> st.SearchStrategy[Grant]:
    return st.builds(
        lambda sid, role, scope, eff, expires: Grant(
            Principal(f"LAB\\p{sid[-4:]}", sid), role, scope, eff, "", expires),
        st.sampled_from(sids), st.sampled_from(sorted(BUILTIN_ROLES)), scopes,
        st.just(effect) if effect else st.sampled_from(["allow", "allow", "deny"]), expiries)


grant_lists = st.lists(grant_strategy(), max_size=12)


def make(grants: list[Grant]) -> Policy:
    return Policy(grants=grants, vms=DOCS, hosts=HOSTS)


def reference(grants: list[Grant], who: Identity, vm: Target | None) -> frozenset[str]:
    """Evaluation written plainly, grant by grant, to compare with the indexed one."""
    def matches(scope: Scope) -> bool:
        if vm is None:
            return scope.kind == "everything"
        doc = next((d for d in DOCS if d.vm_id == vm.vm_id), None)
        if scope.host and scope.host.lower() not in {vm.host.lower(), (vm.cluster or "").lower()}:
            return False
        return {
            "everything": True,
            "host": scope.value.lower() == vm.host.lower(),
            "cluster": scope.value.lower() == (vm.cluster or "").lower(),
            "vm": (scope.value.lower() == vm.name.lower()) if scope.by_name
            else scope.value == vm.vm_id,
            "application": bool(doc) and doc.application == scope.value,
            "tag": bool(doc) and scope.value in doc.tags,
        }[scope.kind]

    live = [g for g in grants if g.principal.sid in who.sids and matches(g.scope)
            and (g.expires is None or g.expires >= TODAY)]
    allowed = set().union(*(BUILTIN_ROLES[g.role] for g in live if g.effect == "allow"))
    denied = set().union(*(BUILTIN_ROLES[g.role] for g in live if g.effect == "deny"))
    universe = set(GLOBAL_PRIVILEGES) if vm is None else set(VM_PRIVILEGES)
    return frozenset((allowed - denied) & universe)


@given(grant_lists)
def test_indexed_evaluation_equals_the_plain_reading(grants: list[Grant]) -> None:
    policy = make(grants)
    for vm in VMS:
        assert policy.evaluate(ME, vm, TODAY).privileges == reference(grants, ME, vm)
    assert policy.global_decision(ME, TODAY).privileges == reference(grants, ME, None)
    assert [vm for vm, _ in policy.visible(ME, VMS, TODAY)] == [
        vm for vm in VMS if "vm.view" in reference(grants, ME, vm)]


@given(grant_lists, st.sampled_from(sorted(BUILTIN_ROLES)), st.sampled_from(SIDS[:3]), scopes)
def test_deny_always_wins(grants: list[Grant], role: str, sid: str, scope: Scope) -> None:
    deny = Grant(Principal("LAB\\d", sid), role, scope, "deny")
    as_allow = Grant(Principal("LAB\\d", sid), role, scope, "allow")
    policy = make([*grants, deny])
    for vm in VMS:
        covered = reference([as_allow], ME, vm)  # what the deny covers on this VM
        decision = policy.evaluate(ME, vm, TODAY)
        assert not decision.privileges & covered
        assert not decision.privileges & set(decision.denied_by)
    assert not policy.global_decision(ME, TODAY).privileges & reference([as_allow], ME, None)
    everything = make([*grants, Grant(Principal("LAB\\d", sid), role, Scope("everything"), "deny")])
    for vm in VMS:
        assert not everything.evaluate(ME, vm, TODAY).privileges & BUILTIN_ROLES[role]
    assert not everything.global_decision(ME, TODAY).privileges & BUILTIN_ROLES[role]


@given(grant_lists, grant_strategy(effect="allow"))
def test_adding_an_allow_never_removes_a_privilege(grants: list[Grant], extra: Grant) -> None:
    before, after = make(grants), make([*grants, extra])
    for vm in VMS:
        assert before.evaluate(ME, vm, TODAY).privileges <= after.evaluate(ME, vm, TODAY).privileges
    assert before.global_decision(ME, TODAY).privileges <= \
        after.global_decision(ME, TODAY).privileges


@given(grant_lists)
def test_an_identity_matching_no_grant_holds_nothing(grants: list[Grant]) -> None:
    policy = make(grants)
    assert all(not policy.evaluate(OUTSIDER, vm, TODAY).privileges for vm in VMS)
    assert not policy.global_decision(OUTSIDER, TODAY).privileges
    assert policy.visible(OUTSIDER, VMS, TODAY) == []


@given(grant_lists)
def test_every_privilege_is_explained_by_a_live_allow_of_this_identity(grants: list[Grant]) -> None:
    policy = make(grants)
    decisions = [policy.evaluate(ME, vm, TODAY) for vm in VMS] + [policy.global_decision(ME, TODAY)]
    for decision in decisions:
        for privilege in decision.privileges:
            reasons = decision.allowed_by[privilege]
            assert reasons
            for reason in reasons:
                grant = reason.grant
                assert grant.effect == "allow" and grant.active(TODAY)
                assert reason.via_sid == grant.principal.sid and reason.via_sid in ME.sids
                assert privilege in BUILTIN_ROLES[grant.role]
                assert reason.nested == (reason.via_sid == SIDS[2])
            assert decision.explain(privilege).startswith("me may ")
        for privilege, reasons in decision.denied_by.items():
            assert privilege not in decision.privileges
            assert all(r.grant.is_deny for r in reasons)


@given(st.lists(grant_strategy(sids=SIDS[:3]), max_size=12), grant_lists)
def test_expired_grants_grant_nothing(expired: list[Grant], grants: list[Grant]) -> None:
    past = [Grant(g.principal, g.role, g.scope, g.effect, "", TODAY - timedelta(days=1))
            for g in expired]
    only_past = make(past)
    assert all(not only_past.evaluate(ME, vm, TODAY).privileges for vm in VMS)
    assert not only_past.global_decision(ME, TODAY).privileges
    # Nor do expired denies take anything away.
    mixed, plain = make([*grants, *past]), make(grants)
    for vm in VMS:
        assert mixed.evaluate(ME, vm, TODAY).privileges == plain.evaluate(ME, vm, TODAY).privileges


@given(grant_lists)
def test_a_policy_written_as_toml_loads_back_and_decides_alike(grants: list[Grant]) -> None:
    def scope_keys(scope: Scope) -> dict[str, object]:
        if scope.kind == "everything":
            return {"everything": True}
        keys: dict[str, object] = {"vm_name" if scope.by_name else scope.kind: scope.value}
        return keys | ({"host": scope.host} if scope.host else {})

    document = {
        "hosts": {h.name: {"classification": h.classification}
                  | ({"cluster": h.cluster} if h.cluster else {}) for h in HOSTS},
        "vms": {d.vm_id: {"name": d.name, "classification": "internal",
                          "application": d.application, "tags": list(d.tags)} for d in DOCS},
        "grants": [{"principal": g.principal.name, "sid": g.principal.sid, "role": g.role,
                    "effect": g.effect} | scope_keys(g.scope)
                   | ({"expires": g.expires} if g.expires else {}) for g in grants],
    }
    text = tomli_w.dumps(document)
    loaded = Policy.from_text(text, "generated.toml")
    lines = text.splitlines()
    assert [lines[g.line - 1] for g in loaded.grants] == ["[[grants]]"] * len(grants)
    for vm in VMS:
        assert loaded.evaluate(ME, vm, TODAY).privileges == reference(grants, ME, vm)

"""The delegation review: one test per finding kind, a clean policy with none, the demo world's
promised findings, effective permissions against the policy engine, host impact and exports."""
from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser

import pytest
from hypothesis import given
from hypothesis import strategies as st

from console import review
from console.export import csv_rows
from console.identity import Identity
from console.inventory import VM, HostFacts, Storage
from lab.world import load_world
from console.paths import LAB_DATA
from console.policy import BUILTIN_ROLES, Policy
from console.review import ReviewSettings, build_review, findings, grant_matches

TODAY = date(2026, 11, 26)
D = "S-1-5-21-1000-2000-3000"
GiB = 1024 ** 3
ID = [f"00000000-0000-4000-8000-{n:012d}" for n in range(10)]

HOSTS = """
[hosts.HV01]
classification = "confidential"
[hosts.HV02]
classification = "confidential"
"""


def doc(n: int, name: str, app: str = "", tier: str = "", cls: str = "internal",
        owner: str = "Owner", contact: str = "owner@lab.example", tags: str = "") -> str:
    q = json.dumps  # a JSON string is a TOML basic string: quotes in names stay text
    out = f'\n[vms."{ID[n]}"]\nname = {q(name)}\nclassification = "{cls}"\n'
    if owner:
        out += f"owner = {q(owner)}\n"
    if contact:
        out += f"contact = {q(contact)}\n"
    if app:
        out += f'application = "{app}"\ntier = "{tier}"\n'
    if tags:
        out += f'tags = ["{tags}"]\n'
    return out


def grant(principal: str, sid: str, role: str, scope: str, effect: str = "allow",
          expires: str = "") -> str:
    out = f"\n[[grants]]\nprincipal = '{principal}'\nsid = \"{sid}\"\nrole = \"{role}\"\n{scope}\n"
    if effect != "allow":
        out += f'effect = "{effect}"\n'
    if expires:
        out += f"expires = {expires}\n"
    return out


def vm(n: int, host: str, name: str, **kw: object) -> VM:
    return VM(host=host, id=ID[n], name=name, state=str(kw.pop("state", "Running")), **kw)  # type: ignore[arg-type]


CLEAN_DOCS = doc(0, "web", "shop", "web") + doc(1, "db", "shop", "db")
CLEAN_GRANTS = (grant("LAB\\Web-Team", f"{D}-1300", "owner", f'vm = "{ID[0]}"')
                + grant("LAB\\HV-Helpdesk", f"{D}-1202", "helpdesk", 'host = "HV01"'))
CLEAN_INVENTORY = {"HV01": [vm(0, "HV01", "web")], "HV02": [vm(1, "HV02", "db")]}
FRESH = datetime(2026, 11, 1, tzinfo=UTC)
def place(free: int, total: int = 1000 * GiB, path: str = "D:\\") -> tuple[Storage, ...]:
    return (Storage(path, "volume", free, total),)


CLEAN_FACTS = {h: HostFacts(h, last_update=FRESH, storage=place(500 * GiB)) for h in ("HV01", "HV02")}


def kinds(policy_text: str, inventory: dict | None = None, facts: dict | None = None,
          **kw: object) -> list[str]:
    policy = Policy.from_text(HOSTS + policy_text)
    found = findings(policy, CLEAN_INVENTORY if inventory is None else inventory,
                     CLEAN_FACTS if facts is None else facts, today=TODAY, **kw)  # type: ignore[arg-type]
    return [f.kind for f in found]


def test_a_clean_policy_and_world_yield_no_finding() -> None:
    assert kinds(CLEAN_DOCS + CLEAN_GRANTS, domain="LAB") == []


def test_grant_to_a_local_principal() -> None:
    extra = grant("BUILTIN\\Hyper-V Administrators", "S-1-5-32-578", "viewer", 'host = "HV01"')
    extra += grant("HV01\\localadmin", "S-1-5-21-7-8-9-500", "viewer", 'host = "HV01"')
    found = kinds(CLEAN_DOCS + CLEAN_GRANTS + extra)
    assert found.count("local-principal") == 2


def test_a_principal_of_another_domain_is_local_when_the_domain_is_known() -> None:
    extra = grant("WS17\\bob", "S-1-5-21-7-8-9-1001", "viewer", 'host = "HV01"')
    assert "local-principal" in kinds(CLEAN_DOCS + CLEAN_GRANTS + extra, domain="LAB")
    assert "local-principal" not in kinds(CLEAN_DOCS + CLEAN_GRANTS + extra)


def test_vm_named_by_name() -> None:
    extra = grant("LAB\\Web-Team", f"{D}-1300", "viewer", 'vm_name = "db"')
    assert kinds(CLEAN_DOCS + CLEAN_GRANTS + extra) == ["vm-by-name"]


@pytest.mark.parametrize("principal,sid", [
    ("LAB\\Domain Users", f"{D}-513"), ("NT AUTHORITY\\Authenticated Users", "S-1-5-11"),
    ("Everyone", "S-1-1-0")])
def test_powerful_role_to_a_very_large_group_is_high(principal: str, sid: str) -> None:
    policy = Policy.from_text(HOSTS + CLEAN_DOCS + CLEAN_GRANTS
                              + grant(principal, sid, "operator", f'vm = "{ID[1]}"'))
    found = [f for f in findings(policy, CLEAN_INVENTORY, CLEAN_FACTS, today=TODAY)
             if f.kind == "over-broad"]
    assert [f.severity for f in found] == ["high"] and principal in found[0].objects[0]


def test_a_helpdesk_role_to_a_large_group_is_not_over_broad() -> None:
    extra = grant("LAB\\Domain Users", f"{D}-513", "viewer", f'vm = "{ID[1]}"')
    assert kinds(CLEAN_DOCS + CLEAN_GRANTS + extra) == []


def test_powerful_role_on_everything_is_over_broad() -> None:
    extra = grant("LAB\\Ops", f"{D}-1400", "operator", "everything = true")
    assert kinds(CLEAN_DOCS + CLEAN_GRANTS + extra) == ["over-broad"]
    # a reviewer on everything only reads
    extra = grant("LAB\\Audit", f"{D}-1401", "reviewer", "everything = true")
    assert kinds(CLEAN_DOCS + CLEAN_GRANTS + extra) == []


def test_grant_fully_shadowed_by_a_deny() -> None:
    extra = (grant("LAB\\Web-Team", f"{D}-1300", "helpdesk", f'vm = "{ID[1]}"')
             + grant("LAB\\Web-Team", f"{D}-1300", "admin", 'host = "HV02"', effect="deny"))
    assert kinds(CLEAN_DOCS + CLEAN_GRANTS + extra) == ["shadowed-grant"]


def test_a_partial_deny_does_not_shadow() -> None:
    extra = (grant("LAB\\Web-Team", f"{D}-1300", "helpdesk", 'application = "shop"')
             + grant("LAB\\Web-Team", f"{D}-1300", "admin", 'host = "HV02"', effect="deny"))
    assert kinds(CLEAN_DOCS + CLEAN_GRANTS + extra) == []


def test_deny_that_matches_nothing() -> None:
    extra = grant("LAB\\Web-Team", f"{D}-1300", "admin", f'vm = "{ID[7]}"', effect="deny")
    assert kinds(CLEAN_DOCS + CLEAN_GRANTS + extra) == ["deny-unused"]


def test_expired_and_expiring_grants() -> None:
    extra = (grant("LAB\\Web-Team", f"{D}-1300", "viewer", 'host = "HV02"', expires="2026-11-25")
             + grant("LAB\\Web-Team", f"{D}-1300", "viewer", 'host = "HV01"', expires="2026-12-10")
             + grant("LAB\\Web-Team", f"{D}-1300", "viewer", f'vm = "{ID[1]}"', expires="2026-12-11"))
    assert sorted(kinds(CLEAN_DOCS + CLEAN_GRANTS + extra)) == ["grant-expired", "grant-expiring"]


def test_vm_documentation_without_owner_or_contact() -> None:
    text = doc(0, "web", "shop", "web", owner="", contact="") + doc(1, "db", "shop", "db")
    policy = Policy.from_text(HOSTS + text + CLEAN_GRANTS)
    found = findings(policy, CLEAN_INVENTORY, CLEAN_FACTS, today=TODAY)
    assert [f.kind for f in found] == ["vm-doc-incomplete"]
    assert "owner and no contact" in found[0].summary


def test_undocumented_vm_and_documentation_of_a_vanished_vm() -> None:
    inventory = {"HV01": [vm(0, "HV01", "web"), vm(5, "HV01", "mystery")], "HV02": []}
    found = kinds(CLEAN_DOCS + CLEAN_GRANTS, inventory)
    assert sorted(found) == ["doc-orphan", "vm-undocumented"]


def test_host_classified_below_its_guest() -> None:
    text = doc(0, "web", "shop", "web") + doc(1, "db", "shop", "db", cls="restricted")
    policy = Policy.from_text(HOSTS + text + CLEAN_GRANTS)
    found = findings(policy, CLEAN_INVENTORY, CLEAN_FACTS, today=TODAY)
    assert [(f.kind, f.objects) for f in found] == [("host-classification", ("HV02", "db"))]


def test_tiers_of_one_application_on_one_host() -> None:
    inventory = {"HV01": [vm(0, "HV01", "web"), vm(1, "HV01", "db")], "HV02": []}
    assert kinds(CLEAN_DOCS + CLEAN_GRANTS, inventory) == ["tiers-together"]
    # a Replica copy is not a running tier
    inventory = {"HV01": [vm(0, "HV01", "web"), vm(1, "HV01", "db", replication_mode="Replica")],
                 "HV02": [vm(1, "HV02", "db")]}
    assert kinds(CLEAN_DOCS + CLEAN_GRANTS, inventory) == []


def test_checkpoints_above_a_share_of_free_space() -> None:
    inventory = {"HV01": [vm(0, "HV01", "web", checkpoint_bytes=300 * GiB)],
                 "HV02": [vm(1, "HV02", "db")]}
    assert kinds(CLEAN_DOCS + CLEAN_GRANTS, inventory) == ["checkpoint-storage"]
    loose = ReviewSettings(checkpoint_share=0.7)
    assert kinds(CLEAN_DOCS + CLEAN_GRANTS, inventory, settings=loose) == []


def test_volume_below_the_free_space_threshold() -> None:
    facts = dict(CLEAN_FACTS, HV02=HostFacts("HV02", last_update=FRESH, storage=place(50 * GiB)))
    assert kinds(CLEAN_DOCS + CLEAN_GRANTS, facts=facts) == ["low-free-space"]
    assert kinds(CLEAN_DOCS + CLEAN_GRANTS, facts=facts,
                 settings=ReviewSettings(min_free_share=0.04)) == []
    # Every place that holds VM files counts: a full Cluster Shared Volume beside a roomy C:, and
    # a share whose space the host cannot read.
    storage = (*place(500 * GiB, path="C:\\"),
               Storage("C:\\ClusterStorage\\Volume1", "volume", 20 * GiB, 1000 * GiB),
               Storage("\\\\files\\vms", "share"))
    facts = dict(CLEAN_FACTS, HV02=HostFacts("HV02", last_update=FRESH, storage=storage))
    policy = Policy.from_text(HOSTS + CLEAN_DOCS + CLEAN_GRANTS)
    found = [f for f in findings(policy, CLEAN_INVENTORY, facts, today=TODAY)
             if f.kind == "low-free-space"]
    assert len(found) == 1 and "ClusterStorage" in str(found[0])


def test_host_without_recent_updates() -> None:
    old = datetime.combine(TODAY - timedelta(days=61), datetime.min.time(), UTC)
    facts = dict(CLEAN_FACTS, HV01=HostFacts("HV01", last_update=old, storage=place(500 * GiB)))
    assert kinds(CLEAN_DOCS + CLEAN_GRANTS, facts=facts) == ["stale-updates"]
    assert kinds(CLEAN_DOCS + CLEAN_GRANTS, facts=facts,
                 settings=ReviewSettings(max_update_age_days=90)) == []


# --- the demo world ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def demo() -> tuple[Policy, dict, dict]:
    world = load_world()
    policy = Policy.load(LAB_DATA / "policy.toml")
    inventory = {h.name: [VM.from_json(h.name, d) for d in h.host.inventory()["vms"]]
                 for h in world.hosts}
    facts = {h.name: HostFacts.from_json(h.host.host_facts(["D:\\ISO\\"])) for h in world.hosts}
    return policy, inventory, facts


def test_demo_world_yields_the_findings_the_lab_world_promises(demo: tuple) -> None:
    policy, inventory, facts = demo
    today = datetime.now(UTC).date()  # the lab keeps update ages relative to now
    found = {(f.kind, f.objects[0]) for f in findings(policy, inventory, facts, today=TODAY,
                                                     domain="LAB")}
    kinds_ = {k for k, _ in found}
    assert ("tiers-together", "HV01") in found
    assert ("host-classification", "HV02") in found
    assert ("checkpoint-storage", "HV03") in found
    stale = findings(policy, inventory, facts, today=today)
    assert any(f.kind == "stale-updates" and f.objects == ("HV03",) for f in stale)
    assert ("vm-undocumented", "legacy-ftp (aa1b7eff-d986-5c91-8fe6-f37064778c8c)") in found
    assert ("vm-undocumented", "build-agent-05 (48e46d42-5071-51e0-8572-f699c3fccf5e)") in found
    over = [o for k, o in found if k == "over-broad"]
    assert any("Domain Users" in o and "legacy-ftp" in o for o in over)
    assert any(k == "vm-by-name" and "legacy-ftp" in o for k, o in found)
    assert any(k == "grant-expired" and "HV-Shop-Owners" in o for k, o in found)
    assert any(k == "grant-expiring" and "HV-Build" in o for k, o in found)
    assert "local-principal" not in kinds_ and "shadowed-grant" not in kinds_


def test_demo_permissions_answer_who_and_what(demo: tuple) -> None:
    policy, inventory, facts = demo
    r = build_review(policy, inventory, facts, today=TODAY)
    support = {p.vm_name for p in r.by_principal("LAB\\IT-Support") if p.vm_id}
    assert support == {"shop-web02", "office-print", "office-files"}
    assert "payroll-db" not in support
    who = {p.principal.name for p in r.by_vm("shop-web01")}
    assert who == {"LAB\\HV-Shop-Owners", "LAB\\HV-Admins", "LAB\\HV-Reviewers"}
    rita = [p for p in r.by_principal("LAB\\HV-Reviewers") if not p.vm_id]
    assert rita[0].privileges == ("policy.read", "audit.read")
    ftp = [p for p in r.by_vm("legacy-ftp") if p.principal.name == "LAB\\Domain Users"]
    assert "vm.turnoff" in ftp[0].privileges and "as LAB\\Domain Users" in ftp[0].why


def test_demo_host_impact_names_owners_and_other_tiers(demo: tuple) -> None:
    policy, inventory, _ = demo
    impact = review.host_impact(policy, inventory, "hv01")
    assert impact.host == "HV01"
    names = [g.vm.name for g in impact.guests]
    assert names == ["office-files", "shop-app01", "shop-db01", "shop-web01"]
    web = next(g for g in impact.guests if g.vm.name == "shop-web01")
    assert web.owner == "Olivia Owner" and web.tier == "web"
    assert ("shop-web02", "HV02") in {(o.vm_name, o.host) for o in web.other_tiers}
    assert set(impact.addresses) == {"olivia@lab.example", "it@lab.example"}
    assert impact.mailto.startswith("mailto:it@lab.example,olivia@lab.example?subject=")
    assert "shop-db01: Running, shop/db, owner Olivia Owner" in impact.notice


# --- effective permissions agree with the engine ----------------------------------------------

SIDS = [f"{D}-{1200 + n}" for n in range(4)] + ["S-1-1-0"]
ROLES = sorted(BUILTIN_ROLES)
VMS = [vm(n, "HV01" if n % 2 else "HV02", f"vm{n}") for n in range(4)]
SCOPES = ["everything = true", 'host = "HV01"', 'host = "HV02"', 'application = "a"',
          'tag = "t"', f'vm = "{ID[0]}"', 'vm_name = "VM1"', f'vm = "{ID[2]}"\nhost = "HV01"']


@st.composite
def policies(draw: st.DrawFn) -> str:
    text = HOSTS + doc(0, "vm0", "a", "x") + doc(1, "vm1", tags="t") + doc(2, "vm2", "a", "y")
    names = {sid: f"LAB\\G{n}" if sid != "S-1-1-0" else "Everyone" for n, sid in enumerate(SIDS)}
    for _ in range(draw(st.integers(1, 8))):
        sid = draw(st.sampled_from(SIDS))
        text += grant(names[sid], sid, draw(st.sampled_from(ROLES)),
                      draw(st.sampled_from(SCOPES)),
                      effect=draw(st.sampled_from(["allow", "allow", "deny"])),
                      expires=draw(st.sampled_from(["", "", "2026-11-25", "2026-11-27"])))
    return text


@given(policies())
def test_effective_permissions_agree_with_evaluate(text: str) -> None:
    policy = Policy.from_text(text)
    inventory = {"HV01": [v for v in VMS if v.host == "HV01"],
                 "HV02": [v for v in VMS if v.host == "HV02"]}
    per_vm, per_global = review.effective_permissions(policy, inventory, TODAY)
    refs = review.principals(policy)
    assert len(per_vm) == len(refs) * len(VMS) and len(per_global) == len(refs)
    for p in per_vm:
        decision = policy.evaluate(Identity(p.principal.sid, p.principal.name),
                                   next(v for v in VMS if v.id == p.vm_id), TODAY)
        assert set(p.privileges) == decision.privileges
    for p in per_global:
        decision = policy.global_decision(Identity(p.principal.sid, p.principal.name), TODAY)
        assert set(p.privileges) == decision.privileges


@given(policies())
def test_grant_scope_matching_agrees_with_the_engine(text: str) -> None:
    # One grant at a time, evaluated alone: it gives its role's VM privileges exactly where
    # grant_matches says it reaches.
    policy = Policy.from_text(text)
    for g in policy.grants:
        alone = Policy(roles=policy.roles, grants=[replace(g, effect="allow", expires=None)],
                       vms=policy.vms.values(), hosts=policy.hosts.values())
        for v in VMS:  # every built-in role gives vm.view
            held = alone.evaluate(Identity(g.principal.sid, "x"), v, TODAY).privileges
            assert bool(held) == grant_matches(policy, g, v)


# --- exports ----------------------------------------------------------------------------------

HOSTILE = '=HYPERLINK("http://x")<script>alert(1)</script>'


def hostile_review() -> review.Review:
    text = (doc(0, HOSTILE, "shop", "web", owner="-Mallory <b>", contact='m@x.io,"evil@y.io"')
            + doc(1, "db", "shop", "db"))
    policy = Policy.from_text(HOSTS + text + CLEAN_GRANTS + grant(
        "LAB\\Ops", f"{D}-1400", "operator", "everything = true"))
    inventory = {"HV01": [vm(0, "HV01", HOSTILE), vm(1, "HV01", "db")]}
    return build_review(policy, inventory, CLEAN_FACTS, today=TODAY)


def test_csv_exports_parse_back_to_the_same_rows() -> None:
    r = hostile_review()
    for text, header, rows in (
            (review.findings_csv(r), review.FINDING_HEADER, review.finding_rows(r)),
            (review.permissions_csv(r), review.PERMISSION_HEADER,
             review.permission_rows((*r.global_permissions, *r.permissions))),
            (review.impact_csv(r), review.IMPACT_HEADER, review.impact_rows(r.impacts[0]))):
        parsed = csv_rows(text)
        assert parsed[0] == header
        assert parsed[1:] == [["" if c is None else str(c) for c in row] for row in rows]
        assert len(parsed) > 1
    assert "'=HYPERLINK" in review.impact_csv(r)  # guarded against spreadsheet formulas


def test_json_export_holds_every_section() -> None:
    data = json.loads(review.to_json(hostile_review()))
    assert data["date"] == "2026-11-26"
    assert {f["kind"] for f in data["findings"]} >= {"over-broad", "tiers-together"}
    assert any(p["vm"] == HOSTILE for p in data["permissions"])
    assert data["hosts"][0]["guests"][0]["owner"] in ("-Mallory <b>", "Owner")


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append(tag)
        self.hrefs = getattr(self, "hrefs", []) + [v for k, v in attrs if k == "href"]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_report_escapes_untrusted_text_and_orders_sections() -> None:
    page = review.to_html(hostile_review())
    parser = _Text()
    parser.feed(page)
    assert "script" not in parser.tags and "b" not in parser.tags
    text = "".join(parser.text)
    assert HOSTILE in text and "-Mallory <b>" in text
    assert text.index("Findings") < text.index("Permission matrix") < text.index("downtime impact")
    assert "@media print" in page
    # each address a separate recipient, the quote never ends the attribute early
    assert "mailto:m@x.io,evil@y.io,owner@lab.example?subject=Planned" in [
        h.split("%20maintenance")[0] for h in parser.hrefs]


NASTY = """<script>alert("x & y")</script> & 'single' "double" &amp; \\ é"""


class _Places(HTMLParser):
    """Where a text lands in the page: (section, tag) for text, (section, attribute) for
    attribute values, the section being the id of the h2 above."""

    def __init__(self, wanted: str) -> None:
        super().__init__(convert_charrefs=True)
        self.wanted, self.section, self.open = wanted, "", [""]
        self.places: set[tuple[str, str]] = set()
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.add(tag)
        self.section = dict(attrs).get("id", self.section) if tag == "h2" else self.section
        self.open.append(tag)
        self.places |= {(self.section, k) for k, v in attrs if v and self.wanted in v}

    def handle_endtag(self, tag: str) -> None:
        if tag in self.open:
            del self.open[len(self.open) - 1 - self.open[::-1].index(tag):]

    def handle_data(self, data: str) -> None:
        if self.wanted in data:
            self.places.add((self.section, self.open[-1]))


def test_html_report_escapes_a_hostile_name_wherever_it_lands() -> None:
    # One text full of markup, quotes, ampersands, a backslash and non-ASCII as a VM's name, its
    # owner and a principal: no caller escapes it, the template's autoescape does, everywhere.
    principal = json.dumps("LAB\\" + NASTY)  # a JSON string is a TOML basic string
    text = (doc(0, NASTY, "shop", "web", owner=NASTY) + doc(1, "db", "shop", "db")
            + f'\n[[grants]]\nprincipal = {principal}\nsid = "{D}-1400"\nrole = "operator"\n'
              "everything = true\n")
    policy = Policy.from_text(HOSTS + text + CLEAN_GRANTS)
    inventory = {"HV01": [vm(0, "HV01", NASTY), vm(1, "HV01", "db")]}
    page = review.to_html(build_review(policy, inventory, CLEAN_FACTS, today=TODAY))
    assert "<script" not in page and NASTY not in page
    parser = _Places(NASTY)
    parser.feed(page)
    assert parser.tags <= {"html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p",
                           "code", "table", "thead", "tbody", "tr", "th", "td", "span", "br", "a",
                           "pre"}
    assert parser.places >= {
        ("findings", "td"),  # a finding's objects
        ("permissions", "th"), ("permissions", "td"), ("permissions", "title"),  # principal, VM
        ("impact", "td"), ("impact", "pre")}  # the guest table and the notice to its owners


# --- against a real directory (Samba AD DC) ---------------------------------------------------

@pytest.mark.samba
def test_directory_findings_and_transitive_members(samba_dc) -> None:  # type: ignore[no-untyped-def]
    from console.directory import LdapDirectory

    with LdapDirectory(samba_dc.config()).session("alice", samba_dc.passwords["alice"]) as s:
        sid = {n: s.resolve(f"LAB\\{n}").sid for n in ("dan", "erin", "HV-Helpdesk", "IT-Support")}
        text = (CLEAN_DOCS
                + grant("LAB\\dan", sid["dan"], "viewer", f'vm = "{ID[0]}"')
                + grant("LAB\\erin", sid["erin"], "viewer", f'vm = "{ID[0]}"')
                + grant("LAB\\Gone-Group", f"{D}-9999", "viewer", f'vm = "{ID[0]}"')
                + grant("LAB\\HV-Build", f"{D}-9998", "viewer", f'vm = "{ID[0]}"')
                + grant("LAB\\HV-Helpdesk", sid["HV-Helpdesk"], "viewer", f'vm = "{ID[1]}"')
                + grant("LAB\\IT-Support", sid["IT-Support"], "helpdesk", 'host = "HV01"'))
        policy = Policy.from_text(HOSTS + text)
        found = {(f.kind, f.objects[0].split(" ")[0])
                 for f in findings(policy, CLEAN_INVENTORY, CLEAN_FACTS, s, TODAY, domain="LAB")}
        assert found == {("principal-disabled", "LAB\\dan"), ("principal-expired", "LAB\\erin"),
                         ("principal-missing", "LAB\\Gone-Group"),
                         ("principal-sid-mismatch", "LAB\\HV-Build")}
        identity, rows = review.person_permissions(policy, s, "LAB\\alice", CLEAN_INVENTORY, TODAY)
        groups = {g.name: g.nested for g in identity.groups}
        assert groups == {"LAB\\HV-Helpdesk": False, "LAB\\IT-Support": True}
        web = next(r for r in rows if r.vm_name == "web")
        assert "vm.start" in web.privileges and "member of LAB\\IT-Support (nested group)" in web.why


# --- host facts: only for a grant on the host or one of its VMs ---------------------------------------

def test_host_facts_are_read_only_where_the_person_holds_a_grant(demo: tuple) -> None:
    from lab.directory import LabDirectory

    policy, inventory, facts = demo
    people = {name: LabDirectory().sign_in(name, f"{name}-demo")
              for name in ("hannah", "henry", "olivia", "rita")}

    def reached(name: str) -> set[str]:
        return {h for h, vms in inventory.items()
                if review.holds_grant_on_host(policy, people[name], h, vms, TODAY)}

    # hannah owns payroll-db (HV02); legacy-ftp (HV03) is every Domain User's.
    assert reached("hannah") == {"HV02", "HV03"}
    assert reached("henry") == {"HV02", "HV03"}  # helpdesk on HV02
    assert reached("olivia") == {"HV01", "HV02", "HV03"}  # shop-web02 runs on HV02
    assert reached("rita") == {"HV01", "HV02", "HV03"}  # a reviewer of everything

    class Pool:
        asked: list[str] = []

        def inventory_all(self) -> object:
            hosts = {h: type("R", (), {"vms": vms, "error": None}) for h, vms in inventory.items()}
            return type("Result", (), {"errors": {}, "hosts": hosts})

        def client(self, name: str) -> object:
            Pool.asked.append(name)
            return type("Client", (), {"host_facts": staticmethod(lambda library: facts[name])})

    read = review.read_hosts(Pool(), policy, people["hannah"])
    assert sorted(Pool.asked) == ["HV02", "HV03"] and sorted(read.facts) == ["HV02", "HV03"]
    assert sorted(read.inventory) == ["HV01", "HV02", "HV03"] and read.failed == {}

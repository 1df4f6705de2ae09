"""Validation of policy files: every problem is reported with its file, line and a sentence."""
from __future__ import annotations

from pathlib import Path

import pytest

from console.errors import PolicyError
from console.policy import Policy

# Lines 1-12; each test appends from line 13 on.
BASE = """\
[hosts.HV01]
classification = "internal"
iso_library = ['D:\\ISO\\']

[vms."42e4aaca-7231-5411-b96b-d03849b0dae1"]
name = "shop-web01"
classification = "confidential"
application = "shop"
tags = ["web"]

[roles.checkpointer]
privileges = ["vm.checkpoint.create"]
"""

GRANT = """\
[[grants]]
principal = 'LAB\\HV-Helpdesk'
sid = "S-1-5-21-1000-2000-3000-1202"
role = "helpdesk"
"""  # lines 13-16 when appended to BASE


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError) as raised:
        Policy.load(path)
    return [str(p).replace(str(path), "policy.toml") for p in raised.value.problems]


def test_the_base_loads(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(BASE + GRANT + 'host = "hv01"\n', encoding="utf-8")
    policy = Policy.load(path)
    assert policy.grants[0].line == 13 and policy.grants[0].scope.value == "hv01"
    assert policy.doc("42e4aaca-7231-5411-b96b-d03849b0dae1").line == 5
    assert policy.host("HV01").line == 1 and policy.roles["checkpointer"].line == 11


def test_malformed_toml_names_its_line(tmp_path: Path) -> None:
    assert problems(tmp_path, BASE + GRANT + "host = HV01\n") == [
        "policy.toml:17: the file is not valid TOML: Invalid value."]


def test_unterminated_text(tmp_path: Path) -> None:
    assert problems(tmp_path, BASE + GRANT + 'host = "HV01\n') == [
        "policy.toml:17: the file is not valid TOML: Illegal character '\\n'."]
    assert problems(tmp_path, BASE + GRANT + 'note = """open\nstill open\n') == [
        "policy.toml:18: the file is not valid TOML: Unterminated string at the end of the file."]


def test_duplicate_table_is_a_toml_error(tmp_path: Path) -> None:
    assert problems(tmp_path, BASE + '[hosts.HV01]\nclassification = "public"\n') == [
        "policy.toml:13: the file is not valid TOML: Cannot declare ('hosts', 'HV01') twice."]


def test_unknown_privilege_in_a_role(tmp_path: Path) -> None:
    text = BASE.replace('["vm.checkpoint.create"]', '["vm.checkpoint.create", "vm.strat"]')
    assert problems(tmp_path, text) == [
        "policy.toml:12: unknown privilege 'vm.strat' in role 'checkpointer' "
        "(did you mean 'vm.start'?)."]


def test_unknown_role_in_a_grant(tmp_path: Path) -> None:
    text = BASE + GRANT.replace('"helpdesk"', '"helpdsk"') + "everything = true\n"
    assert problems(tmp_path, text) == [
        "policy.toml:16: the grant on line 13 names unknown role 'helpdsk' "
        "(did you mean 'helpdesk'?)."]


def test_a_role_cycle(tmp_path: Path) -> None:
    text = BASE + '[roles.a]\nextends = ["b"]\n[roles.b]\nextends = ["a", "viewer"]\n'
    assert problems(tmp_path, text) == [
        "policy.toml:14: roles extend each other in a cycle: a → b → a."]


def test_a_role_extending_an_unknown_role(tmp_path: Path) -> None:
    assert problems(tmp_path, BASE + '[roles.a]\nextends = ["operater"]\n') == [
        "policy.toml:14: role 'a' extends unknown role 'operater' (did you mean 'operator'?)."]


def test_a_role_extending_others_holds_their_privileges(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(BASE + '[roles.a]\nextends = ["checkpointer", "helpdesk"]\n'
                    'privileges = ["vm.media"]\n', encoding="utf-8")
    role = Policy.load(path).roles["a"]
    assert role.privileges == {"vm.view", "vm.start", "vm.shutdown", "vm.reset", "vm.media",
                               "vm.checkpoint.create"}
    assert role.declared == {"vm.media"} and role.extends == ("checkpointer", "helpdesk")


def test_a_builtin_role_cannot_be_redefined(tmp_path: Path) -> None:
    assert problems(tmp_path, BASE + '[roles.viewer]\nprivileges = ["vm.start"]\n') == [
        "policy.toml:13: role 'viewer' is built in and cannot be redefined; "
        "give the new role another name."]


def test_a_grant_on_an_unknown_host(tmp_path: Path) -> None:
    assert problems(tmp_path, BASE + GRANT + 'host = "HV1"\n') == [
        "policy.toml:17: the grant on line 13 names host 'HV1', which is not in the hosts table "
        "(did you mean 'hv01'?)."]


def test_a_grant_on_an_unknown_application(tmp_path: Path) -> None:
    assert problems(tmp_path, BASE + GRANT + 'application = "shp"\n') == [
        "policy.toml:17: the grant on line 13 names application 'shp', but no VM documentation "
        "names it (did you mean 'shop'?)."]


def test_a_grant_on_an_unknown_tag_or_cluster(tmp_path: Path) -> None:
    assert problems(tmp_path, BASE + GRANT + 'tag = "db"\n' + GRANT + 'cluster = "C1"\n') == [
        "policy.toml:17: the grant on line 13 names tag 'db', but no VM documentation carries it.",
        "policy.toml:22: the grant on line 18 names cluster 'C1', but no host in the hosts table "
        "belongs to it."]


def test_duplicate_vm_documentation(tmp_path: Path) -> None:
    text = BASE + '[vms."42E4AACA-7231-5411-B96B-D03849B0DAE1"]\nname = "web"\n' \
                  'classification = "public"\n'
    assert problems(tmp_path, text) == [
        "policy.toml:13: VM 42e4aaca-7231-5411-b96b-d03849b0dae1 is documented twice "
        "(also on line 5); keep one description."]


def test_vm_documentation_under_a_name_instead_of_an_id(tmp_path: Path) -> None:
    assert problems(tmp_path, BASE + '[vms.web02]\nname = "web02"\nclassification = "public"\n') \
        == ["policy.toml:13: 'web02' is not a VM id: document a VM under its id (a GUID such as "
            "[vms.\"42e4aaca-7231-5411-b96b-d03849b0dae1\"])."]


def test_bad_dates(tmp_path: Path) -> None:
    text = (BASE + GRANT + 'everything = true\nexpires = "2026-02-30"\n'
            + GRANT + "everything = true\nexpires = 2026-12-01T10:00:00\n")
    assert problems(tmp_path, text) == [
        "policy.toml:18: expires of the grant on line 13 is not a valid date: '2026-02-30' "
        "(write it as 2026-12-31).",
        "policy.toml:24: expires of the grant on line 19 must be a date (YYYY-MM-DD) without a "
        "time."]


def test_an_impossible_toml_date(tmp_path: Path) -> None:
    assert problems(tmp_path, BASE + GRANT + "everything = true\nexpires = 2026-02-30\n") == [
        "policy.toml:18: the file is not valid TOML: Invalid date or datetime."]


def test_a_sid_that_is_not_a_sid(tmp_path: Path) -> None:
    text = BASE + GRANT.replace('"S-1-5-21-1000-2000-3000-1202"', "'LAB\\HV-Helpdesk'") \
        + "everything = true\n"
    assert problems(tmp_path, text) == [
        "policy.toml:15: 'LAB\\HV-Helpdesk' of the grant on line 13 is not a SID (a SID looks "
        "like S-1-5-21-1000-2000-3000-1202)."]


def test_one_sid_one_name(tmp_path: Path) -> None:
    other = GRANT.replace("HV-Helpdesk", "HV-Support")
    assert problems(tmp_path, BASE + GRANT + "everything = true\n" + other
                    + "everything = true\n") == [
        "policy.toml:18: SID S-1-5-21-1000-2000-3000-1202 is named 'LAB\\HV-Support' here but "
        "'LAB\\HV-Helpdesk' on line 13; one SID names one principal."]


def test_unknown_keys_everywhere(tmp_path: Path) -> None:
    text = ("version = 2\n" + BASE.replace('tags = ["web"]', 'tags = ["web"]\nowner_mail = "x"')
            + GRANT + "everything = true\nexpiry = 2027-01-01\n")
    assert problems(tmp_path, text) == [
        "policy.toml:1: unknown key 'version': a policy holds only roles, grants, vms, hosts.",
        "policy.toml:11: unknown key 'owner_mail' in VM 'shop-web01' (did you mean 'owner'?); "
        "allowed keys: name, owner, contact, classification, application, tier, tags, notes.",
        "policy.toml:20: unknown key 'expiry' in the grant on line 15 (did you mean 'expires'?); "
        "allowed keys: principal, sid, role, effect, note, expires, everything, host, cluster, "
        "vm, vm_name, application, tag."]


def test_missing_required_keys(tmp_path: Path) -> None:
    text = (BASE.replace('name = "shop-web01"\n', "")
            + "[[grants]]\nprincipal = 'LAB\\HV-Helpdesk'\nsid = \"S-1-5-21-1-2-3-4\"\n"
            "everything = true\n")
    assert problems(tmp_path, text) == [
        "policy.toml:5: VM '42e4aaca-7231-5411-b96b-d03849b0dae1' has no 'name', which is "
        "required.",
        "policy.toml:12: the grant on line 12 has no 'role', which is required."]


def test_a_grant_without_a_scope_or_with_two(tmp_path: Path) -> None:
    assert problems(tmp_path, BASE + GRANT + GRANT + 'host = "HV01"\napplication = "shop"\n') == [
        "policy.toml:13: the grant on line 13 has no scope: give one of everything = true, host, "
        "cluster, vm, vm_name, application or tag.",
        "policy.toml:22: the grant on line 17 has several scopes (host, application); a grant "
        "has one scope, so split it."]


def test_a_vm_scope_must_be_an_id_and_a_name_uses_vm_name(tmp_path: Path) -> None:
    assert problems(tmp_path, BASE + GRANT + 'vm = "shop-web01"\n') == [
        "policy.toml:17: vm 'shop-web01' of the grant on line 13 is not a VM id (a GUID); to name "
        "a VM by its name, write vm_name instead."]


def test_bad_classifications(tmp_path: Path) -> None:
    text = BASE.replace('"confidential"', '"secret"').replace(
        'classification = "internal"', 'classification = "Internal"')
    assert problems(tmp_path, text) == [
        "policy.toml:7: classification 'secret' of VM 'shop-web01' is not one of public, "
        "internal, confidential, restricted."]


def test_wrong_effect_and_wrong_types(tmp_path: Path) -> None:
    text = BASE + GRANT + 'everything = "yes"\neffect = "block"\nnote = 3\n'
    assert problems(tmp_path, text) == [
        "policy.toml:17: everything of the grant on line 13 must be true; to narrow the grant, "
        "name another scope instead.",
        "policy.toml:18: effect of the grant on line 13 must be \"allow\" or \"deny\", not "
        "'block'.",
        "policy.toml:19: 'note' of the grant on line 13 must be non-empty text in quotes."]


def test_every_problem_is_collected_in_line_order(tmp_path: Path) -> None:
    text = (BASE.replace('"internal"', '"inner"')
            + GRANT.replace('"helpdesk"', '"nobody"') + 'host = "HV9"\n')
    found = problems(tmp_path, text)
    assert [p.split(":")[1] for p in found] == ["2", "16", "17"]


def test_a_policy_with_errors_is_never_half_applied(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(BASE + GRANT + "everything = true\n" + GRANT + 'host = "HV9"\n', "utf-8")
    with pytest.raises(PolicyError) as raised:
        Policy.load(path)
    assert len(raised.value.problems) == 1
    assert str(raised.value).startswith(f"{path}:22: the grant on line 18 names host 'HV9'")


def test_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_bytes(BASE.encode() + b'[hosts.HV02]\nclassification = "caf\xe9"\n')
    with pytest.raises(PolicyError) as raised:
        Policy.load(path)
    assert str(raised.value.problems[0]) == f"{path}:14: the policy file is not UTF-8 text."


def test_from_text_names_the_file_it_was_given() -> None:
    with pytest.raises(PolicyError) as raised:
        Policy.from_text(BASE + GRANT + 'host = "HV9"\n', "central.toml")
    assert str(raised.value.problems[0]).startswith("central.toml:17: ")


def test_the_example_of_the_documentation_loads_and_decides_as_its_comments_say() -> None:
    from datetime import date

    from console.identity import Group, Identity
    from console.policy import Target

    docs = (Path(__file__).resolve().parent.parent / "docs" / "policy.md").read_text("utf-8")
    example = docs.split("```toml\n", 1)[1].split("```", 1)[0]
    policy = Policy.from_text(example, "docs/policy.md")
    assert policy.role_privileges("checkpointer") == {
        "vm.view", "vm.checkpoint.create", "vm.checkpoint.delete", "vm.checkpoint.apply"}
    support = Identity("S-1-5-21-1000-2000-3000-1102", "LAB\\henry",
                       groups=(Group("S-1-5-21-1000-2000-3000-1203", "LAB\\IT-Support"),))
    payroll = Target("HV02", "a2c68177-4057-539b-9428-2fbc40894332", "payroll-db", "CL1")
    other = Target("HV02", "00000000-0000-0000-0000-000000000042", "print", "CL1")
    assert not policy.evaluate(support, payroll).privileges
    assert policy.evaluate(support, other).allows("vm.start")
    jane = Identity("S-1-5-21-1000-2000-3000-1310", "LAB\\ext-jane")
    web = Target("HV01", "42e4aaca-7231-5411-b96b-d03849b0dae1", "shop-web01")
    assert policy.evaluate(jane, web, date(2026, 12, 31)).allows("vm.checkpoint.apply")
    assert not policy.evaluate(jane, web, date(2027, 1, 1)).privileges


# --- every field read as written --------------------------------------------------------------

FULL = """\
[hosts.HV01]
classification = "Confidential"
iso_library = ['d:\\iso\\', '\\\\files\\iso\\approved\\']
contact = " Hyper-V team <hyperv@lab.example> "
cluster = "CL1"

[hosts.HV02]
classification = "internal"

[vms."{42E4AACA-7231-5411-B96B-D03849B0DAE1}"]
name = "shop-web01"
owner = "Olivia Owner"
contact = "olivia@lab.example"
classification = "RESTRICTED"
application = "shop"
tier = "web"
tags = ["internet-facing", " pci "]
notes = "Month-end run."

[roles.checkpointer]
description = "Take and apply checkpoints"
extends = ["viewer"]
privileges = ["vm.checkpoint.create", "vm.checkpoint.apply"]

[[grants]]
principal = 'LAB\\HV-Helpdesk'
sid = "s-1-5-21-1000-2000-3000-1202"
role = "checkpointer"
effect = "deny"
note = "Ticket 42"
expires = 2026-12-31
application = "shop"

[[grants]]
principal = "Everyone"
sid = "S-1-1-0"
role = "viewer"
vm_name = "shop-web01"
host = "cl1"
"""


def test_every_field_is_read_as_written() -> None:
    from datetime import date

    from console.policy import Grant, HostEntry, Principal, Role, Scope, VMDoc

    policy = Policy.from_text(FULL, "full.toml")
    assert list(policy.hosts.values()) == [
        HostEntry("HV01", "confidential", ("d:\\iso\\", "\\\\files\\iso\\approved\\"),
                  "Hyper-V team <hyperv@lab.example>", "CL1", 1),
        HostEntry("HV02", "internal", line=7)]
    # The id is normalised to what Hyper-V reports: lower case, no braces.
    assert list(policy.vms.values()) == [VMDoc(
        "42e4aaca-7231-5411-b96b-d03849b0dae1", "shop-web01", "Olivia Owner",
        "olivia@lab.example", "restricted", "shop", "web", ("internet-facing", "pci"),
        "Month-end run.", 10)]
    assert policy.roles["checkpointer"] == Role(
        "checkpointer", frozenset({"vm.view", "vm.checkpoint.create", "vm.checkpoint.apply"}),
        frozenset({"vm.checkpoint.create", "vm.checkpoint.apply"}), ("viewer",),
        "Take and apply checkpoints", line=20)
    assert policy.grants == (
        Grant(Principal("LAB\\HV-Helpdesk", "S-1-5-21-1000-2000-3000-1202"), "checkpointer",
              Scope("application", "shop"), "deny", "Ticket 42", date(2026, 12, 31), 25),
        Grant(Principal("Everyone", "S-1-1-0"), "viewer",
              Scope("vm", "shop-web01", by_name=True, host="cl1"), line=34))


# --- problems with every kind of value --------------------------------------------------------

def test_values_of_the_wrong_type_are_named_with_their_table_and_line(tmp_path: Path) -> None:
    text = """\
[hosts.HV01]
classification = "internal"
iso_library = 'D:\\ISO\\'
contact = 1
cluster = 2

[vms."42e4aaca-7231-5411-b96b-d03849b0dae1"]
name = "shop-web01"
classification = "internal"
owner = 1
contact = 2
application = 3
tier = 4
tags = "web"
notes = 5

[vms."080fa935-119d-5f94-bd91-af6a3ffc1820"]
name = "shop-web02"
classification = "internal"
tags = [1]

[roles.a]
privileges = "vm.view"
extends = [""]
description = 1

[[grants]]
principal = 1
sid = 2
role = "viewer"
cluster = 3

[[grants]]
principal = " "
sid = "S-1-5-21-1000-2000-3000-1202"
role = "viewer"
tag = " "

[[grants]]
principal = 'LAB\\HV-Helpdesk'
sid = "S-1-5-21-1000-2000-3000-1202"
role = "viewer"
vm_name = "shop-web01"
host = 4
"""
    assert problems(tmp_path, text) == [
        "policy.toml:3: 'iso_library' of host 'HV01' must be a list of text, such as "
        "iso_library = [\"a\", \"b\"].",
        "policy.toml:4: 'contact' of host 'HV01' must be non-empty text in quotes.",
        "policy.toml:5: 'cluster' of host 'HV01' must be non-empty text in quotes.",
        "policy.toml:10: 'owner' of VM 'shop-web01' must be non-empty text in quotes.",
        "policy.toml:11: 'contact' of VM 'shop-web01' must be non-empty text in quotes.",
        "policy.toml:12: 'application' of VM 'shop-web01' must be non-empty text in quotes.",
        "policy.toml:13: 'tier' of VM 'shop-web01' must be non-empty text in quotes.",
        "policy.toml:14: 'tags' of VM 'shop-web01' must be a list of text, such as "
        "tags = [\"a\", \"b\"].",
        "policy.toml:15: 'notes' of VM 'shop-web01' must be non-empty text in quotes.",
        "policy.toml:20: 'tags' of VM 'shop-web02' must be a list of text, such as "
        "tags = [\"a\", \"b\"].",
        "policy.toml:23: 'privileges' of role 'a' must be a list of text, such as "
        "privileges = [\"a\", \"b\"].",
        "policy.toml:24: 'extends' of role 'a' must be a list of text, such as "
        "extends = [\"a\", \"b\"].",
        "policy.toml:25: 'description' of role 'a' must be non-empty text in quotes.",
        "policy.toml:28: 'principal' of the grant on line 27 must be non-empty text in quotes.",
        "policy.toml:29: 'sid' of the grant on line 27 must be non-empty text in quotes.",
        "policy.toml:31: 'cluster' of the grant on line 27 must be non-empty text in quotes.",
        "policy.toml:34: 'principal' of the grant on line 33 must be non-empty text in quotes.",
        "policy.toml:37: 'tag' of the grant on line 33 must be non-empty text in quotes.",
        "policy.toml:44: 'host' of the grant on line 39 must be non-empty text in quotes."]


def test_missing_classification_principal_and_sid(tmp_path: Path) -> None:
    text = BASE.replace('classification = "internal"\n', "") + (
        "[[grants]]\nrole = \"viewer\"\neverything = true\n")
    assert problems(tmp_path, text) == [
        "policy.toml:1: host 'HV01' has no 'classification', which is required.",
        "policy.toml:12: the grant on line 12 has no 'principal', which is required.",
        "policy.toml:12: the grant on line 12 has no 'sid', which is required."]


def test_a_classification_close_to_a_known_one_is_hinted(tmp_path: Path) -> None:
    assert problems(tmp_path, BASE.replace('"confidential"', '"Confidental"')) == [
        "policy.toml:7: classification 'Confidental' of VM 'shop-web01' is not one of public, "
        "internal, confidential, restricted (did you mean 'confidential'?)."]


def test_a_principal_must_name_its_domain_unless_well_known(tmp_path: Path) -> None:
    text = (BASE + GRANT.replace("LAB\\HV-Helpdesk", "HV-Helpdesk") + "everything = true\n"
            + GRANT.replace("LAB\\HV-Helpdesk", "Everyone").replace(
                "S-1-5-21-1000-2000-3000-1202", "S-1-1-0") + "everything = true\n")
    assert problems(tmp_path, text) == [
        "policy.toml:14: principal 'HV-Helpdesk' of the grant on line 13 must be written "
        "DOMAIN\\name, such as 'LAB\\HV-Helpdesk'."]


def test_one_name_one_sid(tmp_path: Path) -> None:
    other = GRANT.replace("LAB\\HV-Helpdesk", "lab\\hv-helpdesk").replace("1202", "1302")
    assert problems(tmp_path, BASE + GRANT + "everything = true\n" + other
                    + "everything = true\n") == [
        "policy.toml:18: 'lab\\hv-helpdesk' has SID S-1-5-21-1000-2000-3000-1302 here but "
        "S-1-5-21-1000-2000-3000-1202 on line 13; check which one the directory holds."]


def test_a_grant_missing_its_sid_is_not_also_a_sid_mismatch(tmp_path: Path) -> None:
    no_sid = GRANT.replace('sid = "S-1-5-21-1000-2000-3000-1202"\n', "")
    assert problems(tmp_path, BASE + GRANT + "everything = true\n" + no_sid
                    + "everything = true\n") == [
        "policy.toml:18: the grant on line 18 has no 'sid', which is required."]


def test_a_host_described_twice_in_another_case(tmp_path: Path) -> None:
    text = (BASE + '[hosts.hv01]\nclassification = "public"\n'
            '[hosts.HV02]\nclassification = "top"\n')
    assert problems(tmp_path, text) == [
        "policy.toml:13: host 'hv01' is described twice (also as 'HV01'; host names ignore case).",
        "policy.toml:16: classification 'top' of host 'HV02' is not one of public, internal, "
        "confidential, restricted."]


def test_iso_library_folders_must_be_absolute_windows_paths(tmp_path: Path) -> None:
    ok = ("d:\\iso\\", "\\\\files\\iso\\", "E:\\")
    for folder in ok:
        text = BASE.replace("'D:\\ISO\\'", f"'{folder}'")
        assert Policy.from_text(text).host("HV01").iso_library == (folder,)
    text = BASE.replace("['D:\\ISO\\']", "['ISO', '\\\\.\\pipe\\x']")
    assert problems(tmp_path, text) == [
        f"policy.toml:3: ISO library folder '{folder}' of host 'HV01' must be an absolute "
        "Windows path, such as 'D:\\ISO\\' or '\\\\server\\share\\ISO\\'."
        for folder in ("ISO", "\\\\.\\pipe\\x")]


def test_problems_in_roles_keep_coming_after_a_builtin_redefinition(tmp_path: Path) -> None:
    text = (BASE + '[roles.viewer]\nprivileges = ["vm.start"]\n'
            '[roles.empty]\ndescription = "nothing yet"\ncolour = "red"\n')
    assert problems(tmp_path, text) == [
        "policy.toml:13: role 'viewer' is built in and cannot be redefined; "
        "give the new role another name.",
        "policy.toml:15: role 'empty' has neither 'privileges' nor 'extends', so it would grant "
        "nothing.",
        "policy.toml:17: unknown key 'colour' in role 'empty'; allowed keys: privileges, extends, "
        "description."]


def test_unknown_keys_of_a_host(tmp_path: Path) -> None:
    assert problems(tmp_path, BASE.replace("[hosts.HV01]\n", "[hosts.HV01]\nclster = 'C1'\n")) \
        == ["policy.toml:2: unknown key 'clster' in host 'HV01' (did you mean 'cluster'?); "
            "allowed keys: classification, iso_library, contact, cluster."]


def test_sections_of_the_wrong_shape(tmp_path: Path) -> None:
    assert problems(tmp_path, 'hosts = "HV01"\ngrants = "all"\n') == [
        "policy.toml:1: 'hosts' must be a table of tables, such as [hosts.NAME].",
        "policy.toml:2: 'grants' must be written as [[grants]] tables."]
    assert problems(tmp_path, BASE + '[vms]\nweb = "shop-web01"\n') == [
        "policy.toml:14: 'vms.web' must be a table, such as [vms.\"web\"]."]
    assert problems(tmp_path, "grants = [1, 2]\n" + BASE) == [
        "policy.toml:1: the grant on line 1 must be a [[grants]] table.",
        "policy.toml:1: the grant on line 1 must be a [[grants]] table."]


def test_narrowing_to_an_unknown_host_is_hinted(tmp_path: Path) -> None:
    assert problems(tmp_path, BASE + GRANT + 'vm_name = "shop-web01"\nhost = "HV1"\n') == [
        "policy.toml:18: the grant on line 13 names host 'HV1', which is neither in the hosts "
        "table nor a cluster of its hosts (did you mean 'hv01'?)."]


# --- lines of problems, whatever the TOML looks like ------------------------------------------

def test_lines_are_counted_through_multi_line_text(tmp_path: Path) -> None:
    text = (BASE + GRANT + 'note = """\nfirst line\n[hosts.HV09]\n"""\nhost = "HV9"\n'
            + GRANT + "note = '''\n[[grants]]\n'''\ncluster = \"C9\"\n"
            + GRANT + 'note = """one line"""\ntag = "db"\n')
    assert problems(tmp_path, text) == [
        "policy.toml:21: the grant on line 13 names host 'HV9', which is not in the hosts table.",
        "policy.toml:29: the grant on line 22 names cluster 'C9', but no host in the hosts table "
        "belongs to it.",
        "policy.toml:35: the grant on line 30 names tag 'db', but no VM documentation carries it."]


def test_a_comment_does_not_open_a_multi_line_text(tmp_path: Path) -> None:
    text = BASE + GRANT + '# a long note can be written as note = """ ...\nhost = "HV9"\n'
    assert problems(tmp_path, text) == [
        "policy.toml:18: the grant on line 13 names host 'HV9', which is not in the hosts table."]


def test_dotted_keys_and_inline_tables_are_located(tmp_path: Path) -> None:
    text = ('[hosts]\nHV01.classification = "internal"\nHV01.iso_library = ["ISO"]\n'
            'HV02 = { classification = "secret" }\n')
    assert problems(tmp_path, text) == [
        "policy.toml:3: ISO library folder 'ISO' of host 'HV01' must be an absolute Windows "
        "path, such as 'D:\\ISO\\' or '\\\\server\\share\\ISO\\'.",
        "policy.toml:4: classification 'secret' of host 'HV02' is not one of public, internal, "
        "confidential, restricted."]


def test_a_toml_error_at_the_end_of_a_one_line_text() -> None:
    with pytest.raises(PolicyError) as raised:
        Policy.from_text('note = "open')
    assert [str(p) for p in raised.value.problems] == [
        "<policy>:1: the file is not valid TOML: Unterminated string at the end of the file."]


def test_from_text_digests_the_text() -> None:
    import hashlib

    assert Policy.from_text(BASE).digest == hashlib.sha256(BASE.encode("utf-8")).hexdigest()

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

"""The JEA endpoint files: golden bytes, determinism, what a policy change changes, and checks
on the parsed files (every parameter constrained, the caller checked first, nothing else visible),
and the generated grants deciding exactly as the policy does."""
from __future__ import annotations

import os
import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from console import jea, scripts
from console.cli import main
from console.identity import Identity
from console.lab.psrp import param_specs
from console.lab.world import load_world
from console.labdirectory import LabDirectory
from console.paths import POWERSHELL
from console.policy import VM_PRIVILEGES, Policy, Target
from tests.lab.test_scripts import CLM_TYPES

GOLDEN = Path(__file__).parent / "golden" / "jea"
POLICY = GOLDEN / "policy.toml"
HOSTS = ("HV01", "HV02", "HV03")
USERS = {"olivia": "olivia-demo", "henry": "henry-demo", "adam": "adam-demo",
         "rita": "rita-demo", "bea": "bea-demo", "hannah": "hannah-demo"}


@pytest.fixture(scope="module")
def policy() -> Policy:
    return Policy.load(POLICY)


def parsed(policy: Policy, host: str, name: str) -> dict:
    return jea.parse_psd1(jea.generate(policy, host)[name].decode("utf-8"))


@pytest.mark.parametrize("host", HOSTS)
def test_files_match_the_golden_files(policy: Policy, host: str) -> None:
    files = jea.generate(policy, host)
    folder = GOLDEN / host
    if os.environ.get("HVCONSOLE_UPDATE_GOLDEN"):
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (folder / name).write_bytes(data)
    for name, data in files.items():
        assert data == (folder / name).read_bytes(), (
            f"{host}/{name} differs from the golden file; if the change is intended, run with "
            f"HVCONSOLE_UPDATE_GOLDEN=1 and review the diff")


def test_same_policy_same_bytes_on_any_day(policy: Policy) -> None:
    again = Policy.from_text(POLICY.read_text(encoding="utf-8"))
    assert jea.generate(policy, "HV02") == jea.generate(again, "HV02")
    for data in jea.generate(policy, "HV02").values():
        assert data.startswith(b"\xef\xbb\xbf")  # Windows PowerShell 5.1 needs the BOM for UTF-8
        assert date.today().isoformat().encode() not in data


def test_a_revoked_grant_changes_only_the_grants_and_the_digest(policy: Policy) -> None:
    text = POLICY.read_text(encoding="utf-8")
    grant = re.search(r"\[\[grants\]\]\nprincipal = 'LAB\\HR-Payroll'[^\[]*", text)
    assert grant, "the sample policy's HR-Payroll grant"
    revoked = Policy.from_text(text.replace(grant.group(0), ""))
    before, after = jea.generate(policy, "HV02"), jea.generate(revoked, "HV02")
    lines = {n: (before[n].decode().splitlines(), after[n].decode().splitlines()) for n in before}
    old_psrc, new_psrc = lines[jea.PSRC_FILE]
    assert [(a, b) for a, b in zip(old_psrc, new_psrc) if a != b] == [
        (f"    Description = 'HvConsole operations on HV02, policy sha256 {policy.digest}'",
         f"    Description = 'HvConsole operations on HV02, policy sha256 {revoked.digest}'")]
    old_pssc, new_pssc = parsed(policy, "HV02", jea.PSSC_FILE), parsed(revoked, "HV02", jea.PSSC_FILE)
    assert set(old_pssc["RoleDefinitions"]) - set(new_pssc["RoleDefinitions"]) == {"LAB\\HR-Payroll"}
    old_grants = jea.HostGrants.parse(before[jea.GRANTS_FILE].decode())
    new_grants = jea.HostGrants.parse(after[jea.GRANTS_FILE].decode())
    assert [g for g in old_grants.grants if g not in new_grants.grants] == [
        g for g in old_grants.grants if g.principal == "LAB\\HR-Payroll"]
    assert new_grants.digest == revoked.digest != old_grants.digest


def test_session_configuration(policy: Policy) -> None:
    pssc = parsed(policy, "HV03", jea.PSSC_FILE)
    assert pssc["SessionType"] == "RestrictedRemoteServer"
    assert pssc["LanguageMode"] == "NoLanguage"
    assert pssc["RunAsVirtualAccount"] is True
    assert pssc["RunAsVirtualAccountGroups"] == ["Hyper-V Administrators"]
    assert pssc["TranscriptDirectory"] == jea.TRANSCRIPTS
    grants = jea.host_grants(policy, "HV03")
    assert set(pssc["RoleDefinitions"]) == {g.principal for g in grants.grants if g.effect == "allow"}
    assert all(v == {"RoleCapabilities": ["HvConsole"]} for v in pssc["RoleDefinitions"].values())
    assert "LAB\\HV-Build" in pssc["RoleDefinitions"]  # operator on host HV03


def test_only_the_console_functions_are_visible(policy: Policy) -> None:
    psrc = parsed(policy, "HV01", jea.PSRC_FILE)
    assert psrc["VisibleCmdlets"] == [] and psrc["VisibleExternalCommands"] == []
    assert psrc["VisibleProviders"] == []
    assert psrc["VisibleFunctions"] == list(jea.FUNCTION_NAMES)
    assert [f["Name"] for f in psrc["FunctionDefinitions"]] == list(jea.FUNCTION_NAMES)


def _bodies(policy: Policy) -> dict[str, str]:
    psrc = parsed(policy, "HV01", jea.PSRC_FILE)
    return {f["Name"]: f["ScriptBlock"].text for f in psrc["FunctionDefinitions"]}


def test_no_parameter_is_unconstrained(policy: Policy) -> None:
    seen = 0
    for name, body in _bodies(policy).items():
        for spec in param_specs(body):
            seen += 1
            assert spec.type in ("guid", "guid[]", "int", "string"), (name, spec)
            if spec.type == "string":
                assert spec.choices or (spec.pattern and spec.length), (name, spec)
            if spec.type == "int":
                assert spec.range, (name, spec)
            if spec.type == "guid[]":
                assert spec.count, (name, spec)
    assert seen == 13  # VMState 1, Power 2, Checkpoint 4, Media 6


def test_every_function_checks_the_caller_before_anything_else(policy: Policy) -> None:
    for name, body in _bodies(policy).items():
        after_params = body[jea.skip_code(body, body.index("param(") + 6, ")"):].lstrip()
        assert after_params.startswith(jea.CALLER_CHECK.replace("\n", "\r\n")), name
        rest = after_params[len(jea.CALLER_CHECK.replace("\n", "\r\n")):]
        decision = rest.index("return}")  # the refusal ends the function
        assert "HvcDeny" in rest[:decision] and ("HvcRights" in rest[:decision]
                                                 or "hvcMine" in rest[:decision]), name
        for acting in ("Hyper-V\\", "& {"):
            assert acting not in rest[:decision] or acting == "Hyper-V\\" and \
                "HvcVM" in rest[:decision], (name, acting)


def test_calls_are_module_qualified_and_language_safe(policy: Policy) -> None:
    for name, body in _bodies(policy).items():
        bare = [m.group(0) for m in re.finditer(r"(?<![\w\\.$-])[A-Z][A-Za-z]+-[A-Z][A-Za-z]*(?![\w-])",
                                                body) if not body.startswith("\\", m.end())]
        assert bare == [], (name, bare)
        for forbidden in ("-AsJob", "Start-Job", "Add-Type", "Invoke-Expression", "iex ",
                          "[scriptblock]::Create", "RunAsUser"):
            assert forbidden.lower() not in body.lower(), (name, forbidden)
    # The wrappers (ours) use no .NET type but the core ones ConstrainedLanguage allows.
    ours = jea.CALLER_CHECK + "".join(f.body for f in jea.FUNCTIONS)
    assert set(re.findall(r"\[([A-Za-z][\w.]*)\]", ours)) <= {"guid"}
    assert "::new" not in ours and "New-Object" not in ours
    # And the whole of each function, the shared operation code included, runs there too.
    for name, body in _bodies(policy).items():
        # (types have three letters or more; [Ii][Ss][Oo] are a pattern's letter classes)
        named = {m.lower() for m in re.findall(r"\[([A-Za-z][\w.]{2,})\]", body)}
        assert named <= CLM_TYPES, (name, named - CLM_TYPES)
        assert "::new" not in body and "New-Object" not in body and ".Data[" not in body, name


def test_the_functions_run_the_shared_scripts_not_copies(policy: Policy) -> None:
    bodies = _bodies(policy)
    for spec in jea.FUNCTIONS:
        if not spec.operation:
            continue
        script = scripts.compact((POWERSHELL / f"{spec.operation}.ps1").read_text(encoding="utf-8"))
        assert jea.qualify(script).replace("\n", "\r\n") in bodies[spec.name]
        assert "FromBase64String" not in bodies[spec.name]  # typed parameters, no decoding


@given(st.recursive(
    st.booleans() | st.text(st.characters(blacklist_categories=("Cs",)), max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True), inner, max_size=4),
    max_leaves=12))
def test_data_files_read_back_what_was_written(value: object) -> None:
    assert jea.parse_psd1(jea.psd1(value)) == value


def test_script_blocks_read_back_with_strings_and_subexpressions() -> None:
    block = jea.ScriptBlock("""$a="}$(if($x){'}'}else{"{"})" # }\r\n'it''s }'""")
    assert jea.parse_psd1(jea.psd1({"F": block})) == {"F": block}
    with pytest.raises(jea.DataFileError):
        jea.parse_psd1("@{ A = Get-Process }")


@pytest.fixture(scope="module")
def identities() -> list[Identity]:
    directory = LabDirectory()
    return [directory.sign_in(f"LAB\\{user}", password) for user, password in USERS.items()]


@pytest.mark.parametrize("when", [0, 45, -400])
def test_the_generated_grants_decide_as_the_policy(policy: Policy, identities: list[Identity],
                                                   when: int) -> None:
    today = date.today() + timedelta(days=when)  # expired and expiring grants included
    world = load_world()
    checked = 0
    for lab_host in world.hosts:
        grants = jea.host_grants(policy, lab_host.name)
        for vm in lab_host.host.vms:
            target = Target(lab_host.name, vm.id, vm.name)
            for identity in identities:
                expected = policy.evaluate(identity, target, today).privileges & set(VM_PRIVILEGES)
                assert grants.rights(identity.sids, vm.id, vm.name, today) == expected, (
                    identity.name, lab_host.name, vm.name)
                checked += 1
    assert checked == len(identities) * sum(len(h.host.vms) for h in world.hosts)


def test_cli_writes_the_files(policy: Policy, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["jea", "generate", "--policy", str(POLICY), "--host", "hv01",
                 "--out", str(tmp_path)]) == 0
    for name, data in jea.generate(policy, "HV01").items():
        assert (tmp_path / name).read_bytes() == data
    assert "Register-HvConsoleEndpoint.ps1" in capsys.readouterr().out
    assert main(["jea", "generate", "--policy", str(POLICY), "--host", "HV99",
                 "--out", str(tmp_path)]) == 1
    assert "HV99 is not in the policy's hosts table" in capsys.readouterr().err


def test_a_cmdlet_of_unknown_module_stops_generation() -> None:
    with pytest.raises(jea.JeaError, match="Get-Process"):
        jea.qualify("$x=Get-Process")

"""The JEA endpoint files: golden bytes, determinism, what a policy change changes, and checks
on the parsed files (every parameter constrained, the caller checked first, nothing else visible),
and the generated grants deciding exactly as the policy does."""
from __future__ import annotations

import json
import os
import re
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from console import hosts, jea, scripts
from hvconsole.cli import main
from console.identity import Identity
from lab.psrp import param_specs
from lab.world import load_world
from lab.directory import LabDirectory
from console.policy import VM_PRIVILEGES, Policy, Target
from console.powershell import facts
from console.powershell.check import decode_single_quoted
from lab import psd1

GOLDEN = Path(__file__).parent / "golden" / "jea"
POLICY = GOLDEN / "policy.toml"
HOSTS = ("HV01", "HV02", "HV03")
USERS = {"olivia": "olivia-demo", "henry": "henry-demo", "adam": "adam-demo",
         "rita": "rita-demo", "bea": "bea-demo", "hannah": "hannah-demo"}


@pytest.fixture(scope="module")
def policy() -> Policy:
    return Policy.load(POLICY)


def parsed(policy: Policy, host: str, name: str) -> dict:
    return psd1.parse_psd1(jea.generate(policy, host)[name].decode("utf-8"))


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


def _without_data(function: str) -> str:
    """A function's text with its grants literal cut out."""
    start = re.search(r"^\$hvcData=", function, re.MULTILINE).end()
    return function[:start] + function[psd1.read_value(function, start)[1]:]


def test_a_revoked_grant_changes_only_the_grants_and_the_digest(policy: Policy) -> None:
    text = POLICY.read_text(encoding="utf-8")
    grant = re.search(r"\[\[grants\]\]\nprincipal = 'LAB\\HR-Payroll'[^\[]*", text)
    assert grant, "the sample policy's HR-Payroll grant"
    revoked = Policy.from_text(text.replace(grant.group(0), ""))
    old_psrc, new_psrc = parsed(policy, "HV02", jea.PSRC_FILE), parsed(revoked, "HV02", jea.PSRC_FILE)
    assert {k: v for k, v in old_psrc.items() if k not in ("Description", "FunctionDefinitions")} \
        == {k: v for k, v in new_psrc.items() if k not in ("Description", "FunctionDefinitions")}
    assert new_psrc["Description"] == f"HvConsole operations on HV02, policy sha256 {revoked.digest}"
    new_grants = jea.host_grants(revoked, "HV02")
    for old, new in zip(old_psrc["FunctionDefinitions"], new_psrc["FunctionDefinitions"], strict=True):
        # Each function holds the new grants, and nothing else of it changes.
        assert psd1.embedded_data(new["ScriptBlock"].text) == new_grants.as_data(), new["Name"]
        assert _without_data(old["ScriptBlock"].text) == _without_data(new["ScriptBlock"].text)
    old_pssc, new_pssc = parsed(policy, "HV02", jea.PSSC_FILE), parsed(revoked, "HV02", jea.PSSC_FILE)
    assert set(old_pssc["RoleDefinitions"]) - set(new_pssc["RoleDefinitions"]) == {"LAB\\HR-Payroll"}
    old_grants = jea.host_grants(policy, "HV02")
    assert [g for g in old_grants.grants if g not in new_grants.grants] == [
        g for g in old_grants.grants if g.principal == "LAB\\HR-Payroll"]
    readable = psd1.grants_file(jea.generate(revoked, "HV02")[jea.GRANTS_FILE].decode())
    assert readable == new_grants and readable.policy_digest == revoked.digest != policy.digest
    assert new_grants.sha256 != old_grants.sha256


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
    # VMState 1, VMDetails 1, VMThumbnail 3, Power 2, Checkpoint 4, Media 6, ConsoleAccess 1,
    # each action's record reference 4 more, AuditEvents 2, DowntimeAnswer 3.
    assert seen == 39


def test_every_function_checks_the_caller_before_anything_else(policy: Policy) -> None:
    check = jea.caller_check(jea.host_grants(policy, "HV01")).replace("\n", "\r\n")
    for name, body in _bodies(policy).items():
        after_params = body[psd1.skip_code(body, body.index("param(") + 6, ")"):].lstrip()
        assert after_params.startswith(check), name
        rest = after_params[len(check):]
        decision = rest.index("return}")  # the refusal ends the function
        assert "HvcDeny" in rest[:decision] and ("HvcRights" in rest[:decision]
                                                 or "hvcMine" in rest[:decision]
                                                 or "$hvcData.Audit" in rest[:decision]
                                                 or "$hvcData.Review" in rest[:decision]), name
        for acting in ("Hyper-V\\", "& {"):
            assert acting not in rest[:decision] or acting == "Hyper-V\\" and \
                "HvcVM" in rest[:decision], (name, acting)


# The functions whose operation's result passes through a view of what the caller may see.
VIEWS = {"inventory": jea.INVENTORY_VIEW, "downtime_plans": jea.PLANS_VIEW}


def _ours(policy: Policy) -> dict[str, str]:
    """Each function's statements without the shared operation code: what the generator writes
    (the caller check and the function's own code, grants literal and inventory view included)."""
    grants, out = jea.host_grants(policy, "HV01"), {}
    for spec in jea.FUNCTIONS:
        text = jea.function_text(spec, grants)
        text = text[psd1.skip_code(text, text.index("param(") + 6, ")"):]
        if spec.operation in VIEWS:
            text = text.replace(jea.shared_code(spec.operation, VIEWS[spec.operation]),
                                "function O{$d=HvcWork;" + VIEWS[spec.operation] + "}")
        elif spec.operation:
            text = text.replace(jea.shared_code(spec.operation), "")
        out[spec.name] = text.replace("\r\n", "\n")
    return out


def test_calls_are_module_qualified_and_language_safe(policy: Policy) -> None:
    for name, body in _bodies(policy).items():
        code = _without_data(body)
        bare = [m.group(0) for m in re.finditer(r"(?<![\w\\.$-])[A-Z][A-Za-z]+-[A-Z][A-Za-z]*(?![\w-])",
                                                code) if not code.startswith("\\", m.end())]
        assert bare == [], (name, bare)
        for forbidden in ("-AsJob", "Start-Job", "Add-Type", "Invoke-Expression", "iex ",
                          "[scriptblock]::Create", "RunAsUser"):
            assert forbidden.lower() not in body.lower(), (name, forbidden)
    # The wrappers (ours) use no .NET type but the core ones ConstrainedLanguage allows.
    ours = "".join(_without_data(t) for t in _ours(policy).values())
    assert set(re.findall(r"\[([A-Za-z][\w.]*)\]", ours)) <= {"guid", "datetime"}
    assert "::new" not in ours and "New-Object" not in ours
    # And the whole of each function, the shared operation code included, runs there too.
    for name, body in _bodies(policy).items():
        # (types have three letters or more; [Ii][Ss][Oo] are a pattern's letter classes)
        named = {m.lower() for m in re.findall(r"\[([A-Za-z][\w.]{2,})\]", _without_data(body))}
        assert named <= facts.core_types(), (name, named - facts.core_types())
        assert "::new" not in body and "New-Object" not in body and ".Data[" not in body, name


def test_the_functions_run_the_shared_scripts_not_copies(policy: Policy) -> None:
    bodies = _bodies(policy)
    for spec in jea.FUNCTIONS:
        if not spec.operation:
            continue
        # What the admin endpoint sends (console.scripts.body), but the line decoding $p, and
        # ending with the frame Y rather than E (the function writes its own event).
        lines = [line for line in jea.qualify(scripts.shared_body(spec.operation)).splitlines()
                 if not line.startswith("$a=")]
        # console_access.ps1 names the caller from the process's token on the admin endpoint
        # and from $PSSenderInfo's in a function (scripts.CALLER).
        admin = [line.replace(scripts.CALLER[True], scripts.CALLER[False])
                 .replace(scripts.HOLDS[True], scripts.HOLDS[False])
                 for line in jea.qualify(scripts.body(spec.operation)).splitlines()
                 if not line.startswith("$a=") and not line.startswith("function E{")]
        frames = ("E", "Y") if spec.operation in scripts.ACTIONS else ("Y", "Y")
        assert admin[:-1] == lines[:-1] and (admin[-1], lines[-1]) == frames, spec.name
        assert "function E{" not in bodies[spec.name] and "WindowsIdentity]" not in bodies[spec.name]
        if spec.operation in VIEWS:  # its work is wrapped in the caller's view
            lines = ["function HvcWork{" + line[len("function O{"):]
                     if line.startswith("function O{") else line for line in lines[:-1]]
            lines += ["function O{$d=HvcWork;" + VIEWS[spec.operation] + "}", "Y"]
        assert "\r\n".join(lines) in bodies[spec.name], spec.name
        assert "FromBase64String" not in bodies[spec.name]  # typed parameters, no decoding


@given(st.recursive(
    st.booleans() | st.text(st.characters(blacklist_categories=("Cs",)), max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True), inner, max_size=4).filter(
        lambda d: len({k.lower() for k in d}) == len(d)),  # PowerShell's keys ignore case
    max_leaves=12))
def test_data_files_read_back_what_was_written(value: object) -> None:
    assert psd1.parse_psd1(jea.psd1(value)) == value


def test_script_blocks_read_back_with_strings_and_subexpressions() -> None:
    block = jea.ScriptBlock("""$a="}$(if($x){'}'}else{"{"})" # }\r\n'it''s }'""")
    assert psd1.parse_psd1(jea.psd1({"F": block})) == {"F": block}
    with pytest.raises(psd1.DataFileError):
        psd1.parse_psd1("@{ A = Get-Process }")


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


# --- the grants travel inside the functions (no file is read in the session) -----------------------

@pytest.mark.parametrize("host", HOSTS)
def test_every_function_holds_the_grants_and_reads_no_file(policy: Policy, host: str) -> None:
    # Import-PowerShellDataFile is a script function of 5.1's Utility module: a JEA session
    # (autoloading off) cannot reach it, even module-qualified (PowerShell/JEA issue 42).
    grants = jea.host_grants(policy, host)
    files = jea.generate(policy, host)
    psrc = psd1.parse_psd1(files[jea.PSRC_FILE].decode("utf-8"))
    for name, ours in _ours(policy).items():
        for reading in ("Import-PowerShellDataFile", "Get-Content", jea.GRANTS_FILE, "$env:"):
            assert reading not in _without_data(ours), (name, reading)
    for function in psrc["FunctionDefinitions"]:
        text = function["ScriptBlock"].text
        assert psd1.embedded_data(text) == grants.as_data(), function["Name"]
        assert psd1.embedded_grants(text) == jea.HostGrants.from_data(grants.as_data())
    # The data file stays, for people and the registration script to read: the same data.
    readable = psd1.parse_psd1(files[jea.GRANTS_FILE].decode("utf-8"))
    assert readable == {**grants.as_data(), "Digest": policy.digest, "GrantsSha256": grants.sha256}
    assert "the host never reads this file" in files[jea.GRANTS_FILE].decode("utf-8")


def test_the_role_capability_imports_the_modules_its_functions_call(policy: Policy) -> None:
    # A JEA session autoloads nothing: Hyper-V\Get-VM is found only when the role capability
    # imports Hyper-V (Microsoft's own Hyper-V JEA example lists it; PowerShell issue 4786).
    psrc = parsed(policy, "HV01", jea.PSRC_FILE)
    assert "Hyper-V" in psrc["ModulesToImport"]
    called = {m for body in _bodies(policy).values()
              for m in re.findall(r"(?<![\w.-])([A-Za-z][\w.-]*)\\[A-Z][A-Za-z]+-[A-Z]",
                                  _without_data(body))}
    assert called <= jea.SESSION_MODULES | set(psrc["ModulesToImport"]), called
    assert set(psrc["ModulesToImport"]) <= called


# --- logging, PowerShell 7, culture ----------------------------------------------------------------

def test_a_refused_event_never_turns_a_done_action_into_a_failure(policy: Policy) -> None:
    check = jea.caller_check(jea.host_grants(policy, "HV01"))
    log = check[check.index("function HvcLog"):check.index("function HvcDeny")]
    tried, caught = log.split("}catch{", 1)
    assert tried.startswith("function HvcLog($op,$act,$id,$name,$out){try{")
    assert "Write-EventLog" in tried and tried.rstrip().endswith("$out")
    assert "Write-EventLog" not in caught and '"log_error":' in caught
    # Every action's answer goes through HvcLog, after the action.
    for name, body in _ours(policy).items():
        if name.startswith("Invoke-"):
            assert re.search(r"^HvcLog '\w+' \$hvcAct \"\$VMId\" \$hvcName \(& \{\n\n\}\)$",
                             body, re.MULTILINE), name


def test_every_function_refuses_powershell_6_and_later_first(policy: Policy) -> None:
    for name, body in _ours(policy).items():
        lines = body.lstrip().splitlines()
        assert lines[0] == "$ErrorActionPreference='Stop'", name
        refusal = re.fullmatch(r"if\(\$PSVersionTable\.PSVersion\.Major -ge 6\)\{'(.*)';return\}",
                               lines[1])
        assert refusal, (name, lines[1])
        document = json.loads(refusal.group(1))
        assert document["ok"] is False and document["error"]["code"] == "host_error"
        assert "register this endpoint from Windows PowerShell 5.1" in document["error"]["message"]


def test_dates_are_compared_never_formatted_in_the_session_culture(policy: Policy) -> None:
    # PSRP gives the session the client's culture: under ar-SA Get-Date -Format 'yyyy' is 1448,
    # under th-TH 2569. A [datetime] cast is invariant and a DateTime's date is Gregorian.
    for name, body in _ours(policy).items():
        code = _without_data(body)
        for formatting in ("-Format", "-UFormat", " -f ", "-f'", '-f"', ".ToString(", "[string]$hvcToday"):
            assert formatting not in code, (name, formatting)
        assert "$hvcToday=(Microsoft.PowerShell.Utility\\Get-Date).Date" in code
        assert "[datetime]$x.Expires -lt $hvcToday" in code


@pytest.mark.parametrize("day, works", [(-1, True), (0, True), (1, False)])
def test_a_grant_works_through_its_expiry_day_and_not_after(day: int, works: bool) -> None:
    expiry = date(2026, 2, 28)
    text = POLICY.read_text(encoding="utf-8") + (
        "\n[[grants]]\nprincipal = 'LAB\\ext-jane'\nsid = \"S-1-5-21-1000-2000-3000-1310\"\n"
        f"role = \"operator\"\nhost = \"HV01\"\nexpires = {expiry.isoformat()}\n")
    policy = Policy.from_text(text)
    grants = jea.host_grants(policy, "HV01")
    today = expiry + timedelta(days=day)
    rights = grants.rights(["S-1-5-21-1000-2000-3000-1310"], "42e4aaca-7231-5411-b96b-d03849b0dae1",
                           "shop-web01", today)
    assert ("vm.start" in rights) is works
    assert grants.may_connect(["S-1-5-21-1000-2000-3000-1310"], today) is works
    expiring = next(g for g in grants.grants if g.sid == "S-1-5-21-1000-2000-3000-1310")
    assert expiring.expires == "2026-02-28" and expiring.active(today) is works


# --- quoting by PowerShell's rule ----------------------------------------------------------------

QUOTES = jea.SINGLE_QUOTES + jea.DOUBLE_QUOTES


def test_the_quote_characters_are_powershells() -> None:
    assert set(jea.SINGLE_QUOTES) == facts.single_quotes()
    assert set(jea.DOUBLE_QUOTES) == facts.double_quotes()


@given(st.text(st.sampled_from(QUOTES + "ab\\$`{}();@=\r\n") | st.characters(blacklist_categories=("Cs",))))
def test_a_written_literal_reads_back_by_powershells_rule(value: str) -> None:
    literal = jea.quote(value)
    assert psd1.read_quoted(literal, 0) == (value, len(literal))
    assert decode_single_quoted(literal) == value  # the checker's own reading agrees
    assert psd1.parse_psd1(jea.psd1({"K": [value, value]})) == {"K": [value, value]}


@pytest.mark.parametrize("literal, value, rest", [
    ("'it''s'", "it's", ""),
    ("'it\u2019\u2019s'", "it\u2019s", ""),  # a doubled right quote is one
    ("'a\u2019'b'", "a'b", ""),  # a quote followed by another quote: the second is kept
    ("'a'\u2018b'", "a\u2018b", ""),
    ("'a\u2019 b'", "a", " b'"),  # any of the five ends the string
    ("\u2018a\u201b", "a", ""),  # and any of them opens one
    ("'a\u201a''", "a'", ""),
])
def test_single_quoted_literals_read_as_the_tokenizer_reads_them(literal: str, value: str,
                                                                  rest: str) -> None:
    assert psd1.read_quoted(literal, 0) == (value, len(literal) - len(rest))


# A principal name that closes its string at U+2019 under the old writer (which doubled only the
# ASCII quote), then writes a grant of its own: Everyone may start every VM of the host.
INJECTION = ("LAB\\evil\u2019; Privileges = @(\u2019vm.start\u2019, \u2019vm.view\u2019); "
             "Scope = \u2019host\u2019; Sid = \u2019S-1-1-0\u2019; Values = @() }, @{ Effect = "
             "\u2019allow\u2019; Expires = \u20192999-12-31\u2019; Principal = \u2019LAB\\evil2")


def _injected_policy() -> Policy:
    text = POLICY.read_text(encoding="utf-8") + (
        f"\n[[grants]]\nprincipal = '{INJECTION}'\nsid = \"S-1-5-21-1000-2000-3000-1399\"\n"
        "role = \"viewer\"\nvm = \"42e4aaca-7231-5411-b96b-d03849b0dae1\"\n"
        "note = \"O\u2019Brien's \u2018test\u2019\"\n")
    policy = Policy.from_text(text)
    assert INJECTION in {g.principal.name for g in policy.grants}  # `policy check` accepts it
    return policy


def test_a_quote_in_a_policy_value_adds_no_grant(monkeypatch: pytest.MonkeyPatch) -> None:
    policy = _injected_policy()
    grants = jea.host_grants(policy, "HV01")
    files = jea.generate(policy, "HV01")
    psrc = psd1.parse_psd1(files[jea.PSRC_FILE].decode("utf-8"))
    for function in psrc["FunctionDefinitions"]:
        assert psd1.embedded_data(function["ScriptBlock"].text) == grants.as_data()
    pssc = psd1.parse_psd1(files[jea.PSSC_FILE].decode("utf-8"))
    assert INJECTION in pssc["RoleDefinitions"]
    assert not any(g.sid == "S-1-1-0" for g in grants.grants)
    # What the old writer made of it, read by PowerShell's rule: Everyone gets vm.start.
    monkeypatch.setattr(jea, "quote", lambda value: "'" + value.replace("'", "''") + "'")
    old = psd1.parse_psd1(jea.psd1(grants.as_data()))
    assert len(old["Grants"]) == len(grants.grants) + 1
    assert any(g["Sid"] == "S-1-1-0" and g["Scope"] == "host" and "vm.start" in g["Privileges"]
               for g in old["Grants"])


# --- what the host enforces, and lag ---------------------------------------------------------------

def test_lag_compares_what_a_host_enforces_with_what_the_policy_gives_it(policy: Policy) -> None:
    for host in HOSTS:
        assert hosts.lag(host, jea.host_grants(policy, host).sha256, policy) is None
    text = POLICY.read_text(encoding="utf-8")
    grant = re.search(r"\[\[grants\]\]\nprincipal = 'LAB\\HR-Payroll'[^\[]*", text)
    revoked = Policy.from_text(text.replace(grant.group(0), ""))
    enforced = jea.host_grants(policy, "HV02").sha256  # the files registered before the change
    found = hosts.lag("HV02", enforced, revoked)
    assert found is not None and "older policy" in str(found)
    assert found.current == jea.host_grants(revoked, "HV02").sha256
    # A change to one host's grants leaves the other hosts current.
    added = Policy.from_text(text + "\n[[grants]]\nprincipal = 'LAB\\ext-jane'\nsid = "
                             "\"S-1-5-21-1000-2000-3000-1310\"\nrole = \"viewer\"\nhost = \"HV01\"\n")
    assert added.digest != policy.digest
    assert hosts.lag("HV01", jea.host_grants(policy, "HV01").sha256, added) is not None
    assert [h for h in HOSTS if hosts.lag(h, jea.host_grants(policy, h).sha256, added)] == ["HV01"]
    gone = hosts.lag("HV99", enforced, policy)
    assert gone is not None and gone.current == "" and "no such host" in str(gone)


def test_the_digest_does_not_depend_on_key_order_or_spacing(policy: Policy) -> None:
    # ConvertTo-Json writes a hashtable's keys in hash order; the digest is of the data.
    data = jea.host_grants(policy, "HV02").as_data()
    shuffled = {k: data[k] for k in reversed(list(data))}
    shuffled["Grants"] = [{k: g[k] for k in reversed(list(g))} for g in data["Grants"]]
    assert jea.data_digest(json.loads(json.dumps(shuffled, indent=2))) == jea.data_digest(data)
    edited = json.loads(json.dumps(data))
    edited["Grants"][0]["Privileges"].append("vm.turnoff")
    assert jea.data_digest(edited) != jea.data_digest(data)


# --- binding fidelity ------------------------------------------------------------------------------

def test_validated_values_are_used_in_the_sets_own_spelling(policy: Policy) -> None:
    # ValidateSet accepts RESET and keeps it; the scripts' switch -CaseSensitive would not.
    for name, body in _ours(policy).items():
        for parameter, variable in (("Action", "hvcAct"), ("ControllerType", "hvcCt")):
            uses = re.findall(rf"\${parameter}\b", body)
            if not uses:
                continue
            pick = re.search(rf"^\${variable}='';foreach\(\$c in ([^)]*)\)\{{if\(\$c -eq "
                             rf"\${parameter}\)\{{\${variable}=\$c\}}\}}$", body, re.MULTILINE)
            assert pick, (name, parameter)
            assert len(uses) == 1, (name, parameter)  # only the pick reads the caller's spelling
            spec = next(s for s in param_specs(_bodies(policy)[name]) if s.name == parameter)
            assert [psd1.read_quoted(q.strip(), 0)[0] for q in pick.group(1).split(",")] == list(spec.choices)


def test_patterns_are_anchored_at_the_very_end() -> None:
    # .NET's `$` also matches before a final newline: "name\n" would pass a `$`-anchored pattern.
    for pattern in (jea.NAME_PATTERN, jea.ISO_PATTERN):
        assert pattern.startswith("\\A") and pattern.endswith("\\z") and "$" not in pattern


# --- the generated functions run in the lab's PowerShell (ConstrainedLanguage, JEA's modules) -------

def _sender(user_sid: str) -> Any:
    from lab.pwsh import PSObject

    def sid(value: str) -> Any:
        return PSObject("System.Security.Principal.SecurityIdentifier", {"Value": value}, text=value)
    identity = PSObject("System.Security.Principal.WindowsIdentity", {
        "Name": "LAB\\caller", "User": sid(user_sid), "Groups": [sid("S-1-1-0"), sid("S-1-5-11")]})
    return PSObject("System.Management.Automation.Remoting.PSSenderInfo", {"UserInfo": PSObject(
        "System.Management.Automation.Remoting.PSPrincipal", {"WindowsIdentity": identity})})


def _run(text: str, user_sid: str, **options: Any) -> Any:
    from lab.pwsh import BUILTINS, Runspace
    variables = {"PSSenderInfo": _sender(user_sid), **options.pop("variables", {})}
    modules = [*sorted(jea.SESSION_MODULES), "Hyper-V", "Storage"]
    arguments = options.pop("arguments", {})
    return Runspace(BUILTINS, variables=variables, language_mode="ConstrainedLanguage",
                    modules=modules, **options).invoke(text.replace("\r\n", "\n"), arguments)


@pytest.mark.parametrize("culture", ["en-US", "th-TH", "ar-SA"])
def test_the_caller_check_decides_expiry_alike_in_every_culture(culture: str) -> None:
    # A PSRP session runs in the client's culture: under th-TH Get-Date -Format gives year 2569
    # (every grant with an expiry dead), under ar-SA 1448 (expired grants alive again).
    expiry = date(2026, 2, 28)
    policy = Policy.from_text(POLICY.read_text(encoding="utf-8") + (
        "\n[[grants]]\nprincipal = 'LAB\\ext-jane'\nsid = \"S-1-5-21-1000-2000-3000-1310\"\n"
        f"role = \"operator\"\nhost = \"HV01\"\nexpires = {expiry.isoformat()}\n"))
    grants = jea.host_grants(policy, "HV01")
    text = ("[CmdletBinding()]\nparam()\n" + jea.caller_check(grants)
            + "\n(HvcRights '42e4aaca-7231-5411-b96b-d03849b0dae1' 'shop-web01') -join ','\n")
    for day in (-1, 0, 1):
        now = datetime(2026, 2, 28, 23, 30) + timedelta(days=day)
        outcome = _run(text, "S-1-5-21-1000-2000-3000-1310", culture=culture, now=lambda now=now: now)
        assert outcome.error is None, outcome.error
        expected = grants.rights(["S-1-5-21-1000-2000-3000-1310"], "42e4aaca-7231-5411-b96b-d03849b0dae1",
                                 "shop-web01", now.date())
        assert set(filter(None, outcome.output[0].split(","))) == expected, (culture, day)
        assert ("vm.start" in expected) is (day <= 0)


def _digest_function(grants: jea.HostGrants) -> str:
    return jea.function_text(next(f for f in jea.FUNCTIONS if f.name == "Get-HvcPolicyDigest"), grants)


def test_the_digest_function_answers_the_grants_its_function_holds(policy: Policy) -> None:
    grants = jea.host_grants(policy, "HV02")
    text = _digest_function(grants)
    outcome = _run(text, "S-1-5-21-1000-2000-3000-1204")  # LAB\HV-Admins
    assert outcome.error is None, outcome.error
    answer = json.loads(outcome.output[0])
    assert answer["ok"] is True and jea.data_digest(answer["data"]["enforced"]) == grants.sha256
    # An edited grant changes what the host reports, so it shows as lag.
    edited = text.replace("Privileges = @('vm.view')", "Privileges = @('vm.start', 'vm.view')")
    assert edited != text
    answer = json.loads(_run(edited, "S-1-5-21-1000-2000-3000-1204").output[0])
    assert hosts.lag("HV02", jea.data_digest(answer["data"]["enforced"]), policy) is not None


def test_an_event_the_log_refuses_is_reported_beside_the_answer(policy: Policy) -> None:
    # The lab's PowerShell has no Write-EventLog: the call fails as a refused event would.
    outcome = _run(_digest_function(jea.host_grants(policy, "HV02")), "S-1-5-21-1000-2000-3000-9999")
    assert outcome.error is None, outcome.error
    answer = json.loads(outcome.output[0])
    assert answer["ok"] is False and answer["error"]["code"] == "denied"
    assert answer["log_error"].startswith("The event of this call was not written to the Application log")


def test_under_powershell_7_every_function_refuses_clearly(policy: Policy) -> None:
    from lab.pwsh import Hashtable
    from lab.pwsh import convert as cv
    version = Hashtable({"PSVersion": cv.version("7.4.6"), "PSEdition": "Core"})
    grants = jea.host_grants(policy, "HV02")
    vm = "42e4aaca-7231-5411-b96b-d03849b0dae1"
    arguments = {"Get-HvcVMState": {"VMId": [vm]}, "Invoke-HvcPower": {"VMId": vm, "Action": "start"},
                 "Get-HvcVMDetails": {"VMId": vm}, "Get-HvcVMThumbnail": {"VMId": vm},
                 "Grant-HvcConsoleAccess": {"VMId": vm},
                 "Submit-HvcDowntimeAnswer": {"PlanId": "HV02-20261212-2200-abcdef",
                                              "Answer": "approve"},
                 "Invoke-HvcCheckpoint": {"VMId": vm, "Action": "create"},
                 "Invoke-HvcMedia": {"VMId": vm, "Action": "eject", "ControllerType": "SCSI",
                                     "Controller": 0, "Location": 1}}
    for spec in jea.FUNCTIONS:
        text = jea.function_text(spec, grants)
        outcome = _run(text, "S-1-5-21-1000-2000-3000-1204", variables={"PSVersionTable": version},
                       arguments=arguments.get(spec.name, {}))
        assert outcome.error is None, (spec.name, outcome.error)
        assert json.loads(outcome.output[0]) == json.loads(jea.REFUSED_ON_POWERSHELL_6), spec.name


def test_host_facts_only_for_a_grant_on_the_host_or_one_of_its_vms(policy: Policy) -> None:
    """hannah's grant on payroll-db (HV02) and henry's helpdesk grant on HV02 are written into
    every host's data (a VM grant follows its id anywhere): still, HV01's build, updates,
    storage and ISO library are for neither of them, since none of HV01's VMs is theirs."""
    from console.config import HostConfig
    from console.errors import ConsoleError
    from console.hosts import Credentials, JeaClient
    from lab.hyperv import Durations
    from lab.runner import Lab

    today = date.today()
    with Lab.start(durations=Durations.instant(), jea_policy=policy) as lab:
        def facts(host: str, user: str) -> object:
            client = JeaClient(HostConfig(host, lab.hosts[host].url, timeout=10),
                               Credentials(f"LAB\\{user}", USERS[user]))
            try:
                return client.host_facts([])
            finally:
                client.close()

        expected = {("HV01", "hannah"): False, ("HV02", "hannah"): True,
                    ("HV03", "hannah"): True,  # legacy-ftp: every Domain User's
                    ("HV01", "henry"): False, ("HV02", "henry"): True,
                    ("HV01", "olivia"): True, ("HV02", "olivia"): True,  # shop-web02
                    ("HV01", "adam"): True}  # everything
        for (host, user), allowed in expected.items():
            sids = LabDirectory().sign_in(user, USERS[user]).sids
            vms = [(vm.id, vm.name) for vm in lab.world.host(host).host.vms]
            assert jea.host_grants(policy, host).may_read_facts(sids, vms, today) is allowed
            assert jea.host_grants(policy, host).may_connect(sids, today)  # the old test passed all
            if allowed:
                assert facts(host, user) is not None
            else:
                with pytest.raises(ConsoleError, match="holds no grant on this host or on any of "
                                                       "its VMs"):
                    facts(host, user)

"""Connecting to a VM's console: the grant through the host (JEA and admin endpoints), the viewer's
command line, and the lab's port-2179 listener that checks the preconnection blob and the grant,
so the whole path runs here except drawing the screen."""
from __future__ import annotations

import os
import shutil
import stat
import struct
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.actions import ActionService
from console.audit import AuditTrail
from console.console_access import ConsoleGrant
from console.config import ConfigError, Config, HostConfig
from console.errors import Denied, HostAccessDenied, InvalidParameter
from console.hosts import Credentials, HostPool, JeaClient
from console.identity import Identity
from console.inventory import VM, Action
from console.paths import LAB_DATA
from console.policy import Policy
from console.viewer import (
    CONSOLE_PORT, Viewer, argv_values, command, console_command, console_server,
    find_viewer, launch, missing_viewer,
)
from lab.directory import LabDirectory
from lab.hyperv import Durations
from lab.runner import Lab
from lab.vmconnect import (
    ConsoleListener, ProtocolError, connection_request, parse_preconnection, preconnection_pdu,
)

ROOT = Path(__file__).resolve().parent.parent
WEB01 = "42e4aaca-7231-5411-b96b-d03849b0dae1"  # HV01 shop-web01, Running, olivia's (owner)
VM_ID = "42E4AACA-7231-5411-B96B-D03849B0DAE1"


def person(name: str) -> Identity:
    return LabDirectory().sign_in(name, f"{name}-demo")


@pytest.fixture(scope="module")
def policy() -> Policy:
    return Policy.load(LAB_DATA / "policy.toml")


@pytest.fixture
def lab(policy: Policy) -> Iterator[Lab]:
    with Lab.start(durations=Durations.instant(), jea_policy=policy) as lab:
        yield lab


def jea(lab: Lab, host: str, user: str) -> JeaClient:
    config = next(c for c in lab.host_configs() if c.name == host)
    return JeaClient(config, Credentials(f"LAB\\{user}", lab.credentials[f"LAB\\{user}"]))


def fake_freerdp(folder: Path, name: str = "xfreerdp") -> Path:
    """A program named like FreeRDP that runs lab/fake_viewer.py: what the console starts when
    FreeRDP is not installed here."""
    path = folder / name
    path.write_text(f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(ROOT)!r})\n"
                    "from lab.fake_viewer import main\nsys.exit(main(sys.argv[1:]))\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


# --- the viewer's command line -------------------------------------------------------------------

def test_windows_uses_vmconnect_with_the_vm_id() -> None:
    viewer = find_viewer("win32", which=lambda n: r"C:\Windows\System32\vmconnect.exe"
                         if n == "vmconnect.exe" else None, environ={})
    assert viewer == Viewer("vmconnect", r"C:\Windows\System32\vmconnect.exe")
    built = command(viewer, "hv01.lab.example", "shop web01", VM_ID, user="LAB\\olivia",
                    password="secret")
    # vmconnect signs in with the Windows logon: no account, no password on its command line.
    assert built.argv == [viewer.path, "hv01.lab.example", "shop web01", "-G", WEB01]
    assert built.stdin is None
    assert built.shown() == (f'{viewer.path} hv01.lab.example "shop web01" -G {WEB01}')


def test_elsewhere_the_newest_freerdp_found_connects_to_port_2179() -> None:
    found = {"xfreerdp": "/usr/bin/xfreerdp", "sdl-freerdp3": "/usr/bin/sdl-freerdp3"}
    viewer = find_viewer("linux", which=found.get)
    assert viewer == Viewer("freerdp", "/usr/bin/sdl-freerdp3")
    assert find_viewer("darwin", which=lambda n: None) is None
    built = command(viewer, "hv01.lab.example", "shop-web01", VM_ID, user="LAB\\olivia",
                    password="pa ss")
    assert built.argv[1:3] == ["/v:hv01.lab.example:2179", f"/vmconnect:{WEB01}"]
    assert argv_values(built.argv)["u"] == "LAB\\olivia" and "/from-stdin:force" in built.argv
    # The password is read from standard input, never written on the command line.
    assert built.stdin == "pa ss\n" and not any("pa ss" in a for a in built.argv)
    assert CONSOLE_PORT == 2179


def test_another_port_gets_the_same_blob_through_pcb() -> None:
    # /vmconnect sets port 2179 after /v is read, so the lab's port needs /pcb and -nego.
    built = command(Viewer("freerdp", "xfreerdp"), "127.0.0.1", "w", WEB01, port=50123)
    assert built.argv[1:4] == ["/v:127.0.0.1:50123", f"/pcb:{WEB01}", "-nego"]
    assert built.stdin is None and not any(a.startswith("/u:") for a in built.argv)


def test_the_server_is_the_hosts_winrm_address() -> None:
    assert console_server("https://hv01.lab.example:5986/wsman") == "hv01.lab.example"
    assert console_server("http://[fe80::1]:5985/wsman") == "fe80::1"
    config = HostConfig("HV01", "http://hv01.lab.example:5985/wsman", console_port=2180)
    built = console_command(Viewer("freerdp", "xfreerdp"), config, "web01", WEB01,
                            "LAB\\olivia", "pw")
    assert built.argv[1] == "/v:hv01.lab.example:2180" and built.stdin == "pw\n"
    vmconnect = console_command(Viewer("vmconnect", "vmconnect.exe"), config, "web01", WEB01,
                                "LAB\\olivia", "pw")
    assert vmconnect.argv == ["vmconnect.exe", "hv01.lab.example", "web01", "-G", WEB01]


@pytest.mark.parametrize(("args", "sentence"), [
    (("h", "w", "web01"), "'web01' is not a VM id; the console is opened by VM id."),
    (("h h", "w", VM_ID), "'h h' is not a host name or address a viewer can reach."),
    (("h", "w\nx", VM_ID), "A VM name or account for the console viewer is one line"),
])
def test_bad_input_is_refused_with_a_sentence(args: tuple[str, str, str], sentence: str) -> None:
    with pytest.raises(InvalidParameter) as error:
        command(Viewer("freerdp", "xfreerdp"), *args)
    assert str(error.value).startswith(sentence)
    with pytest.raises(InvalidParameter, match="console port 0 is not a TCP port"):
        command(Viewer("freerdp", "xfreerdp"), "h", "w", VM_ID, port=0)
    with pytest.raises(InvalidParameter, match="cannot be given to a console viewer"):
        console_server("http://a b/wsman")


def test_a_missing_viewer_says_what_to_install() -> None:
    assert "Hyper-V GUI Management Tools" in missing_viewer("win32")
    assert "brew install freerdp" in missing_viewer("darwin")
    assert "freerdp3-x11 or freerdp2-x11" in missing_viewer("linux")


def test_the_console_port_is_held_to_a_tcp_port(tmp_path: Path) -> None:
    assert Config.from_dict({"hosts": [{"name": "HV01", "url": "http://hv01:5985/wsman"}]},
                            "c").hosts[0].console_port == 2179
    with pytest.raises(ConfigError, match=r"hosts\[0\].console_port must be a TCP port"):
        Config.from_dict({"hosts": [{"name": "HV01", "url": "http://hv01:5985/wsman",
                                     "console_port": 70000}]}, "c")


def test_the_grant_answer_reads_the_hosts_token_name() -> None:
    grant = ConsoleGrant.from_json({"vm_id": VM_ID, "name": "web01", "user": "LAB\\olivia",
                                    "sid": "S-1-5-21-1", "granted": True, "enhanced": True})
    assert (grant.vm_id, grant.user, grant.granted, grant.enhanced) == (
        WEB01, "LAB\\olivia", True, True)


# --- the lab's listener: MS-RDPEPS preconnection PDU, X.224 request ---------------------------------

def test_the_preconnection_pdu_v2_layout() -> None:
    pdu = preconnection_pdu(f"{WEB01};EnhancedMode=1")
    size, flags, version, session, count = struct.unpack_from("<IIIIH", pdu)
    assert (size, flags, version, session) == (len(pdu), 0, 2, 0)
    assert count == len(WEB01) + len(";EnhancedMode=1") + 1  # the final null counts
    parsed = parse_preconnection(pdu)
    assert (parsed.vm_id, parsed.enhanced) == (WEB01, True)
    assert parse_preconnection(preconnection_pdu("not a guid")).vm_id is None


# What FreeRDP 2.11.7 (Debian's freerdp2-x11) sent first for /pcb:<WEB01>: cchPCB 38, the id and
# two nulls.
FREERDP_2_11_PDU = (struct.pack("<IIIIH", 94, 0, 2, 0, 38) + WEB01.encode("utf-16-le")
                    + b"\0\0\0\0")


def test_freerdp_2_11s_pdu_with_its_extra_null_names_the_vm() -> None:
    parsed = parse_preconnection(FREERDP_2_11_PDU)
    assert (parsed.version, parsed.blob, parsed.vm_id) == (2, WEB01, WEB01)


@pytest.mark.parametrize(("data", "sentence"), [
    (b"\x10\x00", "shorter than its 16-byte header"),
    (struct.pack("<IIII", 20, 0, 2, 0), "says 20 bytes but has 16"),
    (struct.pack("<IIII", 16, 1, 2, 0), "Flags must be 0, not 1"),
    (struct.pack("<IIII", 16, 0, 3, 0), "Unknown preconnection PDU version 3"),
    (struct.pack("<IIIIH", 20, 0, 2, 0, 2) + b"a\x00", "cchPCB says 2 characters"),
    (struct.pack("<IIIIH", 20, 0, 2, 0, 1) + b"a\x00", "does not end with a null"),
])
def test_a_malformed_pdu_is_named(data: bytes, sentence: str) -> None:
    with pytest.raises(ProtocolError, match=sentence):
        parse_preconnection(data)


def test_the_listener_checks_the_blob_and_the_grant(lab: Lab) -> None:
    host = lab.hosts["HV01"].host
    listener = lab.hosts["HV01"].console
    assert listener is not None
    pdu, request = preconnection_pdu(WEB01), connection_request("LAB\\olivia", 2)
    attempt, reply = listener.decide(pdu, request)
    assert not attempt.allowed and reply == b""
    assert attempt.reason == "LAB\\olivia may not open the console of shop-web01"
    host.grant_console(host.vm(WEB01), ["LAB\\olivia"])
    attempt, reply = listener.decide(pdu, connection_request("olivia", 2))  # a bare name
    assert attempt.allowed and attempt.account == "LAB\\olivia"
    assert reply[:2] == b"\x03\x00" and reply[5] == 0xD0 and reply[-4:] == b"\x02\x00\x00\x00"
    other = lab.hosts["HV02"].console
    assert other is not None
    refused, _ = other.decide(pdu, request)  # the blob must name a VM of that host
    assert refused.reason == f"no VM {WEB01} on HV02"
    admin, _ = listener.decide(preconnection_pdu(WEB01), connection_request("LAB\\adam"))
    assert admin.allowed  # the host's administrators need no entry


# --- the grant through the hosts ---------------------------------------------------------------------

def test_jea_grants_the_caller_from_the_token_and_nobody_else(lab: Lab) -> None:
    host = lab.hosts["HV01"].host
    olivia = jea(lab, "HV01", "olivia")
    try:
        outcome = olivia.console_access(WEB01, "grant")
    finally:
        olivia.close()
    assert outcome.status == "ok" and outcome.console is not None
    assert (outcome.console.user, outcome.console.granted) == ("LAB\\olivia", True)
    assert [(e.user, e.sid) for e in host.console_acl[WEB01]] == [
        ("LAB\\olivia", person("olivia").sid)]
    event = lab.hosts["HV01"].executor.event_log[-1]
    assert '"operation":"console_access"' in event.message and '"action":"grant"' in event.message
    assert person("olivia").sid in event.message


def test_jea_refuses_a_caller_without_vm_console(lab: Lab) -> None:
    henry = jea(lab, "HV02", "henry")  # helpdesk: start, shut down, reset; no console
    try:
        vm = henry.inventory()[0]
        with pytest.raises(HostAccessDenied, match=r"may not connect to the console of this VM "
                                                   r"\(vm.console\)"):
            henry.console_access(vm.id, "grant")
        with pytest.raises(InvalidParameter, match="grants console access only"):
            henry.console_access(vm.id, "revoke")
    finally:
        henry.close()
    # Nothing granted; and the refused call's sweep took away the entry the demo world gave
    # henry on office-print by hand (docs/lab-world.md): helpdesk holds no vm.console.
    assert not any(lab.hosts["HV02"].host.console_acl.values())


def test_access_the_policy_no_longer_gives_is_revoked_by_the_callers_next_session(
        lab: Lab) -> None:
    host = lab.hosts["HV01"].host
    mine = {vm.id for vm in host.vms if vm.name.startswith("shop-")}
    stale = next(vm for vm in host.vms if vm.id not in mine)
    host.grant_console(stale, ["LAB\\olivia"])  # left from a grant that went
    host.grant_console(stale, ["LAB\\bea"])  # someone else's: not the caller's to revoke
    olivia = jea(lab, "HV01", "olivia")
    try:
        revoked = olivia.sync_console_access()
    finally:
        olivia.close()
    assert revoked == [{"vm_id": stale.id, "name": stale.name, "user": "LAB\\olivia"}]
    assert [e.user for e in host.console_acl[stale.id]] == ["LAB\\bea"]
    event = lab.hosts["HV01"].executor.event_log[-1]
    assert '"action":"revoke"' in event.message and stale.id in event.message


def test_the_admin_endpoint_grants_the_administrator_from_the_process_token(lab: Lab) -> None:
    config = next(c for c in lab.host_configs("admin") if c.name == "HV01")
    user, password = lab.admin
    with HostPool([config], Credentials(user, password)) as pool:
        client = pool.client("HV01")
        outcome = client.console_access(WEB01, "grant")
        assert outcome.console is not None and outcome.console.user.lower() == user.lower()
        entries = client.console_acl()  # type: ignore[attr-defined]
        assert [(e["vm_id"], e["user"].lower()) for e in entries] == [(WEB01, user.lower())]
        client.console_access(WEB01, "revoke")
        assert client.console_acl() == []  # type: ignore[attr-defined]


# --- the whole path: the action, the audit trail, the viewer, port 2179 ----------------------------

def test_connect_grants_then_the_viewer_reaches_the_vms_console(
        lab: Lab, policy: Policy, tmp_path: Path) -> None:
    olivia = person("olivia")
    audit = AuditTrail(tmp_path / "audit.jsonl", workstation="TEST-PC")
    credentials = Credentials("LAB\\olivia", lab.credentials["LAB\\olivia"])
    with HostPool(lab.host_configs(), credentials) as pool:
        service = ActionService(policy, audit, pool)
        vm: VM = next(v for v in pool.client("HV01").inventory() if v.id == WEB01)
        outcome = service.perform(olivia, vm, Action.CONNECT)
        assert outcome.console is not None and outcome.console.granted
        decided, done = audit.records()
        assert (decided.action, decided.decision, done.outcome) == ("connect", "allowed", "ok")
        assert "vm.console" in decided.reason or "connect to the console" in decided.reason
        # The viewer: FreeRDP's command line, run by a stand-in where FreeRDP is not installed.
        folder = tmp_path / "bin"
        folder.mkdir()
        fake_freerdp(folder)
        viewer = find_viewer("linux", which=lambda n: shutil.which(n, path=str(folder)))
        assert viewer is not None and viewer.program == "xfreerdp"
        built = console_command(viewer, pool.client("HV01").config, vm.name, vm.id,
                                credentials.username, credentials.password)
        process = launch(built)
        assert process.wait(timeout=30) == 0
    listener = lab.hosts["HV01"].console
    assert listener is not None
    attempt = listener.attempts[-1]
    assert (attempt.vm_id, attempt.account, attempt.allowed) == (WEB01, "LAB\\olivia", True)


def test_without_the_grant_the_viewer_is_turned_away(lab: Lab, tmp_path: Path) -> None:
    folder = tmp_path / "bin"
    folder.mkdir()
    viewer = Viewer("freerdp", str(fake_freerdp(folder)))
    config = next(c for c in lab.host_configs() if c.name == "HV01")
    built = console_command(viewer, config, "shop-web01", WEB01, "LAB\\bea",
                            lab.credentials["LAB\\bea"])
    assert launch(built).wait(timeout=30) == 1
    listener = lab.hosts["HV01"].console
    assert listener is not None and not listener.attempts[-1].allowed


def test_connect_is_refused_before_the_host_without_vm_console(
        lab: Lab, policy: Policy, tmp_path: Path) -> None:
    audit = AuditTrail(tmp_path / "audit.jsonl", workstation="TEST-PC")
    henry = person("henry")
    with HostPool(lab.host_configs(), Credentials("LAB\\henry", lab.credentials["LAB\\henry"])
                  ) as pool:
        service = ActionService(policy, audit, pool)
        vm = next(v for v in pool.client("HV02").inventory() if v.state == "Running")
        before = {k: list(v) for k, v in lab.hosts["HV02"].host.console_acl.items()}
        with pytest.raises(Denied, match="connect to the console of"):
            service.perform(henry, vm, Action.CONNECT)
    (refused,) = audit.records()
    assert (refused.action, refused.decision) == ("connect", "denied")
    assert lab.hosts["HV02"].host.console_acl == before  # the host was never asked


@pytest.mark.skipif(not (shutil.which("xfreerdp") and shutil.which("xvfb-run")),
                    reason="FreeRDP 2 (freerdp2-x11) and Xvfb are not installed")
def test_the_real_freerdp_sends_the_vm_id_as_its_preconnection_blob(lab: Lab) -> None:
    """FreeRDP's own first bytes, read by the lab's listener: the PDU names the VM; then FreeRDP
    begins TLS and CredSSP (the direct approach), which the lab does not run."""
    import subprocess

    config = next(c for c in lab.host_configs() if c.name == "HV01")
    built = console_command(Viewer("freerdp", shutil.which("xfreerdp") or ""), config,
                            "shop-web01", WEB01, "LAB\\olivia", "olivia-demo")
    subprocess.run(["xvfb-run", "-a", *built.argv, "/cert:ignore"], input=built.stdin,
                   text=True, capture_output=True, timeout=60, env={**os.environ,
                                                                   "HOME": str(ROOT / ".venv")})
    listener = lab.hosts["HV01"].console
    assert listener is not None and listener.attempts
    attempt = listener.attempts[-1]
    assert attempt.vm_id == WEB01 and not attempt.allowed
    assert "began TLS and CredSSP" in attempt.reason


def test_the_listener_closes_on_stop() -> None:
    from lab.world import load_world

    host = load_world().hosts[0].host
    listener = ConsoleListener(host)
    port = listener.start()
    assert port > 0
    listener.stop()
    import socket

    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


# --- the review: who holds console access against who may ------------------------------------------

def test_the_review_holds_every_entry_to_the_policy(policy: Policy) -> None:
    from console.console_access import ConsoleEntry
    from console.review import build_review

    olivia, bea = person("olivia"), person("bea")
    web01 = VM("HV01", WEB01, "shop-web01", "Running")
    entries = {"HV01": [
        ConsoleEntry("HV01", WEB01, "shop-web01", "LAB\\olivia", olivia.sid),  # the owner's
        ConsoleEntry("HV01", WEB01, "shop-web01", "LAB\\bea", bea.sid),  # no grant gives it
        ConsoleEntry("HV01", WEB01, "shop-web01", "S-1-5-21-9-9-9-1", ""),  # unnamed
    ]}
    review = build_review(policy, {"HV01": [web01]}, {},
                          directory=LabDirectory().session("rita", "rita-demo"),
                          console_access=entries)
    assert [(c.entry.user, c.may) for c in review.console_access] == [
        ("LAB\\olivia", True), ("LAB\\bea", False), ("S-1-5-21-9-9-9-1", False)]
    found = [f for f in review.findings if f.kind == "console-access"]
    assert [f.objects[0] for f in found] == ["LAB\\bea", "S-1-5-21-9-9-9-1"]
    assert found[0].severity == "high" and "Revoke-VMConnectAccess -VMId " + WEB01 in found[0].fix
    assert "can open the console of shop-web01 on HV01" in found[0].summary
    # Olivia holds vm.console through a group: without the directory the review cannot see it.
    alone = build_review(policy, {"HV01": [web01]}, {}, console_access=entries)
    assert not alone.console_access[0].may


def test_reviewers_read_the_console_access_lists_through_jea(lab: Lab) -> None:
    from console.review import read_console_access

    host = lab.hosts["HV01"].host
    host.grant_console(host.vm(WEB01), ["LAB\\olivia"])
    rita = jea(lab, "HV01", "rita")  # reviewer: audit.read
    olivia = jea(lab, "HV01", "olivia")
    try:
        assert rita.console_acl() == [{"vm_id": WEB01, "vm_name": "shop-web01",
                                       "user": "LAB\\olivia", "sid": person("olivia").sid,
                                       "access": "Allowed"}]
        with pytest.raises(HostAccessDenied, match="no grant gives audit.read"):
            olivia.console_acl()

        class Pool:
            def client(self, name: str) -> JeaClient:
                return {"HV01": rita, "HV02": olivia}[name]
        read = read_console_access(Pool(), {"HV01": [], "HV02": []})
        assert list(read) == ["HV01"]  # the host that refused is left out
        assert read["HV01"][0].user == "LAB\\olivia"
    finally:
        rita.close()
        olivia.close()


# --- hvconsole vm connect ------------------------------------------------------------------------------

def test_the_command_line_connects_and_starts_the_viewer(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> None:
    import io

    import console.viewer
    from hvconsole.cli import main

    started = []
    monkeypatch.setattr(console.viewer, "launch", lambda command: started.append(command))
    monkeypatch.setattr(console.viewer, "find_viewer",
                        lambda: Viewer("freerdp", "/usr/bin/xfreerdp"))
    monkeypatch.setattr("sys.stdin", io.StringIO("olivia-demo\n"))
    code = main(["vm", "connect", "HV01", "shop-web01", "--demo", "--user", "olivia",
                 "--password-stdin"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "connect done (console access for LAB\\olivia)" in out
    assert "Opened the console of shop-web01 on HV01 in xfreerdp." in out
    (command_line,) = started
    assert f"/pcb:{WEB01}" in command_line.argv and command_line.stdin == "olivia-demo\n"


def test_the_command_line_says_what_to_install_without_a_viewer(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import io

    import console.viewer
    from hvconsole.cli import main

    monkeypatch.setattr(console.viewer, "find_viewer", lambda: None)
    monkeypatch.setattr("sys.stdin", io.StringIO("olivia-demo\n"))
    code = main(["vm", "connect", "HV01", "shop-web01", "--demo", "--user", "olivia",
                 "--password-stdin"])
    assert code == 1
    assert "No console viewer is installed" in capsys.readouterr().err


# --- enhanced session mode -------------------------------------------------------------------------

def test_freerdp_asks_for_an_enhanced_session_only_when_the_host_says_the_vm_offers_it() -> None:
    viewer = Viewer("freerdp", "xfreerdp")
    assert f"/vmconnect:{WEB01};EnhancedMode=1" in command(viewer, "hv", "w", WEB01,
                                                           enhanced=True).argv
    assert f"/pcb:{WEB01};EnhancedMode=1" in command(viewer, "hv", "w", WEB01, port=5000,
                                                     enhanced=True).argv
    assert f"/vmconnect:{WEB01}" in command(viewer, "hv", "w", WEB01).argv
    # vmconnect chooses by itself.
    assert command(Viewer("vmconnect", "vmconnect.exe"), "hv", "w", WEB01, enhanced=True).argv == [
        "vmconnect.exe", "hv", "w", "-G", WEB01]


def test_the_grant_says_whether_the_vm_offers_an_enhanced_session_now(lab: Lab,
                                                                      tmp_path: Path) -> None:
    """HV03 allows enhanced session mode and build-agent-01's guest offers it while it runs
    (Msvm_ComputerSystem.EnhancedSessionModeState 2); shop-web01's host (HV01) does not."""
    agent = next(v for v in lab.hosts["HV03"].host.vms if v.name == "build-agent-01")
    bea = jea(lab, "HV03", "bea")
    olivia = jea(lab, "HV01", "olivia")
    try:
        granted = bea.console_access(agent.id, "grant").console
        assert granted is not None and granted.granted and granted.enhanced
        web = olivia.console_access(WEB01, "grant").console
        assert web is not None and web.granted and not web.enhanced
    finally:
        bea.close()
        olivia.close()
    folder = tmp_path / "bin"
    folder.mkdir()
    viewer = Viewer("freerdp", str(fake_freerdp(folder)))
    config = next(c for c in lab.host_configs() if c.name == "HV03")
    built = console_command(viewer, config, agent.name, agent.id, "LAB\\bea",
                            lab.credentials["LAB\\bea"], enhanced=True)
    assert launch(built).wait(timeout=30) == 0
    listener = lab.hosts["HV03"].console
    assert listener is not None
    attempt = listener.attempts[-1]
    assert (attempt.vm_id, attempt.enhanced, attempt.allowed) == (agent.id, True, True)

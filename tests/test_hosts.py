"""The default endpoint's clients against the lab's real WS-Management hosts: the PSRP client
(pypsrp, a kept session) and the WinRS fallback (pywinrm's real Protocol), answering alike; the
JEA client's parity with both is in tests/lab/test_psrp.py."""
from __future__ import annotations

import socket
import threading
import time

import pytest

from console.config import HostConfig
from console.errors import (
    CertificateUntrusted, CredentialsRejected, HostAccessDenied, HostError, HostTimeout,
    HostUnreachable, InvalidParameter, NoDvdDrive, NoShutdownService, NotInLibrary,
    ReplicaRefused, VMNotFound, WrongState,
)
from console.hosts import (
    ActionOutcome, AdminClient, CredentialGate, Credentials, HostClient, HostPool,
    HostStatus, status_of,
)

# --- pure units: no host contacted ------------------------------------------------------------


def _client(url: str = "http://127.0.0.1:9/wsman", timeout: float = 2.0) -> HostClient:
    return HostClient(HostConfig("HV09", url, endpoint="admin", timeout=timeout),
                      Credentials("LAB\\adam", "s3cret-pw"))


def test_credentials_never_show_the_password() -> None:
    credentials = Credentials("LAB\\adam", "s3cret-pw")
    for text in (repr(credentials), str(credentials), f"{credentials}", str([credentials])):
        assert "s3cret-pw" not in text
        assert "adam" in text


def test_gate_closes_once_and_reopens_with_new_credentials() -> None:
    gate = CredentialGate(Credentials("LAB\\adam", "old"))
    gate.check()
    gate.close("HV01")
    gate.close("HV02")  # the first host that rejected is the one named
    with pytest.raises(CredentialsRejected, match="HV01"):
        gate.check()
    before = gate.generation
    gate.reopen(Credentials("LAB\\adam", "new"))
    gate.check()
    assert gate.generation == before + 1
    assert gate.credentials is not None and gate.credentials.password == "new"


@pytest.mark.parametrize("stdout", [
    b"", b"WARNING: something\r\n{\"ok\":true,\"data\":{}}", b"{\"ok\":true}{\"ok\":true}",
    b"[1,2]", b"{\"data\":{}}", b"\xff\xfe garbage",
])
def test_anything_but_one_json_document_is_unexpected(stdout: bytes) -> None:
    with pytest.raises(HostError, match="HV09 answered something unexpected") as caught:
        _client()._document((stdout, b"", 0))
    assert type(caught.value) is HostError
    assert len(str(caught.value)) < 300


def test_unexpected_answer_shows_200_plain_characters() -> None:
    noise = ("\x1b[31m" + "x" * 500).encode()
    with pytest.raises(HostError) as caught:
        _client()._document((noise, b"", 0))
    message = str(caught.value)
    assert "\x1b" not in message and "\\x1b" in message
    assert message.count("x") < 220


def test_clixml_error_stream_is_shown_as_text() -> None:
    stderr = (b'#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell'
              b'/2004/04"><S S="Error">The term is not recognized_x000D__x000A_</S></Objs>')
    with pytest.raises(HostError, match="The term is not recognized"):
        _client()._document((b"", stderr, 1))


@pytest.mark.parametrize(("code", "exception"), [
    ("not_found", VMNotFound), ("wrong_state", WrongState),
    ("no_shutdown_service", NoShutdownService), ("replica", ReplicaRefused),
    ("not_in_library", NotInLibrary), ("no_dvd_drive", NoDvdDrive),
    ("checkpoints_disabled", WrongState), ("invalid_parameter", InvalidParameter),
    ("access_denied", HostAccessDenied), ("denied", HostAccessDenied), ("disk_on_fire", HostError),
])
def test_error_codes_map_to_exceptions_naming_host_and_vm(code: str, exception: type) -> None:
    document = b'{"ok":false,"error":{"code":"%s","message":"It went wrong."}}' % code.encode()
    with pytest.raises(exception) as caught:
        _client()._document((document, b"", 0), vm_id="42e4aaca-7231-5411-b96b-d03849b0dae1")
    assert type(caught.value) is exception
    assert "HV09" in str(caught.value) and "42e4aaca" in str(caught.value)
    assert "It went wrong." in str(caught.value)
    assert caught.value.code == code and caught.value.host == "HV09"


def test_a_done_action_carries_a_warning_beside_it(capsys: pytest.CaptureFixture) -> None:
    from console.commands.hosts import _print_outcome
    from console.inventory import VM, Action
    data = {"vm": {"id": "42e4aaca-7231-5411-b96b-d03849b0dae1", "state": "Saved", "status": ""}}
    assert ActionOutcome.done(data, "save done on HV09.").warning == ""
    outcome = ActionOutcome.done(data, "save done on HV09.", warning="HV09: no event was written")
    assert (outcome.status, outcome.vm_state, outcome.warning) == (
        "ok", "Saved", "HV09: no event was written")
    vm = VM.from_json("HV09", {"id": data["vm"]["id"], "name": "shop-web01", "state": "Running"})
    _print_outcome(Action.SAVE, vm, outcome)
    printed = capsys.readouterr()
    assert printed.out.startswith("save done: shop-web01 is Saved")
    assert printed.err == "warning: HV09: no event was written\n"


def test_status_of_each_failure() -> None:
    assert status_of(None, 0.1, 5.0) is HostStatus.OK
    assert status_of(None, 6.0, 5.0) is HostStatus.SLOW
    assert status_of(HostUnreachable("x"), 0, 5) is HostStatus.UNREACHABLE
    assert status_of(HostTimeout("x"), 0, 5) is HostStatus.UNREACHABLE
    assert status_of(CertificateUntrusted("x"), 0, 5) is HostStatus.UNREACHABLE
    assert status_of(HostAccessDenied("x"), 0, 5) is HostStatus.ACCESS_DENIED
    assert status_of(CredentialsRejected("x"), 0, 5) is HostStatus.CREDENTIALS_REJECTED
    assert status_of(HostError("x"), 0, 5) is HostStatus.ERROR


def test_the_winrs_client_speaks_kerberos_through_pyspnego() -> None:
    """pywinrm's own Kerberos needs pykerberos; the WinRS client's comes from pyspnego (the PSRP
    clients' library), so a host set to Kerberos gets it; a password over negotiate stays NTLM
    there, as it always was (tests/test_kerberos.py talks Kerberos to the lab)."""
    kerberos = HostClient(HostConfig("HV09", "http://127.0.0.1:9/wsman", transport="kerberos"),
                          Credentials("LAB\\adam", "pw"))
    assert kerberos.transport == "kerberos"
    negotiate = HostClient(HostConfig("HV09", "http://127.0.0.1:9/wsman", transport="negotiate"),
                           Credentials("LAB\\adam", "pw"))
    assert negotiate.transport == "ntlm"
    ticket = HostClient(HostConfig("HV09", "http://127.0.0.1:9/wsman"), Credentials.ticket("LAB\\adam"))
    assert ticket.transport == "kerberos"


# --- a real socket: nothing listening, or listening and counting ------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _either(protocol: str, url: str) -> AdminClient | HostClient:
    config = HostConfig("HV09", url, endpoint="admin", timeout=2.0, protocol=protocol)
    kind = HostClient if protocol == "winrs" else AdminClient
    return kind(config, Credentials("LAB\\adam", "s3cret-pw"))


@pytest.mark.parametrize("protocol", ["psrp", "winrs"])
def test_closed_port_is_unreachable_quickly(protocol: str) -> None:
    client = _either(protocol, f"http://127.0.0.1:{_free_port()}/wsman")
    start = time.monotonic()
    with pytest.raises(HostUnreachable, match="connection refused") as caught:
        client.inventory()
    assert time.monotonic() - start < 2.0
    assert caught.value.host == "HV09"
    assert type(caught.value) is HostUnreachable


@pytest.mark.parametrize("protocol", ["psrp", "winrs"])
def test_too_long_a_command_is_refused_before_anything_is_sent(protocol: str) -> None:
    accepted: list[object] = []
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.settimeout(0.5)
        port = server.getsockname()[1]
        client = _either(protocol, f"http://127.0.0.1:{port}/wsman")

        def accept() -> None:
            try:
                accepted.append(server.accept())
            except OSError:
                pass

        watcher = threading.Thread(target=accept)
        watcher.start()
        with pytest.raises(InvalidParameter, match="too long for a host"):
            client.checkpoint("42e4aaca-7231-5411-b96b-d03849b0dae1", "create", name="n" * 70_000)
        watcher.join()
    assert accepted == []


# --- the lab ----------------------------------------------------------------------------------

import uuid  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from lab.auth import Accounts  # noqa: E402
from lab.certs import make_ca  # noqa: E402
from lab.executor import Executor  # noqa: E402
from lab.hyperv import Durations, Host  # noqa: E402
from lab.psrp import DefaultEndpoint  # noqa: E402
from lab.runner import Lab  # noqa: E402
from lab.world import World  # noqa: E402
from lab.wsman import WSManServer  # noqa: E402

ADAM = Credentials("LAB\\adam", "adam-demo")
WEB01 = "42e4aaca-7231-5411-b96b-d03849b0dae1"
APP01 = "a8c164c6-ea2b-525b-b0de-c3c08e182c75"
APP01_PARENT = "5e0f3a51-8c2d-4b7a-a1e4-6d9c2f8b3a10"
DB01 = "606602fb-a784-5dc2-a658-664e33ff98a2"
FILES = "bc797c1d-65e1-5032-8525-d184e732f820"
AGENT03 = "73a32aa9-af87-512f-9d0f-a4b7cb52346b"
LIBRARY = ["D:\\ISO\\"]


# The default endpoint's two ways in: a kept PSRP session (AdminClient), the WinRS fallback
# (HostClient). Every test of the lab below runs both unless it is about one of them.
PROTOCOLS = ("psrp", "winrs")


@dataclass
class LabHosts:
    world: World
    accounts: Accounts
    servers: dict[str, WSManServer]
    executors: dict[str, Executor]
    ca_file: Path | None = None
    protocol: str = "psrp"
    defaults: dict[str, DefaultEndpoint] = field(default_factory=dict)  # Microsoft.PowerShell

    def host(self, name: str) -> Host:
        return self.world.host(name).host

    def config(self, name: str, timeout: float = 5.0, **extra: object) -> HostConfig:
        return HostConfig(name, self.servers[name].url, endpoint="admin", timeout=timeout,
                          protocol=self.protocol, **extra)  # type: ignore[arg-type]

    def configs(self, timeout: float = 5.0) -> list[HostConfig]:
        return [self.config(name, timeout) for name in self.servers]

    def client(self, name: str = "HV01", credentials: Credentials = ADAM,
               timeout: float = 5.0) -> AdminClient | HostClient:
        return self.client_of(self.config(name, timeout), credentials)

    def client_of(self, config: HostConfig,
                  credentials: Credentials = ADAM) -> AdminClient | HostClient:
        kind = HostClient if config.protocol == "winrs" else AdminClient
        return kind(config, credentials)

    def requests(self, name: str) -> int:
        return self.servers[name].stats.requests


def start_lab(durations: Durations | None = None, https: bool = False,
              protocol: str = "psrp") -> Iterator[LabHosts]:
    """The lab runner's hosts (the demo world), with instant cmdlets unless told otherwise."""
    with Lab.start(durations=durations or Durations.instant(), https=https) as lab:
        yield LabHosts(lab.world, lab.accounts,
                       {name: h.server for name, h in lab.hosts.items()},
                       {name: h.executor for name, h in lab.hosts.items()}, lab.ca_file,
                       protocol, {name: h.default for name, h in lab.hosts.items() if h.default})


@pytest.fixture(params=PROTOCOLS)
def lab(request: pytest.FixtureRequest) -> Iterator[LabHosts]:
    yield from start_lab(protocol=request.param)


# A process has one lab domain at a time (one NTLM credential file), so every test has its own lab.
shared_lab = lab
# The parameter examples share their test's lab: each leaves the VM as it found it.
SHARED = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


# Transport and credentials

def test_ntlm_over_http_seals_every_message(lab: LabHosts) -> None:
    client = lab.client()
    vms = client.inventory()
    assert {vm.id for vm in vms} >= {WEB01, APP01, DB01, FILES}
    assert all(vm.host == "HV01" for vm in vms)
    stats = lab.servers["HV01"].stats
    assert stats.requests_after_logon > 0
    assert stats.encrypted_requests >= stats.requests_after_logon
    assert stats.unencrypted_refused == 0


def test_a_kept_session_costs_three_requests_a_read_and_no_process(lab: LabHosts) -> None:
    # PSRP: the pipeline's Command, its output, its clean-up (Signal), in the kept runspace pool.
    # WinRS: Command, its standard input (the script), output, clean-up, and powershell.exe
    # started each time. Neither opens a new shell or logs on again.
    client = lab.client()
    client.inventory()
    before = lab.servers["HV01"].stats.as_dict()
    for _ in range(5):
        client.vm_state([WEB01])
    after = lab.servers["HV01"].stats.as_dict()
    per_read, processes = (3, 0) if lab.protocol == "psrp" else (4, 1)
    assert after["requests"] - before["requests"] == 5 * per_read
    assert after["process_starts"] - before["process_starts"] == 5 * processes
    assert after["connections"] == before["connections"] and after["logons"] == before["logons"]
    client.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_https_with_the_test_ca(tmp_path: Path, protocol: str) -> None:
    other_ca = make_ca(tmp_path / "other", "Someone Else's CA")
    for lab in start_lab(https=True, protocol=protocol):
        trusted = lab.client_of(lab.config("HV01", ca_file=str(lab.ca_file)))
        assert trusted.config.url.startswith("https://")
        assert len(trusted.inventory()) >= 4
        assert lab.servers["HV01"].stats.encrypted_requests == 0  # TLS protects the channel
        untrusted = lab.client_of(lab.config("HV02", ca_file=str(other_ca.cert)))
        with pytest.raises(CertificateUntrusted, match="certificate is not trusted") as caught:
            untrusted.inventory()
        assert "HV02" in str(caught.value)
        assert lab.servers["HV02"].stats.logons == 0  # no password was offered to it
        system_store = lab.client_of(lab.config("HV03"))
        with pytest.raises(CertificateUntrusted):
            system_store.inventory()
        for client in (trusted, untrusted, system_store):
            client.close()


def test_wrong_password_stops_every_other_host(lab: LabHosts) -> None:
    with HostPool(lab.configs(), Credentials("LAB\\adam", "wrong")) as pool:
        result = pool.inventory_all()
        statuses = {name: r.status for name, r in result.hosts.items()}
        assert set(statuses.values()) == {HostStatus.CREDENTIALS_REJECTED}
        assert "rejected the user name or password" in str(result.hosts["HV01"].error)
        # Only the first host was asked: the others received no request at all.
        assert lab.requests("HV01") > 0
        assert lab.requests("HV02") == 0 and lab.requests("HV03") == 0
        assert lab.accounts.get("LAB\\adam").bad_logons == 1  # type: ignore[union-attr]
        # Still closed: no call reaches any host, in any thread.
        before = {name: lab.requests(name) for name in lab.servers}
        errors: list[Exception] = []

        def read(host: str) -> None:
            try:
                pool.client(host).vm_state([WEB01])
            except CredentialsRejected as exc:
                errors.append(exc)

        threads = [threading.Thread(target=read, args=(h,)) for h in lab.servers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(errors) == 3
        assert {name: lab.requests(name) for name in lab.servers} == before
        # The right password reopens the gate, and every host answers again.
        pool.gate.reopen(ADAM)
        again = pool.inventory_all()
        assert {r.status for r in again.hosts.values()} == {HostStatus.OK}
        assert len(again.vms) == sum(len(lab.host(h).vms) for h in lab.servers)


def test_locked_out_account_is_rejected_with_a_sentence_saying_so(lab: LabHosts) -> None:
    for _ in range(lab.accounts.lockout_threshold):
        with pytest.raises(CredentialsRejected):
            lab.client_of(lab.config("HV01"), Credentials("LAB\\adam", "wrong")).inventory()
    assert lab.accounts.get("LAB\\adam").locked  # type: ignore[union-attr]
    with pytest.raises(CredentialsRejected, match="locked out") as caught:
        lab.client_of(lab.config("HV02")).inventory()  # the right password, locked account
    assert caught.value.host == "HV02"
    assert lab.servers["HV02"].events.where(event="logon", outcome="locked_out")


def test_an_account_without_host_rights_is_denied(lab: LabHosts) -> None:
    # henry may connect but is not a Hyper-V administrator: the default endpoint refuses him.
    with pytest.raises(HostAccessDenied, match="HV02") as caught:
        lab.client("HV02", Credentials("LAB\\henry", "henry-demo")).inventory()
    assert caught.value.code == "access_denied"


# Every operation, every simulated error

def test_every_operation(lab: LabHosts) -> None:
    client = lab.client()
    facts = client.host_facts(LIBRARY)
    assert facts.name == "HV01" and facts.total_bytes > facts.free_bytes > 0
    assert {iso.name for iso in facts.isos} >= {"WindowsServer2022.iso"}
    assert client.vm_state([WEB01, str(uuid.uuid4())]) == {WEB01: ("Running", "Operating normally")}

    assert client.power(WEB01, "save").vm_state == "Saved"
    assert client.power(WEB01, "start").vm_state == "Running"
    assert client.power(WEB01, "pause").vm_state == "Paused"
    assert client.power(WEB01, "resume").vm_state == "Running"
    assert client.power(WEB01, "reset").vm_state == "Running"
    assert client.power(WEB01, "shutdown").vm_state == "Off"

    created = client.checkpoint(WEB01, "create", name="before patch")
    assert created.status == "ok" and created.checkpoint is not None
    assert created.checkpoint.name == "before patch"
    renamed = client.checkpoint(WEB01, "rename", checkpoint_id=created.checkpoint.id,
                                name="before the patch")
    assert renamed.checkpoint is not None and renamed.checkpoint.name == "before the patch"
    assert renamed.checkpoint.id == created.checkpoint.id
    applied = client.checkpoint(WEB01, "apply", checkpoint_id=created.checkpoint.id)
    assert applied.status == "ok"
    web01 = next(v for v in client.inventory() if v.id == WEB01)
    assert web01.parent_checkpoint_id == created.checkpoint.id  # "Now" under the applied one
    client.checkpoint(WEB01, "delete", checkpoint_id=created.checkpoint.id)
    subtree = client.checkpoint(APP01, "delete_subtree", checkpoint_id=APP01_PARENT)
    assert subtree.status == "ok"
    assert [c for c in lab.host("HV01").vm(APP01).checkpoints] == []

    iso = facts.isos[0].path
    mounted = client.media(WEB01, "mount", "SCSI", 0, 1, path=iso, library=LIBRARY)
    assert mounted.drive is not None and mounted.drive.path == iso
    ejected = client.media(WEB01, "eject", "SCSI", 0, 1, library=LIBRARY)
    assert ejected.drive is not None and ejected.drive.path is None
    vm = next(v for v in client.inventory() if v.id == WEB01)
    assert vm.state == "Off" and vm.dvd_drives[0].path is None


@pytest.mark.parametrize(("host", "call", "exception", "code"), [
    ("HV01", lambda c: c.power(str(uuid.uuid4()), "start"), VMNotFound, "not_found"),
    ("HV01", lambda c: c.power(WEB01, "start"), WrongState, "wrong_state"),
    ("HV01", lambda c: c.power(DB01, "shutdown"), NoShutdownService, "no_shutdown_service"),
    ("HV01", lambda c: c.power(FILES, "start"), ReplicaRefused, "replica"),
    ("HV01", lambda c: c.media(WEB01, "mount", "SCSI", 0, 1, path="C:\\Windows\\x.iso",
                               library=LIBRARY), NotInLibrary, "not_in_library"),
    ("HV01", lambda c: c.media(WEB01, "mount", "SCSI", 0, 1,
                               path="D:\\ISO\\Linked\\notepad.iso", library=LIBRARY),
     NotInLibrary, "not_in_library"),
    ("HV03", lambda c: c.media(AGENT03, "mount", "SCSI", 0, 1,
                               path="D:\\ISO\\WindowsServer2022.iso", library=LIBRARY),
     NoDvdDrive, "no_dvd_drive"),
    ("HV01", lambda c: c.checkpoint(WEB01, "apply", checkpoint_id=str(uuid.uuid4())),
     VMNotFound, "not_found"),
])
def test_every_simulated_error(shared_lab: LabHosts, host: str, call: object,
                               exception: type, code: str) -> None:
    client = shared_lab.client(host)
    with pytest.raises(exception) as caught:
        call(client)  # type: ignore[operator]
    assert type(caught.value) is exception and caught.value.code == code
    assert host in str(caught.value)


def test_checkpoints_disabled(lab: LabHosts) -> None:
    lab.host("HV01").vm(WEB01).checkpoint_type = "Disabled"
    with pytest.raises(WrongState) as caught:
        lab.client().checkpoint(WEB01, "create", name="x")
    assert caught.value.code == "checkpoints_disabled"


# Injection: parameters are data, whatever they hold

NASTY = st.text(alphabet=st.sampled_from(list("a'\"`$();|&<>\n\r\t\x00\u202e\u200f{}[]#%\\/ é漢"
                                            )), min_size=1, max_size=120)


@SHARED
@given(name=NASTY)
def test_checkpoint_names_travel_unchanged(shared_lab: LabHosts, name: str) -> None:
    executor = shared_lab.executors["HV01"]
    client = shared_lab.client()
    outcome = client.checkpoint(WEB01, "create", name=name)
    assert executor.calls_of("Checkpoint-VM")[-1].params["SnapshotName"] == name
    assert outcome.checkpoint is not None and outcome.checkpoint.name == name
    client.checkpoint(WEB01, "delete", checkpoint_id=outcome.checkpoint.id)


@SHARED
@given(path=NASTY)
def test_iso_paths_travel_unchanged_and_stay_outside_the_library(shared_lab: LabHosts,
                                                                 path: str) -> None:
    executor = shared_lab.executors["HV01"]
    sent = "D:\\ISO\\" + path + "`$(x)"
    with pytest.raises(NotInLibrary) as refused:
        shared_lab.client().media(WEB01, "mount", "SCSI", 0, 1, path=sent, library=LIBRARY)
    # The host names the very path it was given, and nothing reached Hyper-V.
    assert sent + " is not an ISO file" in str(refused.value)
    assert executor.calls_of("Set-VMDvdDrive") == []


def test_a_1000_character_name_is_refused_and_a_huge_one_never_sent(shared_lab: LabHosts) -> None:
    executor = shared_lab.executors["HV01"]
    before = len(executor.calls)
    with pytest.raises(InvalidParameter, match="at most 100 characters"):
        shared_lab.client().checkpoint(WEB01, "create", name="'; Remove-VM *; '" + "x" * 1000)
    assert len(executor.calls) == before  # the script refused it before Checkpoint-VM
    requests = shared_lab.requests("HV01")
    with pytest.raises(InvalidParameter, match="too long for a host"):
        shared_lab.client().media(WEB01, "mount", "SCSI", 0, 1, path="D:\\ISO\\" + "y" * 70_000,
                                  library=LIBRARY)
    assert shared_lab.requests("HV01") == requests


# Faults: typed errors within the timeout; the other hosts' results still arrive

@pytest.mark.parametrize(("fault", "status", "exception", "words"), [
    ({"fail_share": 1.0}, HostStatus.ERROR, HostError, "internal error"),
    ({"drop_share": 1.0}, HostStatus.UNREACHABLE, HostUnreachable, "dropped"),
    ({"silent": True}, HostStatus.UNREACHABLE, HostTimeout, "did not answer within 1 s"),
    ({"latency_ms": 1500}, HostStatus.UNREACHABLE, HostTimeout, "within 1 s"),
])
def test_a_faulty_host_never_blanks_the_others(lab: LabHosts, fault: dict[str, object],
                                               status: HostStatus, exception: type,
                                               words: str) -> None:
    with HostPool(lab.configs(timeout=1.0), ADAM) as pool:
        assert pool.inventory_all().hosts["HV02"].status is HostStatus.OK  # credentials tried
        for key, value in fault.items():
            setattr(lab.servers["HV02"].faults, key, value)
        start = time.monotonic()
        result = pool.inventory_all()
        elapsed = time.monotonic() - start
    assert result.hosts["HV02"].status is status
    assert type(result.hosts["HV02"].error) is exception
    assert words in str(result.hosts["HV02"].error)
    assert elapsed < 3.5  # one timeout, plus at most one reopen of the kept shell
    for name in ("HV01", "HV03"):
        assert result.hosts[name].status is HostStatus.OK
        assert len(result.hosts[name].vms) == len(lab.host(name).vms)


def test_latency_below_the_timeout_is_slow_not_failed(lab: LabHosts) -> None:
    lab.servers["HV03"].faults.latency_ms = 150
    with HostPool(lab.configs(timeout=5.0), ADAM, slow_after=0.3) as pool:
        result = pool.inventory_all()
    assert result.hosts["HV03"].status is HostStatus.SLOW
    assert len(result.hosts["HV03"].vms) == len(lab.host("HV03").vms)
    assert result.hosts["HV01"].status is HostStatus.OK


def test_a_broken_kept_shell_is_reopened_once_for_reads(lab: LabHosts) -> None:
    client = lab.client()
    client.inventory()
    faults = lab.servers["HV01"].faults
    faults.drop_share = 1.0
    with pytest.raises(HostUnreachable):
        client.vm_state([WEB01])
    faults.drop_share = 0.0
    # The next read opens a new connection and shell by itself.
    assert client.vm_state([WEB01]) == {WEB01: ("Running", "Operating normally")}


def test_actions_are_never_retried(lab: LabHosts) -> None:
    executor = lab.executors["HV01"]
    faults = lab.servers["HV01"].faults
    faults.fail_share = 1.0
    with pytest.raises(HostError):
        lab.client().power(WEB01, "shutdown")
    assert executor.calls_of("power") == []
    assert lab.servers["HV01"].stats.injected_failures == 1  # one request, no second try


# Pending: slower than the client's timeout is not a failure

@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_an_action_slower_than_the_timeout_is_pending_then_confirmed(protocol: str) -> None:
    for lab in start_lab(Durations.instant(), protocol=protocol):
        lab.host("HV01").durations.shutdown = 2.5
        client = lab.client(timeout=1.0)
        # As the action service does: the state read first (it opens a PSRP session, which on a
        # loaded machine may take a good part of the one second).
        assert client.vm_state([WEB01])[WEB01][0] == "Running"
        start = time.monotonic()
        outcome = client.power(WEB01, "shutdown")
        assert time.monotonic() - start < 2.0
        assert outcome.status == "pending"
        assert "may still complete" in outcome.message
        assert len(lab.executors["HV01"].calls_of("Stop-VM")) == 1  # sent once, never again
        assert client.vm_state([WEB01])[WEB01][0] == "Stopping"
        confirmed = client.confirm(WEB01, {"Off"}, limit=5.0, interval=0.2)
        assert confirmed.status == "ok" and confirmed.vm_state == "Off"
        assert len(lab.executors["HV01"].calls_of("Stop-VM")) == 1


def test_confirm_gives_up_as_pending_after_its_limit(lab: LabHosts) -> None:
    outcome = lab.client().confirm(WEB01, {"Off"}, limit=0.3, interval=0.1)
    assert outcome.status == "pending" and outcome.vm_state == "Running"
    gone = lab.client().confirm(str(uuid.uuid4()), {"Off"}, limit=0.3, interval=0.1)
    assert gone.status == "failed"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_actions_on_one_host_run_in_order_and_hosts_in_parallel(protocol: str) -> None:
    for lab in start_lab(Durations.instant(), protocol=protocol):
        lab.host("HV01").durations.save = 0.4
        lab.host("HV01").durations.start = 0.4
        lab.host("HV02").durations.turnoff = 0.4
        with HostPool(lab.configs(), ADAM) as pool:
            start = time.monotonic()
            first = pool.submit_action("HV01", lambda c: c.power(WEB01, "save"))
            second = pool.submit_action("HV01", lambda c: c.power(WEB01, "start"))
            other = pool.submit_action(
                "HV02", lambda c: c.power("58a006d8-4cd7-53ac-aa46-a10dc2e2cb10", "turnoff"))
            assert first.result().vm_state == "Saved"  # the start waited for the save
            assert second.result().vm_state == "Running"
            assert other.result().vm_state == "Off"
            elapsed = time.monotonic() - start
        assert 0.8 <= elapsed < 1.6  # HV02's action ran beside HV01's two
        assert [c.cmdlet for c in lab.executors["HV01"].calls] == ["Save-VM", "Start-VM"]


def test_the_pool_speaks_each_hosts_endpoint_and_protocol() -> None:
    from console.hosts import JeaClient

    configs = [HostConfig("HV01", "http://127.0.0.1:9/wsman", endpoint="jea"),
               HostConfig("HV02", "http://127.0.0.1:9/wsman", endpoint="admin"),
               HostConfig("HV03", "http://127.0.0.1:9/wsman", endpoint="admin", protocol="winrs")]
    with HostPool(configs, ADAM) as pool:
        assert isinstance(pool.client("hv01"), JeaClient)
        assert isinstance(pool.client("HV02"), AdminClient)  # PSRP unless told otherwise
        assert isinstance(pool.client("HV03"), HostClient)
        assert len({id(pool.client(h).gate) for h in ("HV01", "HV02", "HV03")}) == 1


# The kept PSRP session: what an operation costs once it is open, and how it lives on

@pytest.fixture
def psrp_lab() -> Iterator[LabHosts]:
    yield from start_lab(protocol="psrp")


def test_an_action_once_the_session_is_open_is_six_requests_and_no_process(
        psrp_lab: LabHosts) -> None:
    # The action service's job: read the VM's state, then act (console/actions.py).
    lab = psrp_lab
    client = lab.client()
    client.inventory()  # opens the session: one process on the host, the module imported
    stats, executor = lab.servers["HV01"].stats, lab.executors["HV01"]
    before, imports = stats.as_dict(), executor.module_imports
    assert client.vm_state([WEB01])[WEB01][0] == "Running"
    assert client.power(WEB01, "save").vm_state == "Saved"
    after = stats.as_dict()
    assert after["requests"] - before["requests"] == 6
    assert after["process_starts"] == before["process_starts"] == 1
    assert after["logons"] == before["logons"] and executor.module_imports == imports
    client.close()


def test_an_idle_connection_is_replaced_and_the_session_kept(psrp_lab: LabHosts) -> None:
    lab = psrp_lab
    client = lab.client()
    client.vm_state([WEB01])
    stats = lab.servers["HV01"].stats
    logons, starts = stats.logons, stats.process_starts
    client._last_used -= 120  # as if the refresh came two minutes later
    assert client.vm_state([WEB01])[WEB01][0] == "Running"
    assert stats.logons == logons + 1  # a new connection, logged on again ...
    assert stats.process_starts == starts  # ... to the same runspace pool
    client.close()


def test_a_session_the_host_lost_is_opened_again_for_a_read_not_for_an_action(
        psrp_lab: LabHosts) -> None:
    lab = psrp_lab
    client = lab.client()
    client.vm_state([WEB01])
    endpoint = lab.defaults["HV01"]
    endpoint._pools.clear()  # WinRM restarted (a JEA registration does that)
    assert client.vm_state([WEB01])[WEB01][0] == "Running"  # a new pool, once
    assert lab.servers["HV01"].stats.process_starts == 2
    endpoint._pools.clear()
    with pytest.raises(HostError, match="was not found"):
        client.power(WEB01, "save")  # never sent twice: it fails, nothing ran
    assert lab.executors["HV01"].calls_of("Save-VM") == []
    assert client.power(WEB01, "save").vm_state == "Saved"  # the next call opens a new one
    client.close()


def test_a_long_action_holds_up_a_read_for_at_most_a_poll(psrp_lab: LabHosts) -> None:
    from console.hosts import psrp
    lab = psrp_lab
    lab.host("HV01").durations.shutdown = 4.0
    client = lab.client(timeout=10.0)
    client.inventory()
    done: list[ActionOutcome] = []
    action = threading.Thread(target=lambda: done.append(client.power(WEB01, "shutdown")))
    action.start()
    time.sleep(0.3)  # the action's pipeline is running, its Receive waiting on the host
    start = time.monotonic()
    assert client.vm_state([WEB01])[WEB01][0] == "Stopping"
    # At most the action's current Receive first (a poll), never the whole shut down.
    assert time.monotonic() - start < psrp.POLL_SECONDS + 1.0
    action.join()
    assert done[0].status == "ok" and done[0].vm_state == "Off"
    client.close()


def test_a_pending_action_is_never_stopped_by_closing_the_session(psrp_lab: LabHosts) -> None:
    lab = psrp_lab
    lab.host("HV01").durations.shutdown = 1.5
    client = lab.client(timeout=1.0)
    assert client.power(WEB01, "shutdown").status == "pending"
    client.close()
    assert lab.defaults["HV01"].pools == 1  # left for the host to reap, the action still running in it
    deadline = time.monotonic() + 5
    while lab.host("HV01").vm(WEB01).state != "Off":
        assert time.monotonic() < deadline
        time.sleep(0.05)

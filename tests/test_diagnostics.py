"""console/diagnostics.py: the support report (no secret in it), the first-run connection check
against the lab, and the Hyper-V host look-up's reading of the directory's answer."""
from __future__ import annotations

import logging
import tomllib
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from ldap3 import MOCK_SYNC, OFFLINE_AD_2012_R2, Connection, Server

from console import __version__, diagnostics, logs
from console.config import Config, HostConfig, user_config_path
from console.diagnostics import (
    HYPERV_FILTER, ConnectionCheck, HostCheck, check_connection, collect, discover_hyperv_hosts,
    versions,
)
from console.errors import DirectoryError, SignInError
from console.identity import Identity
from lab.hyperv import Durations
from lab.runner import Lab
from lab.directory import LabDirectory

ADAM = Identity(sid="S-1-5-21-1000-2000-3000-1103", name="LAB\\adam")


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    path = logs.setup_logging(logging.INFO, folder=tmp_path / "logs")
    yield path
    logs.stop_logging()
    logging.getLogger().setLevel(logging.WARNING)


# --- the support report ---------------------------------------------------------------------------

def test_versions_name_the_console_python_and_each_library() -> None:
    found = versions({"Qt": "6.8.1"})
    assert found["hvconsole"] == __version__ and found["Qt"] == "6.8.1"
    assert found["frozen"] == "no" and found["Python"].split()[0].count(".") == 2
    for name in diagnostics.LIBRARIES:
        assert found[name] == metadata.version(name)


def test_a_library_that_is_missing_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    real = metadata.version

    def version(name: str) -> str:
        if name == "keyring":
            raise metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(diagnostics.metadata, "version", version)
    found = versions()
    assert found["keyring"] == "not installed" and found["ldap3"] == metadata.version("ldap3")


def test_the_report_holds_versions_configuration_and_the_logs_tail(log_file: Path) -> None:
    config = Config.from_dict({"directory": {"urls": ["ldaps://dc1.lab.example"]},
                               "hosts": [{"name": "HV01", "url": "https://hv01.lab.example/wsman"}]})
    logging.getLogger("hvconsole.test").info("inventory of HV01 took 0.2 s")
    report = collect(config, {"Qt": "6.8.1"}, log_lines=5)
    sections = [line for line in report.splitlines() if line.startswith("## ")]
    assert sections == ["## Versions", "## Credential store", "## Configuration",
                        f"## Log: last 5 lines of {log_file}"]
    assert f"hvconsole: {__version__}" in report and "Qt: 6.8.1" in report
    configuration = report.split("## Configuration\n", 1)[1].split("\n\n## Log")[0]
    assert configuration.splitlines()[0] == f"file: {user_config_path()}"
    assert Config.from_dict(tomllib.loads(configuration.split("\n", 1)[1])) == config
    assert report.rstrip().endswith("inventory of HV01 took 0.2 s")


def test_the_report_before_any_setup_or_log(log_file: Path) -> None:
    report = collect(None)
    assert "## Configuration" in report and "(none yet)" in report
    assert report.rstrip().endswith("(empty)")


def test_the_report_scrubs_a_secret_the_log_holds_from_before_it_was_known(log_file: Path) -> None:
    # A line written before the password was registered (an older run, a crash): the report masks
    # it on the way out all the same.
    log_file.parent.mkdir(parents=True, exist_ok=True)
    log_file.write_text("12:00 INFO MainThread ldap3: bind as LAB\\adam with Tr0ub4dor&3-diag\n"
                        "12:01 INFO MainThread x: retry password=hunter2-diag\n", encoding="utf-8")
    logs.redact("Tr0ub4dor&3-diag")
    report = collect(None)
    assert "Tr0ub4dor&3-diag" not in report and "hunter2-diag" not in report
    assert "bind as LAB\\adam with ***" in report and "password=***" in report


# --- the connection check -------------------------------------------------------------------------

def test_summary_of_a_check() -> None:
    check = ConnectionCheck(ADAM, (HostCheck("HV01", 4), HostCheck("HV02", 1),
                                   HostCheck("HV03", problem="HV03 cannot be reached.")))
    assert not check.ok
    assert check.summary() == ("Signed in as LAB\\adam.\nHV01: answered, 4 VMs visible.\n"
                               "HV02: answered, 1 VM visible.\nHV03: HV03 cannot be reached.")
    empty = ConnectionCheck(ADAM, ())
    assert empty.ok and empty.summary() == "Signed in as LAB\\adam.\nNo hosts are configured yet."


@pytest.fixture
def lab() -> Iterator[Lab]:
    with Lab.start(durations=Durations.instant()) as running:
        yield running


def test_check_connection_reads_every_host_and_reports_the_one_that_fails(lab: Lab) -> None:
    hosts = lab.host_configs("admin")
    dead = HostConfig("HV09", "http://127.0.0.1:9/wsman", endpoint="admin", timeout=2)
    check = check_connection(Config(hosts=[*hosts, dead]), "adam", "adam-demo", LabDirectory())
    assert check.identity.name == "LAB\\adam"
    answered = {h.host: h.vms for h in check.hosts if not h.problem}
    assert set(answered) == {h.name for h in hosts}
    assert all(count > 0 for count in answered.values())
    assert sum(answered.values()) == sum(len(h.host.vms) for h in lab.world.hosts)
    (failed,) = [h for h in check.hosts if h.problem]
    assert failed.host == "HV09" and "HV09" in failed.problem
    assert not check.ok


def test_a_refused_sign_in_contacts_no_host(lab: Lab) -> None:
    hosts = lab.host_configs("admin")
    with pytest.raises(SignInError):
        check_connection(Config(hosts=hosts), "adam", "wrong", LabDirectory())
    assert all(handle.server.stats.requests == 0 for handle in lab.hosts.values())


# --- finding the Hyper-V hosts in the directory ---------------------------------------------------

def _connection() -> Connection:
    server = Server("dc1.lab.example", get_info=OFFLINE_AD_2012_R2)
    return Connection(server, user="CN=adam,DC=lab,DC=example", password="x",
                      client_strategy=MOCK_SYNC)


def test_the_hosts_found_are_named_and_addressed_from_the_directorys_answer(
        monkeypatch: pytest.MonkeyPatch) -> None:
    conn = _connection()
    asked: dict[str, Any] = {}

    def paged_search(base: str, search_filter: str, scope: str, **options: Any) -> list[dict[str, Any]]:
        asked.update(base=base, filter=search_filter, scope=scope, **options)
        return [
            {"type": "searchResRef", "uri": ["ldap://other.lab.example/DC=other"]},
            {"type": "searchResEntry", "attributes": {"name": ["hv02"],
                                                       "dNSHostName": ["HV02.Lab.Example"]}},
            {"type": "searchResEntry", "attributes": {"name": "HV01", "dNSHostName": []}},
            {"type": "searchResEntry", "attributes": {"name": ["HV02"], "dNSHostName": ["x"]}},
            {"type": "searchResEntry", "attributes": {"name": [], "dNSHostName": ["nameless"]}},
        ]

    monkeypatch.setattr(conn.extend.standard, "paged_search", paged_search)
    hosts = discover_hyperv_hosts(conn, "DC=lab,DC=example")
    assert hosts == [HostConfig("HV01", "http://hv01:5985/wsman"),
                     HostConfig("HV02", "http://hv02.lab.example:5985/wsman")]
    assert asked["base"] == "DC=lab,DC=example" and asked["scope"] == "SUBTREE"
    assert asked["filter"] == HYPERV_FILTER
    assert asked["attributes"] == ["name", "dNSHostName"]


def test_the_look_up_asks_for_enabled_computers_with_the_hyperv_spn() -> None:
    assert "(objectCategory=computer)" in HYPERV_FILTER
    assert "(servicePrincipalName=Microsoft Virtual Console Service/*)" in HYPERV_FILTER
    # userAccountControl bit 2 (ACCOUNTDISABLE) through LDAP_MATCHING_RULE_BIT_AND, negated.
    assert "(!(userAccountControl:1.2.840.113556.1.4.803:=2))" in HYPERV_FILTER


def test_the_base_comes_from_a_session_when_not_given(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = _connection()
    bases: list[str] = []
    monkeypatch.setattr(conn.extend.standard, "paged_search",
                        lambda base, *args, **options: bases.append(base) or [])

    class Session:
        connection = conn
        base_dn = "DC=corp,DC=example"

    assert discover_hyperv_hosts(Session()) == []
    assert bases == ["DC=corp,DC=example"]


def test_finding_hosts_needs_an_ldap_connection() -> None:
    with pytest.raises(DirectoryError, match="enter the hosts by name"):
        discover_hyperv_hosts(LabDirectory().session("adam", "adam-demo"))

"""console/config.py: the settings file, every bad value named by its key, the policy location
from the machine-wide file only (and only when administrators alone can change it)."""
from __future__ import annotations

import os
import tomllib
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from console import config as config_module
from console import trust
from console.config import Config, DirectoryConfig, HostConfig, TrustedDomainConfig
from console.errors import ConfigError

FULL: dict[str, Any] = {
    "directory": {"urls": ["ldaps://dc1.lab.example", "ldap://dc2.lab.example"],
                  "domain": "lab.example", "netbios": "", "base_dn": "DC=lab,DC=example",
                  "ca_file": "C:\\ca.pem", "start_tls": True, "timeout": 7,
                  "skip_certificate_check": False},
    "hosts": [{"name": "HV01", "url": "https://hv01.lab.example:5986/wsman"},
              {"name": "HV02", "url": "http://hv02.lab.example:5985/wsman", "cluster": "CL1",
               "transport": "kerberos", "endpoint": "admin", "timeout": 12.5, "ca_file": ""}],
    "audit": {"path": "D:\\audit.jsonl"},
    "ui": {"refresh_seconds": 30},
}


def test_an_empty_file_gives_the_defaults() -> None:
    config = Config.from_dict({})
    assert config == Config()
    assert (config.hosts, config.policy_path, config.refresh_seconds, config.demo) == ([], "", 60, False)
    assert config.directory == DirectoryConfig(timeout=5.0)


def test_a_hosts_spn_and_allow_ntlm() -> None:
    host = Config.from_dict({"hosts": [{"name": "HV01", "url": "http://10.0.0.5:5985/wsman",
                                        "spn": "HTTP/hv01.lab.example", "allow_ntlm": False}]}).hosts[0]
    assert host.service_principal == ("HTTP", "hv01.lab.example")  # not the address
    assert host.auth == "kerberos"  # negotiate without NTLM is Kerberos alone
    for spn in ("hv01.lab.example", "HTTP/", "HTTP/hv01 lab", "HTTP/hv01@LAB.EXAMPLE"):
        with pytest.raises(ConfigError, match=r"hosts\[0\]\.spn must be a service principal name"):
            Config.from_dict({"hosts": [{"name": "HV01", "url": "http://hv01:5985/wsman", "spn": spn}]})
    with pytest.raises(ConfigError, match="transport ntlm contradicts hosts\\[0\\].allow_ntlm = false"):
        Config.from_dict({"hosts": [{"name": "HV01", "url": "http://hv01:5985/wsman",
                                     "transport": "ntlm", "allow_ntlm": False}]})


def test_every_setting_is_read_and_numbers_become_seconds() -> None:
    config = Config.from_dict(FULL)
    assert config.directory.urls == FULL["directory"]["urls"]
    assert (config.directory.start_tls, config.directory.timeout) == (True, 7.0)
    assert config.hosts[0] == HostConfig("HV01", "https://hv01.lab.example:5986/wsman")
    # Kerberos first, NTLM only as the last resort: the default since single sign-on.
    assert (config.hosts[0].transport, config.hosts[0].endpoint, config.hosts[0].timeout) == \
        ("negotiate", "jea", 30.0)
    assert (config.hosts[0].allow_ntlm, config.hosts[0].service_principal) == \
        (True, ("HTTP", "hv01.lab.example"))
    hv02 = config.hosts[1]
    assert (hv02.cluster, hv02.transport, hv02.endpoint, hv02.timeout) == ("CL1", "kerberos", "admin", 12.5)
    assert (config.policy_path, config.audit_path, config.refresh_seconds) == \
        ("", "D:\\audit.jsonl", 30)


def test_to_dict_and_back_is_the_same_configuration() -> None:
    config = Config.from_dict(FULL)
    assert Config.from_dict(config.to_dict()) == config
    # The policy location and the demo are never the person's to write.
    assert Config(policy_path="P:\\policy.toml", demo=True).to_dict() == Config().to_dict()
    assert Config.from_dict(Config().to_dict()) == Config()
    assert "policy" not in Config().to_dict() and "demo" not in Config().to_dict()


def test_save_writes_the_whole_file_and_load_reads_it_back(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "config.toml"
    config = Config.from_dict(FULL)
    assert config.save(path) == path
    assert sorted(p.name for p in path.parent.iterdir()) == ["config.toml"]  # no temporary left
    assert Config.load(path, tmp_path / "no-machine.toml") == config


def test_a_missing_file_loads_as_the_defaults(tmp_path: Path) -> None:
    assert Config.load(tmp_path / "nothing.toml", tmp_path / "no-machine.toml") == Config()


@pytest.fixture
def own_files_trusted(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test hook of console/trust.py: files of the account running the tests count as an
    administrator's (root's files always do)."""
    monkeypatch.setattr(trust, "trusted_uids", lambda: frozenset({0, os.getuid()}))


def test_the_policy_location_comes_from_the_machine_file_only(tmp_path: Path,
                                                              own_files_trusted: None) -> None:
    user = tmp_path / "config.toml"
    Config.from_dict({"hosts": FULL["hosts"]}).save(user)
    machine = tmp_path / "machine.toml"
    machine.write_text("[policy]\npath = '\\\\files\\hv\\policy.toml'\n", encoding="utf-8")
    assert Config.load(user, machine).policy_path == "\\\\files\\hv\\policy.toml"
    # A machine file that sets no policy sets none; the person's file cannot set one.
    machine.write_text("[policy]\n", encoding="utf-8")
    assert Config.load(user, machine).policy_path == ""
    user.write_text("[policy]\npath = 'C:\\\\Users\\\\me\\\\my-own-policy.toml'\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="policy.path cannot be set in .*: the delegation policy "
                                          "is set for the computer by its administrators") as caught:
        Config.load(user, machine)
    assert (caught.value.key, caught.value.path) == ("policy.path", str(user))


def test_a_bad_machine_wide_policy_location_names_the_machine_file(tmp_path: Path,
                                                                  own_files_trusted: None) -> None:
    machine = tmp_path / "machine.toml"
    machine.write_text("[policy]\npath = 5\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        Config.load(tmp_path / "none.toml", machine)
    assert (caught.value.key, caught.value.path) == ("policy.path", str(machine))


def test_no_environment_variable_moves_the_machine_file(monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    before = config_module.machine_config_path()
    monkeypatch.setenv("HVCONSOLE_MACHINE_CONFIG", str(tmp_path / "m.toml"))
    assert config_module.machine_config_path() == before != tmp_path / "m.toml"


def test_a_file_that_is_not_toml_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[directory\nurls = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="is not valid TOML") as caught:
        Config.load(path, tmp_path / "no-machine.toml")
    assert caught.value.path == str(path)


def _host(**values: Any) -> dict[str, Any]:
    return {"hosts": [{"name": "HV01", "url": "https://hv01.lab.example:5986/wsman", **values}]}


@pytest.mark.parametrize(("data", "key"), [
    ({"colour": "blue"}, "colour"),
    ({"directory": []}, "directory."),
    ({"directory": {"url": "ldaps://dc1"}}, "directory.url"),
    ({"directory": {"urls": "ldaps://dc1.lab.example"}}, "directory.urls"),
    ({"directory": {"urls": ["https://dc1.lab.example"]}}, "directory.urls[0]"),
    ({"directory": {"urls": ["ldaps://dc1.lab.example", "ldaps://"]}}, "directory.urls[1]"),
    ({"directory": {"domain": 5}}, "directory.domain"),
    ({"directory": {"start_tls": "yes"}}, "directory.start_tls"),
    ({"directory": {"timeout": 0}}, "directory.timeout"),
    ({"directory": {"timeout": True}}, "directory.timeout"),
    ({"hosts": {"name": "HV01"}}, "hosts"),
    ({"hosts": ["HV01"]}, "hosts[0]"),
    ({"hosts": [{"url": "https://hv01.lab.example/wsman"}]}, "hosts[0].name"),
    (_host(url="ftp://hv01.lab.example/"), "hosts[0].url"),
    (_host(url="hv01.lab.example"), "hosts[0].url"),
    (_host(transport="basic"), "hosts[0].transport"),
    (_host(endpoint="root"), "hosts[0].endpoint"),
    (_host(timeout=-1), "hosts[0].timeout"),
    (_host(port=5986), "hosts[0].port"),
    ({"ui": {"refresh_seconds": 4}}, "ui.refresh_seconds"),
    ({"ui": {"refresh_seconds": 30.5}}, "ui.refresh_seconds"),
    ({"ui": {"refresh_seconds": True}}, "ui.refresh_seconds"),
    ({"policy": {"path": 1}}, "policy.path"),
    ({"audit": {"path": ["a"]}}, "audit.path"),
    ({"demo": "true"}, "demo"),
])
def test_every_bad_value_is_an_error_naming_its_key(data: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Config.from_dict(data, "config.toml")
    assert (caught.value.key, caught.value.path) == (key, "config.toml")


def test_a_host_listed_twice_is_an_error_whatever_its_case() -> None:
    data = {"hosts": [{"name": "HV01", "url": "https://hv01.lab.example/wsman"},
                      {"name": "hv01", "url": "https://hv01b.lab.example/wsman"}]}
    with pytest.raises(ConfigError, match="hv01 is listed twice") as caught:
        Config.from_dict(data)
    assert caught.value.key == "hosts[1].name"


def test_hosts_are_found_by_name_whatever_its_case() -> None:
    config = Config.from_dict(FULL)
    assert config.host("hv02") is config.hosts[1]
    assert config.host("HV03") is None


def test_the_netbios_name_comes_from_the_domain_unless_set() -> None:
    assert DirectoryConfig(domain="lab.example").netbios_name == "LAB"
    assert DirectoryConfig(domain="lab.example", netbios="corp").netbios_name == "CORP"


def test_the_audit_trail_lives_in_the_data_folder_unless_set(monkeypatch: pytest.MonkeyPatch,
                                                            tmp_path: Path) -> None:
    monkeypatch.setattr(config_module, "user_data_dir", lambda: tmp_path / "data")
    assert Config().audit_file == tmp_path / "data" / "audit.jsonl"
    assert Config(audit_path="D:\\audit.jsonl").audit_file == Path("D:\\audit.jsonl")


def test_the_directory_settings_left_at_their_defaults_elsewhere_are_read() -> None:
    directory = Config.from_dict({"directory": {
        "netbios": "CORP", "base_dn": "DC=corp,DC=example", "ca_file": "C:\\ca.pem",
        "skip_certificate_check": True, "timeout": 0.5}}).directory
    assert directory == DirectoryConfig(netbios="CORP", base_dn="DC=corp,DC=example",
                                        ca_file="C:\\ca.pem", timeout=0.5,
                                        skip_certificate_check=True)
    # The smallest refresh period is accepted.
    assert Config.from_dict({"ui": {"refresh_seconds": 5}}).refresh_seconds == 5


@pytest.mark.parametrize(("data", "key"), [
    ({"directory": {"netbios": 1}}, "directory.netbios"),
    ({"directory": {"base_dn": ["DC=lab"]}}, "directory.base_dn"),
    ({"directory": {"ca_file": False}}, "directory.ca_file"),
    ({"directory": {"skip_certificate_check": "no"}}, "directory.skip_certificate_check"),
    (_host(name=3), "hosts[0].name"),
    (_host(cluster=1), "hosts[0].cluster"),
    (_host(ca_file=2), "hosts[0].ca_file"),
    (_host(url=5986), "hosts[0].url"),
    ({"policy": "\\\\files\\hv\\policy.toml"}, "policy.path"),
    ({"audit": 1}, "audit"),
    ({"ui": 30}, "ui"),
])
def test_more_bad_values_are_errors_naming_their_key(data: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Config.from_dict(data, "config.toml")
    assert (caught.value.key, caught.value.path) == (key, "config.toml")


@pytest.mark.parametrize(("data", "message"), [
    ({"colour": "blue"}, "unknown setting colour in <config>"),
    ({"directory": []}, "directory must be a table"),
    ([], "the file must be a table"),
    ({"directory": {"domain": 5}}, "directory.domain must be text, not int"),
    ({"directory": {"start_tls": "yes"}}, "directory.start_tls must be true or false"),
    ({"directory": {"timeout": 0}}, "directory.timeout must be a positive number of seconds"),
    ({"directory": {"urls": "ldaps://dc1"}}, "directory.urls must be a list"),
    ({"directory": {"urls": ["https://dc1"]}},
     "directory.urls[0] must be a ldap:// or ldaps:// URL with a host name; got 'https://dc1'"),
    ({"hosts": ["HV01"]}, "hosts[0] must be a table with name and url"),
    ({"hosts": [{"url": "https://hv01/wsman"}]}, "hosts[0].name is missing"),
    ({"hosts": [{"name": "HV01"}]},
     "hosts[0].url must be a http:// or https:// URL with a host name; got ''"),
    (_host(transport="basic"), "hosts[0].transport must be one of ntlm, kerberos, negotiate; got 'basic'"),
    ({"ui": {"refresh_seconds": 4}}, "ui.refresh_seconds must be a whole number of seconds, 5 or more"),
    ({"demo": True}, "demo cannot be set in <config>: the demo starts only with `hvconsole demo` "
                     "(or --demo); remove demo from this file."),
])
def test_every_error_says_what_is_wrong(data: Any, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Config.from_dict(data)
    assert str(caught.value) == message


def test_errors_in_the_persons_file_name_it(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[hosts]\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        Config.load(path, tmp_path / "no-machine.toml")
    assert (caught.value.key, caught.value.path) == ("hosts", str(path))
    data = {"hosts": [{"name": "HV01", "url": "https://hv01.lab.example/wsman"},
                      {"name": "hv01", "url": "https://hv01b.lab.example/wsman"}]}
    with pytest.raises(ConfigError) as caught:
        Config.from_dict(data, "config.toml")
    assert caught.value.path == "config.toml"


def test_a_file_that_cannot_be_read_is_an_error_naming_it(tmp_path: Path) -> None:
    folder = tmp_path / "config.toml"
    folder.mkdir()
    with pytest.raises(ConfigError) as caught:
        Config.load(folder, tmp_path / "no-machine.toml")
    assert str(caught.value) == f"{folder} cannot be read: Is a directory"
    assert (caught.value.key, caught.value.path) == (None, str(folder))


def test_save_creates_the_missing_folders(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "config.toml"
    assert Config.from_dict(FULL).save(path) == path
    assert Config.load(path, tmp_path / "no-machine.toml") == Config.from_dict(FULL)


# --- the machine-wide policy location -----------------------------------------------------------

@pytest.fixture
def machine_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, own_files_trusted: None) -> Path:
    """The computer's machine-wide file, where the console looks for it (the test replaces
    machine_config_path: no setting moves it)."""
    path = tmp_path / "machine.toml"
    monkeypatch.setattr(config_module, "machine_config_path", lambda: path)
    return path


def test_load_looks_for_the_machine_file_in_its_place(machine_file: Path, tmp_path: Path) -> None:
    user = tmp_path / "config.toml"
    Config().save(user)
    assert Config.load(user).policy_path == ""
    machine_file.write_text("[policy]\npath = '\\\\files\\hv\\policy.toml'\n", encoding="utf-8")
    assert Config.load(user).policy_path == "\\\\files\\hv\\policy.toml"
    assert config_module.machine_policy_path() == "\\\\files\\hv\\policy.toml"


def test_a_machine_file_without_a_policy_sets_none(machine_file: Path, tmp_path: Path) -> None:
    user = tmp_path / "config.toml"
    Config().save(user)
    machine_file.write_text("# nothing set for this computer yet\n", encoding="utf-8")
    assert Config.load(user).policy_path == ""
    assert config_module.machine_policy_path() == ""
    assert config_module.machine_policy_problem() == (
        f"No delegation policy is set for this computer: an administrator sets policy.path in "
        f"{machine_file}.")


def test_a_machine_file_whose_policy_is_not_a_table_is_an_error_naming_it(
        machine_file: Path, tmp_path: Path) -> None:
    machine_file.write_text("policy = '\\\\files\\hv\\policy.toml'\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        Config.load(tmp_path / "none.toml")
    assert (caught.value.key, caught.value.path) == ("policy", str(machine_file))


@pytest.mark.parametrize("text", [
    None, "", "[policy\n", "policy = 'x'\n", "[policy]\npath = 5\n", "[other]\npath = 'x'\n"])
def test_the_first_run_sees_no_machine_policy_where_none_is_set(machine_file: Path,
                                                               text: str | None) -> None:
    # Loading the configuration reports a broken machine file; the first run only asks.
    if text is not None:
        machine_file.write_text(text, encoding="utf-8")
    assert config_module.machine_policy_path() == ""


def test_the_machine_file_is_in_the_computers_configuration_folder() -> None:
    path = config_module.machine_config_path()
    assert (path.parent.name, path.name) == ("hvconsole", "machine.toml")


def test_the_persons_folders_are_the_consoles_own() -> None:
    assert config_module.user_config_path().parts[-2:] == ("hvconsole", "config.toml")
    assert config_module.user_data_dir().name == "hvconsole"
    assert config_module.user_log_dir().parts[-2:] in {("hvconsole", "log"), ("hvconsole", "Logs")}


# --- first run and the host lines ---------------------------------------------------------------

def test_first_run_until_a_directory_is_configured(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config_module, "machine_config_path", lambda: tmp_path / "no-machine.toml")
    path = tmp_path / "config.toml"
    assert config_module.needs_first_run(path)
    Config().save(path)
    assert config_module.needs_first_run(path)  # a file naming no domain controller
    Config(demo=True).save(path)  # the demo is not saved: still nothing to connect to
    assert config_module.needs_first_run(path)
    path.write_text("demo = true\n", encoding="utf-8")  # refused when loaded, with its sentence
    assert not config_module.needs_first_run(path)
    Config(directory=DirectoryConfig(urls=["ldaps://dc1.lab.example"])).save(path)
    assert not config_module.needs_first_run(path)
    path.write_text("directory = 3\n", encoding="utf-8")  # broken: loading it says what is wrong
    assert not config_module.needs_first_run(path)


def test_host_lines_in_every_form() -> None:
    text = ("hv01.corp.example\n"
            "  # a comment\n\n"
            "HV02 https://hv02.corp.example:5986/wsman C:\\certs\\corp ca.pem\n"
            "https://HV03.corp.example:5986/wsman  # trailing comment, # and more\n"
            "hv04 HV04.Corp.Example\n")
    assert config_module.parse_host_lines(text) == [
        {"name": "HV01", "url": "http://hv01.corp.example:5985/wsman", "endpoint": "jea"},
        {"name": "HV02", "url": "https://hv02.corp.example:5986/wsman", "endpoint": "jea",
         "ca_file": "C:\\certs\\corp ca.pem"},
        {"name": "HV03", "url": "https://HV03.corp.example:5986/wsman", "endpoint": "jea"},
        {"name": "hv04", "url": "http://hv04.corp.example:5985/wsman", "endpoint": "jea"}]
    assert config_module.parse_host_lines("HV05 hv05", "admin") == [
        {"name": "HV05", "url": "http://hv05:5985/wsman", "endpoint": "admin"}]


def test_host_lines_keep_what_a_line_cannot_say() -> None:
    known = [HostConfig("HV01", "https://hv01.lab.example:5986/wsman", cluster="CL1",
                        transport="kerberos", ca_file="C:\\ca.pem", endpoint="admin", timeout=9.0),
             HostConfig("HV02", "https://hv02.lab.example:5986/wsman", ca_file="C:\\ca.pem")]
    lines = config_module.host_lines(known)
    assert lines == ("HV01 https://hv01.lab.example:5986/wsman C:\\ca.pem\n"
                     "HV02 https://hv02.lab.example:5986/wsman C:\\ca.pem")
    # Read back unchanged, the hosts are the same; a name matches whatever its case.
    again = config_module.parse_host_lines(lines.replace("HV02", "hv02", 1), known=known)
    assert [HostConfig(**h) for h in again] == [known[0], replace(known[1], name="hv02")]
    # The CA file is on the line: taking it off the line takes it off the host.
    edited = config_module.parse_host_lines(
        "HV01 https://hv01.lab.example:5986/wsman\nHV02 https://hv02b.lab.example:5986/wsman",
        known=known)
    assert [HostConfig(**h) for h in edited] == [
        replace(known[0], ca_file=""),
        replace(known[1], url="https://hv02b.lab.example:5986/wsman", ca_file="")]


# --- hosts[].protocol: PSRP (a kept session) unless a host allows only WinRS -------------------------

def test_the_protocol_is_psrp_unless_an_admin_host_says_winrs() -> None:
    config = Config.from_dict({"hosts": [
        {"name": "HV01", "url": "https://hv01.lab.example:5986/wsman"},
        {"name": "HV02", "url": "https://hv02.lab.example:5986/wsman", "endpoint": "admin"},
        {"name": "HV03", "url": "https://hv03.lab.example:5986/wsman", "endpoint": "admin",
         "protocol": "winrs"}]})
    assert [(h.endpoint, h.protocol) for h in config.hosts] == [
        ("jea", "psrp"), ("admin", "psrp"), ("admin", "winrs")]
    assert Config.from_dict(config.to_dict()) == config
    assert config.to_dict()["hosts"][2]["protocol"] == "winrs"


@pytest.mark.parametrize(("values", "words"), [
    ({"protocol": "ssh"}, "must be one of psrp, winrs"),
    ({"protocol": "WinRS", "endpoint": "admin"}, "must be one of psrp, winrs"),
    ({"protocol": "winrs"}, "JEA endpoint needs psrp"),
    ({"protocol": "winrs", "endpoint": "jea"}, "JEA endpoint needs psrp"),
])
def test_a_bad_protocol_is_an_error_naming_its_key(values: dict[str, Any], words: str) -> None:
    with pytest.raises(ConfigError, match=words) as caught:
        Config.from_dict(_host(**values), "config.toml")
    assert (caught.value.key, caught.value.path) == ("hosts[0].protocol", "config.toml")


# --- only administrators' files: the machine-wide configuration and the policy it names -------------

def _machine(folder: Path, text: str = "[policy]\npath = 'P:\\policy.toml'\n") -> Path:
    folder.mkdir(mode=0o755, exist_ok=True)
    folder.chmod(0o755)
    path = folder / "machine.toml"
    path.write_text(text, encoding="utf-8")
    path.chmod(0o644)
    return path


def test_a_machine_file_only_administrators_can_change_is_used(tmp_path: Path,
                                                               own_files_trusted: None) -> None:
    machine = _machine(tmp_path / "etc")
    assert Config.load(tmp_path / "none.toml", machine).policy_path == "P:\\policy.toml"
    # A folder with the sticky bit (like /tmp) is no way in: no one else can rename what it holds.
    (tmp_path / "etc").chmod(0o1777)
    assert Config.load(tmp_path / "none.toml", machine).policy_path == "P:\\policy.toml"


@pytest.mark.parametrize(("file_mode", "folder_mode", "why"), [
    (0o664, 0o755, r"the file .*machine\.toml can be written by its group \(mode -rw-rw-r--\)"),
    (0o646, 0o755, r"the file .*machine\.toml can be written by everyone \(mode -rw-r--rw-\)"),
    (0o644, 0o777, r"the folder .*etc can be written by its group \(mode drwxrwxrwx\)"),
    (0o644, 0o757, r"the folder .*etc can be written by everyone \(mode drwxr-xrwx\)"),
])
def test_a_machine_file_others_can_change_is_refused_naming_it_and_why(
        tmp_path: Path, own_files_trusted: None, file_mode: int, folder_mode: int,
        why: str) -> None:
    machine = _machine(tmp_path / "etc")
    machine.chmod(file_mode)
    machine.parent.chmod(folder_mode)
    with pytest.raises(ConfigError) as caught:
        Config.load(tmp_path / "none.toml", machine)
    assert str(caught.value).startswith(
        f"The machine-wide configuration {machine} is not used: someone other than an "
        f"administrator can change it (")
    assert re.search(why, str(caught.value))
    assert caught.value.path == str(machine)


def test_a_machine_file_owned_by_someone_else_than_root_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    machine = _machine(tmp_path / "etc")
    monkeypatch.setattr(trust, "trusted_uids", lambda: frozenset({os.getuid() + 1}))
    with pytest.raises(ConfigError, match=rf"is owned by user id {os.getuid()}, not by root"):
        Config.load(tmp_path / "none.toml", machine)


def test_a_link_to_a_file_others_can_change_is_refused(tmp_path: Path,
                                                      own_files_trusted: None) -> None:
    theirs = _machine(tmp_path / "home")
    theirs.parent.chmod(0o777)
    link = tmp_path / "etc" / "machine.toml"
    link.parent.mkdir(mode=0o755)
    link.symlink_to(theirs)
    with pytest.raises(ConfigError, match="can be written by its group"):
        Config.load(tmp_path / "none.toml", link)


def test_an_untrusted_machine_file_offers_nothing_in_its_place(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, own_files_trusted: None) -> None:
    machine = _machine(tmp_path / "etc")
    machine.chmod(0o666)
    monkeypatch.setattr(config_module, "machine_config_path", lambda: machine)
    user = tmp_path / "config.toml"
    Config(directory=DirectoryConfig(urls=["ldaps://dc1.lab.example"])).save(user)
    with pytest.raises(ConfigError, match="is not used"):
        Config.load(user)
    assert config_module.machine_policy_path() == ""
    assert "is not used: someone other than an administrator" in \
        config_module.machine_policy_problem()
    assert not config_module.needs_first_run(user)  # loading it says why


def test_the_policy_file_is_checked_like_the_machine_file(tmp_path: Path,
                                                          own_files_trusted: None) -> None:
    folder = tmp_path / "share"
    policy = _machine(folder, "")
    assert config_module.trusted_policy(str(policy)) == policy
    policy.chmod(0o666)
    with pytest.raises(ConfigError) as caught:
        config_module.trusted_policy(str(policy))
    assert str(caught.value).startswith(f"The delegation policy {policy} is not used: ")
    assert (caught.value.key, caught.value.path) == ("policy.path", str(policy))


# The Windows branch, with the access-list reader injected (advapi32 is read on Windows only).
ADMINS, SYSTEM, USERS = trust.ADMINISTRATORS, trust.SYSTEM, "S-1-5-32-545"
ME = "S-1-5-21-1000-2000-3000-1105"
FULL_CONTROL, READ = 0x1F01FF, 0x120089


def _reader(file: trust.Acl, folder: trust.Acl) -> trust.AclReader:
    return lambda path: file if path.name == "machine.toml" else folder


def _acl(owner: str = ADMINS, *entries: trust.AccessEntry) -> trust.Acl:
    return trust.Acl(owner, (trust.AccessEntry(SYSTEM, FULL_CONTROL),
                             trust.AccessEntry(ADMINS, FULL_CONTROL), *entries))


def test_windows_files_of_administrators_are_trusted() -> None:
    installed = _acl(ADMINS, trust.AccessEntry(USERS, READ),
                     trust.AccessEntry("S-1-3-0", FULL_CONTROL, inherit_only=True),
                     trust.AccessEntry("S-1-5-21-1-2-3-512", FULL_CONTROL),  # Domain Admins
                     trust.AccessEntry(USERS, FULL_CONTROL, allow=False))  # a deny
    assert trust.windows_problem(Path("C:/ProgramData/hvconsole/machine.toml"),
                                 _reader(installed, installed)) == ""
    trust.check_trusted(Path(__file__), "The file", read_acl=_reader(installed, installed))


@pytest.mark.parametrize(("file", "folder", "why"), [
    (_acl(ME), _acl(), f"the file .*: it is owned by {ME}, who is not SYSTEM or Administrators"),
    (_acl(ADMINS, trust.AccessEntry(USERS, 0x2)), _acl(),
     f"the file .*: {USERS} may change it \\(access mask 0x00000002\\)"),
    (_acl(), _acl(ADMINS, trust.AccessEntry(USERS, 0x4)),  # a user who may add subfolders
     f"its folder .*: {USERS} may change it"),
    (_acl(), _acl(ADMINS, trust.AccessEntry("S-1-1-0", 0x40000000)),  # Everyone: GENERIC_WRITE
     "its folder .*: S-1-1-0 may change it"),
    (trust.Acl(ADMINS, None), _acl(), "it has no access list, so everyone may change it"),
    (_acl(ADMINS, trust.AccessEntry("", FULL_CONTROL)), _acl(),
     "an entry of a kind the console cannot read"),
])
def test_windows_files_others_can_change_are_refused(file: trust.Acl, folder: trust.Acl,
                                                     why: str) -> None:
    path = Path("C:/ProgramData/hvconsole/machine.toml")
    assert re.search(why, trust.windows_problem(path, _reader(file, folder)))
    with pytest.raises(ConfigError, match="is not used: someone other than an administrator"):
        trust.check_trusted(Path(__file__), "The file",
                            read_acl=lambda p: file if p == Path(__file__) else folder)


def test_windows_permissions_that_cannot_be_read_are_refused() -> None:
    def unreadable(path: Path) -> trust.Acl:
        raise OSError(5, "Access is denied")

    assert trust.windows_problem(Path("C:/x/machine.toml"), unreadable) == \
        "the permissions of the file cannot be read (Access is denied)"


@pytest.mark.parametrize("url", ["http://\x1b[31mhv01:5985/wsman", "https://[::1:5986/wsman"])
def test_a_url_python_cannot_parse_is_an_error_naming_its_key(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Config.from_dict(_host(url=url), "config.toml")
    assert caught.value.key == "hosts[0].url"
    assert config_module.parse_host_lines("\x1b[31mhv01.lab.example")[0]["url"] == \
        "http://\x1b[31mhv01.lab.example:5985/wsman"  # read back later, with the sentence above


def test_domain_controllers_and_hosts_set_for_the_computer_win_and_are_never_saved_per_person(
        tmp_path: Path, own_files_trusted: None) -> None:
    user = tmp_path / "config.toml"
    Config.from_dict({"directory": {"urls": ["ldaps://mine.example"], "domain": "mine.example"},
                      "hosts": [{"name": "MINE", "url": "https://mine:5986/wsman"}],
                      "ui": {"refresh_seconds": 30}}).save(user)
    machine = tmp_path / "machine.toml"
    machine.write_text('[directory]\nurls = ["ldaps://dc1.corp.example"]\ndomain = "corp.example"\n'
                       '[[hosts]]\nname = "HV01"\nurl = "https://hv01.corp.example:5986/wsman"\n',
                       encoding="utf-8")
    config = Config.load(user, machine)
    assert config.directory.urls == ["ldaps://dc1.corp.example"]
    assert [h.name for h in config.hosts] == ["HV01"] and config.refresh_seconds == 30
    assert config.managed == {"directory", "hosts"}
    # Saved back, the person's file keeps their own settings and nothing of the computer's.
    config.refresh_seconds = 90
    config.save(user)
    written = tomllib.loads(user.read_text(encoding="utf-8"))
    assert "directory" not in written and "hosts" not in written
    assert written["ui"]["refresh_seconds"] == 90
    # Only the hosts set there: the person's directory stays theirs.
    machine.write_text('[[hosts]]\nname = "HV01"\nurl = "https://hv01:5986/wsman"\n', encoding="utf-8")
    Config.from_dict({"directory": {"urls": ["ldaps://mine.example"]}}).save(user)
    config = Config.load(user, machine)
    assert config.managed == {"hosts"} and config.directory.urls == ["ldaps://mine.example"]


def test_a_machine_file_others_can_change_sets_no_domain_controller(tmp_path: Path) -> None:
    machine = tmp_path / "machine.toml"
    machine.write_text('[directory]\nurls = ["ldaps://evil.example"]\n', encoding="utf-8")
    machine.chmod(0o666)  # anyone may change it
    with pytest.raises(ConfigError, match="machine"):
        Config.load(tmp_path / "none.toml", machine)


# --- trusted domains, each with its own domain controllers ----------------------------------------

TRUSTED_TOML = """
[directory]
urls = ["ldaps://dc1.lab.example"]
domain = "lab.example"

[[directory.trusted]]
domain = "child.lab.example"
urls = ["ldaps://dc1.child.lab.example", "ldaps://dc2.child.lab.example"]

[[directory.trusted]]
domain = "corp.example"
netbios = "CORPNET"
urls = ["ldap://dc1.corp.example"]
start_tls = true
ca_file = "/etc/ssl/corp-ca.pem"
"""


def test_trusted_domains_are_tables_with_their_own_controllers(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(TRUSTED_TOML, encoding="utf-8")
    directory = Config.load(path, tmp_path / "no-machine.toml").directory
    assert directory.trusted == [
        TrustedDomainConfig("child.lab.example", ["ldaps://dc1.child.lab.example",
                                                  "ldaps://dc2.child.lab.example"]),
        TrustedDomainConfig("corp.example", ["ldap://dc1.corp.example"], "CORPNET",
                            "/etc/ssl/corp-ca.pem", start_tls=True)]
    assert [t.netbios_name for t in directory.trusted] == ["CHILD", "CORPNET"]
    # a sign-in there uses its controllers, CA file and StartTLS, and the directory's timeout
    corp = directory.trusted_config(1)
    assert (corp.urls, corp.domain, corp.netbios, corp.ca_file, corp.start_tls, corp.timeout) == (
        ["ldap://dc1.corp.example"], "corp.example", "CORPNET", "/etc/ssl/corp-ca.pem", True, 5.0)
    assert corp.trusted == []
    Config(directory=directory).save(path)
    assert Config.load(path, tmp_path / "no-machine.toml").directory == directory


def _trusted(*tables: object, **directory: object) -> dict[str, object]:
    return {"directory": {"urls": ["ldaps://dc1.lab.example"], "domain": "lab.example",
                          **directory, "trusted": list(tables)}}


CHILD = {"domain": "child.lab.example", "urls": ["ldaps://dc1.child.lab.example"]}


@pytest.mark.parametrize(("data", "key", "words"), [
    ({"directory": {"trusted": {"domain": "x"}}}, "directory.trusted", "must be a list"),
    (_trusted(CHILD, "corp.example"), "directory.trusted[1]", "must be a table"),
    (_trusted({"urls": CHILD["urls"]}), "directory.trusted[0].domain", "is missing"),
    (_trusted({**CHILD, "domain": "child lab"}), "directory.trusted[0].domain", "DNS domain name"),
    (_trusted({**CHILD, "domain": "CHILD\\x"}), "directory.trusted[0].domain", "DNS domain name"),
    (_trusted({**CHILD, "netbios": "child.lab"}), "directory.trusted[0].netbios", "NetBIOS"),
    (_trusted({**CHILD, "netbios": "A" * 16}), "directory.trusted[0].netbios", "15 characters"),
    (_trusted({**CHILD, "urls": []}), "directory.trusted[0].urls", "is empty"),
    (_trusted({**CHILD, "urls": "ldaps://dc1"}), "directory.trusted[0].urls", "must be a list"),
    (_trusted(CHILD, {**CHILD, "domain": "corp.example", "urls": ["https://dc1.corp.example"]}),
     "directory.trusted[1].urls[0]", "ldap:// or ldaps://"),
    (_trusted({**CHILD, "urls": ["ldaps://dc1", "ldap://dc2"]}), "directory.trusted[0].urls[1]",
     "in clear"),
    (_trusted({**CHILD, "start_tls": "yes"}), "directory.trusted[0].start_tls", "true or false"),
    (_trusted({**CHILD, "ca_file": 1}), "directory.trusted[0].ca_file", "must be text"),
    (_trusted({**CHILD, "password": "x"}), "directory.trusted[0].password", "unknown setting"),
    (_trusted({**CHILD, "timeout": 3}), "directory.trusted[0].timeout", "unknown setting"),
    (_trusted(CHILD, {**CHILD, "domain": "CHILD.lab.example"}), "directory.trusted[1].domain",
     "is already directory.trusted[0].domain"),
    (_trusted(CHILD, {**CHILD, "domain": "child.corp.example"}), "directory.trusted[1].netbios",
     "set directory.trusted[1].netbios"),
    (_trusted(CHILD, {**CHILD, "domain": "corp.example", "netbios": "child"}),
     "directory.trusted[1].netbios", "CHILD"),
    (_trusted({**CHILD, "domain": "lab.example"}), "directory.trusted[0].domain",
     "the directory's own domain"),
    (_trusted({**CHILD, "domain": "lab.corp.example"}), "directory.trusted[0].netbios",
     "the directory's own domain (directory.domain)"),
    (_trusted({**CHILD, "netbios": "CORP"}, netbios="corp"), "directory.trusted[0].netbios",
     "(directory.netbios)"),
])
def test_a_bad_trusted_domain_is_an_error_naming_its_key(data: dict[str, Any], key: str,
                                                        words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Config.from_dict(data, "config.toml")
    assert caught.value.key == key and caught.value.path == "config.toml"
    assert words in str(caught.value)


def test_the_old_list_of_trusted_domain_names_says_what_replaced_it() -> None:
    with pytest.raises(ConfigError, match=r"replaced by \[\[directory.trusted\]\]") as caught:
        Config.from_dict({"directory": {"trusted_domains": ["CHILD"]}}, "config.toml")
    assert caught.value.key == "directory.trusted_domains"


def test_trusted_domains_come_with_the_computers_directory(tmp_path: Path,
                                                           own_files_trusted: None) -> None:
    user = tmp_path / "config.toml"
    user.write_text('[directory]\nurls = ["ldaps://mine.example"]\n\n[[directory.trusted]]\n'
                    'domain = "mine.child.example"\nurls = ["ldaps://evil.example"]\n',
                    encoding="utf-8")
    machine = tmp_path / "machine.toml"
    machine.write_text(TRUSTED_TOML, encoding="utf-8")
    config = Config.load(user, machine)
    assert config.managed == {"directory"}
    assert [t.domain for t in config.directory.trusted] == ["child.lab.example", "corp.example"]
    config.save(user)  # the person's file keeps nothing of the computer's directory
    assert "directory" not in tomllib.loads(user.read_text(encoding="utf-8"))
    machine.write_text(TRUSTED_TOML.replace('netbios = "CORPNET"\n', 'netbios = "CHILD"\n'),
                       encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        Config.load(user, machine)
    assert (caught.value.key, caught.value.path) == ("directory.trusted[1].netbios", str(machine))

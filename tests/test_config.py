"""console/config.py: the settings file, every bad value named by its key, the machine-wide
policy location over the person's own."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from console import config as config_module
from console.config import Config, DirectoryConfig, HostConfig
from console.errors import ConfigError

FULL: dict[str, Any] = {
    "directory": {"urls": ["ldaps://dc1.lab.example", "ldap://dc2.lab.example"],
                  "domain": "lab.example", "netbios": "", "base_dn": "DC=lab,DC=example",
                  "ca_file": "C:\\ca.pem", "start_tls": True, "timeout": 7,
                  "skip_certificate_check": False},
    "hosts": [{"name": "HV01", "url": "https://hv01.lab.example:5986/wsman"},
              {"name": "HV02", "url": "http://hv02.lab.example:5985/wsman", "cluster": "CL1",
               "transport": "kerberos", "endpoint": "admin", "timeout": 12.5, "ca_file": ""}],
    "policy": {"path": "\\\\files\\hv\\policy.toml"},
    "audit": {"path": "D:\\audit.jsonl"},
    "ui": {"refresh_seconds": 30},
}


def test_an_empty_file_gives_the_defaults() -> None:
    config = Config.from_dict({})
    assert config == Config()
    assert (config.hosts, config.policy_path, config.refresh_seconds, config.demo) == ([], "", 60, False)
    assert config.directory == DirectoryConfig(timeout=5.0)


def test_every_setting_is_read_and_numbers_become_seconds() -> None:
    config = Config.from_dict(FULL)
    assert config.directory.urls == FULL["directory"]["urls"]
    assert (config.directory.start_tls, config.directory.timeout) == (True, 7.0)
    assert config.hosts[0] == HostConfig("HV01", "https://hv01.lab.example:5986/wsman")
    assert (config.hosts[0].transport, config.hosts[0].endpoint, config.hosts[0].timeout) == \
        ("ntlm", "jea", 30.0)
    hv02 = config.hosts[1]
    assert (hv02.cluster, hv02.transport, hv02.endpoint, hv02.timeout) == ("CL1", "kerberos", "admin", 12.5)
    assert (config.policy_path, config.audit_path, config.refresh_seconds) == \
        ("\\\\files\\hv\\policy.toml", "D:\\audit.jsonl", 30)


def test_to_dict_and_back_is_the_same_configuration() -> None:
    config = Config.from_dict({**FULL, "demo": True})
    assert Config.from_dict(config.to_dict()) == config
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


def test_the_machine_wide_policy_location_wins_over_the_persons_own(tmp_path: Path) -> None:
    user = tmp_path / "config.toml"
    Config.from_dict({"policy": {"path": "C:\\Users\\me\\my-own-policy.toml"}}).save(user)
    machine = tmp_path / "machine.toml"
    machine.write_text("[policy]\npath = '\\\\files\\hv\\policy.toml'\n", encoding="utf-8")
    assert Config.load(user, machine).policy_path == "\\\\files\\hv\\policy.toml"
    # A machine file that sets no policy leaves the person's setting alone.
    machine.write_text("[policy]\n", encoding="utf-8")
    assert Config.load(user, machine).policy_path == "C:\\Users\\me\\my-own-policy.toml"


def test_a_bad_machine_wide_policy_location_names_the_machine_file(tmp_path: Path) -> None:
    machine = tmp_path / "machine.toml"
    machine.write_text("[policy]\npath = 5\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        Config.load(tmp_path / "none.toml", machine)
    assert (caught.value.key, caught.value.path) == ("policy.path", str(machine))


def test_the_machine_file_location_can_be_pointed_elsewhere(monkeypatch: pytest.MonkeyPatch,
                                                            tmp_path: Path) -> None:
    monkeypatch.setenv("HVCONSOLE_MACHINE_CONFIG", str(tmp_path / "m.toml"))
    assert config_module.machine_config_path() == tmp_path / "m.toml"
    monkeypatch.delenv("HVCONSOLE_MACHINE_CONFIG")
    assert config_module.machine_config_path().name == "machine.toml"
    assert config_module.machine_config_path() != tmp_path / "m.toml"


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

"""The demo directory: the accounts of docs/lab-world.md, answering like Active Directory."""
from __future__ import annotations

import io
import json
import logging
import tomllib
from pathlib import Path

import pytest

from hvconsole import cli
from console.directory import BIND_FAILURES, Directory, Principal
from console.session import Extensions, demo_directory
from console.errors import ConfigError, DirectoryError, SignInError
from console.identity import AUTHENTICATED_USERS, EVERYONE
from lab.directory import DEMO_FILE, LabDirectory, hash_password, verify_password

DOMAIN_SID = "S-1-5-21-1000-2000-3000"
PASSWORDS = {name: f"{name}-demo" for name in
             ("olivia", "henry", "adam", "rita", "dan", "bea", "hannah")}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def lab() -> LabDirectory:
    return LabDirectory()


def sentence(code: str) -> str:
    return next(s for c, s in BIND_FAILURES.values() if c == code)


def test_the_file_holds_hashes_not_passwords() -> None:
    text = DEMO_FILE.read_text(encoding="utf-8")
    data = tomllib.loads(text)
    for user in data["users"]:
        assert user["password"].startswith("scrypt$")
        assert verify_password(PASSWORDS[user["name"]], user["password"])
    for password in PASSWORDS.values():
        assert password not in text
    salts = {u["password"].split("$")[4] for u in data["users"]}
    assert len(salts) == len(data["users"])  # salted: no two alike


def test_hash_round_trip() -> None:
    stored = hash_password("correct horse")
    assert verify_password("correct horse", stored)
    assert not verify_password("correct hors", stored)
    assert not verify_password("x", "plain-text")
    assert hash_password("same") != hash_password("same")


def test_it_is_a_directory_and_says_it_is_the_demo(lab: LabDirectory) -> None:
    extensions = Extensions(demo_directory=LabDirectory)
    directory: Directory = demo_directory(extensions)
    assert isinstance(directory, LabDirectory) and directory.demo is True
    assert lab.sign_in("olivia", PASSWORDS["olivia"]).demo is True


@pytest.mark.parametrize("typed", ["henry", "henry@lab.example", "LAB\\henry", "lab\\HENRY"])
def test_lab_world_identity(lab: LabDirectory, typed: str) -> None:
    henry = lab.sign_in(typed, PASSWORDS["henry"])
    assert henry.name == "LAB\\henry"
    assert henry.sid == f"{DOMAIN_SID}-1102"
    assert henry.display_name == "Henry Helpdesk"
    assert henry.upn == "henry@lab.example"
    groups = {g.name: (g.sid, g.nested) for g in henry.groups}
    assert groups == {
        "LAB\\Domain Users": (f"{DOMAIN_SID}-513", False),
        "LAB\\HV-Helpdesk": (f"{DOMAIN_SID}-1202", False),
        "LAB\\IT-Support": (f"{DOMAIN_SID}-1203", True),
    }
    assert {EVERYONE, AUTHENTICATED_USERS, f"{DOMAIN_SID}-1203"} <= henry.sids


@pytest.mark.parametrize(("user", "rid", "group"), [
    ("olivia", 1101, "HV-Shop-Owners"), ("adam", 1103, "HV-Admins"), ("rita", 1104, "HV-Reviewers"),
    ("bea", 1106, "HV-Build"), ("hannah", 1107, "HR-Payroll")])
def test_every_account_of_the_lab_world(lab: LabDirectory, user: str, rid: int, group: str) -> None:
    identity = lab.sign_in(user, PASSWORDS[user])
    assert identity.sid == f"{DOMAIN_SID}-{rid}"
    assert {"LAB\\Domain Users", f"LAB\\{group}"} == {g.name for g in identity.groups}


def test_disabled_account_reads_like_ad(lab: LabDirectory) -> None:
    with pytest.raises(SignInError) as error:
        lab.sign_in("dan", PASSWORDS["dan"])
    assert (error.value.code, str(error.value)) == ("disabled", sentence("disabled"))
    # a wrong password never reveals that the account is disabled
    with pytest.raises(SignInError) as wrong:
        lab.sign_in("dan", "guess")
    assert wrong.value.code == "bad_credentials"


def test_wrong_password_and_unknown_user_read_alike() -> None:
    lab = LabDirectory()
    messages = set()
    for user, password in [("olivia", "wrong"), ("nobody", "wrong"), ("*)(objectClass=*", "x")]:
        with pytest.raises(SignInError) as error:
            lab.sign_in(user, password)
        assert error.value.code == "bad_credentials"
        messages.add(str(error.value))
    assert messages == {sentence("bad_credentials")}


@pytest.mark.parametrize(("typed", "words"), [
    ("CHILD\\adam", "CHILD is not the domain of this directory, LAB (lab.example): sign in as "
                    "LAB\\name, name@lab.example or the name alone."),
    ("adam@other.example", "other.example is not the domain of this directory"),
    ("lab.example.evil\\adam", "lab.example.evil is not the domain"),
])
def test_another_domain_is_refused_before_any_password_is_checked(typed: str, words: str) -> None:
    clock = Clock()
    lab = LabDirectory(clock=clock)
    for _ in range(lab.lockout_threshold + 1):  # never counted: adam is not locked out
        with pytest.raises(SignInError) as error:
            lab.sign_in(typed, "wrong")
        assert error.value.code == "foreign_domain" and str(error.value).startswith(words)
    assert lab.sign_in("adam", PASSWORDS["adam"]).name == "LAB\\adam"
    # the directory's own names, in either place, are LAB's adam
    assert lab.sign_in("lab.example\\adam", PASSWORDS["adam"]).name == "LAB\\adam"
    assert lab.sign_in("adam@LAB", PASSWORDS["adam"]).name == "LAB\\adam"


def test_empty_password_is_refused() -> None:
    with pytest.raises(SignInError) as error:
        LabDirectory().sign_in("olivia", "")
    assert error.value.code == "empty_password"


def test_lockout_after_five_bad_passwords_then_unlock_by_time() -> None:
    clock = Clock()
    lab = LabDirectory(clock=clock)
    for _ in range(4):
        with pytest.raises(SignInError, match="incorrect"):
            lab.sign_in("bea", "wrong")
    assert lab.sign_in("bea", PASSWORDS["bea"]).name == "LAB\\bea"  # success resets the count
    for _ in range(5):
        with pytest.raises(SignInError, match="incorrect"):
            lab.sign_in("bea", "wrong")
    with pytest.raises(SignInError) as locked:
        lab.sign_in("bea", PASSWORDS["bea"])
    assert (locked.value.code, str(locked.value)) == ("locked", sentence("locked"))
    assert lab.sign_in("olivia", PASSWORDS["olivia"])  # only bea is locked
    clock.now += 30 * 60
    assert lab.sign_in("bea", PASSWORDS["bea"]).name == "LAB\\bea"


def test_unlock() -> None:
    lab = LabDirectory()
    for _ in range(5):
        with pytest.raises(SignInError):
            lab.sign_in("rita", "wrong")
    with pytest.raises(SignInError, match="locked"):
        lab.sign_in("rita", PASSWORDS["rita"])
    lab.unlock("RITA")
    assert lab.sign_in("rita", PASSWORDS["rita"]).name == "LAB\\rita"


def test_resolve(lab: LabDirectory) -> None:
    with lab.session("rita", PASSWORDS["rita"]) as session:
        dan = session.resolve("LAB\\dan")
        assert dan == Principal("user", "LAB\\dan", f"{DOMAIN_SID}-1105",
                                "CN=Dan Departed,CN=Users,DC=lab,DC=example", "disabled", "Dan Departed")
        assert session.resolve(f"{DOMAIN_SID}-1203") == session.resolve("IT-Support")
        assert session.resolve("olivia@lab.example").sid == f"{DOMAIN_SID}-1101"  # type: ignore[union-attr]
        assert session.resolve("Authenticated Users").sid == AUTHENTICATED_USERS  # type: ignore[union-attr]
        for missing in ("LAB\\nobody", "OTHER\\olivia", f"{DOMAIN_SID}-9999", "S-1-5-21-1-2-3-1101", "*"):
            assert session.resolve(missing) is None


def test_members(lab: LabDirectory) -> None:
    with lab.session("rita", PASSWORDS["rita"]) as session:
        support = {m.principal.name: m.nested for m in session.members("LAB\\IT-Support")}
        assert support == {"LAB\\HV-Helpdesk": False, "LAB\\henry": True}
        owners = {m.principal.name: m.principal.state for m in session.members("HV-Shop-Owners")}
        assert owners == {"LAB\\olivia": "enabled", "LAB\\dan": "disabled"}
        everyone = {m.principal.name for m in session.members("LAB\\Domain Users")}
        assert everyone == {f"LAB\\{u}" for u in PASSWORDS}  # by primary group
        with pytest.raises(DirectoryError, match="not a group"):
            session.members("LAB\\henry")
        with pytest.raises(DirectoryError, match="no group"):
            session.members("LAB\\nothing")


def test_no_password_in_logs_or_reprs(caplog: pytest.LogCaptureFixture) -> None:
    lab = LabDirectory()
    seen = [repr(lab)]
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(SignInError) as error:
            lab.sign_in("olivia", "Typed-Secret-99")
        seen += [str(error.value), repr(error.value)]
        with lab.session("olivia", PASSWORDS["olivia"]) as session:
            seen += [repr(session), repr(session.identity), repr(lab._accounts)]
    joined = "".join(seen) + caplog.text
    assert "Typed-Secret-99" not in joined and PASSWORDS["olivia"] not in joined
    assert "scrypt$" not in joined  # not even the hash


def test_whoami_demo(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("henry-demo\n"))
    assert cli.main(["whoami", "--demo", "--user", "henry", "--password-stdin"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "LAB\\henry (Henry Helpdesk)  [demo directory]"
    assert "LAB\\IT-Support" in out and "nested" in out and "Everyone" in out

    monkeypatch.setattr("sys.stdin", io.StringIO("henry-demo\n"))
    assert cli.main(["whoami", "--demo", "--user", "LAB\\henry", "--password-stdin", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["sid"] == f"{DOMAIN_SID}-1102" and data["demo"] is True
    assert [g["name"] for g in data["groups"] if g["nested"]] == ["LAB\\IT-Support"]

    monkeypatch.setattr("sys.stdin", io.StringIO("dan-demo\n"))
    assert cli.main(["whoami", "--demo", "--user", "dan", "--password-stdin"]) == 1
    assert capsys.readouterr().err.strip() == f"hvconsole: {sentence('disabled')}"


def test_a_broken_demo_file_is_a_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "directory.toml"
    broken.write_text("domain = 'lab.example'\n")
    with pytest.raises(ConfigError, match="demo directory"):
        LabDirectory(broken)

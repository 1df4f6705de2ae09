"""Names written by other people (VMs, checkpoints, hosts, principals, notes, paths) through every
output the console has: nothing a terminal, a log viewer or Qt would act on gets through as it is.

One corpus of hostile names goes through console/text.py itself, the command line (tables, JSON,
CSV, HTML and text reports written to a terminal, and the same written to a file, where the data
stays exact), the log, and the GUI's dialogs, message boxes, labels and tooltips (offscreen).
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import unicodedata
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from console import logs
from console.audit import AuditTrail
from console.cli import main as cli_main
from console.commands import hosts as hosts_command
from console.commands import review as review_command
from console.config import Config
from console.identity import Identity
from console.inventory import VM, Checkpoint, DvdDrive, HostFacts, IsoFile
from console.paths import LAB_DATA
from console.policy import Policy
from console.session import Setup
from console.text import csv_for_terminal, for_terminal, json_for_terminal, one_line, plain
from lab.directory import LabDirectory
from lab.world import load_world

HOSTILE: dict[str, str] = {
    "markup": "<img src=x onerror=alert(1)><b>bold</b><a href='file:///c:/'>link</a>&amp;&lt;",
    "ansi": "\x1b[31mred\x1b[0m\x1b]0;new title\x07\x1b[2J\x1b[1;1H",
    "c1": "csi\x9b31m nel\x85 osc\x9d0;t\x9c end",
    "bidi": "invoice\u202egpj.exe\u202c \u202dLRO\u202c \u202aLRE\u202bRLE \u2066LRI\u2067RLI"
            "\u2068FSI\u2069 \u200eLRM\u200fRLM\u061cALM",
    "format": "zero\u200bwidth\u200d\u2060joiner\ufeffbom\U000e0041tag",
    "lines": "web01\n2099-01-01 00:00:00,000 INFO    MainThread console: forged\r\u2028\u2029"
             "\x0b\x0c\x1c\x1d\x1e end",
    "nul": "web\x00hidden\x7fdel\x08back",
    "long": "x" * 4000 + "\u202e",
    "quotes": "'\"`\u2018\u2019\u201a\u201b\u201c\u201d\u201e\u201f\u00ab\u00bb\u2039\u203a"
              "\u300c\u300d\uff02\uff07",
}
CORPUS = list(HOSTILE.values())
_ESCAPED = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def raw_controls(text: str, allowed: str = "") -> list[str]:
    """Every character a terminal or a reader could be fooled by, left as it is in `text`."""
    return [f"U+{ord(c):04X}" for c in text
            if unicodedata.category(c) in _ESCAPED and c not in allowed]


@pytest.fixture(autouse=True)
def redactions_of_this_test_only() -> Iterator[None]:
    """The sign-in dialog below registers its password for log redaction for the whole process:
    undone, so later tests' logs are not masked."""
    saved = set(logs._known)
    yield
    with logs._lock:
        logs._known.clear()
        logs._known.update(saved)


@pytest.fixture(params=list(HOSTILE), ids=list(HOSTILE))
def hostile(request: pytest.FixtureRequest) -> str:
    return HOSTILE[request.param]


class Terminal(io.StringIO):
    """Standard output that is a terminal."""

    def isatty(self) -> bool:
        return True


class File(io.StringIO):
    def isatty(self) -> bool:
        return False


# --- console/text.py -----------------------------------------------------------------------------------

def test_every_kind_of_output_escapes_what_a_reader_could_be_fooled_by(hostile: str) -> None:
    assert raw_controls(plain(hostile), allowed="\n\t") == []
    assert raw_controls(one_line(hostile)) == []
    assert "\n" not in one_line(hostile) and "\r" not in one_line(hostile)
    # An escape says what was there, in the order it was there.
    assert one_line("a\u202eb\x1bc\nd") == "a\\u202eb\\x1bc\\nd"
    assert plain("a\r\nb\rc") == "a\r\nb\\x0dc"  # CRLF is a line end; a lone CR overwrites


def test_json_and_csv_on_a_terminal_stay_documents_that_read_back_exactly(hostile: str) -> None:
    data = {"name": hostile, "nested": [hostile, {"k": hostile}]}
    text = json.dumps(data, indent=2, ensure_ascii=False)
    shown = json_for_terminal(text)
    assert raw_controls(shown, allowed="\n") == []
    assert json.loads(shown) == data == json.loads(text)
    table = io.StringIO()
    csv.writer(table, lineterminator="\r\n").writerows([["host", "vm"], ["HV01", hostile]])
    shown = csv_for_terminal(table.getvalue())
    assert raw_controls(shown, allowed="\r\n") == []
    assert list(csv.reader(io.StringIO(shown))) == [["host", "vm"], ["HV01", one_line(hostile)]]
    for fmt in ("text", "csv", "html", "json"):
        assert for_terminal(text, fmt, terminal=False) == text  # into a file: the data as it is


# --- the command line ------------------------------------------------------------------------------------

def _vms(name: str) -> list[VM]:
    return [VM("HV01", "42e4aaca-7231-5411-b96b-d03849b0dae1", name, "Running", status=name,
               notes=name, checkpoints=(Checkpoint("c1", name, "Standard", None, None),),
               dvd_drives=(DvdDrive("SCSI", 0, 1, f"D:\\ISO\\{name}.iso"),))]


@contextlib.contextmanager
def _session(name: str) -> Iterator[Any]:
    vms = _vms(name)

    class Result:
        hosts = {"HV01": type("R", (), {"status": "ok", "seconds": 0.1, "error": None})()}
        errors: dict[str, Exception] = {}

    session = type("S", (), {})()
    session.identity = Identity(sid="S-1-5-21-1-2-3-1001", name=f"LAB\\{name}")
    session.pool = type("P", (), {"inventory_all": staticmethod(lambda: Result()),
                                  "client": staticmethod(lambda host: object())})()
    session.policy = type("Pol", (), {"visible": staticmethod(lambda who, vms: [(v, None) for v in vms])})()
    Result.vms = vms
    yield session


def _run(monkeypatch: pytest.MonkeyPatch, out: io.StringIO, argv: list[str], stdin: str = "x\n") -> int:
    monkeypatch.setattr("sys.stdout", out)
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return cli_main(argv)


def test_vms_table_and_json_on_a_terminal(monkeypatch: pytest.MonkeyPatch, hostile: str) -> None:
    monkeypatch.setattr(hosts_command, "_session", lambda args, hosts=None: _session(hostile))
    tty = Terminal()
    assert _run(monkeypatch, tty, ["vms", "--user", "x", "--password-stdin"]) == 0
    assert raw_controls(tty.getvalue(), allowed="\n") == []
    assert len(tty.getvalue().splitlines()) == 2  # the header and one row: no forged row
    for out, exact in ((Terminal(), False), (File(), True)):
        assert _run(monkeypatch, out, ["vms", "--user", "x", "--password-stdin", "--json"]) == 0
        data = json.loads(out.getvalue())
        assert data["vms"][0]["name"] == hostile and data["user"] == f"LAB\\{hostile}"
        if exact:  # into a file or a pipe: the data as it is, nothing escaped but by JSON
            assert out.getvalue() == json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        else:
            assert raw_controls(out.getvalue(), allowed="\n") == []


@pytest.fixture(scope="module")
def demo_world() -> tuple[Policy, dict[str, list[VM]], dict[str, HostFacts]]:
    world = load_world()
    policy = Policy.load(LAB_DATA / "policy.toml")
    inventory = {h.name: [VM.from_json(h.name, d) for d in h.host.inventory()["vms"]]
                 for h in world.hosts}
    facts = {h.name: HostFacts.from_json(h.host.host_facts(["D:\\ISO\\"])) for h in world.hosts}
    return policy, inventory, facts


@pytest.mark.parametrize("fmt", ["text", "csv", "html", "json"])
def test_review_reports_on_a_terminal_and_into_a_file(monkeypatch: pytest.MonkeyPatch, fmt: str,
                                                      demo_world: tuple, tmp_path: Path) -> None:
    policy, inventory, facts = demo_world
    name = "".join(CORPUS[:-2])  # every kind at once (the long one on its own below)
    renamed = {h: [replace(vm, name=f"{name}{i}", notes=name) for i, vm in enumerate(vms)]
               for h, vms in inventory.items()}

    @contextlib.contextmanager
    def gather(args: Any) -> Iterator[review_command.Gathered]:
        identity = Identity(sid="S-1-5-21-1000-2000-3000-1104", name="LAB\\rita")
        yield review_command.Gathered(identity, policy, renamed, facts, None, {})

    monkeypatch.setattr(review_command, "gather", gather)
    argv = ["review", "--user", "rita", "--password-stdin", "--format", fmt, "--date", "2026-11-26"]
    if fmt == "csv":
        argv += ["--table", "permissions"]
    tty = Terminal()
    assert _run(monkeypatch, tty, argv) == 0
    assert raw_controls(tty.getvalue(), allowed="\r\n\t") == [], fmt
    assert "\r" not in tty.getvalue().replace("\r\n", "")
    out = tmp_path / f"review.{fmt}"
    assert _run(monkeypatch, File(), [*argv, "--out", str(out)]) == 0
    written = out.read_text(encoding="utf-8")
    if fmt == "json":
        assert json.loads(tty.getvalue()) == json.loads(written)  # the same data, escaped
        assert name in written or name.replace("\\", "\\\\") in written or "\\u" in written
    if fmt == "csv":
        rows = list(csv.reader(io.StringIO(tty.getvalue())))
        assert len(rows) == len(list(csv.reader(io.StringIO(written, newline=""))))


def test_audit_show_on_a_terminal(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                  hostile: str) -> None:
    trail = AuditTrail(tmp_path / "trail.jsonl", workstation=hostile)
    olivia = LabDirectory().sign_in("olivia", "olivia-demo")
    trail.decided(olivia, "vm.checkpoint.create", "HV01", "42e4aaca-7231-5411-b96b-d03849b0dae1",
                  hostile, {"name": hostile}, True, hostile)
    setup = Setup(Config(), Policy.load(LAB_DATA / "policy.toml"), LabDirectory(), trail)
    monkeypatch.setattr(Setup, "load", classmethod(lambda cls, path=None: setup))
    for extra in ([], ["--json"]):
        tty = Terminal()
        assert _run(monkeypatch, tty, ["audit", "show", str(trail.path), "--user", "rita",
                                       "--password-stdin", *extra], "rita-demo\n") == 0
        assert raw_controls(tty.getvalue(), allowed="\n") == []
        if extra:
            assert json.loads(tty.getvalue())[0]["vm_name"] == hostile
        else:
            assert len(tty.getvalue().splitlines()) == 1


def test_policy_explain_and_whoami_on_a_terminal(monkeypatch: pytest.MonkeyPatch,
                                                 hostile: str) -> None:
    tty = Terminal()
    assert _run(monkeypatch, tty, ["policy", "explain", str(LAB_DATA / "policy.toml"), "--user",
                                   hostile, "--host", "HV01", "--vm", hostile]) == 0
    assert raw_controls(tty.getvalue(), allowed="\n") == []
    tty = Terminal()
    assert _run(monkeypatch, tty, ["policy", "explain", str(LAB_DATA / "policy.toml"), "--user",
                                   hostile, "--host", "HV01", "--vm", hostile, "--json"]) == 0
    assert json.loads(tty.getvalue())["user"]["name"] == hostile
    assert raw_controls(tty.getvalue(), allowed="\n") == []

    class Directory:
        def sign_in(self, user: str, password: str) -> Identity:
            return Identity(sid="S-1-5-21-1-2-3-1001", name=f"LAB\\{hostile}", display_name=hostile,
                            upn=hostile, dn=hostile, mail=hostile)

    monkeypatch.setattr("console.commands.directory.demo_directory", lambda ext: Directory())
    for extra in ([], ["--json"]):
        tty = Terminal()
        assert _run(monkeypatch, tty, ["whoami", "--demo", "--user", "x", "--password-stdin",
                                       *extra]) == 0
        assert raw_controls(tty.getvalue(), allowed="\n") == []
        if extra:
            assert json.loads(tty.getvalue())["display_name"] == hostile


def test_error_sentences_on_stderr(monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str], hostile: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("x\n"))
    try:
        code = cli_main(["policy", "check", f"/nonexistent/{hostile}.toml"])
    except SystemExit as usage:  # a name the system cannot open: a usage error
        code = int(usage.code or 0)
    assert code != 0
    err = capsys.readouterr().err
    assert raw_controls(err, allowed="\n") == [] and err.count("\n") <= 2


# --- the log --------------------------------------------------------------------------------------

def test_log_records_stay_one_line_each(tmp_path: Path, hostile: str) -> None:
    path = logs.setup_logging(logging.INFO, folder=tmp_path / "logs")
    try:
        log = logging.getLogger("console.test_hostile")
        log.info("sign-in of %s refused", hostile)
        log.warning("%s: %r", hostile, hostile)
        try:
            raise ValueError(hostile)
        except ValueError:
            log.exception("host answered %s", hostile)
        for handler in logging.getLogger().handlers:
            handler.flush()
        text = path.read_text(encoding="utf-8")
    finally:
        logs.stop_logging()
        logging.getLogger().setLevel(logging.WARNING)
    lines = text.split("\n")[:-1]
    records = [line for line in lines if not line.startswith("    ")]
    assert len(records) == 3  # no forged record, whatever the name holds
    assert raw_controls(text, allowed="\n") == []


# --- the GUI --------------------------------------------------------------------------------------

def _plain_everywhere(widget: Any, hostile: str) -> None:
    from PySide6.QtGui import Qt  # QtGui's Qt carries mightBeRichText
    from PySide6.QtWidgets import QLabel

    labels = [w for w in widget.findChildren(QLabel) if w.text()]
    assert any(label.textFormat() == Qt.TextFormat.PlainText for label in labels)
    for label in labels:
        # A label Qt may read as markup holds only the program's own words (form row names).
        assert label.textFormat() == Qt.TextFormat.PlainText or \
            not Qt.mightBeRichText(label.text()), label.text()[:40]
        assert raw_controls(label.text(), allowed="\n\t") == [], label.text()[:40]
    assert raw_controls(widget.windowTitle()) == []


def _tooltip_reads_literally(tooltip: str, *lines: str) -> None:
    from PySide6.QtGui import QTextDocument

    doc = QTextDocument()
    doc.setHtml(tooltip)
    shown = doc.toPlainText()
    assert raw_controls(shown, allowed="\n\u2028") == []
    for line in lines:
        assert plain(line).split("\n")[0][:60] in shown.replace("\u2028", "\n")


def test_the_checkpoint_prompt_shows_the_vm_name_as_text(qtbot: Any, hostile: str) -> None:
    from ui.dialogs import AskText

    # what the window asks before a checkpoint (ui/mainwindow.py, trigger)
    dialog = AskText(None, "Checkpoint", f"Name of the new checkpoint of {hostile}:",
                     f"{hostile} - 2026-11-26 10:00")
    qtbot.addWidget(dialog)
    _plain_everywhere(dialog, hostile)
    assert dialog.label.text() == plain(f"Name of the new checkpoint of {hostile}:")
    assert dialog.text() == f"{hostile} - 2026-11-26 10:00".strip()  # what is typed stays exact


def test_confirmations_errors_and_prompts_are_plain_text(qtbot: Any, monkeypatch: pytest.MonkeyPatch,
                                                         hostile: str) -> None:
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QDialog, QLabel, QMessageBox

    from ui.dialogs import Confirm, IsoDialog, PasswordPrompt
    from ui.errors import describe

    boxes: list[QMessageBox] = []
    monkeypatch.setattr(QMessageBox, "exec", lambda self: boxes.append(self) or 0)
    Confirm.ask(None, "Apply checkpoint", f"Apply “{hostile}” of {hostile} on HV01?", hostile)
    (box,) = boxes
    assert box.textFormat() == Qt.TextFormat.PlainText and raw_controls(box.text(), "\n") == []
    informative = box.findChild(QLabel, "qt_msgbox_informativelabel")
    assert informative is not None and informative.textFormat() == Qt.TextFormat.PlainText
    assert raw_controls(informative.text(), "\n") == []

    from console.errors import ConsoleError
    sentence, details = describe(ConsoleError(f"{hostile} is not a configured host."))
    assert raw_controls(sentence, "\n") == [] and details == ""

    dialogs: list[QDialog] = []
    monkeypatch.setattr(QDialog, "exec", lambda self: dialogs.append(self) or 0)
    PasswordPrompt.ask(None, f"LAB\\{hostile}", f"{hostile} refused the password")
    _plain_everywhere(dialogs[-1], hostile)
    iso = IsoDialog(hostile, [IsoFile(f"D:\\ISO\\{hostile}.iso", 1024)], hostile)
    qtbot.addWidget(iso)
    _plain_everywhere(iso, hostile)
    assert iso.model.index(0, 0).data() == one_line(f"{hostile}.iso") or \
        raw_controls(str(iso.model.index(0, 0).data())) == []


def test_sign_in_first_run_activity_and_details_show_text_as_text(
        qtbot: Any, tmp_path: Path, hostile: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from PySide6.QtCore import QSettings

    from console.errors import SignInError
    from ui.details import DetailsPane
    from ui.first_run import FirstRunDialog
    from ui.models import VMRow
    from ui.signin import SignInDialog
    from ui.tasks import Tasks

    tasks = Tasks(pytest.fail)

    def refuse(user: str, password: str) -> Identity:
        raise SignInError(f"{user} is not the domain of this directory", "foreign_domain")

    signin = SignInDialog(tasks, refuse, QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat),
                          warnings=[hostile])
    qtbot.addWidget(signin)
    signin.user_field.setText(hostile)
    signin.password_field.setText("x")
    signin.submit()
    qtbot.waitUntil(lambda: not signin.signing_in, timeout=10_000)
    assert signin.error.isVisibleTo(signin)
    _plain_everywhere(signin, hostile)

    first = FirstRunDialog(None, tasks, config_path=tmp_path / "c.toml",
                           machine_policy=str(LAB_DATA / "policy.toml"))
    qtbot.addWidget(first)
    first._say(f"Signed in as LAB\\{hostile}.\n{hostile}: answered, 3 VMs visible.")
    first.hosts_field.setPlainText(f"{hostile} https://hv01.lab.example:5986/wsman")
    first.validate()
    _plain_everywhere(first, hostile)

    class Decision:
        privileges = frozenset({"vm.view"})

        def explain(self) -> str:
            return f"LAB\\{hostile} may view {hostile}: member of LAB\\{hostile}"

    pane = DetailsPane()
    qtbot.addWidget(pane)
    pane.show_rows([VMRow(_vms(hostile)[0], None, Decision())])
    _plain_everywhere(pane, hostile)


def test_tooltips_show_their_lines_literally(qapp: Any, hostile: str) -> None:
    from ui.text import tip

    text = tip(f"{hostile}: unreachable", f"The host {hostile} did not answer")
    assert "<img" not in text and "<b>" not in text  # escaped, never markup
    _tooltip_reads_literally(text, f"{hostile}: unreachable")

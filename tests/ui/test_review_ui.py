"""The review screen and the policy editor dialog, offscreen, on the demo world."""
from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import pytest
from PySide6.QtCore import QItemSelectionModel, Qt

from console.audit import AuditTrail
from console.identity import Group, Identity
from console.inventory import VM, HostFacts
from lab.world import load_world
from console.paths import LAB_DATA
from console.policy import Policy
from ui.review import ReviewWindow, SaveAs

D = "S-1-5-21-1000-2000-3000"
ADAM = Identity(f"{D}-1103", "LAB\\adam", groups=(Group(f"{D}-1204", "LAB\\HV-Admins"),))
RITA = Identity(f"{D}-1104", "LAB\\rita", groups=(Group(f"{D}-1205", "LAB\\HV-Reviewers"),))
HOSTILE = "<b>bold</b>"


@pytest.fixture
def world(tmp_path: Path) -> tuple[SimpleNamespace, dict, dict]:
    path = tmp_path / "policy.toml"
    shutil.copy(LAB_DATA / "policy.toml", path)
    lab = load_world()
    inventory = {h.name: [VM.from_json(h.name, d) for d in h.host.inventory()["vms"]]
                 for h in lab.hosts}
    inventory["HV03"].append(VM("HV03", "11111111-2222-4333-8444-555555555555", HOSTILE, "Off"))
    facts = {h.name: HostFacts.from_json(h.host.host_facts(["D:\\ISO\\"])) for h in lab.hosts}
    services = SimpleNamespace(policy=Policy.load(path), audit=AuditTrail(tmp_path / "audit.jsonl"))
    return services, inventory, facts


def window(qtbot, world, who: Identity) -> ReviewWindow:  # type: ignore[no-untyped-def]
    services, inventory, facts = world
    w = ReviewWindow(services, session=SimpleNamespace(identity=who), inventory=inventory,
                     facts=facts, today=date(2026, 11, 26))
    qtbot.addWidget(w)
    return w


def test_review_screen_shows_findings_permissions_and_impact(qtbot, qtmodeltester, world) -> None:  # type: ignore[no-untyped-def]
    w = window(qtbot, world, RITA)
    qtmodeltester.check(w.findings)
    kinds = {f.kind for f in w.findings.objects}
    assert {"tiers-together", "host-classification", "over-broad", "vm-undocumented"} <= kinds
    # untrusted names are cells, never markup
    summaries = [str(w.findings.rows[r][2]) for r in range(w.findings.rowCount())]
    assert any(HOSTILE in s for s in summaries)
    w.principal_choice.setCurrentIndex(w.principal_choice.findText("LAB\\IT-Support"))
    rows = {w.principal_model.rows[r][1]: w.principal_model.rows[r][2:]
            for r in range(w.principal_model.rowCount())}
    assert {vm for vm, (held, _) in rows.items() if held} == {
        "shop-web02", "office-print", "office-files"}
    assert rows["payroll-db"][0] == "" and "View" in str(rows["payroll-db"][1])  # the deny
    w.host_choice.setCurrentIndex(w.host_choice.findText("HV01"))
    assert w.impact_model.rowCount() == 4
    assert "shop-db01: Running, shop/db, owner Olivia Owner" in w.notice.toPlainText()
    assert not w.buttons["edit"].isEnabled()  # rita only reads


def test_findings_read_at_a_glance(qtbot, world) -> None:  # type: ignore[no-untyped-def]
    from ui.review import privilege_title

    w = window(qtbot, world, RITA)
    w.show()
    view, proxy = w.findings_view, w.findings_filter
    assert [proxy.headerData(c, Qt.Orientation.Horizontal) for c in range(3)] == [
        "Severity", "Finding", "What is wrong"]
    # Severity sorts by weight, not by its letters: every High before every Medium before Low.
    shown = [proxy.index(r, 0).data() for r in range(proxy.rowCount())]
    rank = {"High": 0, "Medium": 1, "Low": 2}
    assert shown == sorted(shown, key=rank.__getitem__) and shown[0] == "High"
    assert proxy.index(0, 0).data(Qt.ItemDataRole.ForegroundRole) is not None  # coloured
    # The whole finding and its objects below the table.
    view.selectRow(0)
    view.selectionModel().setCurrentIndex(proxy.index(0, 0), QItemSelectionModel.SelectionFlag.Current)
    finding = w.selected_finding()
    assert finding is not None and finding.summary in w.finding_text.toPlainText()
    assert finding.fix in w.finding_text.toPlainText()
    assert w.finding_objects.count() == len(finding.objects)
    # Filters by severity and kind.
    w.severity_choice.setCurrentIndex(w.severity_choice.findData("low"))
    assert proxy.rowCount() and all(proxy.index(r, 0).data() == "Low" for r in range(proxy.rowCount()))
    w.severity_choice.setCurrentIndex(0)
    w.kind_choice.setCurrentIndex(w.kind_choice.findData("over-broad"))
    assert proxy.rowCount() == sum(f.kind == "over-broad" for f in w.findings.objects) > 0
    # A principal a finding names opens its rights.
    over_broad = next(f for f in w.findings.objects if f.kind == "over-broad")
    assert any(w.open_object(name) for name in over_broad.objects)
    assert w.tabs.currentIndex() in (1, 2)
    assert not w.open_object("no such thing")
    # Privileges as people name them, and each export says what it writes.
    assert privilege_title("vm.checkpoint.create") == "Create checkpoints"
    assert privilege_title("vm.media") == "Mount media"
    w.tabs.setCurrentIndex(1)
    assert w.buttons["csv"].text() == "Who can touch this VM (CSV)…"
    w.tabs.setCurrentIndex(0)
    assert w.buttons["csv"].text() == "Findings (CSV)…"


def test_export_writes_what_the_core_exports(qtbot, world, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    w = window(qtbot, world, RITA)
    target = tmp_path / "out.html"
    monkeypatch.setattr(SaveAs, "ask", classmethod(lambda cls, *a: target))
    assert w.export("html") == target
    page = target.read_text(encoding="utf-8")
    assert "&lt;b&gt;bold&lt;/b&gt;" in page and "<b>bold" not in page
    assert w.status.text() == f"Exported Whole review (HTML) to {target}."


def test_editor_dialog_proposes_shows_diff_and_saves(qtbot, world, answers) -> None:  # type: ignore[no-untyped-def]
    w = window(qtbot, world, ADAM)
    assert w.buttons["edit"].isEnabled()
    dialog = w.open_editor()
    assert dialog is not None
    qtbot.addWidget(dialog)
    qtbot.waitExposed(dialog)
    model = dialog.grants
    row = next(r for r in range(model.rowCount()) if str(model.rows[r][5]) == "2026-10-31")
    view = dialog.grants_view
    view.selectionModel().select(view.model().mapFromSource(model.index(row, 0)),
                                 QItemSelectionModel.SelectionFlag.ClearAndSelect
                                 | QItemSelectionModel.SelectionFlag.Rows)
    dialog.remove_button.click()
    assert "-expires = 2026-10-31" in dialog.diff.toPlainText()
    assert dialog.save_button.isEnabled()
    path = dialog.editor.path
    # someone else saves first: the dialog refuses, offers to reload, loses nothing
    other = path.read_text(encoding="utf-8") + "\n# changed elsewhere\n"
    path.write_text(other, encoding="utf-8")
    assert dialog.save() is False
    assert path.read_text(encoding="utf-8") == other
    assert answers.asked and answers.asked[-1][0] == "confirm"
    assert dialog.grants.rowCount() == 11  # reloaded
    row = next(r for r in range(model.rowCount()) if str(model.rows[r][5]) == "2026-10-31")
    view.selectionModel().select(view.model().mapFromSource(model.index(row, 0)),
                                 QItemSelectionModel.SelectionFlag.ClearAndSelect
                                 | QItemSelectionModel.SelectionFlag.Rows)
    dialog.remove_button.click()
    assert dialog.save() is True
    saved = path.read_text(encoding="utf-8")
    assert "# changed elsewhere" in saved and "2026-10-31" not in saved
    assert dialog.grants.rowCount() == 10


def test_a_new_grant_starts_at_the_narrowest_role_and_scope(qtbot, world) -> None:  # type: ignore[no-untyped-def]
    w = window(qtbot, world, ADAM)
    dialog = w.open_editor()
    assert dialog is not None
    qtbot.addWidget(dialog)
    assert dialog.role.currentText() == "viewer" and dialog.scope.currentText() == "vm"
    assert dialog.scope.itemText(dialog.scope.count() - 1) == "everything"


def test_the_principal_of_a_new_grant_comes_from_the_directory(qtbot, world) -> None:  # type: ignore[no-untyped-def]
    from lab.directory import LabDirectory
    from ui.review import PolicyEditorDialog

    w = window(qtbot, world, ADAM)
    assert not w.open_editor().lookup_button.isEnabled()  # no directory to ask in this window

    def find(name: str):  # type: ignore[no-untyped-def]
        with LabDirectory().session("adam", "adam-demo") as session:
            return session.resolve(name)
    editor = w.open_editor().editor
    dialog = PolicyEditorDialog(editor, w, lookup=find)
    qtbot.addWidget(dialog)
    assert dialog.sid.isReadOnly()  # typed by nobody: the directory's
    dialog.principal.setText("hv-reviewers")
    dialog.look_up()
    qtbot.waitUntil(lambda: dialog.sid.text() != "", timeout=10_000)
    assert dialog.principal.text() == "LAB\\HV-Reviewers" and dialog.sid.text() == f"{D}-1205"
    dialog.principal.setText("nobody-at-all")
    dialog.look_up()
    qtbot.waitUntil(lambda: "has no nobody-at-all" in dialog.message.text(), timeout=10_000)


def test_editor_dialog_shows_validation_problems_as_text(qtbot, world) -> None:  # type: ignore[no-untyped-def]
    w = window(qtbot, world, ADAM)
    dialog = w.open_editor()
    assert dialog is not None
    qtbot.addWidget(dialog)
    dialog.principal.setText("LAB\\X")
    dialog.sid.setText("not-a-sid")
    dialog.scope.setCurrentText("host")
    dialog.value.setText("HV01")
    dialog.add_button.click()
    assert "not a SID" in dialog.message.text()
    assert not dialog.save_button.isEnabled()


# --- the Audit tab: what the hosts wrote, read in a worker -------------------------------------

def test_the_audit_tab_shows_the_hosts_events_read_in_a_worker(
        qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    import threading

    from console import review
    from console.inventory import Action
    from console.session import sign_in
    from lab.demo import demo_setup

    threads: list[threading.Thread] = []
    original = review.read_audit_events

    def recorded(*args: object, **kwargs: object) -> review.AuditRead:
        threads.append(threading.current_thread())
        return original(*args, **kwargs)  # type: ignore[arg-type]
    monkeypatch.setattr(review, "read_audit_events", recorded)

    with demo_setup() as lab:
        with sign_in(lab, "olivia", "olivia-demo") as olivia:
            vm = next(v for v in olivia.pool.inventory_all().vms if v.name == "shop-web01")
            olivia.actions.perform(olivia.identity, vm, Action.SAVE)
        with sign_in(lab, "rita", "rita-demo") as rita:
            w = ReviewWindow(SimpleNamespace(policy=lab.policy, audit=lab.audit), session=rita,
                             inventory={}, facts={}, today=date.today())
            qtbot.addWidget(w)
            assert w.audit.read_button.isEnabled() and not w.audit.asked
            w.tabs.setCurrentWidget(w.audit)  # opening the tab reads the hosts
            qtbot.waitUntil(lambda: w.audit.task is not None and w.audit.task.done, timeout=30000)
            assert threads and threads[0] is not threading.main_thread()
            model = w.audit.model
            assert model.rowCount() == 1
            assert [model.rows[0][c] for c in (1, 2, 3, 4, 5, 6)] == [
                "HV01", "LAB\\olivia", "jea", "power save", "shop-web01", "ok"]
            assert str(model.rows[0][7]).startswith("#1 ") and "HV01, HV02, HV03" in \
                w.audit.status.text()
            tooltip = model.data(model.index(0, 0), Qt.ItemDataRole.ToolTipRole)
            assert "S-1-5-21-1000-2000-3000-1101" in tooltip and "line sha256" in tooltip
            # Filters: by person and by VM, on what was read.
            w.audit.person.setText("henry")
            assert model.rowCount() == 0
            w.audit.person.setText("LAB\\olivia")
            w.audit.vm.setText("SHOP-WEB01")
            assert model.rowCount() == 1
            # The CSV button exports what the tab shows.
            assert w.buttons["csv"].text() == "The hosts' events (CSV)…"
            target = tmp_path / "events.csv"
            monkeypatch.setattr(SaveAs, "ask", classmethod(lambda cls, *a: target))
            assert w.export("csv") == target
            assert target.read_text(encoding="utf-8").splitlines()[0].startswith("time,host,user,sid")
            # A day that is not one is said, and nothing is read.
            w.audit.since.setText("yesterday")
            w.audit.read()
            assert "is not a day" in w.audit.status.text() and len(threads) == 1


def test_the_audit_tab_is_refused_without_audit_read(qtbot, world) -> None:  # type: ignore[no-untyped-def]
    olivia = Identity(f"{D}-1101", "LAB\\olivia", groups=(Group(f"{D}-1201", "LAB\\HV-Shop-Owners"),))
    services, inventory, facts = world
    w = ReviewWindow(services, session=SimpleNamespace(identity=olivia, pool=object()),
                     inventory=inventory, facts=facts, today=date(2026, 11, 26))
    qtbot.addWidget(w)
    w.tabs.setCurrentWidget(w.audit)
    assert not w.audit.read_button.isEnabled() and w.audit.task is None
    assert "needs audit.read" in w.audit.status.text()
    # A reviewer without a session to the hosts (the policy alone) reads nothing either.
    rita = ReviewWindow(services, session=SimpleNamespace(identity=RITA), inventory=inventory,
                        facts=facts, today=date(2026, 11, 26))
    qtbot.addWidget(rita)
    assert not rita.audit.allowed

"""The review window's hardening: the findings in the Findings tab and each host's summary in the
Hardening tab, from the demo world's hosts (lab/hardening.py)."""
from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path
from types import SimpleNamespace

from console import review as core
from console.audit import AuditTrail
from console.hardening import HostHardening
from console.identity import Group, Identity
from console.inventory import VM, HostFacts
from console.paths import LAB_DATA
from console.policy import Policy
from lab.world import load_world
from ui.review import ReviewWindow

D = "S-1-5-21-1000-2000-3000"
RITA = Identity(f"{D}-1104", "LAB\\rita", groups=(Group(f"{D}-1205", "LAB\\HV-Reviewers"),))


def test_the_hardening_findings_and_each_hosts_summary_are_shown(qtbot, qtmodeltester,  # type: ignore[no-untyped-def]
                                                                 tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    shutil.copy(LAB_DATA / "policy.toml", path)
    policy = Policy.load(path)
    lab = load_world()
    inventory = {h.name: [VM.from_json(h.name, d) for d in h.host.inventory()["vms"]]
                 for h in lab.hosts}
    facts = {h.name: HostFacts.from_json(h.host.host_facts(["D:\\ISO\\"])) for h in lab.hosts}
    hardening = {h.name: HostHardening.from_json(h.host.operation("host_hardening", {}))
                 for h in lab.hosts}
    today = date(2026, 11, 26)
    review = core.with_hardening(core.build_review(policy, inventory, facts, today=today,
                                                   domain="LAB"), hardening)
    services = SimpleNamespace(policy=policy, audit=AuditTrail(tmp_path / "audit.jsonl"))
    w = ReviewWindow(services, session=SimpleNamespace(identity=RITA), inventory=inventory,
                     facts=facts, today=today, review=review)
    qtbot.addWidget(w)
    kinds = {f.kind for f in w.findings.objects}
    assert {"host-local-members", "host-desktop", "host-rdp-user",
            "host-unexpected-endpoint"} <= kinds
    w.kind_choice.setCurrentIndex(w.kind_choice.findData("host-rdp-user"))
    assert w.findings_filter.rowCount() == 1
    qtmodeltester.check(w.hardening_model)
    w.hardening_choice.setCurrentIndex(w.hardening_choice.findText("HV02"))
    rows = {str(r[0]): str(r[1]) for r in w.hardening_model.rows}
    assert rows["Hyper-V Administrators"] == (
        "LAB\\HV-Admins (domain), HV02\\hvadmin (local), HV02\\backup (local)")
    w.hardening_choice.setCurrentIndex(w.hardening_choice.findText("HV03"))
    rows = {str(r[0]): str(r[1]) for r in w.hardening_model.rows}
    assert rows["Installation"] == "Server" and rows["Extra features"] == "Web-Server, Web-WebServer"
    first = w.hardening_view.model().index(0, 0).data()
    assert first == "Installation"  # in the summary's order, not the alphabet's

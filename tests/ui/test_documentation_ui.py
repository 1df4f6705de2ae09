"""The review window's documentation on a host: read in a worker, each VM's change shown, a
person's edit on the host as a diff, then written through the admin endpoint."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from console.errors import HostAccessDenied
from console.hosts import Credentials, HostPool
from console.policy import Policy
from ui.documentation import DocumentWindow
from ui.tasks import Tasks

from .labparts import start_lab


@pytest.fixture
def lab_pool() -> Iterator[tuple[object, HostPool, Policy]]:
    with start_lab() as lab:
        config = lab.config()
        pool = HostPool(config.hosts, Credentials("LAB\\adam", "adam-demo"))
        try:
            yield lab, pool, Policy.load(config.policy_path)
        finally:
            pool.close()


def test_read_look_then_write(qtbot, lab_pool, answers) -> None:  # type: ignore[no-untyped-def]
    lab, pool, policy = lab_pool
    errors: list[BaseException] = []
    tasks = Tasks(errors.append)
    window = DocumentWindow("HV01", pool, policy, tasks)
    qtbot.addWidget(window)
    assert not window.write_button.isEnabled()  # nothing is written before it was read
    window.read()
    qtbot.waitUntil(lambda: window.model.rowCount() > 0, timeout=30_000)
    names = [c.vm.name for c in window.model.items]
    assert names == sorted(names, key=str.lower) and "shop-web01" in names
    assert {c.kind for c in window.model.items} == {"new"}
    assert window.write_button.isEnabled() and "to write" in window.status.text()
    assert "Owner:" in window.diff.toPlainText()  # the first VM's file as it would be written
    window.write()
    qtbot.waitUntil(lambda: "files written" in window.status.text(), timeout=30_000)
    host = lab.world.host("HV01").host
    written = [p for p in host.contents if p.lower().startswith("c:\\documentation\\vms\\")]
    assert len(written) == len(names)
    # A person edits one file on the host: read again shows it as edited, with the diff.
    path = next(p for p in written if "shop-web01" in p)
    host.contents[path] = host.contents[path].replace(b"Olivia Owner", b"Olivia (on leave)")
    window.read()
    qtbot.waitUntil(lambda: any(c.kind == "edited on the host" for c in window.model.items),
                    timeout=30_000)
    row = next(i for i, c in enumerate(window.model.items) if c.vm.name == "shop-web01")
    window.table.selectRow(row)
    assert "-  Owner:" in window.diff.toPlainText() and "Olivia (on leave)" in window.diff.toPlainText()
    assert "shop-web01" in window.status.text()  # named as edited before writing
    qtbot.waitUntil(lambda: not tasks.running)
    assert errors == []


def test_a_refusal_by_the_host_says_who_may(qtbot, lab_pool, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _, pool, policy = lab_pool
    tasks = Tasks(lambda e: None)
    window = DocumentWindow("HV01", pool, policy, tasks)
    qtbot.addWidget(window)

    def refused(host: str, work: object) -> object:
        raise HostAccessDenied("HV01 refuses this account a session on its default PowerShell "
                               "endpoint Microsoft.PowerShell: Access is denied.", host="HV01")
    monkeypatch.setattr(pool, "on_admin_endpoint", refused)
    window.read()
    qtbot.waitUntil(lambda: "Access is denied" in window.status.text(), timeout=10_000)
    assert "ask one of the host's administrators" in window.status.text()
    assert window.read_button.isEnabled() and not window.write_button.isEnabled()


def test_the_review_window_opens_it_for_the_chosen_host(qtbot, lab_pool) -> None:  # type: ignore[no-untyped-def]
    from types import SimpleNamespace

    from ui.review import ReviewWindow

    _, pool, policy = lab_pool
    inventory = {h: list(r.vms) for h, r in pool.inventory_all().hosts.items() if r.vms}
    window = ReviewWindow(SimpleNamespace(policy=policy), inventory=inventory, facts={},
                          session=SimpleNamespace(pool=pool, identity=None))
    qtbot.addWidget(window)
    window.host_choice.setCurrentIndex(window.host_choice.findData("HV02"))
    opened = window.document_host()
    assert opened is not None and opened.windowTitle() == "Documentation on HV02"
    assert window.document_host() is opened  # one window a host

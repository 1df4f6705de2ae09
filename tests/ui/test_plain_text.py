"""Names, notes and messages written by others are shown literally, never as markup."""
from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from console.inventory import VM, Checkpoint, DvdDrive
from ui.details import DetailsPane
from ui.models import VMRow

EVIL = "<img src=x>"
LINK = "<a href=y>click</a>"


@dataclass(frozen=True)
class Doc:
    owner: str = LINK
    contact: str = "<b>boss</b>@example"
    classification: str = "internal"
    application: str = "<i>shop</i>"
    tier: str = "web"
    tags: tuple[str, ...] = ("<u>t</u>",)
    notes: str = "<script>alert(1)</script>"


@dataclass(frozen=True)
class Decision:
    privileges: frozenset[str] = frozenset({"vm.view", "vm.start"})

    def explain(self) -> str:
        return f"LAB\\henry may start {EVIL}: member of LAB\\{LINK}"


def test_details_pane_shows_every_untrusted_value_as_plain_text(qtbot) -> None:
    vm = VM(host="HV01", id="id-1", name=EVIL, state="Running", notes=LINK,
            checkpoints=(Checkpoint("c1", LINK, "Standard", None, None),),
            dvd_drives=(DvdDrive("SCSI", 0, 1, "D:\\ISO\\<img src=x>.iso"),))
    pane = DetailsPane()
    qtbot.addWidget(pane)
    pane.show_rows([VMRow(vm, Doc(), Decision())])
    labels = pane.findChildren(QLabel)
    assert labels and all(label.textFormat() == Qt.TextFormat.PlainText for label in labels
                          if label.text())
    texts = {label.text() for label in labels}
    assert EVIL in texts and LINK in texts and "<script>alert(1)</script>" in texts
    assert any(EVIL in t and "may start" in t for t in texts)
    assert pane.checkpoint_model.index(0, 0).data() == LINK

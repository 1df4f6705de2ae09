"""`hvconsole` with no command: the first-run dialog when nothing is configured, a clear sentence
when the configuration is unusable."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import ui.main
from ui.errors import ErrorDialog
from ui.first_run import FirstRunDialog


@pytest.fixture
def logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setattr("console.logs.setup_logging", lambda *a, **k: tmp_path / "log")


def test_no_configuration_opens_the_first_run_dialog(qapp: Any, tmp_path: Path, logs: None,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[Path] = []

    def ask(parent: Any, tasks: Any, **options: Any) -> None:
        asked.append(options["config_path"])
        return None  # the person cancelled

    monkeypatch.setattr(FirstRunDialog, "ask", classmethod(lambda cls, *a, **k: ask(*a, **k)))
    assert ui.main.start(tmp_path / "config.toml") == 0
    assert asked == [tmp_path / "config.toml"]


def test_a_configuration_without_policy_says_so(qapp: Any, tmp_path: Path, logs: None,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[directory]\nurls = ["ldaps://127.0.0.1"]\ndomain = "lab.example"\n')
    monkeypatch.setattr("console.config.machine_config_path", lambda: tmp_path / "none.toml")
    shown: list[str] = []
    monkeypatch.setattr(ErrorDialog, "present",
                        classmethod(lambda cls, parent, title, sentence, details: shown.append(sentence)))
    assert ui.main.start(config) == 1
    assert len(shown) == 1 and "policy.path" in shown[0]

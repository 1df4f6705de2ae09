"""The background-work facade: results and errors come back on the GUI thread, cancel drops them."""
from __future__ import annotations

import threading

import pytest
from console.errors import HostUnreachable
from ui.errors import ErrorDialog, describe, show_exception
from ui.tasks import Tasks


def test_result_arrives_on_the_gui_thread(qtbot) -> None:
    errors: list[BaseException] = []
    tasks = Tasks(errors.append)
    got: list[tuple[int, bool]] = []
    worker_threads: list[bool] = []

    def work(a: int, b: int) -> int:
        worker_threads.append(threading.current_thread() is not threading.main_thread())
        return a + b

    task = tasks.run(work, 2, 3).on_success(
        lambda v: got.append((v, threading.current_thread() is threading.main_thread())))
    qtbot.waitUntil(lambda: task.done)
    assert got == [(5, True)] and worker_threads == [True] and errors == []
    assert tasks.running == []


def test_unhandled_failure_goes_to_the_default_handler(qtbot) -> None:
    errors: list[BaseException] = []
    tasks = Tasks(errors.append)

    def fail() -> None:
        raise HostUnreachable("HV01 cannot be reached.", host="HV01")

    task = tasks.run(fail)
    qtbot.waitUntil(lambda: task.done)
    assert [str(e) for e in errors] == ["HV01 cannot be reached."]
    handled: list[BaseException] = []
    task = tasks.run(fail).on_failure(handled.append)
    qtbot.waitUntil(lambda: task.done)
    assert len(handled) == 1 and len(errors) == 1


def test_a_cancelled_task_drops_its_result(qtbot) -> None:
    tasks = Tasks(pytest.fail)
    release = threading.Event()
    got: list[object] = []
    task = tasks.run(release.wait, 10).on_success(got.append)
    task.cancel()
    release.set()
    qtbot.waitUntil(lambda: task.done)
    assert got == []


def test_show_exception_sentences_and_tracebacks(answers) -> None:
    show_exception(HostUnreachable("HV02 did not answer: <b>down</b>."))
    try:
        {}["missing"]
    except KeyError as exc:
        show_exception(exc)
    (known, no_details), (bug, details) = answers.errors
    assert known == "HV02 did not answer: <b>down</b>." and no_details == ""
    assert "KeyError" in bug and "Traceback" in details and "missing" in details
    assert describe(HostUnreachable("x"))[1] == ""
    assert ErrorDialog.shown[-1][0] == bug


def test_excepthook_shows_a_dialog_and_the_program_goes_on(answers, monkeypatch) -> None:
    import sys

    from ui.errors import install_excepthook

    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # restored after the test
    install_excepthook()
    try:
        raise RuntimeError("a bug in a slot")
    except RuntimeError as exc:
        sys.excepthook(type(exc), exc, exc.__traceback__)
    sentence, details = answers.errors[-1]
    assert "RuntimeError" in sentence and "a bug in a slot" in details

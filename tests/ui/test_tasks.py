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


def test_a_delivered_task_lets_go_of_its_value(qtbot) -> None:
    # A host's whole answer must not outlive its delivery (memory over many refreshes).
    import gc
    import weakref

    class Answer:
        pass

    tasks = Tasks(pytest.fail)
    kept: list[weakref.ref[Answer]] = []
    task = tasks.run(Answer).on_success(lambda value: kept.append(weakref.ref(value)))
    qtbot.waitUntil(lambda: task.done)
    gc.collect()
    assert kept and kept[0]() is None and not task.holds_result and tasks.running == []


def test_a_future_from_the_core_is_delivered_on_the_gui_thread(qtbot) -> None:
    from concurrent.futures import Future
    tasks = Tasks(pytest.fail)
    future: Future[int] = Future()
    got: list[tuple[int, bool]] = []
    task = tasks.watch(future, "queued action").on_success(
        lambda v: got.append((v, threading.current_thread() is threading.main_thread())))
    threading.Thread(target=future.set_result, args=(7,)).start()
    qtbot.waitUntil(lambda: task.done)
    assert got == [(7, True)]


def test_a_program_that_ran_many_tasks_exits_cleanly(tmp_path) -> None:
    # Workers retired by a timer aborted such a script with "bool_dealloc" under PySide6 6.12.
    import subprocess
    import sys
    script = tmp_path / "many.py"
    script.write_text(
        "import os, sys\n"
        "os.environ['QT_QPA_PLATFORM'] = 'offscreen'\n"
        "from PySide6.QtCore import QCoreApplication, QTimer\n"
        "from ui.tasks import Tasks\n"
        "app = QCoreApplication([])\n"
        "tasks = Tasks(print)\n"
        "done = []\n"
        "for n in range(30):\n"
        "    tasks.run(lambda n=n: n % 2 == 0).on_success(done.append)\n"
        "def check():\n"
        "    if len(done) == 30:\n"
        "        tasks.shutdown(); app.quit()\n"
        "timer = QTimer(); timer.timeout.connect(check); timer.start(10)\n"
        "app.exec()\n"
        "print('done', len(done))\n")
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            timeout=60, cwd=str(__import__('pathlib').Path(__file__).parents[2]))
    assert (result.returncode, result.stdout.strip()) == (0, "done 30"), result.stderr


def test_emitting_a_signal_keeps_pythons_reference_counts(qtbot) -> None:
    # PySide6 6.12.0's Signal.emit() returned True without a reference of its own: each emit
    # took one from True, and a long session crashed the interpreter ("bool_dealloc").
    import sys

    from PySide6.QtCore import QObject, Signal

    class Emitter(QObject):
        ping = Signal(int)

    emitter = Emitter()
    emitter.ping.connect(lambda _: None)
    before = sys.getrefcount(True)
    for n in range(200):
        emitter.ping.emit(n)
    assert sys.getrefcount(True) - before > -100


def test_a_read_never_waits_behind_queued_actions(qtbot) -> None:
    # Actions wait their turn on their host's queue (the core's single-worker executor); the GUI
    # holds no worker thread for them, so a read of another host runs at once.
    from concurrent.futures import ThreadPoolExecutor
    tasks = Tasks(pytest.fail)
    host_queue = ThreadPoolExecutor(max_workers=1)
    release = threading.Event()
    actions = [tasks.watch(host_queue.submit(release.wait, 30), f"action {n}") for n in range(60)]
    read = tasks.run(lambda: "inventory of HV02")
    qtbot.waitUntil(lambda: read.done, timeout=5_000)
    assert not any(a.done for a in actions)
    release.set()
    qtbot.waitUntil(lambda: all(a.done for a in actions), timeout=10_000)
    host_queue.shutdown()

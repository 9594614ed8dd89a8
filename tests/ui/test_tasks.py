"""The background bridge: results, progress and errors come back on the GUI thread."""

from __future__ import annotations

import threading

from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from app.services.errors import UserError
from app.ui.shell.tasks import Lane, Progress, Task, manager


def test_result_arrives_on_the_gui_thread(qtbot):
    seen = []
    worker_threads = []

    def op():
        worker_threads.append(threading.current_thread())
        return 42

    Task(None, op, success=lambda value: seen.append((value, threading.current_thread()))).run()
    qtbot.waitUntil(lambda: bool(seen))
    assert seen == [(42, threading.main_thread())]
    assert worker_threads[0] is not threading.main_thread()


def test_generator_reports_progress_then_result(qtbot):
    events, results = [], []

    def op():
        yield ("upload", 0.5, "Uploading")
        yield Progress("deploy", 1.0, "Deploying")
        return "done"

    Task(None, op, progress=events.append, success=results.append).run()
    qtbot.waitUntil(lambda: bool(results))
    assert [e.step for e in events] == ["upload", "deploy"]
    assert events[0].fraction == 0.5 and events[0].message == "Uploading"
    assert results == ["done"]


def test_user_error_goes_to_one_dialog_with_its_text(qtbot):
    parent = QWidget()
    qtbot.addWidget(parent)

    def op():
        raise UserError("The AWS key was rejected.", hint="Check the secret key.")

    Task(parent, op).run()
    Task(parent, op).run()
    qtbot.waitUntil(lambda: manager().pending == 0)
    boxes = [w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible()]
    assert len(boxes) == 1
    assert boxes[0].text() == "The AWS key was rejected. Check the secret key."
    assert "1 more problem" in boxes[0].informativeText()
    boxes[0].close()


def test_failure_handler_gets_the_error_and_no_dialog_opens(qtbot):
    errors = []
    Task(None, lambda: 1 / 0, failure=errors.append).run()
    qtbot.waitUntil(lambda: bool(errors))
    assert isinstance(errors[0], ZeroDivisionError)
    assert not [w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible()]


def test_library_lane_runs_one_op_at_a_time(qtbot):
    lock = threading.Lock()
    overlaps, done = [], []

    def op():
        if not lock.acquire(blocking=False):
            overlaps.append(1)
            return
        try:
            threading.Event().wait(0.01)
        finally:
            lock.release()

    for _ in range(8):
        Task(None, op, lane=Lane.LIBRARY, success=done.append).run()
    qtbot.waitUntil(lambda: len(done) == 8)
    assert not overlaps


def test_cancelled_task_delivers_nothing(qtbot):
    gate = threading.Event()
    seen = []

    def op():
        gate.wait(5)
        return 1

    task = Task(None, op, success=seen.append).run()
    task.cancel()
    gate.set()
    assert manager().wait(5000)
    qtbot.wait(50)
    assert seen == []


def test_slow_work_gets_a_busy_cursor_then_a_cancellable_progress_dialog(qtbot):
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QProgressDialog

    parent = QWidget()
    qtbot.addWidget(parent)
    parent.show()
    gate = threading.Event()
    results = []

    def op():
        yield ("Uploading", 0.25, "source.zip")
        gate.wait(10)
        return "done"

    task = Task(parent, op, success=results.append).with_progress("Deploying…").run()
    qtbot.waitUntil(lambda: QApplication.overrideCursor() is not None)
    assert QApplication.overrideCursor().shape() == Qt.CursorShape.BusyCursor
    qtbot.waitUntil(lambda: any(isinstance(w, QProgressDialog) and w.isVisible()
                                for w in QApplication.topLevelWidgets()))
    dialog = next(w for w in QApplication.topLevelWidgets() if isinstance(w, QProgressDialog) and w.isVisible())
    assert dialog.labelText() == "source.zip" and dialog.value() == 250
    gate.set()
    qtbot.waitUntil(lambda: task.done)
    assert results == ["done"]
    assert QApplication.overrideCursor() is None
    qtbot.waitUntil(lambda: not any(isinstance(w, QProgressDialog) and w.isVisible()
                                    for w in QApplication.topLevelWidgets()))

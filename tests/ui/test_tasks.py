"""The background bridge: results, progress and errors come back on the GUI thread."""

from __future__ import annotations

import threading

from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from app.services.errors import UserError
from app.services.lanes import lane
from app.ui.shell.tasks import NETWORK_THREADS, Lane, Progress, Task, manager


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
        yield Progress("upload", 0.5, "Uploading")
        yield Progress("deploy", 1.0, "Deploying")
        return "done"

    Task(None, op, progress=events.append, success=results.append).run()
    qtbot.waitUntil(lambda: bool(results))
    assert [e.step for e in events] == ["upload", "deploy"]
    assert events[0].fraction == 0.5 and events[0].message == "Uploading"
    assert results == ["done"]


def test_a_generator_that_yields_anything_but_progress_fails(qtbot):
    errors = []

    def op():
        yield ("upload", 0.5, "Uploading")  # the old tuple shape is no progress event any more

    Task(None, op, failure=errors.append).run()
    qtbot.waitUntil(lambda: bool(errors))
    assert isinstance(errors[0], TypeError) and "Progress" in str(errors[0])


class _Deployer:
    """Deploy-like: a generator that holds its worker until the test lets it go, declared long work."""

    def __init__(self) -> None:
        self.gate = threading.Event()

    @lane(Lane.LONG)
    def deploy(self):
        yield Progress("Building the model and the endpoint", 0.5, "Stage Build: InProgress")
        self.gate.wait(10)
        return "deployed"


def _network_lane_serves_while_deploying(qtbot) -> None:
    """With the deploy holding its worker, a full network lane's worth of ops still all finish."""
    mgr = manager()
    qtbot.waitUntil(lambda: mgr.pool(Lane.LONG).activeThreadCount() == 1)
    answered = []
    for n in range(NETWORK_THREADS + 1):
        Task(None, lambda n=n: n, success=answered.append, lane=Lane.NETWORK).run()
    qtbot.waitUntil(lambda: len(answered) == NETWORK_THREADS + 1)
    assert mgr.pool(Lane.LONG).activeThreadCount() == 1  # still deploying


def test_a_deploy_declared_long_runs_on_its_own_lane_and_the_network_lane_stays_free(qtbot):
    deployer, results, events = _Deployer(), [], []
    Task(None, deployer.deploy, success=results.append, progress=events.append).run()  # the call site names no lane
    qtbot.waitUntil(lambda: bool(events))
    _network_lane_serves_while_deploying(qtbot)
    assert manager().pool(Lane.NETWORK).activeThreadCount() == 0 and results == []
    deployer.gate.set()
    qtbot.waitUntil(lambda: results == ["deployed"])
    assert events[0].message == "Stage Build: InProgress"


def test_a_deploy_made_inside_a_lambda_moves_to_the_long_lane_and_frees_the_pool(qtbot):
    deployer, results = _Deployer(), []
    Task(None, lambda: deployer.deploy(), success=results.append).run()  # as the deploy panel calls it
    _network_lane_serves_while_deploying(qtbot)
    qtbot.waitUntil(lambda: manager().pool(Lane.POOL).activeThreadCount() == 0)
    deployer.gate.set()
    qtbot.waitUntil(lambda: results == ["deployed"])


def test_a_lane_named_at_the_call_site_wins_over_the_declared_one(qtbot):
    deployer, results = _Deployer(), []
    Task(None, deployer.deploy, success=results.append, lane=Lane.NETWORK).run()
    qtbot.waitUntil(lambda: manager().pool(Lane.NETWORK).activeThreadCount() == 1)
    assert manager().pool(Lane.LONG).activeThreadCount() == 0
    deployer.gate.set()
    qtbot.waitUntil(lambda: results == ["deployed"])


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
        yield Progress("Uploading", 0.25, "source.zip")
        gate.wait(10)
        return "done"

    task = Task(parent, op, success=results.append).with_progress("Deploying…").run()
    qtbot.waitUntil(lambda: QApplication.overrideCursor() is not None)
    assert QApplication.overrideCursor().shape() == Qt.CursorShape.BusyCursor
    qtbot.waitUntil(
        lambda: any(isinstance(w, QProgressDialog) and w.isVisible() for w in QApplication.topLevelWidgets())
    )
    dialog = next(w for w in QApplication.topLevelWidgets() if isinstance(w, QProgressDialog) and w.isVisible())
    assert dialog.labelText() == "source.zip" and dialog.value() == 250
    gate.set()
    qtbot.waitUntil(lambda: task.done)
    assert results == ["done"]
    assert QApplication.overrideCursor() is None
    qtbot.waitUntil(
        lambda: not any(isinstance(w, QProgressDialog) and w.isVisible() for w in QApplication.topLevelWidgets())
    )

"""The one bridge between plain service calls and the GUI thread.

In the spirit of Anki's QueryOp/taskman and superqt's thread_worker:

    Task(self, lambda: library.search(text), success=self._show).run()
    Task(self, partial(deployer.deploy, options), progress=self._step).with_progress("Deploying…").run()

The op runs on a worker; it never touches the UI. Results, progress and errors come back to
the GUI thread through one Qt signal. An op that returns a generator reports progress: every
yielded value is the services' Progress (step, fraction, message) and the generator's return value
is the result. The operation declares its lane (`app.services.lanes`), which a call site may override:
AWS calls go to the network lane, library writes to a one-worker lane so the store is never written
from two threads, and long work (a deploy) to a one-worker lane of its own. A busy cursor appears
after 300 ms and a progress dialog (when asked for) after 600 ms, so quick work never flashes. An
error without a failure handler goes to one dialog with the UserError text; tracebacks go to the log only.
"""

from __future__ import annotations

import inspect
import itertools
import logging
import threading
from collections.abc import Callable
from functools import partial
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, QTimer, Signal
from PySide6.QtWidgets import QApplication, QMessageBox, QProgressDialog, QWidget

from app.services.errors import UserError
from app.services.lanes import Lane, lane_of  # Lane and Progress are the widgets' names for them too
from app.services.progress import Progress

log = logging.getLogger(__name__)

BUSY_CURSOR_MS = 300
PROGRESS_DIALOG_MS = 600
#: Network calls wait mostly on I/O, but botocore's Python work shares the GIL with the GUI thread:
#: beyond three workers, 100 submissions got slower and the GUI's stalls longer (bench/gui_submit.py).
NETWORK_THREADS = 3


class _Relay(QObject):
    """Lives on the GUI thread; a closure emitted from a worker runs there."""

    deliver = Signal(object)

    def __init__(self) -> None:
        super().__init__()
        self.deliver.connect(lambda closure: closure(), Qt.ConnectionType.QueuedConnection)


class TaskManager(QObject):
    """Owns the worker pools, the busy cursor and the single error dialog."""

    changed = Signal()  # a task started or finished

    def __init__(self) -> None:
        super().__init__()
        self._relay = _Relay()
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(max(4, QThreadPool.globalInstance().maxThreadCount()))
        self._network = QThreadPool(self)
        self._network.setMaxThreadCount(NETWORK_THREADS)
        self._library = QThreadPool(self)
        self._library.setMaxThreadCount(1)
        self._long = QThreadPool(self)
        self._long.setMaxThreadCount(1)  # one deploy at a time, and never on a network or pool worker
        self._running: set[Task] = set()
        self._busy = 0
        self._error_box: QMessageBox | None = None
        self._more_errors = 0

    def pool(self, lane: Lane) -> QThreadPool:
        return {Lane.LIBRARY: self._library, Lane.NETWORK: self._network, Lane.LONG: self._long}.get(lane, self._pool)

    def post(self, closure: Callable[[], None]) -> None:
        """Run `closure` on the GUI thread (safe to call from any thread)."""
        self._relay.deliver.emit(closure)

    @property
    def pending(self) -> int:
        return len(self._running)

    def wait(self, msecs: int = 10_000) -> bool:
        """Wait for the workers to finish (at exit, and in tests); True if they did."""
        # The long lane last: an op that starts on the pool may hand its generator over to it.
        return all(pool.waitForDone(msecs) for pool in (self._pool, self._network, self._library, self._long))

    def _started(self, task: Task) -> None:
        self._running.add(task)
        self.changed.emit()

    def _finished(self, task: Task) -> None:
        self._running.discard(task)
        self.changed.emit()

    def _push_busy(self) -> None:
        if self._busy == 0:
            QApplication.setOverrideCursor(Qt.CursorShape.BusyCursor)
        self._busy += 1

    def _pop_busy(self) -> None:
        self._busy -= 1
        if self._busy == 0:
            QApplication.restoreOverrideCursor()

    def show_error(self, parent: QWidget | None, error: BaseException) -> None:
        """One dialog at a time; later problems while it is open are counted in it."""
        text = str(error) if isinstance(error, UserError) else _unexpected(error)
        if self._error_box is not None and shiboken6.isValid(self._error_box) and self._error_box.isVisible():
            self._more_errors += 1
            self._error_box.setInformativeText(f"{self._more_errors} more problem(s) since; see the log for each.")
            return
        self._more_errors = 0
        box = QMessageBox(QMessageBox.Icon.Warning, "Diffusion Desk", text, QMessageBox.StandardButton.Ok, parent)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.setObjectName("errorDialog")
        self._error_box = box
        box.open()


def _unexpected(error: BaseException) -> str:
    return f"Something went wrong: {error or type(error).__name__}. The details are in the log."


_manager: TaskManager | None = None


class _Runnable(QRunnable):
    def __init__(self, task: Task, op: Callable[[], Any]) -> None:
        super().__init__()
        self._task = task
        self._op = op

    def run(self) -> None:
        self._task._work(self._op)


def manager() -> TaskManager:
    """The application's task manager, made on first use (needs a QApplication)."""
    global _manager
    if _manager is None or not shiboken6.isValid(_manager):
        _manager = TaskManager()
    return _manager


_ids = itertools.count(1)


class Task:
    """One background op and what to do with its result, progress and error on the GUI thread.

    Callbacks are skipped once the parent widget is gone or the task was cancelled. Without `lane`, the op
    runs on the lane it declares (see `app.services.lanes`), else the pool; a generator made by an operation
    declared for another lane (`lambda: make().deploy(options)`) is drained on that lane.
    """

    def __init__(
        self,
        parent: QObject | None,
        op: Callable[[], Any],
        *,
        success: Callable[[Any], None] | None = None,
        failure: Callable[[BaseException], None] | None = None,
        progress: Callable[[Progress], None] | None = None,
        lane: Lane | None = None,
        busy: bool = True,
    ) -> None:
        self.id = next(_ids)
        self._parent = parent
        self._op = op
        self._success = success
        self._failure = failure
        self._progress = progress
        self._lane_chosen = lane is not None
        self._lane = lane or lane_of(op) or Lane.POOL
        self._busy = busy
        self._label: str | None = None
        self._dialog: QProgressDialog | None = None
        self._last_progress: Progress | None = None
        self._timers: list[QTimer] = []
        self._busy_shown = False
        self._cancelled = threading.Event()
        self._done = False

    def with_progress(self, label: str) -> Task:
        """Show a cancellable progress dialog if the op is still running after 600 ms."""
        self._label = label
        return self

    def failure(self, handler: Callable[[BaseException], None]) -> Task:
        self._failure = handler
        return self

    def success(self, handler: Callable[[Any], None]) -> Task:
        self._success = handler
        return self

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    @property
    def done(self) -> bool:
        return self._done

    def cancel(self) -> None:
        """Stop delivering callbacks; a generator op stops at its next yield."""
        self._cancelled.set()
        self._finish()

    def run(self) -> Task:
        mgr = manager()
        mgr._started(self)
        if self._busy:
            self._later(BUSY_CURSOR_MS, self._show_busy)
        if self._label is not None:
            self._later(PROGRESS_DIALOG_MS, self._show_dialog)
        mgr.pool(self._lane).start(_Runnable(self, self._op))
        return self

    def _later(self, msecs: int, fn: Callable[[], None]) -> None:
        timer = QTimer()
        timer.setSingleShot(True)
        timer.timeout.connect(fn)
        timer.start(msecs)
        self._timers.append(timer)

    def _work(self, op: Callable[[], Any]) -> None:
        post = manager().post
        try:
            result = op()
            if inspect.isgenerator(result):
                if self._moved_to_declared_lane(result):
                    return
                result = self._drain(result, post)
        except BaseException as error:
            if not isinstance(error, UserError):
                log.exception("Background task %s failed", self.id)
            else:
                log.info("Background task %s: %s", self.id, error)
            post(partial(self._deliver_failure, error))
            return
        post(partial(self._deliver_success, result))

    def _moved_to_declared_lane(self, generator: Any) -> bool:
        """Hand a generator over to the lane its operation declares, unless the call site chose one."""
        declared = lane_of(generator)
        if self._lane_chosen or declared is None or declared is self._lane:
            return False
        self._lane = declared
        manager().pool(declared).start(_Runnable(self, lambda: generator))
        return True

    def _drain(self, generator: Any, post: Callable[[Callable[[], None]], None]) -> Any:
        while True:
            if self._cancelled.is_set():
                generator.close()
                return None
            try:
                event = next(generator)
            except StopIteration as stop:
                return stop.value
            if not isinstance(event, Progress):
                generator.close()
                raise TypeError(f"A background op yielded a {type(event).__name__}; long operations yield Progress.")
            post(partial(self._deliver_progress, event))

    def _alive(self) -> bool:
        if self._cancelled.is_set():
            return False
        return self._parent is None or shiboken6.isValid(self._parent)

    def _deliver_progress(self, event: Progress) -> None:
        if not self._alive():
            return
        self._last_progress = event
        self._show_progress_in_dialog()
        if self._progress is not None:
            self._progress(event)

    def _show_progress_in_dialog(self) -> None:
        event = self._last_progress
        if self._dialog is None or event is None:
            return
        if event.fraction is not None:
            self._dialog.setRange(0, 1000)
            self._dialog.setValue(int(event.fraction * 1000))
        if event.message or event.step:
            self._dialog.setLabelText(event.message or event.step)

    def _deliver_success(self, result: Any) -> None:
        alive = self._alive()
        self._finish()
        if alive and self._success is not None:
            self._success(result)

    def _deliver_failure(self, error: BaseException) -> None:
        alive = self._alive()
        self._finish()
        if not alive:
            return
        if self._failure is not None:
            self._failure(error)
        else:
            parent = self._parent if isinstance(self._parent, QWidget) else None
            manager().show_error(parent.window() if parent else None, error)

    def _show_busy(self) -> None:
        if not self._done and not self._busy_shown:
            self._busy_shown = True
            manager()._push_busy()

    def _show_dialog(self) -> None:
        if self._done or self._label is None:
            return
        parent = self._parent if isinstance(self._parent, QWidget) and shiboken6.isValid(self._parent) else None
        dialog = QProgressDialog(self._label, "Cancel", 0, 0, parent)
        dialog.setObjectName("taskProgress")
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.setMinimumDuration(0)
        dialog.canceled.connect(self.cancel)
        dialog.show()
        self._dialog = dialog
        self._show_progress_in_dialog()

    def _finish(self) -> None:
        if self._done:
            return
        self._done = True
        for timer in self._timers:
            timer.stop()
        self._timers.clear()
        if self._busy_shown:
            self._busy_shown = False
            manager()._pop_busy()
        if self._dialog is not None and shiboken6.isValid(self._dialog):
            self._dialog.canceled.disconnect(self.cancel)
            self._dialog.close()
            self._dialog.deleteLater()
        self._dialog = None
        manager()._finished(self)

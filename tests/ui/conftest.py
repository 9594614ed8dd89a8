"""UI test support: offscreen Qt and the guard that no AWS request leaves the GUI thread."""

from __future__ import annotations

import os
import sys
import threading
import traceback
from contextlib import contextmanager
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# The guidance-shaped stack and app instances of tests/guidance serve the Qt tests of adoption too.
sys.path.insert(0, str(Path(__file__).parents[1] / "guidance"))

import botocore.endpoint
import pytest


class GuiThreadGuard:
    """Fails a test when botocore sends an HTTP request from the main (GUI) thread.

    Active while a test body runs (not during fixture set-up, which may provision the local cloud).
    """

    def __init__(self) -> None:
        self.active = False
        self.violations: list[str] = []

    def check(self, request) -> None:
        if self.active and threading.current_thread() is threading.main_thread():
            line = f"{request.method} {request.url}"
            self.violations.append(line)
            raise AssertionError(f"botocore request on the GUI thread: {line}")

    @contextmanager
    def paused(self):
        """For test set-up that talks to the local cloud directly (not the app)."""
        active, self.active = self.active, False
        try:
            yield
        finally:
            self.active = active


@pytest.fixture(autouse=True)
def gui_thread_guard(monkeypatch):
    """Every UI test: no AWS request may leave from the GUI thread."""
    guard = GuiThreadGuard()
    original = botocore.endpoint.Endpoint._send

    def guarded_send(self, request):
        guard.check(request)
        return original(self, request)

    monkeypatch.setattr(botocore.endpoint.Endpoint, "_send", guarded_send)
    yield guard
    assert not guard.violations, f"AWS requests made on the GUI thread: {guard.violations}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    guard = item.funcargs.get("gui_thread_guard")
    if guard is not None:
        guard.active = True
    try:
        yield
    finally:
        if guard is not None:
            guard.active = False


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A wait that timed out gets the app's state in its report: what the threads and windows were doing."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and call.excinfo is not None and call.excinfo.typename == "TimeoutError":
        report.sections.append(("state when the wait timed out", _app_state()))


def _app_state() -> str:
    from PySide6.QtWidgets import QApplication

    from app.ui.shell.tasks import Lane, manager

    gui = QApplication.instance().thread()
    lines = [
        f"active window: {QApplication.activeWindow()!r}",
        f"modal widget: {QApplication.activeModalWidget()!r}",
        "visible windows: " + ", ".join(repr(w) for w in QApplication.topLevelWidgets() if w.isVisible()),
        f"tasks running: {manager().pending}; busy workers: "
        + ", ".join(f"{lane.value} {manager().pool(lane).activeThreadCount()}" for lane in Lane),
        f"busy cursors pushed: {manager()._busy}; task manager on the GUI thread: "
        f"{manager().thread() is gui}; relay on the GUI thread: {manager()._relay.thread() is gui}; "
        f"event loop level: {gui.loopLevel()}",
    ]
    for task in list(manager()._running):
        timers = ", ".join(
            f"{t.isActive()}/{t.remainingTime()} ms/GUI thread {t.thread() is gui}" for t in task._timers
        )
        lines.append(f"task {task.id}: done={task.done} cancelled={task.cancelled} timers active/left: {timers}")
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    for ident, frame in sys._current_frames().items():
        lines.append(f"\nthread {names.get(ident, ident)}:")
        lines += [line.rstrip() for line in traceback.format_stack(frame)[-8:]]
    return "\n".join(lines)


@pytest.fixture(autouse=True)
def gui_thread_collector(qapp):
    """As in the app: garbage is collected on the GUI thread, never on a worker."""
    from app.ui.shell import collector

    return collector.install(qapp)


@pytest.fixture
def app_dirs(tmp_path):
    from app.services.settings import AppDirs

    return AppDirs(tmp_path / "config", tmp_path / "data").create()


@pytest.fixture
def demo_library(tmp_path):
    """Makes the test's library of demo images: `demo_library(count, favourite_every=…)`; closed after its tasks."""
    from app.services.library.store import Library
    from app.ui.shell.tasks import manager
    from tools.demo import populate_demo_library

    made = []

    def make(count: int, *, favourite_every: int = 0):
        lib = Library(tmp_path / "library")
        made.append(lib)
        populate_demo_library(lib, count, favourite_every=favourite_every)
        return lib

    yield make
    manager().wait()
    for lib in made:
        lib.close()


@pytest.fixture
def offline_context(app_dirs, qapp):
    """An app context with its library but no connection (composer and queue tests)."""
    from app.ui.shell import style
    from app.ui.shell.context import AppContext
    from app.ui.shell.tasks import manager

    style.apply(qapp)
    context = AppContext.open(app_dirs)
    yield context
    manager().wait(10_000)
    context.close()


@pytest.fixture
def sandbox_context(cloud, app_dirs, qapp):
    """Sandbox mode on the shared local cloud's deployment "test" (not connected yet)."""
    from app.ui.shell import style
    from app.ui.shell.context import AppContext
    from app.ui.shell.tasks import manager

    style.apply(qapp)
    context = AppContext.open(app_dirs, sandbox=True, cloud=cloud.cloud, deployment=cloud.deployment.name)
    yield context
    manager().wait(10_000)
    context.close()


@pytest.fixture
def window(qtbot, sandbox_context):
    """The main window, connected to the local cloud."""
    from app.ui.shell.window import MainWindow

    win = MainWindow(sandbox_context)
    qtbot.addWidget(win)
    win.resize(1280, 800)
    win.show()
    win.start()
    qtbot.waitUntil(lambda: win.queue.tracking, timeout=30_000)
    yield win
    win.close()

"""Start the desktop app: `python -m app [--sandbox] [--self-test]`."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from PySide6.QtWidgets import QApplication, QWidget

    from app.services.settings import AppDirs

log = logging.getLogger(__name__)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="diffusion-desk", description="Diffusion Desk, the desktop app.")
    parser.add_argument("--sandbox", action="store_true", help="use the in-process local cloud (test-pattern images)")
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="open the window offscreen, generate one image on the local cloud, exit 0 when it works",
    )
    parser.add_argument(
        "--measure-startup",
        action="store_true",
        help="start in sandbox mode with fresh temporary dirs, print 'window-shown' once the "
        "window is painted, then quit (for the start-up benchmarks)",
    )
    return parser.parse_args(argv)


def make_application(argv: list[str] | None = None) -> QApplication:
    """The QApplication with our name, icon and look (created once)."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    from app.ui.shell import clipboard, collector, style
    from app.ui.shell.icons import app_icon

    app = QApplication.instance()
    if app is None:
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
        app = QApplication([sys.argv[0] if sys.argv else "diffusion-desk", *(argv or [])])
        app.aboutToQuit.connect(clipboard.release)
    collector.install(app)
    app.setApplicationName("Diffusion Desk")
    app.setApplicationDisplayName("Diffusion Desk")
    app.setOrganizationName("Diffusion Desk")
    app.setDesktopFileName("diffusion-desk")
    app.setWindowIcon(app_icon())
    style.apply(app)
    return app


def main(argv: list[str] | None = None) -> int:
    args = parse(list(sys.argv[1:] if argv is None else argv))
    if args.self_test:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        from app.ui.shell.selftest import run

        return run()
    if args.measure_startup:
        return _measure_startup()
    from app.services.logs import setup_logging
    from app.services.settings import AppDirs

    dirs = AppDirs.default().create()
    setup_logging(dirs.log_dir)
    return _run(dirs, sandbox=True if args.sandbox else None)


def _run(dirs: AppDirs, *, sandbox: bool | None, on_painted: Callable[[QWidget], None] | None = None) -> int:
    """The settings and the library are read on a worker; the window is built when they are there."""
    # Long on purpose: the start-up is one sequence of callbacks (read, trouble screen or window, connect), each
    # small, that reads best in the order they run.
    from app.services.session import Session
    from app.ui.shell.context import AppContext
    from app.ui.shell.tasks import Lane, Task, manager

    app = make_application()
    sys.excepthook = _report_unexpected

    def read() -> None:
        Task(
            None,
            lambda: Session.read(dirs),
            success=lambda parts: opened(parts),
            failure=lambda e: not_opened(e),
            lane=Lane.LIBRARY,
            busy=False,
        ).run()

    read()  # while the window's modules are imported
    from app.ui.shell.window import MainWindow

    splash = _Opening()
    built: list[tuple[AppContext, MainWindow]] = []
    problems: list[Any] = []  # the start-up problem screen, while it is up
    repaired: list[str] = []  # what its repair did, said once the window is open

    def opened(parts: tuple) -> None:
        from app.services.errors import LibraryDamaged

        session = Session(*parts, sandbox=sandbox)
        session.rebuilt = any(isinstance(p.problem, LibraryDamaged) for p in problems)
        context = AppContext(session)
        window = MainWindow(context)
        built.append((context, window))

        def painted(shown: QWidget) -> None:
            window.start()  # connecting imports and starts heavy things: only once the first frame is up
            if on_painted is not None:
                on_painted(shown)

        _FirstPaint(window, painted)
        window.show()
        splash.close()
        for problem in problems:
            problem.leave()
        for message in repaired:
            window.statusBar().showMessage(message, 15000)

    def not_opened(error: BaseException) -> None:
        from PySide6.QtWidgets import QMessageBox

        from app.ui.shell.trouble import StartupProblem, is_startup_problem

        log.error("The app could not open its settings or library", exc_info=error)
        splash.close()
        if is_startup_problem(error):
            screen = StartupProblem(error, dirs)  # type: ignore[arg-type]
            screen.quit_requested.connect(lambda: (screen.leave(), app.exit(1)))
            screen.repaired.connect(lambda message: (repaired.append(message), read()))
            problems.append(screen)
            screen.show()
            return
        app.setQuitOnLastWindowClosed(False)
        QMessageBox.critical(None, "Diffusion Desk", f"Your library could not be opened: {error}")
        app.exit(1)

    code = app.exec()
    manager().wait(5000)
    for context, _window in built:
        context.close()
    return code


class _Opening:
    """A small "Opening your library…" window, shown only when opening takes longer than 300 ms."""

    DELAY_MS = 300

    def __init__(self) -> None:
        from PySide6.QtCore import Qt, QTimer
        from PySide6.QtWidgets import QLabel

        self.label = QLabel("Opening your library…")
        self.label.setObjectName("openingLibrary")
        self.label.setWindowTitle("Diffusion Desk")
        self.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.label.setMinimumSize(320, 120)
        self.closed = False
        QTimer.singleShot(self.DELAY_MS, self._show)

    def _show(self) -> None:
        if not self.closed:
            self.label.show()

    def close(self) -> None:
        self.closed = True
        self.label.close()


def _report_unexpected(kind: type, error: BaseException, trace: object) -> None:
    """An error in GUI code: the traceback to the log, one dialog with a sentence to the user."""
    from app.ui.shell.tasks import manager

    log.error("Unexpected error", exc_info=(kind, error, trace))  # type: ignore[arg-type]
    if isinstance(error, Exception):
        manager().show_error(None, error)


def _measure_startup() -> int:
    """`window-shown` on stdout once the first frame is painted; fresh dirs, so no library is touched."""
    import tempfile
    from pathlib import Path

    from PySide6.QtCore import QTimer

    from app.services.settings import AppDirs

    def painted(window: QWidget) -> None:
        print("window-shown", flush=True)
        QTimer.singleShot(0, window.close)

    with tempfile.TemporaryDirectory(prefix="diffusion-desk-startup-") as tmp:
        return _run(AppDirs(Path(tmp) / "config", Path(tmp) / "data").create(), sandbox=True, on_painted=painted)


class _FirstPaint:
    """Calls back once, after the window's first paint event has been handled."""

    def __init__(self, window: QWidget, callback: Callable[[QWidget], None]) -> None:
        from PySide6.QtCore import QEvent, QObject, QTimer

        outer = self

        class Filter(QObject):
            def eventFilter(self, watched: object, event: QEvent) -> bool:
                if event.type() == QEvent.Type.Paint and not outer.done:
                    outer.done = True
                    QTimer.singleShot(0, lambda: callback(window))
                return False

        self.done = False
        self.filter = Filter(window)
        window.installEventFilter(self.filter)

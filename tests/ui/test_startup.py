"""Start-up: the settings and the library are read on a worker, never on the GUI thread, and then the window opens."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import orjson
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from app.services import session as session_module
from app.services.library.store import Library
from app.ui.shell import main


def test_the_window_opens_after_the_library_is_opened_off_the_gui_thread(qapp, app_dirs, monkeypatch):
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # _run installs its own
    app_dirs.settings_file.write_bytes(orjson.dumps({"region": "eu-west-2"}))
    disk_threads: list[str] = []
    real_load, real_init = session_module.load_settings, Library.__init__

    def load_settings(dirs):
        disk_threads.append(threading.current_thread().name)
        return real_load(dirs)

    def library_init(self, data_dir):
        disk_threads.append(threading.current_thread().name)
        real_init(self, data_dir)

    monkeypatch.setattr(session_module, "load_settings", load_settings)
    monkeypatch.setattr(Library, "__init__", library_init)
    shown = []

    def painted(window) -> None:
        shown.append((window.isVisible(), window.context.settings.region, window.context.library.count()))
        QTimer.singleShot(0, lambda: (window.close(), QApplication.exit(0)))

    # The window closing as the last one would ask the shared test app to quit after _run's exec() has
    # returned: every later event loop in this process would then return at once.
    qapp.setQuitOnLastWindowClosed(False)
    try:
        assert main._run(app_dirs, sandbox=None, on_painted=painted) == 0
    finally:
        qapp.setQuitOnLastWindowClosed(True)
    assert shown == [(True, "eu-west-2", 0)]
    assert len(disk_threads) == 2
    assert threading.main_thread().name not in disk_threads


def test_a_library_that_cannot_be_opened_is_explained_and_the_app_exits_1(qapp, app_dirs, monkeypatch):
    from app.services.errors import UserError

    monkeypatch.setattr(sys, "excepthook", sys.excepthook)

    def broken(self, data_dir):
        raise UserError("the disk is full")

    monkeypatch.setattr(Library, "__init__", broken)
    said = []

    def answer() -> None:
        box = QApplication.activeModalWidget()
        if box is None:
            QTimer.singleShot(20, answer)
            return
        said.append(box.text())
        box.accept()

    QTimer.singleShot(0, answer)
    try:
        assert main._run(app_dirs, sandbox=None) == 1
    finally:
        qapp.setQuitOnLastWindowClosed(True)  # _run turns it off to keep the box up
    assert said == ["Your library could not be opened: the disk is full"]


def test_the_window_opens_without_loading_the_aws_sdk_or_numpy():
    """boto3, botocore and numpy add most of a second to start-up: they load when connecting, on a worker."""
    code = (
        "import sys, app.ui.shell.window, app.ui.shell.main; "
        "print(sorted(m for m in ('boto3', 'botocore', 'numpy', 'moto') if m in sys.modules))"
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"

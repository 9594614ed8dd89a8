"""Copying an image puts the picture and its file on the clipboard, and quitting afterwards is clean."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from PySide6.QtGui import QGuiApplication, QImage

from app.ui.shell import clipboard

ROOT = Path(__file__).resolve().parents[2]

QUIT_AFTER_COPYING = """
import sys
from PySide6.QtCore import QTimer
from PySide6.QtGui import QImage
from app.ui.shell import clipboard
from app.ui.shell.main import make_application

app = make_application()
image = QImage(4, 4, QImage.Format.Format_RGB32)
image.fill(0)
clipboard.put_image(image, sys.argv[1])
QTimer.singleShot(0, app.quit)
sys.exit(app.exec())
"""


def test_quitting_after_copying_an_image_exits_cleanly(tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", QUIT_AFTER_COPYING, str(tmp_path / "a.png")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr[-2000:]  # -11 (a crash in Qt's exit handlers) before the fix


def test_the_clipboard_keeps_the_picture_and_the_file_when_the_app_lets_go(qapp, tmp_path):
    image = QImage(6, 4, QImage.Format.Format_RGB32)
    image.fill(0xFF336699)
    clipboard.put_image(image, str(tmp_path / "kite.png"))

    clipboard.release()

    held = QGuiApplication.clipboard().mimeData()
    assert QImage(held.imageData()).size() == image.size()
    assert [url.toLocalFile() for url in held.urls()] == [str(tmp_path / "kite.png")]

"""Generating in the window with a full data disk: one dialog that says so, no crash, nothing recorded or sent."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QMessageBox
from small_disk import small_disk

from app.services.settings import AppDirs


@pytest.fixture
def disk(tmp_path):
    with small_disk(tmp_path / "disk", "8m") as mounted:
        yield mounted


@pytest.fixture
def app_dirs(tmp_path, disk):
    """The app's data dir (library, images, thumbnails, logs) on the small disk."""
    return AppDirs(tmp_path / "config", disk.root / "data").create()


def test_generate_on_a_full_data_disk_shows_one_clear_dialog(qtbot, window, disk, cloud, gui_thread_guard):
    disk.fill()
    composer = window.composer
    composer.prompt.set_text("a lighthouse at dusk")
    qtbot.keyClick(composer.prompt, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)

    def box() -> QMessageBox | None:
        found = [w for w in QApplication.topLevelWidgets() if w.objectName() == "errorDialog" and w.isVisible()]
        return found[0] if found else None

    qtbot.waitUntil(lambda: box() is not None, timeout=10_000)
    dialog = box()
    dialog.grab().save("/tmp/full-disk-dialog.png")
    assert dialog.text() == (
        f"The disk holding {disk.root / 'data'} is full, so the library could not be saved. "
        "Nothing was half-written: free some space and try again."
    )
    dialog.accept()
    assert window.context.library.jobs() == [] and window.isVisible()
    with gui_thread_guard.paused():  # the test looks at the bucket, not the app
        sent = cloud.client("s3").list_objects_v2(Bucket=cloud.deployment.bucket, Prefix="requests/")
    assert sent["KeyCount"] == 0

"""A damaged library or unreadable settings: the app shows what is wrong and repairs it, or quits; it never crashes."""

from __future__ import annotations

import sys

import orjson
import pytest
from PIL import Image
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from app.services.library.pngmeta import write_parameters
from app.services.library.store import DATABASE_NAME, Library
from app.services.models import Job, JobState
from app.ui.shell import main
from app.ui.shell.trouble import StartupProblem
from contract import GenerationRequest, Parameters, new_inference_id

SCREENSHOT = "/tmp/startup-problem-{}.png"


def three_jobs(data_dir) -> None:
    with Library(data_dir) as library:
        for n in range(3):
            inference_id = new_inference_id()
            request = GenerationRequest(prompt=f"a lighthouse {n}", seed=n, width=64, height=64)
            library.add_job(Job(inference_id, request, "sandbox", state=JobState.COMPLETED))
            (library.images_dir / inference_id).mkdir(parents=True)
            params = Parameters(prompt=f"a lighthouse {n}", seed=n, steps=20, width=64, height=64)
            path = write_parameters(Image.new("RGB", (64, 64)), params, library.images_dir / inference_id / "0.png")
            library.add_image(path, params, inference_id=inference_id, width=64, height=64)


def start(qapp, app_dirs, answer, name: str) -> tuple[int, list]:
    """Run the app until `answer(screen)` has acted on the problem screen and the window (if any) has painted."""
    seen: list = []

    def look() -> None:
        screen = next((w for w in QApplication.topLevelWidgets() if isinstance(w, StartupProblem)), None)
        if screen is None or not screen.isVisible():
            QTimer.singleShot(20, look)
            return
        screen.grab().save(SCREENSHOT.format(name))
        seen.append(screen.text.text())
        answer(screen)

    def painted(window) -> None:
        seen.append((window.context.library.count(), window.statusBar().currentMessage()))
        QTimer.singleShot(0, lambda: (window.close(), QApplication.exit(0)))

    QTimer.singleShot(0, look)
    qapp.setQuitOnLastWindowClosed(False)
    try:
        code = main._run(app_dirs, sandbox=None, on_painted=painted)
    finally:
        qapp.setQuitOnLastWindowClosed(True)
    return code, seen


@pytest.fixture(autouse=True)
def _own_excepthook(monkeypatch):
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # _run installs its own


def test_a_damaged_library_is_shown_and_rebuilt_from_its_images(qapp, app_dirs):
    three_jobs(app_dirs.data_dir)
    (app_dirs.data_dir / DATABASE_NAME).write_bytes(b"")

    code, seen = start(qapp, app_dirs, lambda screen: screen.repair_button.click(), "library")

    assert code == 0
    text, (count, said) = seen
    assert "is damaged: the file is empty, yet images are beside it." in text and "Your images are untouched" in text
    assert count == 3 and said.startswith("The damaged index was kept as library.sqlite3.damaged-")
    assert "Rebuilt the library from 3 images of 3 jobs and 0 imports." in said
    assert len(list(app_dirs.data_dir.glob(f"{DATABASE_NAME}.damaged-*"))) == 1


def test_quitting_over_a_damaged_library_leaves_it_as_it_was(qapp, app_dirs):
    three_jobs(app_dirs.data_dir)
    index = app_dirs.data_dir / DATABASE_NAME
    damaged = b"Z" * 100 + index.read_bytes()[100:]
    index.write_bytes(damaged)

    code, seen = start(qapp, app_dirs, lambda screen: screen.quit_button.click(), "quit")

    assert code == 1 and "file is not a database" in seen[0]
    assert index.read_bytes() == damaged and not list(app_dirs.data_dir.glob("*.damaged-*"))


def test_unreadable_settings_are_named_field_by_field_and_kept_when_starting_from_the_defaults(qapp, app_dirs):
    bad = {"region": 7, "targets": "studio"}
    app_dirs.settings_file.write_bytes(orjson.dumps(bad))

    code, seen = start(qapp, app_dirs, lambda screen: screen.repair_button.click(), "settings")

    assert code == 0
    text, (count, said) = seen
    assert "region: must be a region's name (text) or null, not the number 7" in text
    assert "targets: must be a list of saved targets" in text
    (kept,) = app_dirs.config_dir.glob("settings.json.unreadable-*")
    assert orjson.loads(kept.read_bytes()) == bad and f"the unreadable file was kept as {kept.name}" in said

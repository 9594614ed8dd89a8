"""`python -m app --self-test`: the full window offscreen, one generation on the local cloud, exit 0.

Uses fresh temporary config and data dirs, so it never touches the user's library.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QCollator, QEventLoop, QLocale, QTimer

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 120
PROMPT = "self-test: a lighthouse at dusk"


def run(timeout: float = TIMEOUT_SECONDS) -> int:
    from app.services.models import JobState
    from app.services.settings import AppDirs
    from app.ui.shell.context import AppContext
    from app.ui.shell.main import make_application
    from app.ui.shell.tasks import manager
    from app.ui.shell.window import MainWindow

    app = make_application()
    with tempfile.TemporaryDirectory(prefix="diffusion-desk-self-test-") as tmp:
        dirs = AppDirs(Path(tmp) / "config", Path(tmp) / "data").create()
        context = AppContext.open(dirs, sandbox=True)
        window = MainWindow(context)
        window.show()
        window.start()
        started = time.monotonic()
        problem = None
        try:
            if not _wait(app, lambda: context.session.tracking, timeout, started):
                problem = "the local cloud did not connect"
            else:
                window.composer.prompt.set_text(PROMPT)
                window.composer.generate()
                model = window.queue.model

                def finished() -> bool:
                    job = model.job(0)
                    return job is not None and job.state.finished

                if not _wait(app, finished, timeout, started):
                    problem = "the job did not finish in time"
                else:
                    job = model.job(0)
                    if job.state != JobState.COMPLETED:
                        problem = f"the job ended {job.state.value}: {job.failure_reason or job.message}"
                    elif not job.image_paths or not Path(job.image_paths[0]).is_file():
                        problem = "the job completed but its image is not in the library"
                    elif window.gallery_widget is not None and not _wait(
                        app, lambda: window.gallery_widget.model.rowCount() > 0, timeout, started
                    ):
                        problem = "the image did not appear in the gallery"
        finally:
            window.close()
            manager().wait(10_000)
            context.close()
    problem = problem or _sorting_problem()
    if problem:
        print(f"Self-test failed: {problem}.", file=sys.stderr)
        return 1
    print(f"Self-test passed: one image generated on the local cloud in {time.monotonic() - started:.1f} s.")
    return 0


def _sorting_problem() -> str | None:
    """Qt's ICU collation data (trimmed in the Linux bundle) must still sort by language."""
    # Without the data Qt compares code points: ö after z in every language.
    swedish, german = QCollator(QLocale("sv_SE")), QCollator(QLocale("de_DE"))
    if swedish.compare("ö", "z") > 0 and german.compare("ö", "z") < 0:
        return None
    return "Qt's ICU collation data is missing or damaged (text would not sort by language)"


def _wait(app, condition, timeout: float, started: float) -> bool:
    """Run the event loop until `condition()` holds or the time is up."""
    while not condition():
        if time.monotonic() - started > timeout:
            return False
        loop = QEventLoop()
        QTimer.singleShot(50, loop.quit)
        loop.exec()
    return True

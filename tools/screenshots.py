"""`make screenshots`: PNGs of the main window, the viewer, the settings and the welcome page.

Runs offscreen on the in-process local cloud with a demo library (pattern images, labelled
as such) and one real sandbox generation, in fresh temporary dirs.

    python -m tools.screenshots [--out docs/screenshots] [--scheme light|dark]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SIZE = (1440, 900)
DEMO_IMAGES = 60


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/screenshots")
    parser.add_argument("--scheme", choices=("light", "dark"), default="light")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["DIFFUSION_DESK_COLOR_SCHEME"] = args.scheme
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    suffix = "" if args.scheme == "light" else "-dark"
    with tempfile.TemporaryDirectory(prefix="diffusion-desk-shots-") as tmp:
        written = _shoot(Path(tmp), out, suffix)
    for path in written:
        print(path)
    return 0


def _shoot(tmp: Path, out: Path, suffix: str) -> list[Path]:
    from app.services.settings import AppDirs
    from app.ui.shell.context import SANDBOX, AppContext
    from app.ui.shell.main import make_application
    from app.ui.shell.tasks import manager
    from app.ui.shell.window import MainWindow
    from tools.demo import populate_demo_library

    app = make_application()
    app.setFont(_ui_font(app.font()))
    dirs = AppDirs(tmp / "config", tmp / "data").create()
    context = AppContext.open(dirs, sandbox=True)
    populate_demo_library(context.library, DEMO_IMAGES, seed=7)
    written: list[Path] = []

    window = MainWindow(context)
    window.resize(*SIZE)
    window.pages.setCurrentWidget(window.welcome)
    window.show()
    _settle(app, 600)
    written.append(_grab(window, out / f"welcome{suffix}.png"))

    window.pages.setCurrentIndex(0)
    context.choose_mode(SANDBOX)
    window.start()
    _wait(app, lambda: context.session.tracking, 90)
    composer = window.composer
    for prompt, seed in (("a koi pond, ukiyo-e woodblock print", 11), ("a glass greenhouse at dawn, 35mm film", 12)):
        composer.restore({"prompt": prompt, "num_images_per_prompt": 1, "seed": seed}, with_seed=True)
        composer.generate()
        _settle(app, 300)
    _add_example_failure(context, window)
    _settle(app, 300)
    composer.restore(
        {
            "prompt": "a lighthouse at dusk on a rocky coast, oil painting, warm rim light, dramatic clouds",
            "negative_prompt": "blurry, lowres, watermark",
            "width": 768,
            "height": 512,
            "num_inference_steps": 30,
            "guidance_scale": 7.5,
            "num_images_per_prompt": 2,
            "seed": 1234567,
        },
        with_seed=True,
    )
    composer.generate()
    _wait(
        app, lambda: window.queue.model.rowCount() >= 4 and all(j.state.finished for j in window.queue.model.jobs()), 90
    )
    held = _hold_engine(context.session.local_cloud)
    composer.restore(
        {
            "prompt": "a steampunk airship above the clouds, isometric 3d render",
            "width": 512,
            "height": 512,
            "num_images_per_prompt": 4,
            "seed": 31337,
        },
        with_seed=True,
    )
    composer.generate()
    _wait(app, lambda: window.queue.model.rowCount() >= 5 and window.queue.model.job(0).state.value == "queued", 30)
    window.queue.view.setCurrentIndex(window.queue.model.index(2))
    window.gallery_widget.reload()
    context.session.tracker.refresh_endpoint()
    _settle(app, 2500)
    written.append(_grab(window, out / f"main{suffix}.png"))

    if window.viewer is not None:
        window.show_in_viewer(0)
        _settle(app, 2000)
        written.append(_grab(window, out / f"viewer{suffix}.png"))
        window.show_grid()

    window.show_settings()
    dialog = window.settings_dialog
    dialog.resize(720, 640)
    dialog.connection.aws_radio.setChecked(True)
    dialog.connection.kind_buttons.button(0).setChecked(True)
    dialog.connection.profile.setCurrentText("design-team")
    dialog.connection.region.setCurrentText("eu-west-1")
    _settle(app, 800)
    written.append(_grab(dialog, out / f"settings{suffix}.png"))
    dialog.tabs.setCurrentIndex(1)
    _settle(app, 400)
    written.append(_grab(dialog, out / f"settings-deploy{suffix}.png"))
    dialog.close()

    held.release.set()
    window.close()
    manager().wait(10_000)
    context.close()
    written.append(_startup_problem(app, dirs, out / f"startup-damaged-library{suffix}.png"))
    return written


def _startup_problem(app: Any, dirs: Any, path: Path) -> Path:
    """The start-up screen over an emptied index, as a designer's home folder would show it."""
    from app.services.errors import LibraryDamaged
    from app.ui.shell.trouble import StartupProblem

    index = Path("/home/dana/.local/share/DiffusionDesk/library.sqlite3")
    screen = StartupProblem(LibraryDamaged(index, "the file is empty, yet images are beside it"), dirs)
    screen.show()
    _settle(app, 400)
    _grab(screen, path)
    screen.close()
    return path


def _add_example_failure(context: Any, window: Any) -> None:
    """A failed job as SageMaker reports one, so the queue shows how a failure reads."""
    from app.services.models import Job, JobState
    from contract import GenerationRequest, new_inference_id

    reason = (
        "CUDA out of memory. Tried to allocate 2.25 GiB (GPU 0; 22.20 GiB total capacity). "
        "Try a smaller size or fewer images per prompt."
    )
    job = Job(
        new_inference_id(),
        GenerationRequest(
            prompt="a cathedral made of ice, 2048 px panorama",
            width=2048,
            height=1024,
            num_images_per_prompt=4,
            seed=99,
        ),
        target=SANDBOX_TARGET,
        state=JobState.FAILED,
        message=f"Failed: {reason}",
        failure_reason=reason,
    )
    context.library.add_job(job)
    window.queue.load()


SANDBOX_TARGET = "sandbox"


class _HeldEngine:
    """Wraps the sandbox engine and holds each render until released, so a job stays queued on screen."""

    def __init__(self, engine: Any) -> None:
        import threading

        self.engine = engine
        self.release = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)

    def render(self, request: Any) -> Any:
        self.release.wait(120)
        return self.engine.render(request)


def _hold_engine(cloud: Any) -> _HeldEngine:
    held = _HeldEngine(cloud.engine)
    cloud.engine = held
    return held


def _ui_font(font: Any) -> Any:
    font.setPointSizeF(max(font.pointSizeF(), 9.5))
    return font


def _grab(widget: Any, path: Path) -> Path:
    widget.grab().save(str(path))
    return path


def _settle(app: Any, msecs: int) -> None:
    end = time.monotonic() + msecs / 1000
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def _wait(app: Any, condition: Callable[[], bool], seconds: float) -> None:
    end = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > end:
            raise SystemExit("screenshots: the app did not reach the expected state in time")
        _settle(app, 50)


if __name__ == "__main__":
    sys.exit(main())

"""`make screenshots`: PNGs of the main window, the viewer (its inpaint brush and a lineage too), the settings
and the welcome page.

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
    if window.viewer is not None:
        written += _viewer_tools(app, context, window, out, suffix)
    window.close()
    manager().wait(10_000)
    context.close()
    written.append(_startup_problem(app, dirs, out / f"startup-damaged-library{suffix}.png"))
    return written


def _viewer_tools(app: Any, context: Any, window: Any, out: Path, suffix: str) -> list[Path]:
    """The inpaint brush over the lighthouse, then the inpainted image extended: the middle of a lineage."""
    from PySide6.QtCore import QPointF

    _wait(app, lambda: context.target is not None and "inpaint" in context.target.companions, 30)
    _wait(app, lambda: all(j.state.finished for j in window.queue.model.jobs()), 90)
    gallery, viewer = window.gallery_widget, window.viewer
    gallery.reload()
    _settle(app, 800)
    lighthouse = next(row for row in range(gallery.model.rowCount()) if _is_lighthouse(gallery.model.record(row)))
    window.show_in_viewer(lighthouse)
    _wait(app, lambda: viewer.canvas.has_image() and viewer.inpaint_button.isEnabled(), 30)
    window.splitter.setSizes([360, 800, 280])  # room for the picture: the brush is the subject here
    _settle(app, 300)
    viewer.set_mode("inpaint")
    size = viewer.canvas.image_size()
    w, h = size.width(), size.height()
    viewer.inpaint_panel.size.setValue(64)
    mask = viewer.canvas.mask
    mask.begin_stroke(QPointF(*_scribble(0, w, h)), 64)
    for step in range(1, 48):  # a scribble spiralling in, as a hand fills the lantern's shape
        mask.continue_stroke(QPointF(*_scribble(step, w, h)))
    mask.end_stroke()
    viewer.inpaint_panel.prompt.setPlainText("a red paper lantern glowing in the dusk")
    viewer.canvas._move_pointer(viewer.canvas.view_point(QPointF(0.83 * w, 0.58 * h)))
    _settle(app, 500)
    shots = [_grab(window, out / f"inpaint-brush{suffix}.png")]

    count = window.queue.model.rowCount()
    viewer.repaint()
    _wait(app, lambda: window.queue.model.rowCount() > count, 30)
    _wait(app, lambda: all(j.state.finished for j in window.queue.model.jobs()), 90)
    lineage = viewer.details.lineage
    _wait(app, lambda: bool(lineage.child_links), 30)
    lineage.child_links[0].click()
    _wait(app, lambda: lineage.parent_link is not None and viewer.canvas.has_image(), 30)
    viewer.set_mode("extend")
    viewer.extend_panel.sides["right"].setValue(128)
    viewer.extend_panel.prompt.setPlainText("more of the rocky coast")
    viewer.extend()
    _wait(app, lambda: window.queue.model.rowCount() > count + 1, 30)
    _wait(app, lambda: all(j.state.finished for j in window.queue.model.jobs()), 90)
    viewer.set_mode(None)
    window.reset_layout()
    gallery.reload()
    _wait(app, lambda: bool(lineage.child_links) and lineage.parent_link is not None, 30)
    _settle(app, 1200)
    shots.append(_grab(window, out / f"lineage{suffix}.png"))
    return shots


def _scribble(step: int, width: int, height: int) -> tuple[float, float]:
    """A point of two turns of an ellipse closing in on the lantern's place, in image pixels."""
    import math

    turn = step / 24 * 2 * math.pi
    shrink = 1 - 0.7 * step / 48
    return (0.67 + 0.085 * shrink * math.cos(turn)) * width, (0.36 + 0.17 * shrink * math.sin(turn)) * height


def _is_lighthouse(record: Any) -> bool:
    """The sandbox's lighthouse (768 × 512), not a demo pattern of that subject."""
    return record is not None and record.engine != "demo" and record.parameters.prompt.startswith("a lighthouse")


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

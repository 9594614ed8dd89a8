"""`python -m tools.sweep_screenshot`: the contact sheet of a sweep, and the composer that sent it.

Offscreen, on the in-process local cloud (sandbox test patterns, labelled as such), in fresh dirs:
a 4 × 3 sweep of seeds and styles, then docs/screenshots/sweep.png (the sheet's window) and
sweep-composer.png (the composer with its axes and the "Sweep: …" hint).

    python -m tools.sweep_screenshot [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from tools.screenshots import SIZE, _grab, _settle, _ui_font, _wait


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/screenshots")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="diffusion-desk-sweep-") as tmp:
        for path in _shoot(Path(tmp), out):
            print(path)
    return 0


def _shoot(tmp: Path, out: Path) -> list[Path]:
    from app.services.settings import AppDirs
    from app.ui.shell.context import SANDBOX, AppContext
    from app.ui.shell.main import make_application
    from app.ui.shell.tasks import manager
    from app.ui.shell.window import MainWindow

    app = make_application()
    app.setFont(_ui_font(app.font()))
    dirs = AppDirs(tmp / "config", tmp / "data").create()
    context = AppContext.open(dirs, sandbox=True)
    window = MainWindow(context)
    window.resize(*SIZE)
    window.pages.setCurrentIndex(0)
    context.choose_mode(SANDBOX)
    window.show()
    window.start()
    _wait(app, lambda: context.session.tracking, 90)
    composer, explore = window.composer, window.composer.explore
    composer.restore(
        {"prompt": "a lighthouse on a rocky coast at dusk", "width": 256, "height": 256, "num_inference_steps": 20},
        with_seed=False,
    )
    _wait(app, lambda: explore.style_box.count() > 1, 10)
    for row, (kind, values) in enumerate((("seed", "11, 12, 13, 14"), ("style", "none, Watercolour, Poster"))):
        box, edit = explore.axes[row]
        box.setCurrentIndex(box.findData(kind))
        edit.setText(values)
    _wait(app, lambda: explore.hint.text().startswith("Sweep:"), 10)
    from PySide6.QtWidgets import QScrollArea

    scroll = composer.findChild(QScrollArea)
    scroll.verticalScrollBar().setValue(scroll.verticalScrollBar().maximum())
    _settle(app, 300)
    written = [_grab(composer, out / "sweep-composer.png")]
    composer.generate()
    _wait(app, lambda: window.queue.model.rowCount() == 1 and window.queue.model.job(0).state.finished, 120)
    window.queue.view.setCurrentIndex(window.queue.model.index(0))
    window.queue.open_selected()
    sheet = next(iter(window.sweep_sheets.windows.values()))
    sheet.resize(820, 720)
    _wait(app, lambda: sheet.canvas.rendered is not None and sheet.canvas.rendered.sheet.done == 12, 30)
    _settle(app, 500)
    written.append(_grab(sheet, out / "sweep.png"))
    sheet.close()
    window.close()
    manager().wait(10_000)
    context.close()
    return written


if __name__ == "__main__":
    raise SystemExit(main())

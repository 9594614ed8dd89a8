"""Start the desktop app: `python -m app [--sandbox] [--self-test]`."""

from __future__ import annotations

import argparse
import logging
import os
import sys

log = logging.getLogger(__name__)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="diffusion-desk", description="Diffusion Desk, the desktop app.")
    parser.add_argument("--sandbox", action="store_true", help="use the in-process local cloud (test-pattern images)")
    parser.add_argument("--self-test", action="store_true",
                        help="open the window offscreen, generate one image on the local cloud, exit 0 when it works")
    return parser.parse_args(argv)


def make_application(argv: list[str] | None = None) -> "QApplication":  # noqa: F821
    """The QApplication with our name, icon and look (created once)."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    from . import style
    from .icons import app_icon

    app = QApplication.instance()
    if app is None:
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
        app = QApplication([sys.argv[0] if sys.argv else "diffusion-desk", *(argv or [])])
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
        from .selftest import run

        return run()
    from app.services.logs import setup_logging
    from app.services.settings import AppDirs

    from .context import AppContext
    from .tasks import manager
    from .window import MainWindow

    dirs = AppDirs.default().create()
    setup_logging(dirs.log_dir)
    app = make_application()
    context = AppContext.open(dirs, sandbox=True if args.sandbox else None)
    window = MainWindow(context)
    window.show()
    window.start()
    code = app.exec()
    manager().wait(5000)
    context.close()
    return code

"""The app's own line icons from resources/icons, tinted to the palette's text colour."""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import (
    QColor,
    QGuiApplication,
    QIcon,
    QImage,
    QPainter,
    QPalette,
    QPixmap,
)
from PySide6.QtSvg import QSvgRenderer

_SIZES = (16, 20, 24, 32, 48)


def resources_dir() -> Path:
    """resources/ next to the source tree, or inside a PyInstaller bundle."""
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        return Path(bundle) / "resources"
    return Path(__file__).resolve().parents[2] / "resources"


def icon_path(name: str) -> Path:
    return resources_dir() / "icons" / f"{name}.svg"


def app_icon() -> QIcon:
    return QIcon(str(icon_path("app")))


def icon(name: str, color: QColor | None = None) -> QIcon:
    """A tinted icon; the disabled state uses the palette's disabled text colour."""
    palette = QGuiApplication.palette()
    normal = color or palette.color(QPalette.ColorGroup.Active, QPalette.ColorRole.WindowText)
    disabled = palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText)
    return _icon(name, normal.rgba(), disabled.rgba())


@lru_cache(maxsize=256)
def _icon(name: str, normal: int, disabled: int) -> QIcon:
    result = QIcon()
    renderer = QSvgRenderer(str(icon_path(name)))
    for size in _SIZES:
        for ratio in (1, 2):
            result.addPixmap(_tinted(renderer, size, ratio, QColor.fromRgba(normal)), QIcon.Mode.Normal)
            result.addPixmap(_tinted(renderer, size, ratio, QColor.fromRgba(disabled)), QIcon.Mode.Disabled)
    return result


def _tinted(renderer: QSvgRenderer, size: int, ratio: int, color: QColor) -> QPixmap:
    image = QImage(QSize(size * ratio, size * ratio), QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter, QRectF(0, 0, size * ratio, size * ratio))
    painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_SourceIn)
    painter.fillRect(image.rect(), color)
    painter.end()
    pixmap = QPixmap.fromImage(image)
    pixmap.setDevicePixelRatio(ratio)
    return pixmap


def clear_cache() -> None:
    """Forget tinted icons (after the palette changes between light and dark)."""
    _icon.cache_clear()

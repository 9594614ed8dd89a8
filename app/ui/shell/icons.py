"""The app's own line icons from resources/icons, tinted to the palette's text colour when painted.

Icons are drawn by an icon engine that reads the application palette at paint time, so they
follow a switch between light and dark without being set again; sharp at any device pixel ratio.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path

from PySide6.QtCore import QRect, QRectF, QSize, Qt
from PySide6.QtGui import (
    QColor,
    QGuiApplication,
    QIcon,
    QIconEngine,
    QImage,
    QPainter,
    QPalette,
    QPixmap,
)
from PySide6.QtSvg import QSvgRenderer


def resources_dir() -> Path:
    """resources/ next to the source tree, or inside a PyInstaller bundle."""
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        return Path(bundle) / "resources"
    return Path(__file__).resolve().parents[3] / "resources"


def icon_path(name: str) -> Path:
    return resources_dir() / "icons" / f"{name}.svg"


def app_icon() -> QIcon:
    return QIcon(str(icon_path("app")))


def icon(name: str, color: QColor | None = None) -> QIcon:
    """A line icon in the palette's text colour (or `color`); disabled states use the disabled text colour."""
    return QIcon(_TintedSvg(name, None if color is None else color.rgba()))


class _TintedSvg(QIconEngine):
    def __init__(self, name: str, rgba: int | None) -> None:
        super().__init__()
        self.name = name
        self.rgba = rgba

    def clone(self) -> QIconEngine:
        return _TintedSvg(self.name, self.rgba)

    def _color(self, mode: QIcon.Mode) -> QColor:
        palette = QGuiApplication.palette()
        if mode == QIcon.Mode.Disabled:
            return palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText)
        if self.rgba is not None:
            return QColor.fromRgba(self.rgba)
        return palette.color(QPalette.ColorGroup.Active, QPalette.ColorRole.WindowText)

    def scaledPixmap(self, size: QSize, mode: QIcon.Mode, state: QIcon.State, scale: float) -> QPixmap:
        return _render(self.name, size.width(), size.height(), max(1.0, scale), self._color(mode).rgba())

    def pixmap(self, size: QSize, mode: QIcon.Mode, state: QIcon.State) -> QPixmap:
        return self.scaledPixmap(size, mode, state, 1.0)

    def paint(self, painter: QPainter, rect: QRect, mode: QIcon.Mode, state: QIcon.State) -> None:
        scale = painter.device().devicePixelRatioF() if painter.device() is not None else 1.0
        painter.drawPixmap(rect, self.scaledPixmap(rect.size(), mode, state, scale))

    def actualSize(self, size: QSize, mode: QIcon.Mode, state: QIcon.State) -> QSize:
        side = min(size.width(), size.height())
        return QSize(side, side)


@lru_cache(maxsize=1024)
def _renderer(name: str) -> QSvgRenderer:
    return QSvgRenderer(str(icon_path(name)))


@lru_cache(maxsize=1024)
def _render(name: str, width: int, height: int, scale: float, rgba: int) -> QPixmap:
    side = min(width, height)
    pixels = max(1, round(side * scale))
    image = QImage(QSize(pixels, pixels), QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    _renderer(name).render(painter, QRectF(0, 0, pixels, pixels))
    painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_SourceIn)
    painter.fillRect(image.rect(), QColor.fromRgba(rgba))
    painter.end()
    pixmap = QPixmap.fromImage(image)
    pixmap.setDevicePixelRatio(scale)
    return pixmap


def clear_cache() -> None:
    """Forget rendered pixmaps (after the palette changes between light and dark)."""
    _render.cache_clear()

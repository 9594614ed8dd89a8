"""How one gallery cell looks: a rounded thumbnail and its badges; the prompt shows on hover.

Painting is a handful of blits: thumbnails arrive already cropped and rounded, and the
placeholder, heart and badges are drawn once into cached pixmaps ("stamps"). Every Qt
call from Python costs a trip through the GIL, which worker threads are competing for.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QPoint, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QLinearGradient, QPainter, QPainterPath, QPalette, QPen, QPixmap
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from app.ui.gallery.model import badge_text
from app.ui.gallery.thumbnails import TILE_RADIUS
from app.ui.shell import icons

PADDING = 6
FAVOURITE = "#ff5c7a"
_SELECTED = QStyle.StateFlag.State_Selected.value
_HOVER = QStyle.StateFlag.State_MouseOver.value
_FOCUS_BY_KEYBOARD = QStyle.StateFlag.State_HasFocus.value | QStyle.StateFlag.State_KeyboardFocusChange.value


class GalleryDelegate(QStyledItemDelegate):
    """Paints a cell; asking the model for a cell's thumbnail is what starts its render.

    `configure(font, palette, ratio)` is called by the view when any of them changes; paint
    then only looks things up.
    """

    def __init__(self, parent=None, thumbnail: int = 160):
        super().__init__(parent)
        self.thumbnail = thumbnail
        self._stamps: dict[tuple, QPixmap] = {}
        self.configure(QFont(), QPalette(), 1.0)

    def configure(self, font: QFont, palette: QPalette, ratio: float) -> None:
        """The view's font, palette and device pixel ratio; cached drawings are redrawn."""
        self._font, self._palette, self._ratio = font, palette, ratio
        self._caption_font = QFont(font)
        if font.pointSizeF() > 0:
            self._caption_font.setPointSizeF(max(7.5, font.pointSizeF() * 0.88))
        self._caption_metrics = QFontMetrics(self._caption_font)
        self._stamps.clear()

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        return QSize(self.thumbnail + 2 * PADDING, self.thumbnail + 2 * PADDING)

    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        # Straight to the model rather than index.data(): no QVariant round trip per cell.
        model = index.model()
        record = model.record(index.row())
        side = self.thumbnail
        rect = option.rect
        x, y = rect.x() + (rect.width() - side) // 2, rect.y() + (rect.height() - side) // 2
        state = option.state.value

        pixmap = model.thumbnail(index, record) if record is not None else None
        if pixmap is not None and not pixmap.isNull():
            if round(pixmap.width() / pixmap.devicePixelRatio()) == side:
                painter.drawPixmap(x, y, pixmap)
            else:  # another size's thumbnail while this one renders (the window is being resized)
                painter.drawPixmap(QRect(x, y, side, side), pixmap)
        else:
            painter.drawPixmap(x, y, self._placeholder(broken=pixmap is not None))
        if record is None:
            return
        if record.favourite:
            painter.drawPixmap(x + side - 28, y + 6, self._stamp(("heart",), QSize(22, 22), _heart))
        badge = badge_text(record)
        if badge:
            painter.drawPixmap(x + 6, y + 6, self._badge(badge))

        selected = bool(state & _SELECTED)
        focus = state & _FOCUS_BY_KEYBOARD == _FOCUS_BY_KEYBOARD
        hovered = bool(state & _HOVER)
        if hovered:
            self._caption(painter, QRectF(x, y, side, side), record.parameters.prompt)
        if selected or focus or hovered:
            _ring(painter, QRectF(x, y, side, side), self._palette, selected, focus)

    def _placeholder(self, broken: bool) -> QPixmap:
        palette, size = self._palette, QSize(self.thumbnail, self.thumbnail)
        return self._stamp(
            ("placeholder", broken, self.thumbnail),
            size,
            lambda painter, size: _placeholder(painter, size, palette, broken),
        )

    def _badge(self, text: str) -> QPixmap:
        stamp = self._stamps.get(("badge", text))
        if stamp is None:
            font = _badge_font(self._font)
            metrics = QFontMetrics(font)
            size = QSize(metrics.horizontalAdvance(text) + 10, metrics.height() + 2)
            stamp = self._stamp(("badge", text), size, lambda painter, size: _badge(painter, size, text, font))
        return stamp

    def _stamp(self, key: tuple, size: QSize, draw: Callable[[QPainter, QSize], None]) -> QPixmap:
        stamp = self._stamps.get(key)
        if stamp is None:
            stamp = _drawn(size, self._ratio, draw)
            if len(self._stamps) > 64:
                self._stamps.clear()
            self._stamps[key] = stamp
        return stamp

    def _caption(self, painter: QPainter, tile: QRectF, prompt: str) -> None:
        """The prompt over a dark fade at the foot of the hovered tile (the grid itself stays quiet)."""
        metrics = self._caption_metrics
        height = min(tile.height() * 0.45, metrics.height() * 3.2)
        band = QRectF(tile.left(), tile.bottom() - height, tile.width(), height)
        fade = QLinearGradient(band.topLeft(), band.bottomLeft())
        fade.setColorAt(0, QColor(0, 0, 0, 0))
        fade.setColorAt(1, QColor(0, 0, 0, 170))
        path = QPainterPath()
        path.addRoundedRect(tile, TILE_RADIUS, TILE_RADIUS)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setClipPath(path)
        painter.fillRect(band, fade)
        painter.setFont(self._caption_font)
        painter.setPen(QColor(255, 255, 255, 240))
        text = metrics.elidedText(" ".join(prompt.split()), Qt.TextElideMode.ElideRight, int(tile.width()) - 16)
        painter.drawText(
            band.adjusted(8, 0, -8, -6), int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom), text
        )
        painter.restore()


def _drawn(size: QSize, ratio: float, draw: Callable[[QPainter, QSize], None]) -> QPixmap:
    pixmap = QPixmap(size * ratio)
    pixmap.setDevicePixelRatio(ratio)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    draw(painter, size)
    painter.end()
    return pixmap


def _ring(painter: QPainter, tile: QRectF, palette: QPalette, selected: bool, focus: bool) -> None:
    colour = palette.color(QPalette.ColorRole.Highlight)
    if not selected:
        colour.setAlpha(200 if focus else 110)
    width = 3.0 if selected else 2.0
    painter.save()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(QPen(colour, width, Qt.PenStyle.DotLine if focus and not selected else Qt.PenStyle.SolidLine))
    painter.setBrush(Qt.BrushStyle.NoBrush)
    grow = width / 2 + 1
    painter.drawRoundedRect(tile.adjusted(-grow, -grow, grow, grow), TILE_RADIUS + 2, TILE_RADIUS + 2)
    painter.restore()


def _mix(a: QColor, b: QColor, t: float) -> QColor:
    return QColor.fromRgbF(*(a.getRgbF()[i] * (1 - t) + b.getRgbF()[i] * t for i in range(3)))


def _placeholder(painter: QPainter, size: QSize, palette: QPalette, broken: bool) -> None:
    """A rounded tile with a quiet picture glyph; a warning glyph when the file is unreadable."""
    base, text = palette.color(QPalette.ColorRole.Base), palette.color(QPalette.ColorRole.Text)
    tile = QRectF(0, 0, size.width(), size.height())
    path = QPainterPath()
    path.addRoundedRect(tile, TILE_RADIUS, TILE_RADIUS)
    painter.fillPath(path, _mix(base, text, 0.07))
    side = max(16, round(size.width() * 0.22))
    box = QRect(0, 0, side, side)
    box.moveCenter(tile.center().toPoint())
    icons.icon("warning" if broken else "image", _mix(base, text, 0.25)).paint(painter, box)


def _heart(painter: QPainter, size: QSize) -> None:
    """The favourite mark: the app's heart icon on a dark disc, legible on any image."""
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor(20, 20, 24, 170))
    painter.drawEllipse(QRectF(0, 0, size.width(), size.height()))
    icons.icon("favourite-on", QColor(FAVOURITE)).paint(painter, QRect(QPoint(4, 4), QSize(14, 14)))


def _badge_font(font: QFont) -> QFont:
    badge = QFont(font)
    badge.setPointSizeF(max(6.5, (font.pointSizeF() if font.pointSizeF() > 0 else 9) * 0.72))
    badge.setWeight(QFont.Weight.DemiBold)
    badge.setLetterSpacing(QFont.SpacingType.PercentageSpacing, 106)
    return badge


def _badge(painter: QPainter, size: QSize, text: str, font: QFont) -> None:
    """A small dark pill, legible on any image."""
    pill = QRectF(0, 0, size.width(), size.height())
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor(20, 20, 24, 190))
    painter.drawRoundedRect(pill, pill.height() / 2, pill.height() / 2)
    painter.setFont(font)
    painter.setPen(QColor(255, 255, 255, 235))
    painter.drawText(pill, int(Qt.AlignmentFlag.AlignCenter), text)

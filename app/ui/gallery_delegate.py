"""How one gallery cell looks: a rounded thumbnail, its badges and a one-line caption."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPainterPath, QPalette, QPen, QPixmap
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from app.ui import icons
from app.ui.gallery_model import badge_text

PADDING = 6
RADIUS = 8
CAPTION_GAP = 4
FAVOURITE = "#ff5c7a"


class GalleryDelegate(QStyledItemDelegate):
    """Paints a cell; asking the model for a cell's thumbnail is what starts its render."""

    def __init__(self, parent=None, thumbnail: int = 160):
        super().__init__(parent)
        self.thumbnail = thumbnail

    def caption_height(self, option_font: QFont) -> int:
        return QFontMetrics(self._caption_font(option_font)).height() + CAPTION_GAP

    def cell_size(self, font: QFont) -> QSize:
        side = self.thumbnail + 2 * PADDING
        return QSize(side, side + self.caption_height(font))

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        return self.cell_size(option.font)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> None:
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        palette = option.palette
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        hovered = bool(option.state & QStyle.StateFlag.State_MouseOver)
        cell = QRectF(option.rect)
        tile = QRectF(cell.center().x() - self.thumbnail / 2, cell.top() + PADDING, self.thumbnail, self.thumbnail)
        # Straight to the model: in PySide6 6.12 `index.data()` loses a reference to None each
        # time a Python model returns None, and Python 3.11 then aborts.
        model = index.model()
        record = model.record(index.row())
        pixmap = model.thumbnail(index, record) if record is not None else None

        clip = QPainterPath()
        clip.addRoundedRect(tile, RADIUS, RADIUS)
        painter.fillPath(clip, _placeholder_colour(palette))
        if isinstance(pixmap, QPixmap) and not pixmap.isNull():
            painter.save()
            painter.setClipPath(clip)
            painter.drawPixmap(_cover(tile, pixmap), pixmap, QRectF(pixmap.rect()))
            painter.restore()
        else:
            _draw_placeholder(painter, tile, palette, broken=isinstance(pixmap, QPixmap))

        if record is not None:
            if record.favourite:
                _draw_heart(painter, QPointF(tile.right() - 15, tile.top() + 15))
            badge = badge_text(record)
            if badge:
                _draw_badge(painter, tile, badge, option.font)

        if selected or hovered:
            colour = palette.color(QPalette.ColorRole.Highlight)
            if not selected:
                colour.setAlpha(110)
            width = 3.0 if selected else 2.0
            painter.setPen(QPen(colour, width))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            ring = tile.adjusted(-width / 2 - 1, -width / 2 - 1, width / 2 + 1, width / 2 + 1)
            painter.drawRoundedRect(ring, RADIUS + 2, RADIUS + 2)

        if option.state & QStyle.StateFlag.State_HasFocus and option.state & QStyle.StateFlag.State_KeyboardFocusChange:
            painter.setPen(QPen(palette.color(QPalette.ColorRole.Highlight), 1, Qt.PenStyle.DotLine))
            painter.drawRoundedRect(cell.adjusted(1, 1, -1, -1), RADIUS, RADIUS)

        font = self._caption_font(option.font)
        painter.setFont(font)
        caption = QRectF(tile.left(), tile.bottom() + CAPTION_GAP, tile.width(), QFontMetrics(font).height())
        role = QPalette.ColorRole.Text if selected else QPalette.ColorRole.PlaceholderText
        painter.setPen(palette.color(role))
        text = record.parameters.prompt if record is not None else ""
        elided = QFontMetrics(font).elidedText(" ".join(text.split()), Qt.TextElideMode.ElideRight, int(caption.width()))
        painter.drawText(caption, int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter), elided)
        painter.restore()

    @staticmethod
    def _caption_font(font: QFont) -> QFont:
        small = QFont(font)
        size = font.pointSizeF()
        if size > 0:
            small.setPointSizeF(max(7.5, size * 0.88))
        return small


def _cover(tile: QRectF, pixmap: QPixmap) -> QRectF:
    """Where to draw `pixmap` so it fills `tile`, centred, keeping its aspect ratio."""
    ratio = pixmap.devicePixelRatio() or 1.0
    width, height = pixmap.width() / ratio, pixmap.height() / ratio
    scale = max(tile.width() / width, tile.height() / height)
    w, h = width * scale, height * scale
    return QRectF(tile.center().x() - w / 2, tile.center().y() - h / 2, w, h)


def _placeholder_colour(palette: QPalette) -> QColor:
    base, text = palette.color(QPalette.ColorRole.Base), palette.color(QPalette.ColorRole.Text)
    return _mix(base, text, 0.07)


def _mix(a: QColor, b: QColor, t: float) -> QColor:
    return QColor.fromRgbF(*(a.getRgbF()[i] * (1 - t) + b.getRgbF()[i] * t for i in range(3)))


def _draw_placeholder(painter: QPainter, tile: QRectF, palette: QPalette, *, broken: bool) -> None:
    """A quiet picture glyph while the thumbnail renders; a warning glyph when the file is unreadable."""
    colour = _mix(palette.color(QPalette.ColorRole.Base), palette.color(QPalette.ColorRole.Text), 0.25)
    side = max(16, round(min(tile.width(), tile.height()) * 0.22))
    box = QRectF(0, 0, side, side)
    box.moveCenter(tile.center())
    icons.icon("warning" if broken else "image", colour).paint(painter, box.toRect())


def _draw_heart(painter: QPainter, centre: QPointF) -> None:
    """The favourite mark: the app's heart icon on a dark disc, legible on any image."""
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor(20, 20, 24, 170))
    painter.drawEllipse(centre, 11, 11)
    icons.icon("favourite-on", QColor(FAVOURITE)).paint(painter, QRectF(centre.x() - 7, centre.y() - 7, 14, 14).toRect())


def _draw_badge(painter: QPainter, tile: QRectF, text: str, font: QFont) -> None:
    """A small dark pill in the bottom-left corner, legible on any image."""
    badge_font = QFont(font)
    badge_font.setPointSizeF(max(6.5, (font.pointSizeF() if font.pointSizeF() > 0 else 9) * 0.72))
    badge_font.setWeight(QFont.Weight.DemiBold)
    badge_font.setLetterSpacing(QFont.SpacingType.PercentageSpacing, 106)
    metrics = QFontMetrics(badge_font)
    width, height = metrics.horizontalAdvance(text) + 10, metrics.height() + 2
    pill = QRectF(tile.left() + 6, tile.bottom() - height - 6, width, height)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor(20, 20, 24, 190))
    painter.drawRoundedRect(pill, height / 2, height / 2)
    painter.setFont(badge_font)
    painter.setPen(QColor(255, 255, 255, 235))
    painter.drawText(pill, int(Qt.AlignmentFlag.AlignCenter), text)

"""The inpainting mask: a greyscale image the size of the picture, white where the model repaints.

Strokes are painted in image pixels (the canvas maps the pointer there), without antialiasing so the
mask is strictly black or white. A tinted copy (`overlay`) is kept in step for the canvas to draw.
Each stroke (and each clear) can be undone; the steps kept are bounded by `UNDO_STEPS`.
"""

from __future__ import annotations

from collections import deque

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QPointF, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPen

UNDO_STEPS = 30
BRUSH_SIZES = (4, 400)  # in image pixels
DEFAULT_BRUSH = 48


class Mask:
    """A mask being painted; `changed` callbacks get the image rectangle that changed (None: all of it)."""

    def __init__(self, size: QSize, tint: QColor | None = None) -> None:
        self.size = QSize(size)
        self.tint = QColor(tint or QColor("#6d5dfc"))
        self.image = QImage(self.size, QImage.Format.Format_Grayscale8)
        self.image.fill(0)
        self.overlay = QImage(self.size, QImage.Format.Format_ARGB32_Premultiplied)
        self.overlay.fill(Qt.GlobalColor.transparent)
        self._undo: deque[QImage] = deque(maxlen=UNDO_STEPS)
        self._last: QPointF | None = None
        self._erasing = False
        self._width = float(DEFAULT_BRUSH)
        self.listeners: list = []

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    def is_empty(self) -> bool:
        """True when no pixel is marked for repainting."""
        blank = QImage(self.size, QImage.Format.Format_Grayscale8)
        blank.fill(0)
        return self.image == blank

    def begin_stroke(self, at: QPointF, width: float, *, erase: bool = False) -> None:
        """Start a brush (or eraser) stroke at `at`, in image pixels; the state before it is an undo step."""
        self._undo.append(self.image.copy())
        self._erasing = erase
        self._width = max(1.0, float(width))
        self._last = QPointF(at)
        self._paint(at, at)

    def continue_stroke(self, to: QPointF) -> None:
        if self._last is None:
            return
        self._paint(self._last, to)
        self._last = QPointF(to)

    def end_stroke(self) -> None:
        self._last = None

    def undo(self) -> bool:
        """Back one step (a stroke or a clear); False when there is nothing to undo."""
        if not self._undo:
            return False
        self.image = self._undo.pop()
        self._last = None
        self._rebuild_overlay()
        return True

    def clear(self) -> None:
        """Nothing masked (undoable)."""
        if self.is_empty():
            return
        self._undo.append(self.image.copy())
        self.image.fill(0)
        self._rebuild_overlay()

    def png(self) -> bytes:
        """The mask as PNG file bytes (any thread; QImage is reentrant)."""
        return png_bytes(self.image)

    def _paint(self, start: QPointF, end: QPointF) -> None:
        shade = QColor(0, 0, 0) if self._erasing else QColor(255, 255, 255)
        painter = QPainter(self.image)
        painter.setPen(_pen(shade, self._width))
        _stroke(painter, start, end)
        painter.end()
        painter = QPainter(self.overlay)
        if self._erasing:
            painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_Clear)
        painter.setPen(_pen(self.tint, self._width))
        _stroke(painter, start, end)
        painter.end()
        grow = self._width / 2 + 2
        dirty = QRectF(start, end).normalized().adjusted(-grow, -grow, grow, grow).toAlignedRect()
        self._tell(dirty & QRect(0, 0, self.size.width(), self.size.height()))

    def _rebuild_overlay(self) -> None:
        """The tinted overlay from the mask: the tint where the mask is white, clear elsewhere."""
        self.overlay.fill(self.tint)
        alpha = QImage(
            self.image.constBits(),
            self.image.width(),
            self.image.height(),
            self.image.bytesPerLine(),
            QImage.Format.Format_Alpha8,
        )
        painter = QPainter(self.overlay)
        painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_DestinationIn)
        painter.drawImage(0, 0, alpha)
        painter.end()
        self._tell(None)

    def _tell(self, rect: QRect | None) -> None:
        for listener in list(self.listeners):
            listener(rect)


def _pen(color: QColor, width: float) -> QPen:
    pen = QPen(color, width)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    return pen


def _stroke(painter: QPainter, start: QPointF, end: QPointF) -> None:
    """A round dab for a click, a round-capped line for a drag."""
    if start == end:
        pen = painter.pen()
        radius = pen.widthF() / 2
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(pen.color())
        painter.drawEllipse(start, radius, radius)
    else:
        painter.drawLine(start, end)


def png_bytes(image: QImage) -> bytes:
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buffer, "PNG"):
        raise OSError("The mask could not be encoded as PNG.")
    buffer.close()
    return bytes(data.data())

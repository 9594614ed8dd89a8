"""The viewer's picture: fit to the window or zoom (wheel, buttons) and pan by dragging."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPalette, QPixmap, QTransform, QWheelEvent
from PySide6.QtWidgets import QFrame, QGraphicsPixmapItem, QGraphicsScene, QGraphicsView, QWidget

MIN_ZOOM, MAX_ZOOM = 0.05, 32.0
STEP = 1.25


class ImageCanvas(QGraphicsView):
    """Shows one pixmap; `fitted` keeps it fitted as the window resizes until the user zooms."""

    zoomChanged = Signal(float)  # 1.0 is one image pixel per screen pixel

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("viewerCanvas")
        self._scene = QGraphicsScene(self)
        self._item = QGraphicsPixmapItem()
        self._item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self._scene.addItem(self._item)
        self.setScene(self._scene)
        self.setRenderHints(QPainter.RenderHint.SmoothPixmapTransform | QPainter.RenderHint.Antialiasing)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setBackgroundRole(QPalette.ColorRole.Window)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.fitted = True
        self.loading_text = ""

    @property
    def zoom(self) -> float:
        return self.transform().m11()

    def has_image(self) -> bool:
        return not self._item.pixmap().isNull()

    def set_image(self, pixmap: QPixmap | None) -> None:
        """Show `pixmap` fitted to the window (None clears it while the next one loads)."""
        self._item.setPixmap(pixmap or QPixmap())
        ratio = pixmap.devicePixelRatio() if pixmap else 1.0
        self._item.setScale(1 / ratio)
        self._scene.setSceneRect(self._item.sceneBoundingRect() if pixmap else QRectF())
        self.fit()

    def fit(self) -> None:
        """Fit the whole image in the window (small images are not blown up past 1:1 twice over)."""
        self.fitted = True
        self._apply_fit()

    def actual_size(self) -> None:
        """One image pixel per device pixel, centred."""
        self.fitted = False
        ratio = self.devicePixelRatioF() or 1.0
        self._set_zoom(1.0 / ratio)
        self.centerOn(self._item)

    def zoom_in(self) -> None:
        self.fitted = False
        self._set_zoom(self.zoom * STEP, anchor_mouse=False)

    def zoom_out(self) -> None:
        self.fitted = False
        self._set_zoom(self.zoom / STEP, anchor_mouse=False)

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120
        if not steps or not self.has_image():
            return
        self.fitted = False
        self._set_zoom(self.zoom * STEP**steps)
        event.accept()

    def mouseDoubleClickEvent(self, event: Any) -> None:
        if self.fitted:
            self.actual_size()
        else:
            self.fit()

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        if self.fitted:
            self._apply_fit()

    def drawBackground(self, painter: QPainter, rect: QRectF) -> None:
        """The window colour, and a soft shadow under the picture so it lifts off the page."""
        super().drawBackground(painter, rect)
        if not self.has_image():
            return
        bounds = self._item.sceneBoundingRect()
        unit = 1 / max(self.zoom, 1e-6)
        painter.setPen(Qt.PenStyle.NoPen)
        for step, alpha in ((6, 8), (4, 14), (2, 22)):
            painter.setBrush(QColor(0, 0, 0, alpha))
            grow = step * unit
            painter.drawRoundedRect(bounds.adjusted(-grow, -grow + unit, grow, grow + 2 * unit), grow, grow)

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:
        if self.has_image() or not self.loading_text:
            return
        painter.save()
        painter.resetTransform()
        painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
        flags = Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap  # a refusal is a sentence or two
        margin = 4 * self.fontMetrics().averageCharWidth()
        painter.drawText(self.viewport().rect().adjusted(margin, 0, -margin, 0), int(flags), self.loading_text)
        painter.restore()

    def _apply_fit(self) -> None:
        if not self.has_image():
            self.setTransform(QTransform())
            self.zoomChanged.emit(1.0)
            return
        bounds = self._item.sceneBoundingRect()
        view = self.viewport().rect().adjusted(16, 16, -16, -16)
        if bounds.isEmpty() or view.width() <= 0 or view.height() <= 0:
            return
        scale = min(view.width() / bounds.width(), view.height() / bounds.height(), 2.0)
        self.setTransform(QTransform.fromScale(scale, scale))
        self.centerOn(self._item)
        self.zoomChanged.emit(scale)

    def _set_zoom(self, zoom: float, anchor_mouse: bool = True) -> None:
        zoom = max(MIN_ZOOM, min(MAX_ZOOM, zoom))
        anchor = self.transformationAnchor()
        if not anchor_mouse:
            self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        factor = zoom / self.zoom
        self.scale(factor, factor)
        self.setTransformationAnchor(anchor)
        self.zoomChanged.emit(self.zoom)

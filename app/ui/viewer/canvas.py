"""The viewer's picture: fit to the window or zoom (wheel, buttons) and pan by dragging.

For the tools it also paints an inpainting mask with a brush or an eraser (in image pixels, whatever the
zoom), draws that mask semi-transparent over the picture, and outlines the canvas an extension would make.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QMarginsF, QPointF, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPalette, QPen, QPixmap, QTransform, QWheelEvent
from PySide6.QtWidgets import (
    QFrame,
    QGraphicsItem,
    QGraphicsPixmapItem,
    QGraphicsScene,
    QGraphicsView,
    QStyleOptionGraphicsItem,
    QWidget,
)

from app.ui.shell import style
from app.ui.viewer.mask import DEFAULT_BRUSH, Mask

MIN_ZOOM, MAX_ZOOM = 0.05, 32.0
STEP = 1.25
MASK_OPACITY = 0.5
BRUSH, ERASER = "brush", "eraser"


class _MaskItem(QGraphicsItem):
    """Draws a mask's tinted overlay over the picture; a child of the picture, so in its pixels."""

    def __init__(self, parent: QGraphicsItem) -> None:
        super().__init__(parent)
        self.mask: Mask | None = None
        self.setOpacity(MASK_OPACITY)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)

    def set_mask(self, mask: Mask | None) -> None:
        self.prepareGeometryChange()
        if self.mask is not None and self._changed in self.mask.listeners:
            self.mask.listeners.remove(self._changed)
        self.mask = mask
        if mask is not None:
            mask.listeners.append(self._changed)
        self.update()

    def _changed(self, rect: QRect | None) -> None:
        self.update(QRectF(rect) if rect is not None else self.boundingRect())

    def boundingRect(self) -> QRectF:
        if self.mask is None:
            return QRectF()
        return QRectF(0, 0, self.mask.size.width(), self.mask.size.height())

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        if self.mask is None:
            return
        exposed = option.exposedRect.toAlignedRect() & self.mask.overlay.rect()  # type: ignore[attr-defined]
        painter.drawImage(exposed.topLeft(), self.mask.overlay, exposed)


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
        self.reserved_bottom = 0  # pixels under a fitted picture kept clear (the viewer's tool strip)
        self._mask_item = _MaskItem(self._item)
        self.tool: str | None = None  # BRUSH or ERASER while painting a mask
        self.brush_size = DEFAULT_BRUSH  # in image pixels
        self._pointer: QPointF | None = None  # viewport position, for the brush outline
        self._painting = False
        self._pan_from: QPointF | None = None
        self._extension: QMarginsF | None = None  # image pixels added on each side (the preview)

    @property
    def zoom(self) -> float:
        return self.transform().m11()

    def has_image(self) -> bool:
        return not self._item.pixmap().isNull()

    def image_size(self) -> QSize:
        """The shown image's size in its own pixels."""
        return self._item.pixmap().size()

    def set_image(self, pixmap: QPixmap | None) -> None:
        """Show `pixmap` fitted to the window (None clears it while the next one loads)."""
        self._item.setPixmap(pixmap or QPixmap())
        ratio = pixmap.devicePixelRatio() if pixmap else 1.0
        self._item.setScale(1 / ratio)
        self._update_scene_rect()
        self.fit()

    @property
    def mask(self) -> Mask | None:
        return self._mask_item.mask

    def set_mask(self, mask: Mask | None) -> None:
        """Draw `mask` over the picture (None: no mask)."""
        self._mask_item.set_mask(mask)

    @property
    def mask_visible(self) -> bool:
        return self._mask_item.isVisible()

    def set_mask_visible(self, visible: bool) -> None:
        self._mask_item.setVisible(visible)

    def set_tool(self, tool: str | None) -> None:
        """BRUSH or ERASER paints the mask with the left button; None pans again."""
        self.tool = tool
        self._painting = False
        self.setDragMode(QGraphicsView.DragMode.NoDrag if tool else QGraphicsView.DragMode.ScrollHandDrag)
        self.viewport().setMouseTracking(bool(tool))
        self.viewport().setCursor(Qt.CursorShape.CrossCursor if tool else Qt.CursorShape.ArrowCursor)
        if not tool:
            self.viewport().unsetCursor()
            self._pointer = None
        self.viewport().update()

    def image_point(self, position: QPointF) -> QPointF:
        """The image pixel coordinates under a viewport position, at any zoom and scroll."""
        inverse, _ok = self.viewportTransform().inverted()
        return self._item.mapFromScene(inverse.map(QPointF(position)))

    def view_point(self, image_point: QPointF) -> QPointF:
        """The viewport position of an image pixel coordinate (the inverse of `image_point`)."""
        return self.viewportTransform().map(self._item.mapToScene(QPointF(image_point)))

    @property
    def extension(self) -> QMarginsF | None:
        return self._extension

    def set_extension(self, left: int, top: int, right: int, bottom: int) -> None:
        """Outline the canvas grown by these image pixels on each side (all zero: no outline)."""
        margins = QMarginsF(left, top, right, bottom)
        self._extension = None if margins.isNull() else margins
        self._update_scene_rect()
        if self.fitted:
            self._apply_fit()
        self.viewport().update()

    def clear_extension(self) -> None:
        self.set_extension(0, 0, 0, 0)

    def extended_rect(self) -> QRectF:
        """The grown canvas in image pixels (the image itself at 0, 0 when nothing is added)."""
        pixmap = self._item.pixmap()
        rect = QRectF(0, 0, pixmap.width(), pixmap.height())
        return rect.marginsAdded(self._extension) if self._extension is not None else rect

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

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if self.tool and event.button() == Qt.MouseButton.MiddleButton:
            self._pan_from = event.position()  # while painting, the middle button pans
            event.accept()
            return
        if self.tool and self.mask is not None and event.button() == Qt.MouseButton.LeftButton:
            self._painting = True
            self.mask.begin_stroke(self.image_point(event.position()), self.brush_size, erase=self.tool == ERASER)
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self.tool:
            self._move_pointer(event.position())
            if self._pan_from is not None:
                delta = event.position() - self._pan_from
                self._pan_from = event.position()
                self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - round(delta.x()))
                self.verticalScrollBar().setValue(self.verticalScrollBar().value() - round(delta.y()))
            elif self._painting and self.mask is not None:
                self.mask.continue_stroke(self.image_point(event.position()))
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._pan_from is not None and event.button() == Qt.MouseButton.MiddleButton:
            self._pan_from = None
            event.accept()
            return
        if self._painting and event.button() == Qt.MouseButton.LeftButton:
            self._painting = False
            if self.mask is not None:
                self.mask.end_stroke()
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def leaveEvent(self, event: Any) -> None:
        super().leaveEvent(event)
        if self._pointer is not None:
            self._move_pointer(None)

    def mouseDoubleClickEvent(self, event: Any) -> None:
        if self.tool:
            return
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
        if self.has_image():
            self._draw_extension(painter)
            self._draw_brush_outline(painter)
            return
        if not self.loading_text:
            return
        painter.save()
        painter.resetTransform()
        painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
        flags = Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap  # a refusal is a sentence or two
        margin = 4 * self.fontMetrics().averageCharWidth()
        painter.drawText(self.viewport().rect().adjusted(margin, 0, -margin, 0), int(flags), self.loading_text)
        painter.restore()

    def _draw_extension(self, painter: QPainter) -> None:
        """The added area washed in the accent, the grown canvas outlined, its size at the corner."""
        if self._extension is None:
            return
        c = style.colors()
        grown = self._item.mapRectToScene(self.extended_rect())
        image = self._item.sceneBoundingRect()
        painter.save()
        wash = QColor(c.accent)
        wash.setAlpha(46)
        for band in _bands(grown, image):
            painter.fillRect(band, wash)
        pen = QPen(QColor(c.accent), 0)
        pen.setCosmetic(True)
        pen.setWidthF(1.5)
        pen.setStyle(Qt.PenStyle.DashLine)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(grown)
        painter.restore()

    def _draw_brush_outline(self, painter: QPainter) -> None:
        """A ring the size of the brush under the pointer: light over dark, readable on any picture."""
        if not self.tool or self._pointer is None:
            return
        radius = self.brush_size / 2 * self.zoom * self._item.scale()
        painter.save()
        painter.resetTransform()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        for color, width in ((QColor(0, 0, 0, 150), 3.0), (QColor(255, 255, 255, 230), 1.2)):
            painter.setPen(QPen(color, width))
            painter.drawEllipse(self._pointer, radius, radius)
        if self.tool == ERASER:
            painter.setPen(QPen(QColor(255, 255, 255, 230), 1.2, Qt.PenStyle.DashLine))
            painter.drawLine(self._pointer - QPointF(radius * 0.5, 0), self._pointer + QPointF(radius * 0.5, 0))
        painter.restore()

    def _move_pointer(self, position: QPointF | None) -> None:
        self._pointer = QPointF(position) if position is not None else None
        self.viewport().update()

    def _update_scene_rect(self) -> None:
        if not self.has_image():
            self._scene.setSceneRect(QRectF())
            return
        self._scene.setSceneRect(self._bounds())

    def _bounds(self) -> QRectF:
        """What fitting shows: the picture, or the grown canvas while an extension is previewed."""
        return self._item.mapRectToScene(self.extended_rect())

    def _apply_fit(self) -> None:
        if not self.has_image():
            self.setTransform(QTransform())
            self.zoomChanged.emit(1.0)
            return
        bounds = self._bounds()
        view = self.viewport().rect().adjusted(16, 16, -16, -16 - self.reserved_bottom)
        if bounds.isEmpty() or view.width() <= 0 or view.height() <= 0:
            return
        scale = min(view.width() / bounds.width(), view.height() / bounds.height(), 2.0)
        self.setTransform(QTransform.fromScale(scale, scale))
        self.centerOn(bounds.center() + QPointF(0, self.reserved_bottom / 2 / scale))  # centred above the strip
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


def _bands(outer: QRectF, inner: QRectF) -> list[QRectF]:
    """`outer` less `inner` as up to four rectangles (top, bottom, left, right)."""
    bands = [
        QRectF(outer.left(), outer.top(), outer.width(), inner.top() - outer.top()),
        QRectF(outer.left(), inner.bottom(), outer.width(), outer.bottom() - inner.bottom()),
        QRectF(outer.left(), inner.top(), inner.left() - outer.left(), inner.height()),
        QRectF(inner.right(), inner.top(), outer.right() - inner.right(), inner.height()),
    ]
    return [band for band in bands if band.width() > 0 and band.height() > 0]

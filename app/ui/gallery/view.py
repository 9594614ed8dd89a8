"""The gallery grid: uniform square cells fitted to the width, with an empty-state line."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QPainter, QPalette
from PySide6.QtWidgets import QAbstractItemView, QListView, QStyle, QWidget

SIZES = (96, 320, 16)  # smallest, largest, step of the thumbnail slider (logical pixels)
DEFAULT_SIZE = 176
MARGIN = 8
GUTTER = 12  # between tiles, both ways


class GalleryView(QListView):
    """The grid itself: uniform cells laid out left to right, wrapping, with an empty-state line."""

    tileChanged = Signal(int)  # the fitted thumbnail side, logical pixels

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setMovement(QListView.Movement.Static)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(500)
        self.setUniformItemSizes(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setSelectionRectVisible(True)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setDragEnabled(False)
        self.setMouseTracking(True)
        self.setFrameShape(QListView.Shape.NoFrame)
        self.viewport().setAttribute(Qt.WidgetAttribute.WA_Hover)
        self.setSpacing(0)
        self.setViewportMargins(MARGIN, MARGIN // 2, MARGIN, MARGIN // 2)
        self.empty_text = ""
        self.target = DEFAULT_SIZE
        self.tile = 0

    def set_target(self, pixels: int) -> None:
        """The thumbnail size the user asked for; tiles are fitted around it so rows fill the width."""
        self.target = pixels
        self._fit_grid()

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self._fit_grid()

    def _fit_grid(self) -> None:
        """As many columns as tiles near the target size allow, with equal gutters both ways."""
        # QListView lays out within the viewport as if a scroll bar were always there.
        extent = self.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent, None, self.verticalScrollBar())
        width = self.maximumViewportSize().width() - extent - 2
        columns = max(1, round(width / (self.target + GUTTER)))
        cell = max(SIZES[0] // 2, width // columns)
        if cell != self.gridSize().width():
            self.setGridSize(QSize(cell, cell))
        if cell - GUTTER != self.tile:
            self.tile = cell - GUTTER
            self.tileChanged.emit(self.tile)

    def paintEvent(self, event: Any) -> None:
        super().paintEvent(event)
        if self.model() is not None and self.model().rowCount() == 0 and self.empty_text:
            painter = QPainter(self.viewport())
            painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(
                self.viewport().rect().adjusted(24, 24, -24, -24),
                int(Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap),
                self.empty_text,
            )

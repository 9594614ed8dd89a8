"""The tools' buttons as a floating strip at the foot of the picture, so the tool bar stays narrow."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QFrame, QGraphicsDropShadowEffect, QHBoxLayout, QToolButton, QWidget

from app.ui.shell import style

MARGIN = 14  # from the canvas's bottom edge
#: What the canvas keeps clear under a fitted picture for the strip.
RESERVED = 56


class ToolStrip(style.SchemeStyled, QFrame):
    """A rounded bar over `canvas`, centred at its foot; it follows the canvas's size."""

    def __init__(self, canvas: QWidget) -> None:
        super().__init__(canvas)
        self.setObjectName("viewerToolStrip")
        self._restyle()
        shadow = QGraphicsDropShadowEffect(self)
        shadow.setBlurRadius(18)
        shadow.setOffset(0, 2)
        shadow.setColor(QColor(0, 0, 0, 40))
        self.setGraphicsEffect(shadow)
        self._row = QHBoxLayout(self)
        self._row.setContentsMargins(5, 4, 5, 4)
        self._row.setSpacing(2)
        self._canvas = canvas
        canvas.installEventFilter(self)

    def scheme_sheet(self, c: style.Colors) -> str:
        return (
            f"#viewerToolStrip {{ background: {c.panel}; border: 1px solid {c.border}; border-radius: 12px; }}"
            f"#viewerToolStrip QToolButton {{ border: 1px solid transparent; border-radius: 8px; padding: 5px 12px;"
            f" background: transparent; }}"
            f"#viewerToolStrip QToolButton:hover {{ background: {c.hover}; }}"
            f"#viewerToolStrip QToolButton:checked {{ background: {c.accent_soft}; border-color: {c.accent};"
            f" color: {c.text}; }}"
            f"#viewerToolStrip QToolButton:disabled {{ color: {c.disabled}; }}"
        )

    def add(self, text: str, name: str, *, checkable: bool = False) -> QToolButton:
        button = QToolButton()
        button.setText(text)
        button.setObjectName(name)
        button.setCheckable(checkable)
        button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        button.setCursor(Qt.CursorShape.PointingHandCursor)
        self._row.addWidget(button)
        self.place()
        return button

    def place(self) -> None:
        self.adjustSize()
        canvas = self._canvas
        self.move((canvas.width() - self.width()) // 2, canvas.height() - self.height() - MARGIN)
        self.raise_()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self._canvas and event.type() in (QEvent.Type.Resize, QEvent.Type.Show):
            self.place()
        return False

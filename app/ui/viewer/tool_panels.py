"""The side panels of the viewer's tools: Inpaint (brush, eraser, mask, prompt) and Extend canvas.

They hold controls only; the viewer connects them to the canvas and to the job service.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.services.jobs.operations import extension, inpaint_size_problem
from app.ui.shell import icons
from app.ui.viewer.mask import BRUSH_SIZES, DEFAULT_BRUSH
from contract.families.base import MAX_SIDE

EXTEND_STEP = 64  # pixels per spin-box step: the models like sides in multiples of 64
EXTEND_MAX = MAX_SIDE


class _Panel(QFrame):
    """A titled side panel with a close button, a body and a primary button at the foot."""

    closeRequested = Signal()

    def __init__(self, title: str, blurb: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setBackgroundRole(QPalette.ColorRole.Light)
        self.setAutoFillBackground(True)
        self.setMinimumWidth(260)
        layout = self.body = QVBoxLayout(self)
        layout.setContentsMargins(16, 12, 16, 16)
        layout.setSpacing(6)
        head = QHBoxLayout()
        heading = QLabel(title)
        heading.setObjectName("panelTitle")
        head.addWidget(heading)
        head.addStretch(1)
        self.close_button = QToolButton()
        self.close_button.setIcon(icons.icon("cancel"))
        self.close_button.setIconSize(QSize(14, 14))
        self.close_button.setAutoRaise(True)
        self.close_button.setToolTip("Close the tool (Esc)")
        self.close_button.setAccessibleName("Close the tool")
        self.close_button.clicked.connect(self.closeRequested.emit)
        head.addWidget(self.close_button)
        layout.addLayout(head)
        about = QLabel(blurb)
        about.setObjectName("hint")
        about.setWordWrap(True)
        layout.addWidget(about)
        layout.addSpacing(6)

    def _prompt_field(self, placeholder: str) -> QPlainTextEdit:
        self.body.addWidget(_section("PROMPT"))
        field = QPlainTextEdit()
        field.setPlaceholderText(placeholder)
        field.setTabChangesFocus(True)
        field.setFixedHeight(4 * field.fontMetrics().lineSpacing() + 14)
        self.body.addWidget(field)
        return field

    def _foot(self, text: str, tip: str) -> QPushButton:
        self.error = QLabel()
        self.error.setObjectName("fieldError")
        self.error.setWordWrap(True)
        self.error.hide()
        self.body.addWidget(self.error)
        self.body.addStretch(1)
        button = QPushButton(text)
        button.setObjectName("primary")
        button.setToolTip(tip)
        self.body.addWidget(button)
        self.primary, self.primary_text, self.sending = button, text, False
        return button

    def show_error(self, text: str) -> None:
        self.error.setText(text)
        self.error.setVisible(bool(text))

    def set_sending(self, sending: bool) -> None:
        """While the tool's job is on its way its button waits, so one click sends one job."""
        self.sending = sending
        self.primary.setText("Sending…" if sending else self.primary_text)
        self._update_primary()

    def _update_primary(self) -> None:
        self.primary.setEnabled(not self.sending)


class InpaintPanel(_Panel):
    """Brush or eraser, brush size, undo, clear, show the mask; the prompt and Repaint."""

    toolChanged = Signal(str)  # "brush" or "eraser"
    sizeChanged = Signal(int)
    undoRequested = Signal()
    clearRequested = Signal()
    maskShown = Signal(bool)
    repaintRequested = Signal(str)  # the prompt
    #: Why the shown picture's size cannot be inpainted as it is ("" when it can).
    size_problem = ""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Inpaint", "Paint over what should change; the model repaints only there.", parent)
        self.setObjectName("inpaintPanel")
        self.body.addWidget(_section("MASK"))
        self.brush = _tool_button("Brush", "Paint the area to repaint (B)")
        self.eraser = _tool_button("Eraser", "Take area out of the mask (E)")
        group = QButtonGroup(self)
        group.setExclusive(True)
        for button, name in ((self.brush, "brush"), (self.eraser, "eraser")):
            group.addButton(button)
            button.toggled.connect(lambda on, n=name: on and self.toolChanged.emit(n))
        self.brush.setChecked(True)
        tools = QHBoxLayout()
        tools.setSpacing(6)
        tools.addWidget(self.brush, 1)
        tools.addWidget(self.eraser, 1)
        self.body.addLayout(tools)

        self.size = QSlider(Qt.Orientation.Horizontal)
        self.size.setRange(*BRUSH_SIZES)
        self.size.setValue(DEFAULT_BRUSH)
        self.size.setAccessibleName("Brush size")
        self.size.setToolTip("Brush size in image pixels ([ and ])")
        self.size_value = QLabel()
        self.size_value.setObjectName("hint")
        self.size_value.setMinimumWidth(self.size_value.fontMetrics().horizontalAdvance("000 px"))
        self.size_value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.size.valueChanged.connect(self._size_changed)
        size_row = QHBoxLayout()
        size_caption = QLabel("Size")
        size_row.addWidget(size_caption)
        size_row.addWidget(self.size, 1)
        size_row.addWidget(self.size_value)
        self.body.addLayout(size_row)
        self._size_changed(self.size.value())

        self.undo = QPushButton("Undo")
        self.undo.setToolTip("Undo the last stroke (Ctrl+Z)")
        self.undo.clicked.connect(self.undoRequested.emit)
        self.clear = QPushButton("Clear")
        self.clear.setToolTip("Remove the whole mask")
        self.clear.clicked.connect(self.clearRequested.emit)
        self.show_mask = QCheckBox("Show mask")
        self.show_mask.setChecked(True)
        self.show_mask.setToolTip("Show or hide the mask over the picture (H)")
        self.show_mask.toggled.connect(self.maskShown.emit)
        edits = QHBoxLayout()
        edits.setSpacing(6)
        edits.addWidget(self.undo)
        edits.addWidget(self.clear)
        edits.addStretch(1)
        edits.addWidget(self.show_mask)
        self.body.addLayout(edits)
        keys = QLabel("B brush · E eraser · [ ] size")
        keys.setObjectName("hint")
        keys.setWordWrap(True)
        self.body.addWidget(keys)
        self.body.addSpacing(6)

        self.prompt = self._prompt_field("What to paint there, e.g. “a red paper lantern”")
        self.repaint = self._foot("Repaint", "Send the picture, the mask and the prompt to the inpainting model")
        self.repaint.clicked.connect(lambda: self.repaintRequested.emit(self.prompt.toPlainText().strip()))

    def set_image_size(self, size: QSize) -> None:
        """The shown picture's size: one the model cannot take is said before any painting, and Repaint waits."""
        problem = inpaint_size_problem(size.width(), size.height())
        self.size_problem = (
            f"This picture is {size.width()} × {size.height()}. {problem}: Extend canvas pads it to such a size."
            if problem
            else ""
        )
        self.show_error(self.size_problem)
        self._update_primary()

    def set_mask_state(self, *, can_undo: bool, empty: bool) -> None:
        self.undo.setEnabled(can_undo)
        self.clear.setEnabled(not empty)
        if not empty:
            self.show_error(self.size_problem)

    def _update_primary(self) -> None:
        self.primary.setEnabled(not self.sending and not self.size_problem)

    def _size_changed(self, value: int) -> None:
        self.size_value.setText(f"{value} px")
        self.sizeChanged.emit(value)


class ExtendPanel(_Panel):
    """Pixels to add on each side, laid out around a picture of the canvas; the prompt and Extend."""

    changed = Signal(int, int, int, int)  # left, top, right, bottom
    extendRequested = Signal(dict)  # left, right, top, bottom and prompt

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(
            "Extend canvas", "Grow the picture on any side; the inpainting model fills the new area.", parent
        )
        self.setObjectName("extendPanel")
        self.body.addWidget(_section("ADD PIXELS"))
        self.sides: dict[str, QSpinBox] = {}
        grid = QGridLayout()
        grid.setHorizontalSpacing(8)
        grid.setVerticalSpacing(6)
        places = {"top": (0, 1), "left": (1, 0), "right": (1, 2), "bottom": (2, 1)}
        for side, (row, column) in places.items():
            box = QSpinBox()
            box.setRange(0, EXTEND_MAX)
            box.setSingleStep(EXTEND_STEP)
            box.setSuffix(" px")
            box.setAlignment(Qt.AlignmentFlag.AlignCenter)
            box.setAccessibleName(f"Pixels to add on the {side}")
            box.setToolTip(f"Pixels to add on the {side}")
            box.setObjectName(f"extend_{side}")
            box.valueChanged.connect(self._changed)
            self.sides[side] = box
            grid.addWidget(box, row, column)
        picture = QLabel("image")
        picture.setObjectName("extendPicture")
        picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        picture.setMinimumHeight(44)
        picture.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        picture.setStyleSheet(
            "#extendPicture { border: 1px dashed palette(mid); border-radius: 6px; color: palette(placeholder-text); }"
        )
        grid.addWidget(picture, 1, 1)
        self.body.addLayout(grid)
        self.size_line = QLabel()
        self.size_line.setObjectName("hint")
        self.size_line.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.body.addWidget(self.size_line)
        self.body.addSpacing(6)
        self._image_size = QSize()
        self.too_large = False
        self.prompt = self._prompt_field("What the wider scene holds, e.g. “more of the rocky coast”")
        self.extend = self._foot("Extend", "Send the grown canvas and the prompt to the inpainting model")
        self.extend.clicked.connect(lambda: self.extendRequested.emit(self.values()))
        self._changed()

    def set_image_size(self, size: QSize) -> None:
        self._image_size = QSize(size)
        self._changed()

    def values(self) -> dict:
        sides = {side: box.value() for side, box in self.sides.items()}
        return {**sides, "prompt": self.prompt.toPlainText().strip()}

    def grown_sides(self) -> dict[str, int]:
        """The pixels Extend adds on each side: those asked for, each axis rounded up to the model's multiple of 8."""
        v = {side: box.value() for side, box in self.sides.items()}
        if not any(v.values()) or self._image_size.isEmpty():
            return v
        width, height = self._image_size.width(), self._image_size.height()
        return dict(zip(("left", "right", "top", "bottom"), extension(width, height, **v), strict=True))

    def grown_size(self) -> QSize:
        """The canvas Extend makes (`grown_sides` around the picture)."""
        g = self.grown_sides()
        return QSize(
            self._image_size.width() + g["left"] + g["right"], self._image_size.height() + g["top"] + g["bottom"]
        )

    def reset(self) -> None:
        for box in self.sides.values():
            box.blockSignals(True)
            box.setValue(0)
            box.blockSignals(False)
        self._changed()

    def _changed(self, _value: int = 0) -> None:
        v = {side: box.value() for side, box in self.sides.items()}
        grown = self.grown_size()
        if self._image_size.isValid() and not self._image_size.isEmpty():
            was = f"{self._image_size.width()} × {self._image_size.height()}"
            asked = QSize(
                self._image_size.width() + v["left"] + v["right"], self._image_size.height() + v["top"] + v["bottom"]
            )
            rounded = "  (rounded up to multiples of 8)" if grown != asked else ""
            self.size_line.setText(f"{was}  →  {grown.width()} × {grown.height()}{rounded}")
        else:
            self.size_line.setText("")
        self.too_large = max(grown.width(), grown.height()) > EXTEND_MAX
        self.show_error(
            f"Too large: the inpainting model paints up to {EXTEND_MAX} × {EXTEND_MAX} pixels."
            if self.too_large
            else ""
        )
        self._update_primary()
        g = self.grown_sides()
        self.changed.emit(g["left"], g["top"], g["right"], g["bottom"])

    def _update_primary(self) -> None:
        sides = any(box.value() for box in self.sides.values())
        self.primary.setEnabled(not self.sending and sides and not self.too_large)


def _tool_button(text: str, tip: str) -> QToolButton:
    button = QToolButton()
    button.setText(text)
    button.setToolTip(tip)
    button.setCheckable(True)
    button.setObjectName(f"tool_{text.lower()}")
    button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
    return button


def _section(text: str) -> QLabel:
    label = QLabel(text)
    label.setObjectName("sectionLabel")
    return label

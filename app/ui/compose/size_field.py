"""Width and height with aspect presets, snapped to multiples of 8, and a native-size warning."""

from __future__ import annotations

import math

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from contract import LIMITS

PRESETS = (("1:1", 1, 1), ("4:3", 4, 3), ("3:2", 3, 2), ("16:9", 16, 9), ("3:4", 3, 4), ("2:3", 2, 3), ("9:16", 9, 16))
MULTIPLE = LIMITS["width"].multiple_of
FAR_FACTOR = 1.6  # a side this many times smaller or larger than native gets the warning


def snap(value: float) -> int:
    low, high = int(LIMITS["width"].low), int(LIMITS["width"].high)
    return max(low, min(high, round(value / MULTIPLE) * MULTIPLE))


def preset_size(ratio_w: int, ratio_h: int, native: int) -> tuple[int, int]:
    """The size of that aspect with about the native pixel count, both sides multiples of 8."""
    ratio = ratio_w / ratio_h
    area = native * native
    return snap(math.sqrt(area * ratio)), snap(math.sqrt(area / ratio))


def far_from_native(width: int, height: int, native: int) -> bool:
    return any(side > native * FAR_FACTOR or side < native / FAR_FACTOR for side in (width, height))


class SizeField(QWidget):
    """Emits `changed` whenever width or height changes."""

    changed = Signal()
    snapped = Signal(str)  # a line for the user when a typed size was snapped

    def __init__(self, native: int = 512, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.native = native
        self.width_spin = self._spin("width")
        self.height_spin = self._spin("height")
        self.presets = QButtonGroup(self)
        self.presets.setExclusive(True)
        grid = QGridLayout()
        grid.setHorizontalSpacing(4)
        grid.setVerticalSpacing(4)
        for column in range(4):
            grid.setColumnStretch(column, 1)
        for n, (label, rw, rh) in enumerate(PRESETS):
            button = QToolButton()
            button.setText(label)
            button.setObjectName("preset")
            button.setCheckable(True)
            button.setToolTip(f"{label}: {'×'.join(map(str, preset_size(rw, rh, native)))}")
            button.setAccessibleName(f"Aspect {label}")
            button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            button.clicked.connect(lambda _=False, rw=rw, rh=rh: self.apply_preset(rw, rh))
            self.presets.addButton(button, n)
            grid.addWidget(button, 0 if n < 4 else 1, n if n < 4 else n - 4)
        sizes = QHBoxLayout()
        sizes.setSpacing(6)
        times = QLabel("×")
        times.setObjectName("hint")
        sizes.addWidget(self.width_spin, 1)
        sizes.addWidget(times)
        sizes.addWidget(self.height_spin, 1)
        self.warning = QLabel()
        self.warning.setObjectName("sizeWarning")
        self.warning.setWordWrap(True)
        self.warning.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        layout.addLayout(grid)
        layout.addLayout(sizes)
        layout.addWidget(self.warning)
        self.set_size(native, native)

    def _spin(self, name: str) -> QSpinBox:
        spin = QSpinBox()
        spin.setObjectName(name)
        spin.setRange(int(LIMITS[name].low), int(LIMITS[name].high))
        spin.setSingleStep(MULTIPLE)
        spin.setSuffix(" px")
        spin.setAlignment(Qt.AlignmentFlag.AlignCenter)
        spin.setAccessibleName(name.capitalize())
        spin.valueChanged.connect(self._changed)
        spin.editingFinished.connect(lambda: self._snap(spin))
        return spin

    def size(self) -> tuple[int, int]:
        return self.width_spin.value(), self.height_spin.value()

    def set_size(self, width: int, height: int) -> None:
        for spin, value in ((self.width_spin, width), (self.height_spin, height)):
            spin.blockSignals(True)
            spin.setValue(value)
            spin.blockSignals(False)
        self._changed()

    def apply_preset(self, ratio_w: int, ratio_h: int) -> None:
        self.set_size(*preset_size(ratio_w, ratio_h, self.native))

    def _snap(self, spin: QSpinBox) -> None:
        value = spin.value()
        if value % MULTIPLE:
            spin.setValue(snap(value))
            self.snapped.emit(
                f"{spin.accessibleName()} snapped to {spin.value()} px: sizes are multiples of {MULTIPLE}."
            )

    def _changed(self) -> None:
        width, height = self.size()
        self._check_preset(width, height)
        far = far_from_native(width, height, self.native)
        self.warning.setVisible(far)
        if far:
            self.warning.setText(
                f"Far from {self.native}×{self.native}, the size this model was trained on: "
                "subjects may repeat or look cropped."
            )
        self.changed.emit()

    def _check_preset(self, width: int, height: int) -> None:
        match = None
        for n, (_label, rw, rh) in enumerate(PRESETS):
            if abs(width / height - rw / rh) < 0.02:
                match = n
                break
        self.presets.setExclusive(False)
        for button in self.presets.buttons():
            button.setChecked(self.presets.id(button) == match)
        self.presets.setExclusive(True)

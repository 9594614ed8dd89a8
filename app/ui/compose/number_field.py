"""A slider and a spin box that edit one number together."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QDoubleSpinBox, QHBoxLayout, QSlider, QSpinBox, QWidget


class NumberField(QWidget):
    """Slider for quick moves, spin box for exact values; `step` sets the slider's resolution."""

    valueChanged = Signal(float)

    def __init__(
        self,
        low: float,
        high: float,
        value: float,
        *,
        step: float = 1,
        decimals: int = 0,
        name: str = "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._scale = 1 / step
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(round(low * self._scale), round(high * self._scale))
        self.slider.setPageStep(max(1, round((high - low) * self._scale / 10)))
        if decimals:
            self.spin: QSpinBox | QDoubleSpinBox = QDoubleSpinBox()
            self.spin.setDecimals(decimals)
            self.spin.setSingleStep(step)
        else:
            self.spin = QSpinBox()
        self.spin.setRange(low, high)
        self.spin.setKeyboardTracking(False)
        self.spin.setAlignment(Qt.AlignmentFlag.AlignRight)
        self.spin.setFixedWidth(64)
        if name:
            self.setObjectName(name)
            self.spin.setObjectName(f"{name}Spin")
            self.slider.setObjectName(f"{name}Slider")
            self.slider.setAccessibleName(name)
        self.slider.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(10)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.spin)
        self.slider.valueChanged.connect(self._from_slider)
        self.spin.valueChanged.connect(self._from_spin)
        self.setValue(value)

    def value(self) -> float:
        return self.spin.value()

    def set_range(self, low: float, high: float) -> None:
        """New bounds for both; a value outside them moves to the nearest bound."""
        self.slider.setRange(round(low * self._scale), round(high * self._scale))
        self.spin.setRange(low, high)

    def setValue(self, value: float) -> None:
        self.spin.setValue(value)

    def _from_slider(self, position: int) -> None:
        value = position / self._scale
        if abs(self.spin.value() - value) >= 1e-9:
            self.spin.setValue(value)

    def _from_spin(self, value: float) -> None:
        self.slider.blockSignals(True)
        self.slider.setValue(round(value * self._scale))
        self.slider.blockSignals(False)
        self.valueChanged.emit(float(value))

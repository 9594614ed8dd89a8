"""The seed: a number, a dice that rolls a new one, and a lock that keeps it between generations."""

from __future__ import annotations

import random

from PySide6.QtCore import QRegularExpression, Signal
from PySide6.QtGui import QRegularExpressionValidator
from PySide6.QtWidgets import QHBoxLayout, QLineEdit, QToolButton, QWidget

from app.ui.shell.icons import icon
from contract import MAX_SEED


class SeedField(QWidget):
    """Unlocked: each Generate rolls a fresh seed (shown here). Locked: the seed shown is reused."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.edit = QLineEdit()
        self.edit.setObjectName("seed")
        self.edit.setPlaceholderText("random")
        self.edit.setAccessibleName("Seed")
        self.edit.setValidator(QRegularExpressionValidator(QRegularExpression(r"\d{0,10}"), self.edit))
        self.edit.textEdited.connect(self._typed)
        self.edit.textChanged.connect(self.changed)
        self.dice = QToolButton()
        self.dice.setObjectName("dice")
        self.dice.setIcon(icon("dice"))
        self.dice.setToolTip("Roll a new random seed (Ctrl+R)")
        self.dice.setAccessibleName("Random seed")
        self.dice.clicked.connect(self.roll)
        self.lock = QToolButton()
        self.lock.setObjectName("lockSeed")
        self.lock.setCheckable(True)
        self.lock.setToolTip("Keep this seed for the next generations (Ctrl+K)")
        self.lock.setAccessibleName("Lock seed")
        self.lock.toggled.connect(self._lock_toggled)
        self._lock_toggled(False)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self.edit, 1)
        layout.addWidget(self.dice)
        layout.addWidget(self.lock)

    @property
    def locked(self) -> bool:
        return self.lock.isChecked()

    def text(self) -> str:
        return self.edit.text().strip()

    def value(self) -> int | None:
        """The seed typed or shown, or None when the field says "random"."""
        text = self.text()
        return int(text) if text else None

    def set_value(self, seed: int | None, *, lock: bool | None = None) -> None:
        self.edit.setText("" if seed is None else str(seed))
        if lock is not None:
            self.lock.setChecked(lock)

    def roll(self) -> int:
        seed = random.randint(0, MAX_SEED)
        self.edit.setText(str(seed))
        return seed

    def seed_for_next_job(self) -> int:
        """The seed the next job uses: the shown one when locked (or typed), else a new roll."""
        value = self.value()
        if self.locked and value is not None:
            return value
        return self.roll()

    def _typed(self, text: str) -> None:
        if text and not self.locked:
            self.lock.setChecked(True)

    def _lock_toggled(self, locked: bool) -> None:
        self.lock.setIcon(icon("lock" if locked else "lock-open"))

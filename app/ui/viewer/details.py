"""The viewer's side panel: every generation parameter of one image, "Use these settings", and its lineage."""

from __future__ import annotations

from datetime import datetime

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QGuiApplication, QPalette
from PySide6.QtWidgets import (
    QBoxLayout,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.services.models import ImageRecord
from app.ui.gallery.model import is_test_pattern
from app.ui.shell import icons
from app.ui.viewer.lineage import LineageSection
from contract import LABELS


def restore_fields(record: ImageRecord, with_seed: bool) -> dict[str, object]:
    """The GenerationRequest fields an image fixes; without the seed the composer picks a new one."""
    fields = record.parameters.request_fields()
    if not with_seed:
        fields.pop("seed", None)
    return fields


class ParameterPanel(QScrollArea):
    """Prompt, negative prompt and settings, selectable, with copy-seed and restore buttons."""

    restoreRequested = Signal(object, bool)  # GenerationRequest fields, with the seed?
    seedCopied = Signal(object)  # the seed (up to 2**32 - 1: wider than a Qt int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("viewerDetails")
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.record: ImageRecord | None = None

        body = QWidget()
        body.setObjectName("viewerDetailsBody")
        body.setBackgroundRole(QPalette.ColorRole.Light)
        body.setAutoFillBackground(True)
        self.setStyleSheet("#viewerDetails { border: none; border-left: 1px solid palette(mid); }")
        layout = QVBoxLayout(body)
        layout.setContentsMargins(16, 14, 16, 16)
        layout.setSpacing(4)

        self.badge = QLabel("Sandbox test pattern")
        self.badge.setObjectName("sandboxBadge")
        self.badge.setToolTip("A pattern drawn from the prompt and seed; no model made this image.")
        self.badge.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)
        layout.addWidget(self.badge, 0, Qt.AlignmentFlag.AlignLeft)
        self._build_restore_buttons(layout)
        self.prompt = self._text(layout, "PROMPT")
        self.negative_title, self.negative = self._section(layout, "NEGATIVE PROMPT")
        self._build_settings(layout)
        layout.addSpacing(10)
        self.lineage = LineageSection()  # filled by the viewer, which reads it on a worker
        layout.addWidget(self.lineage)

        layout.addStretch(1)
        self.setWidget(body)
        self.setMinimumWidth(260)

    def _build_restore_buttons(self, layout: QVBoxLayout) -> None:
        """The restore buttons, "Use these settings" and "Use with a new seed" (side by side when wide)."""
        self.use = QPushButton("Use these settings")
        self.use.setObjectName("primary")
        self.use.setToolTip("Put the prompt and every setting, seed included, into the composer (Ctrl+R)")
        self.use.clicked.connect(lambda: self._restore(True))
        self.use_without_seed = QPushButton("Use with a new seed")
        self.use_without_seed.setObjectName("useWithoutSeed")
        self.use_without_seed.setToolTip("The same settings with a new random seed, for variations (Ctrl+Shift+R)")
        self.use_without_seed.clicked.connect(lambda: self._restore(False))
        buttons = self._buttons = QBoxLayout(QBoxLayout.Direction.TopToBottom)
        buttons.setSpacing(6)
        buttons.addWidget(self.use, 3)
        buttons.addWidget(self.use_without_seed, 2)
        layout.addSpacing(6)
        layout.addLayout(buttons)
        layout.addSpacing(8)

    def _build_settings(self, layout: QVBoxLayout) -> None:
        """The SETTINGS grid (filled by `_fill_grid`) and the copy-seed button that joins its seed row."""
        layout.addWidget(_section_label("SETTINGS"))
        self.grid = QGridLayout()
        self.grid.setHorizontalSpacing(14)
        self.grid.setVerticalSpacing(6)
        self.grid.setColumnStretch(1, 1)
        layout.addLayout(self.grid)
        self.values: dict[str, QLabel] = {}
        self.copy_seed = QToolButton()
        self.copy_seed.setObjectName("copySeed")
        self.copy_seed.setIcon(icons.icon("copy"))
        self.copy_seed.setToolTip("Copy the seed")
        self.copy_seed.setAccessibleName("Copy the seed")
        self.copy_seed.setAutoRaise(True)
        self.copy_seed.setIconSize(QSize(14, 14))
        self.copy_seed.setFixedSize(QSize(26, 24))
        self.copy_seed.clicked.connect(self.copy_seed_to_clipboard)
        self._extra_rows: list[QWidget] = []

    def resizeEvent(self, event) -> None:
        """The two restore buttons side by side when they fit, else one above the other."""
        super().resizeEvent(event)
        wide = self.viewport().width() >= 420
        self._buttons.setDirection(QBoxLayout.Direction.LeftToRight if wide else QBoxLayout.Direction.TopToBottom)

    def show_record(self, record: ImageRecord | None) -> None:
        shown = self.lineage.shown
        if record is None or shown is None or shown.image_id != record.id:
            self.lineage.show_lineage(None)
        self.record = record
        params = record.parameters if record else None
        self.badge.setVisible(bool(record and is_test_pattern(record)))
        if record is not None and record.engine == "demo":
            self.badge.setText("Demo pattern")
        else:
            self.badge.setText("Sandbox test pattern")
        self.prompt.setText(params.prompt if params and params.prompt else "—")
        negative = params.negative_prompt if params else ""
        self.negative.setText(negative)
        self.negative.setVisible(bool(negative))
        self.negative_title.setVisible(bool(negative))
        self._fill_grid(record)
        has_settings = bool(params and params.prompt)
        self.use.setEnabled(has_settings)
        self.use_without_seed.setEnabled(has_settings and params is not None and params.seed is not None)
        self.copy_seed.setEnabled(params is not None and params.seed is not None)

    def copy_seed_to_clipboard(self) -> None:
        if self.record and self.record.parameters.seed is not None:
            seed = self.record.parameters.seed
            QGuiApplication.clipboard().setText(str(seed))
            self.seedCopied.emit(seed)

    def _restore(self, with_seed: bool) -> None:
        if self.record is not None:
            self.restoreRequested.emit(restore_fields(self.record, with_seed), with_seed)

    def _fill_grid(self, record: ImageRecord | None) -> None:
        for widget in self._extra_rows:
            self.grid.removeWidget(widget)
            widget.hide()  # at once: the deletion waits for the event loop
            widget.deleteLater()
        self._extra_rows.clear()
        self.values = {}
        self.copy_seed.setParent(self)
        if record is None:
            return
        p = record.parameters
        size = f"{p.width} × {p.height}" if p.width and p.height else f"{record.width} × {record.height}"
        if p.width and record.width and (p.width, p.height) != (record.width, record.height):
            size += f" (file {record.width} × {record.height})"
        rows = [
            ("steps", LABELS["num_inference_steps"], _text(p.steps)),
            ("guidance_scale", LABELS["guidance_scale"], _text(p.guidance_scale)),
            ("seed", LABELS["seed"], _text(p.seed)),
            ("size", "Size", size),
            ("model", "Model", p.model or "—"),
            ("created", "Created", _when(record.created_at)),
        ]
        rows += [(f"extra:{key}", key, value) for key, value in p.extra.items()]
        for row, (name, label, value) in enumerate(rows):
            title = QLabel(label)
            title.setObjectName("hint")
            title.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop)
            shown = QLabel(value)
            shown.setObjectName(f"param_{name}")
            shown.setWordWrap(True)
            shown.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            shown.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
            self.grid.addWidget(title, row, 0, Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignRight)
            self.grid.addWidget(shown, row, 1, Qt.AlignmentFlag.AlignTop)
            self._extra_rows += [title, shown]
            self.values[name] = shown
            if name == "seed":
                self.grid.removeWidget(shown)
                cell = QWidget()
                line = QHBoxLayout(cell)
                line.setContentsMargins(0, 0, 0, 0)
                line.setSpacing(4)
                line.addWidget(shown)
                line.addWidget(self.copy_seed)
                line.addStretch(1)
                self.copy_seed.show()
                self.grid.addWidget(cell, row, 1, Qt.AlignmentFlag.AlignTop)
                self._extra_rows.append(cell)

    def _section(self, layout: QVBoxLayout, title: str) -> tuple[QLabel, QLabel]:
        heading = _section_label(title)
        layout.addWidget(heading)
        label = QLabel()
        label.setWordWrap(True)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        label.setTextFormat(Qt.TextFormat.PlainText)
        label.setObjectName(f"param_{title.split()[0].lower()}")
        layout.addWidget(label)
        layout.addSpacing(6)
        return heading, label

    def _text(self, layout: QVBoxLayout, title: str) -> QLabel:
        return self._section(layout, title)[1]


def _section_label(text: str) -> QLabel:
    label = QLabel(text)
    label.setObjectName("sectionLabel")
    return label


def _text(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _when(stamp: str) -> str:
    try:
        when = datetime.fromisoformat(stamp)
    except ValueError:
        return stamp or "—"
    if when.tzinfo is not None:
        when = when.astimezone()
    return when.strftime("%d %b %Y, %H:%M")

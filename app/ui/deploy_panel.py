"""The Settings deploy section: what to deploy, Deploy / Update / Tear down, progress and a live log.

A thin view: it emits what the user asked for and shows what it is told. The deployer is
wired by `attach(...)`; until then the buttons say that deploying is not available yet.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFontDatabase, QTextCursor
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from .icons import icon

MODELS = (
    ("Stable Diffusion 2.1 base (512 px)", "model-txt2img-stabilityai-stable-diffusion-v2-1-base"),
    ("Stable Diffusion 2 (768 px)", "model-txt2img-stabilityai-stable-diffusion-v2"),
)
INSTANCE_TYPES = ("ml.g5.2xlarge", "ml.g5.xlarge", "ml.g4dn.2xlarge", "ml.g4dn.xlarge", "ml.p3.2xlarge")
LOG_LINES = 5000
COST_NOTE = (
    "The endpoint scales to zero when idle, so instances are billed only while images are made. "
    "The first image after a quiet spell waits for an instance to start (usually 5–10 minutes)."
)


class DeployPanel(QWidget):
    """Emits deploy/update/teardown with the chosen options; shows progress, log, failure and result."""

    deploy_requested = Signal(dict)
    update_requested = Signal(dict)
    teardown_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("deployPanel")
        self.model = QComboBox()
        self.model.setObjectName("deployModel")
        for label, model_id in MODELS:
            self.model.addItem(label, model_id)
        self.instance_type = QComboBox()
        self.instance_type.setObjectName("deployInstanceType")
        self.instance_type.setEditable(True)
        self.instance_type.addItems(INSTANCE_TYPES)
        self.max_instances = QSpinBox()
        self.max_instances.setObjectName("deployMaxInstances")
        self.max_instances.setRange(1, 20)
        self.max_instances.setValue(1)
        self.region = QLabel("—")
        self.region.setObjectName("deployRegion")
        self.region.setToolTip("The region chosen on the Connection page")
        form = QFormLayout()
        form.setHorizontalSpacing(16)
        form.setVerticalSpacing(8)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        form.addRow("Model", self.model)
        form.addRow("Instance type", self.instance_type)
        form.addRow("Max instances", self.max_instances)
        form.addRow("Region", self.region)

        note = QLabel(COST_NOTE)
        note.setObjectName("hint")
        note.setWordWrap(True)

        self.deploy_button = QPushButton(icon("deploy"), "Deploy")
        self.deploy_button.setObjectName("primary")
        self.update_button = QPushButton(icon("retry"), "Update")
        self.update_button.setObjectName("deployUpdate")
        self.teardown_button = QPushButton(icon("teardown"), "Tear down…")
        self.teardown_button.setObjectName("danger")
        buttons = QHBoxLayout()
        buttons.setSpacing(8)
        buttons.addWidget(self.deploy_button)
        buttons.addWidget(self.update_button)
        buttons.addStretch(1)
        buttons.addWidget(self.teardown_button)

        self.step = QLabel("Nothing deployed from this app yet.")
        self.step.setObjectName("deployStep")
        self.step.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setObjectName("deployProgress")
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setTextVisible(False)
        self.progress.hide()
        self.log = QPlainTextEdit()
        self.log.setObjectName("deployLog")
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(LOG_LINES)
        self.log.setPlaceholderText("CloudFormation and pipeline events appear here while deploying.")
        self.log.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.log.setMinimumHeight(120)
        self.result = QLabel()
        self.result.setObjectName("deployResult")
        self.result.setWordWrap(True)
        self.result.hide()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(10)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addLayout(buttons)
        layout.addWidget(self.step)
        layout.addWidget(self.progress)
        layout.addWidget(self.log, 1)
        layout.addWidget(self.result)

        self.deploy_button.clicked.connect(lambda: self.deploy_requested.emit(self.options()))
        self.update_button.clicked.connect(lambda: self.update_requested.emit(self.options()))
        self.teardown_button.clicked.connect(self.teardown_requested)
        self.set_available(False, "One-click deploy arrives with the deployer; use the sandbox meanwhile.")

    def options(self) -> dict[str, Any]:
        return {
            "model_id": self.model.currentData(),
            "instance_type": self.instance_type.currentText().strip(),
            "max_instances": self.max_instances.value(),
        }

    def set_region(self, region: str | None) -> None:
        self.region.setText(region or "—")

    def set_available(self, available: bool, reason: str = "") -> None:
        for button in (self.deploy_button, self.update_button, self.teardown_button):
            button.setEnabled(available)
            button.setToolTip("" if available else reason)
        if not available and reason:
            self.step.setText(reason)

    def set_busy(self, busy: bool) -> None:
        for widget in (self.deploy_button, self.update_button, self.teardown_button, self.model,
                       self.instance_type, self.max_instances):
            widget.setEnabled(not busy)
        if busy:
            self.result.hide()
            self.progress.setValue(0)
            self.progress.show()

    def show_progress(self, event: Any) -> None:
        """A tasks.Progress: step, fraction (None = unknown) and message."""
        if event.fraction is None:
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(event.fraction * 1000))
        if event.step or event.message:
            self.step.setText(event.step if not event.message else f"{event.step}: {event.message}" if event.step else event.message)

    def append_log(self, line: str) -> None:
        self.log.appendPlainText(line.rstrip("\n"))
        self.log.moveCursor(QTextCursor.MoveOperation.End)

    def show_failure(self, text: str) -> None:
        self.set_busy(False)
        self.progress.setRange(0, 1000)
        self.step.setText(text)
        self.step.setObjectName("fieldError")
        self._repolish(self.step)

    def show_result(self, text: str) -> None:
        self.set_busy(False)
        self.progress.setRange(0, 1000)
        self.progress.setValue(1000)
        self.step.setObjectName("deployStep")
        self._repolish(self.step)
        self.result.setText(text)
        self.result.show()

    @staticmethod
    def _repolish(widget: QWidget) -> None:
        widget.style().unpolish(widget)
        widget.style().polish(widget)

"""Settings: the connection (sandbox or AWS, credentials, region, deployment) and the deploy section."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QTabWidget, QVBoxLayout, QWidget

from .connection_panel import ConnectionPanel
from .context import AppContext
from .deploy_panel import DeployPanel
from .tasks import Task

TABS = ("connection", "deploy")


class SettingsDialog(QDialog):
    """Apply saves on a worker and then asks the window to reconnect (`applied`)."""

    applied = Signal()

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.setObjectName("settingsDialog")
        self.setWindowTitle("Settings")
        self.setMinimumSize(640, 600)
        self.connection = ConnectionPanel(context)
        self.deploy = DeployPanel()
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(_padded(self.connection), "Connection")
        self.tabs.addTab(_padded(self.deploy), "Deploy")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Apply | QDialogButtonBox.StandardButton.Close)
        self.apply_button = self.buttons.button(QDialogButtonBox.StandardButton.Apply)
        self.apply_button.setObjectName("primary")
        self.apply_button.setText("Apply and connect")
        self.apply_button.clicked.connect(self.apply)
        self.buttons.rejected.connect(self.reject)
        self.status = QLabel()
        self.status.setObjectName("hint")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 16, 16, 16)
        layout.setSpacing(12)
        title = QLabel("Settings")
        title.setObjectName("settingsTitle")
        layout.addWidget(title)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)
        self.connection.region.currentTextChanged.connect(self.deploy.set_region)
        self.deploy.set_region(self.connection.region.currentText())

    def show_tab(self, tab: str | None) -> None:
        if tab == "account":
            tab = "connection"
            self.connection.aws_radio.setChecked(True)
        if tab in TABS:
            self.tabs.setCurrentIndex(TABS.index(tab))

    def apply(self) -> None:
        self.apply_button.setEnabled(False)
        self.status.setText("Saving…")
        Task(self, self.connection.apply_op(), success=self._applied, failure=self._failed).run()

    def _applied(self, mode: str) -> None:
        self.apply_button.setEnabled(True)
        self.connection.applied()
        self.status.setText("Saved. Connecting…")
        self.applied.emit()

    def _failed(self, error: BaseException) -> None:
        self.apply_button.setEnabled(True)
        self.status.setText(f"Not saved: {error}")


def _padded(widget: QWidget) -> QWidget:
    page = QWidget()
    layout = QVBoxLayout(page)
    layout.setContentsMargins(16, 16, 16, 12)
    layout.addWidget(widget)
    return page

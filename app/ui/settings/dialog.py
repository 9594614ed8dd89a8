"""Settings: the connection (sandbox or AWS, credentials, region, deployment) and the deploy section."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.ui.settings.connection_panel import ConnectionPanel
from app.ui.settings.deploy_panel import DeployPanel
from app.ui.shell.context import AWS, AppContext
from app.ui.shell.tasks import Task

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
        self.adopt_button = self.buttons.addButton(
            "Connect to an existing deployment…", QDialogButtonBox.ButtonRole.ActionRole
        )
        self.adopt_button.setObjectName("adoptDeployment")
        self.adopt_button.clicked.connect(self.adopt)
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
        self.deploy.connect_settings(context, self.connection)
        self.deploy.target_ready.connect(self._deployed)
        self.deploy.torn_down.connect(self._torn_down)

    def show_tab(self, tab: str | None) -> None:
        if tab == "account":
            tab = "connection"
            self.connection.aws_radio.setChecked(True)
        if tab in TABS:
            self.tabs.setCurrentIndex(TABS.index(tab))

    def show_status(self, text: str) -> None:
        self.status.setText(text)

    def apply(self) -> None:
        self.apply_button.setEnabled(False)
        self.status.setText("Saving…")
        Task(self, self.connection.apply_op(), success=self._applied, failure=self._failed).run()

    def _applied(self, mode: str) -> None:
        self.apply_button.setEnabled(True)
        self.connection.applied()
        self.status.setText("Saved. Connecting…")
        self.applied.emit()

    def _deployed(self, target) -> None:
        """The deployer made `target` active: select it on the Connection page and reconnect."""
        deployments = self.connection.deployment
        if deployments.findText(target.name) < 0:
            self.connection.add_deployment(target.name, target.deployment, target.app)
        deployments.setCurrentText(target.name)
        self.status.setText(f"Deployed; connecting to {target.name}…")
        self.applied.emit()

    def _torn_down(self, deployment: str) -> None:
        deployments = self.connection.deployment
        index = deployments.findData(deployment)
        if index >= 0:
            deployments.removeItem(index)
        self.applied.emit()

    def adopt(self) -> None:
        """Connect to an existing deployment: ours, or one made with the AWS guidance (adopt_dialog.py)."""
        from app.ui.settings.adopt_dialog import adopt_dialog

        if self.connection.mode != AWS:
            self.status.setText("Connecting to an existing deployment needs “My AWS account”: choose it first.")
            return
        dialog = adopt_dialog(self.context, self.connection.choice(), self)
        dialog.adopted.connect(self._adopted)
        dialog.open()

    def _adopted(self, name: str) -> None:
        self.connection.load()
        self.status.setText(f"Connecting to {name}…")
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

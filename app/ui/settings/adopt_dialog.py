"""Settings → Connect to an existing deployment: what the region holds, its check, adopting it, the upgrade note."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.services.cloud import ConnectionChoice, adoption, open_choice, remember_choice
from app.ui.shell.context import AWS, AppContext
from app.ui.shell.tasks import Task

INTRO = (
    "Diffusion Desk lists its own deployments and every stack made with the AWS guidance "
    "(SSM parameters under /simple-gen-ai-service/) in {region}. Choose one to check it; the check only "
    "reads. Using it changes nothing in the stack."
)


class AdoptDialog(QDialog):
    """Lists candidates, checks the chosen one on a worker, adopts it; `adopted(name)` once it is the active target."""

    adopted = Signal(str)

    def __init__(
        self, context: AppContext, connect: Callable[[], Any], region: str, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.context = context
        self._connect = connect  # runs on a worker: returns an app.services.cloud.aws.Connection
        self._connection: Any = None
        self._checked: adoption.CheckResult | None = None
        self.setObjectName("adoptDialog")
        self.setWindowTitle("Connect to an existing deployment")
        self.setMinimumSize(560, 460)
        intro = QLabel(INTRO.format(region=region))
        intro.setObjectName("hint")
        intro.setWordWrap(True)
        self.candidates = QListWidget()
        self.candidates.setObjectName("candidates")
        self.result = QLabel("Looking for deployments…")
        self.result.setObjectName("hint")
        self.result.setWordWrap(True)
        self.result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.refresh_button = QPushButton("Look again")
        self.refresh_button.setObjectName("lookAgain")
        self.upgrade_button = QPushButton("Upgrade…")
        self.upgrade_button.setObjectName("upgrade")
        self.upgrade_button.setToolTip(
            "Explains what an upgrade would replace; nothing changes without your confirmation."
        )
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.use_button = self.buttons.addButton("Use this deployment", QDialogButtonBox.ButtonRole.AcceptRole)
        self.use_button.setObjectName("primary")
        for button in (self.use_button, self.upgrade_button):
            button.setEnabled(False)
        row = QHBoxLayout()
        row.addWidget(self.refresh_button)
        row.addStretch(1)
        row.addWidget(self.upgrade_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 16, 16, 16)
        layout.setSpacing(10)
        layout.addWidget(intro)
        layout.addWidget(self.candidates, 1)
        layout.addWidget(self.result)
        layout.addLayout(row)
        layout.addWidget(self.buttons)
        self.candidates.currentItemChanged.connect(lambda item, _: item is not None and self.check(item))
        self.refresh_button.clicked.connect(self.look)
        self.upgrade_button.clicked.connect(self.explain_upgrade)
        self.use_button.clicked.connect(self.use)
        self.buttons.rejected.connect(self.reject)

    def look(self) -> None:
        """List the region's candidates (on a worker)."""

        def find() -> list[adoption.Candidate]:
            self._connection = self._connection or self._connect()
            return adoption.find_candidates(self._connection)

        self.refresh_button.setEnabled(False)
        self._show("Looking for deployments…", "hint")
        Task(self, find, success=self._found, failure=self._failed).run()

    def _found(self, candidates: list[adoption.Candidate]) -> None:
        self.refresh_button.setEnabled(True)
        self.candidates.clear()
        for candidate in candidates:
            item = QListWidgetItem(candidate.label)
            item.setData(Qt.ItemDataRole.UserRole, candidate)
            self.candidates.addItem(item)
        self._show(
            f"{len(candidates)} found. Choose one to check it."
            if candidates
            else "No deployment was found in this region.",
            "hint",
        )

    def check(self, item: QListWidgetItem) -> None:
        candidate = item.data(Qt.ItemDataRole.UserRole)
        self._checked = None
        self.use_button.setEnabled(False)
        self.upgrade_button.setEnabled(False)
        self._show(f"Checking {candidate.deployment.name}…", "hint")
        connection = self._connection
        Task(
            self,
            lambda: adoption.check_candidate(connection, candidate),
            success=lambda result: self._checked_ok(item, result),
            failure=self._failed,
        ).run()

    def _checked_ok(self, item: QListWidgetItem, result: adoption.CheckResult) -> None:
        if self.candidates.currentItem() is not item:
            return  # the user moved on; that check is running
        self._checked = result
        self.use_button.setEnabled(True)
        self.upgrade_button.setEnabled(result.candidate.guidance)
        self._show(result.describe(), "connectionOk" if not result.warnings else "hint")

    def use(self) -> None:
        """Make the checked deployment the active target (settings only) and say so."""
        result, context, source = self._checked, self.context, self._connection.source
        if result is None:
            return

        def save() -> str:
            context.update_settings(
                lambda settings: remember_choice(settings, source, result.target.region, result.target, mode=AWS)
            )
            return result.target.name

        self.use_button.setEnabled(False)
        Task(self, save, success=self._used, failure=self._failed).run()

    def _used(self, name: str) -> None:
        self._show(f"✓ {name} is now the deployment jobs go to.", "connectionOk")
        self.adopted.emit(name)
        self.accept()

    def explain_upgrade(self) -> None:
        """What an upgrade would replace; the deployer cannot upgrade a guidance stack yet, so nothing runs."""
        if self._checked is None:
            return
        plan = adoption.upgrade_plan(self._checked.target)
        box = QMessageBox(
            QMessageBox.Icon.Information,
            "Upgrade this deployment",
            plan.describe(),
            QMessageBox.StandardButton.Close,
            self,
        )
        box.setObjectName("upgradePlan")
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    def _failed(self, error: BaseException) -> None:
        self.refresh_button.setEnabled(True)
        self._show(f"✗ {error}", "fieldError")

    def _show(self, text: str, kind: str) -> None:
        self.result.setText(text)
        self.result.setObjectName(kind)
        self.result.style().unpolish(self.result)
        self.result.style().polish(self.result)

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if self.candidates.count() == 0 and self.refresh_button.isEnabled():
            self.look()


def adopt_dialog(context: AppContext, choice: ConnectionChoice, parent: QWidget | None = None) -> AdoptDialog:
    """The dialog on the credentials and region the Connection page shows (`choice`); deleted when closed."""
    dialog = AdoptDialog(
        context, lambda: open_choice(choice, context.open_connection), choice.region or "the default region", parent
    )
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    return dialog

"""What the app shows instead of its window when it must not start as it is: a damaged library, unreadable settings.

The screen says what is wrong and offers the repair: rebuild the library from its images (the damaged index
is kept aside first), or start from the default settings (the unreadable file is kept aside). It never
writes over what it found; the repair runs on the library lane and the app then opens as usual.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import QSize, Qt, QUrl, Signal
from PySide6.QtGui import QCloseEvent, QDesktopServices
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.services.errors import LibraryDamaged, UserError
from app.services.library import Rebuilt, rebuild_library, target_for
from app.services.settings import AppDirs, SettingsUnreadable, set_aside
from app.ui.shell.icons import app_icon
from app.ui.shell.tasks import Lane, Task

log = logging.getLogger(__name__)


class StartupProblem(QWidget):
    """One problem, what it means, and the buttons to repair it, show its folder, or quit.

    `repaired` carries the sentence to show once the app is open (what the repair did).
    """

    repaired = Signal(str)
    quit_requested = Signal()

    def __init__(self, problem: UserError, dirs: AppDirs, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.problem, self.dirs = problem, dirs
        self.setObjectName("startupProblem")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.setWindowTitle("Diffusion Desk")
        self.setWindowIcon(app_icon())
        self.setMinimumSize(620, 360)
        self._leaving = False
        heading, repair_label, self._repair, folder = self._choices(problem)
        logo = QLabel()
        logo.setPixmap(app_icon().pixmap(QSize(56, 56)))
        title = QLabel(heading)
        title.setObjectName("welcomeTitle")
        self.text = QLabel(_explained(problem))
        self.text.setObjectName("problemText")
        self.text.setWordWrap(True)
        self.text.setTextFormat(Qt.TextFormat.PlainText)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status = QLabel("")
        self.status.setObjectName("hint")
        self.status.setWordWrap(True)
        self.repair_button = QPushButton(repair_label)
        self.repair_button.setObjectName("primary")
        self.repair_button.clicked.connect(self.repair)
        self.folder_button = QPushButton("Show the folder")
        self.folder_button.clicked.connect(lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder))))
        self.quit_button = QPushButton("Quit")
        self.quit_button.clicked.connect(self.quit_requested)
        buttons = QHBoxLayout()
        buttons.addWidget(self.quit_button)
        buttons.addStretch(1)
        buttons.addWidget(self.folder_button)
        buttons.addWidget(self.repair_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(32, 28, 32, 24)
        layout.setSpacing(12)
        layout.addWidget(logo, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(title)
        layout.addWidget(self.text)
        layout.addWidget(self.status)
        layout.addStretch(1)
        layout.addLayout(buttons)

    def _choices(self, problem: UserError) -> tuple[str, str, Callable[[], str], object]:
        if isinstance(problem, LibraryDamaged):
            return "Your library needs repair", "Rebuild the library", self._rebuild, self.dirs.data_dir
        path = problem.path if isinstance(problem, SettingsUnreadable) else self.dirs.settings_file
        return "Your settings could not be read", "Start with the default settings", self._set_aside, path.parent

    def repair(self) -> None:
        for button in (self.repair_button, self.folder_button, self.quit_button):
            button.setEnabled(False)
        self.status.setText("Repairing…")
        Task(self, self._repair, success=self._done, failure=self._failed, lane=Lane.LIBRARY).run()

    def _rebuild(self) -> str:
        result: Rebuilt = rebuild_library(self.dirs.data_dir, target=target_for(self.dirs))
        return result.message

    def _set_aside(self) -> str:
        kept = set_aside(self.dirs.settings_file)
        return f"Started from the default settings; the unreadable file was kept as {kept.name}."

    def _done(self, message: str) -> None:
        log.info("start-up repaired: %s", message)
        self.status.setText(message + " Opening…")
        self.repaired.emit(message)

    def _failed(self, error: BaseException) -> None:
        log.error("the repair failed", exc_info=error)
        self.status.setText(f"The repair did not work: {error}")
        self.quit_button.setEnabled(True)
        self.folder_button.setEnabled(True)

    def leave(self) -> None:
        """Close without asking the app to quit (the window has opened)."""
        self._leaving = True
        self.close()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt's name)
        if not self._leaving:
            self.quit_requested.emit()
        super().closeEvent(event)


def _explained(problem: UserError) -> str:
    """The problem in the window's words (the CLI's message names a command; here a button does it)."""
    if isinstance(problem, LibraryDamaged):
        return (
            f"The index of your library, {problem.path}, is damaged: {problem.reason}.\n\n"
            f"Your images are untouched in {problem.path.parent}. Rebuild the library to index them again from "
            "the generation parameters each image carries; the damaged file is kept beside it first, and jobs "
            "your deployment's bucket still holds come back once the app is connected. Favourites are not kept "
            "in the images."
        )
    if isinstance(problem, SettingsUnreadable) and problem.fields:
        lines = "\n".join(f"  •  {line}" for line in problem.fields)
        return (
            f"The settings file {problem.path} has values of the wrong type:\n\n{lines}\n\n"
            "Fix them in the file and start again, or start with the default settings: the file is kept beside "
            "them, renamed."
        )
    return f"{problem}\n\nStart with the default settings to keep the file beside them, renamed."


def is_startup_problem(error: BaseException) -> bool:
    """Whether the start-up screen has a repair for `error`."""
    return isinstance(error, (LibraryDamaged, SettingsUnreadable))

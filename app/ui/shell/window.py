"""The main window: composer | gallery | job queue, a welcome page, menus and the status bar."""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QByteArray, QSettings, Qt, QUrl
from PySide6.QtGui import QAction, QCloseEvent, QDesktopServices, QKeySequence
from PySide6.QtWidgets import (
    QFrame,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.ui.compose.composer import Composer
from app.ui.jobs.queue import JobQueue
from app.ui.shell.context import AppContext, TargetInfo
from app.ui.shell.icons import app_icon, icon
from app.ui.shell.status import StatusBar
from app.ui.shell.tasks import Lane, Task, manager
from app.ui.shell.welcome import Welcome

log = logging.getLogger(__name__)

UI_STATE_FILE = "window.ini"  # geometry and splitter positions (QSettings, INI)


class MainWindow(QMainWindow):
    """Hosts the panels; it wires their signals and keeps its geometry between runs."""

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.setObjectName("mainWindow")
        self.setWindowTitle("Diffusion Desk")
        self.setWindowIcon(app_icon())
        self.ui_state = QSettings(str(context.dirs.config_dir / UI_STATE_FILE), QSettings.Format.IniFormat)

        self.composer = Composer(context)
        self.gallery = self._make_gallery()
        self.queue = JobQueue(context)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("workspace")
        self.splitter.setChildrenCollapsible(False)
        for widget, stretch in ((self.composer, 0), (self.gallery, 1), (self.queue, 0)):
            self.splitter.addWidget(widget)
            self.splitter.setStretchFactor(self.splitter.indexOf(widget), stretch)
        self.splitter.setSizes([360, 820, 340])
        workspace = QWidget()
        layout = QVBoxLayout(workspace)
        layout.setContentsMargins(8, 8, 8, 4)
        layout.addWidget(self.splitter)

        self.welcome = Welcome()
        self.pages = QStackedWidget()
        self.pages.addWidget(workspace)
        self.pages.addWidget(self.welcome)
        self.setCentralWidget(self.pages)

        self.status = StatusBar(self)
        self.setStatusBar(self.status)
        self.settings_dialog: Any = None
        self._make_menus()
        self._wire()
        self._restore_state()
        if context.first_run:
            self.pages.setCurrentWidget(self.welcome)

    def _make_gallery(self) -> QWidget:
        """The middle slot: the gallery grid and, on open, the viewer (the gallery engineer's widgets)."""
        self.gallery_widget: Any = None
        self.sweep_sheets: Any = None
        self.viewer: Any = None
        slot = QStackedWidget()
        slot.setObjectName("gallerySlot")
        try:
            from app.ui.gallery.gallery import Gallery
            from app.ui.gallery.sheet_view import SweepSheets
            from app.ui.viewer.viewer import Viewer

            self.gallery_widget = Gallery(self.context.library, slot)
            self.viewer = Viewer(self.gallery_widget.model, slot, context=self.context)
            self.sweep_sheets = SweepSheets(self.context, self.gallery_widget)
        except Exception:  # another engineer's module; the window must start without it
            log.exception("The gallery could not be built")
            placeholder = QLabel("The gallery is not available.")
            placeholder.setObjectName("galleryPlaceholder")
            placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
            slot.addWidget(placeholder)
            return _framed(slot)
        slot.addWidget(self.gallery_widget)
        slot.addWidget(self.viewer)
        gallery, viewer, events = self.gallery_widget, self.viewer, self.context.events
        gallery.connect_events(events, own_viewer=False)
        gallery.openRequested.connect(self.show_in_viewer)
        gallery.recordOpenRequested.connect(self.show_record)
        viewer.closeRequested.connect(self.show_grid)
        viewer.restoreRequested.connect(events.restore_requested)
        for source in (gallery, viewer):
            source.message.connect(lambda text: self.statusBar().showMessage(text, 5000))
        self.gallery_slot = slot
        return _framed(slot)

    def show_in_viewer(self, row: int) -> None:
        self.viewer.show_row(row)
        self.gallery_slot.setCurrentWidget(self.viewer)
        self.viewer.setFocus(Qt.FocusReason.OtherFocusReason)

    def show_grid(self) -> None:
        if self.gallery_widget is None:
            return
        self.gallery_slot.setCurrentWidget(self.gallery_widget)
        self.gallery_widget.view.setFocus(Qt.FocusReason.OtherFocusReason)

    def show_record(self, record: Any) -> None:
        """Show an image found elsewhere (the job queue's Open) in the viewer."""
        self.viewer.show_record(record)
        self.gallery_slot.setCurrentWidget(self.viewer)

    def _make_menus(self) -> None:
        bar = self.menuBar()
        file = bar.addMenu("&File")
        self.import_action = self._action(file, "Import PNG…", "Ctrl+I", self.composer.choose_png, "import")
        file.addSeparator()
        self.settings_action = self._action(
            file, "Settings…", QKeySequence.StandardKey.Preferences, self.show_settings, "settings"
        )
        if self.settings_action.shortcut().isEmpty():
            self.settings_action.setShortcut("Ctrl+,")
        file.addSeparator()
        self._action(file, "Quit", QKeySequence.StandardKey.Quit, self.close)

        generate = bar.addMenu("&Generate")
        generate.addAction(self.composer.generate_action)
        generate.addAction(self.composer.random_seed_action)
        generate.addAction(self.composer.lock_seed_action)
        generate.addAction(self.composer.history_action)
        generate.addSeparator()
        self._action(generate, "Focus prompt", "Ctrl+L", self.composer.focus_prompt)

        jobs = bar.addMenu("&Jobs")
        for action in self.queue.actions_for_menu():
            jobs.addAction(action)

        view = bar.addMenu("&View")
        self._action(view, "Focus gallery", "Ctrl+2", self.show_grid)
        self._action(view, "Focus job queue", "Ctrl+3", self.queue.focus_list)
        view.addSeparator()
        self._action(view, "Reset layout", None, self.reset_layout)

        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "Show log folder", None, self.show_logs, "folder")
        self._action(help_menu, "About Diffusion Desk", None, self.show_about)

    def _action(self, menu: Any, text: str, shortcut: Any, slot: Any, icon_name: str | None = None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(shortcut)
        if icon_name:
            action.setIcon(icon(icon_name))
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _wire(self) -> None:
        events = self.context.events
        events.target_changed.connect(self.status.show_target)
        events.endpoint_state_changed.connect(self.status.show_endpoint_state)
        events.tracker_status.connect(self.status.show_tracker)
        self.composer.message.connect(lambda text: self.statusBar().showMessage(text, 5000))
        self.queue.message.connect(lambda text: self.statusBar().showMessage(text, 5000))
        self.welcome.sandbox_chosen.connect(self.start_sandbox)
        self.welcome.aws_chosen.connect(self.connect_aws)

    def start(self) -> None:
        """Connect in the background unless the welcome page is waiting for a choice."""
        if not self.context.first_run:
            self.connect_target()

    def connect_target(self) -> None:
        self.status.show_connecting()
        Task(
            self,
            self.context.connect,
            success=self._connected,
            failure=self._connect_failed,
            busy=False,
            lane=Lane.NETWORK,
        ).run()

    def _connected(self, info: TargetInfo) -> None:
        self.context.events.target_changed.emit(info)
        self.setWindowTitle(f"Diffusion Desk — {'Sandbox' if info.sandbox else info.label}")
        self._tell_settings(f"Connected: {info.label}.")

    def _connect_failed(self, error: BaseException) -> None:
        log.info("Not connected: %s", error)
        self.status.show_problem(str(error))
        self.setWindowTitle("Diffusion Desk")
        if not self._tell_settings(f"Not connected: {error}"):
            manager().show_error(self, error)

    def _tell_settings(self, text: str) -> bool:
        """Say it in the open Settings dialog (where the user just pressed Apply); False when it is closed."""
        dialog = self.settings_dialog
        if dialog is None or not dialog.isVisible():
            return False
        dialog.show_status(text)
        return True

    def start_sandbox(self) -> None:
        self.pages.setCurrentIndex(0)
        self.composer.focus_prompt()
        Task(self, lambda: self.context.choose_mode("sandbox"), success=lambda _: self.connect_target()).run()

    def connect_aws(self) -> None:
        self.pages.setCurrentIndex(0)
        self.show_settings(tab="account")

    def show_settings(self, tab: str | None = None) -> None:
        from app.ui.settings.dialog import SettingsDialog

        if self.settings_dialog is None:
            self.settings_dialog = SettingsDialog(self.context, self)
            self.settings_dialog.applied.connect(self.connect_target)
        self.settings_dialog.show_tab(tab if isinstance(tab, str) else None)
        self.settings_dialog.show()
        self.settings_dialog.raise_()
        self.settings_dialog.activateWindow()

    def show_logs(self) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.context.dirs.log_dir)))

    def show_about(self) -> None:
        from app import __version__

        QMessageBox.about(
            self,
            "About Diffusion Desk",
            f"<b>Diffusion Desk {__version__}</b><p>Generate images with Stable Diffusion in your own AWS "
            "account: an asynchronous SageMaker endpoint that scales to zero when idle.</p>"
            "<p>The sandbox runs the same steps on this computer and draws test patterns, not a model's work.</p>",
        )

    def reset_layout(self) -> None:
        self.splitter.setSizes([360, max(400, self.width() - 720), 340])

    def _restore_state(self) -> None:
        geometry = self.ui_state.value("geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            self.resize(1440, 900)
        splitter = self.ui_state.value("splitter")
        if isinstance(splitter, QByteArray) and not splitter.isEmpty():
            self.splitter.restoreState(splitter)

    def save_state(self) -> None:
        self.ui_state.setValue("geometry", self.saveGeometry())
        self.ui_state.setValue("splitter", self.splitter.saveState())
        self.ui_state.sync()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.save_state()
        if self.gallery_widget is not None:
            self.gallery_widget.shutdown()
        super().closeEvent(event)


def _framed(widget: QWidget) -> QFrame:
    frame = QFrame()
    frame.setObjectName("panel")
    frame.setAccessibleName("Gallery")
    layout = QVBoxLayout(frame)
    layout.setContentsMargins(1, 1, 1, 1)
    layout.addWidget(widget)
    return frame

"""The job queue panel: live rows, cancel / retry / open / remove, and one click to resend the jobs the endpoint
will never answer (lost); the session's tracker does the polling."""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QModelIndex, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QImage, QKeySequence, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListView,
    QMenu,
    QMessageBox,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.services.models import Job, JobState
from app.ui.gallery.thumbnails import render_thumbnail
from app.ui.jobs.delegate import JobDelegate, repaint_active
from app.ui.jobs.model import JobModel
from app.ui.jobs.sweeps import SweepRows, is_sweep_row
from app.ui.shell.context import AppContext
from app.ui.shell.icons import icon
from app.ui.shell.tasks import Lane, Task

log = logging.getLogger(__name__)

TICK_MS = 125  # busy-ring animation (8 frames a second); the elapsed clocks repaint with it
FLUSH_MS = 60  # job changes arriving within this time update the list together
LIBRARY_CHANGED_MS = 250  # completed jobs within this time reload the gallery once
LOADED_JOBS = 500
THUMB_DISK_PIXELS = 128  # the smallest disk thumbnail, unscaled: the delegate fills its square with it


class JobList(QListView):
    """The rows, with an empty-state line."""

    def paintEvent(self, event: Any) -> None:
        super().paintEvent(event)
        if self.model() is not None and self.model().rowCount() == 0:
            from PySide6.QtGui import QPainter, QPalette

            painter = QPainter(self.viewport())
            painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(
                self.viewport().rect().adjusted(20, 20, -20, -20),
                int(Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap),
                "No jobs yet.\nWrite a prompt and press Generate.",
            )

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self.scheduleDelayedItemsLayout()


class JobQueue(QFrame):
    """The jobs of this library, newest first; the session's tracker moves them, this panel shows them."""

    message = Signal(str)

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.setObjectName("panel")
        self.setAccessibleName("Job queue")
        self.setMinimumWidth(280)
        self.model = JobModel(self)
        self.sweeps = SweepRows()
        self.view = self._make_view()
        self._make_actions()
        self._make_layout()
        self._make_timers()
        self._wire()
        self._update_actions()
        self.load()

    def _make_view(self) -> JobList:
        view = JobList()
        view.setObjectName("jobList")
        view.setModel(self.model)
        self.delegate = JobDelegate(view)
        view.setItemDelegate(self.delegate)
        view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        view.setResizeMode(QListView.ResizeMode.Adjust)
        view.setUniformItemSizes(False)
        view.setMouseTracking(True)
        view.setFrameShape(QFrame.Shape.NoFrame)
        view.viewport().setAttribute(Qt.WidgetAttribute.WA_Hover)
        view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        return view

    def _make_actions(self) -> None:
        self.cancel_action = self._action("Cancel job", "cancel", QKeySequence(Qt.Key.Key_Escape), self.cancel_selected)
        self.retry_action = self._action("Retry job", "retry", QKeySequence("R"), self.retry_selected)
        self.open_action = self._action("Open image", "open", QKeySequence(Qt.Key.Key_Return), self.open_selected)
        self.remove_action = self._action(
            "Remove job", "remove", QKeySequence(QKeySequence.StandardKey.Delete), self.remove_selected
        )

    def _make_layout(self) -> None:
        """The title, the running count and the four buttons above the list."""
        self.count = QLabel()
        self.count.setObjectName("hint")
        title = QLabel("Jobs")
        title.setObjectName("panelTitle")
        head = QHBoxLayout()
        head.setSpacing(4)
        head.addWidget(title)
        head.addWidget(self.count)
        head.addStretch(1)
        self.buttons: dict[str, QToolButton] = {}
        for name, action in (
            ("cancel", self.cancel_action),
            ("retry", self.retry_action),
            ("open", self.open_action),
            ("remove", self.remove_action),
        ):
            button = QToolButton()
            button.setObjectName(f"{name}Job")
            button.setDefaultAction(action)
            button.setIconSize(QSize(18, 18))
            button.setAutoRaise(True)
            self.buttons[name] = button
            head.addWidget(button)
        self.resend_lost = QPushButton()
        self.resend_lost.setObjectName("resendLost")
        self.resend_lost.setIcon(icon("retry"))
        self.resend_lost.setToolTip(
            "The endpoint will never answer these jobs (see each one's message): send them again as new jobs, "
            "with the same parameters and seed."
        )
        self.resend_lost.clicked.connect(lambda _=False: self.resend_lost_jobs())
        self.resend_lost.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 12, 10, 10)
        layout.setSpacing(8)
        layout.addLayout(head)
        layout.addWidget(self.resend_lost)
        layout.addWidget(self.view, 1)

    def _make_timers(self) -> None:
        """The busy rings' animation, and the coalescing of job changes and library reloads."""
        self._tick = QTimer(self)
        self._tick.setInterval(TICK_MS)
        self._tick.timeout.connect(self._animate)
        self._library_changed = QTimer(self)
        self._library_changed.setSingleShot(True)
        self._library_changed.setInterval(LIBRARY_CHANGED_MS)
        self._library_changed.timeout.connect(self.context.events.library_changed)
        self._pending: dict[str, Job] = {}
        self._held: dict[str, Job] = {}  # sweep cells waiting for their sweep to be read
        self._flush_timer = QTimer(self)
        self._flush_timer.setSingleShot(True)
        self._flush_timer.setInterval(FLUSH_MS)
        self._flush_timer.timeout.connect(self._flush)

    def _wire(self) -> None:
        self.view.customContextMenuRequested.connect(self._context_menu)
        self.view.doubleClicked.connect(lambda _index: self.open_selected())
        self.view.selectionModel().selectionChanged.connect(lambda *_: self._update_actions())
        self.model.rowsInserted.connect(lambda *_: self._update_actions())
        self.model.dataChanged.connect(lambda *_: self._update_actions())
        self.model.dataChanged.connect(lambda *_: self.view.scheduleDelayedItemsLayout())  # messages change heights
        self.model.modelReset.connect(self._update_actions)
        self.context.events.jobs_changed.connect(self.show_jobs)
        self.context.events.sweep_submitted.connect(self._sweep_added)

    def _action(self, text: str, icon_name: str, key: QKeySequence, slot: Any) -> QAction:
        action = QAction(icon(icon_name), text, self)
        action.setShortcut(key)
        action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        action.setToolTip(f"{text} ({key.toString(QKeySequence.SequenceFormat.NativeText)})")
        action.triggered.connect(lambda _=False: slot())
        self.addAction(action)
        return action

    def actions_for_menu(self) -> list[QAction]:
        return [self.cancel_action, self.retry_action, self.open_action, self.remove_action]

    def focus_list(self) -> None:
        self.view.setFocus(Qt.FocusReason.ShortcutFocusReason)
        if not self.view.currentIndex().isValid() and self.model.rowCount():
            self.view.setCurrentIndex(self.model.index(0))

    def load(self) -> None:
        library = self.context.library

        def read() -> tuple[list[Job], list[tuple[Any, list[Job]]]]:
            sweeps = [(sweep, library.jobs_by_id(list(sweep.cells.values()))) for sweep in library.sweeps(limit=50)]
            return library.jobs(limit=LOADED_JOBS), sweeps

        Task(self, read, success=self._loaded, busy=False).run()

    def _loaded(self, loaded: tuple[list[Job], list[tuple[Any, list[Job]]]]) -> None:
        jobs, sweeps = loaded
        for sweep, members in sweeps:
            self.sweeps.add(sweep, members)
        since = self.sweeps.fold(self.model.jobs())  # rows changes brought while the library was read: newer
        jobs = self.sweeps.fold(jobs)
        self.model.set_jobs(jobs)
        self.model.update(since)
        self._after_change(jobs)

    def _sweep_added(self, sweep: Any) -> None:
        """A sweep was sent: rows its cells got meanwhile (their changes came first) become its one row."""
        cells = set(sweep.cells.values())
        members = [job for job in self.model.jobs() if job.inference_id in cells]
        members += [job for job in self._pending.values() if job.inference_id in cells]
        members += [self._held.pop(i) for i in list(self._held) if i in cells]
        self.sweeps.add(sweep, members)
        for job in members:
            self.model.remove(job.inference_id)
            self._pending.pop(job.inference_id, None)
        if members:
            self.model.update(self.sweeps.fold(members))
            self._after_change(members)

    def show_jobs(self, jobs: list[Job]) -> None:
        """Jobs changed anywhere (submitted, tracked, cancelled): their rows update at the next flush.

        A burst (100 submissions make 300 changes) becomes a few model updates and repaints.
        """
        for job in jobs:
            self._pending[job.inference_id] = job
        if not self._flush_timer.isActive():
            self._flush_timer.start()

    def _flush(self) -> None:
        jobs, self._pending = list(self._pending.values()), {}
        if not jobs:
            return
        completed = any(j.state == JobState.COMPLETED for j in jobs)
        unseen = [j.inference_id for j in jobs if self.model.row_of(j.inference_id) < 0 and not self.sweeps.knows(j)]
        # A sweep's cell whose sweep is not read yet waits for it, rather than flash as a row of its own.
        held = {j.inference_id: j for j in jobs if "Sweep cell" in j.extra and j.inference_id in unseen}
        self._held.update(held)
        jobs = self.sweeps.fold([j for j in jobs if j.inference_id not in held])
        self.model.update(jobs)
        self._after_change(jobs)
        if completed:
            self._library_changed.start()
        if unseen:
            self._find_sweeps(unseen)

    def _find_sweeps(self, inference_ids: list[str]) -> None:
        """New rows may be cells of a sweep sent elsewhere (the CLI, another window): fold them into its row."""
        library = self.context.library

        def read() -> list[Any]:
            found: dict[str, Any] = {}
            for inference_id in inference_ids:
                hit = library.sweep_of_job(inference_id)
                if hit is not None and hit[0] not in found:
                    found[hit[0]] = library.get_sweep(hit[0])
            return [sweep for sweep in found.values() if sweep is not None]

        Task(self, read, success=lambda sweeps: self._sweeps_found(sweeps, inference_ids), busy=False).run()

    def _sweeps_found(self, sweeps: list[Any], inference_ids: list[str]) -> None:
        for sweep in sweeps:
            self._sweep_added(sweep)
        alone = [job for job in (self._held.pop(i, None) for i in inference_ids) if job is not None]
        if alone:  # cells of no sweep the library knows: shown as they are
            self.model.update(alone)
            self._after_change(alone)

    def _after_change(self, jobs: list[Job]) -> None:
        for job in jobs:
            if job.state == JobState.COMPLETED and job.image_paths and not self.model.has_thumbnail(job.inference_id):
                self._load_thumbnail(job)
        active = bool(self.model.active_rows())
        if active and not self._tick.isActive():
            self._tick.start()
        elif not active:
            self._tick.stop()
        self._update_count()

    def _load_thumbnail(self, job: Job) -> None:
        """The job's first image, as the gallery renders thumbnails; the delegate fills its square with it."""
        thumbnail_path, path, inference_id = self.context.library.thumbnail_path, job.image_paths[0], job.inference_id

        def show(image: QImage) -> None:
            pixmap = QPixmap.fromImage(image)
            pixmap.setDevicePixelRatio(2)
            self.model.set_thumbnail(inference_id, pixmap)

        Task(
            self,
            lambda: render_thumbnail(thumbnail_path, path, THUMB_DISK_PIXELS),
            success=show,
            failure=lambda e: log.info("No thumbnail for %s: %s", inference_id, e),
            busy=False,
        ).run()

    def _update_count(self) -> None:
        running = len(self.model.active_rows())
        self.count.setText(
            f"· {running} running" if running else (f"· {self.model.rowCount()}" if self.model.rowCount() else "")
        )

    def _animate(self) -> None:
        self.delegate.phase = (self.delegate.phase + 36) % 360
        repaint_active(self.view, self.model.active_rows())

    def selected_rows(self) -> list[Job]:
        """The selected rows' jobs, a sweep's row as the Job standing for it."""
        rows = sorted({index.row() for index in self.view.selectionModel().selectedIndexes()})
        if not rows and self.view.currentIndex().isValid():
            rows = [self.view.currentIndex().row()]
        return [job for row in rows if (job := self.model.job(row)) is not None]

    def selected_jobs(self) -> list[Job]:
        """The selected jobs, a sweep's row as its cells' jobs."""
        out: list[Job] = []
        for job in self.selected_rows():
            out += self.sweeps.members(job.inference_id) if is_sweep_row(job) else [job]
        return out

    def select_job(self, inference_id: str) -> None:
        row = self.model.row_of(inference_id)
        if row >= 0:
            self.view.setCurrentIndex(self.model.index(row))

    def _update_actions(self) -> None:
        jobs, rows = self.selected_jobs(), self.selected_rows()
        self.cancel_action.setEnabled(any(not j.state.finished for j in jobs))
        self.retry_action.setEnabled(any(j.state.finished for j in rows if not is_sweep_row(j)))
        self.open_action.setEnabled(any(j.state == JobState.COMPLETED and j.image_paths for j in jobs))
        self.remove_action.setEnabled(any(j.state.finished for j in jobs))
        lost = self.lost_jobs()
        self.resend_lost.setText(f"Resend {len(lost)} lost job{'s' if len(lost) != 1 else ''}")
        self.resend_lost.setVisible(bool(lost))

    def lost_jobs(self) -> list[Job]:
        """The rows the endpoint will never answer that were not sent again yet (no row is their retry)."""
        jobs = self.model.jobs()
        retried = {job.retry_of for job in jobs if job.retry_of}
        return [job for job in jobs if job.state == JobState.LOST and job.inference_id not in retried]

    def resend_lost_jobs(self) -> None:
        service, ids = self.context.jobs, [job.inference_id for job in reversed(self.lost_jobs())]
        if not ids or service is None:
            return
        self.resend_lost.setEnabled(False)

        def resent(jobs: list[Job]) -> None:
            self.resend_lost.setEnabled(True)
            self._retried(jobs)
            self.message.emit(f"Sent {len(jobs)} lost job{'s' if len(jobs) != 1 else ''} again.")

        def failed(error: BaseException) -> None:
            self.resend_lost.setEnabled(True)
            self.message.emit(f"Not sent again: {error}")

        Task(self, lambda: service.resend(ids), success=resent, failure=failed, lane=Lane.NETWORK).run()

    def cancel_selected(self) -> None:
        service = self.context.jobs
        ids = [j.inference_id for j in self.selected_jobs() if not j.state.finished]
        if not ids or service is None:
            return
        Task(self, lambda: [service.cancel(i) for i in ids], success=self._cancelled).run()

    def _cancelled(self, jobs: list[Job]) -> None:
        self.context.events.jobs_changed.emit(jobs)
        self.message.emit("Cancelled. The endpoint may still finish it; its images will not be downloaded.")

    def retry_selected(self) -> None:
        """Send the selected finished jobs again, each to the deployment that made it (`Session.jobs_for`)."""
        session = self.context.session
        jobs = [(j.inference_id, j.target) for j in self.selected_rows() if j.state.finished and not is_sweep_row(j)]
        if not jobs or self.context.jobs is None:
            return
        Task(
            self,
            lambda: [session.jobs_for(target).retry(inference_id) for inference_id, target in jobs],
            success=self._retried,
            lane=Lane.NETWORK,
        ).run()

    def _retried(self, jobs: list[Job]) -> None:
        self.context.events.jobs_changed.emit(jobs)
        if jobs:
            self.select_job(jobs[0].inference_id)

    def open_selected(self) -> None:
        for job in self.selected_rows():
            if is_sweep_row(job):
                self.context.events.open_sweep_requested.emit(job.inference_id)
                return
        for job in self.selected_jobs():
            if job.state == JobState.COMPLETED and job.image_paths:
                self.open_job(job)
                return

    def open_job(self, job: Job) -> None:
        """Ask for the job's first image in the viewer."""
        self.context.events.open_image_requested.emit(job.image_paths[0])

    def remove_selected(self) -> None:
        jobs = [j for j in self.selected_jobs() if j.state.finished]
        if not jobs:
            return
        images = sum(len(j.image_paths) for j in jobs)
        if images:
            answer = QMessageBox.question(
                self,
                "Remove jobs",
                f"Remove {len(jobs)} job{'s' if len(jobs) > 1 else ''} and delete {images} image"
                f"{'s' if images > 1 else ''} from the library and the disk?",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
                QMessageBox.StandardButton.Cancel,
            )
            if answer != QMessageBox.StandardButton.Yes:
                return
        library, ids = self.context.library, [j.inference_id for j in jobs]
        finished_sweeps = [row.inference_id for row in self.selected_rows() if is_sweep_row(row) and row.state.finished]

        def remove() -> list[str]:
            for inference_id in ids:
                library.remove_job(inference_id)
            for sweep_id in finished_sweeps:
                library.remove_sweep(sweep_id)
            return ids + finished_sweeps

        def removed(done: list[str]) -> None:
            for inference_id in done:
                self.model.remove(inference_id)
            self._update_count()
            if images:
                self.context.events.library_changed.emit()

        Task(self, remove, success=removed, lane=Lane.LIBRARY).run()

    def _context_menu(self, pos: Any) -> None:
        index: QModelIndex = self.view.indexAt(pos)
        if not index.isValid():
            return
        if not self.view.selectionModel().isSelected(index):
            self.view.setCurrentIndex(index)
        menu = QMenu(self)
        for action in self.actions_for_menu():
            menu.addAction(action)
        menu.addSeparator()
        job = self.model.job(index.row())
        if job is not None and is_sweep_row(job):
            sweep_id = job.inference_id
            menu.addAction(
                icon("image"), "Show the contact sheet", lambda: self.context.events.open_sweep_requested.emit(sweep_id)
            )
        elif job is not None:
            menu.addAction(
                icon("copy"),
                "Use these settings",
                lambda: self.context.events.restore_requested.emit(job.known_request(), True),
            )
        menu.exec(self.view.viewport().mapToGlobal(pos))

    @property
    def tracking(self) -> bool:
        """Whether the session's tracker is following the target."""
        return self.context.session.tracking

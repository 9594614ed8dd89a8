"""Sweeps in the gallery: a strip of contact sheets above the grid, and a sheet's own window.

Each sheet is rendered by the services' `render` (the same drawing as the exported PNG) from the
library's thumbnails on a worker; a click on a cell opens its image in the viewer, its menu runs the cell
again or restores its settings, and the window exports the sheet as one PNG or as the cells' PNGs.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QPoint, QRect, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QImage, QMouseEvent, QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QScrollArea,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.services.explore import rerun_cell
from app.services.explore.sheet import Sheet, SheetCell, export_cells, export_sheet, render, sheet_of
from app.ui.shell.icons import icon
from app.ui.shell.tasks import Lane, Task

STRIP_SWEEPS = 12
STRIP_HEIGHT = 120
VIEW_CELL = 160
REFRESH_MS = 400


@dataclass(frozen=True, slots=True)
class Rendered:
    """A sheet drawn on a worker: its image and its cells (with their boxes in that image)."""

    sheet: Sheet
    image: QImage


def render_sheet(library: Any, sweep_id: str, cell_size: int, thumbnails: int = 256) -> Rendered | None:
    """Read the sweep and draw its sheet from thumbnails (worker thread)."""
    sweep = library.get_sweep(sweep_id)
    if sweep is None:
        return None
    sheet = sheet_of(sweep, library)
    picture = render(sheet, cell_size, source=lambda path: library.thumbnail_path(path, thumbnails))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", compress_level=1)
    return Rendered(sheet, QImage.fromData(buffer.getvalue(), "PNG"))


class SheetCanvas(QLabel):
    """The sheet's picture; a cell is found by its box, scaled to the shown size."""

    cellActivated = Signal(object)  # SheetCell
    cellMenu = Signal(object, QPoint)  # SheetCell, global position

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rendered: Rendered | None = None
        self.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.setMouseTracking(True)

    def show_rendered(self, rendered: Rendered) -> None:
        self.rendered = rendered
        self.setPixmap(QPixmap.fromImage(rendered.image))
        self.resize(rendered.image.size())

    def cell_at(self, pos: QPoint) -> SheetCell | None:
        if self.rendered is None:
            return None
        for cell in self.rendered.sheet.cells.values():
            left, top, right, bottom = cell.box
            if QRect(left, top, right - left, bottom - top).contains(pos):
                return cell
        return None

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        cell = self.cell_at(event.position().toPoint())
        if cell is None:
            return
        if event.button() == Qt.MouseButton.LeftButton:
            self.cellActivated.emit(cell)
        elif event.button() == Qt.MouseButton.RightButton:
            self.cellMenu.emit(cell, event.globalPosition().toPoint())

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        cell = self.cell_at(event.position().toPoint())
        self.setCursor(Qt.CursorShape.PointingHandCursor if cell and cell.image_path else Qt.CursorShape.ArrowCursor)
        self.setToolTip("\n".join(f"{t}: {v}" for t, v in cell.labels) + f"\n{cell.status}" if cell else "")


class SheetWindow(QDialog):
    """One sweep's contact sheet: cells open the viewer, re-run from their menu; export as one PNG or many."""

    def __init__(self, context: Any, sweep_id: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context, self.sweep_id = context, sweep_id
        self.setWindowTitle("Contact sheet")
        self.setObjectName("sheetWindow")
        self.resize(900, 700)
        self.title = QLabel()
        self.title.setObjectName("panelTitle")
        self.title.setWordWrap(True)
        self.progress = QLabel()
        self.progress.setObjectName("hint")
        self.canvas = SheetCanvas()
        self.canvas.setObjectName("sheetCanvas")
        scroll = QScrollArea()
        scroll.setWidget(self.canvas)
        scroll.setWidgetResizable(False)
        self.export_button = QPushButton(icon("save"), "Export sheet…")
        self.export_cells_button = QPushButton(icon("folder"), "Export cells…")
        self.export_button.clicked.connect(self.export_sheet)
        self.export_cells_button.clicked.connect(self.export_cells)
        buttons = QHBoxLayout()
        buttons.addWidget(self.progress, 1)
        buttons.addWidget(self.export_button)
        buttons.addWidget(self.export_cells_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(scroll, 1)
        layout.addLayout(buttons)
        self.canvas.cellActivated.connect(self.open_cell)
        self.canvas.cellMenu.connect(self._cell_menu)
        self._refresh = QTimer(self, singleShot=True, interval=REFRESH_MS)
        self._refresh.timeout.connect(self.reload)
        context.events.jobs_changed.connect(self._jobs_changed)
        self.reload()

    def reload(self) -> None:
        library = self.context.library
        Task(self, lambda: render_sheet(library, self.sweep_id, VIEW_CELL), success=self._rendered, busy=False).run()

    def _rendered(self, rendered: Rendered | None) -> None:
        if rendered is None:
            self.progress.setText("This sweep is no longer in the library.")
            return
        sheet = rendered.sheet
        self.canvas.show_rendered(rendered)
        self.title.setText(sheet.sweep.prompt)
        failed = sheet.finished - sheet.done
        self.progress.setText(
            f"{sheet.done} of {len(sheet.cells)} cells done" + (f" · {failed} failed" if failed else "")
        )

    def _jobs_changed(self, jobs: list[Any]) -> None:
        rendered = self.canvas.rendered
        ids = set(rendered.sheet.sweep.cells.values()) if rendered else set()
        if any(job.inference_id in ids for job in jobs):
            self._refresh.start()

    def open_cell(self, cell: SheetCell) -> None:
        if cell.image_path:
            self.context.events.open_image_requested.emit(cell.image_path)

    def _cell_menu(self, cell: SheetCell, where: QPoint) -> None:
        menu = QMenu(self)
        opened = menu.addAction(icon("open"), "Open in the viewer", lambda: self.open_cell(cell))
        opened.setEnabled(bool(cell.image_path))
        rerun = menu.addAction(icon("retry"), "Run this cell again", lambda: self.rerun(cell))
        rerun.setEnabled(cell.job is not None and cell.job.state.finished)
        if cell.job is not None:
            fields = cell.job.known_request()
            menu.addAction(
                icon("copy"), "Use these settings", lambda: self.context.events.restore_requested.emit(fields, True)
            )
        menu.exec(where)

    def rerun(self, cell: SheetCell) -> None:
        """Send the cell's request again, to the deployment that made it; the new job takes the cell's place."""
        jobs, session = self.context.jobs, self.context.session
        if jobs is None:
            self.progress.setText("Not connected: the cell cannot be sent again now.")
            return
        sweep_id, position = self.sweep_id, cell.position
        made_by = cell.job.target if cell.job is not None else jobs.target.name

        def send() -> Any:  # a Deployment axis' cell: by its own deployment's job service (which may connect)
            service = jobs if made_by == jobs.target.name else session.deployment_jobs(made_by)
            return rerun_cell(service, sweep_id, position)

        Task(
            self,
            send,
            success=self._rerun_sent,
            lane=Lane.NETWORK,
        ).run()

    def _rerun_sent(self, job: Any) -> None:
        self.context.events.jobs_changed.emit([job])
        self.reload()

    def export_sheet(self, path: str | None = None) -> None:
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Export the contact sheet", "sheet.png", "PNG images (*.png)")
        if not path:
            return
        library, sweep_id = self.context.library, self.sweep_id
        Task(
            self,
            lambda: export_sheet(sheet_of(library.get_sweep(sweep_id), library), path),
            success=lambda written: self.progress.setText(f"Exported the contact sheet to {written}."),
        ).run()

    def export_cells(self, folder: str | None = None) -> None:
        if folder is None:
            folder = QFileDialog.getExistingDirectory(self, "Export the cells to")
        if not folder:
            return
        library, sweep_id = self.context.library, self.sweep_id
        Task(
            self,
            lambda: export_cells(sheet_of(library.get_sweep(sweep_id), library), library, folder),
            success=lambda written: self.progress.setText(f"Exported {len(written)} cells to {folder}."),
            lane=Lane.LIBRARY,
        ).run()


class SweepStrip(QWidget):
    """The gallery's row of sweeps, newest first, each a small contact sheet; a click opens its window."""

    opened = Signal(str)  # a sweep's id

    def __init__(self, context: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.setObjectName("sweepStrip")
        self.tiles: dict[str, QToolButton] = {}
        self.row = QHBoxLayout(self)
        self.row.setContentsMargins(10, 4, 10, 4)
        self.row.setSpacing(8)
        self.row.addStretch(1)
        self._generation = 0
        self._reload = QTimer(self, singleShot=True, interval=REFRESH_MS)
        self._reload.timeout.connect(self.reload)
        self.hide()

    def reload_soon(self) -> None:
        self._reload.start()

    def reload(self) -> None:
        self._generation += 1
        generation, library = self._generation, self.context.library

        def work() -> list[Rendered]:
            drawn = [render_sheet(library, sweep.id, 28, 128) for sweep in library.sweeps(limit=STRIP_SWEEPS)]
            return [r for r in drawn if r is not None]

        Task(self, work, success=lambda drawn: self._show(generation, drawn), busy=False).run()

    def _show(self, generation: int, drawn: list[Rendered]) -> None:
        if generation != self._generation:
            return
        for tile in self.tiles.values():
            self.row.removeWidget(tile)
            tile.deleteLater()
        self.tiles = {}
        for index, rendered in enumerate(drawn):
            sheet = rendered.sheet
            tile = QToolButton()
            tile.setObjectName("sweepTile")
            tile.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
            pixmap = _fit(QPixmap.fromImage(rendered.image), QSize(160, STRIP_HEIGHT - 36))
            tile.setIcon(pixmap)
            tile.setIconSize(pixmap.size())
            shape = " × ".join(str(len(axis.labels)) for axis in sheet.sweep.axes)
            tile.setText(f"{shape} · {sheet.done}/{len(sheet.cells)}")
            tile.setToolTip(f"{sheet.sweep.prompt}\n{sheet.done} of {len(sheet.cells)} cells done. Click to open.")
            tile.setAccessibleName(f"Sweep: {sheet.sweep.prompt}")
            tile.clicked.connect(lambda _=False, sweep_id=sheet.sweep.id: self.opened.emit(sweep_id))
            self.row.insertWidget(index, tile)
            self.tiles[sheet.sweep.id] = tile
        self.setVisible(bool(drawn))


def _fit(pixmap: QPixmap, box: QSize) -> QPixmap:
    if pixmap.width() <= box.width() and pixmap.height() <= box.height():
        return pixmap
    return pixmap.scaled(box, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)


class SweepSheets:
    """Puts the strip above the gallery's grid and opens a sweep's window on request (queue, strip)."""

    def __init__(self, context: Any, gallery: Any) -> None:
        self.context, self.gallery = context, gallery
        self.strip = SweepStrip(context, gallery)
        gallery.layout().insertWidget(1, self.strip)
        self.windows: dict[str, SheetWindow] = {}
        self.strip.opened.connect(self.open)
        events = context.events
        events.open_sweep_requested.connect(self.open)
        events.sweep_submitted.connect(lambda _sweep: self.strip.reload_soon())
        events.library_changed.connect(self.strip.reload_soon)
        self.strip.reload()

    def open(self, sweep_id: str) -> SheetWindow:
        window = self.windows.get(sweep_id)
        if window is None:
            window = SheetWindow(self.context, sweep_id, self.gallery.window())
            window.finished.connect(lambda _r: self.windows.pop(sweep_id, None))
            self.windows[sweep_id] = window
        window.show()
        window.raise_()
        return window

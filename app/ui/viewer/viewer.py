"""The viewer: one image large, previous/next through the gallery, its parameters and actions."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

from PySide6.QtCore import QModelIndex, QSize, Qt, Signal
from PySide6.QtGui import QAction, QGuiApplication, QImage, QKeySequence, QPixmap
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.services.models import ImageRecord
from app.ui.gallery.model import GalleryModel
from app.ui.gallery.thumbnails import read_image
from app.ui.shell import icons
from app.ui.shell.tasks import Task
from app.ui.viewer.canvas import ImageCanvas
from app.ui.viewer.details import ParameterPanel

KEPT_IMAGES = 6
WIDE = 640  # narrower than this, the parameters go under the picture
DETAILS_WIDTH = 320


class Viewer(QWidget):
    """Shows the image at a row of the gallery model; the file is read on a worker."""

    restoreRequested = Signal(object, bool)  # GenerationRequest fields, with the seed?
    closeRequested = Signal()
    currentChanged = Signal(object)  # the ImageRecord now shown
    imageShown = Signal(object)  # the ImageRecord whose pixels are now on screen
    message = Signal(str)
    saved = Signal(str)

    def __init__(self, model: GalleryModel, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("viewer")
        self.model = model
        self.row = -1
        self.record: ImageRecord | None = None
        self._pixmaps: OrderedDict[str, QPixmap] = OrderedDict()
        self._loading: set[str] = set()
        self._laid_out = False

        self.canvas = ImageCanvas(self)
        self.details = ParameterPanel(self)
        self.details.restoreRequested.connect(self.restoreRequested)
        self.details.seedCopied.connect(lambda seed: self.message.emit(f"Copied seed {seed}"))

        bar = self._build_bar()
        line = _rule()
        self._build_splitter()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(bar)
        layout.addWidget(line)
        layout.addWidget(self.splitter, 1)

        self.canvas.zoomChanged.connect(lambda zoom: self.zoom_label.setText(f"{zoom * 100:.0f}%"))
        self.model.dataChanged.connect(self._data_changed)
        self.model.modelReset.connect(self._model_reset)
        self._add_shortcuts()
        self._update_controls()

    def _build_bar(self) -> QHBoxLayout:
        """The tool bar: back, previous/next and position, zoom, favourite, copy and save."""
        self.previous_button = self._button("previous", "Previous image (Left)", self.previous)
        self.next_button = self._button("next", "Next image (Right)", self.next)
        self.position = QLabel()
        self.position.setObjectName("hint")
        self.zoom_label = QLabel()
        self.zoom_label.setObjectName("hint")
        self.zoom_label.setMinimumWidth(44)
        self.zoom_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.favourite_button = self._button("favourite", "Favourite (F)", self.toggle_favourite)
        self.favourite_button.setCheckable(True)
        self.favourite_button.setObjectName("viewerFavourite")

        bar = QHBoxLayout()
        bar.setContentsMargins(10, 8, 10, 8)
        bar.setSpacing(6)
        self.close_button = self._button("cancel", "Back to the gallery (Esc)", self.closeRequested.emit)
        bar.addWidget(self.close_button)
        bar.addSpacing(6)
        bar.addWidget(self.previous_button)
        bar.addWidget(self.next_button)
        bar.addWidget(self.position)
        bar.addStretch(1)
        bar.addWidget(self._button("zoom-out", "Zoom out (−)", self.canvas.zoom_out))
        bar.addWidget(self.zoom_label)
        bar.addWidget(self._button("zoom-in", "Zoom in (+)", self.canvas.zoom_in))
        bar.addWidget(self._button("fit", "Fit to window (0)", self.canvas.fit))
        actual = QToolButton(text="1:1")
        actual.setToolTip("Actual size (1)")
        actual.setObjectName("actualSize")
        actual.clicked.connect(self.canvas.actual_size)
        bar.addWidget(actual)
        bar.addSpacing(12)
        bar.addWidget(self.favourite_button)
        bar.addWidget(self._button("copy", "Copy image (Ctrl+C)", self.copy_image))
        bar.addWidget(self._button("save", "Save as… (Ctrl+S)", self.save_as))
        return bar

    def _build_splitter(self) -> None:
        """The picture and the parameters, side by side or one above the other (see `resizeEvent`)."""
        split = QSplitter(Qt.Orientation.Horizontal)
        split.setChildrenCollapsible(False)
        split.addWidget(self.canvas)
        split.addWidget(self.details)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 0)
        self.splitter = split

    def _add_shortcuts(self) -> None:
        for keys, slot in (
            ((Qt.Key.Key_Left, Qt.Key.Key_PageUp), self.previous),
            ((Qt.Key.Key_Right, Qt.Key.Key_PageDown), self.next),
            ((Qt.Key.Key_Escape,), self.closeRequested.emit),
            ((Qt.Key.Key_F,), self.toggle_favourite),
            ((Qt.Key.Key_Plus, Qt.Key.Key_Equal), self.canvas.zoom_in),
            ((Qt.Key.Key_Minus,), self.canvas.zoom_out),
            ((Qt.Key.Key_0,), self.canvas.fit),
            ((Qt.Key.Key_1,), self.canvas.actual_size),
            ((QKeySequence.StandardKey.Copy,), self.copy_image),
            ((QKeySequence.StandardKey.Save, QKeySequence("Ctrl+Shift+S")), self.save_as),
            ((QKeySequence("Ctrl+R"),), lambda: self.details.use.click()),
            ((QKeySequence("Ctrl+Shift+R"),), lambda: self.details.use_without_seed.click()),
        ):
            self._shortcut(keys, slot)

    def resizeEvent(self, event: Any) -> None:
        """Beside the picture when there is room, below it in a narrow slot (the picture comes first)."""
        super().resizeEvent(event)
        wide = self.width() >= WIDE
        orientation = Qt.Orientation.Horizontal if wide else Qt.Orientation.Vertical
        if orientation != self.splitter.orientation() or not self._laid_out:
            self._laid_out = True
            self.splitter.setOrientation(orientation)
            self.details.setMinimumWidth(260 if wide else 0)
            if wide:
                self.splitter.setSizes([self.width() - DETAILS_WIDTH, DETAILS_WIDTH])
            else:
                self.splitter.setSizes([round(self.height() * 0.6), round(self.height() * 0.4)])

    def show_row(self, row: int) -> None:
        """Show the image at `row` of the gallery model (fetched first if its page is not in)."""
        if not 0 <= row < self.model.rowCount():
            return
        self.row = row
        self.canvas.setFocus()
        record = self.model.record(row)
        if record is None:
            self.canvas.loading_text = "Loading…"
            self.canvas.set_image(None)
            self._update_controls()
            return
        self._show(record)

    def show_record(self, record: ImageRecord) -> None:
        """Show an image found elsewhere (the job queue); previous/next work when it is in the grid."""
        self.row = self.model.row_of(record.id) if record.id is not None else -1
        self.canvas.setFocus()
        self._show(record)

    def previous(self) -> None:
        if self.row > 0:
            self.show_row(self.row - 1)

    def next(self) -> None:
        if 0 <= self.row < self.model.rowCount() - 1:
            self.show_row(self.row + 1)

    def toggle_favourite(self) -> None:
        if self.record is None:
            return
        self.model.set_favourite(self.record, not self.record.favourite, done=self._favourite_changed)

    def copy_image(self) -> None:
        if self.record is None:
            return
        pixmap = self._pixmaps.get(self.record.path)
        if pixmap is not None:
            QGuiApplication.clipboard().setPixmap(pixmap)
            self.message.emit("Copied the image to the clipboard")

    def save_as(self, path: str | None = None) -> None:
        """Write the image, with its generation parameters, where the user chooses."""
        record = self.record
        if record is None:
            return
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Save image as", Path(record.path).name, "PNG image (*.png)")
            if not path:
                return
        if not path.lower().endswith(".png"):
            path += ".png"
        library = self.model.library

        def done(written: Any) -> None:
            self.message.emit(f"Saved {Path(str(written)).name}")
            self.saved.emit(str(written))

        Task(self, lambda: _save(library, record, Path(path)), success=done).run()

    def shutdown(self) -> None:
        self._pixmaps.clear()

    def _show(self, record: ImageRecord) -> None:
        self.record = record
        self.details.show_record(record)
        pixmap = self._pixmaps.get(record.path)
        if pixmap is not None:
            self._pixmaps.move_to_end(record.path)
            self.canvas.set_image(pixmap)
            self.imageShown.emit(record)
        else:
            self.canvas.loading_text = "Loading…"
            self.canvas.set_image(None)
            self._load(record.path)
        self._preload(self.row + 1)
        self._preload(self.row - 1)
        self._update_controls()
        self.currentChanged.emit(record)

    def _preload(self, row: int) -> None:
        if 0 <= row < self.model.rowCount():
            record = self.model.record(row)
            if record is not None and record.path not in self._pixmaps:
                self._load(record.path)

    def _load(self, path: str) -> None:
        if path in self._loading:
            return
        self._loading.add(path)

        def loaded(image: QImage) -> None:
            self._loading.discard(path)
            pixmap = QPixmap.fromImage(image)
            self._pixmaps[path] = pixmap
            while len(self._pixmaps) > KEPT_IMAGES:
                self._pixmaps.popitem(last=False)
            if self.record is not None and self.record.path == path:
                self.canvas.set_image(pixmap)
                self.imageShown.emit(self.record)

        def failed(error: BaseException) -> None:
            self._loading.discard(path)
            if self.record is not None and self.record.path == path:
                self.canvas.loading_text = str(error)
                self.canvas.viewport().update()

        Task(self, lambda: read_image(path), success=loaded, failure=failed, busy=False).run()

    def _favourite_changed(self, record: ImageRecord) -> None:
        if self.record is not None and self.record.id == record.id:
            self.record = record
            self._update_controls()

    def _data_changed(self, first: QModelIndex, last: QModelIndex, roles: list[int] = ()) -> None:
        if self.row < 0 or not first.row() <= self.row <= last.row():
            return
        record = self.model.record(self.row)
        if record is None:
            return
        if self.record is None or record.id != self.record.id:
            self._show(record)
        elif record != self.record:
            self.record = record
            self.details.show_record(record)
            self._update_controls()

    def _model_reset(self) -> None:
        if self.record is None:
            return
        self.row = self.model.row_of(self.record.id) if self.record.id is not None else -1
        self._update_controls()

    def _update_controls(self) -> None:
        total = self.model.rowCount()
        self.previous_button.setEnabled(self.row > 0)
        self.next_button.setEnabled(0 <= self.row < total - 1)
        self.position.setText(f"{self.row + 1:,} of {total:,}" if self.row >= 0 else "")
        favourite = bool(self.record and self.record.favourite)
        self.favourite_button.setChecked(favourite)
        self.favourite_button.setIcon(icons.icon("favourite-on" if favourite else "favourite"))
        self.favourite_button.setToolTip("Remove from favourites (F)" if favourite else "Add to favourites (F)")

    def _button(self, icon: str, tip: str, slot: Any) -> QToolButton:
        button = QToolButton()
        button.setIcon(icons.icon(icon))
        button.setIconSize(QSize(18, 18))
        button.setToolTip(tip)
        button.setAccessibleName(tip.split(" (")[0])
        button.setObjectName(f"viewer_{icon}")
        button.clicked.connect(lambda: slot())
        return button

    def _shortcut(self, keys: tuple, slot: Any) -> QAction:
        action = QAction(self)
        action.setShortcuts([QKeySequence(key) if not isinstance(key, QKeySequence) else key for key in keys])
        action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        action.triggered.connect(lambda: slot())
        self.addAction(action)
        return action


def _rule() -> QFrame:
    """The line under the tool bar."""
    line = QFrame()
    line.setFrameShape(QFrame.Shape.HLine)
    line.setObjectName("viewerRule")
    line.setFrameShadow(QFrame.Shadow.Plain)
    line.setEnabled(False)
    return line


def _save(library: Any, record: ImageRecord, dest: Path) -> Path:
    """Through the library, so the `parameters` chunk is kept (or written when the file lacks it)."""
    return library.export_image(record.id, dest)

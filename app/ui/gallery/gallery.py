"""The gallery: a searchable, virtualized grid of the library's images and what you can do with them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QItemSelectionModel, QSize, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QDesktopServices, QImage, QKeySequence, QPalette
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QMessageBox,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.services.models import ImageRecord
from app.ui.gallery.delegate import GalleryDelegate
from app.ui.gallery.model import GalleryModel
from app.ui.gallery.thumbnails import read_image
from app.ui.gallery.view import DEFAULT_SIZE, SIZES, GalleryView
from app.ui.shell import clipboard, icons
from app.ui.shell.tasks import Lane, Task
from app.ui.viewer.viewer import Viewer

SEARCH_DELAY_MS = 250
RELOAD_DELAY_MS = 200  # new images arrive in bursts: one query for the burst


class Gallery(QWidget):
    """Search, favourites filter, size slider and the grid, with delete, export, copy and reveal."""

    openRequested = Signal(int)  # row in `model` to show in the viewer
    recordOpenRequested = Signal(object)  # an ImageRecord found by `open_image`, for the viewer
    message = Signal(str)  # a short line for the status bar ("Exported 3 images to …")
    copied = Signal(object)  # ImageRecord now on the clipboard
    deleted = Signal(int)  # how many images were deleted
    exported = Signal(list)  # the written paths

    def __init__(self, library: Any, parent: QWidget | None = None, *, model: GalleryModel | None = None):
        super().__init__(parent)
        self.setObjectName("gallery")
        self.library = library
        self.model = model or GalleryModel(library, self)
        self.delegate = GalleryDelegate(self)
        bar = self._build_bar()
        self._build_view()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(bar)
        layout.addWidget(self.view, 1)
        self._connect_controls()
        self._build_actions()

        self._reload_timer = QTimer(self, singleShot=True, interval=RELOAD_DELAY_MS)
        self._reload_timer.timeout.connect(self.reload)
        self._keep: tuple[set[int], int | None, int] | None = None
        self._started = False
        self._events: Any = None
        self.viewer: Viewer | None = None

        self.set_thumbnail_size(DEFAULT_SIZE)
        self._tint_icons()
        self._update_actions()

    def _build_bar(self) -> QHBoxLayout:
        """The row above the grid: search, favourites filter, image count and the size slider."""
        self.search = QLineEdit(placeholderText="Search prompts", clearButtonEnabled=True)
        self.search.setObjectName("gallerySearch")
        self.search.setAccessibleName("Search prompts")
        self._search_icon = self.search.addAction(icons.icon("search"), QLineEdit.ActionPosition.LeadingPosition)
        self.favourites = QToolButton(text="Favourites", checkable=True)
        self.favourites.setObjectName("galleryFavourites")
        self.favourites.setToolTip("Show only favourites")
        self.favourites.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.count_label = QLabel()
        self.count_label.setObjectName("galleryCount")
        self.count_label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.size_slider = QSlider(Qt.Orientation.Horizontal)
        self.size_slider.setObjectName("galleryThumbnailSize")
        self.size_slider.setRange(SIZES[0], SIZES[1])
        self.size_slider.setSingleStep(SIZES[2])
        self.size_slider.setPageStep(SIZES[2] * 4)
        self.size_slider.setValue(DEFAULT_SIZE)
        self.size_slider.setFixedWidth(120)
        self.size_slider.setToolTip("Thumbnail size")
        self.size_slider.setAccessibleName("Thumbnail size")

        bar = QHBoxLayout()
        bar.setContentsMargins(10, 8, 10, 4)
        bar.setSpacing(8)
        bar.addWidget(self.search, 1)
        bar.addWidget(self.favourites)
        bar.addSpacing(6)
        bar.addWidget(self.count_label)
        bar.addSpacing(6)
        self._size_icons = (QLabel(), QLabel())
        for widget in (self._size_icons[0], self.size_slider, self._size_icons[1]):
            bar.addWidget(widget, 0, Qt.AlignmentFlag.AlignVCenter)
        return bar

    def _build_view(self) -> None:
        """The grid over the model, painted by the delegate."""
        self.view = GalleryView(self)
        self.view.setObjectName("galleryView")
        self.view.setItemDelegate(self.delegate)
        self.view.tileChanged.connect(self._tile_changed)
        self._configure_delegate()
        self.view.setModel(self.model)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)

    def _connect_controls(self) -> None:
        """Search (after a pause in typing), filter, size, scrolling, opening, the menu and the model's news."""
        self._search_timer = QTimer(self, singleShot=True, interval=SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(self._apply_filter)
        self.search.textChanged.connect(self._search_timer.start)
        self.search.returnPressed.connect(self._apply_filter)
        self.favourites.toggled.connect(self._apply_filter)
        self.favourites.toggled.connect(self._tint_icons)
        self.size_slider.valueChanged.connect(self.set_thumbnail_size)
        self.view.verticalScrollBar().valueChanged.connect(lambda _value: self.model.thumbnails.hold())
        self.view.activated.connect(lambda index: self.openRequested.emit(index.row()))
        self.view.customContextMenuRequested.connect(self._context_menu)
        self.view.selectionModel().selectionChanged.connect(self._update_actions)
        self.model.reloaded.connect(self._reloaded)
        self.model.failed.connect(self.message)

    def _build_actions(self) -> None:
        """The grid's actions with their shortcuts (also its context menu), and find / clear for the search."""
        self.open_action = self._action("Open", self._open_current, QKeySequence(Qt.Key.Key_Return))
        self.favourite_action = self._action("Favourite", self._toggle_favourite, QKeySequence("F"))
        self.copy_action = self._action("Copy image", self.copy_selected, QKeySequence.StandardKey.Copy)
        self.export_action = self._action("Export…", self.export_selected, QKeySequence("Ctrl+E"))
        self.reveal_action = self._action("Show in folder", self.reveal_selected, QKeySequence("Ctrl+Shift+R"))
        self.delete_action = self._action("Delete…", self.delete_selected, QKeySequence.StandardKey.Delete)
        self.select_all_action = self._action("Select all", self.view.selectAll, QKeySequence.StandardKey.SelectAll)
        find = QAction("Search prompts", self, shortcut=QKeySequence.StandardKey.Find)
        find.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        find.triggered.connect(lambda: (self.search.setFocus(), self.search.selectAll()))
        self.addAction(find)
        clear = QAction("Clear the search", self.search, shortcut=QKeySequence(Qt.Key.Key_Escape))
        clear.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        clear.triggered.connect(lambda: (self.search.clear(), self.view.setFocus()))
        self.search.addAction(clear)

    def connect_events(self, events: Any, *, own_viewer: bool = True) -> None:
        """Follow the app's events: new or changed images reload the grid, "open image" finds the image.

        With `own_viewer` the gallery shows images in a viewer window of its own; a host that
        places the viewer itself connects `openRequested` and `recordOpenRequested` instead.
        """
        self._events = events
        events.images_added.connect(lambda _records: self.reload_soon())
        events.library_changed.connect(self.reload_soon)
        events.open_image_requested.connect(self.open_image)
        if own_viewer:
            self.openRequested.connect(self.open_row)
            self.recordOpenRequested.connect(self._open_record)

    def reload_soon(self) -> None:
        """Reload once a burst of changes is over."""
        self._reload_timer.start()

    def reload(self) -> None:
        """Query the library again (images were added, removed or changed elsewhere), keeping the selection."""
        selected = {r.id for r in self.selected_records() if r.id is not None}
        current = self.model.record(self.view.currentIndex().row()) if self.view.currentIndex().isValid() else None
        self._keep = (selected, current.id if current else None, self.view.verticalScrollBar().value())
        self.model.reload()

    def start(self) -> None:
        """Run the first query (done by itself when first shown)."""
        self._started = True
        self._apply_filter()

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if not self._started:
            self.start()

    def open_row(self, row: int) -> None:
        """Show the image at `row` in the viewer window (made on first use)."""
        viewer = self._viewer()
        viewer.show_row(row)
        self._present(viewer)

    def open_image(self, image: Any) -> None:
        """Find an image given as a record, an id or a file path (the job queue's "open") on a worker,
        then emit `recordOpenRequested(record)`."""
        if isinstance(image, ImageRecord):
            self.recordOpenRequested.emit(image)
            return
        library = self.library
        if isinstance(image, int):
            op = lambda: library.get_image(image)  # noqa: E731
        else:
            op = lambda: _image_by_path(library, str(image))  # noqa: E731
        Task(self, op, success=lambda record: record is not None and self.recordOpenRequested.emit(record)).run()

    def set_thumbnail_size(self, pixels: int) -> None:
        """About how large thumbnails are (the slider); the grid fits the exact size to its width."""
        pixels = max(SIZES[0], min(SIZES[1], round(pixels / SIZES[2]) * SIZES[2]))
        self.view.set_target(pixels)
        if self.size_slider.value() != pixels:
            self.size_slider.setValue(pixels)

    def _tile_changed(self, side: int) -> None:
        self.delegate.thumbnail = side
        self.model.set_thumbnail_size(side, self.devicePixelRatioF())
        self.model.thumbnails.hold()  # while the window is being resized, draw what is cached

    def selected_records(self) -> list[ImageRecord]:
        """The selected images whose records are loaded, in grid order."""
        rows = sorted(index.row() for index in self.view.selectionModel().selectedIndexes())
        return [r for r in (self.model.record(row) for row in rows) if r is not None]

    def copy_selected(self) -> None:
        """Put the current image on the clipboard (read on a worker, set on the GUI thread)."""
        records = self.selected_records()
        if not records:
            return
        record = records[0]

        def placed(image: QImage) -> None:
            clipboard.put_image(image, record.path)
            self.message.emit("Copied the image to the clipboard")
            self.copied.emit(record)

        Task(self, lambda: read_image(record.path), success=placed).run()

    def delete_selected(self) -> None:
        """Ask, then delete the selected images and their files."""
        records = self.selected_records()
        if not records:
            return
        count = len(records)
        what = "this image" if count == 1 else f"these {count:,} images"
        answer = QMessageBox.question(
            self,
            "Delete images",
            f"Delete {what}? The files are removed from disk; this cannot be undone.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        if answer != QMessageBox.StandardButton.Yes:
            return
        ids = [r.id for r in records]

        def done(deleted: int) -> None:
            self.model.reload()
            self.message.emit(f"Deleted {deleted:,} image{'s' if deleted != 1 else ''}")
            self.deleted.emit(deleted)

        Task(self, lambda: self.library.delete_images(ids), success=done, lane=Lane.LIBRARY).run()

    def export_selected(self, folder: str | None = None) -> None:
        """Copy the selected images, with their generation parameters, into a folder the user picks."""
        records = self.selected_records()
        if not records:
            return
        if folder is None:
            folder = QFileDialog.getExistingDirectory(self, "Export images to")
            if not folder:
                return
        ids = [r.id for r in records]

        def done(paths: list) -> None:
            self.message.emit(f"Exported {len(paths):,} image{'s' if len(paths) != 1 else ''} to {folder}")
            self.exported.emit(paths)

        Task(self, lambda: self.library.export_images(ids, folder), success=done).with_progress("Exporting…").run()

    def reveal_selected(self) -> None:
        records = self.selected_records()
        if records:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(records[0].path).parent)))

    def shutdown(self) -> None:
        """Stop thumbnail work and wait for renders in flight (at exit)."""
        self.model.shutdown()
        if self.viewer is not None:
            self.viewer.close()

    def _viewer(self) -> Viewer:
        if self.viewer is None:
            viewer = Viewer(self.model, self)
            viewer.setWindowFlag(Qt.WindowType.Window)
            viewer.setWindowTitle("Diffusion Desk — Viewer")
            viewer.resize(1180, 780)
            viewer.closeRequested.connect(viewer.close)
            viewer.message.connect(self.message)
            viewer.currentChanged.connect(self._follow_viewer)
            if self._events is not None:
                viewer.restoreRequested.connect(self._events.restore_requested)
            viewer.restoreRequested.connect(lambda *_: self.window().activateWindow())
            self.viewer = viewer
        return self.viewer

    def _present(self, viewer: Viewer) -> None:
        viewer.show()
        viewer.raise_()
        viewer.activateWindow()

    def _open_record(self, record: ImageRecord) -> None:
        viewer = self._viewer()
        viewer.show_record(record)
        self._present(viewer)

    def _follow_viewer(self, record: ImageRecord) -> None:
        """Keep the grid's current cell on the image the viewer shows, so closing it lands there."""
        row = self.model.row_of(record.id) if record.id is not None else -1
        if row >= 0:
            self.view.setCurrentIndex(self.model.index(row))
            self.view.scrollTo(self.model.index(row))

    def changeEvent(self, event: Any) -> None:
        super().changeEvent(event)
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.FontChange, QEvent.Type.StyleChange):
            self._configure_delegate()
            self._tint_icons()
            self.view.viewport().update()

    def _tint_icons(self) -> None:
        """Line icons in the palette's colours (again after a light/dark switch)."""
        muted = self.palette().color(QPalette.ColorRole.PlaceholderText)
        self._search_icon.setIcon(icons.icon("search", muted))
        self.favourites.setIcon(icons.icon("favourite-on" if self.favourites.isChecked() else "favourite"))
        for label, side in zip(self._size_icons, (12, 18), strict=True):
            label.setPixmap(icons.icon("image", muted).pixmap(side, side))

    def _configure_delegate(self) -> None:
        self.delegate.configure(self.view.font(), self.view.palette(), self.devicePixelRatioF())

    def _action(self, text: str, slot: Any, shortcut: QKeySequence) -> QAction:
        action = QAction(text, self)
        action.setShortcut(shortcut)
        action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        action.triggered.connect(lambda: slot())
        self.view.addAction(action)
        return action

    def _apply_filter(self) -> None:
        self._search_timer.stop()
        self.model.set_filter(self.search.text(), self.favourites.isChecked())

    def _reloaded(self, total: int) -> None:
        if self._keep is not None:
            self._restore_selection(*self._keep)
            self._keep = None
        if total:
            self.count_label.setText(f"{total:,} image{'s' if total != 1 else ''}")
        else:
            self.count_label.setText("")
        if self.model.query:
            self.view.empty_text = f"No image has “{self.model.query}” in its prompt."
        elif self.model.favourites_only:
            self.view.empty_text = "No favourites yet. Press F or click the star in the viewer to add one."
        else:
            self.view.empty_text = "No images yet. Write a prompt and press Generate; your images appear here."
        self.view.viewport().update()
        self._update_actions()

    def _restore_selection(self, ids: set[int], current: int | None, scroll: int) -> None:
        self.view.verticalScrollBar().setValue(scroll)
        selection = self.view.selectionModel()
        if current is not None and (row := self.model.row_of(current)) >= 0:
            selection.setCurrentIndex(self.model.index(row), QItemSelectionModel.SelectionFlag.NoUpdate)
        for image_id in ids:
            row = self.model.row_of(image_id)
            if row >= 0:
                selection.select(self.model.index(row), QItemSelectionModel.SelectionFlag.Select)

    def _update_actions(self) -> None:
        selected = self.view.selectionModel().hasSelection()
        for action in (
            self.open_action,
            self.favourite_action,
            self.copy_action,
            self.export_action,
            self.reveal_action,
            self.delete_action,
        ):
            action.setEnabled(selected)

    def _open_current(self) -> None:
        index = self.view.currentIndex()
        if index.isValid():
            self.openRequested.emit(index.row())

    def _toggle_favourite(self) -> None:
        records = self.selected_records()
        if not records:
            return
        favourite = not all(r.favourite for r in records)
        for record in records:
            self.model.set_favourite(record, favourite)

    def _context_menu(self, pos: Any) -> None:
        index = self.view.indexAt(pos)
        if not index.isValid():
            return
        if not self.view.selectionModel().isSelected(index):
            self.view.setCurrentIndex(index)
        records = self.selected_records()
        self.favourite_action.setText(
            "Remove from favourites" if records and all(r.favourite for r in records) else "Add to favourites"
        )
        menu = QMenu(self)
        for action in (
            self.open_action,
            self.favourite_action,
            None,
            self.copy_action,
            self.export_action,
            self.reveal_action,
            None,
            self.delete_action,
        ):
            if action is None:
                menu.addSeparator()
            else:
                menu.addAction(action)
        menu.popup(self.view.viewport().mapToGlobal(pos))

    def sizeHint(self) -> QSize:
        return QSize(760, 560)


def _image_by_path(library: Any, path: str, limit: int = 2000) -> ImageRecord | None:
    """The library record of a file, looked for among the newest images (worker thread)."""
    if hasattr(library, "image_by_path"):
        return library.image_by_path(path)
    wanted = str(Path(path).absolute())
    return next((r for r in library.images("", False, 0, limit) if r.path == wanted), None)

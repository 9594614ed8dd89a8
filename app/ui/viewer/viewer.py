"""The viewer: one image large, previous/next through the gallery, its parameters and actions.

With a context it also has the tools (upscale ×4, inpaint, extend canvas), each enabled when the
deployment has the companion model it needs, and the details show the image's lineage.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

from PySide6.QtCore import QModelIndex, QSize, Qt, Signal
from PySide6.QtGui import QAction, QColor, QGuiApplication, QImage, QKeySequence, QPixmap
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QSplitter,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.services.models import ImageRecord
from app.ui.gallery.model import GalleryModel
from app.ui.gallery.thumbnails import read_image
from app.ui.shell import icons
from app.ui.shell.tasks import Task
from app.ui.viewer.canvas import BRUSH, ERASER, ImageCanvas
from app.ui.viewer.details import ParameterPanel
from app.ui.viewer.image_tools import EXTEND, INPAINT, LABELS, UPSCALE, ImageTools
from app.ui.viewer.lineage import Lineage, read_lineage
from app.ui.viewer.mask import BRUSH_SIZES, Mask
from app.ui.viewer.tool_panels import ExtendPanel, InpaintPanel
from app.ui.viewer.tool_strip import RESERVED, ToolStrip

KEPT_IMAGES = 6
#: The mask over the picture: a warm red, as painters' masking fluid and Photoshop's quick mask, clear on most images.
MASK_TINT = "#ff3b5c"
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

    def __init__(self, model: GalleryModel, parent: QWidget | None = None, context: Any = None):
        super().__init__(parent)
        self.setObjectName("viewer")
        self.model = model
        self.context = context
        self.tools = ImageTools(context, self)
        self.tools.message.connect(self.message)
        self.tools.sending.connect(self._sending)
        self._busy_tools: set[str] = set()
        self.mode: str | None = None  # INPAINT or EXTEND while that tool's panel is open
        self.row = -1
        self.record: ImageRecord | None = None
        self._pixmaps: OrderedDict[str, QPixmap] = OrderedDict()
        self._loading: set[str] = set()
        self._laid_out = False
        self._mask_for: Any = None

        self.canvas = ImageCanvas(self)
        self.details = ParameterPanel(self)
        self.details.restoreRequested.connect(self.restoreRequested)
        self.details.seedCopied.connect(lambda seed: self.message.emit(f"Copied seed {seed}"))
        self.details.lineage.openRequested.connect(self.show_record)
        self.inpaint_panel = InpaintPanel(self)
        self.extend_panel = ExtendPanel(self)
        self._connect_panels()

        bar = self._build_bar()
        self._build_tools()
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
        if context is not None:
            context.events.target_changed.connect(lambda _info: self._update_tools())
        self._update_controls()
        self._update_tools()

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

    def _build_tools(self) -> None:
        """Upscale ×4, Inpaint and Extend, floating at the foot of the picture."""
        self.tool_strip = ToolStrip(self.canvas)
        self.canvas.reserved_bottom = RESERVED
        self.upscale_button = self.tool_strip.add(LABELS[UPSCALE], "viewerTool_upscale")
        self.inpaint_button = self.tool_strip.add(LABELS[INPAINT], "viewerTool_inpaint", checkable=True)
        self.extend_button = self.tool_strip.add("Extend", "viewerTool_extend", checkable=True)
        self.upscale_button.clicked.connect(self.upscale)
        self.inpaint_button.clicked.connect(lambda: self.set_mode(INPAINT if self.mode != INPAINT else None))
        self.extend_button.clicked.connect(lambda: self.set_mode(EXTEND if self.mode != EXTEND else None))

    def _connect_panels(self) -> None:
        inpaint, extend = self.inpaint_panel, self.extend_panel
        inpaint.closeRequested.connect(lambda: self.set_mode(None))
        inpaint.toolChanged.connect(lambda tool: self.mode == INPAINT and self.canvas.set_tool(tool))
        inpaint.sizeChanged.connect(self._brush_size_changed)
        inpaint.undoRequested.connect(self.undo_stroke)
        inpaint.clearRequested.connect(self.clear_mask)
        inpaint.maskShown.connect(self.canvas.set_mask_visible)
        inpaint.repaintRequested.connect(self.repaint)
        extend.closeRequested.connect(lambda: self.set_mode(None))
        extend.changed.connect(lambda *sides: self.mode == EXTEND and self.canvas.set_extension(*sides))
        extend.extendRequested.connect(self.extend)

    def _build_splitter(self) -> None:
        """The picture and the parameters, side by side or one above the other (see `resizeEvent`)."""
        split = QSplitter(Qt.Orientation.Horizontal)
        split.setChildrenCollapsible(False)
        self.side = QStackedWidget()
        self.side.setObjectName("viewerSide")
        for panel in (self.details, self.inpaint_panel, self.extend_panel):
            self.side.addWidget(panel)
        split.addWidget(self.canvas)
        split.addWidget(self.side)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 0)
        self.splitter = split

    def _add_shortcuts(self) -> None:
        for keys, slot in (
            ((Qt.Key.Key_Left, Qt.Key.Key_PageUp), self.previous),
            ((Qt.Key.Key_Right, Qt.Key.Key_PageDown), self.next),
            ((Qt.Key.Key_Escape,), self._escape),
            ((Qt.Key.Key_F,), self.toggle_favourite),
            ((Qt.Key.Key_Plus, Qt.Key.Key_Equal), self.canvas.zoom_in),
            ((Qt.Key.Key_Minus,), self.canvas.zoom_out),
            ((Qt.Key.Key_0,), self.canvas.fit),
            ((Qt.Key.Key_1,), self.canvas.actual_size),
            ((QKeySequence.StandardKey.Copy,), self.copy_image),
            ((QKeySequence.StandardKey.Save, QKeySequence("Ctrl+Shift+S")), self.save_as),
            ((QKeySequence("Ctrl+R"),), lambda: self.details.use.click()),
            ((QKeySequence("Ctrl+Shift+R"),), lambda: self.details.use_without_seed.click()),
            ((QKeySequence.StandardKey.Undo,), self.undo_stroke),
            ((Qt.Key.Key_B,), lambda: self._choose_tool(BRUSH)),
            ((Qt.Key.Key_E,), lambda: self._choose_tool(ERASER)),
            ((Qt.Key.Key_BracketLeft,), lambda: self._step_brush(1 / 1.25)),
            ((Qt.Key.Key_BracketRight,), lambda: self._step_brush(1.25)),
            ((Qt.Key.Key_H,), lambda: self.mode == INPAINT and self.inpaint_panel.show_mask.toggle()),
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
            self.side.setMinimumWidth(260 if wide else 0)
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

    # The tools.

    def upscale(self) -> None:
        """Send the shown image to the ×4 upscaler; the new job shows in the queue."""
        if self.record is not None and self._tool_ready(UPSCALE):
            self.tools.upscale(self.record)

    def set_mode(self, mode: str | None) -> None:
        """Open the Inpaint or Extend panel over the details (None: back to the details)."""
        if mode is not None and not self._tool_ready(mode):
            mode = None
        self.mode = mode
        self.inpaint_button.setChecked(mode == INPAINT)
        self.extend_button.setChecked(mode == EXTEND)
        panel = {INPAINT: self.inpaint_panel, EXTEND: self.extend_panel}.get(mode, self.details)
        self.side.setCurrentWidget(panel)
        self._set_up_mode()
        if mode is not None:
            self.canvas.setFocus()

    def _set_up_mode(self) -> None:
        """Give the canvas what the open tool draws: a mask the size of the shown image, or the grown outline."""
        if self.mode == INPAINT and self.canvas.has_image():
            size = self._image_size()
            if self.canvas.mask is None or self.canvas.mask.size != size or self._mask_for != self._record_key():
                self.canvas.set_mask(self._new_mask(size))
            self.inpaint_panel.set_image_size(size)
            self.canvas.set_mask_visible(self.inpaint_panel.show_mask.isChecked())
            self.canvas.set_tool(ERASER if self.inpaint_panel.eraser.isChecked() else BRUSH)
            self.canvas.brush_size = self.inpaint_panel.size.value()
        else:
            self.canvas.set_tool(None)
            self.canvas.set_mask(None)
            self._mask_for = None
        if self.mode == EXTEND and self.canvas.has_image():
            self.extend_panel.set_image_size(self._image_size())
            g = self.extend_panel.grown_sides()  # the outline shows the canvas as it will be made, rounding included
            self.canvas.set_extension(g["left"], g["top"], g["right"], g["bottom"])
        else:
            self.canvas.clear_extension()
        self._mask_changed()

    def _new_mask(self, size: QSize) -> Mask:
        mask = Mask(size, QColor(MASK_TINT))
        mask.listeners.append(lambda _rect: self._mask_changed())
        self._mask_for = self._record_key()
        return mask

    def _record_key(self) -> Any:
        return (self.record.id, self.record.path) if self.record is not None else None

    def _image_size(self) -> QSize:
        return self.canvas.image_size()

    def _mask_changed(self) -> None:
        mask = self.canvas.mask
        self.inpaint_panel.set_mask_state(
            can_undo=mask is not None and mask.can_undo, empty=mask is None or mask.is_empty()
        )

    def undo_stroke(self) -> None:
        if self.mode == INPAINT and self.canvas.mask is not None:
            self.canvas.mask.undo()

    def clear_mask(self) -> None:
        if self.mode == INPAINT and self.canvas.mask is not None:
            self.canvas.mask.clear()

    def repaint(self, prompt: str | None = None) -> None:
        """Send the image, the painted mask and the prompt to the inpainting model (an empty mask is refused here)."""
        panel = self.inpaint_panel
        prompt = panel.prompt.toPlainText().strip() if prompt is None else prompt
        mask = self.canvas.mask
        if self.record is None or not self._tool_ready(INPAINT):
            return
        if mask is None or mask.is_empty():
            panel.show_error("Paint over the part to repaint first: the mask is empty.")
            return
        if not prompt:
            panel.show_error("Say what to paint there: the prompt is empty.")
            panel.prompt.setFocus()
            return
        panel.show_error("")
        self.tools.inpaint(self.record, mask.image, prompt)

    def extend(self, values: dict | None = None) -> None:
        """Send the image and the pixels to add on each side to the inpainting model."""
        panel = self.extend_panel
        values = dict(values or panel.values())
        if self.record is None or not self._tool_ready(EXTEND):
            return
        if not any(values[side] for side in ("left", "right", "top", "bottom")):
            panel.show_error("Add pixels on at least one side.")
            return
        if panel.too_large:
            return
        if not values["prompt"]:
            panel.show_error("Say what the wider picture holds: the prompt is empty.")
            panel.prompt.setFocus()
            return
        panel.show_error("")
        self.tools.extend(self.record, **values)

    def _tool_ready(self, tool: str) -> bool:
        return self.canvas.has_image() and self.tools.unavailable(tool) is None

    def _choose_tool(self, tool: str) -> None:
        if self.mode == INPAINT:
            (self.inpaint_panel.brush if tool == BRUSH else self.inpaint_panel.eraser).setChecked(True)

    def _step_brush(self, factor: float) -> None:
        if self.mode == INPAINT:
            size = self.inpaint_panel.size
            value = round(size.value() * factor)
            if value == size.value():
                value += 1 if factor > 1 else -1
            size.setValue(max(BRUSH_SIZES[0], min(BRUSH_SIZES[1], value)))

    def _brush_size_changed(self, value: int) -> None:
        self.canvas.brush_size = value
        self.canvas.viewport().update()

    def _sending(self, tool: str, busy: bool) -> None:
        """While a tool's job is on its way its button waits, so one click sends one job."""
        (self._busy_tools.add if busy else self._busy_tools.discard)(tool)
        if tool == INPAINT:
            self.inpaint_panel.set_sending(busy)
        elif tool == EXTEND:
            self.extend_panel.set_sending(busy)
        else:
            self._update_tools()

    def _escape(self) -> None:
        if self.mode is not None:
            self.set_mode(None)
        else:
            self.closeRequested.emit()

    def _update_tools(self) -> None:
        """Each tool enabled when the image is on screen and the deployment has its model; else its tooltip says why."""
        shown = self.canvas.has_image() and self.record is not None
        size = self.canvas.image_size()
        for tool, button in (
            (UPSCALE, self.upscale_button),
            (INPAINT, self.inpaint_button),
            (EXTEND, self.extend_button),
        ):
            reason = self.tools.unavailable(tool, (size.width(), size.height()) if shown else None)
            button.setEnabled(shown and reason is None and not (tool == UPSCALE and tool in self._busy_tools))
            button.setToolTip(reason or _TOOL_TIPS[tool])
        if self.mode is not None and not self._tool_ready(self.mode):
            self.set_mode(None)

    def _load_lineage(self, record: ImageRecord) -> None:
        library = self.model.library
        if record.id is None or not hasattr(library, "made_from"):
            return

        def shown(lineage: Lineage) -> None:
            if self.record is not None and self.record.id == lineage.image_id:
                self.details.lineage.show_lineage(lineage)

        Task(self, lambda: read_lineage(library, record), success=shown, busy=False).run()

    def _show(self, record: ImageRecord) -> None:
        self.record = record
        self.details.show_record(record)
        self._load_lineage(record)
        pixmap = self._pixmaps.get(record.path)
        if pixmap is not None:
            self._pixmaps.move_to_end(record.path)
            self.canvas.set_image(pixmap)
            self._image_ready()
            self.imageShown.emit(record)
        else:
            self.canvas.loading_text = "Loading…"
            self.canvas.set_image(None)
            self._image_ready()
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
                self._image_ready()
                self.imageShown.emit(self.record)

        def failed(error: BaseException) -> None:
            self._loading.discard(path)
            if self.record is not None and self.record.path == path:
                self.canvas.loading_text = str(error)
                self.canvas.viewport().update()

        Task(self, lambda: read_image(path), success=loaded, failure=failed, busy=False).run()

    def _image_ready(self) -> None:
        """A new picture (or none, while loading): the open tool starts afresh on it."""
        self._update_tools()
        if self.mode is not None:
            self._set_up_mode()

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
        self._load_lineage(self.record)  # new images may have been made from this one

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


_TOOL_TIPS = {
    UPSCALE: "Make a new image at four times the size (the ×4 upscaler)",
    INPAINT: "Paint a mask and repaint only there from a prompt",
    EXTEND: "Grow the canvas on any side and fill the new area from a prompt",
}


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

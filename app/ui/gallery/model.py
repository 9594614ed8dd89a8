"""The gallery's item model: library rows fetched in pages on a worker, thumbnails on demand.

The row count comes from one count query; a row's record is fetched with its page the first
time something asks for it, so 10,000 images cost a few pages, not 10,000 records.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QObject, QPersistentModelIndex, Qt, Signal

from app.services.models import ImageRecord
from app.ui.gallery.thumbnails import ThumbnailLoader, renderer
from app.ui.shell.tasks import Lane, Task

RecordRole = Qt.ItemDataRole.UserRole + 1
ThumbnailRole = Qt.ItemDataRole.UserRole + 2
PAGE_SIZE = 150
KEPT_PAGES = 40  # 6,000 records at most in memory


PATTERN_ENGINES = {"sandbox": "TEST PATTERN", "demo": "DEMO"}


def is_test_pattern(record: ImageRecord) -> bool:
    """Drawn by the sandbox renderer or the demo filler rather than made by a model."""
    return record.engine in PATTERN_ENGINES


def badge_text(record: ImageRecord) -> str | None:
    return PATTERN_ENGINES.get(record.engine or "")


class GalleryModel(QAbstractListModel):
    """Images matching the search and favourites filter, newest first."""

    reloaded = Signal(int)  # the filter's row count, once its first page is in
    failed = Signal(str)  # a library query failed; the text is for the user

    def __init__(self, library: Any, parent: QObject | None = None, *, render: Callable | None = None):
        super().__init__(parent)
        self.library = library
        self.thumbnails = ThumbnailLoader(render or renderer(library.thumbnail_path), self)
        self.thumbnails.ready.connect(self._thumbnail_ready)
        self.thumbnails.retry.connect(self._thumbnails_retry)
        self._query = ""
        self._favourites_only = False
        self._total = 0
        self._pages: OrderedDict[int, list[ImageRecord]] = OrderedDict()
        self._asked: set[int] = set()
        self._generation = 0
        self._waiting: dict[Hashable, QPersistentModelIndex] = {}
        self._pixels = 160
        self._ratio = 1.0

    @property
    def query(self) -> str:
        return self._query

    @property
    def favourites_only(self) -> bool:
        return self._favourites_only

    def set_filter(self, query: str, favourites_only: bool) -> None:
        """Show the images whose prompt holds `query` (and only favourites if asked)."""
        self._query, self._favourites_only = query.strip(), favourites_only
        self.reload()

    def reload(self) -> None:
        """Re-run the query (the library changed or the filter did); rows come back on a worker."""
        self._generation += 1
        generation, query, favourites = self._generation, self._query, self._favourites_only

        def op() -> tuple[int, list[ImageRecord]]:
            total = self.library.count(query, favourites, sweeps=False)
            return total, self.library.images(query, favourites, 0, PAGE_SIZE, sweeps=False)

        Task(self, op, success=lambda result: self._reset(generation, *result), failure=self._failed, busy=False).run()

    def set_thumbnail_size(self, pixels: int, ratio: float = 1.0) -> None:
        """Thumbnails now fit a `pixels` square (logical); pending renders for the old size are dropped."""
        if (pixels, ratio) == (self._pixels, self._ratio):
            return
        self._pixels, self._ratio = pixels, ratio
        self.thumbnails.clear()
        self._waiting.clear()
        if self._total:
            self.dataChanged.emit(self.index(0), self.index(self._total - 1), [ThumbnailRole])

    @property
    def thumbnail_pixels(self) -> int:
        """The side of the thumbnails being made, in device pixels."""
        return round(self._pixels * self._ratio)

    def record(self, row: int) -> ImageRecord | None:
        """The record at `row` if its page is in; otherwise None, and the page is fetched."""
        if not 0 <= row < self._total:
            return None
        page = row // PAGE_SIZE
        records = self._pages.get(page)
        if records is None:
            self._fetch(page)
            return None
        self._pages.move_to_end(page)
        offset = row - page * PAGE_SIZE
        return records[offset] if offset < len(records) else None

    def row_of(self, image_id: int) -> int:
        """The row of a loaded record with this id, or -1."""
        for page, records in self._pages.items():
            for offset, record in enumerate(records):
                if record.id == image_id:
                    return page * PAGE_SIZE + offset
        return -1

    def update_record(self, record: ImageRecord) -> None:
        """Show a changed record (a favourite toggled) without a reload."""
        row = self.row_of(record.id) if record.id is not None else -1
        if row < 0:
            return
        page = row // PAGE_SIZE
        self._pages[page][row - page * PAGE_SIZE] = record
        self.dataChanged.emit(self.index(row), self.index(row))

    def set_favourite(
        self, record: ImageRecord, favourite: bool, done: Callable[[ImageRecord], None] | None = None
    ) -> None:
        """Mark or unmark a favourite in the library, then show it."""
        changed = dataclasses.replace(record, favourite=favourite)

        def shown(_: object) -> None:
            self.update_record(changed)
            if self._favourites_only and not favourite:
                self.reload()
            if done is not None:
                done(changed)

        Task(self, lambda: self.library.set_favourite(record.id, favourite), success=shown, lane=Lane.LIBRARY).run()

    def rowCount(
        self,
        parent: QModelIndex | QPersistentModelIndex = QModelIndex(),  # noqa: B008 (Qt's idiom; never mutated)
    ) -> int:
        return 0 if parent.isValid() else self._total

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        record = self.record(index.row())
        if record is None:
            return None
        if role == RecordRole:
            return record
        if role == ThumbnailRole:
            return self.thumbnail(index, record)
        if role == Qt.ItemDataRole.DisplayRole:
            return record.parameters.prompt
        if role == Qt.ItemDataRole.ToolTipRole:
            return _tooltip(record)
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return record.parameters.prompt or "Untitled image"
        return None

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemNeverHasChildren

    def shutdown(self) -> None:
        """Stop thumbnail work and wait for what is running (at exit)."""
        self._generation += 1
        self.thumbnails.shutdown()

    def thumbnail(self, index: QModelIndex | QPersistentModelIndex, record: ImageRecord) -> Any:
        """The cell's pixmap (null when unreadable); while it renders, one of another size or None.

        Asking is what starts the render.
        """
        pixels = round(self._pixels * self._ratio)
        key = (record.path, pixels)
        pixmap = self.thumbnails.pixmap(key)
        if pixmap is None:
            self._waiting[key] = QPersistentModelIndex(index)
            self.thumbnails.request(key, record.path, pixels, self._ratio)
            pixmap = self.thumbnails.latest(record.path)
        return pixmap

    def _thumbnail_ready(self, key: Hashable) -> None:
        index = self._waiting.pop(key, None)
        if index is not None and index.isValid():
            self.dataChanged.emit(self.index(index.row()), self.index(index.row()), [ThumbnailRole])

    def _thumbnails_retry(self, keys: list[Hashable]) -> None:
        for key in keys:
            self._thumbnail_ready(key)

    def _fetch(self, page: int) -> None:
        if page in self._asked:
            return
        self._asked.add(page)
        generation, query, favourites = self._generation, self._query, self._favourites_only
        op = lambda: self.library.images(query, favourites, page * PAGE_SIZE, PAGE_SIZE, sweeps=False)  # noqa: E731
        Task(
            self,
            op,
            success=lambda records: self._page_loaded(generation, page, records),
            failure=self._failed,
            busy=False,
        ).run()

    def _reset(self, generation: int, total: int, first: list[ImageRecord]) -> None:
        if generation != self._generation:
            return
        self.beginResetModel()
        self.thumbnails.clear()
        self._waiting.clear()
        self._total = total
        self._pages = OrderedDict({0: first}) if total else OrderedDict()
        self._asked = {0}
        self.endResetModel()
        self.reloaded.emit(total)

    def _page_loaded(self, generation: int, page: int, records: list[ImageRecord]) -> None:
        if generation != self._generation:
            return
        self._pages[page] = records
        while len(self._pages) > KEPT_PAGES:
            old, _ = self._pages.popitem(last=False)
            self._asked.discard(old)
        first = page * PAGE_SIZE
        last = min(first + PAGE_SIZE, self._total) - 1
        if last >= first:
            self.dataChanged.emit(self.index(first), self.index(last))
        if len(records) < last - first + 1:
            self.reload()  # the library shrank under us: count again

    def _failed(self, error: BaseException) -> None:
        self.failed.emit(str(error))


def _tooltip(record: ImageRecord) -> str:
    params = record.parameters
    lines = [params.prompt or "Untitled image"]
    if record.width and record.height:
        lines.append(
            f"{record.width} × {record.height}" + (f" · seed {params.seed}" if params.seed is not None else "")
        )
    if record.engine == "sandbox":
        lines.append("Sandbox test pattern, not a model's image")
    elif is_test_pattern(record):
        lines.append("Demo pattern, not a model's image")
    return "\n".join(lines)

"""Thumbnails for the gallery: rendered on a private thread pool, cached as pixmaps.

Workers read the disk thumbnail (the library's ThumbnailCache makes and keeps it) and return
a QImage; the GUI thread turns it into a QPixmap. At most `MAX_PENDING` renders wait at once,
newest first, because what was asked for last is what is on screen now.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from pathlib import Path

from PySide6.QtCore import QObject, QPoint, QRectF, QRunnable, QSize, Qt, QThreadPool, QTimer, Signal
from PySide6.QtGui import QImage, QImageReader, QPainter, QPainterPath, QPixmap

from app.services.errors import UserError
from app.services.library import checked_size

MAX_PENDING = 32
HOLD_MS = 90  # renders wait while the grid scrolls: rows flying past are not worth a thumbnail
CACHE_BYTES = 96 * 1024 * 1024
TILE_RADIUS = 8  # logical pixels; the delegate's selection ring follows it
DISK_SIZES = (128, 256, 512, 1024)  # the freedesktop normal, large, x-large and xx-large

Render = Callable[[str, int], QImage]
ThumbnailPath = Callable[[str, int], object]  # (image path, size) -> path of a fresh disk thumbnail


def renderer(thumbnail_path: ThumbnailPath) -> Render:
    """A render function that reads disk thumbnails made by `thumbnail_path`."""
    return lambda path, pixels: render_thumbnail(thumbnail_path, path, pixels)


def render_thumbnail(thumbnail_path: ThumbnailPath, path: str, pixels: int) -> QImage:
    """The image at `path` scaled to fit a `pixels` square (worker thread)."""
    disk_size = next((size for size in DISK_SIZES if size >= pixels), DISK_SIZES[-1])
    reader = QImageReader(str(thumbnail_path(path, disk_size)))
    reader.setAutoTransform(True)
    image = reader.read()
    if image.isNull():
        raise OSError(reader.errorString())
    if max(image.width(), image.height()) > pixels:
        image = image.scaled(
            QSize(pixels, pixels), Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
        )
    return image


def read_image(path: str) -> QImage:
    """The whole image at `path`, for the viewer and the clipboard (worker thread); a message names a missing file.

    An image above the app's pixel cap is refused from its header (UserError), before Qt decodes it.
    """
    checked_size(path)
    image = QImage(path)
    if image.isNull():
        raise UserError(f"{Path(path).name} could not be read; it may have been moved or deleted.")
    return image


def tile(image: QImage, pixels: int, radius: float) -> QImage:
    """`image` cropped to fill a `pixels` square, centred, with rounded corners (worker thread).

    Done here so that painting a cell on the GUI thread is one unscaled, unclipped blit.
    """
    scaled = image.scaled(
        QSize(pixels, pixels), Qt.AspectRatioMode.KeepAspectRatioByExpanding, Qt.TransformationMode.SmoothTransformation
    )
    out = QImage(pixels, pixels, QImage.Format.Format_ARGB32_Premultiplied)
    out.fill(Qt.GlobalColor.transparent)
    painter = QPainter(out)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    path = QPainterPath()
    path.addRoundedRect(QRectF(0, 0, pixels, pixels), radius, radius)
    painter.setClipPath(path)
    painter.drawImage(QPoint((pixels - scaled.width()) // 2, (pixels - scaled.height()) // 2), scaled)
    painter.end()
    return out


class _Relay(QObject):
    done = Signal(int, object, object)  # generation, key, QImage or None


class _Job(QRunnable):
    """A Python subclass on purpose: shiboken forgets its wrapper when the pool deletes it, which it
    does not do for `QRunnable.create()` (a stale wrapper then stands in for the next object at that address)."""

    def __init__(
        self, relay: _Relay, render: Render, generation: int, key: Hashable, path: str, pixels: int, radius: float
    ):
        super().__init__()
        self._args = relay, render, generation, key, path, pixels, radius

    def run(self) -> None:
        relay, render, generation, key, path, pixels, radius = self._args
        try:
            image = tile(render(path, pixels), pixels, radius)
        except Exception:  # a missing or unreadable file shows the broken placeholder
            image = None
        relay.done.emit(generation, key, image)


class ThumbnailLoader(QObject):
    """Renders thumbnails off the GUI thread and keeps the recent ones as pixmaps."""

    ready = Signal(object)  # key; its pixmap (null when unreadable) is now in the cache
    retry = Signal(list)  # keys turned away while full; ask again if still on screen

    def __init__(self, render: Render, parent: QObject | None = None, threads: int = 2):
        super().__init__(parent)
        self._render = render
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(threads)
        self._relay = _Relay(self)
        self._relay.done.connect(self._finished)
        self._generation = 0
        self._cache: OrderedDict[Hashable, QPixmap] = OrderedDict()
        self._cache_bytes = 0
        self._queued: OrderedDict[Hashable, tuple[str, int, float]] = OrderedDict()
        self._running: set[Hashable] = set()
        self._turned_away: OrderedDict[Hashable, None] = OrderedDict()
        self._latest: dict[str, Hashable] = {}  # image path -> key of its newest pixmap
        self._hold = QTimer(self, singleShot=True, interval=HOLD_MS)
        self._hold.timeout.connect(self._start)

    def hold(self) -> None:
        """Start no render until the grid has been still for HOLD_MS (call on every scroll step).

        Worker threads compete with the GUI thread for the GIL; while the user scrolls, the GUI
        thread gets it to itself, and what is on screen when scrolling stops is rendered first.
        """
        self._hold.start()

    def pixmap(self, key: Hashable) -> QPixmap | None:
        """The cached pixmap (a null one when the file could not be read), or None."""
        pixmap = self._cache.get(key)
        if pixmap is not None:
            self._cache.move_to_end(key)
        return pixmap

    def latest(self, path: str) -> QPixmap | None:
        """The newest cached pixmap of `path` at any size (drawn scaled while the right one renders)."""
        key = self._latest.get(path)
        pixmap = self._cache.get(key) if key is not None else None
        return pixmap if pixmap is not None and not pixmap.isNull() else None

    @property
    def pending(self) -> int:
        return len(self._queued) + len(self._running)

    def request(self, key: Hashable, path: str, pixels: int, ratio: float = 1.0) -> None:
        """Render `path` at `pixels` device pixels; `ready(key)` follows. The oldest wait is dropped when full."""
        if key in self._cache or key in self._running:
            return
        self._queued.pop(key, None)
        self._queued[key] = (path, pixels, ratio)
        while self.pending > MAX_PENDING and self._queued:
            old, _ = self._queued.popitem(last=False)
            self._turned_away[old] = None
            if len(self._turned_away) > 4 * MAX_PENDING:
                self._turned_away.popitem(last=False)
        self._start()

    def clear(self) -> None:
        """Forget waiting renders (the view changed); running ones finish and are ignored.

        The waiting list is ours (the pool only ever holds what is running), so this is the
        pool being cleared.
        """
        self._generation += 1
        self._queued.clear()
        self._running.clear()
        self._turned_away.clear()

    def clear_cache(self) -> None:
        self._cache.clear()
        self._latest.clear()
        self._cache_bytes = 0

    def shutdown(self) -> None:
        """Stop taking work and wait for the renders in flight (at exit)."""
        self.clear()
        self._pool.waitForDone()

    def _start(self) -> None:
        if self._hold.isActive():
            return
        while self._queued and len(self._running) < self._pool.maxThreadCount():
            key, (path, pixels, ratio) = self._queued.popitem(last=True)
            self._running.add(key)
            self._pool.start(
                _Job(self._relay, self._render, self._generation, (key, ratio, path), path, pixels, TILE_RADIUS * ratio)
            )

    def _finished(self, generation: int, tagged: tuple[Hashable, float, str], image: QImage | None) -> None:
        if generation != self._generation:
            return
        key, ratio, path = tagged
        self._running.discard(key)
        self._latest[path] = key
        if image is None:
            pixmap = QPixmap()
        else:
            pixmap = QPixmap.fromImage(image)
            pixmap.setDevicePixelRatio(ratio)
        self._store(key, pixmap)
        self._start()
        self.ready.emit(key)
        if self._turned_away and len(self._queued) < MAX_PENDING // 2:
            keys = list(self._turned_away)
            self._turned_away.clear()
            self.retry.emit(keys)

    def _store(self, key: Hashable, pixmap: QPixmap) -> None:
        self._cache[key] = pixmap
        self._cache_bytes += _bytes(pixmap)
        while self._cache_bytes > CACHE_BYTES and len(self._cache) > 1:
            _, old = self._cache.popitem(last=False)
            self._cache_bytes -= _bytes(old)


def _bytes(pixmap: QPixmap) -> int:
    return pixmap.width() * pixmap.height() * 4

"""A thumbnail disk cache in the freedesktop layout, made with Pillow.

Each thumbnail is named by the md5 of its source's file URI and stores the source's
URI, mtime and size in its own PNG text, so a changed source gets a fresh one.
Callers run this on a worker thread: it reads and writes the disk. An image above the app's pixel
cap gets no thumbnail (UserError), checked from its header.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image, PngImagePlugin

from app.services.files import replacing
from app.services.library.pixels import checked_size

DEFAULT_SIZE = 256
_FOLDERS = ((128, "normal"), (256, "large"), (512, "x-large"), (1024, "xx-large"))


def _folder(size: int) -> tuple[str, int]:
    for limit, name in _FOLDERS:
        if size <= limit:
            return name, limit
    return _FOLDERS[-1][1], _FOLDERS[-1][0]


class ThumbnailCache:
    """Thumbnails of images under `root/<normal|large|x-large|xx-large>/<md5 of URI>.png`."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def cached_path(self, image_path: str | os.PathLike[str], size: int = DEFAULT_SIZE) -> Path:
        """Where the thumbnail of `image_path` lives, whether or not it exists yet."""
        folder, _ = _folder(size)
        uri = Path(image_path).absolute().as_uri()
        return self.root / folder / f"{hashlib.md5(uri.encode()).hexdigest()}.png"

    def thumbnail_path(self, image_path: str | os.PathLike[str], size: int = DEFAULT_SIZE) -> Path:
        """A fresh thumbnail of `image_path` (at most `size` px a side), made when missing or stale."""
        source = Path(image_path).absolute()
        stat = source.stat()
        target = self.cached_path(source, size)
        if not self._is_fresh(target, stat):
            self._make(source, stat, target, size)
        return target

    def thumbnail_paths(
        self, image_paths: Iterable[str | os.PathLike[str]], size: int = DEFAULT_SIZE, workers: int | None = None
    ) -> list[Path]:
        """Thumbnails of many images, made in parallel (Pillow releases the GIL while it decodes)."""
        with ThreadPoolExecutor(max_workers=workers or min(4, os.cpu_count() or 1)) as pool:
            return list(pool.map(lambda p: self.thumbnail_path(p, size), image_paths))

    def discard(self, image_path: str | os.PathLike[str]) -> None:
        """Remove every cached size of `image_path` (after the image is deleted)."""
        for limit, _ in _FOLDERS:
            self.cached_path(image_path, limit).unlink(missing_ok=True)

    @staticmethod
    def _is_fresh(target: Path, stat: os.stat_result) -> bool:
        try:
            with Image.open(target) as thumb:
                info = thumb.info
        except (OSError, SyntaxError, ValueError):
            return False
        return info.get("Thumb::MTime") == str(int(stat.st_mtime)) and info.get("Thumb::Size") == str(stat.st_size)

    def _make(self, source: Path, stat: os.stat_result, target: Path, size: int) -> None:
        _, limit = _folder(size)
        checked_size(source)
        with Image.open(source) as image:
            image.draft("RGB", (limit, limit))
            if image.mode not in ("RGB", "RGBA"):
                image = image.convert("RGBA" if image.has_transparency_data else "RGB")
            image.thumbnail((limit, limit), Image.Resampling.BICUBIC, reducing_gap=2.0)
            info = PngImagePlugin.PngInfo()
            info.add_text("Thumb::URI", source.as_uri())
            info.add_text("Thumb::MTime", str(int(stat.st_mtime)))
            info.add_text("Thumb::Size", str(stat.st_size))
            info.add_text("Software", "Diffusion Desk")
            target.parent.mkdir(parents=True, exist_ok=True)
            with replacing(target) as temp:
                image.save(temp, format="PNG", pnginfo=info, compress_level=1)

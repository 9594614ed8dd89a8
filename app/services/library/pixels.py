"""The one pixel cap of every decode path (import, download, thumbnails, the viewer), read from the header.

A PNG of one colour at 13000 × 13000 is half a megabyte on disk and 676 MB decoded, so a file's size
says nothing; its header does. Every path asks `checked_size` before it decodes anything.
"""

from __future__ import annotations

import os
import struct
import warnings
from pathlib import Path

from app.services.errors import UserError
from contract import PNG_SIGNATURE

#: The most pixels the app decodes: 4096 × 4096 is 64 MB as RGBA, held at most twice (Pillow or
#: Qt's image, then the viewer's pixmap), which keeps the app within its 400 MB memory goal; it is
#: four times the largest image the contract lets the endpoint make (2048 × 2048), room for upscales.
MAX_IMAGE_PIXELS = 4096 * 4096
_HEADER = len(PNG_SIGNATURE) + 16  # the IHDR chunk's length, type, width and height


def checked_size(path: str | os.PathLike[str], name: str | None = None) -> tuple[int, int] | None:
    """The width and height an image declares, without decoding it; None when no header is readable.

    UserError names the file (or `name`) when it declares more than MAX_IMAGE_PIXELS. A PNG's size is read from
    its IHDR; another format's from Pillow's lazy open (header only), its bomb warning silenced.
    """
    path = Path(path)
    try:
        with path.open("rb") as file:
            head = file.read(_HEADER)
    except OSError:
        return None  # the caller's open says what is wrong (missing, a folder, unreadable)
    if head.startswith(PNG_SIGNATURE) and head[12:16] == b"IHDR":
        width, height = struct.unpack(">II", head[16:24])
    else:
        size = _pillow_size(path)
        if size is None:
            return None
        width, height = size
    if width * height > MAX_IMAGE_PIXELS:
        raise UserError(
            f"{name or path.name} is {width} × {height} pixels ({width * height / 1e6:.0f} megapixels); Diffusion Desk "
            f"opens images of at most {MAX_IMAGE_PIXELS / 1e6:.1f} megapixels (4096 × 4096), so it was not opened."
        )
    return width, height


def _pillow_size(path: Path) -> tuple[int, int] | None:
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(path) as image:
                return image.size
        except Image.DecompressionBombError:
            return (1 << 31, 1)  # more than Pillow itself will open
        except (OSError, SyntaxError, ValueError):
            return None

"""Read and write the PNG `parameters` chunk that Stable Diffusion tools share.

Reading accepts tEXt, zTXt and iTXt (Pillow decodes all three); writing uses tEXt, or
iTXt when the text is not Latin-1, as the other tools do.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from PIL import Image, PngImagePlugin, UnidentifiedImageError

from app.services.errors import UserError
from app.services.files import atomic_write
from app.services.library.pixels import checked_size
from contract import CHUNK_KEY, PNG_SIGNATURE, Parameters, format_parameters, parse_parameters, with_text_chunks


def open_png(path: str | os.PathLike[str], *, load: bool = True) -> Image.Image:
    """Open a PNG (fully decoded when `load`), or raise UserError naming the file and the problem.

    An image above the app's pixel cap is refused from its header, before Pillow reads it.
    """
    path = Path(path)
    checked_size(path)
    try:
        image = Image.open(path)
    except FileNotFoundError:
        raise UserError(f"{path.name} was not found.") from None
    except IsADirectoryError:
        raise UserError(f"{path.name} is a folder, not a PNG image.") from None
    except UnidentifiedImageError:
        if _has_png_signature(path):
            raise UserError(f"{path.name} is a damaged PNG: one of its chunks is corrupt.") from None
        raise UserError(f"{path.name} is not an image Diffusion Desk can read: it is not a PNG.") from None
    except Image.DecompressionBombError:
        raise UserError(f"{path.name} is too large an image to open safely.") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise UserError(f"{path.name} could not be read as a PNG image ({exc}).") from None
    if image.format != "PNG":
        image.close()
        raise UserError(f"{path.name} is a {image.format} image; only PNG images carry generation parameters.")
    if load:
        try:
            image.load()
        except (OSError, SyntaxError, ValueError) as exc:
            image.close()
            raise UserError(f"{path.name} is damaged or incomplete ({exc}).") from None
    return image


def _has_png_signature(path: Path) -> bool:
    try:
        with path.open("rb") as file:
            return file.read(8) == PNG_SIGNATURE
    except OSError:
        return False


def parameters_text(image: Image.Image) -> str | None:
    """The raw `parameters` text of an opened PNG, or None when it has none."""
    value = image.info.get(CHUNK_KEY)
    if value is None and isinstance(image, PngImagePlugin.PngImageFile):
        value = image.text.get(CHUNK_KEY)  # a chunk after the image data
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value if isinstance(value, str) else None


def parameters_of(image: Image.Image, name: str) -> Parameters | None:
    """Parse an opened PNG's chunk; UserError names the file when the text is unreadable."""
    text = parameters_text(image)
    if text is None:
        return None
    try:
        return parse_parameters(text)
    except ValueError as exc:
        raise UserError(f"{name} has a `{CHUNK_KEY}` text that cannot be read: {exc}.") from None


def read_parameters(path: str | os.PathLike[str]) -> Parameters | None:
    """The parameters a PNG carries, None when it carries none; UserError for a bad file or chunk."""
    with open_png(path) as image:
        return parameters_of(image, Path(path).name)


def write_parameters(
    source: Image.Image | str | os.PathLike[str], params: Parameters, dest: str | os.PathLike[str]
) -> Path:
    """Write `source` as a PNG at `dest` carrying `params`, atomically; other text chunks are kept."""
    dest = Path(dest)
    if isinstance(source, Image.Image):
        _save(source, params, dest)
    else:
        with open_png(source) as image:
            _save(image, params, dest)
    return dest


def _save(image: Image.Image, params: Parameters, dest: Path) -> None:
    texts = {key: value for key, value in _text_chunks(image).items() if key != CHUNK_KEY}
    texts[CHUNK_KEY] = format_parameters(params)
    png = io.BytesIO()
    image.save(png, format="PNG")
    atomic_write(dest, with_text_chunks(png.getvalue(), texts))


def _text_chunks(image: Image.Image) -> dict[str, str]:
    text = image.text if isinstance(image, PngImagePlugin.PngImageFile) else image.info
    return {k: v for k, v in text.items() if isinstance(k, str) and isinstance(v, str)}

"""Images a request carries to the model (base64 PNG or JPEG): format and size read from the header first.

The upscaler's `image`, the inpainting model's `image` and `mask_image` and SDXL's `init_image` are
checked here before anything is sent, and read here again by the Lambda, which bounds the output by
the input's size. Nothing is decoded before its size is known; Pillow is imported on first use.
"""

from __future__ import annotations

import base64
import binascii
import io
import struct
import warnings
from dataclasses import dataclass
from typing import Any

from .png import PNG_SIGNATURE
from .request import RequestError

JPEG_SIGNATURE = b"\xff\xd8\xff"
#: A mask pixel at or above this grey level is repainted (the inpainting pipeline binarizes at one half).
MASK_WHITE = 128


@dataclass(frozen=True, slots=True)
class InputImage:
    """One image of a request: its format, its size and its bytes."""

    format: str
    width: int
    height: int
    data: bytes

    @property
    def size(self) -> str:
        return f"{self.width}×{self.height}"


def encode_image(data: bytes) -> str:
    """The base64 text a request carries for an image file's bytes."""
    return base64.b64encode(data).decode("ascii")


def base64_length(size: int) -> int:
    """How many base64 characters `size` bytes take."""
    return 4 * ((size + 2) // 3)


def read_image(name: str, text: Any, *, max_bytes: int) -> InputImage:
    """The PNG or JPEG in `text` (base64), its size from its header; RequestError naming `name` otherwise."""
    if not isinstance(text, str) or not text:
        raise RequestError(name, "must be a PNG or JPEG image as base64 text")
    if len(text) > base64_length(max_bytes):
        raise RequestError(name, f"is {len(text) * 3 // 4 / 1e6:.1f} MB; at most {max_bytes / 1e6:.1f} MB")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(name, "is not valid base64 text") from None
    if data.startswith(PNG_SIGNATURE) and data[12:16] == b"IHDR" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        kind = "PNG"
    elif data.startswith(JPEG_SIGNATURE):
        width, height = _jpeg_size(name, data)
        kind = "JPEG"
    else:
        raise RequestError(name, "is not a PNG or JPEG image")
    if not width or not height:
        raise RequestError(name, f"declares a {width}×{height} image")
    return InputImage(kind, width, height, data)


def _jpeg_size(name: str, data: bytes) -> tuple[int, int]:
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                return img.width, img.height
    except Image.DecompressionBombError:
        raise RequestError(name, "declares more pixels than any model here takes") from None
    except (UnidentifiedImageError, OSError, ValueError):
        raise RequestError(name, "is not a readable JPEG image") from None


def check_sides(name: str, image: InputImage, low: int, high: int, multiple_of: int = 1) -> None:
    """RequestError unless both sides are from `low` to `high` (and multiples of `multiple_of`)."""
    allowed = f"{low} to {high} pixels" + (f", multiples of {multiple_of}" if multiple_of > 1 else "")
    for side in (image.width, image.height):
        if not low <= side <= high or side % multiple_of:
            raise RequestError(name, f"is {image.size} pixels; each side must be {allowed}")


def decoded(name: str, image: InputImage) -> Any:
    """The image as a Pillow image (its size already checked), or RequestError when its data is broken."""
    from PIL import Image, UnidentifiedImageError

    try:
        picture = Image.open(io.BytesIO(image.data))
        picture.load()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise RequestError(name, f"is not a readable {image.format} image (it may be truncated)") from None
    return picture


def mask_coverage(name: str, mask: InputImage) -> float:
    """The share of the mask that is white (repainted), from 0 to 1."""
    with decoded(name, mask) as picture:
        histogram = picture.convert("L").histogram()
    return sum(histogram[MASK_WHITE:]) / (mask.width * mask.height)

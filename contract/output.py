"""The model's output: `{"generated_images": [...], "prompt": ...}` in either Accept form.

`application/json` gives each image as nested RGB arrays (H × W × 3, 0–255);
`application/json;jpeg` gives each as a base64 JPEG string.
"""

from __future__ import annotations

import base64
import binascii
import io
from typing import Any

import numpy as np
import orjson

ACCEPT_RGB = "application/json"
ACCEPT_JPEG = "application/json;jpeg"
ACCEPTS = (ACCEPT_RGB, ACCEPT_JPEG)


class OutputError(ValueError):
    """The model output cannot be turned into images; the message says why, for a person."""


def decode_output(body: bytes) -> list[np.ndarray]:
    """Every image in the output as an (H, W, 3) uint8 array."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise OutputError("the model output is not valid JSON (it may be truncated)") from None
    if not isinstance(data, dict):
        raise OutputError("the model output is not a JSON object")
    images = data.get("generated_images")
    if not isinstance(images, list):
        raise OutputError("the model output has no list of generated_images")
    if not images:
        raise OutputError("the model output's generated_images list is empty")
    return [decode_image(image, index) for index, image in enumerate(images)]


def decode_image(image: Any, index: int = 0) -> np.ndarray:
    if isinstance(image, str):
        return _decode_jpeg(image, index)
    return _decode_rgb(image, index)


def _decode_rgb(image: Any, index: int) -> np.ndarray:
    where = f"image {index + 1}"
    if not isinstance(image, list) or not image:
        raise OutputError(f"{where} is neither nested RGB arrays nor a base64 JPEG")
    try:
        array = np.array(image)
    except ValueError:
        raise OutputError(f"{where} has rows or pixels of different lengths") from None
    if array.dtype == object or array.ndim != 3:
        raise OutputError(f"{where} has rows or pixels of different lengths")
    if array.shape[2] != 3:
        raise OutputError(f"{where} has pixels with {array.shape[2]} channels; expected 3 (RGB)")
    if array.dtype.kind not in "iu":
        raise OutputError(f"{where} has values that are not whole numbers 0–255")
    if array.size and (array.min() < 0 or array.max() > 255):
        raise OutputError(f"{where} has values outside 0–255")
    return array.astype(np.uint8)


def _decode_jpeg(text: str, index: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        raw = base64.b64decode(text, validate=True)
        with Image.open(io.BytesIO(raw)) as img:
            return np.asarray(img.convert("RGB"))
    except (binascii.Error, ValueError, UnidentifiedImageError, OSError):
        raise OutputError(f"image {index + 1} is a string but not a base64 JPEG") from None


def encode_output(images: list[np.ndarray], prompt: str, accept: str = ACCEPT_RGB) -> bytes:
    """Serialize images the way JumpStart does for the given Accept type."""
    if accept == ACCEPT_JPEG:
        from PIL import Image

        encoded: list[Any] = []
        for image in images:
            buf = io.BytesIO()
            Image.fromarray(image, "RGB").save(buf, "JPEG", quality=95)
            encoded.append(base64.b64encode(buf.getvalue()).decode("ascii"))
        return orjson.dumps({"generated_images": encoded, "prompt": prompt})
    return orjson.dumps(
        {"generated_images": [np.ascontiguousarray(i, dtype=np.uint8) for i in images], "prompt": prompt},
        option=orjson.OPT_SERIALIZE_NUMPY,
    )

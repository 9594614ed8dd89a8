"""The model's output: `{"generated_images": [...], "prompt": ...}` in either Accept form.

`application/json` gives each image as nested RGB arrays (H × W × 3, 0–255);
`application/json;jpeg` gives each as a base64 JPEG string. Where numpy is installed
(the Lambda, the tools) the nested arrays are parsed straight from the bytes into numpy,
with no Python object per pixel, and images are (H, W, 3) uint8 arrays. The packaged
desktop app leaves numpy out: its sandbox takes the plain path, same rules, and images
are `Pixels`.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import struct
import warnings
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import chain
from typing import Any, Protocol

import orjson

try:
    import numpy as np
except ImportError:  # the packaged desktop app
    np = None

from .parameters import CHUNK_KEY
from .png import PNG_SIGNATURE, png_chunk, text_chunk
from .request import LIMITS, MAX_REQUEST_BYTES

ACCEPT_RGB = "application/json"
ACCEPT_JPEG = "application/json;jpeg"
ACCEPTS = (ACCEPT_RGB, ACCEPT_JPEG)


def rgb_output_bytes(width: int, height: int, images: int) -> int:
    """The most bytes a lossless (`application/json`) output of such a request can have.

    JumpStart writes it with json.dumps: at worst every value has 3 digits, and `, ` stands between
    values, pixels, rows and images. The rest of the output (the prompt echoed, escaped) is bounded by
    six bytes for each byte of the largest request.
    """
    pixel = 1 + 3 * 3 + 2 * 2 + 1
    row = 2 + width * pixel + (width - 1) * 2
    image = 2 + height * row + (height - 1) * 2
    return 2 + images * image + (images - 1) * 2 + 6 * MAX_REQUEST_BYTES


#: The largest output any valid request can produce (about 571 MB: 8 images of 2048 × 2048 as RGB
#: JSON); the decoder refuses more, so a wrong object cannot exhaust the Lambda's memory.
MAX_OUTPUT_BYTES = rgb_output_bytes(
    int(LIMITS["width"].high), int(LIMITS["height"].high), int(LIMITS["num_images_per_prompt"].high)
)


class OutputError(ValueError):
    """The model output cannot be turned into images; the message says why, for a person."""


class OutputTooLarge(OutputError):
    """The output holds more images, or larger ones, than its request allows."""


def _compact_image_bytes(width: int, height: int) -> int:
    """The most bytes a width × height image takes as compact JSON arrays (3 digits a value, no spaces)."""
    row = 2 + width * 13 + (width - 1)
    return 2 + height * row + (height - 1)


@dataclass(frozen=True, slots=True)
class OutputLimits:
    """What a request lets its output hold: at most `images` images of at most `width` × `height`.

    Checked before any image is decoded (a JPEG's size from its header, an array's from its text's
    length), so an output that is small on the wire but huge decoded is refused at bounded memory.
    """

    width: int = int(LIMITS["width"].high)
    height: int = int(LIMITS["height"].high)
    images: int = int(LIMITS["num_images_per_prompt"].high)

    @classmethod
    def for_request(cls, request: Mapping[str, Any]) -> OutputLimits:
        """The request's width, height and num_images_per_prompt where each is a whole number from 1 to the
        contract's maximum, else that maximum (no request, another client's, an unusable value)."""
        values = {}
        for name, field_name in (("width", "width"), ("height", "height"), ("images", "num_images_per_prompt")):
            value, limit = request.get(field_name), LIMITS[field_name]
            if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= limit.high:
                values[name] = value
        return cls(**values)

    def check_count(self, count: int) -> None:
        if count > self.images:
            raise OutputTooLarge(
                f"the model output holds {count} images; the request allows at most {self.images}, so none was decoded"
            )

    def check_size(self, width: int, height: int, index: int) -> None:
        if width > self.width or height > self.height:
            raise OutputTooLarge(
                f"image {index + 1} is {width} × {height} pixels; the request allows at most "
                f"{self.width} × {self.height}, so it was not decoded"
            )

    def check_text(self, compact_bytes: int, index: int) -> None:
        """An image's nested arrays, before parsing: more text than the largest allowed image can take."""
        most = _compact_image_bytes(self.width, self.height)
        if compact_bytes > most:
            raise OutputTooLarge(
                f"image {index + 1} has {_amount(compact_bytes)} of pixel values, more than an image of "
                f"{self.width} × {self.height} can hold ({_amount(most)}), so it was not decoded"
            )


ANY_REQUEST = OutputLimits()


def _amount(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.0f} KB"


#: Why one image cannot be read, in the words of both paths (numpy and plain): each follows
#: "image <n>" or a place in it ("image <n> at row <r>, column <c> (green)").
_IMAGE_PROBLEMS = {
    "neither": "is neither nested RGB arrays nor a base64 JPEG",
    "not_numbers": "holds values that are not numbers",
    "not_jpeg": "is a string but not a base64 JPEG",
    "not_image": "is not a base64 PNG or JPEG",
    "space": "is not valid JSON: two numbers are separated by a space, not a comma",
    "misplaced": "is not valid JSON arrays of pixels (misplaced commas or brackets)",
    "leading_zeros": "has a number with leading zeros, which is not valid JSON",
    "not_rows": "is not rows of [red, green, blue] pixels",
    "outside": "is not rows of [red, green, blue] pixels: a value stands outside a pixel",
    "deeper": "is nested deeper than rows of [red, green, blue] pixels",
    "empty": "has an empty row or pixel",
    "channels": "has a pixel with {count} values; each pixel needs exactly 3 (red, green, blue)",
    "ragged": "has rows of different lengths: row 1 has {first} pixels, row {row} has {length}",
    "value": "has the value {value}; every value must be from 0 to 255",
    "above_999": "has a value above 999; every value must be from 0 to 255",
    "negative": "has negative values; every value must be a whole number from 0 to 255",
    "decimal": "has decimal values; every value must be a whole number from 0 to 255",
    "text": "has text where a pixel value should be",
    "literal": "has null, true or false where a pixel value should be",
    "object": "has a JSON object where a pixel should be",
    "character": "has an unexpected character {char!r} among its pixel values",
}
#: The problem a character in an image's JSON text (numpy path) or a parsed value's type (plain path) shows.
_CHARACTER_PROBLEMS = {
    "-": "negative",
    **dict.fromkeys(".eE+", "decimal"),
    '"': "text",
    **dict.fromkeys("ntf", "literal"),
    **dict.fromkeys("{}", "object"),
}
_TYPE_PROBLEMS = ((float, "decimal"), (str, "text"), (dict, "object"))


def _bad_image(where: int | str, problem: str, **values: Any) -> OutputError:
    """The error for image number `where` (from 0), or a place in an image, with the table's sentence."""
    place = f"image {where + 1}" if isinstance(where, int) else where
    return OutputError(f"{place} {_IMAGE_PROBLEMS[problem].format(**values)}")


class RGBImage(Protocol):
    """An 8-bit RGB image: a numpy array or `Pixels`; both have these two."""

    @property
    def shape(self) -> tuple[int, ...]: ...

    def tobytes(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Pixels:
    """An 8-bit RGB image as rows of r, g, b bytes: the form images take without numpy."""

    height: int
    width: int
    data: bytes

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.height, self.width, 3)

    def tobytes(self) -> bytes:
        return self.data


def image_from_pil(picture: Any) -> RGBImage:
    """A Pillow image as this module's image: an array where numpy is installed, else Pixels."""
    rgb = picture.convert("RGB")
    if np is not None:
        return np.asarray(rgb, dtype=np.uint8)
    return Pixels(rgb.height, rgb.width, rgb.tobytes())


def image_to_pil(image: RGBImage) -> Any:
    from PIL import Image as PILImage

    height, width = image.shape[:2]
    return PILImage.frombytes("RGB", (width, height), image.tobytes())


@dataclass(frozen=True, slots=True)
class ModelOutput:
    """The decoded output: its images, the prompt, other plain fields."""

    images: list[RGBImage]
    prompt: str | None = None
    details: dict[str, str | int | float | bool] = field(default_factory=dict)
    #: Plain values the model gave for each image (SDXL's artifacts: the seed it used, its finish reason).
    image_details: tuple[dict[str, str | int | float | bool], ...] = ()


def read_output(body: bytes, limits: OutputLimits = ANY_REQUEST) -> ModelOutput:
    """Decode every image and keep the prompt and the other top-level plain values.

    `limits` (the request's, else the contract's maximum) is checked before any image is decoded.
    """
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise OutputError("the model output is not bytes")
    if len(body) > MAX_OUTPUT_BYTES:
        raise OutputError(
            f"the model output is {len(body) / 1e6:.0f} MB, more than the largest request can produce "
            f"({MAX_OUTPUT_BYTES / 1e6:.0f} MB)"
        )
    body = bytes(body)
    if np is None:
        return _read_plain(body, limits)
    spans = _quick_spans(body)
    if spans is not None:
        try:
            return _read(body, spans, limits)
        except OutputTooLarge:
            raise
        except OutputError:
            pass
    return _read(body, _exact_spans(body), limits)


def decode_output(body: bytes) -> list[RGBImage]:
    """Every image in the output."""
    return read_output(body).images


def decode_image(image: Any, index: int = 0, limits: OutputLimits = ANY_REQUEST) -> RGBImage:
    """One already-parsed image: nested RGB lists or a base64 JPEG string, within `limits`."""
    if isinstance(image, str):
        return _decode_jpeg(image, index, limits)
    if not isinstance(image, list) or not image:
        raise _bad_image(index, "neither")
    if np is None:
        return _plain_image(image, index, limits)
    try:
        raw = orjson.dumps(image)
    except (TypeError, orjson.JSONEncodeError):
        raise _bad_image(index, "not_numbers") from None
    return _parse_checked(raw, 0, len(raw) - 1, index, limits)


def _read(body: bytes, spans: list[tuple[int, int]], limits: OutputLimits) -> ModelOutput:
    """Parse the output with each image span standing in as a placeholder, then each image."""
    data = _load_skeleton(body, spans)
    decoded = []
    for index, image in enumerate(_image_list(data, limits)):
        span = _placeholder_span(image, spans)
        if span is not None:
            decoded.append(_parse_checked(body, span[0], span[1], index, limits))
        elif isinstance(image, str):
            decoded.append(_decode_jpeg(image, index, limits))
        else:
            raise _bad_image(index, "neither")
    return _model_output(data, decoded)


def _parse_checked(body: bytes, start: int, end: int, index: int, limits: OutputLimits) -> np.ndarray:
    """The image whose JSON text is body[start : end + 1], its length and then its shape checked."""
    spaces = sum(body.count(bytes([char]), start, end + 1) for char in _SPACES)
    limits.check_text(end + 1 - start - spaces, index)
    image = _parse_image(body[start : end + 1], index)
    limits.check_size(image.shape[1], image.shape[0], index)
    return image


def _read_plain(body: bytes, limits: OutputLimits) -> ModelOutput:
    """The whole output parsed into Python objects, then each image checked (no numpy)."""
    data = _load_skeleton(body, [])
    images = _image_list(data, limits)
    return _model_output(data, [decode_image(image, index, limits) for index, image in enumerate(images)])


def _image_list(data: dict[str, Any], limits: OutputLimits) -> list[Any]:
    images = data.get("generated_images")
    if not isinstance(images, list):
        raise OutputError("the model output has no list of generated_images")
    if not images:
        raise OutputError("the model output's generated_images list is empty")
    limits.check_count(len(images))
    return images


def _model_output(data: dict[str, Any], decoded: list[RGBImage]) -> ModelOutput:
    prompt = data.get("prompt") if isinstance(data.get("prompt"), str) else None
    details = {
        key: value
        for key, value in data.items()
        if key not in ("generated_images", "prompt") and isinstance(value, (str, int, float, bool))
    }
    return ModelOutput(decoded, prompt, details)


def _parse_image(raw: bytes, index: int) -> np.ndarray:
    """One image's JSON text as an (H, W, 3) array; whitespace may stand only between tokens."""
    compact = raw.translate(None, _SPACES)
    try:
        image = _parse_bands(compact, index)
    except _Irregular:
        image = None
    if len(compact) != len(raw) and _runs(raw) != (image.size if image is not None else _runs(compact)):
        raise _bad_image(index, "space")
    if image is None:
        raise _describe_bad_image(compact, index)
    return image


def _parse_bands(compact: bytes, index: int) -> np.ndarray:
    """Parse an image a band of rows at a time, so the work stays in cache and memory stays small."""
    if not (compact.startswith(b"[[[") and compact.endswith(b"]]]")):
        raise _Irregular
    bands: list[np.ndarray] = []
    start, end, rows = 1, len(compact) - 1, 0
    while start < end:
        cut = compact.find(b"]],[[", start + _BAND, end) if start + _BAND < end else -1
        stop = cut + 2 if cut >= 0 else end
        band = _parse_rows(b"[" + compact[start:stop] + b"]", index, rows)
        if bands and band.shape[1] != bands[0].shape[1]:
            raise _Irregular
        bands.append(band)
        rows += band.shape[0]
        start = stop + 1
    return bands[0] if len(bands) == 1 else np.concatenate(bands)


def _runs(text: bytes) -> int:
    """How many runs of digits the text holds (whitespace must never join two of them)."""
    data = np.frombuffer(text, dtype=np.uint8)
    count, previous = 0, False
    for low in range(0, data.size, _SCAN_CHUNK):
        digit = (data[low : low + _SCAN_CHUNK] - ord("0")) < 10
        count += int(np.count_nonzero(digit[1:] > digit[:-1])) + int(digit[0] and not previous)
        previous = bool(digit[-1])
    return count


_OPEN, _CLOSE, _QUOTE, _BACKSLASH = ord("["), ord("]"), ord('"'), ord("\\")
_IMAGE_LEVEL = 3  # the object is level 1, generated_images level 2, each image level 3
_STRUCTURE = re.compile(rb'[\[\]{}"]')
_QUICK_STEPS = 10_000
_SCAN_CHUNK = 1 << 20
_BAND = 1 << 18  # bytes of compact text per band of rows
if np is not None:
    _DEPTH_STEP = np.zeros(256, dtype=np.int8)
    _DEPTH_STEP[[ord("["), ord("{")]] = 1
    _DEPTH_STEP[[ord("]"), ord("}")]] = -1
_PLACEHOLDER = "\x00"
_SPACES = b" \t\r\n"


def _not_json() -> OutputError:
    return OutputError("the model output is not valid JSON (it may be truncated)")


def _string_end(body: bytes, start: int) -> int | None:
    """The index after the string that opens at `start`, or None if it never closes."""
    end = body.find(b'"', start + 1)
    while end > 0:
        before = end
        while body[before - 1] == _BACKSLASH:
            before -= 1
        if (end - before) % 2 == 0:
            return end + 1
        end = body.find(b'"', end + 1)
    return None


def _quick_spans(body: bytes) -> list[tuple[int, int]] | None:
    """Image spans, assuming each image ends at its first `]]]` (true of compact JSON and of
    json.dumps). Anything unusual returns None; a wrong guess fails verification later."""
    spans: list[tuple[int, int]] = []
    depth = pos = 0
    for _ in range(_QUICK_STEPS):
        match = _STRUCTURE.search(body, pos)
        if match is None:
            return spans if depth == 0 else None
        at = match.start()
        char = body[at]
        if char == _QUOTE:
            pos = _string_end(body, at)
            if pos is None:
                return None
            continue
        depth += 1 if char in b"[{" else -1
        if depth < 0:
            return None
        pos = at + 1
        if depth == _IMAGE_LEVEL and char == _OPEN:
            end = _first_triple_close(body, at)
            if end < 0:
                return None
            spans.append((at, end + 2))
            depth -= 1
            pos = end + 3
    return None


def _first_triple_close(body: bytes, start: int) -> int:
    """Where the first `]]]` at or after `start` begins, or -1 (numpy: bytes.find is slow on `]`-dense text)."""
    text = np.frombuffer(body, dtype=np.uint8)
    for low in range(start, text.size, _SCAN_CHUNK):
        close = text[low : low + _SCAN_CHUNK + 2] == _CLOSE
        hits = close[:-2] & close[1:-1] & close[2:]
        if hits.any():
            return low + int(np.argmax(hits))
    return -1


def _string_spans(body: bytes, text: np.ndarray) -> np.ndarray:
    """(k, 2) first and last byte of every JSON string, so brackets inside them are ignored."""
    quotes = np.concatenate(
        [np.flatnonzero(text[i : i + _SCAN_CHUNK] == _QUOTE) + i for i in range(0, text.size, _SCAN_CHUNK)]
        or [np.empty(0, dtype=np.intp)]
    )
    if quotes.size and body.find(b"\\") >= 0:
        unescaped = []
        for q in quotes.tolist():
            start = q
            while start > 0 and body[start - 1] == _BACKSLASH:
                start -= 1
            if (q - start) % 2 == 0:
                unescaped.append(q)
        quotes = np.array(unescaped, dtype=np.intp)
    if quotes.size % 2:
        raise _not_json()
    return quotes.reshape(-1, 2)


def _exact_spans(body: bytes) -> list[tuple[int, int]]:
    """Image spans by bracket depth over the whole body, in bounded chunks (any layout)."""
    text = np.frombuffer(body, dtype=np.uint8)
    strings = _string_spans(body, text)
    opens: list[np.ndarray] = []
    closes: list[np.ndarray] = []
    depth = 0
    for start in range(0, text.size, _SCAN_CHUNK):
        chunk = text[start : start + _SCAN_CHUNK]
        step = _DEPTH_STEP[chunk]
        first, last = np.searchsorted(strings[:, 1], start), np.searchsorted(strings[:, 0], start + chunk.size)
        for a, b in strings[first:last].tolist():
            step[max(a - start, 0) : b - start + 1] = 0
        level = np.cumsum(step, dtype=np.int32)
        level += depth
        if level.min() < 0:
            raise _not_json()
        depth = int(level[-1])
        opens.append(np.flatnonzero((level == _IMAGE_LEVEL) & (step == 1) & (chunk == _OPEN)) + start)
        closes.append(np.flatnonzero((level == _IMAGE_LEVEL - 1) & (step == -1) & (chunk == _CLOSE)) + start)
    if depth != 0:
        raise _not_json()
    starts = np.concatenate(opens) if opens else np.empty(0, dtype=np.intp)
    ends = np.concatenate(closes) if closes else np.empty(0, dtype=np.intp)
    if starts.size != ends.size or np.any(ends < starts) or np.any(starts[1:] < ends[:-1]):
        raise _not_json()
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def _load_skeleton(body: bytes, spans: list[tuple[int, int]]) -> dict[str, Any]:
    """Parse the output with each image-level array replaced by a small placeholder string."""
    if spans:
        parts, previous = [], 0
        for number, (start, end) in enumerate(spans):
            parts += [body[previous:start], b'"\\u0000%d"' % number]
            previous = end + 1
        parts.append(body[previous:])
        skeleton = b"".join(parts)
    else:
        skeleton = body
    try:
        data = orjson.loads(skeleton)
    except orjson.JSONDecodeError:
        raise _not_json() from None
    if not isinstance(data, dict):
        raise OutputError("the model output is not a JSON object")
    return data


def _placeholder_span(image: Any, spans: list[tuple[int, int]]) -> tuple[int, int] | None:
    if isinstance(image, str) and image.startswith(_PLACEHOLDER) and image[1:].isdigit():
        number = int(image[1:])
        if number < len(spans):
            return spans[number]
    return None


class _Irregular(Exception):
    """The text is not exactly rows of [r, g, b] pixels; the slow path says why."""


def _parse_rows(compact: bytes, index: int, first_row: int = 0) -> np.ndarray:
    """Parse one `[[[r,g,b],…],…]` without whitespace into an (H, W, 3) uint8 array.

    Such text is exactly `[[[` n `,` n `,` n `],[` … `]],[[` … `]]]` with runs of 1–3 digits.
    Checking every run and every gap between runs is as strict as json.loads and needs no
    Python object per value. Raise _Irregular otherwise.
    """
    text = np.frombuffer(compact, dtype=np.uint8)
    digit = (text - ord("0")) < 10
    ends = np.flatnonzero(digit[:-1] > digit[1:])
    if not (compact.startswith(b"[[[") and compact.endswith(b"]]]") and ends.size and ends[-1] == text.size - 4):
        raise _Irregular
    value, length = _numbers(text, digit, ends)
    del digit
    gaps = np.empty(ends.size, dtype=np.int32)
    np.subtract(ends[1:], ends[:-1], out=gaps[:-1], casting="unsafe")
    gaps[:-1] -= length[1:]
    gaps[-1] = 5
    per_row = int(np.argmax(gaps >= 5)) + 1
    if gaps.max() > 5 or per_row % 3 or ends.size % per_row or ends[0] + 1 - length[0] != 3:
        raise _Irregular
    shape = (ends.size // per_row, per_row // 3)
    if not _well_laid_out(text, ends, gaps.reshape(shape[0], per_row)):
        raise _Irregular
    del gaps, ends
    _check_values(value, length, shape, index, first_row)
    return value.astype(np.uint8).reshape(*shape, 3)


def _numbers(text: np.ndarray, digit: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The value and digit count of each run, read back from its last digit (4 means 4 or more)."""
    at = ends - 1
    value = text[ends].astype(np.uint16)
    value -= ord("0")
    more = digit[at]
    length = more.astype(np.uint8)
    place = text[at]
    place -= ord("0")
    place *= more
    value += place * np.uint16(10)
    at -= 1
    more &= digit[at]
    length += more
    place = text[at]
    place -= ord("0")
    place *= more
    value += place * np.uint16(100)
    at -= 1
    more &= digit[at]
    length += more
    length += 1
    return value, length


def _well_laid_out(text: np.ndarray, ends: np.ndarray, gaps: np.ndarray) -> bool:
    """Each gap is `,` inside a pixel, `],[` between pixels and `]],[[` between rows.

    `gaps` is (H, W·3): the length of the gap after each run; its first byte is folded in so
    that one comparison with a one-row pattern checks both.
    """
    height, row_size = gaps.shape
    width = row_size // 3
    gaps <<= 8
    gaps |= text[ends + 1].reshape(gaps.shape)
    pattern = np.full((width, 3), (1 << 8) | ord(","), dtype=gaps.dtype)
    pattern[:, 2] = (3 << 8) | _CLOSE
    pattern[-1, 2] = (5 << 8) | _CLOSE
    if not np.array_equal(gaps, np.broadcast_to(pattern.reshape(1, row_size), gaps.shape)):
        return False
    pixel_ends = ends[2::3].reshape(height, width)
    second = text[pixel_ends + 2]
    pattern = np.full(width, ord(","), dtype=np.uint8)
    pattern[-1] = _CLOSE
    if not np.array_equal(second, np.broadcast_to(pattern, second.shape)):
        return False
    third = text[pixel_ends + 3]
    pattern = np.full(width, _OPEN, dtype=np.uint8)
    pattern[-1] = ord(",")
    if not (np.array_equal(third[:-1], np.broadcast_to(pattern, (height - 1, width))) and third[-1, -1] == _CLOSE):
        return False
    if not np.array_equal(third[-1, :-1], pattern[:-1]):
        return False
    row_ends = pixel_ends[:-1, -1]
    return bool(np.all(text[row_ends + 4] == _OPEN) and np.all(text[row_ends + 5] == _OPEN))


def _check_values(value: np.ndarray, length: np.ndarray, shape: tuple[int, int], index: int, first_row: int) -> None:
    leading_zero = ((length == 2) & (value < 10)) | ((length == 3) & (value < 100))
    if leading_zero.any():
        where = _where_value(int(np.argmax(leading_zero)), shape, index, first_row)
        raise _bad_image(where, "leading_zeros")
    too_big = (length > 3) | (value > 255)
    if too_big.any():
        number = int(np.argmax(too_big))
        where = _where_value(number, shape, index, first_row)
        if length[number] > 3:
            raise _bad_image(where, "above_999")
        raise _bad_image(where, "value", value=int(value[number]))


def _where_value(number: int, shape: tuple[int, int], index: int, first_row: int) -> str:
    pixel, channel = divmod(number, 3)
    row, column = divmod(pixel, shape[1])
    row += first_row
    colour = ("red", "green", "blue")[channel]
    return f"image {index + 1} at row {row + 1}, column {column + 1} ({colour})"


_BAD, _DIGIT, _LIST_OPEN, _LIST_CLOSE, _COMMA = range(5)
if np is not None:
    _KIND = np.full(256, _BAD, dtype=np.uint8)
    _KIND[ord("0") : ord("9") + 1] = _DIGIT
    _KIND[_OPEN], _KIND[_CLOSE], _KIND[ord(",")] = _LIST_OPEN, _LIST_CLOSE, _COMMA


def _describe_bad_image(compact: bytes, index: int) -> OutputError:
    """Say, for a person, why a span is not rows of [r, g, b] pixels (the slow, rare path)."""
    text = np.frombuffer(compact, dtype=np.uint8)
    kind = _KIND[text]
    bad = np.flatnonzero(kind == _BAD)
    if bad.size:
        return _bad_character(chr(int(text[bad[0]])), index)
    digit = kind == _DIGIT
    long_runs = digit[3:] & digit[2:-1] & digit[1:-2] & digit[:-3]
    if long_runs.any():
        return _bad_image(index, "above_999")
    starts = ~digit
    starts[1:] |= digit[1:] & starts[:-1]
    tokens = kind[starts]
    step = np.zeros(tokens.size, dtype=np.int32)
    step[tokens == _LIST_OPEN] = 1
    step[tokens == _LIST_CLOSE] = -1
    level = np.cumsum(step, dtype=np.int32)
    numbers = tokens == _DIGIT
    opens = tokens == _LIST_OPEN
    if np.any(opens & (level > 3)):
        return _bad_image(index, "deeper")
    if np.any(numbers & (level < 3)):
        return _bad_image(index, "outside")
    if np.any(opens[:-1] & (tokens[1:] == _LIST_CLOSE)):
        return _bad_image(index, "empty")
    pixel_opens = np.flatnonzero(opens & (level == 3))
    pixel_closes = np.flatnonzero((tokens == _LIST_CLOSE) & (level == 2))
    if pixel_opens.size and pixel_opens.size == pixel_closes.size:
        seen = np.cumsum(numbers, dtype=np.int32)
        channels = seen[pixel_closes] - seen[pixel_opens]
        odd = np.flatnonzero(channels != 3)
        if odd.size:
            return _bad_image(index, "channels", count=int(channels[odd[0]]))
    row_opens = np.flatnonzero(opens & (level == 2))
    if row_opens.size > 1:
        pixels_seen = np.cumsum(opens & (level == 3), dtype=np.int32)
        row_ends = np.append(row_opens[1:], tokens.size - 1)
        lengths = pixels_seen[row_ends] - pixels_seen[row_opens]
        odd = np.flatnonzero(lengths != lengths[0])
        if odd.size:
            return _bad_image(index, "ragged", first=int(lengths[0]), row=int(odd[0]) + 1, length=int(lengths[odd[0]]))
    if row_opens.size == 0:
        return _bad_image(index, "not_rows")
    return _bad_image(index, "misplaced")


def _bad_character(char: str, index: int) -> OutputError:
    problem = _CHARACTER_PROBLEMS.get(char)
    return _bad_image(index, problem) if problem else _bad_image(index, "character", char=char)


def _plain_image(rows: list[Any], index: int, limits: OutputLimits) -> Pixels:
    """Nested RGB lists as Pixels, a row at a time, with the fast path's rules and messages."""
    width = len(rows[0]) if isinstance(rows[0], list) else 0
    limits.check_size(width, len(rows), index)
    data = bytearray()
    for number, row in enumerate(rows):
        if not isinstance(row, list):
            raise _bad_image(index, "outside")
        if not row:
            raise _bad_image(index, "empty")
        values = list(chain.from_iterable(pixel if type(pixel) is list else [pixel] for pixel in row))
        if (
            len(values) != 3 * len(row)
            or set(map(type, values)) != {int}
            or not all(type(pixel) is list for pixel in row)
        ):
            raise _plain_problem(row, index)
        if len(row) != width:
            raise _bad_image(index, "ragged", first=width, row=number + 1, length=len(row))
        try:
            data += bytes(values)
        except ValueError:
            value = next(v for v in values if not 0 <= v <= 255)
            if value < 0:
                raise _bad_image(index, "negative") from None
            raise _bad_image(index, "value", value=value) from None
    return Pixels(len(rows), width, bytes(data))


def _plain_problem(row: list[Any], index: int) -> OutputError:
    """Why a row is not [r, g, b] pixels of whole numbers, for a person."""
    for pixel in row:
        if not isinstance(pixel, list):
            return _bad_image(index, "outside")
        for value in pixel:
            problem = _value_problem(value)
            if problem:
                return _bad_image(index, problem)
        if len(pixel) != 3:
            return _bad_image(index, "channels", count=len(pixel)) if pixel else _bad_image(index, "empty")
    return _bad_image(index, "not_rows")


def _value_problem(value: Any) -> str | None:
    """What a parsed value that is not a whole number is, in `_IMAGE_PROBLEMS`' words."""
    if isinstance(value, list):
        return "deeper"
    if isinstance(value, bool) or value is None:
        return "literal"
    return next((problem for kind, problem in _TYPE_PROBLEMS if isinstance(value, kind)), None)


def decode_base64_image(text: Any, index: int = 0, limits: OutputLimits = ANY_REQUEST) -> RGBImage:
    """A base64 PNG or JPEG (SDXL's artifacts), its size checked from its header before it is decoded."""
    if not isinstance(text, str):
        raise _bad_image(index, "not_image")
    return _decode_jpeg(text, index, limits, "not_image")


def _decode_jpeg(text: str, index: int, limits: OutputLimits, problem: str = "not_jpeg") -> RGBImage:
    """A base64 image, its size read from its header and checked before its pixels are decoded."""
    from PIL import Image, UnidentifiedImageError

    unreadable = (binascii.Error, ValueError, UnidentifiedImageError, OSError)
    try:
        raw = base64.b64decode(text, validate=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(raw))
    except Image.DecompressionBombError:
        raise OutputTooLarge(
            f"image {index + 1} declares more pixels than Pillow will open; the request allows at most "
            f"{limits.width} × {limits.height}, so it was not decoded"
        ) from None
    except unreadable:
        raise _bad_image(index, problem) from None
    with img:
        limits.check_size(img.width, img.height, index)
        try:
            return image_from_pil(img)
        except unreadable:
            raise _bad_image(index, problem) from None


def encode_output(
    images: list[RGBImage], prompt: str, accept: str = ACCEPT_RGB, details: dict[str, Any] | None = None
) -> bytes:
    """Serialize images the way JumpStart does for the given Accept type.

    `details` adds plain top-level fields (the local cloud's engines add `model`).
    """
    extra = dict(details or {})
    if accept == ACCEPT_JPEG:
        encoded: list[Any] = []
        for image in images:
            buf = io.BytesIO()
            image_to_pil(image).save(buf, "JPEG", quality=95)
            encoded.append(base64.b64encode(buf.getvalue()).decode("ascii"))
        return orjson.dumps({"generated_images": encoded, "prompt": prompt, **extra})
    if np is None:
        return orjson.dumps({"generated_images": [_nested(image) for image in images], "prompt": prompt, **extra})
    return orjson.dumps(
        {"generated_images": [_as_array(image) for image in images], "prompt": prompt, **extra},
        option=orjson.OPT_SERIALIZE_NUMPY,
    )


def _as_array(image: RGBImage) -> Any:
    if isinstance(image, Pixels):
        return np.frombuffer(image.data, dtype=np.uint8).reshape(image.shape)
    return np.ascontiguousarray(image, dtype=np.uint8)


def _nested(image: RGBImage) -> list[list[list[int]]]:
    height, width = image.shape[:2]
    data, stride = image.tobytes(), 3 * width
    return [[list(data[at : at + 3]) for at in range(row * stride, (row + 1) * stride, 3)] for row in range(height)]


_UP_FILTER = 2


def encode_png(image: RGBImage, parameters: str | None = None) -> bytes:
    """A lossless 8-bit RGB PNG, with `parameters` in a text chunk when given.

    Every row uses PNG's Up filter and zlib's RLE strategy: on generated images this is as
    small as Pillow's default PNG and several times faster to write. Without numpy the
    rows are left unfiltered: the same pixels in a somewhat larger file.
    """
    shape = tuple(image.shape)
    if len(shape) != 3 or shape[2] != 3 or not shape[0] or not shape[1]:
        raise ValueError(f"a PNG needs an (H, W, 3) image, not shape {shape}")
    height, width, _ = shape
    deflate = zlib.compressobj(1, zlib.DEFLATED, 15, 9, zlib.Z_RLE)
    if np is None:
        pixels, stride = image.tobytes(), 3 * width
        data = (
            deflate.compress(b"".join(b"\x00" + pixels[at : at + stride] for at in range(0, height * stride, stride)))
            + deflate.flush()
        )
    else:
        array = _as_array(image)
        rows = np.empty((height, 1 + 3 * width), dtype=np.uint8)
        rows[:, 0] = _UP_FILTER
        filtered = rows[:, 1:].reshape(height, width, 3)
        filtered[0] = array[0]
        np.subtract(array[1:], array[:-1], out=filtered[1:])
        data = deflate.compress(rows) + deflate.flush()
        del rows, filtered
    parts = [PNG_SIGNATURE, png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))]
    if parameters is not None:
        parts.append(text_chunk(CHUNK_KEY, parameters))
    parts += [png_chunk(b"IDAT", data), png_chunk(b"IEND", b"")]
    return b"".join(parts)

"""Jobs made from an image: ×4 upscale, inpaint, and extend canvas (outpainting with the inpainting model).

Each tool checks its inputs here, before anything is recorded or sent, and says what is wrong in the user's
words (the file, its size, the family's limit). The result is a `Plan`: the job's request as the queue shows it
(a GenerationRequest of the output's size, which need not be one a text-to-image request may ask for), the family
request's JSON body exactly as it is uploaded, and what the PNGs' parameters say beyond it ("Source seed").
Pillow is imported on first use.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import orjson

from app.services.errors import UserError
from app.services.fields import field_message
from app.services.library.store import Library, request_as_sent
from app.services.models import ImageRecord
from contract import LABELS, Budget, BudgetError, GenerationRequest, RequestError
from contract.families import INPAINT, UPSCALE, Family
from contract.families.inpaint import MAX_IMAGE_BYTES as INPAINT_MAX_BYTES
from contract.families.inpaint import SIDES as INPAINT_SIDES
from contract.families.upscale import INPUT_SIDES, SCALE
from contract.families.upscale import MAX_IMAGE_BYTES as UPSCALE_MAX_BYTES
from contract.images import InputImage, decoded, encode_image, mask_coverage, read_image
from contract.png import PNG_SIGNATURE

UPSCALE_OPERATION, INPAINT_OPERATION, EXTEND_OPERATION = "upscale", "inpaint", "extend"
#: The most bytes a source file may have: the largest any image family takes.
MAX_SOURCE_BYTES = max(UPSCALE_MAX_BYTES, INPAINT_MAX_BYTES)
#: Labels of the image families' own fields, for messages (the contract's LABELS name the text-to-image ones).
_LABELS = {**LABELS, "noise_level": "Noise level", "image": "Image", "mask_image": "Mask"}


@dataclass(frozen=True)
class SourceImage:
    """The image a tool works on: its file's bytes (PNG or JPEG), its library id (for lineage), its seed."""

    data: bytes
    image_id: int | None = None
    #: The source's own seed, written into the result's parameters as "Source seed".
    seed: int | None = None
    name: str = "image"

    @classmethod
    def from_record(cls, library: Library, record: ImageRecord) -> SourceImage:
        """A library image (the viewer's shown image)."""
        path = Path(record.path)
        return cls(_read_file(path), record.id, record.parameters.seed, path.name)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], library: Library | None = None) -> SourceImage:
        """A file: the library's image when it is one of the library's files, else the file alone (its seed
        from its PNG parameters, when it has them)."""
        path = Path(path)
        record = library.image_by_path(path) if library is not None else None
        if record is not None:
            return cls.from_record(library, record)  # type: ignore[arg-type]
        data = _read_file(path)
        return cls(data, None, _seed_of(path) if data.startswith(PNG_SIGNATURE) else None, path.name)


@dataclass(frozen=True)
class Plan:
    """One job a tool sends: its family, its request as shown, the body as uploaded, and its lineage."""

    family: Family
    request: GenerationRequest
    body: bytes
    operation: str | None
    parent_image: int | None
    extra: dict[str, str] = field(default_factory=dict)


def plan_upscale(
    source: SourceImage,
    *,
    prompt: str,
    negative_prompt: str,
    seed: int,
    steps: int | None,
    guidance: float | None,
    noise_level: int,
    budget: Budget | None,
) -> Plan:
    image = _source_image(source, UPSCALE_MAX_BYTES, UPSCALE.label, _check_upscale_sides)
    shown = _shown(prompt, negative_prompt, seed, steps, guidance, UPSCALE, SCALE * image.width, SCALE * image.height)
    request = _family_request(UPSCALE, shown, budget, image=encode_image(source.data), noise_level=noise_level)
    return _plan(UPSCALE, shown, request, UPSCALE_OPERATION, source)


def plan_inpaint(
    source: SourceImage,
    mask_png: bytes,
    *,
    prompt: str,
    negative_prompt: str,
    seed: int,
    steps: int | None,
    guidance: float | None,
    images: int,
    budget: Budget | None,
) -> Plan:
    image = _source_image(source, INPAINT_MAX_BYTES, INPAINT.label)
    _check_inpaint_sides(source.name, image)
    mask = _mask_image(mask_png, image)
    shown = _shown(prompt, negative_prompt, seed, steps, guidance, INPAINT, image.width, image.height, images)
    request = _family_request(
        INPAINT, shown, budget, image=encode_image(source.data), mask_image=encode_image(mask.data)
    )
    return _plan(INPAINT, shown, request, INPAINT_OPERATION, source)


def plan_extend(
    source: SourceImage,
    *,
    left: int,
    right: int,
    top: int,
    bottom: int,
    prompt: str,
    negative_prompt: str,
    seed: int,
    steps: int | None,
    guidance: float | None,
    images: int,
    budget: Budget | None,
) -> Plan:
    """The source on a larger canvas (the new area filled by stretching its edges) and a mask white exactly over
    the new area, for the inpainting model. Each side's growth is rounded up so the canvas's sides are multiples
    of 8: the rest goes to the side asked (right before left, bottom before top), or to the right or bottom when
    that axis was not asked to grow but the image's side is no multiple of 8."""
    sides = {"left": left, "right": right, "top": top, "bottom": bottom}
    for name, value in sides.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise UserError(f"Extend by {name} is {value!r}; it must be a whole number of pixels, 0 or more.")
    if not any(sides.values()):
        raise UserError("Extend by how much? Give at least one side (left, right, top or bottom) more than 0 pixels.")
    image = _source_image(source, INPAINT_MAX_BYTES, INPAINT.label)
    low, high, _multiple = INPAINT_SIDES
    left, right, top, bottom = extension(image.width, image.height, left, right, top, bottom)
    width, height = image.width + left + right, image.height + top + bottom
    if width > high or height > high:
        raise UserError(
            f"Extended, {source.name} ({image.size}) would be {width}×{height} pixels; the inpainting model takes "
            f"at most {high}×{high}.",
            hint="Extend by less, or start from a smaller image.",
        )
    if width < low or height < low:
        raise UserError(
            f"Extended, {source.name} would be {width}×{height} pixels; the inpainting model takes at least "
            f"{low}×{low}: extend it further."
        )
    canvas, mask = _extended(source, image, left, right, top, bottom)
    shown = _shown(prompt, negative_prompt, seed, steps, guidance, INPAINT, width, height, images)
    request = _family_request(INPAINT, shown, budget, image=encode_image(canvas), mask_image=encode_image(mask))
    grown = ", ".join(f"{name} {value}" for name, value in zip(sides, (left, right, top, bottom), strict=True) if value)
    extra = {"Operation": EXTEND_OPERATION, "Extended": grown}
    return _plan(INPAINT, shown, request, EXTEND_OPERATION, source, extra)


def extension(width: int, height: int, left: int, right: int, top: int, bottom: int) -> tuple[int, int, int, int]:
    """The pixels Extend canvas adds on each side (left, right, top, bottom) of a `width` × `height` image when asked
    for these: each axis rounded up so the canvas's sides are multiples of the inpainting model's 8 (the viewer
    shows the size this makes before anything is sent)."""
    multiple = INPAINT_SIDES[2]
    return (*_grown(width, left, right, multiple), *_grown(height, top, bottom, multiple))


def inpaint_size_problem(width: int, height: int) -> str:
    """Why the inpainting model cannot take a `width` × `height` image as it is ("" when it can)."""
    low, high, multiple = INPAINT_SIDES
    if all(low <= side <= high and not side % multiple for side in (width, height)):
        return ""
    return f"The inpainting model takes sides from {low} to {high} pixels, multiples of {multiple}"


def _grown(side: int, before: int, after: int, multiple: int) -> tuple[int, int]:
    rest = -(side + before + after) % multiple
    if after or not before:
        return before, after + rest
    return before + rest, after


def _extended(source: SourceImage, image: InputImage, left: int, right: int, top: int, bottom: int) -> tuple:
    """The canvas (PNG bytes: the source at (left, top), its edges stretched over the new area) and the mask."""
    from PIL import Image

    with _decoded(source.name, image) as picture:
        rgb = picture.convert("RGB")
    width, height = rgb.width + left + right, rgb.height + top + bottom
    canvas = Image.new("RGB", (width, height))
    canvas.paste(rgb, (left, top))
    if left:
        canvas.paste(rgb.crop((0, 0, 1, rgb.height)).resize((left, rgb.height)), (0, top))
    if right:
        canvas.paste(
            rgb.crop((rgb.width - 1, 0, rgb.width, rgb.height)).resize((right, rgb.height)), (left + rgb.width, top)
        )
    if top:
        canvas.paste(canvas.crop((0, top, width, top + 1)).resize((width, top)), (0, 0))
    if bottom:
        row = top + rgb.height - 1
        canvas.paste(canvas.crop((0, row, width, row + 1)).resize((width, bottom)), (0, top + rgb.height))
    mask = Image.new("L", (width, height), 255)
    mask.paste(0, (left, top, left + rgb.width, top + rgb.height))
    return _png(canvas), _png(mask)


def _png(picture: Any) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    return buffer.getvalue()


def _check_inpaint_sides(name: str, image: InputImage) -> None:
    if problem := inpaint_size_problem(image.width, image.height):
        raise UserError(
            f"{name} is {image.size} pixels; {problem[0].lower()}{problem[1:]}.",
            hint="Crop or resize it to such a size first (Extend canvas pads to one).",
        )


def _mask_image(mask_png: bytes, image: InputImage) -> InputImage:
    if not isinstance(mask_png, (bytes, bytearray)) or not mask_png:
        raise UserError("The mask is empty: paint over what should change (white is repainted).")
    if len(mask_png) > INPAINT_MAX_BYTES:
        raise UserError(f"The mask is {len(mask_png) / 1e6:.1f} MB; at most {INPAINT_MAX_BYTES / 1e6:.1f} MB.")
    try:
        mask = read_image("mask_image", encode_image(bytes(mask_png)), max_bytes=INPAINT_MAX_BYTES)
    except RequestError as exc:
        raise UserError(f"The mask {_detail(exc)}.") from None
    if (mask.width, mask.height) != (image.width, image.height):
        raise UserError(f"The mask is {mask.size} pixels; it must be the image's size, {image.size}.")
    try:
        covered = mask_coverage("mask_image", mask)
    except RequestError as exc:
        raise UserError(f"The mask {_detail(exc)}.") from None
    if covered == 0:
        raise UserError(
            "The mask is empty: nothing is white, so nothing would be repainted. Paint over what should change."
        )
    return mask


def upscale_size_problem(name: str, width: int, height: int) -> str | None:
    """Why the ×4 upscaler cannot take an image of this size (a sentence naming its limit), or None."""
    low, high = INPUT_SIDES
    if low <= width <= high and low <= height <= high:
        return None
    return (
        f"{name} is {width}×{height} pixels; the ×4 upscaler takes images from {low}×{low} up to "
        f"{high}×{high} (4× {high} is {high * SCALE}, the largest side made here). Larger images are "
        "refused, not tiled."
    )


def _check_upscale_sides(name: str, image: InputImage) -> None:
    problem = upscale_size_problem(name, image.width, image.height)
    if problem is not None:
        raise UserError(problem, hint="Upscale a smaller image, or crop this one first.")


def _source_image(
    source: SourceImage, max_bytes: int, label: str, check_sides: Callable[[str, InputImage], None] | None = None
) -> InputImage:
    """The source's format and size from its header, its sides checked (`check_sides`, the tool's own limit,
    before anything is decoded) and its pixels checked readable; UserError naming the file and the tool's limit."""
    if len(source.data) > max_bytes:
        raise UserError(
            f"{source.name} is {len(source.data) / 1e6:.1f} MB; the {label} model takes files up to "
            f"{max_bytes / 1e6:.1f} MB."
        )
    try:
        image = read_image("image", encode_image(source.data), max_bytes=max_bytes)
    except RequestError as exc:
        raise UserError(f"{source.name} {_detail(exc)}.", hint="Use a PNG or JPEG image.") from None
    if check_sides is not None:
        check_sides(source.name, image)
    with _decoded(source.name, image, label):
        pass
    return image


def _decoded(name: str, image: InputImage, label: str = INPAINT.label) -> Any:
    low, high, _ = INPAINT_SIDES
    if image.width > high or image.height > high:
        raise UserError(f"{name} is {image.size} pixels; the {label.lower()} model takes at most {high}×{high}.")
    try:
        return decoded("image", image)
    except RequestError as exc:
        raise UserError(f"{name} {_detail(exc)}.") from None


def _shown(
    prompt: str,
    negative_prompt: str,
    seed: int,
    steps: int | None,
    guidance: float | None,
    family: Family,
    width: int,
    height: int,
    images: int = 1,
) -> GenerationRequest:
    """The job as the queue and the library show it: the family's defaults where nothing was given."""
    defaults = {f.name: f.default for f in fields(family.request_type)}
    return request_as_sent(
        {
            "prompt": prompt,
            "negative_prompt": negative_prompt,
            "width": width,
            "height": height,
            "num_inference_steps": defaults["num_inference_steps"] if steps is None else steps,
            "guidance_scale": defaults["guidance_scale"] if guidance is None else guidance,
            "num_images_per_prompt": images,
            "seed": seed,
        }
    )


def _family_request(family: Family, shown: GenerationRequest, budget: Budget | None, **extra: Any) -> Any:
    for name in ("prompt", "negative_prompt"):  # request_as_sent keeps a wrong type as the default: say so instead
        if not isinstance(getattr(shown, name), str):
            raise UserError(f"{_LABELS[name]} ({name}) must be text.")
    try:
        request = family.from_job(shown, **extra)
        family.check_budget(request, budget)
    except BudgetError as exc:
        raise UserError(f"{field_message(exc)}.", hint="Ask for fewer images, or use a smaller image.") from None
    except (RequestError, TypeError) as exc:
        raise UserError(f"{_field_text(exc)}.") from None
    return request


def _plan(
    family: Family,
    shown: GenerationRequest,
    request: Any,
    operation: str,
    source: SourceImage,
    extra: dict[str, str] | None = None,
) -> Plan:
    extra = dict(extra or {})
    if source.seed is not None:
        extra["Source seed"] = str(source.seed)
    return Plan(family, shown, orjson.dumps(family.body(request)), operation, source.image_id, extra)


def _field_text(exc: Exception) -> str:
    if isinstance(exc, RequestError) and exc.field in _LABELS and exc.field not in LABELS:
        return f"{_LABELS[exc.field]} ({exc.field}) {_detail(exc)}"
    return field_message(exc)


def _detail(exc: RequestError) -> str:
    return str(exc).split(": ", 1)[-1]


def _read_file(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_SOURCE_BYTES:
            raise UserError(
                f"{path.name} is {size / 1e6:.1f} MB; the image tools take files up to {MAX_SOURCE_BYTES / 1e6:.1f} MB."
            )
        return path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path.name} cannot be read ({exc.strerror or exc}).") from None


def _seed_of(path: Path) -> int | None:
    from app.services.library.pngmeta import read_parameters

    try:
        params = read_parameters(path)
    except UserError:
        return None
    return params.seed if params is not None else None

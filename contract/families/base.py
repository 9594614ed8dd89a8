"""What every model family defines, and the request plumbing the image families share.

A family is one kind of JumpStart model: the request its container takes (fields, limits, the GPU
budget), how our job maps onto it, how its output is read (within `OutputLimits`) and the PNG
`parameters` text its images get. The model-output module (numpy where installed) is imported on
first use, so the app starts without it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, fields
from typing import TYPE_CHECKING, Any, ClassVar

import orjson

from ..budget import Budget, BudgetError
from ..images import InputImage, read_image
from ..parameters import Parameters
from ..request import LIMITS, RequestError, _fmt, _Limit, check_number, check_text, load_body

if TYPE_CHECKING:
    from ..output import ModelOutput, OutputLimits, RGBImage

MAX_SIDE = int(LIMITS["width"].high)
#: Composer controls a family may show (the prompt is always there).
CONTROLS = frozenset(
    {"negative_prompt", "size", "steps", "guidance", "images", "seed", "sampler", "style_preset", "image_strength"}
)


class Family:
    """One model family. Subclasses set the class attributes and the request type."""

    name: ClassVar[str]
    label: ClassVar[str]
    #: JumpStart model ids of this family: exact ids or prefixes ending in "-".
    model_ids: ClassVar[tuple[str, ...]]
    content_type: ClassVar[str] = "application/json"
    #: What our app asks for (lossless where the container offers it), and what the container answers to.
    accept: ClassVar[str] = "application/json"
    accepts: ClassVar[tuple[str, ...]] = ("application/json", "application/json;jpeg")
    request_type: ClassVar[type]
    max_request_bytes: ClassVar[int]
    controls: ClassVar[frozenset[str]]
    #: The sizes the model supports, when it supports only some (SDXL); None means any within the limits.
    sizes: ClassVar[tuple[tuple[int, int], ...] | None] = None
    #: Request fields holding images: kept out of manifests, which record the request's settings.
    image_fields: ClassVar[tuple[str, ...]] = ()
    #: Its models run a seller's AWS Marketplace package: the listing's software fee per hour comes on top of
    #: the instance's price (AWS Marketplace bills it), which no price here includes.
    marketplace: ClassVar[bool] = False

    def __repr__(self) -> str:
        return f"<family {self.name}>"

    def serves(self, model_id: str) -> bool:
        return any(
            model_id == known or (known.endswith("-") and model_id.startswith(known)) for known in self.model_ids
        )

    def parse_request(self, data: Mapping[str, Any] | bytes | str) -> Any:
        """The family's request from its JSON body (bytes) or object, validated; RequestError otherwise."""
        if isinstance(data, (bytes, bytearray, str)):
            return self.request_type.from_json(data)
        return self.request_type.from_dict(data)

    def body(self, request: Any) -> dict[str, Any]:
        """The JSON object the model receives."""
        return request.to_dict()

    def from_job(self, job: Any, **extra: Any) -> Any:
        """This family's request for our job (a GenerationRequest) and the family's own fields."""
        raise NotImplementedError

    def output_size(self, request: Any) -> tuple[int, int, int]:
        """Width, height and count of the images the request makes."""
        raise NotImplementedError

    def check_budget(self, request: Any, budget: Budget | None) -> None:
        """BudgetError when the request's images do not fit one GPU of the budget's instance type."""
        if budget is None:
            return
        width, height, count = self.output_size(request)
        if width * height * count > budget.max_pixels:
            raise BudgetError(budget.instance_type, self.explain_budget(request, budget))

    def explain_budget(self, request: Any, budget: Budget) -> str:
        width, height, count = self.output_size(request)
        pixels = width * height * count
        return (
            f"{budget.instance_type} fits {pixels_text(budget.max_pixels)} per request; this request makes "
            f"{count} at {width}×{height} ({pixels_text(pixels)})"
        )

    def output_limits(self, body: Mapping[str, Any]) -> OutputLimits:
        """What the output of this request (as stored, perhaps another client's) may hold."""
        raise NotImplementedError

    def max_output_bytes(self, limits: OutputLimits) -> int:
        """The most bytes an output within `limits` can take (more is refused unread)."""
        from ..output import rgb_output_bytes

        return rgb_output_bytes(limits.width, limits.height, limits.images)

    def read_output(self, raw: bytes, limits: OutputLimits) -> ModelOutput:
        """The output's images and plain values; OutputError (or OutputTooLarge) says why not."""
        from ..output import read_output

        return read_output(raw, limits)

    def encode_output(self, images: list[RGBImage], request: Any, accept: str, details: dict[str, Any]) -> bytes:
        """The output as the container writes it (the sandbox's endpoint uses this)."""
        from ..output import encode_output

        return encode_output(images, request.prompt, accept, details)

    def parameters(self, body: Mapping[str, Any], output: ModelOutput, index: int, model: str | None) -> Parameters:
        """The PNG `parameters` of image `index`, from the stored request and the output."""
        return common_parameters(body, output, index, model)

    def manifest_request(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """The request as a manifest records it: its settings, not its images."""
        return {key: value for key, value in body.items() if key not in self.image_fields}


def common_parameters(
    body: Mapping[str, Any],
    output: ModelOutput,
    index: int,
    model: str | None,
    *,
    guidance: str = "guidance_scale",
    steps: str = "num_inference_steps",
) -> Parameters:
    """Prompt, negative prompt, steps, CFG scale, seed, size and model; the output's plain values and the
    batch position as extra values (as A1111 writes them)."""
    count = len(output.images)
    height, width = output.images[index].shape[:2]
    details = dict(output.details)
    named = details.pop("model", None)
    extra = {key: str(value) for key, value in details.items()}
    if count > 1:
        extra |= {"Batch size": str(count), "Batch pos": str(index)}
    prompt = body.get("prompt")
    negative = body.get("negative_prompt")
    return Parameters(
        prompt=prompt if isinstance(prompt, str) else output.prompt or "",
        negative_prompt=negative if isinstance(negative, str) else "",
        steps=whole(body.get(steps)),
        guidance_scale=number(body.get(guidance)),
        seed=whole(body.get("seed")),
        width=width,
        height=height,
        model=str(named) if named is not None else model,
        extra=extra,
    )


class RequestFields:
    """from_dict / from_json / to_dict for a frozen dataclass request whose `_check` validates it."""

    MAX_BYTES: ClassVar[int]
    REQUIRED: ClassVar[tuple[str, ...]] = ("prompt",)

    @classmethod
    def from_dict(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            raise RequestError("request", "must be a JSON object")
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - known)
        if unknown:
            raise RequestError(unknown[0], f"unknown field; allowed: {', '.join(sorted(known))}")
        for name in cls.REQUIRED:
            if name not in data:
                raise RequestError(name, "is required")
        return cls(**data)

    @classmethod
    def from_json(cls, body: bytes | str) -> Any:
        return cls.from_dict(load_body(body, cls.MAX_BYTES, f"{cls.MAX_BYTES / 1e6:.1f} MB"))

    def to_dict(self) -> dict[str, Any]:
        """The body the model receives: no key for an unset (None) value."""
        return {key: value for key, value in asdict(self).items() if value is not None}  # type: ignore[call-overload]

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())


class MadeFromImage:
    """A request made from an input image in its `image` field, read up to `MAX_IMAGE_BYTES`."""

    MAX_IMAGE_BYTES: ClassVar[int]
    image: str

    @property
    def source(self) -> InputImage:
        return read_image("image", self.image, max_bytes=self.MAX_IMAGE_BYTES)


def check_fields(
    request: Any,
    limits: Mapping[str, _Limit],
    *,
    required: tuple[str, ...] = ("prompt",),
    texts: tuple[str, ...] = (),
    numbers: tuple[str, ...] = (),
) -> None:
    """Check a request's texts (`required`, optional `texts`) and numbers (`limits`, optional `numbers`), then
    keep the checked values; RequestError names the first field that is wrong."""
    set_checked(request, checked_texts(request, required, texts) | checked_numbers(request, limits, numbers))


def set_checked(request: Any, values: dict[str, Any]) -> None:
    for name, value in values.items():
        object.__setattr__(request, name, value)


def checked_numbers(request: Any, limits: Mapping[str, _Limit], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """Each limited field of `request` checked (None allowed for `optional` ones)."""
    out: dict[str, Any] = {}
    for name, limit in limits.items():
        value = getattr(request, name)
        out[name] = None if value is None and name in optional else check_number(name, value, limit)
    return out


def checked_texts(request: Any, required: tuple[str, ...] = ("prompt",), optional: tuple[str, ...] = ()) -> dict:
    out: dict[str, Any] = {}
    for name in (*required, *optional):
        value = getattr(request, name)
        out[name] = check_text(name, "" if value is None else value, required=name in required)
    return out


def only_one_image(job: Any, family: str) -> None:
    if job.num_images_per_prompt != 1:
        raise RequestError(
            "num_images_per_prompt", f"is {job.num_images_per_prompt}; {family} makes one image per request"
        )


def pixels_text(pixels: int) -> str:
    return f"{pixels / 1e6:.1f} MP"


def whole(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def count_from(value: Any, high: int, default: int = 1) -> int:
    """A count the request asks for when it is a whole number from 1 to `high`, else `default`."""
    return value if whole(value) is not None and 1 <= value <= high else default


__all__ = ["Family", "MAX_SIDE", "RequestFields", "_Limit", "_fmt"]


def note_source_size(params: Parameters, body: Mapping[str, Any], max_bytes: int) -> None:
    """`Source size` in the PNG text of an image made from `body`'s input image (left out if it is unreadable)."""
    try:
        source = read_image("image", body.get("image"), max_bytes=max_bytes)
    except RequestError:
        return
    params.extra["Source size"] = f"{source.width}x{source.height}"


#: What a price of a Marketplace model's endpoint leaves out, said wherever its cost is.
MARKETPLACE_FEE = "plus the seller's AWS Marketplace software fee per instance-hour, which its listing names"

"""Upscaling ×4: JumpStart's `model-upscaling-stabilityai-stable-diffusion-x4-upscaler-fp16`.

Request: `prompt`, `image` (the low-resolution PNG or JPEG as base64), `negative_prompt`,
`num_inference_steps`, `guidance_scale`, `seed`, `noise_level` (how much noise is added to the
input first: diffusers' upscaler takes 0 to its max_noise_level, 350). JumpStart's examples send it
as `application/json;jpeg`. Output: `generated_images` as text to image, one image of 4× the input's
sides. Inputs larger than 512 × 512 are refused (4× is 2048, the contract's largest side), not tiled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..budget import Budget
from ..images import base64_length, check_sides, read_image
from ..parameters import Parameters
from ..request import LIMITS, MAX_SEED, RequestError, _Limit
from .base import (
    MAX_SIDE,
    Family,
    MadeFromImage,
    RequestFields,
    check_fields,
    common_parameters,
    note_source_size,
    only_one_image,
    pixels_text,
    whole,
)

if TYPE_CHECKING:
    from ..output import ModelOutput, OutputLimits

SCALE = 4
#: The input's sides: 4× the largest is the contract's largest side.
INPUT_SIDES = (32, MAX_SIDE // SCALE)
#: The largest input file: an uncompressed 512 × 512 RGBA PNG and its headers fit.
MAX_IMAGE_BYTES = INPUT_SIDES[1] ** 2 * 4 + INPUT_SIDES[1] + 64 * 1024
UPSCALE_LIMITS: dict[str, _Limit] = {
    "num_inference_steps": LIMITS["num_inference_steps"],
    "guidance_scale": LIMITS["guidance_scale"],
    "seed": _Limit(0, MAX_SEED, int),
    "noise_level": _Limit(0, 350, int),
}


@dataclass(frozen=True, slots=True)
class UpscaleRequest(MadeFromImage, RequestFields):
    """One ×4 upscale as the JumpStart upscaler takes it."""

    MAX_IMAGE_BYTES = MAX_IMAGE_BYTES
    MAX_BYTES = base64_length(MAX_IMAGE_BYTES) + 64 * 1024
    REQUIRED = ("prompt", "image")

    prompt: str
    image: str
    negative_prompt: str = ""
    num_inference_steps: int = 50
    guidance_scale: float = 7.5
    seed: int | None = None
    noise_level: int = 20

    def __post_init__(self) -> None:
        check_fields(self, UPSCALE_LIMITS, required=(), texts=("prompt", "negative_prompt"), numbers=("seed",))
        check_sides("image", self.source, *INPUT_SIDES)


class Upscale(Family):
    name = "upscale"
    label = "Upscale ×4"
    model_ids = ("model-upscaling-stabilityai-stable-diffusion-x4-upscaler-fp16",)
    content_type = "application/json;jpeg"
    request_type = UpscaleRequest
    max_request_bytes = UpscaleRequest.MAX_BYTES
    controls = frozenset({"negative_prompt", "steps", "guidance", "seed"})
    image_fields = ("image",)

    def from_job(self, job: Any, *, image: str, noise_level: int = 20, **extra: Any) -> UpscaleRequest:
        """The job's prompt, negative prompt, steps, guidance and seed; its size comes from `image`."""
        only_one_image(job, "the upscaler")
        return UpscaleRequest(
            prompt=job.prompt,
            image=image,
            negative_prompt=job.negative_prompt,
            num_inference_steps=job.num_inference_steps,
            guidance_scale=job.guidance_scale,
            seed=job.seed,
            noise_level=noise_level,
            **extra,
        )

    def output_size(self, request: UpscaleRequest) -> tuple[int, int, int]:
        source = request.source
        return SCALE * source.width, SCALE * source.height, 1

    def explain_budget(self, request: UpscaleRequest, budget: Budget) -> str:
        source = request.source
        width, height, _ = self.output_size(request)
        scale = (budget.max_pixels / (width * height)) ** 0.5
        fits = f"{int(source.width * scale)}×{int(source.height * scale)}"
        return (
            f"{budget.instance_type} fits {pixels_text(budget.max_pixels)} per request; upscaling this "
            f"{source.size} image makes {width}×{height} ({pixels_text(width * height)}): "
            f"the largest input of this shape that fits is {fits}"
        )

    def output_limits(self, body: Mapping[str, Any]) -> OutputLimits:
        """One image of 4× the input's sides (the contract's largest when the input cannot be read)."""
        from ..output import OutputLimits

        try:
            source = read_image("image", body.get("image"), max_bytes=MAX_IMAGE_BYTES)
        except RequestError:
            return OutputLimits(images=1)
        return OutputLimits(min(SCALE * source.width, MAX_SIDE), min(SCALE * source.height, MAX_SIDE), 1)

    def parameters(self, body: Mapping[str, Any], output: ModelOutput, index: int, model: str | None) -> Parameters:
        params = common_parameters(body, output, index, model)
        params.extra = {"Operation": "upscale", "Upscale by": str(SCALE), **params.extra}
        if whole(body.get("noise_level")) is not None:
            params.extra["Noise level"] = str(body["noise_level"])
        note_source_size(params, body, MAX_IMAGE_BYTES)
        return params


UPSCALE = Upscale()

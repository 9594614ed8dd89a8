"""Inpainting: `model-inpainting-stabilityai-stable-diffusion-2-inpainting` (and `-fp16`) and
`model-inpainting-runwayml-stable-diffusion-inpainting`.

Request: `prompt`, `image` and `mask_image` (base64 PNG or JPEG of the same size; the mask's white is
repainted, its black kept), `negative_prompt`, `num_inference_steps`, `guidance_scale`,
`num_images_per_prompt`, `seed`; sent as `application/json;jpeg`, as JumpStart's examples do.
Output: `generated_images` as text to image. The pipeline makes images of the input's size, or of
its own default (512 × 512) when it ignores the input's: each side may be the larger of the two.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..images import InputImage, base64_length, check_sides, mask_coverage, read_image
from ..parameters import Parameters
from ..request import LIMITS, RequestError, _Limit
from .base import (
    MAX_SIDE,
    Family,
    MadeFromImage,
    RequestFields,
    check_fields,
    common_parameters,
    count_from,
    note_source_size,
)

if TYPE_CHECKING:
    from ..output import ModelOutput, OutputLimits

#: The pipeline's own size (the models were trained at 512 × 512).
DEFAULT_SIDE = 512
SIDES = (int(LIMITS["width"].low), MAX_SIDE, LIMITS["width"].multiple_of)
#: The largest input file: an uncompressed 2048 × 2048 RGBA PNG and its headers fit.
MAX_IMAGE_BYTES = MAX_SIDE**2 * 4 + MAX_SIDE + 64 * 1024
INPAINT_LIMITS: dict[str, _Limit] = {
    name: LIMITS[name] for name in ("num_inference_steps", "guidance_scale", "num_images_per_prompt", "seed")
}


@dataclass(frozen=True, slots=True)
class InpaintRequest(MadeFromImage, RequestFields):
    """One inpainting job: the image, the mask of what to repaint, and what to paint there."""

    MAX_IMAGE_BYTES = MAX_IMAGE_BYTES
    MAX_BYTES = 2 * base64_length(MAX_IMAGE_BYTES) + 64 * 1024
    REQUIRED = ("prompt", "image", "mask_image")

    prompt: str
    image: str
    mask_image: str
    negative_prompt: str = ""
    num_inference_steps: int = 50
    guidance_scale: float = 7.5
    num_images_per_prompt: int = 1
    seed: int | None = None

    def __post_init__(self) -> None:
        check_fields(self, INPAINT_LIMITS, texts=("negative_prompt",), numbers=("seed",))
        image = self.source
        check_sides("image", image, *SIDES)
        mask = self.mask
        if (mask.width, mask.height) != (image.width, image.height):
            raise RequestError("mask_image", f"is {mask.size} pixels; it must be the image's size, {image.size}")
        if mask_coverage("mask_image", mask) == 0:
            raise RequestError("mask_image", "is empty: nothing is white, so nothing would be repainted")

    @property
    def mask(self) -> InputImage:
        return read_image("mask_image", self.mask_image, max_bytes=MAX_IMAGE_BYTES)


class Inpaint(Family):
    name = "inpaint"
    label = "Inpainting"
    model_ids = (
        "model-inpainting-stabilityai-stable-diffusion-2-inpainting",
        "model-inpainting-stabilityai-stable-diffusion-2-inpainting-fp16",
        "model-inpainting-runwayml-stable-diffusion-inpainting",
    )
    content_type = "application/json;jpeg"
    request_type = InpaintRequest
    max_request_bytes = InpaintRequest.MAX_BYTES
    controls = frozenset({"negative_prompt", "steps", "guidance", "images", "seed"})
    image_fields = ("image", "mask_image")

    def from_job(self, job: Any, *, image: str, mask_image: str, **extra: Any) -> InpaintRequest:
        """The job's prompt, negative prompt, steps, guidance, image count and seed; its size is the image's."""
        return InpaintRequest(
            prompt=job.prompt,
            image=image,
            mask_image=mask_image,
            negative_prompt=job.negative_prompt,
            num_inference_steps=job.num_inference_steps,
            guidance_scale=job.guidance_scale,
            num_images_per_prompt=job.num_images_per_prompt,
            seed=job.seed,
            **extra,
        )

    def output_size(self, request: InpaintRequest) -> tuple[int, int, int]:
        source = request.source
        return source.width, source.height, request.num_images_per_prompt

    def output_limits(self, body: Mapping[str, Any]) -> OutputLimits:
        from ..output import OutputLimits

        images = count_from(body.get("num_images_per_prompt"), int(LIMITS["num_images_per_prompt"].high))
        try:
            source = read_image("image", body.get("image"), max_bytes=MAX_IMAGE_BYTES)
        except RequestError:
            return OutputLimits(images=images)
        sides = (min(max(side, DEFAULT_SIDE), MAX_SIDE) for side in (source.width, source.height))
        return OutputLimits(*sides, images)

    def parameters(self, body: Mapping[str, Any], output: ModelOutput, index: int, model: str | None) -> Parameters:
        params = common_parameters(body, output, index, model)
        params.extra = {"Operation": "inpaint", **params.extra}
        note_source_size(params, body, MAX_IMAGE_BYTES)
        return params


INPAINT = Inpaint()

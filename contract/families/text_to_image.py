"""Text to image: JumpStart's Stable Diffusion 2.x and 1.4 models (`model-txt2img-…`, and their fp16 variants).

The request is `GenerationRequest` itself (prompt, negative_prompt, width, height, num_inference_steps,
guidance_scale, num_images_per_prompt, seed); the output `{"generated_images": [...], "prompt": ...}`
as RGB arrays (Accept application/json) or base64 JPEGs (application/json;jpeg).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..budget import Budget
from ..request import MAX_REQUEST_BYTES, GenerationRequest
from .base import CONTROLS, Family

if TYPE_CHECKING:
    from ..output import OutputLimits


class TextToImage(Family):
    name = "text-to-image"
    label = "Text to image"
    model_ids = ("model-txt2img-",)
    request_type = GenerationRequest
    max_request_bytes = MAX_REQUEST_BYTES
    controls = CONTROLS - {"sampler", "style_preset", "image_strength"}

    def from_job(self, job: GenerationRequest, **extra: Any) -> GenerationRequest:
        if extra:
            raise TypeError(f"text to image takes no {', '.join(sorted(extra))}")
        return job

    def output_size(self, request: GenerationRequest) -> tuple[int, int, int]:
        return request.width, request.height, request.num_images_per_prompt

    def check_budget(self, request: GenerationRequest, budget: Budget | None) -> None:
        if budget is not None:
            budget.check(request)

    def output_limits(self, body: Mapping[str, Any]) -> OutputLimits:
        from ..output import OutputLimits

        return OutputLimits.for_request(body)

    def max_output_bytes(self, limits: OutputLimits) -> int:
        from ..output import MAX_OUTPUT_BYTES

        return MAX_OUTPUT_BYTES


TEXT_TO_IMAGE = TextToImage()

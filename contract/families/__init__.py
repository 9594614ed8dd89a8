"""Model families: what each kind of JumpStart model takes, returns and writes into its PNGs, one module each.

`text_to_image` (SD 2.x / 1.4, today's requests), `upscale` (×4), `inpaint`, `sdxl` (SDXL 1.0 in
Stability's container). The Lambda and the local cloud tell a stored request's family by its fields
(`family_of_request`); the app knows it from the model it deploys (`family_for_model`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import MARKETPLACE_FEE, Family
from .inpaint import INPAINT, InpaintRequest
from .sdxl import ACCEPT_PNG, SAMPLERS, SDXL_FAMILY, SIZES, STYLE_PRESETS, SDXLRequest
from .text_to_image import TEXT_TO_IMAGE
from .upscale import UPSCALE, UpscaleRequest

SDXL = SDXL_FAMILY
FAMILIES: tuple[Family, ...] = (TEXT_TO_IMAGE, UPSCALE, INPAINT, SDXL)
#: The largest request body of any family (an inpainting image and its mask at 2048 × 2048).
MAX_REQUEST_BYTES = max(family.max_request_bytes for family in FAMILIES)


def family_named(name: str) -> Family:
    for family in FAMILIES:
        if family.name == name:
            return family
    raise KeyError(f"no model family {name!r}; known: {', '.join(f.name for f in FAMILIES)}")


def family_for_model(model_id: str) -> Family | None:
    """The family of a JumpStart model id, or None when the app does not speak its requests."""
    return next((family for family in FAMILIES if family.serves(model_id)), None)


def family_of_request(body: Mapping[str, Any]) -> Family:
    """The family whose container takes this request body: by the fields only it has."""
    if "text_prompts" in body:
        return SDXL
    if "mask_image" in body:
        return INPAINT
    if "image" in body:
        return UPSCALE
    return TEXT_TO_IMAGE


def family_of_output(raw: bytes) -> Family:
    """The family of an output whose request is unknown: Stability's `artifacts`, else `generated_images`."""
    if b'"generated_images"' not in raw and b'"artifacts"' in raw:
        return SDXL
    return TEXT_TO_IMAGE


__all__ = [
    "ACCEPT_PNG",
    "FAMILIES",
    "INPAINT",
    "MARKETPLACE_FEE",
    "MAX_REQUEST_BYTES",
    "SAMPLERS",
    "SDXL",
    "SIZES",
    "STYLE_PRESETS",
    "TEXT_TO_IMAGE",
    "UPSCALE",
    "Family",
    "InpaintRequest",
    "SDXLRequest",
    "UpscaleRequest",
    "family_for_model",
    "family_named",
    "family_of_output",
    "family_of_request",
]

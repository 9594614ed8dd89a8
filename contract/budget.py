"""What one request may ask of an endpoint's GPU: width × height × images, per instance type.

The model makes every image of a request at once on one GPU, so a request larger than the GPU's
memory fails there, after a cold start the user has waited and paid for. The app refuses it first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .request import LIMITS, GenerationRequest

#: The GPU of each instance family (`ml.<family>.<size>`) and its memory per GPU, in GiB. A request
#: runs on one GPU, so a size with several (ml.g5.12xlarge: 4 × A10G) has the budget of one.
#: Sources: the GPU instance table of the AWS Batch user guide ("Run GPU jobs",
#: docs.aws.amazon.com/batch/latest/userguide/gpu-jobs.html: g4dn 16 GiB, g5 24 GiB, g6 24 GiB per
#: GPU) and the EC2 accelerated computing specifications (docs.aws.amazon.com/ec2/latest/instancetypes/ac.html:
#: p3 one 16 GiB V100 per GPU). They cover every type the deploy panel offers. A family not listed here
#: (g6e, p4d, inf2, …) has no budget: only the request limits apply, as before.
GPUS: dict[str, tuple[str, int]] = {
    "g4dn": ("NVIDIA T4", 16),
    "g5": ("NVIDIA A10G", 24),
    "g6": ("NVIDIA L4", 24),
    "p3": ("NVIDIA V100", 16),
}

# The per-GiB rule. Stable Diffusion's fp16 weights (about 2.6 GiB for SD 2.x), the CUDA context and
# the allocator's slack take RESERVE_GIB; what is left holds the latents, attention and VAE decode of
# every image of the request at once, which grow with width × height × images: GIB_PER_MEGAPIXEL for
# each 2**20 pixels. So a 24 GiB GPU fits 4 images at 1024×1024 (4.2 MP) and a 16 GiB one 2.5 MP; the
# 2048×2048 × 8 request (33.6 MP) that failed on an ml.g5.xlarge is eight times over. It is on the safe
# side of published peaks (512×512 × 3 at 4.4 GB on a V100, invoke-ai/InvokeAI#364), not a measurement
# of our endpoint: no GPU is reachable from here, and a measured table should replace it.
RESERVE_GIB = 4
GIB_PER_MEGAPIXEL = 5
_MEGAPIXEL = 2**20
_MULTIPLE = LIMITS["width"].multiple_of
_SMALLEST = int(LIMITS["width"].low)


def _max_pixels(gpu_memory_gib: int) -> int:
    return (gpu_memory_gib - RESERVE_GIB) * _MEGAPIXEL // GIB_PER_MEGAPIXEL


#: The one table: pixels (width × height × images) one request may ask for, by instance family.
MAX_PIXELS: dict[str, int] = {family: _max_pixels(gib) for family, (_gpu, gib) in GPUS.items()}


class BudgetError(ValueError):
    """A request asks more of the GPU than its instance type has; the message says what fits."""

    fields = ("width", "height", "num_images_per_prompt")

    def __init__(self, instance_type: str, message: str) -> None:
        super().__init__(message)
        self.instance_type = instance_type


@dataclass(frozen=True, slots=True)
class Budget:
    """How many pixels (width × height × images) one request may ask of `instance_type`'s GPU."""

    instance_type: str
    gpu: str
    gpu_memory_gib: int
    max_pixels: int

    def fits(self, request: GenerationRequest) -> bool:
        return _pixels(request) <= self.max_pixels

    def check(self, request: GenerationRequest) -> None:
        """BudgetError naming the instance type and what fits, when `request` asks for too much."""
        if not self.fits(request):
            raise BudgetError(self.instance_type, self.explain(request))

    def explain(self, request: GenerationRequest) -> str:
        """ "ml.g5.xlarge fits 4.2 MP per request: 4 images at 1024×1024, or 8 at 720×720;
        this request asks for 8 at 1024×1024 (8.4 MP)"."""
        width, height, count = request.width, request.height, request.num_images_per_prompt
        options = []
        at_size = self.max_pixels // (width * height)
        if 1 <= at_size < count:
            options.append(f"{_images(at_size)} at {width}×{height}")
        if (smaller := self.size_for(count, width, height)) is not None:
            options.append(f"{_images(count) if not options else count} at {smaller[0]}×{smaller[1]}")
        fit = ", or ".join(options)
        return (
            f"{self.instance_type} fits {_megapixels(self.max_pixels)} per request{': ' + fit if fit else ''}; "
            f"this request asks for {count} at {width}×{height} ({_megapixels(_pixels(request))})"
        )

    def size_for(self, count: int, width: int, height: int) -> tuple[int, int] | None:
        """The largest size of this aspect (multiples of 8) at which `count` images fit, or None."""
        scale = min(1.0, math.sqrt(self.max_pixels / (count * width * height)))
        smaller = tuple(int(side * scale) // _MULTIPLE * _MULTIPLE for side in (width, height))
        return smaller if min(smaller) >= _SMALLEST else None  # type: ignore[return-value]


def budget_for(instance_type: str | None) -> Budget | None:
    """The budget of an instance type such as "ml.g5.xlarge"; None when it is unknown (no budget applies)."""
    family = (instance_type or "").strip().removeprefix("ml.").partition(".")[0]
    if family not in GPUS:
        return None
    gpu, gib = GPUS[family]
    return Budget(instance_type.strip(), gpu, gib, MAX_PIXELS[family])  # type: ignore[union-attr]


def _pixels(request: GenerationRequest) -> int:
    return request.width * request.height * request.num_images_per_prompt


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:.1f} MP"


def _images(count: int) -> str:
    return f"{count} image{'s' if count != 1 else ''}"

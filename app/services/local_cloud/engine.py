"""What runs behind the emulated endpoint: the Engine protocol and the sandbox test pattern.

The sandbox answers every model family with a pattern that makes the operation visible: text to image
and SDXL draw the pattern at the asked size (SDXL's image to image blends it into the init image), an
upscale is the source resized ×4 with a grid over it, an inpaint changes pixels only where the mask is white.
"""

from __future__ import annotations

import colorsys
import hashlib
import math
import random
import secrets
from typing import Protocol, runtime_checkable

from PIL import Image, ImageDraw

from contract import MAX_SEED, GenerationRequest, RGBImage, image_from_pil
from contract.families import InpaintRequest, SDXLRequest, UpscaleRequest
from contract.families.upscale import SCALE
from contract.images import MASK_WHITE, decoded

SANDBOX_NAME = "Sandbox test pattern (not a model)"
_SKETCH = 96  # the gradient and rings are drawn this many pixels across, then scaled up


@runtime_checkable
class Engine(Protocol):
    """Turns one validated request into `num_images_per_prompt` RGB images of the requested size."""

    name: str

    def render(self, request: GenerationRequest) -> list[RGBImage]: ...


#: The engine method that answers each family other than text to image (an engine may lack them).
FAMILY_METHODS = {"upscale": "upscale", "inpaint": "inpaint", "sdxl": "sdxl"}
GRID = 32  # pixels between the upscale's grid lines, in the output


class SandboxEngine:
    """Draws a deterministic pattern from the prompt and seed; it is not a model and says so.

    The same prompt and seed always give the same pixels; no seed means a random one,
    as the real model does. Drawn with Pillow alone, so the packaged app needs no numpy.
    """

    name = SANDBOX_NAME

    def render(self, request: GenerationRequest) -> list[RGBImage]:
        seed = request.seed if request.seed is not None else secrets.randbelow(MAX_SEED + 1)
        return [
            image_from_pil(_pattern(request.prompt, (seed + index) % (MAX_SEED + 1), request.width, request.height))
            for index in range(request.num_images_per_prompt)
        ]

    def upscale(self, request: UpscaleRequest) -> list[RGBImage]:
        """The source resized to 4× its sides, with a faint grid so the upscale shows as one."""
        with decoded("image", request.source) as source:
            large = source.convert("RGB").resize(
                (source.width * SCALE, source.height * SCALE), Image.Resampling.BICUBIC
            )
        draw = ImageDraw.Draw(large)
        for x in range(0, large.width, GRID):
            draw.line([(x, 0), (x, large.height)], fill=(255, 255, 255))
        for y in range(0, large.height, GRID):
            draw.line([(0, y), (large.width, y)], fill=(255, 255, 255))
        return [image_from_pil(large)]

    def inpaint(self, request: InpaintRequest) -> list[RGBImage]:
        """The source with the pattern painted where the mask is white; every other pixel is the source's."""
        seed = request.seed if request.seed is not None else secrets.randbelow(MAX_SEED + 1)
        with decoded("image", request.source) as source, decoded("mask_image", request.mask) as mask:
            base = source.convert("RGB")
            white = mask.convert("L").point(lambda value: 255 if value >= MASK_WHITE else 0)
            images = []
            for index in range(request.num_images_per_prompt):
                paint = _pattern(request.prompt, (seed + index) % (MAX_SEED + 1), base.width, base.height)
                images.append(image_from_pil(Image.composite(paint, base, white)))
        return images

    def sdxl(self, request: SDXLRequest) -> list[RGBImage]:
        """One pattern at the asked size, from the prompt, seed, sampler and style; with an init image, the
        pattern blended into it (more of the init image kept the higher the image strength)."""
        seed = request.seed if request.seed is not None else secrets.randbelow(MAX_SEED) + 1
        words = "\0".join((request.prompt, request.sampler or "", request.style_preset or ""))
        picture = _pattern(words, seed, request.width, request.height)
        if request.init_image is not None:
            with decoded("init_image", request.init) as init:
                picture = Image.blend(picture, init.convert("RGB"), request.image_strength or 0.0)
        return [image_from_pil(picture)]


def answer(engine: Engine, family_name: str, request) -> list[RGBImage]:
    """The engine's images for a request of the family; TypeError when the engine does not serve it."""
    if family_name == "text-to-image":
        return engine.render(request)
    method = getattr(engine, FAMILY_METHODS[family_name], None)
    if method is None:
        raise TypeError(f"the engine {engine.name!r} does not serve {family_name} requests")
    return method(request)


def _pattern(prompt: str, seed: int, width: int, height: int) -> Image.Image:
    """A two-colour gradient at an angle with faint rings and soft discs, all from one RNG."""
    digest = hashlib.sha256(f"{seed}\0{prompt}".encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "little"))
    angle = rng.uniform(0, 2 * math.pi)
    start, end = _palette(rng, 2)
    frequency = rng.uniform(12, 36)
    image = _background(start, end, angle, frequency, width, height)
    for colour in _palette(rng, rng.randint(3, 6)):
        cx, cy = rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9)
        radius, opacity = rng.uniform(0.08, 0.3), rng.uniform(0.45, 0.8)
        size = max(2, round(2 * radius * height))
        mask = _soft_disc(opacity).resize((size, size), Image.Resampling.BILINEAR)
        corner = (round(cx * width - size / 2), round(cy * height - size / 2))
        image.paste(tuple(round(255 * c) for c in colour), corner, mask)
    return image


def _background(start: tuple, end: tuple, angle: float, frequency: float, width: int, height: int) -> Image.Image:
    """The gradient and rings, smooth enough to draw small (pure Python) and scale up."""
    w = max(2, min(width, round(_SKETCH * width / max(width, height))))
    h = max(2, min(height, round(_SKETCH * height / max(width, height))))
    cos, sin, aspect = math.cos(angle), math.sin(angle), width / height
    data = bytearray()
    for row in range(h):
        y = row / (h - 1) - 0.5
        for column in range(w):
            x = column / (w - 1) - 0.5
            t = min(1.0, max(0.0, 0.5 + x * cos + y * sin))
            ring = 0.025 * math.sin(math.hypot(x * aspect, y) * frequency)
            data += bytes(
                min(255, max(0, round(255 * (a + (b - a) * t + ring)))) for a, b in zip(start, end, strict=True)
            )
    return Image.frombytes("RGB", (w, h), bytes(data)).resize((width, height), Image.Resampling.BICUBIC)


def _soft_disc(opacity: float) -> Image.Image:
    """A disc's mask: full `opacity` inside, fading to nothing over its outer 35 %.

    Pillow's radial gradient holds each pixel's distance from the centre, 128 at the edge.
    """
    fade = [min(1.0, max(0.0, (1 - value / 128) / 0.35)) for value in range(256)]
    return Image.radial_gradient("L").point([round(255 * opacity * f) for f in fade])


def _palette(rng: random.Random, count: int) -> list[tuple[float, float, float]]:
    """Pleasant colours: spread hues, moderate saturation and brightness."""
    base = rng.uniform(0, 1)
    colours = []
    for index in range(count):
        hue = (base + index / count + rng.uniform(-0.05, 0.05)) % 1.0
        colours.append(colorsys.hsv_to_rgb(hue, rng.uniform(0.35, 0.75), rng.uniform(0.55, 0.95)))
    return colours

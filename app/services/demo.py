"""A demo library: many small, varied PNGs with believable prompts, made quickly.

For benchmarks, screenshots and UI work; the images are patterns, marked with the
engine "demo" and the model "demo pattern", never presented as generated.
"""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

from contract import CHUNK_KEY, Parameters, format_parameters, new_inference_id

from .library import Library
from .models import ImageRecord

SUBJECTS = (
    "a lighthouse at dusk", "a red fox in the snow", "a cyberpunk street market", "an astronaut riding a horse",
    "a cosy reading nook", "a mountain lake at sunrise", "a koi pond", "a steampunk airship",
    "a bowl of ramen", "a glass greenhouse", "a desert caravan", "an owl on a branch",
    "a neon-lit diner", "a sailing ship in a storm", "a field of sunflowers", "a robot gardener",
)
STYLES = (
    "oil painting", "watercolour", "studio photograph", "isometric 3d render", "ukiyo-e woodblock print",
    "pencil sketch", "cinematic lighting", "pixel art", "art nouveau poster", "35mm film",
)
NEGATIVES = ("", "blurry", "lowres, watermark", "text, signature", "deformed hands")
SIZES = ((256, 256), (320, 240), (240, 320), (288, 224), (224, 288))
ENGINE = "demo"
MODEL = "demo pattern"


def populate_demo_library(
    library: Library, n: int, *, seed: int = 0, favourite_every: int = 17, workers: int = 2
) -> list[ImageRecord]:
    """Add `n` demo images to `library` (files under its images folder) and return their records."""
    rng = random.Random(seed)
    start = datetime.now(timezone.utc) - timedelta(days=30)
    plans = []
    index = 0
    while len(plans) < n:
        stamp = start + timedelta(seconds=rng.uniform(0, 30 * 86400))
        inference_id = new_inference_id(stamp)
        width, height = rng.choice(SIZES)
        job_seed = rng.randrange(2**32)
        params = Parameters(
            prompt=f"{rng.choice(SUBJECTS)}, {rng.choice(STYLES)}",
            negative_prompt=rng.choice(NEGATIVES),
            steps=rng.choice((20, 25, 30, 40, 50)),
            guidance_scale=rng.choice((5.0, 7.0, 7.5, 9.0, 12.0)),
            seed=job_seed,
            width=width,
            height=height,
            model=MODEL,
        )
        for image_index in range(min(rng.choice((1, 1, 2, 4)), n - len(plans))):
            plans.append((inference_id, image_index, params, stamp.isoformat(timespec="microseconds"), index))
            index += 1
    with ThreadPoolExecutor(max_workers=workers) as pool:
        records = list(pool.map(lambda plan: _make(library, *plan, favourite_every), plans))
    return library.add_images(records)


def _make(
    library: Library, inference_id: str, image_index: int, params: Parameters, created: str, n: int, every: int
) -> ImageRecord:
    folder = library.images_dir / inference_id
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{image_index}.png"
    _pattern(params.seed + image_index, params.width, params.height).save(
        path, format="PNG", pnginfo=_info(params), compress_level=1
    )
    return ImageRecord(
        id=None,
        path=str(Path(path).absolute()),
        parameters=params,
        inference_id=inference_id,
        index=image_index,
        width=params.width,
        height=params.height,
        created_at=created,
        favourite=every > 0 and n % every == 0,
        engine=ENGINE,
    )


def _pattern(seed: int, width: int, height: int) -> Image.Image:
    """A gradient between two colours at a random angle, with a soft disc: varied and cheap.

    Drawn at a quarter of the size and scaled up, which is four times faster and looks the same.
    """
    rng = np.random.default_rng(seed)
    a, b, disc = rng.integers(0, 256, size=(3, 3)).astype(np.float32)
    w, h = width // 4, height // 4
    angle = rng.uniform(0, np.pi)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    t = (x * np.cos(angle) + y * np.sin(angle)) / (w * abs(np.cos(angle)) + h * abs(np.sin(angle)))
    t = np.clip(t, 0, 1)[..., None]
    pixels = a * (1 - t) + b * t
    cx, cy, r = rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h, rng.uniform(0.1, 0.35) * min(w, h)
    mask = np.clip((r - np.hypot(x - cx, y - cy)) / 1.5, 0, 1)[..., None]
    pixels = pixels * (1 - mask) + disc * mask
    small = Image.fromarray(pixels.astype(np.uint8), "RGB")
    return small.resize((width, height), Image.Resampling.BILINEAR)


def _info(params: Parameters) -> PngImagePlugin.PngInfo:
    info = PngImagePlugin.PngInfo()
    info.add_text(CHUNK_KEY, format_parameters(params))
    return info

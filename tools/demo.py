"""A demo library: many small, varied PNGs with believable prompts, made quickly.

For benchmarks, screenshots and UI work; the images are patterns, marked with the
engine "demo" and the model "demo pattern", never presented as generated.
"""

from __future__ import annotations

import io
import random
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import numpy as np
from PIL import Image

from app.services.library import Library
from app.services.models import ImageRecord
from contract import CHUNK_KEY, Parameters, format_parameters, new_inference_id, with_text_chunks

SUBJECTS = (
    "a lighthouse at dusk",
    "a red fox in the snow",
    "a cyberpunk street market",
    "an astronaut riding a horse",
    "a cosy reading nook",
    "a mountain lake at sunrise",
    "a koi pond",
    "a steampunk airship",
    "a bowl of ramen",
    "a glass greenhouse",
    "a desert caravan",
    "an owl on a branch",
    "a neon-lit diner",
    "a sailing ship in a storm",
    "a field of sunflowers",
    "a robot gardener",
)
STYLES = (
    "oil painting",
    "watercolour",
    "studio photograph",
    "isometric 3d render",
    "ukiyo-e woodblock print",
    "pencil sketch",
    "cinematic lighting",
    "pixel art",
    "art nouveau poster",
    "35mm film",
)
NEGATIVES = ("", "blurry", "lowres, watermark", "text, signature", "deformed hands")
SIZES = ((256, 256), (320, 240), (240, 320), (288, 224), (224, 288))
ENGINE = "demo"
MODEL = "demo pattern"


def populate_demo_library(
    library: Library, n: int, *, seed: int = 0, favourite_every: int = 17, variety: int = 256, workers: int = 2
) -> list[ImageRecord]:
    """Add `n` demo images to `library` (files under its images folder) and return their records.

    `variety` distinct patterns are drawn once; each file is one of them with its own
    `parameters` chunk, so 10,000 images take seconds, not minutes.
    """
    rng = random.Random(seed)
    variety = max(len(SIZES), variety - variety % len(SIZES))  # whole size classes
    with ThreadPoolExecutor(max_workers=workers) as pool:
        patterns = list(pool.map(lambda k: _encoded(seed * 7919 + k, *SIZES[k % len(SIZES)]), range(variety)))
    start = datetime.now(UTC) - timedelta(days=30)
    records: list[ImageRecord] = []
    while len(records) < n:
        stamp = start + timedelta(seconds=rng.uniform(0, 30 * 86400))
        inference_id = new_inference_id(stamp)
        folder = library.images_dir / inference_id
        folder.mkdir(parents=True, exist_ok=True)
        first = rng.randrange(variety)
        width, height = SIZES[first % len(SIZES)]
        params = Parameters(
            prompt=f"{rng.choice(SUBJECTS)}, {rng.choice(STYLES)}",
            negative_prompt=rng.choice(NEGATIVES),
            steps=rng.choice((20, 25, 30, 40, 50)),
            guidance_scale=rng.choice((5.0, 7.0, 7.5, 9.0, 12.0)),
            seed=rng.randrange(2**32),
            width=width,
            height=height,
            model=MODEL,
        )
        for index in range(min(rng.choice((1, 1, 2, 4)), n - len(records))):
            path = folder / f"{index}.png"
            pattern = (first + index * len(SIZES)) % variety  # same size, another pattern
            path.write_bytes(with_text_chunks(patterns[pattern], {CHUNK_KEY: format_parameters(params)}))
            records.append(
                ImageRecord(
                    id=None,
                    path=str(path.absolute()),
                    parameters=params,
                    inference_id=inference_id,
                    index=index,
                    width=width,
                    height=height,
                    created_at=stamp.isoformat(timespec="microseconds"),
                    favourite=favourite_every > 0 and len(records) % favourite_every == 0,
                    engine=ENGINE,
                )
            )
    return library.add_images(records)


def _encoded(seed: int, width: int, height: int) -> bytes:
    out = io.BytesIO()
    _pattern(seed, width, height).save(out, format="PNG", compress_level=1)
    return out.getvalue()


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

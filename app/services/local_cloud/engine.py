"""What runs behind the emulated endpoint: the sandbox test pattern, or a real diffusion model."""

from __future__ import annotations

import hashlib
import secrets
from typing import Protocol, runtime_checkable

import numpy as np

from contract import MAX_SEED, GenerationRequest

SANDBOX_NAME = "Sandbox test pattern (not a model)"


@runtime_checkable
class Engine(Protocol):
    """Turns one validated request into `num_images_per_prompt` (H, W, 3) uint8 images."""

    name: str

    def render(self, request: GenerationRequest) -> list[np.ndarray]: ...


class SandboxEngine:
    """Draws a deterministic pattern from the prompt and seed; it is not a model and says so.

    The same prompt and seed always give the same pixels; no seed means a random one,
    as the real model does.
    """

    name = SANDBOX_NAME

    def render(self, request: GenerationRequest) -> list[np.ndarray]:
        seed = request.seed if request.seed is not None else secrets.randbelow(MAX_SEED + 1)
        return [
            _pattern(request.prompt, (seed + index) % (MAX_SEED + 1), request.width, request.height)
            for index in range(request.num_images_per_prompt)
        ]


def _pattern(prompt: str, seed: int, width: int, height: int) -> np.ndarray:
    """A diagonal two-colour gradient with soft discs and faint rings, all from one RNG."""
    digest = hashlib.sha256(f"{seed}\0{prompt}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    y = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    x = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    angle = rng.uniform(0, 2 * np.pi)
    t = np.clip(0.5 + (x - 0.5) * np.cos(angle) + (y - 0.5) * np.sin(angle), 0.0, 1.0)
    start, end = _palette(rng, 2)
    image = start + (end - start) * t[..., None]
    aspect = width / height
    rings = 0.025 * np.sin(np.sqrt(((x - 0.5) * aspect) ** 2 + (y - 0.5) ** 2) * rng.uniform(12, 36))
    image += rings[..., None]
    for colour in _palette(rng, int(rng.integers(3, 7))):
        cx, cy = rng.uniform(0.1, 0.9, 2)
        radius = rng.uniform(0.08, 0.3)
        opacity = rng.uniform(0.45, 0.8)
        # Only the disc's bounding box is touched, so large images stay fast.
        rows = slice(max(0, int((cy - radius) * height)), min(height, int((cy + radius) * height) + 2))
        cols = slice(max(0, int((cx - radius / aspect) * width)), min(width, int((cx + radius / aspect) * width) + 2))
        dist = np.sqrt(((x[:, cols] - cx) * aspect) ** 2 + (y[rows] - cy) ** 2)
        alpha = (np.clip((radius - dist) / (radius * 0.35), 0.0, 1.0) * opacity)[..., None]
        patch = image[rows, cols]
        patch += (colour - patch) * alpha
    return np.clip(image * 255.0, 0, 255).astype(np.uint8)


def _palette(rng: np.random.Generator, count: int) -> list[np.ndarray]:
    """Pleasant colours: spread hues, moderate saturation and brightness (HSV to RGB)."""
    base = rng.uniform(0, 1)
    colours = []
    for index in range(count):
        hue = (base + index / count + rng.uniform(-0.05, 0.05)) % 1.0
        sat, val = rng.uniform(0.35, 0.75), rng.uniform(0.55, 0.95)
        k = (np.array([5.0, 3.0, 1.0]) + hue * 6) % 6
        rgb = val - val * sat * np.clip(np.minimum(k, 4 - k), 0, 1)
        colours.append(rgb.astype(np.float32))
    return colours


class DiffusersEngine:
    """A real Stable Diffusion pipeline, for a machine that has `diffusers` and a model.

    Imported lazily so the sandbox never needs torch. Not exercised by the tests.
    """

    def __init__(self, model_id: str = "stabilityai/stable-diffusion-2-1-base", device: str | None = None) -> None:
        self.name = model_id
        self._model_id = model_id
        self._device = device
        self._pipeline = None

    def _load(self):
        if self._pipeline is None:
            import torch
            from diffusers import StableDiffusionPipeline

            device = self._device or ("cuda" if torch.cuda.is_available() else "cpu")
            self._pipeline = StableDiffusionPipeline.from_pretrained(self._model_id).to(device)
        return self._pipeline

    def render(self, request: GenerationRequest) -> list[np.ndarray]:
        import torch

        pipeline = self._load()
        generator = None
        if request.seed is not None:
            generator = torch.Generator(device=pipeline.device).manual_seed(request.seed)
        result = pipeline(
            prompt=request.prompt,
            negative_prompt=request.negative_prompt or None,
            width=request.width,
            height=request.height,
            num_inference_steps=request.num_inference_steps,
            guidance_scale=request.guidance_scale,
            num_images_per_prompt=request.num_images_per_prompt,
            generator=generator,
        )
        return [np.asarray(image.convert("RGB"), dtype=np.uint8) for image in result.images]

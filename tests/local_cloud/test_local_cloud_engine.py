"""The sandbox engine: a deterministic test pattern that never claims to be a model."""

from __future__ import annotations

import numpy as np

from app.services.local_cloud import Engine, SandboxEngine
from contract import GenerationRequest, Pixels, output


def test_the_sandbox_says_it_is_not_a_model():
    engine = SandboxEngine()
    assert isinstance(engine, Engine)
    assert "not a model" in engine.name


def test_it_honours_size_and_image_count_and_is_deterministic():
    engine = SandboxEngine()
    request = GenerationRequest(prompt="a red kite", width=72, height=64, num_images_per_prompt=3, seed=9)
    first, again = engine.render(request), engine.render(request)

    assert [(i.shape, i.dtype) for i in first] == [((64, 72, 3), np.uint8)] * 3
    assert all((a == b).all() for a, b in zip(first, again, strict=True))
    assert not (first[0] == first[1]).all()  # each image of a batch differs, as with a model


def test_the_prompt_changes_the_picture_and_no_seed_means_a_random_one():
    engine = SandboxEngine()
    kite = engine.render(GenerationRequest(prompt="a red kite", width=64, height=64, seed=9))[0]
    boat = engine.render(GenerationRequest(prompt="a blue boat", width=64, height=64, seed=9))[0]
    unseeded = [engine.render(GenerationRequest(prompt="a red kite", width=64, height=64))[0] for _ in range(2)]

    assert not (kite == boat).all()
    assert not (unseeded[0] == unseeded[1]).all()
    assert kite.std() > 5  # a picture, not a flat colour


def test_without_numpy_it_draws_the_same_pixels(monkeypatch):
    """The packaged app has no numpy: the pattern is drawn with Pillow alone either way."""
    request = GenerationRequest(prompt="a red kite", width=96, height=64, seed=9)
    with_numpy = SandboxEngine().render(request)[0]
    monkeypatch.setattr(output, "np", None)
    plain = SandboxEngine().render(request)[0]

    assert isinstance(plain, Pixels) and plain.shape == (64, 96, 3)
    assert plain.tobytes() == with_numpy.tobytes()

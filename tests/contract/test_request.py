import math

import pytest

from contract import GenerationRequest, RequestError


def test_defaults_make_a_valid_request_without_seed_key():
    request = GenerationRequest(prompt="a lighthouse at dusk")
    assert request.to_dict() == {
        "prompt": "a lighthouse at dusk",
        "negative_prompt": "",
        "width": 512,
        "height": 512,
        "num_inference_steps": 30,
        "guidance_scale": 7.5,
        "num_images_per_prompt": 1,
    }


def test_round_trip_through_json_keeps_every_field():
    request = GenerationRequest(
        prompt="p",
        negative_prompt="n",
        width=768,
        height=512,
        num_inference_steps=50,
        guidance_scale=9,
        num_images_per_prompt=4,
        seed=42,
    )
    assert GenerationRequest.from_json(request.to_json()) == request


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        ({}, "prompt", "required"),
        ({"prompt": "   "}, "prompt", "1 to 2000"),
        ({"prompt": "x" * 2001}, "prompt", "at most 2000"),
        ({"prompt": "p", "negative_prompt": "x" * 2001}, "negative_prompt", "at most 2000"),
        ({"prompt": "p", "width": 500}, "width", "multiple of 8 from 64 to 2048"),
        ({"prompt": "p", "height": 4096}, "height", "64 to 2048"),
        ({"prompt": "p", "num_inference_steps": 0}, "num_inference_steps", "1 to 150"),
        ({"prompt": "p", "num_inference_steps": 1000}, "num_inference_steps", "1 to 150"),
        ({"prompt": "p", "guidance_scale": -1}, "guidance_scale", "0 to 30"),
        ({"prompt": "p", "guidance_scale": math.nan}, "guidance_scale", "finite"),
        ({"prompt": "p", "seed": -1}, "seed", "0 to 4294967295"),
        ({"prompt": "p", "seed": 2**32}, "seed", "0 to 4294967295"),
        ({"prompt": "p", "num_images_per_prompt": 0}, "num_images_per_prompt", "1 to 8"),
        ({"prompt": "p", "num_images_per_prompt": 100}, "num_images_per_prompt", "1 to 8"),
        ({"prompt": "p", "steps": 30}, "steps", "unknown field"),
        ({"prompt": "p", "width": "512"}, "width", "must be a number"),
        ({"prompt": "p", "width": True}, "width", "must be a number"),
        ({"prompt": "p", "seed": 1.5}, "seed", "whole number"),
        ({"prompt": 5}, "prompt", "text"),
    ],
)
def test_bad_values_name_the_field_and_its_range(data, field, words):
    with pytest.raises(RequestError) as caught:
        GenerationRequest.from_dict(data)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}:")
    assert words in str(caught.value)


def test_non_json_and_oversize_bodies_are_refused():
    with pytest.raises(RequestError, match="not valid JSON"):
        GenerationRequest.from_json(b"{nope")
    with pytest.raises(RequestError, match="larger than"):
        GenerationRequest.from_json(b" " * (65 * 1024))
    with pytest.raises(RequestError, match="JSON object"):
        GenerationRequest.from_json(b"[1, 2]")


def test_whole_floats_are_accepted_for_integer_fields():
    assert GenerationRequest.from_dict({"prompt": "p", "width": 640.0}).width == 640

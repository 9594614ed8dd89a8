import pytest

from contract import Parameters, format_parameters, parse_parameters


def test_our_text_round_trips():
    params = Parameters(
        prompt="a lighthouse, at dusk",
        negative_prompt="blurry",
        steps=30,
        guidance_scale=7.5,
        seed=42,
        width=512,
        height=768,
        model="stable-diffusion-2-1",
    )
    text = format_parameters(params)
    assert text.splitlines()[-1] == "Steps: 30, CFG scale: 7.5, Seed: 42, Size: 512x768, Model: stable-diffusion-2-1"
    assert parse_parameters(text) == params


def test_automatic1111_text_with_quoted_values():
    text = (
        "masterpiece, a cat\nin a hat\n"
        "Negative prompt: lowres, bad hands\n"
        "Steps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 3405691582, Size: 512x512, "
        'Model hash: abc123, Model: sd15, Lora hashes: "detail: 1a2b, style: 3c4d", Version: v1.6.0'
    )
    params = parse_parameters(text)
    assert params.prompt == "masterpiece, a cat\nin a hat"
    assert params.negative_prompt == "lowres, bad hands"
    assert (params.steps, params.guidance_scale, params.seed) == (20, 7.0, 3405691582)
    assert (params.width, params.height) == (512, 512)
    assert params.extra["Lora hashes"] == "detail: 1a2b, style: 3c4d"
    assert params.extra["Sampler"] == "DPM++ 2M Karras"
    assert parse_parameters(format_parameters(params)).extra == params.extra


def test_request_fields_restore_only_what_is_known():
    params = parse_parameters("a fox\nSteps: 12, Seed: 9")
    assert params.request_fields() == {"prompt": "a fox", "negative_prompt": "", "num_inference_steps": 12, "seed": 9}


@pytest.mark.parametrize("text", ["", "just a prompt with no settings", "prompt\nSteps: x, Seed: 1"])
def test_unreadable_text_says_so(text):
    with pytest.raises(ValueError):
        parse_parameters(text)

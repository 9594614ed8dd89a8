"""Model families: each one's request from our job, its limits, its output (hostile ones too) and its PNG text."""

from __future__ import annotations

import base64
import io
import struct
import zlib

import numpy as np
import orjson
import pytest
from PIL import Image

from contract import (
    PNG_SIGNATURE,
    GenerationRequest,
    OutputError,
    OutputLimits,
    OutputTooLarge,
    RequestError,
    budget_for,
    encode_output,
    encode_png,
    format_parameters,
    parse_parameters,
)
from contract.budget import BudgetError
from contract.families import (
    FAMILIES,
    INPAINT,
    SDXL,
    TEXT_TO_IMAGE,
    UPSCALE,
    family_for_model,
    family_of_output,
    family_of_request,
)
from contract.png import png_chunk

rng = np.random.default_rng(16)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def picture(width: int, height: int, kind: str = "PNG", colour=(90, 120, 200)) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, kind)
    return b64(buffer.getvalue())


def mask(width: int, height: int, box: tuple[int, int, int, int] | None = (8, 8, 24, 24)) -> str:
    image = Image.new("L", (width, height), 0)
    if box:
        image.paste(255, box)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return b64(buffer.getvalue())


def bomb(width: int, height: int) -> str:
    """A PNG whose header declares width × height and whose pixels are a few bytes."""
    header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    return b64(PNG_SIGNATURE + header + png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + png_chunk(b"IEND", b""))


def pixels(width: int, height: int, count: int = 1) -> list[np.ndarray]:
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(count)]


def artifacts(*images: str | None, **fields) -> bytes:
    return orjson.dumps(
        {"result": "success", "artifacts": [{"base64": i, "seed": 77, "finishReason": "SUCCESS"} for i in images]}
        | fields
    )


JOB = GenerationRequest(
    prompt="a lighthouse at dusk",
    negative_prompt="blurry",
    width=1152,
    height=896,
    num_inference_steps=40,
    guidance_scale=6.5,
    seed=42,
)
SMALL = picture(128, 96)
MASK = mask(128, 96)


@pytest.mark.parametrize(
    ("family", "extra", "expected"),
    [
        (TEXT_TO_IMAGE, {}, JOB.to_dict()),
        (
            UPSCALE,
            {"image": SMALL, "noise_level": 30},
            {
                "prompt": "a lighthouse at dusk",
                "image": SMALL,
                "negative_prompt": "blurry",
                "num_inference_steps": 40,
                "guidance_scale": 6.5,
                "seed": 42,
                "noise_level": 30,
            },
        ),
        (
            INPAINT,
            {"image": SMALL, "mask_image": MASK},
            {
                "prompt": "a lighthouse at dusk",
                "image": SMALL,
                "mask_image": MASK,
                "negative_prompt": "blurry",
                "num_inference_steps": 40,
                "guidance_scale": 6.5,
                "num_images_per_prompt": 1,
                "seed": 42,
            },
        ),
        (
            SDXL,
            {"sampler": "K_DPMPP_2M", "style_preset": "cinematic"},
            {
                "text_prompts": [{"text": "a lighthouse at dusk", "weight": 1.0}, {"text": "blurry", "weight": -1.0}],
                "cfg_scale": 6.5,
                "steps": 40,
                "width": 1152,
                "height": 896,
                "seed": 42,
                "sampler": "K_DPMPP_2M",
                "style_preset": "cinematic",
            },
        ),
        (
            SDXL,
            {"init_image": picture(1024, 1024, "JPEG"), "image_strength": 0.6},
            {
                "text_prompts": [{"text": "a lighthouse at dusk", "weight": 1.0}, {"text": "blurry", "weight": -1.0}],
                "cfg_scale": 6.5,
                "steps": 40,
                "init_image": picture(1024, 1024, "JPEG"),
                "image_strength": 0.6,
                "seed": 42,
            },
        ),
    ],
    ids=["text-to-image", "upscale", "inpaint", "sdxl", "sdxl-image-to-image"],
)
def test_our_job_maps_onto_each_familys_request_and_back(family, extra, expected):
    request = family.from_job(JOB, **extra)

    body = family.body(request)

    assert body == expected
    assert family_of_request(body) is family
    assert family.parse_request(orjson.dumps(body)) == request


def test_a_random_seed_is_sent_as_no_seed_in_every_family():
    job = GenerationRequest(prompt="p", width=1024, height=1024)
    extras = {UPSCALE: {"image": SMALL}, INPAINT: {"image": SMALL, "mask_image": MASK}}
    for family in FAMILIES:
        assert "seed" not in family.body(family.from_job(job, **extras.get(family, {})))


@pytest.mark.parametrize(
    ("family", "data", "field", "words"),
    [
        (UPSCALE, {"prompt": "p"}, "image", "is required"),
        (UPSCALE, {"prompt": "p", "image": "not base64!"}, "image", "not valid base64"),
        (UPSCALE, {"prompt": "p", "image": b64(b"GIF89a" + bytes(40))}, "image", "not a PNG or JPEG"),
        (UPSCALE, {"prompt": "p", "image": picture(640, 480)}, "image", "640×480 pixels; each side must be 32 to 512"),
        (UPSCALE, {"prompt": "p", "image": bomb(13000, 13000)}, "image", "13000×13000"),
        (UPSCALE, {"prompt": "p", "image": SMALL, "noise_level": 351}, "noise_level", "0 to 350"),
        (UPSCALE, {"prompt": "p", "image": SMALL, "num_inference_steps": 0}, "num_inference_steps", "1 to 150"),
        (UPSCALE, {"prompt": "p\x1b[31m", "image": SMALL}, "prompt", "control character (Escape)"),
        (UPSCALE, {"prompt": "p", "image": SMALL, "mask": MASK}, "mask", "unknown field"),
        (INPAINT, {"prompt": "p", "image": SMALL}, "mask_image", "is required"),
        (INPAINT, {"prompt": "", "image": SMALL, "mask_image": MASK}, "prompt", "1 to 2000"),
        (INPAINT, {"prompt": "p", "image": SMALL, "mask_image": mask(96, 128)}, "mask_image", "must be the image's"),
        (INPAINT, {"prompt": "p", "image": SMALL, "mask_image": mask(128, 96, None)}, "mask_image", "is empty"),
        (INPAINT, {"prompt": "p", "image": picture(100, 96), "mask_image": mask(100, 96)}, "image", "multiples of 8"),
        (
            INPAINT,
            {"prompt": "p", "image": SMALL, "mask_image": MASK, "num_images_per_prompt": 9},
            "num_images_per_prompt",
            "1 to 8",
        ),
        (SDXL, {"text_prompts": []}, "text_prompts", "list of {text, weight}"),
        (SDXL, {"text_prompts": [{"text": "p", "weight": "high"}]}, "text_prompts", "not a number"),
        (SDXL, {"text_prompts": [{"text": "p"}], "width": 512, "height": 512}, "width", "not a size SDXL 1.0 makes"),
        (SDXL, {"text_prompts": [{"text": "p"}], "steps": 60}, "steps", "10 to 50"),
        (SDXL, {"text_prompts": [{"text": "p"}], "cfg_scale": 36}, "cfg_scale", "0 to 35"),
        (SDXL, {"text_prompts": [{"text": "p"}], "seed": 0}, "seed", "1 to 4294967295"),
        (SDXL, {"text_prompts": [{"text": "p"}], "sampler": "Euler a"}, "sampler", "allowed: DDIM, DDPM, K_DPMPP_2M"),
        (SDXL, {"text_prompts": [{"text": "p"}], "style_preset": "vaporwave"}, "style_preset", "allowed: 3d-model"),
        (SDXL, {"text_prompts": [{"text": "p"}], "image_strength": 0.5}, "image_strength", "needs an init_image"),
        (SDXL, {"text_prompts": [{"text": "p"}], "init_image": SMALL}, "init_image", "128×96 pixels; SDXL 1.0 takes"),
        (
            SDXL,
            {"text_prompts": [{"text": "p"}], "init_image": picture(1024, 1024), "image_strength": 2},
            "image_strength",
            "0 to 1",
        ),
        (SDXL, {"text_prompts": [{"text": "p"}], "samples": 4}, "samples", "one image per request"),
    ],
)
def test_a_request_out_of_a_familys_limits_is_refused_naming_the_field_and_what_is_allowed(family, data, field, words):
    with pytest.raises(RequestError) as caught:
        family.parse_request(data)

    assert caught.value.field == field
    assert words in str(caught.value)


@pytest.mark.parametrize(
    ("family", "extra", "words"),
    [
        (SDXL, {}, "SDXL 1.0 makes one image per request"),
        (UPSCALE, {"image": SMALL}, "the upscaler makes one image per request"),
    ],
)
def test_a_job_of_several_images_is_refused_by_the_families_that_make_one(family, extra, words):
    job = GenerationRequest(prompt="p", width=1024, height=1024, num_images_per_prompt=2)
    with pytest.raises(RequestError, match=words):
        family.from_job(job, **extra)


def test_the_gpu_budget_counts_the_images_each_family_makes():
    small_gpu = budget_for("ml.g4dn.xlarge")
    upscale = UPSCALE.parse_request({"prompt": "p", "image": picture(512, 512)})
    with pytest.raises(BudgetError) as caught:
        UPSCALE.check_budget(upscale, small_gpu)
    assert str(caught.value) == (
        "ml.g4dn.xlarge fits 2.5 MP per request; upscaling this 512×512 image makes 2048×2048 (4.2 MP): "
        "the largest input of this shape that fits is 396×396"
    )
    UPSCALE.check_budget(upscale, budget_for("ml.g5.xlarge"))
    UPSCALE.check_budget(upscale, None)
    inpaint = INPAINT.parse_request(
        {"prompt": "p", "image": picture(1024, 1024), "mask_image": mask(1024, 1024), "num_images_per_prompt": 4}
    )
    with pytest.raises(BudgetError, match="makes 4 at 1024×1024"):
        INPAINT.check_budget(inpaint, small_gpu)
    SDXL.check_budget(SDXL.parse_request({"text_prompts": [{"text": "p"}]}), small_gpu)
    with pytest.raises(BudgetError, match="fits 2.5 MP per request"):
        TEXT_TO_IMAGE.check_budget(GenerationRequest(prompt="p", width=2048, height=2048), small_gpu)


@pytest.mark.parametrize(
    ("family", "body", "limits"),
    [
        (
            TEXT_TO_IMAGE,
            {"prompt": "p", "width": 64, "height": 48, "num_images_per_prompt": 2},
            OutputLimits(64, 48, 2),
        ),
        (TEXT_TO_IMAGE, {}, OutputLimits()),
        (UPSCALE, {"prompt": "p", "image": SMALL}, OutputLimits(512, 384, 1)),
        (UPSCALE, {"prompt": "p", "image": bomb(13000, 13000)}, OutputLimits(2048, 2048, 1)),
        (UPSCALE, {"prompt": "p", "image": "garbage"}, OutputLimits(images=1)),
        (INPAINT, {"image": SMALL, "mask_image": MASK, "num_images_per_prompt": 3}, OutputLimits(512, 512, 3)),
        (INPAINT, {"image": picture(768, 640), "mask_image": "?"}, OutputLimits(768, 640, 1)),
        (SDXL, {"text_prompts": [], "width": 1216, "height": 832}, OutputLimits(1216, 832, 1)),
        (SDXL, {"text_prompts": [], "width": 4096, "height": 4096}, OutputLimits(1536, 1536, 1)),
        (SDXL, {"text_prompts": [], "init_image": picture(896, 1152)}, OutputLimits(896, 1152, 1)),
    ],
    ids=[
        "t2i",
        "t2i-unknown",
        "upscale-4x",
        "upscale-bomb-input",
        "upscale-unreadable",
        "inpaint",
        "inpaint-large",
        "sdxl",
        "sdxl-odd-size",
        "sdxl-init",
    ],
)
def test_each_familys_output_is_bounded_by_its_stored_request(family, body, limits):
    assert family.output_limits(body) == limits


@pytest.mark.parametrize(
    ("family", "body", "output", "sizes"),
    [
        (UPSCALE, {"prompt": "p", "image": SMALL}, encode_output(pixels(512, 384), "p"), [(512, 384)]),
        (
            UPSCALE,
            {"prompt": "p", "image": SMALL},
            encode_output(pixels(512, 384), "p", "application/json;jpeg"),
            [(512, 384)],
        ),
        (
            INPAINT,
            {"prompt": "p", "image": SMALL, "num_images_per_prompt": 2},
            encode_output(pixels(128, 96, 2), "p"),
            [(128, 96)] * 2,
        ),
        (
            SDXL,
            {"text_prompts": [], "width": 1152, "height": 896},
            artifacts(b64(encode_png(pixels(1152, 896)[0]))),
            [(1152, 896)],
        ),
        (
            SDXL,
            {"text_prompts": [], "width": 1024, "height": 1024},
            artifacts(picture(1024, 1024, "JPEG")),
            [(1024, 1024)],
        ),
    ],
    ids=["upscale-rgb", "upscale-jpeg", "inpaint", "sdxl-png", "sdxl-jpeg"],
)
def test_each_familys_output_is_read_into_images(family, body, output, sizes):
    result = family.read_output(output, family.output_limits(body))

    assert [(image.shape[1], image.shape[0]) for image in result.images] == sizes


@pytest.mark.parametrize(
    ("family", "body", "output", "error", "words"),
    [
        (
            UPSCALE,
            {"image": SMALL},
            encode_output(pixels(516, 384), "p"),
            OutputTooLarge,
            "516 × 384 pixels; the request allows at most 512 × 384",
        ),
        (
            UPSCALE,
            {"image": SMALL},
            encode_output(pixels(8, 8, 2), "p"),
            OutputTooLarge,
            "holds 2 images; the request allows at most 1",
        ),
        (
            UPSCALE,
            {"image": SMALL},
            orjson.dumps({"generated_images": [bomb(13000, 13000)]}),
            OutputTooLarge,
            "13000 × 13000",
        ),
        (
            INPAINT,
            {"image": SMALL, "mask_image": MASK},
            encode_output(pixels(520, 96), "p"),
            OutputTooLarge,
            "at most 512 × 512",
        ),
        (
            SDXL,
            {"text_prompts": [], "width": 1024, "height": 1024},
            artifacts(bomb(13000, 13000)),
            OutputTooLarge,
            "13000 × 13000",
        ),
        (
            SDXL,
            {"text_prompts": [], "width": 1024, "height": 1024},
            artifacts(picture(1152, 896)),
            OutputTooLarge,
            "1152 × 896 pixels; the request allows at most 1024 × 1024",
        ),
        (SDXL, {"text_prompts": []}, artifacts(picture(64, 64), picture(64, 64)), OutputTooLarge, "holds 2 images"),
        (
            SDXL,
            {"text_prompts": []},
            artifacts(b64(b"GIF89a" + bytes(30))),
            OutputError,
            "image 1 is not a base64 PNG or JPEG",
        ),
        (SDXL, {"text_prompts": []}, artifacts(None), OutputError, "image 1 is not a base64 PNG or JPEG"),
        (
            SDXL,
            {"text_prompts": []},
            orjson.dumps({"artifacts": [{"base64": picture(8, 8), "finishReason": "ERROR"}]}),
            OutputError,
            "reports an error for image 1",
        ),
        (SDXL, {"text_prompts": []}, orjson.dumps({"artifacts": []}), OutputError, "no list of artifacts"),
        (
            SDXL,
            {"text_prompts": []},
            orjson.dumps({"artifacts": ["x"]}),
            OutputError,
            "artifact 1 is not a JSON object",
        ),
        (SDXL, {"text_prompts": []}, b'{"artifacts": [', OutputError, "not valid JSON"),
        (SDXL, {"text_prompts": []}, b"[1, 2]", OutputError, "not a JSON object"),
        (
            SDXL,
            {"text_prompts": [], "width": 1024, "height": 1024},
            b'{"artifacts": "' + b"A" * 20_000_000 + b'"}',
            OutputError,
            "more than 1 image(s) of 1024 × 1024 can take",
        ),
    ],
    ids=[
        "upscale-larger-than-4x",
        "upscale-two-images",
        "upscale-bomb",
        "inpaint-wider",
        "sdxl-bomb",
        "sdxl-other-size",
        "sdxl-two",
        "sdxl-gif",
        "sdxl-no-base64",
        "sdxl-error",
        "sdxl-empty",
        "sdxl-not-object",
        "sdxl-truncated",
        "sdxl-not-json-object",
        "sdxl-huge",
    ],
)
def test_a_hostile_output_is_refused_before_decoding_with_a_reason(family, body, output, error, words):
    with pytest.raises(error) as caught:
        family.read_output(output, family.output_limits(body))

    assert words in str(caught.value)


def test_an_output_without_its_request_is_told_by_its_fields():
    assert family_of_output(artifacts(picture(8, 8))) is SDXL
    assert family_of_output(encode_output(pixels(8, 8), "artifacts")) is TEXT_TO_IMAGE
    assert family_of_output(b"{}") is TEXT_TO_IMAGE


@pytest.mark.parametrize(
    ("model_id", "family"),
    [
        ("model-txt2img-stabilityai-stable-diffusion-v2-1-base", TEXT_TO_IMAGE),
        ("model-txt2img-stabilityai-stable-diffusion-v1-4-fp16", TEXT_TO_IMAGE),
        ("model-upscaling-stabilityai-stable-diffusion-x4-upscaler-fp16", UPSCALE),
        ("model-inpainting-stabilityai-stable-diffusion-2-inpainting-fp16", INPAINT),
        ("model-inpainting-runwayml-stable-diffusion-inpainting", INPAINT),
        ("model-imagegeneration-stabilityai-stable-diffusion-xl-base-1-0", SDXL),
        ("model-txt2img-", TEXT_TO_IMAGE),
        ("huggingface-llm-falcon-7b", None),
    ],
)
def test_each_jumpstart_model_has_its_family(model_id, family):
    assert family_for_model(model_id) is family


@pytest.mark.parametrize(
    ("family", "body", "output", "text"),
    [
        (
            TEXT_TO_IMAGE,
            JOB.to_dict() | {"width": 64, "height": 48},
            encode_output(pixels(64, 48), "p"),
            "a lighthouse at dusk\nNegative prompt: blurry\n"
            "Steps: 40, CFG scale: 6.5, Seed: 42, Size: 64x48, Model: endpoint-a",
        ),
        (
            UPSCALE,
            {"prompt": "a cat", "image": SMALL, "num_inference_steps": 50, "guidance_scale": 7.5, "noise_level": 20},
            encode_output(pixels(512, 384), "a cat", details={"model": "Sandbox test pattern (not a model)"}),
            "a cat\nSteps: 50, CFG scale: 7.5, Size: 512x384, Model: Sandbox test pattern (not a model), "
            "Operation: upscale, Upscale by: 4, Noise level: 20, Source size: 128x96",
        ),
        (
            INPAINT,
            {"prompt": "a hat", "image": SMALL, "mask_image": MASK, "seed": 9, "num_images_per_prompt": 2},
            encode_output(pixels(128, 96, 2), "a hat"),
            "a hat\nSeed: 9, Size: 128x96, Model: endpoint-a, Operation: inpaint, Batch size: 2, Batch pos: 1, "
            "Source size: 128x96",
        ),
        (
            SDXL,
            SDXL.body(SDXL.from_job(JOB, sampler="K_EULER_ANCESTRAL", style_preset="analog-film")),
            artifacts(picture(1152, 896)),
            "a lighthouse at dusk\nNegative prompt: blurry\nSteps: 40, CFG scale: 6.5, Seed: 77, Size: 1152x896, "
            "Model: endpoint-a, Sampler: Euler a, Style preset: analog-film",
        ),
        (
            SDXL,
            {"text_prompts": [{"text": "a", "weight": 1}], "init_image": picture(1024, 1024), "image_strength": 0.35},
            orjson.dumps(
                {"artifacts": [{"base64": picture(1024, 1024), "seed": 5, "finishReason": "CONTENT_FILTERED"}]}
            ),
            "a\nSeed: 5, Size: 1024x1024, Model: endpoint-a, Operation: image to image, Image strength: 0.35, "
            "Finish reason: CONTENT_FILTERED",
        ),
    ],
    ids=["text-to-image", "upscale", "inpaint", "sdxl", "sdxl-image-to-image"],
)
def test_each_family_writes_the_a1111_parameters_text_of_its_images(family, body, output, text):
    read = family.read_output(output, family.output_limits(body))
    index = len(read.images) - 1

    written = format_parameters(family.parameters(body, read, index, "endpoint-a"))

    assert written == text
    assert format_parameters(parse_parameters(written)) == text


def test_manifests_keep_a_requests_settings_not_its_images():
    body = INPAINT.body(INPAINT.from_job(JOB, image=SMALL, mask_image=MASK))
    assert INPAINT.manifest_request(body) == {k: v for k, v in body.items() if k not in ("image", "mask_image")}
    assert TEXT_TO_IMAGE.manifest_request(JOB.to_dict()) == JOB.to_dict()

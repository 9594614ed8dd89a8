"""extract_image reads each model family's output by its stored request, and bounds it by that request."""

from __future__ import annotations

import base64
import io

import numpy as np
import orjson
import pytest
from lambda_events import notification, sns_event
from PIL import Image

from contract import encode_output, encode_png, image_key, manifest_key, new_inference_id, parse_manifest
from contract.families import INPAINT, SDXL, UPSCALE

rng = np.random.default_rng(161)


def _b64_png(width: int, height: int, mode: str = "RGB", fill=(30, 60, 90)) -> str:
    buffer = io.BytesIO()
    Image.new(mode, (width, height), fill).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _pixels(width: int, height: int, count: int = 1) -> list[np.ndarray]:
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(count)]


def _mask() -> str:
    image = Image.new("L", (96, 64), 0)
    image.paste(255, (16, 16, 40, 40))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


SOURCE = _b64_png(96, 64)
UPSCALE_REQUEST = UPSCALE.body(UPSCALE.parse_request({"prompt": "sharper", "image": SOURCE, "seed": 3}))
INPAINT_REQUEST = INPAINT.body(
    INPAINT.parse_request({"prompt": "a red hat", "image": SOURCE, "mask_image": _mask(), "num_images_per_prompt": 2})
)
SDXL_REQUEST = SDXL.body(
    SDXL.parse_request(
        {
            "text_prompts": [{"text": "a fox", "weight": 1.0}, {"text": "blurry", "weight": -1.0}],
            "width": 1152,
            "height": 896,
            "sampler": "K_DPMPP_2M",
            "style_preset": "photographic",
        }
    )
)


def _sdxl_output(*images: np.ndarray, seed: int = 991) -> bytes:
    artifacts = [
        {"base64": base64.b64encode(encode_png(image)).decode(), "seed": seed, "finishReason": "SUCCESS"}
        for image in images
    ]
    return orjson.dumps({"result": "success", "artifacts": artifacts})


def _run(extract_image, request: dict, output: bytes):
    inference_id = new_inference_id()
    extract_image.put(f"requests/{inference_id}.json", orjson.dumps(request))
    extract_image.put(f"output/{inference_id}.out", output)
    extract_image(sns_event(notification(inference_id, extract_image.bucket)))
    return inference_id, parse_manifest(extract_image.get(manifest_key(inference_id)), inference_id)


def _png(extract_image, key: str) -> tuple[np.ndarray, str]:
    with Image.open(io.BytesIO(extract_image.get(key))) as png:
        png.load()
        return np.asarray(png), png.text["parameters"]


@pytest.mark.parametrize(
    ("request_body", "images", "output", "text"),
    [
        (
            UPSCALE_REQUEST,
            (upscaled := _pixels(384, 256)),
            encode_output(upscaled, "sharper"),
            "sharper\nSteps: 50, CFG scale: 7.5, Seed: 3, Size: 384x256, Model: test-endpoint, "
            "Operation: upscale, Upscale by: 4, Noise level: 20, Source size: 96x64",
        ),
        (
            INPAINT_REQUEST,
            (painted := _pixels(96, 64, 2)),
            encode_output(painted, "a red hat"),
            "a red hat\nSteps: 50, CFG scale: 7.5, Size: 96x64, Model: test-endpoint, Operation: inpaint, "
            "Batch size: 2, Batch pos: 1, Source size: 96x64",
        ),
        (
            SDXL_REQUEST,
            (generated := _pixels(1152, 896)),
            _sdxl_output(*generated),
            "a fox\nNegative prompt: blurry\nSteps: 30, CFG scale: 7, Seed: 991, Size: 1152x896, "
            "Model: test-endpoint, Sampler: DPM++ 2M, Style preset: photographic",
        ),
    ],
    ids=["upscale", "inpaint", "sdxl"],
)
def test_each_familys_output_becomes_pngs_with_its_parameters_and_a_manifest_without_images(
    extract_image, request_body, images, output, text
):
    inference_id, manifest = _run(extract_image, request_body, output)

    assert manifest.status == "completed", manifest.reason
    assert manifest.image_keys == tuple(image_key(inference_id, n) for n in range(len(images)))
    for number, image in enumerate(images):
        pixels, written = _png(extract_image, image_key(inference_id, number))
        assert np.array_equal(pixels, image)
    assert written == text
    assert not {"image", "mask_image", "init_image"} & manifest.request.keys()
    assert manifest.request.get("prompt", "a fox") in text


@pytest.mark.parametrize(
    ("request_body", "output", "reason"),
    [
        (
            UPSCALE_REQUEST,
            encode_output(_pixels(388, 256), "p"),
            "Image 1 is 388 × 256 pixels; the request allows at most 384 × 256",
        ),
        (INPAINT_REQUEST, encode_output(_pixels(96, 64, 3), "p"), "holds 3 images; the request allows at most 2"),
        (SDXL_REQUEST, _sdxl_output(*_pixels(1024, 1024)), "1024 × 1024 pixels; the request allows at most 1152 × 896"),
        (SDXL_REQUEST, orjson.dumps({"artifacts": [{"base64": "", "finishReason": "ERROR"}]}), "reports an error"),
        (SDXL_REQUEST, b'{"artifacts": "' + b"A" * 12_000_000 + b'"}', "larger than its request can produce (11 MB)"),
    ],
    ids=["upscale-too-wide", "inpaint-too-many", "sdxl-other-size", "sdxl-error", "sdxl-not-downloaded"],
)
def test_a_familys_output_beyond_its_request_gets_a_failed_manifest_that_says_why(
    extract_image, request_body, output, reason
):
    _, manifest = _run(extract_image, request_body, output)

    assert manifest.status == "failed"
    assert reason in manifest.reason
    assert not {"image", "mask_image", "init_image"} & manifest.request.keys()


def test_an_sdxl_output_without_its_request_is_still_read(extract_image):
    inference_id = new_inference_id()
    extract_image.put(f"output/{inference_id}.out", _sdxl_output(*_pixels(64, 64)))

    extract_image(sns_event(notification(inference_id, extract_image.bucket)))

    manifest = parse_manifest(extract_image.get(manifest_key(inference_id)), inference_id)
    assert manifest.status == "completed" and (manifest.width, manifest.height) == (64, 64)
    assert "Seed: 991" in _png(extract_image, image_key(inference_id, 0))[1]

"""The sandbox endpoint answers every model family, through S3, SNS and the real Lambdas, so each shows.

An upscale is the source at 4× its sides, an inpaint changes only the mask's white area, SDXL
returns one base64 image of the asked size; each PNG says how it was made.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from app.services.local_cloud import SandboxEngine
from contract import (
    manifest_key,
    message_key,
    new_inference_id,
    parse_manifest,
    parse_notification,
    parse_parameters,
)
from contract.families import INPAINT, SDXL, UPSCALE


def _b64(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _source(width: int, height: int) -> Image.Image:
    ramp = np.linspace(0, 255, width, dtype=np.uint8)
    pixels = np.stack(
        [np.tile(ramp, (height, 1)), np.full((height, width), 90, np.uint8), np.tile(ramp[::-1], (height, 1))], -1
    )
    return Image.fromarray(pixels, "RGB")


def _get(cloud, key: str) -> bytes:
    return cloud.client("s3").get_object(Bucket=cloud.deployment.bucket, Key=key)["Body"].read()


def _done(cloud, submit, family, body: dict) -> tuple[str, list[np.ndarray], list[str]]:
    """Submit as a client of the family would, wait, and return the manifest's PNGs and their parameters."""
    inference_id = new_inference_id()
    submit(body, InferenceId=inference_id, ContentType=family.content_type, Accept=family.accept)
    cloud.wait_idle()
    assert cloud.cloud.runner.failures == []
    message = parse_notification(_get(cloud, message_key(inference_id)))
    assert message.completed, message.failure_reason
    manifest = parse_manifest(_get(cloud, manifest_key(inference_id)), inference_id)
    assert manifest.status == "completed", manifest.reason
    images, texts = [], []
    for key in manifest.image_keys:
        with Image.open(io.BytesIO(_get(cloud, key))) as png:
            images.append(np.asarray(png.convert("RGB")))
            texts.append(png.text["parameters"])
    return inference_id, images, texts


def test_an_upscale_is_the_source_at_four_times_its_sides(cloud, submit):
    source = _source(80, 48)
    body = UPSCALE.body(UPSCALE.parse_request({"prompt": "sharper", "image": _b64(source), "seed": 5}))

    _, images, texts = _done(cloud, submit, UPSCALE, body)

    assert [image.shape for image in images] == [(192, 320, 3)]
    shrunk = np.asarray(Image.fromarray(images[0]).resize((80, 48), Image.Resampling.BOX), dtype=int)
    assert np.abs(shrunk - np.asarray(source, dtype=int)).mean() < 40  # the source's picture, grid aside
    params = parse_parameters(texts[0])
    assert (params.width, params.height, params.model) == (320, 192, "Sandbox test pattern (not a model)")
    assert params.extra["Operation"] == "upscale" and params.extra["Source size"] == "80x48"


def test_an_inpaint_repaints_only_the_masks_white_area(cloud, submit):
    source = _source(96, 64)
    mask = Image.new("L", (96, 64), 0)
    mask.paste(255, (24, 16, 72, 48))
    body = INPAINT.body(
        INPAINT.parse_request(
            {"prompt": "a red hat", "image": _b64(source), "mask_image": _b64(mask), "num_images_per_prompt": 2}
        )
    )

    _, images, texts = _done(cloud, submit, INPAINT, body)

    white = np.asarray(mask) >= 128
    original = np.asarray(source)
    assert len(images) == 2
    for image in images:
        assert image.shape == original.shape
        assert np.array_equal(image[~white], original[~white])
        assert (image[white] != original[white]).any(axis=-1).mean() > 0.5
    assert not np.array_equal(images[0], images[1])
    assert (
        parse_parameters(texts[1]).extra.items()
        >= {"Operation": "inpaint", "Batch size": "2", "Batch pos": "1"}.items()
    )


@pytest.mark.parametrize("init", [False, True], ids=["text", "image-to-image"])
def test_sdxl_returns_one_base64_image_of_the_asked_size_with_its_sampler_and_style(cloud, submit, init):
    fields = {"sampler": "K_EULER_ANCESTRAL", "style_preset": "origami"}
    if init:
        fields |= {"init_image": _b64(_source(896, 1152)), "image_strength": 0.5}
    else:
        fields |= {"width": 1216, "height": 832}
    prompts = [{"text": "a paper crane"}, {"text": "blurry", "weight": -1}]
    body = SDXL.body(SDXL.parse_request({"text_prompts": prompts} | fields))

    _, images, texts = _done(cloud, submit, SDXL, body)

    assert [image.shape for image in images] == [(1152, 896, 3) if init else (832, 1216, 3)]
    params = parse_parameters(texts[0])
    assert (params.prompt, params.negative_prompt) == ("a paper crane", "blurry")
    assert params.extra["Sampler"] == "Euler a" and params.extra["Style preset"] == "origami"
    assert params.seed is not None and params.seed > 0  # Stability's container reports the seed it drew
    if init:
        assert params.extra["Image strength"] == "0.5"


def test_a_request_a_family_refuses_fails_at_the_endpoint_naming_the_field(cloud, submit):
    inference_id = new_inference_id()
    submit(
        {"prompt": "p", "image": _b64(_source(640, 64))}, InferenceId=inference_id, ContentType="application/json;jpeg"
    )
    cloud.wait_idle()

    message = parse_notification(_get(cloud, message_key(inference_id)))
    assert message.failed and "image: is 640×64 pixels; each side must be 32 to 512" in message.failure_reason


def test_sdxl_asked_for_a_jpeg_list_is_refused_as_its_container_does(cloud, submit):
    inference_id = new_inference_id()
    body = SDXL.body(SDXL.parse_request({"text_prompts": [{"text": "p"}]}))
    submit(body, InferenceId=inference_id, Accept="application/json;jpeg")
    cloud.wait_idle()

    message = parse_notification(_get(cloud, message_key(inference_id)))
    assert message.failed and "Unsupported Accept type" in message.failure_reason


class TextOnly:
    """An engine written before the families: it draws text-to-image requests only."""

    name = "text only"

    def render(self, request):
        raise AssertionError("not a text-to-image request")


def test_an_engine_that_serves_no_upscales_fails_the_job_in_words_and_keeps_serving(cloud, submit):
    cloud.cloud.engine = TextOnly()
    inference_id = new_inference_id()
    try:
        submit(
            UPSCALE.body(UPSCALE.parse_request({"prompt": "p", "image": _b64(_source(64, 64))})),
            InferenceId=inference_id,
        )
        cloud.wait_idle()
    finally:
        cloud.cloud.engine = SandboxEngine()

    message = parse_notification(_get(cloud, message_key(inference_id)))
    assert message.failed and "does not serve upscale requests" in message.failure_reason

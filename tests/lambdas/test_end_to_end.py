"""A job submitted with plain boto3 ends as PNGs and a manifest, through both real Lambdas."""

from __future__ import annotations

import io

import numpy as np
import orjson
from PIL import Image

from app.services.local_cloud.engine import SandboxEngine
from contract import (
    ACCEPT_JPEG,
    MESSAGE_INDEX,
    GenerationRequest,
    S3Location,
    decode_output,
    manifest_key,
    message_key,
    new_inference_id,
    parse_manifest,
    parse_notification,
    parse_parameters,
    request_key,
)


def _submit(cloud, request: dict, **invoke) -> dict:
    """What any client does: put the request in S3, then InvokeEndpointAsync on it."""
    key = request_key(new_inference_id())
    cloud.client("s3").put_object(Bucket=cloud.deployment.bucket, Key=key, Body=orjson.dumps(request))
    return cloud.client("sagemaker-runtime").invoke_endpoint_async(
        EndpointName=cloud.deployment.endpoint_name,
        InputLocation=f"s3://{cloud.deployment.bucket}/{key}",
        ContentType="application/json",
        **invoke,
    )


def _get(cloud, key: str) -> bytes:
    return cloud.client("s3").get_object(Bucket=cloud.deployment.bucket, Key=key)["Body"].read()


def _open(cloud, key: str) -> tuple[np.ndarray, str]:
    with Image.open(io.BytesIO(_get(cloud, key))) as png:
        png.load()
        return np.asarray(png), png.text["parameters"]


def test_pngs_hold_the_engines_pixels_and_parameters_that_restore_the_request(cloud):
    request = {
        "prompt": "a harbour at dawn, watercolour",
        "negative_prompt": "text",
        "width": 96,
        "height": 64,
        "num_inference_steps": 20,
        "guidance_scale": 6.5,
        "num_images_per_prompt": 2,
        "seed": 7,
    }
    inference_id = new_inference_id()

    _submit(cloud, request, InferenceId=inference_id)
    cloud.wait_idle()

    assert cloud.cloud.runner.failures == []
    assert parse_notification(_get(cloud, message_key(inference_id))).completed
    listed = cloud.client("s3").list_objects_v2(Bucket=cloud.deployment.bucket, Prefix=MESSAGE_INDEX)["Contents"]
    assert [item["Key"].endswith(f"_{inference_id}") for item in listed] == [True]
    manifest = parse_manifest(_get(cloud, manifest_key(inference_id)), inference_id)
    assert manifest.status == "completed" and (manifest.width, manifest.height) == (96, 64)
    expected = SandboxEngine().render(GenerationRequest(**request))
    assert len(manifest.image_keys) == len(expected) == 2
    for key, pixels in zip(manifest.image_keys, expected, strict=True):
        png, text = _open(cloud, key)
        assert np.array_equal(png, pixels)
        restored = parse_parameters(text).request_fields()
        assert restored == {k: v for k, v in request.items() if k != "num_images_per_prompt"}


def test_a_plain_client_without_inference_id_or_accept_gets_its_images(cloud):
    request = {"prompt": "a red bicycle", "width": 400, "height": 400, "num_images_per_prompt": 2}

    response = _submit(cloud, request, InvocationTimeoutSeconds=3600)
    cloud.wait_idle()

    inference_id = response["InferenceId"]
    manifest = parse_manifest(_get(cloud, manifest_key(inference_id)), inference_id)
    assert manifest.status == "completed" and len(manifest.image_keys) == 2
    assert all(_open(cloud, key)[0].shape == (400, 400, 3) for key in manifest.image_keys)


def test_jpeg_output_becomes_pngs_of_the_jpeg_pixels(cloud):
    inference_id = new_inference_id()

    response = _submit(
        cloud, {"prompt": "a fox", "width": 64, "height": 64, "seed": 3}, InferenceId=inference_id, Accept=ACCEPT_JPEG
    )
    cloud.wait_idle()

    output = S3Location.parse(response["OutputLocation"])
    [expected] = decode_output(_get(cloud, output.key))
    [key] = parse_manifest(_get(cloud, manifest_key(inference_id)), inference_id).image_keys
    assert np.array_equal(_open(cloud, key)[0], expected)


def test_a_request_the_model_cannot_serve_is_recorded_as_failed_without_images(cloud):
    inference_id = new_inference_id()

    _submit(cloud, {"width": 64, "height": 64}, InferenceId=inference_id)
    cloud.wait_idle()

    message = parse_notification(_get(cloud, message_key(inference_id)))
    assert message.failed and message.failure_reason
    listed = cloud.client("s3").list_objects_v2(Bucket=cloud.deployment.bucket, Prefix=f"images/{inference_id}/")
    assert listed.get("KeyCount") == 0

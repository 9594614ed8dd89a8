"""The real handlers in lambdas/ run behind the local cloud's topics, as on AWS."""

from __future__ import annotations

from pathlib import Path

import pytest

from contract import image_key, manifest_key, message_key, new_inference_id, parse_manifest, parse_notification

LAMBDAS = Path(__file__).resolve().parents[2] / "lambdas"
pytestmark = pytest.mark.skipif(
    not all((LAMBDAS / name / "index.py").is_file() for name in ("save_message", "extract_image")),
    reason="the Lambda handlers are not written yet",
)


def _get(cloud, key: str) -> bytes:
    return cloud.client("s3").get_object(Bucket=cloud.deployment.bucket, Key=key)["Body"].read()


def test_a_completed_job_leaves_its_message_images_and_manifest(cloud, submit):
    inference_id = new_inference_id()
    submit(
        {"prompt": "a harbour at dawn", "width": 64, "height": 64, "seed": 2, "num_images_per_prompt": 2},
        InferenceId=inference_id,
    )
    cloud.wait_idle()

    assert cloud.cloud.runner.failures == []
    assert parse_notification(_get(cloud, message_key(inference_id))).completed
    manifest = parse_manifest(_get(cloud, manifest_key(inference_id)), inference_id)
    assert set(manifest.image_keys) >= {image_key(inference_id, 0), image_key(inference_id, 1)}
    png = _get(cloud, image_key(inference_id, 0))
    assert png.startswith(b"\x89PNG")
    assert b"Sandbox test pattern (not a model)" in png  # the parameters chunk says what drew it


def test_a_failed_job_leaves_its_message(cloud, submit):
    inference_id = new_inference_id()
    submit({"width": 64, "height": 64}, InferenceId=inference_id)
    cloud.wait_idle()

    message = parse_notification(_get(cloud, message_key(inference_id)))
    assert message.failed and "prompt" in message.failure_reason

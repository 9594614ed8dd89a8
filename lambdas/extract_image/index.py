"""Turns a completed job's model output into PNG files with their generation parameters.

Subscribed to the success topic. Reads the output named in the notification, decodes every
image (nested RGB arrays, base64 JPEG, or SDXL's base64 PNG artifacts: the request's model family,
`contract.families`, says which and how large they may be), writes `images/<id>/<n>.png` with a `parameters`
text chunk, then `images/<id>/manifest.json` last: its presence means the images are complete.
Output that cannot be turned into images, or holds more or larger images than its request asked
for (checked before decoding, so a small output cannot exhaust memory), gets a failed manifest
that says why; S3 errors are raised so Lambda retries. Everything written depends only on the
notification and the stored objects, so a notification delivered twice writes the same objects again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import boto3
import orjson
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import SNSEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from contract import (
    STATUS_COMPLETED,
    STATUS_FAILED,
    Manifest,
    ModelOutput,
    Notification,
    NotificationError,
    OutputError,
    OutputLimits,
    S3Location,
    encode_png,
    format_parameters,
    image_key,
    is_safe_inference_id,
    lambda_bucket,
    manifest_key,
    object_listed,
    parse_notification,
    sns_messages,
)
from contract.families import MAX_REQUEST_BYTES, Family, family_of_output, family_of_request
from contract.output import MAX_OUTPUT_BYTES

logger = Logger()
s3 = boto3.client("s3")

_MISSING = {"NoSuchKey", "404", "NotFound"}
_DENIED = {"AccessDenied", "403"}
_UNREADABLE_REQUEST = _MISSING | _DENIED


class JobFailed(Exception):
    """The job's data cannot become images; the message is written for a designer."""


@dataclass(frozen=True)
class Job:
    """What one completed notification asks for."""

    inference_id: str
    notification: Notification | None
    created: str | None


@logger.inject_lambda_context
@event_source(data_class=SNSEvent)
def lambda_handler(event: SNSEvent, context: LambdaContext) -> None:
    bucket = lambda_bucket(os.environ)
    for message in sns_messages(event.raw_event, logger):
        job = read_job(message)
        if job is not None:
            process(job, bucket)


def read_job(message: str) -> Job | None:
    """The job a message asks to post-process, or None (logged) when there is none.

    A message with a safe inference id that is not a readable Completed or Failed notification
    is still a job: it gets a failed manifest, so the client does not wait for it forever.
    """
    try:
        data = orjson.loads(message)
    except orjson.JSONDecodeError:
        logger.warning("Ignored a message that is not JSON (not an inference notification)")
        return None
    inference_id = data.get("inferenceId") if isinstance(data, dict) else None
    if inference_id is None:
        logger.warning("Ignored a message without an inferenceId (not an inference notification)")
        return None
    if not is_safe_inference_id(inference_id):
        logger.error("Ignored a notification whose inference id is not safe as an S3 key: %r", inference_id)
        return None
    logger.append_keys(inference_id=inference_id)
    created = data.get("eventTime") if isinstance(data.get("eventTime"), str) else None
    try:
        notification = parse_notification(data)
    except NotificationError as exc:
        logger.error("The notification cannot be read: %s", exc)
        return Job(inference_id, None, created)
    if notification.failed:
        logger.info("The job failed at the endpoint; only its message is stored")
        return None
    return Job(inference_id, notification, created)


def process(job: Job, bucket: str) -> Manifest:
    """Write the job's PNGs and manifest, or a failed manifest; S3 errors propagate."""
    request: dict[str, Any] = {}
    family: Family | None = None
    try:
        if job.notification is None:
            raise JobFailed("SageMaker's notification for this job has an unknown status, so there are no images")
        request = read_request(job.notification, bucket) or {}
        family = family_of_request(request) if request else None
        limits = family.output_limits(request) if family else OutputLimits()
        body = read_output_object(job.notification, bucket, family.max_output_bytes(limits) if family else None)
        family = family or family_of_output(body)
        try:
            output = family.read_output(body, limits)
        except OutputError as exc:
            raise JobFailed(str(exc)) from None
        request = request or {"prompt": output.prompt or ""}
        manifest = write_images(job, output, request, family, bucket)
    except JobFailed as exc:
        reason = _sentence(str(exc))
        logger.error("Post-processing failed: %s", reason)
        kept = family.manifest_request(request) if family else request
        manifest = Manifest(job.inference_id, STATUS_FAILED, request=kept, created=job.created, reason=reason)
    put(bucket, manifest_key(job.inference_id), manifest.to_json(), "application/json")
    logger.info("Wrote the %s manifest", manifest.status, extra={"images": len(manifest.image_keys)})
    return manifest


def read_output_object(notification: Notification, bucket: str, limit: int | None = None) -> bytes:
    """The model output's bytes; JobFailed when it is missing, elsewhere, or larger than `limit` (the
    most its request's family can produce; the largest any request can produce without a request).

    Each image's size and the count are checked against the request's `OutputLimits` before anything is
    decoded (`Family.read_output`).
    """
    if not notification.output_location:
        raise JobFailed("The notification does not say where the model output is")
    try:
        location = S3Location.parse(notification.output_location)
    except ValueError:
        raise JobFailed(f"The output location {notification.output_location!r} is not an s3:// address") from None
    if location.bucket != bucket:
        raise JobFailed(f"The model output is in another bucket ({location.bucket}), not this deployment's")
    most = min(limit, MAX_OUTPUT_BYTES) if limit is not None else MAX_OUTPUT_BYTES
    try:
        body = get(bucket, location.key, limit=most)
    except ClientError as exc:
        # With ListBucket limited to prefixes, S3 answers a missing key with 403, not 404: the listing tells.
        if _code(exc) in _MISSING | _DENIED and not object_listed(s3, bucket, location.key):
            raise JobFailed("The model output is missing from S3 (it may have been deleted)") from None
        raise
    if body is None:
        whose = "the largest request" if most == MAX_OUTPUT_BYTES else "its request"
        raise JobFailed(f"The model output is larger than {whose} can produce ({most / 1e6:.0f} MB)")
    return body


def read_request(notification: Notification, bucket: str) -> dict[str, Any] | None:
    """The request as submitted, or None (logged) when it cannot be read; transient errors raise."""
    if not notification.input_location:
        logger.warning("The notification names no request; parameters come from the output")
        return None
    try:
        location = S3Location.parse(notification.input_location)
    except ValueError:
        logger.warning("The request location %r is not an s3:// address", notification.input_location)
        return None
    if location.bucket != bucket:
        logger.warning("The request is in another bucket (%s); parameters come from the output", location.bucket)
        return None
    try:
        body = get(bucket, location.key, limit=MAX_REQUEST_BYTES)
    except ClientError as exc:
        if _code(exc) in _UNREADABLE_REQUEST:
            logger.warning(
                "The request %s cannot be read (%s); parameters come from the output", location.uri, _code(exc)
            )
            return None
        raise
    if body is None:
        logger.warning(
            "The request %s is larger than any request can be; parameters come from the output", location.uri
        )
        return None
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        logger.warning("The request %s is not a JSON object; parameters come from the output", location.uri)
        return None
    return data


def write_images(job: Job, output: ModelOutput, request: dict[str, Any], family: Family, bucket: str) -> Manifest:
    """Each image as a PNG with the `parameters` text its family writes, and the completed manifest."""
    assert job.notification is not None
    keys = []
    for number, image in enumerate(output.images):
        text = format_parameters(family.parameters(request, output, number, job.notification.endpoint_name))
        key = image_key(job.inference_id, number)
        put(bucket, key, encode_png(image, text), "image/png")
        keys.append(key)
    height, width = output.images[0].shape[:2]
    logger.info("Wrote %d PNG file(s) of %dx%d", len(keys), width, height)
    return Manifest(
        job.inference_id,
        STATUS_COMPLETED,
        tuple(keys),
        request=family.manifest_request(request),
        width=width,
        height=height,
        created=job.created,
    )


def get(bucket: str, key: str, limit: int | None = None) -> bytes | None:
    """The object's bytes, or None (not read) when it is larger than `limit`."""
    response = s3.get_object(Bucket=bucket, Key=key)
    if limit is not None and response["ContentLength"] > limit:
        response["Body"].close()
        return None
    return response["Body"].read()


def put(bucket: str, key: str, body: bytes, content_type: str) -> None:
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
    except Exception:
        logger.exception("Could not write %s; Lambda will retry", key)
        raise


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _sentence(text: str) -> str:
    text = text[:1].upper() + text[1:]
    return text if text.endswith(".") else text + "."

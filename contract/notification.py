"""SageMaker's async-inference notification (the SNS message body), parsed leniently."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from .ids import check_inference_id

COMPLETED = "Completed"
FAILED = "Failed"


class NotificationError(ValueError):
    """The message is not an inference notification we can act on."""


@dataclass(frozen=True, slots=True)
class Notification:
    inference_id: str
    status: str
    input_location: str | None = None
    output_location: str | None = None
    failure_location: str | None = None
    failure_reason: str | None = None
    event_time: str | None = None
    received_time: str | None = None
    endpoint_name: str | None = None

    @property
    def completed(self) -> bool:
        return self.status == COMPLETED

    @property
    def failed(self) -> bool:
        return self.status == FAILED


def parse_notification(message: bytes | str | dict[str, Any]) -> Notification:
    """Parse a notification; any field but `inferenceId` and `invocationStatus` may be missing."""
    if isinstance(message, dict):
        data = message
    else:
        try:
            data = orjson.loads(message)
        except orjson.JSONDecodeError:
            raise NotificationError("the message is not JSON") from None
    if not isinstance(data, dict):
        raise NotificationError("the message is not a JSON object")
    if "inferenceId" not in data:
        raise NotificationError("the message has no inferenceId (not an inference notification)")
    try:
        inference_id = check_inference_id(data["inferenceId"])
    except ValueError as exc:
        raise NotificationError(f"unsafe inference id {data['inferenceId']!r}: {exc}") from None
    status = data.get("invocationStatus")
    if status not in (COMPLETED, FAILED):
        raise NotificationError(f"unknown invocationStatus {status!r}")
    request = _dict(data.get("requestParameters"))
    response = _dict(data.get("responseParameters"))
    return Notification(
        inference_id=inference_id,
        status=status,
        input_location=_str(request.get("inputLocation")),
        output_location=_str(response.get("outputLocation")),
        failure_location=_str(response.get("failureLocation")),
        failure_reason=_str(data.get("failureReason")),
        event_time=_str(data.get("eventTime")),
        received_time=_str(data.get("receivedTime")),
        endpoint_name=_str(request.get("endpointName")),
    )


def build_notification(
    *,
    inference_id: str,
    status: str,
    region: str,
    endpoint_name: str,
    input_location: str,
    received_time: str,
    event_time: str,
    content_type: str = "application/json",
    output_location: str | None = None,
    failure_location: str | None = None,
    failure_reason: str | None = None,
) -> dict[str, Any]:
    """A notification in the exact shape SageMaker publishes (used by the local cloud)."""
    message: dict[str, Any] = {
        "awsRegion": region,
        "eventTime": event_time,
        "receivedTime": received_time,
        "invocationStatus": status,
        "requestParameters": {
            "contentType": content_type,
            "endpointName": endpoint_name,
            "inputLocation": input_location,
        },
        "responseParameters": {"contentType": "application/json"},
        "inferenceId": inference_id,
        "eventVersion": "1.0",
        "eventSource": "aws:sagemaker",
        "eventName": "InferenceResult",
    }
    if output_location:
        message["responseParameters"]["outputLocation"] = output_location
    if failure_location:
        message["responseParameters"]["failureLocation"] = failure_location
    if failure_reason:
        message["failureReason"] = failure_reason
    return message


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def sns_messages(event: Any, log: Any) -> Iterator[str]:
    """The Message of every record of a Lambda SNS event; other records are logged and skipped.

    `log` is the handler's Powertools Logger: the previous record's `inference_id` key is removed
    before each message, so no log line names another record's job.
    """
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list):
        log.error("Ignored an event without Records: it did not come from SNS")
        return
    for number, record in enumerate(records, 1):
        sns = record.get("Sns") if isinstance(record, dict) else None
        message = sns.get("Message") if isinstance(sns, dict) else None
        if not isinstance(message, str):
            log.error("Ignored record %d: it has no SNS message", number)
            continue
        log.remove_keys(["inference_id"])
        yield message

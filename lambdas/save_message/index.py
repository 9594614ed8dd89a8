"""Stores every SageMaker async-inference notification in S3, so clients can follow their jobs.

Subscribed to the success and the error topic. Writes `messages/<inferenceId>.json` with the
message exactly as SageMaker sent it, then the time-ordered index entry
`messages-by-time/<eventTime>_<inferenceId>` that lets a tracker list new notifications cheaply.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

import boto3
import orjson
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import SNSEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from contract import (
    Notification,
    NotificationError,
    lambda_bucket,
    message_index_key,
    message_key,
    parse_notification,
    sns_messages,
)

logger = Logger()
s3 = boto3.client("s3")


@logger.inject_lambda_context
@event_source(data_class=SNSEvent)
def lambda_handler(event: SNSEvent, context: LambdaContext) -> None:
    bucket = lambda_bucket(os.environ)
    for message in sns_messages(event.raw_event, logger):
        notification = read_notification(message)
        if notification is not None:
            save(notification, message, bucket)


def read_notification(message: str) -> Notification | None:
    """The notification, or None (logged) for test messages, unknown statuses and unsafe ids."""
    try:
        notification = parse_notification(message)
    except NotificationError as exc:
        logger.warning("Ignored a message that is not an inference notification we can store: %s", exc)
        return None
    logger.append_keys(inference_id=notification.inference_id)
    return notification


def index_time(notification: Notification) -> datetime:
    """When SageMaker says the job ended; the time of receipt or now if it says nothing usable."""
    for stamp in (notification.event_time, notification.received_time):
        try:
            when = datetime.fromisoformat(stamp) if stamp else None
        except ValueError:
            continue
        if when is not None:
            return when if when.tzinfo else when.replace(tzinfo=UTC)
    logger.warning("The notification has no readable eventTime; indexing it under the current time")
    return datetime.now(UTC)


def save(notification: Notification, message: str, bucket: str) -> tuple[str, str]:
    """Write the message, then its index entry; S3 errors are raised so Lambda retries."""
    key = message_key(notification.inference_id)
    index_key = message_index_key(index_time(notification), notification.inference_id)
    entry = orjson.dumps({"inferenceId": notification.inference_id, "invocationStatus": notification.status})
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=message.encode("utf-8"), ContentType="application/json")
        s3.put_object(Bucket=bucket, Key=index_key, Body=entry, ContentType="application/json")
    except Exception:
        logger.exception("Could not store the %s notification in S3; Lambda will retry", notification.status)
        raise
    logger.info("Stored the %s notification", notification.status, extra={"key": key, "index_key": index_key})
    return key, index_key

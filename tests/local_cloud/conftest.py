"""Helpers for the local cloud's own tests: submit a request, collect notifications."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

from contract import Notification, new_inference_id, parse_notification, request_key


@dataclass
class Inbox:
    """A test handler subscribed to both topics; keeps every event and context it was given."""

    events: list[dict[str, Any]] = field(default_factory=list)
    contexts: list[Any] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, event: dict[str, Any], context: Any) -> None:
        with self.lock:
            self.events.append(event)
            self.contexts.append(context)

    @property
    def notifications(self) -> list[Notification]:
        with self.lock:
            return [parse_notification(e["Records"][0]["Sns"]["Message"]) for e in self.events]

    def by_id(self, inference_id: str) -> Notification:
        found = [n for n in self.notifications if n.inference_id == inference_id]
        assert len(found) == 1, f"expected one notification for {inference_id}, got {found}"
        return found[0]


@pytest.fixture
def inbox(cloud) -> Inbox:
    box = Inbox()
    cloud.cloud.register_handler(cloud.deployment.success_topic_arn, box, function_name="test-inbox")
    cloud.cloud.register_handler(cloud.deployment.error_topic_arn, box, function_name="test-inbox")
    return box


@pytest.fixture
def submit(cloud):
    """Upload a request body to requests/<id>.json and invoke the endpoint as a plain boto3 client."""
    runtime = cloud.client("sagemaker-runtime")
    s3 = cloud.client("s3")

    def submit_(
        body: dict[str, Any] | bytes, *, endpoint: str | None = None, bucket: str | None = None, **invoke: Any
    ) -> dict[str, Any]:
        """Into the test deployment's bucket and endpoint, or another deployment's (its role reads only its own)."""
        key = request_key(new_inference_id())
        data = body if isinstance(body, bytes) else orjson.dumps(body)
        bucket = bucket or cloud.deployment.bucket
        s3.put_object(Bucket=bucket, Key=key, Body=data)
        invoke.setdefault("ContentType", "application/json")
        return runtime.invoke_endpoint_async(
            EndpointName=endpoint or cloud.deployment.endpoint_name,
            InputLocation=f"s3://{bucket}/{key}",
            **invoke,
        )

    return submit_

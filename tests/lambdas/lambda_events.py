"""Lambda test helpers: SNS events, notifications, a small LambdaContext, handlers on the local cloud."""

from __future__ import annotations

import importlib
import io
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

from contract import COMPLETED, build_notification


@dataclass
class FakeContext:
    """The fields of Lambda's context that Powertools reads."""

    function_name: str = "test-function"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))


def sns_event(*messages: str | dict[str, Any]) -> dict[str, Any]:
    """A Lambda SNS event with one record per message (dicts are sent as JSON)."""
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:topic:sub",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": str(uuid.uuid4()),
                    "TopicArn": "arn:aws:sns:us-east-1:123456789012:topic",
                    "Subject": None,
                    "Message": m if isinstance(m, str) else orjson.dumps(m).decode(),
                    "Timestamp": "2026-11-25T15:00:00.000Z",
                    "MessageAttributes": {},
                },
            }
            for m in messages
        ]
    }


def notification(
    inference_id: str,
    bucket: str,
    *,
    status: str = COMPLETED,
    output_key: str | None = None,
    input_key: str | None = None,
    event_time: str = "2026-11-25T15:00:01.250Z",
    **kwargs: Any,
) -> dict[str, Any]:
    """A SageMaker notification for a job whose objects live in `bucket`."""
    return build_notification(
        inference_id=inference_id,
        status=status,
        region="us-east-1",
        endpoint_name="test-endpoint",
        input_location=f"s3://{bucket}/{input_key or f'requests/{inference_id}.json'}",
        received_time="2026-11-25T15:00:00.000Z",
        event_time=event_time,
        output_location=f"s3://{bucket}/{output_key or f'output/{inference_id}.out'}",
        **kwargs,
    )


@dataclass
class Lambda:
    """One handler module wired to the local cloud's S3, with its log lines captured."""

    module: Any
    bucket: str
    s3: Any
    log: io.StringIO

    def __call__(self, event: Any) -> Any:
        return self.module.lambda_handler(event, FakeContext())

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.getvalue().splitlines() if line.strip()]

    def keys(self) -> list[str]:
        listed = self.s3.list_objects_v2(Bucket=self.bucket)
        return sorted(item["Key"] for item in listed.get("Contents", []))

    def get(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def put(self, key: str, body: bytes | str) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)


def wire(name: str, cloud: Any, monkeypatch: pytest.MonkeyPatch) -> Lambda:
    module = importlib.import_module(f"lambdas.{name}.index")
    s3 = cloud.client("s3")
    log = io.StringIO()
    monkeypatch.setattr(module, "s3", s3)
    monkeypatch.setenv("BUCKET_NAME", cloud.deployment.bucket)
    monkeypatch.setattr(module.logger.registered_handler, "stream", log)
    return Lambda(module, cloud.deployment.bucket, s3, log)

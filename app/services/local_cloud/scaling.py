"""Application Auto Scaling's side of the emulated endpoint: its scaling activities, and its limits acted on.

moto keeps scalable targets, policies and scheduled actions, but records no scaling activity and acts on
nothing. The endpoint emulator records an activity for each change of an endpoint's instance count, as
Application Auto Scaling does on AWS (from when the change began to when SageMaker fulfilled it), and this
module answers DescribeScalingActivities from those records. Calls that change a target's limits or its
scheduled actions still go to moto; the local cloud then tells the emulator, which acts on them.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from app.services.local_cloud.json_wire import answer, page, request_body

SERVICE = "AnyScaleFrontendService"
#: The calls after which the emulator reads the targets' limits and scheduled actions again.
CHANGES = frozenset(
    {"RegisterScalableTarget", "DeregisterScalableTarget", "PutScheduledAction", "DeleteScheduledAction"}
)
DIMENSION = "sagemaker:variant:DesiredInstanceCount"
_PAGE = 50  # DescribeScalingActivities' MaxResults default and maximum


def operation(environ: dict[str, Any]) -> str | None:
    """The Application Auto Scaling operation a request calls (its X-Amz-Target), or None."""
    service, _, name = (environ.get("HTTP_X_AMZ_TARGET") or "").partition(".")
    return name if service == SERVICE else None


def resource_id(endpoint: str, variant: str) -> str:
    return f"endpoint/{endpoint}/variant/{variant}"


@dataclass(frozen=True, slots=True)
class Activity:
    """One scaling activity, in DescribeScalingActivities' words; times are UNIX seconds."""

    activity_id: str
    region: str
    resource_id: str
    description: str
    cause: str
    start: float
    end: float | None = None
    status: str = "InProgress"
    message: str = ""

    def to_api(self) -> dict[str, Any]:
        item = {
            "ActivityId": self.activity_id,
            "ServiceNamespace": "sagemaker",
            "ResourceId": self.resource_id,
            "ScalableDimension": DIMENSION,
            "Description": self.description,
            "Cause": self.cause,
            "StartTime": self.start,
            "StatusCode": self.status,
        }
        if self.end is not None:
            item["EndTime"] = self.end
        if self.message:
            item["StatusMessage"] = self.message
        return item


class ScalingActivities:
    """The scaling activities of every emulated endpoint, newest first, and the WSGI answer to describe them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._activities: list[Activity] = []

    def begin(self, region: str, resource: str, *, start: float, count: int, cause: str) -> str:
        """Record a change of the desired instance count that has begun; returns its id for `finish`."""
        activity = Activity(
            activity_id=str(uuid.uuid4()),
            region=region,
            resource_id=resource,
            description=f"Setting desired instance count to {count}.",
            cause=cause,
            start=start,
        )
        with self._lock:
            self._activities.insert(0, activity)
        return activity.activity_id

    def finish(self, activity_id: str, *, end: float, count: int) -> None:
        """SageMaker fulfilled the change: the activity succeeded at `end`."""
        message = f"Successfully set desired instance count to {count}. Change successfully fulfilled by sagemaker."
        with self._lock:
            self._activities = [
                replace(a, end=end, status="Successful", message=message) if a.activity_id == activity_id else a
                for a in self._activities
            ]

    def record(self, region: str, resource: str, *, start: float, end: float, count: int, cause: str) -> None:
        """A change begun and fulfilled (a scale-in, or one replayed from a script)."""
        self.finish(self.begin(region, resource, start=start, count=count, cause=cause), end=end, count=count)

    def listed(self, region: str, resource: str | None = None) -> list[Activity]:
        with self._lock:
            return [
                a
                for a in sorted(self._activities, key=lambda a: a.start, reverse=True)
                if a.region == region and resource in (None, a.resource_id)
            ]

    def reset(self) -> None:
        with self._lock:
            self._activities.clear()

    def __call__(self, environ: dict[str, Any], start_response: Callable, region: str) -> list[bytes]:
        """DescribeScalingActivities (JSON 1.1), paged by MaxResults and NextToken."""
        body = request_body(environ)
        found = (
            self.listed(region, body.get("ResourceId"))
            if body.get("ServiceNamespace", "sagemaker") == "sagemaker"
            else []
        )
        activities, next_token = page(found, body, _PAGE)
        reply: dict[str, Any] = {"ScalingActivities": [a.to_api() for a in activities]}
        if next_token:
            reply["NextToken"] = next_token
        return answer(start_response, "200 OK", reply)

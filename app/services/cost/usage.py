"""What an endpoint's instances did, from its own CloudWatch metrics and its scaling activity history.

Instance-minutes from CloudWatch: SageMaker samples each instance's CPUUtilization once a minute in
`/aws/sagemaker/Endpoints`, so the SampleCount over any period is the instance-minutes in it (the SageMaker
guide counts an endpoint's instances this way). From the activities: the instance count each fulfilled
"Setting desired instance count to N." held until the next one (Application Auto Scaling keeps six weeks).
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

HOST = "/aws/sagemaker/Endpoints"
SAGEMAKER = "AWS/SageMaker"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"
_COUNT = re.compile(r"desired instance count to (\d+)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Activity:
    """One scaling activity: the count it set, when it began and (once fulfilled) when it ended."""

    count: int
    start: datetime
    end: datetime | None
    status: str
    cause: str = ""

    @property
    def fulfilled(self) -> bool:
        return self.status == "Successful" and self.end is not None


def resource_id(endpoint: str, variant: str) -> str:
    return f"endpoint/{endpoint}/variant/{variant}"


def instance_minutes(cloudwatch: Any, endpoint: str, variant: str, start: datetime, end: datetime) -> float:
    """The instance-minutes between `start` and `end` from the host metrics (raises ClientError when denied)."""
    reply = cloudwatch.get_metric_statistics(
        Namespace=HOST,
        MetricName="CPUUtilization",
        Dimensions=_variant(endpoint, variant),
        StartTime=start,
        EndTime=end,
        Period=3600,
        Statistics=["SampleCount"],
    )
    return float(sum(point["SampleCount"] for point in reply.get("Datapoints", [])))


def latest(cloudwatch: Any, name: str, dims: list[dict[str, str]], stat: str, now: datetime) -> tuple[float, datetime]:
    """The newest one-minute value of a SageMaker metric in the last three hours: (value, its time), or (0, never)."""
    reply = cloudwatch.get_metric_statistics(
        Namespace=SAGEMAKER,
        MetricName=name,
        Dimensions=dims,
        StartTime=now - timedelta(hours=3),
        EndTime=now + timedelta(minutes=1),
        Period=60,
        Statistics=[stat],
    )
    points = sorted(reply.get("Datapoints", []), key=lambda p: p["Timestamp"])
    if not points:
        return 0.0, datetime.min.replace(tzinfo=UTC)
    return float(points[-1][stat]), points[-1]["Timestamp"]


def seconds_per_job(cloudwatch: Any, endpoint: str, variant: str, start: datetime, end: datetime) -> float | None:
    """The average seconds a job held an instance (TotalProcessingTime less TimeInBacklog), or None with no jobs."""
    dims = _variant(endpoint, variant)
    totals = []
    for name in ("TotalProcessingTime", "TimeInBacklog"):
        reply = cloudwatch.get_metric_statistics(
            Namespace=SAGEMAKER,
            MetricName=name,
            Dimensions=dims,
            StartTime=start,
            EndTime=end,
            Period=3600,
            Statistics=["Sum", "SampleCount"],
        )
        points = reply.get("Datapoints", [])
        totals.append((sum(p["Sum"] for p in points), sum(p["SampleCount"] for p in points)))
    (processing_ms, jobs), (backlog_us, _) = totals
    if not jobs:
        return None
    return max(0.0, processing_ms / 1e3 - backlog_us / 1e6) / jobs


def activities(scaling: Any, endpoint: str, variant: str) -> list[Activity]:
    """The endpoint's scaling activities, oldest first."""
    found = []
    pages = scaling.get_paginator("describe_scaling_activities").paginate(
        ServiceNamespace="sagemaker", ResourceId=resource_id(endpoint, variant), ScalableDimension=DIMENSION
    )
    for page in pages:
        for item in page.get("ScalingActivities", []):
            match = _COUNT.search(item.get("Description", ""))
            if match:
                found.append(
                    Activity(
                        int(match[1]), item["StartTime"], item.get("EndTime"), item["StatusCode"], item.get("Cause", "")
                    )
                )
    return sorted(found, key=lambda a: a.start)


def minutes_from_activities(history: list[Activity], start: datetime, end: datetime) -> float:
    """Instance-minutes between `start` and `end`: each fulfilled count held from its end to the next one's."""
    changes = [(a.end, a.count) for a in history if a.fulfilled]
    changes.sort(key=lambda change: change[0])
    total = 0.0
    for index, (since, count) in enumerate(changes):
        until = changes[index + 1][0] if index + 1 < len(changes) else end
        low, high = max(since, start), min(until, end)
        if high > low:
            total += count * (high - low).total_seconds() / 60.0
    return total


def cold_starts(history: list[Activity]) -> list[float]:
    """Seconds from "start an instance" to in service, for each scale-out from zero, oldest first."""
    found, count = [], 0
    for activity in history:
        if not activity.fulfilled:
            continue
        if count == 0 and activity.count > 0:
            found.append((activity.end - activity.start).total_seconds())
        count = activity.count
    return found


def expected_cold_start(history: list[Activity], last: int = 5) -> float | None:
    """The median of the deployment's last `last` cold starts, or None before its first."""
    found = cold_starts(history)[-last:]
    return statistics.median(found) if found else None


def _variant(endpoint: str, variant: str) -> list[dict[str, str]]:
    return [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}]

"""The CloudWatch metrics SageMaker publishes for an asynchronous endpoint, as the emulator publishes them.

From the SageMaker guide ("Monitor asynchronous endpoints"): the queue's metrics are in `AWS/SageMaker`
with only the `EndpointName` dimension (ApproximateBacklogSize, ApproximateBacklogSizePerInstance,
ApproximateAgeOfOldestRequest, HasBacklogWithoutCapacity); the per-request ones carry `EndpointName` and
`VariantName` (InvocationsProcesssed, spelled so by SageMaker, InvocationFailures, ExpiredRequests,
TimeInBacklog in microseconds, TotalProcessingTime in milliseconds). An async endpoint publishes no
`Invocations`. Host metrics are in `/aws/sagemaker/Endpoints`, one CPUUtilization sample per instance per
minute, which is how the guide counts an endpoint's instances (SampleCount over one minute).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.client import BaseClient

SAGEMAKER = "AWS/SageMaker"
HOST = "/aws/sagemaker/Endpoints"
_BATCH = 1000  # PutMetricData takes at most 1000 metrics


@dataclass(frozen=True, slots=True)
class Minute:
    """An endpoint's state during one minute (`at` is the minute's start, UNIX seconds)."""

    at: float
    instances: int
    backlog: int  # queued or running
    oldest_age: float = 0.0
    busy: int = 0  # invocations running
    per_instance: int = 1


def minute_data(endpoint: str, variant: str, minute: Minute) -> dict[str, list[dict[str, Any]]]:
    """The datapoints of one minute, by namespace."""
    stamp = datetime.fromtimestamp(minute.at, UTC)
    queue = [{"Name": "EndpointName", "Value": endpoint}]
    per_instance = minute.backlog / minute.instances if minute.instances else float(minute.backlog)
    data = {
        SAGEMAKER: [
            _datum("ApproximateBacklogSize", queue, stamp, minute.backlog, "Count"),
            _datum("ApproximateBacklogSizePerInstance", queue, stamp, per_instance, "Count"),
            _datum("ApproximateAgeOfOldestRequest", queue, stamp, minute.oldest_age, "Seconds"),
            _datum("HasBacklogWithoutCapacity", queue, stamp, int(bool(minute.backlog) and not minute.instances)),
        ],
        HOST: [],
    }
    if minute.instances:
        load = 100.0 * minute.busy / (minute.instances * max(1, minute.per_instance))
        data[HOST].append(
            {
                "MetricName": "CPUUtilization",
                "Dimensions": _variant(endpoint, variant),
                "Timestamp": stamp,
                "Values": [min(100.0, load)],
                "Counts": [float(minute.instances)],
                "Unit": "Percent",
            }
        )
    return data


def invocation_data(
    endpoint: str, variant: str, *, at: float, waited: float, total: float, outcome: str
) -> list[dict[str, Any]]:
    """The datapoints of one finished invocation: `outcome` is "processed", "failed" or "expired"."""
    stamp = datetime.fromtimestamp(at, UTC)
    dims = _variant(endpoint, variant)
    if outcome == "expired":
        return [_datum("ExpiredRequests", dims, stamp, 1, "Count")]
    data = [
        _datum("TimeInBacklog", dims, stamp, waited * 1e6, "Microseconds"),
        _datum("TotalProcessingTime", dims, stamp, total * 1e3, "Milliseconds"),
    ]
    name = "InvocationsProcesssed" if outcome == "processed" else "InvocationFailures"
    return [*data, _datum(name, dims, stamp, 1, "Count")]


def publish(cloudwatch: BaseClient, data: dict[str, list[dict[str, Any]]]) -> None:
    for namespace, items in data.items():
        for first in range(0, len(items), _BATCH):
            cloudwatch.put_metric_data(Namespace=namespace, MetricData=items[first : first + _BATCH])


def merge(into: dict[str, list[dict[str, Any]]], more: dict[str, list[dict[str, Any]]]) -> None:
    for namespace, items in more.items():
        into.setdefault(namespace, []).extend(items)


def _variant(endpoint: str, variant: str) -> list[dict[str, str]]:
    return [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}]


def _datum(name: str, dims: list[dict[str, str]], stamp: datetime, value: float, unit: str = "None") -> dict[str, Any]:
    return {"MetricName": name, "Dimensions": dims, "Timestamp": stamp, "Value": float(value), "Unit": unit}

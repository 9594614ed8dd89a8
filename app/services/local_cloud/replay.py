"""A scripted day of an endpoint's instances, written as the emulator writes a live one.

Each `Span` is a stretch with `instances` in service: its scale-out activity (begun `cold_start`
seconds before the span, fulfilled at its start), one CPUUtilization sample per instance per minute
and the queue's metrics, then the scale-in activity at its end. Tests and the screenshots use it to
give the cost panel a known history: the instance-minutes are the spans' minutes times their instances.
"""

from __future__ import annotations

from dataclasses import dataclass

from botocore.client import BaseClient

from app.services.local_cloud import endpoint_metrics as metrics
from app.services.local_cloud.scaling import ScalingActivities, resource_id


@dataclass(frozen=True, slots=True)
class Span:
    start: float  # UNIX seconds, on a minute
    minutes: int
    instances: int = 1
    cold_start: float = 0.0
    backlog: int = 0

    @property
    def end(self) -> float:
        return self.start + 60.0 * self.minutes


def replay(
    cloudwatch: BaseClient,
    scaling: ScalingActivities,
    *,
    region: str,
    endpoint: str,
    spans: list[Span],
    variant: str = "AllTraffic",
) -> int:
    """Write the spans' metrics and scaling activities; returns their instance-minutes."""
    resource = resource_id(endpoint, variant)
    data: dict[str, list] = {}
    total = 0
    for span in spans:
        activity = scaling.begin(
            region, resource, start=span.start - span.cold_start, count=span.instances, cause="replayed scale-out"
        )
        scaling.finish(activity, end=span.start, count=span.instances)
        for minute in range(span.minutes):
            sample = metrics.Minute(
                at=span.start + 60.0 * minute, instances=span.instances, backlog=span.backlog, busy=span.instances
            )
            metrics.merge(data, metrics.minute_data(endpoint, variant, sample))
        scaling.record(region, resource, start=span.end, end=span.end, count=0, cause="replayed scale-in")
        total += span.minutes * span.instances
    metrics.publish(cloudwatch, data)
    return total

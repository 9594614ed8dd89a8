"""The emulated endpoint publishes SageMaker's CloudWatch metrics, records scaling activities, obeys its limits."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

REQUEST = {"prompt": "a metered painting", "width": 64, "height": 64, "seed": 1}
RESOURCE = "endpoint/{}/variant/AllTraffic"


def _sum(cloud, namespace: str, name: str, dims: dict[str, str], stat: str = "Sum", hours: float = 2) -> float:
    now = datetime.now(UTC)
    reply = cloud.client("cloudwatch").get_metric_statistics(
        Namespace=namespace,
        MetricName=name,
        Dimensions=[{"Name": k, "Value": v} for k, v in dims.items()],
        StartTime=now - timedelta(hours=hours),
        EndTime=now + timedelta(hours=hours),
        Period=3600,
        Statistics=[stat],
    )
    return sum(point[stat] for point in reply["Datapoints"])


def _activities(cloud) -> list[dict]:
    scaling = cloud.client("application-autoscaling")
    pages = scaling.get_paginator("describe_scaling_activities").paginate(
        ServiceNamespace="sagemaker", ResourceId=RESOURCE.format(cloud.deployment.endpoint_name)
    )
    return [a for page in pages for a in page["ScalingActivities"]]


def _eventually(check, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def test_a_cold_start_and_ten_idle_minutes_publish_the_metrics_and_activities_sagemaker_does(cloud, submit):
    endpoint = cloud.deployment.endpoint_name
    emulator = cloud.cloud.emulator
    cloud.cloud.cold_start_seconds = 180
    cloud.cloud.instance_idle_seconds = 600
    submit(REQUEST)
    _eventually(lambda: emulator.queued(endpoint) == 1 and emulator.busy >= 1)
    emulator.advance(181)  # the instance comes into service and runs the job
    cloud.wait_idle()
    emulator.advance(601)  # idle for the idle time: scale in to zero
    cloud.wait_idle()
    _eventually(lambda: emulator.instance_count(endpoint) == 0)
    emulator.advance(120)  # a step after scale-in publishes the minutes before it
    cloud.wait_idle()

    queue = {"EndpointName": endpoint}
    variant = {"EndpointName": endpoint, "VariantName": "AllTraffic"}
    assert _sum(cloud, "AWS/SageMaker", "InvocationsProcesssed", variant) == 1
    assert _sum(cloud, "AWS/SageMaker", "Invocations", variant) == 0  # an async endpoint does not publish it
    assert _sum(cloud, "AWS/SageMaker", "HasBacklogWithoutCapacity", queue, "Maximum") == 1
    assert _sum(cloud, "AWS/SageMaker", "ApproximateBacklogSize", queue, "Maximum") == 1
    assert _sum(cloud, "AWS/SageMaker", "TimeInBacklog", variant, "Maximum") >= 180e6
    # One CPUUtilization sample per instance per minute: about ten minutes of one instance.
    minutes = _sum(cloud, "/aws/sagemaker/Endpoints", "CPUUtilization", variant, "SampleCount")
    assert 10 <= minutes <= 11

    activities = _activities(cloud)
    assert [a["Description"] for a in activities] == [
        "Setting desired instance count to 0.",
        "Setting desired instance count to 1.",
    ]
    scale_out = activities[1]
    assert scale_out["StatusCode"] == "Successful"
    assert 179 <= (scale_out["EndTime"] - scale_out["StartTime"]).total_seconds() <= 185  # the cold start


def test_min_capacity_starts_an_instance_and_its_one_time_scheduled_action_ends_it(cloud):
    endpoint = cloud.deployment.endpoint_name
    emulator = cloud.cloud.emulator
    scaling = cloud.client("application-autoscaling")
    target = {
        "ServiceNamespace": "sagemaker",
        "ResourceId": RESOURCE.format(endpoint),
        "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
    }
    scaling.register_scalable_target(**target, MinCapacity=1)
    ends = datetime.fromtimestamp(emulator.wall() + 15 * 60, UTC).replace(microsecond=0)
    scaling.put_scheduled_action(
        **target,
        ScheduledActionName="keep-warm-end",
        Schedule=f"at({ends:%Y-%m-%dT%H:%M:%S})",
        ScalableTargetAction={"MinCapacity": 0},
    )
    cloud.wait_idle()
    _eventually(lambda: emulator.instance_count(endpoint) == 1)  # no backlog, and still an instance

    emulator.advance(5 * 60)
    cloud.wait_idle()
    assert emulator.instance_count(endpoint) == 1  # idle longer than the idle time, yet kept warm
    emulator.advance(11 * 60)
    _eventually(
        lambda: (
            scaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"][0]["MinCapacity"] == 0
        )
    )  # Application Auto Scaling applied the scheduled action
    _eventually(lambda: emulator.instance_count(endpoint) == 0)  # and the idle instance went


def test_max_capacity_zero_scales_in_at_once_and_leaves_the_backlog_waiting(cloud, submit):
    endpoint = cloud.deployment.endpoint_name
    emulator = cloud.cloud.emulator
    scaling = cloud.client("application-autoscaling")
    cloud.cloud.engine = _Never()
    submit(REQUEST)
    submit(REQUEST)
    _eventually(lambda: emulator.instance_count(endpoint) == 1)
    scaling.register_scalable_target(
        ServiceNamespace="sagemaker",
        ResourceId=RESOURCE.format(endpoint),
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        MaxCapacity=0,
    )
    _eventually(lambda: emulator.instance_count(endpoint) == 0)
    assert emulator.queued(endpoint) == 1  # the second job waits; nothing starts an instance for it
    assert _activities(cloud)[0]["Description"] == "Setting desired instance count to 0."
    cloud.cloud.engine._release()


class _Never:
    """An engine whose renders wait until released (the first job holds the instance busy)."""

    name = "never"

    def __init__(self) -> None:
        import threading

        from app.services.local_cloud import SandboxEngine

        self._event = threading.Event()
        self._sandbox = SandboxEngine()

    def render(self, request):
        self._event.wait(20)
        return self._sandbox.render(request)

    def _release(self) -> None:
        self._event.set()

"""The cost panel's figures against a scripted day on the local cloud, and the controls, over real HTTP."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from urllib.request import Request, urlopen

import boto3
import pytest

from app.services.cloud.aws import Connection
from app.services.cloud.credentials import CredentialSource
from app.services.cloud.targets import load_target
from app.services.cost import (
    PriceTable,
    cost_report,
    end_keep_warm,
    job_cost,
    keep_warm,
    set_max_instances,
    stop_now,
    sweep_cost,
    waiting,
)
from app.services.cost.controls import Control, applied
from app.services.errors import UserError
from app.services.local_cloud import SandboxEngine
from app.services.local_cloud import endpoint_metrics as metrics
from app.services.local_cloud.replay import Span, replay

AT = datetime(2026, 12, 3, 18, 0, tzinfo=UTC)
#: The local cloud's endpoint runs on ml.g4dn.2xlarge (moto knows no g5 types): 1.0528 USD an hour.
PER_HOUR = 1.0528


def _at(day: int, hour: int, minute: int = 0, month: int = 12) -> float:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC).timestamp()


#: Today 45 min of one instance and 90 min of two; on the 1st, 120 min of one; in November, 60 min (not counted).
SPANS = [
    Span(_at(30, 23, month=11), 60, cold_start=300),
    Span(_at(1, 10), 120, cold_start=180),
    Span(_at(3, 9), 45, cold_start=240),
    Span(_at(3, 13), 90, instances=2, cold_start=420),
]
TODAY, MONTH = 45 + 2 * 90, 45 + 2 * 90 + 120


def _connection(cloud, session: boto3.Session | None = None) -> Connection:
    return Connection(
        session or cloud.session(), CredentialSource(), region=cloud.region, endpoint_url=cloud.endpoint_url
    )


@pytest.fixture
def day(cloud):
    """The scripted day replayed into the local cloud's CloudWatch and scaling history; the connection and target."""
    replay(
        cloud.client("cloudwatch"),
        cloud.cloud.scaling,
        region=cloud.region,
        endpoint=cloud.deployment.endpoint_name,
        spans=SPANS,
    )
    connection = _connection(cloud)
    return connection, load_target(connection, "test")


def test_a_scripted_day_gives_known_instance_minutes_and_spend(day):
    connection, target = day

    report = cost_report(connection, target, now=AT)

    assert report.instance_type == "ml.g4dn.2xlarge"
    assert report.today.minutes == TODAY and report.today.activity_minutes == pytest.approx(TODAY)
    assert report.month.minutes == MONTH and report.month.activity_minutes == pytest.approx(MONTH)
    assert report.today.source == "CloudWatch host metrics"
    assert report.today.spend == pytest.approx(TODAY / 60 * PER_HOUR)  # 3.948 USD
    assert report.month.spend == pytest.approx(MONTH / 60 * PER_HOUR)  # 6.054 USD
    assert report.price.source == "price table of 2025-10-01"
    assert report.cold_start == 270  # the median of 300, 180, 240 and 420 seconds
    assert report.now.instances == 0 and report.now.max_capacity == 1
    assert report.problems == [] and report.billed is None


def test_no_price_row_says_so_and_never_prices_at_zero(day):
    connection, target = day
    empty = PriceTable("2025-10-01", "test", "USD", {})

    report = cost_report(connection, target, table=empty, now=AT)

    assert report.today.minutes == TODAY and report.today.spend is None and report.price is None
    assert report.problems[0].startswith("No price for ml.g4dn.2xlarge in us-east-1: the price table of 2025-10-01")
    assert report.to_dict()["today"]["spend"] is None


def test_the_users_price_in_settings_wins(day):
    connection, target = day

    report = cost_report(connection, target, overrides={"us-east-1/ml.g4dn.2xlarge": 2.0}, now=AT)

    assert report.today.spend == pytest.approx(TODAY / 60 * 2.0)
    assert report.price.source == "your price in Settings"


def _user(cloud, name: str, deny: list[str]) -> boto3.Session:
    iam = cloud.client("iam")
    iam.create_user(UserName=name)
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "*"},
            {"Effect": "Deny", "Action": deny, "Resource": "*"},
        ],
    }
    iam.put_user_policy(UserName=name, PolicyName="most", PolicyDocument=json.dumps(document))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return boto3.Session(
        aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"], region_name=cloud.region
    )


def test_cloudwatch_denied_names_the_permission_and_shows_the_activity_history(cloud, day):
    _, target = day
    connection = _connection(cloud, _user(cloud, "no-metrics", ["cloudwatch:*"]))

    report = cost_report(connection, target, now=AT)

    assert report.today.minutes is None and report.today.activity_minutes == pytest.approx(TODAY)
    assert report.today.source == "scaling activity history"
    assert report.today.spend == pytest.approx(TODAY / 60 * PER_HOUR)
    assert any("cloudwatch:GetMetricStatistics is not allowed" in p for p in report.problems)


def test_cost_explorer_billed_figure_beside_the_estimate_and_its_refusal_named(cloud, day):
    connection, target = day
    results = {
        "results": [
            {
                "ResultsByTime": [
                    {
                        "TimePeriod": {"Start": "2026-12-01", "End": "2026-12-04"},
                        "Total": {"UnblendedCost": {"Amount": "5.91", "Unit": "USD"}},
                        "Groups": [],
                        "Estimated": True,
                    }
                ]
            }
        ]
    }
    request = Request(
        f"{cloud.endpoint_url}/moto-api/static/ce/cost-and-usage-results",
        data=json.dumps(results).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urlopen(request, timeout=10) as response:
        assert response.status == 201

    assert cost_report(connection, target, now=AT).billed == pytest.approx(5.91)

    denied = _connection(cloud, _user(cloud, "no-billing", ["ce:*"]))
    report = cost_report(denied, target, now=AT)
    assert report.billed is None and report.today.minutes == TODAY
    assert report.problems == [
        "Not shown: the billed figure (ce:GetCostAndUsage is not allowed for these credentials)."
    ]


def test_per_image_cost_is_the_instance_time_a_job_used():
    assert job_cost(1.408, 9.0) == pytest.approx(0.00352)
    assert sweep_cost(1.408, 9.0, 24) == pytest.approx(24 * 0.00352)


def _eventually(check, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


REQUEST = {"prompt": "a waiting painting", "width": 64, "height": 64, "seed": 1}


class _Held:
    """An engine whose renders wait until released, so the first job holds the instance."""

    name = "held"

    def __init__(self) -> None:
        self.release = threading.Event()
        self._sandbox = SandboxEngine()

    def render(self, request):
        self.release.wait(20)
        return self._sandbox.render(request)


def test_stop_now_scales_in_with_a_backlog_and_says_what_waits(cloud):
    connection = _connection(cloud)
    target = load_target(connection, "test")
    cloud.cloud.engine = engine = _Held()
    runtime, s3 = cloud.client("sagemaker-runtime"), cloud.client("s3")
    for n in range(3):
        s3.put_object(Bucket=target.bucket, Key=f"requests/{n}.json", Body=json.dumps(REQUEST).encode())
        runtime.invoke_endpoint_async(
            EndpointName=target.endpoint_name, InputLocation=f"s3://{target.bucket}/requests/{n}.json"
        )
    emulator = cloud.cloud.emulator
    _eventually(lambda: emulator.instance_count(target.endpoint_name) == 1)
    emulator.advance(61)  # a minute's metrics: the backlog is 3
    _eventually(lambda: waiting(connection, target) == 3)

    control = stop_now(connection, target)
    _eventually(lambda: emulator.instance_count(target.endpoint_name) == 0)
    _eventually(lambda: applied(connection, target, control).done)

    assert applied(connection, target, control).message.startswith("Stop now: applied by AWS at ")
    report = cost_report(connection, target)
    assert report.now.stopped and report.now.instances == 0
    assert emulator.queued(target.endpoint_name) == 2  # still waiting, and nothing starts for them
    engine.release.set()
    set_max_instances(connection, target, 1)  # resume: the two waiting jobs run
    _eventually(lambda: emulator.queued(target.endpoint_name) == 0)


def test_stop_now_stops_the_companion_endpoints_too_and_the_maximum_resumes_them(cloud):
    """A designer who presses Stop now stops paying for the upscaler and the inpainting model as well."""
    connection = _connection(cloud)
    target = load_target(connection, "test")
    assert set(target.companions) == {"upscale", "inpaint"}
    scaling = cloud.client("application-autoscaling")

    def limits() -> dict[str, tuple[int, int]]:
        found = scaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
        return {t["ResourceId"].split("/")[1]: (t["MinCapacity"], t["MaxCapacity"]) for t in found}

    endpoints = [target.endpoint_name, *target.companions.values()]
    stop_now(connection, target)
    assert {name: limits()[name] for name in endpoints} == dict.fromkeys(endpoints, (0, 0))
    set_max_instances(connection, target, 2)
    assert {name: limits()[name] for name in endpoints} == dict.fromkeys(endpoints, (0, 2))


def test_keep_warm_holds_an_instance_then_ends_by_itself(cloud):
    connection = _connection(cloud)
    target = load_target(connection, "test")
    emulator = cloud.cloud.emulator

    control = keep_warm(connection, target, 15)

    _eventually(lambda: emulator.instance_count(target.endpoint_name) == 1)
    _eventually(lambda: applied(connection, target, control).done)
    report = cost_report(connection, target)
    assert report.now.min_capacity == 1
    assert timedelta(minutes=14) < report.now.keep_warm_until - datetime.now(UTC) <= timedelta(minutes=15)
    emulator.advance(16 * 60)
    _eventually(lambda: cost_report(connection, target).now.min_capacity == 0)
    _eventually(lambda: emulator.instance_count(target.endpoint_name) == 0)


def test_controls_refuse_bad_values_with_a_clear_message(cloud):
    connection = _connection(cloud)
    target = load_target(connection, "test")
    with pytest.raises(UserError, match="Keep warm lasts 15, 30 or 60 minutes, not 20"):
        keep_warm(connection, target, 20)
    with pytest.raises(UserError, match="from 1 to 20 \\(Stop now sets 0\\), not 0"):
        set_max_instances(connection, target, 0)
    set_max_instances(connection, target, 3)
    assert cost_report(connection, target).now.max_capacity == 3


def _cli(cloud, *argv: str) -> tuple[int, str, str]:
    import io

    from app.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = main(
        ["--endpoint-url", cloud.endpoint_url, "--region", cloud.region, *argv, "--deployment", "test"],
        stdout=out,
        stderr=err,
    )
    return code, out.getvalue(), err.getvalue()


def test_the_cli_prints_the_report_and_runs_each_control(cloud, dirs):
    now = datetime.now(UTC)
    if now.hour == 0 and now.minute < 10:
        pytest.skip("the CLI reports on the real clock: 40 minutes ago must be today")
    minute = now.replace(second=0, microsecond=0).timestamp()
    replay(
        cloud.client("cloudwatch"),
        cloud.cloud.scaling,
        region=cloud.region,
        endpoint=cloud.deployment.endpoint_name,
        spans=[Span(minute - 40 * 60, 30, instances=2)],
    )
    code, out, err = _cli(cloud, "cost", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["today"]["minutes"] == 60 and report["price"]["per_hour"] == PER_HOUR
    assert report["today"]["spend"] == pytest.approx(PER_HOUR)

    code, out, err = _cli(cloud, "cost")
    assert code == 0, err
    assert f"Today (UTC): 60 instance-minutes, ≈ {PER_HOUR:.2f} USD (CloudWatch host metrics)" in out

    code, out, err = _cli(cloud, "keep-warm", "15", "--wait", "20")
    assert code == 0, err
    assert "Kept warm until" in err and "(main); AWS ends it by itself" in err
    assert "Keep warm for 15 minutes (main): applied by AWS at" in out
    code, out, err = _cli(cloud, "max-instances", "2", "--wait", "5")
    assert code == 0 and "At most 2 instances: applied by AWS at" in out
    code, out, err = _cli(cloud, "stop-now", "--yes", "--wait", "20")
    assert code == 0, err
    assert "Stop now: applied by AWS at" in out
    code, out, err = _cli(cloud, "max-instances", "0")
    assert code == 1 and "from 1 to 20 (Stop now sets 0), not 0" in err


def test_companions_count_in_the_minutes_and_the_spend_each_at_its_own_price(cloud, day):
    """An inpainting endpoint on its own GPU costs what it ran, at its own instance type's price."""
    connection, target = day
    inpaint = target.companions["inpaint"]
    replay(
        cloud.client("cloudwatch"),
        cloud.cloud.scaling,
        region=cloud.region,
        endpoint=inpaint,
        spans=[Span(_at(3, 11), 60), Span(_at(2, 11), 30)],
    )
    target = replace(target, companion_types={"inpaint": "ml.g4dn.xlarge"})

    report = cost_report(connection, target, now=AT)

    assert report.today.minutes == TODAY + 60 and report.month.minutes == MONTH + 90
    assert report.today.activity_minutes == pytest.approx(TODAY + 60)
    assert report.today.spend == pytest.approx(TODAY / 60 * PER_HOUR + 60 / 60 * 0.7364)
    assert report.month.spend == pytest.approx(MONTH / 60 * PER_HOUR + 90 / 60 * 0.7364)
    assert report.today.by_endpoint == {"main": TODAY, "upscale": 0, "inpaint": 60}
    lines = report.lines()
    assert f"Today (UTC): {TODAY + 60} instance-minutes ({TODAY} main, 60 inpainting), ≈ " in "\n".join(lines)
    assert any(line.startswith("Companions: upscaler ") and "inpainting " + inpaint in line for line in lines)
    assert "Price of inpainting: 0.7364 USD per instance-hour" in lines


def test_a_companion_with_no_price_leaves_the_spend_unknown_not_under_reported(cloud, day):
    connection, target = day
    inpaint = target.companions["inpaint"]
    replay(
        cloud.client("cloudwatch"),
        cloud.cloud.scaling,
        region=cloud.region,
        endpoint=inpaint,
        spans=[Span(_at(3, 11), 60)],
    )
    target = replace(target, companion_types={"inpaint": "ml.p5.48xlarge"})

    report = cost_report(connection, target, now=AT)

    assert report.today.minutes == TODAY + 60 and report.today.spend is None
    assert any(p.startswith("No price for ml.p5.48xlarge") for p in report.problems)


def test_the_backlog_waiting_counts_every_endpoint(cloud, day):
    connection, target = day
    replay(
        cloud.client("cloudwatch"),
        cloud.cloud.scaling,
        region=cloud.region,
        endpoint=target.companions["upscale"],
        spans=[Span(_at(3, 17, 50), 5, backlog=2)],
    )

    assert waiting(connection, target, now=AT) == 2
    assert cost_report(connection, target, now=AT).now.backlog == 2


def test_stop_now_is_not_applied_while_a_companion_still_runs(cloud):
    connection = _connection(cloud)
    target = load_target(connection, "test")
    inpaint = target.companions["inpaint"]
    emulator = cloud.cloud.emulator
    cloud.client("application-autoscaling").register_scalable_target(
        ServiceNamespace="sagemaker",
        ResourceId=f"endpoint/{inpaint}/variant/AllTraffic",
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        MinCapacity=1,
        MaxCapacity=1,
    )
    _eventually(lambda: emulator.instance_count(inpaint) == 1)
    control = Control("Stop now", datetime.now(UTC), wanted_instances=0)  # the main endpoint is at 0 already

    state = applied(connection, target, control)

    assert not state.done and "now 1 in service: 1 inpainting" in state.message
    report = cost_report(connection, target)
    assert report.now.instances == 1 and report.now.by_endpoint == {"main": 0, "upscale": 0, "inpaint": 1}
    assert "Now: InService, 1 in service: 1 inpainting" in report.lines()[2]


def test_a_companion_without_a_scalable_target_does_not_keep_the_others_running(cloud):
    """The upscaler's scalable target is gone: Stop now still stops the main endpoint and the inpainting one,
    then says which could not be stopped; the maximum likewise."""
    connection = _connection(cloud)
    target = load_target(connection, "test")
    scaling = cloud.client("application-autoscaling")
    upscale, inpaint = target.companions["upscale"], target.companions["inpaint"]
    scaling.deregister_scalable_target(
        ServiceNamespace="sagemaker",
        ResourceId=f"endpoint/{upscale}/variant/AllTraffic",
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
    )

    def limits() -> dict[str, tuple[int, int]]:
        found = scaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
        return {t["ResourceId"].split("/")[1]: (t["MinCapacity"], t["MaxCapacity"]) for t in found}

    with pytest.raises(UserError) as stopped:
        stop_now(connection, target)
    assert str(stopped.value).startswith(f"Could not stop upscaler ({upscale}): The endpoint {upscale} has no ")
    assert "The others (main, inpainting) were stopped." in str(stopped.value)
    assert limits() == {target.endpoint_name: (0, 0), inpaint: (0, 0)}  # and nothing new registered for the upscaler

    with pytest.raises(UserError, match=r"Could not change upscaler .* The others \(main, inpainting\) were changed"):
        set_max_instances(connection, target, 2)
    assert limits() == {target.endpoint_name: (0, 2), inpaint: (0, 2)}


def _jobs(cloud, endpoint: str, seconds: list[float], waited: float = 1.0) -> None:
    """Finished invocations of `endpoint` on the 2nd, as SageMaker publishes them: each held an instance
    `seconds` after waiting `waited` in the backlog."""
    data = [
        item
        for n, held in enumerate(seconds)
        for item in metrics.invocation_data(
            endpoint, "AllTraffic", at=_at(2, 10, n), waited=waited, total=waited + held, outcome="processed"
        )
    ]
    metrics.publish(cloud.client("cloudwatch"), {metrics.SAGEMAKER: data})


def test_each_endpoint_has_its_own_time_per_job_and_cold_start(cloud, day):
    """An upscale is not a text to image: the report gives each endpoint's own job time, job cost and cold start."""
    connection, target = day
    upscaler = target.companions["upscale"]
    _jobs(cloud, target.endpoint_name, [9, 9, 9])
    _jobs(cloud, upscaler, [2, 4])
    spans = [Span(_at(2, 12), 10, cold_start=120), Span(_at(2, 15), 10, cold_start=60)]
    replay(cloud.client("cloudwatch"), cloud.cloud.scaling, region=cloud.region, endpoint=upscaler, spans=spans)

    report = cost_report(connection, target, now=AT)

    assert report.seconds_per_job == pytest.approx(9) and report.cold_start == 270  # the main endpoint's
    upscale, inpaint = report.endpoints["upscale"], report.endpoints["inpaint"]
    assert upscale.seconds_per_job == pytest.approx(3) and upscale.cold_start == 90
    assert inpaint.seconds_per_job is None and inpaint.cold_start is None  # nothing ran there yet
    assert report.to_dict()["endpoints"]["upscale"]["seconds_per_job"] == pytest.approx(3)
    lines = report.lines()
    assert f"Per job: ≈ {9 * PER_HOUR / 3600:.4f} USD (9 s on an instance, on average)" in lines
    assert f"Per upscaler job: ≈ {3 * PER_HOUR / 3600:.4f} USD (3 s on an instance)" in lines
    assert "Cold start: 4.5 min main, 1.5 min upscaler (median of each endpoint's last ones)" in lines
    assert not any("inpainting job" in line for line in lines)


def _limits(cloud) -> dict[str, tuple[int, int]]:
    found = cloud.client("application-autoscaling").describe_scalable_targets(ServiceNamespace="sagemaker")
    return {t["ResourceId"].split("/")[1]: (t["MinCapacity"], t["MaxCapacity"]) for t in found["ScalableTargets"]}


def _register(cloud, endpoint: str, **limits: int) -> None:
    cloud.client("application-autoscaling").register_scalable_target(
        ServiceNamespace="sagemaker",
        ResourceId=f"endpoint/{endpoint}/variant/AllTraffic",
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        **limits,
    )


def test_a_companion_in_service_says_when_it_scales_in_by_itself(cloud):
    """The inpainting endpoint ran and is idle: the report says when it goes back to zero, not only the main's."""
    connection = _connection(cloud)
    target = load_target(connection, "test")
    inpaint = target.companions["inpaint"]
    emulator = cloud.cloud.emulator
    _register(cloud, inpaint, MinCapacity=1, MaxCapacity=1)
    _eventually(lambda: emulator.instance_count(inpaint) == 1)
    _register(cloud, inpaint, MinCapacity=0, MaxCapacity=1)  # idle, it stays a while, then scales in
    started = cloud.client("application-autoscaling").describe_scaling_activities(
        ServiceNamespace="sagemaker", ResourceId=f"endpoint/{inpaint}/variant/AllTraffic"
    )["ScalingActivities"][0]["EndTime"]

    report = cost_report(connection, target)

    assert report.now.scale_in == {"inpaint": started + timedelta(minutes=15)}
    assert report.now.scale_in_expected is None  # the main endpoint is at zero already
    expected = f"inpainting scales in around {started + timedelta(minutes=15):%H:%M} UTC"
    assert report.lines()[2] == f"Now: InService, 1 in service: 1 inpainting; {expected}; 0–1 instances allowed"


def test_keep_warm_on_a_chosen_companion_keeps_only_that_one_warm_and_says_so(cloud):
    """About to inpaint: the designer keeps the inpainting endpoint warm, and pays for that GPU only."""
    connection = _connection(cloud)
    target = load_target(connection, "test")
    inpaint, upscale = target.companions["inpaint"], target.companions["upscale"]
    emulator = cloud.cloud.emulator

    control = keep_warm(connection, target, 30, ["inpaint"])

    assert control.what == "Keep warm for 30 minutes (inpainting)" and control.endpoints == (inpaint,)
    _eventually(lambda: emulator.instance_count(inpaint) == 1)
    _eventually(lambda: applied(connection, target, control).done)
    assert applied(connection, target, control).message.endswith("(1 in service: 1 inpainting).")
    assert _limits(cloud) == {target.endpoint_name: (0, 1), upscale: (0, 1), inpaint: (1, 1)}
    assert emulator.instance_count(target.endpoint_name) == 0
    report = cost_report(connection, target)
    assert set(report.now.kept_warm) == {"inpaint"} and report.now.keep_warm_until is None
    assert report.now.kept_warm["inpaint"] == control.until
    assert f"inpainting kept warm until {control.until:%H:%M} UTC" in report.lines()[2]
    assert "scales in" not in report.lines()[2]  # kept warm: it does not scale in before then

    emulator.advance(31 * 60)  # AWS's own scheduled action ends it, on that endpoint
    _eventually(lambda: _limits(cloud)[inpaint] == (0, 1))
    _eventually(lambda: emulator.instance_count(inpaint) == 0)


def test_keep_warm_on_several_endpoints_and_off_ends_it_on_every_one(cloud):
    connection = _connection(cloud)
    target = load_target(connection, "test")
    upscale, inpaint = target.companions["upscale"], target.companions["inpaint"]
    scaling = cloud.client("application-autoscaling")

    control = keep_warm(connection, target, 15, ["upscale", "main"])

    assert control.what == "Keep warm for 15 minutes (main, upscaler)"
    assert _limits(cloud) == {target.endpoint_name: (1, 1), upscale: (1, 1), inpaint: (0, 1)}
    report = cost_report(connection, target)
    assert set(report.now.kept_warm) == {"main", "upscale"}
    assert f"main and upscaler kept warm until {control.until:%H:%M} UTC" in report.lines()[2]

    end_keep_warm(connection, target)

    assert _limits(cloud) == {target.endpoint_name: (0, 1), upscale: (0, 1), inpaint: (0, 1)}
    assert scaling.describe_scheduled_actions(ServiceNamespace="sagemaker")["ScheduledActions"] == []
    assert cost_report(connection, target).now.kept_warm == {}


def test_keep_warm_refuses_a_stopped_or_missing_endpoint_before_changing_any(cloud):
    connection = _connection(cloud)
    target = load_target(connection, "test")
    upscale = target.companions["upscale"]
    _register(cloud, upscale, MinCapacity=0, MaxCapacity=0)
    before = _limits(cloud)

    with pytest.raises(UserError, match=r"^The upscaler endpoint is stopped \(at most 0 instances\)"):
        keep_warm(connection, target, 15, ["main", "upscale"])
    with pytest.raises(UserError, match=r"has no sdxl endpoint \(it has: main, upscaler, inpainting\)"):
        keep_warm(connection, target, 15, ["sdxl"])
    assert _limits(cloud) == before


def test_the_cli_keeps_a_chosen_endpoint_warm(cloud, dirs):
    code, out, err = _cli(cloud, "keep-warm", "15", "--endpoint", "upscaler", "--wait", "20")
    assert code == 0, err
    assert "(upscaler); AWS ends it by itself" in err
    assert "Keep warm for 15 minutes (upscaler): applied by AWS at" in out and "1 in service: 1 upscaler" in out
    code, out, err = _cli(cloud, "cost")
    assert code == 0 and "upscaler kept warm until " in out
    code, out, err = _cli(cloud, "keep-warm", "off", "--endpoint", "upscaler", "--wait", "5")
    assert code == 0 and "Keep warm ended (upscaler): applied by AWS at" in out, err
    assert set(_limits(cloud).values()) == {(0, 1)}

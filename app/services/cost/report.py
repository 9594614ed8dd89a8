"""The capacity and cost panel's figures: now, today, this month and per image, each saying where it came from.

Every read is its own AWS call; one that is refused becomes a line naming the missing permission, and the
report shows what the other calls told (`problems`). Nothing here is a bill: the spend is an estimate from
instance-minutes times an on-demand price, and Cost Explorer's billed figure stands beside it where allowed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from app.services.cloud.aws import Connection, error_code
from app.services.cloud.targets import MAIN_ROLE, Target
from app.services.cost import usage
from app.services.cost.prices import NoPrice, Price, PriceTable, price_for
from app.services.lanes import Lane, lane
from contract import DEPLOYMENT_TAG, KEEP_WARM_ACTION

log = logging.getLogger(__name__)

VARIANT = "AllTraffic"
MAIN = MAIN_ROLE
#: Target tracking scales in after 15 one-minute periods under its target (its scale-in alarm's default).
SCALE_IN_MINUTES = 15
_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedException"}
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Now:
    status: str
    instances: int | None
    backlog: int | None
    min_capacity: int | None
    max_capacity: int | None
    starting_since: datetime | None = None  # an instance is starting (a scale-out not yet fulfilled)
    keep_warm_until: datetime | None = None
    scale_in_expected: datetime | None = None
    last_change: str = ""  # the newest scaling activity, in words
    #: Instances in service on each endpoint ("main", then each companion's family), when it has companions.
    by_endpoint: dict[str, int | None] = field(default_factory=dict)
    #: Each endpoint kept warm (MinCapacity 1 until Keep warm's scheduled action): its role and until when.
    #: `keep_warm_until` is the main endpoint's.
    kept_warm: dict[str, datetime] = field(default_factory=dict)
    #: Each endpoint in service that will scale in to zero by itself: its role and about when.
    #: `scale_in_expected` is the main endpoint's.
    scale_in: dict[str, datetime] = field(default_factory=dict)

    @property
    def stopped(self) -> bool:
        return self.max_capacity == 0


@dataclass(frozen=True, slots=True)
class Period:
    """Instance-minutes and spend over a period, from CloudWatch and from the activity history."""

    label: str
    start: datetime
    minutes: float | None  # from CloudWatch's host metrics
    activity_minutes: float | None  # from the scaling activities
    spend: float | None  # minutes (CloudWatch's, else the activities') times each endpoint's price
    #: Instance-minutes on each endpoint ("main", then each companion's family), when it has companions.
    by_endpoint: dict[str, float | None] = field(default_factory=dict)

    @property
    def source(self) -> str:
        if self.minutes is not None:
            return "CloudWatch host metrics"
        return "scaling activity history" if self.activity_minutes is not None else "unknown"


@dataclass(frozen=True, slots=True)
class EndpointPart:
    """One endpoint of the deployment: its name, instance type and price (None when unknown), and what its own
    jobs and cold starts took (an upscale's time is not a text to image's; each starts its own instance)."""

    endpoint: str
    instance_type: str
    price: Price | None
    seconds_per_job: float | None = None  # the average seconds one of its jobs held an instance this month
    cold_start: float | None = None  # the median seconds of its last cold starts

    def job_cost(self) -> float | None:
        if self.price is None or self.seconds_per_job is None:
            return None
        return job_cost(self.price.per_hour, self.seconds_per_job)


@dataclass(frozen=True, slots=True)
class CostReport:
    target: str
    endpoint: str
    region: str
    instance_type: str
    at: datetime
    now: Now
    today: Period
    month: Period
    price: Price | None
    billed: float | None = None  # Cost Explorer's month to date, by the deployment's tag
    seconds_per_job: float | None = None
    cold_start: float | None = None  # median seconds of the last cold starts
    problems: list[str] = field(default_factory=list)
    #: Each endpoint of the deployment ("main", then each companion's family) and its instance type.
    endpoints: dict[str, EndpointPart] = field(default_factory=dict)

    @property
    def per_hour(self) -> float | None:
        return self.price.per_hour if self.price else None

    def job_cost(self, images: int = 1) -> float | None:
        """The estimate for one job of `images` images, or None when the price or the job time is unknown."""
        if self.price is None or self.seconds_per_job is None:
            return None
        return job_cost(self.price.per_hour, self.seconds_per_job)

    def lines(self) -> list[str]:
        """The report in words, as the CLI prints it and the panel shows it."""
        now = self.now
        money = self.price.currency if self.price else "USD"
        limits = f"{now.min_capacity}–{now.max_capacity}" if now.max_capacity is not None else "unknown"
        found = [
            f"{self.target}: endpoint {self.endpoint} on {self.instance_type or 'an unknown instance type'} "
            f"in {self.region}, at {self.at:%Y-%m-%d %H:%M} UTC",
            f"Now: {now_words(now)}; {limits} instances allowed",
        ]
        companions = {role: part for role, part in self.endpoints.items() if role != MAIN}
        if companions:
            found.insert(
                1,
                "Companions: "
                + ", ".join(
                    f"{role_label(role)} {part.endpoint} on {part.instance_type or 'an unknown instance type'}"
                    for role, part in companions.items()
                ),
            )
        for period in (self.today, self.month):
            minutes = period.minutes if period.minutes is not None else period.activity_minutes
            if minutes is None:
                found.append(f"{_first_up(period.label)}: unknown")
                continue
            spend = f"≈ {period.spend:.2f} {money}" if period.spend is not None else "no price"
            each = _each(period.by_endpoint, lambda m: f"{m:.0f}")
            each = f" ({each})" if each else ""
            found.append(f"{_first_up(period.label)}: {minutes:.0f} instance-minutes{each}, {spend} ({period.source})")
        billed = f"{self.billed:.2f} {money}" if self.billed is not None else "not available"
        found.append(f"Billed this month (Cost Explorer, by the tag {DEPLOYMENT_TAG}): {billed}")
        if self.price:
            found.append(f"Price: {self.price.per_hour:g} {money} per instance-hour ({self.price.source})")
        for role, part in companions.items():
            if part.price and part.price.per_hour != (self.price.per_hour if self.price else None):
                found.append(f"Price of {role_label(role)}: {part.price.per_hour:g} {money} per instance-hour")
        cost = self.job_cost()
        if cost is not None and self.seconds_per_job is not None:
            found.append(f"Per job: ≈ {cost:.4f} {money} ({self.seconds_per_job:.0f} s on an instance, on average)")
        for role, part in companions.items():
            if (each := part.job_cost()) is not None and part.seconds_per_job is not None:
                found.append(
                    f"Per {role_label(role)} job: ≈ {each:.4f} {money} ({part.seconds_per_job:.0f} s on an instance)"
                )
        starts = {role: part.cold_start for role, part in companions.items() if part.cold_start is not None}
        if starts:
            main = {MAIN: self.cold_start} if self.cold_start is not None else {}
            each = ", ".join(
                f"{seconds / 60:.1f} min {role_label(role)}" for role, seconds in {**main, **starts}.items()
            )
            found.append(f"Cold start: {each} (median of each endpoint's last ones)")
        elif self.cold_start is not None:
            found.append(f"Cold start: {self.cold_start / 60:.1f} min (median of this deployment's last ones)")
        return found + [f"! {problem}" for problem in self.problems]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["now"]["stopped"] = self.now.stopped
        data["today"]["source"], data["month"]["source"] = self.today.source, self.month.source
        data["job_cost"] = self.job_cost()
        return _plain(data)


def now_words(now: Now) -> str:
    """The endpoint now, in a designer's words."""
    count = "unknown instances" if now.instances is None else f"{now.instances} in service"
    if now.instances and len(now.by_endpoint) > 1:
        count += ": " + _each(now.by_endpoint, str)
    words = [f"{now.status}, {count}"]
    if now.backlog:
        words.append(f"{now.backlog} job{'s' if now.backlog != 1 else ''} waiting or running")
    if now.stopped:
        words.append("stopped: nothing starts until the maximum instances is raised")
    if now.starting_since:
        words.append(f"an instance is starting since {now.starting_since:%H:%M:%S} UTC")
    named = len(now.by_endpoint) > 1  # the deployment has companions: say which endpoint
    kept = now.kept_warm or ({MAIN: now.keep_warm_until} if now.keep_warm_until else {})
    if kept:
        words.append(_when_each(kept, "kept warm until", "until", named))
    scale_in = now.scale_in or ({MAIN: now.scale_in_expected} if now.scale_in_expected else {})
    if scale_in:
        words.append(_when_each(scale_in, "scales in around", "around", named))
    return "; ".join(words)


def _when_each(when: Mapping[str, datetime], verb: str, again: str, named: bool) -> str:
    """ "kept warm until 18:15 UTC"; naming each endpoint: "main and inpainting kept warm until 18:15 UTC",
    "main scales in around 18:15 UTC, upscaler around 18:20 UTC"."""
    times: dict[str, list[str]] = {}
    for role, at in sorted(when.items(), key=lambda item: item[1]):
        times.setdefault(f"{at:%H:%M} UTC", []).append(role_label(role))
    if not named:
        return f"{verb} {next(iter(times))}"
    parts = [f"{' and '.join(roles)} {verb if n == 0 else again} {at}" for n, (at, roles) in enumerate(times.items())]
    return ", ".join(parts)


def job_cost(per_hour: float, seconds: float) -> float:
    """One job's share of the instance time it used: the price per hour times its seconds on the instance."""
    return per_hour * seconds / 3600.0


def sweep_cost(per_hour: float, seconds_per_job: float, jobs: int) -> float:
    """The estimate for a sweep of `jobs` jobs before it is sent (warm instances; a cold start adds its minutes)."""
    return jobs * job_cost(per_hour, seconds_per_job)


@lane(Lane.NETWORK)
def cost_report(
    connection: Connection,
    target: Target,
    *,
    table: PriceTable | None = None,
    overrides: Mapping[str, float] | None = None,
    now: datetime | None = None,
) -> CostReport:
    """Read everything the panel shows (worker thread): every endpoint of the deployment, each at its own price."""
    at = now or datetime.now(UTC)
    problems: list[str] = []
    prices = table or PriceTable.load()
    parts: dict[str, EndpointPart] = {}
    for role, endpoint, instance_type in deployment_endpoints(target):
        price: Price | None = None
        try:
            price = price_for(prices, target.region, instance_type, overrides)
        except NoPrice as exc:
            problems.append(str(exc))
        parts[role] = EndpointPart(endpoint, instance_type, price)
    reader = _Reader(problems)
    cloudwatch = connection.client("cloudwatch")
    scaling = connection.client("application-autoscaling")
    histories = {
        role: reader.read(
            "application-autoscaling:DescribeScalingActivities",
            "the scaling history",
            list,
            lambda part=part: usage.activities(scaling, part.endpoint, VARIANT),
        )
        for role, part in parts.items()
    }
    day, month = _day_start(at), _day_start(at).replace(day=1)
    parts = {
        role: replace(
            part,
            seconds_per_job=reader.read(
                "cloudwatch:GetMetricStatistics",
                "the time per job",
                lambda: None,
                lambda part=part: usage.seconds_per_job(cloudwatch, part.endpoint, VARIANT, month, at),
            ),
            cold_start=usage.expected_cold_start(histories[role] or []),
        )
        for role, part in parts.items()
    }
    periods = [
        _period(reader, cloudwatch, parts, histories, label, start, at)
        for label, start in (("today (UTC)", day), ("this month", month))
    ]
    return CostReport(
        target=target.name,
        endpoint=target.endpoint_name,
        region=target.region,
        instance_type=target.instance_type,
        at=at,
        now=_now(connection, target, reader, histories, at),
        today=periods[0],
        month=periods[1],
        price=parts[MAIN].price,
        billed=_billed(connection, target, reader, month, at),
        seconds_per_job=parts[MAIN].seconds_per_job,
        cold_start=parts[MAIN].cold_start,
        problems=_unique(problems),
        endpoints=parts,
    )


def deployment_endpoints(target: Target) -> list[tuple[str, str, str]]:
    """(role, endpoint, instance type) of each endpoint: "main", then each companion's family."""
    return [(role, endpoint, target.instance_type_of(role)) for role, endpoint in target.endpoints().items()]


def role_label(role: str) -> str:
    """How the report names an endpoint: "main", "upscaler", "inpainting"."""
    return {"upscale": "upscaler", "inpaint": "inpainting"}.get(role, role)


def _period(
    reader: _Reader,
    cloudwatch: Any,
    parts: dict[str, EndpointPart],
    histories: dict[str, list[usage.Activity] | None],
    label: str,
    start: datetime,
    at: datetime,
) -> Period:
    """The period's instance-minutes summed over the endpoints, and its spend, each endpoint at its own price."""
    metric: dict[str, float | None] = {}
    from_history: dict[str, float | None] = {}
    spends: list[float | None] = []
    for role, part in parts.items():
        metric[role] = reader.read(
            "cloudwatch:GetMetricStatistics",
            "instance-minutes from CloudWatch",
            lambda: None,
            lambda part=part: usage.instance_minutes(cloudwatch, part.endpoint, VARIANT, start, at),
        )
        history = histories[role]
        from_history[role] = usage.minutes_from_activities(history, start, at) if history is not None else None
        used = metric[role] if metric[role] is not None else from_history[role]
        if used is None:
            spends.append(None)
        elif used == 0:
            spends.append(0.0)
        else:
            spends.append(part.price.of_minutes(used) if part.price is not None else None)
    used_by = {role: metric[role] if metric[role] is not None else from_history[role] for role in parts}
    return Period(
        label,
        start,
        _total(metric.values()),
        _total(from_history.values()),
        _total(spends),
        by_endpoint=used_by if len(parts) > 1 else {},
    )


def _total(values: Any) -> float | None:
    """The sum, or None when any part is unknown (a partial sum would under-report)."""
    values = list(values)
    return None if any(v is None for v in values) else float(sum(values))


@dataclass(frozen=True, slots=True)
class ColdStart:
    """What this deployment's recorded cold starts say about the next one."""

    seconds: float | None  # the median of the last `count`; None before the first or when unreadable
    count: int = 0
    problem: str = ""  # why the history could not be read, in words


@lane(Lane.NETWORK)
def cold_start_estimate(connection: Connection, target: Target, last: int = 5, *, role: str = MAIN) -> ColdStart:
    """The median of the last `last` cold starts of the endpoint in `role` ("main", or a companion's family: an
    upscaler starts on its own instance type, with its own model), from its scaling activity history."""
    endpoint = target.endpoints().get(role) or target.endpoint_name
    try:
        history = usage.activities(connection.client("application-autoscaling"), endpoint, VARIANT)
    except (ClientError, BotoCoreError) as exc:
        code = error_code(exc)
        log.info("no cold-start history for %s: %s", endpoint, code)
        if code in _DENIED:
            why = "these credentials may not read the endpoint's scaling history "
            return ColdStart(None, problem=why + "(application-autoscaling:DescribeScalingActivities)")
        return ColdStart(None, problem=f"its scaling history could not be read ({code})")
    found = usage.cold_starts(history)[-last:]
    return ColdStart(usage.expected_cold_start(history, last), len(found))


@lane(Lane.NETWORK)
def expected_cold_start(connection: Connection, target: Target, role: str = MAIN) -> float | None:
    """The median of the last cold starts of the endpoint in `role`, in seconds (None before the first, or when
    refused)."""
    return cold_start_estimate(connection, target, role=role).seconds


def _now(
    connection: Connection,
    target: Target,
    reader: _Reader,
    histories: Mapping[str, list[usage.Activity] | None],
    at: datetime,
) -> Now:
    """The main endpoint's state and limits; the instances and the backlog summed over every endpoint; each
    endpoint's Keep warm and expected scale-in."""
    sagemaker = connection.client("sagemaker")
    cloudwatch = connection.client("cloudwatch")
    roles = deployment_endpoints(target)
    described: dict[str, dict] = {}
    counts: dict[str, int | None] = {}
    backlogs: dict[str, float | None] = {}
    last_jobs: dict[str, datetime | None] = {}
    for role, name, _ in roles:
        described[role] = reader.read(
            "sagemaker:DescribeEndpoint",
            "the endpoint's state",
            dict,
            lambda name=name: sagemaker.describe_endpoint(EndpointName=name),
        )
        variants = described[role].get("ProductionVariants") or [{}]
        counts[role] = variants[0].get("CurrentInstanceCount") if described[role] else None
        backlogs[role], last_jobs[role] = reader.read(
            "cloudwatch:GetMetricStatistics",
            "the backlog",
            lambda: (None, None),
            lambda name=name: usage.latest(
                cloudwatch, "ApproximateBacklogSize", [{"Name": "EndpointName", "Value": name}], "Maximum", at
            ),
        )
    instances = _total(counts.values())
    backlog = _total(backlogs.values())
    scaling = connection.client("application-autoscaling")
    resources = {usage.resource_id(name, VARIANT): role for role, name, _ in roles}
    targets = reader.read(
        "application-autoscaling:DescribeScalableTargets",
        "the scaling limits",
        list,
        lambda: scaling.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=list(resources))[
            "ScalableTargets"
        ],
    )
    limits = {resources[t["ResourceId"]]: t for t in targets if t.get("ResourceId") in resources}
    actions = reader.read(
        "application-autoscaling:DescribeScheduledActions",
        "Keep warm",
        list,
        lambda: [
            action
            for page in scaling.get_paginator("describe_scheduled_actions").paginate(
                ServiceNamespace="sagemaker", ScheduledActionNames=[KEEP_WARM_ACTION]
            )
            for action in page["ScheduledActions"]
        ],
    )
    kept: dict[str, datetime] = {}
    for role in counts:
        end = _keep_warm_end([a for a in actions if resources.get(a.get("ResourceId", "")) == role], at)
        if end is not None:
            kept[role] = end
    scale_in: dict[str, datetime] = {}
    for role in counts:
        history, last_job = histories.get(role) or [], last_jobs[role]
        if counts[role] and not backlogs[role] and role not in kept and last_job is not None:
            if not limits.get(role, {}).get("MinCapacity"):
                since = max([last_job, *(a.end for a in history[-1:] if a.end)])
                scale_in[role] = since + timedelta(minutes=SCALE_IN_MINUTES)
    history = histories.get(MAIN) or []
    pending = [a for a in history if not a.fulfilled and a.status in ("Pending", "InProgress")]
    main = limits.get(MAIN, {})
    return Now(
        status=described[MAIN].get("EndpointStatus", "unknown"),
        instances=int(instances) if instances is not None else None,
        backlog=int(backlog) if backlog is not None else None,
        min_capacity=main.get("MinCapacity"),
        max_capacity=main.get("MaxCapacity"),
        starting_since=pending[-1].start if pending else None,
        keep_warm_until=kept.get(MAIN),
        scale_in_expected=scale_in.get(MAIN),
        last_change=_words(history[-1]) if history else "",
        by_endpoint=counts if len(roles) > 1 else {},
        kept_warm=kept,
        scale_in=scale_in,
    )


def _billed(connection: Connection, target: Target, reader: _Reader, month: datetime, at: datetime) -> float | None:
    """Cost Explorer's unblended cost this month for the deployment's tag (it lags by about a day)."""
    reply = reader.read(
        "ce:GetCostAndUsage",
        "the billed figure",
        dict,
        lambda: connection.client("ce").get_cost_and_usage(
            TimePeriod={"Start": month.date().isoformat(), "End": (at.date() + timedelta(days=1)).isoformat()},
            Granularity="MONTHLY",
            Metrics=["UnblendedCost"],
            Filter={"Tags": {"Key": DEPLOYMENT_TAG, "Values": [target.deployment or target.name]}},
        ),
    )
    results = (reply or {}).get("ResultsByTime") or []
    amounts = [float(r["Total"]["UnblendedCost"]["Amount"]) for r in results if "UnblendedCost" in r.get("Total", {})]
    return sum(amounts) if amounts else None


class _Reader:
    """Runs one read; a refusal or failure becomes a line in `problems` and the read's empty value."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems

    def read(self, permission: str, what: str, empty: Callable[[], T], call: Callable[[], T]) -> T:
        try:
            return call()
        except ClientError as exc:
            code = error_code(exc)
            if code in _DENIED:
                self.problems.append(f"Not shown: {what} ({permission} is not allowed for these credentials).")
            else:
                self.problems.append(f"Not shown: {what} ({code}: {exc.response.get('Error', {}).get('Message', '')}).")
        except BotoCoreError as exc:
            self.problems.append(f"Not shown: {what} ({exc}).")
        return empty()


def _keep_warm_end(actions: list[dict[str, Any]], at: datetime) -> datetime | None:
    for action in actions:
        schedule = action.get("Schedule", "")
        if schedule.startswith("at(") and schedule.endswith(")"):
            when = datetime.fromisoformat(schedule[3:-1]).replace(tzinfo=UTC)
            if when > at:
                return when
    return None


def _words(activity: usage.Activity) -> str:
    if activity.fulfilled:
        return f"{activity.count} instance{'s' if activity.count != 1 else ''} since {activity.end:%H:%M} UTC"
    return f"going to {activity.count} instance{'s' if activity.count != 1 else ''} since {activity.start:%H:%M} UTC"


def _day_start(at: datetime) -> datetime:
    return datetime.combine(at.date(), datetime.min.time(), UTC)


def _each(by_endpoint: Mapping[str, Any], number: Callable[[Any], str]) -> str:
    """The figure of each endpoint that has one ("225 main, 60 inpainting"), or "" when only the main one has."""
    if not any(value for role, value in by_endpoint.items() if role != MAIN):
        return ""
    return ", ".join(f"{number(value)} {role_label(role)}" for role, value in by_endpoint.items() if value)


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _first_up(text: str) -> str:
    return text[:1].upper() + text[1:]

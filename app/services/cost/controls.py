"""The panel's controls, each one Application Auto Scaling call on the endpoint's scalable target.

- Stop now: MaxCapacity 0 (and MinCapacity 0) on every endpoint of the deployment, its companions too.
  Application Auto Scaling scales in to the new maximum at once, whatever the backlog; requests wait in
  the queue (until their TTL) and nothing scales out until `set_max_instances` raises the maximum again.
- Keep warm: MinCapacity 1 on the endpoints chosen (the main one unless told: each companion is its own GPU,
  billed while warm), and on each a one-time scheduled action that sets it back to 0 when the time is up, so it
  ends by itself even when the app is closed. Ending it early ends it on every endpoint unless told which.
- Maximum instances: MaxCapacity N on every endpoint (each scales on its own within it).

Each returns when the call was accepted; `applied` says whether AWS has carried it out on every endpoint it
was asked of (the scaling activities that followed it, and each endpoint's instance count).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from botocore.exceptions import BotoCoreError, ClientError

from app.services.cloud.aws import Connection, error_code
from app.services.cloud.targets import MAIN_ROLE, Target
from app.services.cost import usage
from app.services.cost.report import role_label
from app.services.errors import UserError
from app.services.lanes import Lane, lane
from contract import KEEP_WARM_ACTION

VARIANT = "AllTraffic"
KEEP_WARM_MINUTES = (15, 30, 60)
MOST_INSTANCES = 20


@dataclass(frozen=True, slots=True)
class Control:
    """What a control asked of AWS, and when."""

    what: str  # "Stop now", "Keep warm for 15 minutes", "At most 2 instances"
    asked_at: datetime
    wanted_instances: int | None = None  # the count it leads to, when it leads to one
    until: datetime | None = None  # Keep warm's end
    #: The endpoints it was asked of (Keep warm: the ones chosen); empty for every endpoint of the deployment.
    endpoints: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Applied:
    done: bool
    message: str


@lane(Lane.NETWORK)
def waiting(connection: Connection, target: Target, now: datetime | None = None) -> int:
    """The backlog of every endpoint (ApproximateBacklogSize, the newest minute): what Stop now leaves waiting."""
    at = now or datetime.now(UTC)
    cloudwatch = connection.client("cloudwatch")
    total = 0
    for endpoint in target.endpoints().values():
        value, _ = _call(
            "cloudwatch:GetMetricStatistics",
            lambda endpoint=endpoint: usage.latest(
                cloudwatch, "ApproximateBacklogSize", [{"Name": "EndpointName", "Value": endpoint}], "Maximum", at
            ),
        )
        total += int(value)
    return total


@lane(Lane.NETWORK)
def stop_now(connection: Connection, target: Target) -> Control:
    """Scale in to zero at once, even with a backlog; nothing scales out until the maximum is raised again.

    Every endpoint's scalable target is read before any is changed: one that is missing (or refused) does
    not keep the others running. They are stopped, and then the UserError names what could not be."""
    asked = datetime.now(UTC)
    found, failed = _all_limits(connection, target)
    for endpoint in found:
        try:
            _register(connection, endpoint, MinCapacity=0, MaxCapacity=0)
            _forget_keep_warm(connection, endpoint)
        except UserError as exc:
            failed[endpoint] = exc
    _say_failed(target, failed, "stop", "stopped")
    return Control("Stop now", asked, wanted_instances=0)


@lane(Lane.NETWORK)
def keep_warm(connection: Connection, target: Target, minutes: int, roles: Iterable[str] = (MAIN_ROLE,)) -> Control:
    """At least one instance for `minutes` (15, 30 or 60) on each endpoint in `roles` ("main", "upscale",
    "inpaint"), ended by a one-time scheduled action on each. Every chosen endpoint's limits are read first:
    one that is stopped or has no scalable target keeps none of them warm."""
    if minutes not in KEEP_WARM_MINUTES:
        raise UserError(f"Keep warm lasts 15, 30 or 60 minutes, not {minutes}.")
    chosen = _chosen(target, roles)
    for role, endpoint in chosen.items():
        if _limits(connection, endpoint).get("MaxCapacity", 1) < 1:
            whose = f"The {role_label(role)} endpoint" if len(target.endpoints()) > 1 else "The endpoint"
            raise UserError(f"{whose} is stopped (at most 0 instances): set the maximum instances first.")
    asked = datetime.now(UTC)
    until = (asked + timedelta(minutes=minutes)).replace(microsecond=0)
    for endpoint in chosen.values():
        _register(connection, endpoint, MinCapacity=1)
        _call(
            "application-autoscaling:PutScheduledAction",
            lambda endpoint=endpoint: connection.client("application-autoscaling").put_scheduled_action(
                **_target(endpoint),
                ScheduledActionName=KEEP_WARM_ACTION,
                Schedule=f"at({until:%Y-%m-%dT%H:%M:%S})",
                Timezone="UTC",
                ScalableTargetAction={"MinCapacity": 0},
            ),
        )
    return Control(
        f"Keep warm for {minutes} minutes{_naming(target, chosen)}",
        asked,
        wanted_instances=1,
        until=until,
        endpoints=tuple(chosen.values()),
    )


@lane(Lane.NETWORK)
def end_keep_warm(connection: Connection, target: Target, roles: Iterable[str] | None = None) -> Control:
    """MinCapacity 0 again, and Keep warm's scheduled action gone, on each endpoint in `roles` (every endpoint
    of the deployment when None)."""
    asked = datetime.now(UTC)
    chosen = target.endpoints() if roles is None else _chosen(target, roles)
    found, failed = _all_limits(connection, target, chosen.values())
    for endpoint in found:
        try:
            _register(connection, endpoint, MinCapacity=0)
            _forget_keep_warm(connection, endpoint)
        except UserError as exc:
            failed[endpoint] = exc
    _say_failed(target, failed, "end Keep warm on", "ended", chosen.values())
    naming = _naming(target, chosen) if roles is not None else ""
    return Control(f"Keep warm ended{naming}", asked, endpoints=tuple(chosen.values()))


def _chosen(target: Target, roles: Iterable[str]) -> dict[str, str]:
    """The endpoints of `roles` by role, in the deployment's order; UserError for one it does not have."""
    endpoints = target.endpoints()
    wanted = list(dict.fromkeys(roles))
    for role in wanted:
        if role not in endpoints:
            known = ", ".join(role_label(r) for r in endpoints)
            raise UserError(
                f"The deployment {target.deployment or target.name!r} has no {role_label(role)} endpoint "
                f"(it has: {known})."
            )
    if not wanted:
        raise UserError("Keep warm which endpoint? Choose at least one.")
    return {role: endpoint for role, endpoint in endpoints.items() if role in wanted}


def _naming(target: Target, chosen: dict[str, str]) -> str:
    """ " (main)", " (main, inpainting)": which endpoints, said when the deployment has more than one."""
    if len(target.endpoints()) < 2:
        return ""
    return f" ({', '.join(role_label(role) for role in chosen)})"


@lane(Lane.NETWORK)
def set_max_instances(connection: Connection, target: Target, count: int) -> Control:
    """At most `count` instances (1 to 20); raising it from 0 resumes a stopped endpoint."""
    if not isinstance(count, int) or not 1 <= count <= MOST_INSTANCES:
        raise UserError(
            f"The maximum instances must be a whole number from 1 to {MOST_INSTANCES} (Stop now sets 0), not {count}."
        )
    asked = datetime.now(UTC)
    found, failed = _all_limits(connection, target)
    for endpoint, limits in found.items():
        try:
            minimum = min(int(limits.get("MinCapacity", 0)), count)
            _register(connection, endpoint, MaxCapacity=count, MinCapacity=minimum)
        except UserError as exc:
            failed[endpoint] = exc
    _say_failed(target, failed, "change", "changed")
    return Control(f"At most {count} instance{'s' if count != 1 else ''}", asked)


@lane(Lane.NETWORK)
def applied(connection: Connection, target: Target, control: Control) -> Applied:
    """Whether AWS has carried out `control` on every endpoint: their scaling activities since it was asked,
    and each one's instance count."""
    scaling, sagemaker = connection.client("application-autoscaling"), connection.client("sagemaker")
    after: list[usage.Activity] = []
    counts: dict[str, int | None] = {}
    for role, endpoint in target.endpoints().items():
        if control.endpoints and endpoint not in control.endpoints:
            continue
        history = _call(
            "application-autoscaling:DescribeScalingActivities",
            lambda endpoint=endpoint: usage.activities(scaling, endpoint, VARIANT),
        )
        after += [a for a in history if a.start >= control.asked_at - timedelta(seconds=1)]
        described = _call(
            "sagemaker:DescribeEndpoint", lambda endpoint=endpoint: sagemaker.describe_endpoint(EndpointName=endpoint)
        )
        counts[role] = (described.get("ProductionVariants") or [{}])[0].get("CurrentInstanceCount")
    in_service = _in_service(counts)
    if control.wanted_instances is None or all(c == control.wanted_instances for c in counts.values()):
        done = sorted((a for a in after if a.fulfilled), key=lambda a: a.end)
        when = done[-1].end if done else datetime.now(UTC)
        return Applied(True, f"{control.what}: applied by AWS at {when:%H:%M:%S} UTC ({in_service}).")
    if any(a.status in ("Pending", "InProgress") for a in after):
        return Applied(False, f"{control.what}: AWS is applying it (now {in_service}).")
    return Applied(False, f"{control.what}: accepted; waiting for AWS to act (now {in_service}).")


def _in_service(counts: dict[str, int | None]) -> str:
    """The instances in service, each companion that runs named: "2 in service: 1 main, 1 inpainting"."""
    known = [c for c in counts.values() if c is not None]
    words = f"{sum(known)} in service" if len(known) == len(counts) else "unknown instances in service"
    if any(c != 0 for role, c in counts.items() if role != "main"):
        words += ": " + ", ".join(
            f"{'?' if c is None else c} {role_label(role)}" for role, c in counts.items() if c != 0
        )
    return words


def _all_limits(
    connection: Connection, target: Target, endpoints: Iterable[str] | None = None
) -> tuple[dict[str, dict], dict[str, UserError]]:
    """Every endpoint's (or those of `endpoints`) scalable target, read before anything changes: (found, failed),
    each by endpoint."""
    found: dict[str, dict] = {}
    failed: dict[str, UserError] = {}
    for endpoint in target.endpoints().values() if endpoints is None else endpoints:
        try:
            found[endpoint] = _limits(connection, endpoint)
        except UserError as exc:
            failed[endpoint] = exc
    return found, failed


def _say_failed(
    target: Target, failed: dict[str, UserError], verb: str, done: str, asked: Iterable[str] | None = None
) -> None:
    """Raise a UserError naming each endpoint that could not be changed, and saying the others were."""
    if not failed:
        return
    roles = {endpoint: role_label(role) for role, endpoint in target.endpoints().items()}
    why = "; ".join(
        f"{roles[e]} ({e}): {str(exc.args[0] if exc.args else exc).rstrip('.')}" for e, exc in failed.items()
    )
    others = [roles[e] for e in (target.endpoints().values() if asked is None else asked) if e not in failed]
    rest = f" The others ({', '.join(others)}) were {done}." if others else ""
    hints = dict.fromkeys(exc.hint for exc in failed.values() if exc.hint)
    raise UserError(f"Could not {verb} {why}.{rest}", hint=" ".join(hints) or None)


def _target(target: Target | str) -> dict[str, str]:
    endpoint = target if isinstance(target, str) else target.endpoint_name
    return {
        "ServiceNamespace": "sagemaker",
        "ResourceId": usage.resource_id(endpoint, VARIANT),
        "ScalableDimension": usage.DIMENSION,
    }


def _limits(connection: Connection, target: Target | str) -> dict:
    endpoint = target if isinstance(target, str) else target.endpoint_name
    found = _call(
        "application-autoscaling:DescribeScalableTargets",
        lambda: connection.client("application-autoscaling").describe_scalable_targets(
            ServiceNamespace="sagemaker", ResourceIds=[_target(endpoint)["ResourceId"]]
        )["ScalableTargets"],
    )
    if not found:
        raise UserError(
            f"The endpoint {endpoint} has no autoscaling target, so its instances cannot be controlled.",
            hint="Update the deployment from Settings → Deploy.",
        )
    return found[0]


def _register(connection: Connection, target: Target | str, **limits: int) -> None:
    _limits(connection, target)  # the target must exist: registering would make a new one
    _call(
        "application-autoscaling:RegisterScalableTarget",
        lambda: connection.client("application-autoscaling").register_scalable_target(**_target(target), **limits),
    )


def _forget_keep_warm(connection: Connection, target: Target | str) -> None:
    try:
        connection.client("application-autoscaling").delete_scheduled_action(
            **_target(target), ScheduledActionName=KEEP_WARM_ACTION
        )
    except ClientError as exc:
        if error_code(exc) not in ("ObjectNotFoundException", "ValidationException"):
            raise _refused("application-autoscaling:DeleteScheduledAction", exc) from None


def _call(permission: str, call):
    try:
        return call()
    except (ClientError, BotoCoreError) as exc:
        raise _refused(permission, exc) from None


def _refused(permission: str, exc: BaseException) -> UserError:
    code = error_code(exc)
    if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation"):
        return UserError(
            f"AWS refused {permission}: these credentials may not do that.", hint="Ask for that permission."
        )
    message = exc.response.get("Error", {}).get("Message", "") if isinstance(exc, ClientError) else str(exc)
    return UserError(f"AWS did not take {permission} ({code}: {message}).")

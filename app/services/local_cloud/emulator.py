"""An emulator of SageMaker's asynchronous endpoint: InvokeEndpointAsync, its queue and its results.

It answers `POST /endpoints/<name>/async-invocations` exactly as botocore's sagemaker-runtime
model defines it, reads the endpoint and its AsyncInferenceConfig from moto's SageMaker over
HTTP, and then behaves like the service: a queue per endpoint, instances that start from zero
after a cold-start delay and scale back to zero when idle, MaxConcurrentInvocationsPerInstance
invocations per instance, request TTL and invocation timeout, the output or failure object
in S3, and SageMaker's notification on the success or error topic.

Like SageMaker and Application Auto Scaling, it publishes the endpoint's CloudWatch metrics each minute
(endpoint_metrics.py), records a scaling activity for each change of the instance count (scaling.py), and
keeps the instance count between the scalable target's MinCapacity and MaxCapacity, applying its one-time
scheduled actions when their time comes.

The reads, writes and publishes are the endpoint's own, made as SageMaker makes them: under temporary
keys of the model's ExecutionRoleArn when that role is in the local cloud's IAM (so its policies are
enforced), with the admin clients otherwise. A notification the topic refuses is logged and kept in
`undelivered`; the job then never gets it, as on AWS.
"""

from __future__ import annotations

import logging
import math
import re
import secrets
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import orjson
from botocore.client import BaseClient
from botocore.exceptions import BotoCoreError, ClientError

from app.services.local_cloud import endpoint_metrics as metrics
from app.services.local_cloud.engine import Engine, answer
from app.services.local_cloud.runner import RoleSessions
from app.services.local_cloud.scaling import DIMENSION, ScalingActivities, resource_id
from contract import (
    ACCEPT_RGB,
    COMPLETED,
    FAILED,
    MAX_SEED,
    S3Location,
    build_notification,
)
from contract.families import MAX_REQUEST_BYTES, SDXL, TEXT_TO_IMAGE, Family, family_of_request

log = logging.getLogger(__name__)

PATH = re.compile(r"^/endpoints/(?P<name>[^/]+)/async-invocations$")
MAX_INLINE_BODY = 128_000
DEFAULT_TIMEOUT = 900
MAX_TIMEOUT = 3600
DEFAULT_TTL = 6 * 3600
MIN_TTL = 60
_LOGS = "See the SageMaker Endpoint logs in your account for more information."
_SCHEDULE = re.compile(r"^at\((\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\)$")


@dataclass
class _Invocation:
    inference_id: str
    endpoint: str
    region: str
    input_location: str | None
    body: bytes | None
    content_type: str
    accept: str
    output_location: str
    failure_location: str | None
    success_topic: str | None
    error_topic: str | None
    ttl: int
    timeout: int
    received: float
    received_time: str
    generation: int = 0
    #: The execution role the endpoint's reads, writes and publishes run under (None: the admin clients).
    role_arn: str | None = None
    started: float = 0.0


@dataclass
class _Endpoint:
    name: str
    region: str
    variant: str = "AllTraffic"
    weight: float = 1.0
    per_instance: int = 1
    instances: int = 0
    starting: list[float] = field(default_factory=list)
    queue: deque[_Invocation] = field(default_factory=deque)
    running: int = 0
    idle_since: float = 0.0
    synced: int | None = None
    #: The scalable target's limits (None: no target registered, the emulator's max_instances applies).
    min_capacity: int = 0
    max_capacity: int | None = None
    #: One-time scheduled actions not yet applied: (UNIX time, MinCapacity, MaxCapacity, name).
    scheduled: list[tuple[float, int | None, int | None, str]] = field(default_factory=list)
    scale_out: str | None = None  # the scaling activity of the instances starting
    minute: int | None = None  # the wall-clock minute whose metrics are not published yet


@dataclass(frozen=True, slots=True)
class Undelivered:
    """A notification that SNS refused to take from the endpoint (its role may not publish, say)."""

    inference_id: str
    topic: str
    role_arn: str | None
    code: str
    message: str


class AsyncEndpointEmulator:
    """The WSGI app for InvokeEndpointAsync plus the scheduler behind it (see the module docstring)."""

    def __init__(
        self,
        *,
        region: str,
        account_id: str,
        engine: Engine,
        clients: Callable[[str, str], BaseClient],
        scaling: ScalingActivities | None = None,
        cold_start_seconds: float = 0.0,
        instance_idle_seconds: float = 300.0,
        max_instances: int = 1,
    ) -> None:
        self.region = region
        self.account_id = account_id
        self.engine = engine
        self.cold_start_seconds = cold_start_seconds
        self.instance_idle_seconds = instance_idle_seconds
        self.max_instances = max_instances
        #: Seconds an accepted call's answer takes to come back (AWS's round trip): a client that stops within
        #: them leaves a job the endpoint runs but the client never heard of.
        self.answer_seconds = 0.0
        #: The next calls refused as AWS refuses a caller over its request rate (ThrottlingException, nothing run).
        self.throttle_next = 0
        self._clients = clients
        self._cond = threading.Condition()
        self._sync_lock = threading.Lock()
        self._endpoints: dict[tuple[str, str], _Endpoint] = {}
        self._active = 0
        self._offset = 0.0
        self._generation = 0
        self._roles_by_config: dict[tuple[str, Any, str], str | None] = {}
        self._threads: set[threading.Thread] = set()
        self._stopping = False
        self._scheduler: threading.Thread | None = None
        self.max_running_seen = 0
        self.roles = RoleSessions(lambda service: clients(service, region), None, region)
        self.undelivered: list[Undelivered] = []
        #: Invocations accepted per inference id: on AWS each one is a billed run.
        self.invocations: Counter[str] = Counter()
        self.scaling = scaling or ScalingActivities()
        self._wall0 = time.time() - time.monotonic()
        self._later: list[tuple[Callable, tuple]] = []
        self._applied: set[tuple[str, float]] = set()

    def start(self) -> None:
        self._stopping = False
        self._scheduler = threading.Thread(target=self._schedule, name="local-endpoint-scheduler", daemon=True)
        self._scheduler.start()

    def stop(self, timeout: float = 10.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._scheduler is not None:
            self._scheduler.join(timeout)
            self._scheduler = None
        deadline = time.monotonic() + timeout
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))

    def reset(self) -> None:
        """Forget every endpoint's queue and instances; invocations still running finish unseen."""
        with self._cond:
            for ep in self._endpoints.values():
                self._active -= len(ep.queue)
            self._endpoints.clear()
            self._generation += 1
            self._roles_by_config.clear()
            self._offset = 0.0
            self.max_running_seen = 0
            self.undelivered.clear()
            self.invocations.clear()
            self.answer_seconds = 0.0
            self.throttle_next = 0
            self._later.clear()
            self._applied.clear()
            self._cond.notify_all()
        self.roles.clear()
        self.scaling.reset()

    def advance(self, seconds: float) -> None:
        """Move the endpoint's clock forward (TTL, cold start and idle scale-in) without waiting."""
        with self._cond:
            self._offset += seconds
            self._cond.notify_all()

    def clock(self) -> float:
        return time.monotonic() + self._offset

    def wall(self, now: float | None = None) -> float:
        """The endpoint's clock as UNIX time (advance moves it too): metric and activity times."""
        return (self.clock() if now is None else now) + self._wall0

    def limits_changed(self, region: str | None = None) -> None:
        """A scalable target or a scheduled action changed in Application Auto Scaling: read them again."""
        with self._cond:
            self._active += 1
        self._spawn(self._read_limits, region or self.region)

    @property
    def busy(self) -> int:
        """Invocations accepted and not yet finished (queued, running or being reported), plus
        instance-count updates not yet written to the endpoint record."""
        with self._cond:
            return self._active

    def instance_count(self, endpoint: str, region: str | None = None) -> int:
        with self._cond:
            ep = self._endpoints.get((region or self.region, endpoint))
            return ep.instances if ep else 0

    def queued(self, endpoint: str, region: str | None = None) -> int:
        """Invocations waiting for a free instance."""
        with self._cond:
            ep = self._endpoints.get((region or self.region, endpoint))
            return len(ep.queue) if ep else 0

    def wait_idle(self, deadline: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: not self._active, timeout=max(0.0, deadline - time.monotonic()))

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> list[bytes]:
        match = PATH.match(environ.get("PATH_INFO", ""))
        name = match["name"] if match else ""
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            status, headers, payload = self._invoke(name, environ, body)
            time.sleep(self.answer_seconds)
        except _ApiError as exc:
            status, headers, payload = exc.status, [("x-amzn-ErrorType", exc.code)], {"message": exc.message}
        except Exception as exc:
            log.exception("InvokeEndpointAsync failed")
            status, headers, payload = (
                "500 Internal Server Error",
                [("x-amzn-ErrorType", "InternalFailure")],
                {"message": f"An internal failure occurred: {exc}"},
            )
        data = orjson.dumps(payload)
        headers = [
            *headers,
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(data))),
            ("x-amzn-RequestId", str(uuid.uuid4())),
        ]
        start_response(status, headers)
        return [data]

    def _invoke(self, name: str, environ: dict[str, Any], body: bytes) -> tuple[str, list, dict]:
        """Validate the call as SageMaker does, queue the invocation and answer 202 with its locations."""
        with self._cond:
            if self.throttle_next > 0:
                self.throttle_next -= 1
                raise _ApiError("400 Bad Request", "ThrottlingException", "Rate exceeded")
        header = _headers(environ)
        region = _signing_region(environ) or self.region
        input_location = _input_location(header, body)
        inference_id = _inference_id(header)
        timeout = _int_header(
            header, "InvocationTimeoutSeconds", "invocationTimeoutSeconds", DEFAULT_TIMEOUT, 1, MAX_TIMEOUT
        )
        ttl = _int_header(header, "RequestTTLSeconds", "requestTTLSeconds", DEFAULT_TTL, MIN_TTL, DEFAULT_TTL)
        config = self._describe(name, region)
        async_config = config.get("AsyncInferenceConfig") or {}
        output_config = async_config.get("OutputConfig") or {}
        if not output_config.get("S3OutputPath"):
            raise _ApiError.validation(f"Endpoint {name} of account {self.account_id} is not an asynchronous endpoint.")
        output_location, failure_location = _result_locations(header, output_config)
        topics = output_config.get("NotificationConfig") or {}
        invocation = _Invocation(
            inference_id=inference_id,
            endpoint=name,
            region=region,
            input_location=input_location,
            body=body if input_location is None else None,
            content_type=header("Content-Type") or "application/json",
            accept=header("Accept") or ACCEPT_RGB,
            output_location=output_location,
            failure_location=failure_location,
            success_topic=topics.get("SuccessTopic"),
            error_topic=topics.get("ErrorTopic"),
            ttl=ttl,
            timeout=timeout,
            received=self.clock(),
            received_time=_now_iso(),
            generation=self._generation,
            role_arn=self._execution_role(config, region),
        )
        self._enqueue(invocation, (config.get("ProductionVariants") or [{}])[0], async_config.get("ClientConfig") or {})
        return _accepted(invocation)

    def _enqueue(self, invocation: _Invocation, variant: dict[str, Any], client_config: dict[str, Any]) -> None:
        """Queue the invocation on its endpoint, whose variant and concurrency follow the endpoint config."""
        with self._cond:
            ep = self._endpoint(invocation.endpoint, invocation.region)
            ep.variant = variant.get("VariantName", ep.variant)
            ep.weight = float(variant.get("InitialVariantWeight") or ep.weight)
            ep.per_instance = int(client_config.get("MaxConcurrentInvocationsPerInstance") or 1)
            ep.queue.append(invocation)
            self.invocations[invocation.inference_id] += 1
            self._active += 1
            self._cond.notify_all()

    def _endpoint(self, name: str, region: str) -> _Endpoint:
        """The endpoint's state, made on first use (with the lock held)."""
        ep = self._endpoints.get((region, name))
        if ep is None:
            ep = self._endpoints[(region, name)] = _Endpoint(name, region, idle_since=self.clock())
        return ep

    def _read_limits(self, region: str) -> None:
        """Each SageMaker variant's MinCapacity, MaxCapacity and pending one-time scheduled actions, from moto."""
        scaling = self._clients("application-autoscaling", region)
        targets = scaling.describe_scalable_targets(ServiceNamespace="sagemaker").get("ScalableTargets", [])
        actions = scaling.describe_scheduled_actions(ServiceNamespace="sagemaker").get("ScheduledActions", [])
        with self._cond:
            for target in targets:
                parts = target["ResourceId"].split("/")
                if target.get("ScalableDimension") != DIMENSION or len(parts) != 4:
                    continue
                ep = self._endpoint(parts[1], region)
                ep.variant = parts[3]
                ep.min_capacity = int(target.get("MinCapacity") or 0)
                ep.max_capacity = int(target.get("MaxCapacity") or 0)
                ep.scheduled = [
                    (when, a.get("MinCapacity"), a.get("MaxCapacity"), action["ScheduledActionName"])
                    for action in actions
                    if action["ResourceId"] == target["ResourceId"]
                    and (when := _one_time(action.get("Schedule", ""))) is not None
                    and (action["ScheduledActionName"], when) not in self._applied
                    for a in [action.get("ScalableTargetAction") or {}]
                ]
            self._cond.notify_all()

    def _describe(self, name: str, region: str) -> dict[str, Any]:
        """The endpoint config joined with the endpoint's variants, read from moto."""
        sagemaker = self._clients("sagemaker", region)
        try:
            endpoint = sagemaker.describe_endpoint(EndpointName=name)
            config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("ValidationException", "ValidationError"):
                raise _ApiError.validation(f"Endpoint {name} of account {self.account_id} not found.") from None
            raise
        return config

    def _execution_role(self, config: dict[str, Any], region: str) -> str | None:
        """The ExecutionRoleArn of the endpoint's model, when the role is in the local cloud's IAM.

        An endpoint config and its model cannot change once created, so the answer is kept per config
        (name and creation time): invoking costs no DescribeModel or GetRole after the first time.
        """
        key = (region, config.get("EndpointConfigName"), str(config.get("CreationTime")))
        if key in self._roles_by_config:
            return self._roles_by_config[key]
        variants = config.get("ProductionVariants") or [{}]
        model = variants[0].get("ModelName")
        if not model:
            return None
        try:
            role = self._clients("sagemaker", region).describe_model(ModelName=model).get("ExecutionRoleArn")
        except ClientError:
            return None
        found = role if self.roles.exists(role) else None
        self._roles_by_config[key] = found
        return found

    def _client(self, invocation: _Invocation, service: str) -> BaseClient:
        """The endpoint's client for `service`: its execution role's keys, or the admin's."""
        if invocation.role_arn:
            return self.roles.client(invocation.role_arn, service, invocation.region)
        return self._clients(service, invocation.region)

    def _schedule(self) -> None:
        """One thread decides what starts, what expires and when instances come and go."""
        while True:
            expired: list[_Invocation] = []
            started: list[tuple[_Endpoint, _Invocation]] = []
            syncs: list[_Endpoint] = []
            with self._cond:
                if self._stopping:
                    return
                now = self.clock()
                wake = now + 60.0
                for ep in list(self._endpoints.values()):
                    wake = min(wake, self._step(ep, now, expired, started, syncs))
                later, self._later = self._later, []
                self._active += len(later)
                if not (expired or started or syncs or later):
                    self._cond.wait(max(0.001, wake - now))
                    continue
            for target, args in later:
                self._spawn(target, *args)
            for ep in syncs:
                self._spawn(self._sync_instances, ep)
            for invocation in expired:
                self._spawn(self._expire, invocation)
            for ep, invocation in started:
                self._spawn(self._process, ep, invocation)

    def _step(self, ep: _Endpoint, now: float, expired: list, started: list, syncs: list) -> float:
        """Advance one endpoint's state to `now`; return when it next needs attention."""
        wake = self._minutes(ep, now)
        self._apply_scheduled(ep, now)
        ready = [t for t in ep.starting if t <= now]
        if ready:
            ep.starting = [t for t in ep.starting if t > now]
            ep.instances += len(ready)
            if ep.scale_out and not ep.starting:
                self.scaling.finish(ep.scale_out, end=self.wall(now), count=ep.instances)
                ep.scale_out = None
        most = self.max_instances if ep.max_capacity is None else ep.max_capacity
        if ep.instances + len(ep.starting) > most:
            ep.starting = ep.starting[: max(0, most - ep.instances)]
            if ep.instances > most:
                self._scaled(ep, now, most, f"the maximum capacity was set to {most}")
        for invocation in list(ep.queue):
            if now - invocation.received >= invocation.ttl:
                ep.queue.remove(invocation)
                expired.append(invocation)
            else:
                wake = min(wake, invocation.received + invocation.ttl)
        capacity = ep.instances * ep.per_instance
        booting = len(ep.starting)
        backlog = len(ep.queue) - (capacity - ep.running)
        if (
            ep.queue
            and ep.instances + booting < most
            and (ep.instances + booting == 0 or backlog > booting * ep.per_instance)
        ):
            self._start_instance(ep, now, "monitor alarm HasBacklogWithoutCapacity in state ALARM triggered policy")
        elif ep.instances + booting < min(ep.min_capacity, most):
            self._start_instance(ep, now, f"the minimum capacity was set to {ep.min_capacity}")
        while ep.queue and ep.running < ep.instances * ep.per_instance:
            invocation = ep.queue.popleft()
            invocation.started = now
            ep.running += 1
            self.max_running_seen = max(self.max_running_seen, ep.running)
            started.append((ep, invocation))
        if ep.running or ep.queue or ep.starting:
            ep.idle_since = now
        elif ep.instances > ep.min_capacity:
            idle_at = ep.idle_since + self.instance_idle_seconds
            if now >= idle_at:
                self._scaled(ep, now, ep.min_capacity, "monitor alarm of the backlog target tracking policy")
            else:
                wake = min(wake, idle_at)
        if ep.starting:
            wake = min(wake, min(ep.starting))
        if ep.synced != ep.instances:
            ep.synced = ep.instances
            self._active += 1  # wait_idle also waits for describe_endpoint to show the change
            syncs.append(ep)
        return wake

    def _start_instance(self, ep: _Endpoint, now: float, cause: str) -> None:
        ep.starting.append(now + self.cold_start_seconds)
        count = ep.instances + len(ep.starting)
        if ep.scale_out is None:
            ep.scale_out = self.scaling.begin(
                ep.region, resource_id(ep.name, ep.variant), start=self.wall(now), count=count, cause=cause
            )

    def _scaled(self, ep: _Endpoint, now: float, count: int, cause: str) -> None:
        """Scale in to `count` at once (instances, not invocations: those running finish)."""
        ep.instances = count
        at = self.wall(now)
        self.scaling.record(ep.region, resource_id(ep.name, ep.variant), start=at, end=at, count=count, cause=cause)

    def _apply_scheduled(self, ep: _Endpoint, now: float) -> None:
        """Apply the one-time scheduled actions whose time came, and write the limits back as AAS does."""
        due = [action for action in ep.scheduled if action[0] <= self.wall(now)]
        for when, low, high, name in due:
            ep.scheduled.remove((when, low, high, name))
            self._applied.add((name, when))
            ep.min_capacity = ep.min_capacity if low is None else int(low)
            ep.max_capacity = ep.max_capacity if high is None else int(high)
            self._later.append((self._write_limits, (ep, low, high)))

    def _write_limits(self, ep: _Endpoint, low: int | None, high: int | None) -> None:
        limits = {k: v for k, v in (("MinCapacity", low), ("MaxCapacity", high)) if v is not None}
        self._clients("application-autoscaling", ep.region).register_scalable_target(
            ServiceNamespace="sagemaker",
            ResourceId=resource_id(ep.name, ep.variant),
            ScalableDimension=DIMENSION,
            **limits,
        )

    def _minutes(self, ep: _Endpoint, now: float) -> float:
        """Queue the metrics of each wall-clock minute that ended since the last step; return the next minute's end.

        The endpoint's state only changes in a step, so each of those minutes had the state it has now.
        """
        minute = math.floor(self.wall(now) / 60)
        if ep.minute is None:
            ep.minute = minute
        if minute > ep.minute:
            data: dict[str, list] = {}
            oldest = min((i.received for i in ep.queue), default=now)
            for m in range(ep.minute, minute):
                if ep.instances or ep.queue or ep.running or ep.starting:
                    sample = metrics.Minute(
                        at=m * 60.0,
                        instances=ep.instances,
                        backlog=len(ep.queue) + ep.running,
                        oldest_age=max(0.0, now - oldest),
                        busy=ep.running,
                        per_instance=ep.per_instance,
                    )
                    metrics.merge(data, metrics.minute_data(ep.name, ep.variant, sample))
            ep.minute = minute
            if any(data.values()):
                self._later.append((self._publish, (ep.region, data)))
        return (minute + 1) * 60.0 - self._wall0

    def _publish(self, region: str, data: dict[str, list]) -> None:
        try:
            metrics.publish(self._clients("cloudwatch", region), data)
        except (ClientError, BotoCoreError) as exc:
            log.warning("could not publish the endpoint's metrics: %s", exc)

    def _invocation_metrics(self, invocation: _Invocation, outcome: str) -> None:
        ep = self._endpoints.get((invocation.region, invocation.endpoint))
        now = self.clock()
        started = invocation.started or now
        data = metrics.invocation_data(
            invocation.endpoint,
            ep.variant if ep else "AllTraffic",
            at=self.wall(now),
            waited=started - invocation.received,
            total=now - invocation.received,
            outcome=outcome,
        )
        self._publish(invocation.region, {metrics.SAGEMAKER: data})

    def _spawn(self, target: Callable, *args: Any) -> None:
        def run() -> None:
            try:
                target(*args)
            except Exception:
                log.exception("local endpoint: %s failed", target.__name__)
            finally:
                with self._cond:
                    self._active -= 1
                    self._threads.discard(threading.current_thread())
                    self._cond.notify_all()

        thread = threading.Thread(target=run, name=f"local-endpoint-{target.__name__}", daemon=True)
        with self._cond:
            self._threads.add(thread)
        thread.start()

    def _sync_instances(self, ep: _Endpoint) -> None:
        """Keep describe_endpoint's CurrentInstanceCount equal to the emulated instances.

        One sync at a time, each sending the count current when it runs, so the last word is right.
        """
        with self._sync_lock:
            with self._cond:
                count = ep.instances
            try:
                self._clients("sagemaker", ep.region).update_endpoint_weights_and_capacities(
                    EndpointName=ep.name,
                    DesiredWeightsAndCapacities=[
                        {"VariantName": ep.variant, "DesiredWeight": ep.weight, "DesiredInstanceCount": count}
                    ],
                )
            except (ClientError, BotoCoreError) as exc:
                log.debug("could not record %d instances on %s: %s", count, ep.name, exc)

    def _expire(self, invocation: _Invocation) -> None:
        self._invocation_metrics(invocation, "expired")
        self._fail(
            invocation,
            f"ClientError: Request expired: it waited in the queue longer than its RequestTTLSeconds "
            f"({invocation.ttl} seconds).",
        )

    def _process(self, ep: _Endpoint, invocation: _Invocation) -> None:
        outcome = "failed"
        try:
            outcome = "processed" if self._run(invocation) else "failed"
        except Exception as exc:  # the job still ends with a notification, so no client waits for it forever
            log.exception("local endpoint: invocation %s failed", invocation.inference_id)
            self._fail(invocation, _server_error(exc))
        finally:
            if not self._stale(invocation):
                self._invocation_metrics(invocation, outcome)
            with self._cond:
                ep.running -= 1
                ep.idle_since = self.clock()
                self._cond.notify_all()

    def _stale(self, invocation: _Invocation) -> bool:
        """True for an invocation from before a reset: its results must not leak into new state."""
        return invocation.generation != self._generation

    def _run(self, invocation: _Invocation) -> bool:
        """Run one invocation to its output or failure; True when it produced its output."""
        s3 = self._client(invocation, "s3")
        body = invocation.body
        if body is None:
            location = S3Location.parse(invocation.input_location or "")
            try:
                body = s3.get_object(Bucket=location.bucket, Key=location.key, Range=f"bytes=0-{MAX_REQUEST_BYTES}")[
                    "Body"
                ].read()
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "Error")
                self._fail(invocation, f"ClientError: Could not read the input from {location.uri} ({code}).")
                return False
        if not invocation.content_type.split(";")[0].strip().lower() == "application/json":
            self._fail(invocation, _client_error(415, f"Unsupported content type {invocation.content_type!r}"))
            return False
        family = _family(body)
        if invocation.accept not in family.accepts:
            self._fail(invocation, _client_error(400, f"Unsupported Accept type {invocation.accept!r}"))
            return False
        try:
            request = family.parse_request(body)
            if family is SDXL and request.seed is None:  # Stability's container reports the seed it drew
                request = replace(request, seed=secrets.randbelow(MAX_SEED) + 1)
        except ValueError as exc:
            self._fail(invocation, _client_error(400, str(exc)))
            return False
        outcome = _render(self.engine, family, request, invocation.timeout)
        if isinstance(outcome, BaseException):
            if isinstance(outcome, TimeoutError):
                reason = (
                    f"ModelError: Invocation timed out after {invocation.timeout} seconds (InvocationTimeoutSeconds)."
                )
            else:
                reason = _server_error(outcome)
            self._fail(invocation, reason)
            return False
        if self._stale(invocation):
            return False
        output = family.encode_output(outcome, request, invocation.accept, {"model": self.engine.name})
        target = S3Location.parse(invocation.output_location)
        s3.put_object(Bucket=target.bucket, Key=target.key, Body=output, ContentType="application/json")
        self._notify(invocation, COMPLETED, invocation.success_topic)
        return True

    def _fail(self, invocation: _Invocation, reason: str) -> None:
        if self._stale(invocation):
            return
        if invocation.failure_location:
            target = S3Location.parse(invocation.failure_location)
            try:
                self._client(invocation, "s3").put_object(
                    Bucket=target.bucket, Key=target.key, Body=reason.encode(), ContentType="text/plain; charset=utf-8"
                )
            except (ClientError, BotoCoreError) as exc:
                log.warning("could not write %s: %s", invocation.failure_location, exc)
        self._notify(invocation, FAILED, invocation.error_topic, reason)

    def _notify(self, invocation: _Invocation, status: str, topic: str | None, reason: str | None = None) -> None:
        if not topic:
            return
        message = build_notification(
            inference_id=invocation.inference_id,
            status=status,
            region=invocation.region,
            endpoint_name=invocation.endpoint,
            input_location=invocation.input_location or "",
            received_time=invocation.received_time,
            event_time=_now_iso(),
            content_type=invocation.content_type,
            output_location=invocation.output_location if status == COMPLETED else None,
            failure_location=invocation.failure_location if status == FAILED else None,
            failure_reason=reason,
        )
        try:
            self._client(invocation, "sns").publish(TopicArn=topic, Message=orjson.dumps(message).decode())
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code, text = error.get("Code", "Error"), error.get("Message", str(exc))
            log.warning(
                "SNS refused the %s notification of %s on %s: %s: %s",
                status,
                invocation.inference_id,
                topic,
                code,
                text,
            )
            with self._cond:
                self.undelivered.append(Undelivered(invocation.inference_id, topic, invocation.role_arn, code, text))


def _one_time(schedule: str) -> float | None:
    """The UNIX time of a one-time schedule, `at(yyyy-mm-ddThh:mm:ss)` in UTC; None for a recurring one."""
    match = _SCHEDULE.match(schedule)
    return datetime.fromisoformat(match[1]).replace(tzinfo=UTC).timestamp() if match else None


def _server_error(exc: BaseException) -> str:
    return f'ModelError: Received server error (500) from model with message "{exc}". {_LOGS}'


def _family(body: bytes) -> Family:
    """The family whose request the body is, by its fields (text to image when it is no JSON object)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return TEXT_TO_IMAGE
    return family_of_request(data) if isinstance(data, dict) else TEXT_TO_IMAGE


def _render(engine: Engine, family: Family, request: Any, timeout: float) -> list | BaseException:
    """Run the engine on its own thread so a stuck render cannot outlive its timeout."""
    result: list[Any] = []

    def run() -> None:
        try:
            result.append(answer(engine, family.name, request))
        except BaseException as exc:  # the endpoint reports every engine failure
            result.append(exc)

    thread = threading.Thread(target=run, name="local-endpoint-render", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        return TimeoutError()
    outcome = result[0]
    if not isinstance(outcome, BaseException) and not isinstance(outcome, list):
        return TypeError(f"the engine returned {type(outcome).__name__}, not a list of images")
    return outcome


class _ApiError(Exception):
    def __init__(self, status: str, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    @classmethod
    def validation(cls, message: str) -> _ApiError:
        return cls("400 Bad Request", "ValidationError", message)


def _input_location(header: Callable[[str], str | None], body: bytes) -> str | None:
    """The InputLocation header, checked against the inline Body as SageMaker checks it."""
    input_location = header("InputLocation")
    if input_location is not None and body:
        raise _ApiError.validation("InputLocation and Body are mutually exclusive; provide exactly one of them.")
    if input_location is None and not body:
        raise _ApiError.validation("Either InputLocation or Body must be provided.")
    if input_location is not None:
        try:
            S3Location.parse(input_location)
        except ValueError:
            raise _ApiError.validation(
                f"Value '{input_location}' at 'inputLocation' failed to satisfy constraint: "
                "Member must satisfy regular expression pattern: ^(s3)://([^/]+)/?(.*)$"
            ) from None
    if len(body) > MAX_INLINE_BODY:
        raise _ApiError.validation(f"The inline Body is {len(body)} bytes; at most {MAX_INLINE_BODY}.")
    return input_location


def _inference_id(header: Callable[[str], str | None]) -> str:
    """The caller's Inference-Id, or a new one."""
    inference_id = header("Inference-Id")
    if inference_id is None:
        return str(uuid.uuid4())
    if not 1 <= len(inference_id) <= 64 or inference_id[0].isspace() or not inference_id.isprintable():
        raise _ApiError.validation(
            f"Value '{inference_id}' at 'inferenceId' failed to satisfy constraint: "
            "Member must have length between 1 and 64 and consist of printable characters"
        )
    return inference_id


def _result_locations(header: Callable[[str], str | None], output_config: dict[str, Any]) -> tuple[str, str | None]:
    """Where the output and (when the config has a failure path) the failure object will be written."""
    file_id = str(uuid.uuid4())
    extension = (header("S3OutputPathExtension") or "").strip("/")
    filename = header("Filename")
    output_location = _join(output_config["S3OutputPath"], extension, filename or f"{file_id}.out")
    failure_path = output_config.get("S3FailurePath")
    failure_location = _join(failure_path, extension, f"{filename or file_id}-error.out") if failure_path else None
    return output_location, failure_location


def _accepted(invocation: _Invocation) -> tuple[str, list, dict]:
    """InvokeEndpointAsync's answer: the output location, and the failure location where there is one."""
    headers = [("X-Amzn-SageMaker-OutputLocation", invocation.output_location)]
    payload = {"InferenceId": invocation.inference_id, "OutputLocation": invocation.output_location}
    if invocation.failure_location:
        headers.append(("X-Amzn-SageMaker-FailureLocation", invocation.failure_location))
        payload["FailureLocation"] = invocation.failure_location
    return "202 Accepted", headers, payload


def _headers(environ: dict[str, Any]) -> Callable[[str], str | None]:
    def get(name: str) -> str | None:
        return environ.get("HTTP_X_AMZN_SAGEMAKER_" + name.upper().replace("-", "_"))

    return get


def _int_header(get: Callable, name: str, member: str, default: int, low: int, high: int) -> int:
    raw = get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _ApiError.validation(
            f"Value '{raw}' at '{member}' failed to satisfy constraint: Member must be an integer"
        ) from None
    if not low <= value <= high:
        bound = f"greater than or equal to {low}" if value < low else f"less than or equal to {high}"
        raise _ApiError.validation(
            f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy "
            f"constraint: Member must have value {bound}"
        )
    return value


def _signing_region(environ: dict[str, Any]) -> str | None:
    auth = environ.get("HTTP_AUTHORIZATION", "")
    match = re.search(r"Credential=[^/]+/\d{8}/([^/]+)/", auth)
    return match[1] if match else None


def _join(base: str, extension: str, name: str) -> str:
    parts = [base.rstrip("/")]
    if extension:
        parts.append(extension)
    parts.append(name)
    return "/".join(parts)


def _client_error(code: int, message: str) -> str:
    return f'ClientError: Received client error ({code}) from model with message "{message}". {_LOGS}'


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

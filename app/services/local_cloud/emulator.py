"""An emulator of SageMaker's asynchronous endpoint: InvokeEndpointAsync, its queue and its results.

It answers `POST /endpoints/<name>/async-invocations` exactly as botocore's sagemaker-runtime
model defines it, reads the endpoint and its AsyncInferenceConfig from moto's SageMaker over
HTTP, and then behaves like the service: a queue per endpoint, instances that start from zero
after a cold-start delay and scale back to zero when idle, MaxConcurrentInvocationsPerInstance
invocations per instance, request TTL and invocation timeout, the output or failure object
in S3, and SageMaker's notification on the success or error topic.

The reads, writes and publishes are the endpoint's own, made as SageMaker makes them: under temporary
keys of the model's ExecutionRoleArn when that role is in the local cloud's IAM (so its policies are
enforced), with the admin clients otherwise. A notification the topic refuses is logged and kept in
`undelivered`; the job then never gets it, as on AWS.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from botocore.client import BaseClient
from botocore.exceptions import BotoCoreError, ClientError

from app.services.local_cloud.engine import Engine
from app.services.local_cloud.runner import RoleSessions
from contract import (
    ACCEPT_RGB,
    ACCEPTS,
    COMPLETED,
    FAILED,
    GenerationRequest,
    S3Location,
    build_notification,
    encode_output,
)
from contract.request import MAX_REQUEST_BYTES

log = logging.getLogger(__name__)

PATH = re.compile(r"^/endpoints/(?P<name>[^/]+)/async-invocations$")
MAX_INLINE_BODY = 128_000
DEFAULT_TIMEOUT = 900
MAX_TIMEOUT = 3600
DEFAULT_TTL = 6 * 3600
MIN_TTL = 60
_LOGS = "See the SageMaker Endpoint logs in your account for more information."


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
        self._clients = clients
        self._cond = threading.Condition()
        self._sync_lock = threading.Lock()
        self._endpoints: dict[tuple[str, str], _Endpoint] = {}
        self._active = 0
        self._offset = 0.0
        self._generation = 0
        self._threads: set[threading.Thread] = set()
        self._stopping = False
        self._scheduler: threading.Thread | None = None
        self.max_running_seen = 0
        self.roles = RoleSessions(lambda service: clients(service, region), None, region)
        self.undelivered: list[Undelivered] = []

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
            self._offset = 0.0
            self.max_running_seen = 0
            self.undelivered.clear()
            self._cond.notify_all()
        self.roles.clear()

    def advance(self, seconds: float) -> None:
        """Move the endpoint's clock forward (TTL, cold start and idle scale-in) without waiting."""
        with self._cond:
            self._offset += seconds
            self._cond.notify_all()

    def clock(self) -> float:
        return time.monotonic() + self._offset

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
        key = (invocation.region, invocation.endpoint)
        with self._cond:
            ep = self._endpoints.get(key)
            if ep is None:
                ep = self._endpoints[key] = _Endpoint(invocation.endpoint, invocation.region, idle_since=self.clock())
            ep.variant = variant.get("VariantName", ep.variant)
            ep.weight = float(variant.get("InitialVariantWeight") or ep.weight)
            ep.per_instance = int(client_config.get("MaxConcurrentInvocationsPerInstance") or 1)
            ep.queue.append(invocation)
            self._active += 1
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
        """The ExecutionRoleArn of the endpoint's model, when the role is in the local cloud's IAM."""
        variants = config.get("ProductionVariants") or [{}]
        model = variants[0].get("ModelName")
        if not model:
            return None
        try:
            role = self._clients("sagemaker", region).describe_model(ModelName=model).get("ExecutionRoleArn")
        except ClientError:
            return None
        return role if self.roles.exists(role) else None

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
                if not (expired or started or syncs):
                    self._cond.wait(max(0.001, wake - now))
                    continue
            for ep in syncs:
                self._spawn(self._sync_instances, ep)
            for invocation in expired:
                self._spawn(self._expire, invocation)
            for ep, invocation in started:
                self._spawn(self._process, ep, invocation)

    def _step(self, ep: _Endpoint, now: float, expired: list, started: list, syncs: list) -> float:
        """Advance one endpoint's state to `now`; return when it next needs attention."""
        wake = now + 60.0
        ready = [t for t in ep.starting if t <= now]
        if ready:
            ep.starting = [t for t in ep.starting if t > now]
            ep.instances += len(ready)
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
            and ep.instances + booting < self.max_instances
            and (ep.instances + booting == 0 or backlog > booting * ep.per_instance)
        ):
            ep.starting.append(now + self.cold_start_seconds)
        while ep.queue and ep.running < ep.instances * ep.per_instance:
            invocation = ep.queue.popleft()
            ep.running += 1
            self.max_running_seen = max(self.max_running_seen, ep.running)
            started.append((ep, invocation))
        if ep.running or ep.queue or ep.starting:
            ep.idle_since = now
        elif ep.instances:
            idle_at = ep.idle_since + self.instance_idle_seconds
            if now >= idle_at:
                ep.instances = 0
            else:
                wake = min(wake, idle_at)
        if ep.starting:
            wake = min(wake, min(ep.starting))
        if ep.synced != ep.instances:
            ep.synced = ep.instances
            self._active += 1  # wait_idle also waits for describe_endpoint to show the change
            syncs.append(ep)
        return wake

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
        self._fail(
            invocation,
            f"ClientError: Request expired: it waited in the queue longer than its RequestTTLSeconds "
            f"({invocation.ttl} seconds).",
        )

    def _process(self, ep: _Endpoint, invocation: _Invocation) -> None:
        try:
            self._run(invocation)
        except Exception as exc:  # the job still ends with a notification, so no client waits for it forever
            log.exception("local endpoint: invocation %s failed", invocation.inference_id)
            self._fail(invocation, _server_error(exc))
        finally:
            with self._cond:
                ep.running -= 1
                ep.idle_since = self.clock()
                self._cond.notify_all()

    def _stale(self, invocation: _Invocation) -> bool:
        """True for an invocation from before a reset: its results must not leak into new state."""
        return invocation.generation != self._generation

    def _run(self, invocation: _Invocation) -> None:
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
                return
        if not invocation.content_type.split(";")[0].strip().lower() == "application/json":
            self._fail(invocation, _client_error(415, f"Unsupported content type {invocation.content_type!r}"))
            return
        if invocation.accept not in ACCEPTS:
            self._fail(invocation, _client_error(400, f"Unsupported Accept type {invocation.accept!r}"))
            return
        try:
            request = GenerationRequest.from_json(body)
        except ValueError as exc:
            self._fail(invocation, _client_error(400, str(exc)))
            return
        outcome = _render(self.engine, request, invocation.timeout)
        if isinstance(outcome, BaseException):
            if isinstance(outcome, TimeoutError):
                reason = (
                    f"ModelError: Invocation timed out after {invocation.timeout} seconds (InvocationTimeoutSeconds)."
                )
            else:
                reason = _server_error(outcome)
            self._fail(invocation, reason)
            return
        if self._stale(invocation):
            return
        output = encode_output(outcome, request.prompt, invocation.accept, {"model": self.engine.name})
        target = S3Location.parse(invocation.output_location)
        s3.put_object(Bucket=target.bucket, Key=target.key, Body=output, ContentType="application/json")
        self._notify(invocation, COMPLETED, invocation.success_topic)

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


def _server_error(exc: BaseException) -> str:
    return f'ModelError: Received server error (500) from model with message "{exc}". {_LOGS}'


def _render(engine: Engine, request: GenerationRequest, timeout: float) -> list | BaseException:
    """Run the engine on its own thread so a stuck render cannot outlive its timeout."""
    result: list[Any] = []

    def run() -> None:
        try:
            result.append(engine.render(request))
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

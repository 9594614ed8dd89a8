"""The Lambda runner: SNS HTTP deliveries in, Lambda SNS events out to Python handlers.

Each registered handler is one SNS subscription (protocol http) to
`<endpoint_url>/_local/sns/<id>`. moto's SNS posts each notification synchronously, so the
runner answers 200 at once and calls the handler on a worker pool with a Lambda SNS event
(`{"Records": [{"EventSource": "aws:sns", "Sns": {...}}]}`) and a small fake LambdaContext.
A handler that raises is retried twice, as Lambda does for asynchronous events, and then
recorded in `failures` and logged.

Handler convention (the real functions in `lambdas/<name>/index.py`): a module-level
`lambda_handler(event, context)`, module-level boto3 clients, and configuration read from
environment variables (`BUCKET_NAME`). `load_lambda` imports such a module as a private copy,
with `AWS_ENDPOINT_URL` pointing at the local cloud during the import, then replaces every
module-level boto3 client with one from the local cloud. The `env` of a registration is
applied to `os.environ` for the duration of each call; calls that carry an env run one at a
time because the environment is process-wide.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
import os
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.request import urlopen

import boto3
import botocore.loaders
import botocore.session
import orjson
from botocore.client import BaseClient
from botocore.credentials import RefreshableCredentials
from botocore.exceptions import ClientError

from app.services.local_cloud import stack_resources
from app.services.local_cloud.functions import FunctionCode, StackFunction, failure_record, read_function

log = logging.getLogger(__name__)

PATH_PREFIX = "/_local/sns/"
Handler = Callable[[dict[str, Any], Any], Any]
_env_lock = threading.RLock()
#: How long each role session lasts; a session is renewed once less than the margin is left, as Lambda's are.
SESSION_SECONDS = 3600
REFRESH_MARGIN = 300


class RoleSessions:
    """Temporary credentials of IAM roles, assumed through the local cloud's STS with the admin client.

    `session(role_arn)` is a boto3 session whose credentials renew themselves before they expire.
    """

    def __init__(self, clients: Callable[[str], BaseClient], endpoint_url: str | None, region: str) -> None:
        self._clients = clients
        self._endpoint_url = endpoint_url  # None: where the admin clients go
        self._region = region
        self._lock = threading.Lock()
        self._sessions: dict[str, boto3.Session] = {}
        self._client_cache: dict[tuple[str, str, str], BaseClient] = {}
        # Every role's session reads botocore's service models through one loader, which keeps them once read:
        # a session of its own would parse them again for each role (a stack's roles are new in every test).
        self._loader = botocore.loaders.create_loader()

    def exists(self, role_arn: str | None) -> bool:
        """Whether the role is in the local cloud's IAM (only then does code run under it)."""
        if not role_arn or ":role/" not in role_arn:
            return False
        try:
            self._clients("iam").get_role(RoleName=role_arn.rsplit("/", 1)[-1])
        except ClientError:
            return False
        return True

    def session(self, role_arn: str) -> boto3.Session:
        with self._lock:
            found = self._sessions.get(role_arn)
            if found is None:
                credentials = RefreshableCredentials.create_from_metadata(
                    self._assume(role_arn),
                    refresh_using=lambda: self._assume(role_arn),
                    method="sts-assume-role",
                    advisory_timeout=REFRESH_MARGIN,
                    mandatory_timeout=REFRESH_MARGIN // 2,
                )
                core = botocore.session.get_session()
                core.register_component("data_loader", self._loader)
                core._credentials = credentials
                found = self._sessions[role_arn] = boto3.Session(botocore_session=core, region_name=self._region)
            return found

    def client(self, role_arn: str, service: str, region: str | None = None) -> BaseClient:
        """A client for `service` at the local cloud signed with the role's current keys (one per role and service)."""
        key = (role_arn, service, region or self._region)
        session = self.session(role_arn)
        with self._lock:
            found = self._client_cache.get(key)
            if found is None:
                url = self._endpoint_url or self._clients("sts").meta.endpoint_url
                found = session.client(service, endpoint_url=url, region_name=key[2])
                self._client_cache[key] = found
            return found

    @property
    def assumed(self) -> set[str]:
        """The roles that have a session now."""
        with self._lock:
            return set(self._sessions)

    def clear(self) -> None:
        with self._lock:
            self._sessions.clear()
            self._client_cache.clear()

    def _assume(self, role_arn: str) -> dict[str, str]:
        name = f"local-cloud-{uuid.uuid4().hex[:12]}"
        found = self._clients("sts").assume_role(
            RoleArn=role_arn, RoleSessionName=name, DurationSeconds=SESSION_SECONDS
        )["Credentials"]
        return {
            "access_key": found["AccessKeyId"],
            "secret_key": found["SecretAccessKey"],
            "token": found["SessionToken"],
            "expiry_time": found["Expiration"].isoformat(),
        }


@dataclass
class LambdaContext:
    """The fields of Lambda's context object that handlers and Powertools read."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int = 256
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = ""
    timeout_seconds: float = 60.0
    _started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self._started)) * 1000))


@dataclass(frozen=True)
class LambdaFailure:
    """A delivery whose handler raised on every attempt."""

    function_name: str
    topic_arn: str
    message: str
    error: str
    attempts: int


@dataclass(frozen=True)
class Refused:
    """An SNS delivery to a function that Lambda refused (no resource policy lets the topic invoke it)."""

    function_arn: str
    topic_arn: str
    reason: str


@dataclass
class _Registration:
    handler: Handler
    topic_arn: str
    function_name: str
    env: dict[str, str] | None
    role_arn: str | None = None
    generation: int = 0
    subscription_arn: str = ""


class LambdaRunner:
    """Delivers SNS notifications to registered handlers (see the module docstring)."""

    def __init__(
        self,
        endpoint_url: str,
        region: str,
        account_id: str,
        sns_client: Callable[[], BaseClient],
        *,
        workers: int = 4,
        retry_delays: tuple[float, ...] = (0.05, 0.2),
        clients: Callable[[str], BaseClient] | None = None,
    ) -> None:
        self._endpoint_url = endpoint_url
        self._region = region
        self._account_id = account_id
        self._sns = sns_client
        self._workers = workers
        self.retry_delays = retry_delays
        self._registrations: dict[str, _Registration] = {}
        self._pending = 0
        self._cond = threading.Condition()
        self._pool: ThreadPoolExecutor | None = None
        self.failures: list[LambdaFailure] = []
        self.delivered = 0
        self._generation = 0
        #: The roles handlers run under (`register(..., role_arn=...)`), assumed with the admin `clients`.
        self.roles = RoleSessions(clients, endpoint_url, region) if clients is not None else None
        self._clients = clients
        #: SNS deliveries to stack functions that Lambda refused, and the functions' calls so far, by name.
        self.refused: list[Refused] = []
        self.invocations: dict[str, int] = {}
        self._code: FunctionCode | None = None
        self._code_dir: tempfile.TemporaryDirectory | None = None
        self._modules: dict[tuple[str, str, str], Any] = {}
        self._module_lock = threading.Lock()

    def start(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="local-lambda")
        self._code_dir = tempfile.TemporaryDirectory(prefix="local-lambda-code-")
        self._code = FunctionCode(Path(self._code_dir.name))
        stack_resources.LAMBDA_DELIVERY.append(self.deliver_sns)

    def stop(self) -> None:
        if self.deliver_sns in stack_resources.LAMBDA_DELIVERY:
            stack_resources.LAMBDA_DELIVERY.remove(self.deliver_sns)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._code_dir is not None:
            self._code_dir.cleanup()
            self._code_dir = self._code = None
        with self._module_lock:
            self._modules.clear()

    def register(
        self,
        topic_arn: str,
        handler: Handler,
        *,
        env: Mapping[str, str] | None = None,
        function_name: str | None = None,
        role_arn: str | None = None,
    ) -> str:
        """Subscribe `handler` to the topic; returns the subscription ARN.

        With `role_arn`, the handler makes its clients with `roles.session(role_arn)` (see `load_lambda`'s
        `client`). The role's keys are never put in os.environ: that is the whole process's, and another
        thread (the app under test) would read them as its own.
        """
        if role_arn is not None and self.roles is None:
            raise ValueError("this runner was made without clients to assume roles with")
        key = uuid.uuid4().hex
        name = function_name or getattr(handler, "__name__", "handler")
        reg = _Registration(handler, topic_arn, name, dict(env) if env is not None else None, role_arn)
        with self._cond:
            reg.generation = self._generation
            self._registrations[key] = reg
        response = self._sns().subscribe(
            TopicArn=topic_arn,
            Protocol="http",
            Endpoint=f"{self._endpoint_url}{PATH_PREFIX}{key}",
            ReturnSubscriptionArn=True,
        )
        reg.subscription_arn = response["SubscriptionArn"]
        return reg.subscription_arn

    def reset(self) -> None:
        """Forget every registration and failure (moto's reset drops the subscriptions)."""
        with self._cond:
            self._generation += 1
            self._registrations.clear()
            self.failures.clear()
            self.refused.clear()
            self.invocations.clear()
            self.delivered = 0
        with self._module_lock:
            self._modules.clear()
        if self.roles is not None:
            self.roles.clear()

    @property
    def pending(self) -> int:
        with self._cond:
            return self._pending

    def wait_idle(self, deadline: float) -> bool:
        """Wait until no delivery is queued or running; False when `deadline` passes."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._pending, timeout=max(0.0, deadline - time.monotonic()))

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> list[bytes]:
        """The WSGI side: accept a delivery, answer at once, run the handler later."""
        key = environ.get("PATH_INFO", "")[len(PATH_PREFIX) :]
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = orjson.loads(environ["wsgi.input"].read(length))
        except (ValueError, orjson.JSONDecodeError):
            body = None
        if not isinstance(body, dict):
            return _respond(start_response, "400 Bad Request", b"not an SNS message")
        with self._cond:
            reg = self._registrations.get(key)
        if reg is None:
            return _respond(start_response, "404 Not Found", b"no such subscription")
        kind = body.get("Type")
        if kind == "SubscriptionConfirmation" and body.get("SubscribeURL"):
            self._submit(self._confirm, body["SubscribeURL"])
        elif kind == "Notification":
            self._submit(self._deliver, reg, body)
        return _respond(start_response, "200 OK", b"")

    def _submit(self, fn: Callable, *args: Any) -> None:
        with self._cond:
            if self._pool is None:
                return
            self._pending += 1
        try:
            self._pool.submit(self._run, fn, *args)
        except RuntimeError:
            self._done()

    def _run(self, fn: Callable, *args: Any) -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("local Lambda runner: unexpected error")
        finally:
            self._done()

    def _done(self) -> None:
        with self._cond:
            self._pending -= 1
            self._cond.notify_all()

    def _confirm(self, url: str) -> None:
        with urlopen(url, timeout=10) as response:  # noqa: S310 - the local cloud's own URL
            response.read()

    def _deliver(self, reg: _Registration, body: dict[str, Any]) -> None:
        event = sns_event(body, reg.subscription_arn)
        arn = f"arn:aws:lambda:{self._region}:{self._account_id}:function:{reg.function_name}"
        attempts = 1 + len(self.retry_delays)
        for attempt in range(attempts):
            if reg.generation != self._generation:
                return  # registered before a reset
            context = LambdaContext(function_name=reg.function_name, invoked_function_arn=arn)
            try:
                with _environment(reg.env):
                    reg.handler(event, context)
            except Exception as exc:
                if attempt + 1 < attempts:
                    log.warning("Lambda %s failed (attempt %d), retrying: %s", reg.function_name, attempt + 1, exc)
                    time.sleep(self.retry_delays[attempt])
                    continue
                log.error(
                    "Lambda %s failed %d times on %s:\n%s",
                    reg.function_name,
                    attempts,
                    reg.topic_arn,
                    traceback.format_exc(),
                )
                with self._cond:
                    self.failures.append(
                        LambdaFailure(reg.function_name, reg.topic_arn, body.get("Message", ""), repr(exc), attempts)
                    )
            else:
                with self._cond:
                    self.delivered += 1
            return

    def deliver_sns(
        self, subscription: Any, message: str, message_id: str, subject: str | None, attributes: Any
    ) -> None:
        """SNS's delivery to a subscription of protocol lambda: Lambda's asynchronous invocation, queued."""
        body = subscription.get_post_data(message, message_id, subject, message_attributes=attributes)
        event = sns_event(body, subscription.arn)
        with self._cond:
            generation = self._generation
        self._submit(
            self._invoke_function,
            subscription.account_id,
            subscription.endpoint,
            subscription.topic.arn,
            event,
            generation,
        )

    def _invoke_function(
        self, account_id: str, function_arn: str, topic_arn: str, event: dict[str, Any], generation: int
    ) -> None:
        function = read_function(account_id, function_arn)
        if function is None:
            self._refuse(function_arn, topic_arn, "Function not found")
            return
        if not function.allows_sns(topic_arn):
            self._refuse(
                function_arn,
                topic_arn,
                "The function's resource-based policy does not let sns.amazonaws.com invoke it from this topic",
            )
            return
        attempts = 1 + max(0, min(function.retries, 2))
        for attempt in range(attempts):
            if generation != self._generation:
                return  # delivered before a reset
            try:
                self._run_function(function, event)
            except Exception as exc:
                if attempt + 1 < attempts:
                    log.warning("Lambda %s failed (attempt %d), retrying: %s", function.name, attempt + 1, exc)
                    time.sleep(self.retry_delays[min(attempt, len(self.retry_delays) - 1)] if self.retry_delays else 0)
                    continue
                log.error(
                    "Lambda %s failed %d times on %s:\n%s", function.name, attempts, topic_arn, traceback.format_exc()
                )
                with self._cond:
                    self.failures.append(
                        LambdaFailure(
                            function.name, topic_arn, event["Records"][0]["Sns"]["Message"], repr(exc), attempts
                        )
                    )
                self._send_to_destination(function, failure_record(function, event, exc, attempts))
            else:
                with self._cond:
                    self.delivered += 1
            return

    def _run_function(self, function: StackFunction, event: dict[str, Any]) -> None:
        """One call of the function's handler, under its role, with its environment, memory and timeout."""
        role = function.role if self.roles is not None and self.roles.exists(function.role) else None
        handler = self._handler(function, role)
        env = {
            **function.environment,
            "AWS_LAMBDA_FUNCTION_NAME": function.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        }  # the role's keys reach the code through its module's clients: os.environ is the whole process's
        context = LambdaContext(
            function_name=function.name,
            invoked_function_arn=function.arn,
            memory_limit_in_mb=function.memory,
            timeout_seconds=function.timeout,
            log_group_name=f"/aws/lambda/{function.name}",
        )
        with self._cond:
            self.invocations[function.name] = self.invocations.get(function.name, 0) + 1
        started = time.monotonic()
        with _environment(env):
            handler(event, context)
        if time.monotonic() - started > function.timeout:
            raise TimeoutError(f"Task timed out after {function.timeout:.2f} seconds")

    def _handler(self, function: StackFunction, role: str | None) -> Handler:
        """The function's handler, from its own code, its module's clients signed with the role's keys."""
        key = (function.code_sha, function.handler, role or "")
        with self._module_lock:
            found = self._modules.get(key)
            if found is not None:
                return found
            if self._code is None:
                raise RuntimeError("the Lambda runner is not started")
            path, attribute = self._code.handler_file(function)
            if role and self.roles is not None:
                roles = self.roles

                def client(service: str) -> BaseClient:
                    return roles.client(role, service)
            elif self._clients is not None:
                client = self._clients
            else:
                raise RuntimeError("this runner was made without clients for the functions' code")
            module = load_lambda(
                path,
                endpoint_url=self._endpoint_url,
                region=self._region,
                client=client,
                tag=hashlib.sha256(repr(key).encode()).hexdigest()[:12],
            )
            found = self._modules[key] = getattr(module, attribute)
            return found

    def _send_to_destination(self, function: StackFunction, record: dict[str, Any]) -> None:
        """Lambda's on-failure record into the function's SQS destination, under the function's role."""
        destination = function.on_failure
        if not destination or ":sqs:" not in destination:
            return
        _, _, _, region, account, queue = destination.split(":", 5)
        try:
            if self.roles is not None and self.roles.exists(function.role):
                sqs = self.roles.client(function.role, "sqs", region)
            elif self._clients is not None:
                sqs = self._clients("sqs")
            else:
                return
            url = sqs.get_queue_url(QueueName=queue, QueueOwnerAWSAccountId=account)["QueueUrl"]
            sqs.send_message(QueueUrl=url, MessageBody=orjson.dumps(record).decode())
        except ClientError as exc:
            log.warning("Lambda could not send %s's failure record to %s: %s", function.name, destination, exc)

    def _refuse(self, function_arn: str, topic_arn: str, reason: str) -> None:
        log.warning("SNS could not deliver %s to %s: %s", topic_arn, function_arn, reason)
        with self._cond:
            self.refused.append(Refused(function_arn, topic_arn, reason))


def sns_event(body: Mapping[str, Any], subscription_arn: str) -> dict[str, Any]:
    """Wrap an SNS HTTP delivery as the event Lambda receives for the same message."""
    attributes = {
        name: {"Type": value.get("Type", "String"), "Value": value.get("Value", "")}
        for name, value in (body.get("MessageAttributes") or {}).items()
    }
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": subscription_arn,
                "Sns": {
                    "Type": body.get("Type", "Notification"),
                    "MessageId": body.get("MessageId", ""),
                    "TopicArn": body.get("TopicArn", ""),
                    "Subject": body.get("Subject"),
                    "Message": body.get("Message", ""),
                    "Timestamp": body.get("Timestamp", ""),
                    "SignatureVersion": body.get("SignatureVersion", "1"),
                    "Signature": body.get("Signature", ""),
                    "SigningCertUrl": body.get("SigningCertURL", ""),
                    "UnsubscribeUrl": body.get("UnsubscribeURL", ""),
                    "MessageAttributes": attributes,
                },
            }
        ]
    }


def load_lambda(
    path: Path,
    *,
    endpoint_url: str,
    region: str,
    client: Callable[[str], BaseClient],
    tag: str,
) -> ModuleType:
    """Import `lambdas/<name>/index.py` as a private copy whose boto3 clients use the local cloud."""
    package = f"{path.parent.parent.name}.{path.parent.name}"
    name = f"{package}._local_cloud_{tag}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the Lambda handler at {path}")
    module = importlib.util.module_from_spec(spec)
    env = {"AWS_ENDPOINT_URL": endpoint_url, "AWS_DEFAULT_REGION": region, "AWS_REGION": region}
    folder = str(path.parent)
    with _environment(env):
        sys.modules[name] = module
        sys.path.insert(0, folder)  # Lambda puts the function's folder first on the path
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        finally:
            sys.path.remove(folder)
    for attr, value in list(vars(module).items()):
        if isinstance(value, BaseClient):
            setattr(module, attr, client(value.meta.service_model.service_name))
    return module


@contextlib.contextmanager
def _environment(env: Mapping[str, str] | None) -> Iterator[None]:
    """Apply `env` to os.environ for the block, one block at a time."""
    if not env:
        yield
        return
    with _env_lock:
        saved = {key: os.environ.get(key) for key in env}
        os.environ.update(env)
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def _respond(start_response: Callable, status: str, body: bytes) -> list[bytes]:
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]

"""One local cloud on 127.0.0.1: moto's server, the async endpoint emulator and the Lambda runner.

Every service answers at the same URL, so the app's code differs from AWS only by
`endpoint_url`. Requests for the emulator and the runner are picked out by path; all the
rest goes to moto.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.request import Request, urlopen

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.core import DEFAULT_ACCOUNT_ID
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import ThreadedWSGIServer

import contract
from app.services.local_cloud import (
    bucket_resources,  # noqa: F401  (what moto's CloudFormation drops of a bucket)
    change_sets,  # noqa: F401  (change sets by stack, with CloudFormation's errors)
    role_resources,  # noqa: F401  (what it drops of a role)
    sandbox_stack,
    stack_parameters,  # noqa: F401  (UsePreviousValue is the value given)
    stack_resources,
)
from app.services.local_cloud.codepipeline import PipelineEmulator
from app.services.local_cloud.codepipeline import serves as pipeline_call
from app.services.local_cloud.emulator import PATH as ENDPOINT_PATH
from app.services.local_cloud.emulator import AsyncEndpointEmulator
from app.services.local_cloud.engine import Engine, SandboxEngine
from app.services.local_cloud.iam import CHECKED, Authorizer
from app.services.local_cloud.quotas import ServiceQuotas
from app.services.local_cloud.quotas import serves as quotas_call
from app.services.local_cloud.runner import PATH_PREFIX as RUNNER_PREFIX
from app.services.local_cloud.runner import Handler, LambdaRunner
from app.services.local_cloud.scaling import CHANGES as SCALING_CHANGES
from app.services.local_cloud.scaling import ScalingActivities
from app.services.local_cloud.scaling import operation as scaling_operation

log = logging.getLogger(__name__)

DUMMY_KEY = "testing"


@dataclass(frozen=True, slots=True)
class LocalDeployment:
    """What `provision` made: the stack's outputs, the same things a client finds through SSM."""

    name: str
    bucket: str
    endpoint_name: str
    success_topic_arn: str
    error_topic_arn: str
    #: The companion endpoints (×4 upscaler, inpainting) by family name, as SSM names them.
    companions: dict[str, str] = field(default_factory=dict)


class LocalCloud:
    """The whole AWS side on one machine (see the package docstring for a tour).

    moto keeps its state per process: LocalClouds in one process share it, and `reset`
    wipes it for all of them. Tests should use the `local_cloud`/`cloud` fixtures.
    """

    def __init__(
        self,
        port: int = 0,
        region: str = "us-east-1",
        engine: Engine | None = None,
        cold_start_seconds: float = 0.0,
        instance_idle_seconds: float = 300.0,
        max_instances: int = 1,
        enforce_iam: bool = True,
    ) -> None:
        self.region = region
        self.account_id = DEFAULT_ACCOUNT_ID
        self._port = port
        self._defaults = (engine or SandboxEngine(), cold_start_seconds, instance_idle_seconds, max_instances)
        self._server: ThreadedWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._clients: dict[tuple[str, str], BaseClient] = {}
        self._client_lock = threading.Lock()
        self._session: boto3.Session | None = None
        self._moto: Any = None
        self._deployments: dict[str, LocalDeployment] = {}
        self.endpoint_url = ""
        self.emulator: AsyncEndpointEmulator | None = None
        self.runner: LambdaRunner | None = None
        #: The endpoints' scaling activities, which moto does not keep (scaling.py).
        self.scaling = ScalingActivities()
        #: IAM evaluated for the keys of role sessions and IAM users (see iam.py); None: nothing is.
        self.iam = Authorizer() if enforce_iam else None
        #: CodePipeline's four calls and its runs, with CodeBuild's builds (codepipeline.py); the rest is moto's.
        self.pipelines = PipelineEmulator(
            region=region,
            account_id=self.account_id,
            clients=self._internal_client,
            endpoint_url=lambda: self.endpoint_url,
        )
        #: Service Quotas' ListServiceQuotas over the account's applied quotas (quotas.py), which tests set.
        self.quotas = ServiceQuotas(region, self.account_id)

    def start(self) -> LocalCloud:
        _share_sns_signing_key()
        _bypass_proxies()
        self._moto = DomainDispatcherApplication(create_backend_app)
        self._server = _Server("127.0.0.1", self._port, self._dispatch, handler=_RequestHandler)
        self.endpoint_url = f"http://127.0.0.1:{self._server.server_port}"
        engine, cold, idle, most = self._defaults
        self.emulator = AsyncEndpointEmulator(
            region=self.region,
            account_id=self.account_id,
            engine=engine,
            clients=self._internal_client,
            scaling=self.scaling,
            cold_start_seconds=cold,
            instance_idle_seconds=idle,
            max_instances=most,
        )
        self.runner = LambdaRunner(
            self.endpoint_url,
            self.region,
            self.account_id,
            lambda: self._internal_client("sns"),
            clients=self._internal_client,
        )
        self.emulator.start()
        self.runner.start()
        stack_resources.SCALING_EVENTS.append(self._limits_changed)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.1,), name="local-cloud-http", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and join every thread the cloud started."""
        if self._server is None:
            return
        if self._limits_changed in stack_resources.SCALING_EVENTS:
            stack_resources.SCALING_EVENTS.remove(self._limits_changed)
        if self.emulator:
            self.emulator.stop()
        if self.runner:
            self.runner.stop()
        self.pipelines.stop()
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join()
        for client in self._clients.values():
            client.close()
        self._clients.clear()
        self._server = self._thread = None

    def __enter__(self) -> LocalCloud:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def engine(self) -> Engine:
        return self._emulator.engine

    @engine.setter
    def engine(self, engine: Engine) -> None:
        self._emulator.engine = engine

    @property
    def cold_start_seconds(self) -> float:
        return self._emulator.cold_start_seconds

    @cold_start_seconds.setter
    def cold_start_seconds(self, seconds: float) -> None:
        self._emulator.cold_start_seconds = seconds

    @property
    def instance_idle_seconds(self) -> float:
        return self._emulator.instance_idle_seconds

    @instance_idle_seconds.setter
    def instance_idle_seconds(self, seconds: float) -> None:
        self._emulator.instance_idle_seconds = seconds

    @property
    def max_instances(self) -> int:
        return self._emulator.max_instances

    @max_instances.setter
    def max_instances(self, count: int) -> None:
        self._emulator.max_instances = count

    @property
    def _emulator(self) -> AsyncEndpointEmulator:
        if self.emulator is None:
            raise RuntimeError("the local cloud is not started")
        return self.emulator

    @property
    def _runner(self) -> LambdaRunner:
        if self.runner is None:
            raise RuntimeError("the local cloud is not started")
        return self.runner

    def session(self) -> boto3.Session:
        """A boto3 session with dummy credentials in this cloud's region."""
        return boto3.Session(aws_access_key_id=DUMMY_KEY, aws_secret_access_key=DUMMY_KEY, region_name=self.region)

    def client(self, service: str, **kwargs: Any) -> BaseClient:
        """A new boto3 client for `service` pointed at this cloud."""
        if self._session is None:
            self._session = self.session()
        kwargs.setdefault("config", Config(retries={"max_attempts": 2, "mode": "standard"}, max_pool_connections=20))
        with self._client_lock:
            return self._session.client(service, endpoint_url=self.endpoint_url, **kwargs)

    def _internal_client(self, service: str, region: str | None = None) -> BaseClient:
        key = (service, region or self.region)
        with self._client_lock:
            found = self._clients.get(key)
        if found is None:
            found = self.client(service, region_name=key[1])
            with self._client_lock:
                found = self._clients.setdefault(key, found)
        return found

    def provision(
        self,
        deployment: str = "sandbox",
        *,
        max_concurrent_invocations: int = 1,
        lambdas: bool = True,
    ) -> LocalDeployment:
        """Deploy the endpoint stack's shipped template as `deployment`, as the pipeline deploys it (sandbox_stack.py).

        CloudFormation makes the bucket, topics, Lambdas and their subscriptions, roles, endpoint, scalable
        target (0 to `max_instances`) and SSM parameters; the endpoint starts with no instance, ready for a
        cold start. Without `lambdas` the stack's Lambda subscriptions are removed, for tests that deliver
        the notifications themselves. Provisioning a deployment that already exists returns it unchanged.
        """
        known = self._deployments.get(deployment)
        if known is not None and self._endpoint_exists(known.endpoint_name):
            return known
        document = sandbox_stack.template(
            deployment, max_concurrent_invocations=max_concurrent_invocations, max_instances=self.max_instances
        )
        outputs = sandbox_stack.deploy(
            self._internal_client, deployment, document, account=self.account_id, region=self.region
        )
        result = LocalDeployment(
            deployment,
            outputs[contract.BUCKET_PARAM],
            outputs[contract.ENDPOINT_PARAM],
            outputs[contract.SUCCESS_TOPIC_PARAM],
            outputs[contract.ERROR_TOPIC_PARAM],
            {family: outputs[param] for family, param in contract.COMPANION_PARAMS.items() if param in outputs},
        )
        for endpoint in (result.endpoint_name, *result.companions.values()):
            self._emulator_scale_in(endpoint)
        if not lambdas:
            self._unsubscribe_lambdas(result)
        self._deployments[deployment] = result
        log.info("provisioned %s from the endpoint template (%s)", deployment, sandbox_stack.stack_name(deployment))
        return result

    def _endpoint_exists(self, endpoint: str) -> bool:
        """False once moto's state was wiped, which another LocalCloud in this process may do."""
        try:
            self._internal_client("sagemaker").describe_endpoint(EndpointName=endpoint)
        except ClientError:
            return False
        return True

    def _emulator_scale_in(self, endpoint: str) -> None:
        """A new endpoint in the local cloud starts with zero instances, ready for a cold start."""
        self._internal_client("sagemaker").update_endpoint_weights_and_capacities(
            EndpointName=endpoint,
            DesiredWeightsAndCapacities=[
                {"VariantName": "AllTraffic", "DesiredWeight": 1.0, "DesiredInstanceCount": 0}
            ],
        )

    def _unsubscribe_lambdas(self, deployment: LocalDeployment) -> None:
        sns = self._internal_client("sns")
        for topic in (deployment.success_topic_arn, deployment.error_topic_arn):
            for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic):
                for subscription in page["Subscriptions"]:
                    if subscription["Protocol"] == "lambda":
                        sns.unsubscribe(SubscriptionArn=subscription["SubscriptionArn"])

    def register_handler(self, topic_arn: str, handler: Handler, **options: Any) -> str:
        """Subscribe a handler(event, context) to a topic through the runner; returns the subscription ARN.

        The options are `LambdaRunner.register`'s: the `env` of each call and the `function_name`.
        """
        return self._runner.register(topic_arn, handler, **options)

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Return once no invocation is queued or running and no Lambda delivery is pending."""
        deadline = time.monotonic() + timeout
        while True:
            if not self._emulator.wait_idle(deadline) or not self._runner.wait_idle(deadline):
                raise TimeoutError(
                    f"the local cloud was still busy after {timeout} s "
                    f"({self._emulator.busy} invocations, {self._runner.pending} Lambda deliveries)"
                )
            if not self._emulator.busy and not self._runner.pending:
                return

    def reset(self) -> None:
        """Wipe all state: moto's backends, the endpoint queues and instances, the runner's subscriptions."""
        try:
            self.wait_idle(timeout=5.0)
        except TimeoutError as exc:
            log.warning("resetting a busy local cloud: %s", exc)
        engine, cold, idle, most = self._defaults
        self._emulator.reset()
        self._runner.reset()
        self.pipelines.reset()
        self.quotas.reset()
        self._deployments.clear()
        self._emulator.engine = engine
        self._emulator.cold_start_seconds = cold
        self._emulator.instance_idle_seconds = idle
        self._emulator.max_instances = most
        self._runner.retry_delays = (0.05, 0.2)
        with urlopen(Request(f"{self.endpoint_url}/moto-api/reset", method="POST"), timeout=30) as response:
            response.read()

    def _limits_changed(self, account_id: str, region: str) -> None:
        """A stack changed a scalable target (stack_resources.py): the emulator reads the limits again."""
        if self.emulator is not None and account_id == self.account_id:
            self.emulator.limits_changed(region)

    def _dispatch(self, environ: dict[str, Any], start_response: Callable) -> Any:
        if self.iam is not None and CHECKED not in environ:
            return self.iam(environ, start_response, self._dispatch)
        if pipeline_call(environ):
            return self.pipelines(environ, start_response)
        if quotas_call(environ):
            return self.quotas(environ, start_response)
        scaling = scaling_operation(environ)
        if scaling == "DescribeScalingActivities":
            return self.scaling(environ, start_response, _signed_region(environ) or self.region)
        if scaling in SCALING_CHANGES:
            answer = self._moto(environ, start_response)
            self._emulator.limits_changed(_signed_region(environ) or self.region)
            return answer
        path = environ.get("PATH_INFO", "")
        if path.startswith(RUNNER_PREFIX):
            return self.runner(environ, start_response)
        if (
            environ.get("REQUEST_METHOD") == "POST"
            and ENDPOINT_PATH.match(path)
            and _signed_for(environ)
            in (
                None,
                "sagemaker",
            )
        ):
            return self.emulator(environ, start_response)
        return self._moto(environ, start_response)


class _RequestHandler(MotoRequestHandler):
    # One request per connection: a stopped server then leaves no thread waiting on a
    # kept-alive socket.
    protocol_version = "HTTP/1.0"

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        pass


class _Server(ThreadedWSGIServer):
    daemon_threads = False
    block_on_close = True


def _signed_for(environ: dict[str, Any]) -> str | None:
    match = re.search(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/", environ.get("HTTP_AUTHORIZATION", ""))
    return match[1] if match else None


def _signed_region(environ: dict[str, Any]) -> str | None:
    match = re.search(r"Credential=[^/]+/\d{8}/([^/]+)/", environ.get("HTTP_AUTHORIZATION", ""))
    return match[1] if match else None


def _bypass_proxies() -> None:
    """Requests to 127.0.0.1 never go through a proxy set in the environment (moto's SNS uses requests)."""
    if not any(os.environ.get(name) for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy")):
        return
    for name in ("NO_PROXY", "no_proxy"):
        hosts = [h for h in os.environ.get(name, "").split(",") if h]
        os.environ[name] = ",".join(hosts + [h for h in ("127.0.0.1", "localhost") if h not in hosts])


_key_lock = threading.Lock()


def _share_sns_signing_key() -> None:
    """moto makes a 2048-bit RSA key per subscription; one shared key keeps provisioning fast."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from moto.sns import models

    with _key_lock:
        if getattr(models.Subscription, "_local_cloud_key", None) is None:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            models.Subscription._local_cloud_key = key
            models.Subscription.private_key = lambda self: key

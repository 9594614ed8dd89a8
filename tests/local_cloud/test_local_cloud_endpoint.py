"""The endpoint's queue behaves like SageMaker's: concurrency limit, TTL, timeout, cold start, scale-in."""

from __future__ import annotations

import threading
import time

from app.services.local_cloud import SandboxEngine

REQUEST = {"prompt": "a slow painting", "width": 64, "height": 64, "seed": 1}


class Gate:
    """An engine that holds every render until released, counting how many run at once."""

    name = "gate"

    def __init__(self) -> None:
        self.released = threading.Event()
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0
        self.started = threading.Semaphore(0)
        self._sandbox = SandboxEngine()

    def render(self, request):
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        self.started.release()
        try:
            self.released.wait(20)
            return self._sandbox.render(request)
        finally:
            with self.lock:
                self.running -= 1

    def wait_started(self, count: int = 1) -> None:
        for _ in range(count):
            assert self.started.acquire(timeout=10), "the engine was never called"


def _instances(cloud) -> int:
    described = cloud.client("sagemaker").describe_endpoint(EndpointName=cloud.deployment.endpoint_name)
    return described["ProductionVariants"][0].get("CurrentInstanceCount", 0)


def _eventually(check, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def test_one_invocation_per_instance_runs_at_a_time(cloud, inbox, submit):
    gate = Gate()
    cloud.cloud.engine = gate
    responses = [submit(REQUEST) for _ in range(3)]
    gate.wait_started()
    assert cloud.cloud.emulator.queued(cloud.deployment.endpoint_name) == 2
    gate.released.set()
    cloud.wait_idle()

    assert gate.most == 1
    assert all(inbox.by_id(r["InferenceId"]).completed for r in responses)


def test_max_concurrent_invocations_per_instance_lets_that_many_run(cloud, inbox, submit):
    wide = cloud.cloud.provision("wide", max_concurrent_invocations=2, lambdas=False)
    gate = Gate()
    cloud.cloud.engine = gate
    for _ in range(3):
        submit(REQUEST, endpoint=wide.endpoint_name, bucket=wide.bucket)
    gate.wait_started(2)
    assert cloud.cloud.emulator.queued(wide.endpoint_name) == 1
    gate.released.set()
    cloud.wait_idle()

    assert gate.most == 2


def test_a_request_older_than_its_ttl_expires_in_the_queue(cloud, inbox, submit):
    gate = Gate()
    cloud.cloud.engine = gate
    first = submit(REQUEST)
    gate.wait_started()
    waiting = submit(REQUEST, RequestTTLSeconds=60)
    cloud.cloud.emulator.advance(61)
    _eventually(lambda: inbox.notifications)
    gate.released.set()
    cloud.wait_idle()

    expired = inbox.by_id(waiting["InferenceId"])
    assert expired.failed and "RequestTTLSeconds" in expired.failure_reason
    assert inbox.by_id(first["InferenceId"]).completed
    assert gate.most == 1


def test_an_invocation_longer_than_its_timeout_fails(cloud, inbox, submit):
    gate = Gate()
    cloud.cloud.engine = gate
    slow = submit(REQUEST, InvocationTimeoutSeconds=1)
    _eventually(lambda: inbox.notifications)
    gate.released.set()
    cloud.wait_idle()

    note = inbox.by_id(slow["InferenceId"])
    assert note.failed and "timed out" in note.failure_reason


def test_cold_start_from_zero_and_scale_in_after_idle(cloud, inbox, submit):
    cloud.cloud.cold_start_seconds = 0.3
    cloud.cloud.instance_idle_seconds = 600
    assert _instances(cloud) == 0
    started = time.monotonic()
    response = submit(REQUEST)
    cloud.wait_idle()

    assert time.monotonic() - started >= 0.3
    assert inbox.by_id(response["InferenceId"]).completed
    assert _instances(cloud) == 1

    cloud.cloud.cold_start_seconds = 60  # a second cold start would outlast the wait below
    warm = submit(REQUEST)
    cloud.wait_idle(timeout=20)
    assert inbox.by_id(warm["InferenceId"]).completed

    cloud.cloud.emulator.advance(601)
    _eventually(lambda: cloud.cloud.emulator.instance_count(cloud.deployment.endpoint_name) == 0)
    cloud.wait_idle()
    assert _instances(cloud) == 0

"""What noticing a job from elsewhere costs: each object it needs is read once."""

from __future__ import annotations

import dataclasses
import uuid
from collections import Counter
from urllib.parse import unquote, urlsplit

import orjson
from botocore.exceptions import EndpointConnectionError

from app.services.cloud.aws import client_config
from app.services.jobs.foreign import listing_of
from app.services.models import JobState, Origin
from contract import GUIDANCE_APP_NAME, build_notification, message_index_key, message_key, request_key


def _gets(client) -> Counter:
    """How often each key is read (GetObject, HeadObject) by this client, by key."""
    seen: Counter = Counter()

    def hook(request, **kwargs):
        if kwargs.get("event_name", "").rsplit(".", 1)[-1] in ("GetObject", "HeadObject"):
            seen[unquote(urlsplit(request.url).path).split("/", 2)[-1]] += 1

    client.meta.events.register("before-send.s3", hook)
    return seen


def _offline(request, **kwargs):
    raise EndpointConnectionError(endpoint_url=request.url)


def _notify(results, inference_id: str, status: str, **fields) -> None:
    now = results._now()
    note = build_notification(
        inference_id=inference_id,
        status=status,
        region=results.region,
        endpoint_name=results.endpoint,
        input_location=f"s3://{results.bucket}/{request_key(inference_id)}",
        received_time=now.isoformat(),
        event_time=now.isoformat(),
        **fields,
    )
    results.put(message_key(inference_id), orjson.dumps(note))
    results.put(message_index_key(now, inference_id), b"{}")


def test_ten_results_from_elsewhere_are_noticed_with_two_reads_each(open_services, results, hooks):
    ws = open_services()
    ws.tracker.poll()
    theirs = [str(uuid.uuid4()) for _ in range(10)]
    for n, inference_id in enumerate(theirs):
        results.put(request_key(inference_id), orjson.dumps({"prompt": f"dune {n}", "width": 64, "height": 64}))
        _notify(results, inference_id, "Completed", output_location=f"s3://{results.bucket}/output/{inference_id}.out")
    reads, calls = _gets(ws.connection.s3), hooks.count_requests(ws.connection.s3)
    changed = {job.inference_id: job for job in ws.tracker.poll()}
    assert set(changed) == set(theirs)
    assert all(job.origin == Origin.REMOTE and "preparing the images" in job.message for job in changed.values())
    assert {key: n for key, n in reads.items() if n > 1} == {}
    assert len(calls) <= 2 + 2 * len(theirs)  # two lists, then the notification and the request object of each


def test_a_failure_from_elsewhere_keeps_its_reason_and_error_text_with_one_read_of_its_notification(
    open_services, results
):
    ws = open_services()
    ws.tracker.poll()
    inference_id = str(uuid.uuid4())
    failure = f"s3://{results.bucket}/failures/{inference_id}-error.out"
    results.put(request_key(inference_id), orjson.dumps({"prompt": "a kite"}))
    results.put(f"failures/{inference_id}-error.out", b"CUDA out of memory at step 3")
    _notify(results, inference_id, "Failed", failure_location=failure, failure_reason="ModelError: server error (500)")
    reads = _gets(ws.connection.s3)
    (failed,) = ws.tracker.poll()
    assert (failed.state, failed.origin) == (JobState.FAILED, Origin.REMOTE)
    assert "server error (500)" in failed.message and "CUDA out of memory at step 3" in failed.failure_reason
    assert reads[message_key(inference_id)] == 1


def test_a_job_from_elsewhere_whose_notification_could_not_be_read_offline_is_found_when_back(open_services, results):
    ws = open_services(config=client_config("standard", max_attempts=1))
    _found_after_an_offline_read(ws, results)


def test_on_a_guidance_stack_a_job_from_elsewhere_read_offline_is_found_when_back(open_services, results):
    ws = open_services(config=client_config("standard", max_attempts=1))
    ws.tracker.target = dataclasses.replace(ws.target, app=GUIDANCE_APP_NAME)
    _found_after_an_offline_read(ws, results, before_poll=lambda: listing_of(ws.tracker).look_now())


def _found_after_an_offline_read(ws, results, before_poll=lambda: None) -> None:
    """A job from elsewhere is notified; its notification cannot be read (offline); the next poll finds it."""
    ws.tracker.poll()
    inference_id = str(uuid.uuid4())
    results.put(request_key(inference_id), orjson.dumps({"prompt": "a lighthouse", "width": 64, "height": 64}))
    _notify(results, inference_id, "Completed", output_location=f"s3://{results.bucket}/output/{inference_id}.out")
    before_poll()
    events = ws.connection.s3.meta.events
    events.register("before-send.s3.GetObject", _offline, unique_id="offline")
    assert ws.tracker.poll() == [] and not ws.tracker.online
    events.unregister("before-send.s3.GetObject", unique_id="offline")
    changed = {job.inference_id: job for job in ws.tracker.poll()}
    assert inference_id in changed and changed[inference_id].origin == Origin.REMOTE

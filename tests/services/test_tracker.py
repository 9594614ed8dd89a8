"""The tracker: two list requests per poll, every final state, offline and throttled, adaptive interval."""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import orjson
from botocore.awsrequest import AWSResponse
from botocore.exceptions import EndpointConnectionError

from app.services.cloud.aws import client_config
from app.services.jobs.service import JobService
from app.services.models import Job, JobState, Origin
from contract import GUIDANCE_APP_NAME, GenerationRequest, message_index_key, new_inference_id


def _lists(calls):
    return [c for c in calls if c == "ListObjectsV2"]


def test_a_poll_lists_twice_whatever_the_number_of_jobs_in_flight(open_services, results, hooks):
    ws = open_services()
    calls = hooks.count_requests(ws.connection.s3)
    assert ws.tracker.poll() == [] and calls == ["ListObjectsV2"]  # only the index: jobs from elsewhere
    jobs = [results.queued(ws, f"tile {n}") for n in range(60)]
    calls.clear()
    assert ws.tracker.poll() == []
    assert calls == ["ListObjectsV2"]  # nothing was notified: no need to look at images/
    for job in jobs[10:20]:
        results.complete(job)
    calls.clear()
    changed = ws.tracker.poll()
    assert sorted(j.inference_id for j in changed) == sorted(j.inference_id for j in jobs[10:20])
    assert len(_lists(calls)) == 2
    assert ws.tracker.in_flight == 50


def test_a_completed_job_gets_its_images_once_with_their_parameters(open_services, results):
    ws = open_services()
    job = results.queued(ws, "two cats", num_images_per_prompt=2)
    results.complete(job, count=2)
    (done,) = ws.tracker.poll()
    assert done.state == JobState.COMPLETED and done.message == "Done: 2 images."
    assert len(done.image_paths) == 2
    assert [img.parameters.prompt for img in ws.library.images()] == ["two cats", "two cats"]
    assert ws.tracker.poll() == []
    assert ws.library.count() == 2


def test_a_failure_carries_sagemakers_reason_and_the_error_text(open_services, results):
    ws = open_services()
    job = results.queued(ws)
    results.fail(job, "ModelError: Received server error (500) from model", "CUDA out of memory at step 12")
    (failed,) = ws.tracker.poll()
    assert failed.state == JobState.FAILED
    assert "Received server error (500)" in failed.message
    assert "CUDA out of memory at step 12" in failed.failure_reason


def test_an_expired_request_is_marked_expired(open_services, results):
    ws = open_services()
    job = results.queued(ws)
    results.fail(
        job, "ClientError: Request expired: it waited in the queue longer than its RequestTTLSeconds (60 seconds)."
    )
    (expired,) = ws.tracker.poll()
    assert expired.state == JobState.EXPIRED and "Expired" in expired.message


def test_a_job_whose_ttl_passed_without_a_notification_is_lost(open_services, results):
    ws = open_services(request_ttl=3600, invocation_timeout=900)
    job = results.queued(ws)
    assert ws.tracker.poll() == []
    ws.tracker.clock = lambda: datetime.now(UTC) + timedelta(hours=1, minutes=20)
    (expired,) = ws.tracker.poll()
    assert expired.inference_id == job.inference_id and expired.state == JobState.LOST
    assert "no result arrived" in expired.message and "resend --lost" in expired.message
    assert ws.library.get_job(job.inference_id).state == JobState.LOST


def test_finished_on_the_endpoint_but_no_images_fails_after_a_grace(open_services, results):
    ws = open_services()
    job = results.queued(ws)
    results.message(job, "Completed")
    (waiting,) = ws.tracker.poll()
    assert waiting.state == JobState.QUEUED and "preparing the images" in waiting.message
    ws.tracker.clock = lambda: datetime.now(UTC) + timedelta(minutes=10)
    (failed,) = ws.tracker.poll()
    assert failed.state == JobState.FAILED and "images never appeared" in failed.message


def test_ids_that_do_not_sort_by_time_are_tracked_too(open_services, results, hooks):
    ws = open_services()
    ours = results.queued(ws, "ours")
    theirs = Job(str(uuid.uuid4()), GenerationRequest("theirs"), ws.target.name, state=JobState.QUEUED)
    early = Job("0000-" + uuid.uuid4().hex[:12], GenerationRequest("early"), ws.target.name, state=JobState.QUEUED)
    for job in (theirs, early):
        ws.library.add_job(job)
    for job in (ours, theirs, early):
        results.complete(job)
    calls = hooks.count_requests(ws.connection.s3)
    assert {j.inference_id for j in ws.tracker.poll()} == {ours.inference_id, theirs.inference_id, early.inference_id}
    assert calls.count("ListObjectsV2") == 2


def test_a_notification_indexed_late_is_still_found(open_services, results):
    ws = open_services()
    ws.tracker.poll()
    job = results.queued(ws)
    results.complete(job, with_message=False)
    results.message(job)
    late = datetime.now(UTC) - timedelta(minutes=6)  # a Lambda retry indexes it under its eventTime
    keys = results.s3.list_objects_v2(Bucket=results.bucket, Prefix="messages-by-time/")["Contents"]
    (entry,) = [o["Key"] for o in keys if job.inference_id in o["Key"]]
    results.s3.delete_object(Bucket=results.bucket, Key=entry)
    results.put(message_index_key(late, job.inference_id), b"{}")
    ws.tracker._index_mark = datetime.now(UTC)  # newer notifications were seen meanwhile
    (done,) = ws.tracker.poll()
    assert done.state == JobState.COMPLETED


def test_a_long_listing_is_read_one_page_per_poll(open_services, results, hooks):
    ws = open_services()
    ws.tracker.page_size = 5
    jobs = [results.queued(ws, f"p{n}") for n in range(8)]
    for job in jobs:
        results.complete(job)
    calls = hooks.count_requests(ws.connection.s3)
    finished = set()
    for _ in range(12):
        calls.clear()
        finished |= {j.inference_id for j in ws.tracker.poll() if j.state.finished}
        assert len(_lists(calls)) <= 2
        if len(finished) == 8:
            break
    assert len(finished) == 8


def test_a_cancelled_job_is_left_alone_when_its_result_comes(open_services, results):
    ws = open_services()
    job = results.queued(ws)
    ws.jobs.cancel(job.inference_id)
    results.complete(job)
    assert ws.tracker.poll() == []
    assert ws.library.get_job(job.inference_id).state == JobState.CANCELLED
    assert ws.library.count() == 0


def _offline(request, **kwargs):
    raise EndpointConnectionError(endpoint_url=request.url)


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **kwargs):
        yield self.body


def _slow_down(request, **kwargs):
    body = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
    return AWSResponse(request.url, 503, {}, _Raw(body))


def test_offline_then_back_online_resumes_without_an_exception(open_services, results):
    ws = open_services()
    statuses = []
    ws.tracker.on_status = statuses.append
    job = results.queued(ws)
    results.complete(job)
    events = ws.connection.s3.meta.events
    events.register("before-send.s3", _offline, unique_id="offline")
    assert ws.tracker.poll() == []
    assert not ws.tracker.online and statuses[-1].message.startswith("Offline")
    first = ws.tracker.interval()
    ws.tracker.poll()
    assert ws.tracker.interval() > first  # backing off
    events.unregister("before-send.s3", unique_id="offline")
    (done,) = ws.tracker.poll()
    assert done.state == JobState.COMPLETED and ws.tracker.online and statuses[-1].online


def test_throttled_by_s3_slowdown_backs_off_and_resumes(open_services, results):
    ws = open_services(config=client_config("standard", max_attempts=1))  # botocore's own retries are its business
    statuses = []
    ws.tracker.on_status = statuses.append
    job = results.queued(ws)
    results.complete(job)
    events = ws.connection.s3.meta.events
    events.register("before-send.s3", _slow_down, unique_id="slowdown")
    assert ws.tracker.poll() == []
    assert not statuses[-1].online and "SlowDown" not in statuses[-1].message
    events.unregister("before-send.s3", unique_id="slowdown")
    assert [j.state for j in ws.tracker.poll()] == [JobState.COMPLETED]


def test_submitting_offline_keeps_the_job_and_sends_it_when_back(open_services):
    ws = open_services()
    for name in ("s3", "sagemaker", "sagemaker-runtime"):
        ws.connection.client(name).meta.events.register("before-send", _offline, unique_id="offline")
    job = ws.jobs.submit({"prompt": "sent later", "width": 64, "height": 64})
    assert job.state in (JobState.PENDING, JobState.UPLOADING) and job.message.startswith("Offline")
    ws.tracker.step()
    assert not ws.tracker.online
    for name in ("s3", "sagemaker", "sagemaker-runtime"):
        ws.connection.client(name).meta.events.unregister("before-send", unique_id="offline")
    ws.tracker.step()  # back online: the poll succeeds, then the next step resends
    ws.tracker.step()
    assert ws.library.get_job(job.inference_id).state in (JobState.QUEUED, JobState.COMPLETED)  # sent (may be done)


def test_the_interval_is_fast_after_a_submit_and_slow_in_long_waits(open_services, results):
    ws = open_services()
    assert ws.tracker.interval() == ws.tracker.IDLE
    results.queued(ws)
    ws.tracker.poll()
    ws.tracker.submitted()
    assert ws.tracker.interval() == ws.tracker.FAST
    ws.tracker._last_activity -= 900
    assert ws.tracker.interval() == ws.tracker.SLOWEST


def test_wake_polls_at_once(open_services, results):
    ws = open_services()
    results.queued(ws)
    polled = threading.Event()
    count = []
    ws.tracker.on_status = lambda status: (count.append(status), polled.set())
    ws.tracker._last_activity -= 900  # a slow interval: 15 s
    thread = threading.Thread(target=ws.tracker.run, daemon=True)
    thread.start()
    assert polled.wait(10)
    polled.clear()
    started = time.monotonic()
    ws.tracker.wake()
    assert polled.wait(10) and time.monotonic() - started < 5
    ws.tracker.stop()
    thread.join(10)
    assert not thread.is_alive()


def test_a_job_sent_by_a_plain_script_without_an_id_appears(open_services, cloud):
    ws = open_services()
    ws.tracker.poll()
    s3, runtime = cloud.client("s3"), cloud.client("sagemaker-runtime")
    body = {"prompt": "a harbour at night", "width": 64, "height": 64, "num_images_per_prompt": 2}
    s3.put_object(Bucket=cloud.deployment.bucket, Key="requests/from-a-script.json", Body=orjson.dumps(body))
    reply = runtime.invoke_endpoint_async(
        EndpointName=cloud.deployment.endpoint_name,
        ContentType="application/json",
        InputLocation=f"s3://{cloud.deployment.bucket}/requests/from-a-script.json",
        InvocationTimeoutSeconds=3600,
    )
    cloud.wait_idle()
    found = {}
    for _ in range(5):
        found.update({j.inference_id: j for j in ws.tracker.poll()})
        if reply["InferenceId"] in found and found[reply["InferenceId"]].state.finished:
            break
    job = found[reply["InferenceId"]]
    assert job.origin == Origin.REMOTE and job.state == JobState.COMPLETED, job.message
    assert job.request.prompt == "a harbour at night" and job.request.num_images_per_prompt == 2
    assert len(job.image_paths) == 2


def test_a_guidance_stack_without_an_index_is_tracked_from_messages(open_services, results, hooks):
    ws = open_services()
    ws.tracker.target = dataclasses.replace(ws.target, app=GUIDANCE_APP_NAME)
    job = Job(new_inference_id(), GenerationRequest("theirs"), ws.target.name, state=JobState.QUEUED)
    ws.library.add_job(job)
    results.complete(job)
    calls = hooks.count_requests(ws.connection.s3)
    (done,) = ws.tracker.poll()
    assert done.state == JobState.COMPLETED
    # messages/ and images/ from the smallest id, plus the once-a-minute full listing for jobs from elsewhere
    assert calls.count("ListObjectsV2") == 3
    results.queued(ws)
    calls.clear()
    ws.tracker.poll()
    assert calls.count("ListObjectsV2") == 2


def test_jobs_for_a_guidance_stack_ask_for_rgb_arrays(open_services):
    ws = open_services()
    assert ws.jobs.accept == "application/json"  # issue 13: lossless RGB on our own deployments too
    guidance = JobService(ws.library, ws.connection, dataclasses.replace(ws.target, app=GUIDANCE_APP_NAME))
    assert guidance.accept == "application/json"


def test_an_unexpected_error_does_not_end_tracking(open_services, results, monkeypatch):
    ws = open_services()
    job = results.queued(ws)
    results.complete(job)
    real = ws.library.unfinished_jobs
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) == 1:
            raise OSError("disk I/O error")
        return real()

    monkeypatch.setattr(ws.library, "unfinished_jobs", flaky)
    monkeypatch.setattr(ws.tracker, "MAX_BACKOFF", 0.2)
    ws.tracker._backoff = 0.05
    statuses, done = [], threading.Event()
    ws.tracker.on_status = statuses.append
    ws.tracker.on_change = lambda changed: changed.state.finished and done.set()
    thread = threading.Thread(target=ws.tracker.run, daemon=True)
    thread.start()
    assert done.wait(20)
    ws.tracker.stop()
    thread.join(10)
    assert "problem" in statuses[0].message and statuses[-1].online


def test_two_computers_sharing_a_deployment_see_each_others_results(open_services, cloud, tmp_path):
    from app.services.jobs.tracker import JobTracker
    from app.services.library.store import Library

    alice = open_services()
    bob_library = Library(tmp_path / "bob")
    bob = JobTracker(
        bob_library, alice.connection, alice.target, JobService(bob_library, alice.connection, alice.target)
    )
    try:
        bob.poll()
        job = alice.jobs.submit({"prompt": "a shared moodboard", "seed": 8, "width": 64, "height": 64})
        cloud.wait_idle()
        for _ in range(5):
            alice.tracker.poll()
            bob.poll()
            theirs = bob_library.get_job(job.inference_id)
            if theirs and theirs.state.finished and alice.library.get_job(job.inference_id).state.finished:
                break
        ours = alice.library.get_job(job.inference_id)
        assert (ours.origin, ours.state) == (Origin.LOCAL, JobState.COMPLETED)
        assert (theirs.origin, theirs.state) == (Origin.REMOTE, JobState.COMPLETED)
        assert theirs.request == ours.request and len(theirs.image_paths) == 1
        assert bob_library.images()[0].parameters.seed == 8
    finally:
        bob_library.close()


def test_the_loop_reports_the_endpoint_state_and_looks_again_when_asked(open_services):
    ws = open_services()
    states, seen = [], threading.Event()
    ws.tracker.on_endpoint = lambda state: (states.append(state), seen.set())
    thread = threading.Thread(target=ws.tracker.run, daemon=True)
    thread.start()
    try:
        assert seen.wait(10)
        assert states[0].status == "InService"
        seen.clear()
        ws.tracker.refresh_endpoint()  # the idle interval is 30 s and the next look due in 20: this is now
        assert seen.wait(10) and len(states) == 2
    finally:
        ws.tracker.stop()
        thread.join(10)
    assert not thread.is_alive()

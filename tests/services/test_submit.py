"""Submission on the local cloud: recorded first, uploaded, invoked with every option (RGB output), in bulk."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
from PIL import Image

from app.services.errors import UserError
from app.services.jobs.service import WARMING_UP
from app.services.local_cloud.engine import SandboxEngine
from app.services.models import JobState
from app.services.progress import Progress
from contract import APP_NAME, GenerationRequest, S3Location, id_time, request_key

SMALL = {"width": 64, "height": 64}  # the sandbox engine draws small images quickly


def test_submit_records_the_job_before_any_network_call(open_services, cloud):
    ws = open_services()
    seen_at_first_call = []

    def first_call(**kwargs):
        if not seen_at_first_call:
            seen_at_first_call.append([(j.inference_id, j.state) for j in ws.library.jobs()])

    for client in (ws.connection.s3, ws.connection.client("sagemaker-runtime"), ws.connection.client("sagemaker")):
        client.meta.events.register("before-send", first_call)
    job = ws.jobs.submit(GenerationRequest("a red kite over hills", seed=7, width=384, height=256))
    assert seen_at_first_call == [[(job.inference_id, JobState.UPLOADING)]]
    assert job.state == JobState.QUEUED
    assert job.message.startswith(WARMING_UP)  # the deployment starts scaled in to zero instances
    assert id_time(job.inference_id) is not None
    body = (
        cloud.client("s3").get_object(Bucket=cloud.deployment.bucket, Key=request_key(job.inference_id))["Body"].read()
    )
    assert orjson.loads(body)["prompt"] == "a red kite over hills"
    assert S3Location.parse(job.output_location).bucket == cloud.deployment.bucket
    assert job.failure_location
    assert ws.library.get_job(job.inference_id).output_location == job.output_location


def test_invoke_carries_the_id_the_input_and_every_option(open_services):
    ws = open_services(invocation_timeout=900, request_ttl=3600)
    sent = []
    ws.connection.client("sagemaker-runtime").meta.events.register(
        "before-send.sagemaker-runtime.InvokeEndpointAsync",
        lambda request, **_: sent.append(
            {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
        ),
    )
    job = ws.jobs.submit({"prompt": "teapot", **SMALL})
    (headers,) = sent
    assert headers["X-Amzn-SageMaker-Inference-Id"] == job.inference_id
    assert headers["X-Amzn-SageMaker-InputLocation"] == job.input_location
    assert headers["X-Amzn-SageMaker-InvocationTimeoutSeconds"] == "900"
    assert headers["X-Amzn-SageMaker-RequestTTLSeconds"] == "3600"
    assert headers["X-Amzn-SageMaker-Content-Type"] == "application/json"
    assert headers["X-Amzn-SageMaker-Accept"] == "application/json"  # lossless RGB, on our own deployment too


def test_a_job_on_our_deployment_is_sent_for_rgb_and_its_pngs_are_the_engines_pixels(open_services, cloud):
    ws = open_services()
    accepts = []
    ws.connection.client("sagemaker-runtime").meta.events.register(
        "before-send.sagemaker-runtime.InvokeEndpointAsync",
        lambda request, **_: accepts.append(request.headers["X-Amzn-SageMaker-Accept"]),
    )
    assert ws.target.app == APP_NAME
    job = ws.jobs.submit(
        {"prompt": "a harbour at dawn, fine rigging", "width": 96, "height": 64, "num_images_per_prompt": 2, "seed": 11}
    )
    cloud.wait_idle()
    ws.tracker.step()

    done = ws.library.get_job(job.inference_id)
    assert accepts == [b"application/json"]
    assert done.state == JobState.COMPLETED, done.message
    expected = SandboxEngine().render(done.request)
    assert len(done.image_paths) == len(expected) == 2
    for path, pixels in zip(done.image_paths, expected, strict=True):
        with Image.open(path) as png:
            assert np.array_equal(np.asarray(png.convert("RGB")), pixels)  # not a JPEG's approximation


def test_an_explicit_accept_still_asks_for_jpeg(open_services):
    ws = open_services(accept="application/json;jpeg")
    sent = []
    ws.connection.client("sagemaker-runtime").meta.events.register(
        "before-send.sagemaker-runtime.InvokeEndpointAsync",
        lambda request, **_: sent.append(request.headers["X-Amzn-SageMaker-Accept"]),
    )
    ws.jobs.submit({"prompt": "teapot", **SMALL})
    assert sent == [b"application/json;jpeg"]


def test_a_random_seed_is_chosen_and_kept(open_services):
    ws = open_services()
    job = ws.jobs.submit({"prompt": "teapot", **SMALL})
    assert job.request.seed is not None
    assert ws.library.get_job(job.inference_id).request.seed == job.request.seed


def test_batch_sends_every_job_with_progress_and_two_requests_each(open_services, hooks):
    ws = open_services()
    s3_calls = hooks.count_requests(ws.connection.s3)
    progress = []
    jobs = ws.jobs.submit_many(
        [{"prompt": f"tile {n}", "seed": n, **SMALL} for n in range(20)], progress=progress.append
    )
    assert [job.state for job in jobs] == [JobState.QUEUED] * 20
    assert [job.request.prompt for job in jobs] == [f"tile {n}" for n in range(20)]
    assert len({job.inference_id for job in jobs}) == 20
    assert {type(p) for p in progress} == {Progress}  # the services' one progress event
    assert sorted(p.fraction for p in progress) == [n / 20 for n in range(1, 21)]
    assert sorted(p.message for p in progress) == sorted(f"Sent {n} of 20" for n in range(1, 21))
    assert s3_calls.count("PutObject") == 20 and len(s3_calls) == 20


def test_a_bad_line_in_a_batch_records_nothing(open_services):
    ws = open_services()
    with pytest.raises(UserError, match=r"Request 2: Steps \(num_inference_steps\) is 0"):
        ws.jobs.submit_many([{"prompt": "fine"}, {"prompt": "bad", "num_inference_steps": 0}])
    assert ws.library.jobs() == []


def test_missing_endpoint_fails_the_job_with_a_clear_message(open_services, cloud):
    ws = open_services()
    cloud.client("sagemaker").delete_endpoint(EndpointName=cloud.deployment.endpoint_name)
    job = ws.jobs.submit({"prompt": "teapot", **SMALL})
    assert job.state == JobState.FAILED
    assert "does not exist" in job.message and cloud.deployment.endpoint_name in job.message


def test_cancel_says_the_endpoint_cannot_abort_and_retry_resubmits(open_services):
    ws = open_services()
    job = ws.jobs.submit({"prompt": "teapot", "seed": 3, "num_inference_steps": 12, **SMALL})
    cancelled = ws.jobs.cancel(job.inference_id)
    assert cancelled.state == JobState.CANCELLED
    assert "cannot stop" in cancelled.message
    again = ws.jobs.retry(job.inference_id)
    assert again.inference_id != job.inference_id and again.retry_of == job.inference_id
    assert again.request == job.request and again.state == JobState.QUEUED


def test_a_batch_cut_short_by_a_full_disk_leaves_the_recorded_jobs_to_be_sent_later(open_services, monkeypatch):
    ws = open_services()
    real_add = ws.library.add_job
    added = []

    def add_then_fail(job):
        if added:
            raise OSError(28, "No space left on device")
        added.append(job.inference_id)
        return real_add(job)

    monkeypatch.setattr(ws.library, "add_job", add_then_fail)
    with pytest.raises(OSError):
        ws.jobs.submit_many([{"prompt": "first", **SMALL}, {"prompt": "second", **SMALL}])
    monkeypatch.undo()
    assert [job.inference_id for job in ws.jobs.resume()] == added
    assert ws.library.get_job(added[0]).state == JobState.QUEUED


def test_a_batch_above_the_hard_cap_is_refused_before_anything_is_recorded(open_services, cloud):
    ws = open_services()
    from app.services.jobs import MAX_BATCH

    with pytest.raises(UserError, match=f"at most {MAX_BATCH} are sent at once"):
        ws.jobs.submit_many([{"prompt": f"boat {n}"} for n in range(MAX_BATCH + 1)])

    assert ws.library.jobs() == [] and not cloud.cloud.emulator.invocations

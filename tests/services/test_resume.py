"""Nothing lost: kill the app at any point, start it again from the same data dir, and every job ends once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.services.models import JobState
from contract import GenerationRequest, image_prefix

REQUEST = GenerationRequest("a lighthouse at dusk", seed=11, width=64, height=64, num_images_per_prompt=2)


def _finish(ws, cloud, inference_id, rounds=40):
    """What the restarted app does: step the tracker until the job is final."""
    for _ in range(rounds):
        ws.tracker.step()
        job = ws.library.get_job(inference_id)
        if job.state.finished:
            return job
        cloud.wait_idle()
    raise AssertionError(f"job still {job.state}: {job.message}")


def _check_one_complete_job(ws, cloud, inference_id):
    job = _finish(ws, cloud, inference_id)
    assert cloud.cloud.emulator.invocations == {inference_id: 1}  # one billed run, not two
    assert [j.inference_id for j in ws.library.jobs()] == [inference_id]
    assert job.state == JobState.COMPLETED, job.message
    assert ws.library.count() == 2 and len(job.image_paths) == 2
    folder = ws.library.images_dir / inference_id
    assert sorted(p.name for p in folder.iterdir()) == ["0.png", "1.png"]  # no half-written file left
    keys = cloud.client("s3").list_objects_v2(Bucket=cloud.deployment.bucket, Prefix=image_prefix(inference_id))
    assert len([o for o in keys["Contents"] if o["Key"].endswith(".png")]) == 2


def _killed_while_recording(ws, hooks, monkeypatch):
    real = ws.library.update_job

    def update(inference_id, **changes):
        if changes.get("state") == JobState.UPLOADING:
            raise hooks.Killed("right after the job was recorded")
        return real(inference_id, **changes)

    monkeypatch.setattr(ws.library, "update_job", update)


KILL_POINTS = {
    "before anything was sent": lambda ws, hooks, mp: _killed_while_recording(ws, hooks, mp),
    "before upload": lambda ws, hooks, mp: hooks.kill_at(ws.connection.s3, "before-send.s3.PutObject"),
    # Killed while InvokeEndpointAsync was on its way: test_…_resent_only_after_its_window.
    "after invoke, before it was noted": lambda ws, hooks, mp: hooks.kill_at(
        ws.connection.client("sagemaker-runtime"), "after-call.sagemaker-runtime.InvokeEndpointAsync"
    ),
}


@pytest.mark.parametrize("kill", KILL_POINTS.values(), ids=KILL_POINTS.keys())
def test_a_job_killed_while_sending_is_resumed_once(kill, open_services, cloud, hooks, monkeypatch):
    first = open_services()
    kill(first, hooks, monkeypatch)
    with pytest.raises(hooks.Killed):
        first.jobs.submit(REQUEST)
    (recorded,) = first.library.jobs()
    assert recorded.state in (JobState.PENDING, JobState.UPLOADING, JobState.INVOKING)
    cloud.wait_idle()
    _check_one_complete_job(open_services(), cloud, recorded.inference_id)


def test_a_job_killed_in_the_invoke_that_never_arrived_is_resent_only_after_its_window(open_services, cloud, hooks):
    first = open_services()
    hooks.kill_at(first.connection.client("sagemaker-runtime"), "before-send.sagemaker-runtime.InvokeEndpointAsync")
    with pytest.raises(hooks.Killed):
        first.jobs.submit(REQUEST)
    now = [datetime.now(UTC)]
    second = open_services(clock=lambda: now[0])
    second.jobs.LOOK_EVERY = 0.0
    for _ in range(3):
        second.tracker.step()
        cloud.wait_idle()
    (job,) = second.library.jobs()
    assert job.state == JobState.INVOKING and "may have reached the endpoint" in job.message
    assert not cloud.cloud.emulator.invocations  # not sent again while it may be on its way

    now[0] += second.jobs.look_window() + timedelta(seconds=1)
    _check_one_complete_job(second, cloud, job.inference_id)


def test_a_job_killed_mid_download_is_resumed_once(open_services, cloud, hooks, monkeypatch):
    first = open_services()
    job = first.jobs.submit(REQUEST)
    cloud.wait_idle()
    calls = []
    real = first.library._ensure_parameters

    def second_image_dies(path, fallback, key):
        calls.append(key)
        if len(calls) == 2:
            raise hooks.Killed("mid-download")
        return real(path, fallback, key)

    monkeypatch.setattr(first.library, "_ensure_parameters", second_image_dies)
    with pytest.raises(hooks.Killed):
        first.tracker.poll()
    assert first.library.get_job(job.inference_id).state == JobState.QUEUED
    _check_one_complete_job(open_services(), cloud, job.inference_id)


def test_a_job_killed_after_download_before_it_was_marked_done(open_services, cloud, hooks, monkeypatch):
    first = open_services()
    job = first.jobs.submit(REQUEST)
    cloud.wait_idle()
    real = first.library.update_job

    def update(inference_id, **changes):
        if changes.get("state") == JobState.COMPLETED:
            raise hooks.Killed("before completed was written")
        return real(inference_id, **changes)

    monkeypatch.setattr(first.library, "update_job", update)
    with pytest.raises(hooks.Killed):
        first.tracker.poll()
    _check_one_complete_job(open_services(), cloud, job.inference_id)


def test_many_jobs_submitted_then_killed_all_finish_after_restart(open_services, cloud, hooks):
    first = open_services()
    uploads = []

    def dies_after_five_uploads(request, **kwargs):
        uploads.append(request.url)
        if len(uploads) > 5:
            raise hooks.Killed("during a batch")  # and on every later call: the app is gone

    first.connection.s3.meta.events.register("before-send.s3.PutObject", dies_after_five_uploads)
    first.jobs.max_workers = 2
    with pytest.raises(hooks.Killed):
        first.jobs.submit_many([{"prompt": f"boat {n}", "seed": n, "width": 64, "height": 64} for n in range(8)])
    assert len(first.library.jobs()) == 8
    second = open_services()
    for _ in range(40):
        second.tracker.step()
        if all(j.state.finished for j in second.library.jobs()):
            break
        cloud.wait_idle()
    jobs = second.library.jobs()
    assert [j.state for j in jobs] == [JobState.COMPLETED] * 8
    assert second.library.count() == 8

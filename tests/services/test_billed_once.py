"""Nothing billed twice: a job that may have reached the endpoint is looked for before it is sent again.

The local cloud's endpoint counts the invocations it accepted per job; on AWS each one is a billed GPU run.
"""

from __future__ import annotations

import io
import os
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import urllib3
from botocore.exceptions import ReadTimeoutError
from finishing import finish_all

from app.cli import main
from app.services.library.store import DATABASE_NAME
from app.services.models import JobState
from contract import GenerationRequest

ROOT = Path(__file__).resolve().parents[2]
REQUEST = GenerationRequest("a lighthouse at dusk", seed=11, width=64, height=64)


def test_an_invoke_whose_answer_never_came_is_not_repeated_but_found(open_services, cloud):
    """The request reaches the endpoint, the answer times out: botocore must not send it again, nor may resume."""
    ws = open_services()  # its clients retry twice, as botocore does a read timeout

    def arrives_but_no_answer(request, **kwargs):
        urllib3.request(request.method, request.url, body=request.body, headers=dict(request.headers))
        raise ReadTimeoutError(endpoint_url=request.url)

    ws.connection.client("sagemaker-runtime").meta.events.register(
        "before-send.sagemaker-runtime.InvokeEndpointAsync", arrives_but_no_answer
    )
    job = ws.jobs.submit(REQUEST)

    assert job.state == JobState.INVOKING and "did not answer" in job.message
    cloud.wait_idle()
    ws.jobs.LOOK_EVERY = 0.0
    (done,) = finish_all(ws, cloud)
    assert done.state == JobState.COMPLETED, done.message
    assert cloud.cloud.emulator.invocations == {job.inference_id: 1}


def test_a_batch_killed_mid_send_is_billed_once_per_job(open_services, cloud, dirs, tmp_path):
    """Kill the CLI while it sends a 30-prompt batch, run `jobs`, then let every job finish: 30 invocations."""
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("".join(f"boat {n}\n" for n in range(30)), encoding="utf-8")
    args = ["--endpoint-url", cloud.endpoint_url, "--region", cloud.region]
    emulator = cloud.cloud.emulator
    emulator.answer_seconds = 0.1  # AWS's round trip: a kill within it leaves jobs accepted but not noted
    batch = subprocess.Popen(
        [sys.executable, "-m", "app", *args, "batch", str(prompts), "--size", "64x64"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while sum(emulator.invocations.values()) < 10 and time.monotonic() < deadline and batch.poll() is None:
            time.sleep(0.005)  # killed as the tenth invocation arrives, whatever the machine's speed
    finally:
        batch.kill()
        batch.wait()
    sent = sum(emulator.invocations.values())
    assert 0 < sent < 30, "the kill came too late or too early to test anything"

    err = io.StringIO()
    assert main([*args, "jobs"], stdout=io.StringIO(), stderr=err) == 0
    said = err.getvalue()
    assert "that were never sent" in said or "that was never sent" in said, said

    now = [datetime.now(UTC)]
    ws = open_services(clock=lambda: now[0])
    ws.jobs.LOOK_EVERY = 0.0
    for _ in range(3):
        ws.tracker.step()
        cloud.wait_idle()
    waiting = [job for job in ws.library.jobs() if job.state == JobState.INVOKING]
    assert all(emulator.invocations[job.inference_id] == 0 for job in waiting)  # none of those arrived
    now[0] += ws.jobs.look_window() + timedelta(seconds=1)  # after that, none ever will: send them
    jobs = finish_all(ws, cloud)

    assert len(jobs) == 30 and {job.state for job in jobs} == {JobState.COMPLETED}
    assert {job.inference_id: emulator.invocations[job.inference_id] for job in jobs} == {
        job.inference_id: 1 for job in jobs
    }


def test_a_job_an_older_app_left_uploading_is_looked_for_not_sent_again(open_services, cloud, dirs):
    """Before version 3 a job stayed 'uploading' until InvokeEndpointAsync answered: it may have been accepted."""
    first = open_services()
    job = first.jobs.submit(REQUEST)  # accepted; then, as that app crashed before noting it:
    first.close()
    with sqlite3.connect(dirs.data_dir / DATABASE_NAME) as db:
        db.execute("UPDATE jobs SET state = 'uploading'")
        db.execute("ALTER TABLE jobs DROP COLUMN sent_at")
        db.execute("ALTER TABLE jobs DROP COLUMN lease_owner")  # added by version 4
        db.execute("ALTER TABLE jobs DROP COLUMN lease_until")
        db.execute("DROP INDEX jobs_by_parent")  # these by version 5
        for column in ("family", "operation", "parent_image"):
            db.execute(f"ALTER TABLE jobs DROP COLUMN {column}")
        db.execute("DROP TABLE job_bodies")
        db.execute("PRAGMA user_version = 2")
    db.close()
    cloud.wait_idle()

    second = open_services()
    assert second.library.get_job(job.inference_id).state == JobState.INVOKING
    (done,) = finish_all(second, cloud)
    assert done.state == JobState.COMPLETED, done.message
    assert cloud.cloud.emulator.invocations == {job.inference_id: 1}


def test_a_throttled_send_is_busy_not_offline_and_goes_out_once_later(open_services, cloud):
    ws = open_services()
    said = []
    ws.tracker.on_status = lambda status: said.append(status.message)
    cloud.cloud.emulator.throttle_next = 1  # AWS answers: over the request rate, nothing run

    job = ws.jobs.submit({"prompt": "a boat", "width": 64, "height": 64})

    assert (
        job.state == JobState.UPLOADING
        and job.message == "AWS is busy (ThrottlingException): it will be sent again shortly."
    )
    ws.tracker.step()
    assert not any(text.startswith("Offline") for text in said), said
    (done,) = finish_all(ws, cloud)
    assert done.state == JobState.COMPLETED and cloud.cloud.emulator.invocations == {job.inference_id: 1}

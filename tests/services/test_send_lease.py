"""Two apps on one library (the GUI resuming while the CLI runs `batch` or `jobs`) send each job once.

Each app claims a job in its own memory; the library's send lease keeps the other app off it. On AWS a job
sent twice is a GPU run billed twice.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest
from finishing import finish_all

from app.services.library.store import Library
from app.services.models import Job, JobState
from contract import GenerationRequest, new_inference_id

PAUSE_LIMIT = 60  # seconds a paused upload waits at most, so a broken test ends instead of hanging


def test_a_job_one_app_is_sending_is_not_sent_by_another_app_resuming(open_services, cloud):
    """The first app's uploads of its requests stall; meanwhile the second app resumes the same library's jobs."""
    first, second = open_services(), open_services()
    count = 3
    paused, go = threading.Semaphore(0), threading.Event()

    def stall_request_upload(request, **kwargs):
        if "/requests/" in request.url:
            paused.release()
            go.wait(PAUSE_LIMIT)

    first.connection.s3.meta.events.register("before-send.s3.PutObject", stall_request_upload)
    requests = [GenerationRequest(f"a boat {n}", seed=n, width=64, height=64) for n in range(count)]
    sent: list[list[Job]] = []
    sender = threading.Thread(target=lambda: sent.append(first.jobs.submit_many(requests)))
    sender.start()
    try:
        for _ in range(count):
            assert paused.acquire(timeout=PAUSE_LIMIT), "the first app's uploads never started"
        resumed = second.jobs.resume()  # it sees them 'uploading', leased by the first app
        said = second.jobs.take_notice()
    finally:
        go.set()
        sender.join(PAUSE_LIMIT)
    assert not sender.is_alive()

    (jobs,) = sent
    cloud.wait_idle()
    done = finish_all(first, cloud)
    assert cloud.cloud.emulator.invocations == {job.inference_id: 1 for job in jobs}
    assert {job.state for job in done} == {JobState.COMPLETED}
    assert {job.state for job in jobs} == {JobState.QUEUED}  # the first app sent them
    assert resumed == [] and "never sent" not in said, said  # left to the app sending them, and not said as resent


@pytest.fixture
def library(tmp_path):
    with Library(tmp_path / "data") as lib:
        yield lib


@pytest.fixture
def job_id(library):
    job = Job(new_inference_id(), GenerationRequest("a lighthouse"), "sandbox")
    library.add_job(job)
    return job.inference_id


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_live_apps_lease_is_refused_to_another_until_given_back(library, job_id):
    now = time.time()
    ours, theirs = f"{os.getpid()}:aaaa", f"{os.getpid()}:bbbb"
    assert library.lease_send(job_id, ours, now, now + 300)
    assert not library.lease_send(job_id, theirs, now + 1, now + 301)
    assert library.lease_send(job_id, ours, now + 2, now + 302)  # its holder may take it again
    library.release_send(job_id, theirs)  # not theirs to give back
    assert not library.lease_send(job_id, theirs, now + 3, now + 303)
    library.release_send(job_id, ours)
    assert library.lease_send(job_id, theirs, now + 4, now + 304)


def test_a_lease_that_ran_out_is_taken(library, job_id):
    now = time.time()
    assert library.lease_send(job_id, f"{os.getpid()}:aaaa", now, now + 300)
    assert library.lease_send(job_id, f"{os.getpid()}:bbbb", now + 301, now + 601)
    assert not library.lease_send(job_id, f"{os.getpid()}:aaaa", now + 302, now + 602)


def test_a_lease_whose_app_is_gone_is_taken(library, job_id):
    now = time.time()
    assert library.lease_send(job_id, f"{_dead_pid()}:aaaa", now, now + 300)
    assert library.lease_send(job_id, f"{os.getpid()}:bbbb", now + 1, now + 301)


def test_a_lease_holds_across_libraries_opened_on_one_file(tmp_path, library, job_id):
    now = time.time()
    with Library(tmp_path / "data") as other:
        assert other.lease_send(job_id, f"{os.getpid()}:aaaa", now, now + 300)
        assert not library.lease_send(job_id, f"{os.getpid()}:bbbb", now, now + 300)
    assert not library.lease_send(new_inference_id(), f"{os.getpid()}:bbbb", now, now + 300)  # an unknown job

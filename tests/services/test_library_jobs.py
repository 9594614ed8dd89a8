"""The library's job records: durable, complete, safe from several threads."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from PIL import Image

from app.services.library.store import Library, request_as_sent
from app.services.models import Job, JobState, Origin
from contract import GenerationRequest, Parameters, new_inference_id

ROOT = Path(__file__).resolve().parents[2]


def make_job(prompt: str = "a lighthouse at dusk", **kwargs) -> Job:
    return Job(new_inference_id(), GenerationRequest(prompt, **kwargs.pop("request", {})), "sandbox", **kwargs)


@pytest.fixture
def library(tmp_path):
    with Library(tmp_path / "data") as lib:
        yield lib


def test_a_recorded_job_survives_a_restart_with_every_field(tmp_path):
    request = GenerationRequest(
        "a lighthouse at dusk, oil painting",
        negative_prompt="blurry",
        width=768,
        height=512,
        num_inference_steps=42,
        guidance_scale=9.5,
        num_images_per_prompt=3,
        seed=1234,
    )
    job = Job(
        new_inference_id(),
        request,
        "studio-eu",
        state=JobState.QUEUED,
        input_location="s3://b/requests/x.json",
        output_location="s3://b/output/x.out",
        failure_location="s3://b/failures/x-error.out",
        message="warming up",
        origin=Origin.REMOTE,
        retry_of="20261125T000000000000Z-aaaaaaaaaaaa",
    )
    first = Library(tmp_path)
    assert first.add_job(job)
    # no close(): a killed app never closes its database
    second = Library(tmp_path)
    restored = second.get_job(job.inference_id)
    assert restored == job
    assert restored.created_at and restored.updated_at
    second.close()
    first.close()


def test_adding_a_known_job_again_changes_nothing(library):
    job = make_job()
    assert library.add_job(job)
    library.update_job(job.inference_id, state=JobState.QUEUED)
    assert not library.add_job(Job(job.inference_id, GenerationRequest("something else"), "elsewhere"))
    assert library.get_job(job.inference_id).state is JobState.QUEUED
    assert library.get_job(job.inference_id).target == "sandbox"


def test_update_job_changes_only_what_is_named(library):
    job = make_job()
    library.add_job(job)
    updated = library.update_job(job.inference_id, state="failed", failure_reason="ModelError: out of memory")
    assert updated.state is JobState.FAILED
    assert updated.failure_reason == "ModelError: out of memory"
    assert updated.request == job.request
    assert updated.updated_at >= job.updated_at
    with pytest.raises(TypeError, match="image_paths"):
        library.update_job(job.inference_id, image_paths=[])
    assert library.update_job("unknown-id", state="failed") is None


def test_jobs_are_listed_newest_first_and_filtered_by_state(library):
    jobs = [make_job(f"prompt {n}") for n in range(5)]
    for job in jobs:
        library.add_job(job)
    library.update_job(jobs[1].inference_id, state=JobState.COMPLETED)
    library.update_job(jobs[3].inference_id, state=JobState.CANCELLED)
    assert [j.inference_id for j in library.jobs()] == [j.inference_id for j in reversed(jobs)]
    assert [j.inference_id for j in library.jobs(limit=2)] == [jobs[4].inference_id, jobs[3].inference_id]
    assert [j.inference_id for j in library.jobs(states=[JobState.COMPLETED])] == [jobs[1].inference_id]
    assert [j.inference_id for j in library.unfinished_jobs()] == [jobs[n].inference_id for n in (0, 2, 4)]
    others = [f"uuid-{n}" for n in range(1200)]
    assert library.known_job_ids([*others, jobs[0].inference_id, jobs[3].inference_id]) == {
        jobs[0].inference_id,
        jobs[3].inference_id,
    }


def test_a_job_from_another_client_keeps_the_request_it_sent(library):
    """Other clients may send sizes or steps our composer would refuse; the record keeps them."""
    job = make_job(origin=Origin.REMOTE)
    library.add_job(job)
    library._writer.execute("UPDATE jobs SET width = 500, num_inference_steps = 1000")
    restored = library.get_job(job.inference_id)
    assert (restored.request.width, restored.request.num_inference_steps) == (500, 1000)
    assert restored.origin is Origin.REMOTE


def test_an_unsafe_inference_id_is_refused(library):
    job = Job("../etc", GenerationRequest("x"), "sandbox")
    with pytest.raises(ValueError, match="inference id"):
        library.add_job(job)
    assert library.jobs() == []


def test_jobs_written_from_several_threads_are_all_kept(library):
    jobs = [make_job(f"thread prompt {n}") for n in range(80)]
    errors: list[BaseException] = []

    def work(chunk: list[Job]) -> None:
        try:
            for job in chunk:
                library.add_job(job)
                library.update_job(job.inference_id, state=JobState.QUEUED, message="queued")
                assert library.get_job(job.inference_id).state is JobState.QUEUED
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(jobs[n::4],)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(library.unfinished_jobs()) == 80
    assert {j.message for j in library.jobs()} == {"queued"}


def test_remove_job_deletes_its_images(library):
    job = make_job()
    library.add_job(job)
    folder = library.images_dir / job.inference_id
    folder.mkdir(parents=True)
    path = folder / "0.png"
    Image.new("RGB", (8, 8)).save(path)
    library.add_image(path, Parameters(prompt="a lighthouse at dusk"), inference_id=job.inference_id)
    assert library.get_job(job.inference_id).image_paths == [str(path.absolute())]
    assert library.image_by_path(path).inference_id == job.inference_id
    library.remove_job(job.inference_id)
    assert library.get_job(job.inference_id) is None
    assert not path.exists()
    assert library.count() == 0


def test_a_job_survives_the_app_being_killed_right_after_add_job(tmp_path):
    """add_job returns only once the record is on disk: a SIGKILL straight after loses nothing."""
    script = (
        "import os, signal, sys\n"
        "from app.services.library.store import Library\n"
        "from app.services.models import Job\n"
        "from contract import GenerationRequest\n"
        "Library(sys.argv[1]).add_job(Job('killed-job', GenerationRequest('a fox'), 'sandbox'))\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=ROOT, timeout=60)
    assert done.returncode == -signal.SIGKILL
    with Library(tmp_path) as library:
        assert library.get_job("killed-job").request.prompt == "a fox"


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        ({"prompt": "a fox", "width": 400, "height": 400, "num_images_per_prompt": 2}, ("a fox", 400, 2, None)),
        ({"prompt": "a fox", "width": 500, "num_inference_steps": 1000}, ("a fox", 500, 1, None)),
        ({"negative_prompt": "blurry", "seed": 7}, ("", 512, 1, 7)),  # no prompt: the endpoint fails it
        ({"prompt": "a fox", "width": "wide", "seed": True, "scheduler": "ddim"}, ("a fox", 512, 1, None)),
    ],
)
def test_requests_from_other_clients_are_kept_as_sent(library, sent, expected):
    job = Job("2f0c7a7e-1b61-4c0e-9d8f-0a1b2c3d4e5f", request_as_sent(sent), "shared", origin=Origin.REMOTE)
    library.add_job(job)
    request = library.get_job(job.inference_id).request
    assert (request.prompt, request.width, request.num_images_per_prompt, request.seed) == expected
    assert request == job.request


def test_two_apps_on_one_data_dir_both_write(tmp_path):
    """The desktop app and the CLI may hold the same library open at once."""
    first, second = Library(tmp_path), Library(tmp_path)
    jobs = [make_job(f"app prompt {n}") for n in range(40)]
    threads = [
        threading.Thread(target=lambda lib=lib, chunk=jobs[n::2]: [lib.add_job(job) for job in chunk])
        for n, lib in enumerate((first, second))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(first.jobs()) == len(second.jobs()) == 40
    first.close()
    second.close()

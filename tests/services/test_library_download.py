"""Downloading a completed job's images from the (local) cloud: once each, atomically, resumable."""

from __future__ import annotations

import io
import threading

import pytest
from PIL import Image, PngImagePlugin

from app.services.errors import UserError
from app.services.library.pngmeta import read_parameters
from app.services.library.store import Library
from app.services.models import Job, JobState, Origin
from contract import (
    CHUNK_KEY,
    GenerationRequest,
    Parameters,
    format_parameters,
    image_key,
    new_inference_id,
    parse_manifest,
)

REQUEST = GenerationRequest(
    "a lighthouse at dusk, oil painting",
    negative_prompt="blurry",
    width=64,
    height=64,
    num_inference_steps=25,
    guidance_scale=8.0,
    num_images_per_prompt=2,
    seed=99,
)


def png_bytes(colour, text: str | None = None, size=(64, 64)) -> bytes:
    info = PngImagePlugin.PngInfo()
    if text is not None:
        info.add_text(CHUNK_KEY, text)
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG", pnginfo=info)
    return out.getvalue()


@pytest.fixture
def library(tmp_path):
    with Library(tmp_path / "data") as lib:
        yield lib


@pytest.fixture
def s3(cloud):
    client = cloud.client("s3")
    client.gets = []
    client.meta.events.register(
        "before-parameter-build.s3.GetObject", lambda params, **_: client.gets.append(params["Key"])
    )
    return client


def completed_job(library, s3, bucket, *, chunk_on_first=True, origin=Origin.LOCAL):
    """A job whose two images and manifest are in the bucket, as extract_image leaves them."""
    job = Job(new_inference_id(), REQUEST, "test", state=JobState.QUEUED, origin=origin)
    library.add_job(job)
    ours = Parameters(
        prompt=REQUEST.prompt,
        negative_prompt="blurry",
        steps=25,
        guidance_scale=8.0,
        seed=99,
        width=64,
        height=64,
        model="Sandbox test pattern (not a model)",
    )
    keys = [image_key(job.inference_id, n) for n in range(2)]
    s3.put_object(
        Bucket=bucket, Key=keys[0], Body=png_bytes((200, 0, 0), format_parameters(ours) if chunk_on_first else None)
    )
    s3.put_object(Bucket=bucket, Key=keys[1], Body=png_bytes((0, 0, 200)))
    manifest = parse_manifest(
        {"inferenceId": job.inference_id, "status": "completed", "imageKeys": keys, "request": REQUEST.to_dict()},
        job.inference_id,
    )
    return job, manifest, ours


def test_images_are_downloaded_indexed_and_thumbnailed(cloud, library, s3):
    bucket = cloud.deployment.bucket
    job, manifest, ours = completed_job(library, s3, bucket)
    records = library.download_job_images(job, s3, bucket, manifest)
    folder = library.images_dir / job.inference_id
    assert [r.path for r in records] == [str(folder / "0.png"), str(folder / "1.png")]
    assert records[0].parameters == ours
    assert records[0].engine == "sandbox"  # shown as a test pattern, never as a model
    from_request = records[1].parameters
    assert (from_request.prompt, from_request.seed, from_request.steps) == (REQUEST.prompt, 99, 25)
    assert read_parameters(folder / "1.png") == from_request  # the chunk is written into the file
    assert all(library.thumbnails.cached_path(r.path).exists() for r in records)
    assert library.get_job(job.inference_id).image_paths == [r.path for r in records]
    assert [r.id for r in library.images_of_job(job.inference_id)] == [r.id for r in records]
    assert library.count("lighthouse") == 2
    assert sorted(p.name for p in folder.iterdir()) == ["0.png", "1.png"]


def test_downloading_again_fetches_nothing_and_adds_no_rows(cloud, library, s3):
    bucket = cloud.deployment.bucket
    job, manifest, _ = completed_job(library, s3, bucket)
    first = library.download_job_images(job, s3, bucket, manifest)
    s3.gets.clear()
    second = library.download_job_images(job, s3, bucket, manifest)
    assert s3.gets == []
    assert [r.id for r in second] == [r.id for r in first]
    assert library.count() == 2


def test_a_download_killed_halfway_resumes(cloud, library, s3):
    bucket = cloud.deployment.bucket
    job, manifest, _ = completed_job(library, s3, bucket)

    class Killed(Exception):
        pass

    def kill_on_second_image(params, **_):
        if params["Key"].endswith("/1.png"):
            raise Killed

    s3.meta.events.register("before-parameter-build.s3.GetObject", kill_on_second_image, unique_id="kill")
    with pytest.raises(Killed):
        library.download_job_images(job, s3, bucket, manifest)
    s3.meta.events.unregister("before-parameter-build.s3.GetObject", unique_id="kill")
    folder = library.images_dir / job.inference_id
    assert sorted(p.name for p in folder.iterdir()) == ["0.png"]  # no half file under a final name
    assert library.count() == 0

    # a kill during a write, on a file system without atomic rename: a half file and a temp file
    whole = (folder / "0.png").read_bytes()
    (folder / "0.png").write_bytes(whole[: len(whole) // 2])
    (folder / ".1.abc123.part").write_bytes(b"partial")
    s3.gets.clear()
    records = library.download_job_images(job, s3, bucket, manifest)
    assert sorted(s3.gets) == sorted(manifest.image_keys)  # the half file is fetched again
    assert sorted(p.name for p in folder.iterdir()) == ["0.png", "1.png"]
    assert (folder / "0.png").read_bytes() == s3.get_object(Bucket=bucket, Key=manifest.image_keys[0])["Body"].read()
    assert len(records) == 2 and library.count() == 2


def test_guidance_form_images_take_their_parameters_from_the_request(cloud, library, s3):
    """The AWS guidance's Lambda names images by prompt words and writes no chunk and no status."""
    bucket = cloud.deployment.bucket
    job = Job("2f0c7a7e-1b61-4c0e-9d8f-0a1b2c3d4e5f", REQUEST, "adopted", origin=Origin.REMOTE)
    library.add_job(job)
    key = f"images/{job.inference_id}/a_lighthouse_at_dusk,_oil_1.png"
    s3.put_object(Bucket=bucket, Key=key, Body=png_bytes((0, 120, 0)))
    manifest = parse_manifest(
        {"imageId": job.inference_id, "prompt": REQUEST.prompt, "imageKeys": [key]}, job.inference_id
    )
    (record,) = library.download_job_images(job, s3, bucket, manifest)
    assert record.path.endswith(f"{job.inference_id}/0.png")
    assert record.origin is Origin.REMOTE
    assert (record.parameters.prompt, record.parameters.seed, record.parameters.width) == (REQUEST.prompt, 99, 64)
    assert read_parameters(record.path) == record.parameters


def test_an_object_that_is_not_a_png_is_refused_and_leaves_nothing(cloud, library, s3):
    bucket = cloud.deployment.bucket
    job, manifest, _ = completed_job(library, s3, bucket)
    s3.put_object(Bucket=bucket, Key=manifest.image_keys[1], Body=b"<Error>not an image</Error>")
    with pytest.raises(UserError, match=r"1\.png from the cloud is not a usable PNG"):
        library.download_job_images(job, s3, bucket, manifest)
    assert library.count() == 0
    assert sorted(p.name for p in (library.images_dir / job.inference_id).iterdir()) == ["0.png"]


def test_two_threads_downloading_one_job_fetch_each_image_once(cloud, library, s3):
    bucket = cloud.deployment.bucket
    job, manifest, _ = completed_job(library, s3, bucket)
    results: list = []
    threads = [
        threading.Thread(target=lambda: results.append(library.download_job_images(job, s3, bucket, manifest)))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(s3.gets) == sorted(manifest.image_keys)
    assert [r.id for r in results[0]] == [r.id for r in results[1]]
    assert library.count() == 2


def test_an_unreadable_chunk_is_replaced_by_the_request(cloud, library, s3):
    bucket = cloud.deployment.bucket
    job, manifest, _ = completed_job(library, s3, bucket)
    s3.put_object(Bucket=bucket, Key=manifest.image_keys[0], Body=png_bytes((1, 2, 3), "\x07 not parameters"))
    first, _ = library.download_job_images(job, s3, bucket, manifest)
    assert (first.parameters.prompt, first.parameters.seed) == (REQUEST.prompt, 99)
    assert read_parameters(first.path) == first.parameters

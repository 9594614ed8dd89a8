"""An adopted stack made with the AWS guidance: its objects' shape, no index, jobs from elsewhere, bad manifests."""

from __future__ import annotations

import uuid

import orjson
import pytest
from guidance_stack import (
    guidance_image_name,
    provision_guidance,
    write_guidance_result,
)
from instances import connect, poll_until

from app.services.cloud.adoption import check_candidate, find_candidates
from app.services.jobs.foreign import listing_of
from app.services.library.pngmeta import read_parameters
from app.services.models import JobState, Origin
from contract import MESSAGE_INDEX, parse_manifest


def _adopted(cloud, repo: str = "sd-repo", **options):
    stack = provision_guidance(cloud, repo, **options)
    connection = connect(cloud)
    (candidate,) = [c for c in find_candidates(connection) if c.deployment.name == repo]
    return stack, check_candidate(connection, candidate).target


def _keys(s3, bucket, prefix=""):
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]


def _look_now(ws):
    listing = listing_of(ws.tracker)
    assert listing is not None, "the tracker does not use the full listing on a stack without an index"
    listing.look_now()
    return listing


def test_a_job_sent_to_an_adopted_guidance_stack_comes_back_with_every_parameter(cloud, app_instance):
    stack, target = _adopted(cloud)
    ws = app_instance("studio", target)
    sent = ws.jobs.submit(
        {
            "prompt": "a red fox at dawn in the snow",
            "width": 64,
            "height": 64,
            "seed": 5,
            "num_inference_steps": 15,
            "guidance_scale": 8.0,
        }
    )
    cloud.wait_idle()
    s3 = cloud.client("s3")
    assert _keys(s3, stack.bucket, f"images/{sent.inference_id}/") == [
        f"images/{sent.inference_id}/a_red_fox_at_dawn_0.png",
        f"images/{sent.inference_id}/manifest.json",
    ]
    assert _keys(s3, stack.bucket, MESSAGE_INDEX) == []
    job = poll_until(ws, lambda found: sent.inference_id in found and found[sent.inference_id].state.finished)[
        sent.inference_id
    ]
    assert (job.state, job.origin) == (JobState.COMPLETED, Origin.LOCAL), job.message
    (image,) = ws.library.images_of_job(sent.inference_id)
    params = read_parameters(image.path)  # the guidance's PNG has none: the library wrote the request's
    assert (params.prompt, params.seed, params.steps, params.guidance_scale, params.width) == (
        "a red fox at dawn in the snow",
        5,
        15,
        8.0,
        64,
    )


def test_results_from_elsewhere_are_found_by_a_full_listing_at_a_longer_interval(cloud, app_instance):
    stack, target = _adopted(cloud, lambdas=False)
    ws = app_instance("studio", target)
    assert ws.tracker.poll() == []
    listing = listing_of(ws.tracker)
    assert listing is not None and listing.listings == 1
    theirs = str(uuid.uuid4())
    request = {
        "prompt": "a red fox at noon",
        "width": 32,
        "height": 32,
        "seed": 9,
        "num_inference_steps": 25,
        "num_images_per_prompt": 2,
    }
    keys = write_guidance_result(cloud.client("s3"), stack.bucket, theirs, "a red fox at noon", request, count=2)
    assert keys[0].endswith("/" + guidance_image_name("a red fox at noon", 0)) and keys[0].endswith(
        "a_red_fox_at_noon_0.png"
    )
    assert ws.tracker.poll() == [] and listing.listings == 1  # not due yet: a minute between full listings
    listing.look_now()
    found = poll_until(ws, lambda f: theirs in f and f[theirs].state.finished)
    assert listing.listings == 2 and listing.objects == 1 and listing.requests == 1
    job = found[theirs]
    assert (job.state, job.origin) == (JobState.COMPLETED, Origin.REMOTE), job.message
    images = ws.library.images_of_job(theirs)
    assert [(i.origin, i.parameters.prompt, i.parameters.seed, i.parameters.steps) for i in images] == [
        (Origin.REMOTE, "a red fox at noon", 9, 25)
    ] * 2


def test_a_result_without_its_request_keeps_the_manifests_prompt(cloud, app_instance):
    stack, target = _adopted(cloud, lambdas=False)
    ws = app_instance("studio", target)
    ws.tracker.poll()
    theirs = str(uuid.uuid4())
    write_guidance_result(cloud.client("s3"), stack.bucket, theirs, "a quiet harbour", None)
    _look_now(ws)
    job = poll_until(ws, lambda f: theirs in f and f[theirs].state.finished)[theirs]
    assert job.state == JobState.COMPLETED
    (image,) = ws.library.images_of_job(theirs)
    assert image.parameters.prompt == "a quiet harbour" and image.origin == Origin.REMOTE


UNTRUSTED = {
    "no-image-keys": (lambda i: {"imageId": i, "prompt": "a red fox"}, "lists no imageKeys"),
    "another-job": (
        lambda i: {"imageId": i, "prompt": "a red fox", "imageKeys": [f"images/{uuid.uuid4()}/a_red_fox_0.png"]},
        "points outside",
    ),
    "dot-dot": (
        lambda i: {"imageId": i, "prompt": "a red fox", "imageKeys": [f"images/{i}/../../requests/secret.png"]},
        "points outside",
    ),
    "another-prefix": (
        lambda i: {"imageId": i, "prompt": "a red fox", "imageKeys": ["requests/x.json"]},
        "points outside",
    ),
}


def test_a_manifest_that_cannot_be_trusted_fails_the_job_and_downloads_nothing(cloud, app_instance):
    stack, target = _adopted(cloud, lambdas=False)
    ws = app_instance("studio", target)
    ws.tracker.poll()
    s3 = cloud.client("s3")
    expected = {}
    for manifest, reason in UNTRUSTED.values():
        theirs = str(uuid.uuid4())
        write_guidance_result(s3, stack.bucket, theirs, "a red fox", {"prompt": "a red fox"}, manifest=manifest(theirs))
        with pytest.raises(ValueError, match=reason):
            parse_manifest(
                s3.get_object(Bucket=stack.bucket, Key=f"images/{theirs}/manifest.json")["Body"].read(), theirs
            )
        expected[theirs] = reason
    _look_now(ws)
    found = poll_until(ws, lambda f: all(i in f and f[i].state.finished for i in expected))
    for theirs, reason in expected.items():
        assert found[theirs].state == JobState.FAILED and reason in found[theirs].message
    assert ws.library.images() == []
    assert not any(p.is_file() for p in ws.library.data_dir.rglob("*.png"))


UNSAFE_IDS = ["..", "x" * 65, "a\x01b", "", "nested/id", "sp ace"]


def test_messages_with_unsafe_ids_are_ignored(cloud, app_instance):
    stack, target = _adopted(cloud, lambdas=False)
    ws = app_instance("studio", target)
    ws.tracker.poll()
    s3 = cloud.client("s3")
    for bad in UNSAFE_IDS:
        s3.put_object(
            Bucket=stack.bucket,
            Key=f"messages/{bad}.json",
            Body=orjson.dumps({"inferenceId": bad, "invocationStatus": "Completed"}),
        )
    good = str(uuid.uuid4())
    write_guidance_result(s3, stack.bucket, good, "a red fox", {"prompt": "a red fox"})
    listing = _look_now(ws)
    found = poll_until(ws, lambda f: good in f and f[good].state.finished)
    assert listing.objects == len(UNSAFE_IDS) + 1
    assert set(found) == {good}
    assert [j.inference_id for j in ws.library.jobs()] == [good]

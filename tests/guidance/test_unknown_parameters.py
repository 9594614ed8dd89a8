"""A job from elsewhere whose request is lost and whose PNG carries nothing: only what is known is kept."""

from __future__ import annotations

import uuid

import pytest
from guidance_stack import provision_guidance, write_guidance_result
from instances import connect, poll_until

from app.cli import job_json
from app.services.cloud.adoption import check_candidate, find_candidates
from app.services.jobs.foreign import listing_of
from app.services.library.pngmeta import read_parameters
from app.services.library.store import Library
from app.services.models import JobState, Origin
from contract import Parameters

PROMPT = "a quiet harbour"
CASES = {
    # the request object: None (gone), bytes (unreadable) or a dict; the manifest's prompt; what the PNG then says
    # (the size is the image's own, 32x32)
    "request-gone": (None, PROMPT, Parameters(prompt=PROMPT, width=32, height=32)),
    "request-unreadable": (b"{not json", PROMPT, Parameters(prompt=PROMPT, width=32, height=32)),
    "request-partial": (
        {"prompt": PROMPT, "negative_prompt": "boats", "num_inference_steps": 20},
        PROMPT,
        Parameters(prompt=PROMPT, negative_prompt="boats", steps=20, width=32, height=32),
    ),
    "nothing-known": (None, None, None),
}


@pytest.mark.parametrize("case", CASES)
def test_parameters_nobody_sent_are_never_written_into_the_image(cloud, app_instance, case):
    request, prompt, expected = CASES[case]
    stack = provision_guidance(cloud, lambdas=False)
    connection = connect(cloud)
    (candidate,) = [c for c in find_candidates(connection) if c.deployment.name == stack.repo]
    ws = app_instance("studio", check_candidate(connection, candidate).target)
    ws.tracker.poll()
    s3, theirs = cloud.client("s3"), str(uuid.uuid4())
    keys = write_guidance_result(
        s3, stack.bucket, theirs, prompt or "x", request if isinstance(request, dict) else None
    )
    if isinstance(request, bytes):
        s3.put_object(Bucket=stack.bucket, Key=f"requests/{theirs}-input.json", Body=request)
    if prompt is None:
        write_guidance_result(s3, stack.bucket, theirs, "x", None, manifest={"imageId": theirs, "imageKeys": keys})
    listing_of(ws.tracker).look_now()
    job = poll_until(ws, lambda found: theirs in found and found[theirs].state.finished)[theirs]
    assert (job.state, job.origin) == (JobState.COMPLETED, Origin.REMOTE), job.message
    (image,) = ws.library.images_of_job(theirs)
    assert read_parameters(image.path) == expected  # no Steps 30, CFG scale 7.5 or 512x512 made up
    assert image.parameters == (expected or Parameters())
    assert image.engine is None
    with Library(ws.library.data_dir) as reopened:  # still unknown after a restart, still shown
        again = reopened.get_job(theirs)
        assert {"guidance_scale", "width", "height"} <= again.unknown_fields
        assert again.request.guidance_scale == 7.5 and again.request.prompt == (
            prompt if isinstance(request, dict) else ""
        )
        assert not {"guidance_scale", "width"} & set(
            job_json(again)["request"]
        )  # `jobs --json` says only what is known


def test_the_job_queue_shows_only_the_settings_that_are_known(qtbot):
    from PySide6.QtCore import Qt

    from app.services.models import Job
    from app.ui.jobs.model import JobModel, settings_parts
    from contract import GenerationRequest, new_inference_id

    unknown = frozenset({"width", "height", "num_inference_steps", "guidance_scale", "num_images_per_prompt"})
    theirs = Job(
        new_inference_id(),
        GenerationRequest(PROMPT),
        "team",
        JobState.QUEUED,
        origin=Origin.REMOTE,
        unknown_fields=unknown,
    )
    ours = Job(new_inference_id(), GenerationRequest(PROMPT, num_inference_steps=20), "team", JobState.QUEUED)
    model = JobModel()
    model.set_jobs([theirs, ours])
    tips = [model.index(row).data(Qt.ItemDataRole.ToolTipRole) for row in range(2)]
    assert "512×512" not in tips[0] and "30 steps" not in tips[0] and "guidance" not in tips[0]
    assert "512×512 · 20 steps · guidance 7.5 · seed random · 1 image" in tips[1]
    assert list(settings_parts(theirs)) == ["seed"]
    assert theirs.known_request() == {"prompt": PROMPT, "negative_prompt": ""}  # what "Use these settings" restores

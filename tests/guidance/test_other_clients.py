"""Jobs we did not send: a plain boto3 script (no InferenceId, no Accept), and a team of two installations."""

from __future__ import annotations

import orjson
import pytest
from botocore.exceptions import ClientError, ParamValidationError
from instances import poll_until

from app.services.library.pngmeta import read_parameters
from app.services.models import JobState, Origin
from contract import (
    MESSAGES,
    NotificationError,
    check_inference_id,
    parse_notification,
    request_key,
)


def _script_submit(cloud, name: str, request: dict, **extra) -> dict:
    """What the AWS guidance's script does: upload requests/<file>.json, then invoke with four fields only."""
    bucket = cloud.deployment.bucket
    cloud.client("s3").put_object(Bucket=bucket, Key=f"requests/{name}", Body=orjson.dumps(request))
    return cloud.client("sagemaker-runtime").invoke_endpoint_async(
        EndpointName=cloud.deployment.endpoint_name,
        InputLocation=f"s3://{bucket}/requests/{name}",
        ContentType="application/json",
        InvocationTimeoutSeconds=3600,
        **extra,
    )


def _finished(*ids):
    return lambda found: all(i in found and found[i].state.finished for i in ids)


def test_a_plain_boto3_submission_ends_as_a_library_entry_with_its_parameters(cloud, app_instance):
    ws = app_instance("studio", _target(cloud))
    ws.tracker.poll()
    request = {
        "prompt": "a lighthouse in fog",
        "negative_prompt": "people",
        "width": 400,
        "height": 400,
        "num_images_per_prompt": 2,
        "num_inference_steps": 20,
        "guidance_scale": 6.5,
    }
    reply = _script_submit(cloud, "input.json", request)
    inference_id = reply["InferenceId"]
    check_inference_id(inference_id)
    assert len(inference_id) == 36 and inference_id.count("-") == 4  # a UUID that AWS chose
    cloud.wait_idle()
    job = poll_until(ws, _finished(inference_id))[inference_id]
    assert (job.state, job.origin) == (JobState.COMPLETED, Origin.REMOTE), job.message
    assert job.request.prompt == "a lighthouse in fog" and job.request.seed is None
    images = ws.library.images_of_job(inference_id)
    assert [(i.width, i.height, i.origin) for i in images] == [(400, 400, Origin.REMOTE)] * 2
    params = read_parameters(images[0].path)
    assert (params.prompt, params.negative_prompt, params.steps, params.guidance_scale) == (
        "a lighthouse in fog",
        "people",
        20,
        6.5,
    )


def test_a_request_the_model_cannot_serve_fails_with_sagemakers_reason(cloud, app_instance):
    ws = app_instance("studio", _target(cloud))
    ws.tracker.poll()
    reply = _script_submit(cloud, "no-prompt.json", {"width": 64, "height": 64})
    cloud.wait_idle()
    note = parse_notification(
        cloud.client("s3")
        .get_object(Bucket=cloud.deployment.bucket, Key=f"{MESSAGES}{reply['InferenceId']}.json")["Body"]
        .read()
    )
    assert note.failed and note.failure_reason
    job = poll_until(ws, _finished(reply["InferenceId"]))[reply["InferenceId"]]
    assert job.state == JobState.FAILED and job.origin == Origin.REMOTE
    assert note.failure_reason in job.failure_reason


def test_a_team_of_two_installations_sees_each_others_results_marked_remote(cloud, app_instance):
    target = _target(cloud)
    anna, ben = app_instance("anna", target), app_instance("ben", target)
    for ws in (anna, ben):
        ws.tracker.poll()
    annas = anna.jobs.submit({"prompt": "a red fox", "width": 64, "height": 64, "seed": 1})
    bens = ben.jobs.submit({"prompt": "a blue whale", "width": 64, "height": 64, "seed": 2, "num_images_per_prompt": 2})
    cloud.wait_idle()
    both = _finished(annas.inference_id, bens.inference_id)
    for ws in (anna, ben):
        poll_until(ws, both)
    for ws, own, other in ((anna, annas, bens), (ben, bens, annas)):
        mine, theirs = ws.library.get_job(own.inference_id), ws.library.get_job(other.inference_id)
        assert (mine.origin, mine.state) == (Origin.LOCAL, JobState.COMPLETED)
        assert (theirs.origin, theirs.state) == (Origin.REMOTE, JobState.COMPLETED)
        assert theirs.request.prompt == other.request.prompt and theirs.request.seed == other.request.seed
    assert {(i.parameters.prompt, i.origin) for i in anna.library.images()} == {
        ("a red fox", Origin.LOCAL),
        ("a blue whale", Origin.REMOTE),
    }
    assert {(i.parameters.prompt, i.origin) for i in ben.library.images()} == {
        ("a red fox", Origin.REMOTE),
        ("a blue whale", Origin.LOCAL),
    }
    assert anna.library.data_dir != ben.library.data_dir
    assert len(anna.library.images()) == len(ben.library.images()) == 3


def test_a_job_from_elsewhere_whose_request_is_gone_takes_its_parameters_from_the_png(cloud, app_instance):
    target = _target(cloud)
    anna, ben = app_instance("anna", target), app_instance("ben", target)
    ben.tracker.poll()
    sent = anna.jobs.submit({"prompt": "an old map", "width": 64, "height": 64, "seed": 77, "num_inference_steps": 12})
    cloud.wait_idle()
    cloud.client("s3").delete_object(Bucket=target.bucket, Key=request_key(sent.inference_id))
    job = poll_until(ben, _finished(sent.inference_id))[sent.inference_id]
    assert job.state == JobState.COMPLETED and job.origin == Origin.REMOTE
    (image,) = ben.library.images_of_job(sent.inference_id)
    assert (image.parameters.prompt, image.parameters.seed, image.parameters.steps) == ("an old map", 77, 12)


@pytest.mark.parametrize("bad", ["x" * 65, "tab\there", "bell\x07"], ids=["65-chars", "tab", "control"])
def test_the_endpoint_refuses_an_inference_id_sagemaker_would_refuse(cloud, bad):
    with pytest.raises(ClientError, match="inferenceId"):
        _script_submit(cloud, "r.json", {"prompt": "x"}, InferenceId=bad)


def test_an_empty_inference_id_is_refused_before_sending():
    with pytest.raises(ParamValidationError):
        import boto3

        boto3.client("sagemaker-runtime", region_name="us-east-1").invoke_endpoint_async(
            EndpointName="e", InputLocation="s3://b/k", InferenceId=""
        )


@pytest.mark.parametrize("bad", ["a/b", "..", "."], ids=["slash", "dot-dot", "dot"])
def test_an_id_sagemaker_accepts_but_no_key_can_hold_leaves_nothing_behind(cloud, app_instance, bad):
    """SageMaker takes these ids; our Lambdas refuse them (logged), so nothing is stored and nothing is tracked."""
    ws = app_instance("studio", _target(cloud))
    ws.tracker.poll()
    _script_submit(cloud, "odd.json", {"prompt": "odd", "width": 64, "height": 64}, InferenceId=bad)
    cloud.wait_idle()
    keys = [o["Key"] for o in cloud.client("s3").list_objects_v2(Bucket=cloud.deployment.bucket).get("Contents", [])]
    assert [k for k in keys if not k.startswith(("requests/", "output/"))] == []
    assert ws.tracker.poll() == [] and ws.library.jobs() == []


@pytest.mark.parametrize("bad", ["", "a\x00b", "line\nbreak", "x" * 65, "a/b", ".."])
def test_a_notification_with_an_unsafe_id_is_refused_with_a_reason(bad):
    with pytest.raises(NotificationError, match="inference id"):
        parse_notification({"inferenceId": bad, "invocationStatus": "Completed"})


def _target(cloud):
    from instances import connect

    from app.services.cloud.targets import load_target

    return load_target(connect(cloud), cloud.deployment.name)

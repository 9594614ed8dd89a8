"""Every bad input ends the way AWS ends it: an error response, or a Failed notification."""

from __future__ import annotations

import botocore.exceptions
import pytest

from app.services.local_cloud import SandboxEngine
from contract import S3Location, new_inference_id

GOOD = {"prompt": "a quiet harbour", "width": 64, "height": 64, "seed": 3}


def _exists(cloud, uri: str) -> bool:
    location = S3Location.parse(uri)
    listed = cloud.client("s3").list_objects_v2(Bucket=location.bucket, Prefix=location.key)
    return any(item["Key"] == location.key for item in listed.get("Contents", []))


def _failure_text(cloud, uri: str) -> str:
    location = S3Location.parse(uri)
    return cloud.client("s3").get_object(Bucket=location.bucket, Key=location.key)["Body"].read().decode()


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"width": 64, "height": 64}, "prompt"),
        ({**GOOD, "width": 500}, "width"),
        ({**GOOD, "num_inference_steps": 0}, "num_inference_steps"),
        ({**GOOD, "seed": -1}, "seed"),
        ({**GOOD, "style": "anime"}, "style"),
        (b"{not json", "not valid JSON"),
        (b'{"prompt": "' + b"x" * 70_000 + b'"}', "larger than"),
    ],
    ids=["missing-prompt", "width-500", "steps-0", "seed-minus-1", "unknown-field", "not-json", "oversize"],
)
def test_a_request_the_model_cannot_serve_fails_with_a_reason(cloud, inbox, submit, body, named):
    response = submit(body)
    cloud.wait_idle()

    note = inbox.by_id(response["InferenceId"])
    assert note.failed
    assert named in note.failure_reason
    assert note.failure_location == response["FailureLocation"]
    assert named in _failure_text(cloud, response["FailureLocation"])
    assert not _exists(cloud, response["OutputLocation"])


def test_a_missing_input_object_fails_with_a_reason(cloud, inbox):
    runtime = cloud.client("sagemaker-runtime")
    response = runtime.invoke_endpoint_async(
        EndpointName=cloud.deployment.endpoint_name,
        InputLocation=f"s3://{cloud.deployment.bucket}/requests/nobody-wrote-this.json",
        ContentType="application/json",
    )
    cloud.wait_idle()

    note = inbox.by_id(response["InferenceId"])
    # The endpoint's role may list the bucket only under given prefixes, so S3 answers the missing key with 403.
    assert note.failed and "nobody-wrote-this.json" in note.failure_reason and "AccessDenied" in note.failure_reason


@pytest.mark.parametrize(
    ("invoke", "reason"),
    [({"Accept": "image/png"}, "Accept"), ({"ContentType": "text/csv"}, "content type")],
)
def test_an_unsupported_accept_or_content_type_fails(cloud, inbox, submit, invoke, reason):
    response = submit(GOOD, **invoke)
    cloud.wait_idle()

    note = inbox.by_id(response["InferenceId"])
    assert note.failed and reason in note.failure_reason


class Crash:
    name = "crash"

    def render(self, request):
        raise RuntimeError("CUDA out of memory")


def test_an_engine_crash_fails_the_job_and_the_endpoint_keeps_serving(cloud, inbox, submit):
    cloud.cloud.engine = Crash()
    crashed = submit(GOOD)
    cloud.wait_idle()
    cloud.cloud.engine = SandboxEngine()
    served = submit(GOOD)
    cloud.wait_idle()

    assert "CUDA out of memory" in inbox.by_id(crashed["InferenceId"]).failure_reason
    assert inbox.by_id(served["InferenceId"]).completed


def test_an_unknown_endpoint_gets_the_error_aws_gives(cloud, submit):
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        submit(GOOD, endpoint="no-such-endpoint")
    error = caught.value.response["Error"]
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Code"] == "ValidationError"
    assert error["Message"] == f"Endpoint no-such-endpoint of account {cloud.cloud.account_id} not found."


@pytest.mark.parametrize(
    ("invoke", "member"),
    [
        ({"InvocationTimeoutSeconds": 3601}, "invocationTimeoutSeconds"),
        ({"RequestTTLSeconds": 21601}, "requestTTLSeconds"),
        ({"RequestTTLSeconds": 5}, "requestTTLSeconds"),
        ({"InferenceId": "x" * 65}, "inferenceId"),
    ],
)
def test_out_of_range_headers_are_refused_like_aws(cloud, submit, invoke, member):
    # botocore checks only minimums itself; turn that off so the server's own check is seen.
    runtime = cloud.client("sagemaker-runtime", config=botocore.config.Config(parameter_validation=False))
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        runtime.invoke_endpoint_async(
            EndpointName=cloud.deployment.endpoint_name,
            InputLocation=f"s3://{cloud.deployment.bucket}/requests/{new_inference_id()}.json",
            **invoke,
        )
    assert caught.value.response["Error"]["Code"] == "ValidationError"
    assert member in caught.value.response["Error"]["Message"]


def test_an_invocation_without_input_is_refused(cloud):
    runtime = cloud.client("sagemaker-runtime")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        runtime.invoke_endpoint_async(EndpointName=cloud.deployment.endpoint_name)
    assert caught.value.response["Error"]["Code"] == "ValidationError"


class NotImages:
    name = "not-images"

    def render(self, request):
        return ["not an image"]


def test_an_engine_output_that_cannot_be_encoded_fails_the_job_instead_of_leaving_it_waiting(cloud, inbox, submit):
    cloud.cloud.engine = NotImages()
    response = submit(GOOD)
    cloud.wait_idle()
    cloud.cloud.engine = SandboxEngine()

    note = inbox.by_id(response["InferenceId"])
    assert note.failed and "Received server error (500)" in note.failure_reason

"""Bad input, table-driven: each case ends in a message that names what is wrong, and nothing is lost.

PNG imports are covered by the library's own tests (tests/services/test_library*.py, test_pngmeta.py).
"""

from __future__ import annotations

import math
import re

import orjson
import pytest
from botocore.awsrequest import AWSResponse
from botocore.stub import Stubber

from app.services.cloud.aws import Connection, client_config
from app.services.cloud.credentials import CredentialSource, check_identity, make_session, store_key_pair
from app.services.cloud.targets import Target, check_target, load_target
from app.services.errors import UserError
from app.services.jobs.service import JobService
from app.services.library.store import Library
from app.services.models import JobState
from app.services.session import Session
from contract import ENDPOINT_PARAM, image_key, manifest_key, ssm_name

REQUEST_CASES = {
    "empty prompt": ({"prompt": ""}, r"Prompt \(prompt\) must have 1 to 2000 characters"),
    "blank prompt": ({"prompt": "   "}, r"Prompt \(prompt\) must have 1 to 2000"),
    "10k-char prompt": ({"prompt": "x" * 10_000}, r"Prompt \(prompt\) has 10000 characters; at most 2000"),
    "10k-char negative": (
        {"prompt": "a", "negative_prompt": "x" * 10_000},
        r"Negative prompt \(negative_prompt\) has 10000",
    ),
    "prompt not text": ({"prompt": 42}, r"Prompt \(prompt\) must be text"),
    "missing prompt": ({"negative_prompt": "blurry"}, r"Prompt \(prompt\) is required"),
    "width 500": ({"prompt": "a", "width": 500}, r"Width \(width\) is 500; allowed: a multiple of 8 from 64 to 2048"),
    "width 0": ({"prompt": "a", "width": 0}, r"Width \(width\) is 0"),
    "height 4096": ({"prompt": "a", "height": 4096}, r"Height \(height\) is 4096; allowed: a multiple of 8"),
    "height as text": ({"prompt": "a", "height": "512"}, r"Height \(height\) must be a number"),
    "steps 0": (
        {"prompt": "a", "num_inference_steps": 0},
        r"Steps \(num_inference_steps\) is 0; allowed: a whole number 1 to 150",
    ),
    "steps 1000": ({"prompt": "a", "num_inference_steps": 1000}, r"Steps \(num_inference_steps\) is 1000"),
    "steps 2.5": ({"prompt": "a", "num_inference_steps": 2.5}, r"Steps \(num_inference_steps\) must be a whole number"),
    "steps true": ({"prompt": "a", "num_inference_steps": True}, r"Steps \(num_inference_steps\) must be a number"),
    "guidance -1": (
        {"prompt": "a", "guidance_scale": -1},
        r"Guidance scale \(guidance_scale\) is -1; allowed: 0 to 30",
    ),
    "guidance NaN": (
        {"prompt": "a", "guidance_scale": math.nan},
        r"Guidance scale \(guidance_scale\) must be a finite number",
    ),
    "guidance infinite": (
        {"prompt": "a", "guidance_scale": math.inf},
        r"Guidance scale \(guidance_scale\) must be a finite",
    ),
    "guidance 31": ({"prompt": "a", "guidance_scale": 31}, r"Guidance scale \(guidance_scale\) is 31"),
    "seed -1": ({"prompt": "a", "seed": -1}, r"Seed \(seed\) is -1; allowed: a whole number 0 to 4294967295"),
    "seed 2^32": ({"prompt": "a", "seed": 2**32}, r"Seed \(seed\) is 4294967296"),
    "seed 1.5": ({"prompt": "a", "seed": 1.5}, r"Seed \(seed\) must be a whole number"),
    "n 0": (
        {"prompt": "a", "num_images_per_prompt": 0},
        r"Images per prompt \(num_images_per_prompt\) is 0; allowed: a whole number 1 to 8",
    ),
    "n 100": ({"prompt": "a", "num_images_per_prompt": 100}, r"Images per prompt \(num_images_per_prompt\) is 100"),
    "unknown field": (
        {"prompt": "a", "sampler": "euler"},
        r"'sampler' is not a request field: allowed: guidance_scale",
    ),
    "not an object": (["a lighthouse"], r"The request must be a JSON object"),
}


@pytest.fixture
def offline_jobs(tmp_path):
    """A JobService whose every network call would fail: validation must come first."""
    connection = Connection(
        make_session(CredentialSource(), "us-east-1"),
        CredentialSource(),
        endpoint_url="http://127.0.0.1:9",
        config=client_config("standard", max_attempts=1, connect_timeout=1),
    )
    library = Library(tmp_path / "data")
    yield JobService(library, connection, Target("t", "us-east-1", "bucket", "endpoint"))
    library.close()


@pytest.mark.parametrize("fields, message", REQUEST_CASES.values(), ids=REQUEST_CASES.keys())
def test_bad_request_fields_are_refused_before_anything_is_recorded_or_sent(offline_jobs, fields, message):
    with pytest.raises(UserError, match=message):
        offline_jobs.submit(fields)
    assert offline_jobs.library.jobs() == []


def _stub_sts(monkeypatch, session, code):
    real = session.client

    def client(name, **kwargs):
        made = real(name, **kwargs)
        stubber = Stubber(made)
        stubber.add_client_error("get_caller_identity", service_error_code=code, http_status_code=403)
        stubber.activate()
        return made

    monkeypatch.setattr(session, "client", client)


def _credentials_case(name, aws_home, monkeypatch):
    """Run one credentials case; returns the UserError it raised."""
    config = aws_home / ".aws" / "config"
    if name in ("wrong key", "wrong secret", "expired session token"):
        # moto's STS accepts any key, so STS's rejections are stubbed (the one stubbed call here).
        source = store_key_pair("work", "AKIAWRONG", "wrong-secret", "old-token")
        session = make_session(source, "us-east-1")
        _stub_sts(
            monkeypatch,
            session,
            {
                "wrong key": "InvalidClientTokenId",
                "wrong secret": "SignatureDoesNotMatch",
                "expired session token": "ExpiredToken",
            }[name],
        )
        check_identity(session, source)
    elif name == "missing profile":
        make_session(CredentialSource("profile", profile="nowhere"))
    elif name == "profile without region":
        config.write_text("[profile noregion]\naws_access_key_id = AKIAX\naws_secret_access_key = y\n")
        source = CredentialSource("profile", profile="noregion")
        check_identity(make_session(source), source)
    elif name == "expired SSO sign-in":
        config.write_text(
            "[profile studio]\nsso_start_url = https://x.awsapps.com/start\nsso_region = us-east-1\n"
            "sso_account_id = 111122223333\nsso_role_name = Designer\nregion = us-east-1\n"
        )
        source = CredentialSource("profile", profile="studio")
        check_identity(make_session(source), source)
    elif name == "keyring unavailable":
        import keyring
        from keyring.backends import fail

        keyring.set_keyring(fail.Keyring())
        store_key_pair("work", "AKIAX", "secret")
    elif name == "key gone from the keyring":
        make_session(CredentialSource("keyring", key_name="deleted"))
    elif name == "empty secret":
        store_key_pair("work", "AKIAX", "  ")
    elif name == "no credentials at all":
        source = CredentialSource()
        check_identity(make_session(source, "us-east-1"), source)
    raise AssertionError(f"{name}: no error")


CREDENTIAL_CASES = {
    "wrong key": "does not know this access key ID",
    "wrong secret": "secret key was rejected",
    "expired session token": "session token has expired",
    "missing profile": "no AWS profile named 'nowhere'",
    "profile without region": "profile 'noregion' name no AWS region",
    "expired SSO sign-in": r"aws sso login --profile studio",
    "keyring unavailable": "never writes secrets to a file.*profile",
    "key gone from the keyring": "'deleted' is not in the keyring",
    "empty secret": "Both the access key ID and the secret access key are needed",
    "no credentials at all": "No AWS credentials were found",
}


@pytest.mark.parametrize("name, message", CREDENTIAL_CASES.items(), ids=CREDENTIAL_CASES.keys())
def test_bad_credentials_get_a_message_that_says_what_to_do(name, message, memory_keyring, aws_home, monkeypatch):
    with pytest.raises(UserError, match=message):
        _credentials_case(name, aws_home, monkeypatch)


def _forbidden(request, **kwargs):
    class Raw:
        def stream(self, **_):
            yield b""

    return AWSResponse(request.url, 403, {}, Raw())


TARGET_CASES = {
    "missing SSM parameter": r"missing SSM parameter /diffusion-desk/test/endpointName",
    "no deployment in the region": r"No Diffusion Desk deployment was found in us-east-1",
    "deployment name with a slash": r"'a/b' is not a deployment name",
    "bucket does not exist": r"bucket 'gone-bucket' .* does not exist",
    "bucket access denied": r"Access to the bucket .* was denied",
    "endpoint not found": r"endpoint 'diffusion-desk-test-endpoint-ml-g4dn-2xlarge' does not exist",
    "real-time endpoint": r"is a real-time endpoint; Diffusion Desk needs an asynchronous one",
}


@pytest.mark.parametrize("name, message", TARGET_CASES.items(), ids=TARGET_CASES.keys())
def test_bad_targets_are_named(name, message, cloud, dirs):
    connection = Connection(
        cloud.session(),
        CredentialSource(),
        region=cloud.region,
        endpoint_url=cloud.endpoint_url,
        config=client_config("standard", max_attempts=1),
    )
    deployment = cloud.deployment
    target = Target("test", cloud.region, deployment.bucket, deployment.endpoint_name, cloud.endpoint_url, "test")
    with pytest.raises(UserError, match=message):
        if name == "missing SSM parameter":
            cloud.client("ssm").delete_parameter(Name=ssm_name("test", ENDPOINT_PARAM))
            load_target(connection, "test")
        elif name == "no deployment in the region":
            cloud.cloud.reset()
            Session.open(dirs, endpoint_url=cloud.endpoint_url, region=cloud.region)
        elif name == "deployment name with a slash":
            load_target(connection, "a/b")
        elif name == "bucket does not exist":
            check_target(connection, Target("test", cloud.region, "gone-bucket", deployment.endpoint_name))
        elif name == "bucket access denied":
            connection.s3.meta.events.register("before-send.s3.HeadBucket", _forbidden)
            check_target(connection, target)
        elif name == "endpoint not found":
            cloud.client("sagemaker").delete_endpoint(EndpointName=deployment.endpoint_name)
            check_target(connection, target)
        elif name == "real-time endpoint":
            sagemaker = cloud.client("sagemaker")
            config = sagemaker.describe_endpoint(EndpointName=deployment.endpoint_name)["EndpointConfigName"]
            variant = sagemaker.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"][0]
            sagemaker.create_endpoint_config(
                EndpointConfigName="realtime",
                ProductionVariants=[
                    {
                        "VariantName": "AllTraffic",
                        "ModelName": variant["ModelName"],
                        "InitialInstanceCount": 1,
                        "InstanceType": "ml.g4dn.2xlarge",
                    }
                ],
            )
            sagemaker.create_endpoint(EndpointName="realtime", EndpointConfigName="realtime")
            check_target(connection, Target("rt", cloud.region, deployment.bucket, "realtime"))


def _png_garbage(results, job):
    results.message(job)
    results.put(image_key(job.inference_id, 0), b"\x89PNG\r\n\x1a\n-- not really")
    results.put(
        manifest_key(job.inference_id),
        orjson.dumps(
            {"inferenceId": job.inference_id, "status": "completed", "imageKeys": [image_key(job.inference_id, 0)]}
        ),
    )


RESULT_CASES = {
    "message not JSON": (
        lambda r, j: r.raw_message(j.inference_id, b"{oops"),
        r"notification could not be read \(the message is not JSON\)",
    ),
    "message unknown status": (
        lambda r, j: r.raw_message(
            j.inference_id, orjson.dumps({"inferenceId": j.inference_id, "invocationStatus": "Paused"})
        ),
        r"unknown invocationStatus 'Paused'",
    ),
    "message without inferenceId": (
        lambda r, j: r.raw_message(j.inference_id, b'{"invocationStatus": "Completed"}'),
        r"has no inferenceId",
    ),
    "message a JSON list": (lambda r, j: r.raw_message(j.inference_id, b"[1, 2]"), r"not a JSON object"),
    "failed with reason and error text": (
        lambda r, j: r.fail(j, "ModelError: out of memory", "Traceback: CUDA OOM"),
        r"Failed: ModelError: out of memory",
    ),
    "failed without a reason": (lambda r, j: r.message(j, "Failed"), r"the endpoint gave no reason"),
    "manifest not JSON": (
        lambda r, j: r.message(j) or r.put(manifest_key(j.inference_id), b"not json"),
        r"manifest of .* is not JSON",
    ),
    "manifest unknown status": (
        lambda r, j: r.message(j) or r.put(manifest_key(j.inference_id), b'{"status": "half-done", "imageKeys": []}'),
        r"unknown status 'half-done'",
    ),
    "manifest failed": (
        lambda r, j: (
            r.message(j)
            or r.put(manifest_key(j.inference_id), b'{"status": "failed", "reason": "the output had no images"}')
        ),
        r"Failed: the output had no images",
    ),
    "manifest lists no images": (
        lambda r, j: r.message(j) or r.put(manifest_key(j.inference_id), b'{"status": "completed", "imageKeys": []}'),
        r"lists no imageKeys",
    ),
    "manifest points outside its folder": (
        lambda r, j: (
            r.message(j)
            or r.put(
                manifest_key(j.inference_id), orjson.dumps({"status": "completed", "imageKeys": ["images/other/0.png"]})
            )
        ),
        r"points outside images/",
    ),
    "manifest points to a missing image": (
        lambda r, j: (
            r.message(j)
            or r.put(
                manifest_key(j.inference_id),
                orjson.dumps({"status": "completed", "imageKeys": [image_key(j.inference_id, 0)]}),
            )
        ),
        r"could not be downloaded \(404",
    ),
    "image is not a PNG": (_png_garbage, r"is not a usable PNG"),
}


@pytest.mark.parametrize("write, message", RESULT_CASES.values(), ids=RESULT_CASES.keys())
def test_bad_notifications_and_manifests_fail_the_job_with_a_reason(write, message, open_services, results):
    ws = open_services()
    job = results.queued(ws)
    write(results, job)
    (changed,) = ws.tracker.poll()
    assert changed.state == JobState.FAILED
    assert re.search(message, changed.message), changed.message
    assert ws.library.get_job(job.inference_id).request == job.request  # the job and its parameters are kept
    assert ws.tracker.online and ws.tracker.poll() == []

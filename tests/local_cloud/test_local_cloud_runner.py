"""The Lambda runner delivers SNS notifications as Lambda events, retries, and records failures."""

from __future__ import annotations

import os
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

import orjson
import pytest

REQUEST = {"prompt": "a lamp", "width": 64, "height": 64, "seed": 5}


def test_a_handler_that_fails_twice_succeeds_on_the_third_attempt(cloud, submit):
    calls = []

    def flaky(event, context):
        calls.append(context.aws_request_id)
        if len(calls) < 3:
            raise ConnectionError("S3 was slow")

    cloud.cloud.register_handler(cloud.deployment.success_topic_arn, flaky)
    submit(REQUEST)
    cloud.wait_idle()

    assert len(calls) == 3 and len(set(calls)) == 3
    assert cloud.cloud.runner.failures == []


def test_a_handler_that_always_fails_is_recorded_and_others_still_run(cloud, inbox, submit):
    def broken(event, context):
        raise ValueError("bad handler")

    cloud.cloud.register_handler(cloud.deployment.success_topic_arn, broken, function_name="broken")
    response = submit(REQUEST)
    cloud.wait_idle()

    [failure] = cloud.cloud.runner.failures
    assert failure.function_name == "broken" and failure.attempts == 3
    assert "bad handler" in failure.error
    assert orjson.loads(failure.message)["inferenceId"] == response["InferenceId"]
    assert inbox.by_id(response["InferenceId"]).completed


def test_a_handler_sees_its_environment_only_while_it_runs(cloud, submit, monkeypatch):
    monkeypatch.delenv("BUCKET_NAME", raising=False)
    seen = []
    cloud.cloud.register_handler(
        cloud.deployment.success_topic_arn,
        lambda event, context: seen.append(os.environ.get("BUCKET_NAME")),
        env={"BUCKET_NAME": cloud.deployment.bucket},
    )
    submit(REQUEST)
    cloud.wait_idle()

    assert seen == [cloud.deployment.bucket]
    assert "BUCKET_NAME" not in os.environ


def test_a_subscription_confirmation_is_confirmed_by_fetching_its_url(cloud):
    fetched = threading.Event()

    class Confirm(BaseHTTPRequestHandler):
        def do_GET(self):
            fetched.set()
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Confirm)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        arn = cloud.cloud.register_handler(cloud.deployment.success_topic_arn, lambda e, c: None)
        url = cloud.client("sns").get_subscription_attributes(SubscriptionArn=arn)["Attributes"]["Endpoint"]
        confirmation = {
            "Type": "SubscriptionConfirmation",
            "TopicArn": cloud.deployment.success_topic_arn,
            "SubscribeURL": f"http://127.0.0.1:{server.server_port}/confirm?Token=abc",
        }
        with urllib.request.urlopen(urllib.request.Request(url, data=orjson.dumps(confirmation))) as response:
            assert response.status == 200
        cloud.wait_idle()
        assert fetched.is_set()
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize("body", [b"not json", b"[]"])
def test_the_runner_refuses_what_is_not_an_sns_message(cloud, body):
    arn = cloud.cloud.register_handler(cloud.deployment.success_topic_arn, lambda e, c: None)
    url = cloud.client("sns").get_subscription_attributes(SubscriptionArn=arn)["Attributes"]["Endpoint"]
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(urllib.request.Request(url, data=body))
    assert caught.value.code == 400


FUNCTION = """
import os

import boto3

s3 = boto3.client("s3")


def lambda_handler(event, context):
    for record in event["Records"]:
        s3.put_object(Bucket=os.environ["BUCKET_NAME"], Key="seen/" + record["Sns"]["MessageId"], Body=b"")
"""


def test_a_lambda_module_is_loaded_with_its_clients_pointed_at_the_local_cloud(cloud, submit, tmp_path):
    from app.services.local_cloud.runner import load_lambda

    path = tmp_path / "lambdas" / "fake_function" / "index.py"
    path.parent.mkdir(parents=True)
    path.write_text(FUNCTION)
    module = load_lambda(
        path, endpoint_url=cloud.endpoint_url, region=cloud.region, client=cloud.cloud.client, tag="test"
    )
    assert module.s3.meta.endpoint_url == cloud.endpoint_url
    cloud.cloud.register_handler(
        cloud.deployment.success_topic_arn, module.lambda_handler, env={"BUCKET_NAME": cloud.deployment.bucket}
    )
    submit(REQUEST)
    cloud.wait_idle()

    listed = cloud.client("s3").list_objects_v2(Bucket=cloud.deployment.bucket, Prefix="seen/")
    assert listed["KeyCount"] == 1
    assert cloud.cloud.runner.failures == []

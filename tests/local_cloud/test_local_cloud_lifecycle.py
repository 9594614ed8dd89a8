"""Starting and stopping the local cloud, in-process and as `python -m app local-cloud`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import boto3
import orjson

from app.services.local_cloud import LocalCloud
from contract import BUCKET_PARAM, ssm_name

ROOT = Path(__file__).resolve().parents[2]


def test_stop_leaves_no_thread_behind():
    before = set(threading.enumerate())
    cloud = LocalCloud().start()
    deployment = cloud.provision("lifecycle", lambdas=False)
    seen = []
    cloud.register_handler(deployment.success_topic_arn, lambda event, context: seen.append(event))
    cloud.client("sagemaker-runtime").invoke_endpoint_async(
        EndpointName=deployment.endpoint_name,
        Body=orjson.dumps({"prompt": "a door", "width": 64, "height": 64}),
        ContentType="application/json",
    )
    cloud.wait_idle()
    cloud.stop()

    assert len(seen) == 1
    left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert left == []


def test_the_command_prints_its_url_serves_and_exits_on_sigterm():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "local-cloud", "--port", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url_line = process.stdout.readline().strip()
        region_line = process.stdout.readline().strip()
        assert url_line.startswith("endpoint_url=http://127.0.0.1:"), process.stderr.read()
        assert region_line == "region=us-east-1"
        endpoint_url = url_line.partition("=")[2]

        ssm = boto3.client("ssm", endpoint_url=endpoint_url, region_name="us-east-1")
        bucket = ssm.get_parameter(Name=ssm_name("sandbox", BUCKET_PARAM))["Parameter"]["Value"]
        assert bucket in [b["Name"] for b in boto3.client("s3", endpoint_url=endpoint_url).list_buckets()["Buckets"]]

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()


def test_provisioning_twice_returns_the_same_deployment(cloud):
    sns = cloud.client("sns")
    before = sns.list_subscriptions()["Subscriptions"]
    again = cloud.cloud.provision("test")

    assert again == cloud.deployment
    assert sns.list_subscriptions()["Subscriptions"] == before  # no handler wired twice


def test_provisioning_again_after_another_cloud_wiped_moto_makes_the_deployment_anew(cloud):
    urllib.request.urlopen(urllib.request.Request(f"{cloud.endpoint_url}/moto-api/reset", method="POST")).read()
    again = cloud.cloud.provision("test")

    # A new stack: the same endpoint name, new physical names for the bucket and topics.
    assert again.endpoint_name == cloud.deployment.endpoint_name and again.bucket != cloud.deployment.bucket
    assert (
        cloud.client("sagemaker").describe_endpoint(EndpointName=again.endpoint_name)["EndpointStatus"] == "InService"
    )
    assert cloud.client("s3").head_bucket(Bucket=again.bucket)

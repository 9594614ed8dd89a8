"""Connect to an existing deployment: candidates in a region, their checks, adopting, the upgrade explanation."""

from __future__ import annotations

import pytest
from guidance_stack import provision_guidance
from instances import connect

from app.services.cloud.adoption import (
    GUIDANCE_ACCEPT,
    accept_for,
    adopt,
    check_candidate,
    find_candidates,
    upgrade_plan,
)
from app.services.errors import UserError
from app.services.settings import AppDirs, load_settings
from contract import ACCEPT_RGB, APP_NAME, GUIDANCE_APP_NAME


@pytest.fixture
def dirs(tmp_path) -> AppDirs:
    return AppDirs(tmp_path / "config", tmp_path / "data").create()


def _candidate(connection, name):
    (found,) = [c for c in find_candidates(connection) if c.deployment.name == name]
    return found


def _stack_state(cloud, bucket):
    """Everything adopting could change: the bucket's keys, the SSM parameters, topics and endpoints."""
    keys = [o["Key"] for o in cloud.client("s3").list_objects_v2(Bucket=bucket).get("Contents", [])]
    params = sorted(
        (p["Name"], p["Value"])
        for p in cloud.client("ssm").describe_parameters().get("Parameters", [])
        for p in [dict(p, Value=cloud.client("ssm").get_parameter(Name=p["Name"])["Parameter"]["Value"])]
    )
    topics = sorted(t["TopicArn"] for t in cloud.client("sns").list_topics()["Topics"])
    endpoints = sorted(e["EndpointName"] for e in cloud.client("sagemaker").list_endpoints()["Endpoints"])
    return keys, params, topics, endpoints


def test_the_region_lists_our_deployments_and_every_guidance_parameter_set(cloud):
    provision_guidance(cloud, "sd-repo", lambdas=False)
    cloud.client("ssm").put_parameter(Name="/simple-gen-ai-service/half-done/bucketName", Value="b", Type="String")
    found = {c.deployment.name: c for c in find_candidates(connect(cloud))}
    assert set(found) == {"test", "sd-repo", "half-done"}
    assert not found["test"].guidance and found["sd-repo"].guidance
    assert found["sd-repo"].label == "sd-repo (made with the AWS guidance)"
    assert "incomplete, missing endpointName" in found["half-done"].label
    assert found["sd-repo"].name != "sd-repo"  # never confused with one of ours of the same name


def test_adopting_a_guidance_stack_checks_it_and_changes_nothing_in_it(cloud, dirs):
    stack = provision_guidance(cloud, "sd-repo")
    connection = connect(cloud)
    before = _stack_state(cloud, stack.bucket)
    result = adopt(connection, dirs, _candidate(connection, "sd-repo"))
    assert _stack_state(cloud, stack.bucket) == before
    target = result.target
    assert (target.app, target.bucket, target.endpoint_name) == (GUIDANCE_APP_NAME, stack.bucket, stack.endpoint_name)
    text = result.describe()
    assert f"s3://{stack.bucket}/output/" in text
    assert f"{stack.success_topic} (2 subscribers)" in text and f"{stack.error_topic} (1 subscriber)" in text
    assert "asynchronous" in text and "full listing of messages/" in text
    settings = load_settings(dirs)
    assert settings.active_target == target.name
    assert settings.targets == [target.to_dict()]


def test_our_own_deployment_can_be_connected_the_same_way(cloud, dirs):
    connection = connect(cloud)
    result = check_candidate(connection, _candidate(connection, "test"))
    assert result.target.app == APP_NAME and result.target.name == "test"
    assert result.warnings == []
    assert "full listing" not in result.describe()


def test_jobs_for_a_guidance_stack_ask_for_the_rgb_arrays_its_lambdas_read(cloud):
    connection = connect(cloud)
    provision_guidance(cloud, "sd-repo", lambdas=False)
    theirs = check_candidate(connection, _candidate(connection, "sd-repo")).target
    ours = check_candidate(connection, _candidate(connection, "test")).target
    assert accept_for(theirs) == GUIDANCE_ACCEPT == "application/json"
    assert accept_for(ours) == ACCEPT_RGB  # issue 13: lossless on our own deployments too


def test_an_endpoint_without_subscribers_is_adopted_with_a_warning(cloud, dirs):
    provision_guidance(cloud, "bare", lambdas=False)
    connection = connect(cloud)
    result = check_candidate(connection, _candidate(connection, "bare"))
    assert [w.subject for w in result.warnings] == ["Success topic", "Error topic"]
    assert "nothing is subscribed" in result.warnings[0].text


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        ({"bucket": "no-such-bucket-anywhere"}, "The bucket 'no-such-bucket-anywhere' of target"),
        ({"endpoint": "no-such-endpoint"}, "The endpoint 'no-such-endpoint' does not exist"),
        ({"realtime": True}, "is a real-time endpoint; Diffusion Desk needs an asynchronous one"),
    ],
    ids=["missing-bucket", "missing-endpoint", "real-time-endpoint"],
)
def test_a_stack_that_cannot_work_is_refused_with_a_clear_message_and_nothing_saved(cloud, dirs, broken, expected):
    stack = provision_guidance(cloud, "broken", lambdas=False, **broken)
    connection = connect(cloud)
    before = _stack_state(cloud, stack.bucket)
    with pytest.raises(UserError, match=expected):
        adopt(connection, dirs, _candidate(connection, "broken"))
    assert not dirs.settings_file.exists()
    assert _stack_state(cloud, stack.bucket) == before


def test_a_parameter_set_without_an_endpoint_name_is_refused(cloud, dirs):
    cloud.client("ssm").put_parameter(
        Name="/simple-gen-ai-service/half-done/bucketName", Value=cloud.deployment.bucket, Type="String"
    )
    connection = connect(cloud)
    with pytest.raises(
        UserError, match="incomplete: missing SSM parameter /simple-gen-ai-service/half-done/endpointName"
    ):
        adopt(connection, dirs, _candidate(connection, "half-done"))
    assert not dirs.settings_file.exists()


def test_an_endpoint_with_no_success_topic_is_refused(cloud, dirs):
    sagemaker = cloud.client("sagemaker")
    config = sagemaker.describe_endpoint(EndpointName=cloud.deployment.endpoint_name)["EndpointConfigName"]
    (variant,) = sagemaker.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"]
    sagemaker.create_endpoint_config(
        EndpointConfigName="silent-config",
        ProductionVariants=[
            {
                "VariantName": "v",
                "ModelName": variant["ModelName"],  # the deployment's own model
                "InitialInstanceCount": 1,
                "InstanceType": "ml.g4dn.2xlarge",
            }
        ],
        AsyncInferenceConfig={"OutputConfig": {"S3OutputPath": f"s3://{cloud.deployment.bucket}/output/"}},
    )
    sagemaker.create_endpoint(EndpointName="silent", EndpointConfigName="silent-config")
    ssm = cloud.client("ssm")
    ssm.put_parameter(Name="/simple-gen-ai-service/silent/bucketName", Value=cloud.deployment.bucket, Type="String")
    ssm.put_parameter(Name="/simple-gen-ai-service/silent/endpointName", Value="silent", Type="String")
    connection = connect(cloud)
    with pytest.raises(UserError, match="sends no success notification"):
        adopt(connection, dirs, _candidate(connection, "silent"))
    assert not dirs.settings_file.exists()


def test_the_upgrade_explains_what_it_would_replace_and_that_it_cannot_yet(cloud):
    connection = connect(cloud)
    provision_guidance(cloud, "sd-repo", lambdas=False)
    target = check_candidate(connection, _candidate(connection, "sd-repo")).target
    plan = upgrade_plan(target)
    text = plan.describe()
    assert not plan.available
    assert "save Lambda" in text and "PNG Lambda" in text and "endpoint configuration" in text
    assert f"the bucket {target.bucket} and everything in it" in text
    assert "cannot upgrade a stack made with the AWS guidance in place" in text

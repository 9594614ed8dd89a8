"""Targets found in SSM: our deployments and the AWS guidance's, checked before use."""

from __future__ import annotations

from dataclasses import replace

from app.services.cloud.aws import Connection
from app.services.cloud.credentials import CredentialSource
from app.services.cloud.targets import Target, check_target, list_deployments, load_target, remember_target
from app.services.session import Session
from app.services.settings import load_settings
from contract import APP_NAME, GUIDANCE_APP_NAME


def _connection(cloud) -> Connection:
    return Connection(cloud.session(), CredentialSource(), region=cloud.region, endpoint_url=cloud.endpoint_url)


def test_deployments_are_listed_from_both_parameter_trees(cloud):
    ssm = cloud.client("ssm")
    ssm.put_parameter(Name="/simple-gen-ai-service/sd-repo/bucketName", Value="their-bucket", Type="String")
    ssm.put_parameter(Name="/simple-gen-ai-service/sd-repo/endpointName", Value="their-endpoint", Type="String")
    ssm.put_parameter(Name="/diffusion-desk/half/bucketName", Value="half-bucket", Type="String")
    found = {(d.app, d.name): d for d in list_deployments(_connection(cloud))}
    assert set(found) == {(APP_NAME, "test"), (APP_NAME, "half"), (GUIDANCE_APP_NAME, "sd-repo")}
    assert found[(GUIDANCE_APP_NAME, "sd-repo")].adopted
    assert found[(GUIDANCE_APP_NAME, "sd-repo")].parameters["endpointName"] == "their-endpoint"
    assert found[(APP_NAME, "half")].missing == ["endpointName"]
    assert found[(APP_NAME, "test")].missing == []


def test_a_target_is_read_from_ssm_and_checked(cloud):
    connection = _connection(cloud)
    target = load_target(connection, "test")
    assert (target.bucket, target.endpoint_name, target.region) == (
        cloud.deployment.bucket,
        cloud.deployment.endpoint_name,
        cloud.region,
    )
    assert target.endpoint_url == cloud.endpoint_url
    state = check_target(connection, target)
    assert state.asynchronous and state.instances == 0


def test_the_saved_active_target_is_used_without_asking_ssm(cloud, dirs):
    target = Target(
        "studio", cloud.region, cloud.deployment.bucket, cloud.deployment.endpoint_name, cloud.endpoint_url, "test"
    )
    remember_target(dirs, Target("studio", "eu-west-1", "old", "old"))
    remember_target(dirs, target, CredentialSource())
    assert len(load_settings(dirs).targets) == 1
    asked = []
    workspace = Session.open(dirs)
    try:
        workspace.connection.client("ssm").meta.events.register("before-send", lambda **kw: asked.append(kw))
        assert workspace.target == replace(target, instance_type="ml.g4dn.2xlarge")  # read from its endpoint config
        assert workspace.connection.endpoint_url == cloud.endpoint_url
        assert asked == []
    finally:
        workspace.close()

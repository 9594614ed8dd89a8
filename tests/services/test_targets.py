"""Targets found in SSM: our deployments and the AWS guidance's, checked before use."""

from __future__ import annotations

from dataclasses import replace

import pytest

from app.services.cloud.aws import Connection, client_config
from app.services.cloud.credentials import CredentialSource
from app.services.cloud.targets import (
    Target,
    check_target,
    list_deployments,
    load_target,
    refreshed_target,
    remember_target,
)
from app.services.errors import UserError
from app.services.session import Session
from app.services.settings import load_settings
from contract import APP_NAME, COMPANION_PARAMS, GUIDANCE_APP_NAME, ssm_name


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


def test_the_saved_active_target_is_used_with_its_models_read_again(cloud, dirs):
    """A target saved before companions existed names none: opening reads the family and companions from SSM
    (the sandbox deploys both companions) and saves them, so the image tools are not told to deploy them."""
    target = Target(
        "studio", cloud.region, cloud.deployment.bucket, cloud.deployment.endpoint_name, cloud.endpoint_url, "test"
    )
    remember_target(dirs, Target("studio", "eu-west-1", "old", "old"))
    remember_target(dirs, target, CredentialSource())
    assert len(load_settings(dirs).targets) == 1
    workspace = Session.open(dirs)
    try:
        assert workspace.target.companions == cloud.deployment.companions and set(cloud.deployment.companions) == {
            "upscale",
            "inpaint",
        }
        assert workspace.target.endpoint_for("upscale") == cloud.deployment.companions["upscale"]
        assert workspace.target == replace(
            target,
            instance_type="ml.g4dn.2xlarge",  # read from its endpoint config
            companions=cloud.deployment.companions,
            companion_types=workspace.target.companion_types,
        )
        assert workspace.connection.endpoint_url == cloud.endpoint_url
    finally:
        workspace.close()
    (saved,) = load_settings(dirs).targets
    assert saved["companions"] == cloud.deployment.companions and saved["family"] == "text-to-image"


def test_a_companion_removed_since_the_target_was_saved_is_gone_when_opened(cloud, dirs):
    remember_target(dirs, load_target(_connection(cloud), "test"), CredentialSource())
    cloud.client("ssm").delete_parameter(Name=ssm_name("test", COMPANION_PARAMS["inpaint"]))
    workspace = Session.open(dirs)
    try:
        assert set(workspace.target.companions) == {"upscale"}
        with pytest.raises(UserError, match="has no Inpainting model"):
            workspace.target.endpoint_for("inpaint")
    finally:
        workspace.close()
    assert set(load_settings(dirs).targets[0]["companions"]) == {"upscale"}


def test_a_saved_target_keeps_its_models_when_ssm_cannot_be_read(cloud):
    saved = load_target(_connection(cloud), "test")
    offline = Connection(
        cloud.session(),
        CredentialSource(),
        region=cloud.region,
        endpoint_url="http://127.0.0.1:9",
        config=client_config("standard", max_attempts=1, connect_timeout=1, read_timeout=1),
    )
    again = refreshed_target(offline, saved)
    assert (again.family, again.companions, again.instance_type) == (
        saved.family,
        saved.companions,
        saved.instance_type,
    )

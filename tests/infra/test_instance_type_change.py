"""Update with a new instance type: CloudFormation must replace the endpoint, never update a scaled variant.

AWS refuses UpdateEndpoint when it changes the instance type of a variant registered with
Application Auto Scaling (SageMaker guide, "Update endpoints that use auto scaling"). No emulator
enforces that, so the update is planned from the two templates and the resource schemas.
"""

from __future__ import annotations

from dataclasses import replace

import aws_cdk as cdk
import pytest
from change_plan import KEEP, MODIFY, REPLACE, in_place_instance_type_changes, plan, references

from contract import ENDPOINT_PARAM, ssm_name
from infra.app import FEATURE_FLAGS, EndpointStage
from infra.config import load_config
from infra.parts.async_endpoint import endpoint_name
from infra.templates import NO_BUNDLING

pytestmark = pytest.mark.xdist_group("synthesis")

CONFIG = load_config()
NEW_TYPE = "ml.g5.2xlarge" if CONFIG.model.instance_type != "ml.g5.2xlarge" else "ml.g6.xlarge"


def _endpoint_template(config) -> dict:
    """The endpoint stack as the pipeline's stage synthesizes it (same construct path, same logical ids)."""
    app = cdk.App(context={**FEATURE_FLAGS, **NO_BUNDLING}, outdir=None)
    stage = EndpointStage(cdk.Stack(app, "Pipeline"), "Deploy", config=config)
    return stage.synth().get_stack_by_name(config.stack_name("endpoint")).template


@pytest.fixture(scope="module")
def templates(synthesis):
    return synthesis.templates["endpoint"], _endpoint_template(
        replace(CONFIG, model=replace(CONFIG.model, instance_type=NEW_TYPE))
    )


def _of_type(template: dict, resource_type: str) -> dict[str, dict]:
    return {key: r for key, r in template["Resources"].items() if r["Type"] == resource_type}


def test_a_new_instance_type_never_updates_a_scaled_variant_in_place(templates):
    old, new = templates
    assert in_place_instance_type_changes(old, new) == []


def test_a_new_instance_type_replaces_the_endpoint_its_scalable_target_and_policies(templates):
    old, new = templates
    actions = plan(old, new)
    for resource_type in (
        "AWS::SageMaker::EndpointConfig",
        "AWS::SageMaker::Endpoint",
        "AWS::ApplicationAutoScaling::ScalableTarget",
        "AWS::ApplicationAutoScaling::ScalingPolicy",
    ):
        kinds = {key: actions[key] for key in _of_type(old, resource_type)}
        assert kinds and set(kinds.values()) == {REPLACE}, (resource_type, kinds)
    (model,) = _of_type(old, "AWS::SageMaker::Model")
    assert actions[model] == KEEP, "the model itself does not change with the instance type"


def test_the_new_endpoint_has_a_new_name_and_the_app_finds_it_through_ssm(templates):
    old, new = templates
    ((old_key, old_endpoint),) = _of_type(old, "AWS::SageMaker::Endpoint").items()
    ((new_key, new_endpoint),) = _of_type(new, "AWS::SageMaker::Endpoint").items()
    stack = CONFIG.stack_name("endpoint")
    assert old_endpoint["Properties"]["EndpointName"] == endpoint_name(stack, CONFIG.model.instance_type)
    assert new_endpoint["Properties"]["EndpointName"] == endpoint_name(stack, NEW_TYPE)
    (param_key,) = [
        key
        for key, r in _of_type(new, "AWS::SSM::Parameter").items()
        if r["Properties"]["Name"] == ssm_name(CONFIG.deployment, ENDPOINT_PARAM)
    ]
    assert new["Resources"][param_key]["Properties"]["Value"] == {"Fn::GetAtt": [new_key, "EndpointName"]}
    assert plan(old, new)[param_key] == MODIFY, "the parameter is updated in place to the new endpoint's name"


def test_the_new_scalable_target_registers_the_new_endpoint(templates):
    _, new = templates
    ((endpoint, _),) = _of_type(new, "AWS::SageMaker::Endpoint").items()
    for target in _of_type(new, "AWS::ApplicationAutoScaling::ScalableTarget").values():
        assert references(target["Properties"]["ResourceId"]) == {endpoint}


@pytest.mark.parametrize(
    "stack, instance_type",
    [
        ("diffusion-desk-studio-endpoint", "ml.g5.xlarge"),
        ("diffusion-desk-" + "a" * 60 + "-endpoint", "ml.g6e.12xlarge"),
    ],
)
def test_endpoint_names_are_valid_sagemaker_names_and_differ_by_instance_type(stack, instance_type):
    import re

    name = endpoint_name(stack, instance_type)
    assert re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", name), name
    assert name != endpoint_name(stack, "ml.g4dn.xlarge")

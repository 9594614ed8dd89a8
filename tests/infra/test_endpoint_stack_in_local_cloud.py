"""The synthesized endpoint stack, deployed by the local cloud's CloudFormation, comes to life from its template.

The CDK bootstrap stack first, then the stack's Lambda assets, then the template itself: CloudFormation
makes every resource, and one image goes request → endpoint emulator → SNS → both Lambdas (each under
its own role, invoked through the template's subscriptions and permissions) → images/ and manifest.json.
Changing the template (concurrency, scaling bounds, output path) changes what the emulator does.
"""

from __future__ import annotations

import base64
import copy
import io
import json
import threading
import time
from pathlib import Path

import pytest
from aws_rules import resources_of

import contract
from app.services.local_cloud import SandboxEngine
from app.services.local_cloud.stacks import bootstrap, deploy_stack, publish_assets
from infra.templates import TEMPLATES_DIR

#: Shares the session's one synthesis with the other infra tests.
pytestmark = pytest.mark.xdist_group("synthesis")
ROOT = Path(__file__).resolve().parents[2]
STACK = "diffusion-desk-studio-endpoint"


@pytest.fixture
def cloud(local_cloud):
    local_cloud.reset()
    return local_cloud


@pytest.fixture
def template(synthesis) -> dict:
    return copy.deepcopy(synthesis.templates["endpoint"])


def _deploy(cloud, synthesis, template: dict) -> dict[str, str]:
    bootstrap(cloud.client, TEMPLATES_DIR / "bootstrap-template.yaml")
    publish_assets(cloud.client, synthesis.endpoint_assets, ROOT, account=cloud.account_id, region=cloud.region)
    return deploy_stack(cloud.client, STACK, template)


def _submit(cloud, outputs: dict[str, str], prompt: str = "a lighthouse at dusk") -> str:
    inference_id = contract.new_inference_id()
    key = contract.request_key(inference_id)
    body = {"prompt": prompt, "width": 64, "height": 64, "seed": 7}
    cloud.client("s3").put_object(Bucket=outputs["bucketName"], Key=key, Body=json.dumps(body).encode())
    cloud.client("sagemaker-runtime").invoke_endpoint_async(
        EndpointName=outputs["endpointName"],
        InputLocation=f"s3://{outputs['bucketName']}/{key}",
        InferenceId=inference_id,
        ContentType="application/json",
    )
    return inference_id


def _keys(cloud, bucket: str, prefix: str) -> list[str]:
    listed = cloud.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for o in listed.get("Contents", [])]


def _physical(cloud, kind: str) -> list[str]:
    resources = cloud.client("cloudformation").list_stack_resources(StackName=STACK)["StackResourceSummaries"]
    return sorted(r["PhysicalResourceId"] for r in resources if r["ResourceType"] == kind)


def test_every_resource_of_the_template_is_made_by_cloudformation(cloud, synthesis, template):
    _deploy(cloud, synthesis, template)

    resources = cloud.client("cloudformation").list_stack_resources(StackName=STACK)["StackResourceSummaries"]
    assert {r["LogicalResourceId"] for r in resources} == set(template["Resources"])
    assert [r["LogicalResourceId"] for r in resources if not r.get("PhysicalResourceId")] == []
    scaling = cloud.client("application-autoscaling").describe_scalable_targets(ServiceNamespace="sagemaker")
    [target] = scaling["ScalableTargets"]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (0, 2)
    policies = cloud.client("application-autoscaling").describe_scaling_policies(ServiceNamespace="sagemaker")
    assert len(policies["ScalingPolicies"]) == 2
    alarms = {a["MetricName"]: a for a in cloud.client("cloudwatch").describe_alarms()["MetricAlarms"]}
    assert alarms["HasBacklogWithoutCapacity"]["AlarmActions"] == [
        p["PolicyARN"] for p in policies["ScalingPolicies"] if "from-zero" in p["PolicyName"]
    ]
    subscriptions = cloud.client("sns").list_subscriptions()["Subscriptions"]
    assert sorted(s["Protocol"] for s in subscriptions) == ["email"] + ["lambda"] * 3
    [email] = [s for s in subscriptions if s["Protocol"] == "email"]
    assert alarms["CPUUtilization"]["AlarmActions"] == [email["TopicArn"]]
    for function in _physical(cloud, "AWS::Lambda::Function"):
        config = cloud.client("lambda").get_function_event_invoke_config(FunctionName=function)
        assert config["MaximumRetryAttempts"] == 2 and "OnFailure" in config["DestinationConfig"]
    bucket = next(b for b in _physical(cloud, "AWS::S3::Bucket") if "bucket" in b and "accesslogs" not in b)
    assert "aws:SecureTransport" in cloud.client("s3").get_bucket_policy(Bucket=bucket)["Policy"]


def test_the_budget_guard_is_made_by_cloudformation_and_goes_with_the_stack(cloud, synthesis, template):
    _deploy(cloud, synthesis, template)
    budgets = cloud.client("budgets")

    [budget] = budgets.describe_budgets(AccountId=cloud.account_id)["Budgets"]
    assert budget["BudgetName"] == _physical(cloud, "AWS::Budgets::Budget")[0] == "diffusion-desk-studio-monthly"
    assert budget["BudgetLimit"] == {"Amount": "50.0", "Unit": "USD"}
    assert budget["CostFilters"] == {"TagKeyValue": [f"user:{contract.DEPLOYMENT_TAG}$studio"]}
    alerts = budgets.describe_notifications_for_budget(AccountId=cloud.account_id, BudgetName=budget["BudgetName"])
    assert sorted(n["Threshold"] for n in alerts["Notifications"]) == [80.0, 100.0]
    alarm = cloud.client("cloudwatch").describe_alarms()["MetricAlarms"]
    [long_run] = [a for a in alarm if a["MetricName"] == "CPUUtilization"]
    assert long_run["Period"] * long_run["EvaluationPeriods"] == 4 * 3600

    cloud.client("cloudformation").delete_stack(StackName=STACK)

    assert budgets.describe_budgets(AccountId=cloud.account_id)["Budgets"] == []
    assert cloud.client("cloudwatch").describe_alarms()["MetricAlarms"] == []
    assert [s for s in cloud.client("sns").list_subscriptions()["Subscriptions"] if s["Protocol"] == "email"] == []


def test_one_image_end_to_end_through_the_stack_made_from_the_template(cloud, synthesis, template):
    outputs = _deploy(cloud, synthesis, template)

    inference_id = _submit(cloud, outputs)
    cloud.wait_idle()

    bucket = outputs["bucketName"]
    images = _keys(cloud, bucket, f"{contract.IMAGES}{inference_id}/")
    assert contract.manifest_key(inference_id) in images and len(images) == 2
    assert _keys(cloud, bucket, contract.message_key(inference_id)) == [contract.message_key(inference_id)]
    runner = cloud.runner
    assert runner.failures == [] and runner.refused == [] and list(cloud.iam.refusals) == []
    functions = _physical(cloud, "AWS::Lambda::Function")
    assert sorted(runner.invocations.values()) == [1, 1] and sorted(runner.invocations) == functions
    roles = {cloud.client("lambda").get_function(FunctionName=f)["Configuration"]["Role"] for f in functions}
    assert runner.roles.assumed == roles  # each handler ran with its own function's role
    (model,) = cloud.client("sagemaker").list_models()["Models"]
    execution_role = cloud.client("sagemaker").describe_model(ModelName=model["ModelName"])["ExecutionRoleArn"]
    assert cloud.emulator.roles.assumed == {execution_role}


class Gate:
    """An engine that holds every render until released, counting how many run at once."""

    name = "gate"

    def __init__(self) -> None:
        self.released = threading.Event()
        self.lock = threading.Lock()
        self.running = self.most = 0
        self._sandbox = SandboxEngine()

    def render(self, request):
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            self.released.wait(20)
            return self._sandbox.render(request)
        finally:
            with self.lock:
                self.running -= 1


def _set(template: dict, kind: str, change) -> None:
    for resource in resources_of(template, kind).values():
        change(resource["Properties"])


@pytest.mark.parametrize(("per_instance", "max_capacity"), [(3, 1), (1, 3)])
def test_the_emulator_runs_as_many_at_once_as_the_templates_config_and_scalable_target_allow(
    cloud, synthesis, template, per_instance, max_capacity
):
    client_config = {"MaxConcurrentInvocationsPerInstance": per_instance}
    _set(
        template,
        "AWS::SageMaker::EndpointConfig",
        lambda p: p["AsyncInferenceConfig"].update(ClientConfig=client_config),
    )
    _set(template, "AWS::ApplicationAutoScaling::ScalableTarget", lambda p: p.update(MaxCapacity=max_capacity))
    outputs = _deploy(cloud, synthesis, template)
    gate = Gate()
    cloud.engine = gate  # the local cloud's own default is one instance, one invocation at a time

    for index in range(4):
        _submit(cloud, outputs, prompt=f"painting {index}")
    deadline = time.monotonic() + 10
    while gate.running < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    gate.released.set()
    cloud.wait_idle()

    assert gate.most == 3


def test_an_output_path_the_template_moves_is_where_the_endpoint_writes_under_its_own_role(cloud, synthesis, template):
    def elsewhere(properties):
        output = properties["AsyncInferenceConfig"]["OutputConfig"]
        output["S3OutputPath"] = {"Fn::Join": ["", ["s3://", output["S3OutputPath"]["Fn::Join"][1][1], "/elsewhere"]]}

    _set(template, "AWS::SageMaker::EndpointConfig", elsewhere)
    outputs = _deploy(cloud, synthesis, template)

    inference_id = _submit(cloud, outputs)
    cloud.wait_idle()

    # The template's SageMaker role may put objects under output/ only, so AWS would refuse this write too.
    refused = [(r.action, r.resource.split("/", 1)[-1]) for r in cloud.iam.refusals]
    assert len(refused) == 1 and refused[0][0] == "s3:PutObject" and refused[0][1].startswith("elsewhere/")
    bucket = outputs["bucketName"]
    assert _keys(cloud, bucket, "elsewhere/") == [] and len(_keys(cloud, bucket, contract.FAILURES)) == 1
    record = json.loads(
        cloud.client("s3").get_object(Bucket=bucket, Key=contract.message_key(inference_id))["Body"].read()
    )
    assert record["invocationStatus"] == contract.FAILED and "AccessDenied" in record["failureReason"]


def test_each_companion_endpoint_is_made_and_answers_its_familys_request(cloud, companion_synthesis, tmp_path):
    """A deployment with both companions: three endpoints, each scaling on its own and answering its own family."""
    from PIL import Image

    template = copy.deepcopy(companion_synthesis.templates["endpoint"])
    outputs = _deploy(cloud, companion_synthesis, template)
    endpoints = {
        "text-to-image": outputs["endpointName"],
        **{family: outputs[param] for family, param in contract.COMPANION_PARAMS.items()},
    }
    ssm = cloud.client("ssm")
    for param in (contract.ENDPOINT_PARAM, *contract.COMPANION_PARAMS.values()):
        value = ssm.get_parameter(Name=contract.ssm_name("studio", param))["Parameter"]["Value"]
        assert value == outputs[param]
    assert ssm.get_parameter(Name=contract.ssm_name("studio", contract.FAMILY_PARAM))["Parameter"]["Value"] == (
        "text-to-image"
    )
    described = {
        cloud.client("sagemaker").describe_endpoint(EndpointName=name)["EndpointStatus"] for name in endpoints.values()
    }
    assert len(set(endpoints.values())) == 3 and described == {"InService"}
    targets = cloud.client("application-autoscaling").describe_scalable_targets(ServiceNamespace="sagemaker")
    assert sorted(t["ResourceId"] for t in targets["ScalableTargets"]) == sorted(
        f"endpoint/{name}/variant/AllTraffic" for name in endpoints.values()
    )
    assert {(t["MinCapacity"], t["MaxCapacity"]) for t in targets["ScalableTargets"]} == {(0, 2)}

    def png(size, colour) -> str:
        buffer = io.BytesIO()
        Image.new("RGB", size, colour).save(buffer, "PNG")
        return base64.b64encode(buffer.getvalue()).decode()

    bodies = {
        "text-to-image": {"prompt": "a lighthouse", "width": 64, "height": 64, "seed": 7},
        "upscale": {"prompt": "sharper", "image": png((32, 32), "white"), "seed": 7},
        "inpaint": {
            "prompt": "a door",
            "image": png((64, 64), "white"),
            "mask_image": _masked(64),
            "seed": 7,
        },
    }
    sent = {}
    for family, endpoint in endpoints.items():
        inference_id = contract.new_inference_id()
        key = contract.request_key(inference_id)
        cloud.client("s3").put_object(Bucket=outputs["bucketName"], Key=key, Body=json.dumps(bodies[family]).encode())
        cloud.client("sagemaker-runtime").invoke_endpoint_async(
            EndpointName=endpoint,
            InputLocation=f"s3://{outputs['bucketName']}/{key}",
            InferenceId=inference_id,
            ContentType="application/json",
        )
        sent[family] = inference_id
    cloud.wait_idle()

    bucket = outputs["bucketName"]
    for family, inference_id in sent.items():
        record = json.loads(
            cloud.client("s3").get_object(Bucket=bucket, Key=contract.message_key(inference_id))["Body"].read()
        )
        assert record["invocationStatus"] == contract.COMPLETED, (family, record)
        assert record["requestParameters"]["endpointName"] == endpoints[family]
        assert contract.manifest_key(inference_id) in _keys(cloud, bucket, f"{contract.IMAGES}{inference_id}/")
    upscaled = next(k for k in _keys(cloud, bucket, f"{contract.IMAGES}{sent['upscale']}/") if k.endswith(".png"))
    image = Image.open(io.BytesIO(cloud.client("s3").get_object(Bucket=bucket, Key=upscaled)["Body"].read()))
    assert image.size == (128, 128)  # the sandbox engine's ×4 of the 32 × 32 source
    assert cloud.runner.failures == [] and list(cloud.iam.refusals) == []
    models = cloud.client("sagemaker").list_models()["Models"]
    roles = {cloud.client("sagemaker").describe_model(ModelName=m["ModelName"])["ExecutionRoleArn"] for m in models}
    assert len(roles) == 3 and cloud.emulator.roles.assumed == roles  # each endpoint ran under its own role


def _masked(side: int) -> str:
    """A mask (white is repainted) covering the image's middle quarter."""
    from PIL import Image, ImageDraw

    mask = Image.new("L", (side, side), 0)
    ImageDraw.Draw(mask).rectangle((side // 4, side // 4, 3 * side // 4, 3 * side // 4), fill=255)
    buffer = io.BytesIO()
    mask.save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_a_marketplace_main_model_is_made_from_its_package_and_answers_an_sdxl_request(cloud, sdxl_synthesis):
    """SDXL 1.0 as the main model: CloudFormation makes its model from the seller's package in network isolation,
    and its endpoint answers Stability's body with one PNG, which the Lambdas turn into the image and manifest."""
    from PIL import Image

    from contract.families import ACCEPT_PNG, SDXL

    template = copy.deepcopy(sdxl_synthesis.templates["endpoint"])
    outputs = _deploy(cloud, sdxl_synthesis, template)
    sagemaker = cloud.client("sagemaker")
    (listed,) = sagemaker.list_models()["Models"]
    model = sagemaker.describe_model(ModelName=listed["ModelName"])
    assert model["PrimaryContainer"]["ModelPackageName"].endswith(
        ":model-package/sdxl-v1-0-8cc703e43d185a13932e3a0b3f5ea3d5"
    )
    assert model["EnableNetworkIsolation"] is True and "Image" not in model["PrimaryContainer"]
    family = cloud.client("ssm").get_parameter(Name=contract.ssm_name("studio", contract.FAMILY_PARAM))
    assert family["Parameter"]["Value"] == outputs[contract.FAMILY_PARAM] == "sdxl"

    body = {
        "text_prompts": [{"text": "a lighthouse at dusk", "weight": 1.0}, {"text": "blurry", "weight": -1.0}],
        "width": 1152,
        "height": 896,
        "cfg_scale": 7.0,
        "steps": 30,
        "seed": 7,
        "sampler": "K_DPMPP_2M",
        "style_preset": "cinematic",
    }
    assert SDXL.body(SDXL.parse_request(body)).keys() == body.keys()  # Stability's body, as the contract writes it
    inference_id = contract.new_inference_id()
    key = contract.request_key(inference_id)
    bucket = outputs["bucketName"]
    cloud.client("s3").put_object(Bucket=bucket, Key=key, Body=json.dumps(body).encode())
    cloud.client("sagemaker-runtime").invoke_endpoint_async(
        EndpointName=outputs["endpointName"],
        InputLocation=f"s3://{bucket}/{key}",
        InferenceId=inference_id,
        ContentType="application/json",
        Accept=ACCEPT_PNG,
    )
    cloud.wait_idle()

    record = json.loads(
        cloud.client("s3").get_object(Bucket=bucket, Key=contract.message_key(inference_id))["Body"].read()
    )
    assert record["invocationStatus"] == contract.COMPLETED, record
    images = _keys(cloud, bucket, f"{contract.IMAGES}{inference_id}/")
    assert contract.manifest_key(inference_id) in images
    (png,) = [k for k in images if k.endswith(".png")]
    image = Image.open(io.BytesIO(cloud.client("s3").get_object(Bucket=bucket, Key=png)["Body"].read()))
    assert image.size == (1152, 896)
    assert cloud.runner.failures == [] and list(cloud.iam.refusals) == []
    assert cloud.emulator.roles.assumed == {model["ExecutionRoleArn"]}  # it ran under the package's own role


def test_the_local_cloud_refuses_a_marketplace_package_without_network_isolation(cloud, sdxl_synthesis, sdxl_resolved):
    """AWS requires network isolation of models from AWS Marketplace; the local cloud's SageMaker refuses one
    without it (and keeps the flag, which moto drops), and refuses a ModelPackageName outside botocore's pattern."""
    from botocore.exceptions import ClientError

    template = copy.deepcopy(sdxl_synthesis.templates["endpoint"])
    _set(template, "AWS::SageMaker::Model", lambda p: p.pop("EnableNetworkIsolation"))
    with pytest.raises(ClientError, match="Network isolation is required"):
        _deploy(cloud, sdxl_synthesis, template)

    sagemaker = cloud.client("sagemaker")
    role = "arn:aws:iam::123456789012:role/sdxl"
    container = {"ModelPackageName": sdxl_resolved.model_package}

    with pytest.raises(ClientError) as refused:
        sagemaker.create_model(ModelName="open", ExecutionRoleArn=role, PrimaryContainer=container)
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "Network isolation is required" in refused.value.response["Error"]["Message"]
    with pytest.raises(ClientError, match="modelPackageName"):
        sagemaker.create_model(
            ModelName="bad", ExecutionRoleArn=role, PrimaryContainer={"ModelPackageName": "not a package!"}
        )
    assert sagemaker.list_models()["Models"] == []

    sagemaker.create_model(
        ModelName="isolated", ExecutionRoleArn=role, PrimaryContainer=container, EnableNetworkIsolation=True
    )
    assert sagemaker.describe_model(ModelName="isolated")["EnableNetworkIsolation"] is True

"""What the endpoint stack must guarantee, read from its synthesized template."""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path

import pytest
from aws_cdk.assertions import Match, Template
from infra_models import COMPANIONS, SDXL_INSTANCE_TYPE

from contract import (
    BUCKET_PARAM,
    COMPANION_PARAMS,
    ENDPOINT_PARAM,
    ERROR_TOPIC_PARAM,
    FAILURES,
    FAMILY_PARAM,
    IMAGES,
    MESSAGE_INDEX,
    MESSAGES,
    OUTPUT,
    REQUESTS,
    SUCCESS_TOPIC_PARAM,
    ssm_name,
)
from infra.config import load_config

#: One synthesis per session: keep every test that reads it on one xdist worker.
pytestmark = pytest.mark.xdist_group("synthesis")

CONFIG = load_config()
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def template(synthesis) -> Template:
    return Template.from_json(synthesis.templates["endpoint"])


def _tls_only_statement():
    return Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})


def test_the_bucket_is_encrypted_private_and_logged(template):
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "LoggingConfiguration": Match.object_like({"DestinationBucketName": Match.any_value()}),
        },
    )


def test_every_bucket_refuses_plain_http(template):
    buckets = template.find_resources("AWS::S3::Bucket")
    policies = template.find_resources("AWS::S3::BucketPolicy")
    assert len(policies) == len(buckets)
    for policy in policies.values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        )


def test_every_bucket_refuses_tls_older_than_1_2(template):
    for policy in template.find_resources("AWS::S3::BucketPolicy").values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s.get("Condition") == {"NumericLessThan": {"s3:TlsVersion": 1.2}}
            for s in statements
        )


def test_requests_outputs_and_failures_expire_after_the_configured_days(template):
    rules = [
        Match.object_like({"Prefix": prefix, "ExpirationInDays": CONFIG.bucket.expire_days, "Status": "Enabled"})
        for prefix in (REQUESTS, OUTPUT, FAILURES)
    ]
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {"LifecycleConfiguration": {"Rules": Match.array_with(rules)}, "LoggingConfiguration": Match.any_value()},
    )


def test_topics_are_encrypted_and_tls_only(template):
    template.resource_count_is("AWS::SNS::Topic", 3)  # success, error and the budget guard's alerts
    template.all_resources_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    template.has_resource_properties(
        "AWS::SNS::TopicPolicy", {"PolicyDocument": {"Statement": Match.array_with([_tls_only_statement()])}}
    )
    assert len(template.find_resources("AWS::SNS::TopicPolicy")) == 3


def test_teardown_deletes_the_topics_key(template):
    template.has_resource(
        "AWS::KMS::Key", {"DeletionPolicy": "Delete", "Properties": Match.object_like({"PendingWindowInDays": 7})}
    )


def test_the_endpoint_is_asynchronous_with_output_failures_and_both_topics(template):
    template.has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "AsyncInferenceConfig": {
                "OutputConfig": {
                    "S3OutputPath": {"Fn::Join": ["", ["s3://", {"Ref": Match.any_value()}, f"/{OUTPUT.rstrip('/')}"]]},
                    "S3FailurePath": {
                        "Fn::Join": ["", ["s3://", {"Ref": Match.any_value()}, f"/{FAILURES.rstrip('/')}"]]
                    },
                    "NotificationConfig": {
                        "SuccessTopic": {"Ref": Match.string_like_regexp("TopicsSuccess")},
                        "ErrorTopic": {"Ref": Match.string_like_regexp("TopicsError")},
                    },
                },
                "ClientConfig": {
                    "MaxConcurrentInvocationsPerInstance": CONFIG.endpoint.max_concurrent_invocations_per_instance
                },
            },
            "ProductionVariants": [
                Match.object_like({"InstanceType": CONFIG.model.instance_type, "VariantName": "AllTraffic"})
            ],
        },
    )


def test_the_model_comes_as_plain_values_not_from_ssm_parameters(template):
    template.has_resource_properties(
        "AWS::SageMaker::Model",
        {
            "PrimaryContainer": Match.object_like(
                {"Image": Match.string_like_regexp("dkr.ecr"), "ModelDataUrl": Match.string_like_regexp("^s3://")}
            )
        },
    )
    parameters = template.to_json()["Parameters"]
    assert [
        k
        for k, p in parameters.items()
        if p["Type"].startswith("AWS::SSM::Parameter::Value") and k != "BootstrapVersion"
    ] == []


def test_the_endpoint_scales_from_zero_to_the_configured_maximum(template):
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget",
        {
            "MinCapacity": 0,
            "MaxCapacity": CONFIG.endpoint.max_instances,
            "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
        },
    )
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": Match.object_like(
                {
                    "TargetValue": CONFIG.endpoint.backlog_per_instance,
                    "CustomizedMetricSpecification": Match.object_like(
                        {"MetricName": "ApproximateBacklogSizePerInstance", "Namespace": "AWS/SageMaker"}
                    ),
                }
            ),
        },
    )


def test_a_backlog_without_instances_adds_one(template):
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {
            "PolicyType": "StepScaling",
            "StepScalingPolicyConfiguration": Match.object_like(
                {
                    "AdjustmentType": "ChangeInCapacity",
                    "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}],
                }
            ),
        },
    )
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": "HasBacklogWithoutCapacity",
            "Namespace": "AWS/SageMaker",
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "Threshold": 1,
            "AlarmActions": [{"Ref": Match.string_like_regexp("ScaleOutFromZero")}],
        },
    )


def test_the_app_finds_the_deployment_through_ssm(template):
    for param in (BUCKET_PARAM, ENDPOINT_PARAM, SUCCESS_TOPIC_PARAM, ERROR_TOPIC_PARAM):
        template.has_resource_properties(
            "AWS::SSM::Parameter", {"Name": ssm_name(CONFIG.deployment, param), "Type": "String"}
        )


@pytest.mark.parametrize("name", ["save_message", "extract_image"])
def test_functions_use_powertools_from_its_layer_and_fail_into_an_encrypted_queue(template, name):
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "index.lambda_handler",
            "Runtime": CONFIG.function.runtime,
            "Architectures": [CONFIG.function.architecture],
            "Layers": [
                {
                    "Fn::Sub": Match.string_like_regexp(
                        f"AWSLambdaPowertoolsPythonV3-{CONFIG.function.python}-{CONFIG.function.architecture}"
                    )
                }
            ],
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "POWERTOOLS_SERVICE_NAME": name.replace("_", "-"),
                        "POWERTOOLS_LOG_LEVEL": CONFIG.function.log_level,
                        "BUCKET_NAME": Match.any_value(),
                    }
                )
            },
        },
    )
    template.has_resource_properties("AWS::SQS::Queue", {"SqsManagedSseEnabled": True})
    template.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {
            "DestinationConfig": {
                "OnFailure": {"Destination": {"Fn::GetAtt": [Match.string_like_regexp("FunctionsFailures"), "Arn"]}}
            }
        },
    )


def _function_policy(template: Template, name: str) -> list[dict]:
    policies = template.find_resources("AWS::IAM::Policy")
    (policy,) = [p for key, p in policies.items() if key.startswith(f"Functions{name.replace('_', '')}Role")]
    return policy["Properties"]["PolicyDocument"]["Statement"]


def _resources(statement: dict) -> list:
    resources = statement["Resource"]
    return resources if isinstance(resources, list) else [resources]


def _object_prefixes(statements: list[dict], action: str) -> set[str]:
    """The key prefixes of the stack's bucket (`/requests/*`, …) on which `action` is granted."""
    prefixes = set()
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if action not in actions:
            continue
        for resource in _resources(statement):
            if isinstance(resource, dict) and "Fn::Join" in resource:
                first, *_, last = resource["Fn::Join"][1]
                if isinstance(first, dict) and str(first.get("Fn::GetAtt", [""])[0]).startswith("Bucket"):
                    prefixes.add(last)
    return prefixes


def _actions(statement: dict) -> list[str]:
    return statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]


def _listed_prefixes(statements: list[dict]) -> set[str]:
    """The key prefixes a policy may list; it fails on any listing of the whole bucket.

    CDK's grant_read gives s3:List* (and s3:GetBucket*) on the bucket itself, with no condition.
    """
    prefixes = set()
    for statement in statements:
        bucket_level = [a for a in _actions(statement) if a.startswith(("s3:List", "s3:GetBucket"))]
        if not bucket_level:
            continue
        assert bucket_level == ["s3:ListBucket"], f"bucket-wide actions {bucket_level}"
        condition = statement.get("Condition", {}).get("StringLike", {}).get("s3:prefix")
        assert condition, "s3:ListBucket without an s3:prefix condition lists the whole bucket"
        prefixes |= set(condition)
    return prefixes


def test_no_role_lists_the_whole_bucket(template):
    for policy in template.find_resources("AWS::IAM::Policy").values():
        _listed_prefixes(policy["Properties"]["PolicyDocument"]["Statement"])


def test_save_message_may_write_only_messages_and_their_time_index(template):
    statements = _function_policy(template, "save_message")
    assert _object_prefixes(statements, "s3:PutObject") == {f"/{MESSAGES}*", f"/{MESSAGE_INDEX}*"}
    assert _object_prefixes(statements, "s3:GetObject") == set()
    assert _listed_prefixes(statements) == set()


def test_extract_image_reads_outputs_and_requests_and_writes_only_images(template):
    statements = _function_policy(template, "extract_image")
    assert _object_prefixes(statements, "s3:PutObject") == {f"/{IMAGES}*"}
    assert _object_prefixes(statements, "s3:GetObject") == {f"/{OUTPUT}*", f"/{REQUESTS}*"}
    assert _listed_prefixes(statements) == {f"{OUTPUT}*", f"{REQUESTS}*"}


def test_the_sagemaker_role_reads_requests_writes_results_and_pulls_only_its_image(template):
    roles = template.find_resources("AWS::IAM::Policy")
    (policy,) = [p for key, p in roles.items() if key.startswith("AsyncRole")]
    _reads_requests_writes_results_pulls_only_its_image(policy["Properties"]["PolicyDocument"]["Statement"])


def _reads_requests_writes_results_pulls_only_its_image(statements: list) -> None:
    """An endpoint role's statements: requests read, output and failures written, those three listed, and one
    image pulled by its own ARN."""
    assert _object_prefixes(statements, "s3:GetObject") == {f"/{REQUESTS}*"}
    assert _object_prefixes(statements, "s3:PutObject") == {f"/{OUTPUT}*", f"/{FAILURES}*"}
    assert _listed_prefixes(statements) == {f"{REQUESTS}*", f"{OUTPUT}*", f"{FAILURES}*"}
    (pull,) = [s for s in statements if "ecr:BatchGetImage" in s["Action"]]
    assert "*" not in str(pull["Resource"])


def test_every_role_in_the_stack_grants_something(template):
    """A role with no policy (CDK's default scalable-target role, which Application Auto Scaling never
    assumes for SageMaker) is a principal without a purpose."""
    resources = template.to_json()["Resources"]
    attached = {
        role["Ref"]
        for r in resources.values()
        if r["Type"] == "AWS::IAM::Policy"
        for role in r["Properties"].get("Roles", [])
        if isinstance(role, dict) and "Ref" in role
    }
    empty = [
        key
        for key, r in resources.items()
        if r["Type"] == "AWS::IAM::Role"
        and key not in attached
        and not r["Properties"].get("Policies")
        and not r["Properties"].get("ManagedPolicyArns")
    ]
    assert empty == []


def test_scaling_uses_application_auto_scalings_service_linked_role(template):
    (target,) = template.find_resources("AWS::ApplicationAutoScaling::ScalableTarget").values()
    role = target["Properties"]["RoleARN"]
    assert "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint" in str(role)
    assert "sagemaker.application-autoscaling.amazonaws.com" in str(role)


def _suppressions(resource: dict) -> list[dict]:
    return resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])


def test_every_acknowledged_iam5_wildcard_is_in_the_policy_it_acknowledges(template):
    """An acknowledgment that names an action or resource the policy does not hold claims what is not there."""
    for key, policy in template.find_resources("AWS::IAM::Policy").items():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        actions = {a for s in statements for a in _actions(s)}
        resources = {_nag_name(r) for s in statements for r in _resources(s)}
        for rule in _suppressions(policy):
            finding = rule["id"].removeprefix("AwsSolutions-IAM5[").removesuffix("]")
            kind, _, name = finding.partition("::")
            if kind == "Action":
                assert name in actions, f"{key} acknowledges {name}, which it does not grant"
            elif kind == "Resource":
                assert name in resources, f"{key} acknowledges {name}, which it does not name"


def test_the_kms_acknowledgment_names_exactly_what_grant_publish_grants(template):
    policies = template.find_resources("AWS::IAM::Policy")
    (policy,) = [p for key, p in policies.items() if key.startswith("AsyncRole")]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    kms = sorted(a for s in statements for a in _actions(s) if a.startswith("kms:"))
    (reason,) = {r["reason"] for r in _suppressions(policy) if "kms:" in r["id"]}
    assert kms == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert set(re.findall(r"kms:[A-Za-z*]+", reason)) == set(kms)


def _nag_name(resource) -> str:
    """A resource as cdk-nag writes it in a finding: `<Logical.Arn>/requests/*`, `arn:<AWS::Partition>:…`."""
    if isinstance(resource, str):
        return resource
    if "Fn::GetAtt" in resource:
        logical, attribute = resource["Fn::GetAtt"]
        return f"<{logical}.{attribute}>"
    if "Ref" in resource:
        return f"<{resource['Ref']}>"
    if "Fn::Join" in resource:
        return "".join(_nag_name(part) for part in resource["Fn::Join"][1])
    return str(resource)


# --- companion models: each its own async endpoint, scaling and alarms, on the same bucket and topics ---------


@pytest.fixture(scope="module")
def companions(companion_synthesis) -> dict:
    return companion_synthesis.templates["endpoint"]


def _of(template: dict, kind: str) -> dict[str, dict]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def _endpoint_logical(value) -> str:
    """The logical id of the endpoint whose name `value` (a GetAtt, or inside a Join) refers to."""
    text = str(value)
    (logical,) = {k for k in re.findall(r"'(\w*AsyncEndpoint\w*)'", text)}
    return logical


def test_a_config_with_both_companions_has_three_async_endpoints_on_one_bucket_and_both_topics(companions):
    endpoints = _of(companions, "AWS::SageMaker::Endpoint")
    configs = _of(companions, "AWS::SageMaker::EndpointConfig")
    names = sorted(e["Properties"]["EndpointName"] for e in endpoints.values())
    stack = CONFIG.stack_name("endpoint")

    assert names == [f"{stack}-inpaint-ml-g5-xlarge", f"{stack}-ml-g5-xlarge", f"{stack}-upscale-ml-g5-xlarge"]
    assert len(configs) == 3 and len(_of(companions, "AWS::S3::Bucket")) == 2  # the bucket and its access log
    assert len(_of(companions, "AWS::SNS::Topic")) == 3  # success, error, the guard's alerts
    assert len(_of(companions, "AWS::Lambda::Function")) == 2
    outputs = {
        json.dumps(c["Properties"]["AsyncInferenceConfig"]["OutputConfig"], sort_keys=True) for c in configs.values()
    }
    assert len(outputs) == 1  # every endpoint writes output/ and failures/ of the one bucket and notifies both topics


def test_each_companion_runs_its_own_model_under_its_own_role(companions):
    models = _of(companions, "AWS::SageMaker::Model")
    roles = {m["Properties"]["ExecutionRoleArn"]["Fn::GetAtt"][0] for m in models.values()}
    data = {m["Properties"]["PrimaryContainer"]["ModelDataUrl"] for m in models.values()}

    assert len(models) == 3 and len(roles) == 3
    assert {model_id for model_id in COMPANIONS.values() if any(model_id in url for url in data)} == set(
        COMPANIONS.values()
    )
    for key, policy in _of(companions, "AWS::IAM::Policy").items():
        if not key.startswith(("UpscaleAsyncRole", "InpaintAsyncRole")):
            continue
        _reads_requests_writes_results_pulls_only_its_image(policy["Properties"]["PolicyDocument"]["Statement"])


def test_each_endpoint_scales_from_zero_on_its_own_with_its_own_policies_and_alarm(companions):
    targets = _of(companions, "AWS::ApplicationAutoScaling::ScalableTarget")
    policies = _of(companions, "AWS::ApplicationAutoScaling::ScalingPolicy")
    alarms = _of(companions, "AWS::CloudWatch::Alarm")
    endpoints = set(_of(companions, "AWS::SageMaker::Endpoint"))

    by_endpoint = {_endpoint_logical(t["Properties"]["ResourceId"]): t for t in targets.values()}
    assert set(by_endpoint) == endpoints
    for target in by_endpoint.values():
        assert (target["Properties"]["MinCapacity"], target["Properties"]["MaxCapacity"]) == (
            0,
            CONFIG.endpoint.max_instances,
        )
    for key in targets:
        kinds = sorted(
            p["Properties"]["PolicyType"]
            for p in policies.values()
            if p["Properties"]["ScalingTargetId"] == {"Ref": key}
        )
        assert kinds == ["StepScaling", "TargetTrackingScaling"]
    backlog = [a for a in alarms.values() if a["Properties"]["MetricName"] == "HasBacklogWithoutCapacity"]
    in_service = [a for a in alarms.values() if a["Properties"]["MetricName"] == "CPUUtilization"]
    for watched in (backlog, in_service):
        assert {_endpoint_logical(a["Properties"]["Dimensions"]) for a in watched} == endpoints


def test_the_ssm_parameters_name_every_endpoint_and_the_main_family(companions):
    parameters = {
        p["Properties"]["Name"]: p["Properties"]["Value"] for p in _of(companions, "AWS::SSM::Parameter").values()
    }
    endpoints = {r["Properties"]["EndpointName"]: k for k, r in _of(companions, "AWS::SageMaker::Endpoint").items()}
    stack = CONFIG.stack_name("endpoint")

    assert parameters[ssm_name(CONFIG.deployment, FAMILY_PARAM)] == "text-to-image"
    named = {
        param: _endpoint_logical(parameters[ssm_name(CONFIG.deployment, param)])
        for param in (ENDPOINT_PARAM, *COMPANION_PARAMS.values())
    }
    assert named == {
        ENDPOINT_PARAM: endpoints[f"{stack}-ml-g5-xlarge"],
        COMPANION_PARAMS["upscale"]: endpoints[f"{stack}-upscale-ml-g5-xlarge"],
        COMPANION_PARAMS["inpaint"]: endpoints[f"{stack}-inpaint-ml-g5-xlarge"],
    }
    assert set(companions["Outputs"]) >= {FAMILY_PARAM, ENDPOINT_PARAM, *COMPANION_PARAMS.values()}


def test_without_companions_no_companion_parameter_is_written(template):
    names = {p["Properties"]["Name"] for p in template.find_resources("AWS::SSM::Parameter").values()}

    assert ssm_name(CONFIG.deployment, FAMILY_PARAM) in names
    assert not names & {ssm_name(CONFIG.deployment, param) for param in COMPANION_PARAMS.values()}
    assert len(template.find_resources("AWS::SageMaker::Endpoint")) == 1


def test_the_designers_policy_may_invoke_every_endpoint_the_stack_names(companions):
    designer = json.loads((ROOT / "resources" / "policies" / "designer.json").read_text())
    (invoke,) = [s for s in designer["Statement"] if s["Action"] == "sagemaker:InvokeEndpointAsync"]
    pattern = invoke["Resource"].rsplit("endpoint/", 1)[1]

    for endpoint in _of(companions, "AWS::SageMaker::Endpoint").values():
        assert fnmatch.fnmatchcase(endpoint["Properties"]["EndpointName"], pattern)


# --- SDXL 1.0, a Marketplace model: its endpoint runs the seller's model package ---------------------------------


@pytest.fixture(scope="module")
def sdxl(sdxl_synthesis) -> dict:
    return sdxl_synthesis.templates["endpoint"]


def _sdxl_role_statements(template: dict) -> list[dict]:
    (policy,) = [p for key, p in _of(template, "AWS::IAM::Policy").items() if key.startswith("AsyncRole")]
    return policy["Properties"]["PolicyDocument"]["Statement"]


def test_a_marketplace_main_model_is_its_model_package_in_network_isolation(sdxl, sdxl_resolved):
    (model,) = _of(sdxl, "AWS::SageMaker::Model").values()
    container = model["Properties"]["PrimaryContainer"]

    assert container["ModelPackageName"] == sdxl_resolved.model_package
    assert sdxl_resolved.model_package.startswith("arn:aws:sagemaker:us-east-1:")
    assert not {"Image", "ModelDataUrl", "ModelDataSource"} & container.keys()
    assert "SAGEMAKER_REGION" not in container.get("Environment", {})  # no JumpStart spec environment: none applies
    assert model["Properties"]["EnableNetworkIsolation"] is True
    (config,) = _of(sdxl, "AWS::SageMaker::EndpointConfig").values()
    (variant,) = config["Properties"]["ProductionVariants"]
    assert variant["InstanceType"] == SDXL_INSTANCE_TYPE
    assert "AsyncInferenceConfig" in config["Properties"]


def test_an_open_weights_model_keeps_its_image_model_data_and_the_network(template):
    (model,) = template.find_resources("AWS::SageMaker::Model").values()
    assert {"Image", "ModelDataUrl"} <= model["Properties"]["PrimaryContainer"].keys()
    assert "ModelPackageName" not in model["Properties"]["PrimaryContainer"]
    assert "EnableNetworkIsolation" not in model["Properties"]


def test_the_marketplace_models_role_reads_no_model_data_and_pulls_no_image(sdxl):
    statements = _sdxl_role_statements(sdxl)
    actions = {a for s in statements for a in _actions(s)}

    assert _object_prefixes(statements, "s3:GetObject") == {f"/{REQUESTS}*"}
    assert [s for s in statements if "s3:GetObject" in _actions(s) and "models/" in json.dumps(s)] == []
    assert not {a for a in actions if a.startswith("ecr:")}
    # What the endpoint itself does is unchanged: it writes results and publishes to both topics.
    assert _object_prefixes(statements, "s3:PutObject") == {f"/{OUTPUT}*", f"/{FAILURES}*"}
    assert _listed_prefixes(statements) == {f"{REQUESTS}*", f"{OUTPUT}*", f"{FAILURES}*"}
    published = [s["Resource"] for s in statements if "sns:Publish" in _actions(s)]
    assert sorted(r["Ref"][:11] for r in published) == ["TopicsError", "TopicsSucce"]


def test_the_marketplace_models_acknowledgments_name_only_what_its_policy_holds(sdxl):
    (key, policy), *_ = [(k, p) for k, p in _of(sdxl, "AWS::IAM::Policy").items() if k.startswith("AsyncRole")]
    (reason,) = {r["reason"] for r in _suppressions(policy) if r["id"] == "AwsSolutions-IAM5[Resource::*]"}
    actions = {a for s in _sdxl_role_statements(sdxl) for a in _actions(s) if "*" in str(s["Resource"])}

    assert "ecr:" not in reason and "cloudwatch:PutMetricData" in reason
    assert set(re.findall(r"\b[a-z]+:[A-Za-z]+", reason)) <= actions | {"cloudwatch:namespace"}
    test_every_acknowledged_iam5_wildcard_is_in_the_policy_it_acknowledges(Template.from_json(sdxl))


def test_the_ssm_parameters_name_the_sdxl_family(sdxl):
    parameters = {p["Properties"]["Name"]: p["Properties"]["Value"] for p in _of(sdxl, "AWS::SSM::Parameter").values()}

    assert parameters[ssm_name(CONFIG.deployment, FAMILY_PARAM)] == "sdxl"
    assert sdxl["Outputs"][FAMILY_PARAM]["Value"] == "sdxl"

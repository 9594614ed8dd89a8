"""What the endpoint stack must guarantee, read from its synthesized template."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Match, Template

from contract import (
    BUCKET_PARAM,
    ENDPOINT_PARAM,
    ERROR_TOPIC_PARAM,
    FAILURES,
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


@pytest.fixture(scope="module")
def template(synthesis) -> Template:
    return Template.from_json(synthesis.templates["endpoint"])


def _tls_only_statement():
    return Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})


def test_the_bucket_is_encrypted_private_and_logged(template):
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {"ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]},
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
        assert any(s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}} for s in statements)


def test_every_bucket_refuses_tls_older_than_1_2(template):
    for policy in template.find_resources("AWS::S3::BucketPolicy").values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(s["Effect"] == "Deny" and s.get("Condition") == {"NumericLessThan": {"s3:TlsVersion": 1.2}} for s in statements)


def test_requests_outputs_and_failures_expire_after_the_configured_days(template):
    rules = [
        Match.object_like({"Prefix": prefix, "ExpirationInDays": CONFIG.bucket.expire_days, "Status": "Enabled"})
        for prefix in (REQUESTS, OUTPUT, FAILURES)
    ]
    template.has_resource_properties(
        "AWS::S3::Bucket", {"LifecycleConfiguration": {"Rules": Match.array_with(rules)}, "LoggingConfiguration": Match.any_value()}
    )


def test_topics_are_encrypted_and_tls_only(template):
    template.resource_count_is("AWS::SNS::Topic", 2)
    template.all_resources_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    template.has_resource_properties(
        "AWS::SNS::TopicPolicy", {"PolicyDocument": {"Statement": Match.array_with([_tls_only_statement()])}}
    )
    assert len(template.find_resources("AWS::SNS::TopicPolicy")) == 2


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
                    "S3FailurePath": {"Fn::Join": ["", ["s3://", {"Ref": Match.any_value()}, f"/{FAILURES.rstrip('/')}"]]},
                    "NotificationConfig": {"SuccessTopic": {"Ref": Match.string_like_regexp("TopicsSuccess")}, "ErrorTopic": {"Ref": Match.string_like_regexp("TopicsError")}},
                },
                "ClientConfig": {"MaxConcurrentInvocationsPerInstance": CONFIG.endpoint.max_concurrent_invocations_per_instance},
            },
            "ProductionVariants": [Match.object_like({"InstanceType": CONFIG.model.instance_type, "VariantName": "AllTraffic"})],
        },
    )


def test_the_model_comes_from_the_parameters_the_build_step_writes(template):
    template.has_resource_properties(
        "AWS::SageMaker::Model",
        {"PrimaryContainer": Match.object_like({"Image": {"Ref": Match.any_value()}, "ModelDataUrl": {"Ref": Match.any_value()}})},
    )
    parameters = template.to_json()["Parameters"]
    defaults = {p.get("Default") for p in parameters.values() if p["Type"] == "AWS::SSM::Parameter::Value<String>"}
    assert {ssm_name(CONFIG.deployment, "modelImageUri"), ssm_name(CONFIG.deployment, "modelDataUrl")} <= defaults


def test_the_endpoint_scales_from_zero_to_the_configured_maximum(template):
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget",
        {"MinCapacity": 0, "MaxCapacity": CONFIG.endpoint.max_instances, "ScalableDimension": "sagemaker:variant:DesiredInstanceCount"},
    )
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": Match.object_like(
                {
                    "TargetValue": CONFIG.endpoint.backlog_per_instance,
                    "CustomizedMetricSpecification": Match.object_like({"MetricName": "ApproximateBacklogSizePerInstance", "Namespace": "AWS/SageMaker"}),
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
                {"AdjustmentType": "ChangeInCapacity", "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]}
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
        template.has_resource_properties("AWS::SSM::Parameter", {"Name": ssm_name(CONFIG.deployment, param), "Type": "String"})


@pytest.mark.parametrize("name", ["save_message", "extract_image"])
def test_functions_use_powertools_from_its_layer_and_fail_into_an_encrypted_queue(template, name):
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "index.lambda_handler",
            "Runtime": CONFIG.function.runtime,
            "Architectures": [CONFIG.function.architecture],
            "Layers": [{"Fn::Sub": Match.string_like_regexp(f"AWSLambdaPowertoolsPythonV3-{CONFIG.function.python}-{CONFIG.function.architecture}")}],
            "Environment": {
                "Variables": Match.object_like(
                    {"POWERTOOLS_SERVICE_NAME": name.replace("_", "-"), "POWERTOOLS_LOG_LEVEL": CONFIG.function.log_level, "BUCKET_NAME": Match.any_value()}
                )
            },
        },
    )
    template.has_resource_properties("AWS::SQS::Queue", {"SqsManagedSseEnabled": True})
    template.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {"DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": [Match.string_like_regexp("FunctionsFailures"), "Arn"]}}}},
    )


def _function_policy(template: Template, name: str) -> list[dict]:
    policies = template.find_resources("AWS::IAM::Policy")
    (policy,) = [p for key, p in policies.items() if key.startswith(f"Functions{name.replace('_', '')}Role")]
    return policy["Properties"]["PolicyDocument"]["Statement"]


def _resources(statement: dict) -> list:
    resources = statement["Resource"]
    return resources if isinstance(resources, list) else [resources]


def _object_prefixes(statements: list[dict], action: str) -> set[str]:
    prefixes = set()
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if action not in actions:
            continue
        for resource in _resources(statement):
            if isinstance(resource, dict) and "Fn::Join" in resource:
                prefixes.add(resource["Fn::Join"][1][-1])
    return prefixes


def test_save_message_may_write_only_messages_and_their_time_index(template):
    statements = _function_policy(template, "save_message")
    assert _object_prefixes(statements, "s3:PutObject") == {f"/{MESSAGES}*", f"/{MESSAGE_INDEX}*"}
    assert _object_prefixes(statements, "s3:GetObject*") == set()


def test_extract_image_reads_outputs_and_requests_and_writes_only_images(template):
    statements = _function_policy(template, "extract_image")
    assert _object_prefixes(statements, "s3:PutObject") == {f"/{IMAGES}*"}
    assert _object_prefixes(statements, "s3:GetObject*") == {f"/{OUTPUT}*", f"/{REQUESTS}*"}


def test_the_sagemaker_role_reads_requests_writes_results_and_pulls_only_its_image(template):
    roles = template.find_resources("AWS::IAM::Policy")
    (policy,) = [p for key, p in roles.items() if key.startswith("AsyncRole")]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert _object_prefixes(statements, "s3:GetObject*") == {f"/{REQUESTS}*"}
    assert _object_prefixes(statements, "s3:PutObject") == {f"/{OUTPUT}*", f"/{FAILURES}*"}
    (pull,) = [s for s in statements if "ecr:BatchGetImage" in s["Action"]]
    assert "*" not in str(pull["Resource"])

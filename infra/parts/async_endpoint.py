"""The SageMaker model, async endpoint config and endpoint, with a least-privilege role."""

from __future__ import annotations

import hashlib
import re

from aws_cdk import Aws, Fn, Stack, Token
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from contract import FAILURES, OUTPUT, REQUESTS
from infra.config import EndpointConfig, ModelConfig
from infra.parts.endpoint_io import EndpointIO
from infra.parts.functions import acknowledge_object_grants, grant_object_reads
from infra.parts.nag import acknowledge
from infra.parts.topics import NotificationTopics

VARIANT = "AllTraffic"
_NAME_MAX = 63


class AsyncEndpoint(Construct):
    """An asynchronous endpoint reading `requests/`, writing `output/` and `failures/`, notifying the topics.

    The image URI, model data URL and container environment are plain values that the pipeline's
    Synth step resolved from JumpStart's spec before synthesis, never looked up by the construct.

    A Marketplace model (`model_package`, its ARN) is a container of that package alone, in network isolation, which
    AWS requires of models from AWS Marketplace ("Network isolation is required to run training jobs and models
    using resources from AWS Marketplace", SageMaker Developer Guide, mkt-algo-model-internet-free). The seller's
    package holds the image and the weights, so the role reads no model data and pulls no image; SageMaker still
    reads the request and writes the result under it, outside the isolated container.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_io: EndpointIO,
        image_uri: str,
        model_data_url: str,
        environment: dict[str, str],
        model: ModelConfig,
        endpoint: EndpointConfig,
        companion: str | None = None,
        model_package: str = "",
    ) -> None:
        """`companion` (a family name) names a companion model's endpoint apart from the main one's; `model_package`
        (a Marketplace model's ARN) replaces the image and the model data."""
        super().__init__(scope, construct_id)
        bucket, topics = endpoint_io.bucket, endpoint_io.topics
        if model_package:
            self.role = self._role(bucket, topics)
            container = sagemaker.CfnModel.ContainerDefinitionProperty(
                model_package_name=model_package, environment=environment or None
            )
        else:
            self.role = self._role(bucket, topics, image_uri, model_data_url)
            container = sagemaker.CfnModel.ContainerDefinitionProperty(
                image=image_uri, model_data_url=model_data_url, environment=environment
            )
        self.model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=self.role.role_arn,
            primary_container=container,
            enable_network_isolation=True if model_package else None,
        )
        self.model.node.add_dependency(self.role)
        self.config = sagemaker.CfnEndpointConfig(
            self,
            "Config",
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name=VARIANT,
                    model_name=self.model.attr_model_name,
                    initial_instance_count=1,
                    instance_type=model.instance_type,
                )
            ],
            async_inference_config=sagemaker.CfnEndpointConfig.AsyncInferenceConfigProperty(
                output_config=sagemaker.CfnEndpointConfig.AsyncInferenceOutputConfigProperty(
                    s3_output_path=bucket.s3_url_for_object(OUTPUT.rstrip("/")),
                    s3_failure_path=bucket.s3_url_for_object(FAILURES.rstrip("/")),
                    notification_config=sagemaker.CfnEndpointConfig.AsyncInferenceNotificationConfigProperty(
                        success_topic=topics.success.topic_arn,
                        error_topic=topics.error.topic_arn,
                    ),
                ),
                client_config=sagemaker.CfnEndpointConfig.AsyncInferenceClientConfigProperty(
                    max_concurrent_invocations_per_instance=endpoint.max_concurrent_invocations_per_instance,
                ),
            ),
        )
        self.endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=endpoint_name(Stack.of(self).stack_name, model.instance_type, companion),
            endpoint_config_name=self.config.attr_endpoint_config_name,
        )

    @property
    def endpoint_name(self) -> str:
        return self.endpoint.attr_endpoint_name

    def _role(
        self, bucket: s3.IBucket, topics: NotificationTopics, image_uri: str = "", model_data_url: str = ""
    ) -> iam.Role:
        """Requests read, results written, both topics published; and, for open weights (an image and model data),
        that model data read and that image pulled."""
        role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
        grant_object_reads(role, bucket, REQUESTS, listed=(REQUESTS, OUTPUT, FAILURES))
        bucket.grant_put(role, f"{OUTPUT}*")
        bucket.grant_put(role, f"{FAILURES}*")
        for topic in topics.both:
            topic.grant_publish(role)
        if image_uri:
            self._model_grants(role, image_uri, model_data_url)
        log_groups = f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:/aws/sagemaker/Endpoints/*"
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                resources=[log_groups, f"{log_groups}:log-stream:*"],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/Endpoints*", "AWS/SageMaker"]}},
            )
        )
        acknowledge_object_grants(role, bucket, REQUESTS, OUTPUT, FAILURES)
        acknowledge(
            role,
            "ecr:GetAuthorizationToken and cloudwatch:PutMetricData have no resource-level permissions (the "
            "latter is limited to SageMaker namespaces by a condition)."
            if image_uri
            else "cloudwatch:PutMetricData has no resource-level permissions; it is limited to SageMaker namespaces "
            "by a condition.",
            "AwsSolutions-IAM5[Resource::*]",
        )
        acknowledge(
            role,
            "SageMaker names the endpoint's log groups and streams at run time under /aws/sagemaker/Endpoints/.",
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:/aws/sagemaker/Endpoints/*]",
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:/aws/sagemaker/Endpoints/*:log-stream:*]",
        )
        acknowledge(
            role,
            "kms:Decrypt and kms:GenerateDataKey* on the topics' own key are what topic.grant_publish grants, "
            "and nothing else: publishing to an SSE-KMS topic needs both.",
            "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]",
        )
        return role

    @staticmethod
    def _model_grants(role: iam.Role, image_uri: str, model_data_url: str) -> None:
        """The model data object read and the image's repository pulled (an open-weights model)."""
        model_object = Fn.select(1, Fn.split("s3://", model_data_url))
        role.add_to_policy(
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[f"arn:{Aws.PARTITION}:s3:::{model_object}"])
        )
        registry_account = Fn.select(0, Fn.split(".", image_uri))
        registry_region = Fn.select(3, Fn.split(".", image_uri))
        repository = Fn.select(0, Fn.split(":", Fn.select(1, Fn.split("/", image_uri))))
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
                resources=[f"arn:{Aws.PARTITION}:ecr:{registry_region}:{registry_account}:repository/{repository}"],
            )
        )
        role.add_to_policy(iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"]))


def endpoint_name(stack_name: str, instance_type: str, companion: str | None = None) -> str:
    """The endpoint's name, from its stack, its companion family if any, and its instance type (at most 63 characters).

    AWS refuses to change in place the instance type of a variant registered for auto scaling; a
    name that changes with the instance type makes CloudFormation replace the endpoint instead.
    A companion's endpoint (`<stack>-upscale-<type>`) never shares the main one's name, on any instance type.
    """
    if Token.is_unresolved(stack_name):
        raise ValueError("the endpoint stack needs a concrete stack_name to name its endpoint")
    parts = (stack_name, companion, instance_type) if companion else (stack_name, instance_type)
    name = re.sub(r"[^A-Za-z0-9]+", "-", "-".join(parts)).strip("-")
    if len(name) > _NAME_MAX:
        digest = hashlib.sha256(name.encode()).hexdigest()[:8]
        name = f"{name[: _NAME_MAX - len(digest) - 1].rstrip('-')}-{digest}"
    return name

"""The two Lambdas that turn endpoint notifications into status records and PNGs."""

from __future__ import annotations

from aws_cdk import Duration, Fn, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from contract import BUCKET_ENV, IMAGES, MESSAGE_INDEX, MESSAGES, OUTPUT, REQUESTS
from infra.config import LambdaConfig
from infra.parts.endpoint_io import EndpointIO
from infra.parts.function_code import function_code
from infra.parts.nag import acknowledge, arn_of

_ARCHITECTURES = {"arm64": lambda_.Architecture.ARM_64, "x86_64": lambda_.Architecture.X86_64}


def powertools_layer_arn(config: LambdaConfig) -> str:
    """The official Powertools layer ARN from config.toml, in the stack's region."""
    template = config.powertools_layer.format(region="${AWS::Region}", python=config.python, arch=config.architecture)
    return Fn.sub(template)


class NotificationFunctions(Construct):
    """save_message on both topics, extract_image on success; failures go to an encrypted queue."""

    def __init__(self, scope: Construct, construct_id: str, *, endpoint_io: EndpointIO, config: LambdaConfig) -> None:
        super().__init__(scope, construct_id)
        bucket, topics = endpoint_io.bucket, endpoint_io.topics
        self.config = config
        self.failures = sqs.Queue(
            self,
            "Failures",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        acknowledge(
            self.failures,
            "This queue is itself the on-failure destination of the functions; it keeps failed events for 14 days.",
            "AwsSolutions-SQS3",
        )
        self.layer = lambda_.LayerVersion.from_layer_version_arn(self, "Powertools", powertools_layer_arn(config))

        self.save_message = self._function("save_message", bucket, config.save_message_memory)
        bucket.grant_put(self.save_message, f"{MESSAGES}*")
        bucket.grant_put(self.save_message, f"{MESSAGE_INDEX}*")
        acknowledge_object_grants(self.save_message.role, bucket, MESSAGES, MESSAGE_INDEX)
        for topic in topics.both:
            topic.add_subscription(subscriptions.LambdaSubscription(self.save_message))

        self.extract_image = self._function("extract_image", bucket, config.extract_image_memory)
        grant_object_reads(self.extract_image.role, bucket, OUTPUT, REQUESTS)
        bucket.grant_put(self.extract_image, f"{IMAGES}*")
        acknowledge_object_grants(self.extract_image.role, bucket, OUTPUT, REQUESTS, IMAGES)
        topics.success.add_subscription(subscriptions.LambdaSubscription(self.extract_image))

    def _function(self, name: str, bucket: s3.IBucket, memory: int) -> lambda_.Function:
        config = self.config
        log_group = logs.LogGroup(
            self,
            f"{name}Logs",
            retention=_retention(config.log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,
        )
        role = iam.Role(self, f"{name}Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
        log_group.grant_write(role)
        function = lambda_.Function(
            self,
            name,
            runtime=lambda_.Runtime(config.runtime, lambda_.RuntimeFamily.PYTHON),
            architecture=_ARCHITECTURES[config.architecture],
            handler="index.lambda_handler",
            code=function_code(name, config),
            layers=[self.layer],
            role=role,
            log_group=log_group,
            memory_size=memory,
            timeout=Duration.seconds(config.timeout),
            reserved_concurrent_executions=config.reserved_concurrency or None,
            on_failure=destinations.SqsDestination(self.failures),
            retry_attempts=2,
            environment={
                BUCKET_ENV: bucket.bucket_name,
                "POWERTOOLS_SERVICE_NAME": name.replace("_", "-"),
                "POWERTOOLS_LOG_LEVEL": config.log_level,
            },
        )
        acknowledge(
            function,
            f"The runtime ({config.runtime}) comes from config.toml [lambda] runtime and must be one that the "
            "official Powertools layer is published for and that numpy, pillow and orjson ship wheels for; "
            "the newest runtime CDK knows can be chosen there once those exist for it.",
            "AwsSolutions-L1",
        )
        return function


def grant_object_reads(role: iam.IRole, bucket: s3.IBucket, *prefixes: str, listed: tuple[str, ...] = ()) -> None:
    """s3:GetObject under each prefix, and s3:ListBucket limited to those prefixes (or `listed`).

    CDK's grant_read would add s3:GetObject*, s3:GetBucket* and s3:List* on the whole bucket; the
    listing is what makes S3 answer a missing key with 404 rather than 403.
    """
    role.add_to_principal_policy(
        iam.PolicyStatement(actions=["s3:GetObject"], resources=[bucket.arn_for_objects(f"{p}*") for p in prefixes])
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["s3:ListBucket"],
            resources=[bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{p}*" for p in listed or prefixes]}},
        )
    )


def acknowledge_object_grants(role: iam.IRole, bucket: s3.IBucket, *prefixes: str) -> None:
    """Acknowledge the key-prefix wildcards of a role's object grants, and s3:Abort* of CDK's grant_put."""
    acknowledge(
        role,
        "Object keys hold inference ids chosen per job, so objects are granted on exact key prefixes with a "
        "trailing wildcard; s3:Abort* (abort a multipart upload) is the one action group of CDK's grant_put.",
        "AwsSolutions-IAM5[Action::s3:Abort*]",
        *(f"AwsSolutions-IAM5[Resource::{arn_of(bucket)}/{prefix}*]" for prefix in prefixes),
    )


_RETENTION = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
}


def _retention(days: int) -> logs.RetentionDays:
    """The shortest CloudWatch retention that keeps logs at least `days` (it allows only some values)."""
    return next((_RETENTION[d] for d in sorted(_RETENTION) if d >= days), logs.RetentionDays.ONE_YEAR)

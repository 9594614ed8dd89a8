"""The application stack: bucket, topics, Lambdas, async endpoints (the main model's and each companion's), scaling
and SSM discovery."""

from __future__ import annotations

import os

from aws_cdk import CfnOutput, Duration, Stack, Tags
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from contract import (
    BUCKET_PARAM,
    COMPANION_PARAMS,
    DEPLOYMENT_TAG,
    ENDPOINT_PARAM,
    ERROR_TOPIC_PARAM,
    FAILURES,
    FAMILY_PARAM,
    OUTPUT,
    REQUESTS,
    SUCCESS_TOPIC_PARAM,
    ssm_name,
)
from infra.config import Config
from infra.model_build.resolve import RESOLVED_MODEL_CONTEXT, ResolvedModel
from infra.parts.async_endpoint import VARIANT, AsyncEndpoint
from infra.parts.endpoint_io import EndpointIO
from infra.parts.functions import NotificationFunctions
from infra.parts.guard import BudgetGuard
from infra.parts.scaling import ScaleToZero
from infra.parts.secure_bucket import AccessLogBucket, secure_bucket
from infra.parts.topics import NotificationTopics


class EndpointStack(Stack):
    """Everything one image needs, from the request object to the PNG."""

    def __init__(self, scope: Construct, construct_id: str, *, config: Config, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        deployment = config.deployment
        logs = AccessLogBucket(self, "AccessLogs")
        self.bucket = secure_bucket(
            self,
            "Bucket",
            logs=logs,
            versioned=config.bucket.versioned,
            lifecycle_rules=_expiry_rules(config.bucket.expire_days, config.bucket.versioned),
        )
        self.topics = NotificationTopics(self, "Topics")
        endpoint_io = EndpointIO(bucket=self.bucket, topics=self.topics)
        resolved = resolved_model(self, config)
        self.functions = NotificationFunctions(self, "Functions", endpoint_io=endpoint_io, config=config.function)
        self.endpoint = AsyncEndpoint(
            self,
            "Async",
            endpoint_io=endpoint_io,
            image_uri=resolved.image_uri,
            model_data_url=resolved.model_data_url,
            environment={**resolved.environment, **config.model.environment},
            model=config.model,
            endpoint=config.endpoint,
            model_package=resolved.model_package,
        )
        self.scaling = ScaleToZero(
            self, "Scaling", endpoint_name=self.endpoint.endpoint_name, variant=VARIANT, config=config.endpoint
        )
        # Each companion model is an endpoint of its own, scaling to zero on its own, on the same bucket and topics.
        self.companions: dict[str, AsyncEndpoint] = {}
        self.companion_scaling: dict[str, ScaleToZero] = {}
        for family, model in config.companions.items():
            companion = resolved.companions[family]
            prefix = family.capitalize()
            self.companions[family] = AsyncEndpoint(
                self,
                f"{prefix}Async",
                endpoint_io=endpoint_io,
                image_uri=companion.image_uri,
                model_data_url=companion.model_data_url,
                environment={**companion.environment, **config.model.environment, **model.environment},
                model=model,
                endpoint=config.endpoint,
                companion=family,
                model_package=companion.model_package,
            )
            self.companion_scaling[family] = ScaleToZero(
                self,
                f"{prefix}Scaling",
                endpoint_name=self.companions[family].endpoint_name,
                variant=VARIANT,
                config=config.endpoint,
            )
        discovery = {
            BUCKET_PARAM: self.bucket.bucket_name,
            ENDPOINT_PARAM: self.endpoint.endpoint_name,
            FAMILY_PARAM: config.family,
            SUCCESS_TOPIC_PARAM: self.topics.success.topic_arn,
            ERROR_TOPIC_PARAM: self.topics.error.topic_arn,
            **{COMPANION_PARAMS[family]: endpoint.endpoint_name for family, endpoint in self.companions.items()},
        }
        for param, value in discovery.items():
            ssm.StringParameter(
                self, f"{param}Parameter", parameter_name=ssm_name(deployment, param), string_value=value
            )
            CfnOutput(self, param, value=value)
        self.guard = None
        if config.guard.alert_email:
            self.guard = BudgetGuard(
                self,
                "Guard",
                deployment=deployment,
                budget_name=config.stack_name("monthly"),
                guard=config.guard,
                endpoint_name=self.endpoint.endpoint_name,
                variant=VARIANT,
                key=self.topics.key,
                companions={family: endpoint.endpoint_name for family, endpoint in self.companions.items()},
            )
        # The budget's filter and Cost Explorer's billed figure find the deployment by this tag. It goes on the
        # resources (the guard's too, hence last), not the stack: stack tags would make CDK Pipelines add a
        # template configuration to the shipped pipeline's deploy action.
        for child in self.node.children:
            Tags.of(child).add(DEPLOYMENT_TAG, deployment)


def resolved_model(scope: Construct, config: Config) -> ResolvedModel:
    """The models that the Synth step resolved (context RESOLVED_MODEL_CONTEXT names its file), as plain values:
    the main model, carrying each companion model of config.toml under `companions`.

    Without that context (a developer's `make synth`, the tests) the values are a placeholder that
    cannot deploy; inside CodeBuild the context is required, so a pipeline never ships the placeholder.
    """
    path = scope.node.try_get_context(RESOLVED_MODEL_CONTEXT)
    if path:
        resolved = ResolvedModel.read(path)
        wanted = {"[model]": (config.model, resolved)}
        wanted |= {
            f"[companions.{family}]": (model, resolved.companions.get(family))
            for family, model in config.companions.items()
        }
        for table, (model, found) in wanted.items():
            if found is None:
                raise ValueError(f"{path} resolved no model for config.toml's {table} ({model.id}): resolve again")
            if found.model_id != model.id or found.instance_type != model.instance_type:
                raise ValueError(
                    f"{path} resolved {found.model_id} on {found.instance_type}, but config.toml's {table} asks "
                    f"for {model.id} on {model.instance_type}: resolve again"
                )
        return resolved
    if os.environ.get("CODEBUILD_BUILD_ID"):
        raise ValueError(f"In the pipeline, synthesis needs --context {RESOLVED_MODEL_CONTEXT}=<resolved-model file>")
    main = ResolvedModel.placeholder(config.model.id, config.region, config.model.instance_type)
    return main.with_companions(
        {
            family: ResolvedModel.placeholder(model.id, config.region, model.instance_type)
            for family, model in config.companions.items()
        }
    )


def _expiry_rules(days: int, versioned: bool) -> list[s3.LifecycleRule]:
    """Expire requests, outputs and failures after `days` (none when 0); uploads never linger."""
    rules = [s3.LifecycleRule(id="AbortUploads", abort_incomplete_multipart_upload_after=Duration.days(1))]
    if days:
        rules += [
            s3.LifecycleRule(
                id=f"Expire-{prefix.rstrip('/')}",
                prefix=prefix,
                expiration=Duration.days(days),
                noncurrent_version_expiration=Duration.days(1) if versioned else None,
            )
            for prefix in (REQUESTS, OUTPUT, FAILURES)
        ]
    return rules

"""The pipeline step that resolves the JumpStart model and streams it into one model.tar.gz."""

from __future__ import annotations

from aws_cdk import Aws, Duration, Stack
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import pipelines
from constructs import Construct

from contract import MODEL_DATA_PARAM, MODEL_IMAGE_PARAM, ssm_name
from infra.config import Config

#: Where JumpStart keeps model data, inference code and metadata (one bucket per region).
JUMPSTART_BUCKETS = ("jumpstart-cache-prod-", "jumpstart-private-cache-prod-")


def model_build_step(
    scope: Construct,
    *,
    source: pipelines.IFileSetProducer,
    models: s3.IBucket,
    config: Config,
) -> pipelines.CodeBuildStep:
    """A CodeBuild step: resolve the model, repackage it into `models`, publish it through SSM."""
    stack = Stack.of(scope)
    parameters = [
        stack.format_arn(service="ssm", resource="parameter", resource_name=ssm_name(config.deployment, name).lstrip("/"))
        for name in (MODEL_IMAGE_PARAM, MODEL_DATA_PARAM)
    ]
    jumpstart = [f"arn:{Aws.PARTITION}:s3:::{prefix}{Aws.REGION}" for prefix in JUMPSTART_BUCKETS]
    return pipelines.CodeBuildStep(
        "BuildModel",
        input=source,
        install_commands=[f"pip install --quiet '{config.build.sagemaker_core}' boto3"],
        commands=["python -m infra.model_build.prepare_model --config infra/config.toml --bucket \"$MODEL_BUCKET\""],
        env={"MODEL_BUCKET": models.bucket_name},
        build_environment=codebuild.BuildEnvironment(
            build_image=codebuild.LinuxBuildImage.from_code_build_image_id(config.build.image),
            compute_type=codebuild.ComputeType[config.build.compute_type],
        ),
        partial_build_spec=codebuild.BuildSpec.from_object({"phases": {"install": {"runtime-versions": {"python": config.build.python}}}}),
        timeout=Duration.hours(2),
        role_policy_statements=[
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:ListBucket"],
                resources=[*jumpstart, *(f"{bucket}/*" for bucket in jumpstart)],
            ),
            iam.PolicyStatement(
                actions=["s3:PutObject", "s3:AbortMultipartUpload", "s3:GetObject"],
                resources=[models.arn_for_objects("models/*")],
            ),
            iam.PolicyStatement(actions=["ssm:PutParameter", "ssm:GetParameter"], resources=parameters),
        ],
    )

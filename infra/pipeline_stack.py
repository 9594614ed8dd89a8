"""The CDK pipeline: source, synth, self-update, model build, endpoint deployment."""

from __future__ import annotations

from collections.abc import Callable

from aws_cdk import CfnOutput, Duration, Stack, Stage, pipelines
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codepipeline_actions as actions
from constructs import Construct

from infra.config import Config
from infra.parts.model_build import model_build_step, synth_step
from infra.parts.nag import acknowledge, arn_of
from infra.parts.pipeline_nag import acknowledge_pipeline
from infra.parts.secure_bucket import AccessLogBucket, secure_bucket
from infra.source_stack import SOURCE_BRANCH, SOURCE_KEY, SourceStack

CDK_CLI = "2"


class PipelineStack(Stack):
    """A CDK Pipelines pipeline that the app starts after each upload of the source bundle.

    It has no trigger of its own: the deployer starts it (and so knows which execution to follow).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        source: SourceStack,
        stage: Callable[[Construct], Stage],
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        logs = AccessLogBucket(self, "AccessLogs")
        self.artifacts = secure_bucket(self, "Artifacts", logs=logs, versioned=False)
        self.models = secure_bucket(self, "Models", logs=logs, versioned=False)
        if source.repository is not None:
            source_input = pipelines.CodePipelineSource.code_commit(
                source.repository, SOURCE_BRANCH, trigger=actions.CodeCommitTrigger.NONE, action_name="Source"
            )
        else:
            source_input = pipelines.CodePipelineSource.s3(
                source.bucket, SOURCE_KEY, trigger=actions.S3Trigger.NONE, action_name="Source"
            )
        synth = synth_step(source=source_input, models=self.models, config=config, cli_version=CDK_CLI)
        node = pipelines.CodeBuildOptions(
            partial_build_spec=codebuild.BuildSpec.from_object(
                {"phases": {"install": {"runtime-versions": {"nodejs": config.build.node}}}}
            )
        )
        self.pipeline = pipelines.CodePipeline(
            self,
            "Pipeline",
            artifact_bucket=self.artifacts,
            cli_version=CDK_CLI,
            synth=synth,
            code_build_defaults=pipelines.CodeBuildOptions(
                build_environment=codebuild.BuildEnvironment(
                    build_image=codebuild.LinuxBuildImage.from_code_build_image_id(config.build.image),
                ),
                timeout=Duration.hours(1),
            ),
            self_mutation_code_build_defaults=node,
            asset_publishing_code_build_defaults=node,
        )
        build_model = model_build_step(
            source=source_input, synth=synth.primary_output, models=self.models, config=config
        )
        self.pipeline.add_stage(stage(self), pre=[build_model])
        self.pipeline.build_pipeline()
        acknowledge_pipeline(
            self.pipeline,
            self.artifacts,
            [self.pipeline.synth_project, self.pipeline.self_mutation_project, build_model.project],
        )
        acknowledge(
            build_model.project,
            "JumpStart names its model and script objects per model and version inside its regional buckets; the "
            "model build step writes only under models/ of the pipeline's own model bucket.",
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::jumpstart-cache-prod-<AWS::Region>/*]",
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::jumpstart-private-cache-prod-<AWS::Region>/*]",
            f"AwsSolutions-IAM5[Resource::{arn_of(self.models)}/models/*]",
        )
        acknowledge(
            self.pipeline.synth_project,
            "The Synth step resolves the JumpStart model first: it reads JumpStart's manifests (open weights and "
            "Marketplace) and the spec objects that they name (keys ending in /specs_v<version>.json, and "
            "proprietary-models/<id>/proprietary_specs_<version>.json) in the region's JumpStart bucket, "
            "read-only, and nothing else there.",
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::jumpstart-cache-prod-<AWS::Region>/*/specs_v*.json]",
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::jumpstart-cache-prod-<AWS::Region>/proprietary-models/*/proprietary_specs_*.json]",
        )
        CfnOutput(self, "PipelineName", value=self.pipeline.pipeline.pipeline_name)
        CfnOutput(self, "ModelBucketName", value=self.models.bucket_name)
        CfnOutput(self, "ArtifactBucketName", value=self.artifacts.bucket_name)

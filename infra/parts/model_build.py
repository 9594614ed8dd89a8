"""The pipeline's JumpStart steps: resolution before synthesis, and the streaming model build."""

from __future__ import annotations

from aws_cdk import Aws, Duration, pipelines
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3

from infra.config import Config
from infra.model_build.resolve import RESOLVED_MODEL_CONTEXT, RESOLVED_MODEL_FILE

#: Where JumpStart keeps model data, inference code and metadata (one bucket per region).
JUMPSTART_BUCKETS = ("jumpstart-cache-prod-", "jumpstart-private-cache-prod-")
#: What the model build step installs: exactly the third-party imports of infra.model_build.
BUILD_REQUIREMENTS = "infra/model_build/requirements.txt"
#: Where the model build step finds the Synth step's output (cdk.out/, with the resolved-model file).
SYNTH_DIR = "synth"
#: JumpStart's metadata objects that sagemaker-core reads to resolve a model: the manifest, then the
#: spec that the manifest names (spec keys end in `/specs_v<version>.json`); for a model that the open-weights
#: manifest lacks, the Marketplace models' manifest and their specs
#: (`proprietary-models/<id>/proprietary_specs_<version>.json`).
JUMPSTART_METADATA = (
    "models_manifest.json",
    "*/specs_v*.json",
    "proprietary-sdk-manifest.json",
    "proprietary-models/*/proprietary_specs_*.json",
)


def _jumpstart_bucket() -> str:
    return f"arn:{Aws.PARTITION}:s3:::{JUMPSTART_BUCKETS[0]}{Aws.REGION}"


def jumpstart_metadata_statement() -> iam.PolicyStatement:
    """Read access to JumpStart's metadata (manifest and specs) in the pipeline's region, nothing else."""
    return iam.PolicyStatement(
        actions=["s3:GetObject"], resources=[f"{_jumpstart_bucket()}/{key}" for key in JUMPSTART_METADATA]
    )


def synth_step(
    *, source: pipelines.IFileSetProducer, models: s3.IBucket, config: Config, cli_version: str
) -> pipelines.CodeBuildStep:
    """Resolve the JumpStart model into plain values, then `cdk synth` with them (and keep the file in cdk.out/)."""
    runtimes = {"python": config.build.python, "nodejs": config.build.node}
    return pipelines.CodeBuildStep(
        "Synth",
        input=source,
        install_commands=["pip install --quiet -r infra/requirements.txt"],
        commands=[
            "python -m infra.model_build.resolve --config infra/config.toml "
            f'--bucket "$MODEL_BUCKET" --out {RESOLVED_MODEL_FILE}',
            f"npx --yes aws-cdk@{cli_version} synth --app 'python -m infra.app' "
            f"--context {RESOLVED_MODEL_CONTEXT}={RESOLVED_MODEL_FILE}",
            f"cp {RESOLVED_MODEL_FILE} cdk.out/{RESOLVED_MODEL_FILE}",
        ],
        env={"MODEL_BUCKET": models.bucket_name},
        primary_output_directory="cdk.out",
        partial_build_spec=codebuild.BuildSpec.from_object({"phases": {"install": {"runtime-versions": runtimes}}}),
        role_policy_statements=[jumpstart_metadata_statement()],
    )


def model_build_step(
    *,
    source: pipelines.IFileSetProducer,
    synth: pipelines.FileSet,
    models: s3.IBucket,
    config: Config,
) -> pipelines.CodeBuildStep:
    """A CodeBuild step: repackage the model that the Synth step resolved into its destination in `models`."""
    jumpstart = [f"arn:{Aws.PARTITION}:s3:::{prefix}{Aws.REGION}" for prefix in JUMPSTART_BUCKETS]
    return pipelines.CodeBuildStep(
        "BuildModel",
        input=source,
        additional_inputs={SYNTH_DIR: synth},
        install_commands=[f"pip install --quiet -r {BUILD_REQUIREMENTS}"],
        commands=[
            "python -m infra.model_build.prepare_model --config infra/config.toml "
            f'--resolved {SYNTH_DIR}/{RESOLVED_MODEL_FILE} --bucket "$MODEL_BUCKET"'
        ],
        env={"MODEL_BUCKET": models.bucket_name},
        build_environment=codebuild.BuildEnvironment(
            build_image=codebuild.LinuxBuildImage.from_code_build_image_id(config.build.image),
            compute_type=codebuild.ComputeType[config.build.compute_type],
        ),
        partial_build_spec=codebuild.BuildSpec.from_object(
            {"phases": {"install": {"runtime-versions": {"python": config.build.python}}}}
        ),
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
            # Without ListBucket, HeadObject answers 403 instead of 404 for a model not built yet.
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[models.bucket_arn],
                conditions={"StringLike": {"s3:prefix": "models/*"}},
            ),
        ],
    )

"""Resolves a JumpStart model to its inference image, model data, inference code and environment.

`python -m infra.model_build.resolve --config infra/config.toml --bucket <model bucket> --out <file>`
runs in the pipeline's Synth step before `cdk synth`: it writes the image URI, the repackaged
model's destination and the container environment as plain values to a JSON file, which the CDK
app reads (context key RESOLVED_MODEL_CONTEXT) and the model build step repackages into. The main
model's file carries each companion model's resolution (config.toml's `[companions.<family>]`) under
`companions`, each with its own destination.

Uses sagemaker-core's own resolution (`sagemaker.core.image_uris`, `model_uris`, `script_uris`,
`environment_variables`). A Marketplace model (listed in JumpStart's proprietary manifest, such as SDXL 1.0) resolves
to the region's model package (its spec's `hosting_model_package_arns`, as sagemaker-core reads it) and to nothing
else: the seller's package holds the image and the weights, so there is no image, model data or build.
It reads JumpStart's metadata from S3, or from local files when both
AWS_JUMPSTART_MANIFEST_LOCAL_ROOT_DIR_OVERRIDE and AWS_JUMPSTART_SPECS_LOCAL_ROOT_DIR_OVERRIDE
name existing directories (then it makes no AWS call at all; sagemaker-core reads no Marketplace metadata
that way, so a model missing from the local open-weights manifest cannot be resolved there).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from contract import S3Location

#: The CDK context key naming the resolved-model file (`cdk synth -c diffusion-desk:resolved-model=<file>`).
RESOLVED_MODEL_CONTEXT = "diffusion-desk:resolved-model"
#: The file the Synth step writes, and copies into cdk.out/ for the model build step.
RESOLVED_MODEL_FILE = "model.resolved.json"


@dataclass(frozen=True, slots=True)
class ModelArtifacts:
    """Where one JumpStart model's parts are, for one region and instance type.

    `script` is None when the model data already carries its inference code (a prepacked artifact).
    """

    image_uri: str
    model: S3Location
    script: S3Location | None
    environment: dict[str, str] = field(default_factory=dict)
    version: str = ""

    @property
    def sources(self) -> tuple[str, ...]:
        return (self.image_uri, self.model.uri, self.script.uri if self.script else "")


def resolve(model_id: str, version: str, region: str, instance_type: str) -> ModelArtifacts:
    """Ask sagemaker-core for the image, model data, inference code (if separate) and environment.

    Like the SageMaker SDK, the script tarball is used only when the spec says so
    (`use_inference_script_uri`: no prepacked artifact and `hosting_use_script_uri`).
    """
    import boto3
    from sagemaker.core import environment_variables, image_uris, model_uris, script_uris
    from sagemaker.core.helper.session_helper import Session
    from sagemaker.core.jumpstart.enums import JumpStartScriptScope
    from sagemaker.core.jumpstart.utils import verify_model_region_and_return_specs

    # The region's own session: sagemaker-core's default one reads JumpStart through the import-time region.
    session = Session(boto3.Session(region_name=region))
    common = {"model_id": model_id, "model_version": version, "region": region, "sagemaker_session": session}
    specs = verify_model_region_and_return_specs(
        model_id=model_id,
        version=version,
        scope=JumpStartScriptScope.INFERENCE,
        region=region,
        sagemaker_session=session,
    )
    image_uri = image_uris.retrieve(framework=None, image_scope="inference", instance_type=instance_type, **common)
    model_uri = model_uris.retrieve(model_scope="inference", instance_type=instance_type, **common)
    script_uri = script_uris.retrieve(script_scope="inference", **common) if specs.use_inference_script_uri() else None
    environment = {"SAGEMAKER_REGION": region}
    environment.update(environment_variables.retrieve_default(instance_type=instance_type, **common))
    return ModelArtifacts(
        image_uri=image_uri,
        model=S3Location.parse(model_uri),
        script=S3Location.parse(script_uri) if script_uri else None,
        environment=environment,
        version=specs.version,
    )


def model_package(model_id: str, version: str, region: str) -> tuple[str, str] | None:
    """A Marketplace model's package ARN in the region and its spec's version, or None for an open-weights model.

    Raises ValueError when the model is a Marketplace one without a package in the region.
    """
    import boto3
    from sagemaker.core.helper.session_helper import Session
    from sagemaker.core.jumpstart.artifacts.model_packages import _retrieve_model_package_arn
    from sagemaker.core.jumpstart.enums import JumpStartModelType, JumpStartScriptScope
    from sagemaker.core.jumpstart.utils import validate_model_id_and_get_type, verify_model_region_and_return_specs

    session = Session(boto3.Session(region_name=region))
    kind = validate_model_id_and_get_type(model_id, region=region, model_version=version, sagemaker_session=session)
    if kind != JumpStartModelType.PROPRIETARY:
        return None
    common = {"region": region, "sagemaker_session": session, "model_type": JumpStartModelType.PROPRIETARY}
    specs = verify_model_region_and_return_specs(
        model_id=model_id, version=version, scope=JumpStartScriptScope.INFERENCE, **common
    )
    arn = _retrieve_model_package_arn(
        model_id=model_id, model_version=version, instance_type=None, scope=JumpStartScriptScope.INFERENCE, **common
    )
    if not arn:
        raise ValueError(f"{model_id} {version} is a Marketplace model without a model package in {region}")
    return arn, specs.version


def destination_for(model_id: str, artifacts: ModelArtifacts, bucket: str) -> S3Location:
    """A key that changes whenever the model's sources change, so CloudFormation replaces the model."""
    digest = hashlib.sha256("\n".join(artifacts.sources).encode()).hexdigest()[:16]
    return S3Location(bucket, f"models/{model_id}/{digest}/model.tar.gz")


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    """What the endpoint stack deploys and the model build step packs, as plain values."""

    model_id: str
    version: str
    region: str
    instance_type: str
    image_uri: str
    model_data_url: str
    environment: dict[str, str]
    model_source: str
    script_source: str | None
    #: The companion models resolved with the main one, by family name (only on the main model's resolution).
    companions: dict[str, ResolvedModel] = field(default_factory=dict)
    #: A Marketplace model's package ARN: then there is no image, model data or environment, and nothing to build.
    model_package: str = ""

    @property
    def builds(self) -> bool:
        """Whether the model build step packs this model (open weights), not a seller's model package."""
        return not self.model_package

    @property
    def destination(self) -> S3Location:
        if not self.builds:
            raise ValueError(f"{self.model_id} is the model package {self.model_package}: it has no model data")
        return S3Location.parse(self.model_data_url)

    def every_model(self) -> tuple[ResolvedModel, ...]:
        """This model, then each companion's, as the model build step packs them."""
        return (self, *self.companions.values())

    def with_companions(self, companions: dict[str, ResolvedModel]) -> ResolvedModel:
        return replace(self, companions=dict(companions))

    def write(self, path: Path | str) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=1, sort_keys=True) + "\n")

    @classmethod
    def read(cls, path: Path | str) -> ResolvedModel:
        try:
            return cls._from_dict(json.loads(Path(path).read_text()))
        except (OSError, ValueError, TypeError, AttributeError) as bad:
            raise ValueError(f"{path} is not a resolved-model file of infra.model_build.resolve: {bad}") from None

    @classmethod
    def _from_dict(cls, data: dict) -> ResolvedModel:
        companions = {name: cls._from_dict(value) for name, value in data.pop("companions", {}).items()}
        return cls(**data, companions=companions)

    @classmethod
    def placeholder(cls, model_id: str, region: str, instance_type: str) -> ResolvedModel:
        """For synthesis on a developer's machine only: values that can never deploy a model."""
        return cls(
            model_id=model_id,
            version="unresolved",
            region=region,
            instance_type=instance_type,
            image_uri=f"000000000000.dkr.ecr.{region}.amazonaws.com/unresolved-placeholder:local-synthesis-only",
            model_data_url=f"s3://unresolved-placeholder/models/{model_id}/local-synthesis-only/model.tar.gz",
            environment={"SAGEMAKER_REGION": region},
            model_source="",
            script_source=None,
        )


def resolve_model(model_id: str, version: str, region: str, instance_type: str, bucket: str) -> ResolvedModel:
    """Resolve the model and name its deterministic destination in the pipeline's model bucket (a Marketplace
    model: its package, and no destination)."""
    package = model_package(model_id, version, region)
    if package is not None:
        arn, resolved_version = package
        return ResolvedModel(
            model_id=model_id,
            version=resolved_version,
            region=region,
            instance_type=instance_type,
            image_uri="",
            model_data_url="",
            environment={},
            model_source="",
            script_source=None,
            model_package=arn,
        )
    artifacts = resolve(model_id, version, region, instance_type)
    return ResolvedModel(
        model_id=model_id,
        version=artifacts.version,
        region=region,
        instance_type=instance_type,
        image_uri=artifacts.image_uri,
        model_data_url=destination_for(model_id, artifacts, bucket).uri,
        environment=artifacts.environment,
        model_source=artifacts.model.uri,
        script_source=artifacts.script.uri if artifacts.script else None,
    )


def main(argv: list[str] | None = None) -> int:
    from infra.config import load_config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=None, help="config.toml (default: the one beside infra/)")
    parser.add_argument("--bucket", required=True, help="the pipeline's model bucket")
    parser.add_argument("--region", default=None, help="default: AWS_REGION, then config.toml's region")
    parser.add_argument(
        "--out", default=RESOLVED_MODEL_FILE, help=f"the JSON file to write (default: {RESOLVED_MODEL_FILE})"
    )
    args = parser.parse_args(argv)
    config = load_config(args.config) if args.config else load_config()
    region = args.region or os.environ.get("AWS_REGION") or config.region
    resolved = resolve_config(config, region, args.bucket)
    resolved.write(args.out)
    for name, model in {"model": resolved, **resolved.companions}.items():
        said = {"image_uri": model.image_uri, "model_data_url": model.model_data_url, "version": model.version}
        if model.model_package:
            said = {"model_package": model.model_package, "version": model.version}
        print(json.dumps({"resolved": name, "model_id": model.model_id, **said}))
    return 0


def resolve_config(config, region: str, bucket: str) -> ResolvedModel:
    """The main model of `config` (an infra.config.Config) resolved, carrying each companion model's resolution."""
    model = config.model
    companions = {
        name: resolve_model(companion.id, companion.version, region, companion.instance_type, bucket)
        for name, companion in config.companions.items()
    }
    main = resolve_model(model.id, model.version, region, model.instance_type, bucket)
    return main.with_companions(companions)


if __name__ == "__main__":
    sys.exit(main())

"""Resolves a JumpStart model to its inference image, model data and inference code.

Uses sagemaker-core's own resolution (`sagemaker.core.image_uris`, `model_uris`, `script_uris`).
It reads JumpStart's metadata from S3, or from local files when both
AWS_JUMPSTART_MANIFEST_LOCAL_ROOT_DIR_OVERRIDE and AWS_JUMPSTART_SPECS_LOCAL_ROOT_DIR_OVERRIDE
name existing directories (then it makes no AWS call at all).
"""

from __future__ import annotations

from dataclasses import dataclass

from contract import S3Location


@dataclass(frozen=True, slots=True)
class ModelArtifacts:
    """Where one JumpStart model's parts are, for one region and instance type."""

    image_uri: str
    model: S3Location
    script: S3Location | None

    @property
    def sources(self) -> tuple[str, ...]:
        return (self.image_uri, self.model.uri, self.script.uri if self.script else "")


def resolve(model_id: str, version: str, region: str, instance_type: str) -> ModelArtifacts:
    """Ask sagemaker-core for the image URI, model data URI and (if separate) inference code URI."""
    from sagemaker.core import image_uris, model_uris, script_uris

    common = {"model_id": model_id, "model_version": version, "region": region}
    image_uri = image_uris.retrieve(
        framework=None, image_scope="inference", instance_type=instance_type, **common
    )
    model_uri = model_uris.retrieve(model_scope="inference", instance_type=instance_type, **common)
    try:
        script_uri = script_uris.retrieve(script_scope="inference", **common)
    except ValueError:
        script_uri = None
    return ModelArtifacts(
        image_uri=image_uri,
        model=S3Location.parse(model_uri),
        script=S3Location.parse(script_uri) if script_uri else None,
    )

"""A replica of JumpStart's content bucket (jumpstart-cache-prod-<region>) in the local cloud's S3.

Laid out like the real one: `models_manifest.json` at the top, a list of headers (model_id,
version, min_version, spec_key), and one spec per model version under
`community_models/<model id>/specs_v<version>.json`, with the fields sagemaker-core reads
(deprecated, inference_vulnerable, supported_inference_instance_types,
hosting_instance_type_variants…). Both the app and sagemaker-core can read it through the
endpoint URL.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from contract.jumpstart import MANIFEST_KEY, content_bucket

#: The GPU types the deploy panel offers, which JumpStart's Stable Diffusion specs list.
DEFAULT_TYPES = ("ml.g5.xlarge", "ml.g5.2xlarge", "ml.g4dn.xlarge", "ml.g4dn.2xlarge", "ml.p3.2xlarge")
IMAGE = ("763104351884.dkr.ecr.{region}.amazonaws.com/"
         "huggingface-pytorch-inference:1.10.2-transformers4.17.0-gpu-py38-cu113-ubuntu20.04")


@dataclass(frozen=True, slots=True)
class ReplicaModel:
    """One model version as JumpStart publishes it."""

    model_id: str
    version: str
    deprecated: bool = False
    deprecated_message: str = ""
    inference_vulnerable: bool = False
    inference_vulnerabilities: tuple[str, ...] = ()
    instance_types: tuple[str, ...] = DEFAULT_TYPES
    min_sdk_version: str = "2.189.0"

    @property
    def spec_key(self) -> str:
        return f"community_models/{self.model_id}/specs_v{self.version}.json"


def spec(model: ReplicaModel, region: str) -> dict[str, Any]:
    """The model's spec JSON in the real shape (the fields the SDK and the app read)."""
    families = sorted({t.split(".")[1] for t in model.instance_types})
    name = model.model_id.removeprefix("model-txt2img-")
    return {
        "model_id": model.model_id,
        "url": f"https://huggingface.co/{name}",
        "version": model.version,
        "min_sdk_version": model.min_sdk_version,
        "training_supported": False,
        "incremental_training_supported": False,
        "hosting_ecr_specs": {"framework": "huggingface", "framework_version": "1.10.2", "py_version": "py38",
                              "huggingface_transformers_version": "4.17.0"},
        "hosting_artifact_key": f"stabilityai-infer/infer-{model.model_id}.tar.gz",
        "hosting_script_key": "source-directory-tarballs/stabilityai/inference/txt2img/v1.2.3/sourcedir.tar.gz",
        "hosting_prepacked_artifact_key": f"stabilityai-infer/prepack/v1.0.0/infer-prepack-{model.model_id}.tar.gz",
        "inference_vulnerable": model.inference_vulnerable,
        "inference_dependencies": [],
        "inference_vulnerabilities": list(model.inference_vulnerabilities),
        "training_vulnerable": False,
        "training_dependencies": [],
        "training_vulnerabilities": [],
        "deprecated": model.deprecated,
        **({"deprecated_message": model.deprecated_message} if model.deprecated_message else {}),
        "inference_environment_variables": [
            {"name": "SAGEMAKER_PROGRAM", "type": "text", "default": "inference.py", "scope": "container",
             "required_for_model_class": True},
            {"name": "SAGEMAKER_REGION", "type": "text", "default": region, "scope": "container",
             "required_for_model_class": True},
        ],
        "default_inference_instance_type": model.instance_types[0] if model.instance_types else None,
        "supported_inference_instance_types": list(model.instance_types),
        "hosting_instance_type_variants": {
            "regional_aliases": {region: {"alias_ecr_uri_1": IMAGE.format(region=region)}},
            "variants": {family: {"regional_properties": {"image_uri": "$alias_ecr_uri_1"}} for family in families},
        },
    }


def publish(s3: Any, region: str, models: Iterable[ReplicaModel]) -> str:
    """Create the region's content bucket with a manifest and a spec per model version; returns the bucket."""
    bucket = content_bucket(region)
    where = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    try:
        s3.create_bucket(Bucket=bucket, **where)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    manifest = []
    for model in models:
        s3.put_object(Bucket=bucket, Key=model.spec_key, Body=json.dumps(spec(model, region)).encode())
        manifest.append({"model_id": model.model_id, "version": model.version, "min_version": model.min_sdk_version,
                         "spec_key": model.spec_key})
    s3.put_object(Bucket=bucket, Key=MANIFEST_KEY, Body=json.dumps(manifest).encode())
    return bucket

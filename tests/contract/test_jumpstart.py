"""contract.jumpstart reads JumpStart's fields as sagemaker-core does (the packaged app has no sagemaker-core)."""

from __future__ import annotations

import pytest
from sagemaker.core.jumpstart.types import JumpStartModelHeader, JumpStartModelSpecs

from app.services.local_cloud.jumpstart import ReplicaModel, spec
from contract.jumpstart import parse_manifest, parse_spec, select

MODELS = [
    ReplicaModel("model-txt2img-a", "2.0.0", deprecated=True, deprecated_message="retired"),
    ReplicaModel("model-txt2img-b", "1.0.0", inference_vulnerable=True, inference_vulnerabilities=("x==1",)),
    ReplicaModel("model-txt2img-c", "1.1.0", instance_types=("ml.g5.xlarge",)),
]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.model_id)
@pytest.mark.parametrize("instance_type", ["ml.g5.xlarge", "ml.g4dn.xlarge", "ml.c5.xlarge"])
def test_the_spec_reads_as_sagemaker_core_reads_it(model, instance_type):
    data = spec(model, "eu-west-1")
    ours, theirs = parse_spec(data), JumpStartModelSpecs(data)

    assert (ours.deprecated, ours.deprecated_message) == (theirs.deprecated, theirs.deprecated_message or "")
    assert (ours.inference_vulnerable, list(ours.inference_vulnerabilities)) == (
        theirs.inference_vulnerable,
        theirs.inference_vulnerabilities,
    )
    assert list(ours.supported_inference_instance_types) == theirs.supported_inference_instance_types
    for region in ("eu-west-1", "us-east-1"):
        assert ours.image_uri(instance_type, region) == theirs.hosting_instance_type_variants.get_image_uri(
            instance_type, region
        )


def test_versions_are_chosen_as_semantic_versions():
    rows = [
        {"model_id": "m", "version": v, "min_version": "2.0.0", "spec_key": f"k{v}"}
        for v in ("1.9.0", "1.10.0", "2.0.1")
    ]
    headers = parse_manifest(rows)
    assert [JumpStartModelHeader(r).spec_key for r in rows] == [h.spec_key for h in headers]
    assert select(headers, "m", "*").version == "2.0.1"
    assert select(headers, "m", "1.*").version == "1.10.0"
    assert select(headers, "m", "1.9.0").version == "1.9.0" and select(headers, "m", "3.0.0") is None

"""Fixtures of the infra tests: local JumpStart metadata and one synthesis per session."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from infra_models import ALERT_EMAIL, SDXL_INSTANCE_TYPE, SDXL_MODEL_ID, companion_config, sdxl_config

MODEL_ID = "model-txt2img-stabilityai-stable-diffusion-v2-1-base"
IMAGE_URI = (
    "763104351884.dkr.ecr.us-east-1.amazonaws.com/"
    "huggingface-pytorch-inference:1.10.2-transformers4.17.0-gpu-py38-cu113-ubuntu20.04"
)
MODEL_KEY = "stabilityai-infer/infer-model-txt2img-stabilityai-stable-diffusion-v2-1-base.tar.gz"
SCRIPT_KEY = "source-directory-tarballs/stabilityai/inference/txt2img/v1.2.3/sourcedir.tar.gz"
JUMPSTART_BUCKET = "jumpstart-cache-prod-us-east-1"

#: A JumpStart spec in the shape of the real one for Stable Diffusion 2.1 base (fields we rely on).
SPEC = {
    "model_id": MODEL_ID,
    "version": "2.0.0",
    "min_sdk_version": "2.49.0",
    "hosting_artifact_key": MODEL_KEY,
    "hosting_script_key": SCRIPT_KEY,
    "hosting_ecr_specs": {
        "framework": "huggingface",
        "framework_version": "1.10.2",
        "py_version": "py38",
        "huggingface_transformers_version": "4.17.0",
    },
    "hosting_instance_type_variants": {
        "regional_aliases": {"us-east-1": {"alias_ecr_uri_1": IMAGE_URI}},
        "variants": {"g5": {"regional_properties": {"image_uri": "$alias_ecr_uri_1"}}},
    },
    "inference_environment_variables": [],
    "training_supported": False,
    "incremental_training_supported": False,
}


@pytest.fixture(scope="session")
def _jumpstart_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("jumpstart")
    manifest, specs = root / "manifest", root / "specs"
    spec_key = "community_models/sd/specs_v2.0.0.json"
    (specs / "community_models" / "sd").mkdir(parents=True)
    manifest.mkdir()
    (specs / spec_key).write_text(json.dumps(SPEC))
    (manifest / "models_manifest.json").write_text(
        json.dumps([{"model_id": MODEL_ID, "version": "2.0.0", "min_version": "2.49.0", "spec_key": spec_key}])
    )
    return manifest, specs


@pytest.fixture
def jumpstart_metadata(_jumpstart_dirs, monkeypatch):
    """Point sagemaker-core at local JumpStart metadata, as its local override documents."""
    manifest, specs = _jumpstart_dirs
    monkeypatch.setenv("AWS_JUMPSTART_MANIFEST_LOCAL_ROOT_DIR_OVERRIDE", str(manifest))
    monkeypatch.setenv("AWS_JUMPSTART_SPECS_LOCAL_ROOT_DIR_OVERRIDE", str(specs))
    return SimpleNamespace(
        model_id=MODEL_ID, image_uri=IMAGE_URI, bucket=JUMPSTART_BUCKET, model_key=MODEL_KEY, script_key=SCRIPT_KEY
    )


@pytest.fixture(scope="session")
def synthesis(tmp_path_factory):
    """The app synthesized once per session (no Lambda bundling: no network in tests).

    A cdk-nag finding without an acknowledgment makes synthesis itself fail, so every test that
    uses this fixture also stands on 0 unacknowledged AwsSolutions findings.
    """
    from dataclasses import replace

    from infra.config import load_config
    from infra.templates import synthesize

    config = load_config()
    config = replace(config, guard=replace(config.guard, alert_email=ALERT_EMAIL))
    return synthesize(config, outdir=tmp_path_factory.mktemp("cdk.out"))


@pytest.fixture(scope="session")
def codecommit_synthesis(tmp_path_factory):
    """The same app with `source_kind = "codecommit"`."""
    from dataclasses import replace

    from infra.config import load_config
    from infra.templates import synthesize

    return synthesize(replace(load_config(), source_kind="codecommit"), outdir=tmp_path_factory.mktemp("cdk.out"))


@pytest.fixture(scope="session")
def sandbox_synthesis(tmp_path_factory):
    """The app synthesized for the sandbox's config, whose endpoint template the local cloud ships."""
    from infra.templates import synthesize_sandbox

    return synthesize_sandbox(outdir=tmp_path_factory.mktemp("cdk.out-sandbox"))


@pytest.fixture(scope="session")
def companion_synthesis(tmp_path_factory):
    """The app synthesized with both companion models (cdk-nag runs on it, as on every synthesis)."""
    from infra.templates import synthesize

    return synthesize(companion_config(), outdir=tmp_path_factory.mktemp("cdk.out-companions"))


@pytest.fixture(scope="session")
def sdxl_resolved():
    """SDXL 1.0 as the Synth step resolves it (tests/local_cloud/test_bare_cloud.py resolves the replica's spec so):
    the region's model package of its spec, and no image, model data or environment."""
    from app.services.local_cloud.jumpstart import ProprietaryModel, proprietary_spec
    from infra.model_build.resolve import ResolvedModel

    spec = proprietary_spec(ProprietaryModel(), "us-east-1")
    return ResolvedModel(
        model_id=SDXL_MODEL_ID,
        version=spec["version"],
        region="us-east-1",
        instance_type=SDXL_INSTANCE_TYPE,
        image_uri="",
        model_data_url="",
        environment={},
        model_source="",
        script_source=None,
        model_package=spec["hosting_model_package_arns"]["us-east-1"],
    )


@pytest.fixture(scope="session")
def sdxl_synthesis(tmp_path_factory, sdxl_resolved):
    """The app synthesized with SDXL 1.0 (a Marketplace model package) as its main model, from its resolution."""
    from infra.templates import synthesize

    return synthesize(sdxl_config(), outdir=tmp_path_factory.mktemp("cdk.out-sdxl"), resolved=sdxl_resolved)

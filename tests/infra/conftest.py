"""Fixtures of the infra tests: local JumpStart metadata and one synthesis per session."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

MODEL_ID = "model-txt2img-stabilityai-stable-diffusion-v2-1-base"
IMAGE_URI = (
    "763104351884.dkr.ecr.us-east-1.amazonaws.com/"
    "huggingface-pytorch-inference:1.10.2-transformers4.17.0-gpu-py38-cu113-ubuntu20.04"
)
MODEL_KEY = "stabilityai-infer/infer-model-txt2img-stabilityai-stable-diffusion-v2-1-base.tar.gz"
SCRIPT_KEY = "source-directory-tarballs/stabilityai/inference/txt2img/v1.2.3/sourcedir.tar.gz"
JUMPSTART_BUCKET = "jumpstart-cache-prod-us-east-1"
#: The session's synthesis has an alert address, as every deploy from the app or the CLI has.
ALERT_EMAIL = "designer@example.com"

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


#: The companion models of the companion synthesis, as config.toml's commented examples name them.
COMPANIONS = {
    "upscale": "model-upscaling-stabilityai-stable-diffusion-x4-upscaler-fp16",
    "inpaint": "model-inpainting-stabilityai-stable-diffusion-2-inpainting-fp16",
}


def companion_config():
    """The shipped config with an alert address and both companions ([companions.upscale], [companions.inpaint])."""
    from dataclasses import replace

    from infra.config import ModelConfig, load_config

    config = load_config()
    companions = {family: ModelConfig(model_id, "2.0.0", "ml.g5.xlarge") for family, model_id in COMPANIONS.items()}
    return replace(config, guard=replace(config.guard, alert_email=ALERT_EMAIL), companions=companions)


@pytest.fixture(scope="session")
def companion_synthesis(tmp_path_factory):
    """The app synthesized with both companion models (cdk-nag runs on it, as on every synthesis)."""
    from infra.templates import synthesize

    return synthesize(companion_config(), outdir=tmp_path_factory.mktemp("cdk.out-companions"))

"""JumpStart resolution with sagemaker-core on local metadata, and the whole model build step."""

from __future__ import annotations

import copy
import io
import json
import tarfile

import botocore.endpoint
import pytest
from moto import settings as moto_settings
from sagemaker.core.jumpstart.accessors import JumpStartModelsAccessor

from contract import S3Location
from infra.config import CONFIG_PATH, load_config
from infra.model_build import prepare_model as build
from infra.model_build.prepare_model import ModelBuildError, prepare_model
from infra.model_build.resolve import ResolvedModel, resolve, resolve_model
from infra.model_build.resolve import main as resolve_main

JUMPSTART_BUCKET = "jumpstart-cache-prod-us-east-1"
MODEL_ID = "model-txt2img-stabilityai-stable-diffusion-v2-1-base"
PREPACKED_ID = "model-txt2img-example-prepacked"
PREPACKED_KEY = "stabilityai-infer/prepack/v1.0.0/infer-prepack-example.tar.gz"
SPEC_ENVIRONMENT = [
    {
        "name": "SAGEMAKER_PROGRAM",
        "type": "text",
        "default": "inference.py",
        "scope": "container",
        "required_for_model_class": True,
    },
    {
        "name": "SAGEMAKER_SUBMIT_DIRECTORY",
        "type": "text",
        "default": "/opt/ml/model/code",
        "scope": "container",
        "required_for_model_class": False,
    },
    {
        "name": "SAGEMAKER_MODEL_SERVER_WORKERS",
        "type": "int",
        "default": 1,
        "scope": "container",
        "required_for_model_class": True,
    },
]


@pytest.fixture
def no_aws_calls(monkeypatch):
    calls = []

    def refuse(self, operation_model, request_dict):
        calls.append(operation_model.name)
        raise AssertionError(f"an AWS call was made: {operation_model.name}")

    monkeypatch.setattr(botocore.endpoint.Endpoint, "make_request", refuse)
    return calls


@pytest.fixture
def spec(_jumpstart_dirs) -> dict:
    """The conftest's JumpStart spec of Stable Diffusion 2.1 base, as sagemaker-core reads it."""
    return json.loads((_jumpstart_dirs[1] / "community_models" / "sd" / "specs_v2.0.0.json").read_text())


@pytest.fixture
def two_models(spec, tmp_path, monkeypatch):
    """Local JumpStart metadata with a script-mode model (with its spec's environment) and a prepacked one."""
    spec = copy.deepcopy(spec)
    aliases = spec["hosting_instance_type_variants"]["regional_aliases"]
    aliases["eu-west-1"] = {
        "alias_ecr_uri_1": aliases["us-east-1"]["alias_ecr_uri_1"].replace("us-east-1", "eu-west-1")
    }
    scripted = {**copy.deepcopy(spec), "inference_environment_variables": SPEC_ENVIRONMENT}
    prepacked = {
        **copy.deepcopy(spec),
        "model_id": PREPACKED_ID,
        "hosting_prepacked_artifact_key": PREPACKED_KEY,
        "inference_environment_variables": SPEC_ENVIRONMENT,
    }
    manifest, specs = tmp_path / "manifest", tmp_path / "specs"
    entries = []
    for spec in (scripted, prepacked):
        key = f"community_models/{spec['model_id']}/specs_v2.0.0.json"
        (specs / key).parent.mkdir(parents=True)
        (specs / key).write_text(json.dumps(spec))
        entries.append({"model_id": spec["model_id"], "version": "2.0.0", "min_version": "2.49.0", "spec_key": key})
    manifest.mkdir()
    (manifest / "models_manifest.json").write_text(json.dumps(entries))
    monkeypatch.setenv("AWS_JUMPSTART_MANIFEST_LOCAL_ROOT_DIR_OVERRIDE", str(manifest))
    monkeypatch.setenv("AWS_JUMPSTART_SPECS_LOCAL_ROOT_DIR_OVERRIDE", str(specs))
    monkeypatch.setattr(JumpStartModelsAccessor, "_cache", None)  # sagemaker-core keeps specs per process


def test_resolution_runs_sagemaker_core_on_local_metadata_without_aws(jumpstart_metadata, no_aws_calls):
    js = jumpstart_metadata
    artifacts = resolve(js.model_id, "*", "us-east-1", "ml.g5.xlarge")

    assert artifacts.image_uri == js.image_uri
    assert artifacts.model == S3Location(js.bucket, js.model_key)
    assert artifacts.script == S3Location(js.bucket, js.script_key)
    assert artifacts.version == "2.0.0"
    assert no_aws_calls == []


def test_an_instance_type_without_an_image_is_refused_by_name(jumpstart_metadata, no_aws_calls):
    with pytest.raises(ValueError, match="ml.c5.xlarge"):
        resolve(jumpstart_metadata.model_id, "*", "us-east-1", "ml.c5.xlarge")


def test_the_environment_is_the_specs_own_with_the_region(two_models, no_aws_calls):
    artifacts = resolve(MODEL_ID, "*", "eu-west-1", "ml.g5.xlarge")

    assert artifacts.environment == {
        "SAGEMAKER_REGION": "eu-west-1",
        "SAGEMAKER_PROGRAM": "inference.py",
        "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
        "SAGEMAKER_MODEL_SERVER_WORKERS": "1",
    }


def test_a_prepacked_model_keeps_its_own_code_and_gets_no_script(two_models, no_aws_calls):
    artifacts = resolve(PREPACKED_ID, "*", "us-east-1", "ml.g5.xlarge")

    assert artifacts.model == S3Location(JUMPSTART_BUCKET, PREPACKED_KEY)
    assert artifacts.script is None


def test_the_resolved_file_names_a_destination_that_changes_with_the_sources(two_models, tmp_path, no_aws_calls):
    out = tmp_path / "model.resolved.json"

    assert resolve_main(["--bucket", "pipeline-models", "--region", "us-east-1", "--out", str(out)]) == 0

    resolved = ResolvedModel.read(out)
    assert (resolved.model_id, resolved.version) == (MODEL_ID, "2.0.0")
    assert resolved.image_uri.endswith(
        "/huggingface-pytorch-inference:1.10.2-transformers4.17.0-gpu-py38-cu113-ubuntu20.04"
    )
    assert resolved.environment["SAGEMAKER_REGION"] == "us-east-1"
    key = resolved.destination.key
    assert resolved.destination.bucket == "pipeline-models"
    assert key.startswith(f"models/{MODEL_ID}/") and key.endswith("/model.tar.gz")
    prepacked = resolve_model(PREPACKED_ID, "*", "us-east-1", "ml.g5.xlarge", "pipeline-models")
    assert prepacked.destination.key.split("/")[2] != key.split("/")[2]


def _tar_gz(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _packed(s3, location: S3Location) -> dict[str, bytes]:
    packed = s3.get_object(Bucket=location.bucket, Key=location.key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(packed), mode="r:gz") as archive:
        return {m.name: archive.extractfile(m).read() for m in archive if m.isfile()}


@pytest.fixture
def buckets(cloud):
    s3 = cloud.client("s3")
    s3.create_bucket(Bucket=JUMPSTART_BUCKET)
    s3.create_bucket(Bucket="pipeline-models")
    return s3


def test_the_build_step_packs_the_model_into_the_resolved_destination_once(cloud, buckets, two_models, spec):
    s3 = buckets
    s3.put_object(
        Bucket=JUMPSTART_BUCKET,
        Key=spec["hosting_artifact_key"],
        Body=_tar_gz({"model_index.json": b"{}", "code/old.py": b"#"}),
    )
    s3.put_object(Bucket=JUMPSTART_BUCKET, Key=spec["hosting_script_key"], Body=_tar_gz({"inference.py": b"# code"}))
    resolved = resolve_model(MODEL_ID, "*", "us-east-1", "ml.g5.xlarge", "pipeline-models")

    first = prepare_model(resolved, "pipeline-models", client=cloud.client)
    again = prepare_model(resolved, "pipeline-models", client=cloud.client)

    assert first["model_data_url"] == again["model_data_url"] == resolved.model_data_url
    assert _packed(s3, resolved.destination) == {"model_index.json": b"{}", "code/inference.py": b"# code"}
    assert (first["reused"], again["reused"]) == (False, True)


def test_a_prepacked_model_keeps_the_code_it_carries(cloud, buckets, two_models, spec):
    s3 = buckets
    carried = {
        "model_index.json": b"{}",
        "code/inference.py": b"# prepacked code",
        "code/requirements.txt": b"diffusers\n",
    }
    s3.put_object(Bucket=JUMPSTART_BUCKET, Key=PREPACKED_KEY, Body=_tar_gz(carried))
    s3.put_object(
        Bucket=JUMPSTART_BUCKET, Key=spec["hosting_script_key"], Body=_tar_gz({"inference.py": b"# other code"})
    )
    resolved = resolve_model(PREPACKED_ID, "*", "us-east-1", "ml.g5.xlarge", "pipeline-models")

    prepare_model(resolved, "pipeline-models", client=cloud.client)

    assert _packed(s3, resolved.destination) == carried


def test_a_file_resolved_for_another_bucket_is_refused(cloud, buckets, two_models):
    resolved = resolve_model(MODEL_ID, "*", "us-east-1", "ml.g5.xlarge", "other-pipeline-models")

    with pytest.raises(ModelBuildError, match="other-pipeline-models"):
        prepare_model(resolved, "pipeline-models", client=cloud.client)


def test_a_missing_model_is_not_built_yet_but_access_denied_is_an_access_problem(cloud, buckets, monkeypatch):
    """S3 answers 404 for a missing key to a caller who may list; a 403 must never read as "missing"."""
    where = S3Location("pipeline-models", "models/x/0123/model.tar.gz")
    assert build._exists(buckets, where) is False

    iam = cloud.client("iam")
    iam.create_user(UserName="no-s3")
    key = iam.create_access_key(UserName="no-s3")["AccessKey"]
    denied = cloud.client("s3", aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
    monkeypatch.setattr(moto_settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)  # the local cloud enforces IAM from here

    with pytest.raises(ModelBuildError, match="s3:ListBucket"):
        build._exists(denied, where)


def test_whether_the_model_is_built_is_asked_as_a_listing_that_a_prefix_scoped_list_grant_covers(
    cloud, buckets, monkeypatch
):
    """Under ListBucket limited to models/, HeadObject on a missing key answers 403: the step must not depend on it."""
    where = S3Location("pipeline-models", "models/x/0123/model.tar.gz")
    iam = cloud.client("iam")
    iam.create_user(UserName="list-only")
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::pipeline-models"}],
    }
    iam.put_user_policy(UserName="list-only", PolicyName="list", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="list-only")["AccessKey"]
    lister = cloud.client("s3", aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
    buckets.put_object(Bucket=where.bucket, Key=f"{where.key}.partial", Body=b"not the model")
    monkeypatch.setattr(moto_settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)

    assert build._exists(lister, where) is False  # a longer key under the same prefix is not the model
    monkeypatch.setattr(moto_settings, "INITIAL_NO_AUTH_ACTION_COUNT", float("inf"))
    buckets.put_object(Bucket=where.bucket, Key=where.key, Body=b"model")
    monkeypatch.setattr(moto_settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
    assert build._exists(lister, where) is True


def test_the_step_reads_its_part_size_from_config_and_its_values_from_the_file(
    cloud, buckets, two_models, spec, tmp_path, monkeypatch
):
    s3 = buckets
    s3.put_object(Bucket=JUMPSTART_BUCKET, Key=spec["hosting_artifact_key"], Body=_tar_gz({"model_index.json": b"{}"}))
    s3.put_object(Bucket=JUMPSTART_BUCKET, Key=spec["hosting_script_key"], Body=_tar_gz({"inference.py": b"# code"}))
    out = tmp_path / "model.resolved.json"
    resolve_model(MODEL_ID, "*", "us-east-1", "ml.g5.xlarge", "pipeline-models").write(out)
    monkeypatch.setenv("AWS_ENDPOINT_URL", cloud.endpoint_url)
    assert load_config().build.part_size_mb >= 5

    assert build.main(["--resolved", str(out), "--bucket", "pipeline-models"]) == 0

    assert set(_packed(s3, ResolvedModel.read(out).destination)) == {"model_index.json", "code/inference.py"}


UPSCALER = "model-upscaling-stabilityai-stable-diffusion-x4-upscaler-fp16"
UPSCALER_KEY = "stabilityai-infer/infer-model-upscaling-stabilityai-stable-diffusion-x4-upscaler-fp16.tar.gz"


@pytest.fixture
def with_upscaler(spec, tmp_path, monkeypatch):
    """Local JumpStart metadata with the main model and the ×4 upscaler, and a config.toml deploying both."""
    upscaler = {**copy.deepcopy(spec), "model_id": UPSCALER, "hosting_artifact_key": UPSCALER_KEY}
    manifest, specs = tmp_path / "manifest", tmp_path / "specs"
    entries = []
    for each in (spec, upscaler):
        key = f"community_models/{each['model_id']}/specs_v2.0.0.json"
        (specs / key).parent.mkdir(parents=True)
        (specs / key).write_text(json.dumps(each))
        entries.append({"model_id": each["model_id"], "version": "2.0.0", "min_version": "2.49.0", "spec_key": key})
    manifest.mkdir()
    (manifest / "models_manifest.json").write_text(json.dumps(entries))
    monkeypatch.setenv("AWS_JUMPSTART_MANIFEST_LOCAL_ROOT_DIR_OVERRIDE", str(manifest))
    monkeypatch.setenv("AWS_JUMPSTART_SPECS_LOCAL_ROOT_DIR_OVERRIDE", str(specs))
    monkeypatch.setattr(JumpStartModelsAccessor, "_cache", None)
    config = tmp_path / "config.toml"
    companion = f'\n[companions.upscale]\nid = "{UPSCALER}"\nversion = "2.0.0"\ninstance_type = "ml.g5.2xlarge"\n'
    config.write_text(CONFIG_PATH.read_text() + companion)
    return config


def test_synth_resolves_each_companion_and_the_build_step_packs_each_into_its_own_destination(
    cloud, buckets, spec, with_upscaler, tmp_path, monkeypatch
):
    s3 = buckets
    s3.put_object(Bucket=JUMPSTART_BUCKET, Key=spec["hosting_artifact_key"], Body=_tar_gz({"model_index.json": b"{}"}))
    s3.put_object(Bucket=JUMPSTART_BUCKET, Key=UPSCALER_KEY, Body=_tar_gz({"upscaler_index.json": b"{}"}))
    s3.put_object(Bucket=JUMPSTART_BUCKET, Key=spec["hosting_script_key"], Body=_tar_gz({"inference.py": b"# code"}))
    out = tmp_path / "model.resolved.json"
    config = ["--config", str(with_upscaler)]

    assert resolve_main([*config, "--bucket", "pipeline-models", "--region", "us-east-1", "--out", str(out)]) == 0
    resolved = ResolvedModel.read(out)
    (upscaler,) = resolved.companions.values()
    assert (resolved.model_id, list(resolved.companions), upscaler.model_id) == (MODEL_ID, ["upscale"], UPSCALER)
    assert upscaler.instance_type == "ml.g5.2xlarge"
    assert upscaler.destination.bucket == "pipeline-models" and upscaler.destination != resolved.destination
    assert upscaler.destination.key.startswith(f"models/{UPSCALER}/")

    monkeypatch.setenv("AWS_ENDPOINT_URL", cloud.endpoint_url)
    assert build.main([*config, "--resolved", str(out), "--bucket", "pipeline-models"]) == 0

    assert set(_packed(s3, resolved.destination)) == {"model_index.json", "code/inference.py"}
    assert set(_packed(s3, upscaler.destination)) == {"upscaler_index.json", "code/inference.py"}


def test_a_resolved_file_from_before_companions_reads_as_one_model(tmp_path):
    """A pipeline's Synth step of an older bundle wrote no `companions`: its file still reads, with none."""
    resolved = ResolvedModel.placeholder(MODEL_ID, "us-east-1", "ml.g5.xlarge")
    data = {k: getattr(resolved, k) for k in resolved.__dataclass_fields__ if k != "companions"}
    (tmp_path / "old.json").write_text(json.dumps(data))

    assert ResolvedModel.read(tmp_path / "old.json") == resolved
    assert ResolvedModel.read(tmp_path / "old.json").every_model() == (resolved,)

"""JumpStart resolution with sagemaker-core on local metadata, and the whole model build step."""

from __future__ import annotations

import io
import tarfile

import botocore.endpoint
import pytest

from contract import MODEL_DATA_PARAM, MODEL_IMAGE_PARAM, S3Location, ssm_name
from infra.config import load_config
from infra.model_build.prepare_model import prepare_model
from infra.model_build.resolve import resolve


@pytest.fixture
def no_aws_calls(monkeypatch):
    calls = []

    def refuse(self, operation_model, request_dict):
        calls.append(operation_model.name)
        raise AssertionError(f"an AWS call was made: {operation_model.name}")

    monkeypatch.setattr(botocore.endpoint.Endpoint, "make_request", refuse)
    return calls


def test_resolution_runs_sagemaker_core_on_local_metadata_without_aws(jumpstart_metadata, no_aws_calls):
    js = jumpstart_metadata
    artifacts = resolve(js.model_id, "*", "us-east-1", "ml.g5.xlarge")

    assert artifacts.image_uri == js.image_uri
    assert artifacts.model == S3Location(js.bucket, js.model_key)
    assert artifacts.script == S3Location(js.bucket, js.script_key)
    assert no_aws_calls == []


def test_an_instance_type_without_an_image_is_refused_by_name(jumpstart_metadata, no_aws_calls):
    with pytest.raises(ValueError, match="ml.c5.xlarge"):
        resolve(jumpstart_metadata.model_id, "*", "us-east-1", "ml.c5.xlarge")


def _tar_gz(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_the_build_step_packs_the_model_and_publishes_it_for_the_endpoint_stack(cloud, jumpstart_metadata):
    js = jumpstart_metadata
    s3 = cloud.client("s3")
    s3.create_bucket(Bucket=js.bucket)
    s3.create_bucket(Bucket="pipeline-models")
    s3.put_object(Bucket=js.bucket, Key=js.model_key, Body=_tar_gz({"model_index.json": b"{}"}))
    s3.put_object(Bucket=js.bucket, Key=js.script_key, Body=_tar_gz({"inference.py": b"# code"}))
    config = load_config()

    first = prepare_model(config, "pipeline-models", "us-east-1", client=cloud.client)
    again = prepare_model(config, "pipeline-models", "us-east-1", client=cloud.client)

    ssm = cloud.client("ssm")
    assert ssm.get_parameter(Name=ssm_name(config.deployment, MODEL_IMAGE_PARAM))["Parameter"]["Value"] == js.image_uri
    data_url = ssm.get_parameter(Name=ssm_name(config.deployment, MODEL_DATA_PARAM))["Parameter"]["Value"]
    assert data_url == first["model_data_url"] == again["model_data_url"]
    location = S3Location.parse(data_url)
    assert location.bucket == "pipeline-models" and location.key.startswith(f"models/{js.model_id}/")
    packed = s3.get_object(Bucket=location.bucket, Key=location.key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(packed), mode="r:gz") as archive:
        assert sorted(archive.getnames()) == ["code/inference.py", "model_index.json"]
    assert (first["reused"], again["reused"]) == (False, True)

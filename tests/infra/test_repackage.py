"""The model repackager against the local cloud's S3: layout, content, bounded memory."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from contract import S3Location
from infra.model_build.repackage import MIN_PART_SIZE, repackage

MB = 1024 * 1024
ROOT = Path(__file__).resolve().parents[2]


def _tar_gz(files: dict[str, bytes], *, dot_prefix: bool = False) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(f"./{name}" if dot_prefix else name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _read_tar_gz(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        return {m.name: archive.extractfile(m).read() for m in archive if m.isfile()}


@pytest.fixture
def s3(cloud):
    client = cloud.client("s3")
    for bucket in ("jumpstart-cache-prod-us-east-1", "models"):
        client.create_bucket(Bucket=bucket)
    return client


def test_model_and_code_become_one_archive_with_code_under_code(s3):
    model_files = {
        "model_index.json": b'{"_class_name": "StableDiffusionPipeline"}',
        "unet/diffusion_pytorch_model.bin": os.urandom(300_000),
        "code/stale.py": b"print('the old inference code')",
    }
    script_files = {"inference.py": b"def model_fn(d): ...", "requirements.txt": b"diffusers\n"}
    s3.put_object(Bucket="jumpstart-cache-prod-us-east-1", Key="sd/model.tar.gz", Body=_tar_gz(model_files))
    s3.put_object(
        Bucket="jumpstart-cache-prod-us-east-1", Key="sd/sourcedir.tar.gz", Body=_tar_gz(script_files, dot_prefix=True)
    )

    result = repackage(
        s3,
        model=S3Location.parse("s3://jumpstart-cache-prod-us-east-1/sd/model.tar.gz"),
        script=S3Location.parse("s3://jumpstart-cache-prod-us-east-1/sd/sourcedir.tar.gz"),
        destination=S3Location.parse("s3://models/models/sd/model.tar.gz"),
        part_size=MIN_PART_SIZE,
    )

    packed = _read_tar_gz(s3.get_object(Bucket="models", Key="models/sd/model.tar.gz")["Body"].read())
    assert packed == {
        "model_index.json": model_files["model_index.json"],
        "unet/diffusion_pytorch_model.bin": model_files["unet/diffusion_pytorch_model.bin"],
        "code/inference.py": script_files["inference.py"],
        "code/requirements.txt": script_files["requirements.txt"],
    }
    assert result.members == 4


def test_an_uncompressed_model_prefix_is_packed_file_by_file(s3):
    files = {"model_index.json": b"{}", "vae/config.json": b'{"a": 1}', "vae/weights.bin": os.urandom(10_000)}
    for name, data in files.items():
        s3.put_object(Bucket="jumpstart-cache-prod-us-east-1", Key=f"sd-prefix/{name}", Body=data)

    repackage(
        s3,
        model=S3Location.parse("s3://jumpstart-cache-prod-us-east-1/sd-prefix/"),
        destination=S3Location.parse("s3://models/models/prefix/model.tar.gz"),
        part_size=MIN_PART_SIZE,
    )

    assert _read_tar_gz(s3.get_object(Bucket="models", Key="models/prefix/model.tar.gz")["Body"].read()) == files


def test_a_failed_repackage_leaves_no_object_and_no_open_upload(s3):
    s3.put_object(Bucket="jumpstart-cache-prod-us-east-1", Key="sd/broken.tar.gz", Body=b"not a tarball at all")

    with pytest.raises(tarfile.TarError):
        repackage(
            s3,
            model=S3Location.parse("s3://jumpstart-cache-prod-us-east-1/sd/broken.tar.gz"),
            destination=S3Location.parse("s3://models/models/broken/model.tar.gz"),
            part_size=MIN_PART_SIZE,
        )

    assert "Contents" not in s3.list_objects_v2(Bucket="models")
    assert not s3.list_multipart_uploads(Bucket="models").get("Uploads")


_MEASURE = """
import json, sys, tracemalloc
import boto3
from contract import S3Location
from infra.model_build.repackage import MIN_PART_SIZE, repackage
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1")
tracemalloc.start()
result = repackage(
    s3,
    model=S3Location.parse("s3://jumpstart-cache-prod-us-east-1/big/model.tar.gz"),
    destination=S3Location.parse("s3://models/models/big/model.tar.gz"),
    part_size=MIN_PART_SIZE,
)
print(json.dumps({"peak": tracemalloc.get_traced_memory()[1], "size": result.size}))
"""


def test_memory_stays_far_below_the_archive_size(s3, cloud):
    weights = os.urandom(40 * MB)  # incompressible, like model weights
    s3.put_object(
        Bucket="jumpstart-cache-prod-us-east-1", Key="big/model.tar.gz", Body=_tar_gz({"weights.bin": weights})
    )
    del weights

    # In its own process, so that the in-process local cloud's memory is not counted.
    run = subprocess.run(
        [sys.executable, "-c", _MEASURE, cloud.endpoint_url],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
        cwd=ROOT,
    )
    figures = json.loads(run.stdout.strip().splitlines()[-1])

    assert figures["size"] > 40 * MB
    assert figures["peak"] < 16 * MB, (
        f"peak {figures['peak'] / MB:.1f} MB while repackaging {figures['size'] / MB:.1f} MB"
    )
    assert s3.head_object(Bucket="models", Key="models/big/model.tar.gz")["ContentLength"] == figures["size"]

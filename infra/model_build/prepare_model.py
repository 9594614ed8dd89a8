"""The model build step: resolve the configured JumpStart model, repackage it, publish it in SSM.

`python -m infra.model_build.prepare_model --config infra/config.toml --bucket <model bucket>`
writes s3://<bucket>/models/<model id>/<digest>/model.tar.gz (skipped when it is already there, so
a re-run after a failure continues) and the SSM parameters that the endpoint stack reads.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from typing import Any, Callable

import boto3
from botocore.exceptions import ClientError

from contract import MODEL_DATA_PARAM, MODEL_IMAGE_PARAM, S3Location, ssm_name
from infra.config import Config, load_config
from infra.model_build.repackage import repackage
from infra.model_build.resolve import ModelArtifacts, resolve

MB = 1024 * 1024


def destination_for(config: Config, artifacts: ModelArtifacts, bucket: str) -> S3Location:
    """A key that changes whenever the model's sources change, so CloudFormation replaces the model."""
    digest = hashlib.sha256("\n".join(artifacts.sources).encode()).hexdigest()[:16]
    return S3Location(bucket, f"models/{config.model.id}/{digest}/model.tar.gz")


def _exists(s3, location: S3Location) -> bool:
    try:
        s3.head_object(Bucket=location.bucket, Key=location.key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True


def prepare_model(config: Config, bucket: str, region: str, client: Callable[[str], Any] | None = None) -> dict:
    """Resolve, repackage (unless done before) and publish; return what was done as a dict.

    `client(service)` makes the boto3 clients (default: the region's, from the usual credentials).
    """
    client = client or boto3.Session(region_name=region).client
    artifacts = resolve(config.model.id, config.model.version, region, config.model.instance_type)
    s3 = client("s3")
    destination = destination_for(config, artifacts, bucket)
    reused = _exists(s3, destination)
    if not reused:
        repackage(
            s3,
            model=artifacts.model,
            script=artifacts.script,
            destination=destination,
            part_size=config.build.part_size_mb * MB,
        )
    ssm = client("ssm")
    for name, value in ((MODEL_IMAGE_PARAM, artifacts.image_uri), (MODEL_DATA_PARAM, destination.uri)):
        ssm.put_parameter(Name=ssm_name(config.deployment, name), Value=value, Type="String", Overwrite=True)
    return {"image_uri": artifacts.image_uri, "model_data_url": destination.uri, "reused": reused}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=None, help="config.toml (default: the one beside infra/)")
    parser.add_argument("--bucket", required=True, help="the pipeline's model bucket")
    parser.add_argument("--region", default=None, help="default: AWS_REGION, then config.toml's region")
    args = parser.parse_args(argv)
    config = load_config(args.config) if args.config else load_config()
    region = args.region or os.environ.get("AWS_REGION") or config.region
    print(json.dumps(prepare_model(config, args.bucket, region)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

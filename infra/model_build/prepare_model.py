"""The model build step: repackage the resolved JumpStart model into exactly its destination.

`python -m infra.model_build.prepare_model --resolved synth/model.resolved.json --bucket <model bucket>`
reads the file that the Synth step's `infra.model_build.resolve` wrote (the endpoint template
carries the same values) and writes s3://<bucket>/models/<model id>/<digest>/model.tar.gz for the
main model and then each companion model (each to its own destination), each skipped when it is
already there, so a re-run after a failure continues. A Marketplace model (its model package) has nothing to build.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

import boto3
from botocore.exceptions import ClientError

from contract import S3Location, object_listed
from infra.config import load_config
from infra.model_build.repackage import repackage
from infra.model_build.resolve import ResolvedModel

MB = 1024 * 1024


class ModelBuildError(RuntimeError):
    """The model build step cannot go on; the message says what to fix."""


def _exists(s3, location: S3Location) -> bool:
    """Whether the model is built already, asked as a listing (what a prefix-limited ListBucket covers).

    HeadObject would answer 403, not 404, for a missing key under that grant; a 403 here is an access problem.
    """
    try:
        return object_listed(s3, location.bucket, location.key)
    except ClientError as error:
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = error.response.get("Error", {}).get("Code")
        if status == 403 or code in ("403", "AccessDenied", "Forbidden"):
            said = error.response.get("Error", {}).get("Message") or ""
            raise ModelBuildError(
                f"S3 refused to say whether {location.uri} exists ({code or 403}: {said}): the build role needs "
                f"s3:ListBucket on s3://{location.bucket} for the prefix models/."
            ) from None
        raise


def prepare_model(
    resolved: ResolvedModel,
    bucket: str,
    *,
    part_size: int = 64 * MB,
    client: Callable[[str], Any] | None = None,
) -> dict:
    """Repackage (unless done before) into the resolved destination; return what was done as a dict.

    `client(service)` makes the boto3 clients (default: the resolved region's, from the usual credentials).
    A Marketplace model's package is the seller's to build: nothing is done for it, and no call is made.
    """
    if not resolved.builds:
        return {"model_package": resolved.model_package, "built": False}
    destination = resolved.destination
    if destination.bucket != bucket:
        raise ModelBuildError(
            f"The resolved model goes to {destination.uri}, not into the model bucket {bucket}: "
            "the Synth step resolved it for another pipeline."
        )
    s3 = (client or boto3.Session(region_name=resolved.region).client)("s3")
    reused = _exists(s3, destination)
    if not reused:
        script = S3Location.parse(resolved.script_source) if resolved.script_source else None
        repackage(
            s3,
            model=S3Location.parse(resolved.model_source),
            script=script,
            destination=destination,
            part_size=part_size,
        )
    return {"image_uri": resolved.image_uri, "model_data_url": destination.uri, "reused": reused}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolved", required=True, help="the resolved-model JSON file from the Synth step")
    parser.add_argument("--bucket", required=True, help="the pipeline's model bucket")
    parser.add_argument("--config", default=None, help="config.toml (default: the one beside infra/)")
    args = parser.parse_args(argv)
    config = load_config(args.config) if args.config else load_config()
    resolved = ResolvedModel.read(args.resolved)
    for model in resolved.every_model():
        done = prepare_model(model, args.bucket, part_size=config.build.part_size_mb * MB)
        print(json.dumps({"model_id": model.model_id, **done}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

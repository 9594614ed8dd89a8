"""Deploying CDK output into the local cloud as the CDK CLI does: bootstrap, publish the assets, deploy the stack.

    bootstrap(client)                                   # the CDKToolkit stack from the shipped bootstrap template
    publish_assets(client, manifest, root)              # each file asset of a CDK assets manifest, zipped, into S3
    outputs = deploy_stack(client, name, template)      # CloudFormation creates (or updates) the stack; its outputs

`client(service)` is an admin client of the local cloud. moto's CloudFormation plus the models in
stack_resources and pipeline_resources make every resource of our templates; the endpoint emulator
and the Lambda runner then read what the stack made (they keep no copy of the architecture).
"""

from __future__ import annotations

import io
import json
import os
import time
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from botocore.client import BaseClient
from botocore.exceptions import ClientError

from app.services.local_cloud import stack_resources  # noqa: F401 - teaches moto's CloudFormation our types

Clients = Callable[[str], BaseClient]
BOOTSTRAP_STACK = "CDKToolkit"
#: What `cdk bootstrap` passes on a new bootstrap stack (as the deployer does).
BOOTSTRAP_PARAMETERS = {"FileAssetsBucketKmsKeyId": "AWS_MANAGED_KEY"}
#: The package every Lambda asset carries beside its function (infra/parts/function_code.py bundles it).
CONTRACT = "contract"
_DONE = ("CREATE_COMPLETE", "UPDATE_COMPLETE")


class StackFailed(RuntimeError):
    """CloudFormation could not create or update the stack; the message says why."""


def bootstrap(client: Clients, template: Path) -> None:
    """Deploy the CDK bootstrap stack (assets bucket, roles, version parameter) unless it is there."""
    cloudformation = client("cloudformation")
    try:
        found = cloudformation.describe_stacks(StackName=BOOTSTRAP_STACK)["Stacks"][0]
    except ClientError:
        found = None
    if found is not None and found["StackStatus"] in _DONE:
        return
    deploy_stack(
        client,
        BOOTSTRAP_STACK,
        template.read_text(encoding="utf-8"),
        parameters=BOOTSTRAP_PARAMETERS,
        capabilities=("CAPABILITY_NAMED_IAM",),
    )


def publish_assets(client: Clients, manifest: Mapping[str, Any], root: Path, *, account: str, region: str) -> list[str]:
    """Put each zip file asset of a CDK assets manifest where its destination says; returns the keys.

    An asset's zip holds its source folder (relative paths are under `root`) and, for a Lambda
    function's folder, the contract package beside it, as the function's bundling does; the third-party
    wheels are the local cloud's own (the handlers run in its process).
    """
    s3 = client("s3")
    keys = []
    for asset in (manifest.get("files") or {}).values():
        source = asset.get("source") or {}
        if source.get("packaging") != "zip":
            continue
        folder = Path(source["path"])
        body = asset_zip(folder if folder.is_absolute() else root / folder, root / CONTRACT)
        for destination in (asset.get("destinations") or {}).values():
            bucket = _substitute(destination["bucketName"], account, region)
            key = _substitute(destination["objectKey"], account, region)
            s3.put_object(Bucket=bucket, Key=key, Body=body)
            keys.append(key)
    return keys


_zips: dict[tuple[str, float], bytes] = {}


def asset_zip(folder: Path, contract: Path) -> bytes:
    """The folder's files (and, when it is a Lambda function's, the contract package) as a zip, cached."""
    parts = [folder] + ([contract] if (folder / "index.py").is_file() and contract.is_dir() else [])
    files = [(base, path) for base in parts for path in sorted(base.rglob("*")) if _packaged(path)]
    stamp = max((os.stat(path).st_mtime for _, path in files), default=0.0)
    key = (str(folder), stamp)
    if key not in _zips:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for base, path in files:
                name = path.relative_to(folder if base == folder else base.parent)
                archive.write(path, name.as_posix())
        _zips[key] = buffer.getvalue()
    return _zips[key]


def _packaged(path: Path) -> bool:
    return path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"


def _substitute(text: str, account: str, region: str) -> str:
    return (
        text.replace("${AWS::AccountId}", account).replace("${AWS::Region}", region).replace("${AWS::Partition}", "aws")
    )


def deploy_stack(
    client: Clients,
    name: str,
    template: str | Mapping[str, Any],
    *,
    parameters: Mapping[str, str] | None = None,
    capabilities: tuple[str, ...] = ("CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"),
    timeout: float = 60.0,
) -> dict[str, str]:
    """Create the stack (or update it when it exists) and wait; returns its outputs by key."""
    cloudformation = client("cloudformation")
    body = template if isinstance(template, str) else json.dumps(template, separators=(",", ":"))
    request = {
        "StackName": name,
        "TemplateBody": body,
        "Capabilities": list(capabilities),
        "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in (parameters or {}).items()],
    }
    try:
        existing = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
    except ClientError:
        existing = None
    if existing is not None and existing["StackStatus"] in _DONE:
        try:
            cloudformation.update_stack(**request)
        except ClientError as exc:
            if "No updates are to be performed" not in str(exc):
                raise
    else:
        if existing is not None:
            cloudformation.delete_stack(StackName=name)
        cloudformation.create_stack(**request)
    deadline = time.monotonic() + timeout
    while True:
        stack = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
        status = stack["StackStatus"]
        if status in _DONE:
            return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs") or []}
        if not status.endswith("_IN_PROGRESS") or time.monotonic() > deadline:
            raise StackFailed(f"{name}: {status} {stack.get('StackStatusReason') or ''}".strip())
        time.sleep(0.02)

"""AWS::S3::Bucket's VersioningConfiguration, which moto's CloudFormation drops; templates at the cloud's URL.

A stack's bucket with `VersioningConfiguration: {Status: Enabled}` is versioned on AWS: an upload
answers with a VersionId, and CodePipeline's S3 source names that version as the run's revision (the
deployer tells its own run from others by it). moto creates the bucket unversioned; the wrapper below
puts the status the template gives, on creation and on an update that keeps the bucket.

A TemplateURL may name the local cloud itself (`http://127.0.0.1:<port>/<bucket>/<key>`: the CDK CLI
builds it from the S3 endpoint it was given); moto reads only amazonaws.com and localhost URLs
path-style, so such a URL is read path-style too.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from moto.cloudformation import responses as cloudformation_responses
from moto.s3.models import FakeBucket, s3_backends
from moto.utilities.utils import get_partition


def _versioned(bucket: Any, properties: dict[str, Any], account_id: str, region_name: str) -> Any:
    status = (properties.get("VersioningConfiguration") or {}).get("Status")
    if status in ("Enabled", "Suspended"):
        s3_backends[account_id][get_partition(region_name)].put_bucket_versioning(bucket.name, status)
    return bucket


def _path_style(read: Any) -> Any:
    def read_template(template_url: str, account_id: str, partition: str) -> str:
        host = urlparse(template_url).hostname or ""
        if host.replace(".", "").isdigit():  # 127.0.0.1: the local cloud's own endpoint
            template_url = template_url.replace(urlparse(template_url).netloc, "localhost", 1)
        return read(template_url, account_id=account_id, partition=partition)

    read_template.__local_cloud__ = True  # type: ignore[attr-defined]
    return read_template


def _install() -> None:
    if not getattr(cloudformation_responses.get_stack_from_s3_url, "__local_cloud__", False):
        cloudformation_responses.get_stack_from_s3_url = _path_style(cloudformation_responses.get_stack_from_s3_url)
    create, update = FakeBucket.create_from_cloudformation_json, FakeBucket.update_from_cloudformation_json
    if getattr(create, "__local_cloud__", False):
        return

    def created(resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any) -> Any:
        bucket = create(resource_name, cloudformation_json, account_id, region_name, **kwargs)
        return _versioned(bucket, cloudformation_json.get("Properties") or {}, account_id, region_name)

    def updated(
        original_resource: Any, new_resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> Any:
        bucket = update(original_resource, new_resource_name, cloudformation_json, account_id, region_name)
        return _versioned(bucket, cloudformation_json.get("Properties") or {}, account_id, region_name)

    created.__local_cloud__ = True  # type: ignore[attr-defined]
    FakeBucket.create_from_cloudformation_json = staticmethod(created)  # type: ignore[method-assign]
    FakeBucket.update_from_cloudformation_json = staticmethod(updated)  # type: ignore[method-assign]


_install()

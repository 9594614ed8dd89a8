"""What IAM checks for one call: each action, on each resource ARN, with the request's condition keys.

Most operations are the action of the same name on the resource their parameters name. S3 is the
exception AWS documents (HeadObject is s3:GetObject, ListObjectsV2 is s3:ListBucket on the bucket
with `s3:prefix`, a copy reads its source, DeleteObjects deletes each key); a few other services get
their ARNs built from names (SSM parameters, SQS queue URLs, SageMaker endpoints, log groups…).
Anything else is checked against the ARN an `…Arn` parameter carries, or "*".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlparse

from app.services.local_cloud.iam_policy import Ask
from app.services.local_cloud.iam_request import Call

#: The IAM prefix of botocore services whose name differs from it.
_PREFIX = {"sagemaker-runtime": "sagemaker", "service-quotas": "servicequotas"}
#: Calls that need no permission at all.
ALWAYS_ALLOWED = {("sts", "GetCallerIdentity")}


@dataclass(frozen=True, slots=True)
class Where:
    """The partition, region and account a request's ARNs are built in."""

    partition: str
    region: str
    account: str

    def arn(self, service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
        return (
            f"arn:{self.partition}:{service}:{self.region if region else ''}:"
            f"{self.account if account else ''}:{resource}"
        )


def asks(call: Call, where: Where, context: Mapping[str, tuple[str, ...]]) -> list[Ask]:
    """Every authorization the call needs; empty for the calls that need none."""
    if (call.service, call.operation) in ALWAYS_ALLOWED:
        return []
    if call.service == "s3":
        return _s3(call, where, context)
    prefix = _PREFIX.get(call.service, call.service)
    action = f"{prefix}:{_ACTION_NAMES.get((call.service, call.operation), call.operation)}"
    resources = _RESOURCES.get(call.service, _no_names)(call.operation, call.params, where)
    return [Ask(action, resource, dict(context)) for resource in resources or _named_arns(call.params)]


def _named_arns(params: Mapping[str, Any]) -> list[str]:
    found = [v for k, v in params.items() if k.lower().endswith("arn") and isinstance(v, str) and v.startswith("arn:")]
    return found or ["*"]


def _no_names(operation: str, params: Mapping[str, Any], where: Where) -> list[str]:
    return []


_ACTION_NAMES = {("lambda", "Invoke"): "InvokeFunction", ("lambda", "InvokeWithResponseStream"): "InvokeFunction"}

_S3_ACTIONS = {
    "HeadObject": "GetObject",
    "SelectObjectContent": "GetObject",
    "HeadBucket": "ListBucket",
    "ListObjects": "ListBucket",
    "ListObjectsV2": "ListBucket",
    "ListObjectVersions": "ListBucketVersions",
    "ListBuckets": "ListAllMyBuckets",
    "DeleteObjects": "DeleteObject",
    "CopyObject": "PutObject",
    "CreateMultipartUpload": "PutObject",
    "UploadPart": "PutObject",
    "UploadPartCopy": "PutObject",
    "CompleteMultipartUpload": "PutObject",
    "ListParts": "ListMultipartUploadParts",
    "ListMultipartUploads": "ListBucketMultipartUploads",
    "GetBucketEncryption": "GetEncryptionConfiguration",
    "PutBucketEncryption": "PutEncryptionConfiguration",
    "DeleteBucketEncryption": "PutEncryptionConfiguration",
    "GetBucketLifecycleConfiguration": "GetLifecycleConfiguration",
    "PutBucketLifecycleConfiguration": "PutLifecycleConfiguration",
    "DeleteBucketLifecycle": "PutLifecycleConfiguration",
    "GetBucketCors": "GetBucketCORS",
    "PutBucketCors": "PutBucketCORS",
    "DeleteBucketCors": "PutBucketCORS",
    "DeleteBucketTagging": "PutBucketTagging",
    "GetPublicAccessBlock": "GetBucketPublicAccessBlock",
    "PutPublicAccessBlock": "PutBucketPublicAccessBlock",
    "DeletePublicAccessBlock": "PutBucketPublicAccessBlock",
    "DeleteBucketOwnershipControls": "PutBucketOwnershipControls",
    "GetBucketNotificationConfiguration": "GetBucketNotification",
    "PutBucketNotificationConfiguration": "PutBucketNotification",
    "GetBucketReplication": "GetReplicationConfiguration",
    "PutBucketReplication": "PutReplicationConfiguration",
    "DeleteBucketReplication": "PutReplicationConfiguration",
    "GetObjectLockConfiguration": "GetBucketObjectLockConfiguration",
    "PutObjectLockConfiguration": "PutBucketObjectLockConfiguration",
    "GetBucketAccelerateConfiguration": "GetAccelerateConfiguration",
    "PutBucketAccelerateConfiguration": "PutAccelerateConfiguration",
}
#: With a VersionId, these act on one version and are the …Version action.
_S3_VERSIONED = {
    "GetObject": "GetObjectVersion",
    "DeleteObject": "DeleteObjectVersion",
    "GetObjectAcl": "GetObjectVersionAcl",
    "PutObjectAcl": "PutObjectVersionAcl",
    "GetObjectTagging": "GetObjectVersionTagging",
    "PutObjectTagging": "PutObjectVersionTagging",
    "DeleteObjectTagging": "DeleteObjectVersionTagging",
}
_S3_LISTINGS = {"ListObjects", "ListObjectsV2", "ListObjectVersions"}
#: Request parameters that S3 offers as condition keys, by member name.
_S3_KEYS = {
    "ACL": "s3:x-amz-acl",
    "ServerSideEncryption": "s3:x-amz-server-side-encryption",
    "SSEKMSKeyId": "s3:x-amz-server-side-encryption-aws-kms-key-id",
    "StorageClass": "s3:x-amz-storage-class",
    "VersionId": "s3:VersionId",
    "CopySource": "s3:x-amz-copy-source",
}


def _s3(call: Call, where: Where, context: Mapping[str, tuple[str, ...]]) -> list[Ask]:
    params, operation = call.params, call.operation
    base = _S3_ACTIONS.get(operation, operation)
    name = _S3_VERSIONED.get(base, base) if params.get("VersionId") and "Key" in params else base
    keys = dict(context)
    keys.update({condition: (str(params[member]),) for member, condition in _S3_KEYS.items() if member in params})
    if operation in _S3_LISTINGS:
        keys["s3:prefix"] = (params.get("Prefix", ""),)
        keys.update(
            {
                f"s3:{k.lower()}": (str(params[m]),)
                for m, k in (("Delimiter", "delimiter"), ("MaxKeys", "max-keys"))
                if m in params
            }
        )
    bucket = params.get("Bucket")
    if operation == "DeleteObjects":
        objects = params.get("Delete", {}).get("Objects", [])
        return [Ask("s3:DeleteObject", _s3_arn(where, bucket, o["Key"]), keys) for o in objects]
    found = [Ask(f"s3:{name}", _s3_arn(where, bucket, params.get("Key")), keys)]
    if "CopySource" in params:
        source, _, version = unquote(params["CopySource"]).lstrip("/").partition("?versionId=")
        source_bucket, _, source_key = source.partition("/")
        action = "s3:GetObjectVersion" if version else "s3:GetObject"
        found.append(Ask(action, _s3_arn(where, source_bucket, source_key), keys))
    return found


def _s3_arn(where: Where, bucket: str | None, key: str | None) -> str:
    if not bucket:
        return "*"
    tail = f"/{key}" if key is not None else ""
    return f"arn:{where.partition}:s3:::{bucket}{tail}"


def _sns(operation: str, params: Mapping[str, Any], where: Where) -> list[str]:
    if operation == "CreateTopic" and "Name" in params:
        return [where.arn("sns", params["Name"])]
    subscription = params.get("SubscriptionArn")
    if subscription and subscription.count(":") >= 6:
        return [subscription.rsplit(":", 1)[0]]
    topic = params.get("TopicArn") or params.get("TargetArn")
    return [topic] if topic else []


def _sqs(operation: str, params: Mapping[str, Any], where: Where) -> list[str]:
    url = params.get("QueueUrl")
    if url:
        account, _, name = urlparse(url).path.strip("/").partition("/")
        return [f"arn:{where.partition}:sqs:{where.region}:{account or where.account}:{name}"]
    if "QueueName" in params:
        owner = params.get("QueueOwnerAWSAccountId") or where.account
        return [f"arn:{where.partition}:sqs:{where.region}:{owner}:{params['QueueName']}"]
    return []


def _ssm(operation: str, params: Mapping[str, Any], where: Where) -> list[str]:
    names = list(params.get("Names") or []) + [params[k] for k in ("Name", "Path") if k in params]
    return [_parameter_arn(str(name), where) for name in names]


def _parameter_arn(name: str, where: Where) -> str:
    parts = name.split(":", 5)
    if name.startswith("arn:") and len(parts) == 6:
        return ":".join(parts[:5] + [parts[5].split(":", 1)[0]])
    bare = name.split(":", 1)[0]  # a `name:version` or `name:label` selector names the same parameter
    return where.arn("ssm", f"parameter/{bare.lstrip('/')}")


def _sagemaker(operation: str, params: Mapping[str, Any], where: Where) -> list[str]:
    """SageMaker's ARNs carry the resource names in lower case."""
    kinds = (("EndpointName", "endpoint"), ("EndpointConfigName", "endpoint-config"), ("ModelName", "model"))
    return [where.arn("sagemaker", f"{kind}/{params[m].lower()}") for m, kind in kinds if m in params]


def _kms(operation: str, params: Mapping[str, Any], where: Where) -> list[str]:
    """The key's ARN; an alias is named as an alias ARN (the authorizer resolves it to its key)."""
    key = params.get("KeyId") or params.get("TargetKeyId")
    if not key:
        return [where.arn("kms", params["AliasName"])] if "AliasName" in params else []
    if key.startswith("arn:"):
        return [key]
    return [where.arn("kms", key if key.startswith("alias/") else f"key/{key}")]


def _logs(operation: str, params: Mapping[str, Any], where: Where) -> list[str]:
    group = params.get("logGroupName") or params.get("logGroupIdentifier")
    if not group:
        return []
    if group.startswith("arn:"):
        return [group]
    stream = params.get("logStreamName")
    return [where.arn("logs", f"log-group:{group}:" + (f"log-stream:{stream}" if stream else "*"))]


def _lambda(operation: str, params: Mapping[str, Any], where: Where) -> list[str]:
    name = params.get("FunctionName")
    if not name:
        return []
    return [name if name.startswith("arn:") else where.arn("lambda", f"function:{name}")]


def _codebuild(operation: str, params: Mapping[str, Any], where: Where) -> list[str]:
    names = [params["projectName"]] if "projectName" in params else list(params.get("names") or [])
    names += [build.split(":", 1)[0] for build in params.get("ids") or []]
    return [n if n.startswith("arn:") else where.arn("codebuild", f"project/{n}") for n in names]


def _codepipeline(operation: str, params: Mapping[str, Any], where: Where) -> list[str]:
    name = params.get("pipelineName") or params.get("name")
    return [where.arn("codepipeline", name)] if isinstance(name, str) else []


def _cloudformation(operation: str, params: Mapping[str, Any], where: Where) -> list[str]:
    stack = params.get("StackName")
    if not stack:
        return []
    return [stack if stack.startswith("arn:") else where.arn("cloudformation", f"stack/{stack}/*")]


def _iam(operation: str, params: Mapping[str, Any], where: Where) -> list[str]:
    """Roles, users and groups by name (on the root path: the local cloud does not look the path up)."""
    kinds = (
        ("RoleName", "role"),
        ("UserName", "user"),
        ("GroupName", "group"),
        ("InstanceProfileName", "instance-profile"),
    )
    named = [where.arn("iam", f"{kind}/{params[m]}", region=False) for m, kind in kinds if m in params]
    return named or ([params["PolicyArn"]] if "PolicyArn" in params else [])


def _ecr(operation: str, params: Mapping[str, Any], where: Where) -> list[str]:
    name = params.get("repositoryName")
    return [where.arn("ecr", f"repository/{name}")] if name else []


def _cloudwatch(operation: str, params: Mapping[str, Any], where: Where) -> list[str]:
    names = list(params.get("AlarmNames") or []) + ([params["AlarmName"]] if "AlarmName" in params else [])
    return [where.arn("cloudwatch", f"alarm:{name}") for name in names] or ["*"]


def _sts(operation: str, params: Mapping[str, Any], where: Where) -> list[str]:
    return [params["RoleArn"]] if "RoleArn" in params else ["*"]


_RESOURCES: dict[str, Callable[[str, Mapping[str, Any], Where], list[str]]] = {
    "sns": _sns,
    "sqs": _sqs,
    "ssm": _ssm,
    "sagemaker": _sagemaker,
    "sagemaker-runtime": _sagemaker,
    "kms": _kms,
    "logs": _logs,
    "lambda": _lambda,
    "codebuild": _codebuild,
    "codepipeline": _codepipeline,
    "cloudformation": _cloudformation,
    "iam": _iam,
    "ecr": _ecr,
    "cloudwatch": _cloudwatch,
    "sts": _sts,
}

"""Buckets with the house defaults: SSE, TLS 1.2 or newer only, no public access, access logs."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.parts.nag import acknowledge

#: What every bucket of ours has: encrypted at rest, TLS 1.2 or newer only, private, owned by the bucket owner.
_HOUSE_DEFAULTS = {
    "encryption": s3.BucketEncryption.S3_MANAGED,
    "enforce_ssl": True,
    "minimum_tls_version": 1.2,
    "block_public_access": s3.BlockPublicAccess.BLOCK_ALL,
    "object_ownership": s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
}


class AccessLogBucket(s3.Bucket):
    """The bucket that receives a stack's S3 server access logs."""

    def __init__(self, scope: Construct, construct_id: str, *, expire_days: int = 90) -> None:
        super().__init__(
            scope,
            construct_id,
            **_HOUSE_DEFAULTS,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(expire_days))],
            removal_policy=RemovalPolicy.DESTROY,
        )
        acknowledge(
            self,
            "This is the access-log bucket itself; logging it into itself would log its own log writes.",
            "AwsSolutions-S1",
        )


def secure_bucket(
    scope: Construct,
    construct_id: str,
    *,
    logs: s3.IBucket,
    versioned: bool,
    lifecycle_rules: list[s3.LifecycleRule] | None = None,
) -> s3.Bucket:
    """A bucket encrypted at rest, reachable over TLS only, private, logging to `logs`.

    It is destroyed with its stack (the deployer empties it first), so teardown leaves nothing.
    """
    return s3.Bucket(
        scope,
        construct_id,
        **_HOUSE_DEFAULTS,
        versioned=versioned,
        server_access_logs_bucket=logs,
        server_access_logs_prefix=f"{construct_id}/",
        lifecycle_rules=lifecycle_rules,
        removal_policy=RemovalPolicy.DESTROY,
    )

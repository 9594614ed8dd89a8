"""Where the app puts the cloud side's source: a versioned bucket, or a CodeCommit repository."""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_codecommit as codecommit
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.config import Config
from infra.parts.secure_bucket import AccessLogBucket, secure_bucket

SOURCE_KEY = "source.zip"
SOURCE_BRANCH = "main"
#: Earlier uploads of source.zip stay this long (the pipeline reads the newest version).
OLD_SOURCE_DAYS = 30


class SourceStack(Stack):
    """`source.zip` in a versioned, encrypted bucket (default), or a CodeCommit repository.

    CodeCommit is closed to new AWS customers, so `source_kind = "codecommit"` is only for
    accounts that still have it.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: Config, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.bucket = None
        self.repository = None
        if config.source_kind == "codecommit":
            self.repository = codecommit.Repository(
                self,
                "Repository",
                repository_name=config.stack_name("source"),
                description="Diffusion Desk cloud side, committed by the app",
            )
            CfnOutput(self, "RepositoryName", value=self.repository.repository_name)
            CfnOutput(self, "Branch", value=SOURCE_BRANCH)
        else:
            logs = AccessLogBucket(self, "AccessLogs")
            self.bucket = secure_bucket(
                self,
                "Bucket",
                logs=logs,
                versioned=True,
                lifecycle_rules=[s3.LifecycleRule(noncurrent_version_expiration=Duration.days(OLD_SOURCE_DAYS))],
            )
            CfnOutput(self, "BucketName", value=self.bucket.bucket_name)
            CfnOutput(self, "SourceKey", value=SOURCE_KEY)

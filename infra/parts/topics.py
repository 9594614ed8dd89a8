"""The success and error topics that the async endpoint notifies."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct


class NotificationTopics(Construct):
    """Two KMS-encrypted, TLS-only SNS topics: `success` and `error`."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "Key",
            description="Encrypts the Diffusion Desk notification topics",
            enable_key_rotation=True,
            # CDK retains keys by default; teardown must not leave a key billed monthly.
            removal_policy=RemovalPolicy.DESTROY,
            pending_window=Duration.days(7),
        )
        self.success = sns.Topic(self, "Success", master_key=self.key, enforce_ssl=True)
        self.error = sns.Topic(self, "Error", master_key=self.key, enforce_ssl=True)

    @property
    def both(self) -> tuple[sns.Topic, sns.Topic]:
        return self.success, self.error

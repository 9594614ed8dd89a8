"""What the async endpoint and the notification functions both work on: the bucket and the topics."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_s3 as s3

from infra.parts.topics import NotificationTopics


@dataclass(frozen=True)
class EndpointIO:
    """The bucket the endpoint reads requests from and writes results to, and the topics it notifies."""

    bucket: s3.IBucket
    topics: NotificationTopics

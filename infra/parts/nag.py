"""Acknowledging cdk-nag findings, each with its reason, on the construct that causes it."""

from __future__ import annotations

from aws_cdk import Acknowledgment, CfnResource, Stack, Validations
from constructs import IConstruct


def acknowledge(construct: IConstruct, reason: str, *findings: str) -> None:
    """Acknowledge each finding (`AwsSolutions-IAM5[Action::s3:Abort*]` or a whole rule id) on `construct`."""
    for finding in findings:
        Validations.of(construct).acknowledge(Acknowledgment(id=finding, reason=reason))


def arn_of(construct: IConstruct) -> str:
    """How cdk-nag names the `Fn::GetAtt Arn` of a construct's resource in a finding: `<LogicalId.Arn>`."""
    resource = construct if isinstance(construct, CfnResource) else construct.node.default_child
    stack = Stack.of(construct)
    return f"<{stack.resolve(stack.get_logical_id(resource))}.Arn>"

"""Reasons for the cdk-nag findings on what CDK Pipelines generates itself."""

from __future__ import annotations

from aws_cdk import Stack, pipelines
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_s3 as s3

from infra.parts.nag import acknowledge, arn_of

_REGIONAL = "arn:<AWS::Partition>:{service}:<AWS::Region>:<AWS::AccountId>:{resource}"


def _ref(project: codebuild.IProject) -> str:
    stack = Stack.of(project)
    return f"<{stack.resolve(stack.get_logical_id(project.node.default_child))}>"


def acknowledge_pipeline(
    pipeline: pipelines.CodePipeline, artifacts: s3.IBucket, projects: list[codebuild.IProject]
) -> None:
    """Acknowledge, with reasons, the findings on CDK Pipelines' own roles and projects."""
    acknowledge(
        pipeline,
        "CDK Pipelines grants each action read/write on its own artifact bucket, whose keys are named per "
        "execution; these are the action groups of grant_read/grant_read_write on that one bucket.",
        f"AwsSolutions-IAM5[Resource::{arn_of(artifacts)}/*]",
        *(
            f"AwsSolutions-IAM5[Action::s3:{action}*]"
            for action in ("Abort", "DeleteObject", "GetBucket", "GetObject", "List")
        ),
    )
    acknowledge(
        pipeline,
        "Build outputs are pipeline artifacts in the artifact bucket, which is encrypted (SSE-S3) and TLS-only; "
        "CodeBuild encrypts its own cache and logs with the AWS-managed key. A customer key would add cost and "
        "key policy without protecting anything more in this single-account pipeline.",
        "AwsSolutions-CB4",
    )
    for project in projects:
        name = _ref(project)
        acknowledge(
            pipeline,
            "CodeBuild's default project policy: log streams of this project's own log group and its own "
            "report groups, which CodeBuild names per build.",
            "AwsSolutions-IAM5[Resource::"
            + _REGIONAL.format(service="logs", resource=f"log-group:/aws/codebuild/{name}:*")
            + "]",
            "AwsSolutions-IAM5[Resource::"
            + _REGIONAL.format(service="codebuild", resource=f"report-group/{name}-*")
            + "]",
        )
    acknowledge(
        pipeline,
        "The self-mutation and asset-publishing roles of CDK Pipelines: cloudformation:DescribeStacks, "
        "s3:ListBucket and codebuild Start/Stop/BatchGetBuilds have no useful resource scoping; sts:AssumeRole is "
        "limited by condition to the CDK bootstrap roles (tag aws-cdk:bootstrap-role); the asset projects' "
        "log groups and report groups are named by CDK at synth time of the stage.",
        "AwsSolutions-IAM5[Resource::*]",
        "AwsSolutions-IAM5[Resource::arn:*:iam::<AWS::AccountId>:role/*]",
        "AwsSolutions-IAM5[Resource::" + _REGIONAL.format(service="logs", resource="log-group:/aws/codebuild/*") + "]",
        "AwsSolutions-IAM5[Resource::" + _REGIONAL.format(service="codebuild", resource="report-group/*") + "]",
    )

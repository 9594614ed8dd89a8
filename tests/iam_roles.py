"""Roles for the IAM tests: create one with a policy, assume it through STS, get a boto3 session as it."""

from __future__ import annotations

import json
from typing import Any

import boto3

TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action: str | list[str], resource: str | list[str], **condition: Any) -> dict[str, Any]:
    statement = {"Effect": "Allow", "Action": action, "Resource": resource}
    return {**statement, "Condition": condition} if condition else statement


def deny(action: str | list[str], resource: str | list[str]) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource}


def create_role(cloud: Any, name: str, document: dict[str, Any] | None = None) -> str:
    """A role trusted by Lambda with `document` as its inline policy; returns its ARN."""
    iam = cloud.client("iam")
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    if document is not None:
        iam.put_role_policy(RoleName=name, PolicyName=f"{name}-policy", PolicyDocument=json.dumps(document))
    return arn


def assume(cloud: Any, role_arn: str, session_name: str = "test-session") -> boto3.Session:
    """A session with the role's temporary credentials, as Lambda hands them to a function."""
    found = cloud.client("sts").assume_role(RoleArn=role_arn, RoleSessionName=session_name)["Credentials"]
    return boto3.Session(
        aws_access_key_id=found["AccessKeyId"],
        aws_secret_access_key=found["SecretAccessKey"],
        aws_session_token=found["SessionToken"],
        region_name=cloud.region,
    )


def role_session(cloud: Any, name: str, *statements: dict[str, Any]) -> boto3.Session:
    return assume(cloud, create_role(cloud, name, policy(*statements)))


def client_as(cloud: Any, session: boto3.Session, service: str) -> Any:
    return session.client(service, endpoint_url=cloud.endpoint_url)

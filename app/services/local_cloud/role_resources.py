"""AWS::IAM::Role's ManagedPolicyArns, which moto's CloudFormation drops.

A stack's role gets the managed policies its template names (the CDK bootstrap's deploy role holds
AWSCloudFormationReadOnlyAccess, which is where its cloudformation:DescribeStacks comes from). moto
creates the role without them, and without AWS's own managed policies loaded at all; the wrapper below
attaches each one, taking an AWS-managed policy from moto's copy of AWS's documents when first named.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from moto.iam.aws_managed_policies import aws_managed_policies_data
from moto.iam.models import AWSManagedPolicy, Role, iam_backends
from moto.utilities.utils import get_partition


@cache
def _aws_documents() -> dict[str, Any]:
    return json.loads(aws_managed_policies_data)


def _attach(role: Any, properties: dict[str, Any], account_id: str, region_name: str) -> Any:
    backend = iam_backends[account_id][get_partition(region_name)]
    for arn in properties.get("ManagedPolicyArns") or []:
        policy = backend.managed_policies.get(arn)
        name = str(arn).rsplit("/", 1)[-1]
        if policy is None and ":iam::aws:policy/" in str(arn) and name in _aws_documents():
            policy = AWSManagedPolicy.from_data(name, account_id, region_name, _aws_documents()[name])
            backend.managed_policies[policy.arn] = policy
        if policy is not None and policy.arn not in role.managed_policies:
            policy.attach_to(role)
    return role


def _detach(resource_name: str, account_id: str, region_name: str) -> None:
    """What the stack attached goes with the role (moto refuses to delete a role that holds managed policies)."""
    backend = iam_backends[account_id][get_partition(region_name)]
    for role in list(backend.roles.values()):
        if role.name == resource_name:
            for policy in list(role.managed_policies.values()):
                policy.detach_from(role)


def _install() -> None:
    create, delete = Role.create_from_cloudformation_json, Role.delete_from_cloudformation_json
    if getattr(create, "__local_cloud__", False):
        return

    def deleted(resource_name: str, cloudformation_json: Any, account_id: str, region_name: str) -> None:
        _detach(resource_name, account_id, region_name)
        delete(resource_name, cloudformation_json, account_id, region_name)

    def created(resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any) -> Any:
        role = create(resource_name, cloudformation_json, account_id, region_name, **kwargs)
        return _attach(role, cloudformation_json.get("Properties") or {}, account_id, region_name)

    created.__local_cloud__ = True  # type: ignore[attr-defined]
    Role.create_from_cloudformation_json = staticmethod(created)  # type: ignore[method-assign]
    Role.delete_from_cloudformation_json = staticmethod(deleted)  # type: ignore[method-assign]


_install()

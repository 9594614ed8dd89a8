"""The synthesized endpoint stack's own role policies, enforced by the local cloud.

The extract_image handler runs behind the success topic under temporary credentials of a role (the
Lambda runner assumes it, as Lambda assumes a function's execution role) that holds exactly the policy
the template gives its function: with the policy intact a job's images appear; without its s3:PutObject
on images/ the handler fails with AccessDenied, as it would on AWS.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from aws_rules import ACCOUNT, REGION, Resolver, resources_of, role_policies
from iam_roles import create_role

import contract
from app.services.local_cloud.runner import load_lambda

#: Shares the session's one synthesis with the other infra tests.
pytestmark = pytest.mark.xdist_group("synthesis")
HANDLER = Path(__file__).resolve().parents[2] / "lambdas" / "extract_image" / "index.py"


@pytest.fixture
def template(synthesis) -> dict:
    return synthesis.templates["endpoint"]


@pytest.fixture
def deployment(cloud):
    """A second deployment without the admin-run handlers: only the role-run one below writes images."""
    return cloud.cloud.provision("roles", lambdas=False)


class _LocalNames(Resolver):
    """The stack's names for the local deployment; queues and log groups get stand-in ARNs of their own."""

    def get_att(self, name: str, attribute: str) -> str:
        kind = self.template.get("Resources", {}).get(name, {}).get("Type", "")
        where = f"{REGION}:{ACCOUNT}"
        if attribute == "Arn" and kind == "AWS::SQS::Queue":
            return f"arn:aws:sqs:{where}:{name}"
        if attribute == "Arn" and kind == "AWS::Logs::LogGroup":
            return f"arn:aws:logs:{where}:log-group:/aws/lambda/{name}:*"
        return super().get_att(name, attribute)


def _logical_id(template: dict, kind: str, prefix: str) -> str:
    (found,) = [key for key in resources_of(template, kind) if key.startswith(prefix)]
    return found


def _extract_image_policy(template: dict, deployment) -> list[dict]:
    """The function role's policies with the stack's bucket and topics named as the local deployment's."""
    names = {
        _logical_id(template, "AWS::S3::Bucket", "Bucket"): deployment.bucket,
        _logical_id(template, "AWS::SNS::Topic", "TopicsSuccess"): deployment.success_topic_arn,
        _logical_id(template, "AWS::SNS::Topic", "TopicsError"): deployment.error_topic_arn,
    }
    resolver = _LocalNames(template, names)
    role = _logical_id(template, "AWS::IAM::Role", "FunctionsextractimageRole")
    return role_policies(template, role, resolver)


def _bucket_policy(template: dict, deployment) -> dict:
    bucket = _logical_id(template, "AWS::S3::Bucket", "Bucket")
    (policy,) = [
        p
        for p in resources_of(template, "AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": bucket}
    ]
    return Resolver(template, {bucket: deployment.bucket})(policy["Properties"]["PolicyDocument"])


def _without_put_on_images(documents: list[dict]) -> list[dict]:
    trimmed = copy.deepcopy(documents)
    for document in trimmed:
        for statement in document["Statement"]:
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            if any(str(r).endswith(f"/{contract.IMAGES}*") for r in resources):
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                statement["Action"] = [a for a in actions if a != "s3:PutObject"]
    return trimmed


def _run_a_job_under(cloud, deployment, documents: list[dict], name: str) -> str:
    """Wire extract_image as the role `name` with `documents`, then complete one job; returns its id."""
    role = create_role(cloud, name)
    iam = cloud.client("iam")
    for index, document in enumerate(documents):
        iam.put_role_policy(RoleName=name, PolicyName=f"policy-{index}", PolicyDocument=json.dumps(document))
    roles = cloud.cloud.runner.roles
    module = load_lambda(
        HANDLER,
        endpoint_url=cloud.endpoint_url,
        region=cloud.region,
        tag=name,
        client=lambda service: roles.client(role, service),
    )
    cloud.cloud.register_handler(
        deployment.success_topic_arn,
        module.lambda_handler,
        env={contract.BUCKET_ENV: deployment.bucket},
        function_name=name,
        role_arn=role,
    )
    inference_id = contract.new_inference_id()
    key = contract.request_key(inference_id)
    body = {"prompt": "a lighthouse", "width": 64, "height": 64, "seed": 3}
    cloud.client("s3").put_object(Bucket=deployment.bucket, Key=key, Body=json.dumps(body).encode())
    cloud.client("sagemaker-runtime").invoke_endpoint_async(
        EndpointName=deployment.endpoint_name,
        InputLocation=f"s3://{deployment.bucket}/{key}",
        InferenceId=inference_id,
        ContentType="application/json",
    )
    cloud.wait_idle()
    return inference_id


def _manifest_written(cloud, deployment, inference_id: str) -> bool:
    listed = cloud.client("s3").list_objects_v2(Bucket=deployment.bucket, Prefix=contract.manifest_key(inference_id))
    return listed.get("KeyCount", 0) == 1


def test_extract_image_writes_the_images_under_its_own_synthesized_policy(cloud, template, deployment):
    tls_only = json.dumps(_bucket_policy(template, deployment))
    cloud.client("s3").put_bucket_policy(Bucket=deployment.bucket, Policy=tls_only)

    inference_id = _run_a_job_under(cloud, deployment, _extract_image_policy(template, deployment), "extract-intact")

    assert cloud.cloud.runner.failures == []
    assert _manifest_written(cloud, deployment, inference_id)
    assert list(cloud.cloud.iam.refusals) == []


def test_without_its_put_on_images_extract_image_fails_with_access_denied(cloud, template, deployment):
    documents = _without_put_on_images(_extract_image_policy(template, deployment))
    cloud.cloud.runner.retry_delays = (0.01, 0.01)

    inference_id = _run_a_job_under(cloud, deployment, documents, "extract-no-put")

    [failure] = cloud.cloud.runner.failures
    assert "AccessDenied" in failure.error and "PutObject" in failure.error
    assert not _manifest_written(cloud, deployment, inference_id)
    refused = {(r.action, r.resource.split("/", 1)[-1].split("/", 1)[0]) for r in cloud.cloud.iam.refusals}
    assert ("s3:PutObject", contract.IMAGES.rstrip("/")) in refused

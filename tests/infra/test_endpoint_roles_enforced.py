"""The synthesized endpoint stack's own role policies, enforced by the local cloud.

The endpoint reads, writes and publishes under the SageMaker execution role (the model's ExecutionRoleArn)
holding the template's policy for it: intact, the job's notification arrives on the success topic and
save_message records it; without sns:Publish, SNS refuses the endpoint with AuthorizationError and the
job never gets its notification.

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
        if attribute == "Arn" and kind == "AWS::KMS::Key" and name in self.names:
            return self.names[name]
        return super().get_att(name, attribute)


def _logical_id(template: dict, kind: str, prefix: str) -> str:
    (found,) = [key for key in resources_of(template, kind) if key.startswith(prefix)]
    return found


def _local_policies(template: dict, deployment, role: str, topic_key: str | None = None) -> list[dict]:
    """The role's policies with the stack's bucket, topics (and their key's ARN) named as the local deployment's."""
    names = {
        _logical_id(template, "AWS::S3::Bucket", "Bucket"): deployment.bucket,
        _logical_id(template, "AWS::SNS::Topic", "TopicsSuccess"): deployment.success_topic_arn,
        _logical_id(template, "AWS::SNS::Topic", "TopicsError"): deployment.error_topic_arn,
    }
    if topic_key:
        names[_logical_id(template, "AWS::KMS::Key", "Topics")] = topic_key
    return role_policies(template, role, _LocalNames(template, names))


def _topic_key(cloud) -> str:
    """The ARN of the KMS key the provisioned stack encrypts its topics with."""
    topic = cloud.client("sns").get_topic_attributes(TopicArn=cloud.deployment.success_topic_arn)["Attributes"]
    key = topic["KmsMasterKeyId"]
    return key if key.startswith("arn:") else f"arn:aws:kms:{cloud.region}:{cloud.cloud.account_id}:key/{key}"


def _extract_image_policy(template: dict, deployment) -> list[dict]:
    return _local_policies(template, deployment, _logical_id(template, "AWS::IAM::Role", "FunctionsextractimageRole"))


def _sagemaker_policy(template: dict, cloud) -> list[dict]:
    """The policies of the role that the stack's SageMaker model names as its ExecutionRoleArn."""
    (model,) = resources_of(template, "AWS::SageMaker::Model").values()
    role = model["Properties"]["ExecutionRoleArn"]["Fn::GetAtt"][0]
    return _local_policies(template, cloud.deployment, role, _topic_key(cloud))


def _bucket_policy(template: dict, deployment) -> dict:
    bucket = _logical_id(template, "AWS::S3::Bucket", "Bucket")
    (policy,) = [
        p
        for p in resources_of(template, "AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": bucket}
    ]
    return Resolver(template, {bucket: deployment.bucket})(policy["Properties"]["PolicyDocument"])


def _without(documents: list[dict], action: str) -> list[dict]:
    """The documents with `action` taken out of every statement (a statement left with none goes)."""
    trimmed = copy.deepcopy(documents)
    for document in trimmed:
        kept = []
        for statement in document["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            statement["Action"] = [a for a in actions if a != action]
            if statement["Action"]:
                kept.append(statement)
        document["Statement"] = kept
    return trimmed


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


def _sagemaker_runs_under(cloud, documents: list[dict]) -> str:
    """The role the provisioned model names as its ExecutionRoleArn, holding only `documents`; returns its ARN."""
    sagemaker = cloud.client("sagemaker")
    endpoint = sagemaker.describe_endpoint(EndpointName=cloud.deployment.endpoint_name)
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    model = sagemaker.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    name = model["ExecutionRoleArn"].rsplit("/", 1)[-1]
    iam = cloud.client("iam")
    # The stack made the role with the template's policy; it gets `documents` instead.
    for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]:
        iam.delete_role_policy(RoleName=name, PolicyName=policy)
    for attached in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
        iam.detach_role_policy(RoleName=name, PolicyArn=attached["PolicyArn"])
    for index, document in enumerate(documents):
        iam.put_role_policy(RoleName=name, PolicyName=f"policy-{index}", PolicyDocument=json.dumps(document))
    return model["ExecutionRoleArn"]


def _submit_one(cloud) -> str:
    deployment = cloud.deployment
    inference_id = contract.new_inference_id()
    key = contract.request_key(inference_id)
    body = {"prompt": "a harbour at dusk", "width": 64, "height": 64, "seed": 5}
    cloud.client("s3").put_object(Bucket=deployment.bucket, Key=key, Body=json.dumps(body).encode())
    cloud.client("sagemaker-runtime").invoke_endpoint_async(
        EndpointName=deployment.endpoint_name,
        InputLocation=f"s3://{deployment.bucket}/{key}",
        InferenceId=inference_id,
        ContentType="application/json",
    )
    cloud.wait_idle()
    return inference_id


def _message_record(cloud, inference_id: str) -> bool:
    """What the user's client reads: the message save_message wrote for the job."""
    listed = cloud.client("s3").list_objects_v2(
        Bucket=cloud.deployment.bucket, Prefix=contract.message_key(inference_id)
    )
    return listed.get("KeyCount", 0) == 1


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[str] = []

    def __call__(self, event: dict, context) -> None:
        self.messages.append(event["Records"][0]["Sns"]["Message"])


def _success_inbox(cloud) -> _Inbox:
    inbox = _Inbox()
    cloud.cloud.register_handler(cloud.deployment.success_topic_arn, inbox, function_name="success-inbox")
    return inbox


def test_the_endpoint_notifies_under_its_synthesized_execution_role(cloud, template):
    cloud.client("s3").put_bucket_policy(
        Bucket=cloud.deployment.bucket, Policy=json.dumps(_bucket_policy(template, cloud.deployment))
    )
    role = _sagemaker_runs_under(cloud, _sagemaker_policy(template, cloud))
    inbox = _success_inbox(cloud)

    inference_id = _submit_one(cloud)

    assert cloud.cloud.emulator.undelivered == []
    [message] = inbox.messages
    notification = contract.parse_notification(message)
    assert (notification.inference_id, notification.status) == (inference_id, contract.COMPLETED)
    assert _message_record(cloud, inference_id)
    assert list(cloud.cloud.iam.refusals) == []
    assert cloud.cloud.emulator.roles.assumed == {role}  # the reads, writes and publish ran as the role


def test_without_sns_publish_the_endpoint_is_refused_and_the_job_gets_no_notification(cloud, template):
    documents = _without(_sagemaker_policy(template, cloud), "sns:Publish")
    role = _sagemaker_runs_under(cloud, documents)
    inbox = _success_inbox(cloud)

    inference_id = _submit_one(cloud)

    [undelivered] = cloud.cloud.emulator.undelivered
    assert (undelivered.inference_id, undelivered.topic) == (inference_id, cloud.deployment.success_topic_arn)
    assert undelivered.role_arn == role and undelivered.code == "AuthorizationError"
    assert inbox.messages == [] and not _message_record(cloud, inference_id)
    refused = [(r.action, r.resource, r.code) for r in cloud.cloud.iam.refusals]
    assert refused == [("sns:Publish", cloud.deployment.success_topic_arn, "AuthorizationError")]
    output = cloud.client("s3").list_objects_v2(Bucket=cloud.deployment.bucket, Prefix=contract.OUTPUT)
    assert output.get("KeyCount", 0) == 1  # the image was made and written; only its notification is missing

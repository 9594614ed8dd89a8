"""The sandbox (and every test's deployment) is the endpoint stack's shipped template, deployed by CloudFormation.

`provision` makes nothing by hand: the stack's Lambdas have the template's memory and environment, the
endpoint its instance type, the SSM parameters the deployment's names, and one image goes through the
stack's own functions, each under its own role, as on AWS.
"""

from __future__ import annotations

import json

import contract
from app.services.deploy.bundle import templates_dir
from app.services.local_cloud.sandbox_stack import TEMPLATE, stack_name

SHIPPED = json.loads((templates_dir() / TEMPLATE).read_text())


def _stack_resources(cloud, name: str) -> dict[str, dict]:
    listed = cloud.client("cloudformation").list_stack_resources(StackName=name)["StackResourceSummaries"]
    return {r["LogicalResourceId"]: r for r in listed}


def _functions(cloud) -> dict[str, dict]:
    """The stack's Lambda functions' configurations, by logical id."""
    resources = _stack_resources(cloud, stack_name(cloud.deployment.name))
    return {
        logical: cloud.client("lambda").get_function(FunctionName=r["PhysicalResourceId"])["Configuration"]
        for logical, r in resources.items()
        if r["ResourceType"] == "AWS::Lambda::Function"
    }


def test_the_deployment_is_the_templates_stack_under_its_own_names(cloud):
    resources = _stack_resources(cloud, "diffusion-desk-test-endpoint")

    assert set(resources) == set(SHIPPED["Resources"])
    functions = _functions(cloud)
    assert len(functions) == 2
    for logical, configuration in functions.items():
        declared = SHIPPED["Resources"][logical]["Properties"]
        assert configuration["MemorySize"] == declared["MemorySize"]
        assert configuration["Timeout"] == declared["Timeout"]
        environment = configuration["Environment"]["Variables"]
        assert set(environment) == set(declared["Environment"]["Variables"])
        assert environment[contract.BUCKET_ENV] == cloud.deployment.bucket
    ssm = cloud.client("ssm")
    assert ssm.get_parameter(Name=contract.ssm_name("test", contract.ENDPOINT_PARAM))["Parameter"]["Value"] == (
        cloud.deployment.endpoint_name
    )
    assert cloud.deployment.endpoint_name == "diffusion-desk-test-endpoint-ml-g4dn-2xlarge"
    sagemaker = cloud.client("sagemaker")
    endpoint = sagemaker.describe_endpoint(EndpointName=cloud.deployment.endpoint_name)
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    assert config["ProductionVariants"][0]["InstanceType"] == "ml.g4dn.2xlarge"
    model = sagemaker.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    assert "sandbox-engine" in model["PrimaryContainer"]["Image"]
    tags = sagemaker.list_tags(ResourceArn=endpoint["EndpointArn"])["Tags"]
    assert {"Key": contract.DEPLOYMENT_TAG, "Value": "test"} in tags


def test_an_image_comes_back_through_the_stacks_own_functions_each_under_its_role(cloud, submit):
    reply = submit({"prompt": "a lighthouse at dusk", "width": 64, "height": 64, "seed": 7}, InferenceId="job-1")
    cloud.cloud.wait_idle()

    bucket = cloud.deployment.bucket
    listed = cloud.client("s3").list_objects_v2(Bucket=bucket, Prefix=f"{contract.IMAGES}{reply['InferenceId']}/")
    assert sorted(o["Key"] for o in listed.get("Contents", [])) == [
        f"{contract.IMAGES}job-1/0.png",
        contract.manifest_key("job-1"),
    ]
    runner = cloud.cloud.runner
    functions = _functions(cloud)
    assert runner.failures == [] and runner.refused == [] and list(cloud.cloud.iam.refusals) == []
    assert sorted(runner.invocations) == sorted(f["FunctionName"] for f in functions.values())
    assert runner.roles.assumed == {f["Role"] for f in functions.values()}


def test_a_long_deployment_name_still_names_an_endpoint_sagemaker_accepts(cloud):
    deployment = cloud.cloud.provision("a-deployment-name-long-enough-to-overflow", lambdas=False)

    assert len(deployment.endpoint_name) <= 63
    assert deployment.endpoint_name.startswith("diffusion-desk-a-deployment-name")
    ssm = cloud.client("ssm")
    name = contract.ssm_name(deployment.name, contract.BUCKET_PARAM)
    assert ssm.get_parameter(Name=name)["Parameter"]["Value"] == deployment.bucket
    assert [
        s
        for s in cloud.client("sns").list_subscriptions()["Subscriptions"]
        if s["TopicArn"] in (deployment.success_topic_arn, deployment.error_topic_arn)
    ] == []

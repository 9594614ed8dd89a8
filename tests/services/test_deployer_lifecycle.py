"""Deploying on the local cloud: the model is judged from JumpStart's metadata before any stack, the CDK
bootstrap is deployed as `cdk bootstrap` does, and the pipeline runs once, after source.zip exists.

JumpStart's metadata is a replica of its content bucket in the local cloud's S3 (moto, over HTTP);
CloudFormation and S3 are moto's. CodePipeline's executions (ListPipelineExecutions,
StartPipelineExecution, GetPipelineState, GetPipelineExecution) are the local CodePipeline's, running the
small real pipeline of test_deployer.py (its `Pipeline` helper says what the next runs do).
"""

from __future__ import annotations

import pytest
from test_deployer import (  # noqa: F401  (the fixtures)
    MODEL,
    OPTIONS,
    PINNED,
    STACKS,
    Pipeline,
    cloud,
    deployer,
    messages,
    run,
    source_zip,
    templates,
)

from app.services.deploy import bundle as deploy_bundle
from app.services.deploy.bundle import DeployOptions
from app.services.deploy.deployer import BOOTSTRAP_STACK, BOOTSTRAP_TEMPLATE
from app.services.errors import UserError
from app.services.local_cloud.jumpstart import ReplicaModel, publish

pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse:UserWarning")
SD2 = "model-txt2img-stabilityai-stable-diffusion-v2"
RETIRED = "Stability AI deprecated the Stable Diffusion 2 family in December 2025."
G5_ONLY = ("ml.g5.xlarge", "ml.g5.2xlarge")
DECLARED = (
    "TrustedAccounts",
    "TrustedAccountsForLookup",
    "CloudFormationExecutionPolicies",
    "FileAssetsBucketName",
    "FileAssetsBucketKmsKeyId",
    "ContainerAssetsRepositoryName",
    "Qualifier",
    "PublicAccessBlockConfiguration",
    "InputPermissionsBoundary",
    "UseExamplePermissionsBoundary",
    "ApplyPermissionsBoundaryToAllRoles",
    "BootstrapVariant",
    "DenyExternalId",
)


def catalogue(cloud, *models: ReplicaModel) -> None:
    """JumpStart's bucket as of 2026: the SD 2 family deprecated, plus the models given."""
    publish(
        cloud.client("s3"),
        cloud.region,
        [
            ReplicaModel(MODEL, "1.0.0", deprecated=True, deprecated_message=RETIRED),
            ReplicaModel(MODEL, PINNED, deprecated=True, deprecated_message=RETIRED),
            ReplicaModel(SD2, "2.0.0", deprecated=True, deprecated_message=RETIRED),
            ReplicaModel("model-txt2img-acme-painter", "1.2.0"),
            ReplicaModel("model-txt2img-acme-sketch", "3.0.0", instance_types=G5_ONLY),
            ReplicaModel(
                "model-txt2img-acme-leaky",
                "1.0.0",
                inference_vulnerable=True,
                inference_vulnerabilities=("transformers==4.17.0",),
            ),
            ReplicaModel("huggingface-llm-acme-chat", "1.0.0"),
            *models,
        ],
    )


def stack_names(cloud) -> list[str]:
    return [s["StackName"] for s in cloud.client("cloudformation").describe_stacks()["Stacks"]]


def test_a_deprecated_model_is_refused_before_any_stack_and_the_usable_ones_are_listed(cloud, deployer):
    catalogue(cloud)

    with pytest.raises(UserError) as refused:
        run(deployer.deploy(OPTIONS))

    text = str(refused.value)
    assert f"JumpStart has deprecated {MODEL} version {PINNED}: {RETIRED}" in text
    assert "usable on ml.g5.xlarge in us-east-1: model-txt2img-acme-painter, model-txt2img-acme-sketch." in text
    assert "leaky" not in text and "llm" not in text
    assert stack_names(cloud) == []


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (
            DeployOptions("model-txt2img-nobody-knows", "ml.g5.xlarge", 1),
            "JumpStart has no model model-txt2img-nobody-knows in us-east-1.",
        ),
        (
            DeployOptions("model-txt2img-acme-leaky", "ml.g5.xlarge", 1),
            "JumpStart marks model-txt2img-acme-leaky version 1.0.0 as vulnerable (transformers==4.17.0).",
        ),
        (
            DeployOptions("model-txt2img-acme-sketch", "ml.p3.2xlarge", 1),
            "JumpStart does not offer model-txt2img-acme-sketch version 3.0.0 on ml.p3.2xlarge in us-east-1 "
            "(it runs on ml.g5.xlarge, ml.g5.2xlarge). Text-to-image models usable on ml.p3.2xlarge in us-east-1: "
            "model-txt2img-acme-painter.",
        ),
    ],
)
def test_an_unknown_vulnerable_or_unoffered_model_is_refused_in_words(cloud, deployer, options, says):
    catalogue(cloud)
    deploy_bundle.pin_model_version(deployer.dirs, "*")

    with pytest.raises(UserError) as refused:
        run(deployer.deploy(options))

    assert says in str(refused.value)
    assert stack_names(cloud) == []


def test_a_version_jumpstart_does_not_have_is_named_with_the_ones_it_has(cloud, deployer):
    catalogue(cloud)
    deploy_bundle.pin_model_version(deployer.dirs, "9.9.9")

    with pytest.raises(
        UserError, match=r"no version 9.9.9 of model-txt2img-acme-painter in us-east-1 \(it has 1.2.0\)"
    ):
        run(deployer.deploy(DeployOptions("model-txt2img-acme-painter", "ml.g5.xlarge", 1)))


def test_deploy_keeps_the_pinned_version_and_update_moves_to_the_newest_and_says_so(cloud, deployer, dirs):
    painter = "model-txt2img-acme-painter"
    catalogue(cloud, ReplicaModel(painter, "1.10.0"), ReplicaModel(painter, "1.11.0", deprecated=True))
    deploy_bundle.pin_model_version(dirs, "1.2.0")
    options = DeployOptions(painter, "ml.g5.xlarge", 1)
    pipeline = Pipeline(deployer, cloud).succeeds()

    events, _ = run(deployer.deploy(options))

    pipeline.done()
    assert f"Model {painter}: version 1.2.0 → 1.10.0 available (press Update to use it)" in messages(events)
    assert 'version = "1.2.0"' in source_zip(cloud).read("infra/config.toml").decode()
    pipeline = Pipeline(deployer, cloud).succeeds()

    events, _ = run(deployer.update(options))

    pipeline.done()
    assert f"Model {painter}: version 1.2.0 → 1.10.0 used" in messages(events)
    assert 'version = "1.10.0"' in source_zip(cloud).read("infra/config.toml").decode()
    assert deploy_bundle.parse(deploy_bundle.read_config_text(dirs)).model.version == "1.10.0"


def test_a_wildcard_version_is_pinned_to_the_newest_usable_one_before_the_build_sees_it(cloud, deployer, dirs):
    painter = "model-txt2img-acme-painter"
    catalogue(cloud, ReplicaModel(painter, "2.0.0", inference_vulnerable=True))
    deploy_bundle.pin_model_version(dirs, "*")
    pipeline = Pipeline(deployer, cloud).succeeds()

    events, _ = run(deployer.deploy(DeployOptions(painter, "ml.g5.xlarge", 1)))

    pipeline.done()
    assert f"Model {painter}: version * → 1.2.0 used" in messages(events)
    assert 'version = "1.2.0"' in source_zip(cloud).read("infra/config.toml").decode()


def bootstrap(cloud) -> dict:
    stack = cloud.client("cloudformation").describe_stacks(StackName=BOOTSTRAP_STACK)["Stacks"][0]
    return {p["ParameterKey"]: p.get("ParameterValue") for p in stack["Parameters"]}


def bootstrap_types(cloud) -> set[str]:
    resources = cloud.client("cloudformation").list_stack_resources(StackName=BOOTSTRAP_STACK)["StackResourceSummaries"]
    return {r["ResourceType"] for r in resources}


def test_a_first_bootstrap_uses_s3s_managed_key_as_cdk_bootstrap_does(cloud, deployer):
    pipeline = Pipeline(deployer, cloud).succeeds()

    run(deployer.deploy(OPTIONS))

    pipeline.done()
    assert bootstrap(cloud)["FileAssetsBucketKmsKeyId"] == "AWS_MANAGED_KEY"
    assert "AWS::KMS::Key" not in bootstrap_types(cloud)  # no customer-managed key billed every month


def test_updating_an_old_bootstrap_keeps_its_trusted_accounts_policies_and_key(cloud, deployer, templates):
    body = (templates / BOOTSTRAP_TEMPLATE).read_text().replace("Value: '33'", "Value: '5'")
    kept = {
        "TrustedAccounts": "111122223333",
        "CloudFormationExecutionPolicies": "arn:aws:iam::aws:policy/PowerUserAccess",
        "FileAssetsBucketKmsKeyId": "",
    }
    # Every parameter given explicitly: moto answers UsePreviousValue only for parameters passed at creation
    # (AWS also keeps defaulted ones); `cdk bootstrap --trust … --bootstrap-customer-key` passes most of them.
    given = dict(
        dict.fromkeys(DECLARED, ""),
        Qualifier="hnb659fds",
        PublicAccessBlockConfiguration="true",
        UseExamplePermissionsBoundary="false",
        ApplyPermissionsBoundaryToAllRoles="false",
        BootstrapVariant="AWS CDK: Default Resources",
        DenyExternalId="true",
        **kept,
    )
    cloud.client("cloudformation").create_stack(
        StackName=BOOTSTRAP_STACK,
        TemplateBody=body,
        Capabilities=["CAPABILITY_NAMED_IAM"],
        Parameters=[{"ParameterKey": key, "ParameterValue": value} for key, value in given.items()],
    )
    assert "AWS::KMS::Key" in bootstrap_types(cloud)  # the account chose its own key earlier
    before = bootstrap(cloud)
    sent = []
    deployer.stacks.client.meta.events.register(
        "provide-client-params.cloudformation.UpdateStack", lambda params, **kwargs: sent.append(params)
    )
    pipeline = Pipeline(deployer, cloud).succeeds()

    events, _ = run(deployer.deploy(OPTIONS))

    pipeline.done()
    # AWS gives every parameter that UpdateStack leaves out its template default (moto keeps the old values):
    (update,) = [params for params in sent if params["StackName"] == BOOTSTRAP_STACK]
    passed = {p["ParameterKey"]: p for p in update.get("Parameters", [])}
    applied = {
        key: given[key]
        if passed.get(key, {}).get("UsePreviousValue")
        else passed.get(key, {}).get("ParameterValue", "")
        for key in kept
    }
    assert applied == kept
    assert "CDK bootstrap: version 5" in messages(events) and f"{BOOTSTRAP_STACK}: UPDATE_COMPLETE" in messages(events)
    assert cloud.client("ssm").get_parameter(Name="/cdk-bootstrap/hnb659fds/version")["Parameter"]["Value"] == "33"
    after = bootstrap(cloud)
    assert {key: after[key] for key in kept} == {key: before[key] for key in kept}
    assert "111122223333" in after["TrustedAccounts"] and "PowerUserAccess" in after["CloudFormationExecutionPolicies"]
    assert "AWS::KMS::Key" in bootstrap_types(cloud)


def test_the_pipeline_is_created_after_source_zip_and_its_first_run_is_followed_not_doubled(cloud, deployer):
    calls: list[str] = []

    def record(model, params, **kwargs):
        name = params.get("StackName") or params.get("Key") or params.get("name") or params.get("pipelineName") or ""
        calls.append(f"{model.name} {name}".strip())

    for client in (deployer.stacks.client, deployer.connection.s3, deployer.connection.client("codepipeline")):
        client.meta.events.register("provide-client-params.*.*", lambda params, model, **kw: record(model, params))
    pipeline = Pipeline(deployer, cloud).succeeds()

    run(deployer.deploy(OPTIONS))

    pipeline.done()
    order = [
        c
        for c in calls
        if c.startswith(("CreateStack", "PutObject source.zip", "ListPipelineExecutions", "StartPipelineExecution"))
    ]
    assert [c.split(" ")[0] if "PipelineExecution" in c else c for c in order[-5:]] == [
        f"CreateStack {STACKS['source']}",
        "PutObject source.zip",
        f"CreateStack {STACKS['pipeline']}",
        "ListPipelineExecutions",  # the run that creating the pipeline started is found…
        "ListPipelineExecutions",  # …and followed from its start time: no StartPipelineExecution
    ]
    calls.clear()
    pipeline = Pipeline(deployer, cloud).succeeds()  # an unchanged pipeline stack starts no run

    run(deployer.update(OPTIONS))

    pipeline.done()
    assert [c.split(" ")[0] for c in calls if "PipelineExecution" in c][:2] == [
        "ListPipelineExecutions",
        "StartPipelineExecution",
    ]

"""The deployer end to end on the local cloud: preflight, stacks, bundle, pipeline, target, update, teardown.

Everything AWS is the local cloud's: moto's CloudFormation creates the stacks (with the local cloud's
pipeline and build-project models), and the pipeline stack's pipeline runs in the local CodePipeline, with
automatic runs on (CodePipeline runs a pipeline that a stack creates, or updates with
RestartExecutionOnUpdate). That pipeline is a small real one, `deploy_pipeline_template()`, in the shape
of the synthesized one (Source · Source, Build · Synth, UpdatePipeline · SelfMutate, Deploy · BuildModel,
Endpoint.Prepare, Endpoint.Deploy): its Synth is a CodeBuild build that checks the uploaded source and writes a small
endpoint template (what that stack publishes: bucket, topics, SSM parameters under the contract names),
which the Deploy stage applies through a change set. The synthesized pipeline itself runs in the full
rehearsal (tests/services/test_deploy_rehearsal.py, slow). JumpStart's metadata comes from a replica of its
content bucket in the local cloud's S3.

Service Quotas' ListServiceQuotas is the local cloud's (its applied quotas are a table a test sets).
Still stubbed with botocore's Stubber, because the local cloud does not serve them: CodeCommit
GetBranch / GetDifferences / CreateCommit (moto's CodeCommit keeps no commits). A SageMaker quota
failure of the endpoint stack is written into moto's stack record, as moto cannot fail a SageMaker
resource for a service limit.
"""

from __future__ import annotations

import io
import json
import shutil
import time
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto.cloudformation.models import Event, cloudformation_backends
from moto.cloudformation.parsing import NULL_MODELS, get_model_map

from app.services.cloud.aws import Connection
from app.services.cloud.credentials import CredentialSource
from app.services.deploy import bundle as deploy_bundle
from app.services.deploy.bundle import DeployOptions
from app.services.deploy.deployer import BOOTSTRAP_STACK, TEMPLATE_PREFIX, Deployer
from app.services.errors import UserError
from app.services.local_cloud.jumpstart import ReplicaModel, publish
from app.services.progress import Progress
from app.services.settings import load_settings
from contract import (
    BUCKET_PARAM,
    ENDPOINT_PARAM,
    ERROR_TOPIC_PARAM,
    MODEL_DATA_PARAM,
    MODEL_IMAGE_PARAM,
    SUCCESS_TOPIC_PARAM,
    ssm_name,
)

TEMPLATES = Path(__file__).resolve().parents[2] / "resources" / "templates"
MODEL = "model-txt2img-stabilityai-stable-diffusion-v2-1-base"
PINNED = "2.0.0"  # infra/config.toml's [model] version
OPTIONS = DeployOptions(MODEL, "ml.g5.xlarge", 2)
DEPLOYMENT = "studio"
STACKS = {part: f"diffusion-desk-{DEPLOYMENT}-{part}" for part in ("source", "pipeline", "endpoint")}
MOTO_MODELS = set(get_model_map()) | set(NULL_MODELS)
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse:UserWarning")


def moto_template(template: dict) -> dict:
    """moto skips resource types it does not model, then fails on any Fn::GetAtt of them: those become placeholders."""
    types = {name: resource["Type"] for name, resource in template.get("Resources", {}).items()}

    def walk(node):
        if isinstance(node, dict):
            if len(node) == 1 and "Fn::GetAtt" in node and types.get(node["Fn::GetAtt"][0]) not in MOTO_MODELS:
                return f"arn:aws:placeholder:::{node['Fn::GetAtt'][0]}"
            if len(node) == 1 and node.get("Ref") in types and types[node["Ref"]] not in MOTO_MODELS:
                return f"placeholder-{node['Ref']}"
            return {key: walk(value) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(value) for value in node]
        return node

    return walk(template)


def endpoint_template() -> dict:
    """What the endpoint stack publishes: its bucket, topics and SSM parameters under the contract names."""

    def parameter(name, value):
        return {
            "Type": "AWS::SSM::Parameter",
            "Properties": {"Name": ssm_name(DEPLOYMENT, name), "Type": "String", "Value": value},
        }

    return {
        "Resources": {
            "Bucket": {"Type": "AWS::S3::Bucket"},
            "SuccessTopic": {"Type": "AWS::SNS::Topic"},
            "ErrorTopic": {"Type": "AWS::SNS::Topic"},
            "BucketParameter": parameter(BUCKET_PARAM, {"Ref": "Bucket"}),
            "EndpointParameter": parameter(ENDPOINT_PARAM, f"diffusion-desk-{DEPLOYMENT}"),
            "SuccessParameter": parameter(SUCCESS_TOPIC_PARAM, {"Ref": "SuccessTopic"}),
            "ErrorParameter": parameter(ERROR_TOPIC_PARAM, {"Ref": "ErrorTopic"}),
            "ImageParameter": parameter(MODEL_IMAGE_PARAM, "image:1"),
            "ModelDataParameter": parameter(MODEL_DATA_PARAM, "s3://m/model.tar.gz"),
        }
    }


#: What BuildModel reads before it passes ("ok") or fails (anything else, which it prints).
OUTCOME = "/deployer-test/build-model-outcome"
SYNTH = {
    "version": "0.2",
    "phases": {
        "build": {
            "commands": [
                # what the real Synth needs of source.zip
                "test -f infra/app.py && test -f infra/config.toml && test -f lambdas/save_message/index.py",
                "mkdir -p cdk.out && cat > cdk.out/endpoint.template.json <<'EOF'\n"
                + json.dumps(endpoint_template())
                + "\nEOF\n",
            ]
        }
    },
    "artifacts": {"base-directory": "cdk.out", "files": ["**/*"]},
}
#: The real step runs `cdk deploy` of the pipeline stack; here a test that wants it updates the stack (`Pipeline`).
SELF_MUTATE = {"version": "0.2", "phases": {"build": {"commands": ["test -f endpoint.template.json"]}}}
BUILD_MODEL = {
    "version": "0.2",
    "env": {"parameter-store": {"OUTCOME": OUTCOME}},
    "phases": {"build": {"commands": ['echo "$OUTCOME"', 'test "$OUTCOME" = ok']}},
}


def _action(name, category, provider, configuration, inputs=(), outputs=(), order=1) -> dict:
    return {
        "Name": name,
        "ActionTypeId": {"Category": category, "Owner": "AWS", "Provider": provider, "Version": "1"},
        "Configuration": configuration,
        "InputArtifacts": [{"Name": n} for n in inputs],
        "OutputArtifacts": [{"Name": n} for n in outputs],
        "RunOrder": order,
    }


def _project(buildspec: dict) -> dict:
    return {
        "Type": "AWS::CodeBuild::Project",
        "Properties": {
            "Source": {"Type": "CODEPIPELINE", "BuildSpec": json.dumps(buildspec)},
            "Artifacts": {"Type": "CODEPIPELINE"},
            "ServiceRole": {"Fn::GetAtt": ["BuildRole", "Arn"]},
            "Environment": {
                "Type": "LINUX_CONTAINER",
                "Image": "aws/codebuild/standard:7.0",
                "ComputeType": "BUILD_GENERAL1_SMALL",
            },
        },
    }


def _role(service: str) -> dict:
    trust = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {"AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [trust]}},
    }


def deploy_pipeline_template(source_kind: str = "s3") -> dict:
    """A small real pipeline in the synthesized one's shape, run by the local CodePipeline (module docstring)."""
    export = f"{STACKS['source']}:ExportsOutput"
    if source_kind == "s3":
        source = _action(
            "Source",
            "Source",
            "S3",
            {
                "S3Bucket": {"Fn::ImportValue": f"{export}RefBucket83908E7781C90AC0"},
                "S3ObjectKey": "source.zip",
                "PollForSourceChanges": False,
            },
            outputs=["Source_Output"],
        )
    else:
        name = {"Fn::ImportValue": f"{export}FnGetAttRepository22E53BBDNameBA032C69"}
        source = _action(
            "Source",
            "Source",
            "CodeCommit",
            {"RepositoryName": name, "BranchName": "main", "PollForSourceChanges": False},
            outputs=["Source_Output"],
        )
    endpoint = {"StackName": STACKS["endpoint"], "ChangeSetName": "PipelineChange"}
    stages = [
        {"Name": "Source", "Actions": [source]},
        {
            "Name": "Build",
            "Actions": [
                _action(
                    "Synth",
                    "Build",
                    "CodeBuild",
                    {"ProjectName": {"Ref": "Synth"}},
                    inputs=["Source_Output"],
                    outputs=["Synth_Output"],
                )
            ],
        },
        {
            "Name": "UpdatePipeline",
            "Actions": [
                _action("SelfMutate", "Build", "CodeBuild", {"ProjectName": {"Ref": "SelfMutate"}}, ["Synth_Output"])
            ],
        },
        {
            "Name": "Deploy",
            "Actions": [
                _action("BuildModel", "Build", "CodeBuild", {"ProjectName": {"Ref": "BuildModel"}}, ["Source_Output"]),
                _action(
                    "Endpoint.Prepare",
                    "Deploy",
                    "CloudFormation",
                    {
                        **endpoint,
                        "ActionMode": "CHANGE_SET_REPLACE",
                        "TemplatePath": "Synth_Output::endpoint.template.json",
                        "Capabilities": "CAPABILITY_NAMED_IAM,CAPABILITY_AUTO_EXPAND",
                    },
                    inputs=["Synth_Output"],
                    order=2,
                ),
                _action(
                    "Endpoint.Deploy",
                    "Deploy",
                    "CloudFormation",
                    {**endpoint, "ActionMode": "CHANGE_SET_EXECUTE"},
                    order=3,
                ),
            ],
        },
    ]
    return {
        "Resources": {
            "Artifacts": {"Type": "AWS::S3::Bucket"},
            "Models": {"Type": "AWS::S3::Bucket"},
            "PipelineRole": _role("codepipeline.amazonaws.com"),
            "BuildRole": _role("codebuild.amazonaws.com"),
            "Synth": _project(SYNTH),
            "SelfMutate": _project(SELF_MUTATE),
            "BuildModel": _project(BUILD_MODEL),
            "Pipeline": {
                "Type": "AWS::CodePipeline::Pipeline",
                "Properties": {
                    "RoleArn": {"Fn::GetAtt": ["PipelineRole", "Arn"]},
                    "ArtifactStore": {"Type": "S3", "Location": {"Ref": "Artifacts"}},
                    "RestartExecutionOnUpdate": True,
                    "Stages": stages,
                },
            },
        },
        "Outputs": {
            "PipelineName": {"Value": {"Ref": "Pipeline"}},
            "ArtifactBucketName": {"Value": {"Ref": "Artifacts"}},
        },
        # As big as the synthesized pipeline template: too big to send inline, so it goes through the staging bucket.
        "Metadata": {"Padding": "x" * 60_000},
    }


@pytest.fixture
def cloud(empty_account):
    """The deploy starts from an empty account: nothing of ours, no CDK bootstrap."""
    return empty_account


@pytest.fixture
def templates(tmp_path) -> Path:
    """The app's templates, but the pipeline stack's pipeline is `deploy_pipeline_template()`."""
    folder = tmp_path / "templates"
    folder.mkdir()
    for path in TEMPLATES.iterdir():
        if path.suffix == ".json":
            (folder / path.name).write_text(json.dumps(moto_template(json.loads(path.read_text()))))
        else:
            shutil.copy(path, folder / path.name)
    (folder / "pipeline.template.json").write_text(json.dumps(deploy_pipeline_template()))
    (folder / "pipeline-codecommit.template.json").write_text(json.dumps(deploy_pipeline_template("codecommit")))
    return folder


@pytest.fixture
def deployer(cloud, dirs, templates) -> Deployer:
    publish(cloud.client("s3"), cloud.region, [ReplicaModel(MODEL, "1.0.0"), ReplicaModel(MODEL, PINNED)])
    cloud.cloud.pipelines.automatic_runs = True  # as CodePipeline runs a pipeline that a stack creates
    connection = Connection(cloud.session(), CredentialSource(), region=cloud.region, endpoint_url=cloud.endpoint_url)
    yield Deployer(connection, dirs, templates=templates, poll_seconds=0.05, sleep=time.sleep)
    assert cloud.cloud.pipelines.wait_idle(60)


def run(operation):
    """Drain a deployer generator: (events, result)."""
    events = []
    while True:
        try:
            events.append(next(operation))
        except StopIteration as stop:
            return events, stop.value


class Pipeline:
    """What the next runs of the small pipeline do, and what the test checks after them.

    `succeeds()`: every step passes; with `superseded`, the test plays the self-mutation step of a CDK
    pipeline: as SelfMutate starts it updates the pipeline stack's pipeline, so CodePipeline (the pipeline has
    RestartExecutionOnUpdate) starts a new run and the running one ends Superseded. `fails(message)`:
    BuildModel prints `message` and fails. `endpoint_rolls_back(failures)`: the endpoint stack's change set
    ends ROLLBACK_COMPLETE with those resource failures (moto cannot fail a SageMaker resource itself).
    CodePipeline's run on creation reads the source at once: the pipeline must not exist before source.zip.
    """

    def __init__(self, deployer: Deployer, cloud) -> None:
        self.deployer = deployer
        self.cloud = cloud
        self.runs_without_source: list[str] = []
        self.cloudformation = deployer.stacks.client
        self.cloudformation.meta.events.register(
            "after-call.cloudformation.CreateStack", self._first_run, unique_id="first-run"
        )
        self._hooks: list[tuple[object, str, object]] = []

    def _hook(self, client, event: str, handler) -> None:
        client.meta.events.register(event, handler)
        self._hooks.append((client, event, handler))

    def _first_run(self, parsed, **kwargs) -> None:
        if f":stack/{STACKS['pipeline']}/" not in parsed.get("StackId", ""):
            return
        outputs = {
            o["OutputKey"]: o["OutputValue"]
            for o in self.cloud.client("cloudformation")
            .describe_stacks(StackName=STACKS["source"])["Stacks"][0]
            .get("Outputs", [])
        }
        if "SourceKey" not in outputs:  # a CodeCommit source
            return
        try:
            self.cloud.client("s3").head_object(Bucket=outputs["BucketName"], Key=outputs["SourceKey"])
        except ClientError:
            self.runs_without_source.append(parsed["StackId"])

    def _outcome(self, value: str) -> None:
        self.cloud.client("ssm").put_parameter(Name=OUTCOME, Value=value, Type="String", Overwrite=True)

    def succeeds(self, *, superseded: bool = False) -> Pipeline:
        self._outcome("ok")
        if superseded:
            mutated: list[bool] = []

            def self_mutate(params, **kwargs) -> None:
                if mutated or not any("SelfMutate" in name for name in params.get("names", [])):
                    return
                mutated.append(True)
                template = deploy_pipeline_template()
                template["Resources"]["Pipeline"]["Properties"]["Tags"] = [{"Key": "mutated", "Value": "yes"}]
                self.cloud.client("cloudformation").update_stack(
                    StackName=STACKS["pipeline"], TemplateBody=json.dumps(template), Capabilities=["CAPABILITY_IAM"]
                )

            # As the SelfMutate action starts (the local CodePipeline looks its project up), as its build would.
            client = self.cloud.cloud._internal_client("codebuild", self.cloud.region)
            self._hook(client, "provide-client-params.codebuild.BatchGetProjects", self_mutate)
        return self

    def fails(self, message: str) -> Pipeline:
        self._outcome(message)
        return self

    def endpoint_rolls_back(self, failures: list[tuple[str, str, str]]) -> Pipeline:
        self._outcome("ok")

        def roll_back(params, **kwargs) -> None:
            if params.get("StackName") == STACKS["endpoint"]:
                _roll_back(self.cloud, STACKS["endpoint"], failures)

        # The local CodePipeline's own CloudFormation client: after it executes the endpoint's change set.
        client = self.cloud.cloud._internal_client("cloudformation", self.cloud.region)
        captured: dict = {}
        self._hook(
            client,
            "provide-client-params.cloudformation.ExecuteChangeSet",
            lambda params, **kw: captured.update(params),
        )
        self._hook(client, "after-call.cloudformation.ExecuteChangeSet", lambda **kw: roll_back(captured))
        return self

    def done(self) -> None:
        assert self.cloud.cloud.pipelines.wait_idle(60)
        for client, event, handler in self._hooks:
            client.meta.events.unregister(event, handler)
        self.cloud.client("ssm").delete_parameter(Name=OUTCOME)
        self.cloudformation.meta.events.unregister("after-call.cloudformation.CreateStack", unique_id="first-run")
        assert not self.runs_without_source, "the pipeline was created (and ran) before source.zip existed"


def source_zip(cloud) -> zipfile.ZipFile:
    """The uploaded source.zip, found through the source stack's outputs."""
    outputs = {
        o["OutputKey"]: o["OutputValue"]
        for o in cloud.client("cloudformation").describe_stacks(StackName=STACKS["source"])["Stacks"][0]["Outputs"]
    }
    body = cloud.client("s3").get_object(Bucket=outputs["BucketName"], Key=outputs["SourceKey"])["Body"].read()
    return zipfile.ZipFile(io.BytesIO(body))


def build_log(cloud, logical_id: str) -> str:
    """The newest build log of the pipeline stack's project `logical_id`, from CloudWatch Logs."""
    project = cloud.client("cloudformation").describe_stack_resource(
        StackName=STACKS["pipeline"], LogicalResourceId=logical_id
    )["StackResourceDetail"]["PhysicalResourceId"]
    logs = cloud.client("logs")
    group = f"/aws/codebuild/{project}"
    streams = logs.describe_log_streams(logGroupName=group, orderBy="LastEventTime", descending=True)["logStreams"]
    events = logs.get_log_events(logGroupName=group, logStreamName=streams[0]["logStreamName"])["events"]
    return "\n".join(e["message"] for e in events)


def messages(events) -> str:
    return "\n".join(f"{e.step}: {e.message}" for e in events)


def test_deploy_from_an_empty_account_ends_with_the_new_target_active(cloud, deployer, dirs):
    pipeline = Pipeline(deployer, cloud).succeeds(superseded=True)

    events, target = run(deployer.deploy(OPTIONS))

    pipeline.done()
    log = messages(events)
    assert {type(e) for e in events} == {Progress}  # the services' one progress event
    fractions = [e.fraction for e in events]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert "Quota: up to 2 ml.g5.xlarge endpoint instances" in log  # the sandbox account's applied quota
    assert "CDK bootstrap: not found" in log and f"{BOOTSTRAP_STACK}: CREATE_COMPLETE" in log
    assert "The pipeline updated itself and restarted: following run" in log and "Stage Deploy: Succeeded" in log
    cloudformation, s3, ssm = (cloud.client(name) for name in ("cloudformation", "s3", "ssm"))
    assert ssm.get_parameter(Name="/cdk-bootstrap/hnb659fds/version")["Parameter"]["Value"].isdigit()
    stacks = {s["StackName"]: s["StackStatus"] for s in cloudformation.describe_stacks()["Stacks"]}
    assert stacks[STACKS["source"]] == "CREATE_COMPLETE"
    assert stacks[STACKS["pipeline"]] == "UPDATE_COMPLETE"  # by its own run, as a CDK pipeline's self-mutation does
    buckets = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert {"artifacts", "models", "source-bucket"} <= {
        part for name in buckets for part in ("artifacts", "models", "source-bucket") if part in name
    }
    bundle = source_zip(cloud)
    names = bundle.namelist()
    assert {"infra/app.py", "infra/requirements.txt", "lambdas/save_message/index.py", "contract/keys.py"} <= set(names)
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or "cdk.out" in n]
    config = bundle.read("infra/config.toml").decode()
    assert f'id = "{MODEL}"' in config and 'instance_type = "ml.g5.xlarge"' in config and "max_instances = 2" in config
    assert "# The endpoint scales between zero" in config  # the user's copy keeps every comment
    endpoint_bucket = cloudformation.describe_stack_resource(StackName=STACKS["endpoint"], LogicalResourceId="Bucket")
    assert target.bucket == endpoint_bucket["StackResourceDetail"]["PhysicalResourceId"]
    assert target.endpoint_name == "diffusion-desk-studio" and target.region == cloud.region
    settings = load_settings(dirs)
    assert settings.active_target == target.name == DEPLOYMENT and settings.mode == "aws"
    assert [t["bucket"] for t in settings.targets] == [target.bucket]


def test_update_uploads_the_changed_config_and_runs_the_pipeline_again(cloud, deployer):
    with pytest.raises(UserError, match="Press Deploy"):
        run(deployer.update(OPTIONS))
    first = Pipeline(deployer, cloud).succeeds()
    run(deployer.deploy(OPTIONS))
    first.done()
    assert "max_instances = 2" in source_zip(cloud).read("infra/config.toml").decode()
    pipeline = Pipeline(deployer, cloud).succeeds()

    events, target = run(deployer.update(DeployOptions(MODEL, "ml.g5.2xlarge", 4)))

    pipeline.done()
    config = source_zip(cloud).read("infra/config.toml").decode()
    assert 'instance_type = "ml.g5.2xlarge"' in config and "max_instances = 4" in config
    log = messages(events)
    assert f"{STACKS['pipeline']}: already up to date" in log and "Stage Deploy: Succeeded" in log
    assert "ml.g5.xlarge → ml.g5.2xlarge replaces the endpoint" in log and "jobs still waiting on the old one" in log
    assert target.name == DEPLOYMENT
    assert deployer.options() == DeployOptions(MODEL, "ml.g5.2xlarge", 4, companions={})


def everything(cloud) -> tuple[set[str], set[str], set[str]]:
    """Every stack, bucket and SSM parameter in the local cloud."""
    return (
        {s["StackName"] for s in cloud.client("cloudformation").describe_stacks()["Stacks"]},
        {b["Name"] for b in cloud.client("s3").list_buckets()["Buckets"]},
        {p["Name"] for p in cloud.client("ssm").describe_parameters()["Parameters"]},
    )


def test_teardown_names_what_it_deletes_and_leaves_nothing_behind(cloud, deployer, dirs):
    stacks, buckets, parameters = everything(cloud)
    pipeline = Pipeline(deployer, cloud).succeeds()
    _, target = run(deployer.deploy(OPTIONS))
    pipeline.done()
    s3 = cloud.client("s3")
    for n in range(3):
        s3.put_object(Bucket=target.bucket, Key=f"images/job-{n}/0.png", Body=b"png")
    logs = cloud.client("logs")
    endpoint_logs = f"/aws/sagemaker/Endpoints/{target.endpoint_name}"
    logs.create_log_group(logGroupName=endpoint_logs)  # SageMaker makes it when the endpoint starts

    plan = deployer.plan_teardown()

    text = plan.describe()
    for name in (
        *STACKS.values(),
        target.bucket,
        ssm_name(DEPLOYMENT, BUCKET_PARAM),
        ssm_name(DEPLOYMENT, MODEL_DATA_PARAM),
    ):
        assert name in text
    assert "CDKToolkit" in text.split("Kept:")[1]
    assert plan.stacks == (STACKS["endpoint"], STACKS["pipeline"], STACKS["source"])
    assert any(
        TEMPLATE_PREFIX in copy for copy in plan.template_copies
    )  # the pipeline template is too big to send inline
    with pytest.raises(UserError, match="confirmed list"):
        run(deployer.teardown("yes"))

    events, _ = run(deployer.teardown(plan))

    assert events[-1].fraction == 1.0 and "gone" in events[-1].message
    staging = f"cdk-hnb659fds-assets-{cloud.cloud.account_id}-{cloud.region}"
    assert everything(cloud) == (
        stacks | {BOOTSTRAP_STACK},
        buckets | {staging},
        parameters | {"/cdk-bootstrap/hnb659fds/version"},
    )
    assert "Contents" not in s3.list_objects_v2(Bucket=staging, Prefix=TEMPLATE_PREFIX)
    left = s3.list_object_versions(Bucket=staging, Prefix=TEMPLATE_PREFIX)
    assert not left.get("Versions") and not left.get("DeleteMarkers")
    assert endpoint_logs in text and not logs.describe_log_groups(logGroupNamePrefix=endpoint_logs)["logGroups"]
    settings = load_settings(dirs)
    assert settings.targets == [] and settings.active_target is None
    assert deployer.plan_teardown().empty


def test_teardown_deletes_the_companion_endpoints_log_groups_too(cloud, deployer):
    """SageMaker makes a log group for each endpoint it starts, the upscaler's and the inpainting one's too."""
    from contract import COMPANION_PARAMS

    pipeline = Pipeline(deployer, cloud).succeeds()
    _, target = run(deployer.deploy(OPTIONS))
    pipeline.done()
    ssm, logs = cloud.client("ssm"), cloud.client("logs")
    groups = [f"/aws/sagemaker/Endpoints/{target.endpoint_name}"]
    for family, param in COMPANION_PARAMS.items():  # as the endpoint stack names a deployed companion
        name = f"diffusion-desk-{DEPLOYMENT}-endpoint-{family}-ml-g5-xlarge"
        ssm.put_parameter(Name=ssm_name(DEPLOYMENT, param), Value=name, Type="String", Overwrite=True)
        groups.append(f"/aws/sagemaker/Endpoints/{name}")
    for group in groups:
        logs.create_log_group(logGroupName=group)

    plan = deployer.plan_teardown()
    run(deployer.teardown(plan))

    assert len(plan.log_groups) == len(set(plan.log_groups))  # each named once
    assert set(groups) <= set(plan.log_groups)
    assert not [g for g in logs.describe_log_groups(logGroupNamePrefix="/aws/sagemaker/")["logGroups"]]


def test_a_teardown_that_stops_part_way_says_so_and_a_second_one_finishes(cloud, deployer):
    pipeline = Pipeline(deployer, cloud).succeeds()
    run(deployer.deploy(OPTIONS))
    pipeline.done()

    def refuse_the_pipeline_stack(params, **kwargs):
        if f":stack/{STACKS['pipeline']}/" in params.get("StackName", ""):
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not allowed"}}, "DeleteStack")

    client = deployer.stacks.client
    client.meta.events.register("before-parameter-build.cloudformation.DeleteStack", refuse_the_pipeline_stack)
    with pytest.raises(UserError, match="stopped part-way") as stopped:
        run(deployer.teardown(deployer.plan_teardown()))
    assert "Tear down again" in str(stopped.value)
    client.meta.events.unregister("before-parameter-build.cloudformation.DeleteStack", refuse_the_pipeline_stack)

    rest = deployer.plan_teardown()
    assert rest.stacks == (STACKS["pipeline"], STACKS["source"])
    run(deployer.teardown(rest))
    assert deployer.plan_teardown().empty


def _roll_back(cloud, stack_name: str, failures: list[tuple[str, str, str]]) -> None:
    """Leave a stack as CloudFormation leaves a failed creation: ROLLBACK_COMPLETE, with the failure events."""
    backend = cloudformation_backends[cloud.cloud.account_id][cloud.region]
    stack = next(s for s in backend.stacks.values() if s.name == stack_name)
    for logical_id, resource_type, reason in failures:
        stack.events.append(
            Event(stack.stack_id, stack.name, logical_id, "", resource_type, "CREATE_FAILED", reason, None)
        )
    stack.events.append(
        Event(
            stack.stack_id,
            stack.name,
            stack.name,
            stack.stack_id,
            "AWS::CloudFormation::Stack",
            "ROLLBACK_COMPLETE",
            None,
            None,
        )
    )
    stack.status = "ROLLBACK_COMPLETE"


def test_a_failed_stack_is_explained_in_cloudformations_words(cloud, deployer):
    failures = [
        ("ModelsC55D3500", "AWS::S3::Bucket", 'Resource handler returned message: "You have reached the bucket limit"'),
        ("ArtifactsPolicy", "AWS::S3::BucketPolicy", "Resource creation cancelled"),
    ]

    def fail_pipeline_stack(parsed, **kwargs):
        if f":stack/{STACKS['pipeline']}/" in parsed.get("StackId", ""):
            _roll_back(cloud, STACKS["pipeline"], failures)

    deployer.stacks.client.meta.events.register("after-call.cloudformation.CreateStack", fail_pipeline_stack)

    with pytest.raises(UserError) as failed:
        run(deployer.deploy(OPTIONS))

    text = str(failed.value)
    assert STACKS["pipeline"] in text and "ModelsC55D3500" in text and "bucket limit" in text
    assert "cancelled" not in text


def test_a_failed_endpoint_deployment_says_why_in_cloudformations_words(cloud, deployer):
    quota = (
        "Resource handler returned message: \"The account-level service limit 'ml.g5.xlarge for endpoint usage' "
        'is 0 Instances" (HandlerErrorCode: ServiceLimitExceeded)'
    )
    pipeline = Pipeline(deployer, cloud).endpoint_rolls_back([("Endpoint", "AWS::SageMaker::Endpoint", quota)])

    with pytest.raises(UserError) as failed:
        run(deployer.deploy(OPTIONS))

    pipeline.done()
    text = str(failed.value)
    assert (
        "failed in stage Deploy, step Endpoint.Deploy: Failed to execute change set. "
        "Current stack status: ROLLBACK_COMPLETE" in text
    )
    assert (
        "Endpoint (AWS::SageMaker::Endpoint) failed" in text
        and "'ml.g5.xlarge for endpoint usage' is 0 Instances" in text
    )

    backend = cloudformation_backends[cloud.cloud.account_id][cloud.region]
    next(s for s in backend.stacks.values() if s.name == STACKS["endpoint"]).creation_time -= timedelta(hours=2)
    pipeline = Pipeline(deployer, cloud).fails("Could not find model data")
    with pytest.raises(UserError) as later:
        run(deployer.deploy(OPTIONS))
    pipeline.done()
    assert "step BuildModel: Build terminated with state: FAILED" in str(later.value)
    assert "endpoint usage" not in str(later.value)  # an old failure is not cited


def test_rerun_after_a_partial_failure_continues(cloud, deployer):
    pipeline = Pipeline(deployer, cloud).fails("Could not find model data for model-txt2img-x in us-east-1")
    with pytest.raises(UserError) as failed:
        run(deployer.deploy(OPTIONS))
    pipeline.done()
    assert "stage Deploy, step BuildModel: Build terminated with state: FAILED. Phase: BUILD" in str(failed.value)
    assert "Could not find model data for model-txt2img-x" in build_log(cloud, "BuildModel")  # the words are there
    cloudformation = cloud.client("cloudformation")
    source_id = cloudformation.describe_stacks(StackName=STACKS["source"])["Stacks"][0]["StackId"]
    pipeline_id = cloudformation.describe_stacks(StackName=STACKS["pipeline"])["Stacks"][0]["StackId"]
    _roll_back(cloud, STACKS["pipeline"], [("Pipeline9850B417", "AWS::CodePipeline::Pipeline", "Internal failure")])
    pipeline = Pipeline(deployer, cloud).succeeds()

    events, target = run(deployer.deploy(OPTIONS))

    pipeline.done()
    log = messages(events)
    assert "ROLLBACK_COMPLETE from an earlier attempt: deleting it to start again" in log
    assert "CDK bootstrap version" in log and "is ready" in log  # not deployed twice
    assert cloudformation.describe_stacks(StackName=STACKS["source"])["Stacks"][0]["StackId"] == source_id
    new = cloudformation.describe_stacks(StackName=STACKS["pipeline"])["Stacks"][0]
    assert new["StackId"] != pipeline_id and new["StackStatus"] == "CREATE_COMPLETE"
    assert target.name == DEPLOYMENT


def test_preflight_reads_the_sagemaker_quota_where_service_quotas_answers(cloud, deployer):
    quota = "ml.g5.xlarge for endpoint usage"
    cloud.cloud.quotas.set("sagemaker", quota, 1)
    events, preflight = run(deployer.preflight(OPTIONS))
    assert preflight.account == cloud.cloud.account_id and preflight.bootstrap_version is None
    assert "fewer than the 2 chosen: the endpoint will not scale beyond 1" in messages(events)

    cloud.cloud.quotas.set("sagemaker", quota, 0)
    with pytest.raises(UserError, match="no ml.g5.xlarge endpoint instances.*quota 0"):
        run(deployer.preflight(OPTIONS))

    cloud.cloud.quotas.set("sagemaker", quota, None)  # a type the account's quotas do not name
    events, _ = run(deployer.preflight(OPTIONS))
    assert "Service Quotas lists no 'ml.g5.xlarge for endpoint usage'" in messages(events)


def test_bad_choices_are_refused_before_anything_is_deployed(cloud, deployer):
    with pytest.raises(UserError, match="max_instances must be from 1 to 100"):
        run(deployer.deploy(DeployOptions(MODEL, "ml.g5.xlarge", 0)))
    assert cloud.client("cloudformation").describe_stacks()["Stacks"] == []


def test_bundle_is_the_same_bytes_for_the_same_files(tmp_path, dirs):
    text, config = deploy_bundle.configure(dirs, OPTIONS, "eu-west-1")
    first = deploy_bundle.build_bundle(text, tmp_path / "a.zip").read_bytes()
    second = deploy_bundle.build_bundle(text, tmp_path / "b.zip").read_bytes()
    assert first == second and config.region == "eu-west-1"
    assert 'region = "eu-west-1"' in zipfile.ZipFile(io.BytesIO(first)).read("infra/config.toml").decode()
    assert deploy_bundle.user_config_path(dirs).read_text() == text


def test_codecommit_source_is_committed_through_the_api(cloud, deployer, dirs):
    text = deploy_bundle.read_config_text(dirs).replace('source_kind = "s3"', 'source_kind = "codecommit"')
    deploy_bundle.user_config_path(dirs).parent.mkdir(parents=True, exist_ok=True)
    deploy_bundle.user_config_path(dirs).write_text(text)
    codecommit = deployer.connection.client("codecommit")
    commits = Stubber(codecommit)  # CodeCommit GetBranch, GetDifferences and CreateCommit: moto lacks them
    sent = []
    codecommit.meta.events.register(
        "before-parameter-build.codecommit.CreateCommit", lambda params, **kw: sent.append(params)
    )
    commits.add_client_error("get_branch", "BranchDoesNotExistException", "no branch main")
    commits.add_response("create_commit", {"commitId": "a" * 40, "treeId": "t"})
    commits.add_response("get_branch", {"branch": {"branchName": "main", "commitId": "a" * 40}})
    commits.add_response(
        "get_differences",
        {
            "differences": [
                {"afterBlob": {"path": "infra/old_part.py", "blobId": "b", "mode": "100644"}, "changeType": "A"},
                {"afterBlob": {"path": "infra/app.py", "blobId": "c", "mode": "100644"}, "changeType": "A"},
            ]
        },
    )
    commits.add_response("create_commit", {"commitId": "b" * 40, "treeId": "t"})
    commits.activate()
    events = []
    for _ in range(2):
        pipeline = Pipeline(deployer, cloud).succeeds()
        # The local CodePipeline reads no commits (moto's CodeCommit keeps none): its run stops at Source, saying so.
        with pytest.raises(UserError, match="failed in stage Source, step Source: The local cloud keeps no commits"):
            events.extend(deployer.deploy(OPTIONS))
        pipeline.done()

    commits.assert_no_pending_responses()
    first, second = sent
    files = {f["filePath"]: f["fileContent"] for f in first["putFiles"]}
    assert b'source_kind = "codecommit"' in files["infra/config.toml"] and "contract/keys.py" in files
    assert "parentCommitId" not in first and second["parentCommitId"] == "a" * 40
    assert second["deleteFiles"] == [{"filePath": "infra/old_part.py"}]
    assert "Committed bbbbbbbbbb, 1 old files removed" in messages(events)


def test_no_updates_to_perform_is_not_an_error(cloud, deployer, templates):
    first = Pipeline(deployer, cloud).succeeds()
    run(deployer.deploy(OPTIONS))
    first.done()
    source = json.loads((templates / "source.template.json").read_text())
    source["Metadata"] = {"Note": "a change CloudFormation itself would ignore"}
    (templates / "source.template.json").write_text(json.dumps(source))

    def no_updates(**kwargs):  # what CloudFormation answers for a change without effect; moto never says it
        error = {"Error": {"Code": "ValidationError", "Message": "No updates are to be performed."}}
        return type("Response", (), {"status_code": 400, "headers": {}})(), error

    deployer.stacks.client.meta.events.register("before-call.cloudformation.UpdateStack", no_updates)
    pipeline = Pipeline(deployer, cloud).succeeds()

    events, target = run(deployer.update(OPTIONS))

    pipeline.done()
    assert f"{STACKS['source']}: already up to date" in messages(events) and target.name == DEPLOYMENT

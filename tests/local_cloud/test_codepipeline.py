"""CodePipeline in the local cloud: a small pipeline, made by a CloudFormation stack, run through the four calls.

The pipeline has the deployer's shape in small: an S3 source.zip, a CodeBuild step whose buildspec runs
a script of the source (so each test's source says what the build does) and writes a template, and a
deploy stage that makes a change set of that template and executes it.
"""

from __future__ import annotations

import io
import json
import time
import zipfile

import pytest
from botocore.exceptions import ClientError

from app.services.deploy.pipeline import PipelineFailed, follow

STACK = "tiny-pipeline"
DEPLOYED = "tiny-deployed"
BUILDSPEC = {
    "version": "0.2",
    "phases": {"build": {"commands": ["sh ./step.sh", 'echo "$GREETING from $CODEBUILD_INITIATOR"']}},
    "artifacts": {"base-directory": "out", "files": ["**/*"]},
}
TOPIC = json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "built-topic"}}}})
WRITES_TEMPLATE = f"mkdir -p out && cat > out/deployed.json <<'EOF'\n{TOPIC}\nEOF\n"


def _trust(service: str) -> dict:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
    }


def _action(name: str, category: str, provider: str, configuration: dict, inputs=(), outputs=(), order=1) -> dict:
    return {
        "Name": name,
        "ActionTypeId": {"Category": category, "Owner": "AWS", "Provider": provider, "Version": "1"},
        "Configuration": configuration,
        "InputArtifacts": [{"Name": n} for n in inputs],
        "OutputArtifacts": [{"Name": n} for n in outputs],
        "RunOrder": order,
    }


def pipeline_template() -> dict:
    deploy = {"StackName": DEPLOYED, "ChangeSetName": "PipelineChange"}
    stages = [
        {
            "Name": "Source",
            "Actions": [
                _action(
                    "Source",
                    "Source",
                    "S3",
                    {"S3Bucket": {"Ref": "SourceBucket"}, "S3ObjectKey": "source.zip", "PollForSourceChanges": False},
                    outputs=["Src"],
                )
            ],
        },
        {
            "Name": "Build",
            "Actions": [
                _action(
                    "Synth",
                    "Build",
                    "CodeBuild",
                    {
                        "ProjectName": {"Ref": "Project"},
                        "EnvironmentVariables": json.dumps(
                            [{"name": "GREETING", "type": "PLAINTEXT", "value": "hello"}]
                        ),
                    },
                    inputs=["Src"],
                    outputs=["Built"],
                )
            ],
        },
        {
            "Name": "Deploy",
            "Actions": [
                _action(
                    "Prepare",
                    "Deploy",
                    "CloudFormation",
                    {**deploy, "ActionMode": "CHANGE_SET_REPLACE", "TemplatePath": "Built::deployed.json"},
                    inputs=["Built"],
                    order=1,
                ),
                _action("Execute", "Deploy", "CloudFormation", {**deploy, "ActionMode": "CHANGE_SET_EXECUTE"}, order=2),
            ],
        },
    ]
    environment = {
        "Type": "LINUX_CONTAINER",
        "Image": "aws/codebuild/standard:7.0",
        "ComputeType": "BUILD_GENERAL1_SMALL",
    }
    return {
        "Resources": {
            "SourceBucket": {
                "Type": "AWS::S3::Bucket",
                "Properties": {"VersioningConfiguration": {"Status": "Enabled"}},
            },
            "Artifacts": {"Type": "AWS::S3::Bucket"},
            "PipelineRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {"AssumeRolePolicyDocument": _trust("codepipeline.amazonaws.com")},
            },
            "BuildRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {"AssumeRolePolicyDocument": _trust("codebuild.amazonaws.com")},
            },
            "Project": {
                "Type": "AWS::CodeBuild::Project",
                "Properties": {
                    "Source": {"Type": "CODEPIPELINE", "BuildSpec": json.dumps(BUILDSPEC)},
                    "Artifacts": {"Type": "CODEPIPELINE"},
                    "ServiceRole": {"Fn::GetAtt": ["BuildRole", "Arn"]},
                    "Environment": environment,
                },
            },
            "Pipeline": {
                "Type": "AWS::CodePipeline::Pipeline",
                "Properties": {
                    "RoleArn": {"Fn::GetAtt": ["PipelineRole", "Arn"]},
                    "ArtifactStore": {"Type": "S3", "Location": {"Ref": "Artifacts"}},
                    "Stages": stages,
                },
            },
        },
        "Outputs": {"PipelineName": {"Value": {"Ref": "Pipeline"}}, "SourceBucket": {"Value": {"Ref": "SourceBucket"}}},
    }


@pytest.fixture
def pipeline(cloud):
    """The stack's pipeline name, a function that uploads source.zip with a step.sh, and the CodePipeline client."""
    cfn = cloud.client("cloudformation")
    cfn.create_stack(StackName=STACK, TemplateBody=json.dumps(pipeline_template()), Capabilities=["CAPABILITY_IAM"])
    outputs = {o["OutputKey"]: o["OutputValue"] for o in cfn.describe_stacks(StackName=STACK)["Stacks"][0]["Outputs"]}

    def upload(step: str) -> str | None:
        data = io.BytesIO()
        with zipfile.ZipFile(data, "w") as archive:
            archive.writestr("step.sh", step)
        put = cloud.client("s3").put_object(Bucket=outputs["SourceBucket"], Key="source.zip", Body=data.getvalue())
        return put.get("VersionId")

    yield outputs["PipelineName"], upload, cloud.client("codepipeline")
    assert cloud.cloud.pipelines.wait_idle(60)


def finished(client, name: str, run_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        execution = client.get_pipeline_execution(pipelineName=name, pipelineExecutionId=run_id)["pipelineExecution"]
        if execution["status"] != "InProgress" or time.monotonic() > deadline:
            return execution
        time.sleep(0.2)


def statuses(state: dict) -> dict:
    return {
        s["stageName"]: (
            s.get("latestExecution", {}).get("status"),
            {a["actionName"]: a.get("latestExecution", {}).get("status") for a in s["actionStates"]},
        )
        for s in state["stageStates"]
    }


def test_a_run_goes_through_source_build_and_deploy_as_codepipeline_reports_it(cloud, pipeline):
    name, upload, client = pipeline
    upload(WRITES_TEMPLATE)

    run_id = client.start_pipeline_execution(name=name)["pipelineExecutionId"]
    lines = [line.text for line in follow(client, name, run_id, poll_seconds=0.2)]

    assert finished(client, name, run_id)["status"] == "Succeeded"
    state = client.get_pipeline_state(name=name)
    assert statuses(state) == {
        "Source": ("Succeeded", {"Source": "Succeeded"}),
        "Build": ("Succeeded", {"Synth": "Succeeded"}),
        "Deploy": ("Succeeded", {"Prepare": "Succeeded", "Execute": "Succeeded"}),
    }
    assert all(s["latestExecution"]["pipelineExecutionId"] == run_id for s in state["stageStates"])
    build = state["stageStates"][1]["actionStates"][0]["latestExecution"]
    assert build["externalExecutionId"].startswith(f"{STACK}-Project-")
    assert "Stage Build: Succeeded" in lines and lines[-1] == f"Pipeline {name}: Succeeded"
    topics = [t["TopicArn"] for t in cloud.client("sns").list_topics()["Topics"]]
    assert any(arn.endswith(":built-topic") for arn in topics)  # the template the build wrote, deployed
    stack = cloud.client("cloudformation").describe_stacks(StackName=DEPLOYED)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"


def test_a_failing_build_fails_its_stage_in_codebuild_words_and_the_deploy_never_runs(cloud, pipeline):
    name, upload, client = pipeline
    version = upload(
        "echo 'Traceback (most recent call last):'\necho \"ModuleNotFoundError: No module named 'x'\"\nexit 1\n"
    )

    run_id = client.start_pipeline_execution(name=name)["pipelineExecutionId"]
    with pytest.raises(PipelineFailed) as failed:
        list(follow(client, name, run_id, poll_seconds=0.2))

    assert finished(client, name, run_id)["status"] == "Failed"
    state = client.get_pipeline_state(name=name)
    assert statuses(state) == {
        "Source": ("Succeeded", {"Source": "Succeeded"}),
        "Build": ("Failed", {"Synth": "Failed"}),
        "Deploy": (None, {"Prepare": None, "Execute": None}),
    }
    error = state["stageStates"][1]["actionStates"][0]["latestExecution"]["errorDetails"]
    assert error == {
        "code": "JobFailed",
        "message": (
            "Build terminated with state: FAILED. Phase: BUILD, Code: COMMAND_EXECUTION_ERROR, "
            "Message: Error while executing command: sh ./step.sh. Reason: exit status 1"
        ),
    }
    assert (failed.value.stage, failed.value.action) == ("Build", "Synth")
    assert "Build terminated with state: FAILED. Phase: BUILD" in str(failed.value)
    build_id = state["stageStates"][1]["actionStates"][0]["latestExecution"]["externalExecutionId"]
    project, stream = build_id.split(":", 1)
    events = cloud.client("logs").get_log_events(logGroupName=f"/aws/codebuild/{project}", logStreamName=stream)
    assert "ModuleNotFoundError: No module named 'x'" in [e["message"] for e in events["events"]]
    (summary,) = client.list_pipeline_executions(pipelineName=name)["pipelineExecutionSummaries"]
    assert summary["pipelineExecutionId"] == run_id and summary["status"] == "Failed"
    assert summary["sourceRevisions"][0]["actionName"] == "Source"
    if version:
        assert summary["sourceRevisions"][0]["revisionId"] == version


def test_a_newer_run_supersedes_the_older_one_at_its_next_stage(pipeline):
    name, upload, client = pipeline
    upload("sleep 3\n" + WRITES_TEMPLATE)

    older = client.start_pipeline_execution(name=name)["pipelineExecutionId"]
    while client.get_pipeline_state(name=name)["stageStates"][1].get("latestExecution") is None:
        time.sleep(0.1)
    newer = client.start_pipeline_execution(name=name)["pipelineExecutionId"]

    assert finished(client, name, newer)["status"] == "Succeeded"
    assert finished(client, name, older)["status"] == "Superseded"
    listed = client.list_pipeline_executions(pipelineName=name, maxResults=1)
    assert [s["pipelineExecutionId"] for s in listed["pipelineExecutionSummaries"]] == [newer]  # newest first
    assert listed["nextToken"]


def test_unknown_pipelines_and_runs_are_refused_and_the_rest_of_codepipeline_is_motos(pipeline):
    name, _, client = pipeline
    with pytest.raises(ClientError) as unknown:
        client.start_pipeline_execution(name="no-such-pipeline")
    assert unknown.value.response["Error"]["Code"] == "PipelineNotFoundException"
    with pytest.raises(ClientError) as no_run:
        client.get_pipeline_execution(pipelineName=name, pipelineExecutionId="3c4bc7ae-0000-0000-0000-000000000000")
    assert no_run.value.response["Error"]["Code"] == "PipelineExecutionNotFoundException"
    assert [p["name"] for p in client.list_pipelines()["pipelines"]] == [name]
    declared = client.get_pipeline(name=name)["pipeline"]
    assert [s["name"] for s in declared["stages"]] == ["Source", "Build", "Deploy"]
    assert declared["stages"][0]["actions"][0]["configuration"]["PollForSourceChanges"] == "false"
    assert client.list_pipeline_executions(pipelineName=name)["pipelineExecutionSummaries"] == []


def test_with_automatic_runs_a_pipeline_runs_when_its_stack_creates_it(cloud):
    cloud.cloud.pipelines.automatic_runs = True
    cfn = cloud.client("cloudformation")
    cfn.create_stack(StackName=STACK, TemplateBody=json.dumps(pipeline_template()), Capabilities=["CAPABILITY_IAM"])
    name = cfn.describe_stacks(StackName=STACK)["Stacks"][0]["Outputs"][0]["OutputValue"]
    client = cloud.client("codepipeline")

    (summary,) = client.list_pipeline_executions(pipelineName=name)["pipelineExecutionSummaries"]
    assert summary["trigger"]["triggerType"] == "CreatePipeline"
    assert finished(client, name, summary["pipelineExecutionId"])["status"] == "Failed"
    source = client.get_pipeline_state(name=name)["stageStates"][0]["actionStates"][0]["latestExecution"]
    assert source["errorDetails"]["message"] == "The object with key 'source.zip' does not exist."

"""CodeBuild in the local cloud: buildspecs run with CodeBuild's rules in a fresh venv, and the BuildModel step's own.

The BuildModel tests are the issue's proof: the step's buildspec, as the synthesized pipeline template
holds it, installs what it installs and runs the model build against the local cloud; a module the step
imports but does not install fails the step the way CodeBuild reports it.
"""

from __future__ import annotations

import copy
import io
import json
import tarfile
from pathlib import Path

import pytest

from app.services.deploy.bundle import bundle_files
from app.services.local_cloud.codebuild import (
    BuildCloud,
    BuildProject,
    BuildResult,
    CodeBuildRunner,
    EnvironmentVariable,
)
from app.services.local_cloud.jumpstart import ReplicaModel, publish, spec
from contract.jumpstart import content_bucket
from infra.model_build.resolve import ResolvedModel

ROOT = Path(__file__).resolve().parents[2]
PIPELINE = json.loads((ROOT / "resources" / "templates" / "pipeline.template.json").read_text())
SOURCE = (ROOT / "resources" / "templates" / "source.template.json").read_text()
MODEL = "model-txt2img-stabilityai-stable-diffusion-v2-1-base"


def project(phases: dict, **spec_extra) -> BuildProject:
    return BuildProject(
        "unit",
        json.dumps({"version": "0.2", "phases": phases, **spec_extra}),
        environment=(EnvironmentVariable("FROM_PROJECT", "project"), EnvironmentVariable("SHARED", "project")),
    )


@pytest.fixture
def source(tmp_path) -> Path:
    folder = tmp_path / "source"
    folder.mkdir()
    (folder / "hello.txt").write_text("hello\n")
    return folder


@pytest.fixture
def build(source, tmp_path):
    runner = CodeBuildRunner()

    def build_(phases: dict, *, cloud: BuildCloud | None = None, **spec_extra):
        return runner.run(
            project(phases, **spec_extra),
            cloud or BuildCloud("http://127.0.0.1:9", "eu-west-1"),
            source=source,
            artifacts_to=tmp_path / "artifacts",
            overrides=[EnvironmentVariable("SHARED", "call")],
        )

    return build_


def test_a_failed_build_runs_post_build_and_the_log_says_so_in_codebuild_words(build):
    result = build(
        {
            "install": {"commands": ["echo installing"]},
            "build": {"commands": ["echo before", "sh -c 'exit 3'", "echo never"]},
            "post_build": {"commands": ["echo post: $CODEBUILD_BUILD_SUCCEEDING"]},
        }
    )

    assert result.status == "FAILED"
    assert [(p.phase, p.status) for p in result.phases] == [
        ("DOWNLOAD_SOURCE", "SUCCEEDED"),
        ("INSTALL", "SUCCEEDED"),
        ("PRE_BUILD", "SUCCEEDED"),
        ("BUILD", "FAILED"),
        ("POST_BUILD", "SUCCEEDED"),
    ]
    log = result.log
    assert "Running command sh -c 'exit 3'" in log and "Running command echo never" not in log
    assert "Command did not exit successfully sh -c 'exit 3' exit status 3" in log
    assert "Phase complete: BUILD State: FAILED" in log
    assert (
        "Phase context status code: COMMAND_EXECUTION_ERROR Message: Error while executing command: "
        "sh -c 'exit 3'. Reason: exit status 3"
    ) in log
    assert "post: 0" in log
    assert all(line.startswith("[Container] 2") for line in log.splitlines() if "Phase complete" in line)
    assert result.message == (
        "Build terminated with state: FAILED. Phase: BUILD, Code: COMMAND_EXECUTION_ERROR, "
        "Message: Error while executing command: sh -c 'exit 3'. Reason: exit status 3"
    )
    assert result.artifacts is None


def test_a_failed_install_ends_the_build_and_on_failure_continue_goes_on(build):
    ended = build(
        {
            "install": {"commands": ["false", "echo not-run"]},
            "build": {"commands": ["echo not-built"]},
            "post_build": {"commands": ["echo not-posted"]},
        }
    )
    assert [p.phase for p in ended.phases] == ["DOWNLOAD_SOURCE", "INSTALL"]
    assert ended.failed_phase.phase == "INSTALL"
    assert "Running command echo not-run" not in ended.log and "Entering phase BUILD" not in ended.log

    continued = build(
        {
            "pre_build": {"on-failure": "CONTINUE", "commands": ["false"], "finally": ["echo finally-ran"]},
            "build": {"commands": ["echo built"]},
        }
    )
    assert continued.status == "FAILED" and continued.failed_phase.phase == "PRE_BUILD"
    assert "finally-ran" in continued.log and "\nbuilt\n" in continued.log
    assert ("BUILD", "SUCCEEDED") in [(p.phase, p.status) for p in continued.phases]


def test_commands_share_one_shell_state_and_see_codebuild_variables_in_their_precedence(build, source):
    result = build(
        {
            "install": {"commands": ["mkdir -p sub && cd sub", "export CARRIED=yes"]},
            "build": {
                "commands": [
                    "pwd",
                    "echo carried=$CARRIED src=$CODEBUILD_SRC_DIR id=$CODEBUILD_BUILD_ID",
                    "echo vars=$FROM_SPEC/$FROM_PROJECT/$SHARED region=$AWS_REGION/$AWS_DEFAULT_REGION",
                    "echo endpoint=$AWS_ENDPOINT_URL key=$AWS_ACCESS_KEY_ID",
                ]
            },
        },
        env={"variables": {"FROM_SPEC": "spec", "SHARED": "spec"}},
    )

    assert result.status == "SUCCEEDED", result.log
    src = next(line.split("=", 1)[1] for line in result.log.splitlines() if "CODEBUILD_SRC_DIR=" in line)
    assert f"\n{src}/sub\n" in result.log
    assert f"carried=yes src={src} id={result.build_id}" in result.log and result.build_id.startswith("unit:")
    assert "vars=spec/project/call region=eu-west-1/eu-west-1" in result.log  # call > project > buildspec
    assert "endpoint=http://127.0.0.1:9 key=testing" in result.log
    assert not (source / "sub").exists()  # the build works on a copy


def test_the_venv_holds_only_pip_and_comes_first_on_path(build):
    result = build(
        {
            "build": {
                "commands": [
                    "command -v python",
                    "command -v pip",
                    'head -1 "$(command -v pip)"',
                    "echo guard=$PIP_REQUIRE_VIRTUALENV",
                    "python -c 'import sys; print(sys.prefix != sys.base_prefix)'",
                    "python -c 'import boto3' || echo no-boto3-here",
                    "python -m pip list --format=freeze",
                ]
            }
        }
    )

    assert result.status == "SUCCEEDED", result.log
    venv = next(line for line in result.log.splitlines() if line.endswith("/bin/python")).rsplit("/bin/", 1)[0]
    assert f"{venv}/bin/pip" in result.log and "\nTrue\n" in result.log
    assert f"#!{venv}/bin/python" in result.log  # pip's own script runs the venv's Python, not the template's
    assert "guard=true" in result.log  # and pip refuses to install into any Python outside a venv
    assert "ModuleNotFoundError: No module named 'boto3'" in result.log and "no-boto3-here" in result.log
    listed = result.log.split("pip list --format=freeze", 1)[1]
    assert "pip==" in listed and "moto" not in listed and "boto3" not in listed


def test_artifacts_are_the_files_of_the_base_directory_and_none_matching_fails(build, tmp_path):
    made = build(
        {
            "build": {
                "commands": [
                    "mkdir -p out/deep",
                    "echo a > out/a.json",
                    "echo b > out/deep/b.json",
                    "echo c > out/c.txt",
                ]
            }
        },
        artifacts={"base-directory": "out", "files": ["**/*"], "exclude-paths": ["*.txt"]},
    )
    assert made.status == "SUCCEEDED", made.log
    files = sorted(p.relative_to(made.artifacts).as_posix() for p in made.artifacts.rglob("*") if p.is_file())
    assert files == ["a.json", "deep/b.json"]
    assert "Found 2 file(s)" in made.log

    missing = build({"build": {"commands": ["true"]}}, artifacts={"files": ["nothing-*.zip"]})
    assert missing.status == "FAILED"
    assert (missing.failed_phase.phase, missing.failed_phase.code) == ("UPLOAD_ARTIFACTS", "CLIENT_ERROR")
    assert "no matching artifact paths found" in missing.message


def test_the_log_goes_to_cloudwatch_logs_where_codebuild_puts_it(cloud, build):
    result = build(
        {"build": {"commands": ["echo to-the-log"]}},
        cloud=BuildCloud(cloud.endpoint_url, cloud.region, client=cloud.client),
    )

    stream = result.build_id.split(":", 1)[1]
    events = cloud.client("logs").get_log_events(logGroupName="/aws/codebuild/unit", logStreamName=stream)["events"]
    assert "to-the-log" in [e["message"] for e in events]


def _build_model_logical_id(template: dict) -> str:
    (logical,) = [
        k
        for k, r in template["Resources"].items()
        if r["Type"] == "AWS::CodeBuild::Project" and "prepare_model" in r["Properties"]["Source"]["BuildSpec"]
    ]
    return logical


def _without_list_bucket(template: dict) -> dict:
    """The pipeline template with s3:ListBucket taken out of every statement of the BuildModel role's policies."""
    trimmed = copy.deepcopy(template)
    resources = trimmed["Resources"]
    role = resources[_build_model_logical_id(trimmed)]["Properties"]["ServiceRole"]["Fn::GetAtt"][0]
    for resource in resources.values():
        if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role} in resource["Properties"]["Roles"]:
            kept = []
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                statement["Action"] = [a for a in actions if a != "s3:ListBucket"]
                if statement["Action"]:
                    kept.append(statement)
            resource["Properties"]["PolicyDocument"]["Statement"] = kept
            assert "s3:ListBucket" not in json.dumps(kept)
    assert "Policies" not in resources[role]["Properties"]  # no inline policy to trim as well
    return trimmed


def _build_model_from_stack(cloud, template: dict) -> tuple[BuildProject, str]:
    """Create the pipeline stack from `template` in the local cloud; its BuildModel project and model bucket.

    CloudFormation makes the project, its service role and that role's policies as the template says;
    the project comes back from CodeBuild as CodePipeline would run it.
    """
    # The provisioned account is bootstrapped already (its endpoint stack came from a CDK template).
    cloud.client("ssm").put_parameter(
        Name="/cdk-bootstrap/hnb659fds/version", Value="30", Type="String", Overwrite=True
    )
    cfn = cloud.client("cloudformation")
    cfn.create_stack(StackName="diffusion-desk-studio-source", TemplateBody=SOURCE)  # the pipeline imports its bucket
    cfn.create_stack(
        StackName="build-model-pipeline", TemplateBody=json.dumps(template), Capabilities=["CAPABILITY_NAMED_IAM"]
    )
    resources = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cfn.list_stack_resources(StackName="build-model-pipeline")["StackResourceSummaries"]
    }
    (found,) = cloud.client("codebuild").batch_get_projects(names=[resources[_build_model_logical_id(template)]])[
        "projects"
    ]
    return BuildProject.from_api(found), resources["ModelsC55D3500"]


def _tarball(members: dict[str, bytes]) -> bytes:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz") as archive:
        for name, body in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            archive.addfile(info, io.BytesIO(body))
    return data.getvalue()


@pytest.fixture
def model_build(cloud, tmp_path):
    """The source bundle the deployer uploads, the Synth step's output and JumpStart's replica.

    `run(template)` creates the pipeline stack from `template` (the synthesized one by default) and runs its
    BuildModel project under the service role that stack made; it returns the result and the model's S3 URI.
    """
    source = tmp_path / "src"
    for name, data in bundle_files((ROOT / "infra" / "config.toml").read_text(), ROOT):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes(data)
    s3 = cloud.client("s3")
    replica = ReplicaModel(MODEL, "2.0.0")
    publish(s3, cloud.region, [replica])
    model_key = spec(replica, cloud.region)["hosting_prepacked_artifact_key"]
    s3.put_object(
        Bucket=content_bucket(cloud.region),
        Key=model_key,
        Body=_tarball({"model_index.json": b"{}", "code/inference.py": b"# inference\n"}),
    )

    def run(template: dict = PIPELINE) -> tuple[BuildResult, str]:
        project, bucket = _build_model_from_stack(cloud, template)
        synth = tmp_path / "synth-output"
        synth.mkdir(exist_ok=True)
        destination = f"s3://{bucket}/models/{MODEL}/0123456789abcdef/model.tar.gz"
        model_source = f"s3://{content_bucket(cloud.region)}/{model_key}"
        resolved = ResolvedModel(
            MODEL,
            "2.0.0",
            cloud.region,
            "ml.g5.xlarge",
            "image:1",
            destination,
            {"SAGEMAKER_REGION": cloud.region},
            model_source,
            None,
        )
        resolved.write(synth / "model.resolved.json")
        result = CodeBuildRunner().run(
            project,
            BuildCloud(cloud.endpoint_url, cloud.region, client=cloud.client),
            source=source,
            secondary={"Synth_Output": synth},
        )
        return result, destination

    return source, run


@pytest.mark.slow
def test_build_model_fails_in_codebuild_words_when_it_imports_a_module_it_does_not_install(model_build):
    source, run = model_build
    requirements = source / "infra" / "model_build" / "requirements.txt"
    kept = [line for line in requirements.read_text().splitlines() if line.strip() != "orjson"]
    assert len(kept) == len(requirements.read_text().splitlines()) - 1  # contract imports orjson
    requirements.write_text("\n".join(kept) + "\n")

    result, _ = run()

    assert result.status == "FAILED", result.log[-4000:]
    assert [(p.phase, p.status) for p in result.phases][:4] == [
        ("DOWNLOAD_SOURCE", "SUCCEEDED"),
        ("INSTALL", "SUCCEEDED"),
        ("PRE_BUILD", "SUCCEEDED"),
        ("BUILD", "FAILED"),
    ]
    command = (
        "python -m infra.model_build.prepare_model --config infra/config.toml "
        '--resolved synth/model.resolved.json --bucket "$MODEL_BUCKET"'
    )
    assert "ModuleNotFoundError: No module named 'orjson'" in result.log, result.log
    assert f"Command did not exit successfully {command} exit status 1" in result.log
    assert "Phase complete: BUILD State: FAILED" in result.log
    assert result.message == (
        "Build terminated with state: FAILED. Phase: BUILD, Code: COMMAND_EXECUTION_ERROR, "
        f"Message: Error while executing command: {command}. Reason: exit status 1"
    )


@pytest.mark.slow
def test_build_model_as_synthesized_repackages_the_model_under_its_own_role(cloud, model_build):
    _, run = model_build

    result, destination = run()

    assert result.status == "SUCCEEDED", result.log[-3000:]
    assert "Local cloud: the build runs under its service role arn:aws:iam::" in result.log
    assert "Selecting 'python' runtime version '3.12' based on manual selections..." in result.log
    assert f'"model_data_url": "{destination}", "reused": false' in result.log
    bucket, key = destination.removeprefix("s3://").split("/", 1)
    body = cloud.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as archive:
        assert sorted(archive.getnames()) == ["code/inference.py", "model_index.json"]
    assert list(cloud.cloud.iam.refusals) == []


@pytest.mark.slow
def test_without_s3_list_bucket_build_model_fails_with_access_denied_in_codebuild_words(cloud, model_build):
    _, run = model_build

    result, destination = run(_without_list_bucket(PIPELINE))

    assert result.status == "FAILED", result.log[-3000:]
    assert "Local cloud: the build runs under its service role arn:aws:iam::" in result.log
    bucket = destination.removeprefix("s3://").split("/", 1)[0]
    assert "AccessDenied" in result.log and "s3:ListBucket" in result.log, result.log[-3000:]
    assert f"the build role needs s3:ListBucket on s3://{bucket} for the prefix models/" in result.log
    command = (
        "python -m infra.model_build.prepare_model --config infra/config.toml "
        '--resolved synth/model.resolved.json --bucket "$MODEL_BUCKET"'
    )
    assert result.message == (
        "Build terminated with state: FAILED. Phase: BUILD, Code: COMMAND_EXECUTION_ERROR, "
        f"Message: Error while executing command: {command}. Reason: exit status 1"
    )
    refused = {(r.action, r.resource) for r in cloud.cloud.iam.refusals}
    assert ("s3:ListBucket", f"arn:aws:s3:::{bucket}") in refused
    listed = cloud.client("s3").list_objects_v2(Bucket=bucket, Prefix="models/")
    assert listed.get("KeyCount", 0) == 0  # nothing half-written

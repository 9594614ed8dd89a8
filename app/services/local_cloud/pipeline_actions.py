"""The actions a local pipeline run can take: an S3 source, a CodeBuild build, a CloudFormation deploy.

Artifacts pass between actions as folders (CodePipeline zips them into its artifact bucket; here
each is a folder of the run). Each action answers with an `Outcome` whose summary and error
message are what CodePipeline shows for that provider.
"""

from __future__ import annotations

import io
import json
import time
import uuid
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from app.services.local_cloud.codebuild import BuildCloud, BuildProject, CodeBuildRunner, EnvironmentVariable

#: CloudFormation takes a template body up to this size; above it CodePipeline hands it over through S3.
MAX_TEMPLATE_BODY = 51_200
_STACK_WAIT = 600.0


@dataclass
class Outcome:
    succeeded: bool
    summary: str = ""
    message: str = ""
    code: str = "JobFailed"
    external_id: str = ""
    external_url: str = ""
    revision: dict[str, Any] | None = None


@dataclass
class ActionRun:
    """One action of one run, with what it needs from the run and the cloud."""

    pipeline: str
    execution_id: str
    region: str
    account_id: str
    action: dict[str, Any]
    folders: Callable[[str], Path]
    client: Callable[[str], Any]
    builds: CodeBuildRunner
    endpoint_url: str
    artifact_store: str = ""
    revision_override: Mapping[str, str] = field(default_factory=dict)
    started: Callable[[str, str], None] = lambda external_id, url: None

    @property
    def configuration(self) -> dict[str, str]:
        return self.action.get("configuration") or {}

    def inputs(self) -> list[str]:
        return [a["name"] for a in self.action.get("inputArtifacts") or []]

    def outputs(self) -> list[str]:
        return [a["name"] for a in self.action.get("outputArtifacts") or []]


def run_action(run: ActionRun) -> Outcome:
    """Run the action its provider names; a call that AWS refuses fails it with AWS's message."""
    kind = run.action["actionTypeId"]
    handler = _HANDLERS.get((kind["category"], kind["provider"]))
    if handler is None:
        return Outcome(
            False,
            message=f"The local cloud does not run {kind['category']} actions of "
            f"{kind['provider']} ({run.action['name']}).",
            code="ConfigurationError",
        )
    try:
        return handler(run)
    except ClientError as error:
        return Outcome(False, message=error.response.get("Error", {}).get("Message") or str(error))
    except _ActionError as error:
        return Outcome(False, message=str(error), code="ConfigurationError")


def _s3_source(run: ActionRun) -> Outcome:
    bucket, key = run.configuration["S3Bucket"], run.configuration["S3ObjectKey"]
    s3 = run.client("s3")
    # AWS wants a versioned source bucket (bucket_resources keeps a stack's VersioningConfiguration); not checked.
    version = (
        {"VersionId": run.revision_override["S3_OBJECT_VERSION_ID"]}
        if ("S3_OBJECT_VERSION_ID" in run.revision_override)
        else {}
    )
    key = run.revision_override.get("S3_OBJECT_KEY", key)
    try:
        found = s3.get_object(Bucket=bucket, Key=key, **version)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NoSuchVersion"):
            return Outcome(False, message=f"The object with key '{key}' does not exist.")
        raise
    data = found["Body"].read()
    for name in run.outputs()[:1]:
        _unpack(data, key, run.folders(name))
    revision_id = found.get("VersionId") or found.get("ETag", "").strip('"')
    summary = (found.get("Metadata") or {}).get("codepipeline-artifact-revision-summary", "")
    revision = {
        "actionName": run.action["name"],
        "revisionId": revision_id,
        **({"revisionSummary": summary} if summary else {}),
    }
    return Outcome(
        True, summary=summary or f"Amazon S3 version id: {revision_id}", revision=revision, external_id=revision_id
    )


def _unpack(data: bytes, key: str, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(io.BytesIO(data)):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            archive.extractall(folder)
    else:
        (folder / Path(key).name).write_bytes(data)


def _codecommit_source(run: ActionRun) -> Outcome:
    return Outcome(
        False,
        code="ConfigurationError",
        message=(
            f"The local cloud keeps no commits of the CodeCommit repository {run.configuration.get('RepositoryName')} "
            "(moto's CodeCommit has none): use the S3 source."
        ),
    )


def _codebuild(run: ActionRun) -> Outcome:
    name = run.configuration["ProjectName"]
    projects = run.client("codebuild").batch_get_projects(names=[name]).get("projects") or []
    if not projects:
        return Outcome(
            False,
            message=f"Project cannot be found: arn:aws:codebuild:{run.region}:{run.account_id}:project/{name}",
            code="ConfigurationError",
        )
    project = BuildProject.from_api(projects[0])
    inputs = run.inputs()
    primary = run.configuration.get("PrimarySource") or (inputs[0] if inputs else "")
    if not primary:
        return Outcome(False, message="The CodeBuild action has no input artifact.", code="ConfigurationError")
    overrides = [
        EnvironmentVariable(v["name"], str(v.get("value", "")), v.get("type") or "PLAINTEXT")
        for v in json.loads(run.configuration.get("EnvironmentVariables") or "[]")
    ]
    outputs = run.outputs()
    cloud = BuildCloud(run.endpoint_url, run.region, run.account_id, client=run.client)
    build_id = f"{project.name}:{uuid.uuid4()}"
    url = f"https://console.aws.amazon.com/codebuild/home?region={run.region}#/builds/{build_id}/view/new"
    run.started(build_id, url)
    result = run.builds.run(
        project,
        cloud,
        source=run.folders(primary),
        secondary={n: run.folders(n) for n in inputs if n != primary},
        overrides=overrides,
        artifacts_to=run.folders(outputs[0]) if outputs else None,
        initiator=f"codepipeline/{run.pipeline}",
        build_id=build_id,
    )
    if result.status == "SUCCEEDED":
        return Outcome(True, external_id=build_id, external_url=url)
    return Outcome(False, message=result.message, external_id=build_id, external_url=url)


def _cloudformation(run: ActionRun) -> Outcome:
    config = run.configuration
    mode, stack = config.get("ActionMode", ""), config["StackName"]
    cfn = run.client("cloudformation")
    if mode == "CHANGE_SET_EXECUTE":
        return _execute_change_set(run, cfn, stack, config["ChangeSetName"])
    if mode == "DELETE_ONLY":
        if _stack_status(cfn, stack):
            cfn.delete_stack(StackName=stack, **_role(config))
            _wait(cfn, stack, deleting=True)
        return Outcome(True, summary=f"Stack {stack} was deleted")
    if mode not in ("CREATE_UPDATE", "REPLACE_ON_FAILURE", "CHANGE_SET_REPLACE"):
        return Outcome(
            False, message=f"The local cloud does not run the action mode {mode}.", code="ConfigurationError"
        )
    status = _stack_status(cfn, stack)
    if status in ("ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "CREATE_FAILED") and mode == "REPLACE_ON_FAILURE":
        cfn.delete_stack(StackName=stack)
        _wait(cfn, stack, deleting=True)
        status = None
    elif status == "ROLLBACK_COMPLETE":
        return Outcome(False, message=f"Stack {stack} is in ROLLBACK_COMPLETE state and can not be updated.")
    template = _template(run, cfn, stack)
    if mode == "CHANGE_SET_REPLACE":
        return _replace_change_set(cfn, stack, config, template, status)
    return _deploy(run, cfn, stack, template, status)


def _template(run: ActionRun, cfn: Any, stack: str) -> dict[str, Any]:
    """TemplateBody (or TemplateURL when too big), Parameters, Tags, Capabilities and RoleARN of the action."""
    config = run.configuration
    body = _artifact_file(run, config["TemplatePath"]).read_text(encoding="utf-8")
    parameters: dict[str, str] = {}
    tags: dict[str, str] = {}
    if config.get("TemplateConfiguration"):
        settings = json.loads(_artifact_file(run, config["TemplateConfiguration"]).read_text(encoding="utf-8"))
        parameters.update({k: str(v) for k, v in (settings.get("Parameters") or {}).items()})
        tags.update({k: str(v) for k, v in (settings.get("Tags") or {}).items()})
    parameters.update({k: str(v) for k, v in json.loads(config.get("ParameterOverrides") or "{}").items()})
    where: dict[str, Any] = {"TemplateBody": body}
    if len(body.encode()) > MAX_TEMPLATE_BODY and run.artifact_store:
        key = f"{run.pipeline[:20]}/templates/{run.execution_id}-{uuid.uuid4().hex[:8]}.json"
        run.client("s3").put_object(Bucket=run.artifact_store, Key=key, Body=body.encode())
        where = {"TemplateURL": f"https://s3.{run.region}.amazonaws.com/{run.artifact_store}/{key}"}
    capabilities = [c.strip() for c in (config.get("Capabilities") or "").split(",") if c.strip()]
    return {
        **where,
        "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
        **({"Capabilities": capabilities} if capabilities else {}),
        **_role(config),
    }


def _artifact_file(run: ActionRun, path: str) -> Path:
    artifact, _, relative = path.partition("::")
    found = run.folders(artifact) / relative
    if not found.is_file():
        raise _ActionError(f"The file {relative} is not in the artifact {artifact}.")
    return found


def _role(config: Mapping[str, str]) -> dict[str, str]:
    return {"RoleARN": config["RoleArn"]} if config.get("RoleArn") else {}


def _deploy(run: ActionRun, cfn: Any, stack: str, template: dict[str, Any], status: str | None) -> Outcome:
    try:
        if status is None:
            cfn.create_stack(StackName=stack, **template)
        else:
            cfn.update_stack(StackName=stack, **template)
    except ClientError as error:
        if "No updates are to be performed" in str(error):
            return Outcome(True, summary="No updates are to be performed.")
        raise
    final = _wait(cfn, stack)
    if not final.endswith("_COMPLETE") or "ROLLBACK" in final:
        return Outcome(False, message=f"Stack {stack} is in {final} state{_reason(cfn, stack)}")
    _write_outputs(run, cfn, stack)
    return Outcome(True, summary=f"Stack {stack} is in {final} state")


def _replace_change_set(
    cfn: Any, stack: str, config: Mapping[str, str], template: dict[str, Any], status: str | None
) -> Outcome:
    name = config["ChangeSetName"]
    if status is not None:
        try:
            cfn.delete_change_set(StackName=stack, ChangeSetName=name)
        except ClientError:
            pass
    kind = "CREATE" if status in (None, "REVIEW_IN_PROGRESS") else "UPDATE"
    cfn.create_change_set(StackName=stack, ChangeSetName=name, ChangeSetType=kind, **template)
    deadline = time.monotonic() + _STACK_WAIT
    while True:
        found = cfn.describe_change_set(StackName=stack, ChangeSetName=name)
        if found["Status"] in ("CREATE_COMPLETE", "FAILED") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    if found["Status"] == "FAILED" and "didn't contain changes" not in found.get("StatusReason", ""):
        return Outcome(False, message=f"Change set {name} failed: {found.get('StatusReason', '')}")
    return Outcome(True, summary=f"Change set {name} was created.")


def _execute_change_set(run: ActionRun, cfn: Any, stack: str, name: str) -> Outcome:
    try:
        found = cfn.describe_change_set(StackName=stack, ChangeSetName=name)
    except ClientError as error:
        return Outcome(False, message=error.response.get("Error", {}).get("Message") or str(error))
    if found["Status"] == "FAILED":
        return Outcome(True, summary="The change set held no changes: nothing to execute.")
    cfn.execute_change_set(StackName=stack, ChangeSetName=name)
    final = _wait(cfn, stack)
    if not final.endswith("_COMPLETE") or "ROLLBACK" in final:
        return Outcome(
            False, message=f"Failed to execute change set. Current stack status: {final}.{_reason(cfn, stack)}"
        )
    _write_outputs(run, cfn, stack)
    return Outcome(True, summary=f"Stack {stack} was updated ({final})")


def _stack_status(cfn: Any, stack: str) -> str | None:
    try:
        status = cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
    except ClientError as error:
        if "does not exist" in str(error):
            return None
        raise
    return None if status == "DELETE_COMPLETE" else status


def _wait(cfn: Any, stack: str, *, deleting: bool = False) -> str:
    deadline = time.monotonic() + _STACK_WAIT
    while True:
        status = _stack_status(cfn, stack)
        if status is None:
            return "DELETE_COMPLETE" if deleting else "NOT_FOUND"
        if not status.endswith("_IN_PROGRESS") or time.monotonic() > deadline:
            return status
        time.sleep(0.2)


def _reason(cfn: Any, stack: str) -> str:
    events = cfn.describe_stack_events(StackName=stack).get("StackEvents") or []
    failed = [
        e for e in events if str(e.get("ResourceStatus", "")).endswith("FAILED") and e.get("ResourceStatusReason")
    ]
    return f": {failed[-1]['LogicalResourceId']} {failed[-1]['ResourceStatusReason']}" if failed else ""


def _write_outputs(run: ActionRun, cfn: Any, stack: str) -> None:
    outputs = run.outputs()
    file_name = run.configuration.get("OutputFileName")
    if not outputs or not file_name:
        return
    stack_outputs = cfn.describe_stacks(StackName=stack)["Stacks"][0].get("Outputs") or []
    folder = run.folders(outputs[0])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / file_name).write_text(json.dumps({o["OutputKey"]: o["OutputValue"] for o in stack_outputs}))


class _ActionError(Exception):
    pass


_HANDLERS: dict[tuple[str, str], Callable[[ActionRun], Outcome]] = {
    ("Source", "S3"): _s3_source,
    ("Source", "CodeCommit"): _codecommit_source,
    ("Build", "CodeBuild"): _codebuild,
    ("Test", "CodeBuild"): _codebuild,
    ("Deploy", "CloudFormation"): _cloudformation,
}

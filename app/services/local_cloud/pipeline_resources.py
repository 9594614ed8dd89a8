"""AWS::CodePipeline::Pipeline and AWS::CodeBuild::Project for moto's CloudFormation.

moto's CloudFormation skips both types: a stack's pipeline gets no name (its Ref is empty) and its
build projects exist nowhere. These two models create them in moto's own CodePipeline and CodeBuild
backends, in the shapes that CreatePipeline and CreateProject take, where GetPipeline and
BatchGetProjects (and so the local cloud's pipeline emulator) find them. What CodePipeline itself
does when a stack creates or updates a pipeline (it starts a run) is told to `PIPELINE_EVENTS`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from moto.cloudformation import parsing
from moto.codebuild.models import codebuild_backends
from moto.codepipeline.models import codepipeline_backends
from moto.core.common_models import CloudFormationModel

from .stack_resources import Typed

#: Called with (account, region, pipeline name, "created" or "updated") after a stack made the change.
PIPELINE_EVENTS: list[Callable[[str, str, str, str], None]] = []


def _camel(value: Any) -> Any:
    """CloudFormation's PascalCase property names as the API's camelCase, all the way down."""
    if isinstance(value, dict):
        return {key[:1].lower() + key[1:]: _camel(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_camel(item) for item in value]
    return value


def _string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value) if isinstance(value, dict | list) else str(value)


def _action(action: dict[str, Any]) -> dict[str, Any]:
    shape = {
        "name": action["Name"],
        "actionTypeId": _camel(action["ActionTypeId"]),
        "runOrder": int(action.get("RunOrder", 1)),
        # An action's configuration keeps its own keys (ProjectName, S3Bucket…), and its values are strings.
        "configuration": {key: _string(value) for key, value in (action.get("Configuration") or {}).items()},
        "inputArtifacts": [{"name": a["Name"]} for a in action.get("InputArtifacts") or []],
        "outputArtifacts": [{"name": a["Name"]} for a in action.get("OutputArtifacts") or []],
    }
    for key in ("RoleArn", "Region", "Namespace", "TimeoutInMinutes"):
        if key in action:
            shape[key[:1].lower() + key[1:]] = action[key]
    return shape


def pipeline_shape(name: str, properties: dict[str, Any]) -> dict[str, Any]:
    """The pipeline declaration of CreatePipeline, from the resource's properties."""
    shape = {
        "name": name,
        "roleArn": properties["RoleArn"],
        "stages": [{"name": s["Name"], "actions": [_action(a) for a in s["Actions"]]} for s in properties["Stages"]],
    }
    for key in ("ArtifactStore", "ArtifactStores", "PipelineType", "ExecutionMode", "Variables", "Triggers"):
        if key in properties:
            shape[key[:1].lower() + key[1:]] = _camel(properties[key])
    return shape


def _tags(properties: dict[str, Any]) -> list[dict[str, str]]:
    return [{"key": t["Key"], "value": str(t["Value"])} for t in properties.get("Tags") or []]


class _Named(Typed):
    """What both resources share: named by their Name property, with one attribute for Fn::GetAtt."""

    NAME_PROPERTY = "Name"
    name: str

    @property
    def physical_resource_id(self) -> str:
        return self.name

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        if attribute_name == self.ATTRIBUTE:
            return self._attribute()
        return super().get_cfn_attribute(attribute_name)  # type: ignore[misc]

    def _attribute(self) -> Any:
        raise NotImplementedError

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls, original_resource: Any, new_resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> Any:
        name = cloudformation_json["Properties"].get("Name") or original_resource.name
        return cls._updated(original_resource, name, cloudformation_json, account_id, region_name)

    @classmethod
    def _updated(cls, original: Any, name: str, cloudformation_json: Any, account_id: str, region_name: str) -> Any:
        """The resource after an update that keeps (or, with a new Name, replaces) it."""
        raise NotImplementedError


class LocalPipeline(_Named, CloudFormationModel):
    """A pipeline a stack made, kept in moto's CodePipeline backend."""

    TYPE = "AWS::CodePipeline::Pipeline"
    ATTRIBUTE = "Version"

    def __init__(self, name: str, account_id: str, region: str) -> None:
        self.name = name
        self.account_id = account_id
        self.region = region

    def _attribute(self) -> Any:
        return str(codepipeline_backends[self.account_id][self.region].pipelines[self.name].pipeline["version"])

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> LocalPipeline:
        properties = cloudformation_json["Properties"]
        backend = codepipeline_backends[account_id][region_name]
        backend.create_pipeline(pipeline_shape(resource_name, properties), _tags(properties))
        _tell(account_id, region_name, resource_name, "created")
        return cls(resource_name, account_id, region_name)

    @classmethod
    def _updated(cls, original: Any, name: str, cloudformation_json: Any, account_id: str, region_name: str) -> Any:
        properties = cloudformation_json["Properties"]
        backend = codepipeline_backends[account_id][region_name]
        if name != original.name:
            backend.delete_pipeline(original.name)
            return cls.create_from_cloudformation_json(name, cloudformation_json, account_id, region_name)
        backend.update_pipeline(pipeline_shape(name, properties))
        if properties.get("RestartExecutionOnUpdate"):
            _tell(account_id, region_name, name, "updated")
        return cls(name, account_id, region_name)

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> None:
        codepipeline_backends[account_id][region_name].delete_pipeline(resource_name)

    def delete(self, account_id: str, region_name: str) -> None:
        codepipeline_backends[account_id][region_name].delete_pipeline(self.name)


class LocalBuildProject(_Named, CloudFormationModel):
    """A build project a stack made, kept in moto's CodeBuild backend with its buildspec and environment."""

    TYPE = "AWS::CodeBuild::Project"
    ATTRIBUTE = "Arn"

    def __init__(self, name: str, arn: str) -> None:
        self.name = name
        self.arn = arn

    def _attribute(self) -> Any:
        return self.arn

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> LocalBuildProject:
        p = cloudformation_json["Properties"]
        source = _camel(p["Source"])
        if "buildSpec" in source:
            source["buildspec"] = source.pop("buildSpec")
        environment = _camel(p["Environment"])
        for variable in environment.get("environmentVariables") or []:
            variable["value"] = _string(variable.get("value", ""))
        backend = codebuild_backends[account_id][region_name]
        project = backend.create_project(
            project_name=resource_name,
            description=p.get("Description"),
            project_source=source,
            artifacts=_camel(p.get("Artifacts") or {"Type": "NO_ARTIFACTS"}),
            environment=environment,
            service_role=p.get("ServiceRole") or "",
            tags=_tags(p),
            cache=_camel(p.get("Cache")),
            timeout=p.get("TimeoutInMinutes"),
            queued_timeout=p.get("QueuedTimeoutInMinutes"),
            source_version=p.get("SourceVersion"),
            logs_config=_camel(p.get("LogsConfig")),
            vpc_config=_camel(p.get("VpcConfig")),
        )
        return cls(resource_name, project["arn"])

    @classmethod
    def _updated(cls, original: Any, name: str, cloudformation_json: Any, account_id: str, region_name: str) -> Any:
        codebuild_backends[account_id][region_name].delete_project(original.name)
        return cls.create_from_cloudformation_json(name, cloudformation_json, account_id, region_name)

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> None:
        codebuild_backends[account_id][region_name].delete_project(resource_name)

    def delete(self, account_id: str, region_name: str) -> None:
        codebuild_backends[account_id][region_name].delete_project(self.name)


def _tell(account_id: str, region: str, name: str, event: str) -> None:
    for listener in list(PIPELINE_EVENTS):
        listener(account_id, region, name, event)


# moto lists the models CloudFormation can create once, from CloudFormationModel's subclasses.
for _cached in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
    _cached.cache_clear()

"""The sandbox's endpoint stack: the shipped, pre-synthesized endpoint template, deployed as the pipeline deploys it.

`make templates` synthesizes the endpoint stack for the sandbox's config (resources/templates/
endpoint-sandbox.template.json, and its Lambda assets manifest): the same bucket, topics, Lambdas,
roles, async endpoint, scaling and SSM parameters as an AWS deployment, with a model whose image
names the local cloud's engine (no model build step runs for it). `deploy` bootstraps the account
as `cdk bootstrap` does, publishes the Lambda assets and deploys the template under the
deployment's own names (stack, endpoint, SSM parameters), as `stacks.py` does for any CDK output.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from functools import cache
from typing import Any

from app.services.deploy.bundle import cloud_source_dir, templates_dir
from app.services.local_cloud.stacks import Clients, bootstrap, deploy_stack, publish_assets
from contract import DEPLOYMENT_TAG, ssm_name, ssm_prefix

TEMPLATE = "endpoint-sandbox.template.json"
ASSETS = "endpoint-sandbox.assets.json"
BOOTSTRAP = "bootstrap-template.yaml"
#: The deployment the shipped template was synthesized for (infra.templates.sandbox_config).
SYNTHESIZED_FOR = "sandbox"
_NAME_MAX = 63


def stack_name(deployment: str) -> str:
    """`diffusion-desk-<deployment>-endpoint`, as infra's Config.stack_name names the pipeline's stack."""
    return f"{ssm_prefix(deployment).strip('/').replace('/', '-')}-endpoint"


@cache
def _shipped() -> tuple[str, str]:
    folder = templates_dir()
    return (folder / TEMPLATE).read_text(encoding="utf-8"), (folder / ASSETS).read_text(encoding="utf-8")


def template(
    deployment: str, *, max_concurrent_invocations: int | None = None, max_instances: int | None = None
) -> dict[str, Any]:
    """The shipped template under `deployment`'s names, with the two endpoint settings a deploy's config.toml sets."""
    document = json.loads(_shipped()[0])
    old_stack, new_stack = stack_name(SYNTHESIZED_FOR), stack_name(deployment)
    for resource in document["Resources"].values():
        properties = resource.get("Properties", {})
        kind = resource["Type"]
        _retag(properties.get("Tags"), deployment)
        if kind == "AWS::SSM::Parameter":
            param = properties["Name"].rsplit("/", 1)[-1]
            properties["Name"] = ssm_name(deployment, param)
        elif kind == "AWS::SageMaker::Endpoint":
            properties["EndpointName"] = _renamed(properties["EndpointName"], old_stack, new_stack)
        elif kind == "AWS::SageMaker::EndpointConfig" and max_concurrent_invocations is not None:
            client = properties["AsyncInferenceConfig"].setdefault("ClientConfig", {})
            client["MaxConcurrentInvocationsPerInstance"] = max_concurrent_invocations
        elif kind == "AWS::ApplicationAutoScaling::ScalableTarget" and max_instances is not None:
            properties["MaxCapacity"] = max_instances
    return document


def _retag(tags: Any, deployment: str) -> None:
    """The deployment tag says `deployment` (a list of Key/Value pairs, or SSM's map of keys to values)."""
    if isinstance(tags, dict) and DEPLOYMENT_TAG in tags:
        tags[DEPLOYMENT_TAG] = deployment
    for tag in tags if isinstance(tags, list) else ():
        if tag.get("Key") == DEPLOYMENT_TAG:
            tag["Value"] = deployment


def _renamed(name: str, old_stack: str, new_stack: str) -> str:
    """The endpoint's name with the stack's part changed, at most 63 characters (infra's endpoint_name rule)."""
    if not name.startswith(old_stack):
        raise ValueError(f"the sandbox template's endpoint {name!r} is not named by its stack {old_stack!r}")
    renamed = re.sub(r"[^A-Za-z0-9]+", "-", new_stack + name[len(old_stack) :]).strip("-")
    if len(renamed) > _NAME_MAX:
        digest = hashlib.sha256(renamed.encode()).hexdigest()[:8]
        renamed = f"{renamed[: _NAME_MAX - len(digest) - 1].rstrip('-')}-{digest}"
    return renamed


def deploy(client: Clients, deployment: str, document: Mapping[str, Any], *, account: str, region: str) -> dict:
    """Bootstrap, publish the Lambda assets and deploy the stack; returns its outputs (bucketName, endpointName…)."""
    bootstrap(client, templates_dir() / BOOTSTRAP)
    # Each asset's folder is under the repository, or under the installed app's cloud-source/.
    publish_assets(client, json.loads(_shipped()[1]), cloud_source_dir(), account=account, region=region)
    return deploy_stack(client, stack_name(deployment), document)

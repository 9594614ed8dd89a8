"""What CloudFormation does to each resource when a stack is updated, read from two templates.

A property whose value changes (or that refers to a resource being replaced, whose name or ARN
therefore changes) is updated in place, unless the resource type's schema lists it among its
createOnlyProperties: then the resource is replaced (a new one first, the old one deleted in the
cleanup phase). The schemas are the ones cfn-lint ships, as CloudFormation's registry publishes them.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from cfnlint.schema.manager import PROVIDER_SCHEMA_MANAGER

ADD, REMOVE, REPLACE, MODIFY, KEEP = "Add", "Remove", "Replace", "Modify", "Keep"


@cache
def create_only(resource_type: str, region: str = "us-east-1") -> frozenset[str]:
    """The top-level properties whose change replaces a resource of this type."""
    schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(region, resource_type).schema
    return frozenset(path.split("/")[2] for path in schema.get("createOnlyProperties", []))


def references(value: Any) -> set[str]:
    """The logical ids a value refers to with Ref or Fn::GetAtt."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found.add(inner)
            elif key == "Fn::GetAtt":
                found.add(inner[0] if isinstance(inner, list) else inner.split(".")[0])
            else:
                found |= references(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= references(inner)
    return found


def changed_properties(old: dict, new: dict, replaced: set[str]) -> set[str]:
    """Top-level properties whose value differs, or that refer to a resource being replaced."""
    names = set(old.get("Properties", {})) | set(new.get("Properties", {}))
    changed = set()
    for name in names:
        before, after = old.get("Properties", {}).get(name), new.get("Properties", {}).get(name)
        if json.dumps(before, sort_keys=True) != json.dumps(after, sort_keys=True) or references(after) & replaced:
            changed.add(name)
    return changed


def plan(old: dict, new: dict) -> dict[str, str]:
    """The action on every logical id of either template: Add, Remove, Replace, Modify or Keep."""
    before, after = old["Resources"], new["Resources"]
    common = [key for key in before if key in after]
    replaced = {key for key in common if before[key]["Type"] != after[key]["Type"]}
    while True:
        grown = set(replaced)
        for key in common:
            if key not in grown and changed_properties(before[key], after[key], grown) & create_only(
                after[key]["Type"]
            ):
                grown.add(key)
        if grown == replaced:
            break
        replaced = grown
    actions = {key: REMOVE for key in before if key not in after} | {key: ADD for key in after if key not in before}
    for key in common:
        if key in replaced:
            actions[key] = REPLACE
        else:
            actions[key] = MODIFY if changed_properties(before[key], after[key], replaced) else KEEP
    return actions


def _variant_types(template: dict, endpoint: dict) -> dict[str, Any]:
    (config,) = references(endpoint["Properties"]["EndpointConfigName"])
    variants = template["Resources"][config]["Properties"]["ProductionVariants"]
    return {v["VariantName"]: v.get("InstanceType") for v in variants}


def scaled_endpoints(template: dict) -> set[str]:
    """Endpoints that a scalable target registers (its ResourceId names the endpoint)."""
    return {
        ref
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::ApplicationAutoScaling::ScalableTarget"
        for ref in references(resource["Properties"]["ResourceId"])
        if template["Resources"].get(ref, {}).get("Type") == "AWS::SageMaker::Endpoint"
    }


def in_place_instance_type_changes(old: dict, new: dict) -> list[str]:
    """One finding per endpoint updated in place (UpdateEndpoint) that changes the instance type
    of a variant registered for auto scaling: the update AWS refuses."""
    actions = plan(old, new)
    findings = []
    for key in sorted(scaled_endpoints(old)):
        if actions[key] != MODIFY:
            continue
        before, after = _variant_types(old, old["Resources"][key]), _variant_types(new, new["Resources"][key])
        for variant, instance_type in before.items():
            if variant in after and after[variant] != instance_type:
                findings.append(
                    f"{key}: variant {variant} would change from {instance_type} to {after[variant]} in place"
                )
    return findings

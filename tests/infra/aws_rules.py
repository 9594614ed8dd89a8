"""Rules AWS enforces that no emulator does, as small functions over CloudFormation template dicts.

In the spirit of cfn-lint's rules and cdk-nag's packs: each rule returns a list of findings (one
sentence each); an empty list means the template keeps the rule. Policies are evaluated by a small
IAM evaluator here, not moto's (moto's IAMPolicyStatement ignores StringLike and treats an Allow
whose condition does not match as a Deny, so s3:prefix-scoped grants cannot be judged with it).
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

ACCOUNT = "123456789012"
REGION = "us-east-1"
PSEUDO = {"AWS::AccountId": ACCOUNT, "AWS::Region": REGION, "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com"}
NO_VALUE = object()


@dataclass
class Resolver:
    """Resolves intrinsics to concrete test values: pseudo parameters, parameter defaults, `names`.

    `names` gives the value of `Ref` for chosen logical ids (a test bucket's name, a topic's ARN);
    other resources resolve to stable stand-ins derived from their logical id.
    """

    template: dict
    names: dict[str, str] = field(default_factory=dict)

    def ref(self, name: str) -> Any:
        if name in PSEUDO:
            return PSEUDO[name]
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.names:
            return self.names[name]
        if name in self.template.get("Parameters", {}):
            parameter = self.template["Parameters"][name]
            if str(parameter.get("Type", "")).startswith("AWS::SSM::Parameter::Value<"):
                return f"<value of {parameter.get('Default')}>"  # what the SSM parameter holds, unknown here
            return parameter.get("Default", f"<{name}>")
        resource = self.template.get("Resources", {}).get(name, {})
        props = resource.get("Properties", {})
        kind = resource.get("Type", "")
        if kind == "AWS::SSM::Parameter" and "Name" in props:
            return self(props["Name"])
        if kind == "AWS::IAM::Role" and "RoleName" in props:
            return self(props["RoleName"])
        if kind == "AWS::S3::Bucket":
            return self(props["BucketName"]) if "BucketName" in props else name.lower()
        if kind == "AWS::SNS::Topic":
            return f"arn:aws:sns:{REGION}:{ACCOUNT}:{name}"
        return name

    def get_att(self, name: str, attribute: str) -> str:
        kind = self.template.get("Resources", {}).get(name, {}).get("Type", "")
        if attribute == "Arn":
            if kind == "AWS::S3::Bucket":
                return f"arn:aws:s3:::{self.ref(name)}"
            if kind == "AWS::IAM::Role":
                return f"arn:aws:iam::{ACCOUNT}:role/{self.ref(name)}"
            if kind == "AWS::KMS::Key":
                return f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{name}"
            if kind == "AWS::SNS::Topic":
                return self.ref(name)
        return f"<{name}.{attribute}>"

    def condition(self, name: str) -> bool:
        return bool(self(self.template.get("Conditions", {})[name]))

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [v for v in (self(item) for item in value) if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                name, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(name, attribute)
            if key == "Fn::Join":
                return str(self(arg[0])).join(str(v) for v in self(arg[1]))
            if key == "Fn::Select":
                items, index = self(arg[1]), int(self(arg[0]))
                return items[index] if index < len(items) else f"<item {index} of {items}>"
            if key == "Fn::Split":
                return str(self(arg[1])).split(self(arg[0]))
            if key == "Fn::Sub":
                text, names = (arg, {}) if isinstance(arg, str) else (arg[0], self(arg[1]))
                return re.sub(r"\$\{([^}!]+)\}", lambda m: str(self._sub(m[1], names)), text)
            if key == "Fn::If":
                return self(arg[1] if self.condition(arg[0]) else arg[2])
            if key == "Fn::Equals":
                return self(arg[0]) == self(arg[1])
            if key == "Fn::Not":
                return not self(arg[0])
            if key == "Fn::And":
                return all(self(a) for a in arg)
            if key == "Fn::Or":
                return any(self(a) for a in arg)
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::ImportValue":
                return f"<import {self(arg)}>"
        return {k: v for k, v in ((k, self(v)) for k, v in value.items()) if v is not NO_VALUE}

    def _sub(self, name: str, names: dict) -> Any:
        if name in names:
            return names[name]
        if "." in name and not name.startswith("AWS::"):
            return self.get_att(*name.split(".", 1))
        return self.ref(name)


def statements(document: dict) -> list[dict]:
    found = document.get("Statement", [])
    return found if isinstance(found, list) else [found]


def _listed(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _matches(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    if ignore_case:
        pattern, value = pattern.lower(), value.lower()
    return fnmatch.fnmatchcase(value, pattern.replace("[", "[[]"))


_OPERATORS = {
    "StringEquals": lambda want, have: have == want,
    "StringLike": lambda want, have: _matches(want, have),
    "ArnEquals": lambda want, have: have == want,
    "ArnLike": lambda want, have: _matches(want, have),
}


def _condition_holds(conditions: dict, context: dict[str, str]) -> bool:
    """IAM's condition block: every operator and key must hold; an unknown operator does not hold."""
    for operator, keys in conditions.items():
        negated = "StringNot" in operator or "ArnNot" in operator
        base = operator.replace("Not", "", 1) if negated else operator
        base = base.removeprefix("ForAnyValue:").removesuffix("IfExists")
        for key, wanted in keys.items():
            if operator == "Null":
                if (key not in context) != (str(wanted).lower() == "true"):
                    return False
                continue
            if base not in _OPERATORS:
                return False
            if key not in context:
                if negated or operator.endswith("IfExists"):
                    continue
                return False
            hit = any(_OPERATORS[base](w, context[key]) for w in _listed(wanted))
            if hit == negated:
                return False
    return True


def _statement_applies(statement: dict, request) -> bool:
    if "Action" in statement:
        acts = any(_matches(a, request.action, ignore_case=True) for a in _listed(statement["Action"]))
    else:
        acts = not any(_matches(a, request.action, ignore_case=True) for a in _listed(statement.get("NotAction", [])))
    if "Resource" in statement:
        on = any(_matches(r, request.resource) for r in _listed(statement["Resource"]))
    else:
        on = not any(_matches(r, request.resource) for r in _listed(statement.get("NotResource", [])))
    return acts and on and _condition_holds(statement.get("Condition", {}), request.context)


def allowed(documents: Iterable[dict], request) -> bool:
    """Identity-policy evaluation: some Allow applies and no Deny does (documents already resolved)."""
    applying = [s for d in documents for s in statements(d) if _statement_applies(s, request)]
    return any(s.get("Effect") == "Allow" for s in applying) and not any(s.get("Effect") == "Deny" for s in applying)


@cache
def _aws_managed() -> dict[str, dict]:
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    return {name: data["Document"] for name, data in json.loads(aws_managed_policies_data).items()}


def role_policies(template: dict, role: str, resolver: Resolver | None = None) -> list[dict]:
    """Every policy document of role `role` (inline, AWS::IAM::Policy attached, AWS-managed), resolved."""
    resolve = resolver or Resolver(template)
    resources = template.get("Resources", {})
    props = resources[role].get("Properties", {})
    documents = [p["PolicyDocument"] for p in props.get("Policies", [])]
    for resource in resources.values():
        if resource.get("Type") in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            if {"Ref": role} in resource["Properties"].get("Roles", []):
                documents.append(resource["Properties"]["PolicyDocument"])
    for arn in resolve(props.get("ManagedPolicyArns", [])):
        name = str(arn).rsplit("/", 1)[-1]
        if str(arn).startswith("arn:aws:iam::aws:policy/") and name in _aws_managed():
            documents.append(_aws_managed()[name])
    return [resolve(d) for d in documents]


def resources_of(template: dict, kind: str) -> dict[str, dict]:
    return {k: v for k, v in template.get("Resources", {}).items() if v.get("Type") == kind}


def _logical_id(value: Any) -> str | None:
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        arg = value["Fn::GetAtt"]
        return arg[0] if isinstance(arg, list) else arg.split(".")[0]
    if isinstance(value, dict) and "Ref" in value:
        return value["Ref"]
    return None


# --- a. SSM-typed parameters are readable by the role that deploys the stack ---------------------


def ssm_parameter_names(template: dict) -> list[str]:
    """The parameter names CloudFormation resolves at change-set time (`AWS::SSM::Parameter::Value<…>`)."""
    return [
        p["Default"]
        for p in template.get("Parameters", {}).values()
        if str(p.get("Type", "")).startswith("AWS::SSM::Parameter::Value<") and "Default" in p
    ]


def pipeline_deployers(pipeline: dict) -> dict[str, str]:
    """Stack name -> name of the role that creates its change sets, from a pipeline's CloudFormation actions.

    The action's own RoleArn makes the CreateChangeSet call (and so resolves SSM-typed parameters);
    Configuration.RoleArn is the execution role, which only applies the change set.
    """
    resolve = Resolver(pipeline)
    found = {}
    for resource in resources_of(pipeline, "AWS::CodePipeline::Pipeline").values():
        for stage in resource["Properties"]["Stages"]:
            for action in stage["Actions"]:
                config = action.get("Configuration", {})
                if action["ActionTypeId"]["Provider"] == "CloudFormation" and config.get("ActionMode") in (
                    "CHANGE_SET_REPLACE",
                    "CREATE_UPDATE",
                    "REPLACE_ON_FAILURE",
                ):
                    found[config["StackName"]] = str(resolve(action["RoleArn"])).rsplit("/", 1)[-1]
    return found


def role_named(template: dict, name: str) -> str | None:
    resolve = Resolver(template)
    for logical_id, role in resources_of(template, "AWS::IAM::Role").items():
        if resolve(role.get("Properties", {}).get("RoleName")) == name:
            return logical_id
    return None


def unreadable_ssm_parameters(stack: dict, deployer: dict, role: str) -> list[str]:
    """Each SSM-typed parameter of `stack` that role `role` of the `deployer` template cannot read."""
    from aws_calls import IamRequest

    documents = role_policies(deployer, role)
    findings = []
    for name in ssm_parameter_names(stack):
        arn = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/{name.lstrip('/')}"
        if not allowed(documents, IamRequest("ssm:GetParameters", arn)):
            findings.append(
                f"the SSM-typed parameter {name} is resolved by {role}, which may not read it (ssm:GetParameters)"
            )
    return findings


# --- b/d. a role's policies cover the calls its code makes ----------------------------------------


def uncovered_calls(documents: list[dict], calls: Iterable) -> list[str]:
    """Each recorded call (aws_calls.AwsCall) whose IAM request the documents do not allow."""
    from aws_calls import iam_requests

    findings = []
    for call in calls:
        for request in iam_requests(call, ACCOUNT):
            if not allowed(documents, request):
                findings.append(f"{call} needs {request.action} on {request.resource} {request.context or ''}".rstrip())
    return list(dict.fromkeys(findings))


def unlistable_missing_keys(
    documents: list[dict], calls: Iterable, indifferent: Iterable[tuple[str, str]] = ()
) -> list[str]:
    """Each HeadObject, or GetObject that met a missing key, where S3 would answer 403 and the code cannot tell.

    S3 answers a missing key with 404 only to a caller allowed s3:ListBucket for a request that carries
    no prefix: a grant limited by an s3:prefix condition does not count there. The code can still tell
    by listing the key itself (a recorded ListObjectsV2 with that prefix), or treat 403 as missing on
    purpose (`indifferent`: (principal, key prefix) pairs the test names).
    """
    from aws_calls import IamRequest

    calls = list(calls)
    listed = {
        (c.principal, c.params.get("Bucket"), c.params.get("Prefix")) for c in calls if c.operation == "ListObjectsV2"
    }
    findings = []
    for call in calls:
        if call.service == "s3" and (call.operation == "HeadObject" or (call.operation == "GetObject" and call.missed)):
            bucket, key = call.params["Bucket"], call.params["Key"]
            if allowed(documents, IamRequest("s3:ListBucket", f"arn:aws:s3:::{bucket}", {})):
                continue
            if (call.principal, bucket, key) in listed:
                continue
            if any(call.principal == who and key.startswith(prefix) for who, prefix in indifferent):
                continue
            findings.append(
                f"{call} may meet a missing key: S3 answers 403 (no unconditioned s3:ListBucket on "
                f"{bucket}) and the code neither lists {key} nor treats 403 as missing"
            )
    return list(dict.fromkeys(findings))


# --- c. no variant registered for scaling changes its instance type in place -----------------------


@cache
def create_only(kind: str) -> tuple[str, ...]:
    """Top-level properties whose change replaces a resource of type `kind` (cfn-lint's bundled schemas)."""
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(REGION, kind).schema
    return tuple(sorted({p.split("/")[2] for p in schema.get("createOnlyProperties", [])}))


def _mentions(value: Any, replaced: set[str]) -> bool:
    if isinstance(value, list):
        return any(_mentions(v, replaced) for v in value)
    if isinstance(value, dict):
        if _logical_id(value) in replaced:
            return True
        if "Fn::Sub" in value:
            text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
            if any(re.search(r"\$\{" + re.escape(r) + r"[.}]", text) for r in replaced):
                return True
        return any(_mentions(v, replaced) for v in value.values())
    return False


def replaced_resources(before: dict, after: dict) -> set[str]:
    """Logical ids that CloudFormation replaces when updating `before` to `after`.

    A resource is replaced when a createOnly property changes, or refers (Ref, GetAtt, Sub) to a
    resource that is replaced: its new physical id or attributes change that property's value.
    """
    old, new = before.get("Resources", {}), after.get("Resources", {})
    common = [k for k in new if k in old and old[k]["Type"] == new[k]["Type"]]
    replaced: set[str] = set()
    while True:
        more = {
            k
            for k in common
            if k not in replaced
            for prop in create_only(new[k]["Type"])
            if old[k].get("Properties", {}).get(prop) != new[k].get("Properties", {}).get(prop)
            or _mentions(new[k].get("Properties", {}).get(prop), replaced)
        }
        if not more:
            return replaced
        replaced |= more


_RESOURCE_ID = re.compile(r"^endpoint/(?P<endpoint>[^/]+)/variant/(?P<variant>[^/]+)$")


def scaled_variants(template: dict) -> list[tuple[str, str, str]]:
    """(scalable target, endpoint logical id, variant name) for each SageMaker variant registered for scaling."""
    found = []
    for target_id, target in resources_of(template, "AWS::ApplicationAutoScaling::ScalableTarget").items():
        resource_id = target["Properties"]["ResourceId"]
        parts = (
            resource_id["Fn::Join"][1] if isinstance(resource_id, dict) and "Fn::Join" in resource_id else [resource_id]
        )
        endpoint = next((_logical_id(p) for p in parts if _logical_id(p)), None)
        text = "".join(p if isinstance(p, str) else "{e}" for p in parts)
        match = _RESOURCE_ID.match(text)
        if match and endpoint:
            found.append((target_id, endpoint, match["variant"]))
    return found


def _instance_type(template: dict, endpoint: str, variant: str) -> Any:
    resources = template["Resources"]
    config = _logical_id(resources[endpoint]["Properties"]["EndpointConfigName"])
    for production in resources[config]["Properties"]["ProductionVariants"]:
        if production.get("VariantName") == variant:
            return production.get("InstanceType")
    return None


def in_place_instance_type_changes(before: dict, after: dict) -> list[str]:
    """Each scaled variant whose instance type changes while its endpoint is updated, not replaced.

    SageMaker refuses UpdateEndpoint for that change while the variant is registered with
    Application Auto Scaling, so the stack update fails and rolls back.
    """
    replaced = replaced_resources(before, after)
    findings = []
    for target, endpoint, variant in scaled_variants(after):
        if endpoint not in before.get("Resources", {}):
            continue
        old, new = _instance_type(before, endpoint, variant), _instance_type(after, endpoint, variant)
        if old != new and endpoint not in replaced:
            findings.append(
                f"variant {variant} of {endpoint} (scaled by {target}) changes from {old} to {new} in place: "
                f"the endpoint is updated, not replaced, and SageMaker refuses that update"
            )
    return findings


# --- e. no cdk-nag reason claims what the policy does not do ----------------------------------------


def _nag_text(value: Any) -> str:
    """A policy value written as cdk-nag writes it in findings: `<Bucket.Arn>/x/*`, `<AWS::Partition>`."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        return value["Fn::Join"][0].join(_nag_text(v) for v in value["Fn::Join"][1])
    if isinstance(value, dict) and "Ref" in value:
        return f"<{value['Ref']}>"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        arg = value["Fn::GetAtt"]
        return f"<{'.'.join(arg) if isinstance(arg, list) else arg}>"
    if isinstance(value, dict) and "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
        return re.sub(r"\$\{([^}]+)\}", r"<\1>", value["Fn::Sub"])
    return json.dumps(value, sort_keys=True)


def _raw_documents(template: dict, logical_id: str) -> list[dict]:
    resources = template.get("Resources", {})
    resource = resources[logical_id]
    props = resource.get("Properties", {})
    if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        return [props["PolicyDocument"]]
    if resource["Type"] == "AWS::IAM::Role":
        attached = [
            r["Properties"]["PolicyDocument"]
            for r in resources.values()
            if r.get("Type") == "AWS::IAM::Policy" and {"Ref": logical_id} in r["Properties"].get("Roles", [])
        ]
        return [p["PolicyDocument"] for p in props.get("Policies", [])] + attached
    return []


def _acknowledgments(template: dict) -> list[tuple[str, dict]]:
    return [
        (logical_id, rule)
        for logical_id, resource in template.get("Resources", {}).items()
        for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
    ]


_FINDING = re.compile(r"^AwsSolutions-IAM5\[(?P<kind>Action|Resource)::(?P<value>.+)\]$")


def acknowledgments_naming_absent_grants(template: dict) -> list[str]:
    """Each IAM5 acknowledgment whose action or resource no policy of the resources that carry it has.

    An acknowledgment set on a construct is copied onto every resource below it, so a finding is
    unused only when none of the policy-bearing resources that carry it (with that reason) has it.
    """
    carried: dict[tuple[str, str], list[str]] = {}
    for logical_id, rule in _acknowledgments(template):
        if _FINDING.match(rule["id"]) and _raw_documents(template, logical_id):
            carried.setdefault((rule["id"], rule.get("reason", "")), []).append(logical_id)
    findings = []
    for (finding, _reason), holders in carried.items():
        match = _FINDING.match(finding)
        element = "Action" if match["kind"] == "Action" else "Resource"
        present = {
            _nag_text(v)
            for holder in holders
            for document in _raw_documents(template, holder)
            for statement in statements(document)
            for v in _listed(statement.get(element, []))
        }
        if match["value"] not in present:
            findings.append(f"{', '.join(holders)} acknowledge {finding}, but none of their policies has it")
    return findings


#: Phrases in cdk-nag reasons that promise key-prefix scoping of S3 access.
_PREFIX_CLAIM = re.compile(r"exact (key )?prefix", re.IGNORECASE)


def _bucket_wide_list(statement: dict) -> bool:
    """An Allow of an s3:List* action on a whole bucket (no key in the ARN) without an s3:prefix condition."""
    if statement.get("Effect") != "Allow":
        return False
    lists = any(_matches(a, "s3:ListBucket", ignore_case=True) for a in _listed(statement.get("Action", [])))
    on_bucket = any("/" not in _nag_text(r).split(":::", 1)[-1] for r in _listed(statement.get("Resource", [])))
    scoped = any("s3:prefix" in keys for keys in statement.get("Condition", {}).values())
    return lists and on_bucket and not scoped


def reasons_claiming_prefix_scoping(template: dict) -> list[str]:
    """Each resource whose cdk-nag reason says "exact prefixes" while it lists a bucket bucket-wide."""
    findings = []
    for logical_id, rule in _acknowledgments(template):
        if not _PREFIX_CLAIM.search(rule.get("reason", "")):
            continue
        wide = [s for d in _raw_documents(template, logical_id) for s in statements(d) if _bucket_wide_list(s)]
        if wide:
            resources = sorted({_nag_text(r) for s in wide for r in _listed(s["Resource"])})
            findings.append(
                f"{logical_id}: its cdk-nag reason claims exact prefixes, but s3:List* is granted on "
                f"{', '.join(resources)} without an s3:prefix condition"
            )
    return list(dict.fromkeys(findings))

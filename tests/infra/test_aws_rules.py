"""AWS's own rules, checked on every synthesized and shipped template (see tests/infra/aws_rules.py).

Each rule is first shown to fail on a small hand-made bad fragment, then run on the real templates.
The calls a role's code makes are recorded from the handlers, the endpoint and the model build step
running on the local cloud, then judged against that role's policies in the synthesized template.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import replace

import aws_rules as rules
import numpy as np
import orjson
import pytest
from aws_calls import AwsCall, CallRecorder
from cfnlint.decode import cfn_yaml

from contract import COMPLETED, REQUESTS, build_notification, encode_output, new_inference_id
from infra.config import load_config
from infra.templates import NO_BUNDLING, TEMPLATES_DIR

#: One synthesis per session: keep every test that reads it on one xdist worker.
pytestmark = pytest.mark.xdist_group("synthesis")

PARTS = ("source", "pipeline", "endpoint")
SHIPPED = tuple(
    sorted(
        p.name
        for p in TEMPLATES_DIR.iterdir()
        if p.suffix in (".json", ".yaml") and not p.name.endswith(".assets.json")  # an assets manifest is no template
    )
)
#: The endpoint stack with both companion models (config.toml's [companions.upscale] and [companions.inpaint]).
COMPANIONS = "synth-companions/endpoint"
#: The endpoint stack whose main model is SDXL 1.0, a Marketplace model package.
SDXL = "synth-sdxl/endpoint"
TEMPLATES = (*(f"synth/{p}" for p in PARTS), COMPANIONS, SDXL, *SHIPPED)
PIPELINES = tuple(name for name in TEMPLATES if "pipeline" in name)
BOOTSTRAP = "bootstrap-template.yaml"
#: An instance type of the deploy panel other than config.toml's, for the update rule.
OTHER_INSTANCE_TYPE = "ml.g5.2xlarge"


@pytest.fixture(scope="module")
def templates(synthesis, companion_synthesis, sdxl_synthesis) -> dict[str, dict]:
    """Every template by name: `synth/<part>` from this session's synthesis, the companions' endpoint stack, the
    SDXL one, then resources/templates/."""
    found = {f"synth/{part}": synthesis.templates[part] for part in PARTS}
    found[COMPANIONS] = companion_synthesis.templates["endpoint"]
    found[SDXL] = sdxl_synthesis.templates["endpoint"]
    for name in SHIPPED:
        path = TEMPLATES_DIR / name
        data = cfn_yaml.load(str(path)) if path.suffix == ".yaml" else json.loads(path.read_text())
        found[name] = json.loads(json.dumps(data))
    return found


def _ssm_stack(*names: str) -> dict:
    return {
        "Parameters": {
            f"P{i}": {"Type": "AWS::SSM::Parameter::Value<String>", "Default": n} for i, n in enumerate(names)
        }
    }


def _deploy_role(bootstrap: dict) -> str:
    return rules.role_named(bootstrap, "cdk-hnb659fds-deploy-role-123456789012-us-east-1")


def test_a_parameter_outside_the_bootstrap_version_is_unreadable_by_the_deploy_role(templates):
    bootstrap = templates[BOOTSTRAP]
    role = _deploy_role(bootstrap)

    assert rules.unreadable_ssm_parameters(_ssm_stack("/cdk-bootstrap/hnb659fds/version"), bootstrap, role) == []
    assert rules.unreadable_ssm_parameters(_ssm_stack("/diffusion-desk/studio/modelImageUri"), bootstrap, role) == [
        f"the SSM-typed parameter /diffusion-desk/studio/modelImageUri is resolved by {role}, which may not read it "
        "(ssm:GetParameters)"
    ]


@pytest.mark.parametrize("name", PIPELINES)
def test_every_ssm_typed_parameter_is_readable_by_the_role_that_deploys_its_stack(templates, synthesis, name):
    """The pipeline's Prepare action creates the change set as the bootstrap deploy role.

    The source, pipeline and bootstrap stacks are created by the app with the user's own
    credentials (app/services/stacks.py passes no RoleARN), so only pipeline-deployed stacks have a
    role to check.
    """
    config = load_config()
    stacks = {config.stack_name(part): synthesis.templates[part] for part in PARTS}
    bootstrap = templates[BOOTSTRAP]
    deployers = rules.pipeline_deployers(templates[name])
    assert set(deployers) == {config.stack_name("endpoint")}

    findings = []
    for stack, role_name in deployers.items():
        role = rules.role_named(bootstrap, role_name)
        assert role is not None, f"{role_name} deploys {stack} but the bootstrap template has no such role"
        findings += rules.unreadable_ssm_parameters(stacks[stack], bootstrap, role)
    assert findings == []


def _policy(*statements: dict) -> list[dict]:
    return [{"Version": "2012-10-17", "Statement": list(statements)}]


def _allow(actions, resources, condition=None) -> dict:
    statement = {"Effect": "Allow", "Action": actions, "Resource": resources}
    return statement | ({"Condition": condition} if condition else {})


HEAD = AwsCall("build_model", "s3", "HeadObject", {"Bucket": "models-bucket", "Key": "models/m/1/model.tar.gz"})


def test_a_head_without_list_on_its_prefix_is_a_finding():
    objects = _allow(["s3:GetObject", "s3:PutObject"], "arn:aws:s3:::models-bucket/models/*")
    listed = _allow("s3:ListBucket", "arn:aws:s3:::models-bucket", {"StringLike": {"s3:prefix": ["models/*"]}})
    elsewhere = _allow("s3:ListBucket", "arn:aws:s3:::models-bucket", {"StringLike": {"s3:prefix": ["other/*"]}})

    listing = AwsCall("build_model", "s3", "ListObjectsV2", {"Bucket": "models-bucket", "Prefix": HEAD.params["Key"]})

    assert len(rules.unlistable_missing_keys(_policy(objects), [HEAD])) == 1
    assert len(rules.unlistable_missing_keys(_policy(objects, elsewhere), [HEAD])) == 1
    # A prefix-limited grant does not make S3 answer 404 to a HeadObject (the read carries no prefix) ...
    assert len(rules.unlistable_missing_keys(_policy(objects, listed), [HEAD])) == 1
    # ... unless the code asks the listing itself, or treats 403 as missing on purpose.
    assert rules.unlistable_missing_keys(_policy(objects, listed), [HEAD, listing]) == []
    assert rules.unlistable_missing_keys(_policy(objects, listed), [HEAD], [("build_model", "models/")]) == []
    assert (
        rules.unlistable_missing_keys(_policy(objects, _allow("s3:List*", "arn:aws:s3:::models-bucket")), [HEAD]) == []
    )


def test_a_call_outside_the_role_policies_is_a_finding_that_names_the_action():
    topic = "arn:aws:sns:us-east-1:123456789012:success"
    documents = _policy(_allow("sns:Publish", topic), _allow("s3:PutObject", "arn:aws:s3:::b/output/*"))
    calls = [
        AwsCall("sagemaker", "sns", "Publish", {"TopicArn": topic, "Message": "{}"}),
        AwsCall("sagemaker", "s3", "PutObject", {"Bucket": "b", "Key": "output/1.out"}),
        AwsCall("sagemaker", "s3", "GetObject", {"Bucket": "b", "Key": "requests/1.json"}),
    ]

    assert rules.uncovered_calls(documents, calls) == [
        "sagemaker: s3 GetObject {'Bucket': 'b', 'Key': 'requests/1.json'} needs s3:GetObject on "
        "arn:aws:s3:::b/requests/1.json"
    ]


def _endpoint_fragment(instance_type: str, *, named_by_config: bool) -> dict:
    endpoint = {"EndpointConfigName": {"Fn::GetAtt": ["Config", "EndpointConfigName"]}}
    if named_by_config:
        endpoint["EndpointName"] = {"Fn::GetAtt": ["Config", "EndpointConfigName"]}
    variant = {"VariantName": "AllTraffic", "InstanceType": instance_type, "InitialInstanceCount": 1, "ModelName": "m"}
    resource_id = {"Fn::Join": ["", ["endpoint/", {"Fn::GetAtt": ["Endpoint", "EndpointName"]}, "/variant/AllTraffic"]]}
    return {
        "Resources": {
            "Config": {"Type": "AWS::SageMaker::EndpointConfig", "Properties": {"ProductionVariants": [variant]}},
            "Endpoint": {"Type": "AWS::SageMaker::Endpoint", "Properties": endpoint},
            "Target": {
                "Type": "AWS::ApplicationAutoScaling::ScalableTarget",
                "Properties": {
                    "ResourceId": resource_id,
                    "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
                    "ServiceNamespace": "sagemaker",
                    "MinCapacity": 0,
                    "MaxCapacity": 2,
                },
            },
        }
    }


def test_a_scaled_variant_whose_endpoint_is_updated_in_place_is_a_finding():
    in_place = rules.in_place_instance_type_changes(
        _endpoint_fragment("ml.g5.xlarge", named_by_config=False),
        _endpoint_fragment("ml.g5.2xlarge", named_by_config=False),
    )
    replaced = rules.in_place_instance_type_changes(
        _endpoint_fragment("ml.g5.xlarge", named_by_config=True),
        _endpoint_fragment("ml.g5.2xlarge", named_by_config=True),
    )

    assert len(in_place) == 1 and "ml.g5.xlarge to ml.g5.2xlarge in place" in in_place[0]
    assert replaced == []


def _endpoint_template(instance_type: str, *, companions: bool = False) -> dict:
    """The endpoint stack alone, synthesized with `instance_type` (no pipeline, no cdk-nag: faster).

    With `companions`, both companion models are deployed too, on that instance type as well.
    """
    import aws_cdk as cdk
    from infra_models import companion_config

    from infra.app import FEATURE_FLAGS
    from infra.endpoint_stack import EndpointStack

    config = companion_config() if companions else load_config()
    config = replace(
        config,
        model=replace(config.model, instance_type=instance_type),
        companions={f: replace(m, instance_type=instance_type) for f, m in config.companions.items()},
    )
    app = cdk.App(context={**FEATURE_FLAGS, **NO_BUNDLING})
    stack = EndpointStack(app, "Endpoint", config=config, stack_name=config.stack_name("endpoint"))
    return app.synth().get_stack_by_name(stack.stack_name).template


@pytest.mark.parametrize("companions", [False, True], ids=["main", "with-companions"])
def test_changing_the_instance_type_replaces_every_scaled_variant(companions):
    before = _endpoint_template(load_config().model.instance_type, companions=companions)
    after = _endpoint_template(OTHER_INSTANCE_TYPE, companions=companions)

    assert len(rules.scaled_variants(after)) == (3 if companions else 1)
    assert rules.in_place_instance_type_changes(before, after) == []


def test_an_acknowledgment_of_a_grant_that_is_not_there_is_a_finding():
    key = {"Fn::GetAtt": ["Key", "Arn"]}
    template = {
        "Resources": {
            "Policy": {
                "Type": "AWS::IAM::Policy",
                "Properties": {
                    "Roles": [{"Ref": "Role"}],
                    "PolicyDocument": _policy(_allow(["kms:Decrypt", "kms:GenerateDataKey*"], key))[0],
                },
                "Metadata": {
                    "cdk_nag": {
                        "rules_to_suppress": [
                            {"id": "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]", "reason": "the topics' key"},
                            {"id": "AwsSolutions-IAM5[Action::kms:ReEncrypt*]", "reason": "the topics' key"},
                            {"id": "AwsSolutions-IAM5[Resource::<Key.Arn>]", "reason": "the topics' key"},
                        ]
                    }
                },
            }
        }
    }

    assert rules.acknowledgments_naming_absent_grants(template) == [
        "Policy acknowledge AwsSolutions-IAM5[Action::kms:ReEncrypt*], but none of their policies has it"
    ]


def _claiming(condition: dict | None) -> dict:
    bucket = {"Fn::GetAtt": ["Bucket", "Arn"]}
    objects = {"Fn::Join": ["", [bucket, "/requests/*"]]}
    statement = _allow(["s3:GetObject*", "s3:GetBucket*", "s3:List*"], [bucket, objects], condition)
    reason = "Access is granted on exact prefixes with a trailing wildcard."
    return {
        "Resources": {
            "Policy": {
                "Type": "AWS::IAM::Policy",
                "Properties": {"Roles": [{"Ref": "Role"}], "PolicyDocument": _policy(statement)[0]},
                "Metadata": {
                    "cdk_nag": {"rules_to_suppress": [{"id": "AwsSolutions-IAM5[Action::s3:List*]", "reason": reason}]}
                },
            }
        }
    }


def test_a_reason_claiming_exact_prefixes_over_a_bucket_wide_list_is_a_finding():
    wide = rules.reasons_claiming_prefix_scoping(_claiming(None))
    scoped = rules.reasons_claiming_prefix_scoping(_claiming({"StringLike": {"s3:prefix": ["requests/*"]}}))

    assert len(wide) == 1 and "s3:List* is granted on <Bucket.Arn>," in wide[0]
    assert scoped == []


@pytest.mark.parametrize("name", TEMPLATES)
def test_no_acknowledgment_names_a_grant_that_is_not_there(templates, name):
    assert rules.acknowledgments_naming_absent_grants(templates[name]) == []


@pytest.mark.parametrize("name", TEMPLATES)
def test_no_reason_claims_prefix_scoping_that_the_policy_does_not_have(templates, name):
    assert rules.reasons_claiming_prefix_scoping(templates[name]) == []


# --- the calls each role's code makes, recorded on the local cloud -----------------------------------

#: Who makes the recorded calls on AWS, and which synthesized template holds that role.
PRINCIPALS = {
    "save_message": "endpoint",
    "extract_image": "endpoint",
    "sagemaker": "endpoint",
    "build_model": "pipeline",
}
MODEL_BUCKET = "pipeline-models"
REQUEST = {"prompt": "a lighthouse at dusk", "width": 64, "height": 64, "num_inference_steps": 2, "seed": 1}


def _sns_event(message: dict) -> dict:
    record = {
        "EventSource": "aws:sns",
        "Sns": {
            "Type": "Notification",
            "MessageId": "m",
            "Message": orjson.dumps(message).decode(),
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:t",
            "Timestamp": "2026-11-25T15:00:00.000Z",
        },
    }
    return {"Records": [record]}


class _Context:
    function_name, memory_limit_in_mb, aws_request_id = "rules", 256, "req"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:rules"


def _run_lambdas(cloud, recorder, deployment, mp) -> None:
    """save_message and extract_image on a completed job, and extract_image on one whose objects are gone."""
    handlers = {}
    for name in ("save_message", "extract_image"):
        module = importlib.import_module(f"lambdas.{name}.index")
        mp.setattr(module, "s3", recorder.attach(cloud.client("s3"), name))
        handlers[name] = module.lambda_handler
    mp.setenv("BUCKET_NAME", deployment.bucket)
    bucket, s3 = deployment.bucket, cloud.client("s3")
    present, gone = new_inference_id(), new_inference_id()
    image = np.zeros((64, 64, 3), dtype=np.uint8)
    s3.put_object(Bucket=bucket, Key=f"requests/{present}.json", Body=orjson.dumps(REQUEST))
    s3.put_object(Bucket=bucket, Key=f"output/{present}.out", Body=encode_output([image], REQUEST["prompt"]))
    for inference_id in (present, gone):
        message = build_notification(
            inference_id=inference_id,
            status=COMPLETED,
            region="us-east-1",
            endpoint_name=deployment.endpoint_name,
            input_location=f"s3://{bucket}/requests/{inference_id}.json",
            received_time="2026-11-25T15:00:00.000Z",
            event_time="2026-11-25T15:00:01.000Z",
            output_location=f"s3://{bucket}/output/{inference_id}.out",
        )
        for handler in handlers.values():
            handler(_sns_event(message), _Context())


def _run_endpoint(cloud, recorder, deployment, mp) -> None:
    """One job that completes and one that fails, through the endpoint emulator as the SageMaker role."""
    attached = set()
    role_client = cloud.emulator._client

    def endpoint_client(invocation, service):
        """The client the endpoint makes its calls with (under the model's execution role), recorded."""
        client = role_client(invocation, service)
        if service in ("s3", "sns") and id(client) not in attached:
            attached.add(id(client))
            recorder.attach(client, "sagemaker")
        return client

    mp.setattr(cloud.emulator, "_client", endpoint_client)
    s3, runtime = cloud.client("s3"), cloud.client("sagemaker-runtime")
    for number, body in enumerate((orjson.dumps(REQUEST), b"not json")):
        key = f"requests/rules-{number}.json"
        s3.put_object(Bucket=deployment.bucket, Key=key, Body=body)
        runtime.invoke_endpoint_async(
            EndpointName=deployment.endpoint_name,
            InputLocation=f"s3://{deployment.bucket}/{key}",
            ContentType="application/json",
        )
    cloud.wait_idle(60)


def _run_model_build(cloud, recorder, jumpstart_dirs, mp) -> None:
    """The model build step on a fresh model bucket, then again (it reuses what it built)."""
    import io
    import tarfile

    from infra.model_build.prepare_model import prepare_model
    from infra.model_build.resolve import resolve_model

    manifest, specs = jumpstart_dirs
    spec = json.loads(next(specs.rglob("*.json")).read_text())
    jumpstart_bucket = "jumpstart-cache-prod-us-east-1"
    mp.setenv("AWS_JUMPSTART_MANIFEST_LOCAL_ROOT_DIR_OVERRIDE", str(manifest))
    mp.setenv("AWS_JUMPSTART_SPECS_LOCAL_ROOT_DIR_OVERRIDE", str(specs))

    def tar_gz(name: str) -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            info = tarfile.TarInfo(name)
            info.size = 2
            archive.addfile(info, io.BytesIO(b"{}"))
        return buffer.getvalue()

    s3 = cloud.client("s3")
    s3.create_bucket(Bucket=jumpstart_bucket)
    s3.create_bucket(Bucket=MODEL_BUCKET)
    s3.put_object(Bucket=jumpstart_bucket, Key=spec["hosting_artifact_key"], Body=tar_gz("model_index.json"))
    s3.put_object(Bucket=jumpstart_bucket, Key=spec["hosting_script_key"], Body=tar_gz("inference.py"))
    resolved = resolve_model(spec["model_id"], "*", "us-east-1", "ml.g5.xlarge", MODEL_BUCKET)
    for _ in range(2):
        prepare_model(resolved, MODEL_BUCKET, client=lambda s: recorder.attach(cloud.client(s), "build_model"))


@pytest.fixture(scope="module")
def recorded(local_cloud, _jumpstart_dirs):
    """Every principal's calls on the local cloud, with the deployment they ran against."""
    recorder = CallRecorder()
    with pytest.MonkeyPatch.context() as mp:
        for name, value in (
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
        ):
            mp.setenv(name, value)
        local_cloud.reset()
        deployment = local_cloud.provision("rules", lambdas=False)
        _run_lambdas(local_cloud, recorder, deployment, mp)
        _run_endpoint(local_cloud, recorder, deployment, mp)
        _run_model_build(local_cloud, recorder, _jumpstart_dirs, mp)
    local_cloud.reset()
    return recorder, deployment


def _role_of(template: dict, principal: str) -> str:
    """The logical id of the role `principal`'s code runs under in `template`."""
    resources = template["Resources"]
    if principal == "sagemaker":
        (model,) = rules.resources_of(template, "AWS::SageMaker::Model").values()
        return rules._logical_id(model["Properties"]["ExecutionRoleArn"])
    if principal == "build_model":
        (project,) = [
            p
            for p in rules.resources_of(template, "AWS::CodeBuild::Project").values()
            if "infra.model_build.prepare_model" in json.dumps(p["Properties"]["Source"])
        ]
        return rules._logical_id(project["Properties"]["ServiceRole"])
    service = principal.replace("_", "-")
    (function,) = [
        f
        for f in rules.resources_of(template, "AWS::Lambda::Function").values()
        if f["Properties"]["Environment"]["Variables"].get("POWERTOOLS_SERVICE_NAME") == service
    ]
    assert resources[rules._logical_id(function["Properties"]["Role"])]["Type"] == "AWS::IAM::Role"
    return rules._logical_id(function["Properties"]["Role"])


def _test_names(template: dict, deployment) -> dict[str, str]:
    """What the recorded calls' buckets and topics are, by logical id, so ARNs resolve to the same names."""
    names = {}
    for function in rules.resources_of(template, "AWS::Lambda::Function").values():
        bucket = function["Properties"]["Environment"]["Variables"].get("BUCKET_NAME")
        if rules._logical_id(bucket):
            names[rules._logical_id(bucket)] = deployment.bucket
    for config in rules.resources_of(template, "AWS::SageMaker::EndpointConfig").values():
        topics = config["Properties"]["AsyncInferenceConfig"]["OutputConfig"]["NotificationConfig"]
        names[rules._logical_id(topics["SuccessTopic"])] = deployment.success_topic_arn
        names[rules._logical_id(topics["ErrorTopic"])] = deployment.error_topic_arn
    for project in rules.resources_of(template, "AWS::CodeBuild::Project").values():
        for variable in project["Properties"]["Environment"].get("EnvironmentVariables", []):
            if variable["Name"] == "MODEL_BUCKET":
                names[rules._logical_id(variable["Value"])] = MODEL_BUCKET
    return names


def _documents(synthesis, recorded, principal: str) -> list[dict]:
    template = synthesis.templates[PRINCIPALS[principal]]
    resolver = rules.Resolver(template, _test_names(template, recorded[1]))
    return rules.role_policies(template, _role_of(template, principal), resolver)


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_each_role_allows_every_call_its_code_makes(synthesis, recorded, principal):
    calls = recorded[0].of(principal)
    assert calls, f"no call of {principal} was recorded"

    assert rules.uncovered_calls(_documents(synthesis, recorded, principal), calls) == []


def test_the_recorded_code_paths_meet_missing_keys(recorded):
    """The rule below only means something if the code paths include reads of keys that are not there."""
    calls = recorded[0].calls
    assert {c.principal for c in calls if c.operation == "ListObjectsV2"} >= {"build_model", "extract_image"}
    assert {c.principal for c in calls if c.operation == "GetObject" and c.missed} == {"extract_image"}


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_each_role_that_reads_keys_that_may_be_missing_can_list_their_prefix(synthesis, recorded, principal):
    calls = recorded[0].of(principal)

    # extract_image reads a request it may not find and takes 403 like 404 (parameters then come from the output).
    indifferent = [("extract_image", REQUESTS)]
    assert rules.unlistable_missing_keys(_documents(synthesis, recorded, principal), calls, indifferent) == []


def test_each_companion_endpoints_role_allows_every_call_the_endpoint_makes(companion_synthesis, recorded):
    """The companions' SageMaker roles are made as the main one's: each covers the endpoint's recorded calls."""
    template = companion_synthesis.templates["endpoint"]
    resolver = rules.Resolver(template, _test_names(template, recorded[1]))
    models = rules.resources_of(template, "AWS::SageMaker::Model").values()
    roles = {rules._logical_id(m["Properties"]["ExecutionRoleArn"]) for m in models}
    calls = recorded[0].of("sagemaker")

    assert len(roles) == 3
    for role in roles:
        documents = rules.role_policies(template, role, resolver)
        assert rules.uncovered_calls(documents, calls) == [], role
        assert rules.unlistable_missing_keys(documents, calls) == [], role


def test_the_marketplace_endpoints_role_allows_every_call_the_endpoint_makes(sdxl_synthesis, recorded):
    """The role of SDXL's model package, without model data or image grants, still covers what the endpoint does:
    it reads the request, writes the output or failure and publishes to both topics."""
    template = sdxl_synthesis.templates["endpoint"]
    resolver = rules.Resolver(template, _test_names(template, recorded[1]))
    (model,) = rules.resources_of(template, "AWS::SageMaker::Model").values()
    assert "ModelPackageName" in model["Properties"]["PrimaryContainer"]
    documents = rules.role_policies(template, rules._logical_id(model["Properties"]["ExecutionRoleArn"]), resolver)
    calls = recorded[0].of("sagemaker")

    assert {c.operation for c in calls} >= {"GetObject", "PutObject", "Publish"}
    assert rules.uncovered_calls(documents, calls) == []
    assert rules.unlistable_missing_keys(documents, calls) == []

"""The pipeline's JumpStart steps as AWS will run them: who may read what, and what reaches the endpoint."""

from __future__ import annotations

import fnmatch
import json
import os
from pathlib import Path

import botocore.client
import pytest
from aws_cdk import App

from contract import S3Location
from infra.app import FEATURE_FLAGS, EndpointStage
from infra.config import NODE_VERSIONS, load_config
from infra.model_build.resolve import RESOLVED_MODEL_CONTEXT, ResolvedModel
from infra.model_build.resolve import main as resolve_main
from infra.templates import NO_BUNDLING

#: One synthesis per session: keep every test that reads it on one xdist worker.
pytestmark = pytest.mark.xdist_group("synthesis")

CONFIG = load_config()
RESOLVED = ResolvedModel(
    model_id=CONFIG.model.id,
    version="2.1.0",
    region="eu-west-1",
    instance_type=CONFIG.model.instance_type,
    image_uri="763104351884.dkr.ecr.eu-west-1.amazonaws.com/djl-inference:0.21.0-deepspeed0.8.3-cu117",
    model_data_url=f"s3://pipeline-models/models/{CONFIG.model.id}/0123456789abcdef/model.tar.gz",
    environment={"SAGEMAKER_REGION": "eu-west-1", "SAGEMAKER_PROGRAM": "inference.py", "MMS_MAX_RESPONSE_SIZE": "1"},
    model_source="s3://jumpstart-cache-prod-eu-west-1/stabilityai-infer/prepack/v1.0.0/infer-prepack.tar.gz",
    script_source=None,
)


def _projects(template: dict) -> dict[str, dict]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == "AWS::CodeBuild::Project"}


def _project(template: dict, marker: str) -> tuple[str, dict]:
    (found,) = [(k, r) for k, r in _projects(template).items() if marker in r["Properties"]["Source"]["BuildSpec"]]
    return found


def _role_statements(template: dict, project: dict) -> list[dict]:
    role = project["Properties"]["ServiceRole"]["Fn::GetAtt"][0]
    statements = []
    for policy in template["Resources"].values():
        if policy["Type"] == "AWS::IAM::Policy" and {"Ref": role} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _arn(value, region: str) -> str:
    """A policy resource as the ARN it becomes in `region` (Fn::Join of pseudo parameters and refs)."""
    if isinstance(value, str):
        return value
    parts = value["Fn::Join"][1]
    names = {"AWS::Partition": "aws", "AWS::Region": region, "AWS::AccountId": "111111111111"}
    return "".join(p if isinstance(p, str) else names.get(p.get("Ref"), f"<{json.dumps(p)}>") for p in parts)


def _allows(statements: list[dict], action: str, resource: str, region: str) -> bool:
    return any(
        s["Effect"] == "Allow"
        and action in _as_list(s["Action"])
        and any(fnmatch.fnmatchcase(resource, _arn(r, region)) for r in _as_list(s["Resource"]))
        for s in statements
    )


@pytest.fixture(scope="module")
def resolved_endpoint(tmp_path_factory) -> dict:
    """The endpoint stage synthesized as the Synth step does it: with a resolved-model file (cdk-nag on)."""
    folder = tmp_path_factory.mktemp("resolved")
    RESOLVED.write(folder / "model.resolved.json")
    context = {**FEATURE_FLAGS, **NO_BUNDLING, RESOLVED_MODEL_CONTEXT: str(folder / "model.resolved.json")}
    app = App(context=context, outdir=str(folder / "cdk.out"))
    stage = EndpointStage(app, "Deploy", config=CONFIG)
    app.synth()
    return stage.synth().get_stack_by_name(CONFIG.stack_name("endpoint")).template


def test_the_endpoint_model_is_the_resolved_one_in_plain_values(resolved_endpoint):
    (model,) = [r for r in resolved_endpoint["Resources"].values() if r["Type"] == "AWS::SageMaker::Model"]
    container = model["Properties"]["PrimaryContainer"]

    assert container["Image"] == RESOLVED.image_uri
    assert container["ModelDataUrl"] == RESOLVED.model_data_url
    assert container["Environment"] == {**RESOLVED.environment, **CONFIG.model.environment}


def test_no_stack_has_a_parameter_that_the_deploy_role_would_have_to_resolve(resolved_endpoint, synthesis):
    """The CDK bootstrap's deploy role may read only /cdk-bootstrap/<qualifier>/version from SSM."""
    for name, template in [("resolved endpoint", resolved_endpoint), *synthesis.templates.items()]:
        for key, parameter in template.get("Parameters", {}).items():
            if parameter["Type"].startswith("AWS::SSM::Parameter::Value"):
                assert key == "BootstrapVersion" and parameter["Default"].startswith("/cdk-bootstrap/"), (name, key)


def test_a_pipeline_synthesis_without_the_resolved_file_refuses_the_placeholder(monkeypatch):
    monkeypatch.setenv("CODEBUILD_BUILD_ID", "pipeline-synth:1")
    app = App(context={**FEATURE_FLAGS, **NO_BUNDLING})

    with pytest.raises(Exception, match=RESOLVED_MODEL_CONTEXT):
        EndpointStage(app, "Deploy", config=CONFIG)


def test_the_model_build_role_may_list_the_models_prefix_so_a_missing_model_is_a_404(synthesis):
    pipeline = synthesis.templates["pipeline"]
    _, project = _project(pipeline, "prepare_model")
    listing = [s for s in _role_statements(pipeline, project) if s["Action"] == "s3:ListBucket" and s.get("Condition")]

    (statement,) = listing
    assert statement["Condition"] == {"StringLike": {"s3:prefix": "models/*"}}
    assert statement["Resource"] == {
        "Fn::GetAtt": [next(k for k in pipeline["Resources"] if k.startswith("Models")), "Arn"]
    }


def test_the_model_build_reads_the_file_the_synth_step_writes_into_its_output(synthesis):
    pipeline = synthesis.templates["pipeline"]
    synth = json.loads(_project(pipeline, "synth --app")[1]["Properties"]["Source"]["BuildSpec"])
    build = json.loads(_project(pipeline, "prepare_model")[1]["Properties"]["Source"]["BuildSpec"])

    resolve, cdk, keep = synth["phases"]["build"]["commands"]
    assert resolve.startswith("python -m infra.model_build.resolve ") and "--out model.resolved.json" in resolve
    assert f"--context {RESOLVED_MODEL_CONTEXT}=model.resolved.json" in cdk
    assert keep == "cp model.resolved.json cdk.out/model.resolved.json"
    assert "--resolved synth/model.resolved.json" in build["phases"]["build"]["commands"][0]
    assert any('"synth"' in c and "CODEBUILD_SRC_DIR_Synth_Output" in c for c in build["phases"]["install"]["commands"])


def test_every_step_that_runs_node_pins_a_version_the_cdk_cli_supports(synthesis):
    node_steps = 0
    for key, project in _projects(synthesis.templates["pipeline"]).items():
        spec = json.loads(project["Properties"]["Source"]["BuildSpec"])
        commands = " ".join(spec["phases"]["install"].get("commands", []) + spec["phases"]["build"]["commands"])
        if any(tool in commands for tool in ("aws-cdk", "cdk ", "cdk-assets")):
            node_steps += 1
            assert spec["phases"]["install"]["runtime-versions"]["nodejs"] == CONFIG.build.node, key
    assert node_steps >= 3  # Synth, UpdatePipeline, the asset uploads
    assert CONFIG.build.node in NODE_VERSIONS


@pytest.fixture
def jumpstart_in_s3(cloud, jumpstart_metadata, monkeypatch):
    """JumpStart's metadata in the local cloud's regional JumpStart bucket, read over HTTP (no local override)."""
    from sagemaker.core.jumpstart.accessors import JumpStartModelsAccessor

    s3 = cloud.client("s3")
    s3.create_bucket(Bucket=jumpstart_metadata.bucket)
    for folder in ("AWS_JUMPSTART_MANIFEST_LOCAL_ROOT_DIR_OVERRIDE", "AWS_JUMPSTART_SPECS_LOCAL_ROOT_DIR_OVERRIDE"):
        root = Path(os.environ[folder])
        for path in root.rglob("*.json"):
            s3.put_object(
                Bucket=jumpstart_metadata.bucket, Key=path.relative_to(root).as_posix(), Body=path.read_bytes()
            )
        monkeypatch.delenv(folder)
    monkeypatch.setenv("AWS_ENDPOINT_URL", cloud.endpoint_url)
    monkeypatch.setattr(JumpStartModelsAccessor, "_cache", None)  # a new cache, with a client made from here


def test_the_synth_role_may_read_every_object_that_resolution_reads(jumpstart_in_s3, synthesis, tmp_path, monkeypatch):
    calls = []
    original = botocore.client.BaseClient._make_api_call

    def record(client, operation, params):
        calls.append((client.meta.service_model.service_name, operation, dict(params)))
        return original(client, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", record)
    assert (
        resolve_main(["--bucket", "pipeline-models", "--region", "us-east-1", "--out", str(tmp_path / "m.json")]) == 0
    )
    monkeypatch.undo()

    pipeline = synthesis.templates["pipeline"]
    statements = _role_statements(pipeline, _project(pipeline, "synth --app")[1])
    reads = [(op, S3Location(p["Bucket"], p["Key"])) for service, op, p in calls if service == "s3"]
    assert {op for _, op, _ in calls} <= {"GetObject", "HeadObject"}
    assert any(location.key == "models_manifest.json" for _, location in reads)
    for _, location in reads:
        assert _allows(statements, "s3:GetObject", f"arn:aws:s3:::{location.bucket}/{location.key}", "us-east-1"), (
            location
        )
    jumpstart = [s for s in statements if "jumpstart" in json.dumps(s)]
    assert all(_as_list(s["Action"]) == ["s3:GetObject"] for s in jumpstart)
    assert not _allows(
        jumpstart, "s3:GetObject", "arn:aws:s3:::jumpstart-cache-prod-us-east-1/stabilityai-infer/x.tar.gz", "us-east-1"
    )

"""The source and pipeline stacks, for both source kinds."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match, Template

from infra.config import load_config

#: One synthesis per session: keep every test that reads it on one xdist worker.
pytestmark = pytest.mark.xdist_group("synthesis")

CONFIG = load_config()


@pytest.fixture(scope="module")
def source(synthesis) -> Template:
    return Template.from_json(synthesis.templates["source"])


@pytest.fixture(scope="module")
def pipeline(synthesis) -> Template:
    return Template.from_json(synthesis.templates["pipeline"])


def _stages(template: Template) -> list[dict]:
    (pipeline,) = template.find_resources("AWS::CodePipeline::Pipeline").values()
    return pipeline["Properties"]["Stages"]


def test_the_source_bucket_is_versioned_encrypted_and_private(source):
    source.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "VersioningConfiguration": {"Status": "Enabled"},
            "BucketEncryption": Match.any_value(),
            "PublicAccessBlockConfiguration": Match.object_like(
                {"BlockPublicAcls": True, "RestrictPublicBuckets": True}
            ),
        },
    )
    source.has_output("BucketName", {})
    source.has_output("SourceKey", {"Value": "source.zip"})


def test_the_pipeline_reads_source_zip_and_waits_for_the_app_to_start_it(pipeline):
    (action,) = _stages(pipeline)[0]["Actions"]
    assert action["Name"] == "Source"
    assert action["ActionTypeId"]["Provider"] == "S3"
    assert action["Configuration"]["S3ObjectKey"] == "source.zip"
    assert action["Configuration"]["PollForSourceChanges"] is False


def test_the_pipeline_synthesizes_updates_itself_then_builds_the_model_before_deploying(pipeline):
    names = [stage["Name"] for stage in _stages(pipeline)]
    assert names[:3] == ["Source", "Build", "UpdatePipeline"]
    deploy = _stages(pipeline)[-1]
    order = sorted(deploy["Actions"], key=lambda a: a["RunOrder"])
    assert order[0]["Name"] == "BuildModel"
    assert [a["ActionTypeId"]["Provider"] for a in order[1:]] == ["CloudFormation", "CloudFormation"]
    assert {a["Configuration"].get("StackName") for a in order[1:]} == {CONFIG.stack_name("endpoint")}


def test_the_model_build_step_installs_its_requirements_file_and_writes_no_parameter(pipeline):
    projects = pipeline.find_resources("AWS::CodeBuild::Project")
    (spec,) = [
        p["Properties"]["Source"]["BuildSpec"]
        for p in projects.values()
        if "prepare_model" in p["Properties"]["Source"]["BuildSpec"]
    ]
    assert "pip install --quiet -r infra/model_build/requirements.txt" in spec
    assert "ssm:PutParameter" not in json.dumps(pipeline.find_resources("AWS::IAM::Policy"))


def test_every_build_step_runs_the_python_that_config_toml_names(pipeline):
    specs = [
        p["Properties"]["Source"]["BuildSpec"] for p in pipeline.find_resources("AWS::CodeBuild::Project").values()
    ]
    ours = [spec for spec in specs if "prepare_model" in spec or "synth --app" in spec]
    assert len(ours) == 2
    for spec in ours:
        assert json.loads(spec)["phases"]["install"]["runtime-versions"]["python"] == CONFIG.build.python


def test_the_pipeline_buckets_are_encrypted_and_tls_only(pipeline):
    buckets = pipeline.find_resources("AWS::S3::Bucket")
    assert len(buckets) == 3
    pipeline.all_resources_properties(
        "AWS::S3::Bucket", {"BucketEncryption": Match.any_value(), "PublicAccessBlockConfiguration": Match.any_value()}
    )
    assert len(pipeline.find_resources("AWS::S3::BucketPolicy")) == 3
    for policy in pipeline.find_resources("AWS::S3::BucketPolicy").values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s.get("Condition") == {"NumericLessThan": {"s3:TlsVersion": 1.2}}
            for s in statements
        )
    pipeline.has_output("ModelBucketName", {})
    pipeline.has_output("PipelineName", {})


def test_codecommit_is_there_for_accounts_that_still_have_it(codecommit_synthesis):
    source = Template.from_json(codecommit_synthesis.templates["source"])
    source.has_resource_properties("AWS::CodeCommit::Repository", {"RepositoryName": CONFIG.stack_name("source")})
    assert source.find_resources("AWS::S3::Bucket") == {}
    (action,) = _stages(Template.from_json(codecommit_synthesis.templates["pipeline"]))[0]["Actions"]
    assert action["ActionTypeId"]["Provider"] == "CodeCommit"
    assert action["Configuration"]["BranchName"] == "main"
    assert action["Configuration"]["PollForSourceChanges"] is False

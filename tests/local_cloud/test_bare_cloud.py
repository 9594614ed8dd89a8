"""A bare account (`python -m app local-cloud --bare`): nothing of ours, only what AWS provides.

What AWS provides is JumpStart's content bucket for the region, which the app's model catalog and
sagemaker-core's own resolver read unmodified through the endpoint URL, and every service the
deploy uses, each answering a cheap read call over real HTTP.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import tarfile
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from sagemaker.core.jumpstart.accessors import JumpStartModelsAccessor
from sagemaker.core.jumpstart.cache import JumpStartModelsCache
from sagemaker.core.jumpstart.enums import JumpStartModelType
from sagemaker.core.jumpstart.payload_utils import PayloadSerializer

from app.services.local_cloud.jumpstart import COMPANION_MODEL_IDS, PROPRIETARY_MANIFEST_KEY, SDXL_MODEL_ID
from app.services.local_cloud.serve import BareAccount, bare
from app.services.model_catalog import ModelCatalog
from app.ui.settings.deploy_panel import INSTANCE_TYPES, MODELS
from contract.families import TEXT_TO_IMAGE, family_for_model
from contract.jumpstart import MANIFEST_KEY
from infra.config import load_config

ROOT = Path(__file__).resolve().parents[2]
#: One cheap read call per service the deploy uses: (service, operation, parameters, what of ours it lists).
READS = [
    ("sts", "get_caller_identity", {}, None),
    ("iam", "list_roles", {}, "Roles"),
    ("ssm", "describe_parameters", {}, "Parameters"),
    ("kms", "list_keys", {}, "Keys"),
    ("cloudformation", "list_stacks", {}, "StackSummaries"),
    ("s3", "list_buckets", {}, "Buckets"),
    ("sns", "list_topics", {}, "Topics"),
    ("sqs", "list_queues", {}, "QueueUrls"),
    ("cloudwatch", "describe_alarms", {}, "MetricAlarms"),
    ("application-autoscaling", "describe_scalable_targets", {"ServiceNamespace": "sagemaker"}, "ScalableTargets"),
    ("sagemaker", "list_endpoints", {}, "Endpoints"),
]


@pytest.fixture
def account(local_cloud) -> BareAccount:
    local_cloud.reset()
    return bare(local_cloud)


@pytest.fixture
def sagemaker_through_endpoint(local_cloud, monkeypatch):
    """sagemaker-core as a build step runs it: its own clients, sent to the local cloud by AWS_ENDPOINT_URL."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", local_cloud.endpoint_url)
    monkeypatch.setattr(JumpStartModelsAccessor, "_cache", None)  # sagemaker-core keeps specs per process
    monkeypatch.setattr(JumpStartModelsAccessor, "_cache_kwargs", {})


def _members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        return {m.name.removeprefix("./"): archive.extractfile(m).read() for m in archive if m.isfile()}


@pytest.mark.parametrize(("service", "operation", "params", "listed"), READS, ids=[r[0] for r in READS])
def test_every_service_answers_with_nothing_of_ours(local_cloud, account, service, operation, params, listed):
    answer = getattr(local_cloud.client(service), operation)(**params)

    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    if listed:
        assert answer.get(listed, []) == []


def test_sagemaker_runtime_answers_as_aws_does_for_an_endpoint_that_is_not_there(local_cloud, account):
    with pytest.raises(ClientError) as refused:
        local_cloud.client("sagemaker-runtime").invoke_endpoint_async(
            EndpointName="nothing-here", InputLocation="s3://nowhere/request.json"
        )

    assert refused.value.response["Error"]["Code"] == "ValidationError"
    assert "Endpoint nothing-here of account" in refused.value.response["Error"]["Message"]


def test_jumpstarts_bucket_is_awss_and_readable_by_name(local_cloud, account):
    s3 = local_cloud.client("s3")

    assert account.jumpstart_bucket == f"jumpstart-cache-prod-{local_cloud.region}"
    assert account.jumpstart_bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    manifest = json.loads(s3.get_object(Bucket=account.jumpstart_bucket, Key=MANIFEST_KEY)["Body"].read())
    assert {row["model_id"] for row in manifest} == {m.model_id for m in account.models}
    assert all(row.keys() == {"model_id", "version", "min_version", "spec_key"} for row in manifest)
    proprietary = json.loads(
        s3.get_object(Bucket=account.jumpstart_bucket, Key=PROPRIETARY_MANIFEST_KEY)["Body"].read()
    )
    assert [row["model_id"] for row in proprietary] == [SDXL_MODEL_ID]


def test_jumpstart_offers_what_the_deploy_panel_offers(local_cloud, account):
    pinned = load_config().model
    catalog = ModelCatalog(local_cloud.client("s3"), local_cloud.region)

    assert (pinned.id, pinned.version) in {(m.model_id, m.version) for m in account.models}
    for _, model_id in MODELS:
        for instance_type in INSTANCE_TYPES:
            choice = catalog.resolve(model_id, pinned.version, instance_type)
            assert (choice.version, choice.newer_available) == (pinned.version, False)


def test_sagemaker_cores_cache_reads_the_replica_with_a_client_of_the_endpoint(local_cloud, account):
    s3 = local_cloud.client("s3")
    cache = JumpStartModelsCache(region=local_cloud.region, s3_client=s3)

    assert {h.model_id for h in cache.get_manifest()} == {m.model_id for m in account.models}
    for model in account.models:
        specs = cache.get_specs(model.model_id, model.version)
        assert (specs.model_id, specs.version, specs.deprecated, specs.inference_vulnerable) == (
            model.model_id,
            model.version,
            False,
            False,
        )
        assert specs.supports_prepacked_inference() and not specs.use_inference_script_uri()
        variants = specs.hosting_instance_type_variants
        assert {variants.get_image_uri(t, local_cloud.region) for t in INSTANCE_TYPES} <= account.images
        keys = (specs.hosting_artifact_key, specs.hosting_script_key, specs.hosting_prepacked_artifact_key)
        artifact, script, prepacked = (
            _members(s3.get_object(Bucket=account.jumpstart_bucket, Key=key)["Body"].read()) for key in keys
        )
        assert "model_index.json" in artifact and not any(name.startswith("code/") for name in artifact)
        assert "inference.py" in script
        assert {"model_index.json", "code/inference.py"} <= prepacked.keys()


def test_each_companion_and_sdxl_takes_its_jumpstart_example_as_its_familys_request(local_cloud, account):
    """The spec's example payload, its images embedded by sagemaker-core, is a valid request of the model's family,
    sent with a content type and asking an Accept type the spec lists."""
    s3 = local_cloud.client("s3")
    cache = JumpStartModelsCache(region=local_cloud.region, s3_client=s3)
    serializer = PayloadSerializer(account.jumpstart_bucket, local_cloud.region, s3)
    models = [(m, JumpStartModelType.OPEN_WEIGHTS) for m in account.models if m.model_id in COMPANION_MODEL_IDS]
    models += [(m, JumpStartModelType.PROPRIETARY) for m in account.proprietary]
    assert {m.model_id for m, _ in models} == {*COMPANION_MODEL_IDS, SDXL_MODEL_ID}
    for model, model_type in models:
        specs = cache.get_specs(model.model_id, model.version, model_type)
        family = family_for_model(model.model_id)
        assert family not in (None, TEXT_TO_IMAGE)
        assert family.content_type in specs.predictor_specs.supported_content_types
        assert family.accept in specs.predictor_specs.supported_accept_types
        for payload in specs.default_payloads.values():
            body = json.loads(serializer.serialize(payload))
            request = family.parse_request(body)
            assert family.body(request).keys() == body.keys(), model.model_id
    sdxl = cache.get_specs(SDXL_MODEL_ID, account.proprietary[0].version, JumpStartModelType.PROPRIETARY)
    assert sdxl.model_subscription_link.startswith("https://aws.amazon.com/marketplace/")
    assert sdxl.hosting_model_package_arns[local_cloud.region].startswith("arn:aws:sagemaker:")


def test_sagemaker_cores_resolver_resolves_the_offered_models_unmodified(
    local_cloud, account, sagemaker_through_endpoint
):
    from sagemaker.core import script_uris

    from infra.model_build.resolve import resolve

    for model in account.models:
        artifacts = resolve(model.model_id, model.version, local_cloud.region, "ml.g5.xlarge")
        assert artifacts.image_uri in account.images
        assert (artifacts.model.bucket, artifacts.model.key) == (account.jumpstart_bucket, model.prepacked_key)
        assert artifacts.script is None  # the prepacked model carries its code, as JumpStart's Stable Diffusion does
        assert artifacts.environment["SAGEMAKER_PROGRAM"] == "inference.py"
        assert artifacts.version == model.version
        script = script_uris.retrieve(
            model_id=model.model_id, model_version=model.version, script_scope="inference", region=local_cloud.region
        )
        assert script.startswith(f"s3://{account.jumpstart_bucket}/source-directory-tarballs/")


def test_the_model_build_step_repackages_the_replicas_prepacked_model(local_cloud, account, sagemaker_through_endpoint):
    from infra.model_build.prepare_model import prepare_model
    from infra.model_build.resolve import resolve_model

    s3 = local_cloud.client("s3")
    s3.create_bucket(Bucket="pipeline-models")
    model = account.models[0]
    resolved = resolve_model(model.model_id, model.version, local_cloud.region, "ml.g5.xlarge", "pipeline-models")

    done = prepare_model(resolved, "pipeline-models", client=local_cloud.client)

    built = s3.get_object(Bucket="pipeline-models", Key=resolved.destination.key)["Body"].read()
    assert not done["reused"]
    assert {"model_index.json", "code/inference.py", "code/requirements.txt"} <= _members(built).keys()


def test_sdxl_resolves_to_the_replicas_model_package_and_has_nothing_to_build(
    local_cloud, account, sagemaker_through_endpoint, tmp_path
):
    """sagemaker-core finds SDXL 1.0 in the proprietary manifest: its resolution is the region's model package of
    its spec, with no image, model data or environment, and the model build step makes no call for it."""
    from infra.model_build.prepare_model import prepare_model
    from infra.model_build.resolve import ResolvedModel, resolve_model

    (sdxl,) = account.proprietary
    resolved = resolve_model(sdxl.model_id, "*", local_cloud.region, "ml.g5.2xlarge", "pipeline-models")
    spec = json.loads(
        local_cloud.client("s3").get_object(Bucket=account.jumpstart_bucket, Key=sdxl.spec_key)["Body"].read()
    )

    assert resolved.model_package == spec["hosting_model_package_arns"][local_cloud.region]
    assert (resolved.image_uri, resolved.model_data_url, resolved.environment) == ("", "", {})
    assert resolved.version == sdxl.version and not resolved.builds
    assert prepare_model(resolved, "pipeline-models", client=lambda service: pytest.fail(service)) == {
        "model_package": resolved.model_package,
        "built": False,
    }
    resolved.write(tmp_path / "model.resolved.json")  # the file the Synth step hands to synthesis and BuildModel
    assert ResolvedModel.read(tmp_path / "model.resolved.json") == resolved


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_command_serves_a_bare_account_on_the_port_it_is_given():
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "local-cloud", "--bare", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url_line = process.stdout.readline().strip()  # printed once the port serves
        assert url_line == f"endpoint_url=http://127.0.0.1:{port}", process.stderr.read()
        s3 = boto3.client("s3", endpoint_url=url_line.partition("=")[2], region_name="us-east-1")
        manifest = json.loads(s3.get_object(Bucket="jumpstart-cache-prod-us-east-1", Key=MANIFEST_KEY)["Body"].read())
        assert {row["model_id"] for row in manifest} >= {model_id for _, model_id in MODELS}
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert process.returncode == 0

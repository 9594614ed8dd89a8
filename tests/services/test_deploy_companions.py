"""Deploying companions (×4 upscaler, inpainting) beside the main model, and SDXL 1.0 as a Marketplace model.

The bundle's config.toml carries one `[companions.<family>]` table per chosen companion (the format
infra/config.py reads); each chosen model is checked as the main one is, and of its family; a Marketplace
model is named with its listing and deploys only with the user's word that the account is subscribed.
JumpStart is the local cloud's replica; the deploys run the small pipeline of test_deployer.py.
"""

from __future__ import annotations

import tomllib
from dataclasses import replace

import pytest
from test_deployer import (  # noqa: F401  (the fixtures)
    DEPLOYMENT,
    MODEL,
    OPTIONS,
    PINNED,
    Pipeline,
    cloud,
    deployer,
    messages,
    run,
    source_zip,
    templates,
)

from app.services.deploy import bundle as deploy_bundle
from app.services.deploy.bundle import DEFAULT_COMPANIONS, DeployOptions
from app.services.errors import UserError
from app.services.local_cloud.jumpstart import SDXL_LISTING, ProprietaryModel, ReplicaModel, publish
from app.services.model_catalog import ModelCatalog
from contract import COMPANION_PARAMS, ssm_name

pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse:UserWarning")
UPSCALER = DEFAULT_COMPANIONS["upscale"]
INPAINTER = DEFAULT_COMPANIONS["inpaint"]
RUNWAY = "model-inpainting-runwayml-stable-diffusion-inpainting"
SDXL = "model-imagegeneration-stabilityai-stable-diffusion-xl-base-1-0"
G5_ONLY = ("ml.g5.xlarge", "ml.g5.2xlarge")


@pytest.fixture
def jumpstart(cloud, deployer):
    """The main model, the upscaler (two versions), the fp16 inpainting model on g5 only, and SDXL in the
    Marketplace manifest; the runwayml inpainting model is not published."""
    publish(
        cloud.client("s3"),
        cloud.region,
        [
            ReplicaModel(MODEL, PINNED),
            ReplicaModel(UPSCALER, "1.0.0"),
            ReplicaModel(UPSCALER, "1.1.0"),
            ReplicaModel(INPAINTER, "2.0.0", instance_types=G5_ONLY),
        ],
        [ProprietaryModel()],
    )
    return cloud


def stack_names(cloud) -> list[str]:
    return [s["StackName"] for s in cloud.client("cloudformation").describe_stacks()["Stacks"]]


def bundled_config(cloud) -> dict:
    return tomllib.loads(source_zip(cloud).read("infra/config.toml").decode())


def test_the_bundle_names_each_chosen_companion_with_its_pinned_version_and_instance_type(jumpstart, deployer):
    pipeline = Pipeline(deployer, jumpstart).succeeds()
    options = DeployOptions(
        MODEL,
        "ml.g5.xlarge",
        2,
        companions={"upscale": UPSCALER, "inpaint": INPAINTER},
        companion_instance_types={"inpaint": "ml.g5.2xlarge"},
    )

    events, _ = run(deployer.deploy(options))

    pipeline.done()
    config = bundled_config(jumpstart)
    assert config["model"]["id"] == MODEL
    assert config["companions"] == {
        "upscale": {"id": UPSCALER, "version": "1.1.0", "instance_type": "ml.g5.xlarge"},
        "inpaint": {"id": INPAINTER, "version": "2.0.0", "instance_type": "ml.g5.2xlarge"},
    }
    parsed = deploy_bundle.parse(
        source_zip(jumpstart).read("infra/config.toml").decode()
    )  # as infra/config.py reads it
    assert {f: (m.id, m.version, m.instance_type) for f, m in parsed.companions.items()} == {
        "upscale": (UPSCALER, "1.1.0", "ml.g5.xlarge"),
        "inpaint": (INPAINTER, "2.0.0", "ml.g5.2xlarge"),
    }
    log = messages(events)
    assert "Companion endpoints, each scaling to zero on its own: ×4 upscaler " + UPSCALER in log
    assert f"×4 upscaler companion {UPSCALER} version 1.1.0 on ml.g5.xlarge" in log
    assert deployer.options().companions == {"upscale": UPSCALER, "inpaint": INPAINTER}


def test_a_deploy_without_companions_bundles_none(jumpstart, deployer):
    pipeline = Pipeline(deployer, jumpstart).succeeds()
    run(deployer.deploy(DeployOptions(MODEL, "ml.g5.xlarge", 2, companions={"upscale": UPSCALER})))
    pipeline.done()
    pipeline = Pipeline(deployer, jumpstart).succeeds()

    run(deployer.update(DeployOptions(MODEL, "ml.g5.xlarge", 2, companions={})))

    pipeline.done()
    assert "companions" not in bundled_config(jumpstart)


def test_update_keeps_the_companions_the_deployment_has_even_from_another_computer(jumpstart, deployer, dirs):
    pipeline = Pipeline(deployer, jumpstart).succeeds()
    run(deployer.deploy(OPTIONS))
    pipeline.done()
    # What the endpoint stack publishes for a deployed upscaler, and a computer without the user's config.toml.
    ssm = jumpstart.client("ssm")
    ssm.put_parameter(Name=ssm_name(DEPLOYMENT, COMPANION_PARAMS["upscale"]), Value="up-endpoint", Type="String")
    deploy_bundle.user_config_path(dirs).unlink()
    assert deployer.deployed_companions() == {"upscale": UPSCALER}
    pipeline = Pipeline(deployer, jumpstart).succeeds()

    run(deployer.update(DeployOptions(MODEL, "ml.g5.xlarge", 2)))  # companions None: as deployed

    pipeline.done()
    assert bundled_config(jumpstart)["companions"] == {
        "upscale": {"id": UPSCALER, "version": "1.1.0", "instance_type": "ml.g5.xlarge"}
    }


@pytest.mark.parametrize(
    ("companions", "instance_type", "says"),
    [
        (
            {"upscale": INPAINTER},
            "ml.g5.xlarge",
            f"{INPAINTER} is an inpainting model, not an upscaling model: the ×4 upscaler companion takes {UPSCALER}.",
        ),
        (
            {"inpaint": MODEL},
            "ml.g5.xlarge",
            f"{MODEL} is a text-to-image model, not an inpainting model: the Inpainting companion takes",
        ),
        (
            {"inpaint": RUNWAY},
            "ml.g5.xlarge",
            f"JumpStart has no model {RUNWAY} in us-east-1. Inpainting models usable on ml.g5.xlarge in us-east-1: "
            f"{INPAINTER}.",
        ),
        (
            {"inpaint": INPAINTER},
            "ml.g4dn.xlarge",
            f"JumpStart does not offer {INPAINTER} version 2.0.0 on ml.g4dn.xlarge in us-east-1 "
            "(it runs on ml.g5.xlarge, ml.g5.2xlarge). JumpStart offers no usable inpainting model on ml.g4dn.xlarge",
        ),
    ],
)
def test_a_companion_of_another_family_unknown_or_not_offered_is_refused_before_any_stack(
    jumpstart, deployer, companions, instance_type, says
):
    with pytest.raises(UserError) as refused:
        run(deployer.deploy(DeployOptions(MODEL, instance_type, 1, companions=companions)))

    assert says in str(refused.value)
    assert stack_names(jumpstart) == []


def test_a_companion_model_as_the_main_model_is_refused(jumpstart, deployer):
    with pytest.raises(UserError, match=f"{UPSCALER} is an upscaling model: the main model makes images"):
        run(deployer.deploy(DeployOptions(UPSCALER, "ml.g5.xlarge", 1)))
    assert stack_names(jumpstart) == []


def test_sdxl_with_the_users_word_that_the_account_is_subscribed_deploys_as_the_main_model(jumpstart, deployer):
    """Preflight names SDXL's listing and takes the confirmation; the bundle's config.toml then names SDXL as the
    [model] on its instance type, which the pipeline resolves to the seller's model package."""
    pipeline = Pipeline(deployer, jumpstart).succeeds()

    events, _ = run(deployer.deploy(DeployOptions(SDXL, "ml.g5.2xlarge", 1, marketplace_subscribed=True)))

    pipeline.done()
    log = messages(events)
    assert f"{SDXL} is an AWS Marketplace model ({SDXL_LISTING}): you confirmed the account is subscribed" in log
    assert "Warning: Diffusion Desk runs every model behind an asynchronous endpoint, and whether AWS runs" in log
    model = bundled_config(jumpstart)["model"]
    assert (model["id"], model["version"], model["instance_type"]) == (SDXL, "2.0.0", "ml.g5.2xlarge")
    assert deployer.options().model_id == SDXL


def test_sdxl_without_the_users_word_is_refused_naming_its_listing_before_any_stack(jumpstart, deployer):
    with pytest.raises(UserError) as refused:
        run(deployer.deploy(DeployOptions(SDXL, "ml.g5.2xlarge", 1)))

    text = str(refused.value)
    assert f"{SDXL} is an AWS Marketplace model" in text and SDXL_LISTING in text
    assert "this app's pipeline cannot deploy a model package" not in text
    assert stack_names(jumpstart) == []


def test_a_marketplace_model_needs_the_users_word_that_the_account_is_subscribed(jumpstart, deployer):
    assert deployer.deploys_model_packages  # the pipeline deploys a seller's model package
    with pytest.raises(UserError) as refused:
        run(deployer.preflight(DeployOptions(SDXL, "ml.g5.2xlarge", 1)))
    assert f"must be subscribed to at {SDXL_LISTING} before it can be deployed" in str(refused.value)
    assert "--marketplace-subscribed" in str(refused.value)

    events, preflight = run(deployer.preflight(DeployOptions(SDXL, "ml.g5.2xlarge", 1, marketplace_subscribed=True)))

    assert preflight.model.marketplace and preflight.model.listing == SDXL_LISTING
    assert "you confirmed the account is subscribed" in messages(events)
    assert "plus the seller's AWS Marketplace software fee per instance-hour" in messages(events)


def test_the_catalog_offers_sdxl_only_where_the_pipeline_can_deploy_it(jumpstart, deployer):
    s3 = jumpstart.client("s3")
    assert ModelCatalog(s3, jumpstart.region, marketplace=False).usable_models("ml.g5.2xlarge") == [MODEL]
    assert ModelCatalog(s3, jumpstart.region).usable_models("ml.g5.2xlarge") == [SDXL, MODEL]
    assert ModelCatalog(s3, jumpstart.region).usable_models("ml.g5.xlarge") == [MODEL]  # SDXL needs a g5.2xlarge

    offer = deployer.offer("ml.g5.2xlarge")

    # Offered, with no reason against it: the Deploy tab shows it with the subscription check box.
    assert offer.models == (SDXL, MODEL) and offer.marketplace == {SDXL: ""} and offer.deployed is None
    assert deployer.offer("ml.g5.xlarge").models == (MODEL,)


def test_the_offer_lists_each_companions_models_and_a_chosen_one_is_what_deploys(cloud, deployer):  # noqa: F811
    """The Deploy tab's companion lists come from the offer, as preflight judges them; the runwayml inpainting
    model picked there goes through preflight into the bundle's `[companions.inpaint]`, as infra reads it."""
    publish(
        cloud.client("s3"),
        cloud.region,
        [
            ReplicaModel(MODEL, PINNED),
            ReplicaModel(UPSCALER, "1.1.0"),
            ReplicaModel(INPAINTER, "2.0.0", instance_types=G5_ONLY),
            ReplicaModel(RUNWAY, "1.0.0"),
        ],
    )

    assert deployer.offer("ml.g5.xlarge").companions == {"upscale": (UPSCALER,), "inpaint": (RUNWAY, INPAINTER)}
    assert deployer.offer("ml.g4dn.xlarge").companions == {"upscale": (UPSCALER,), "inpaint": (RUNWAY,)}

    pipeline = Pipeline(deployer, cloud).succeeds()
    events, _ = run(deployer.deploy(DeployOptions(MODEL, "ml.g4dn.xlarge", 2, companions={"inpaint": RUNWAY})))

    pipeline.done()
    assert f"Inpainting companion {RUNWAY} version 1.0.0 on ml.g4dn.xlarge" in messages(events)
    assert bundled_config(cloud)["companions"] == {
        "inpaint": {"id": RUNWAY, "version": "1.0.0", "instance_type": "ml.g4dn.xlarge"}
    }
    parsed = deploy_bundle.parse(source_zip(cloud).read("infra/config.toml").decode())
    assert {f: (m.id, m.version) for f, m in parsed.companions.items()} == {"inpaint": (RUNWAY, "1.0.0")}


def test_the_quota_counts_every_endpoint_on_the_type_companions_too(jumpstart, deployer):
    """Three endpoints of at most 2 instances each on one type may want 6 at once: a quota of 4 is a warning."""
    jumpstart.cloud.quotas.set("sagemaker", "ml.g5.xlarge for endpoint usage", 4)
    with_both = replace(OPTIONS, companions=dict(DEFAULT_COMPANIONS))
    events, _ = run(deployer.preflight(with_both))
    log = messages(events)
    assert "fewer than the 6 its 3 endpoints may use: together they will not scale beyond 4" in log

    events, _ = run(deployer.preflight(OPTIONS))  # the main endpoint alone fits
    assert "Quota: up to 4 ml.g5.xlarge endpoint instances" in messages(events)

    jumpstart.cloud.quotas.set("sagemaker", "ml.g4dn.xlarge for endpoint usage", 0)
    apart = replace(with_both, companions={"upscale": UPSCALER}, companion_instance_types={"upscale": "ml.g4dn.xlarge"})
    with pytest.raises(UserError, match="no ml.g4dn.xlarge endpoint instances"):
        run(deployer.preflight(apart))


def test_update_keeps_a_companions_own_instance_type_and_environment(jumpstart, deployer, dirs):
    """The inpainting model runs on a g5.2xlarge with its own environment: an Update that names no instance type
    for it (the Deploy tab's, the CLI's) keeps both, so its endpoint is not replaced on the main one's GPU."""
    pipeline = Pipeline(deployer, jumpstart).succeeds()
    with_types = DeployOptions(
        MODEL,
        "ml.g5.xlarge",
        2,
        companions={"upscale": UPSCALER, "inpaint": INPAINTER},
        companion_instance_types={"inpaint": "ml.g5.2xlarge"},
    )
    run(deployer.deploy(with_types))
    pipeline.done()
    path = deploy_bundle.user_config_path(dirs)
    path.write_text(path.read_text() + '\n[companions.inpaint.environment]\nMMS_MAX_RESPONSE_SIZE = "20000000"\n')
    assert deployer.options().companion_instance_types == {"upscale": "ml.g5.xlarge", "inpaint": "ml.g5.2xlarge"}
    pipeline = Pipeline(deployer, jumpstart).succeeds()

    # As the Deploy tab sends it once a box was clicked: the companions by id, no instance types.
    events, _ = run(deployer.update(DeployOptions(MODEL, "ml.g5.xlarge", 2, companions=dict(DEFAULT_COMPANIONS))))

    pipeline.done()
    assert bundled_config(jumpstart)["companions"] == {
        "upscale": {"id": UPSCALER, "version": "1.1.0", "instance_type": "ml.g5.xlarge"},
        "inpaint": {
            "id": INPAINTER,
            "version": "2.0.0",
            "instance_type": "ml.g5.2xlarge",
            "environment": {"MMS_MAX_RESPONSE_SIZE": "20000000"},
        },
    }
    assert f"Inpainting companion {INPAINTER} version 2.0.0 on ml.g5.2xlarge" in messages(events)


def test_a_companions_instance_type_is_kept_given_or_for_another_model_the_main_ones(dirs):
    def configure(instance_type: str, companions: dict[str, str], types: dict[str, str] | None = None) -> dict:
        options = DeployOptions(MODEL, instance_type, 2, companions=companions, companion_instance_types=types or {})
        text, _ = deploy_bundle.configure(dirs, options, "us-east-1")
        return {f: t["instance_type"] for f, t in tomllib.loads(text)["companions"].items()}

    assert configure("ml.g5.xlarge", {"inpaint": INPAINTER}, {"inpaint": "ml.g5.2xlarge"}) == {
        "inpaint": "ml.g5.2xlarge"
    }
    assert configure("ml.g5.4xlarge", {"inpaint": INPAINTER}) == {"inpaint": "ml.g5.2xlarge"}  # kept
    assert configure("ml.g5.4xlarge", {"inpaint": INPAINTER}, {"inpaint": "ml.g5.xlarge"}) == {
        "inpaint": "ml.g5.xlarge"
    }
    assert configure("ml.g5.4xlarge", {"inpaint": RUNWAY}) == {"inpaint": "ml.g5.4xlarge"}  # another model
    assert deploy_bundle.load_options(dirs).companion_instance_types == {"inpaint": "ml.g5.4xlarge"}


def test_update_keeps_a_custom_companion_model_deployed_from_another_computer(cloud, deployer, dirs):  # noqa: F811
    """The inpainting endpoint runs the runwayml model (deployed elsewhere): Update without the user's
    config.toml reads it from the endpoint's model instead of putting the default inpainting model in."""
    publish(
        cloud.client("s3"),
        cloud.region,
        [ReplicaModel(MODEL, PINNED), ReplicaModel(INPAINTER, "2.0.0"), ReplicaModel(RUNWAY, "1.0.0")],
    )
    pipeline = Pipeline(deployer, cloud).succeeds()
    run(deployer.deploy(OPTIONS))
    pipeline.done()
    # The companion endpoint as the endpoint stack makes it: its model's data where BuildModel put it.
    sagemaker, name = cloud.client("sagemaker"), f"diffusion-desk-{DEPLOYMENT}-endpoint-inpaint-ml-g5-xlarge"
    sagemaker.create_model(
        ModelName="InpaintAsyncModel",
        ExecutionRoleArn="arn:aws:iam::123456789012:role/inpaint",
        PrimaryContainer={
            "Image": "763104351884.dkr.ecr.us-east-1.amazonaws.com/djl-inference:0.21.0",
            "ModelDataUrl": f"s3://models-bucket/models/{RUNWAY}/0123456789abcdef/model.tar.gz",
        },
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName="InpaintAsyncConfig",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "InpaintAsyncModel",
                "InstanceType": "ml.g5.xlarge",
                "InitialInstanceCount": 1,
            }
        ],
    )
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName="InpaintAsyncConfig")
    cloud.client("ssm").put_parameter(
        Name=ssm_name(DEPLOYMENT, COMPANION_PARAMS["inpaint"]), Value=name, Type="String", Overwrite=True
    )
    deploy_bundle.user_config_path(dirs).unlink()

    assert deployer.deployed_companions() == {"inpaint": RUNWAY}
    pipeline = Pipeline(deployer, cloud).succeeds()
    run(deployer.update(DeployOptions(MODEL, "ml.g5.xlarge", 2)))  # companions None: as deployed
    pipeline.done()

    assert bundled_config(cloud)["companions"]["inpaint"]["id"] == RUNWAY

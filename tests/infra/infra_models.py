"""The configs and models the infra tests synthesize beside the shipped one: both companions, SDXL 1.0 as the main
model. A module of its own (not conftest.py), so a test imports it by a name no other test folder's conftest has."""

from __future__ import annotations

#: The session's synthesis has an alert address, as every deploy from the app or the CLI has.
ALERT_EMAIL = "designer@example.com"

#: The companion models of the companion synthesis, as config.toml's commented examples name them.
COMPANIONS = {
    "upscale": "model-upscaling-stabilityai-stable-diffusion-x4-upscaler-fp16",
    "inpaint": "model-inpainting-stabilityai-stable-diffusion-2-inpainting-fp16",
}


def companion_config():
    """The shipped config with an alert address and both companions ([companions.upscale], [companions.inpaint])."""
    from dataclasses import replace

    from infra.config import ModelConfig, load_config

    config = load_config()
    companions = {family: ModelConfig(model_id, "2.0.0", "ml.g5.xlarge") for family, model_id in COMPANIONS.items()}
    return replace(config, guard=replace(config.guard, alert_email=ALERT_EMAIL), companions=companions)


#: SDXL 1.0, a Marketplace model: the main model of the SDXL synthesis, on an instance type its spec lists.
SDXL_MODEL_ID = "model-imagegeneration-stabilityai-stable-diffusion-xl-base-1-0"
SDXL_INSTANCE_TYPE = "ml.g5.2xlarge"


def sdxl_config():
    """The shipped config with SDXL 1.0 as its main model and an alert address."""
    from dataclasses import replace

    from infra.config import load_config

    config = load_config()
    model = replace(config.model, id=SDXL_MODEL_ID, version="2.0.0", instance_type=SDXL_INSTANCE_TYPE)
    return replace(config, model=model, guard=replace(config.guard, alert_email=ALERT_EMAIL))

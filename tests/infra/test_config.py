"""config.toml: every key read into a typed config, and bad values refused by name."""

from __future__ import annotations

import re
import tomllib

import pytest

from infra.config import CONFIG_PATH, ConfigError, load_config, parse_config


def _data() -> dict:
    return tomllib.loads(CONFIG_PATH.read_text())


def test_the_shipped_config_loads():
    config = load_config()
    assert config.source_kind == "s3"
    assert config.stack_name("endpoint") == f"diffusion-desk-{config.deployment}-endpoint"


def test_every_key_in_config_toml_is_commented():
    lines = CONFIG_PATH.read_text().splitlines()
    for number, line in enumerate(lines):
        if re.match(r"^[a-z_]+\s*=", line) and not lines[number - 1].startswith("#"):
            section = next((above for above in reversed(lines[:number]) if above.startswith("[")), "")
            if section != "[model.environment]":
                pytest.fail(f"line {number + 1} ({line.split('=')[0].strip()}) has no comment above it")


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda d: d.update(deployment="a/b"), "deployment"),
        (lambda d: d.update(source_kind="github"), "source_kind"),
        (lambda d: d["lambda"].update(architecture="sparc"), "architecture"),
        (lambda d: d["endpoint"].update(max_instances=0), "max_instances"),
        (lambda d: d["build"].update(part_size_mb=1), "part_size_mb"),
        (lambda d: d["model"].update(colour="blue"), "colour"),
        (lambda d: d["endpoint"].pop("scale_in_cooldown"), "scale_in_cooldown"),
        (lambda d: d.pop("bucket"), "[bucket]"),
        (lambda d: d["guard"].update(monthly_limit=0), "monthly_limit"),
        (lambda d: d["guard"].update(monthly_limit=-5.0), "monthly_limit"),
        (lambda d: d["guard"].update(monthly_limit="fifty"), "monthly_limit"),
        (lambda d: d["guard"].update(alert_email="designer at example dot com"), "alert_email"),
        (lambda d: d["guard"].update(alert_email="designer@localhost"), "alert_email"),
        (lambda d: d["guard"].update(in_service_hours=25), "in_service_hours"),
    ],
)
def test_a_bad_value_is_refused_naming_its_key(change, named):
    data = _data()
    change(data)
    with pytest.raises(ConfigError, match=re.escape(named)):
        parse_config(data)


def test_a_config_saved_before_the_guard_loads_with_its_defaults():
    data = _data()
    data.pop("guard")

    guard = parse_config(data).guard

    assert (guard.monthly_limit, guard.alert_email, guard.in_service_hours) == (50.0, "", 4)


UPSCALER = "model-upscaling-stabilityai-stable-diffusion-x4-upscaler-fp16"
INPAINTER = "model-inpainting-stabilityai-stable-diffusion-2-inpainting-fp16"


def _companion(model_id: str, **extra) -> dict:
    return {"id": model_id, "version": "2.0.0", "instance_type": "ml.g5.xlarge", **extra}


def test_the_shipped_config_deploys_no_companion_and_its_examples_load_when_uncommented():
    assert load_config().companions == {}
    text = CONFIG_PATH.read_text()
    example = text[text.index("# [companions.upscale]") :]
    uncommented = "\n".join(line.removeprefix("# ") for line in example.splitlines() if not line.startswith("# #"))

    companions = parse_config(tomllib.loads(text + "\n" + uncommented)).companions

    assert {name: model.id for name, model in companions.items()} == {"upscale": UPSCALER, "inpaint": INPAINTER}
    assert companions["upscale"].instance_type == "ml.g5.xlarge" and companions["inpaint"].environment == {}


def test_each_companion_table_is_a_model_of_its_family():
    data = _data()
    data["companions"] = {"upscale": _companion(UPSCALER), "inpaint": _companion(INPAINTER, environment={"A": "1"})}

    config = parse_config(data)

    assert config.companions["upscale"].id == UPSCALER
    assert config.companions["inpaint"].environment == {"A": "1"}
    assert config.family == "text-to-image"


@pytest.mark.parametrize(
    ("companions", "named"),
    [
        ({"outpaint": _companion(INPAINTER)}, "[companions.outpaint]"),
        ({"upscale": _companion(INPAINTER)}, "[companions.upscale] id"),
        ({"inpaint": _companion("model-txt2img-stabilityai-stable-diffusion-v2-1-base")}, "[companions.inpaint] id"),
        ({"inpaint": _companion("model-some-other-thing")}, "[companions.inpaint] id"),
        ({"upscale": {"id": UPSCALER, "version": "2.0.0"}}, "[companions.upscale] is missing: instance_type"),
        ({"upscale": _companion(UPSCALER, colour="blue")}, "[companions.upscale] has unknown keys: colour"),
        ({"upscale": _companion(UPSCALER, version=2)}, "[companions.upscale] version"),
        ({"upscale": _companion(UPSCALER, environment={"A": 1})}, "[companions.upscale.environment]"),
        ({"upscale": "yes"}, "[companions.upscale]"),
        ("upscale", "companions"),
    ],
)
def test_a_bad_companion_is_refused_naming_its_table_and_key(companions, named):
    data = _data()
    data["companions"] = companions
    with pytest.raises(ConfigError, match=re.escape(named)):
        parse_config(data)


def test_a_companion_model_cannot_be_the_main_model():
    data = _data()
    data["model"]["id"] = UPSCALER
    with pytest.raises(ConfigError, match=re.escape("[companions.upscale]")):
        parse_config(data)


def test_the_main_models_family_is_read_from_its_id():
    data = _data()
    data["model"]["id"] = "model-imagegeneration-stabilityai-stable-diffusion-xl-base-1-0"
    assert parse_config(data).family == "sdxl"

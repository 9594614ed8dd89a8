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

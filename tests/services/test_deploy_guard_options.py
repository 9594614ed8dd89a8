"""The budget guard's choices: saved into the user's config.toml and read back; bad ones refused before anything."""

from __future__ import annotations

import io

import pytest

from app.cli import main
from app.services.deploy import DeployOptions, load_options
from app.services.deploy.bundle import configure, user_config_path
from app.services.errors import UserError
from infra.config import CONFIG_PATH

MODEL = "model-txt2img-stabilityai-stable-diffusion-v2-1-base"
EMAIL = "designer@example.com"


def test_the_guard_round_trips_through_the_users_config(dirs):
    options = DeployOptions(MODEL, "ml.g5.xlarge", 2, 120.5, f"  {EMAIL} ")

    text, config = configure(dirs, options, "eu-west-1")

    assert (config.guard.monthly_limit, config.guard.alert_email, config.guard.in_service_hours) == (120.5, EMAIL, 4)
    assert load_options(dirs) == DeployOptions(MODEL, "ml.g5.xlarge", 2, 120.5, EMAIL, companions={})
    assert "# Monthly limit in USD" in text and "# Where the budget's alerts" in text  # comments kept


def test_a_config_saved_before_the_guard_gets_its_section(dirs):
    path = user_config_path(dirs)
    path.parent.mkdir(parents=True)
    shipped = CONFIG_PATH.read_text()
    path.write_text(shipped.split("\n[guard]")[0] + "\n")
    assert load_options(dirs).alert_email == ""

    configure(dirs, DeployOptions(MODEL, "ml.g5.xlarge", 2, 30.0, EMAIL), "us-east-1")

    assert load_options(dirs) == DeployOptions(MODEL, "ml.g5.xlarge", 2, 30.0, EMAIL, companions={})


@pytest.mark.parametrize(
    ("limit", "email", "says"),
    [(0.0, EMAIL, "more than 0 USD"), (-5.0, EMAIL, "more than 0 USD"), (50.0, "designer@", "not an e-mail address")],
)
def test_a_bad_guard_is_refused_and_nothing_is_written(dirs, limit, email, says):
    with pytest.raises(UserError, match=says):
        configure(dirs, DeployOptions(MODEL, "ml.g5.xlarge", 2, limit, email), "us-east-1")

    assert not user_config_path(dirs).exists()


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ((), "Deploy needs --alert-email ADDRESS"),
        (("--alert-email", "not-an-address"), "“not-an-address” is not an e-mail address"),
        (("--alert-email", EMAIL, "--monthly-limit", "0"), "The monthly limit must be more than 0 USD (it is 0)."),
        (("--alert-email", EMAIL, "--monthly-limit", "-20"), "The monthly limit must be more than 0 USD (it is -20)."),
    ],
)
def test_the_cli_refuses_a_bad_guard_before_it_connects_or_asks(dirs, monkeypatch, extra, says):
    def no_connection(*args, **kwargs):
        raise AssertionError("the CLI connected before checking the guard")

    monkeypatch.setattr("app.cli_deploy._deployer", no_connection)

    code, out, err = run("--region", "us-east-1", "deploy", "--yes", *extra)

    assert code == 1 and out == "" and says in err and "Nothing was deployed." in err
    assert "Deploy 'studio' into" not in err
    assert not user_config_path(dirs).exists()

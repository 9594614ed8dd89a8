"""`--deployment NAME` on the command line picks ours or a stack made with the AWS guidance."""

from __future__ import annotations

import io

import orjson
import pytest
from guidance_stack import provision_guidance
from instances import connect

from app.cli import main
from app.services.cloud.targets import load_target, remember_target
from app.services.settings import CONFIG_DIR_ENV, DATA_DIR_ENV, AppDirs
from contract import GUIDANCE_APP_NAME, request_key


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    found = AppDirs(tmp_path / "config", tmp_path / "data").create()
    monkeypatch.setenv(CONFIG_DIR_ENV, str(found.config_dir))
    monkeypatch.setenv(DATA_DIR_ENV, str(found.data_dir))
    return found


def run(cloud, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["--endpoint-url", cloud.endpoint_url, "--region", cloud.region, *argv], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def generate(cloud, deployment: str) -> tuple[int, str, str]:
    return run(cloud, "--deployment", deployment, "generate", "a paper boat", "--size", "64x64", "--json")


@pytest.mark.parametrize("name", ["simple-gen-ai-service/sd-repo", "sd-repo", "sd-repo (AWS guidance)"])
def test_a_guidance_stack_is_picked_by_its_name(cloud, dirs, name):
    stack = provision_guidance(cloud, "sd-repo", lambdas=False)
    code, out, err = generate(cloud, name)
    assert code == 0, err
    (job,) = orjson.loads(out)
    assert job["target"] == "sd-repo (AWS guidance)"
    cloud.client("s3").head_object(Bucket=stack.bucket, Key=request_key(job["inference_id"]))


def test_a_saved_target_is_picked_by_its_name_when_another_is_active(cloud, dirs):
    provision_guidance(cloud, "sd-repo", lambdas=False)
    connection = connect(cloud)
    remember_target(dirs, load_target(connection, "sd-repo", app=GUIDANCE_APP_NAME, name="team stack"))
    remember_target(dirs, load_target(connection, cloud.deployment.name))  # ours is active
    code, out, err = generate(cloud, "team stack")
    assert code == 0, err
    assert orjson.loads(out)[0]["target"] == "team stack"


def test_a_name_both_kinds_use_is_ambiguous_and_says_how_to_choose(cloud, dirs):
    provision_guidance(cloud, cloud.deployment.name, lambdas=False)  # a guidance stack also called "test"
    code, out, err = generate(cloud, "test")
    assert (code, out) == (1, "")
    assert "'test' names 2 deployments in us-east-1" in err
    assert "--deployment diffusion-desk/test or --deployment simple-gen-ai-service/test" in err
    code, out, err = generate(cloud, "diffusion-desk/test")
    assert code == 0 and orjson.loads(out)[0]["target"] == "test", err


def test_an_unknown_name_lists_what_exists(cloud, dirs):
    provision_guidance(cloud, "sd-repo", lambdas=False)
    code, out, err = generate(cloud, "nope")
    assert (code, out) == (1, "")
    assert "No deployment named 'nope' was found in us-east-1" in err
    assert "simple-gen-ai-service/sd-repo (made with the AWS guidance)" in err and "test (Diffusion Desk)" in err
    code, out, err = generate(cloud, "simple-gen-ai-service/test")
    assert code == 1 and "No deployment named 'simple-gen-ai-service/test'" in err

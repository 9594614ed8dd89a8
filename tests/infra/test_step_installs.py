"""Each pipeline step's own install commands, run in a fresh venv that holds nothing else."""

from __future__ import annotations

import json
import os
import subprocess
import venv
from pathlib import Path

import pytest

from app.services.deploy.bundle import bundle_files

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("synthesis")]

#: The module each step runs, by a marker of its buildspec.
STEPS = {
    "prepare_model": ["infra.model_build.prepare_model"],
    "synth --app": ["infra.model_build.resolve", "sagemaker.core.image_uris", "infra.app"],
}


def _install_commands(template: dict, marker: str) -> list[str]:
    specs = [
        p["Properties"]["Source"]["BuildSpec"]
        for p in template["Resources"].values()
        if p["Type"] == "AWS::CodeBuild::Project"
    ]
    (spec,) = [json.loads(s) for s in specs if marker in s]
    return [c for c in spec["phases"]["install"]["commands"] if not c.startswith("[ ! -d")]  # not the input symlinks


@pytest.mark.parametrize("marker", list(STEPS))
def test_the_step_imports_what_its_own_install_commands_bring(synthesis, tmp_path, marker):
    bundle = tmp_path / "src"
    for name, data in bundle_files((ROOT / "infra" / "config.toml").read_text(), ROOT):
        (bundle / name).parent.mkdir(parents=True, exist_ok=True)
        (bundle / name).write_bytes(data)
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(env_dir)
    environ = {
        "PATH": f"{env_dir / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "PYTHONPATH": str(bundle),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    for command in _install_commands(synthesis.templates["pipeline"], marker):
        subprocess.run(command, shell=True, cwd=bundle, env=environ, check=True, timeout=900)

    for module in STEPS[marker]:
        run = subprocess.run(
            [str(env_dir / "bin" / "python"), "-c", f"import {module}"],
            cwd=bundle,
            env=environ,
            capture_output=True,
            text=True,
        )
        assert run.returncode == 0, f"{marker}: import {module} failed:\n{run.stderr[-2000:]}"

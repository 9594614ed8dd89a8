"""The whole deploy, rehearsed on a bare local cloud with the synthesized templates, from the CLI.

`python -m app --endpoint-url URL deploy --yes` against an empty account (JumpStart's replica only) with
CodePipeline's automatic runs on: preflight, the CDK bootstrap, the source and pipeline stacks, source.zip,
then the synthesized pipeline's own steps in the local CodePipeline and CodeBuild (Synth installs
aws-cdk-lib from pip and runs the CDK CLI from npm; SelfMutate runs `cdk deploy` of the pipeline stack
under the bootstrap roles; the asset steps run cdk-assets; BuildModel repackages the replica's tarball)
and the endpoint stack's change set. Then the target is active, an image comes back through the deployed
endpoint, and `teardown --yes` leaves the account as it was. Slow (pip and npm downloads, cached under
DIFFUSION_DESK_BUILD_CACHE); bench/deploy_rehearsal.py times the same run.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from app.cli import main
from app.services.local_cloud.serve import bare
from app.services.settings import load_settings

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from deploy_rehearsal import failed_builds, listing  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:Tried to parse:UserWarning")]


def cli(cloud, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["--endpoint-url", cloud.endpoint_url, "--region", cloud.region, *argv], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def bare_cloud(local_cloud, dirs, monkeypatch):
    """The session's local cloud wiped to a bare account, with CodePipeline's automatic runs on."""
    local_cloud.reset()
    bare(local_cloud)
    local_cloud.pipelines.automatic_runs = True
    yield local_cloud
    local_cloud.reset()


def test_deploy_on_a_bare_account_makes_images_and_teardown_leaves_it_as_it_was(bare_cloud, dirs, tmp_path):
    before = listing(bare_cloud)

    code, _, err = cli(bare_cloud, "deploy", "--yes", "--alert-email", "designer@example.com")

    assert code == 0, err[-4000:] + "\n" + failed_builds(bare_cloud)
    for stage in ("Source · Source", "Build · Synth", "UpdatePipeline · SelfMutate", "Deploy · BuildModel"):
        assert f"{stage}: Succeeded" in err
    assert "Stage Deploy: Succeeded" in err and "is the active target" in err
    settings = load_settings(dirs)
    assert settings.active_target == "studio" and settings.mode == "aws"

    code, out, err = cli(
        bare_cloud, "generate", "a lighthouse at dusk", "--size", "64x64", "--wait", "--out", str(tmp_path)
    )
    assert code == 0, err[-3000:]
    assert list(tmp_path.rglob("*.png")), out + err

    code, _, err = cli(bare_cloud, "teardown", "--yes")
    assert code == 0, err[-3000:]
    after = listing(bare_cloud)
    left = {kind: sorted(after[kind] - before[kind]) for kind in after if after[kind] - before[kind]}
    # Only the CDK bootstrap stays, as teardown says (other CDK apps may use it): its stack, bucket, roles, version.
    assert all(name == "CDKToolkit" or "hnb659fds" in name for names in left.values() for name in names), left
    assert not [kind for kind in before if before[kind] - after[kind]]  # JumpStart's replica is untouched

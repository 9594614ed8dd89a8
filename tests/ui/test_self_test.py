"""`python -m app --self-test` opens the window offscreen, generates one image, and exits 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


# The packaged app leaves numpy out (41 MB): its whole path, sandbox included, must run without it.
WITHOUT_NUMPY = "import runpy, sys; sys.modules['numpy'] = None; runpy.run_module('app', run_name='__main__')"


@pytest.mark.slow
@pytest.mark.parametrize("start", [["-m", "app"], ["-c", WITHOUT_NUMPY]], ids=["python -m app", "without numpy"])
def test_self_test_generates_one_image_and_exits_0(tmp_path, start):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, *start, "--self-test"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Self-test passed: one image generated on the local cloud" in result.stdout

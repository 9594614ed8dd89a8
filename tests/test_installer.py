"""The installer: build it, start the built program, install it as a user would."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
from PyInstaller.archive.readers import CArchiveReader

import build_installer

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("installer")]

NEVER_SHIPPED = (
    "aws_cdk",
    "jsii",
    "cdk_nag",
    "cfnlint",
    "sagemaker",
    "sagemaker_core",
    "pytest",
    "_pytest",
    "PyInstaller",
    "importlinter",
    "numpy",
    "moto.cognitoidp",
    "moto.glue",
    "PySide6.QtQml",
    "PySide6.QtNetwork",
)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dist/ of a fresh build (bundle and this platform's installer) in a temporary folder."""
    root = tmp_path_factory.mktemp("installer")
    dist = root / "dist"
    started = time.monotonic()
    subprocess.run(
        [
            sys.executable,
            str(build_installer.ROOT / "build_installer.py"),
            "--dist",
            str(dist),
            "--work",
            str(root / "work"),
        ],
        check=True,
        cwd=build_installer.ROOT,
    )
    print(f"installer built in {time.monotonic() - started:.0f} s")
    return dist


def _user_env(home: Path) -> dict[str, str]:
    """Offscreen Qt and a throwaway home, so the built program never touches the developer's files."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(home))
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        env.pop(name, None)
    return env


def _run(program: Path, *args: str, home: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(program), *args], env=_user_env(home), capture_output=True, text=True, timeout=timeout)


def test_the_built_program_says_its_version(built: Path, tmp_path: Path) -> None:
    result = _run(build_installer.executable(built), "--version", home=tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"Diffusion Desk {build_installer.project_version()}"


def test_the_built_program_generates_an_image_in_its_self_test(built: Path, tmp_path: Path) -> None:
    result = _run(build_installer.executable(built), "--self-test", home=tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Self-test passed" in result.stdout


def test_the_bundle_has_the_app_resources_and_no_build_tools(built: Path) -> None:
    bundle = build_installer.bundle_dir(built)
    program = build_installer.executable(built)
    modules = set(CArchiveReader(str(program)).open_embedded_archive("PYZ.pyz").toc)
    files = {path.relative_to(bundle).as_posix() for path in bundle.rglob("*")}

    assert {
        "app.ui.shell.main",
        "contract",
        "moto.s3.models",
        "moto.sagemakerruntime.responses",
        "aws_lambda_powertools",
    } <= modules
    assert not [
        name
        for name in modules
        if any(name == left_out or name.startswith(f"{left_out}.") for left_out in NEVER_SHIPPED)
    ]
    assert any(name.endswith("resources/icons/app.svg") for name in files)
    assert any(name.endswith("lambdas/extract_image/index.py") for name in files)
    assert any(name.endswith("resources/templates/source.template.json") for name in files)
    # The sandbox deploys its endpoint stack from this template, its Lambda assets zipped from cloud-source/.
    assert any(name.endswith("resources/templates/endpoint-sandbox.template.json") for name in files)
    assert any(name.endswith("resources/templates/endpoint-sandbox.assets.json") for name in files)
    cloud_source = {name.partition("cloud-source/")[2] for name in files if "cloud-source/" in name}
    assert {"infra/config.toml", "infra/app.py", "lambdas/extract_image/index.py", "contract/keys.py"} <= cloud_source
    assert not [name for name in cloud_source if "__pycache__" in name or name.startswith("infra/tests")]
    assert not [name for name in files if "Qt6Quick" in name or "Qt6Qml" in name or "/translations/" in name]


@pytest.mark.skipif(
    not (sys.platform.startswith("linux") and shutil.which("icupkg")),
    reason="only the Linux PySide6 wheel ships ICU data; without icupkg it is left whole",
)
def test_the_linux_bundle_carries_trimmed_icu_data(built: Path) -> None:
    (library,) = (build_installer.bundle_dir(built) / "_internal/PySide6/Qt/lib").glob("libicudata.so.*")

    assert library.stat().st_size < 16e6


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the .tar.gz and install.sh are the Linux installer")
def test_install_sh_adds_the_app_to_the_menu_and_uninstall_removes_it(built: Path, tmp_path: Path) -> None:
    (archive,) = built.glob("diffusion-desk-*-linux-*.tar.gz")
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "unpacked", filter="tar")
    (folder,) = (tmp_path / "unpacked").iterdir()
    home = tmp_path / "home"
    env = _user_env(home)

    subprocess.run(["sh", str(folder / "install.sh")], env=env, check=True, capture_output=True)
    entry = home / ".local/share/applications/diffusion-desk.desktop"
    exec_line = next(line for line in entry.read_text().splitlines() if line.startswith("Exec="))
    installed = Path(exec_line.removeprefix("Exec=").strip('"'))
    assert installed.is_relative_to(home / ".local/opt")
    assert (home / ".local/share/icons/hicolor/256x256/apps/diffusion-desk.png").is_file()
    assert _run(installed, "--version", home=home).returncode == 0
    assert _run(home / ".local/bin/diffusion-desk", "--version", home=home).returncode == 0

    subprocess.run(["sh", str(folder / "install.sh"), "--uninstall"], env=env, check=True, capture_output=True)
    assert not entry.exists()
    assert not installed.exists()
    assert not (home / ".local/bin/diffusion-desk").exists()

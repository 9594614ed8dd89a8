"""Lambda code assets: one function directory plus the contract package, with its wheels.

Bundling runs pip locally for the Lambda platform (no Docker). The asset hash is computed from
the sources and the target platform, so it is the same on every machine and whether or not
bundling ran (tests skip it through the `aws:cdk:bundling-stacks` context).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

from infra.config import LambdaConfig

ROOT = Path(__file__).resolve().parents[2]
CONTRACT_DIR = ROOT / "contract"
#: What the contract package imports, installed into every function.
CONTRACT_REQUIREMENTS = ("numpy", "orjson", "pillow")


def _source_files(directory: Path):
    for path in sorted(directory.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            yield path


def source_hash(function_dir: Path, config: LambdaConfig) -> str:
    """A hash of the function's files, the contract's files and the target platform."""
    digest = hashlib.sha256(f"{config.runtime}/{config.architecture}".encode())
    for directory in (function_dir, CONTRACT_DIR):
        for path in _source_files(directory):
            digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()


@jsii.implements(ILocalBundling)
class PipBundling:
    """Copies the function and the contract into the asset and pip-installs manylinux wheels."""

    def __init__(self, function_dir: Path, config: LambdaConfig) -> None:
        self.function_dir = function_dir
        self.config = config

    def requirements(self) -> list[str]:
        listed = self.function_dir / "requirements.txt"
        own = [line.strip() for line in listed.read_text().splitlines()] if listed.exists() else []
        return sorted({*CONTRACT_REQUIREMENTS, *(line for line in own if line and not line.startswith("#"))})

    def try_bundle(self, output_dir: str, *, image=None, **_options) -> bool:
        out = Path(output_dir)
        shutil.copytree(self.function_dir, out, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(CONTRACT_DIR, out / "contract", ignore=shutil.ignore_patterns("__pycache__"))
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--platform",
                self.config.pip_platform,
                "--implementation",
                "cp",
                "--python-version",
                self.config.python_version,
                "--only-binary=:all:",
                "--target",
                str(out),
                *self.requirements(),
            ],
            check=True,
        )
        return True


def function_code(name: str, config: LambdaConfig) -> lambda_.Code:
    """The code asset of `lambdas/<name>/`, bundled with the contract and its wheels."""
    function_dir = ROOT / "lambdas" / name
    return lambda_.Code.from_asset(
        str(function_dir),
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=source_hash(function_dir, config),
        bundling=BundlingOptions(
            image=DockerImage.from_registry("unused-local-bundling-only"),
            local=PipBundling(function_dir, config),
        ),
    )

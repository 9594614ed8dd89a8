"""Lambda code assets: what gets installed, and a hash that depends on the sources alone."""

from __future__ import annotations

from dataclasses import replace

from infra.config import load_config
from infra.parts.function_code import ROOT, PipBundling, source_hash

FUNCTION = load_config().function


def test_each_function_gets_its_own_requirements_and_the_contracts():
    for name in ("save_message", "extract_image"):
        wanted = PipBundling(ROOT / "lambdas" / name, FUNCTION).requirements()
        assert {"numpy", "orjson", "pillow"} <= set(wanted)
        assert not any(line.startswith("#") for line in wanted)


def test_the_asset_hash_follows_sources_and_platform_not_the_machine():
    function_dir = ROOT / "lambdas" / "save_message"
    first = source_hash(function_dir, FUNCTION)
    cache = function_dir / "__pycache__"
    cache.mkdir(exist_ok=True)
    stray = cache / "zz_test_stray.cpython-311.pyc"
    stray.write_bytes(b"compiled on this machine")
    try:
        assert source_hash(function_dir, FUNCTION) == first
    finally:
        stray.unlink()
    other_arch = "x86_64" if FUNCTION.architecture == "arm64" else "arm64"
    assert source_hash(function_dir, replace(FUNCTION, architecture=other_arch)) != first
    assert source_hash(ROOT / "lambdas" / "extract_image", FUNCTION) != first

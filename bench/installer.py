"""Installer figures: bundle size, download size and the built program's start time to first window.

    .venv/bin/python bench/installer.py [--dist DIR] [--rebuild] [--runs 5]

Builds the installer into dist/ when it is not there (or with --rebuild), then starts the built
program offscreen. Prints one JSON object per line. Targets: bundle ≤ 150 MB, first window ≤ 2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import build_installer  # noqa: E402

TARGETS = {"bundle_mb": 150.0, "first_window_s": 2.0}
SHOWN = "window-shown"


def emit(metric: str, value: float | None, **extra: object) -> None:
    record: dict[str, object] = {
        "bench": "installer",
        "metric": metric,
        "value": None if value is None else round(value, 3),
    }
    if metric in TARGETS and value is not None:
        record["target"] = TARGETS[metric]
        record["ok"] = value <= TARGETS[metric]
    record.update(extra)
    print(json.dumps(record), flush=True)


def first_window(program: Path, env: dict[str, str]) -> float | None:
    """Seconds from launch to the app's `window-shown` line (`--measure-startup`); None if unsupported."""
    started = time.perf_counter()
    with subprocess.Popen(
        [str(program), "--measure-startup"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as child:
        for line in child.stdout:
            if line.strip() == SHOWN:
                shown = time.perf_counter() - started
                child.wait(timeout=60)
                return shown
        child.wait(timeout=60)
    return None


def timed(program: Path, env: dict[str, str], *args: str) -> float:
    started = time.perf_counter()
    subprocess.run([str(program), *args], env=env, check=True, capture_output=True, timeout=300)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", type=Path, default=ROOT / "dist")
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--runs", type=int, default=5, help="starts to take the median of")
    args = parser.parse_args(argv)
    dist = args.dist.resolve()
    program = build_installer.executable(dist)
    if args.rebuild or not program.exists():
        started, before = time.perf_counter(), os.times()
        build_installer.build(dist, ROOT / "build" / "installer")
        after = os.times()
        cpu = sum(after[:4]) - sum(before[:4])
        emit("build_s", time.perf_counter() - started, cpu_s=round(cpu, 1), cores=os.cpu_count())

    emit("bundle_mb", build_installer.folder_size(build_installer.bundle_dir(dist)) / 1e6)
    for package in sorted(dist.glob("*.tar.gz")) + sorted(dist.glob("*.exe")) + sorted(dist.glob("*.dmg")):
        emit("download_mb", package.stat().st_size / 1e6, file=package.name)

    with tempfile.TemporaryDirectory(prefix="diffusion-desk-bench-") as home:
        env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen"), "HOME": home}
        emit("version_s", statistics.median(timed(program, env, "--version") for _ in range(args.runs)))
        shown = [first_window(program, env) for _ in range(args.runs)]
        if None in shown:
            emit("first_window_s", None, note="the built program has no --measure-startup; see self_test_s")
        else:
            emit("first_window_s", statistics.median(shown), runs=args.runs, worst=round(max(shown), 3))
        emit("self_test_s", timed(program, env, "--self-test"), note="window, local cloud, one image, exit")
    return 0


if __name__ == "__main__":
    sys.exit(main())

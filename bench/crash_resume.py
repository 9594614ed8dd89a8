"""Invocations per job after a crash: kill `python -m app batch` (30 prompts) 0.5 s into sending, then run
`python -m app jobs` until every job is final. On AWS each invocation is a billed GPU run; the goal is one.

The CLI runs from `--source` (a checkout: compare main before and after a change); the local cloud, which
counts the invocations its endpoint accepted per job, runs here. Its settings make the look-before-resend
window short (a 60 s TTL and invocation timeout: 3 minutes), so the bench ends, and its endpoint answers in
0.1 s, as AWS's round trip takes about that. Figures as one JSON line (Lambda logs go to stderr and stdout).

    .venv/bin/python bench/crash_resume.py [--source DIR] [--prompts 30] [--kill-after 0.5]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.services.library.store import DATABASE_NAME  # noqa: E402
from app.services.local_cloud import LocalCloud  # noqa: E402
from app.services.settings import CONFIG_DIR_ENV, DATA_DIR_ENV, AppDirs, Settings, save_settings  # noqa: E402

FINISHED = {"completed", "failed", "expired", "cancelled", "lost"}


def _states(path: Path) -> dict[str, str]:
    """Each job's state, read as SQLite (not as this checkout's Library, which would migrate the `--source`'s)."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return dict(db.execute("SELECT inference_id, state FROM jobs"))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--source", type=Path, default=ROOT, help="the checkout whose CLI is run")
    parser.add_argument("--prompts", type=int, default=30)
    parser.add_argument("--kill-after", type=float, default=0.5, help="seconds after the first invocation")
    parser.add_argument("--answer-seconds", type=float, default=0.1, help="the endpoint's answer's round trip")
    parser.add_argument("--give-up", type=float, default=300.0, help="seconds of `jobs` runs before giving up")
    args = parser.parse_args()
    with LocalCloud() as cloud, tempfile.TemporaryDirectory() as tmp:
        cloud.provision("bench")
        dirs = AppDirs(Path(tmp) / "config", Path(tmp) / "data").create()
        save_settings(dirs, Settings(request_ttl_seconds=60, invocation_timeout_seconds=60))
        prompts = Path(tmp) / "prompts.txt"
        prompts.write_text("".join(f"a paper boat, take {n}\n" for n in range(args.prompts)), encoding="utf-8")
        env = {
            **os.environ,
            "PYTHONPATH": str(args.source),
            CONFIG_DIR_ENV: str(dirs.config_dir),
            DATA_DIR_ENV: str(dirs.data_dir),
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }
        cli = [sys.executable, "-m", "app", "--endpoint-url", cloud.endpoint_url, "--region", cloud.region]
        counts = cloud.emulator.invocations
        cloud.emulator.answer_seconds = args.answer_seconds
        batch = subprocess.Popen(
            [*cli, "batch", str(prompts), "--size", "64x64"],
            cwd=args.source,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        while not counts and batch.poll() is None:
            time.sleep(0.005)
        time.sleep(args.kill_after)
        batch.kill()
        batch.wait()
        at_kill = sum(counts.values())
        started, runs, said = time.monotonic(), 0, []
        while time.monotonic() - started < args.give_up:
            done = subprocess.run([*cli, "jobs"], cwd=args.source, env=env, capture_output=True, text=True)
            runs += 1
            said += [line for line in done.stderr.splitlines() if line.strip() and line not in said]
            if done.returncode:
                break
            cloud.wait_idle(30)
            jobs = _states(dirs.data_dir / DATABASE_NAME)
            if jobs and all(state in FINISHED for state in jobs.values()):
                break
            time.sleep(2)
        per_job = [counts[inference_id] for inference_id in jobs]
        print(
            orjson.dumps(
                {
                    "bench": "crash_resume",
                    "source": str(args.source),
                    "jobs": len(jobs),
                    "invocations_at_kill": at_kill,
                    "invocations": sum(per_job),
                    "jobs_invoked_twice_or_more": sum(1 for n in per_job if n > 1),
                    "jobs_never_invoked": sum(1 for n in per_job if n == 0),
                    "finished": sum(1 for state in jobs.values() if state in FINISHED),
                    "states": dict(Counter(jobs.values())),
                    "jobs_runs": runs,
                    "seconds": round(time.monotonic() - started, 1),
                    "said": said,
                }
            ).decode()
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

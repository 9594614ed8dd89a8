"""GUI benchmark: the window keeps repainting while 100 jobs are submitted from the composer.

    .venv/bin/python bench/gui_submit.py [--jobs 100]

Offscreen, on an in-process local cloud whose endpoint is held cold, so only submission is
measured (upload + InvokeEndpointAsync per job, on the task pool). A 5 ms heartbeat timer on
the GUI thread records the longest gap between its ticks. Prints one JSON line; target: no
GUI-thread stall above 50 ms. Wall-clock figures include whatever else the machine is doing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

HEARTBEAT_MS = 5
TARGET_STALL_MS = 50.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument(
        "--cloud-process",
        action="store_true",
        help="run the local cloud in its own process and the app in AWS mode against it "
        "(as with a real AWS account: only the client's own work shares the app's GIL)",
    )
    args = parser.parse_args(argv)

    from PySide6.QtCore import QTimer

    from app.services.local_cloud import LocalCloud
    from app.services.models import JobState
    from app.services.settings import AppDirs
    from app.ui.shell.context import AppContext
    from app.ui.shell.main import make_application
    from app.ui.shell.tasks import Task, manager
    from app.ui.shell.window import MainWindow

    app = make_application()
    server = cloud = None
    if args.cloud_process:
        server, endpoint_url = _cloud_process()
    else:
        cloud = LocalCloud(port=0, cold_start_seconds=3600).start()
        cloud.provision("bench")
    with tempfile.TemporaryDirectory(prefix="diffusion-desk-bench-") as tmp:
        dirs = AppDirs(Path(tmp) / "config", Path(tmp) / "data").create()
        if server is not None:
            context = AppContext.open(dirs, endpoint_url=endpoint_url)
            _use_target(context, endpoint_url)
        else:
            context = AppContext.open(dirs, sandbox=True, cloud=cloud, deployment="bench")
        window = MainWindow(context)
        window.resize(1440, 900)
        window.show()
        done: list[object] = []
        Task(None, context.connect, success=done.append).run()
        _spin(app, lambda: bool(done), 60)

        gaps: list[float] = []
        last = [time.perf_counter()]

        def beat() -> None:
            now = time.perf_counter()
            gaps.append((now - last[0]) * 1000)
            last[0] = now

        heartbeat = QTimer()
        heartbeat.setInterval(HEARTBEAT_MS)
        heartbeat.timeout.connect(beat)
        model = window.queue.model
        window.composer.prompt.set_text("a field of sunflowers, watercolour")
        heartbeat.start()
        started = time.perf_counter()
        last[0] = started
        for _ in range(args.jobs):
            window.composer.generate()
        _spin(app, lambda: model.rowCount() == args.jobs and all(j.state == JobState.QUEUED for j in model.jobs()), 300)
        seconds = time.perf_counter() - started
        heartbeat.stop()
        window.close()
        manager().wait(10_000)
        context.close()
    if cloud is not None:
        cloud.stop()
    if server is not None:
        server.terminate()
        server.wait(30)
    gaps.sort()
    longest = gaps[-1] if gaps else 0.0
    print(
        json.dumps(
            {
                "bench": "gui_submit",
                "cloud": "own process, app in AWS mode" if args.cloud_process else "in-process sandbox",
                "jobs": args.jobs,
                "submit_seconds": round(seconds, 2),
                "longest_gui_stall_ms": round(longest, 1),
                "p95_heartbeat_gap_ms": round(gaps[int(len(gaps) * 0.95)] if gaps else 0.0, 1),
                "heartbeats": len(gaps),
                "load_1m": round(os.getloadavg()[0], 2),
                "ok": longest <= TARGET_STALL_MS,
            }
        )
    )
    return 0


def _cloud_process():
    """`python -m app local-cloud` with a held-cold endpoint; returns the process and its URL."""
    import subprocess

    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    server = subprocess.Popen(
        [sys.executable, "-m", "app", "local-cloud", "--port", "0", "--deployment", "bench", "--cold-start", "3600"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[1],
    )
    for line in server.stdout:
        if line.startswith("endpoint_url="):
            return server, line.strip().split("=", 1)[1]
    raise SystemExit("bench/gui_submit: the local cloud did not start")


def _use_target(context, endpoint_url: str) -> None:
    """AWS mode with credentials from the environment and the local cloud's deployment as target."""
    from app.services.cloud.aws import Connection
    from app.services.cloud.credentials import CredentialSource
    from app.services.cloud.targets import load_target

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    target = load_target(Connection.open(CredentialSource(), region="us-east-1", endpoint_url=endpoint_url), "bench")
    settings = context.settings
    settings.mode, settings.region = "aws", "us-east-1"
    settings.targets, settings.active_target = [target.to_dict()], target.name


def _spin(app, condition, seconds: float) -> None:
    end = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > end:
            raise SystemExit("bench/gui_submit: the app did not reach the expected state in time")
        app.processEvents()
        time.sleep(0.001)


if __name__ == "__main__":
    sys.exit(main())

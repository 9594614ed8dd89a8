"""100 submissions on the local cloud through JobService.submit_many; target ≤ 5 s.

Each submission records the job (SQLite, synced), uploads requests/<id>.json and calls
InvokeEndpointAsync. Figures as JSON lines.

    .venv/bin/python bench/submit.py [--jobs 100] [--workers 8]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.services.cloud.aws import Connection, client_config  # noqa: E402
from app.services.cloud.credentials import CredentialSource  # noqa: E402
from app.services.cloud.targets import load_target  # noqa: E402
from app.services.jobs.service import JobService  # noqa: E402
from app.services.library.store import Library  # noqa: E402
from app.services.local_cloud import LocalCloud  # noqa: E402
from app.services.models import JobState  # noqa: E402

TARGET_SECONDS = 5.0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    with LocalCloud() as cloud, tempfile.TemporaryDirectory() as data:
        deployment = cloud.provision("bench", lambdas=False)
        cloud.cold_start_seconds = 3600  # the endpoint stays cold: only submission is measured
        connection = Connection(
            cloud.session(),
            CredentialSource(),
            region=cloud.region,
            endpoint_url=cloud.endpoint_url,
            config=client_config("adaptive"),
        )
        target = load_target(connection, deployment.name)
        library = Library(Path(data))
        service = JobService(library, connection, target, max_workers=args.workers)
        service.submit({"prompt": "warm the connection pool"})
        requests = [{"prompt": f"a lighthouse, variation {i}", "seed": i} for i in range(args.jobs)]
        started = time.perf_counter()
        jobs = service.submit_many(requests)
        seconds = time.perf_counter() - started
        queued = sum(1 for job in jobs if job.state == JobState.QUEUED)
        print(
            orjson.dumps(
                {
                    "bench": "submit",
                    "jobs": args.jobs,
                    "workers": args.workers,
                    "seconds": round(seconds, 2),
                    "ms_per_job": round(1000 * seconds / args.jobs, 1),
                    "queued": queued,
                    "target_seconds": TARGET_SECONDS,
                    "met": seconds <= TARGET_SECONDS and queued == args.jobs,
                }
            ).decode(),
            flush=True,
        )
        library.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

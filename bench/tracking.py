"""Tracking cost and delay with N jobs in flight on the local cloud, against a naive per-job poller.

For each N in {1, 10, 100, 500}: N jobs are recorded as sent, and earlier finished jobs sit in the
bucket as they would after a day's work. Figures (JSON lines):
- S3 requests per poll of the JobTracker (botocore event hooks count them) and of a naive poller
  that asks about each job (HEAD messages/<id>.json and HEAD images/<id>/manifest.json);
- the time of one poll for both;
- the delay between a job's status objects landing in S3 and the running tracker changing its state.

    .venv/bin/python bench/tracking.py [--sizes 1,10,100,500] [--samples 8]
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
from botocore.exceptions import ClientError
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.services.cloud.aws import Connection, client_config  # noqa: E402
from app.services.cloud.credentials import CredentialSource  # noqa: E402
from app.services.cloud.targets import load_target  # noqa: E402
from app.services.jobs.service import JobService  # noqa: E402
from app.services.jobs.tracker import JobTracker  # noqa: E402
from app.services.library.store import Library  # noqa: E402
from app.services.local_cloud import LocalCloud  # noqa: E402
from app.services.models import Job, JobState  # noqa: E402
from contract import (  # noqa: E402
    GenerationRequest,
    Manifest,
    build_notification,
    image_key,
    manifest_key,
    message_index_key,
    message_key,
    new_inference_id,
)

FINISHED_BEFORE = 300  # finished jobs already in the bucket, older than the ones in flight


def emit(**figures: object) -> None:
    print(orjson.dumps(figures).decode(), flush=True)


class Counter:
    """Counts the HTTP requests a client sends, by operation."""

    def __init__(self, client) -> None:
        self.calls: list[str] = []
        self._lock = threading.Lock()
        client.meta.events.register("before-send.s3", self._seen)

    def _seen(self, **kwargs) -> None:
        with self._lock:
            self.calls.append(kwargs["event_name"].rsplit(".", 1)[-1])

    def take(self) -> list[str]:
        with self._lock:
            calls, self.calls = self.calls, []
        return calls


def land(s3, bucket: str, region: str, endpoint: str, job: Job, png: bytes) -> None:
    """Write what the Lambdas write for a completed job: image, manifest (last), message and its index entry."""
    key = image_key(job.inference_id, 0)
    s3.put_object(Bucket=bucket, Key=key, Body=png)
    manifest = Manifest(job.inference_id, "completed", (key,), job.request.to_dict(), 64, 64)
    s3.put_object(Bucket=bucket, Key=manifest_key(job.inference_id), Body=manifest.to_json())
    note = build_notification(
        inference_id=job.inference_id,
        status="Completed",
        region=region,
        endpoint_name=endpoint,
        input_location=f"s3://{bucket}/requests/{job.inference_id}.json",
        received_time="",
        event_time="",
        output_location=f"s3://{bucket}/output/{job.inference_id}.out",
    )
    s3.put_object(Bucket=bucket, Key=message_key(job.inference_id), Body=orjson.dumps(note))
    s3.put_object(Bucket=bucket, Key=message_index_key(datetime.now(UTC), job.inference_id), Body=b"{}")


def naive_poll(s3, bucket: str, jobs: list[Job]) -> int:
    """The baseline: ask about every job in flight. Returns how many finished."""
    done = 0
    for job in jobs:
        for key in (message_key(job.inference_id), manifest_key(job.inference_id)):
            try:
                s3.head_object(Bucket=bucket, Key=key)
                done += 1
                break
            except ClientError:
                pass
    return done


def run_size(cloud: LocalCloud, n: int, samples: int, png: bytes) -> None:
    cloud.reset()
    deployment = cloud.provision(f"bench{n}", lambdas=False)
    internal = cloud.client("s3")
    with tempfile.TemporaryDirectory() as data:
        connection = Connection(
            cloud.session(),
            CredentialSource(),
            region=cloud.region,
            endpoint_url=cloud.endpoint_url,
            config=client_config("adaptive"),
        )
        target = load_target(connection, deployment.name)
        library = Library(Path(data))
        jobs_service = JobService(library, connection, target)
        changed_at: dict[str, float] = {}
        tracker = JobTracker(
            library,
            connection,
            target,
            jobs_service,
            on_change=lambda job: job.state.finished and changed_at.setdefault(job.inference_id, time.monotonic()),
        )
        old = [
            Job(new_inference_id(), GenerationRequest(f"old {i}", seed=i), target.name, state=JobState.COMPLETED)
            for i in range(FINISHED_BEFORE)
        ]
        for job in old:  # this installation's earlier jobs, finished and in the library
            land(internal, target.bucket, cloud.region, target.endpoint_name, job, png)
            library.add_job(job)
        flying = [
            Job(new_inference_id(), GenerationRequest(f"job {i}", seed=i), target.name, state=JobState.QUEUED)
            for i in range(n)
        ]
        for job in flying:
            library.add_job(job)
        counter = Counter(connection.s3)

        polls = []
        for _ in range(5):
            started = time.perf_counter()
            tracker.poll()
            polls.append((len(counter.take()), time.perf_counter() - started))
        naive_s3 = connection.client("s3")
        naive_counter = Counter(naive_s3)
        started = time.perf_counter()
        naive_poll(naive_s3, target.bucket, flying)
        naive_seconds = time.perf_counter() - started
        naive_requests = len(naive_counter.take())
        emit(
            bench="tracking",
            n=n,
            tracker_requests_per_poll=max(c for c, _ in polls),
            tracker_poll_ms=round(1000 * statistics.median(s for _, s in polls), 1),
            naive_requests_per_poll=naive_requests,
            naive_poll_ms=round(1000 * naive_seconds, 1),
        )

        # The delay: the tracker runs as in the app; status objects land for a few jobs.
        per_poll: list[list[str]] = []
        real_poll = tracker.poll

        def counted_poll():
            counter.take()
            try:
                return real_poll()
            finally:
                per_poll.append(counter.take())

        tracker.poll = counted_poll
        thread = threading.Thread(target=tracker.run, daemon=True)
        tracker.submitted()
        thread.start()
        sample = random.Random(n).sample(flying, min(samples, n))
        landed: dict[str, float] = {}
        for job in sample:
            time.sleep(random.uniform(0.2, 0.9))
            land(internal, target.bucket, cloud.region, target.endpoint_name, job, png)
            landed[job.inference_id] = time.monotonic()
        deadline = time.monotonic() + 60
        while len(set(landed) & set(changed_at)) < len(landed) and time.monotonic() < deadline:
            time.sleep(0.05)
        tracker.stop()
        thread.join(30)
        delays = [changed_at[i] - landed[i] for i in landed if i in changed_at]
        emit(
            bench="tracking-delay",
            n=n,
            samples=len(landed),
            seen=len(delays),
            delay_median_s=round(statistics.median(delays), 2) if delays else None,
            delay_max_s=round(max(delays), 2) if delays else None,
            polls=len(per_poll),
            max_list_requests_per_poll=max(c.count("ListObjectsV2") for c in per_poll),
            idle_poll_requests=min(len(c) for c in per_poll),
            fetches_per_finished_job=round(
                sum(len(c) - c.count("ListObjectsV2") for c in per_poll) / max(1, len(delays)), 1
            ),
        )
        library.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1,10,100,500")
    parser.add_argument("--samples", type=int, default=8)
    args = parser.parse_args()
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (20, 120, 200)).save(buf, "PNG")
    with LocalCloud() as cloud:
        for n in (int(s) for s in args.sizes.split(",")):
            run_size(cloud, n, args.samples, buf.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())

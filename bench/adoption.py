"""The cost of tracking an adopted guidance stack, which writes no time-ordered index.

For each N in {100, 1000, 5000} notifications already in `messages/` (UUID ids, as AWS assigns):
- S3 list requests and time of one full listing of messages/ (ForeignListing);
- S3 requests of a JobTracker poll on that stack when the full listing is due and when it is not
  (nothing in flight), and over one minute of polling at the fastest interval (1 s);
- the requests to notice 10 new results from elsewhere (listing + reading each notification and request).
Figures are JSON lines.

    .venv/bin/python bench/adoption.py [--sizes 100,1000,5000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.services.cloud.aws import Connection, client_config
from app.services.cloud.credentials import CredentialSource
from app.services.cloud.targets import Target
from app.services.jobs.foreign import (
    FULL_LISTING_INTERVAL,
    ForeignListing,
    listing_of,
)
from app.services.jobs.service import JobService
from app.services.jobs.tracker import JobTracker
from app.services.library.store import Library
from app.services.local_cloud import LocalCloud
from contract import GUIDANCE_APP_NAME, MESSAGES, build_notification


def emit(**figures: object) -> None:
    print(orjson.dumps(figures).decode(), flush=True)


def count_requests(client) -> list[str]:
    seen: list[str] = []
    client.meta.events.register("before-send.s3", lambda **kw: seen.append(kw.get("event_name", "").rsplit(".", 1)[-1]))
    return seen


def fill(cloud: LocalCloud, bucket: str, count: int) -> list[str]:
    """`count` notifications with their request objects, as the guidance's Lambda and script leave them."""
    s3 = cloud.client("s3")
    ids = [str(uuid.uuid4()) for _ in range(count)]

    def put(inference_id: str) -> None:
        note = build_notification(
            inference_id=inference_id,
            status="Completed",
            region=cloud.region,
            endpoint_name="epc",
            input_location=f"s3://{bucket}/requests/{inference_id}.json",
            received_time="2026-11-25T15:00:00Z",
            event_time="2026-11-25T15:00:05Z",
            output_location=f"s3://{bucket}/output/{inference_id}.out",
        )
        s3.put_object(Bucket=bucket, Key=f"{MESSAGES}{inference_id}.json", Body=orjson.dumps(note))
        s3.put_object(Bucket=bucket, Key=f"requests/{inference_id}.json", Body=b'{"prompt": "a red fox"}')

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, ids))
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100,1000,5000")
    args = parser.parse_args()
    with LocalCloud() as cloud, tempfile.TemporaryDirectory() as folder:
        for size in [int(n) for n in args.sizes.split(",")]:
            cloud.reset()
            bucket = f"guidance-bench-{size}"
            cloud.client("s3").create_bucket(Bucket=bucket)
            fill(cloud, bucket, size)
            connection = Connection(
                cloud.session(),
                CredentialSource(),
                region=cloud.region,
                endpoint_url=cloud.endpoint_url,
                config=client_config("standard", max_attempts=2),
            )
            calls = count_requests(connection.s3)
            listing = ForeignListing(connection.s3, bucket, since=datetime(2000, 1, 1, tzinfo=UTC))
            started = time.perf_counter()
            listing.new_ids(force=True)
            listing_ms = (time.perf_counter() - started) * 1000
            emit(
                bench="adoption.full_listing",
                objects=size,
                list_requests=calls.count("ListObjectsV2"),
                seen=listing.objects,
                ms=round(listing_ms, 1),
            )

            target = Target(
                f"bench-{size}", cloud.region, bucket, "epc", cloud.endpoint_url, f"bench-{size}", GUIDANCE_APP_NAME
            )
            library = Library(Path(folder) / str(size))
            jobs = JobService(library, connection, target)
            # Tracking began after these results were written: the listing reads them but none is new.
            tracker = JobTracker(
                library, connection, target, jobs, clock=lambda: datetime.now(UTC) + timedelta(hours=1)
            )
            calls.clear()
            tracker.poll()
            due = len(calls)
            calls.clear()
            tracker.poll()
            not_due = len(calls)
            per_minute = due + not_due * (int(FULL_LISTING_INTERVAL / tracker.FAST) - 1)
            emit(
                bench="adoption.poll",
                objects=size,
                requests_when_due=due,
                requests_when_not_due=not_due,
                requests_per_minute_at_1s=per_minute,
                full_listing_every_s=FULL_LISTING_INTERVAL,
            )

            tracker.clock = lambda: datetime.now(UTC)
            time.sleep(1.5)  # S3 times are whole seconds: the earlier objects stay older than `since`
            listing_of(tracker).since = datetime.now(UTC) - timedelta(seconds=1)
            fill(cloud, bucket, 10)
            listing_of(tracker).look_now()
            calls.clear()
            started = time.perf_counter()
            tracker.poll()
            emit(
                bench="adoption.ten_new_results",
                objects=size + 10,
                requests=len(calls),
                list_requests=calls.count("ListObjectsV2"),
                get_requests=calls.count("GetObject"),
                ms=round((time.perf_counter() - started) * 1000, 1),
            )
            library.close()


if __name__ == "__main__":
    main()

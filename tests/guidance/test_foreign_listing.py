"""The full listing of messages/ for stacks without an index: how often, what counts as new, what it costs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from app.services.jobs.foreign import ForeignListing


def test_a_full_listing_runs_once_per_interval_and_returns_each_new_id_once(cloud):
    s3, bucket = cloud.client("s3"), cloud.deployment.bucket
    now = [0.0]
    listing = ForeignListing(
        s3, bucket, since=datetime.now(UTC) - timedelta(minutes=10), interval=60, page_size=2, monotonic=lambda: now[0]
    )
    first = {str(uuid.uuid4()) for _ in range(3)}
    for inference_id in first:
        s3.put_object(Bucket=bucket, Key=f"messages/{inference_id}.json", Body=b"{}")
    assert listing.new_ids() == first
    assert (listing.requests, listing.objects) == (2, 3)  # ceil(3 / 2) pages
    later = str(uuid.uuid4())
    s3.put_object(Bucket=bucket, Key=f"messages/{later}.json", Body=b"{}")
    now[0] = 59.0
    assert listing.new_ids() == set() and listing.listings == 1
    now[0] = 60.0
    assert listing.new_ids() == {later} and listing.listings == 2


def test_results_written_before_tracking_began_are_not_new(cloud):
    s3, bucket = cloud.client("s3"), cloud.deployment.bucket
    s3.put_object(Bucket=bucket, Key=f"messages/{uuid.uuid4()}.json", Body=b"{}")
    listing = ForeignListing(s3, bucket, since=datetime.now(UTC) + timedelta(minutes=1))
    assert listing.new_ids() == set() and listing.objects == 1

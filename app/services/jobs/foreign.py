"""Noticing results on a stack that writes no time-ordered index (one made with the AWS guidance).

There the only record of a job from elsewhere is `messages/<id>.json`, and ids are UUIDs in no
order, so new ones are found by listing all of `messages/`: ceil(objects / 1000) list requests,
at most once a minute instead of every poll. Only objects written since tracking began (less
the tracker's index lag) count as new, as on our own stacks.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from contract import MESSAGES, id_from_key

#: A full listing of messages/ at most this often (seconds); the tracker's fastest poll is 1 s.
FULL_LISTING_INTERVAL = 60.0
PAGE_SIZE = 1000


class ForeignListing:
    """Lists every `messages/` key now and then and returns the ids it has not returned before."""

    def __init__(
        self,
        s3: Any,
        bucket: str,
        *,
        since: datetime,
        interval: float = FULL_LISTING_INTERVAL,
        page_size: int = PAGE_SIZE,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.since = since
        self.interval = interval
        self.page_size = page_size
        self.monotonic = monotonic
        self.listings = 0  # full listings made so far
        self.requests = 0  # list requests made by the latest listing
        self.objects = 0  # keys it saw
        self._next = 0.0
        self._returned: set[str] = set()

    def due(self) -> bool:
        return self.monotonic() >= self._next

    def look_now(self) -> None:
        """Make the next call list, whatever the interval (after the user presses Refresh)."""
        self._next = 0.0

    def new_ids(self, *, force: bool = False) -> set[str]:
        """Ids under messages/ written since `since` and not returned before; nothing when not due."""
        if not force and not self.due():
            return set()
        self._next = self.monotonic() + self.interval
        found: set[str] = set()
        requests = objects = 0
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=MESSAGES, PaginationConfig={"PageSize": self.page_size}
        )
        for page in pages:
            requests += 1
            for item in page.get("Contents", []):
                objects += 1
                modified = item.get("LastModified")
                if modified is not None and modified < self.since:
                    continue
                inference_id = id_from_key(item["Key"], MESSAGES)
                if inference_id and inference_id not in self._returned:
                    found.add(inference_id)
        self.listings += 1
        self.requests, self.objects = requests, objects
        self._returned |= found
        return found


_listings: weakref.WeakKeyDictionary[Any, ForeignListing] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def new_message_ids(tracker: Any) -> set[str]:
    """For JobTracker on a stack with no index: ids of results it has not seen, from a full listing once a minute."""
    with _lock:
        listing = _listings.get(tracker)
        if listing is None or listing.bucket != tracker.target.bucket:
            lag = getattr(tracker, "INDEX_LAG", timedelta(minutes=10))
            listing = ForeignListing(tracker.connection.s3, tracker.target.bucket, since=tracker.clock() - lag)
            _listings[tracker] = listing
    return listing.new_ids()


def listing_of(tracker: Any) -> ForeignListing | None:
    """The listing a tracker uses, to read its cost or force the next one (tests and benchmarks)."""
    with _lock:
        return _listings.get(tracker)

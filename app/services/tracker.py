"""Following jobs to the end: at most two S3 list requests per poll, whatever the number in flight.

A poll lists `images/` and `messages/` once each, starting after the smallest id in flight
(our ids sort by submission time, so that is the oldest job; any other id is still covered,
only the listing is longer). A manifest means the images are ready; a message without one is
read once, for a failure. Only jobs that changed cost further requests.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from s3transfer.exceptions import RetriesExceededError

from contract import (
    IMAGES,
    MANIFEST_NAME,
    MESSAGES,
    STATUS_FAILED,
    ManifestError,
    NotificationError,
    S3Location,
    id_from_key,
    manifest_key,
    message_key,
    parse_manifest,
    parse_notification,
)

from .aws import Connection, error_code, is_transient
from .errors import UserError
from .jobs import JobService
from .library import Library
from .models import Job, JobState
from .targets import Target

log = logging.getLogger(__name__)

EXPIRED_MARK = "Request expired"
MAX_REASON_CHARS = 2000


@dataclass(frozen=True, slots=True)
class TrackerStatus:
    """What the status bar says: online or not, how many jobs are in flight, when the next look is."""

    online: bool
    in_flight: int
    message: str
    next_poll_seconds: float


class JobTracker:
    """Polls one target's bucket and moves jobs to their final state. One poll at a time."""

    FAST, MEDIUM, SLOW, SLOWEST, IDLE = 1.0, 2.0, 5.0, 15.0, 30.0
    MAX_BACKOFF = 60.0

    def __init__(
        self,
        library: Library,
        connection: Connection,
        target: Target,
        jobs: JobService,
        *,
        on_change: Callable[[Job], None] | None = None,
        on_status: Callable[[TrackerStatus], None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        completed_grace: float = 300.0,
        page_size: int = 1000,
    ) -> None:
        self.library = library
        self.connection = connection
        self.target = target
        self.jobs = jobs
        self.on_change = on_change
        self.on_status = on_status
        self.clock = clock
        self.completed_grace = completed_grace
        self.page_size = page_size
        self.online = True
        self.in_flight = 0
        self._backoff = 0.0
        self._last_activity = time.monotonic()
        self._cursors: dict[str, str] = {}
        self._read_messages: set[str] = set()
        self._completed_at: dict[str, datetime] = {}
        self._poll_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()

    def submitted(self) -> None:
        """A job was just sent: poll fast again, starting now."""
        self._last_activity = time.monotonic()
        self.wake()

    def wake(self) -> None:
        """Poll now instead of waiting for the interval."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def run(self) -> None:
        """Poll until `stop()`; meant for one worker thread."""
        while not self._stop.is_set():
            self.step()
            self._wake.wait(self.interval())
            self._wake.clear()

    def step(self) -> list[Job]:
        """Send what is waiting to be sent (after a restart or an outage), then poll once."""
        resent = self.jobs.resume()
        if any(job.state in (JobState.PENDING, JobState.UPLOADING) for job in resent):
            self._went_offline(None)
            return []
        return self.poll()

    def interval(self) -> float:
        """Fast right after a submit or a change, slower during long waits, backing off when offline."""
        if not self.online:
            return self._backoff
        if not self.in_flight:
            return self.IDLE
        quiet = time.monotonic() - self._last_activity
        if quiet < 30:
            return self.FAST
        if quiet < 120:
            return self.MEDIUM
        if quiet < 600:
            return self.SLOW
        return self.SLOWEST

    def poll(self) -> list[Job]:
        """One look at the bucket; returns the jobs that changed. Never raises for AWS trouble."""
        with self._poll_lock:
            try:
                changed = self._poll()
            except (BotoCoreError, ClientError, RetriesExceededError) as exc:
                self._went_offline(exc)
                return []
            self.online, self._backoff = True, 0.0
            if changed:
                self._last_activity = time.monotonic()
            self._status("Online")
            return changed

    def _poll(self) -> list[Job]:
        unfinished = [job for job in self.library.unfinished_jobs() if job.target == self.target.name]
        self.in_flight = len(unfinished)
        queued = {job.inference_id: job for job in unfinished if job.state == JobState.QUEUED}
        if not queued:
            self._cursors.clear()
            return []
        start = min(queued)
        manifests = {i for key in self._list(IMAGES, start) if key.endswith("/" + MANIFEST_NAME) and (i := id_from_key(key, IMAGES))}
        messages = {i for key in self._list(MESSAGES, start) if (i := id_from_key(key, MESSAGES))}
        changed: list[Job] = []
        for inference_id, job in sorted(queued.items()):
            try:
                if inference_id in manifests:
                    result = self._finish(job)
                elif inference_id in messages and inference_id not in self._read_messages:
                    result = self._read_message(job)
                else:
                    result = self._check_overdue(job)
            except UserError as exc:
                result = self._update(job, state=JobState.FAILED, message=str(exc), failure_reason=str(exc))
            except ClientError as exc:
                if is_transient(exc):
                    raise
                reason = f"its result could not be downloaded ({error_code(exc)}: {exc.response.get('Error', {}).get('Message', '')})"
                result = self._update(job, state=JobState.FAILED, message=f"Failed: {reason}.", failure_reason=str(exc))
            except OSError as exc:
                log.warning("job %s: the images could not be saved: %s", inference_id, exc)
                result = self._update(job, message=f"The images could not be saved yet ({exc.strerror or exc}); trying again.")
            if result is not None:
                changed.append(result)
        self.in_flight = len(unfinished) - sum(1 for job in changed if job.state.finished)
        return changed

    def _list(self, prefix: str, start: str) -> list[str]:
        """One page of keys under `prefix` from the job `start` on; the next poll goes on from a truncated page."""
        first = prefix + start
        after = max(self._cursors.pop(prefix, ""), first)
        reply = self.connection.s3.list_objects_v2(Bucket=self.target.bucket, Prefix=prefix, StartAfter=after, MaxKeys=self.page_size)
        keys = [item["Key"] for item in reply.get("Contents", [])]
        if reply.get("IsTruncated") and keys:
            self._cursors[prefix] = keys[-1]
            self.wake()
        return keys

    def _finish(self, job: Job) -> Job:
        body = self._get(manifest_key(job.inference_id))
        try:
            manifest = parse_manifest(body, job.inference_id)
        except ManifestError as exc:
            return self._update(job, state=JobState.FAILED, message=f"The result could not be read: {exc}.", failure_reason=str(exc))
        if manifest.status == STATUS_FAILED:
            reason = manifest.reason or "the images could not be extracted from the model output"
            return self._update(job, state=JobState.FAILED, message=f"Failed: {reason}", failure_reason=reason)
        self._update(job, message="Downloading the images…", notify=False)
        records = self.library.download_job_images(job, self.connection.s3, self.target.bucket, manifest)
        self._completed_at.pop(job.inference_id, None)
        count = len(records)
        return self._update(job, state=JobState.COMPLETED, message=f"Done: {count} image{'s' if count != 1 else ''}.")

    def _read_message(self, job: Job) -> Job | None:
        body = self._get(message_key(job.inference_id))
        self._read_messages.add(job.inference_id)
        try:
            note = parse_notification(body)
        except NotificationError as exc:
            reason = f"the endpoint's notification could not be read ({exc})"
            return self._update(job, state=JobState.FAILED, message=f"Failed: {reason}.", failure_reason=reason)
        if note.completed:
            self._completed_at[job.inference_id] = self.clock()
            return self._update(job, message="Finished on the endpoint; preparing the images…", output_location=note.output_location or job.output_location)
        reason = note.failure_reason or "the endpoint gave no reason"
        details = self._failure_text(note.failure_location or job.failure_location)
        full = f"{reason}\n\n{details}" if details and details.strip() not in reason else reason
        if EXPIRED_MARK.lower() in reason.lower():
            return self._update(job, state=JobState.EXPIRED, message=f"Expired: it waited in the endpoint's queue too long. {reason}", failure_reason=full)
        return self._update(job, state=JobState.FAILED, message=f"Failed: {reason}", failure_reason=full)

    def _failure_text(self, location: str | None) -> str | None:
        if not location:
            return None
        try:
            where = S3Location.parse(location)
            body = self.connection.s3.get_object(Bucket=where.bucket, Key=where.key, Range=f"bytes=0-{MAX_REASON_CHARS * 4}")["Body"].read()
        except ValueError:
            return None
        except ClientError as exc:
            if is_transient(exc):
                raise
            return None
        return body.decode("utf-8", "replace")[:MAX_REASON_CHARS]

    def _check_overdue(self, job: Job) -> Job | None:
        now = self.clock()
        finished_at = self._completed_at.get(job.inference_id)
        if finished_at and (now - finished_at).total_seconds() > self.completed_grace:
            reason = "the endpoint finished, but its images never appeared in the bucket (the extract_image function may have failed)"
            return self._update(job, state=JobState.FAILED, message=f"Failed: {reason}.", failure_reason=reason)
        created = _parse_time(job.created_at)
        limit = timedelta(seconds=self.jobs.request_ttl + self.jobs.invocation_timeout + 60)
        if created and now - created > limit:
            hours = limit.total_seconds() / 3600
            reason = f"no result arrived within {hours:.1f} hours (its time to live), so the endpoint dropped or lost it"
            return self._update(job, state=JobState.EXPIRED, message=f"Expired: {reason}. Retry to send it again.", failure_reason=reason)
        return None

    def _get(self, key: str) -> bytes:
        try:
            return self.connection.s3.get_object(Bucket=self.target.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if is_transient(exc):
                raise
            raise UserError(f"The result {key} could not be read ({error_code(exc)}).") from None

    def _update(self, job: Job, *, notify: bool = True, **changes: Any) -> Job:
        updated = self.library.update_job(job.inference_id, **changes) or job
        if notify and self.on_change:
            self.on_change(updated)
        return updated

    def _went_offline(self, exc: BaseException | None) -> None:
        """`exc` None: jobs could not be sent for want of a network."""
        self.online = False
        self._backoff = min(self.MAX_BACKOFF, max(2.0, self._backoff * 2))
        if exc is None or is_transient(exc):
            log.info("offline (%s); next try in %.0f s", error_code(exc) if exc else "jobs not sent", self._backoff)
            self._status(f"Offline: retrying in {self._backoff:.0f} s")
        else:
            log.warning("tracker cannot read the bucket: %s", exc)
            self._status(f"Cannot read the bucket ({error_code(exc)}): retrying in {self._backoff:.0f} s")

    def _status(self, message: str) -> None:
        if self.on_status:
            self.on_status(TrackerStatus(self.online, self.in_flight, message, self.interval()))


def _parse_time(text: str) -> datetime | None:
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)

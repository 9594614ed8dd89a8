"""Following jobs to the end: at most two S3 list requests per poll, whatever the number in flight.

On our deployments a poll lists the time-ordered index `messages-by-time/` from the oldest job
in flight (or the last notification seen), which names every job that got a notification,
whatever its id: ours, or one sent from elsewhere (it is added to the library as REMOTE). Then,
only if some job in flight was notified, it lists `images/` from the smallest such id: a
manifest means the images are ready. A notification without a manifest is read once, for a
failure. A stack made with the AWS guidance writes no index: there `messages/` is listed from
the smallest id in flight instead. Only jobs that changed cost further requests.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from botocore.exceptions import BotoCoreError, ClientError
from s3transfer.exceptions import RetriesExceededError

from app.services.cloud.aws import Connection, error_code, is_transient
from app.services.cloud.targets import EndpointMissing, EndpointState, Target, endpoint_state
from app.services.errors import DiskFull, UserError
from app.services.jobs.foreign import new_message_ids
from app.services.jobs.service import OFFLINE, JobService
from app.services.library.store import Library, request_as_sent, unknown_fields
from app.services.models import Job, JobState, Origin
from contract import (
    APP_NAME,
    IMAGES,
    MANIFEST_NAME,
    MESSAGE_INDEX,
    MESSAGES,
    STATUS_FAILED,
    ManifestError,
    Notification,
    NotificationError,
    RequestError,
    S3Location,
    id_from_key,
    manifest_key,
    message_index_after,
    message_key,
    parse_manifest,
    parse_message_index_key,
    parse_notification,
)
from contract.families import SDXL, Family, family_named, family_of_request

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
    #: A sentence to show once, online or not: what resuming sends again, or waits for, and why.
    notice: bool = False


class JobTracker:
    """Polls one target's bucket and moves jobs to their final state. One poll at a time."""

    FAST, MEDIUM, SLOW, SLOWEST, IDLE = 1.0, 2.0, 5.0, 15.0, 30.0
    MAX_BACKOFF = 60.0
    #: How far back the index is read: notifications can be indexed late, clocks differ.
    INDEX_LAG = timedelta(minutes=10)
    #: Seconds between looks at the endpoint's state (for the status bar, and for jobs lost with it).
    ENDPOINT_EVERY = 20.0
    #: How far this computer's clock may be ahead of AWS's before a job looks sent to an endpoint made later.
    CLOCK_SKEW = timedelta(minutes=5)

    def __init__(
        self,
        library: Library,
        connection: Connection,
        target: Target,
        jobs: JobService,
        *,
        on_change: Callable[[Job], None] | None = None,
        on_status: Callable[[TrackerStatus], None] | None = None,
        on_endpoint: Callable[[EndpointState], None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        completed_grace: float = 300.0,
        page_size: int = 1000,
    ) -> None:
        self.library = library
        self.connection = connection
        self.target = target
        self.jobs = jobs
        self.on_change = on_change
        self.on_status = on_status
        self.on_endpoint = on_endpoint
        self.clock = clock
        self.completed_grace = completed_grace
        self.page_size = page_size
        self.online = True
        self.in_flight = 0
        self._backoff = 0.0
        self._last_activity = time.monotonic()
        self._cursors: dict[str, str] = {}
        self._polls = 0
        self._index_mark = clock()
        self._noted: set[str] = set()
        self._seen_ids: set[str] = set()
        self._unsettled: set[str] = set()
        self._read_messages: set[str] = set()
        self._notes: dict[str, Notification] = {}  # read while discovering a job: not read again
        self._completed_at: dict[str, datetime] = {}
        self._endpoint_due = 0.0  # monotonic time of the next look at the endpoint
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

    def refresh_endpoint(self) -> None:
        """Look at the endpoint's state at the next turn of the loop, which is now (any thread)."""
        self._endpoint_due = 0.0
        self.wake()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def run(self, until: Callable[[], bool] | None = None, *, deadline: float | None = None) -> bool:
        """Step at the interval `interval()` asks for, until `stop()` or, after a step, until `until()` holds;
        with a `deadline` (monotonic time), until then at the latest. Whether `until()` held.

        The one tracking loop: the app's session runs it on a thread of its own, the CLI to wait for its jobs.
        """
        while not self._stop.is_set():
            stepped = False
            try:
                self.step()
                stepped = True
            except Exception as exc:  # a bug or a full disk must not end tracking for good
                log.exception("tracking step failed")
                self._went_offline(exc)
            if until is not None and self._holds(until):  # after a failed step too: a wait may end on what it said
                return True
            if stepped:
                try:
                    self.look_at_endpoint()
                except Exception as exc:
                    log.exception("looking at the endpoint failed")
                    self._went_offline(exc)
            wait = self.interval()
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                wait = min(wait, left)
            self._wake.wait(wait)
            self._wake.clear()
        return False

    def _holds(self, until: Callable[[], bool]) -> bool:
        try:
            return until()
        except Exception as exc:  # as a failed step: said, backed off, tried again
            log.exception("the tracking loop's end condition failed")
            self._went_offline(exc)
            return False

    def refresh(self) -> list[Job]:
        """One step and a look at the endpoint now: what a one-shot command (`jobs`, `resend --lost`) knows after."""
        changed = self.step()
        self._endpoint_due = 0.0
        return changed + self.look_at_endpoint()

    def look_at_endpoint(self) -> list[Job]:
        """Every ENDPOINT_EVERY seconds, while someone listens or jobs are in flight: report the endpoint's state
        to `on_endpoint`, and mark LOST the jobs sent to an endpoint that no longer exists (or was made anew since).
        Returns the jobs lost; an unknown state is only logged."""
        if (self.on_endpoint is None and not self.in_flight) or time.monotonic() < self._endpoint_due:
            return []
        self._endpoint_due = time.monotonic() + self.ENDPOINT_EVERY
        unserved = self._lose_unserved()
        try:
            state = endpoint_state(self.connection, self.target)
        except EndpointMissing as exc:
            gone = f"the endpoint {self.target.endpoint_name!r} it was sent to no longer exists"
            return unserved + self._lose_sent(gone, exc) + self._look_at_companions()
        except Exception as exc:  # not knowing the endpoint's state must not end tracking
            log.info("Endpoint state unknown: %s", exc)
            return unserved
        lost = []
        if state.created_at is not None:
            lost = self._lose_sent(
                f"the endpoint {self.target.endpoint_name!r} was made anew since it was sent, without its queue",
                before=state.created_at - self.CLOCK_SKEW,
            )
        if self.on_endpoint is not None:
            self.on_endpoint(state)
        return unserved + lost + self._look_at_companions()

    def _lose_unserved(self) -> list[Job]:
        """Jobs sent to a model the deployment no longer has (an Update removed that companion: its endpoint and
        its SSM parameter are gone) become LOST: no endpoint of this target will ever answer them."""
        lost = []
        for job in self._sent_jobs():
            if self._endpoint_of(job) is None:
                try:
                    label = family_named(job.family).label
                except KeyError:
                    label = job.family
                deployment = self.target.deployment or self.target.name
                lost.append(self._lose(job, f"the deployment {deployment!r} no longer has its {label} model"))
        if lost:
            log.warning("%d job(s) lost: their deployment no longer has their model", len(lost))
        return lost

    def _look_at_companions(self) -> list[Job]:
        """The companion endpoints (upscaler, inpainting) that jobs in flight were sent to, looked at as the main
        one is: their jobs become LOST when the endpoint is gone or was made anew since."""
        lost: list[Job] = []
        sent_to = {self._endpoint_of(job) for job in self._sent_jobs()} - {self.target.endpoint_name, None}
        for endpoint in sorted(sent_to):
            try:
                state = endpoint_state(self.connection, replace(self.target, endpoint_name=endpoint))
            except EndpointMissing as exc:
                lost += self._lose_sent(
                    f"the endpoint {endpoint!r} it was sent to no longer exists", exc, endpoint=endpoint
                )
                continue
            except Exception as exc:
                log.info("Endpoint %s state unknown: %s", endpoint, exc)
                continue
            if state.created_at is not None:
                lost += self._lose_sent(
                    f"the endpoint {endpoint!r} was made anew since it was sent, without its queue",
                    before=state.created_at - self.CLOCK_SKEW,
                    endpoint=endpoint,
                )
        return lost

    def _endpoint_of(self, job: Job) -> str | None:
        """The endpoint a job of this target went to: the one serving its family, the main one or a companion;
        None when the deployment no longer serves its family."""
        return self.target.serving(job.family)

    def _sent_jobs(self) -> list[Job]:
        return [
            job
            for job in self.library.unfinished_jobs()
            if job.target == self.target.name and job.state in (JobState.INVOKING, JobState.QUEUED)
        ]

    def _lose_sent(
        self,
        why: str,
        exc: BaseException | None = None,
        *,
        before: datetime | None = None,
        endpoint: str | None = None,
    ) -> list[Job]:
        """Jobs of this target the endpoint (the main one by default) may hold (sent before `before`, when given)
        become LOST, saying `why`."""
        lost = []
        for job in self._sent_jobs():
            if self._endpoint_of(job) != (endpoint or self.target.endpoint_name):
                continue
            sent = _parse_time(job.sent_at or job.created_at)
            if before is not None and (sent is None or sent >= before):
                continue
            lost.append(self._lose(job, why))
        if lost:
            log.warning("%d job(s) lost: %s (%s)", len(lost), why, exc or "")
        return lost

    def _lose(self, job: Job, why: str) -> Job:
        return self._update(job, state=JobState.LOST, message=lost_message(why), failure_reason=why)

    def step(self) -> list[Job]:
        """Send what is waiting to be sent (after a restart or an outage), then poll once."""
        resent = self.jobs.resume()
        notice = self.jobs.take_notice()
        changed = self.poll()
        if notice:
            self._status(notice, notice=True)
        if self.online and any(job.state == JobState.UPLOADING and job.message == OFFLINE for job in resent):
            self._went_offline(None)  # once a step: the poll's own failure has said it and backed off already
        return changed

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
        queued = {job.inference_id: job for job in unfinished if job.state == JobState.QUEUED}
        self._polls += 1
        arrived: dict[str, Job] = {}
        if self.target.app == APP_NAME:
            noted = self._list_index(queued)
            arrived = self._discover(noted - queued.keys())
            queued.update(arrived)
            unfinished.extend(arrived.values())
            self._noted = (self._noted | noted) & queued.keys()
            # Every tenth poll looks from the oldest job in flight, in case an index entry never came.
            look_from = set(queued) if self._polls % 10 == 0 else self._noted
        else:
            # A stack made with the AWS guidance writes no index: jobs from elsewhere come from a full
            # listing now and then; ours from listing messages/ from the smallest id in flight.
            arrived = self._discover(new_message_ids(self))
            queued.update(arrived)
            unfinished.extend(arrived.values())
            look_from = set(queued)
            start = min(queued, default=None)
            self._noted = (
                {i for key in self._list(MESSAGES, MESSAGES + start) if (i := id_from_key(key, MESSAGES))}
                if start
                else set()
            )
        self.in_flight = len(unfinished)
        if not queued:
            self._cursors.pop(IMAGES, None)
            return list(arrived.values())
        manifests: set[str] = set()
        if look_from:
            keys = self._list(IMAGES, IMAGES + min(look_from))
            manifests = {i for key in keys if key.endswith("/" + MANIFEST_NAME) and (i := id_from_key(key, IMAGES))}
        changed: dict[str, Job] = dict(arrived)
        for inference_id, job in sorted(queued.items()):
            result = self._follow(job, inference_id in manifests)
            if result is not None:
                changed[inference_id] = result
        self._notes.clear()
        self.in_flight = len(unfinished) - sum(1 for job in changed.values() if job.state.finished)
        return list(changed.values())

    def _follow(self, job: Job, has_manifest: bool) -> Job | None:
        """One queued job's step this poll: finish it, read its notification, or check it is not overdue."""
        inference_id = job.inference_id
        try:
            if has_manifest:
                return self._finish(job)
            if inference_id in self._noted and inference_id not in self._read_messages:
                return self._read_message(job)
            return self._check_overdue(job)
        except DiskFull as exc:  # the images wait in the bucket: not a failure of the job
            log.warning("job %s: %s", inference_id, exc)
            return self._update(job, message=f"The images wait in the bucket: {exc} Trying again.")
        except UserError as exc:
            return self._fail(job, str(exc), str(exc))
        except ClientError as exc:
            if is_transient(exc):
                raise
            detail = exc.response.get("Error", {}).get("Message", "")
            reason = f"its result could not be downloaded ({error_code(exc)}: {detail})"
            return self._fail(job, f"Failed: {reason}.", str(exc))
        except OSError as exc:
            log.warning("job %s: the images could not be saved: %s", inference_id, exc)
            return self._update(
                job, message=f"The images could not be saved yet ({exc.strerror or exc}); trying again."
            )

    def _list_index(self, queued: dict[str, Job]) -> set[str]:
        """Ids with a notification since the oldest job in flight or the last one seen (one list request)."""
        since = self._index_mark - self.INDEX_LAG
        created = [t for job in queued.values() if (t := _parse_time(job.created_at))]
        if created:
            since = min(since, min(created) - self.INDEX_LAG)
        ids: set[str] = set()
        for key in self._list(MESSAGE_INDEX, message_index_after(since)):
            entry = parse_message_index_key(key)
            if entry:
                when, inference_id = entry
                ids.add(inference_id)
                self._index_mark = max(self._index_mark, when)
        return ids

    def adopt(self, ids: set[str]) -> list[Job]:
        """Add the jobs of these notified ids that the library does not know (a rebuilt library), to be followed."""
        with self._poll_lock:
            return list(self._discover(ids).values())

    def _discover(self, ids: set[str]) -> dict[str, Job]:
        """Jobs someone else sent to this deployment (another computer, the CLI, a script): add them."""
        new = (ids | self._unsettled) - self._seen_ids
        self._unsettled = new  # until read: an id whose read failed offline is tried again next poll
        if not new:
            return {}
        found: dict[str, Job] = {}
        self._seen_ids |= self.library.known_job_ids(new)
        for inference_id in sorted(new - self._seen_ids):
            try:
                job = self._remote_job(inference_id)
            except (UserError, ValueError) as exc:
                log.info("ignored job %s from elsewhere: %s", inference_id, exc)
                self._seen_ids.add(inference_id)
                continue
            self._seen_ids.add(inference_id)
            if self.library.add_job(job):
                found[inference_id] = job
                if self.on_change:
                    self.on_change(job)
        return found

    def _remote_job(self, inference_id: str) -> Job:
        note = parse_notification(self._get(message_key(inference_id)))
        self._notes[inference_id] = note
        body = self._read_location(note.input_location) if note.input_location else None
        try:
            data: Any = orjson.loads(body) if body is not None else {}
        except orjson.JSONDecodeError:
            data = {}
        data = data if isinstance(data, dict) else {}
        family = family_of_request(data)
        data = self._in_our_words(data, family)
        return Job(
            inference_id=inference_id,
            family=family.name,
            request=request_as_sent(data),
            target=self.target.name,
            state=JobState.QUEUED,
            created_at=_iso(note.received_time) or self.clock().isoformat(),
            input_location=note.input_location,
            output_location=note.output_location,
            message="Sent from another computer or script.",
            origin=Origin.REMOTE,
            unknown_fields=unknown_fields(data),
        )

    @staticmethod
    def _in_our_words(data: dict[str, Any], family: Family) -> dict[str, Any]:
        """An SDXL body (Stability's `text_prompts`, `steps`, `cfg_scale`) in the request's names, when it reads."""
        if family is not SDXL:
            return data
        try:
            request = SDXL.parse_request(data)
        except (RequestError, TypeError):
            return data
        return {
            "prompt": request.prompt,
            "negative_prompt": request.negative_prompt,
            "width": request.width,
            "height": request.height,
            "num_inference_steps": request.steps,
            "guidance_scale": request.cfg_scale,
            "seed": request.seed,
        }

    def _list(self, prefix: str, first: str) -> list[str]:
        """One page of keys under `prefix` after `first`; the next poll goes on from a truncated page."""
        after = max(self._cursors.pop(prefix, ""), first)
        reply = self.connection.s3.list_objects_v2(
            Bucket=self.target.bucket, Prefix=prefix, StartAfter=after, MaxKeys=self.page_size
        )
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
            return self._fail(job, f"The result could not be read: {exc}.", str(exc))
        if manifest.status == STATUS_FAILED:
            reason = manifest.reason or "the images could not be extracted from the model output"
            return self._fail(job, f"Failed: {reason}", reason)
        self._update(job, message="Downloading the images…", notify=False)
        records = self.library.download_job_images(job, self.connection.s3, self.target.bucket, manifest)
        self._completed_at.pop(job.inference_id, None)
        count = len(records)
        return self._update(job, state=JobState.COMPLETED, message=f"Done: {count} image{'s' if count != 1 else ''}.")

    def _read_message(self, job: Job) -> Job | None:
        note = self._notes.pop(job.inference_id, None)
        body = None if note else self._get(message_key(job.inference_id))
        self._read_messages.add(job.inference_id)
        try:
            note = note or parse_notification(body)
        except NotificationError as exc:
            reason = f"the endpoint's notification could not be read ({exc})"
            return self._fail(job, f"Failed: {reason}.", reason)
        if note.completed:
            self._completed_at[job.inference_id] = self.clock()
            return self._update(
                job,
                message="Finished on the endpoint; preparing the images…",
                output_location=note.output_location or job.output_location,
            )
        reason = note.failure_reason or "the endpoint gave no reason"
        details = self._failure_text(note.failure_location or job.failure_location)
        full = f"{reason}\n\n{details}" if details and details.strip() not in reason else reason
        if EXPIRED_MARK.lower() in reason.lower():
            return self._update(
                job,
                state=JobState.EXPIRED,
                message=f"Expired: it waited in the endpoint's queue too long. {reason}",
                failure_reason=full,
            )
        return self._fail(job, f"Failed: {reason}", full)

    def _failure_text(self, location: str | None) -> str | None:
        if not location:
            return None
        try:
            body = self._read_location(location, Range=f"bytes=0-{MAX_REASON_CHARS * 4}")
        except ValueError:
            return None
        return body.decode("utf-8", "replace")[:MAX_REASON_CHARS] if body is not None else None

    def _read_location(self, location: str, **options: str) -> bytes | None:
        """The object at an s3:// location, None when it cannot be read; transient errors are raised.

        ValueError when `location` is not an S3 location.
        """
        where = S3Location.parse(location)
        try:
            return self.connection.s3.get_object(Bucket=where.bucket, Key=where.key, **options)["Body"].read()
        except ClientError as exc:
            if is_transient(exc):
                raise
            return None

    def _check_overdue(self, job: Job) -> Job | None:
        now = self.clock()
        finished_at = self._completed_at.get(job.inference_id)
        if finished_at and (now - finished_at).total_seconds() > self.completed_grace:
            reason = (
                "the endpoint finished, but its images never appeared in the bucket "
                "(the extract_image function may have failed)"
            )
            return self._fail(job, f"Failed: {reason}.", reason)
        sent = _parse_time(job.sent_at or job.created_at)
        if sent and now - sent > self.jobs.look_window():
            return self._lose(
                job,
                f"no result arrived within {self.jobs.window_text()} of sending (its time to live and timeout), "
                "so the endpoint dropped it",
            )
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

    def _fail(self, job: Job, message: str, reason: str) -> Job:
        """The job FAILED: `message` for its row, `reason` in full for its details."""
        return self._update(job, state=JobState.FAILED, message=message, failure_reason=reason)

    def _went_offline(self, exc: BaseException | None) -> None:
        """Back off and say why; `exc` None: jobs could not be sent for want of a network."""
        self.online = False
        self._backoff = min(self.MAX_BACKOFF, max(2.0, self._backoff * 2))
        if isinstance(exc, UserError):  # a full disk, say: the user can act on it
            self._status(f"{exc} Retrying in {self._backoff:.0f} s.")
        elif exc is not None and not isinstance(exc, (BotoCoreError, ClientError, RetriesExceededError)):
            self._status(f"Tracking hit a problem (see the log): retrying in {self._backoff:.0f} s")
        elif exc is None or is_transient(exc):
            log.info("offline (%s); next try in %.0f s", error_code(exc) if exc else "jobs not sent", self._backoff)
            self._status(f"Offline: retrying in {self._backoff:.0f} s")
        else:
            log.warning("tracker cannot read the bucket: %s", exc)
            self._status(f"Cannot read the bucket ({error_code(exc)}): retrying in {self._backoff:.0f} s")

    def _status(self, message: str, *, notice: bool = False) -> None:
        if self.on_status:
            self.on_status(TrackerStatus(self.online, self.in_flight, message, self.interval(), notice))


def lost_message(why: str) -> str:
    """A LOST job's line: what happened, and the one command (or the queue's button) that sends it again."""
    return (
        f"Lost: {why}, so it will never finish. Resend it: the queue's Resend button, or `python -m app resend --lost`."
    )


def _iso(text: str | None) -> str | None:
    stamp = _parse_time(text) if text else None
    return stamp.isoformat(timespec="microseconds") if stamp else None


def _parse_time(text: str) -> datetime | None:
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)

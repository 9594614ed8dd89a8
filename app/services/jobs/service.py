"""Submitting jobs: validate, record locally, upload the request, invoke the async endpoint.

The job is in the library before anything touches the network, and every step is safe to
repeat, so a job interrupted at any point is resumed by `resume` without duplicates.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from app.services.cloud.aws import Connection, error_code, is_transient
from app.services.cloud.targets import Target, endpoint_state
from app.services.errors import UserError
from app.services.fields import field_message
from app.services.lanes import Lane, lane
from app.services.library.store import Library
from app.services.models import Job, JobState, Origin
from app.services.progress import Progress
from contract import (
    ACCEPT_RGB,
    MAX_SEED,
    Budget,
    BudgetError,
    GenerationRequest,
    RequestError,
    S3Location,
    message_key,
    new_inference_id,
    request_key,
)

log = logging.getLogger(__name__)

WARMING_UP = "Warming up: the endpoint is starting, the first image can take several minutes."
QUEUED = "Queued: waiting for the endpoint."
SENDING = "Sending the jobs"
OFFLINE = "Offline: it will be sent when the connection is back."
CANCELLED = (
    "Cancelled: this app stopped waiting. An asynchronous endpoint cannot stop a job it has "
    "accepted, so it may still run (and be billed); its images will not be downloaded."
)


class JobService:
    """Sends jobs to one target. Thread-safe; call it from worker threads, never the GUI thread."""

    def __init__(
        self,
        library: Library,
        connection: Connection,
        target: Target,
        *,
        accept: str | None = None,
        invocation_timeout: int = 3600,
        request_ttl: int = 6 * 3600,
        max_workers: int = 8,
        on_change: Callable[[Job], None] | None = None,
    ) -> None:
        self.library = library
        self.connection = connection
        self.target = target
        # Lossless RGB arrays on every deployment: a JPEG would re-encode every picture. Ours and the
        # guidance's Lambdas both decode them; `accept` may still ask for ACCEPT_JPEG.
        self.accept = accept or ACCEPT_RGB
        self.invocation_timeout = invocation_timeout
        self.request_ttl = request_ttl
        self.max_workers = max_workers
        self.on_change = on_change
        self._sending: set[str] = set()
        self._lock = threading.Lock()
        self._instances: tuple[float, int | None] = (0.0, None)

    @lane(Lane.NETWORK)
    def submit(self, request: GenerationRequest | dict[str, Any], *, retry_of: str | None = None) -> Job:
        """Validate, record and send one job; returns it queued, waiting offline, or failed with a message."""
        return self._send_claimed(self.record(request, retry_of=retry_of, claim=True))

    @lane(Lane.NETWORK)
    def submit_many(
        self,
        requests: Iterable[GenerationRequest | dict[str, Any]],
        progress: Callable[[Progress], None] | None = None,
        *,
        extra: dict[str, str] | None = None,
    ) -> list[Job]:
        """Record every job first (all or none: a bad one raises before anything is recorded), then send on a
        bounded pool.

        `progress` is called from the pool's threads with a Progress per job sent ("Sent 3 of 20").
        `extra` goes into every job's PNG parameters (the style, say).
        """
        requests = list(requests)
        many = len(requests) > 1
        validated = [
            validate_request(request, f"Request {n}: " if many else "", self.target.budget)
            for n, request in enumerate(requests, 1)
        ]
        jobs: list[Job] = []
        try:
            for request in validated:
                jobs.append(self.record(request, claim=True, extra=extra))
        except BaseException:  # a full disk: the jobs already recorded are left to `resume`
            with self._lock:
                self._sending.difference_update(job.inference_id for job in jobs)
            raise
        return self.send_many(jobs, progress, claimed=True)

    @lane(Lane.NETWORK)
    def submit_prepared(
        self, jobs: list[Job], record: Callable[[], object], progress: Callable[[Progress], None] | None = None
    ) -> list[Job]:
        """Send `prepare`d jobs that `record()` writes to the library (a sweep's, in one transaction).

        They are claimed before they are recorded, so the tracker's `resume` never sends them too.
        """
        ids = [job.inference_id for job in jobs]
        with self._lock:
            self._sending.update(ids)
        try:
            record()
        except BaseException:
            with self._lock:
                self._sending.difference_update(ids)
            raise
        return self.send_many(jobs, progress, claimed=True)

    @lane(Lane.NETWORK)
    def send_many(
        self, jobs: list[Job], progress: Callable[[Progress], None] | None = None, *, claimed: bool = False
    ) -> list[Job]:
        """Send recorded jobs on a bounded pool (a sweep's cells, a batch); each is safe to repeat.

        Jobs another thread is sending already are left to it (`claimed`: the caller holds them all).
        """
        if not claimed:
            with self._lock:
                jobs = [job for job in jobs if job.inference_id not in self._sending]
                self._sending.update(job.inference_id for job in jobs)
        total, done = len(jobs), 0
        done_lock = threading.Lock()

        def send(job: Job) -> Job:
            nonlocal done
            sent = self._send_claimed(job)
            with done_lock:
                done += 1
                step = done
            if progress:
                progress(Progress.counted(SENDING, step, total, f"Sent {step} of {total}"))
            return sent

        with ThreadPoolExecutor(max_workers=min(self.max_workers, max(total, 1)), thread_name_prefix="submit") as pool:
            return list(pool.map(send, jobs))

    def record(
        self,
        request: GenerationRequest | dict[str, Any],
        *,
        retry_of: str | None = None,
        claim: bool = False,
        extra: dict[str, str] | None = None,
    ) -> Job:
        """Validate the request (and its size against the endpoint's GPU) and record the job; nothing is sent yet.

        A random seed is chosen here, so the job can be reproduced and a resend after a crash
        draws the same images.
        """
        job = self.prepare(request, retry_of=retry_of, extra=extra)
        if claim:
            with self._lock:
                self._sending.add(job.inference_id)  # so `resume` leaves it to the caller
        try:
            self.library.add_job(job)
        except BaseException:
            with self._lock:
                self._sending.discard(job.inference_id)
            raise
        return job

    def prepare(
        self,
        request: GenerationRequest | dict[str, Any],
        *,
        retry_of: str | None = None,
        extra: dict[str, str] | None = None,
    ) -> Job:
        """The job `record` would record (validated, its seed chosen, its id new), not recorded yet.

        A sweep records all its cells' jobs with the sweep in one transaction.
        """
        request = validate_request(request, budget=self.target.budget)
        if request.seed is None:
            request = dataclasses.replace(request, seed=secrets.randbelow(MAX_SEED + 1))
        inference_id = new_inference_id()
        return Job(
            inference_id=inference_id,
            request=request,
            target=self.target.name,
            input_location=S3Location(self.target.bucket, request_key(inference_id)).uri,
            message="Waiting to be sent.",
            origin=Origin.LOCAL,
            retry_of=retry_of,
            extra=dict(extra or {}),
        )

    @lane(Lane.NETWORK)
    def send(self, job: Job) -> Job:
        """Upload the request and invoke the endpoint; safe to repeat for the same job."""
        with self._lock:
            if job.inference_id in self._sending:
                return job
            self._sending.add(job.inference_id)
        return self._send_claimed(job)

    def _send_claimed(self, job: Job) -> Job:
        try:
            return self._send(job)
        finally:
            with self._lock:
                self._sending.discard(job.inference_id)

    def is_sending(self, inference_id: str) -> bool:
        with self._lock:
            return inference_id in self._sending

    def _send(self, job: Job) -> Job:
        s3 = self.connection.s3
        key = request_key(job.inference_id)
        try:
            if job.state == JobState.UPLOADING:
                if self._exists(message_key(job.inference_id)):
                    # It was invoked and has already finished; the tracker picks up the result.
                    return self._update(job, state=JobState.QUEUED, message="Sent before the app stopped.")
                uploaded = self._exists(key)
            else:
                job = self._update(job, state=JobState.UPLOADING, message="Uploading the request…")
                uploaded = False
            if not uploaded:
                s3.put_object(
                    Bucket=self.target.bucket, Key=key, Body=job.request.to_json(), ContentType="application/json"
                )
            cold = self._instances_now() == 0
            reply = self.connection.client("sagemaker-runtime").invoke_endpoint_async(
                EndpointName=self.target.endpoint_name,
                InputLocation=S3Location(self.target.bucket, key).uri,
                InferenceId=job.inference_id,
                ContentType="application/json",
                Accept=self.accept,
                InvocationTimeoutSeconds=self.invocation_timeout,
                RequestTTLSeconds=self.request_ttl,
            )
        except (BotoCoreError, ClientError) as exc:
            return self._send_failed(job, exc)
        return self._update(
            job,
            state=JobState.QUEUED,
            output_location=reply.get("OutputLocation"),
            failure_location=reply.get("FailureLocation"),
            message=WARMING_UP if cold else QUEUED,
        )

    def _exists(self, key: str) -> bool:
        try:
            self.connection.s3.head_object(Bucket=self.target.bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def _send_failed(self, job: Job, exc: BaseException) -> Job:
        if is_transient(exc):
            log.info("job %s waits for the network: %s", job.inference_id, error_code(exc))
            return self._update(job, message=OFFLINE)
        log.warning("job %s could not be sent: %s", job.inference_id, exc)
        return self._update(job, state=JobState.FAILED, message=self._explain(exc), failure_reason=str(exc))

    def _explain(self, exc: BaseException) -> str:
        code, text = error_code(exc), str(exc)
        if code in ("NoSuchBucket",):
            return (
                f"Not sent: the bucket {self.target.bucket!r} does not exist. Deploy again, or choose another target."
            )
        if code in ("AccessDenied", "AccessDeniedException", "403"):
            return "Not sent: these AWS credentials may not submit to this deployment."
        if "not found" in text.lower() or "could not find" in text.lower():
            return (
                f"Not sent: the endpoint {self.target.endpoint_name!r} does not exist. "
                "Deploy again, or choose another target."
            )
        return f"Not sent: AWS refused the job ({code})."

    def _instances_now(self) -> int | None:
        """The endpoint's instance count, asked at most every 10 s (0 means it is scaled in)."""
        stamp, count = self._instances
        if time.monotonic() - stamp < 10:
            return count
        try:
            count = endpoint_state(self.connection, self.target).instances
        except (BotoCoreError, ClientError, UserError):
            count = None
        self._instances = (time.monotonic(), count)
        return count

    def waiting(self) -> list[Job]:
        """Jobs of this target recorded but not (surely) sent, and not being sent now; oldest first."""
        return [
            job
            for job in self.library.unfinished_jobs()
            if job.target == self.target.name
            and job.state in (JobState.PENDING, JobState.UPLOADING)
            and not self.is_sending(job.inference_id)
        ]

    @lane(Lane.NETWORK)
    def resume(self) -> list[Job]:
        """Send every waiting job (after a restart or an outage); returns them as they are now."""
        return [self.send(job) for job in self.waiting()]

    @lane(Lane.NETWORK)
    def retry(self, inference_id: str) -> Job:
        """Submit the same parameters again as a new job."""
        job = self._job(inference_id)
        return self._send_claimed(self.record(job.request, retry_of=job.inference_id, claim=True, extra=job.extra))

    def cancel(self, inference_id: str) -> Job:
        """Stop waiting for a job. The endpoint cannot abort it; the message says so."""
        job = self._job(inference_id)
        if job.state.finished:
            return job
        return self._update(job, state=JobState.CANCELLED, message=CANCELLED)

    def _job(self, inference_id: str) -> Job:
        job = self.library.get_job(inference_id)
        if job is None:
            raise UserError(f"There is no job {inference_id!r} in the library.")
        return job

    def _update(self, job: Job, **changes: Any) -> Job:
        updated = self.library.update_job(job.inference_id, **changes) or job
        if self.on_change:
            self.on_change(updated)
        return updated


def validate_request(
    request: GenerationRequest | dict[str, Any], where: str = "", budget: Budget | None = None
) -> GenerationRequest:
    """A GenerationRequest from fields, or UserError naming the field and its range (after `where`).

    With the target's `budget`, a request larger than its GPU can make is refused too, saying what fits.
    """
    if not isinstance(request, GenerationRequest):
        try:
            request = GenerationRequest.from_dict(request)
        except (RequestError, TypeError) as exc:
            raise UserError(f"{where}{field_message(exc)}.") from None
    if budget is not None:
        try:
            budget.check(request)
        except BudgetError as exc:
            raise UserError(f"{where}{field_message(exc)}.", hint="Ask for fewer images or a smaller size.") from None
    return request

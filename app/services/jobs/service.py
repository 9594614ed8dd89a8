"""Submitting jobs: validate, record locally, upload the request, invoke the async endpoint.

The job is in the library before anything touches the network, and every step is safe to
repeat, so a job interrupted at any point is resumed by `resume` without duplicates.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as NotConnected

from app.services.cloud.aws import Connection, error_code, is_transient
from app.services.cloud.targets import MAIN_ROLE, Target, endpoint_state
from app.services.cost.report import ColdStart, cold_start_estimate, role_label
from app.services.errors import UserError
from app.services.fields import field_message
from app.services.jobs.operations import Plan, SourceImage, plan_extend, plan_inpaint, plan_upscale
from app.services.lanes import Lane, lane
from app.services.library.schema import SOURCE_IMAGE
from app.services.library.store import Library, RequestMissing
from app.services.models import Job, JobState, Origin
from app.services.progress import Progress
from contract import (
    ACCEPT_RGB,
    FAILURES,
    MAX_SEED,
    OUTPUT,
    Budget,
    BudgetError,
    GenerationRequest,
    RequestError,
    S3Location,
    message_key,
    new_inference_id,
    object_listed,
    request_key,
)
from contract.families import INPAINT, SDXL, TEXT_TO_IMAGE, UPSCALE, Family, family_named

log = logging.getLogger(__name__)

#: The most jobs one batch may send: a 10,000-line file is refused, not sent (and billed) in one go.
MAX_BATCH = 1000
#: Seconds between reads of the endpoint's scaling history for the expected cold start.
COLD_START_EVERY = 300.0
#: Seconds a send lease holds a job for one app: another app on the library sends it only once that ran out
#: (or that app's process is gone).
SEND_LEASE = 300.0
#: The states in which a job is sent; one another app moved past them (invoking, queued, …) is not sent again.
SENDABLE = (JobState.PENDING, JobState.UPLOADING)

#: The queue's line for a job sent to an endpoint at zero instances; `warming_up` adds the expected wait.
WARMING_UP = "Warming up: the endpoint is starting an instance"
QUEUED = "Queued: waiting for the endpoint."
SENDING = "Sending the jobs"
OFFLINE = "Offline: it will be sent when the connection is back."
BUSY = "AWS is busy ({code}): it will be sent again shortly."
INVOKING = "Sending to the endpoint…"
NO_ANSWER = (
    "The endpoint did not answer in time, so it may have accepted the job: looking for it before sending it again."
)
MAY_HAVE_ARRIVED = (
    "It may have reached the endpoint before the app stopped: waiting for its result before sending it again."
)
REACHED = "It reached the endpoint before the app stopped: following it."
RESENT = "Sent again: nothing of it arrived within {window} of sending."
CANCELLED = (
    "Cancelled: this app stopped waiting. An asynchronous endpoint cannot stop a job it has "
    "accepted, so it may still run (and be billed); its images will not be downloaded."
)


class JobService:
    """Sends jobs to one target. Thread-safe; call it from worker threads, never the GUI thread."""

    #: Seconds between two looks in the bucket for a job that may have reached the endpoint (3 LIST requests).
    LOOK_EVERY = 10.0

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
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
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
        self.clock = clock
        self._sending: set[str] = set()  # claimed in this app; the library's send lease keeps other apps off
        self._owner = f"{os.getpid()}:{secrets.token_hex(4)}"
        self._next_look: dict[str, float] = {}  # monotonic time each INVOKING job is next looked for
        self._notice = ""
        self._said: tuple[frozenset[str], frozenset[str]] = (frozenset(), frozenset())
        self._lock = threading.Lock()
        self._instances: dict[str, tuple[float, int | None]] = {}  # by endpoint: (monotonic time, count)
        self._cold_starts: dict[str, tuple[float, ColdStart]] = {}  # by endpoint role: (monotonic time, estimate)

    @lane(Lane.NETWORK)
    def submit(
        self,
        request: GenerationRequest | dict[str, Any],
        *,
        retry_of: str | None = None,
        fields: dict[str, Any] | None = None,
    ) -> Job:
        """Validate, record and send one job; returns it queued, waiting offline, or failed with a message.

        On an SDXL endpoint (`Target.family`) the job is sent as SDXL's request, with the family's own `fields`
        (`sampler`, `style_preset`; None values are left out).
        """
        return self._send_claimed(self.record(request, retry_of=retry_of, claim=True, fields=fields))

    @lane(Lane.NETWORK)
    def upscale(
        self,
        source: SourceImage,
        *,
        prompt: str = "",
        negative_prompt: str = "",
        seed: int | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        noise_level: int = 20,
    ) -> Job:
        """Upscale `source` ×4 on the deployment's upscaler: checked, recorded, sent (UserError before anything
        is recorded when the upscaler is not deployed or the input is wrong)."""
        return self._send_tool(
            UPSCALE,
            plan_upscale,
            source,
            seed=seed,
            prompt=prompt,
            negative_prompt=negative_prompt,
            steps=steps,
            guidance=guidance,
            noise_level=noise_level,
        )

    @lane(Lane.NETWORK)
    def inpaint(
        self,
        source: SourceImage,
        mask_png: bytes,
        prompt: str,
        *,
        negative_prompt: str = "",
        seed: int | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        images: int = 1,
    ) -> Job:
        """Repaint the white of `mask_png` (a PNG or JPEG of the source's size) in `source` after `prompt`."""
        return self._send_tool(
            INPAINT,
            plan_inpaint,
            source,
            mask_png,
            seed=seed,
            prompt=prompt,
            negative_prompt=negative_prompt,
            steps=steps,
            guidance=guidance,
            images=images,
        )

    @lane(Lane.NETWORK)
    def extend(
        self,
        source: SourceImage,
        *,
        left: int = 0,
        right: int = 0,
        top: int = 0,
        bottom: int = 0,
        prompt: str,
        negative_prompt: str = "",
        seed: int | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        images: int = 1,
    ) -> Job:
        """Grow the canvas of `source` on the sides given (pixels) and fill the new area with the inpainting
        model after `prompt`; the original pixels are kept (operations.plan_extend)."""
        sides = {"left": left, "right": right, "top": top, "bottom": bottom}
        return self._send_tool(
            INPAINT,
            plan_extend,
            source,
            seed=seed,
            **sides,
            prompt=prompt,
            negative_prompt=negative_prompt,
            steps=steps,
            guidance=guidance,
            images=images,
        )

    def _send_tool(
        self, family: Family, plan_with: Callable[..., Any], *args: Any, seed: int | None, **given: Any
    ) -> Job:
        """Check that the deployment serves `family` (UserError before anything is recorded), plan the tool's job
        with its seed (chosen now when none is given) and the GPU budget of that family's endpoint, then record
        and send it."""
        self.target.endpoint_for(family.name)
        plan = plan_with(*args, seed=self._seed(seed, family), budget=self.target.budget_of(family.name), **given)
        return self._send_claimed(self._record(self._planned(plan), claim=True))

    @staticmethod
    def _seed(seed: int | None, family: Family) -> int:
        """The seed given, or a random one chosen now (so a resend draws the same images); SDXL's start at 1."""
        if seed is not None:
            return seed
        return secrets.randbelow(MAX_SEED) + 1 if family is SDXL else secrets.randbelow(MAX_SEED + 1)

    def _planned(self, plan: Plan, *, retry_of: str | None = None) -> Job:
        extra = dict(plan.extra)
        if plan.parent_image is not None and SOURCE_IMAGE not in extra:
            # the source's place in the library, in the PNG too: a rebuilt index finds the lineage again
            source = self.library.get_image(plan.parent_image)
            stored = self.library.stored_path(source.path) if source is not None else ""
            if stored and not os.path.isabs(stored):
                extra[SOURCE_IMAGE] = stored
        inference_id = new_inference_id()
        return Job(
            inference_id=inference_id,
            request=plan.request,
            target=self.target.name,
            input_location=S3Location(self.target.bucket, request_key(inference_id)).uri,
            message="Waiting to be sent.",
            origin=Origin.LOCAL,
            retry_of=retry_of,
            extra=extra,
            family=plan.family.name,
            operation=plan.operation,
            parent_image=plan.parent_image,
            body=plan.body,
        )

    @lane(Lane.NETWORK)
    def submit_many(
        self,
        requests: Iterable[GenerationRequest | dict[str, Any]],
        progress: Callable[[Progress], None] | None = None,
        *,
        extra: dict[str, str] | None = None,
        fields: dict[str, Any] | None = None,
    ) -> list[Job]:
        """Record every job first (all or none: a bad one raises before anything is recorded), then send on a
        bounded pool.

        `progress` is called from the pool's threads with a Progress per job sent ("Sent 3 of 20").
        `extra` goes into every job's PNG parameters (the style, say); `fields` are the endpoint family's own
        (SDXL's sampler and style preset), as `submit` takes them.
        """
        requests = list(requests)
        if len(requests) > MAX_BATCH:
            raise UserError(f"This batch has {len(requests)} prompts; at most {MAX_BATCH} are sent at once.")
        many = len(requests) > 1
        validated = [
            validate_request(request, f"Request {n}: " if many else "", self.target.budget)
            for n, request in enumerate(requests, 1)
        ]
        jobs: list[Job] = []
        try:
            for request in validated:
                jobs.append(self.record(request, claim=True, extra=extra, fields=fields))
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
        fields: dict[str, Any] | None = None,
    ) -> Job:
        """Validate the request (and its size against the endpoint's GPU) and record the job; nothing is sent yet.

        A random seed is chosen here, so the job can be reproduced and a resend after a crash
        draws the same images.
        """
        return self._record(self.prepare(request, retry_of=retry_of, extra=extra, fields=fields), claim=claim)

    def _record(self, job: Job, *, claim: bool = False) -> Job:
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
        fields: dict[str, Any] | None = None,
    ) -> Job:
        """The job `record` would record (validated, its seed chosen, its id new), not recorded yet.

        A sweep records all its cells' jobs with the sweep in one transaction. On an endpoint of another family
        than text to image (SDXL) the job carries that family's request body, made with its own `fields`.
        """
        family = self.target.model_family
        fields = {key: value for key, value in (fields or {}).items() if value is not None}
        if fields and family is TEXT_TO_IMAGE:
            raise UserError(f"This deployment's model ({family.label}) takes no {', '.join(sorted(fields))}.")
        request = validate_request(request, budget=self.target.budget)
        if request.seed is None:
            request = dataclasses.replace(request, seed=self._seed(None, family))
        inference_id = new_inference_id()
        body = None
        if family is not TEXT_TO_IMAGE:
            try:
                made = family.from_job(request, **fields)
                family.check_budget(made, self.target.budget)
            except BudgetError as exc:
                raise UserError(f"{field_message(exc)}.", hint="Ask for a smaller size.") from None
            except (RequestError, TypeError) as exc:
                raise UserError(f"{field_message(exc)}.") from None
            body = orjson.dumps(family.body(made))
        return Job(
            inference_id=inference_id,
            request=request,
            target=self.target.name,
            input_location=S3Location(self.target.bucket, request_key(inference_id)).uri,
            message="Waiting to be sent.",
            origin=Origin.LOCAL,
            retry_of=retry_of,
            extra=dict(extra or {}),
            family=family.name,
            body=body,
        )

    def again(self, job: Job) -> Job:
        """A new job (not recorded yet) sending `job`'s request again: the same body, seed, family and lineage.

        A job of another family than text to image sent from elsewhere has no body in the library: it is read
        from the bucket and checked as that family's request. UserError when it cannot be, or the deployment no
        longer serves its family.
        """
        if job.family == TEXT_TO_IMAGE.name:
            return self.prepare(job.request, retry_of=job.inference_id, extra=job.extra)
        try:
            family = family_named(job.family)
        except KeyError:
            raise UserError(f"Job {job.inference_id} is of a model family this app does not know.") from None
        self._endpoint(family)
        try:
            body = self.library.job_body(job.inference_id)
        except RequestMissing as exc:  # the bucket holds what was uploaded, if it was
            log.warning("job %s: %s; reading it from the bucket", job.inference_id, exc)
            body = None
        body = body or self._body_in_bucket(job, family)
        plan = Plan(family, job.request, body, job.operation, job.parent_image, dict(job.extra))
        return self._planned(plan, retry_of=job.inference_id)

    def _body_in_bucket(self, job: Job, family: Family) -> bytes:
        """The request of a job from elsewhere as this deployment's bucket holds it, checked as `family`'s."""
        key = request_key(job.inference_id)
        try:
            where = S3Location.parse(job.input_location or "")
            if where.bucket == self.target.bucket:
                key = where.key
        except ValueError:
            pass
        cannot = f"The request of job {job.inference_id} cannot be sent again"
        try:
            reply = self.connection.s3.get_object(Bucket=self.target.bucket, Key=key)
            raw = reply["Body"].read(family.max_request_bytes + 1)
        except (BotoCoreError, ClientError) as exc:
            raise UserError(f"{cannot}: it cannot be read from the bucket ({error_code(exc)}).") from None
        try:
            request = family.parse_request(raw)
        except (RequestError, TypeError) as exc:
            raise UserError(f"{cannot}: it is not one the {family.label} model takes ({exc}).") from None
        return orjson.dumps(family.body(request))

    @lane(Lane.NETWORK)
    def send(self, job: Job) -> Job:
        """Upload the request and invoke the endpoint; safe to repeat for the same job.

        A job INVOKING may have been accepted: it is left to `resume`, which looks for it before sending it again.
        """
        if job.state == JobState.INVOKING:
            return job
        with self._lock:
            if job.inference_id in self._sending:
                return job
            self._sending.add(job.inference_id)
        return self._send_claimed(job)

    def _send_claimed(self, job: Job) -> Job:
        try:
            return self._send_leased(job)
        finally:
            with self._lock:
                self._sending.discard(job.inference_id)

    def _send_leased(self, job: Job) -> Job:
        """Send the job only under its send lease, so another app on the same library (the GUI and the CLI) never
        sends it too; a job the other app holds, or already sent, is returned as the library has it."""
        inference_id = job.inference_id
        now = time.time()
        if not self.library.lease_send(inference_id, self._owner, now, now + SEND_LEASE):
            log.info("job %s is being sent by another app on this library; left to it", inference_id)
            return self.library.get_job(inference_id) or job
        try:
            current = self.library.get_job(inference_id)  # as it is now: the other app may have sent it meanwhile
            if current is None or current.state not in SENDABLE:
                return current or job
            return self._send(current)
        finally:
            try:
                self.library.release_send(inference_id, self._owner)
            except Exception:  # the send's result (or error) matters more; the lease runs out by itself
                log.warning("job %s: its send lease could not be given back", inference_id, exc_info=True)

    def is_sending(self, inference_id: str) -> bool:
        with self._lock:
            return inference_id in self._sending

    def _send(self, job: Job) -> Job:
        """Upload the request (again: a PUT of the same bytes is harmless), note INVOKING, then invoke once.

        INVOKING is on disk before InvokeEndpointAsync leaves the machine, so a job that may have been accepted
        is never sent again blindly (after a crash, or a call that got no answer): `resume` looks for it first.
        """
        key = request_key(job.inference_id)
        try:
            family, endpoint, body = self._what_to_send(job)
        except UserError as exc:
            log.warning("job %s cannot be sent: %s", job.inference_id, exc)
            return self._update(job, state=JobState.FAILED, message=f"Not sent: {exc}", failure_reason=str(exc))
        try:
            job = self._update(job, state=JobState.UPLOADING, message="Uploading the request…")
            self.connection.s3.put_object(Bucket=self.target.bucket, Key=key, Body=body, ContentType="application/json")
            cold = self._instances_now(endpoint) == 0
            # Read before the invocation: its own scale-out must not count among the cold starts it expects.
            if not cold:
                queued = QUEUED
            elif endpoint == self.target.endpoint_name:
                queued = warming_up(self._expected_cold_start(MAIN_ROLE))
            else:
                queued = warming_up(self._expected_cold_start(family.name), family)
            job = self._update(job, state=JobState.INVOKING, sent_at=self._now().isoformat(), message=INVOKING)
            # One attempt only (aws.ONE_ATTEMPT): botocore would send it again after a read timeout.
            reply = self.connection.client("sagemaker-runtime").invoke_endpoint_async(
                EndpointName=endpoint,
                InputLocation=S3Location(self.target.bucket, key).uri,
                InferenceId=job.inference_id,
                # output/<id>/… and failures/<id>/…: found by listing even when the answer never came.
                S3OutputPathExtension=job.inference_id,
                ContentType=family.content_type,
                Accept=self.accept if family is TEXT_TO_IMAGE else family.accept,
                InvocationTimeoutSeconds=self.invocation_timeout,
                RequestTTLSeconds=self.request_ttl,
            )
        except (BotoCoreError, ClientError) as exc:
            return self._send_failed(job, exc, endpoint)
        return self._update(
            job,
            state=JobState.QUEUED,
            output_location=reply.get("OutputLocation"),
            failure_location=reply.get("FailureLocation"),
            message=queued,
        )

    def _what_to_send(self, job: Job) -> tuple[Family, str, bytes]:
        """The job's family, the endpoint that serves it and the body to upload (the one recorded with the job)."""
        try:
            family = family_named(job.family)
        except KeyError:
            raise UserError(f"this app does not know the model family {job.family!r}.") from None
        endpoint = self._endpoint(family)
        if family is TEXT_TO_IMAGE:
            return family, endpoint, job.request.to_json()
        body = job.body if job.body is not None else self.library.job_body(job.inference_id)
        if body is None:
            raise UserError("its request is not in the library.")
        return family, endpoint, body

    def _endpoint(self, family: Family) -> str:
        if family is self.target.model_family:
            return self.target.endpoint_name
        return self.target.endpoint_for(family.name)

    def _send_failed(self, job: Job, exc: BaseException, endpoint: str) -> Job:
        if job.state == JobState.INVOKING and _may_have_arrived(exc):
            log.info("job %s: InvokeEndpointAsync got no answer (%s); it is looked for", job.inference_id, exc)
            return self._update(job, message=NO_ANSWER)
        if is_transient(exc):
            log.info("job %s waits for the network: %s", job.inference_id, error_code(exc))
            # AWS answered (throttled, 5xx): online, only busy; no answer at all is offline
            busy = isinstance(exc, ClientError)
            return self._update(
                job, state=JobState.UPLOADING, message=BUSY.format(code=error_code(exc)) if busy else OFFLINE
            )
        log.warning("job %s could not be sent: %s", job.inference_id, exc)
        return self._update(job, state=JobState.FAILED, message=self._explain(exc, endpoint), failure_reason=str(exc))

    def _explain(self, exc: BaseException, endpoint: str) -> str:
        code, text = error_code(exc), str(exc)
        if code in ("NoSuchBucket",):
            return (
                f"Not sent: the bucket {self.target.bucket!r} does not exist. Deploy again, or choose another target."
            )
        if code in ("AccessDenied", "AccessDeniedException", "403"):
            return "Not sent: these AWS credentials may not submit to this deployment."
        if "not found" in text.lower() or "could not find" in text.lower():
            return f"Not sent: the endpoint {endpoint!r} does not exist. Deploy again, or choose another target."
        return f"Not sent: AWS refused the job ({code})."

    def _instances_now(self, endpoint: str) -> int | None:
        """The endpoint's instance count, asked at most every 10 s (0 means it is scaled in)."""
        stamp, count = self._instances.get(endpoint, (0.0, None))
        if time.monotonic() - stamp < 10:
            return count
        try:
            count = endpoint_state(self.connection, dataclasses.replace(self.target, endpoint_name=endpoint)).instances
        except (BotoCoreError, ClientError, UserError):
            count = None
        self._instances[endpoint] = (time.monotonic(), count)
        return count

    def _expected_cold_start(self, role: str) -> ColdStart:
        """The recorded cold starts of the endpoint in `role` (main, or a companion's family), read at most every
        COLD_START_EVERY seconds for each (on the sender's worker, never the GUI thread)."""
        stamp, estimate = self._cold_starts.get(role, (0.0, None))
        if estimate is None or time.monotonic() - stamp >= COLD_START_EVERY:
            estimate = cold_start_estimate(self.connection, self.target, role=role)
            self._cold_starts[role] = (time.monotonic(), estimate)
        return estimate

    def waiting(self) -> list[Job]:
        """Jobs of this target recorded but never sent, and not being sent now (here or by another app on this
        library); oldest first."""
        elsewhere = self.library.sent_elsewhere(self._owner, time.time())
        return [
            job
            for job in self.library.unfinished_jobs()
            if job.target == self.target.name
            and job.state in (JobState.PENDING, JobState.UPLOADING)
            and not self.is_sending(job.inference_id)
            and job.inference_id not in elsewhere
        ]

    def look_window(self) -> timedelta:
        """How long after its InvokeEndpointAsync an accepted job has surely left a trace in the bucket.

        It waits in the endpoint's queue at most its TTL, then runs at most its invocation timeout, and either
        way ends with a notification (messages/<id>.json) and an output or failure object.
        """
        return timedelta(seconds=self.request_ttl + self.invocation_timeout + 60)

    @lane(Lane.NETWORK)
    def resume(self) -> list[Job]:
        """Send every job that was never sent, and look for those that may have been (after a restart, an
        outage, a call without an answer); returns them as they are now. `take_notice` says what was done."""
        unsent = self.waiting()
        looked = [self._look_for(job) for job in self._invoking() if self._look_due(job)]
        found = [job for job in looked if job.state == JobState.QUEUED]
        overdue = [job for job in looked if job.state == JobState.UPLOADING]
        waiting = self._invoking()
        self._say_resumed(unsent, found, overdue, waiting)
        return [self.send(job) for job in unsent + overdue] + found + waiting

    def take_notice(self) -> str:
        """What the `resume`s since the last call did and why ("" when there is nothing new to say)."""
        with self._lock:
            notice, self._notice = self._notice, ""
        return notice

    def _invoking(self) -> list[Job]:
        return [
            job
            for job in self.library.unfinished_jobs()
            if job.target == self.target.name
            and job.state == JobState.INVOKING
            and not self.is_sending(job.inference_id)
        ]

    def _look_due(self, job: Job) -> bool:
        """Each job that may have been accepted is looked for at most every LOOK_EVERY seconds."""
        now = time.monotonic()
        with self._lock:
            if now < self._next_look.get(job.inference_id, 0.0):
                return False
            self._next_look[job.inference_id] = now + self.LOOK_EVERY
            return True

    def _look_for(self, job: Job) -> Job:
        """An INVOKING job: QUEUED when the bucket shows it reached the endpoint, UPLOADING (to be sent again)
        when nothing showed within `look_window`, else still INVOKING.

        Asked by listing (contract.object_listed): under a grant limited by prefix a missing key answers 403.
        """
        s3, bucket, inference_id = self.connection.s3, self.target.bucket, job.inference_id
        try:
            if object_listed(s3, bucket, message_key(inference_id)):
                return self._update(job, state=JobState.QUEUED, message=REACHED)
            output = _first_key(s3, bucket, f"{OUTPUT}{inference_id}/")
            failure = _first_key(s3, bucket, f"{FAILURES}{inference_id}/")
        except (BotoCoreError, ClientError) as exc:
            if is_transient(exc):
                return job  # looked for again at a later turn, once online
            log.warning("job %s cannot be looked for (%s): it waits out its window", inference_id, error_code(exc))
            output = failure = None
        if output or failure:
            return self._update(
                job,
                state=JobState.QUEUED,
                message=REACHED,
                output_location=S3Location(bucket, output).uri if output else job.output_location,
                failure_location=S3Location(bucket, failure).uri if failure else job.failure_location,
            )
        sent = _parse_time(job.sent_at or job.updated_at) or self._now()
        if self._now() - sent > self.look_window():
            return self._update(job, state=JobState.UPLOADING, message=RESENT.format(window=self.window_text()))
        if job.message != MAY_HAVE_ARRIVED:
            job = self._update(job, message=MAY_HAVE_ARRIVED)
        return job

    def window_text(self) -> str:
        """`look_window` in words: "7.0 hours", or "3 min" when under an hour and a half."""
        seconds = self.look_window().total_seconds()
        return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} hours"

    def _say_resumed(self, unsent: list[Job], found: list[Job], overdue: list[Job], waiting: list[Job]) -> None:
        """Note what resume does and why, once per change (not at every turn of the tracker)."""
        said = (frozenset(job.inference_id for job in unsent), frozenset(job.inference_id for job in waiting))
        parts = []
        if unsent and said[0] != self._said[0]:
            parts.append(f"Resending {_count(len(unsent))} that {_were(len(unsent))} never sent.")
        if found:
            parts.append(f"{_count(len(found), True)} reached the endpoint before: following {_them(len(found))}.")
        if overdue:
            parts.append(
                f"Resending {_count(len(overdue))}: nothing of {_them(len(overdue))} arrived within "
                f"{self.window_text()} of sending."
            )
        if waiting and said[1] != self._said[1]:
            parts.append(
                f"{_count(len(waiting), True)} may have reached the endpoint: waiting for "
                f"{'their results' if len(waiting) != 1 else 'its result'} before resending."
            )
        with self._lock:
            self._said = said
            if parts:
                self._notice = " ".join([self._notice, *parts]).strip()

    def _now(self) -> datetime:
        return self.clock()

    def lost(self) -> list[Job]:
        """This target's LOST jobs not sent again yet (no job is a retry of them), oldest first."""
        retried = {job.retry_of for job in self.library.jobs() if job.retry_of}
        return [
            job
            for job in reversed(self.library.jobs([JobState.LOST]))
            if job.target == self.target.name and job.inference_id not in retried
        ]

    @lane(Lane.NETWORK)
    def resend(self, inference_ids: Iterable[str], progress: Callable[[Progress], None] | None = None) -> list[Job]:
        """Send these jobs' requests again as new jobs (same parameters and seed), each a retry of its old one.

        For jobs the endpoint will never answer (LOST), or any other; at most MAX_BATCH at once.
        """
        old = [self._job(inference_id) for inference_id in dict.fromkeys(inference_ids)]
        if len(old) > MAX_BATCH:
            raise UserError(f"That is {len(old)} jobs; at most {MAX_BATCH} are sent at once.")
        jobs: list[Job] = []
        try:
            for job in old:
                jobs.append(self._record(self.again(job), claim=True))
        except BaseException:
            with self._lock:
                self._sending.difference_update(job.inference_id for job in jobs)
            raise
        for before, new in zip(old, jobs, strict=False):
            self._take_cell(before, new)
            if before.state == JobState.LOST:
                self._update(before, message=f"Lost, and sent again as {new.inference_id}.")
        return self.send_many(jobs, progress, claimed=True)

    def _take_cell(self, before: Job, new: Job) -> None:
        """A sweep cell's job sent again: the new job takes the cell, so the sheet shows its image."""
        cell = self.library.sweep_of_job(before.inference_id)
        if cell is not None:
            self.library.replace_sweep_cell(*cell, new)

    @lane(Lane.NETWORK)
    def retry(self, inference_id: str) -> Job:
        """Submit the same parameters again as a new job."""
        job = self._job(inference_id)
        new = self._record(self.again(job), claim=True)
        self._take_cell(job, new)
        return self._send_claimed(new)

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


def _may_have_arrived(exc: BaseException) -> bool:
    """Whether a failed call may still have reached AWS: the request went out and no answer came back.

    A connection that never opened (botocore's ConnectionError) sent nothing, and an error answer is a refusal.
    """
    return isinstance(exc, HTTPClientError) and not isinstance(exc, NotConnected)


def _first_key(s3: object, bucket: str, prefix: str) -> str | None:
    """The first key under `prefix`, or None (one LIST request)."""
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1).get("Contents", [])  # type: ignore[attr-defined]
    return listed[0]["Key"] if listed else None


def _parse_time(text: str | None) -> datetime | None:
    try:
        stamp = datetime.fromisoformat((text or "").replace("Z", "+00:00"))
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def _count(n: int, capital: bool = False) -> str:
    text = f"{n} job{'s' if n != 1 else ''}"
    return text if not capital else text[0].upper() + text[1:]


def _were(n: int) -> str:
    return "were" if n != 1 else "was"


def _them(n: int) -> str:
    return "them" if n != 1 else "it"


def warming_up(estimate: ColdStart, companion: Family | None = None) -> str:
    """The queue's line while an instance starts: the wait that endpoint's cold starts measured, or why none.

    A companion (an upscale or inpainting job's endpoint) is named, and its own cold starts give the wait: it
    starts on its own instance type with its own model, so the main endpoint's say nothing of it."""
    line, who = WARMING_UP, "this deployment"
    if companion is not None:
        line, who = f"{WARMING_UP} ({companion.label})", f"the {role_label(companion.name)} endpoint"
    whose = f"{who}'s"
    if estimate.seconds is not None:
        wait = _duration(estimate.seconds)
        if estimate.count == 1:
            return f"{line}; expect about {wait} ({whose} one recorded cold start took that long)."
        return f"{line}; expect about {wait} (the median of {whose} last {estimate.count} cold starts)."
    if estimate.problem:
        return f"{line}. How long it takes is not known: {estimate.problem}."
    return f"{line}. {who[:1].upper()}{who[1:]} has no recorded cold start yet, so how long it takes is not known."


def _duration(seconds: float) -> str:
    return f"{max(1, round(seconds))} s" if seconds < 90 else f"{round(seconds / 60)} min"

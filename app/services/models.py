"""The records the services share: jobs and images, in the user's words."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from contract import GenerationRequest, Parameters


class JobState(str, enum.Enum):
    PENDING = "pending"  # recorded locally, nothing sent yet
    UPLOADING = "uploading"  # the request object is being written to S3; never sent to the endpoint
    INVOKING = "invoking"  # InvokeEndpointAsync was called (at `sent_at`) with no answer yet: it may have been accepted
    QUEUED = "queued"  # InvokeEndpointAsync accepted it; waiting for the endpoint
    COMPLETED = "completed"
    FAILED = "failed"
    EXPIRED = "expired"  # the endpoint said so: it waited in its queue past its TTL
    CANCELLED = "cancelled"  # we stopped waiting; the endpoint may still run it
    LOST = "lost"  # the endpoint will never answer (its TTL passed, the endpoint is gone): resend it

    @property
    def finished(self) -> bool:
        return self in _FINISHED


_FINISHED = {JobState.COMPLETED, JobState.FAILED, JobState.EXPIRED, JobState.CANCELLED, JobState.LOST}


class Origin(str, enum.Enum):
    LOCAL = "local"  # submitted by this installation
    REMOTE = "remote"  # found in the deployment: another computer, the CLI elsewhere, a script
    IMPORTED = "imported"  # a PNG the user brought in (Import, or dropped on the composer)


@dataclass(slots=True)
class Job:
    """One submission and everything known about it. Times are UTC ISO-8601 strings."""

    inference_id: str
    request: GenerationRequest
    target: str  # the Target's name
    state: JobState = JobState.PENDING
    created_at: str = ""
    updated_at: str = ""
    input_location: str | None = None
    output_location: str | None = None
    failure_location: str | None = None
    message: str = ""  # the latest status line for the user ("warming up…")
    failure_reason: str | None = None
    origin: Origin = Origin.LOCAL
    retry_of: str | None = None
    #: When InvokeEndpointAsync was last called for it (UTC ISO-8601): an INVOKING job is looked for until
    #: the endpoint must have answered, counted from here.
    sent_at: str | None = None
    image_paths: list[str] = field(default_factory=list)
    #: Request fields nobody told us (a job from elsewhere): `request` shows our defaults there,
    #: but they are never written into its images.
    unknown_fields: frozenset[str] = frozenset()
    #: What its PNGs' parameters say beyond the request (`Style`, `Sweep cell`): kept with the job, written on download.
    extra: dict[str, str] = field(default_factory=dict)
    #: The model family whose endpoint takes it (contract.families): "text-to-image", "upscale", "inpaint", "sdxl".
    family: str = "text-to-image"
    #: The tool that made it from an image ("upscale", "inpaint", "extend"); None for a job from a prompt.
    operation: str | None = None
    #: The library image it was made from (its images' "made from"), when the source is in the library.
    parent_image: int | None = None
    #: The family request's JSON body as sent (base64 images and all), for jobs of another family than text to
    #: image: set when the job is prepared and kept by the library with the job (`Library.job_body`); a job read
    #: back from the library leaves it None. A text-to-image job's body is `request.to_json()`.
    body: bytes | None = field(default=None, repr=False, compare=False)

    def known_request(self) -> dict[str, Any]:
        """The request's fields as sent (GenerationRequest names), without those nobody told us."""
        return {
            name: value
            for name, value in self.request.to_dict().items()
            if name not in self.unknown_fields and (value or name != "prompt")
        }


@dataclass(slots=True)
class ImageRecord:
    """One PNG in the library."""

    id: int | None
    path: str
    parameters: Parameters
    inference_id: str | None = None
    index: int = 0
    width: int = 0
    height: int = 0
    created_at: str = ""
    favourite: bool = False
    origin: Origin = Origin.LOCAL
    engine: str | None = None  # "sandbox" for test patterns, else the model id

"""jobs."""

from __future__ import annotations

from app.services.fields import field_message
from app.services.jobs.operations import SourceImage
from app.services.jobs.service import MAX_BATCH, JobService, validate_request
from app.services.jobs.tracker import JobTracker, TrackerStatus

__all__ = [
    "MAX_BATCH",
    "JobService",
    "JobTracker",
    "SourceImage",
    "TrackerStatus",
    "field_message",
    "validate_request",
]

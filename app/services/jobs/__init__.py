"""jobs."""

from __future__ import annotations

from app.services.fields import field_message
from app.services.jobs.service import JobService, validate_request
from app.services.jobs.tracker import JobTracker, TrackerStatus

__all__ = ["JobService", "JobTracker", "TrackerStatus", "field_message", "validate_request"]

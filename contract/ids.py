"""Inference ids: the ones we choose sort by submission time; any safe one is accepted."""

from __future__ import annotations

import secrets
import threading
from datetime import UTC, datetime, timedelta

MAX_ID_LENGTH = 64  # InvokeEndpointAsync's limit for InferenceId
_ID_TIME_FORMAT = "%Y%m%dT%H%M%S%fZ"
_last = datetime.min.replace(tzinfo=UTC)
_lock = threading.Lock()


def new_inference_id(now: datetime | None = None) -> str:
    """A new id that sorts after every id this process made before it.

    `20261125T145500123456Z-1a2b3c4d5e6f`: microsecond UTC time, then 48 random bits
    so that two computers sharing a deployment never collide.
    """
    global _last
    with _lock:
        stamp = now or datetime.now(UTC)
        if stamp <= _last:
            stamp = _last + timedelta(microseconds=1)
        _last = stamp
    return f"{stamp.strftime(_ID_TIME_FORMAT)}-{secrets.token_hex(6)}"


def id_time(inference_id: str) -> datetime | None:
    """The submission time encoded in one of our ids, or None for any other id."""
    head, _, _ = inference_id.partition("-")
    try:
        return datetime.strptime(head, _ID_TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


def check_inference_id(inference_id: object) -> str:
    """Return the id if it is safe as one S3 key segment, else raise ValueError.

    SageMaker accepts up to 64 printable characters; we also refuse `/`, `.`/`..`
    and anything a key segment could be abused with.
    """
    if not isinstance(inference_id, str) or not inference_id:
        raise ValueError("the inference id is empty")
    if len(inference_id) > MAX_ID_LENGTH:
        raise ValueError(f"the inference id is longer than {MAX_ID_LENGTH} characters")
    if inference_id in (".", ".."):
        raise ValueError("the inference id may not be '.' or '..'")
    if "/" in inference_id or "\\" in inference_id:
        raise ValueError("the inference id may not contain '/' or '\\'")
    if not inference_id.isprintable() or any(ch.isspace() for ch in inference_id):
        raise ValueError("the inference id has a control or space character")
    return inference_id


def is_safe_inference_id(inference_id: object) -> bool:
    try:
        check_inference_id(inference_id)
    except ValueError:
        return False
    return True

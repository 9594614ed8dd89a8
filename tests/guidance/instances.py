"""Helpers for tests of one or more app instances on the local cloud."""

from __future__ import annotations

from app.services.cloud.aws import Connection, client_config
from app.services.cloud.credentials import CredentialSource
from app.services.session import Session


def connect(cloud) -> Connection:
    return Connection(
        cloud.session(),
        CredentialSource(),
        region=cloud.region,
        endpoint_url=cloud.endpoint_url,
        config=client_config("standard", max_attempts=2, connect_timeout=2, read_timeout=20),
    )


def poll_until(workspace: Session, done, polls: int = 8) -> dict:
    """Poll (no sleeping: the local cloud is idle) until `done(found)` holds; returns every job that changed."""
    found: dict = {}
    for _ in range(polls):
        found.update({job.inference_id: job for job in workspace.tracker.poll()})
        if done(found):
            break
    return found

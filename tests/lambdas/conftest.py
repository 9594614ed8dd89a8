"""Fixtures for the Lambda tests: each handler wired to the local cloud's S3."""

from __future__ import annotations

import pytest
from lambda_events import Lambda, wire


@pytest.fixture
def save_message(cloud, monkeypatch) -> Lambda:
    return wire("save_message", cloud, monkeypatch)


@pytest.fixture
def extract_image(cloud, monkeypatch) -> Lambda:
    return wire("extract_image", cloud, monkeypatch)

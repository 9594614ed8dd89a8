"""The time-ordered index keys that save_message writes beside messages/<id>.json."""

from __future__ import annotations

import importlib.util
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from lambda_events import FakeContext, sns_event

from contract import MESSAGE_INDEX, message_index_key, parse_message_index_key


def test_index_keys_sort_by_utc_time_and_give_back_time_and_id():
    base = datetime(2026, 11, 25, 15, 0, 0, 250_000, tzinfo=UTC)
    ids = ["f47ac10b-58cc-4372-a567-0e02b2c3d479", "20261125T150000000000Z-1a2b3c4d5e6f", "job_with_underscores"]
    keys = [message_index_key(base + timedelta(seconds=10 - i), ids[i]) for i in range(3)]

    assert sorted(keys) == keys[::-1]
    assert parse_message_index_key(keys[2]) == (base + timedelta(seconds=8), "job_with_underscores")
    paris = timezone(timedelta(hours=1))
    assert message_index_key(base.astimezone(paris), "x") == message_index_key(base, "x")


@pytest.mark.parametrize(
    "key",
    [
        "messages/abc.json",
        f"{MESSAGE_INDEX}not-a-time_abc",
        f"{MESSAGE_INDEX}20261125T150000000000Z",
        f"{MESSAGE_INDEX}20261125T150000000000Z_..",
        f"{MESSAGE_INDEX}20261125T150000000000Z_a/b",
    ],
)
def test_keys_that_are_not_index_entries_parse_to_none(key):
    assert parse_message_index_key(key) is None


def test_an_index_key_needs_a_time_zone_and_a_safe_id():
    with pytest.raises(ValueError):
        message_index_key(datetime(2026, 11, 25, 15, 0), "abc")
    with pytest.raises(ValueError):
        message_index_key(datetime(2026, 11, 25, 15, 0, tzinfo=UTC), "../abc")


@pytest.mark.parametrize("name", ["save_message", "extract_image"])
def test_the_handlers_import_without_their_environment_and_say_what_is_missing(name, monkeypatch):
    monkeypatch.delenv("BUCKET_NAME", raising=False)
    path = Path(__file__).resolve().parents[2] / "lambdas" / name / "index.py"
    spec = importlib.util.spec_from_file_location(f"fresh_{name}", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)

    with pytest.raises(RuntimeError, match="BUCKET_NAME is not set"):
        module.lambda_handler(sns_event("{}"), FakeContext())

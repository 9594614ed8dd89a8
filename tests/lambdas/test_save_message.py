"""save_message: every notification is stored as sent, with a time-ordered index entry."""

from __future__ import annotations

import orjson
import pytest
from lambda_events import notification, sns_event

from contract import FAILED, MESSAGE_INDEX, message_key, new_inference_id, parse_message_index_key


def test_a_completed_notification_is_stored_exactly_as_sent_then_indexed_by_time(save_message):
    inference_id = new_inference_id()
    message = orjson.dumps(notification(inference_id, save_message.bucket), option=orjson.OPT_INDENT_2).decode()

    save_message(sns_event(message))

    assert save_message.get(message_key(inference_id)) == message.encode()
    [index_key] = [k for k in save_message.keys() if k.startswith(MESSAGE_INDEX)]
    when, indexed_id = parse_message_index_key(index_key)
    assert indexed_id == inference_id and when.isoformat() == "2026-11-25T15:00:01.250000+00:00"
    entry = orjson.loads(save_message.get(index_key))
    assert entry == {"inferenceId": inference_id, "invocationStatus": "Completed"}
    stored = [line for line in save_message.lines() if "Stored" in line["message"]]
    assert [line.get("inference_id") for line in stored] == [inference_id]


def test_a_failed_notification_is_stored_with_its_reason(save_message):
    inference_id = new_inference_id()
    message = notification(inference_id, save_message.bucket, status=FAILED, failure_reason="ModelError: no prompt")

    save_message(sns_event(message))

    assert orjson.loads(save_message.get(message_key(inference_id)))["failureReason"] == "ModelError: no prompt"


def test_the_index_lists_notifications_in_time_order_whatever_the_ids(save_message):
    late, early = "zzz-assigned-by-aws", "aaa-assigned-by-aws"
    save_message(
        sns_event(
            notification(late, save_message.bucket, event_time="2026-11-25T15:10:00.000Z"),
            notification(early, save_message.bucket, event_time="2026-11-25T15:20:00.000Z"),
        )
    )

    listed = [k for k in save_message.keys() if k.startswith(MESSAGE_INDEX)]
    assert [parse_message_index_key(k)[1] for k in listed] == [late, early]


def test_the_same_notification_twice_leaves_the_same_objects(save_message):
    message = orjson.dumps(notification(new_inference_id(), save_message.bucket)).decode()

    save_message(sns_event(message))
    first = {key: save_message.get(key) for key in save_message.keys()}
    save_message(sns_event(message))

    assert {key: save_message.get(key) for key in save_message.keys()} == first


@pytest.mark.parametrize(
    ("event", "logged"),
    [
        ({}, "without Records"),
        ({"Records": [{"EventSource": "aws:sns"}]}, "has no SNS message"),
        (sns_event("this is an SNS test message"), "not an inference notification"),
        (sns_event({"default": "test"}), "no inferenceId"),
        (sns_event({"inferenceId": "abc", "invocationStatus": "Pending"}), "unknown invocationStatus"),
        (sns_event({"inferenceId": "../etc", "invocationStatus": "Completed"}), "unsafe inference id"),
        (sns_event({"inferenceId": "a/b", "invocationStatus": "Completed"}), "unsafe inference id"),
        (sns_event({"inferenceId": "x" * 65, "invocationStatus": "Completed"}), "unsafe inference id"),
    ],
    ids=["no-records", "no-sns", "not-json", "no-inference-id", "unknown-status", "dot-dot-id", "slash-id", "long-id"],
)
def test_what_is_not_a_storable_notification_is_logged_and_writes_nothing(save_message, event, logged):
    save_message(event)

    assert save_message.keys() == []
    assert any(logged in line["message"] for line in save_message.lines())


def test_one_bad_record_does_not_stop_the_others(save_message):
    inference_id = new_inference_id()
    save_message(sns_event("not json", notification(inference_id, save_message.bucket)))

    assert message_key(inference_id) in save_message.keys()


def test_an_s3_error_is_raised_so_lambda_retries(save_message, monkeypatch):
    from botocore.exceptions import ClientError

    def slow_down(**_kwargs):
        raise ClientError({"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."}}, "PutObject")

    monkeypatch.setattr(save_message.s3, "put_object", slow_down)
    with pytest.raises(ClientError):
        save_message(sns_event(notification(new_inference_id(), save_message.bucket)))
    assert any("Lambda will retry" in line["message"] for line in save_message.lines())

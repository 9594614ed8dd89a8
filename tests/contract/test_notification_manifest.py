import orjson
import pytest

from contract import (
    Manifest,
    ManifestError,
    NotificationError,
    build_notification,
    parse_manifest,
    parse_notification,
)

JOB = "20261125T145500123456Z-abcdefabcdef"


def _message(**overrides):
    message = build_notification(
        inference_id=JOB,
        status="Completed",
        region="us-east-1",
        endpoint_name="ep",
        input_location="s3://b/requests/x.json",
        received_time="t0",
        event_time="t1",
        output_location="s3://b/output/u.out",
    )
    message.update(overrides)
    return message


def test_success_notification_is_parsed_with_unknown_fields_tolerated():
    note = parse_notification(orjson.dumps(_message(somethingNew={"a": 1})))
    assert note.completed and note.inference_id == JOB
    assert note.output_location == "s3://b/output/u.out"
    assert note.input_location == "s3://b/requests/x.json"


def test_failure_notification_carries_the_reason():
    note = parse_notification(_message(invocationStatus="Failed", failureReason="ClientError: boom"))
    assert note.failed and note.failure_reason == "ClientError: boom"


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1]",
        orjson.dumps({"Type": "SubscriptionConfirmation"}),
        orjson.dumps(_message(invocationStatus="Pending")),
        orjson.dumps(_message(inferenceId="../etc")),
    ],
)
def test_unusable_messages_raise(body):
    with pytest.raises(NotificationError):
        parse_notification(body)


def test_manifest_round_trip_and_guidance_form():
    ours = Manifest(JOB, "completed", (f"images/{JOB}/0.png",), {"prompt": "p"}, 512, 512, "now")
    assert parse_manifest(ours.to_json(), JOB) == ours
    guidance = parse_manifest(
        {"imageId": JOB, "prompt": "a red fox", "imageKeys": [f"images/{JOB}/a_red_fox_0.png"]}, JOB
    )
    assert guidance.guidance_form and guidance.status == "completed"
    assert guidance.request == {"prompt": "a red fox"}


@pytest.mark.parametrize(
    "data",
    [
        {"imageId": JOB, "prompt": "p"},
        {"imageId": JOB, "imageKeys": ["images/other/0.png"]},
        {"imageId": JOB, "imageKeys": [f"images/{JOB}/../../secret.png"]},
        {"status": "weird", "imageKeys": []},
    ],
)
def test_untrustworthy_manifests_are_refused(data):
    with pytest.raises(ManifestError):
        parse_manifest(data, JOB)

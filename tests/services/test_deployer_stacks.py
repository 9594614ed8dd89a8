"""Stack states moto's CloudFormation never reaches (it works synchronously and has no ContinueUpdateRollback):
a CloudFormation client with botocore's Stubber answering DescribeStacks, DescribeStackEvents,
ContinueUpdateRollback, GetTemplate, UpdateStack and DeleteStack as AWS does."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber

from app.services.deploy.stacks import Stacks
from app.services.errors import UserError

STACK_ID = "arn:aws:cloudformation:us-east-1:123456789012:stack/s/1"
TEMPLATE = json.dumps({"Resources": {"Bucket": {"Type": "AWS::S3::Bucket"}}})
WHEN = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


def stack(status: str) -> dict:
    return {"Stacks": [{"StackName": "s", "StackId": STACK_ID, "StackStatus": status, "CreationTime": WHEN}]}


def events(*items: tuple[str, str, str, str | None]) -> dict:
    """Newest first, as DescribeStackEvents lists them: (event id, logical id, status, reason)."""
    return {
        "StackEvents": [
            {
                "StackId": STACK_ID,
                "EventId": event_id,
                "StackName": "s",
                "LogicalResourceId": logical,
                "Timestamp": WHEN,
                "ResourceType": "AWS::CloudFormation::Stack" if logical == "s" else "AWS::S3::Bucket",
                "ResourceStatus": status,
                **({"ResourceStatusReason": reason} if reason else {}),
            }
            for event_id, logical, status, reason in items
        ]
    }


@pytest.fixture
def cloudformation():
    client = boto3.client("cloudformation", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def test_a_stack_busy_elsewhere_then_stuck_in_rollback_is_recovered_and_updated(cloudformation):
    client, stub = cloudformation
    stub.add_response("describe_stacks", stack("UPDATE_ROLLBACK_IN_PROGRESS"), {"StackName": "s"})
    stub.add_response("describe_stacks", stack("UPDATE_ROLLBACK_FAILED"), {"StackName": "s"})
    stub.add_response("describe_stack_events", events(("e1", "s", "UPDATE_ROLLBACK_FAILED", None)))
    stub.add_response("continue_update_rollback", {}, {"StackName": STACK_ID})
    stub.add_response(
        "describe_stack_events",
        events(("e2", "s", "UPDATE_ROLLBACK_COMPLETE", None), ("e1", "s", "UPDATE_ROLLBACK_FAILED", None)),
    )
    stub.add_response("describe_stacks", stack("UPDATE_ROLLBACK_COMPLETE"), {"StackName": STACK_ID})
    stub.add_response("describe_stacks", stack("UPDATE_ROLLBACK_COMPLETE"), {"StackName": "s"})
    stub.add_response("get_template", {"TemplateBody": json.dumps({"Resources": {}})})
    stub.add_response("describe_stack_events", events(("e2", "s", "UPDATE_ROLLBACK_COMPLETE", None)))
    stub.add_response("update_stack", {"StackId": STACK_ID})
    stub.add_response(
        "describe_stack_events",
        events(("e3", "Bucket", "CREATE_IN_PROGRESS", None), ("e2", "s", "UPDATE_ROLLBACK_COMPLETE", None)),
    )
    stub.add_response("describe_stacks", stack("UPDATE_IN_PROGRESS"), {"StackName": STACK_ID})
    stub.add_response(
        "describe_stack_events",
        events(
            ("e5", "s", "UPDATE_COMPLETE", None),
            ("e4", "Bucket", "CREATE_COMPLETE", None),
            ("e3", "Bucket", "CREATE_IN_PROGRESS", None),
        ),
    )
    stub.add_response("describe_stacks", stack("UPDATE_COMPLETE"), {"StackName": STACK_ID})
    naps = []

    lines = list(Stacks(client, poll_seconds=7, sleep=naps.append).deploy("s", TEMPLATE, resource_count=1))

    texts = [line.text for line in lines]
    assert texts[0] == "s: continuing the rollback of an update that failed earlier"
    assert "15:00:00  Bucket  AWS::S3::Bucket  CREATE_COMPLETE" in texts and texts[-1] == "s: UPDATE_COMPLETE"
    assert [line.fraction for line in lines if "Bucket" in line.text] == [0.0, 0.99]
    assert naps == [7, 7]


def test_a_bucket_that_refills_is_emptied_again_before_the_delete_is_retried(cloudformation):
    client, stub = cloudformation
    emptied = []
    stub.add_response("describe_stacks", stack("CREATE_COMPLETE"), {"StackName": "s"})
    stub.add_response("describe_stack_events", events(("e1", "s", "CREATE_COMPLETE", None)))
    stub.add_response("delete_stack", {}, {"StackName": STACK_ID})
    stub.add_response(
        "describe_stack_events",
        events(
            ("e3", "s", "DELETE_FAILED", "The following resource(s) failed to delete: [Bucket]."),
            ("e2", "Bucket", "DELETE_FAILED", "The bucket you tried to delete is not empty"),
            ("e1", "s", "CREATE_COMPLETE", None),
        ),
    )
    stub.add_response("describe_stacks", stack("DELETE_FAILED"), {"StackName": "s"})
    stub.add_response("describe_stacks", stack("DELETE_FAILED"), {"StackName": "s"})
    stub.add_response("describe_stack_events", events(("e3", "s", "DELETE_FAILED", None)))
    stub.add_response("delete_stack", {}, {"StackName": STACK_ID})
    stub.add_response(
        "describe_stack_events", events(("e4", "s", "DELETE_COMPLETE", None), ("e3", "s", "DELETE_FAILED", None))
    )
    stub.add_client_error(
        "describe_stacks", "ValidationError", "Stack with id s does not exist", expected_params={"StackName": "s"}
    )

    def empty_again():
        emptied.append(True)
        return iter(())

    lines = list(Stacks(client, sleep=lambda s: None).delete("s", before_retry=empty_again))

    assert emptied == [True]
    assert any("The bucket you tried to delete is not empty" in line.text for line in lines)
    assert lines[-1].text == "s: DELETE_COMPLETE"


def test_a_failed_delete_says_why_when_retrying_does_not_help(cloudformation):
    client, stub = cloudformation
    stub.add_response("describe_stacks", stack("CREATE_COMPLETE"), {"StackName": "s"})
    stub.add_response("describe_stack_events", events(("e1", "s", "CREATE_COMPLETE", None)))
    stub.add_response("delete_stack", {}, {"StackName": STACK_ID})
    stub.add_response(
        "describe_stack_events",
        events(("e2", "Bucket", "DELETE_FAILED", "Access Denied"), ("e1", "s", "CREATE_COMPLETE", None)),
    )
    stub.add_response("describe_stacks", stack("DELETE_FAILED"), {"StackName": "s"})

    with pytest.raises(
        UserError,
        match=r"could not finish the stack s \(DELETE_FAILED\): Bucket \(AWS::S3::Bucket\) failed: Access Denied",
    ):
        list(Stacks(client, sleep=lambda s: None).delete("s"))

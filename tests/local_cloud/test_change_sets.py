"""Change sets as CloudFormation keeps them: each belongs to its stack, and a missing one is ChangeSetNotFound.

The CDK CLI names every change set `cdk-deploy-change-set`, deletes it before each deploy whether it is
there or not, waits for DescribeChangeSet to answer ChangeSetNotFound, and executes by name and StackName.
"""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

NAME = "cdk-deploy-change-set"


def _template(topic: str) -> str:
    return json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": topic}}}})


@pytest.fixture
def cfn(local_cloud):
    local_cloud.reset()
    yield local_cloud.client("cloudformation")
    local_cloud.reset()


def _stack(cfn, name: str) -> str:
    return cfn.create_stack(StackName=name, TemplateBody=_template(f"{name}-a"))["StackId"]


def _change_set(cfn, stack: str, topic: str, kind: str = "UPDATE") -> str:
    return cfn.create_change_set(
        StackName=stack, ChangeSetName=NAME, ChangeSetType=kind, TemplateBody=_template(topic)
    )["Id"]


def _error(raised: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    response = raised.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Message"]


def test_two_stacks_change_sets_of_one_name_are_each_found_by_their_stack(cfn):
    first, second = _stack(cfn, "source"), _stack(cfn, "pipeline")
    ids = {"source": _change_set(cfn, "source", "source-b"), "pipeline": _change_set(cfn, "pipeline", "pipeline-b")}

    for stack, stack_id in (("source", first), ("pipeline", second)):
        found = cfn.describe_change_set(StackName=stack, ChangeSetName=NAME)
        assert (found["ChangeSetId"], found["StackId"]) == (ids[stack], stack_id)
        assert cfn.describe_change_set(StackName=stack_id, ChangeSetName=NAME)["ChangeSetId"] == ids[stack]
        assert cfn.describe_change_set(ChangeSetName=ids[stack])["StackName"] == stack
        listed = cfn.list_change_sets(StackName=stack)["Summaries"]
        assert [s["ChangeSetId"] for s in listed] == [ids[stack]]

    cfn.delete_change_set(StackName="source", ChangeSetName=NAME)
    assert cfn.describe_change_set(StackName="pipeline", ChangeSetName=NAME)["ChangeSetId"] == ids["pipeline"]


def test_a_deleted_or_never_made_change_set_is_change_set_not_found_and_deleting_none_succeeds(cfn):
    _stack(cfn, "pipeline")
    cfn.delete_change_set(StackName="pipeline", ChangeSetName=NAME)  # none there: the CDK CLI's cleanup
    _change_set(cfn, "pipeline", "pipeline-b")
    cfn.delete_change_set(StackName="pipeline", ChangeSetName=NAME)

    for ask in (cfn.describe_change_set, cfn.execute_change_set):
        with pytest.raises(ClientError) as missing:
            ask(StackName="pipeline", ChangeSetName=NAME)
        assert _error(missing) == ("ChangeSetNotFound", 404, f"ChangeSet [{NAME}] does not exist")
    with pytest.raises(ClientError) as nameless:
        cfn.describe_change_set(ChangeSetName=NAME)
    assert _error(nameless)[:2] == ("ValidationError", 400)


def test_a_change_set_name_is_unique_within_its_stack(cfn):
    _stack(cfn, "pipeline")
    _change_set(cfn, "pipeline", "pipeline-b")

    with pytest.raises(ClientError) as again:
        _change_set(cfn, "pipeline", "pipeline-c")
    assert _error(again)[:2] == ("AlreadyExistsException", 400)
    with pytest.raises(ClientError) as created:
        cfn.create_change_set(StackName="pipeline", ChangeSetName="other", TemplateBody=_template("p-c"))
    assert _error(created)[0] == "ValidationError" and "already exists" in _error(created)[2]


def test_executing_a_change_set_updates_its_stack_and_removes_the_stacks_other_change_sets(cfn, local_cloud):
    _stack(cfn, "source")
    _stack(cfn, "pipeline")
    executed = _change_set(cfn, "pipeline", "pipeline-b")
    cfn.create_change_set(
        StackName="pipeline", ChangeSetName="other", ChangeSetType="UPDATE", TemplateBody=_template("pipeline-c")
    )
    kept = _change_set(cfn, "source", "source-b")

    cfn.execute_change_set(StackName="pipeline", ChangeSetName=NAME)

    assert cfn.describe_stacks(StackName="pipeline")["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE"
    topics = {t["TopicArn"].rsplit(":", 1)[1] for t in local_cloud.client("sns").list_topics()["Topics"]}
    assert "pipeline-b" in topics and "pipeline-c" not in topics
    assert [s["ChangeSetId"] for s in cfn.list_change_sets(StackName="pipeline")["Summaries"]] == [executed]
    assert cfn.describe_change_set(ChangeSetName=executed)["ExecutionStatus"] == "EXECUTE_COMPLETE"
    with pytest.raises(ClientError) as twice:
        cfn.execute_change_set(ChangeSetName=executed)
    assert _error(twice)[:2] == ("InvalidChangeSetStatus", 400)
    assert cfn.describe_change_set(StackName="source", ChangeSetName=NAME)["ChangeSetId"] == kept


def test_a_create_change_set_makes_a_stack_in_review_and_deleting_the_stack_deletes_its_change_sets(cfn):
    made = _change_set(cfn, "endpoint", "endpoint-a", kind="CREATE")
    stack = cfn.describe_stacks(StackName="endpoint")["Stacks"][0]
    assert stack["StackStatus"] == "REVIEW_IN_PROGRESS"
    cfn.delete_change_set(ChangeSetName=made)
    again = cfn.create_change_set(
        StackName="endpoint", ChangeSetName=NAME, ChangeSetType="CREATE", TemplateBody=_template("endpoint-a")
    )
    assert again["StackId"] == stack["StackId"]  # the stack in review is reused, not made twice

    cfn.execute_change_set(StackName="endpoint", ChangeSetName=NAME)
    assert cfn.describe_stacks(StackName="endpoint")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    cfn.delete_stack(StackName="endpoint")
    with pytest.raises(ClientError) as gone:
        cfn.describe_change_set(ChangeSetName=again["Id"])
    assert _error(gone)[0] == "ChangeSetNotFound"


def _cdk_template(topic: str) -> str:
    """A CDK stack's shape: BootstrapVersion read from SSM by its default path."""
    parameter = {"Type": "AWS::SSM::Parameter::Value<String>", "Default": "/cdk-bootstrap/hnb659fds/version"}
    resources = {"Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": topic}}}
    return json.dumps({"Parameters": {"BootstrapVersion": parameter}, "Resources": resources})


def test_a_previous_value_is_the_one_the_stack_was_given_not_what_ssm_resolved_it_to(cfn, local_cloud):
    """The CDK CLI updates a stack with BootstrapVersion's UsePreviousValue: the SSM path, not its content."""
    local_cloud.client("ssm").put_parameter(Name="/cdk-bootstrap/hnb659fds/version", Value="30", Type="String")
    cfn.create_stack(StackName="source", TemplateBody=_cdk_template("source-a"))
    previous = [{"ParameterKey": "BootstrapVersion", "UsePreviousValue": True}]

    cfn.create_change_set(
        StackName="source",
        ChangeSetName=NAME,
        ChangeSetType="UPDATE",
        TemplateBody=_cdk_template("source-b"),
        Parameters=previous,
    )
    cfn.execute_change_set(StackName="source", ChangeSetName=NAME)
    assert cfn.describe_stacks(StackName="source")["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE"
    cfn.update_stack(StackName="source", TemplateBody=_cdk_template("source-c"), Parameters=previous)
    assert cfn.describe_stacks(StackName="source")["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE"
    topics = {t["TopicArn"].rsplit(":", 1)[1] for t in local_cloud.client("sns").list_topics()["Topics"]}
    assert "source-c" in topics

    with pytest.raises(ClientError) as unknown:
        cfn.create_change_set(
            StackName="source",
            ChangeSetName="other",
            ChangeSetType="UPDATE",
            TemplateBody=_cdk_template("source-d"),
            Parameters=[*previous, {"ParameterKey": "Other", "UsePreviousValue": True}],
        )
    assert _error(unknown)[0] == "ValidationError" and "not in the previous template" in _error(unknown)[2]

"""The budget guard in the synthesized endpoint stack: the budget, its alerts, the long-run alarm and its topic."""

from __future__ import annotations

from dataclasses import replace

import pytest
from aws_rules import resources_of

from contract import DEPLOYMENT_TAG
from infra.config import load_config

#: One synthesis per session: keep every test that reads it on one xdist worker.
pytestmark = pytest.mark.xdist_group("synthesis")

CONFIG = load_config()
ALERT_EMAIL = "designer@example.com"  # the session synthesis's address (conftest.py)


@pytest.fixture(scope="module")
def endpoint(synthesis) -> dict:
    return synthesis.templates["endpoint"]


def _one(template: dict, kind: str, having: str = "") -> tuple[str, dict]:
    found = {k: r for k, r in resources_of(template, kind).items() if having in k}
    assert len(found) == 1, sorted(found)
    return next(iter(found.items()))


def test_the_budget_is_a_monthly_cost_limit_on_the_deployments_tag(endpoint):
    _, budget = _one(endpoint, "AWS::Budgets::Budget")
    data = budget["Properties"]["Budget"]

    assert (data["BudgetType"], data["TimeUnit"]) == ("COST", "MONTHLY")
    assert data["BudgetLimit"] == {"Amount": CONFIG.guard.monthly_limit, "Unit": "USD"}
    assert data["CostFilters"] == {"TagKeyValue": [f"user:{DEPLOYMENT_TAG}${CONFIG.deployment}"]}
    assert data["BudgetName"] == f"diffusion-desk-{CONFIG.deployment}-monthly" and ":" not in data["BudgetName"]


def test_the_budget_emails_the_address_at_80_and_100_percent_of_actual_spend(endpoint):
    _, budget = _one(endpoint, "AWS::Budgets::Budget")
    alerts = budget["Properties"]["NotificationsWithSubscribers"]

    assert sorted(a["Notification"]["Threshold"] for a in alerts) == [80, 100]
    for alert in alerts:
        assert alert["Notification"]["NotificationType"] == "ACTUAL"
        assert alert["Notification"]["ThresholdType"] == "PERCENTAGE"
        assert alert["Notification"]["ComparisonOperator"] == "GREATER_THAN"
        assert alert["Subscribers"] == [{"Address": ALERT_EMAIL, "SubscriptionType": "EMAIL"}]


def test_the_alarm_fires_after_the_configured_hours_of_instance_samples_in_a_row(endpoint):
    _, alarm = _one(endpoint, "AWS::CloudWatch::Alarm", "InServiceTooLong")
    p = alarm["Properties"]

    assert (p["Namespace"], p["MetricName"], p["Statistic"]) == (
        "/aws/sagemaker/Endpoints",
        "CPUUtilization",
        "SampleCount",
    )
    assert {d["Name"] for d in p["Dimensions"]} == {"EndpointName", "VariantName"}
    assert p["Period"] * p["EvaluationPeriods"] == CONFIG.guard.in_service_hours * 3600
    assert p["DatapointsToAlarm"] == p["EvaluationPeriods"]  # every minute of them, in a row
    assert p["Period"] * p["EvaluationPeriods"] <= 86_400  # CloudWatch's limit: one day
    assert (p["ComparisonOperator"], p["Threshold"]) == ("GreaterThanOrEqualToThreshold", 1)
    assert p["TreatMissingData"] == "notBreaching"  # no instance, no sample: the run is over


def test_the_alarm_notifies_an_encrypted_topic_that_emails_the_same_address(endpoint):
    alarm_id, alarm = _one(endpoint, "AWS::CloudWatch::Alarm", "InServiceTooLong")
    [action] = alarm["Properties"]["AlarmActions"]
    topic_id = action["Ref"]
    topic = endpoint["Resources"][topic_id]
    assert topic["Type"] == "AWS::SNS::Topic" and "KmsMasterKeyId" in topic["Properties"]
    subscriptions = [
        s["Properties"]
        for s in resources_of(endpoint, "AWS::SNS::Subscription").values()
        if s["Properties"]["TopicArn"] == {"Ref": topic_id}
    ]
    assert subscriptions == [{"Endpoint": ALERT_EMAIL, "Protocol": "email", "TopicArn": {"Ref": topic_id}}]
    [policy] = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in resources_of(endpoint, "AWS::SNS::TopicPolicy").values()
        if {"Ref": topic_id} in p["Properties"]["Topics"]
    ]
    [allow] = [s for s in policy if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"} and allow["Action"] == "sns:Publish"
    assert allow["Condition"]["ArnLike"]["aws:SourceArn"] == {"Fn::GetAtt": [alarm_id, "Arn"]}
    key_id = topic["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]
    key_statements = endpoint["Resources"][key_id]["Properties"]["KeyPolicy"]["Statement"]
    assert any(
        s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"} and "kms:GenerateDataKey*" in s["Action"]
        for s in key_statements
    )


def test_every_taggable_resource_carries_the_deployment_tag(endpoint):
    tagged = [r for r in endpoint["Resources"].values() if "Tags" in r.get("Properties", {})]
    assert len(tagged) > 10
    for resource in tagged:
        tags = resource["Properties"]["Tags"]
        pairs = tags.items() if isinstance(tags, dict) else ((t["Key"], t["Value"]) for t in tags)
        assert (DEPLOYMENT_TAG, CONFIG.deployment) in list(pairs), resource["Type"]
    for kind in (
        "AWS::SageMaker::Endpoint",
        "AWS::S3::Bucket",
        "AWS::Lambda::Function",
        "AWS::SNS::Topic",
        "AWS::CloudWatch::Alarm",
    ):
        found = resources_of(endpoint, kind)
        assert found and all("Tags" in r["Properties"] for r in found.values()), kind
    (budget,) = resources_of(endpoint, "AWS::Budgets::Budget").values()
    assert {"Key": DEPLOYMENT_TAG, "Value": CONFIG.deployment} in budget["Properties"].get("ResourceTags", []), budget


def test_without_an_alert_address_the_stack_has_no_guard(tmp_path):
    from infra.templates import synthesize

    config = replace(CONFIG, guard=replace(CONFIG.guard, alert_email=""))
    template = synthesize(config, outdir=tmp_path).templates["endpoint"]

    assert resources_of(template, "AWS::Budgets::Budget") == {}
    assert [k for k in resources_of(template, "AWS::CloudWatch::Alarm") if "InServiceTooLong" in k] == []

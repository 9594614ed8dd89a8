"""`python -m app deploy|teardown` in-process against the local cloud: asking first, the plan, the deletion."""

from __future__ import annotations

import io
import json

import pytest

from app.cli import _parser, main
from app.cli_deploy import apply_companions, companion_flags

DEPLOYMENT = "cli-test"


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def cloud_args(cloud) -> list[str]:
    return ["--endpoint-url", cloud.endpoint_url, "--region", cloud.region]


def stacks(cloud) -> set[str]:
    summaries = cloud.client("cloudformation").list_stacks()["StackSummaries"]
    return {s["StackName"] for s in summaries if s["StackStatus"] != "DELETE_COMPLETE"}


def test_deploy_without_yes_asks_nobody_and_creates_nothing(cloud, dirs):
    before = stacks(cloud)

    code, out, err = run(
        *cloud_args(cloud), "deploy", "--deployment", DEPLOYMENT, "--instance-type", "ml.g5.xlarge",
        "--max-instances", "3", "--alert-email", "designer@example.com", "--monthly-limit", "80",
    )  # fmt: skip

    assert code == 2 and out == ""
    assert f"Deploy '{DEPLOYMENT}' into {cloud.region}" in err and "ml.g5.xlarge (0 to 3 instances" in err
    assert "billed per instance-hour" in err and "Nothing was created: add --yes" in err
    assert "A budget of 80 USD a month e-mails designer@example.com at 80 % and 100 % of it." in err
    assert stacks(cloud) == before
    assert not (dirs.config_dir / "cloud" / "config.toml").exists()  # the user's config is not touched either


def test_deploying_a_marketplace_model_asks_with_its_software_fee_named(cloud, dirs):
    code, _, err = run(
        *cloud_args(cloud), "deploy", "--deployment", DEPLOYMENT, "--instance-type", "ml.g5.2xlarge",
        "--model", "model-imagegeneration-stabilityai-stable-diffusion-xl-base-1-0", "--marketplace-subscribed",
        "--alert-email", "designer@example.com",
    )  # fmt: skip

    assert code == 2 and "Nothing was created: add --yes" in err
    assert "billed per instance-hour, plus the seller's AWS Marketplace software fee per instance-hour" in err


def test_a_bad_deployment_name_is_refused_before_anything_is_asked(cloud, dirs):
    code, _, err = run(*cloud_args(cloud), "teardown", "--deployment", "no spaces allowed", "--yes")
    assert code == 1 and "--deployment 'no spaces allowed'" in err


def test_teardown_of_nothing_says_so(cloud, dirs):
    code, _, err = run(*cloud_args(cloud), "teardown", "--deployment", "never-deployed", "--yes")
    assert code == 0 and "Nothing of deployment 'never-deployed' is left" in err


def _endpoint_stack(cloud) -> str:
    """A stack under the name the deploy gives the endpoint stack, holding a bucket with a file in it."""
    name = f"diffusion-desk-{DEPLOYMENT}-endpoint"
    body = {"Resources": {"Bucket": {"Type": "AWS::S3::Bucket"}, "Topic": {"Type": "AWS::SNS::Topic"}}}
    cfn = cloud.client("cloudformation")
    cfn.create_stack(StackName=name, TemplateBody=json.dumps(body))
    bucket = cfn.describe_stack_resource(StackName=name, LogicalResourceId="Bucket")["StackResourceDetail"]
    cloud.client("s3").put_object(Bucket=bucket["PhysicalResourceId"], Key="images/a/0.png", Body=b"png")
    return bucket["PhysicalResourceId"]


def test_teardown_shows_the_plan_and_deletes_only_with_yes(cloud, dirs):
    bucket = _endpoint_stack(cloud)
    stack = f"diffusion-desk-{DEPLOYMENT}-endpoint"

    code, _, err = run(*cloud_args(cloud), "teardown", "--deployment", DEPLOYMENT)

    assert code == 2 and "Nothing was deleted: run the same command with --yes" in err
    assert f"This deletes deployment '{DEPLOYMENT}' in {cloud.region}" in err
    assert f"• {stack}" in err and f"• {bucket}" in err
    assert stack in stacks(cloud)

    code, _, err = run(*cloud_args(cloud), "teardown", "--deployment", DEPLOYMENT, "--yes")

    assert code == 0, err
    assert f"Emptied s3://{bucket} (1 object versions)" in err and f"Deployment '{DEPLOYMENT}' is gone" in err
    assert "[100%] Removing the rest" in err  # every line names its step and how far the whole has come
    assert stack not in stacks(cloud)
    assert bucket not in {b["Name"] for b in cloud.client("s3").list_buckets()["Buckets"]}


def test_teardown_lists_the_budget_guard_and_leaves_none_of_it(cloud, dirs):
    name = f"diffusion-desk-{DEPLOYMENT}-endpoint"
    budget = {
        "BudgetName": f"diffusion-desk-{DEPLOYMENT}-monthly",
        "BudgetType": "COST",
        "TimeUnit": "MONTHLY",
        "BudgetLimit": {"Amount": 50, "Unit": "USD"},
    }
    alarm = {
        "Namespace": "/aws/sagemaker/Endpoints", "MetricName": "CPUUtilization", "Statistic": "SampleCount",
        "Period": 60, "EvaluationPeriods": 240, "Threshold": 1, "ComparisonOperator": "GreaterThanOrEqualToThreshold",
    }  # fmt: skip
    body = {
        "Resources": {
            "Budget": {"Type": "AWS::Budgets::Budget", "Properties": {"Budget": budget}},
            "Alarm": {"Type": "AWS::CloudWatch::Alarm", "Properties": alarm},
        }
    }
    cloud.client("cloudformation").create_stack(StackName=name, TemplateBody=json.dumps(body))

    code, _, err = run(*cloud_args(cloud), "teardown", "--deployment", DEPLOYMENT, "--yes")

    assert code == 0, err
    assert "The budget and alarms, deleted with the endpoint stack:" in err
    assert f"• diffusion-desk-{DEPLOYMENT}-monthly" in err
    assert cloud.client("budgets").describe_budgets(AccountId=cloud.cloud.account_id)["Budgets"] == []
    assert (
        cloud.client("cloudwatch").describe_alarms(AlarmNamePrefix=name)["MetricAlarms"] == []
    )  # the sandbox's own stay


UPSCALER = "model-upscaling-stabilityai-stable-diffusion-x4-upscaler-fp16"
INPAINTER = "model-inpainting-stabilityai-stable-diffusion-2-inpainting-fp16"
RUNWAY = "model-inpainting-runwayml-stable-diffusion-inpainting"


@pytest.mark.parametrize(
    ("flags", "told"),
    [
        ([], {}),
        (["--upscaler"], {"upscale": UPSCALER}),
        (["--inpainting"], {"inpaint": INPAINTER}),
        (["--upscaler", "--inpainting", RUNWAY], {"upscale": UPSCALER, "inpaint": RUNWAY}),
        (["--inpainting", RUNWAY, "--no-upscaler"], {"upscale": None, "inpaint": RUNWAY}),
    ],
)
def test_the_companion_flags_alone_mean_the_default_model_and_a_family_not_named_is_kept(flags, told):
    args = _parser().parse_args(["deploy", "--model", "model-txt2img-x", *flags, "--marketplace-subscribed"])

    assert companion_flags(args) == told
    assert args.model == "model-txt2img-x" and args.marketplace_subscribed
    deployed = {"upscale": UPSCALER, "inpaint": INPAINTER}
    kept = apply_companions(deployed, told)
    assert kept == {f: m for f, m in {**deployed, **told}.items() if m is not None}


def test_a_companion_flag_and_its_no_flag_together_are_a_usage_error():
    with pytest.raises(SystemExit):
        _parser().parse_args(["deploy", "--upscaler", "--no-upscaler"])


def test_deploy_asks_naming_each_companion_endpoint(cloud, dirs):
    code, _, err = run(
        *cloud_args(cloud), "deploy", "--deployment", DEPLOYMENT, "--alert-email", "designer@example.com",
        "--upscaler", "--inpainting", RUNWAY,
    )  # fmt: skip

    assert code == 2 and "Nothing was created: add --yes" in err
    assert f"a ×4 upscaler endpoint ({UPSCALER} on ml.g5.xlarge, scaling to zero on its own)" in err
    assert f"an Inpainting endpoint ({RUNWAY} on ml.g5.xlarge, scaling to zero on its own)" in err


def test_a_companion_of_the_wrong_family_is_refused_before_anything_is_asked(cloud, dirs):
    before = stacks(cloud)

    code, _, err = run(
        *cloud_args(cloud), "deploy", "--deployment", DEPLOYMENT, "--alert-email", "designer@example.com",
        "--upscaler", INPAINTER, "--yes",
    )  # fmt: skip

    assert code == 1 and f"{INPAINTER} is an inpainting model, not an upscaling model" in err
    assert "Deploy 'cli-test'" not in err and stacks(cloud) == before
    assert not (dirs.config_dir / "cloud" / "config.toml").exists()

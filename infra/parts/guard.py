"""The budget guard: a monthly AWS Budgets budget by the deployment's tag, and an alarm on long runs.

Both are in the endpoint stack, so teardown's deletion of that stack removes them (CloudFormation
deletes a budget it created along with its notifications).
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Aws, Duration
from aws_cdk import aws_budgets as budgets
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from contract import DEPLOYMENT_TAG
from infra.config import GuardConfig

#: Percent of the monthly limit at which the budget e-mails (actual spend, not forecast).
THRESHOLDS = (80, 100)
#: Where SageMaker publishes one CPUUtilization sample per instance per minute while instances run.
HOST_NAMESPACE = "/aws/sagemaker/Endpoints"


class BudgetGuard(Construct):
    """An AWS Budgets COST budget (monthly, filtered by `DEPLOYMENT_TAG`) and each endpoint's `InServiceTooLong` alarm.

    The budget counts only what carries the tag, and only once the tag is activated as a cost allocation
    tag in the Billing console (AWS offers it there a day after tagged resources first cost something).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        deployment: str,
        budget_name: str,
        guard: GuardConfig,
        endpoint_name: str,
        variant: str,
        key: kms.IKey,
        companions: Mapping[str, str] | None = None,
    ) -> None:
        companions = companions or {}
        super().__init__(scope, construct_id)
        self.budget = budgets.CfnBudget(
            self,
            "Budget",
            budget=budgets.CfnBudget.BudgetDataProperty(
                budget_name=budget_name,
                budget_type="COST",
                time_unit="MONTHLY",
                budget_limit=budgets.CfnBudget.SpendProperty(amount=guard.monthly_limit, unit="USD"),
                # Budgets names a user-defined cost allocation tag `user:<key>$<value>`.
                cost_filters={"TagKeyValue": [f"user:{DEPLOYMENT_TAG}${deployment}"]},
            ),
            # Set here: this CfnBudget is not taggable by Tags.of (its tags are ResourceTags).
            resource_tags=[budgets.CfnBudget.ResourceTagProperty(key=DEPLOYMENT_TAG, value=deployment)],
            notifications_with_subscribers=[
                budgets.CfnBudget.NotificationWithSubscribersProperty(
                    notification=budgets.CfnBudget.NotificationProperty(
                        comparison_operator="GREATER_THAN",
                        notification_type="ACTUAL",
                        threshold=threshold,
                        threshold_type="PERCENTAGE",
                    ),
                    subscribers=[
                        budgets.CfnBudget.SubscriberProperty(address=guard.alert_email, subscription_type="EMAIL")
                    ],
                )
                for threshold in THRESHOLDS
            ],
        )
        self.topic = sns.Topic(self, "Alerts", master_key=key, enforce_ssl=True)
        # AWS asks the address to confirm this subscription by e-mail before it delivers anything.
        self.topic.add_subscription(subscriptions.EmailSubscription(guard.alert_email))
        self.alarm = self._in_service_alarm("InServiceTooLong", endpoint_name, variant, guard.in_service_hours)
        #: The same alarm on each companion endpoint (by family name): each one bills on its own.
        self.companion_alarms = {
            family: self._in_service_alarm(
                f"{family.capitalize()}InServiceTooLong", name, variant, guard.in_service_hours
            )
            for family, name in companions.items()
        }
        alarm_arns = [alarm.alarm_arn for alarm in (self.alarm, *self.companion_alarms.values())]
        # enforce_ssl gives the topic a policy of its own, which replaces SNS's default: CloudWatch needs its
        # grant, for these alarms only, and the topic's key must let CloudWatch encrypt what it publishes.
        cloudwatch_principal = iam.ServicePrincipal("cloudwatch.amazonaws.com")
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                actions=["sns:Publish"],
                principals=[cloudwatch_principal],
                resources=[self.topic.topic_arn],
                conditions={
                    "ArnLike": {"aws:SourceArn": alarm_arns[0] if len(alarm_arns) == 1 else alarm_arns},
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                },
            )
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                principals=[cloudwatch_principal],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            )
        )

    def _in_service_alarm(self, construct_id: str, endpoint_name: str, variant: str, hours: int) -> cloudwatch.Alarm:
        # An instance in service sends one CPUUtilization sample a minute; none runs, none is sent (missing, so
        # not breaching). "At least one sample in each of the last N × 60 one-minute periods" is therefore "the
        # endpoint has not been at zero instances for N hours in a row": the hours it bills without a pause.
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            metric=cloudwatch.Metric(
                namespace=HOST_NAMESPACE,
                metric_name="CPUUtilization",
                dimensions_map={"EndpointName": endpoint_name, "VariantName": variant},
                statistic="SampleCount",
                period=Duration.minutes(1),
            ),
            evaluation_periods=hours * 60,
            datapoints_to_alarm=hours * 60,
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=(
                f"An instance of {endpoint_name} has been in service for {hours} hours in a row: it is billed "
                "every minute it runs. If no one is generating, press Stop now in Diffusion Desk's cost panel "
                "(or run `python -m app stop-now`)."
            ),
        )
        alarm.add_alarm_action(actions.SnsAction(self.topic))
        return alarm

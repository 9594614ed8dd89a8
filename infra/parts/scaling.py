"""Scale-to-zero autoscaling of an async endpoint, as the SageMaker guide documents it."""

from __future__ import annotations

from aws_cdk import Aws, Duration
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.config import EndpointConfig


class ScaleToZero(Construct):
    """Min 0 / max N instances: track the backlog per instance, and leave zero on any backlog.

    Target tracking alone cannot scale out from zero instances (the per-instance metric has no
    instances to average over), so a step policy adds one instance when HasBacklogWithoutCapacity fires.
    The policies are named after the endpoint, so a new endpoint gets new policies with its new target.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, endpoint_name: str, variant: str, config: EndpointConfig
    ) -> None:
        super().__init__(scope, construct_id)
        self.target = appscaling.ScalableTarget(
            self,
            "Target",
            service_namespace=appscaling.ServiceNamespace.SAGEMAKER,
            resource_id=f"endpoint/{endpoint_name}/variant/{variant}",
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            min_capacity=0,
            max_capacity=config.max_instances,
            # Application Auto Scaling acts on SageMaker variants through its service-linked role (it
            # creates it when missing); naming it keeps CDK from making a policy-less role nothing uses.
            role=iam.Role.from_role_arn(
                self,
                "ServiceLinkedRole",
                f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:role/aws-service-role/"
                "sagemaker.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint",
                mutable=False,
            ),
        )
        dimensions = {"EndpointName": endpoint_name}
        self.target.scale_to_track_metric(
            "Backlog",
            policy_name=f"{endpoint_name}-backlog",
            target_value=config.backlog_per_instance,
            custom_metric=cloudwatch.Metric(
                namespace="AWS/SageMaker",
                metric_name="ApproximateBacklogSizePerInstance",
                dimensions_map=dimensions,
                statistic="Average",
                period=Duration.minutes(1),
            ),
            scale_in_cooldown=Duration.seconds(config.scale_in_cooldown),
            scale_out_cooldown=Duration.seconds(config.scale_out_cooldown),
        )
        self.scale_out = appscaling.StepScalingAction(
            self,
            "ScaleOutFromZero",
            scaling_target=self.target,
            policy_name=f"{endpoint_name}-scale-out-from-zero",
            adjustment_type=appscaling.AdjustmentType.CHANGE_IN_CAPACITY,
            metric_aggregation_type=appscaling.MetricAggregationType.AVERAGE,
            cooldown=Duration.seconds(config.scale_out_cooldown),
        )
        self.scale_out.add_adjustment(adjustment=1, lower_bound=0)
        self.alarm = cloudwatch.Alarm(
            self,
            "HasBacklogWithoutCapacity",
            metric=cloudwatch.Metric(
                namespace="AWS/SageMaker",
                metric_name="HasBacklogWithoutCapacity",
                dimensions_map=dimensions,
                statistic="Average",
                period=Duration.minutes(1),
            ),
            evaluation_periods=2,
            datapoints_to_alarm=2,
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.MISSING,
            alarm_description="Requests wait and the endpoint has no instance: add one.",
        )
        self.alarm.add_alarm_action(actions.ApplicationScalingAction(self.scale_out))

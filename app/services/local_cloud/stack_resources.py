"""What moto's CloudFormation lacks to bring the endpoint stack's own template to life.

moto skips AWS::SNS::Subscription, AWS::SNS::TopicPolicy, AWS::S3::BucketPolicy, AWS::SQS::QueuePolicy,
AWS::ApplicationAutoScaling::ScalableTarget and ScalingPolicy, AWS::CloudWatch::Alarm,
AWS::Lambda::EventInvokeConfig and AWS::Budgets::Budget (a stack "creates" them and nothing exists).
The models below create each in moto's own backend, in the shape its API call takes, where the local
cloud's IAM, endpoint emulator and Lambda runner find them. Where moto's own models differ from AWS they are corrected:
SageMaker's Model, EndpointConfig and Endpoint take the names the template gives them, an
endpoint config accepts every instance type botocore's SageMaker model lists (moto's list has no g5),
a model keeps its EnableNetworkIsolation (moto drops it) whether CreateModel or CloudFormation makes it,
and a KMS key's and an SSM parameter's Tags are read in CloudFormation's shape (moto's models hand them
on as they come, which the KMS and SSM backends cannot read).

What AWS itself checks when a stack makes these is checked too: a scalable target needs its
endpoint and variant, a scaling policy its scalable target, a model's ModelPackageName matches botocore's
pattern, and a model of an AWS Marketplace seller's model package (the JumpStart replica's SDXL 1.0) is
refused without network isolation ("Network isolation is required to run training jobs and models using
resources from AWS Marketplace", SageMaker Developer Guide, mkt-algo-model-internet-free).
An SNS subscription of protocol lambda is handed to `LAMBDA_DELIVERY` (the Lambda runner) instead of
moto's Docker-only invoke.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Callable
from functools import cache, lru_cache
from typing import Any

import botocore.session
import yaml
from moto.applicationautoscaling.models import applicationautoscaling_backends
from moto.awslambda.exceptions import UnknownFunctionException
from moto.awslambda.utils import get_backend as lambda_backend
from moto.budgets.models import budgets_backends
from moto.cloudformation import models as cloudformation_models
from moto.cloudformation import parsing
from moto.cloudformation.exceptions import UnformattedGetAttTemplateException, ValidationError
from moto.cloudformation.utils import yaml_tag_constructor
from moto.cloudwatch.models import cloudwatch_backends
from moto.core.common_models import CloudFormationModel
from moto.kms import models as kms_models
from moto.s3.models import s3_backends
from moto.sagemaker import models as sagemaker_models
from moto.sagemaker import responses as sagemaker_responses
from moto.sagemaker.models import sagemaker_backends
from moto.sns import models as sns_models
from moto.sns.models import sns_backends
from moto.sqs.models import sqs_backends
from moto.ssm import models as ssm_models

#: Called with (subscription, message, message_id, subject, message_attributes) for each SNS delivery to a
#: Lambda function; the last one registered delivers (the Lambda runner of the local cloud started last).
LAMBDA_DELIVERY: list[Callable[..., None]] = []
#: Called with (account, region) after a stack registered, changed or removed a scalable target, as
#: RegisterScalableTarget through the API tells the endpoint emulator (cloud.py).
SCALING_EVENTS: list[Callable[[str, str], None]] = []


def _scaling_changed(account_id: str, region: str) -> None:
    for listener in list(SCALING_EVENTS):
        listener(account_id, region)


def _region_of(arn: str) -> str:
    return arn.split(":")[3]


def _policy(document: Any) -> str:
    return document if isinstance(document, str) else json.dumps(document)


class Typed:
    """A resource of the template type `TYPE`; a mixin, not a base class: moto registers only the direct
    subclasses of CloudFormationModel."""

    TYPE = ""
    NAME_PROPERTY = ""  # the property that names it, if any
    ATTRIBUTE = ""  # the one attribute Fn::GetAtt reads, if any

    @classmethod
    def cloudformation_type(cls) -> str:
        return cls.TYPE

    @classmethod
    def cloudformation_name_type(cls) -> str:
        return cls.NAME_PROPERTY

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return bool(cls.ATTRIBUTE) and attr == cls.ATTRIBUTE


class _Resource(Typed):
    """One resource a stack made: its physical id (what Ref returns) and its properties."""

    def __init__(self, physical_id: str, properties: dict[str, Any], account_id: str, region: str) -> None:
        self.physical_id = physical_id
        self.properties = properties
        self.account_id = account_id
        self.region = region

    @property
    def physical_resource_id(self) -> str:
        return self.physical_id

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        raise UnformattedGetAttTemplateException()

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> Any:
        properties = cloudformation_json["Properties"]
        return cls(cls._create(resource_name, properties, account_id, region_name), properties, account_id, region_name)

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls, original_resource: Any, new_resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> Any:
        original_resource.delete(account_id, region_name)
        return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json, account_id, region_name)

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> None:
        cls(resource_name, cloudformation_json.get("Properties") or {}, account_id, region_name).delete(
            account_id, region_name
        )

    @classmethod
    def _create(cls, name: str, properties: dict[str, Any], account_id: str, region: str) -> str:
        """Make the resource in moto's backend; returns its physical id."""
        raise NotImplementedError

    def delete(self, account_id: str, region_name: str) -> None:
        raise NotImplementedError


class LocalSubscription(_Resource, CloudFormationModel):
    """AWS::SNS::Subscription: a confirmed subscription of the topic, with its filter and raw delivery."""

    TYPE = "AWS::SNS::Subscription"

    @classmethod
    def _create(cls, name: str, properties: dict[str, Any], account_id: str, region: str) -> str:
        topic = properties["TopicArn"]
        backend = sns_backends[account_id][properties.get("Region") or _region_of(topic)]
        subscription = backend.subscribe(topic, properties["Endpoint"], properties["Protocol"])
        for key in ("FilterPolicy", "FilterPolicyScope", "RawMessageDelivery", "RedrivePolicy", "DeliveryPolicy"):
            if key in properties:
                value = properties[key]
                text = (
                    json.dumps(value)
                    if isinstance(value, dict)
                    else str(value).lower()
                    if isinstance(value, bool)
                    else str(value)
                )
                backend.set_subscription_attributes(subscription.arn, key, text)
        return subscription.arn

    def delete(self, account_id: str, region_name: str) -> None:
        sns_backends[account_id][_region_of(self.physical_id)].unsubscribe(self.physical_id)


class LocalTopicPolicy(_Resource, CloudFormationModel):
    """AWS::SNS::TopicPolicy: the document becomes each topic's policy; deleting it restores SNS's default."""

    TYPE = "AWS::SNS::TopicPolicy"

    @classmethod
    def _create(cls, name: str, properties: dict[str, Any], account_id: str, region: str) -> str:
        for topic in properties["Topics"]:
            sns_backends[account_id][_region_of(topic)].get_topic(topic).policy = _policy(properties["PolicyDocument"])
        return name

    def delete(self, account_id: str, region_name: str) -> None:
        for arn in self.properties.get("Topics") or []:
            topic = sns_backends[account_id][_region_of(arn)].topics.get(arn)
            if topic is not None:
                topic._policy_json = topic._create_default_topic_policy(_region_of(arn), account_id, topic.name)


class LocalBucketPolicy(_Resource, CloudFormationModel):
    """AWS::S3::BucketPolicy: the bucket's policy, which the local cloud's IAM evaluates."""

    TYPE = "AWS::S3::BucketPolicy"

    @classmethod
    def _create(cls, name: str, properties: dict[str, Any], account_id: str, region: str) -> str:
        bucket = properties["Bucket"]
        s3_backends[account_id]["aws"].put_bucket_policy(bucket, _policy(properties["PolicyDocument"]).encode())
        return bucket

    def delete(self, account_id: str, region_name: str) -> None:
        bucket = self.properties.get("Bucket") or self.physical_id
        if bucket in s3_backends[account_id]["aws"].buckets:
            s3_backends[account_id]["aws"].delete_bucket_policy(bucket)


class LocalQueuePolicy(_Resource, CloudFormationModel):
    """AWS::SQS::QueuePolicy: the document becomes each queue's Policy attribute."""

    TYPE = "AWS::SQS::QueuePolicy"

    @classmethod
    def _create(cls, name: str, properties: dict[str, Any], account_id: str, region: str) -> str:
        for url in properties["Queues"]:
            backend = sqs_backends[account_id][_queue_region(url, region)]
            backend.set_queue_attributes(
                url.rstrip("/").rsplit("/", 1)[-1], {"Policy": _policy(properties["PolicyDocument"])}
            )
        return name

    def delete(self, account_id: str, region_name: str) -> None:
        for url in self.properties.get("Queues") or []:
            backend = sqs_backends[account_id][_queue_region(url, region_name)]
            queue = backend.queues.get(url.rstrip("/").rsplit("/", 1)[-1])
            if queue is not None:
                queue.policy = None


def _queue_region(url: str, default: str) -> str:
    host = url.split("://", 1)[-1].split("/", 1)[0].split(".")
    return host[1] if len(host) > 2 and host[0] == "sqs" else default


class LocalScalableTarget(_Resource, CloudFormationModel):
    """AWS::ApplicationAutoScaling::ScalableTarget, registered as RegisterScalableTarget registers it.

    Its Ref is `resourceId|scalableDimension|serviceNamespace`, as CloudFormation's. A SageMaker variant
    must exist first, as Application Auto Scaling checks.
    """

    TYPE = "AWS::ApplicationAutoScaling::ScalableTarget"

    @classmethod
    def _create(cls, name: str, properties: dict[str, Any], account_id: str, region: str) -> str:
        namespace, resource, dimension = (
            properties["ServiceNamespace"],
            properties["ResourceId"],
            properties["ScalableDimension"],
        )
        low, high = int(properties["MinCapacity"]), int(properties["MaxCapacity"])
        if low > high:
            raise ValidationError(message=f"MinCapacity {low} is more than MaxCapacity {high}.")
        if namespace == "sagemaker":
            _variant_exists(resource, account_id, region)
        state = properties.get("SuspendedState") or {}
        applicationautoscaling_backends[account_id][region].register_scalable_target(
            namespace, resource, dimension, low, high, properties.get("RoleARN", ""), state
        )
        _scaling_changed(account_id, region)
        return f"{resource}|{dimension}|{namespace}"

    def delete(self, account_id: str, region_name: str) -> None:
        resource, dimension, namespace = self.physical_id.split("|")
        backend = applicationautoscaling_backends[account_id][region_name]
        if resource in backend.targets.get(dimension, {}):
            backend.deregister_scalable_target(namespace, resource, dimension)
            _scaling_changed(account_id, region_name)


def _variant_exists(resource_id: str, account_id: str, region: str) -> None:
    """endpoint/<name>/variant/<variant> must name an existing endpoint's variant."""
    parts = resource_id.split("/")
    if len(parts) != 4 or parts[0] != "endpoint" or parts[2] != "variant":
        raise ValidationError(message=f"Unsupported resource ID {resource_id} for namespace sagemaker.")
    endpoint = sagemaker_backends[account_id][region].endpoints.get(parts[1])
    variants = [v.get("VariantName") for v in (endpoint.production_variants if endpoint else [])]
    if endpoint is None or parts[3] not in variants:
        raise ValidationError(
            message=f"The endpoint {parts[1]} with variant {parts[3]} does not exist (ResourceId {resource_id})."
        )


class LocalScalingPolicy(_Resource, CloudFormationModel):
    """AWS::ApplicationAutoScaling::ScalingPolicy on its scalable target; its Ref is the policy's ARN."""

    TYPE = "AWS::ApplicationAutoScaling::ScalingPolicy"

    @classmethod
    def _create(cls, name: str, properties: dict[str, Any], account_id: str, region: str) -> str:
        resource, dimension, namespace = _target_of(properties)
        backend = applicationautoscaling_backends[account_id][region]
        if resource not in backend.targets.get(dimension, {}):
            raise ValidationError(
                message=f"No scalable target registered for service namespace: {namespace}, "
                f"resource ID: {resource}, scalable dimension: {dimension}"
            )
        kind = properties["PolicyType"]
        body = properties.get(
            "StepScalingPolicyConfiguration" if kind == "StepScaling" else "TargetTrackingScalingPolicyConfiguration"
        )
        policy = backend.put_scaling_policy(
            properties.get("PolicyName") or name, namespace, resource, dimension, body or {}, kind
        )
        return policy.policy_arn

    def delete(self, account_id: str, region_name: str) -> None:
        resource, dimension, namespace = _target_of(self.properties)
        backend = applicationautoscaling_backends[account_id][region_name]
        for key, policy in list(backend.policies.items()):
            if policy.policy_arn == self.physical_id:
                backend.policies.pop(key)


def _target_of(properties: dict[str, Any]) -> tuple[str, str, str]:
    if properties.get("ScalingTargetId"):
        resource, dimension, namespace = properties["ScalingTargetId"].split("|")
        return resource, dimension, namespace
    return properties["ResourceId"], properties["ScalableDimension"], properties["ServiceNamespace"]


class LocalAlarm(_Resource, CloudFormationModel):
    """AWS::CloudWatch::Alarm as PutMetricAlarm makes it; its Ref is the alarm's name."""

    TYPE = "AWS::CloudWatch::Alarm"

    @staticmethod
    def cloudformation_name_type() -> str:
        return "AlarmName"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Arn"

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        if attribute_name == "Arn":
            return f"arn:aws:cloudwatch:{self.region}:{self.account_id}:alarm:{self.physical_id}"
        raise UnformattedGetAttTemplateException()

    @classmethod
    def _create(cls, name: str, properties: dict[str, Any], account_id: str, region: str) -> str:
        p = properties
        cloudwatch_backends[account_id][region].put_metric_alarm(
            name=name,
            namespace=p.get("Namespace", ""),
            metric_name=p.get("MetricName", ""),
            comparison_operator=p["ComparisonOperator"],
            evaluation_periods=int(p["EvaluationPeriods"]),
            period=int(p.get("Period") or 60),
            threshold=float(p.get("Threshold") or 0),
            statistic=p.get("Statistic", ""),
            description=p.get("AlarmDescription", ""),
            dimensions=p.get("Dimensions") or [],
            alarm_actions=p.get("AlarmActions") or [],
            datapoints_to_alarm=p.get("DatapointsToAlarm"),
            ok_actions=p.get("OKActions"),
            insufficient_data_actions=p.get("InsufficientDataActions"),
            unit=p.get("Unit"),
            actions_enabled=p.get("ActionsEnabled", True),
            treat_missing_data=p.get("TreatMissingData"),
        )
        return name

    def delete(self, account_id: str, region_name: str) -> None:
        cloudwatch_backends[account_id][region_name].delete_alarms([self.physical_id])


class LocalBudget(_Resource, CloudFormationModel):
    """AWS::Budgets::Budget as CreateBudget makes it, with its notifications; its Ref is the budget's name.

    Budgets is global (moto keeps it per partition). CloudFormation's numbers (the limit's Amount, each
    Threshold) become the API's shapes: the amount a string, as DescribeBudget returns it.
    """

    TYPE = "AWS::Budgets::Budget"

    @classmethod
    def _create(cls, name: str, properties: dict[str, Any], account_id: str, region: str) -> str:
        budget = copy.deepcopy(properties["Budget"])
        budget.setdefault("BudgetName", name)
        if "BudgetLimit" in budget:
            budget["BudgetLimit"]["Amount"] = str(float(budget["BudgetLimit"]["Amount"]))  # "50.0", as AWS answers
        notifications = copy.deepcopy(properties.get("NotificationsWithSubscribers") or [])
        for entry in notifications:
            entry["Notification"]["Threshold"] = float(entry["Notification"]["Threshold"])
        budgets_backends[account_id]["aws"].create_budget(
            account_id=account_id, budget=budget, notifications=notifications
        )
        return budget["BudgetName"]

    def delete(self, account_id: str, region_name: str) -> None:
        backend = budgets_backends[account_id]["aws"]
        if self.physical_id in backend.budgets[account_id]:
            backend.delete_budget(account_id=account_id, budget_name=self.physical_id)


class LocalEventInvokeConfig(_Resource, CloudFormationModel):
    """AWS::Lambda::EventInvokeConfig: the retries and on-failure destination of a function's async calls."""

    TYPE = "AWS::Lambda::EventInvokeConfig"

    @classmethod
    def _create(cls, name: str, properties: dict[str, Any], account_id: str, region: str) -> str:
        config = {
            key: properties[key]
            for key in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds", "DestinationConfig")
            if key in properties
        }
        lambda_backend(account_id, region).put_function_event_invoke_config(properties["FunctionName"], config)
        return name

    def delete(self, account_id: str, region_name: str) -> None:
        # moto deletes a stack's resources in no dependency order: the function may be gone, and its config with it.
        try:
            lambda_backend(account_id, region_name).delete_function_event_invoke_config(self.properties["FunctionName"])
        except UnknownFunctionException:
            pass


class LocalPermission(_Resource, CloudFormationModel):
    """AWS::Lambda::Permission: a statement of the function's resource policy, named by its physical id.

    moto's own model adds the statement with every property in it and keeps no id (its Ref is empty).
    """

    TYPE = "AWS::Lambda::Permission"

    @classmethod
    def _create(cls, name: str, properties: dict[str, Any], account_id: str, region: str) -> str:
        statement = {"StatementId": name, "Action": properties["Action"], "Principal": properties["Principal"]}
        for key in ("SourceArn", "SourceAccount", "PrincipalOrgID", "EventSourceToken", "FunctionUrlAuthType"):
            if key in properties:
                statement[key] = properties[key]
        function = lambda_backend(account_id, region).get_function(properties["FunctionName"])
        function.policy.add_statement(raw=json.dumps(statement))
        return name

    def delete(self, account_id: str, region_name: str) -> None:
        try:
            function = lambda_backend(account_id, region_name).get_function(self.properties["FunctionName"])
            function.policy.del_statement(self.physical_id)
        except Exception:  # the function, or the statement, is already gone
            pass


@cache
def _sagemaker_instance_types() -> frozenset[str]:
    """Every instance type a production variant may have, from botocore's SageMaker model."""
    model = botocore.session.get_session().get_service_model("sagemaker")
    return frozenset(model.shape_for("ProductionVariantInstanceType").enum)


def _validate_instance_type(self: Any, instance_type: str) -> None:
    if instance_type not in _sagemaker_instance_types():
        raise sagemaker_models.ValidationError(
            message=f"Value '{instance_type}' at 'instanceType' failed to satisfy constraint: "
            "Member must satisfy enum value set"
        )


@cache
def _model_package_pattern() -> re.Pattern[str]:
    """ContainerDefinition.ModelPackageName's pattern in botocore's SageMaker model, anchored."""
    model = botocore.session.get_session().get_service_model("sagemaker")
    return re.compile(model.shape_for("VersionedArnOrName").metadata["pattern"])


def _check_model(containers: list[dict[str, Any]], isolated: bool) -> None:
    """Refuse a model as SageMaker does: a malformed ModelPackageName, or a Marketplace package not isolated."""
    from app.services.local_cloud.jumpstart import MARKETPLACE_SELLERS

    for container in containers:
        package = container.get("ModelPackageName")
        if package is None:
            continue
        if not isinstance(package, str) or not _model_package_pattern().fullmatch(package):
            raise sagemaker_models.ValidationError(
                message=f"Value '{package}' at 'primaryContainer.modelPackageName' failed to satisfy constraint: "
                f"Member must satisfy regular expression pattern: {_model_package_pattern().pattern}"
            )
        seller = re.match(r"arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:(\d{12}):", package)
        if seller and seller[1] in MARKETPLACE_SELLERS and not isolated:
            raise sagemaker_models.ValidationError(
                message=f"Network isolation is required for the AWS Marketplace model package {package}: "
                "set EnableNetworkIsolation to true."
            )


def _create_model(original: Callable[..., Any]) -> Callable[..., Any]:
    """moto's SageMaker backend's create_model, checked and keeping EnableNetworkIsolation."""

    def create_model(self: Any, *args: Any, enable_network_isolation: bool = False, **kwargs: Any) -> Any:
        containers = [kwargs.get("primary_container") or {}, *(kwargs.get("containers") or [])]
        isolated = enable_network_isolation in (True, "true", "True")
        _check_model(containers, isolated)
        model = original(self, *args, **kwargs)
        model.enable_network_isolation = isolated
        return model

    create_model.__wrapped__ = original  # type: ignore[attr-defined]
    return create_model


def _create_model_response(self: Any) -> Any:
    """CreateModel as moto answers it, with EnableNetworkIsolation passed on."""
    model = self.sagemaker_backend.create_model(
        model_name=self._get_param("ModelName"),
        execution_role_arn=self._get_param("ExecutionRoleArn"),
        primary_container=self._get_param("PrimaryContainer"),
        vpc_config=self._get_param("VpcConfig"),
        containers=self._get_param("Containers"),
        tags=self._get_param("Tags"),
        enable_network_isolation=bool(self._get_param("EnableNetworkIsolation", False)),
    )
    return sagemaker_responses.ActionResult(model.response_create)


def _model_from_cloudformation(
    cls: Any, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
) -> Any:
    properties = cloudformation_json["Properties"]
    return sagemaker_backends[account_id][region_name].create_model(
        model_name=resource_name,
        execution_role_arn=properties["ExecutionRoleArn"],
        primary_container=properties.get("PrimaryContainer", {}),
        vpc_config=properties.get("VpcConfig", {}),
        containers=properties.get("Containers", []),
        tags=properties.get("Tags", []),
        enable_network_isolation=properties.get("EnableNetworkIsolation", False),
    )


def _publish(original: Callable[..., None]) -> Callable[..., None]:
    def publish(
        self: Any, message: str, message_id: str, subject: str | None = None, *args: Any, **kwargs: Any
    ) -> None:
        if self.protocol == "lambda" and LAMBDA_DELIVERY:
            LAMBDA_DELIVERY[-1](self, message, message_id, subject, kwargs.get("message_attributes"))
            return
        original(self, message, message_id, subject, *args, **kwargs)

    publish.__wrapped__ = original  # type: ignore[attr-defined]
    return publish


class _TemplateLoader(getattr(yaml, "CLoader", yaml.Loader)):  # type: ignore[misc]
    """moto's YAML reading (its short-form intrinsics), with libyaml's parser where it is installed."""


_TemplateLoader.add_multi_constructor("", yaml_tag_constructor)


@lru_cache(maxsize=32)
def _parsed(template: str) -> dict[str, Any]:
    try:
        return json.loads(template)
    except ValueError:
        return yaml.load(template, Loader=_TemplateLoader)  # noqa: S506 - moto's own loader, with its tags


def _parse_template(template: str) -> dict[str, Any]:
    """A template's dict, as moto reads it; JSON first, and each text read once (moto parses even JSON with
    pure-Python YAML, about half a second for the endpoint stack)."""
    return copy.deepcopy(_parsed(template))


_SHARED_KEYS: dict[str, Any] = {}
_key_lock = threading.Lock()


def _private_key(original: Callable[[str], Any]) -> Callable[[str], Any]:
    """moto makes an RSA key pair for every KMS key, symmetric ones too (0.2 s each); those share one.

    A symmetric key never signs (KMS refuses Sign and Verify on it), so no caller can tell.
    """

    def generate(key_spec: str) -> Any:
        if key_spec != "SYMMETRIC_DEFAULT":
            return original(key_spec)
        with _key_lock:
            if key_spec not in _SHARED_KEYS:
                _SHARED_KEYS[key_spec] = original(key_spec)
            return _SHARED_KEYS[key_spec]

    generate.__wrapped__ = original  # type: ignore[attr-defined]
    return generate


def _kms_tags(tags: Any) -> list[dict[str, str]]:
    return [{"TagKey": t.get("Key", t.get("TagKey")), "TagValue": t.get("Value", t.get("TagValue"))} for t in tags]


def _ssm_tags(tags: Any) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()] if isinstance(tags, dict) else tags


def _cfn_tags(original: Any, convert: Callable[[Any], Any]) -> Any:
    """A moto model's create_from_cloudformation_json that first puts the template's Tags into its API's shape."""

    def create(cls: Any, resource_name: str, cloudformation_json: Any, *args: Any, **kwargs: Any) -> Any:
        properties = cloudformation_json.get("Properties") or {}
        if properties.get("Tags"):
            properties = {**properties, "Tags": convert(properties["Tags"])}
            cloudformation_json = {**cloudformation_json, "Properties": properties}
        return original.__func__(cls, resource_name, cloudformation_json, *args, **kwargs)

    create.__wrapped__ = original  # type: ignore[attr-defined]
    return classmethod(create)


def _install() -> None:
    """Correct moto's own models once per process (see the module docstring)."""
    cloudformation_models.Stack.parse_template = staticmethod(_parse_template)
    cloudformation_models.ChangeSet._parse_template = lambda self: setattr(  # type: ignore[method-assign]
        self, "template_dict", _parse_template(self.template)
    )
    for cls, convert in ((kms_models.Key, _kms_tags), (ssm_models.Parameter, _ssm_tags)):
        if not hasattr(cls.create_from_cloudformation_json, "__wrapped__"):
            cls.create_from_cloudformation_json = _cfn_tags(cls.create_from_cloudformation_json, convert)
    if not hasattr(kms_models.generate_private_key, "__wrapped__"):
        kms_models.generate_private_key = _private_key(kms_models.generate_private_key)
    for cls, name in (
        (sagemaker_models.Model, "ModelName"),
        (sagemaker_models.FakeEndpointConfig, "EndpointConfigName"),
        (sagemaker_models.FakeEndpoint, "EndpointName"),
    ):
        cls.cloudformation_name_type = staticmethod(lambda name=name: name)
    sagemaker_models.FakeEndpointConfig.validate_instance_type = _validate_instance_type
    backend = sagemaker_models.SageMakerModelBackend
    if not hasattr(backend.create_model, "__wrapped__"):
        backend.create_model = _create_model(backend.create_model)
    sagemaker_responses.SageMakerResponse.create_model = _create_model_response
    sagemaker_models.Model.create_from_cloudformation_json = classmethod(_model_from_cloudformation)
    if not hasattr(sns_models.Subscription.publish, "__wrapped__"):
        sns_models.Subscription.publish = _publish(sns_models.Subscription.publish)
    # moto lists the models CloudFormation can create once, from CloudFormationModel's subclasses.
    for cached in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
        cached.cache_clear()


_install()

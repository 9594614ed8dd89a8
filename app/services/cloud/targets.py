"""Targets: where jobs go (region, bucket, endpoint), found in the SSM parameters a stack writes."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from app.services.cloud.aws import Connection, error_code, is_transient
from app.services.errors import UserError
from app.services.settings import AppDirs, Settings, load_settings, save_settings
from contract import (
    APP_NAME,
    BUCKET_PARAM,
    COMPANION_PARAMS,
    ENDPOINT_PARAM,
    ERROR_TOPIC_PARAM,
    FAMILY_PARAM,
    GUIDANCE_APP_NAME,
    SUCCESS_TOPIC_PARAM,
    Budget,
    budget_for,
    parse_ssm_name,
    ssm_name,
    ssm_prefix,
    ssm_root,
)
from contract.families import TEXT_TO_IMAGE, Family, family_named

if TYPE_CHECKING:
    from app.services.cloud.credentials import CredentialSource

log = logging.getLogger(__name__)

GUIDANCE_LABEL = "AWS guidance"
#: The role of a deployment's main endpoint among its endpoints (`Target.endpoints`); companions' are their families.
MAIN_ROLE = "main"


@dataclass(frozen=True, slots=True)
class Target:
    """One deployment the app sends jobs to. `name` is what jobs record as their target."""

    name: str
    region: str
    bucket: str
    endpoint_name: str
    endpoint_url: str | None = None  # set for the local cloud only
    deployment: str = ""
    app: str = APP_NAME  # GUIDANCE_APP_NAME for a stack made with the AWS guidance
    instance_type: str = ""  # the endpoint's, e.g. "ml.g5.xlarge"; "" when unknown (no GPU budget applies)
    family: str = TEXT_TO_IMAGE.name  # the model family of the endpoint's model (contract.families)
    #: The companion endpoints (×4 upscaler, inpainting) by family name, as the SSM parameters name them.
    companions: dict[str, str] = field(default_factory=dict)
    #: Each companion endpoint's instance type by family name, where it could be read (else the main one's applies).
    companion_types: dict[str, str] = field(default_factory=dict)

    @property
    def model_family(self) -> Family:
        """The endpoint's model family; text to image for a name this app does not know."""
        try:
            return family_named(self.family)
        except KeyError:
            return TEXT_TO_IMAGE

    def endpoint_for(self, family: str) -> str:
        """The endpoint that serves `family`'s requests: the main one, or a companion; UserError when the
        deployment has no model of that family."""
        if endpoint := self.serving(family):
            return endpoint
        try:
            label = family_named(family).label
        except KeyError:
            label = family
        raise UserError(
            f"The deployment {self.deployment or self.name!r} has no {label} model.",
            hint="Deploy it with that companion model in Settings → Deploy, or choose another deployment.",
        )

    @property
    def budget(self) -> Budget | None:
        """What one request may ask of the endpoint's GPU, or None when its instance type is unknown."""
        return budget_for(self.instance_type)

    def serving(self, family: str) -> str | None:
        """The endpoint serving `family`'s requests (the main one or a companion), or None when none does.

        The main endpoint serves its `model_family`, as JobService sends: a family name this app does not know is
        text to image's, so the jobs sent to it are served."""
        return self.endpoint_name if family == self.model_family.name else self.companions.get(family)

    def endpoints(self) -> dict[str, str]:
        """Every endpoint of the deployment by its role: "main", then each companion's family."""
        return {MAIN_ROLE: self.endpoint_name, **self.companions}

    def instance_type_of(self, role: str) -> str:
        """The instance type of the endpoint in `role` (a companion's where it was read, else the main one's)."""
        return self.companion_types.get(role) or self.instance_type

    def budget_of(self, family: str) -> Budget | None:
        """What one request may ask of the GPU of the endpoint serving `family` (a companion may run on another
        instance type than the main endpoint; when its type is unknown, the main one's is assumed)."""
        return budget_for(self.instance_type_of(family))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Target:
        try:
            return cls(**{key: data[key] for key in cls.__slots__ if key in data})  # type: ignore[attr-defined]
        except TypeError:
            raise UserError(
                f"A saved target is incomplete: {sorted(data)}.", hint="Connect to the deployment again in Settings."
            ) from None


@dataclass(frozen=True, slots=True)
class Deployment:
    """A parameter set found in SSM; `missing` names parameters it lacks."""

    name: str
    app: str
    parameters: dict[str, str] = field(default_factory=dict)

    @property
    def missing(self) -> list[str]:
        return [p for p in (BUCKET_PARAM, ENDPOINT_PARAM) if not self.parameters.get(p)]

    @property
    def adopted(self) -> bool:
        return self.app == GUIDANCE_APP_NAME


@dataclass(frozen=True, slots=True)
class EndpointState:
    status: str
    instances: int | None
    asynchronous: bool
    created_at: datetime | None = None  # when this endpoint was made: jobs sent earlier went to another one


class EndpointMissing(UserError):
    """DescribeEndpoint says the target's endpoint does not exist ("Could not find endpoint")."""


def record_target(settings: Settings, target: Target, source: CredentialSource | None = None) -> Settings:
    """Make `target` the active one in `settings` (the caller saves them), replacing one of the same name."""
    settings.targets = [t for t in settings.targets if t.get("name") != target.name] + [target.to_dict()]
    settings.active_target = target.name
    settings.region = target.region
    if source is not None:
        settings.credentials = source.to_dict()
    return settings


def saved_target(settings: Settings, name: str | None = None) -> Target | None:
    """The saved target called `name` (by default the active one), or None."""
    wanted = name if name is not None else settings.active_target
    for data in settings.targets:
        if wanted and data.get("name") == wanted:
            return Target.from_dict(data)
    return None


def target_name(deployment: str, app: str) -> str:
    """The name jobs record: a guidance stack's is marked, so it never clashes with ours."""
    return deployment if app == APP_NAME else f"{deployment} ({GUIDANCE_LABEL})"


def list_deployments(connection: Connection) -> list[Deployment]:
    """Every deployment in the region: ours under /diffusion-desk/ and the guidance's under /simple-gen-ai-service/."""
    ssm = connection.client("ssm")
    found: dict[tuple[str, str], dict[str, str]] = {}
    for app in (APP_NAME, GUIDANCE_APP_NAME):
        try:
            for page in ssm.get_paginator("get_parameters_by_path").paginate(Path=ssm_root(app), Recursive=True):
                for param in page.get("Parameters", []):
                    if parsed := parse_ssm_name(param["Name"], app):
                        deployment, key = parsed
                        found.setdefault((app, deployment), {})[key] = param["Value"]
        except (BotoCoreError, ClientError) as exc:
            raise _target_error(exc, f"the deployments in {connection.region}") from None
    return [Deployment(name, app, params) for (app, name), params in sorted(found.items())]


def load_target(connection: Connection, deployment: str, *, app: str = APP_NAME, name: str | None = None) -> Target:
    """Read one deployment's SSM parameters, and its endpoint's instance type, into a Target.

    UserError names every missing parameter.
    """
    try:
        prefix = ssm_prefix(deployment, app)
    except ValueError as exc:
        raise UserError(f"{deployment!r} is not a deployment name: {exc}.") from None
    wanted = [
        ssm_name(deployment, p, app)
        for p in (BUCKET_PARAM, ENDPOINT_PARAM, SUCCESS_TOPIC_PARAM, ERROR_TOPIC_PARAM, FAMILY_PARAM)
        + tuple(COMPANION_PARAMS.values())
    ]
    try:
        reply = connection.client("ssm").get_parameters(Names=wanted)
    except (BotoCoreError, ClientError) as exc:
        raise _target_error(exc, f"the settings of deployment {deployment!r}") from None
    values = {p["Name"][len(prefix) :]: p["Value"] for p in reply.get("Parameters", [])}
    missing = [ssm_name(deployment, p, app) for p in (BUCKET_PARAM, ENDPOINT_PARAM) if not values.get(p)]
    if missing:
        raise UserError(
            f"Deployment {deployment!r} in {connection.region} is incomplete: "
            f"missing SSM parameter {', '.join(missing)}.",
            hint="Check the region, or deploy it again.",
        )
    target = Target(
        name=name or deployment,
        region=connection.region,
        bucket=values[BUCKET_PARAM],
        endpoint_name=values[ENDPOINT_PARAM],
        endpoint_url=connection.endpoint_url,
        deployment=deployment,
        app=app,
        family=values.get(FAMILY_PARAM) or TEXT_TO_IMAGE.name,
        companions={family: values[p] for family, p in COMPANION_PARAMS.items() if values.get(p)},
    )
    return with_instance_type(connection, target)


def refreshed_target(connection: Connection, target: Target) -> Target:
    """A saved `target` as its deployment is now: its model family and companions read again from SSM (one
    GetParameters), then its endpoints' instance types (`with_instance_type`).

    An Update may have added or removed a companion, or changed the main model, since the target was saved (and
    targets saved before companions existed name none). When SSM cannot be read (offline, no permission, a target
    with no deployment name) the saved family and companions are kept: the app still opens.
    """
    if target.deployment:
        try:
            prefix = ssm_prefix(target.deployment, target.app)
            names = [ssm_name(target.deployment, p, target.app) for p in (FAMILY_PARAM, *COMPANION_PARAMS.values())]
            reply = connection.client("ssm").get_parameters(Names=names)
        except (BotoCoreError, ClientError, ValueError) as exc:
            log.info("family and companions of %s not read again: %s", target.name, error_code(exc) or exc)
        else:
            values = {p["Name"][len(prefix) :]: p["Value"] for p in reply.get("Parameters", [])}
            target = replace(
                target,
                family=values.get(FAMILY_PARAM) or TEXT_TO_IMAGE.name,
                companions={family: values[p] for family, p in COMPANION_PARAMS.items() if values.get(p)},
            )
    return with_instance_type(connection, target)


def update_saved_target(settings: Settings, target: Target) -> bool:
    """Give the saved target of `target`'s name `target`'s model family and companions (what SSM names; the
    caller saves the settings). Whether that changed it."""
    for saved in settings.targets:
        if saved.get("name") == target.name:
            fresh = {"family": target.family, "companions": dict(target.companions)}
            if all(saved.get(key) == value for key, value in fresh.items()):
                return False
            saved.update(fresh)
            return True
    return False


def with_instance_type(connection: Connection, target: Target) -> Target:
    """`target` with its endpoints' instance types, read from the endpoint configs they run on.

    No SSM parameter holds them, and the endpoint stack may change them on Update, so the endpoints are
    asked. When one cannot be read (no endpoint yet, no permission, offline) it is left unknown: an unknown
    main type keeps only the request limits, an unknown companion type assumes the main one's.
    """
    main = _instance_type(connection, target.endpoint_name)
    companions = {
        family: found for family, name in target.companions.items() if (found := _instance_type(connection, name))
    }
    return replace(target, instance_type=main or target.instance_type, companion_types=companions)


def _instance_type(connection: Connection, endpoint_name: str) -> str:
    """The instance type the endpoint runs on, or "" when it cannot be read."""
    try:
        variants = _endpoint_config(connection, endpoint_name).get("ProductionVariants") or []
    except (BotoCoreError, ClientError) as exc:
        log.info("instance type of %s unknown: %s", endpoint_name, error_code(exc))
        return ""
    types = [v["InstanceType"] for v in variants if v.get("InstanceType")]
    return types[0] if types else ""


def find_target(connection: Connection, name: str) -> Target:
    """The deployment `name` picks (the CLI's --deployment), ours or one made with the AWS guidance.

    `name` is a deployment's name, `<app>/<name>` (`simple-gen-ai-service/sd-repo`), or a target's
    name as saved (`sd-repo (AWS guidance)`). UserError lists what exists when it picks none or several.
    """
    app, sep, rest = name.strip("/").partition("/")
    wanted = (app, rest) if sep and app in (APP_NAME, GUIDANCE_APP_NAME) else (None, name)
    deployments = list_deployments(connection)
    found = [
        d
        for d in deployments
        if (d.app, d.name) == wanted or (wanted[0] is None and name in (d.name, target_name(d.name, d.app)))
    ]
    if len(found) == 1:
        return load_target(connection, found[0].name, app=found[0].app, name=target_name(found[0].name, found[0].app))
    if found:
        choices = " or ".join(f"--deployment {d.app}/{d.name}" for d in found)
        raise UserError(
            f"{name!r} names {len(found)} deployments in {connection.region}.", hint=f"Choose one: {choices}."
        )
    if not deployments:
        raise UserError(
            f"No deployment named {name!r} was found in {connection.region}; there are none there.",
            hint="Deploy one from Settings, choose another region, or pass --endpoint-url for the local cloud.",
        )
    listed = ", ".join(_choice(d) for d in deployments)
    raise UserError(
        f"No deployment named {name!r} was found in {connection.region}.", hint=f"Deployments there: {listed}."
    )


def _choice(deployment: Deployment) -> str:
    """How a deployment is named on the command line, and what it is."""
    if deployment.adopted:
        text = f"{deployment.app}/{deployment.name} (made with the {GUIDANCE_LABEL})"
    else:
        text = f"{deployment.name} (Diffusion Desk)"
    return text + (", incomplete" if deployment.missing else "")


def endpoint_state(connection: Connection, target: Target) -> EndpointState:
    """The endpoint's status, instance count (0 when scaled in) and whether it is asynchronous."""
    try:
        reply = connection.client("sagemaker").describe_endpoint(EndpointName=target.endpoint_name)
    except ClientError as exc:
        if error_code(exc) == "ValidationException" or "Could not find" in str(exc):
            raise EndpointMissing(
                f"The endpoint {target.endpoint_name!r} does not exist in {target.region}.",
                hint="It may have been deleted: deploy again, or choose another target.",
            ) from None
        raise
    variants = reply.get("ProductionVariants") or []
    counts = [v.get("CurrentInstanceCount") for v in variants if v.get("CurrentInstanceCount") is not None]
    return EndpointState(
        status=reply.get("EndpointStatus", ""),
        instances=sum(counts) if counts else None,
        asynchronous="AsyncInferenceConfig" in reply or bool(reply.get("AsyncInferenceConfig")),
        created_at=reply.get("CreationTime"),
    )


def check_target(connection: Connection, target: Target) -> EndpointState:
    """Check that the bucket can be reached and the endpoint exists; UserError names what is wrong."""
    try:
        connection.s3.head_bucket(Bucket=target.bucket)
    except ClientError as exc:
        code = error_code(exc)
        if code in ("404", "NoSuchBucket", "NotFound"):
            raise UserError(
                f"The bucket {target.bucket!r} of target {target.name!r} does not exist.",
                hint="Deploy again, or choose another target.",
            ) from None
        if code in ("403", "AccessDenied", "Forbidden"):
            raise UserError(
                f"Access to the bucket {target.bucket!r} was denied.",
                hint="The credentials need s3:GetObject, s3:PutObject and s3:ListBucket on it.",
            ) from None
        raise _target_error(exc, f"the bucket {target.bucket!r}") from None
    except BotoCoreError as exc:
        raise _target_error(exc, f"the bucket {target.bucket!r}") from None
    try:
        state = endpoint_state(connection, target)
        asynchronous = state.asynchronous or _config_is_async(connection, target)
    except (BotoCoreError, ClientError) as exc:
        raise _target_error(exc, f"the endpoint {target.endpoint_name!r}") from None
    if not asynchronous:
        raise UserError(
            f"The endpoint {target.endpoint_name!r} is a real-time endpoint; Diffusion Desk needs an asynchronous one.",
            hint="Choose another deployment, or deploy one from Settings.",
        )
    return EndpointState(state.status, state.instances, True)


def _config_is_async(connection: Connection, target: Target) -> bool:
    """DescribeEndpoint may leave AsyncInferenceConfig out; the endpoint config always has it."""
    return bool(_endpoint_config(connection, target.endpoint_name).get("AsyncInferenceConfig"))


def _endpoint_config(connection: Connection, endpoint_name: str) -> dict[str, Any]:
    """The endpoint config the endpoint runs on (DescribeEndpoint, then DescribeEndpointConfig)."""
    sagemaker = connection.client("sagemaker")
    config_name = sagemaker.describe_endpoint(EndpointName=endpoint_name)["EndpointConfigName"]
    return sagemaker.describe_endpoint_config(EndpointConfigName=config_name)


def _target_error(exc: BaseException, what: str) -> UserError:
    code = error_code(exc)
    if is_transient(exc):
        return UserError(f"AWS could not be reached to read {what} ({code}).", hint="Check the network and try again.")
    if code in ("AccessDenied", "AccessDeniedException", "403"):
        return UserError(
            f"These credentials may not read {what}.", hint="Ask your AWS admin for access, or choose another profile."
        )
    return UserError(f"Reading {what} failed ({code}).")


def remember_target(dirs: AppDirs, target: Target, source: CredentialSource | None = None) -> Settings:
    """Save `target` (replacing one of the same name) as the active target, with the credential choice."""
    settings = record_target(load_settings(dirs), target, source)
    save_settings(dirs, settings)
    return settings

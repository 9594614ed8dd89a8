"""One-click deploy, update and teardown of the cloud side, from the installed app.

No Node.js, CDK CLI, Docker or git: the source and pipeline stacks are pre-synthesized templates
(resources/templates), the source goes up as a zip (or one CodeCommit commit), and CodePipeline
builds the model and deploys the endpoint stack. Each operation is a generator of Progress events
whose return value is the result; re-running after a failure continues where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import tempfile
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from app.services.cloud.aws import Connection, client_config, error_code
from app.services.cloud.targets import Target, load_target, record_target
from app.services.deploy import bundle as deploy_bundle
from app.services.deploy.bundle import DEFAULT_COMPANIONS, DeployOptions, companion_label
from app.services.deploy.pipeline import PipelineFailed, follow
from app.services.deploy.stacks import CLOCK_SKEW, RECREATE, UPDATABLE, StackLine, Stacks
from app.services.errors import UserError
from app.services.lanes import Lane, lane
from app.services.model_catalog import MAIN_FAMILIES, ModelCatalog, ModelChoice
from app.services.progress import Progress
from app.services.settings import AppDirs, Settings, load_settings, save_settings
from contract import COMPANION_PARAMS, ENDPOINT_PARAM, MODEL_DATA_PARAM, MODEL_IMAGE_PARAM, ssm_name, ssm_prefix
from contract.families import MARKETPLACE_FEE, family_named
from infra.config import Config

log = logging.getLogger(__name__)

BOOTSTRAP_STACK = "CDKToolkit"
#: Where BuildModel puts a model's data (infra/model_build/resolve.destination_for): the id is its first folder.
_MODEL_DATA = re.compile(r"^s3://[^/]+/models/([^/]+)/[^/]+/model\.tar\.gz$")
BOOTSTRAP_TEMPLATE = "bootstrap-template.yaml"
#: Where copies of templates too large to send inline go, in the CDK staging bucket.
TEMPLATE_PREFIX = "diffusion-desk/templates/"
MAX_TEMPLATE_BODY = 51_200
STACK_PARTS = ("endpoint", "pipeline", "source")  # in teardown order
BUCKET = "AWS::S3::Bucket"
#: The budget guard's resources (in the endpoint stack, so deleting it deletes them).
GUARD_TYPES = ("AWS::Budgets::Budget", "AWS::CloudWatch::Alarm")
#: What `cdk bootstrap` passes for a new bootstrap stack without --bootstrap-customer-key:
#: S3's own key, no paid KMS key.
BOOTSTRAP_CREATE_PARAMETERS = {"FileAssetsBucketKmsKeyId": "AWS_MANAGED_KEY"}
#: Runs of a pipeline that are still going (ListPipelineExecutions statuses).
RUNNING = ("InProgress", "Stopping")

#: A new instance type replaces the endpoint (AWS refuses to change a scaled variant in place).
REPLACED_ENDPOINT = (
    "Warning: {before} → {after} replaces the endpoint. The new one takes the new jobs once it is "
    "ready; jobs still waiting on the old one when it is deleted are lost: wait for them, or resend them."
)

Events = Generator[Progress, None, Any]
SettingsUpdate = Callable[[Callable[[Settings], Any]], Any]
#: The deployer counts in percent of the whole operation; what it yields is the services' one Progress.
_at = Progress.at_percent


@dataclass(frozen=True, slots=True)
class Preflight:
    account: str
    region: str
    bootstrap_version: int | None
    warnings: tuple[str, ...] = ()
    model: ModelChoice | None = None
    #: Each chosen companion resolved, by family name.
    companions: dict[str, ModelChoice] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ModelOffer:
    """What the Deploy tab may offer on an instance type, read from JumpStart on a worker."""

    #: Main models usable on the type (text-to-image and SDXL), by JumpStart id.
    models: tuple[str, ...]
    #: Marketplace models JumpStart lists for the main endpoint, with why they are not offered (or "").
    marketplace: dict[str, str] = field(default_factory=dict)
    #: The companions the deployment has now (family → model id); None when it is not deployed.
    deployed: dict[str, str] | None = None
    #: Each companion family's models usable on the type (family → JumpStart ids), as preflight judges them.
    companions: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TeardownPlan:
    """What teardown deletes, named, for the user to confirm; teardown takes only this."""

    account: str
    region: str
    deployment: str
    stacks: tuple[str, ...] = ()
    buckets: tuple[str, ...] = ()
    parameters: tuple[str, ...] = ()
    log_groups: tuple[str, ...] = ()
    template_copies: tuple[str, ...] = ()
    #: The budget and the alarms, listed for the user; they go with the endpoint stack.
    guard: tuple[str, ...] = ()
    kept: tuple[str, ...] = field(
        default=(
            "the CDK bootstrap stack CDKToolkit and its staging bucket (other CDK apps in the account may use them)",
            "the images already in your library on this computer",
        )
    )

    @property
    def empty(self) -> bool:
        return not (self.stacks or self.buckets or self.parameters or self.log_groups or self.template_copies)

    def describe(self) -> str:
        """The confirmation text: every stack, bucket (with all its files) and parameter by name."""
        if self.empty:
            return f"Nothing of deployment {self.deployment!r} is left in {self.region} (account {self.account})."
        lines = [f"This deletes deployment {self.deployment!r} in {self.region} (account {self.account}):"]
        sections = (
            ("CloudFormation stacks, with the endpoint, topics, functions and pipeline they hold", self.stacks),
            ("The budget and alarms, deleted with the endpoint stack", self.guard),
            ("S3 buckets, emptied first: every request, output and image in them is lost", self.buckets),
            ("SSM parameters", self.parameters),
            ("Build and endpoint logs", self.log_groups),
            ("Template copies in the CDK staging bucket", self.template_copies),
        )
        for title, names in sections:
            if names:
                lines.append(f"\n{title}:")
                lines.extend(f"  • {name}" for name in names)
        lines.append("\nKept: " + "; ".join(self.kept) + ".")
        return "\n".join(lines)


class Deployer:
    """Deploys one deployment (named in the user's config.toml) into the connection's account and region."""

    #: The pipeline deploys a Marketplace model (SDXL 1.0) from the seller's model package: Synth resolves it to the
    #: region's package (infra/model_build/resolve.py), BuildModel has nothing to build, and the endpoint's model
    #: runs that package in network isolation. Preflight names the listing and needs the user's word that the
    #: account is subscribed (`DeployOptions.marketplace_subscribed`).
    deploys_model_packages = True

    def __init__(
        self,
        connection: Connection,
        dirs: AppDirs,
        *,
        update_settings: SettingsUpdate | None = None,
        deployment: str | None = None,
        templates: Path | None = None,
        source_dir: Path | None = None,
        poll_seconds: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
        pipeline_timeout: float = 4 * 3600,
    ) -> None:
        self.connection = connection
        self.dirs = dirs
        self.deployment = deployment  # another deployment than config.toml's (the CLI's --deployment)
        # The running app's Session.update_settings (its lock, its save); alone, the settings file is changed directly.
        self._update_settings = update_settings or partial(_update_file, dirs)
        self.templates = templates or deploy_bundle.templates_dir()
        self.source_dir = source_dir
        self.poll_seconds = poll_seconds
        self.sleep = sleep
        self.pipeline_timeout = pipeline_timeout
        self.stacks = Stacks(connection.client("cloudformation"), poll_seconds=poll_seconds, sleep=sleep)
        # One attempt: where Service Quotas does not answer, retrying does not help.
        self.quotas = connection.session.client(
            "service-quotas",
            region_name=connection.region,
            endpoint_url=connection.endpoint_url,
            config=client_config(max_attempts=1),
        )

    @property
    def region(self) -> str:
        return self.connection.region

    def config(self) -> Config:
        config = deploy_bundle.parse(deploy_bundle.read_config_text(self.dirs, self.source_dir))
        return config if self.deployment is None else replace(config, deployment=self.deployment)

    def options(self) -> DeployOptions:
        return deploy_bundle.load_options(self.dirs, self.source_dir)

    @lane(Lane.NETWORK)
    def preflight(self, options: DeployOptions, *, newest_model: bool = False) -> Events:
        """Credentials, region, model, SageMaker quota and CDK bootstrap; returns a Preflight.

        The model is resolved from JumpStart's metadata; `newest_model` (Update) moves to the newest usable version.
        """
        step = "Checking your AWS account"
        yield _at(step, 0, f"Checking the credentials ({self.connection.source.describe()})")
        identity = self.connection.identity()
        yield _at(step, 1, f"Account {identity.account}, signed in as {identity.arn}")
        offered = self.connection.session.get_available_regions("sagemaker")
        if offered and self.region not in offered and self.connection.endpoint_url is None:
            raise UserError(
                f"SageMaker is not offered in {self.region}.", hint="Choose another region on the Connection page."
            )
        yield _at(step, 2, f"Region {self.region}")
        catalog = ModelCatalog(self.connection.s3, self.region, marketplace=self.deploys_model_packages)
        model = yield from self._model(catalog, options, newest_model, step)
        companions = {}
        for family_name, model_id in (options.companions or {}).items():
            companions[family_name] = yield from self._companion(
                catalog, options, family_name, model_id, newest_model, step
            )
        warnings = []
        if model.marketplace:
            warnings.append(MARKETPLACE_ASYNC)
        for instance_type, endpoints in _endpoints_by_type(options).items():
            yield from self._check_quota(instance_type, endpoints, options.max_instances, warnings, step)
        for warning in warnings:
            yield _at(step, 3, f"Warning: {warning}")
        version = self._bootstrap_version()
        yield _at(
            step,
            4,
            f"CDK bootstrap: version {version}"
            if version is not None
            else "CDK bootstrap: not found in this account and region",
        )
        return Preflight(identity.account, self.region, version, tuple(warnings), model, companions)

    def _model(self, catalog: ModelCatalog, options: DeployOptions, newest: bool, step: str) -> Iterator[Progress]:
        """The configured model and version as JumpStart offers them here; UserError lists what is usable."""
        pinned = self.config().model.version
        return (
            yield from self._resolve(catalog, options, options.model_id, pinned, options.instance_type, newest, step)
        )

    def _companion(
        self, catalog: ModelCatalog, options: DeployOptions, family_name: str, model_id: str, newest: bool, step: str
    ) -> Iterator[Progress]:
        """One companion checked as the main model is, on its instance type, against its family's models."""
        pinned = deploy_bundle.saved_companion_versions(deploy_bundle.read_config_text(self.dirs, self.source_dir))
        instance_type = options.companion_instance_types.get(family_name) or options.instance_type
        return (
            yield from self._resolve(
                catalog,
                options,
                model_id,
                pinned.get(family_name, "*"),
                instance_type,
                newest,
                step,
                role=family_name,
            )
        )

    def _resolve(
        self,
        catalog: ModelCatalog,
        options: DeployOptions,
        model_id: str,
        pinned: str,
        instance_type: str,
        newest: bool,
        step: str,
        *,
        role: str | None = None,
    ) -> Iterator[Progress]:
        """A model (the main one, or the companion of family `role`) resolved; Marketplace models checked."""
        what = f"{companion_label(role)} companion" if role else "Model"
        families = (family_named(role),) if role else MAIN_FAMILIES
        section = f"[companions.{role}]" if role else "[model]"
        self._check_marketplace_deployable(catalog, model_id)
        wanted = pinned
        if newest or "*" in pinned:
            wanted = catalog.newest_usable(model_id, instance_type) or pinned
        choice = catalog.resolve(model_id, wanted, instance_type, families, section)
        if choice.version != pinned:
            yield _at(step, 2, f"{what} {choice.model_id}: version {pinned} → {choice.version} used")
        elif choice.newer_available:
            yield _at(
                step,
                2,
                f"{what} {choice.model_id}: version {choice.version} → {choice.newest} available "
                "(press Update to use it)",
            )
        if choice.marketplace:
            if not options.marketplace_subscribed:
                raise UserError(
                    f"{choice.model_id} is an AWS Marketplace model: JumpStart serves it from the seller's model "
                    f"package, which your account must be subscribed to at {choice.listing or 'its listing'} "
                    "before it can be deployed.",
                    hint="Subscribe there (the listing names the software's price per hour), then deploy again and "
                    "confirm it (“My account is subscribed” in Settings → Deploy, or --marketplace-subscribed). "
                    "Nothing was deployed.",
                )
            yield _at(
                step,
                2,
                f"{what} {choice.model_id} is an AWS Marketplace model ({choice.listing}): you confirmed the "
                f"account is subscribed; it is billed per instance-hour {MARKETPLACE_FEE}",
            )
        yield _at(step, 2, f"{what} {choice.model_id} version {choice.version} on {instance_type}")
        return choice

    def _check_marketplace_deployable(self, catalog: ModelCatalog, model_id: str) -> None:
        """A Marketplace model is refused, saying why, while the pipeline cannot deploy a model package."""
        spec = catalog.marketplace_spec(model_id)
        if spec is None or self.deploys_model_packages:
            return
        listing = f" (listing: {spec.subscription_link})" if spec.subscription_link else ""
        raise UserError(
            f"{model_id} is an AWS Marketplace model{listing}: JumpStart serves it from the seller's model package "
            f"{spec.model_package(self.region) or '(none in ' + self.region + ')'}, and this app's pipeline cannot "
            "deploy a model package yet: it builds each endpoint from JumpStart's open weights and hosting image.",
            hint="Choose an open-weights model (a model-txt2img-… one). Nothing was deployed.",
        )

    @lane(Lane.NETWORK)
    def offer(self, instance_type: str) -> ModelOffer:
        """The main and companion models JumpStart offers on the type and the companions the deployment has,
        for the Deploy tab."""
        catalog = ModelCatalog(self.connection.s3, self.region, marketplace=self.deploys_model_packages)
        marketplace = {}
        for model_id in catalog.model_ids(MAIN_FAMILIES):
            spec = catalog.marketplace_spec(model_id)
            if spec is not None:
                marketplace[model_id] = (
                    "" if self.deploys_model_packages else "an AWS Marketplace model: the app cannot deploy it yet"
                )
        companions = {f: tuple(catalog.usable_models(instance_type, (family_named(f),))) for f in DEFAULT_COMPANIONS}
        return ModelOffer(
            tuple(catalog.usable_models(instance_type)), marketplace, self.deployed_companions(), companions
        )

    @lane(Lane.NETWORK)
    def deployed_companions(self) -> dict[str, str] | None:
        """The companions the deployment has (family → model id), from its SSM parameters; None if not deployed.

        The model id is the one the companion's endpoint runs (its model's data under `models/<id>/`, where
        BuildModel put it), so a model deployed from another computer is kept; where that cannot be read,
        the one the user's config.toml names for the family, else the family's default.
        """
        config = self.config()
        names = {ssm_name(config.deployment, p): f for f, p in COMPANION_PARAMS.items()}
        endpoint = ssm_name(config.deployment, ENDPOINT_PARAM)
        try:
            found = self.connection.client("ssm").get_parameters(Names=[endpoint, *names])["Parameters"]
        except (BotoCoreError, ClientError) as exc:
            raise UserError(f"The deployment's SSM parameters could not be read ({error_code(exc)}).") from None
        values = {p["Name"]: p["Value"] for p in found if p.get("Value")}
        if endpoint not in values:
            return None
        saved = deploy_bundle.saved_companions(deploy_bundle.read_config_text(self.dirs, self.source_dir))
        return {
            family: self._deployed_model_id(values[name]) or saved.get(family) or DEFAULT_COMPANIONS[family]
            for name, family in names.items()
            if name in values
        }

    def _deployed_model_id(self, endpoint_name: str) -> str:
        """The JumpStart model id an endpoint runs: DescribeEndpoint → its endpoint config → its model's data URL
        (`s3://<bucket>/models/<id>/<digest>/model.tar.gz`); "" when it cannot be read or says no id."""
        sagemaker = self.connection.client("sagemaker")
        try:
            config_name = sagemaker.describe_endpoint(EndpointName=endpoint_name)["EndpointConfigName"]
            variants = sagemaker.describe_endpoint_config(EndpointConfigName=config_name)["ProductionVariants"]
            model = sagemaker.describe_model(ModelName=variants[0]["ModelName"])
        except (BotoCoreError, ClientError, KeyError, IndexError) as exc:
            code = error_code(exc) if isinstance(exc, ClientError) else type(exc).__name__
            log.info("the model of %s is unknown: %s", endpoint_name, code)
            return ""
        url = (model.get("PrimaryContainer") or {}).get("ModelDataUrl") or ""
        match = _MODEL_DATA.match(url)
        return match[1] if match else ""

    @lane(Lane.LONG)
    def deploy(self, options: DeployOptions) -> Events:
        """Everything from an empty account to a working target; returns the Target, now active."""
        return (yield from self._run(options, updating=False))

    @lane(Lane.LONG)
    def update(self, options: DeployOptions) -> Events:
        """Changed config → new bundle → pipeline; the stacks are brought up to date on the way."""
        return (yield from self._run(options, updating=True))

    def _run(self, options: DeployOptions, *, updating: bool) -> Events:
        deploy_bundle.check_models(options)
        config = self.config()
        if updating:
            missing = [
                name
                for name in (config.stack_name("source"), config.stack_name("pipeline"))
                if self.stacks.status(name) not in UPDATABLE
            ]
            if missing:
                raise UserError(
                    f"There is no complete deployment in {self.region} to update ({', '.join(missing)} missing).",
                    hint="Press Deploy.",
                )
        before = config.model.instance_type
        if options.companions is None:  # keep those the deployment has (a first deploy: those config.toml names)
            deployed = self.deployed_companions()
            kept = deployed if deployed is not None else self.options().companions
            options = replace(options, companions=kept or {})
        text, config = deploy_bundle.configure(
            self.dirs, options, self.region, self.source_dir, deployment=self.deployment
        )
        # Each companion on the instance type config.toml now gives it (one kept from before, unless told another).
        options = replace(options, companion_instance_types={f: m.instance_type for f, m in config.companions.items()})
        yield _at(
            "Saving your choices",
            0,
            f"Model {config.model.id} on {config.model.instance_type}, "
            f"0 to {config.endpoint.max_instances} instances, in {config.region}",
        )
        yield _at("Saving your choices", 0, _guard_line(config))
        yield _at("Saving your choices", 0, _companions_line(options))
        if updating and before != config.model.instance_type:
            yield _at(
                "Saving your choices", 0, REPLACED_ENDPOINT.format(before=before, after=config.model.instance_type)
            )
        preflight = yield from self.preflight(options, newest_model=updating)
        if preflight.model is not None and preflight.model.version != config.model.version:
            text, config = deploy_bundle.pin_model_version(self.dirs, preflight.model.version, self.source_dir)
        pinned = deploy_bundle.saved_companion_versions(text)
        moved = {f: c.version for f, c in preflight.companions.items() if pinned.get(f) != c.version}
        if moved:
            text, config = deploy_bundle.pin_companion_versions(self.dirs, moved, self.source_dir)
        staging = yield from self._bootstrap(preflight)
        yield from self._stack(config, "source", staging, 12, 18)
        # CodePipeline runs a pipeline once when it is created: the source must be there before it.
        version = yield from self._upload(config, text, self.stacks.outputs(config.stack_name("source")))
        since = datetime.now(UTC)
        yield from self._stack(config, "pipeline", staging, 20, 35)
        yield from self._pipeline(config, version, since)
        step = "Connecting the app"
        yield _at(step, 98, f"Reading the SSM parameters under {ssm_prefix(config.deployment)}")
        target = load_target(self.connection, config.deployment)
        self._activate(target)
        yield _at(step, 100, f"Ready: endpoint {target.endpoint_name}, bucket {target.bucket} in {target.region}")
        return target

    def _bootstrap(self, preflight: Preflight) -> Events:
        """Deploy the CDK bootstrap stack when it is missing or too old; returns the staging bucket."""
        step = "Preparing the account for CDK"
        qualifier, too_old = self._bootstrap_requirement()
        if preflight.bootstrap_version is None or str(preflight.bootstrap_version) in too_old:
            yield _at(step, 6, f"Deploying the CDK bootstrap stack {BOOTSTRAP_STACK} (qualifier {qualifier})")
            body = (self.templates / BOOTSTRAP_TEMPLATE).read_text(encoding="utf-8")
            yield from _scaled(
                self.stacks.deploy(BOOTSTRAP_STACK, body, parameters=self._bootstrap_parameters()), step, 6, 12
            )
        else:
            yield _at(step, 12, f"CDK bootstrap version {preflight.bootstrap_version} is ready")
        return self._staging_bucket(preflight.account, assumed=True)

    def _bootstrap_parameters(self) -> list[dict[str, Any]]:
        """As `cdk bootstrap` does: S3's managed key for a new stack; on update every existing value is kept."""
        stack = self.stacks.describe(BOOTSTRAP_STACK)
        if stack is None or stack["StackStatus"] in RECREATE:
            return [{"ParameterKey": k, "ParameterValue": v} for k, v in BOOTSTRAP_CREATE_PARAMETERS.items()]
        declared = _template_parameters((self.templates / BOOTSTRAP_TEMPLATE).read_text(encoding="utf-8"))
        existing = {p["ParameterKey"] for p in stack.get("Parameters") or []} & declared
        kept = [{"ParameterKey": key, "UsePreviousValue": True} for key in sorted(existing)]
        added = [
            {"ParameterKey": k, "ParameterValue": v}
            for k, v in BOOTSTRAP_CREATE_PARAMETERS.items()
            if k not in existing
        ]
        return kept + added

    def _stack(self, config: Config, part: str, staging: str, low: float, high: float) -> Iterator[Progress]:
        name = config.stack_name(part)
        step = f"Deploying the {part} stack"
        text = self._template_text(part, config.source_kind)
        count = len(json.loads(text).get("Resources", {}))
        compact = json.dumps(json.loads(text), separators=(",", ":"))
        url = None
        if len(compact.encode()) > MAX_TEMPLATE_BODY:
            url = self._template_url(staging, f"{part}-{config.source_kind}", compact)
        yield _at(step, low, f"{name}: {count} resources")
        yield from _scaled(self.stacks.deploy(name, compact, template_url=url, resource_count=count), step, low, high)

    def _upload(self, config: Config, text: str, source: dict[str, str]) -> Generator[Progress, None, str | None]:
        """Put the source where the pipeline reads it; returns its revision (S3 version or commit id), if known."""
        step = "Uploading the cloud code"
        if config.source_kind == "codecommit":
            return (yield from self._commit(source["RepositoryName"], source.get("Branch") or "main", text))
        bucket, key = source["BucketName"], source.get("SourceKey") or "source.zip"
        with tempfile.TemporaryDirectory(prefix="diffusion-desk-") as folder:
            bundle = deploy_bundle.build_bundle(text, Path(folder) / "source.zip", self.source_dir)
            data = bundle.read_bytes()
        yield _at(
            step, 19, f"source.zip: {len(data) / 1024:.0f} kB of infra/, lambdas/, contract/ and your config.toml"
        )
        try:
            reply = self.connection.s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType="application/zip")
        except (BotoCoreError, ClientError) as exc:
            raise UserError(f"Uploading the cloud code to s3://{bucket}/{key} failed ({error_code(exc)}).") from None
        yield _at(step, 20, f"Uploaded to s3://{bucket}/{key}")
        return reply.get("VersionId")

    def _commit(self, repository: str, branch: str, text: str) -> Generator[Progress, None, str | None]:
        """One CodeCommit commit through its API (no git needed): every bundle file, stale files deleted."""
        step = "Committing the cloud code"
        codecommit = self.connection.client("codecommit")
        parent = None
        try:
            parent = codecommit.get_branch(repositoryName=repository, branchName=branch)["branch"]["commitId"]
        except ClientError as exc:
            if error_code(exc) not in ("BranchDoesNotExistException", "CommitDoesNotExistException"):
                raise UserError(f"CodeCommit refused to read the repository {repository}: {_message(exc)}") from None
        files = dict(deploy_bundle.bundle_files(text, self.source_dir))
        stale: list[str] = []
        if parent:
            paginator = codecommit.get_paginator("get_differences")
            for page in paginator.paginate(repositoryName=repository, afterCommitSpecifier=parent):
                for difference in page.get("differences", []):
                    path = (difference.get("afterBlob") or {}).get("path")
                    if path and path not in files:
                        stale.append(path)
        request: dict[str, Any] = {
            "repositoryName": repository,
            "branchName": branch,
            "authorName": "Diffusion Desk",
            "commitMessage": "Cloud code and config from Diffusion Desk",
            "putFiles": [{"filePath": path, "fileContent": data} for path, data in files.items()],
        }
        if stale:
            request["deleteFiles"] = [{"filePath": path} for path in stale]
        if parent:
            request["parentCommitId"] = parent
        yield _at(step, 19, f"{len(files)} files to {repository} ({branch})")
        try:
            commit = codecommit.create_commit(**request)["commitId"]
            yield _at(step, 20, f"Committed {commit[:10]}" + (f", {len(stale)} old files removed" if stale else ""))
            return commit
        except ClientError as exc:
            if error_code(exc) != "NoChangeException":
                raise UserError(f"CodeCommit refused the commit to {repository}: {_message(exc)}") from None
            yield _at(step, 20, "The repository already holds this code")
            return parent

    def _pipeline(self, config: Config, revision: str | None, since: datetime) -> Iterator[Progress]:
        """Follow the run that creating (or updating) the pipeline started for this source; start one if none did."""
        step = "Building the model and the endpoint"
        name = self.stacks.outputs(config.stack_name("pipeline"))["PipelineName"]
        client = self.connection.client("codepipeline")
        started = since
        execution = self._running(client, name, revision, since)
        if execution:
            yield _at(
                step,
                41,
                f"Pipeline {name} is already running for this code (run {execution}): "
                "following it; the model build takes a while",
            )
        else:
            try:
                execution = client.start_pipeline_execution(name=name)["pipelineExecutionId"]
            except (BotoCoreError, ClientError) as exc:
                raise UserError(f"The pipeline {name} could not be started: {_message(exc)}") from None
            yield _at(step, 41, f"Pipeline {name} started (run {execution}); the model build takes a while")
        try:
            yield from _scaled(
                follow(
                    client,
                    name,
                    execution,
                    poll_seconds=self.poll_seconds * 2,
                    sleep=self.sleep,
                    timeout=self.pipeline_timeout,
                ),
                step,
                41,
                97,
            )
        except PipelineFailed as failed:
            reason = self.stacks.failure_reason(config.stack_name("endpoint"), since=started)
            if reason:
                raise PipelineFailed(
                    f"{failed.args[0]} {reason}", stage=failed.stage, action=failed.action, hint=failed.hint
                ) from None
            raise

    def _running(self, client: Any, name: str, revision: str | None, since: datetime) -> str | None:
        """A run in progress on this source revision, or (revision not read yet) started since `since`."""
        try:
            summaries = client.list_pipeline_executions(pipelineName=name, maxResults=10).get(
                "pipelineExecutionSummaries", []
            )
        except (BotoCoreError, ClientError) as exc:
            raise UserError(f"The runs of the pipeline {name} could not be listed: {_message(exc)}") from None
        for summary in summaries:
            if summary.get("status") not in RUNNING:
                continue
            revisions = {r.get("revisionId") for r in summary.get("sourceRevisions") or []}
            when = summary.get("startTime")
            if revisions:
                if revision is not None and revision in revisions:
                    return summary["pipelineExecutionId"]
            elif isinstance(when, datetime) and when >= since - CLOCK_SKEW:
                return summary["pipelineExecutionId"]
        return None

    @lane(Lane.NETWORK)
    def plan_teardown(self) -> TeardownPlan:
        """Everything teardown would delete, by name; nothing is touched."""
        config = self.config()
        identity = self.connection.identity()
        stacks, buckets, log_groups, guard = [], [], [], []
        for part in STACK_PARTS:
            name = config.stack_name(part)
            if self.stacks.describe(name) is not None:
                stacks.append(name)
                buckets.extend(self.stacks.resources(name, BUCKET))
                if part == "endpoint":
                    guard.extend(found for kind in GUARD_TYPES for found in self.stacks.resources(name, kind))
                log_groups.extend(
                    f"/aws/codebuild/{project}" for project in self.stacks.resources(name, "AWS::CodeBuild::Project")
                )
        log_groups.extend(self._endpoint_log_groups(config))
        return TeardownPlan(
            identity.account,
            self.region,
            config.deployment,
            tuple(stacks),
            tuple(buckets),
            tuple(self._parameters(config)),
            tuple(log_groups),
            tuple(self._template_copies(identity.account)),
            tuple(guard),
        )

    @lane(Lane.LONG)
    def teardown(self, plan: TeardownPlan) -> Events:
        """Delete what the confirmed plan names: endpoint, buckets (all versions), pipeline, source."""
        if not isinstance(plan, TeardownPlan):
            raise UserError("Teardown needs the confirmed list of what it deletes.")
        if plan.region != self.region or plan.deployment != self.config().deployment:
            raise UserError(
                f"The confirmed teardown was for {plan.deployment!r} in {plan.region}, not this connection.",
                hint="Press Tear down again.",
            )
        try:
            return (yield from self._tear_down(plan))
        except (UserError, BotoCoreError, ClientError) as exc:
            why = exc.args[0] if isinstance(exc, UserError) else f"AWS refused a request ({error_code(exc)})."
            raise UserError(
                f"Teardown stopped part-way, so some of deployment {plan.deployment!r} is left: {why}",
                hint="Press Tear down again: it lists and deletes only what is left.",
            ) from None

    def _tear_down(self, plan: TeardownPlan) -> Events:
        share = 85 / max(len(plan.stacks), 1)
        for n, name in enumerate(plan.stacks):
            step, low = f"Deleting {name}", n * share
            buckets = self.stacks.resources(name, BUCKET)
            yield from self._empty(buckets, step, low)

            def retry(b: list[str] = buckets, s: str = step, p: float = low) -> Iterator[StackLine]:
                return _as_lines(self._empty(b, s, p))  # late logs make buckets non-empty

            yield from _scaled(self.stacks.delete(name, before_retry=retry), step, low, low + share)
            yield from self._delete_buckets(buckets, step, low + share)
        step = "Removing the rest"
        yield from self._delete_buckets(list(plan.buckets), step, 88)
        self._delete_parameters(plan.parameters)
        yield _at(step, 92, f"Deleted {len(plan.parameters)} SSM parameters")
        logs = self.connection.client("logs")
        for group in plan.log_groups:
            try:
                logs.delete_log_group(logGroupName=group)
            except ClientError as exc:
                if error_code(exc) != "ResourceNotFoundException":
                    raise UserError(f"The log group {group} could not be deleted: {_message(exc)}") from None
        self._delete_template_copies(plan)
        self._forget(plan.deployment)
        yield _at(step, 100, f"Deployment {plan.deployment!r} is gone from {plan.region}")

    def _empty(self, buckets: list[str], step: str, percent: float) -> Iterator[Progress]:
        """Delete every object version and delete marker, so CloudFormation can delete the bucket."""
        for bucket in buckets:
            try:
                count = self._delete_versions(bucket)
            except ClientError as exc:
                if error_code(exc) in ("NoSuchBucket", "404"):
                    continue
                raise UserError(f"The bucket {bucket} could not be emptied: {_message(exc)}") from None
            yield _at(step, percent, f"Emptied s3://{bucket} ({count} object versions)")

    def _delete_buckets(self, buckets: list[str], step: str, percent: float) -> Iterator[Progress]:
        """Buckets that outlived their stack (kept by a retain policy) are deleted too."""
        s3 = self.connection.s3
        for bucket in buckets:
            try:
                s3.head_bucket(Bucket=bucket)
            except ClientError:
                continue
            yield from self._empty([bucket], step, percent)
            try:
                s3.delete_bucket(Bucket=bucket)
            except ClientError as exc:
                if error_code(exc) not in ("NoSuchBucket", "404"):
                    raise UserError(f"The bucket {bucket} could not be deleted: {_message(exc)}") from None
            yield _at(step, percent, f"Deleted the bucket {bucket}")

    def _endpoint_log_groups(self, config: Config) -> list[str]:
        """The endpoints' log groups (the main one's and each companion's), which SageMaker creates and no stack
        owns."""
        params = [ssm_name(config.deployment, p) for p in (ENDPOINT_PARAM, *COMPANION_PARAMS.values())]
        try:
            found = self.connection.client("ssm").get_parameters(Names=params)["Parameters"]
        except ClientError:
            return []
        values = {p["Name"]: p["Value"] for p in found if p.get("Value")}
        logs, groups = self.connection.client("logs"), []
        for param in params:
            if param not in values:
                continue
            name = f"/aws/sagemaker/Endpoints/{values[param].rpartition('endpoint/')[2]}"
            try:
                listed = logs.describe_log_groups(logGroupNamePrefix=name).get("logGroups", [])
            except ClientError as exc:
                raise UserError(f"The endpoint's log group could not be listed ({error_code(exc)}).") from None
            groups += [g["logGroupName"] for g in listed if g["logGroupName"] == name]
        return groups

    def _parameters(self, config: Config) -> list[str]:
        """Every SSM parameter of the deployment, including the model build's, which no stack owns."""
        names = {ssm_name(config.deployment, p) for p in (MODEL_IMAGE_PARAM, MODEL_DATA_PARAM)}
        ssm = self.connection.client("ssm")
        found = set()
        try:
            for page in ssm.get_paginator("get_parameters_by_path").paginate(
                Path=ssm_prefix(config.deployment), Recursive=True
            ):
                found.update(p["Name"] for p in page.get("Parameters", []))
            found.update(p["Name"] for p in ssm.get_parameters(Names=sorted(names)).get("Parameters", []))
        except (BotoCoreError, ClientError) as exc:
            raise UserError(f"The deployment's SSM parameters could not be listed ({error_code(exc)}).") from None
        return sorted(found)

    def _delete_parameters(self, names: tuple[str, ...]) -> None:
        ssm = self.connection.client("ssm")
        for start in range(0, len(names), 10):
            try:
                ssm.delete_parameters(Names=list(names[start : start + 10]))
            except ClientError as exc:
                raise UserError(f"The SSM parameters could not be deleted: {_message(exc)}") from None

    def _staging_bucket(self, account: str, *, assumed: bool = False) -> str | None:
        """The CDK staging bucket: the bootstrap stack's output, else the name `cdk bootstrap` gives it.

        Without a bootstrap stack: None, or (`assumed`, while deploying) that conventional name anyway.
        """
        bootstrapped = self.stacks.status(BOOTSTRAP_STACK) is not None
        if not bootstrapped and not assumed:
            return None
        qualifier, _ = self._bootstrap_requirement()
        outputs = self.stacks.outputs(BOOTSTRAP_STACK) if bootstrapped else {}
        return outputs.get("BucketName") or f"cdk-{qualifier}-assets-{account}-{self.region}"

    def _template_copies(self, account: str) -> list[str]:
        bucket = self._staging_bucket(account)
        if bucket is None:
            return []
        try:
            pages = self.connection.s3.get_paginator("list_object_versions").paginate(
                Bucket=bucket, Prefix=TEMPLATE_PREFIX
            )
            return sorted({f"s3://{bucket}/{v['Key']}" for page in pages for v in page.get("Versions", [])})
        except ClientError:
            return []

    def _delete_template_copies(self, plan: TeardownPlan) -> None:
        bucket = self._staging_bucket(plan.account)
        if bucket and plan.template_copies:
            self._delete_versions(bucket, TEMPLATE_PREFIX)

    def _delete_versions(self, bucket: str, prefix: str = "") -> int:
        """Delete every object version and delete marker under `prefix`; returns how many there were."""
        s3 = self.connection.s3
        count = 0
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
            doomed = [
                {"Key": v["Key"], "VersionId": v["VersionId"]}
                for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
            ]
            for start in range(0, len(doomed), 1000):
                s3.delete_objects(Bucket=bucket, Delete={"Objects": doomed[start : start + 1000], "Quiet": True})
            count += len(doomed)
        return count

    def _template_text(self, part: str, source_kind: str) -> str:
        suffix = "" if source_kind == "s3" else f"-{source_kind}"
        path = self.templates / f"{part}{suffix}.template.json"
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise UserError(f"The app's template {path.name} is missing.", hint="Reinstall the app.") from None

    def _template_url(self, bucket: str, name: str, body: str) -> str:
        """Put a template too large to send inline into the CDK staging bucket, as `cdk deploy` does."""
        key = f"{TEMPLATE_PREFIX}{name}-{hashlib.sha256(body.encode()).hexdigest()[:16]}.json"
        try:
            self.connection.s3.put_object(Bucket=bucket, Key=key, Body=body.encode(), ContentType="application/json")
        except (BotoCoreError, ClientError) as exc:
            raise UserError(
                f"The template could not be put into the CDK staging bucket {bucket} ({error_code(exc)}).",
                hint="The CDK bootstrap stack may be damaged: delete CDKToolkit and deploy again.",
            ) from None
        return f"https://s3.{self.region}.amazonaws.com/{bucket}/{key}"

    def _bootstrap_requirement(self) -> tuple[str, set[str]]:
        """The qualifier and the versions too old for the templates, read from the source template."""
        template = json.loads(self._template_text("source", "s3"))
        parameter = (
            template.get("Parameters", {})
            .get("BootstrapVersion", {})
            .get("Default", "/cdk-bootstrap/hnb659fds/version")
        )
        qualifier = parameter.strip("/").split("/")[1]
        too_old: set[str] = set()
        for assertion in template.get("Rules", {}).get("CheckBootstrapVersion", {}).get("Assertions", []):
            contains = assertion.get("Assert", {}).get("Fn::Not", [{}])[0].get("Fn::Contains", [[]])
            too_old.update(str(v) for v in contains[0])
        return qualifier, too_old

    def _bootstrap_version(self) -> int | None:
        qualifier, _ = self._bootstrap_requirement()
        try:
            value = self.connection.client("ssm").get_parameter(Name=f"/cdk-bootstrap/{qualifier}/version")[
                "Parameter"
            ]["Value"]
        except ClientError as exc:
            if error_code(exc) == "ParameterNotFound":
                return None
            raise UserError(f"The CDK bootstrap version could not be read: {_message(exc)}") from None
        return int(value) if value.isdigit() else None

    def _check_quota(
        self, instance_type: str, endpoints: int, max_instances: int, warnings: list[str], step: str
    ) -> Events:
        """The quota of `instance_type` against what its `endpoints` (the main one, companions) may all run at once:
        0 is refused, less than that is a warning (the endpoints will not all scale out), unknown is a warning."""
        quota, why = self._endpoint_quota(instance_type)
        wanted = endpoints * max_instances
        if quota is None:
            warnings.append(
                f"The SageMaker quota for {instance_type} could not be read ({why}). If the "
                "endpoint fails to start, request an increase in the Service Quotas console."
            )
        elif quota < 1:
            raise UserError(
                f"Your account may run no {instance_type} endpoint instances in {self.region} (quota 0).",
                hint=f"Request an increase of '{instance_type} for endpoint usage' in the Service Quotas "
                "console, or choose another instance type.",
            )
        elif quota < wanted:
            of = f"{max_instances} chosen" if endpoints == 1 else f"{wanted} its {endpoints} endpoints may use"
            warnings.append(
                f"The quota allows {quota:g} {instance_type} instances, fewer than the {of}: "
                f"{'the endpoint' if endpoints == 1 else 'together they'} will not scale beyond {quota:g}."
            )
        else:
            yield _at(step, 3, f"Quota: up to {quota:g} {instance_type} endpoint instances")

    def _endpoint_quota(self, instance_type: str) -> tuple[float | None, str]:
        """The applied quota '<type> for endpoint usage', or None and why it is unknown."""
        wanted = f"{instance_type} for endpoint usage"
        try:
            for page in self.quotas.get_paginator("list_service_quotas").paginate(ServiceCode="sagemaker"):
                for quota in page.get("Quotas", []):
                    if quota.get("QuotaName") == wanted:
                        return float(quota["Value"]), ""
        except (BotoCoreError, ClientError) as exc:
            return None, f"Service Quotas did not answer: {error_code(exc) or type(exc).__name__}"
        return None, f"Service Quotas lists no '{wanted}'"

    def _activate(self, target: Target) -> None:
        """The deployed target becomes the app's active target."""

        def activate(settings: Settings) -> None:
            record_target(settings, target)
            settings.mode = "aws"

        self._update_settings(activate)

    def _forget(self, deployment: str) -> None:
        """The torn-down deployment is no longer a target."""
        here = (deployment, self.region, self.connection.endpoint_url)

        def forget(settings: Settings) -> None:
            gone = {
                t.get("name")
                for t in settings.targets
                if (t.get("deployment"), t.get("region"), t.get("endpoint_url")) == here
            }
            settings.targets = [t for t in settings.targets if t.get("name") not in gone]
            if settings.active_target in gone:
                settings.active_target = None

        self._update_settings(forget)


def _guard_line(config: Config) -> str:
    guard = config.guard
    if not guard.alert_email:
        return "Warning: no alert e-mail address, so no budget and no long-run alarm are deployed."
    return (
        f"Budget guard: {guard.monthly_limit:g} USD a month, e-mails to {guard.alert_email} at 80 % and 100 % of it, "
        f"and when an instance has been in service {guard.in_service_hours} hours in a row (AWS first sends that "
        "address a confirmation link for the alarm's e-mails)"
    )


#: What is not known of a Marketplace model package behind an asynchronous endpoint (no AWS account reachable here
#: ran one): said before the deploy, so nobody pays for a pipeline run to find out.
MARKETPLACE_ASYNC = (
    "Diffusion Desk runs every model behind an asynchronous endpoint, and whether AWS runs a Marketplace model "
    "package that way has not been verified. If it does not, the endpoint stack fails when its endpoint is "
    "created, after the pipeline's build: CloudFormation rolls it back and the deploy reports the failure."
)


def _endpoints_by_type(options: DeployOptions) -> dict[str, int]:
    """How many endpoints run on each instance type: the main one and each companion (the main type unless named)."""
    counts = {options.instance_type: 1}
    for family_name in options.companions or {}:
        instance_type = options.companion_instance_types.get(family_name) or options.instance_type
        counts[instance_type] = counts.get(instance_type, 0) + 1
    return counts


def _companions_line(options: DeployOptions) -> str:
    chosen = options.companions or {}
    if not chosen:
        return "No companion endpoints (×4 upscaler, inpainting)"
    each = ", ".join(
        f"{companion_label(f)} {m} on {options.companion_instance_types.get(f) or options.instance_type}"
        for f, m in chosen.items()
    )
    return f"Companion endpoints, each scaling to zero on its own: {each}"


def _update_file(dirs: AppDirs, change: Callable[[Settings], Any]) -> Any:
    """Without a running app: read the settings file, change it, write it back."""
    settings = load_settings(dirs)
    result = change(settings)
    save_settings(dirs, settings)
    return result


def _template_parameters(yaml_text: str) -> set[str]:
    """The parameter names a YAML template declares (the keys two spaces in under `Parameters:`)."""
    names: set[str] = set()
    inside = False
    for line in yaml_text.splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):
            inside = line.rstrip() == "Parameters:"
        elif inside and (match := re.match(r"^  ([A-Za-z0-9]+):\s*$", line)):
            names.add(match[1])
    return names


def _scaled(lines: Iterator[Any], step: str, low: float, high: float) -> Iterator[Progress]:
    """Map lines with a fraction of their own (None = no news) onto low–high percent, never backwards."""
    percent = low
    for line in lines:
        if line.fraction is not None:
            percent = max(percent, low + (high - low) * max(0.0, min(line.fraction, 1.0)))
        yield _at(step, percent, line.text)


def _as_lines(events: Iterator[Progress]) -> Iterator[StackLine]:
    for event in events:
        yield StackLine(None, event.message)


def _message(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Message") or error_code(exc)
    return type(exc).__name__

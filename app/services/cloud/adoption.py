"""Connect to a deployment the app did not make: list what a region holds, check it, adopt it.

A stack made with the AWS guidance is read and written as that stack expects: its Lambdas
turn nested RGB arrays (the endpoint's default `application/json`) into PNGs named after the
prompt, write no time-ordered index and no parameters chunk. Checking and adopting only read
the stack; adopting writes nothing but this app's settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from botocore.exceptions import BotoCoreError, ClientError

from app.services.cloud.aws import Connection, error_code, is_transient
from app.services.cloud.targets import (
    Deployment,
    EndpointState,
    Target,
    check_target,
    list_deployments,
    load_target,
    remember_target,
    target_name,
)
from app.services.errors import UserError
from app.services.settings import AppDirs
from contract import ACCEPT_RGB, GUIDANCE_APP_NAME

#: The guidance's Lambdas decode nested RGB arrays only; ours read both forms.
GUIDANCE_ACCEPT = ACCEPT_RGB


@dataclass(frozen=True, slots=True)
class Candidate:
    """A parameter set found in SSM that could become a target."""

    deployment: Deployment

    @property
    def guidance(self) -> bool:
        return self.deployment.app == GUIDANCE_APP_NAME

    @property
    def name(self) -> str:
        return target_name(self.deployment.name, self.deployment.app)

    @property
    def label(self) -> str:
        kind = "made with the AWS guidance" if self.guidance else "Diffusion Desk"
        missing = f" — incomplete, missing {', '.join(self.deployment.missing)}" if self.deployment.missing else ""
        return f"{self.deployment.name} ({kind}){missing}"


@dataclass(frozen=True, slots=True)
class Finding:
    """One line of a check: what was looked at and what was found; `ok` False is a warning."""

    subject: str
    text: str
    ok: bool = True


@dataclass(frozen=True, slots=True)
class CheckResult:
    """A candidate that passed every blocking check, with the target it would become."""

    candidate: Candidate
    target: Target
    endpoint: EndpointState
    findings: tuple[Finding, ...] = field(default_factory=tuple)

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if not f.ok]

    def describe(self) -> str:
        return "\n".join(f"{'✓' if f.ok else '!'} {f.subject}: {f.text}" for f in self.findings)


@dataclass(frozen=True, slots=True)
class UpgradePlan:
    """What upgrading an adopted stack would replace, and whether this app can do it."""

    target: Target
    replaced: tuple[str, ...]
    kept: tuple[str, ...]
    available: bool
    why_not: str = ""

    def describe(self) -> str:
        lines = [f"Upgrading {self.target.name} would replace:"]
        lines += [f"  • {item}" for item in self.replaced]
        lines += ["It would keep:"] + [f"  • {item}" for item in self.kept]
        if not self.available:
            lines += ["", self.why_not]
        return "\n".join(lines)


def accept_for(target: Target) -> str:
    """The Accept header jobs to `target` are sent with: lossless RGB arrays, which ours and the guidance's
    Lambdas read."""
    return GUIDANCE_ACCEPT if target.app == GUIDANCE_APP_NAME else ACCEPT_RGB


def find_candidates(connection: Connection) -> list[Candidate]:
    """Our deployments (/diffusion-desk/*/) and every /simple-gen-ai-service/*/ set in the region."""
    return [Candidate(d) for d in list_deployments(connection)]


def check_candidate(connection: Connection, candidate: Candidate) -> CheckResult:
    """Bucket, endpoint (asynchronous), output path and notification topics; UserError for what blocks use.

    Only reads: nothing in the stack changes.
    """
    deployment = candidate.deployment
    target = load_target(connection, deployment.name, app=deployment.app, name=candidate.name)
    state = check_target(connection, target)
    findings = [
        Finding("Bucket", f"{target.bucket} exists and can be read"),
        Finding(
            "Endpoint",
            f"{target.endpoint_name} is asynchronous ({state.status or 'status unknown'}, "
            f"{_instances(state.instances)})",
        ),
    ]
    output = _async_config(connection, target).get("OutputConfig") or {}
    findings.append(_output_finding(target, output.get("S3OutputPath")))
    notes = output.get("NotificationConfig") or {}
    success, error = notes.get("SuccessTopic"), notes.get("ErrorTopic")
    if not success:
        raise UserError(
            f"The endpoint {target.endpoint_name!r} sends no success notification, "
            "so no result would ever be recorded.",
            hint="Its stack is not one Diffusion Desk can use; choose another deployment, or deploy one from Settings.",
        )
    findings.append(_topic_finding(connection, "Success topic", success, required=True, target=target))
    if error:
        findings.append(_topic_finding(connection, "Error topic", error, required=False, target=target))
    else:
        findings.append(
            Finding("Error topic", "none: a failed job is noticed only when its time to live passes", ok=False)
        )
    if candidate.guidance:
        findings.append(
            Finding(
                "Tracking",
                "this stack writes no time-ordered index: new results are found by a "
                "full listing of messages/ about once a minute",
            )
        )
        findings.append(Finding("Requests", f"sent with Accept {GUIDANCE_ACCEPT} (RGB arrays), which its Lambdas read"))
    return CheckResult(candidate, target, state, tuple(findings))


def adopt(connection: Connection, dirs: AppDirs, candidate: Candidate) -> CheckResult:
    """Check the candidate and make it the active target in the settings file; on any problem nothing is saved."""
    result = check_candidate(connection, candidate)
    remember_target(dirs, result.target, connection.source)
    return result


def upgrade_plan(target: Target) -> UpgradePlan:
    """What an upgrade of an adopted guidance stack would replace; the deployer cannot do it in place yet."""
    if target.app != GUIDANCE_APP_NAME:
        return UpgradePlan(
            target,
            (),
            ("everything",),
            False,
            "This deployment was made by Diffusion Desk: update it from the Deploy tab.",
        )
    replaced = (
        (
            "its save Lambda, by one that also writes a time-ordered index (messages-by-time/), so tracking costs "
            "one listing per poll however many results the bucket holds"
        ),
        (
            "its PNG Lambda, by one that names images 0.png, 1.png…, writes every generation parameter into each "
            "PNG and reads JPEG output too"
        ),
        "the endpoint configuration, to add a failure path (failures/)",
        "its CodeCommit pipeline, by Diffusion Desk's source and pipeline stacks",
    )
    kept = (
        f"the bucket {target.bucket} and everything in it",
        f"the endpoint {target.endpoint_name} and its model",
        "the SSM parameters the guidance's own script reads",
    )
    why_not = (
        "This version of Diffusion Desk cannot upgrade a stack made with the AWS guidance in place: its "
        "deployer only creates and updates Diffusion Desk's own stacks. The adopted stack stays exactly as "
        "it is. To get the features above, deploy Diffusion Desk from the Deploy tab; it makes a separate "
        "deployment and leaves this one untouched."
    )
    return UpgradePlan(target, replaced, kept, False, why_not)


def _instances(count: int | None) -> str:
    if count is None:
        return "instance count unknown"
    return "scaled to zero" if count == 0 else f"{count} instance{'s' if count != 1 else ''} running"


def _async_config(connection: Connection, target: Target) -> dict:
    sagemaker = connection.client("sagemaker")
    try:
        config_name = sagemaker.describe_endpoint(EndpointName=target.endpoint_name)["EndpointConfigName"]
        return sagemaker.describe_endpoint_config(EndpointConfigName=config_name).get("AsyncInferenceConfig") or {}
    except (BotoCoreError, ClientError) as exc:
        raise _read_error(exc, f"the configuration of endpoint {target.endpoint_name!r}") from None


def _output_finding(target: Target, path: str | None) -> Finding:
    if not path:
        raise UserError(
            f"The endpoint {target.endpoint_name!r} has no S3 output path, so its results cannot be found.",
            hint="Choose another deployment.",
        )
    bucket = _bucket_of(path)
    if not path.startswith("s3://") or not bucket:
        raise UserError(
            f"The endpoint's output path {path!r} is not an S3 location.", hint="Choose another deployment."
        )
    if bucket != target.bucket:
        return Finding(
            "Results",
            f"written to {path}, another bucket than {target.bucket}; the stack's Lambdas must be able to read it",
            ok=False,
        )
    return Finding("Results", f"written to {path}")


def _bucket_of(path: str) -> str:
    return path.removeprefix("s3://").split("/", 1)[0]


def _topic_finding(connection: Connection, subject: str, arn: str, *, required: bool, target: Target) -> Finding:
    sns = connection.client("sns")
    try:
        sns.get_topic_attributes(TopicArn=arn)
        subscribed = sns.list_subscriptions_by_topic(TopicArn=arn).get("Subscriptions", [])
    except ClientError as exc:
        if error_code(exc) in ("NotFound", "NotFoundException", "InvalidParameter") and not is_transient(exc):
            if required:
                raise UserError(
                    f"The success topic {arn} of endpoint {target.endpoint_name!r} does not exist, "
                    "so no result would be recorded.",
                    hint="Its stack may be half deleted; choose another deployment.",
                ) from None
            return Finding(
                subject, f"{arn} does not exist: failures are noticed only when their time to live passes", ok=False
            )
        raise _read_error(exc, f"the topic {arn}") from None
    except BotoCoreError as exc:
        raise _read_error(exc, f"the topic {arn}") from None
    if not subscribed:
        return Finding(
            subject, f"{arn}: nothing is subscribed, so these notifications are not saved to the bucket", ok=False
        )
    return Finding(subject, f"{arn} ({len(subscribed)} subscriber{'s' if len(subscribed) != 1 else ''})")


def _read_error(exc: BaseException, what: str) -> UserError:
    code = error_code(exc)
    if is_transient(exc):
        return UserError(f"AWS could not be reached to read {what} ({code}).", hint="Check the network and try again.")
    if code in ("AccessDenied", "AccessDeniedException", "AuthorizationError", "403"):
        return UserError(f"These credentials may not read {what}.", hint="Ask your AWS admin for read access.")
    return UserError(f"Reading {what} failed ({code}).")

"""CloudFormation stacks for the deployer: create or update, wait with event lines, delete, and why it failed.

Every operation continues from whatever a previous attempt left: a stack that failed to create is
deleted and created again, an existing one is updated, and "no updates" is not an error.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from app.services.cloud.aws import error_code
from app.services.errors import UserError

CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
#: States a stack cannot be updated from: what a failed first creation leaves behind.
RECREATE = {"ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "CREATE_FAILED", "DELETE_FAILED", "REVIEW_IN_PROGRESS"}
UPDATABLE = {
    "CREATE_COMPLETE",
    "UPDATE_COMPLETE",
    "UPDATE_ROLLBACK_COMPLETE",
    "IMPORT_COMPLETE",
    "IMPORT_ROLLBACK_COMPLETE",
}
#: How far this computer's clock may be behind AWS's when comparing times.
CLOCK_SKEW = timedelta(minutes=5)
_CANCELLED = ("Resource creation cancelled", "Resource update cancelled", "Resource deletion cancelled")


@dataclass(frozen=True, slots=True)
class StackLine:
    """One line of progress: the share of the stack's resources done (None = unknown) and a text line."""

    fraction: float | None
    text: str


class Stacks:
    """Create, update, wait for and delete stacks with one CloudFormation client."""

    def __init__(
        self,
        client: Any,
        *,
        poll_seconds: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
        timeout: float = 3 * 3600,
    ) -> None:
        self.client = client
        self.poll_seconds = poll_seconds
        self.sleep = sleep
        self.timeout = timeout

    def describe(self, name: str) -> dict[str, Any] | None:
        """The stack as DescribeStacks gives it, or None when there is none (deleted stacks included)."""
        try:
            stacks = self.client.describe_stacks(StackName=name)["Stacks"]
        except ClientError as exc:
            if error_code(exc) == "ValidationError" and "does not exist" in str(exc):
                return None
            raise _error(exc, f"reading the stack {name}") from None
        except BotoCoreError as exc:
            raise _error(exc, f"reading the stack {name}") from None
        live = [s for s in stacks if s.get("StackStatus") != "DELETE_COMPLETE"]
        return live[0] if live else None

    def status(self, name: str) -> str | None:
        stack = self.describe(name)
        return stack["StackStatus"] if stack else None

    def outputs(self, name: str) -> dict[str, str]:
        stack = self.describe(name)
        if stack is None:
            raise UserError(f"The stack {name} does not exist.", hint="Deploy again.")
        return {o["OutputKey"]: o.get("OutputValue", "") for o in stack.get("Outputs") or []}

    def resources(self, name: str, resource_type: str) -> list[str]:
        """Physical ids of the stack's resources of one type (bucket names, project names…)."""
        found = []
        try:
            for page in self.client.get_paginator("list_stack_resources").paginate(StackName=name):
                for item in page.get("StackResourceSummaries", []):
                    if (
                        item.get("ResourceType") == resource_type
                        and item.get("PhysicalResourceId")
                        and item.get("ResourceStatus") != "DELETE_COMPLETE"
                    ):
                        found.append(item["PhysicalResourceId"])
        except ClientError as exc:
            if "does not exist" in str(exc):
                return []
            raise _error(exc, f"listing the resources of {name}") from None
        return found

    def deploy(
        self,
        name: str,
        template: str,
        *,
        template_url: str | None = None,
        resource_count: int = 0,
        parameters: list[dict[str, Any]] | None = None,
    ) -> Iterator[StackLine]:
        """Create or update the stack and wait for it; UserError carries CloudFormation's reason.

        `template` is the body; with `template_url` (a copy in S3) CloudFormation reads it from there.
        `parameters` go to CreateStack as values; on UpdateStack an entry may say UsePreviousValue.
        """
        source: dict[str, Any] = {"TemplateURL": template_url} if template_url else {"TemplateBody": template}
        if parameters:
            source["Parameters"] = parameters
        stack = self._settled(name)
        if stack is not None and stack["StackStatus"] == "UPDATE_ROLLBACK_FAILED":
            yield StackLine(None, f"{name}: continuing the rollback of an update that failed earlier")
            seen = self._event_ids(stack["StackId"])
            self._call("continue_update_rollback", name, StackName=stack["StackId"])
            yield from self._wait(stack["StackId"], name, seen, resource_count, success="UPDATE_ROLLBACK_COMPLETE")
            stack = self.describe(name)
        if stack is not None and stack["StackStatus"] in RECREATE:
            yield StackLine(
                None, f"{name} is {stack['StackStatus']} from an earlier attempt: deleting it to start again"
            )
            yield from self.delete(name)
            stack = None
        if stack is None:
            yield StackLine(0.0, f"{name}: creating")
            created = dict(source, Parameters=[p for p in source.get("Parameters", []) if "ParameterValue" in p])
            if not created["Parameters"]:
                del created["Parameters"]
            reply = self._call(
                "create_stack", name, StackName=name, Capabilities=CAPABILITIES, OnFailure="ROLLBACK", **created
            )
            yield from self._wait(reply["StackId"], name, set(), resource_count, success="CREATE_COMPLETE")
            return
        if self._deployed_template(name) == _parsed(template):
            yield StackLine(1.0, f"{name}: already up to date")
            return
        seen = self._event_ids(stack["StackId"])
        try:
            self.client.update_stack(StackName=name, Capabilities=CAPABILITIES, **source)
        except ClientError as exc:
            if "No updates are to be performed" in str(exc):
                yield StackLine(1.0, f"{name}: already up to date")
                return
            raise _error(exc, f"updating the stack {name}") from None
        except BotoCoreError as exc:
            raise _error(exc, f"updating the stack {name}") from None
        yield StackLine(0.0, f"{name}: updating")
        yield from self._wait(stack["StackId"], name, seen, resource_count, success="UPDATE_COMPLETE")

    def _deployed_template(self, name: str) -> Any:
        try:
            return _parsed(self.client.get_template(StackName=name, TemplateStage="Original")["TemplateBody"])
        except (BotoCoreError, ClientError):
            return None

    def delete(
        self, name: str, *, before_retry: Callable[[], Iterator[StackLine]] | None = None, attempts: int = 3
    ) -> Iterator[StackLine]:
        """Delete the stack and wait; on DELETE_FAILED run `before_retry` (e.g. empty buckets) and try again."""
        for attempt in range(attempts):
            stack = self._settled(name)
            if stack is None:
                return
            seen = self._event_ids(stack["StackId"])
            yield StackLine(0.0, f"{name}: deleting" + (f" (attempt {attempt + 1})" if attempt else ""))
            self._call("delete_stack", name, StackName=stack["StackId"])
            try:
                yield from self._wait(stack["StackId"], name, seen, 0, success="DELETE_COMPLETE")
                return
            except UserError:
                if attempt + 1 == attempts or before_retry is None:
                    raise
                yield from before_retry()

    def _settled(self, name: str) -> dict[str, Any] | None:
        """The stack once no operation is running on it (one started elsewhere is waited for)."""
        stack = self.describe(name)
        deadline = time.monotonic() + self.timeout
        while (
            stack is not None
            and stack["StackStatus"].endswith("_IN_PROGRESS")
            and stack["StackStatus"] != "REVIEW_IN_PROGRESS"
        ):
            if time.monotonic() > deadline:
                raise UserError(f"The stack {name} stayed {stack['StackStatus']} too long.", hint="Try again later.")
            self.sleep(self.poll_seconds)
            stack = self.describe(name)
        return stack

    def _call(self, operation: str, name: str, **params: Any) -> dict[str, Any]:
        try:
            return getattr(self.client, operation)(**params)
        except (BotoCoreError, ClientError) as exc:
            raise _error(exc, f"{operation.replace('_', ' ')} {name}") from None

    def _event_ids(self, stack_id: str) -> set[str]:
        try:
            return {e["EventId"] for e in self.client.describe_stack_events(StackName=stack_id).get("StackEvents", [])}
        except ClientError:
            return set()

    def _new_events(self, stack_id: str, seen: set[str]) -> list[dict[str, Any]]:
        """Events not seen yet, oldest first (DescribeStackEvents lists the newest first)."""
        fresh: list[dict[str, Any]] = []
        for page in self.client.get_paginator("describe_stack_events").paginate(StackName=stack_id):
            for event in page.get("StackEvents", []):
                if event["EventId"] in seen:
                    return list(reversed(fresh))
                fresh.append(event)
        return list(reversed(fresh))

    def _wait(
        self, stack_id: str, name: str, seen: set[str], resource_count: int, *, success: str
    ) -> Iterator[StackLine]:
        """Yield the stack's new events until it settles; UserError unless it settles as `success`."""
        deleting = success == "DELETE_COMPLETE"
        done: set[str] = set()
        deadline = time.monotonic() + self.timeout
        failures: list[dict[str, Any]] = []
        while True:
            try:
                events = self._new_events(stack_id, seen)
                # A deleted stack is looked up by name: gone means deleted.
                status = (
                    self.describe(name) if deleting else self.client.describe_stacks(StackName=stack_id)["Stacks"][0]
                )
            except (BotoCoreError, ClientError) as exc:
                raise _error(exc, f"following the stack {name}") from None
            status = status or {"StackStatus": "DELETE_COMPLETE"}
            for event in events:
                seen.add(event["EventId"])
                state = event.get("ResourceStatus", "")
                if event.get("ResourceType") != "AWS::CloudFormation::Stack" and state.endswith("_COMPLETE"):
                    done.add(event.get("LogicalResourceId", ""))
                if state.endswith("_FAILED"):
                    failures.append(event)
                fraction = min(len(done) / resource_count, 0.99) if resource_count else None
                yield StackLine(fraction, event_line(event))
            state = status["StackStatus"]
            if not state.endswith("_IN_PROGRESS"):
                if state == success:
                    yield StackLine(1.0, f"{name}: {state}")
                    return
                raise UserError(_failure_text(name, state, status.get("StackStatusReason"), failures))
            if time.monotonic() > deadline:
                raise UserError(
                    f"The stack {name} is still {state} after {self.timeout / 3600:.0f} hours.",
                    hint="Check it in the CloudFormation console, then deploy again.",
                )
            self.sleep(self.poll_seconds)

    def failure_reason(self, name: str, *, since: datetime | None = None) -> str | None:
        """Why the stack's last operation (at or after `since`) failed, in CloudFormation's words, or None."""
        stack = self.describe(name)
        if stack is None or not (stack["StackStatus"] in RECREATE or "ROLLBACK" in stack["StackStatus"]):
            return None
        changed = stack.get("LastUpdatedTime") or stack.get("CreationTime")
        if since is not None and isinstance(changed, datetime) and changed < since - CLOCK_SKEW:
            return None
        events = self.client.describe_stack_events(StackName=stack["StackId"]).get("StackEvents", [])
        failures = [e for e in reversed(events) if e.get("ResourceStatus", "").endswith("_FAILED")]
        return _failure_text(name, stack["StackStatus"], stack.get("StackStatusReason"), failures)


def _parsed(template: Any) -> Any:
    """JSON templates compare as data (boto3 already parses JSON bodies); YAML ones as text."""
    if isinstance(template, str):
        try:
            return json.loads(template)
        except ValueError:
            return template
    return template


def event_line(event: dict[str, Any]) -> str:
    """`12:03:04  Bucket83908E77  AWS::S3::Bucket  CREATE_COMPLETE  reason`"""
    when = event.get("Timestamp")
    stamp = when.strftime("%H:%M:%S") if hasattr(when, "strftime") else ""
    parts = [stamp, event.get("LogicalResourceId", ""), event.get("ResourceType", ""), event.get("ResourceStatus", "")]
    reason = event.get("ResourceStatusReason")
    if reason:
        parts.append(reason)
    return "  ".join(p for p in parts if p)


def _failure_text(name: str, state: str, stack_reason: str | None, failures: list[dict[str, Any]]) -> str:
    """The first real failure (not the cancellations it caused), in CloudFormation's words."""
    causes = [
        e
        for e in failures
        if e.get("ResourceStatusReason")
        and not e["ResourceStatusReason"].startswith(_CANCELLED)
        and e.get("ResourceType") != "AWS::CloudFormation::Stack"
    ]
    if causes:
        first = causes[0]
        return (
            f"CloudFormation could not finish the stack {name} ({state}): {first.get('LogicalResourceId')} "
            f"({first.get('ResourceType')}) failed: {first['ResourceStatusReason']}"
        )
    if stack_reason:
        return f"CloudFormation could not finish the stack {name} ({state}): {stack_reason}"
    return f"CloudFormation could not finish the stack {name}: it ended {state}."


def _error(exc: BaseException, what: str) -> UserError:
    if isinstance(exc, ClientError):
        message = exc.response.get("Error", {}).get("Message") or str(exc)
        code = error_code(exc)
        if code in ("AccessDenied", "AccessDeniedException") or "not authorized" in message:
            return UserError(
                f"AWS refused {what}: {message}", hint="The credentials need administrator rights to deploy."
            )
        return UserError(f"CloudFormation refused {what}: {message}")
    return UserError(
        f"AWS could not be reached while {what} ({type(exc).__name__}).", hint="Check the network and try again."
    )

"""Follow one CodePipeline execution stage by stage, and say in words why it failed.

A CDK pipeline updates itself first; when that changes it, CodePipeline supersedes the running
execution with a new one, which is then followed instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from app.services.errors import UserError


class PipelineFailed(UserError):
    """The execution failed; `stage` and `action` name where."""

    def __init__(self, message: str, *, stage: str = "", action: str = "", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.stage = stage
        self.action = action


@dataclass(frozen=True, slots=True)
class PipelineLine:
    fraction: float
    text: str


def follow(
    client: Any,
    pipeline: str,
    execution_id: str,
    *,
    poll_seconds: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
    timeout: float = 4 * 3600,
) -> Iterator[PipelineLine]:
    """Yield a line per stage or action change until the execution succeeds; PipelineFailed otherwise."""
    # Long on purpose: one polling loop whose order of reads matters (see below); split, that order would hide.
    reported: dict[tuple[str, str], str] = {}
    deadline = time.monotonic() + timeout
    fraction = 0.0
    started = _start_time(client, pipeline, execution_id)
    while True:
        # The execution before the state: once the run has ended, the state read after it shows its last stage.
        execution = _call(client.get_pipeline_execution, pipelineName=pipeline, pipelineExecutionId=execution_id)[
            "pipelineExecution"
        ]
        state = _call(client.get_pipeline_state, name=pipeline)
        stages = state.get("stageStates", [])
        ours = [s for s in stages if s.get("latestExecution", {}).get("pipelineExecutionId") == execution_id]
        for stage in ours:
            name = stage.get("stageName", "")
            status = stage["latestExecution"].get("status", "")
            for action in stage.get("actionStates", []):
                latest = _of_this_run(action, started)
                if latest.get("status") and reported.get((name, action.get("actionName", ""))) != latest["status"]:
                    reported[(name, action.get("actionName", ""))] = latest["status"]
                    summary = latest.get("summary") or (latest.get("errorDetails") or {}).get("message") or ""
                    yield PipelineLine(
                        fraction,
                        f"{name} · {action.get('actionName')}: {latest['status']}"
                        + (f" — {summary}" if summary else ""),
                    )
            if reported.get((name, "")) != status:
                reported[(name, "")] = status
                yield PipelineLine(fraction, f"Stage {name}: {status}")
        finished = sum(1 for s in ours if s["latestExecution"].get("status") == "Succeeded")
        fraction = min(finished / len(stages), 0.99) if stages else 0.0
        status = execution.get("status", "")
        if status == "Succeeded":
            yield PipelineLine(1.0, f"Pipeline {pipeline}: Succeeded")
            return
        if status in ("Failed", "Stopped", "Cancelled"):
            raise _failure(pipeline, status, execution, ours, started)
        if status == "Superseded":
            newer = _newer_execution(client, pipeline, execution)
            if newer is None:
                raise PipelineFailed(
                    f"The pipeline {pipeline} run was replaced by another one that cannot be found.",
                    hint="Press Update to start it again.",
                )
            yield PipelineLine(fraction, f"The pipeline updated itself and restarted: following run {newer}")
            execution_id, reported = newer, {}
            started = _start_time(client, pipeline, execution_id)
            continue
        if time.monotonic() > deadline:
            raise PipelineFailed(
                f"The pipeline {pipeline} is still running after {timeout / 3600:.0f} hours.",
                hint="It keeps running in AWS: press Update later to follow it again.",
            )
        sleep(poll_seconds)


def _newer_execution(client: Any, pipeline: str, execution: dict[str, Any]) -> str | None:
    """The newest run that started after ours (ListPipelineExecutions lists the newest first)."""
    ours = execution.get("pipelineExecutionId")
    summaries = _call(client.list_pipeline_executions, pipelineName=pipeline, maxResults=20).get(
        "pipelineExecutionSummaries", []
    )
    started = next((s.get("startTime") for s in summaries if s.get("pipelineExecutionId") == ours), None)
    for summary in summaries:
        when = summary.get("startTime")
        if summary.get("pipelineExecutionId") != ours and (started is None or when is None or when >= started):
            return summary["pipelineExecutionId"]
    return None


def _start_time(client: Any, pipeline: str, execution_id: str) -> datetime | None:
    """When the run started, from ListPipelineExecutions (None if it is not among the newest 100)."""
    summaries = _call(client.list_pipeline_executions, pipelineName=pipeline, maxResults=100).get(
        "pipelineExecutionSummaries", []
    )
    return next((s.get("startTime") for s in summaries if s.get("pipelineExecutionId") == execution_id), None)


def _of_this_run(action: dict[str, Any], started: datetime | None) -> dict[str, Any]:
    """The action's latest execution if it belongs to the run that started at `started`, else {}.

    GetPipelineState shows each action's latest execution of any run: in a stage the run has reached,
    an action it has not run yet still shows an earlier run's result (a Failed deploy of the run before).
    """
    latest = action.get("latestExecution") or {}
    changed = latest.get("lastStatusChange")
    if started is not None and isinstance(changed, datetime) and changed < started:
        return {}
    return latest


def _failure(
    pipeline: str, status: str, execution: dict[str, Any], stages: list[dict[str, Any]], started: datetime | None
) -> PipelineFailed:
    for stage in stages:
        for action in stage.get("actionStates", []):
            latest = _of_this_run(action, started)
            if latest.get("status") in ("Failed", "Abandoned"):
                details = latest.get("errorDetails") or {}
                reason = details.get("message") or latest.get("summary") or "no reason was given"
                return PipelineFailed(
                    f"The pipeline {pipeline} failed in stage {stage.get('stageName')}, "
                    f"step {action.get('actionName')}: {reason}",
                    stage=stage.get("stageName", ""),
                    action=action.get("actionName", ""),
                    hint="Fix the cause, then press Update to run it again.",
                )
    summary = execution.get("statusSummary") or execution.get("statusReason") or ""
    return PipelineFailed(
        f"The pipeline {pipeline} ended {status}" + (f": {summary}" if summary else "."),
        hint="Press Update to run it again.",
    )


def _call(operation: Callable[..., dict[str, Any]], **params: Any) -> dict[str, Any]:
    try:
        return operation(**params)
    except ClientError as exc:
        message = exc.response.get("Error", {}).get("Message") or str(exc)
        raise UserError(f"CodePipeline refused to report on the pipeline: {message}") from None
    except BotoCoreError as exc:
        raise UserError(
            f"AWS could not be reached while following the pipeline ({type(exc).__name__}).",
            hint="Check the network; press Update to follow it again.",
        ) from None

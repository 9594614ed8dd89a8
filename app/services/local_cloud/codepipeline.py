"""CodePipeline in the local cloud: the calls the deployer makes, and each run played stage by stage.

The local cloud hands this emulator the JSON-protocol requests StartPipelineExecution,
GetPipelineState, GetPipelineExecution and ListPipelineExecutions (X-Amz-Target
CodePipeline_20150709.<operation>); every other CodePipeline call goes on to moto, which keeps the
pipelines, whether CreatePipeline or a CloudFormation stack made them (`pipeline_resources`).

A run reads the pipeline's declaration from moto when it starts and goes through its stages on a
thread of its own: the actions of a stage run by runOrder (those sharing one at the same time), a
failed action fails its stage and the run, and artifacts pass between actions as folders. The
actions are `pipeline_actions`': an S3 source, CodeBuild builds run by `codebuild` in fresh venvs,
and CloudFormation deploys through the local cloud's CloudFormation. As in SUPERSEDED mode (the
mode of V1 pipelines), a stage holds one run at a time and a run that a newer one has overtaken
stops as Superseded before its next stage.

CodePipeline also starts a run by itself when a stack creates a pipeline, and when a stack updates
one whose RestartExecutionOnUpdate is set. Here that happens with `automatic_runs` on (off by
default, so that tests which only create the stacks do not start builds).

Not emulated: approvals, Lambda and other action providers (they fail, saying so), transitions,
retries, stage conditions, pipeline variables in action configurations, and artifact zips in the
artifact bucket (a CloudFormation template too big to send inline is put there).
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import groupby
from pathlib import Path
from typing import Any

import orjson
from botocore.exceptions import ClientError

from app.services.local_cloud import pipeline_resources
from app.services.local_cloud.codebuild import CodeBuildRunner
from app.services.local_cloud.json_wire import answer
from app.services.local_cloud.pipeline_actions import ActionRun, Outcome, run_action

log = logging.getLogger(__name__)

TARGET_PREFIX = "CodePipeline_20150709."
OPERATIONS = frozenset({"StartPipelineExecution", "GetPipelineState", "GetPipelineExecution", "ListPipelineExecutions"})


def serves(environ: dict[str, Any]) -> bool:
    """Whether a request is one of the CodePipeline calls this emulator answers."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    return target.startswith(TARGET_PREFIX) and target[len(TARGET_PREFIX) :] in OPERATIONS


@dataclass
class _ActionState:
    status: str
    changed: datetime
    summary: str = ""
    error: dict[str, str] | None = None
    external_id: str = ""
    external_url: str = ""
    execution_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def shape(self) -> dict[str, Any]:
        latest: dict[str, Any] = {
            "actionExecutionId": self.execution_id,
            "status": self.status,
            "lastStatusChange": self.changed.timestamp(),
        }
        for key, value in (
            ("summary", self.summary),
            ("externalExecutionId", self.external_id),
            ("externalExecutionUrl", self.external_url),
            ("errorDetails", self.error),
        ):
            if value:
                latest[key] = value
        return latest


@dataclass
class _StageState:
    execution_id: str
    status: str
    actions: dict[str, _ActionState] = field(default_factory=dict)


@dataclass
class _Execution:
    pipeline: str
    execution_id: str
    version: int
    trigger: str
    started: datetime
    updated: datetime
    status: str = "InProgress"
    summary: str = ""
    revisions: list[dict[str, Any]] = field(default_factory=list)

    def summary_shape(self) -> dict[str, Any]:
        shape: dict[str, Any] = {
            "pipelineExecutionId": self.execution_id,
            "status": self.status,
            "startTime": self.started.timestamp(),
            "lastUpdateTime": self.updated.timestamp(),
            "sourceRevisions": [
                {k: v for k, v in r.items() if k in ("actionName", "revisionId", "revisionSummary")}
                for r in self.revisions
            ],
            "trigger": {"triggerType": self.trigger, "triggerDetail": ""},
            "executionMode": "SUPERSEDED",
            "executionType": "STANDARD",
        }
        if self.summary:
            shape["statusSummary"] = self.summary
        return shape


@dataclass
class _Pipeline:
    """What CodePipeline keeps of one pipeline's runs: each run, and each stage's latest."""

    executions: list[_Execution] = field(default_factory=list)
    stages: dict[str, _StageState] = field(default_factory=dict)
    locks: dict[str, threading.Lock] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    def lock(self, stage: str) -> threading.Lock:
        return self.locks.setdefault(stage, threading.Lock())


class _ApiError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class PipelineEmulator:
    """The four CodePipeline calls, and the runs behind them, for one local cloud's account."""

    def __init__(
        self,
        *,
        region: str,
        account_id: str,
        clients: Callable[..., Any],
        endpoint_url: Callable[[], str],
        builds: CodeBuildRunner | None = None,
        work_root: Path | None = None,
    ) -> None:
        self.region = region
        self.account_id = account_id
        self.builds = builds or CodeBuildRunner()
        self.automatic_runs = False
        self._clients = clients
        self._endpoint_url = endpoint_url
        self._work_root = work_root
        self._pipelines: dict[tuple[str, str], _Pipeline] = {}
        self._lock = threading.RLock()
        self._threads: set[threading.Thread] = set()
        self._stopping = threading.Event()
        pipeline_resources.PIPELINE_EVENTS.append(self._changed)

    def stop(self, timeout: float = 30.0) -> None:
        """End the runs (their builds are killed) and wait for their threads."""
        self._stopping.set()
        self.builds.stop()
        deadline = time.monotonic() + timeout
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))
        if self._changed in pipeline_resources.PIPELINE_EVENTS:
            pipeline_resources.PIPELINE_EVENTS.remove(self._changed)

    def reset(self) -> None:
        """Forget every run, after ending those still going."""
        self.stop()
        with self._lock:
            self._pipelines.clear()
        self.builds.reset()
        self.automatic_runs = False
        self._stopping.clear()
        pipeline_resources.PIPELINE_EVENTS.append(self._changed)

    def wait_idle(self, timeout: float = 600.0) -> bool:
        """Wait for every run to end; False if some are still going after `timeout`."""
        deadline = time.monotonic() + timeout
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in list(self._threads))

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> list[bytes]:
        operation = environ.get("HTTP_X_AMZ_TARGET", "")[len(TARGET_PREFIX) :]
        region = _signing_region(environ) or self.region
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            params = orjson.loads(environ["wsgi.input"].read(length) or b"{}") if length else {}
            handler = {
                "StartPipelineExecution": self._start_call,
                "GetPipelineState": self._state,
                "GetPipelineExecution": self._execution_call,
                "ListPipelineExecutions": self._list,
            }[operation]
            status, payload, headers = "200 OK", handler(region, params), []
        except _ApiError as error:
            status, payload = "400 Bad Request", {"__type": error.code, "message": error.message}
            headers = [("x-amzn-ErrorType", error.code)]
        except Exception as exc:
            log.exception("CodePipeline %s failed", operation)
            status, payload = "500 Internal Server Error", {"__type": "InternalFailure", "message": str(exc)}
            headers = [("x-amzn-ErrorType", "InternalFailure")]
        return answer(start_response, status, payload, headers)

    def start_execution(
        self,
        name: str,
        *,
        region: str | None = None,
        trigger: str = "StartPipelineExecution",
        revisions: dict[str, dict[str, str]] | None = None,
    ) -> str:
        """Start a run of the pipeline as declared now; returns its id."""
        region = region or self.region
        declaration, _ = self._declaration(region, name)
        now = datetime.now(UTC)
        execution = _Execution(name, str(uuid.uuid4()), int(declaration.get("version", 1)), trigger, now, now)
        with self._lock:
            self._pipeline(region, name).executions.append(execution)
        thread = threading.Thread(
            target=self._run,
            args=(region, declaration, execution, revisions or {}),
            name=f"local-pipeline-{name}",
            daemon=True,
        )
        self._threads.add(thread)
        thread.start()
        return execution.execution_id

    def _changed(self, account_id: str, region: str, name: str, event: str) -> None:
        if account_id == self.account_id and self.automatic_runs and not self._stopping.is_set():
            self.start_execution(
                name, region=region, trigger="CreatePipeline" if event == "created" else "StartPipelineExecution"
            )

    def _pipeline(self, region: str, name: str) -> _Pipeline:
        return self._pipelines.setdefault((region, name), _Pipeline())

    def _declaration(self, region: str, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The pipeline as moto keeps it, and its metadata (created, updated)."""
        if not name:
            raise _ApiError(
                "ValidationException",
                "1 validation error detected: Value null at 'name' failed to "
                "satisfy constraint: Member must not be null",
            )
        try:
            found = self._clients("codepipeline", region).get_pipeline(name=name)
        except ClientError as error:
            details = error.response.get("Error", {})
            code = details.get("Code") or "PipelineNotFoundException"
            raise _ApiError(code, details.get("Message") or str(error)) from None
        return found["pipeline"], found.get("metadata") or {}

    def _start_call(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        name, token = params.get("name", ""), params.get("clientRequestToken")
        with self._lock:
            known = self._pipeline(region, name).tokens.get(token) if token else None
        if known:
            return {"pipelineExecutionId": known}
        revisions: dict[str, dict[str, str]] = {}
        for override in params.get("sourceRevisions") or []:
            revisions.setdefault(override["actionName"], {})[override["revisionType"]] = override["revisionValue"]
        execution_id = self.start_execution(name, region=region, revisions=revisions)
        if token:
            with self._lock:
                self._pipeline(region, name).tokens[token] = execution_id
        return {"pipelineExecutionId": execution_id}

    def _state(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        name = params.get("name", "")
        declaration, metadata = self._declaration(region, name)
        with self._lock:
            known = self._pipeline(region, name).stages
            stages = [_stage_shape(stage, known.get(stage["name"])) for stage in declaration.get("stages") or []]
        return {
            "pipelineName": name,
            "pipelineVersion": declaration.get("version", 1),
            "stageStates": stages,
            **{k: _epoch(metadata[k]) for k in ("created", "updated") if k in metadata},
        }

    def _execution_call(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        name, execution_id = params.get("pipelineName", ""), params.get("pipelineExecutionId", "")
        self._declaration(region, name)
        with self._lock:
            found = next((e for e in self._pipeline(region, name).executions if e.execution_id == execution_id), None)
            if found is None:
                raise _ApiError(
                    "PipelineExecutionNotFoundException",
                    f"Account '{self.account_id}' does not have an "
                    f"execution with id '{execution_id}' for pipeline '{name}'",
                )
            shape = {
                "pipelineName": name,
                "pipelineVersion": found.version,
                "pipelineExecutionId": execution_id,
                "status": found.status,
                "artifactRevisions": [
                    {
                        "name": r.get("artifactName", ""),
                        "revisionId": r["revisionId"],
                        "created": r["created"],
                        **({"revisionSummary": r["revisionSummary"]} if r.get("revisionSummary") else {}),
                    }
                    for r in found.revisions
                ],
                "variables": [],
                "trigger": {"triggerType": found.trigger, "triggerDetail": ""},
                "executionMode": "SUPERSEDED",
                "executionType": "STANDARD",
            }
            if found.summary:
                shape["statusSummary"] = found.summary
        return {"pipelineExecution": shape}

    def _list(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        name = params.get("pipelineName", "")
        self._declaration(region, name)
        most = int(params.get("maxResults") or 100)
        if not 1 <= most <= 100:
            raise _ApiError(
                "ValidationException",
                f"1 validation error detected: Value '{most}' at 'maxResults' "
                "failed to satisfy constraint: Member must have value less than "
                "or equal to 100",
            )
        start = int(params.get("nextToken") or 0)
        with self._lock:
            newest_first = [e.summary_shape() for e in reversed(self._pipeline(region, name).executions)]
        page = {"pipelineExecutionSummaries": newest_first[start : start + most]}
        if start + most < len(newest_first):
            page["nextToken"] = str(start + most)
        return page

    def _run(
        self, region: str, declaration: dict[str, Any], execution: _Execution, revisions: dict[str, dict[str, str]]
    ) -> None:
        folder = Path(tempfile.mkdtemp(prefix="local-pipeline-", dir=self._work_root))
        pipeline = self._pipeline(region, execution.pipeline)
        try:
            for stage in declaration.get("stages") or []:
                if self._overtaken(pipeline, execution):
                    return self._finish(execution, "Superseded")
                lock = pipeline.lock(stage["name"])
                while not lock.acquire(timeout=0.2):
                    if self._stopping.is_set():
                        return self._finish(execution, "Stopped")
                try:
                    passed = self._stage(region, declaration, execution, stage, folder, revisions)
                finally:
                    lock.release()
                if not passed:
                    return self._finish(execution, "Stopped" if self._stopping.is_set() else "Failed")
            self._finish(execution, "Succeeded")
        except Exception as exc:
            log.exception("the run %s of %s failed", execution.execution_id, execution.pipeline)
            self._finish(execution, "Failed", f"The local cloud's CodePipeline failed: {exc}")
        finally:
            shutil.rmtree(folder, ignore_errors=True)
            self._threads.discard(threading.current_thread())

    def _overtaken(self, pipeline: _Pipeline, execution: _Execution) -> bool:
        with self._lock:
            later = pipeline.executions[pipeline.executions.index(execution) + 1 :]
            return any(e.status in ("InProgress", "Succeeded") for e in later)

    def _finish(self, execution: _Execution, status: str, summary: str = "") -> None:
        with self._lock:
            execution.status, execution.updated = status, datetime.now(UTC)
            execution.summary = summary or execution.summary

    def _stage(
        self,
        region: str,
        declaration: dict[str, Any],
        execution: _Execution,
        stage: dict[str, Any],
        folder: Path,
        revisions: dict[str, dict[str, str]],
    ) -> bool:
        """Run the stage's actions by runOrder; False once one failed."""
        pipeline = self._pipeline(region, execution.pipeline)
        with self._lock:
            previous = pipeline.stages.get(stage["name"])
            state = _StageState(execution.execution_id, "InProgress", dict(previous.actions) if previous else {})
            pipeline.stages[stage["name"]] = state
        actions = sorted(stage.get("actions") or [], key=lambda a: int(a.get("runOrder", 1)))
        for _, group in groupby(actions, key=lambda a: int(a.get("runOrder", 1))):
            batch = list(group)
            with ThreadPoolExecutor(max_workers=len(batch), thread_name_prefix="local-pipeline-action") as pool:
                outcomes = list(
                    pool.map(lambda a: self._action(region, declaration, execution, state, a, folder, revisions), batch)
                )
            if not all(o.succeeded for o in outcomes):
                with self._lock:
                    state.status = "Failed"
                return False
        with self._lock:
            state.status = "Succeeded"
        return True

    def _action(
        self,
        region: str,
        declaration: dict[str, Any],
        execution: _Execution,
        state: _StageState,
        action: dict[str, Any],
        folder: Path,
        revisions: dict[str, dict[str, str]],
    ) -> Outcome:
        current = _ActionState("InProgress", datetime.now(UTC))
        with self._lock:
            state.actions[action["name"]] = current

        def started(external_id: str, url: str) -> None:
            with self._lock:
                current.external_id, current.external_url = external_id, url

        run = ActionRun(
            pipeline=execution.pipeline,
            execution_id=execution.execution_id,
            region=region,
            account_id=self.account_id,
            action=action,
            folders=lambda name: folder / "artifacts" / name,
            client=lambda service: self._clients(service, region),
            builds=self.builds,
            endpoint_url=self._endpoint_url(),
            artifact_store=(declaration.get("artifactStore") or {}).get("location", ""),
            revision_override=revisions.get(action["name"], {}),
            started=started,
        )
        try:
            outcome = run_action(run)
        except Exception as exc:
            log.exception("the action %s failed", action["name"])
            outcome = Outcome(False, message=f"The local cloud's CodePipeline failed in this action: {exc}")
        self._record(execution, current, action, outcome)
        return outcome

    def _record(self, execution: _Execution, current: _ActionState, action: dict[str, Any], outcome: Outcome) -> None:
        now = datetime.now(UTC)
        with self._lock:
            current.status, current.changed = ("Succeeded" if outcome.succeeded else "Failed"), now
            current.summary = outcome.summary
            current.error = None if outcome.succeeded else {"code": outcome.code, "message": outcome.message}
            current.external_id = outcome.external_id or current.external_id
            current.external_url = outcome.external_url or current.external_url
            if outcome.revision:
                outputs = action.get("outputArtifacts") or [{}]
                execution.revisions.append(
                    {**outcome.revision, "artifactName": outputs[0].get("name", ""), "created": now.timestamp()}
                )
            execution.updated = now


def _stage_shape(stage: dict[str, Any], state: _StageState | None) -> dict[str, Any]:
    """A StageState of GetPipelineState: the stage's latest run and each action's latest execution."""
    actions = []
    for action in stage.get("actions") or []:
        entry: dict[str, Any] = {"actionName": action["name"]}
        if state and action["name"] in state.actions:
            entry["latestExecution"] = state.actions[action["name"]].shape()
        actions.append(entry)
    shape: dict[str, Any] = {
        "stageName": stage["name"],
        "inboundTransitionState": {"enabled": True},
        "actionStates": actions,
    }
    if state:
        shape["latestExecution"] = {"pipelineExecutionId": state.execution_id, "status": state.status}
    return shape


def _epoch(value: Any) -> Any:
    return value.timestamp() if isinstance(value, datetime) else value


def _signing_region(environ: dict[str, Any]) -> str | None:
    match = re.search(r"Credential=[^/]+/\d{8}/([^/]+)/", environ.get("HTTP_AUTHORIZATION", ""))
    return match[1] if match else None

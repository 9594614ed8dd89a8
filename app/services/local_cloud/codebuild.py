"""CodeBuild in the local cloud: a project's own buildspec, run the way CodeBuild runs it, on this machine.

    result = CodeBuildRunner().run(BuildProject.from_template(template, "PipelineDeployBuildModelE4431C31",
                                                              refs={"ModelsC55D3500": bucket}),
                                   BuildCloud(cloud.endpoint_url, cloud.region), source=checkout)
    result.status, result.failed_phase, result.log

Each build gets a fresh folder (the source copied into `src/`, secondary inputs beside it) and a
fresh venv that holds nothing but pip: no system site-packages, its `bin` first on PATH, so a
command finds only what an earlier command installed. Node.js and npm are the machine's; `npm -g`
installs go into the build's own prefix. pip's and npm's download caches live under
DIFFUSION_DESK_BUILD_CACHE (default: the user cache folder), as a CodeBuild local cache would.

The phases are CodeBuild's: install, pre_build, build, post_build, each with `commands` run in
order and a `finally` block; the first failing command fails the phase; a failed install or
pre_build ends the build, a failed build still runs post_build, and `on-failure: CONTINUE` goes on
to the next phase. As in buildspec version 0.2, every command sees the directory and the exported
variables that the previous one left. The artifacts (`base-directory`, `files`, `discard-paths`,
`exclude-paths`) are copied out after post_build. The log is written in CodeBuild's words, kept in
the result and put into CloudWatch Logs under /aws/codebuild/<project>.

Not like CodeBuild: no container image is pulled (the machine's OS, shell and node; `runtime-versions`
picks that Python version when this machine has it and is logged either way), unexported shell
variables and functions do not outlive their command, there is no Docker, no VPC and no build cache
other than pip's and npm's.

Keys: as on AWS, a build runs under its project's service role: when the role is in the local cloud's IAM,
the build gets temporary keys of it (sts:AssumeRole with the admin `BuildCloud.client`, lasting the build's
timeout) in AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, so the local cloud enforces
the role's policies on every call the commands make. Without such a role (or without `client`) the build
gets the local cloud's dummy admin keys; `BuildCloud.credentials` overrides both. The build service's own
calls (Parameter Store variables, the log) use `client`.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.services.local_cloud.build_host import (
    base_python,
    default_cache,
    fresh_venv,
    machine_path,
    node_version,
    python_for,
    python_version,
)

log = logging.getLogger(__name__)

CACHE_ENV = "DIFFUSION_DESK_BUILD_CACHE"
PHASES = ("INSTALL", "PRE_BUILD", "BUILD", "POST_BUILD")
DEFAULT_IMAGE = "aws/codebuild/standard:7.0"
DUMMY_KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
#: What a build inherits from this machine: its locale, home, proxies and how pip and npm reach a registry.
_PASSED = (
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TMPDIR",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
)
_PASSED_PREFIXES = ("LC_", "PIP_", "npm_config_", "NPM_CONFIG_")
_LOG_BATCH = 5000


def dummy_credentials(project: BuildProject, build_id: str) -> Mapping[str, str]:
    """The local cloud's admin keys, which its IAM lets through."""
    return DUMMY_KEYS


def service_role_credentials(cloud: BuildCloud, project: BuildProject, build_id: str) -> Mapping[str, str] | None:
    """Temporary keys of the project's service role, or None when the local cloud's IAM has no such role."""
    role = project.service_role
    if cloud.client is None or ":role/" not in role:
        return None
    try:
        cloud.client("iam").get_role(RoleName=role.rsplit("/", 1)[-1])
    except Exception:  # no such role (or no IAM to ask): the dummy keys, as before roles were enforced
        return None
    seconds = min(43200, max(900, project.timeout_minutes * 60 + 300))
    try:
        found = cloud.client("sts").assume_role(
            RoleArn=role, RoleSessionName=build_id.rsplit(":", 1)[-1][:64], DurationSeconds=seconds
        )["Credentials"]
    except Exception as exc:  # CodeBuild's words when it cannot assume the role
        raise _Failure(
            "CLIENT_ERROR", f"CodeBuild is not authorized to perform: sts:AssumeRole on {role}: {exc}"
        ) from None
    return {
        "AWS_ACCESS_KEY_ID": found["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": found["SecretAccessKey"],
        "AWS_SESSION_TOKEN": found["SessionToken"],
    }


@dataclass(frozen=True, slots=True)
class EnvironmentVariable:
    name: str
    value: str
    type: str = "PLAINTEXT"


@dataclass(frozen=True, slots=True)
class BuildProject:
    """What a build needs of an AWS::CodeBuild::Project (or of BatchGetProjects' answer)."""

    name: str
    buildspec: str
    environment: tuple[EnvironmentVariable, ...] = ()
    image: str = DEFAULT_IMAGE
    service_role: str = ""
    timeout_minutes: int = 60

    @classmethod
    def from_api(cls, project: Mapping[str, Any]) -> BuildProject:
        environment = project.get("environment") or {}
        variables = tuple(
            EnvironmentVariable(v["name"], str(v.get("value", "")), v.get("type") or "PLAINTEXT")
            for v in environment.get("environmentVariables") or []
        )
        return cls(
            name=project["name"],
            buildspec=(project.get("source") or {}).get("buildspec") or "",
            environment=variables,
            image=environment.get("image") or DEFAULT_IMAGE,
            service_role=project.get("serviceRole") or "",
            timeout_minutes=int(project.get("timeoutInMinutes") or 60),
        )

    @classmethod
    def from_template(
        cls,
        template: Mapping[str, Any],
        logical_id: str,
        *,
        name: str | None = None,
        refs: Mapping[str, str] | None = None,
    ) -> BuildProject:
        """The project resource of a synthesized template; `refs` gives the values of the Refs it holds."""
        properties = template["Resources"][logical_id]["Properties"]
        environment = properties.get("Environment") or {}
        variables = tuple(
            EnvironmentVariable(
                v["Name"], _plain(v.get("Value", ""), refs or {}, v["Name"]), v.get("Type") or "PLAINTEXT"
            )
            for v in environment.get("EnvironmentVariables") or []
        )
        role = properties.get("ServiceRole")
        return cls(
            name=name or logical_id,
            buildspec=properties["Source"].get("BuildSpec") or "",
            environment=variables,
            image=environment.get("Image") or DEFAULT_IMAGE,
            service_role=role if isinstance(role, str) else "",
            timeout_minutes=int(properties.get("TimeoutInMinutes") or 60),
        )


@dataclass(frozen=True, slots=True)
class BuildCloud:
    """Where a build's AWS calls go, and with which keys (see the module docstring).

    `client(service)` serves the build service's own calls: assuming the service role, Parameter Store
    variables and the log. `credentials(project, build_id)`, when given, decides the build's keys instead.
    """

    endpoint_url: str
    region: str
    account_id: str = "123456789012"
    credentials: Callable[[BuildProject, str], Mapping[str, str]] | None = None
    client: Callable[[str], Any] | None = None

    def keys(self, project: BuildProject, build_id: str) -> tuple[Mapping[str, str], str]:
        """The build's keys and what the log says of them."""
        if self.credentials is not None:
            return self.credentials(project, build_id), "Local cloud: the build runs with the keys its caller gave"
        found = service_role_credentials(self, project, build_id)
        if found is not None:
            return found, f"Local cloud: the build runs under its service role {project.service_role}"
        return DUMMY_KEYS, "Local cloud: the build runs with the local cloud's admin keys (no service role in IAM)"


@dataclass(frozen=True, slots=True)
class PhaseResult:
    phase: str
    status: str
    code: str = ""
    message: str = ""


@dataclass(frozen=True, slots=True)
class BuildResult:
    """SUCCEEDED, FAILED, TIMED_OUT or STOPPED, with each phase that ran and the whole log."""

    build_id: str
    project: str
    status: str
    phases: tuple[PhaseResult, ...]
    log: str
    artifacts: Path | None = None

    @property
    def failed_phase(self) -> PhaseResult | None:
        return next((p for p in self.phases if p.status != "SUCCEEDED"), None)

    @property
    def message(self) -> str:
        """CodePipeline's errorDetails message for this build, in the words it uses ("" when it succeeded)."""
        failed = self.failed_phase
        if self.status == "SUCCEEDED" or failed is None:
            return ""
        return (
            f"Build terminated with state: {self.status}. Phase: {failed.phase}, Code: {failed.code}, "
            f"Message: {failed.message}"
        )


class _Log:
    """The build's log: "[Container] <time> <what>" lines around the commands' own output."""

    def __init__(self, on_line: Callable[[str], None] | None) -> None:
        self._lines: list[str] = []
        self._on_line = on_line
        self._output = False

    def container(self, text: str) -> None:
        if self._output:
            self._emit("")
            self._output = False
        self._emit(f"[Container] {datetime.now(UTC):%Y/%m/%d %H:%M:%S.%f} {text}")

    def output(self, text: str) -> None:
        self._output = True
        self._emit(text)

    def phase_done(self, result: PhaseResult) -> PhaseResult:
        self.container(f"Phase complete: {result.phase} State: {result.status}")
        self.container(f"Phase context status code: {result.code} Message: {result.message}")
        return result

    def _emit(self, line: str) -> None:
        self._lines.append(line)
        if self._on_line:
            self._on_line(line)

    @property
    def lines(self) -> list[str]:
        return list(self._lines)

    def text(self) -> str:
        return "\n".join(self._lines) + "\n"


@dataclass(frozen=True)
class _Inputs:
    """What a build is given: the source, secondary inputs by name, overriding variables, who started it."""

    source: Path
    secondary: Mapping[str, Path]
    overrides: Sequence[EnvironmentVariable]
    initiator: str


@dataclass
class _Build:
    project: BuildProject
    cloud: BuildCloud
    build_id: str
    root: Path
    log: _Log
    deadline: float
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path = Path()
    shell: str = "/bin/sh"
    phases: list[PhaseResult] = field(default_factory=list)
    #: The status that ended the build (FAILED, TIMED_OUT, STOPPED) and the phase it ended in.
    outcome: str = ""
    ended_in: str = ""
    #: A phase failed under `on-failure: CONTINUE`: the build goes on and fails at the end.
    continued: bool = False

    @property
    def src(self) -> Path:
        return self.root / "src"

    @property
    def status(self) -> str:
        return self.outcome or ("FAILED" if self.continued else "SUCCEEDED")


class _Failure(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class CodeBuildRunner:
    """Runs builds, one fresh folder each; `stop()` ends the running ones (the cloud's reset and stop)."""

    def __init__(self, *, cache_dir: Path | None = None, work_root: Path | None = None, keep: bool = False) -> None:
        self.cache_dir = Path(cache_dir or os.environ.get(CACHE_ENV) or default_cache())
        self.work_root = work_root
        self.keep = keep
        self._running: set[subprocess.Popen] = set()
        self._lock = threading.Lock()
        self._stopped = threading.Event()

    def stop(self) -> None:
        self._stopped.set()
        with self._lock:
            running = list(self._running)
        for process in running:
            _kill(process)

    def reset(self) -> None:
        self.stop()
        self._stopped.clear()

    def run(
        self,
        project: BuildProject,
        cloud: BuildCloud,
        *,
        source: Path,
        secondary: Mapping[str, Path] | None = None,
        overrides: Sequence[EnvironmentVariable] = (),
        artifacts_to: Path | None = None,
        initiator: str = "local-cloud",
        on_line: Callable[[str], None] | None = None,
        build_id: str | None = None,
    ) -> BuildResult:
        """Run the project's buildspec on a copy of `source`; on success its artifacts go to `artifacts_to`.

        `build_id` ("<project>:<uuid>") is made up when not given.
        """
        build_id = build_id or f"{project.name}:{uuid.uuid4()}"
        if self.work_root:
            self.work_root.mkdir(parents=True, exist_ok=True)
        root = Path(tempfile.mkdtemp(prefix="local-codebuild-", dir=self.work_root))
        build = _Build(project, cloud, build_id, root, _Log(on_line), time.monotonic() + project.timeout_minutes * 60)
        try:
            self._run(build, _Inputs(Path(source), secondary or {}, overrides, initiator), artifacts_to)
        finally:
            if not self.keep:
                shutil.rmtree(root, ignore_errors=True)
        succeeded = build.status == "SUCCEEDED"
        result = BuildResult(
            build_id,
            project.name,
            build.status,
            tuple(build.phases),
            build.log.text(),
            artifacts_to if succeeded else None,
        )
        _store_log(cloud, project, build_id, build.log.lines)
        return result

    def _run(self, build: _Build, inputs: _Inputs, artifacts_to: Path | None) -> None:
        build.log.container(
            f"Running on the local cloud's CodeBuild ({build.project.image} is not pulled: "
            "the commands run on this machine)"
        )
        try:
            spec = self._download_source(build, inputs)
        except _Failure as failure:
            self._end(build, PhaseResult("DOWNLOAD_SOURCE", "FAILED", failure.code, failure.message))
            return
        build.phases.append(build.log.phase_done(PhaseResult("DOWNLOAD_SOURCE", "SUCCEEDED")))
        phases = spec.get("phases") or {}
        for phase in PHASES:
            if build.outcome and not (phase == "POST_BUILD" and build.ended_in == "BUILD"):
                break  # a failed install or pre_build goes straight to FINALIZING
            declared = phases.get(phase.lower()) or {}
            result = build.log.phase_done(self._phase(build, phase, declared))
            build.phases.append(result)
            if result.status == "SUCCEEDED" or build.outcome:
                continue
            build.env["CODEBUILD_BUILD_SUCCEEDING"] = "0"
            if result.status == "FAILED" and declared.get("on-failure") == "CONTINUE":
                build.continued = True
            else:
                build.outcome, build.ended_in = result.status, phase
        if build.ended_in not in ("INSTALL", "PRE_BUILD"):
            self._upload_artifacts(build, spec.get("artifacts"), artifacts_to)

    def _end(self, build: _Build, result: PhaseResult) -> None:
        build.phases.append(build.log.phase_done(result))
        build.outcome, build.ended_in = result.status, result.phase
        build.env["CODEBUILD_BUILD_SUCCEEDING"] = "0"

    def _download_source(self, build: _Build, given: _Inputs) -> dict[str, Any]:
        log = build.log
        log.container("Waiting for agent ping")
        log.container("Waiting for DOWNLOAD_SOURCE")
        log.container("Phase is DOWNLOAD_SOURCE")
        shutil.copytree(given.source, build.src, symlinks=True)
        inputs = {}
        for name, folder in given.secondary.items():
            inputs[name] = build.root / "inputs" / name
            shutil.copytree(folder, inputs[name], symlinks=True)
        log.container(f"CODEBUILD_SRC_DIR={build.src}")
        log.container("YAML location is the project's buildspec (inline)")
        spec = _parse_buildspec(build.project.buildspec)
        log.container("Processing environment variables")
        build.shell = _shell(((spec.get("env") or {}).get("shell")) or "sh")
        python, notes = self._runtimes(build, ((spec.get("phases") or {}).get("install") or {}).get("runtime-versions"))
        try:
            venv = fresh_venv(python, build.root / "venv", self.cache_dir / "venvs")
        except (OSError, subprocess.SubprocessError) as exc:
            message = f"The local cloud could not make the build's venv with {python}: {exc}"
            raise _Failure("CLIENT_ERROR", message) from None
        build.env = self._environment(build, spec, venv, inputs, given.overrides, given.initiator)
        for note in notes:
            log.container(note)
        build.cwd = build.src
        log.container(f"Moving to directory {build.src}")
        log.container("Registering with agent")
        listed = {
            p: (phases_spec.get("commands") or [])
            for p, phases_spec in (spec.get("phases") or {}).items()
            if isinstance(phases_spec, dict)
        }
        log.container(f"Phases found in YAML: {len(listed)}")
        for phase, commands in listed.items():
            log.container(f" {phase.upper()}: {len(commands)} commands")
        return spec

    def _runtimes(self, build: _Build, runtimes: Mapping[str, Any] | None) -> tuple[str, list[str]]:
        """The Python for the venv, and what the log says of each runtime asked for."""
        python, notes = base_python(), []
        for runtime, version in (runtimes or {}).items():
            build.log.container(f"Selecting '{runtime}' runtime version '{version}' based on manual selections...")
            if runtime == "python":
                found = python_for(str(version))
                python = found or python
                notes.append(
                    f"Local cloud: python {python_version(python)} from {python}, in a fresh venv"
                    + ("" if found else f" (this machine has no python {version})")
                )
            elif runtime == "nodejs":
                node = shutil.which("node")
                notes.append(
                    f"Local cloud: nodejs {node_version(node)} from {node}"
                    if node
                    else "Local cloud: this machine has no nodejs"
                )
            else:
                notes.append(f"Local cloud: runtime '{runtime}' is whatever this machine has")
        return python, notes

    def _environment(
        self,
        build: _Build,
        spec: Mapping[str, Any],
        venv: Path,
        inputs: Mapping[str, Path],
        overrides: Sequence[EnvironmentVariable],
        initiator: str,
    ) -> dict[str, str]:
        """The machine's registry settings, then CodeBuild's own variables, then the buildspec's, project's, call's."""
        env = {k: v for k, v in os.environ.items() if k in _PASSED or k.startswith(_PASSED_PREFIXES)}
        npm_prefix = build.root / "npm-global"
        aws = build.root / "aws"
        aws.mkdir()
        (aws / "config").write_text("")
        (aws / "credentials").write_text("")
        project, cloud = build.project, build.cloud
        env.update(
            {
                "PATH": os.pathsep.join([str(venv / "bin"), str(npm_prefix / "bin"), *machine_path()]),
                "PIP_CACHE_DIR": str(self.cache_dir / "pip"),
                "npm_config_cache": str(self.cache_dir / "npm"),
                "npm_config_prefix": str(npm_prefix),
                "npm_config_update_notifier": "false",
                # pip installs into the build's venv only, never into one of this machine's Pythons.
                "PIP_REQUIRE_VIRTUALENV": "true",
                "AWS_ENDPOINT_URL": cloud.endpoint_url,
                "AWS_REGION": cloud.region,
                "AWS_DEFAULT_REGION": cloud.region,
                "AWS_CONFIG_FILE": str(aws / "config"),
                "AWS_SHARED_CREDENTIALS_FILE": str(aws / "credentials"),
                "AWS_EC2_METADATA_DISABLED": "true",
                **_codebuild_variables(build, inputs, initiator),
            }
        )
        keys, said = cloud.keys(project, build.build_id)
        build.log.container(said)
        env.update(keys)
        spec_env = spec.get("env") or {}
        for name, value in (spec_env.get("variables") or {}).items():
            env[str(name)] = str(value)
        for name, parameter in (spec_env.get("parameter-store") or {}).items():
            env[str(name)] = _parameter(cloud, str(parameter))
        for variable in (*project.environment, *overrides):
            env[variable.name] = _resolved(cloud, variable)
        return env

    def _phase(self, build: _Build, phase: str, spec: Mapping[str, Any]) -> PhaseResult:
        build.log.container(f"Entering phase {phase}")
        failed: PhaseResult | None = None
        for command in _commands(spec.get("commands")):
            failed = self._command(build, phase, command)
            if failed:
                break
        for command in _commands(spec.get("finally")):
            failed = self._command(build, phase, command) or failed
        return failed or PhaseResult(phase, "SUCCEEDED")

    def _command(self, build: _Build, phase: str, command: str) -> PhaseResult | None:
        """Run one command in the build's shell state; the phase's failure if it did not exit 0."""
        if self._stopped.is_set():
            return PhaseResult(phase, "STOPPED", "BUILD_STOPPED", "The build was stopped")
        remaining = build.deadline - time.monotonic()
        if remaining <= 0:
            return PhaseResult(phase, "TIMED_OUT", "BUILD_TIMED_OUT", "Build has timed out.")
        build.log.container(f"Running command {command}")
        status = _run_in_shell(build, command, remaining, self._lock, self._running)
        if status == 0:
            return None
        if self._stopped.is_set():
            return PhaseResult(phase, "STOPPED", "BUILD_STOPPED", "The build was stopped")
        if time.monotonic() >= build.deadline:
            return PhaseResult(phase, "TIMED_OUT", "BUILD_TIMED_OUT", "Build has timed out.")
        build.log.container(f"Command did not exit successfully {command} exit status {status}")
        return PhaseResult(
            phase,
            "FAILED",
            "COMMAND_EXECUTION_ERROR",
            f"Error while executing command: {command}. Reason: exit status {status}",
        )

    def _upload_artifacts(self, build: _Build, spec: Mapping[str, Any] | None, destination: Path | None) -> None:
        """Copy the artifact files out; a pattern list that matches nothing fails the phase, as in CodeBuild."""
        if not spec or destination is None:
            return
        log = build.log
        base = build.src / str(spec.get("base-directory") or ".")
        log.container(f"Expanding base directory path: {spec.get('base-directory') or '.'}")
        log.container("Assembling file list")
        patterns = _commands(spec.get("files"))
        excluded = _commands(spec.get("exclude-paths"))
        found = sorted({p for pattern in patterns for p in base.glob(pattern) if p.is_file()})
        found = [p for p in found if not any(fnmatch.fnmatch(p.relative_to(base).as_posix(), e) for e in excluded)]
        if not found:
            self._end(
                build, PhaseResult("UPLOAD_ARTIFACTS", "FAILED", "CLIENT_ERROR", "no matching artifact paths found")
            )
            return
        log.container(f"Found {len(found)} file(s)")
        discard = str(spec.get("discard-paths", "no")).lower() in ("yes", "true")
        if build.status == "SUCCEEDED":
            for path in found:
                target = destination / (path.name if discard else path.relative_to(base))
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
        build.phases.append(log.phase_done(PhaseResult("UPLOAD_ARTIFACTS", "SUCCEEDED")))


def _codebuild_variables(build: _Build, inputs: Mapping[str, Path], initiator: str) -> dict[str, str]:
    cloud = build.cloud
    variables = {
        "CODEBUILD_BUILD_ID": build.build_id,
        "CODEBUILD_BUILD_ARN": f"arn:aws:codebuild:{cloud.region}:{cloud.account_id}:build/{build.build_id}",
        "CODEBUILD_BUILD_NUMBER": "1",
        "CODEBUILD_BUILD_IMAGE": build.project.image,
        "CODEBUILD_BUILD_SUCCEEDING": "1",
        "CODEBUILD_INITIATOR": initiator,
        "CODEBUILD_LOG_PATH": build.build_id.split(":", 1)[1],
        "CODEBUILD_START_TIME": str(int(time.time() * 1000)),
        "CODEBUILD_SRC_DIR": str(build.src),
        "CODEBUILD_CI": "true",
    }
    variables.update({f"CODEBUILD_SRC_DIR_{name}": str(folder) for name, folder in inputs.items()})
    return variables


def _run_in_shell(
    build: _Build, command: str, timeout: float, lock: threading.Lock, running: set[subprocess.Popen]
) -> int:
    """One command in a shell that starts where the previous one ended (directory, exported variables)."""
    state = build.root / "state.json"
    save = (
        f"{shlex.quote(sys.executable)} -I -S -c 'import json,os,sys; "
        f'json.dump({{"env": dict(os.environ), "cwd": os.getcwd()}}, open(sys.argv[1], "w"))\' '
        f"{shlex.quote(str(state))}"
    )
    script = f"trap '__codebuild_status=$?; {_quote_in_trap(save)}; exit $__codebuild_status' EXIT\n{command}\n"
    process = subprocess.Popen(
        [build.shell, "-c", script],
        cwd=build.cwd,
        env=build.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    with lock:
        running.add(process)
    timer = threading.Timer(timeout, _kill, (process,))
    timer.start()
    try:
        assert process.stdout is not None
        for line in iter(process.stdout.readline, b""):
            build.log.output(line.decode("utf-8", "replace").rstrip("\r\n"))
        status = process.wait()
    finally:
        timer.cancel()
        with lock:
            running.discard(process)
    _restore(build, state)
    return status


def _quote_in_trap(text: str) -> str:
    """`text` inside the single-quoted trap action."""
    return text.replace("'", "'\\''")


def _restore(build: _Build, state: Path) -> None:
    try:
        saved = json.loads(state.read_text())
    except (OSError, ValueError):
        return  # the shell was killed, or exec'd away: keep what the build had
    finally:
        state.unlink(missing_ok=True)
    succeeding = build.env.get("CODEBUILD_BUILD_SUCCEEDING", "1")
    build.env = {k: v for k, v in saved["env"].items() if k not in ("PWD", "OLDPWD", "SHLVL", "_")}
    build.env["CODEBUILD_BUILD_SUCCEEDING"] = succeeding
    build.cwd = Path(saved["cwd"])


def _kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _commands(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(value)] if isinstance(value, str) else [str(v) for v in value]


def _parse_buildspec(text: str) -> dict[str, Any]:
    if not text.strip():
        raise _Failure("YAML_FILE_ERROR", "The project has no buildspec")
    try:
        spec = json.loads(text)
    except ValueError:
        import yaml

        try:
            spec = yaml.safe_load(text)
        except yaml.YAMLError as bad:
            raise _Failure("YAML_FILE_ERROR", f"Invalid buildspec: {bad}") from None
    if not isinstance(spec, dict) or str(spec.get("version")) not in ("0.1", "0.2"):
        raise _Failure("YAML_FILE_ERROR", "Unknown runtime version named '' in the buildspec: version must be 0.2")
    return spec


def _shell(name: str) -> str:
    found = shutil.which("bash" if name.endswith("bash") else "sh")
    if not found:
        raise _Failure("YAML_FILE_ERROR", f"Unsupported shell: {name}")
    return found


def _plain(value: Any, refs: Mapping[str, str], name: str) -> str:
    if isinstance(value, dict) and "Ref" in value:
        if value["Ref"] not in refs:
            raise ValueError(f"environment variable {name} refers to {value['Ref']}: pass its value in refs")
        return refs[value["Ref"]]
    if isinstance(value, dict):
        raise ValueError(f"environment variable {name} is {value}: pass a plain value")
    return str(value)


def _resolved(cloud: BuildCloud, variable: EnvironmentVariable) -> str:
    if variable.type == "PARAMETER_STORE":
        return _parameter(cloud, variable.value)
    if variable.type == "SECRETS_MANAGER":
        if cloud.client is None:
            raise _Failure("CLIENT_ERROR", f"Secrets Manager is not reachable for {variable.name}")
        return cloud.client("secretsmanager").get_secret_value(SecretId=variable.value)["SecretString"]
    return variable.value


def _parameter(cloud: BuildCloud, name: str) -> str:
    if cloud.client is None:
        raise _Failure("CLIENT_ERROR", f"Parameter Store is not reachable for {name}")
    try:
        return cloud.client("ssm").get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
    except Exception as exc:  # any refusal is the build's failure to read it
        raise _Failure("CLIENT_ERROR", f"Parameter Store: {name} could not be read: {exc}") from None


def _store_log(cloud: BuildCloud, project: BuildProject, build_id: str, lines: Iterable[str]) -> None:
    """The log in CloudWatch Logs where CodeBuild puts it: /aws/codebuild/<project>, stream <build uuid>."""
    if cloud.client is None:
        return
    group, stream = f"/aws/codebuild/{project.name}", build_id.split(":", 1)[1]
    try:
        logs = cloud.client("logs")
        try:
            logs.create_log_group(logGroupName=group)
        except logs.exceptions.ResourceAlreadyExistsException:
            pass
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        now = int(time.time() * 1000)
        events = [{"timestamp": now, "message": line or " "} for line in lines]
        for start in range(0, len(events), _LOG_BATCH):
            logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events[start : start + _LOG_BATCH])
    except Exception:  # the build's result stands without its copy in CloudWatch
        log.warning("the log of %s could not be put into CloudWatch Logs", build_id, exc_info=True)

"""The whole deploy, rehearsed on a bare local cloud: the time of each stage, then of teardown.

    .venv/bin/python bench/deploy_rehearsal.py [--quiet]

A bare account (nothing of ours, JumpStart's replica) with CodePipeline's automatic runs on, as AWS runs
a pipeline that a stack creates. Then `python -m app --endpoint-url URL deploy --yes`, one image through
the deployed endpoint (`generate --wait`) and `teardown --yes`, in this process, their progress lines
timed as they arrive. Each stage's time runs from its first line to the next stage's first line; the
pipeline's actions from InProgress to their end.
Builds download the CDK CLI from npm and pip packages (cached under DIFFUSION_DESK_BUILD_CACHE).
"""

from __future__ import annotations

import argparse
import io
import os
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: `[ 41%] Building the model and the endpoint: Build · Synth: InProgress`
_LINE = re.compile(r"^\[\s*(\d+)%\] (?P<step>[^:]+): (?P<message>.*)$")
_ACTION = re.compile(r"^(?P<stage>[^·]+) · (?P<action>[^:]+): (?P<status>\w+)")


class TimedLines(io.TextIOBase):
    """A stderr that keeps each complete line with the second it arrived (and echoes it)."""

    def __init__(self, echo: bool) -> None:
        self.lines: list[tuple[float, str]] = []
        self._partial = ""
        self._echo = echo

    def write(self, text: str) -> int:
        self._partial += text
        *complete, self._partial = self._partial.split("\n")
        now = time.monotonic()
        for line in complete:
            self.lines.append((now, line))
            if self._echo:
                print(f"{time.strftime('%H:%M:%S')} {line}", file=sys.__stderr__, flush=True)
        return len(text)


def stage_times(lines: list[tuple[float, str]], end: float) -> list[tuple[str, float]]:
    """(name, seconds) of each deployer step in order, and of each pipeline action inside it."""
    steps: list[tuple[str, float]] = []
    for when, line in lines:
        match = _LINE.match(line)
        if match and (not steps or steps[-1][0] != match["step"]):
            steps.append((match["step"], when))
    timed = [(name, (steps[i + 1][1] if i + 1 < len(steps) else end) - start) for i, (name, start) in enumerate(steps)]
    started: dict[str, float] = {}
    actions: list[tuple[str, float]] = []
    for when, line in lines:
        match = _LINE.match(line)
        action = _ACTION.match(match["message"]) if match else None
        if not action:
            continue
        name = f"  {action['stage'].strip()} · {action['action'].strip()}"
        if action["status"] == "InProgress":
            started[name] = when
        elif name in started:
            actions.append((f"{name} ({action['status']})", when - started.pop(name)))
    return timed + actions


def listing(cloud) -> dict[str, set[str]]:
    """What the account holds that a deploy creates: stacks, buckets, parameters, roles, pipelines, functions, the
    budget guard's alarm and budget…"""
    found: dict[str, set[str]] = {}
    cfn, s3, ssm, iam = (cloud.client(s) for s in ("cloudformation", "s3", "ssm", "iam"))
    found["stacks"] = {
        s["StackName"] for s in cfn.list_stacks()["StackSummaries"] if s["StackStatus"] != "DELETE_COMPLETE"
    }
    found["buckets"] = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    found["parameters"] = {p["Name"] for p in ssm.describe_parameters()["Parameters"]}
    found["roles"] = {r["RoleName"] for r in iam.list_roles()["Roles"]}
    found["pipelines"] = {p["name"] for p in cloud.client("codepipeline").list_pipelines()["pipelines"]}
    found["build projects"] = set(cloud.client("codebuild").list_projects()["projects"])
    found["topics"] = {t["TopicArn"] for t in cloud.client("sns").list_topics()["Topics"]}
    found["functions"] = {f["FunctionName"] for f in cloud.client("lambda").list_functions()["Functions"]}
    found["endpoints"] = {e["EndpointName"] for e in cloud.client("sagemaker").list_endpoints()["Endpoints"]}
    found["log groups"] = {g["logGroupName"] for g in cloud.client("logs").describe_log_groups()["logGroups"]}
    found["alarms"] = {a["AlarmName"] for a in cloud.client("cloudwatch").describe_alarms()["MetricAlarms"]}
    found["budgets"] = {
        b["BudgetName"] for b in cloud.client("budgets").describe_budgets(AccountId=cloud.account_id).get("Budgets", [])
    }
    return found


def failed_builds(cloud, lines: int = 60) -> str:
    """The end of each failed build's log, from CloudWatch Logs where CodeBuild puts it."""
    logs = cloud.client("logs")
    shown = []
    for group in logs.describe_log_groups(logGroupNamePrefix="/aws/codebuild/")["logGroups"]:
        name = group["logGroupName"]
        for stream in logs.describe_log_streams(logGroupName=name)["logStreams"]:
            events = logs.get_log_events(logGroupName=name, logStreamName=stream["logStreamName"])["events"]
            text = [e["message"] for e in events]
            if any("State: FAILED" in line for line in text):
                shown.append(f"== {name} {stream['logStreamName']}\n" + "\n".join(text[-lines:]))
    return "\n".join(shown)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quiet", action="store_true", help="do not echo the progress lines")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="deploy-rehearsal-"))
    os.environ["DIFFUSION_DESK_CONFIG_DIR"] = str(folder / "config")
    os.environ["DIFFUSION_DESK_DATA_DIR"] = str(folder / "data")
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        os.environ.setdefault(name, value)
    os.environ["AWS_CONFIG_FILE"] = os.environ["AWS_SHARED_CREDENTIALS_FILE"] = str(folder / "empty")
    (folder / "empty").write_text("")

    from app.cli import main as cli
    from app.services.local_cloud import LocalCloud
    from app.services.local_cloud.serve import bare

    cloud = LocalCloud().start()
    try:
        bare(cloud)
        cloud.pipelines.automatic_runs = True
        before = listing(cloud)
        where = ["--endpoint-url", cloud.endpoint_url, "--region", cloud.region]
        figures: list[tuple[str, float]] = []
        image = ["generate", "a lighthouse at dusk", "--size", "64x64", "--wait", "--out", str(folder / "images")]
        for command in (["deploy", "--yes", "--alert-email", "designer@example.com"], image, ["teardown", "--yes"]):
            err = TimedLines(echo=not args.quiet)
            start = time.monotonic()
            code = cli([*where, *command], stdout=io.StringIO(), stderr=err)
            end = time.monotonic()
            figures.append((f"{command[0]} (exit {code})", end - start))
            figures.extend(stage_times(err.lines, end))
            if code != 0:
                print(failed_builds(cloud))
                break
        after = listing(cloud)
    finally:
        cloud.stop()
    print("\nstage                                              seconds")
    for name, seconds in figures:
        print(f"{name:<50} {seconds:8.1f}")
    left = {kind: sorted(after[kind] - before[kind]) for kind in after if after[kind] - before[kind]}
    gone = {kind: sorted(before[kind] - after[kind]) for kind in before if before[kind] - after[kind]}
    print(f"\nleft after teardown (not there before): {left or 'nothing'}")
    print(f"gone after teardown (there before): {gone or 'nothing'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

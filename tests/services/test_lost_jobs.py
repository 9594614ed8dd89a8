"""Nothing waits forever: --wait ends at its --timeout, offline retries say the interval they wait, and jobs the
endpoint will never answer become LOST with a message and a one-command resend."""

from __future__ import annotations

import io
import threading
import time
from datetime import UTC, datetime, timedelta

import orjson

from app.cli import EXIT_TIMEOUT, main
from app.services.cloud.aws import Connection, client_config
from app.services.cloud.credentials import CredentialSource
from app.services.models import JobState


def run(cloud, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["--endpoint-url", cloud.endpoint_url, "--region", cloud.region, *argv], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_wait_gives_up_at_its_timeout_with_exit_code_124(cloud, dirs):
    cloud.cloud.cold_start_seconds = 3600  # the endpoint never starts: nothing would ever end the wait

    started = time.monotonic()
    code, out, err = run(cloud, "generate", "a boat", "--size", "64x64", "--wait", "--timeout", "3")
    took = time.monotonic() - started

    assert code == EXIT_TIMEOUT == 124
    assert "Stopped waiting after 3 s (--timeout): 1 of 1 job not finished yet. They go on" in err
    assert 3 <= took < 60  # at its timeout, not at the job's end an hour later


def test_offline_says_the_interval_it_really_waits(open_services, cloud):
    ws = open_services()
    dead = Connection(
        cloud.session(),
        CredentialSource(),
        region=cloud.region,
        endpoint_url="http://127.0.0.1:9",
        config=client_config("standard", max_attempts=1, connect_timeout=1),
    )
    ws.jobs.connection = ws.tracker.connection = dead
    ws.jobs.submit({"prompt": "sent later", "width": 64, "height": 64})  # never sent: the cloud is gone
    said: list[tuple[float, str]] = []
    ws.tracker.on_status = lambda status: said.append((time.monotonic(), status.message))
    loop = threading.Thread(target=ws.tracker.run, daemon=True)
    loop.start()
    deadline = time.monotonic() + 60
    while sum(text.startswith("Offline") for _, text in said) < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    ws.tracker.stop()
    loop.join(10)

    offline = [(at, text) for at, text in said if text.startswith("Offline")]
    assert [text for _, text in offline[:3]] == [
        "Offline: retrying in 2 s",
        "Offline: retrying in 4 s",
        "Offline: retrying in 8 s",
    ]
    for (at, text), (then, _) in zip(offline, offline[1:3], strict=False):
        promised = float(text.split()[-2])
        assert then - at >= promised - 0.1, f"said {text!r}, tried again after {then - at:.1f} s"


def test_jobs_sent_to_an_endpoint_that_no_longer_exists_are_lost(open_services, cloud):
    cloud.cloud.cold_start_seconds = 3600
    ws = open_services()
    job = ws.jobs.submit({"prompt": "a boat", "width": 64, "height": 64})
    assert job.state == JobState.QUEUED
    cloud.client("sagemaker").delete_endpoint(EndpointName=ws.target.endpoint_name)

    ws.tracker.poll()
    (lost,) = ws.tracker.look_at_endpoint()

    assert lost.inference_id == job.inference_id and lost.state == JobState.LOST
    assert f"the endpoint {ws.target.endpoint_name!r} it was sent to no longer exists" in lost.message
    assert "resend --lost" in lost.message


def test_a_lost_job_is_resent_with_one_command_once(open_services, cloud, dirs):
    cloud.cloud.cold_start_seconds = 3600  # it waits in the endpoint's queue past its time to live
    ws = open_services()
    job = ws.jobs.submit({"prompt": "a boat", "width": 64, "height": 64, "seed": 7})
    ws.tracker.clock = lambda: datetime.now(UTC) + ws.jobs.look_window() + timedelta(minutes=1)
    (lost,) = ws.tracker.poll()
    assert lost.inference_id == job.inference_id and lost.state == JobState.LOST
    assert "no result arrived within" in lost.message
    ws.close()

    code, out, err = run(cloud, "resend", "--lost", "--json")

    assert code == 0, err
    assert "Sending 1 job again as new jobs." in err
    (sent,) = orjson.loads(out)
    assert sent["retry_of"] == job.inference_id and sent["state"] == "queued"
    assert sent["request"]["seed"] == 7
    code, out, err = run(cloud, "resend", "--lost")
    assert code == 0 and "No lost jobs: nothing to send again." in err


def test_resend_lost_finds_the_jobs_of_a_deleted_endpoint_by_itself(open_services, cloud):
    cloud.cloud.cold_start_seconds = 3600
    ws = open_services()
    job = ws.jobs.submit({"prompt": "a boat", "width": 64, "height": 64})
    endpoint = ws.target.endpoint_name
    ws.close()
    cloud.client("sagemaker").delete_endpoint(EndpointName=endpoint)

    code, out, err = run(cloud, "resend", "--lost", "--json")  # no `jobs` before: it looks at the endpoint itself

    assert "Sending 1 job again as new jobs." in err
    (sent,) = orjson.loads(out)
    assert sent["retry_of"] == job.inference_id


def test_a_full_disk_while_marking_jobs_lost_does_not_end_tracking(open_services, monkeypatch):
    from app.services.errors import DiskFull

    ws = open_services()
    looks = []

    def look_with_a_full_disk():
        looks.append(1)
        if len(looks) == 1:
            raise DiskFull("library.sqlite3")
        return []

    monkeypatch.setattr(ws.tracker, "look_at_endpoint", look_with_a_full_disk)
    monkeypatch.setattr(ws.tracker, "interval", lambda: 0.05)

    assert ws.tracker.run(until=lambda: len(looks) >= 2, deadline=time.monotonic() + 60)


def test_a_job_sent_to_a_main_model_of_a_family_this_app_does_not_know_is_not_lost(open_services, cloud):
    """A newer deployment's main model of a family this version does not know is sent text to image's requests
    (`Target.model_family`); the tracker agrees that its endpoint serves them, so they are not lost."""
    from contract import FAMILY_PARAM, ssm_name

    cloud.client("ssm").put_parameter(
        Name=ssm_name(cloud.deployment.name, FAMILY_PARAM), Value="stable-diffusion-9", Type="String", Overwrite=True
    )
    cloud.cloud.cold_start_seconds = 3600
    ws = open_services()
    assert ws.target.family == "stable-diffusion-9"
    job = ws.jobs.submit({"prompt": "a boat", "width": 64, "height": 64})
    assert job.state == JobState.QUEUED and job.family == "text-to-image"

    ws.tracker.refresh()

    after = ws.library.get_job(job.inference_id)
    assert after.state == JobState.QUEUED, after.message
    assert ws.target.endpoint_for(job.family) == ws.target.endpoint_name

"""The queue's "warming up" line: the wait this deployment's recorded cold starts measured, or honestly none."""

from __future__ import annotations

from datetime import UTC, datetime

from app.services.jobs.service import WARMING_UP
from app.services.local_cloud.replay import Span, replay
from app.services.models import JobState
from contract import GenerationRequest

SMALL = {"width": 64, "height": 64}


def _at(day: int, hour: int) -> float:
    return datetime(2026, 11, day, hour, tzinfo=UTC).timestamp()  # days before the tests run


def _history(cloud, cold_starts: list[float]) -> None:
    """One scale-out from zero per cold start (begun that many seconds before its instance was in service)."""
    spans = [Span(_at(1 + n, 10), 30, cold_start=seconds) for n, seconds in enumerate(cold_starts)]
    replay(
        cloud.client("cloudwatch"),
        cloud.cloud.scaling,
        region=cloud.region,
        endpoint=cloud.deployment.endpoint_name,
        spans=spans,
    )


def test_a_cold_endpoint_says_the_median_of_the_last_five_recorded_cold_starts(open_services, cloud):
    _history(cloud, [900, 300, 180, 240, 420, 200])  # the oldest (15 min) is not among the last five
    ws = open_services()

    job = ws.jobs.submit(GenerationRequest("a red kite over hills", seed=7, **SMALL))

    assert job.state == JobState.QUEUED
    assert job.message == f"{WARMING_UP}; expect about 4 min (the median of this deployment's last 5 cold starts)."


def test_one_recorded_cold_start_is_named_as_one(open_services, cloud):
    _history(cloud, [75])
    ws = open_services()

    job = ws.jobs.submit(GenerationRequest("a lighthouse", seed=1, **SMALL))

    assert job.message == f"{WARMING_UP}; expect about 75 s (this deployment's one recorded cold start took that long)."


def test_before_any_recorded_cold_start_the_line_says_the_wait_is_not_known(open_services, cloud):
    ws = open_services()

    job = ws.jobs.submit(GenerationRequest("a lighthouse", seed=1, **SMALL))

    assert job.message == (
        f"{WARMING_UP}. This deployment has no recorded cold start yet, so how long it takes is not known."
    )
    assert "several minutes" not in job.message


def test_a_tool_job_on_a_cold_companion_says_that_endpoints_own_cold_starts(open_services, cloud, tmp_path):
    """An upscaler starts on its own instance with its own model: its wait is its cold starts', not the main one's."""
    from test_operations import library_source

    _history(cloud, [900, 840, 960])  # the main endpoint: 15 min
    upscaler = cloud.deployment.companions["upscale"]
    spans = [Span(_at(1 + n, 12), 10, cold_start=seconds) for n, seconds in enumerate([150, 90, 120])]
    replay(cloud.client("cloudwatch"), cloud.cloud.scaling, region=cloud.region, endpoint=upscaler, spans=spans)
    ws = open_services()

    upscale = ws.jobs.upscale(library_source(ws, tmp_path), prompt="crisp")
    inpaint = ws.jobs.extend(library_source(ws, tmp_path), right=16, top=16, prompt="more sky")

    assert upscale.state == JobState.QUEUED, upscale.message
    assert upscale.message == (
        f"{WARMING_UP} (Upscale ×4); expect about 2 min (the median of the upscaler endpoint's last 3 cold starts)."
    )
    assert inpaint.message == (
        f"{WARMING_UP} (Inpainting). The inpainting endpoint has no recorded cold start yet, "
        "so how long it takes is not known."
    )

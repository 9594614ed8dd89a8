"""A request the endpoint's GPU cannot make is refused before anything leaves the machine.

The local cloud's deployment runs on an ml.g4dn.2xlarge (one 16 GiB T4), as its endpoint config says.
"""

from __future__ import annotations

import dataclasses

import pytest

from app.services.cloud.aws import Connection
from app.services.cloud.credentials import CredentialSource
from app.services.cloud.targets import Target, load_target, remember_target
from app.services.errors import UserError
from app.services.models import JobState
from app.services.session import Session
from contract import GUIDANCE_APP_NAME

TOO_LARGE = {"prompt": "a cathedral, every stone", "width": 2048, "height": 2048, "num_images_per_prompt": 8}
REFUSED = (
    "ml.g4dn.2xlarge fits 2.5 MP per request: 8 images at 560×560; this request asks for 8 at 2048×2048 (33.6 MP). "
    "Ask for fewer images or a smaller size."
)


def _connection(cloud) -> Connection:
    return Connection(cloud.session(), CredentialSource(), region=cloud.region, endpoint_url=cloud.endpoint_url)


def _requests_sent(ws) -> list[str]:
    sent: list[str] = []
    for client in (ws.connection.s3, ws.connection.client("sagemaker-runtime"), ws.connection.client("sagemaker")):
        client.meta.events.register("before-send", lambda request, **_: sent.append(request.url))
    return sent


def test_our_deployments_target_knows_its_instance_type_from_the_endpoint_config(cloud):
    target = load_target(_connection(cloud), cloud.deployment.name)
    assert target.instance_type == "ml.g4dn.2xlarge"
    assert target.budget.gpu == "NVIDIA T4"
    assert Target.from_dict(target.to_dict()) == target  # saved in the settings with it


def test_a_target_whose_endpoint_cannot_be_read_has_no_budget(cloud):
    cloud.client("sagemaker").delete_endpoint(EndpointName=cloud.deployment.endpoint_name)
    target = load_target(_connection(cloud), cloud.deployment.name)
    assert (target.instance_type, target.budget) == ("", None)


def test_an_over_budget_request_is_refused_before_it_is_recorded_or_anything_is_sent(open_services):
    ws = open_services()
    sent = _requests_sent(ws)
    with pytest.raises(UserError) as refused:
        ws.jobs.submit(TOO_LARGE)
    assert str(refused.value) == REFUSED
    assert sent == [] and ws.library.jobs() == []


def test_a_batch_with_one_over_budget_request_names_it_and_records_none(open_services):
    ws = open_services()
    sent = _requests_sent(ws)
    with pytest.raises(
        UserError,
        match=r"^Request 2: ml\.g4dn\.2xlarge fits 2\.5 MP per request: 2 images at 1024×1024, "
        r"or 4 at 792×792; this request asks for 4 at 1024×1024 \(4\.2 MP\)",
    ):
        ws.jobs.submit_many(
            [
                {"prompt": "fine", "width": 64, "height": 64},
                {"prompt": "too much", "width": 1024, "height": 1024, "num_images_per_prompt": 4},
            ]
        )
    assert sent == [] and ws.library.jobs() == []


def test_a_request_at_the_budget_is_recorded(open_services):
    ws = open_services()
    job = ws.jobs.record({"prompt": "as much as fits", "width": 1024, "height": 1024, "num_images_per_prompt": 2})
    assert job.state == JobState.PENDING


def test_an_adopted_target_of_unknown_instance_type_keeps_todays_limits(open_services):
    ws = open_services()
    ws.jobs.target = dataclasses.replace(ws.target, app=GUIDANCE_APP_NAME, instance_type="")
    job = ws.jobs.record(TOO_LARGE)  # only recorded: the sandbox engine would draw 33.6 MP
    assert job.state == JobState.PENDING and job.request.num_images_per_prompt == 8


def test_a_target_saved_without_its_instance_type_gets_it_when_opened(cloud, dirs):
    older = dataclasses.replace(load_target(_connection(cloud), cloud.deployment.name), instance_type="")
    remember_target(dirs, older)  # as an app from before the budget saved it
    workspace = Session.open(dirs)
    try:
        assert workspace.target.instance_type == "ml.g4dn.2xlarge"
        with pytest.raises(UserError, match=r"^ml\.g4dn\.2xlarge fits 2\.5 MP per request"):
            workspace.jobs.submit(TOO_LARGE)
    finally:
        workspace.close()

"""Fixtures for the client services: a failing keyring and app dirs under tmp_path."""

from __future__ import annotations

from datetime import UTC

import keyring
import pytest
from keyring.backends import fail

from app.services.settings import CONFIG_DIR_ENV, DATA_DIR_ENV, AppDirs


@pytest.fixture
def failing_keyring():
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    yield
    keyring.set_keyring(previous)


@pytest.fixture
def dirs(tmp_path, monkeypatch) -> AppDirs:
    """Config and data dirs under tmp_path, also for code that reads the environment (the CLI)."""
    found = AppDirs(tmp_path / "config", tmp_path / "data").create()
    monkeypatch.setenv(CONFIG_DIR_ENV, str(found.config_dir))
    monkeypatch.setenv(DATA_DIR_ENV, str(found.data_dir))
    return found


@pytest.fixture
def aws_home(tmp_path, monkeypatch):
    """An empty AWS config home, so no real profile or key on this machine is ever read."""
    home = tmp_path / "home"
    (home / ".aws").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / ".aws" / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / ".aws" / "credentials"))
    for name in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    return home


class Killed(BaseException):
    """Stands for the app being killed at this very moment: nothing catches it."""


def kill_at(client, event: str, *, when=lambda **kwargs: True):
    """Raise Killed from a botocore event hook (once) when `when(**kwargs)` holds."""
    fired = []

    def hook(**kwargs):
        if not fired and when(**kwargs):
            fired.append(kwargs.get("request") or kwargs.get("params"))
            raise Killed(event)

    client.meta.events.register(event, hook)
    return fired


def count_requests(client, event: str = "before-send.s3"):
    """A list that grows by one operation name per HTTP request the client sends."""
    seen: list[str] = []

    def hook(request, **kwargs):
        seen.append(kwargs.get("event_name", "").rsplit(".", 1)[-1])

    client.meta.events.register(event, hook)
    return seen


@pytest.fixture
def open_services(cloud, dirs):
    """Build the services for the cloud's deployment from the data dir, as a fresh app start does."""
    from app.services.cloud.aws import Connection, client_config
    from app.services.cloud.credentials import CredentialSource
    from app.services.cloud.targets import load_target
    from app.services.library.store import Library
    from app.services.session import Session
    from app.services.settings import Settings

    opened = []

    def open_(*, config=None, endpoint_url=None, **job_options) -> Session:
        connection = Connection(
            cloud.session(),
            CredentialSource(),
            region=cloud.region,
            endpoint_url=endpoint_url or cloud.endpoint_url,
            config=config or client_config("standard", max_attempts=2, connect_timeout=2, read_timeout=20),
        )
        target = load_target(
            Connection(cloud.session(), CredentialSource(), region=cloud.region, endpoint_url=cloud.endpoint_url),
            cloud.deployment.name,
        )
        workspace = Session(dirs, Settings(), Library(dirs.data_dir))
        workspace.use(connection, target, **job_options)
        opened.append(workspace)
        return workspace

    yield open_
    for workspace in opened:
        workspace.close()


@pytest.fixture
def hooks():
    """`hooks.kill_at`, `hooks.count_requests` and `hooks.Killed` for tests that interrupt or count calls."""
    import types

    return types.SimpleNamespace(Killed=Killed, kill_at=kill_at, count_requests=count_requests)


class Results:
    """Writes what the Lambdas write (messages/, images/, manifests), so tracker tests need no endpoint."""

    def __init__(self, cloud) -> None:
        self.s3 = cloud.client("s3")
        self.bucket = cloud.deployment.bucket
        self.region = cloud.region
        self.endpoint = cloud.deployment.endpoint_name

    def queued(self, ws, prompt: str = "a lighthouse", **request):
        """A job recorded as sent (QUEUED) without touching the endpoint."""
        from app.services.models import Job, JobState
        from contract import GenerationRequest, new_inference_id

        job = Job(
            new_inference_id(),
            GenerationRequest(prompt, **request),
            ws.target.name,
            state=JobState.QUEUED,
            failure_location=f"s3://{self.bucket}/failures/{new_inference_id()}-error.out",
        )
        ws.library.add_job(job)
        return job

    def put(self, key: str, body: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)

    def message(self, job, status: str = "Completed", reason: str | None = None) -> None:
        import orjson

        from contract import build_notification

        now = self._now()
        note = build_notification(
            inference_id=job.inference_id,
            status=status,
            region=self.region,
            endpoint_name=self.endpoint,
            input_location=f"s3://{self.bucket}/requests/{job.inference_id}.json",
            received_time=now.isoformat(),
            event_time=now.isoformat(),
            output_location=f"s3://{self.bucket}/output/x.out" if status == "Completed" else None,
            failure_location=job.failure_location if status == "Failed" else None,
            failure_reason=reason,
        )
        self.raw_message(job.inference_id, orjson.dumps(note))

    def raw_message(self, inference_id: str, body: bytes) -> None:
        """messages/<id>.json and its time-ordered index entry, as save_message writes them."""
        from contract import message_index_key, message_key

        self.put(message_key(inference_id), body)
        self.put(message_index_key(self._now(), inference_id), b"{}")

    @staticmethod
    def _now():
        from datetime import datetime

        return datetime.now(UTC)

    def complete(self, job, count: int = 1, *, with_message: bool = True) -> None:
        import io

        from PIL import Image, PngImagePlugin

        from contract import Manifest, Parameters, format_parameters, image_key, manifest_key

        keys = []
        for index in range(count):
            info = PngImagePlugin.PngInfo()
            info.add_text(
                "parameters",
                format_parameters(Parameters(prompt=job.request.prompt, steps=30, seed=index, width=64, height=64)),
            )
            buf = io.BytesIO()
            Image.new("RGB", (64, 64), (index * 40, 90, 160)).save(buf, "PNG", pnginfo=info)
            self.put(image_key(job.inference_id, index), buf.getvalue())
            keys.append(image_key(job.inference_id, index))
        manifest = Manifest(
            job.inference_id, "completed", tuple(keys), job.request.to_dict(), 64, 64, "2026-11-25T15:00:06Z"
        )
        self.put(manifest_key(job.inference_id), manifest.to_json())
        if with_message:
            self.message(job)

    def fail(self, job, reason: str, error_text: str | None = None) -> None:
        from contract import S3Location

        if error_text is not None:
            where = S3Location.parse(job.failure_location)
            self.put(where.key, error_text.encode())
        self.message(job, "Failed", reason)


@pytest.fixture
def results(cloud) -> Results:
    return Results(cloud)

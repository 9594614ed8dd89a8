"""After a full session with a key pair, the secret is in no file under the app's dirs and in no log line."""

from __future__ import annotations

import io
import logging
import uuid

from app.cli import main as cli
from app.services.cloud.credentials import store_key_pair
from app.services.logs import setup_logging, stop_logging
from app.services.models import JobState
from app.services.session import Session
from app.services.settings import Settings, save_settings


def test_a_key_pair_session_leaves_no_secret_behind(cloud, dirs, memory_keyring, caplog, monkeypatch, tmp_path):
    secret, token = f"SeCrEt{uuid.uuid4().hex}", f"ToKeN{uuid.uuid4().hex}"
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    source = store_key_pair("studio", "AKIALOCALTEST0001", secret, token)
    save_settings(dirs, Settings(credentials=source.to_dict(), region=cloud.region))
    caplog.set_level(logging.DEBUG)
    handler = setup_logging(dirs.log_dir, logging.DEBUG)
    try:
        ws = Session.open(dirs, endpoint_url=cloud.endpoint_url)
        assert ws.connection.session.get_credentials().secret_key == secret
        assert ws.connection.identity().account == cloud.cloud.account_id
        job = ws.jobs.submit({"prompt": "a quiet harbour", "seed": 4, "width": 64, "height": 64})
        for _ in range(40):
            ws.tracker.step()
            if ws.library.get_job(job.inference_id).state.finished:
                break
            cloud.wait_idle()
        assert ws.library.get_job(job.inference_id).state == JobState.COMPLETED
        ws.close()
        out = io.StringIO()
        assert (
            cli(
                [
                    "--endpoint-url",
                    cloud.endpoint_url,
                    "generate",
                    "a boat",
                    "--size",
                    "64x64",
                    "--wait",
                    "--out",
                    str(tmp_path / "out"),
                ],
                stdout=out,
                stderr=io.StringIO(),
            )
            == 0
        )
        assert cli(["--endpoint-url", cloud.endpoint_url, "jobs"], stdout=out, stderr=io.StringIO()) == 0
        assert (
            cli(
                ["--endpoint-url", cloud.endpoint_url, "generate", "x", "--steps", "0"],
                stdout=out,
                stderr=io.StringIO(),
            )
            == 1
        )
    finally:
        stop_logging(handler)
    files = [p for root in (dirs.config_dir, dirs.data_dir) for p in root.rglob("*") if p.is_file()]
    assert any(p.suffix == ".png" for p in files) and any(p.name.endswith(".log") for p in files)
    for path in files:
        data = path.read_bytes()
        assert secret.encode() not in data and token.encode() not in data, path
    assert caplog.records and secret not in caplog.text

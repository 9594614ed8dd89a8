"""The session: one connection from one credential choice, settings saved under a lock, the tracker's own thread."""

from __future__ import annotations

import threading

import orjson

from app.services.library.store import Library
from app.services.models import JobState
from app.services.session import SANDBOX, Session
from app.services.settings import Settings, load_settings


def test_every_connection_gets_the_settings_retry_mode_and_the_sessions_endpoint(dirs, aws_home, tmp_path):
    settings = Settings(region="eu-west-1", retry_mode="standard")
    session = Session(dirs, settings, Library(dirs.data_dir), endpoint_url="http://127.0.0.1:9")
    try:
        connection = session.open_connection()
        assert connection.config.retries["mode"] == "standard"
        assert (connection.region, connection.endpoint_url) == ("eu-west-1", "http://127.0.0.1:9")
        other = session.open_connection(region="us-west-2", endpoint_url="http://127.0.0.1:8")
        assert other.config.retries["mode"] == "standard"
        assert (other.region, other.endpoint_url) == ("us-west-2", "http://127.0.0.1:8")
    finally:
        session.close()


def test_settings_changed_on_many_threads_are_all_saved(dirs):
    session = Session(dirs, Settings(), Library(dirs.data_dir))
    names = [f"studio-{n}" for n in range(20)]
    try:
        threads = [
            threading.Thread(
                target=session.update_settings, args=(lambda s, name=name: s.targets.append({"name": name}),)
            )
            for name in names
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        session.choose_mode(SANDBOX)
    finally:
        session.close()
    saved = load_settings(dirs)
    assert sorted(t["name"] for t in saved.targets) == sorted(names) and saved.mode == SANDBOX
    assert orjson.loads(dirs.settings_file.read_bytes())["mode"] == SANDBOX


def test_connect_starts_the_trackers_thread_which_finishes_jobs_and_close_stops_it(cloud, dirs):
    finished = threading.Event()
    session = Session(
        dirs,
        Settings(),
        Library(dirs.data_dir),
        sandbox=True,
        cloud=cloud.cloud,
        deployment=cloud.deployment.name,
        on_change=lambda job: job.state.finished and finished.set(),
    )
    try:
        info = session.connect()
        assert info.sandbox and info.endpoint_name == cloud.deployment.endpoint_name
        assert session.tracking
        job = session.jobs.submit({"prompt": "a quiet harbour", "width": 64, "height": 64})
        assert finished.wait(60), "nothing but the session's own loop polls here"
        assert session.library.get_job(job.inference_id).state == JobState.COMPLETED
    finally:
        session.close()
    assert not session.tracking and session.tracker is None and session.jobs is None

"""The session: one connection from one credential choice, settings saved under a lock, the tracker's own thread."""

from __future__ import annotations

import threading

import orjson
import pytest

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


def test_a_saved_deployment_gets_its_own_job_service_and_tracker_thread_until_close(cloud, dirs):
    from app.services.cloud.aws import Connection
    from app.services.cloud.credentials import CredentialSource
    from app.services.cloud.targets import load_target, record_target
    from app.services.errors import UserError
    from app.services.settings import save_settings

    second = cloud.cloud.provision("second")
    connection = Connection.open(CredentialSource(), region=cloud.region, endpoint_url=cloud.endpoint_url)
    settings = Settings(mode="aws")
    for name in ("second", "test"):
        record_target(settings, load_target(connection, name))
    save_settings(dirs, settings)
    finished = threading.Event()
    session = Session(
        dirs,
        load_settings(dirs),
        Library(dirs.data_dir),
        endpoint_url=cloud.endpoint_url,
        on_change=lambda job: job.target == "second" and job.state.finished and finished.set(),
    )
    try:
        session.connect()
        assert session.target.name == "test" and session.followed == []
        assert session.deployment_names() == ["second", "test"]
        assert session.deployment_jobs("test") is session.jobs
        jobs = session.deployment_jobs("second")
        assert jobs.target.bucket == second.bucket and jobs.target.instance_type  # read from its endpoint
        assert session.deployment_jobs("second") is jobs and session.followed == ["second"]
        with pytest.raises(UserError, match="'nowhere' is not saved here"):
            session.deployment_jobs("nowhere")
        assert session.jobs_for("second") is jobs  # what it made is sent again there
        assert session.jobs_for("nowhere") is session.jobs  # a removed deployment's, by the active one
        job = jobs.submit({"prompt": "a quiet harbour", "width": 64, "height": 64})
        assert finished.wait(60), "nothing but the second deployment's own tracker polls its bucket"
        assert session.library.get_job(job.inference_id).state == JobState.COMPLETED
        threads = [thread for thread in threading.enumerate() if thread.name == "tracker second"]
        assert len(threads) == 1
    finally:
        session.close()
    assert session.followed == [] and not threads[0].is_alive()

"""The job queue on the local cloud: warming up, failures in full, retry, cancel, remove, and a busy GUI."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt, QTimer

from app.services.local_cloud import SandboxEngine
from app.services.models import JobState
from app.ui.jobs.delegate import ROW_MIN, detail_text

REASON = "CUDA out of memory. Tried to allocate 2.25 GiB (GPU 0; 22.20 GiB total capacity; 19.80 GiB already allocated)"


class BrokenEngine:
    """An engine that fails the way a GPU does when a request is too large."""

    def render(self, request):
        raise RuntimeError(REASON)


class Engine:
    """Lets a test swap the local cloud's engine and make its endpoint cold."""

    def __init__(self, local, guard):
        self.local, self.guard = local, guard

    def set(self, engine):
        self.local.engine = engine

    def cold(self, window, seconds):
        """Scale the endpoint to zero; the next job waits `seconds` for an instance."""
        self.local.cold_start_seconds = seconds
        with self.guard.paused():  # test set-up, not the app
            self.local._emulator_scale_in(window.context.target.endpoint_name)


@pytest.fixture
def engine(cloud, gui_thread_guard):
    local = cloud.cloud
    saved = local.engine, local.cold_start_seconds
    yield Engine(local, gui_thread_guard)
    local.engine, local.cold_start_seconds = saved


def _generate(qtbot, window, prompt):
    rows = window.queue.model.rowCount()
    window.composer.prompt.set_text(prompt)
    window.composer.generate()
    qtbot.waitUntil(lambda: window.queue.model.rowCount() == rows + 1, timeout=10_000)
    return window.queue.model.job(0).inference_id


def _job(window, inference_id):
    return window.queue.model.job(window.queue.model.row_of(inference_id))


def test_a_failure_shows_its_full_reason_and_retry_runs_it_again(qtbot, window, engine):
    engine.set(BrokenEngine())
    failed_id = _generate(qtbot, window, "a cathedral made of ice")
    qtbot.waitUntil(lambda: _job(window, failed_id).state == JobState.FAILED, timeout=60_000)
    job = _job(window, failed_id)
    assert REASON in job.failure_reason
    assert REASON in detail_text(job)
    queue = window.queue
    index = queue.model.index(queue.model.row_of(failed_id))
    assert REASON in index.data(Qt.ItemDataRole.ToolTipRole)
    assert queue.view.visualRect(index).height() > ROW_MIN

    engine.set(SandboxEngine())
    queue.view.setCurrentIndex(index)
    queue.view.setFocus()
    qtbot.keyClick(queue.view, Qt.Key.Key_R)
    qtbot.waitUntil(lambda: queue.model.rowCount() == 2, timeout=10_000)
    retried = queue.model.job(0)
    assert retried.retry_of == failed_id
    qtbot.waitUntil(lambda: _job(window, retried.inference_id).state == JobState.COMPLETED, timeout=60_000)


def test_a_cold_endpoint_says_warming_up_with_a_busy_ring_until_done(qtbot, window, engine):
    engine.cold(window, 2.0)
    inference_id = _generate(qtbot, window, "a mountain lake at sunrise")
    qtbot.waitUntil(lambda: _job(window, inference_id).state == JobState.QUEUED, timeout=10_000)
    assert _job(window, inference_id).message.startswith("Warming up")
    assert window.queue._tick.isActive()
    qtbot.waitUntil(lambda: _job(window, inference_id).state == JobState.COMPLETED, timeout=60_000)
    assert not window.queue._tick.isActive()


def test_the_warming_up_line_says_the_wait_this_deployments_cold_starts_measured(
    qtbot, window, engine, cloud, tmp_path
):
    from datetime import UTC, datetime

    from app.services.local_cloud.replay import Span, replay

    spans = [
        Span(datetime(2026, 11, day, 10, tzinfo=UTC).timestamp(), 20, cold_start=seconds)
        for day, seconds in zip(range(1, 6), (300, 180, 240, 420, 200), strict=True)
    ]
    with engine.guard.paused():  # test set-up: a recorded history of cold starts
        endpoint = cloud.deployment.endpoint_name
        replay(cloud.client("cloudwatch"), cloud.cloud.scaling, region=cloud.region, endpoint=endpoint, spans=spans)
    engine.cold(window, 600.0)
    inference_id = _generate(qtbot, window, "a harbour in the fog")
    qtbot.waitUntil(lambda: _job(window, inference_id).state == JobState.QUEUED, timeout=10_000)

    line = "expect about 4 min (the median of this deployment's last 5 cold starts)."
    queue = window.queue
    index = queue.model.index(queue.model.row_of(inference_id))
    shown = detail_text(_job(window, inference_id))
    assert line in shown and "several minutes" not in shown
    assert queue.view.visualRect(index).height() > ROW_MIN  # the whole line is shown, wrapped
    assert queue.grab().save(str(tmp_path / "warming-up.png"))


def test_escape_cancels_the_selected_job_and_delete_removes_it(qtbot, window, engine):
    engine.cold(window, 600.0)
    inference_id = _generate(qtbot, window, "a desert caravan")
    qtbot.waitUntil(lambda: _job(window, inference_id).state == JobState.QUEUED, timeout=10_000)
    queue = window.queue
    queue.view.setCurrentIndex(queue.model.index(0))
    queue.view.setFocus()
    qtbot.keyClick(queue.view, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: _job(window, inference_id).state == JobState.CANCELLED, timeout=10_000)
    assert "cannot stop a job it has accepted" in _job(window, inference_id).message
    qtbot.keyClick(queue.view, Qt.Key.Key_Delete)
    qtbot.waitUntil(lambda: queue.model.rowCount() == 0, timeout=10_000)
    assert window.context.library.get_job(inference_id) is None


def test_the_window_keeps_running_while_100_jobs_are_submitted(qtbot, window, engine):
    engine.cold(window, 600.0)
    queue, composer = window.queue, window.composer
    rows_at_heartbeat = []
    heartbeat = QTimer()
    heartbeat.setInterval(15)
    heartbeat.timeout.connect(lambda: rows_at_heartbeat.append(queue.model.rowCount()))
    heartbeat.start()
    composer.prompt.set_text("a field of sunflowers")
    for _ in range(100):
        composer.generate()
    qtbot.waitUntil(lambda: queue.model.rowCount() == 100, timeout=60_000)
    qtbot.waitUntil(lambda: all(j.state == JobState.QUEUED for j in queue.model.jobs()), timeout=60_000)
    heartbeat.stop()
    assert any(0 < rows < 100 for rows in rows_at_heartbeat), "the GUI thread stalled for the whole submission"
    assert len({j.request.seed for j in queue.model.jobs()}) == 100


def test_a_job_from_another_computer_says_where_it_came_from(qtbot, offline_context):
    from app.services.models import Job, Origin
    from app.ui.jobs.queue import JobQueue
    from contract import GenerationRequest, new_inference_id

    job = Job(
        new_inference_id(),
        GenerationRequest(prompt="a koi pond"),
        target="team",
        state=JobState.QUEUED,
        origin=Origin.REMOTE,
    )
    offline_context.library.add_job(job)
    queue = JobQueue(offline_context)
    qtbot.addWidget(queue)
    qtbot.waitUntil(lambda: queue.model.rowCount() == 1)
    tooltip = queue.model.index(0).data(Qt.ItemDataRole.ToolTipRole)
    assert "Sent from another computer or script" in tooltip


def test_a_tool_jobs_row_names_the_tool_before_its_prompt(qtbot, offline_context):
    """An upscale is sent without a prompt: its row says what it is instead of showing nothing."""
    from app.services.library.schema import request_as_sent
    from app.services.models import Job
    from app.ui.jobs.queue import JobQueue
    from contract import GenerationRequest, new_inference_id

    unprompted = request_as_sent({"prompt": "", "width": 2048, "height": 2048})  # as the upscale tool records it
    jobs = [
        Job(new_inference_id(), unprompted, "team", family="upscale", operation="upscale"),
        Job(new_inference_id(), GenerationRequest(prompt="a lantern"), "team", family="inpaint", operation="inpaint"),
        Job(new_inference_id(), GenerationRequest(prompt="a koi pond"), "team"),
    ]
    for job in jobs:
        offline_context.library.add_job(job)
    queue = JobQueue(offline_context)
    qtbot.addWidget(queue)
    qtbot.waitUntil(lambda: queue.model.rowCount() == 3)
    titles = {queue.model.index(row).data() for row in range(3)}
    assert titles == {"Upscale ×4", "Inpaint · a lantern", "a koi pond"}


def test_a_sweep_sent_from_the_cli_shows_as_its_one_row(qtbot, offline_context):
    from app.services.library import AxisRecord, SweepRecord
    from app.services.models import Job
    from app.ui.jobs.queue import JobQueue
    from contract import GenerationRequest, new_inference_id

    queue = JobQueue(offline_context)
    qtbot.addWidget(queue)
    jobs = {
        (n, 0, 0): Job(new_inference_id(), GenerationRequest(prompt="a koi pond", seed=n), "team", JobState.QUEUED)
        for n in range(3)
    }
    sweep = SweepRecord("sweep-cli", "a koi pond", "team", [AxisRecord("seed", "Seed", ("0", "1", "2"))], "2026")
    offline_context.library.add_sweep(sweep, jobs)  # as `python -m app sweep` records it, in another process

    queue.show_jobs(list(jobs.values()))  # the tracker then reports the jobs it found

    qtbot.waitUntil(lambda: queue.model.rowCount() == 1 and queue.model.job(0).inference_id == "sweep-cli")
    assert queue.model.job(0).message == "Sweep 3: 0 of 3 done"


def test_a_job_submitted_while_the_queue_still_reads_the_library_keeps_its_row(qtbot, offline_context, monkeypatch):
    import threading

    from app.services.models import Job
    from app.ui.jobs.queue import JobQueue
    from contract import GenerationRequest, new_inference_id

    library, read, read_done = offline_context.library, threading.Event(), threading.Event()
    reads = library.jobs

    def slow_jobs(*args, **kwargs):  # the queue's first read: a large library on a slow disk
        jobs = reads(*args, **kwargs)
        read.set()
        read_done.wait(10)
        return jobs

    monkeypatch.setattr(library, "jobs", slow_jobs)
    queue = JobQueue(offline_context)
    qtbot.addWidget(queue)
    loaded, set_jobs = [], queue.model.set_jobs
    monkeypatch.setattr(queue.model, "set_jobs", lambda jobs: (set_jobs(jobs), loaded.append(len(jobs))))
    job = Job(new_inference_id(), GenerationRequest(prompt="a paper crane", seed=7), "team", JobState.QUEUED)
    assert read.wait(10)
    library.add_job(job)
    queue.show_jobs([job])  # submitted meanwhile: its change comes first
    qtbot.waitUntil(lambda: queue.model.rowCount() == 1)

    read_done.set()  # the first read ends, with what the library held before the job
    qtbot.waitUntil(lambda: loaded == [0])
    assert [row.inference_id for row in queue.model.jobs()] == [job.inference_id]


def test_lost_jobs_are_resent_with_one_click(qtbot, window, engine, tmp_path):
    from app.services.jobs.tracker import lost_message
    from app.services.models import Job
    from contract import GenerationRequest, new_inference_id

    queue, library = window.queue, window.context.library
    lost = [
        Job(
            new_inference_id(),
            GenerationRequest(prompt=f"a lighthouse, take {n}", width=64, height=64, seed=n),
            target=window.context.target.name,
            state=JobState.LOST,
            message=lost_message("the endpoint 'diffusion-desk-test' it was sent to no longer exists"),
        )
        for n in range(3)
    ]
    for job in lost:
        library.add_job(job)  # as the tracker marks them
    window.context.events.jobs_changed.emit(lost)
    qtbot.waitUntil(lambda: queue.resend_lost.isVisible(), timeout=10_000)
    assert queue.resend_lost.text() == "Resend 3 lost jobs"
    queue.grab().save(str(tmp_path / "queue-lost.png"))

    qtbot.mouseClick(queue.resend_lost, Qt.MouseButton.LeftButton)

    qtbot.waitUntil(lambda: queue.model.rowCount() == 6, timeout=10_000)
    qtbot.waitUntil(lambda: not queue.resend_lost.isVisible(), timeout=10_000)
    resent = [job for job in queue.model.jobs() if job.retry_of]
    assert sorted(job.retry_of for job in resent) == sorted(job.inference_id for job in lost)
    assert sorted(job.request.seed for job in resent) == [0, 1, 2]
    for job in resent:
        qtbot.waitUntil(lambda job=job: _job(window, job.inference_id).state == JobState.COMPLETED, timeout=60_000)


def test_the_window_says_what_it_resends_after_a_restart(qtbot, window):
    from app.services.models import Job
    from contract import GenerationRequest, new_inference_id

    said = []
    window.context.events.tracker_status.connect(lambda status: said.append(status))
    job = Job(
        new_inference_id(),
        GenerationRequest(prompt="left unsent by a crash", width=64, height=64, seed=3),
        target=window.context.target.name,
        state=JobState.UPLOADING,
    )
    window.context.library.add_job(job)  # as an app killed mid-batch left it
    window.context.session.tracker.wake()

    qtbot.waitUntil(lambda: any(s.notice for s in said), timeout=20_000)
    assert [s.message for s in said if s.notice][0] == "Resending 1 job that was never sent."

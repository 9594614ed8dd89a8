"""The composer's Deployment axis: a sweep over two saved deployments, each cell sent to and followed on its own."""

from __future__ import annotations

import threading
from urllib.parse import unquote

import botocore.endpoint
import pytest
from botocore.exceptions import EndpointConnectionError
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from app.services.models import JobState
from app.ui.jobs.sweeps import is_sweep_row

DEPLOYMENT = "model"


def _save_targets(cloud, app_dirs, names: list[str]) -> None:
    """Save `names` as AWS deployments of the local cloud, the last one active (as Settings → Connection does)."""
    from app.services.cloud.aws import Connection
    from app.services.cloud.credentials import CredentialSource
    from app.services.cloud.targets import load_target, record_target
    from app.services.settings import load_settings, save_settings

    connection = Connection.open(CredentialSource(), region=cloud.region, endpoint_url=cloud.endpoint_url)
    settings = load_settings(app_dirs)
    for name in names:
        record_target(settings, load_target(connection, name))
    settings.mode = "aws"
    save_settings(app_dirs, settings)


class Invocations:
    """Every InvokeEndpointAsync the app makes: (endpoint, bucket of its input); a deployment's uploads can be
    refused as if the network were down (`block`)."""

    def __init__(self, monkeypatch) -> None:
        self.calls: list[tuple[str, str]] = []
        self.blocked: set[str] = set()  # buckets whose request uploads fail
        self._lock = threading.Lock()
        original = botocore.endpoint.Endpoint._send

        def send(endpoint, request):
            url = unquote(request.url)
            if "/async-invocations" in url:
                name = url.split("/endpoints/", 1)[1].split("/", 1)[0]
                location = unquote(request.headers.get("X-Amzn-SageMaker-InputLocation", b"").decode())
                with self._lock:
                    self.calls.append((name, location.removeprefix("s3://").split("/", 1)[0]))
            if request.method == "PUT" and "/requests/" in url and any(bucket in url for bucket in self.blocked):
                raise EndpointConnectionError(endpoint_url=request.url)
            return original(endpoint, request)

        monkeypatch.setattr(botocore.endpoint.Endpoint, "_send", send)

    def to(self, endpoint: str) -> list[str]:
        with self._lock:
            return [bucket for name, bucket in self.calls if name == endpoint]


@pytest.fixture
def invocations(monkeypatch, gui_thread_guard):
    return Invocations(monkeypatch)  # over the guard's own hook: a request on the GUI thread still fails


@pytest.fixture
def two_deployments(cloud, app_dirs, gui_thread_guard):
    """ "test" (active) and "second" in the local cloud, both saved; "second"'s deployment."""
    second = cloud.cloud.provision("second")
    _save_targets(cloud, app_dirs, ["second", "test"])
    return second


def _open_window(qtbot, cloud, app_dirs):
    from app.ui.shell import style
    from app.ui.shell.context import AppContext
    from app.ui.shell.window import MainWindow

    style.apply(QApplication.instance())
    context = AppContext.open(app_dirs, endpoint_url=cloud.endpoint_url)
    win = MainWindow(context)
    qtbot.addWidget(win)
    win.resize(1280, 800)
    win.show()
    win.start()
    qtbot.waitUntil(lambda: win.queue.tracking, timeout=30_000)
    return win


def _close(win) -> None:
    from app.ui.shell.tasks import manager

    context = win.context
    win.close()
    context.events.blockSignals(True)  # what its trackers say from now on is for no window
    manager().wait(10_000)
    context.close()


def _kinds(composer) -> list[str]:
    box, _edit = composer.explore.axes[0]
    return [box.itemData(i) for i in range(box.count())]


def _sweep_over_deployments(qtbot, composer) -> None:
    explore = composer.explore
    composer.prompt.set_text("a paper boat on a pond")
    composer.size_field.set_size(64, 64)
    composer.steps.setValue(10)
    qtbot.waitUntil(lambda: DEPLOYMENT in _kinds(composer), timeout=10_000)
    box, edit = explore.axes[0]
    box.setCurrentIndex(box.findData(DEPLOYMENT))
    assert edit.text() == "second, test"  # every deployment of the family, to trim
    edit.setText("test, second")
    box, edit = explore.axes[1]
    box.setCurrentIndex(box.findData("seed"))
    edit.setText("1,2")
    qtbot.waitUntil(lambda: explore.hint.text() == "Sweep: 2 × 2 = 4 images", timeout=10_000)


def _sheet_of(qtbot, window, sweep_id: str):
    queue = window.queue
    row = next(r for r in range(queue.model.rowCount()) if queue.model.job(r).inference_id == sweep_id)
    queue.view.setCurrentIndex(queue.model.index(row))
    queue.open_action.trigger()
    return window.sweep_sheets.windows[sweep_id]


def test_a_deployment_axis_sends_each_cell_to_its_own_deployment_and_the_sheet_fills(
    qtbot, cloud, app_dirs, two_deployments, invocations, monkeypatch
):
    window = _open_window(qtbot, cloud, app_dirs)
    try:
        composer, queue = window.composer, window.queue
        _sweep_over_deployments(qtbot, composer)
        composer.explore.grab().save("/tmp/t17_deployment_axis.png")
        asked = []
        monkeypatch.setattr("app.ui.compose.explore.CONFIRM_ABOVE", 3)
        monkeypatch.setattr(composer.explore, "confirm", lambda prepared: asked.append(prepared.text()) or True)
        qtbot.mouseClick(composer.generate_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: len(asked) == 1, timeout=15_000)
        assert asked[0].startswith("On test: 2 images, about") and ". On second: 2 images, about" in asked[0]

        qtbot.waitUntil(lambda: queue.model.rowCount() == 1, timeout=15_000)
        row = queue.model.job(0)
        assert is_sweep_row(row)
        qtbot.waitUntil(lambda: queue.model.job(0).state == JobState.COMPLETED, timeout=90_000)
        assert queue.model.job(0).message == "Sweep 2 × 2: 4 of 4 done"

        main, other = cloud.deployment, two_deployments
        assert invocations.to(main.endpoint_name) == [main.bucket] * 2
        assert invocations.to(other.endpoint_name) == [other.bucket] * 2
        jobs = window.context.library.jobs()
        assert sorted((job.target, job.request.seed) for job in jobs) == [
            ("second", 1),
            ("second", 2),
            ("test", 1),
            ("test", 2),
        ]

        sheet = _sheet_of(qtbot, window, row.inference_id)
        qtbot.waitUntil(
            lambda: sheet.canvas.rendered is not None and sheet.canvas.rendered.sheet.done == 4, timeout=15_000
        )
        rendered = sheet.canvas.rendered.sheet
        assert [(axis.title, axis.labels) for axis in rendered.sweep.axes] == [
            ("Deployment", ("test", "second")),
            ("Seed", ("1", "2")),
        ]
        assert rendered.cells[(1, 0, 0)].job.target == "second" and rendered.cells[(0, 1, 0)].job.target == "test"
        sheet.grab().save("/tmp/t17_deployment_sheet.png")

        old = rendered.cells[(1, 1, 0)].job.inference_id  # "second", seed 2: run again on "second"
        sheet.rerun(rendered.cells[(1, 1, 0)])
        qtbot.waitUntil(lambda: len(invocations.to(other.endpoint_name)) == 3, timeout=15_000)
        assert invocations.to(other.endpoint_name)[-1] == other.bucket
        qtbot.waitUntil(
            lambda: (
                (again := sheet.canvas.rendered.sheet.cells[(1, 1, 0)]).job.inference_id != old
                and again.status == "done"
            ),
            timeout=60_000,
        )
        assert sheet.canvas.rendered.sheet.cells[(1, 1, 0)].job.target == "second"
        assert len(invocations.to(main.endpoint_name)) == 2
    finally:
        _close(window)


def test_a_job_retried_from_the_queue_goes_to_the_deployment_that_made_it(
    qtbot, cloud, app_dirs, two_deployments, invocations, gui_thread_guard
):
    window = _open_window(qtbot, cloud, app_dirs)
    try:
        session, queue, other = window.context.session, window.queue, two_deployments
        with gui_thread_guard.paused():  # made there earlier (a sweep's cell, or the CLI)
            made = session.deployment_jobs("second").submit({"prompt": "a kite", "width": 64, "height": 64})
        window.context.events.jobs_changed.emit([made])
        qtbot.waitUntil(lambda: queue.model.row_of(made.inference_id) >= 0, timeout=10_000)
        qtbot.waitUntil(lambda: queue.model.job(queue.model.row_of(made.inference_id)).state.finished, timeout=60_000)
        assert invocations.to(other.endpoint_name) == [other.bucket]

        queue.select_job(made.inference_id)
        queue.retry_action.trigger()
        qtbot.waitUntil(lambda: len(invocations.to(other.endpoint_name)) == 2, timeout=15_000)
        assert invocations.to(cloud.deployment.endpoint_name) == []  # not the active deployment
        again = next(job for job in window.context.library.jobs() if job.inference_id != made.inference_id)
        assert again.target == "second" and again.request.prompt == "a kite"
    finally:
        _close(window)


def test_the_deployment_axis_is_offered_only_with_two_deployments_of_the_family(
    qtbot, cloud, app_dirs, gui_thread_guard
):
    from app.services.settings import load_settings

    with gui_thread_guard.paused():
        _save_targets(cloud, app_dirs, ["test"])
    window = _open_window(qtbot, cloud, app_dirs)
    try:
        composer = window.composer
        qtbot.waitUntil(lambda: composer.explore.deployments == [] and len(_kinds(composer)) > 1, timeout=10_000)
        assert DEPLOYMENT not in _kinds(composer) and "seed" in _kinds(composer)
        assert window.context.session.followed == []

        with gui_thread_guard.paused():  # a second one is deployed and saved; the window connects again
            cloud.cloud.provision("second")
            _save_targets(cloud, app_dirs, ["second", "test"])
        window.context.session.settings = load_settings(app_dirs)
        window.connect_target()
        qtbot.waitUntil(lambda: DEPLOYMENT in _kinds(composer), timeout=15_000)
        assert composer.explore.deployments == ["second", "test"]
    finally:
        _close(window)


def test_the_deployment_axis_is_not_offered_in_the_sandbox(qtbot, window):
    qtbot.waitUntil(lambda: window.context.target is not None, timeout=10_000)
    assert DEPLOYMENT not in _kinds(window.composer)


def test_a_restarted_window_sends_and_follows_the_other_deployments_unsent_cells(
    qtbot, cloud, app_dirs, two_deployments, invocations, gui_thread_guard
):
    main, other = cloud.deployment, two_deployments
    invocations.blocked.add(other.bucket)  # "second"'s cells are recorded, never sent: the app dies before
    first = _open_window(qtbot, cloud, app_dirs)
    try:
        composer, library = first.composer, first.context.library
        _sweep_over_deployments(qtbot, composer)
        qtbot.mouseClick(composer.generate_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: len(library.jobs()) == 4, timeout=15_000)
        qtbot.waitUntil(
            lambda: (
                sorted(job.state for job in library.jobs() if job.target == "test") != [JobState.PENDING] * 2
                and all(
                    job.state == JobState.UPLOADING and job.message for job in library.jobs() if job.target == "second"
                )
            ),
            timeout=30_000,
        )
        assert invocations.to(other.endpoint_name) == []
    finally:
        _close(first)

    invocations.blocked.clear()
    again = _open_window(qtbot, cloud, app_dirs)
    try:
        library = again.context.library
        (sweep,) = library.sweeps()
        qtbot.waitUntil(lambda: all(job.state.finished for job in library.jobs()), timeout=60_000)
        assert again.context.session.followed == ["second"]
        assert [job.state for job in library.jobs()] == [JobState.COMPLETED] * 4
        assert invocations.to(other.endpoint_name) == [other.bucket] * 2  # sent once each, by the new window
        assert invocations.to(main.endpoint_name) == [main.bucket] * 2
        with gui_thread_guard.paused():
            outputs = {
                bucket: cloud.client("s3").list_objects_v2(Bucket=bucket, Prefix="output/").get("KeyCount", 0)
                for bucket in (main.bucket, other.bucket)
            }
        assert outputs == {main.bucket: 2, other.bucket: 2}

        sheet = _sheet_of(qtbot, again, sweep.id)
        qtbot.waitUntil(
            lambda: sheet.canvas.rendered is not None and sheet.canvas.rendered.sheet.done == 4, timeout=15_000
        )
        assert sheet.progress.text() == "4 of 4 cells done"
    finally:
        _close(again)

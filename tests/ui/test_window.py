"""The main window: first-run welcome, keyboard shortcuts, remembered layout, the network guard."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from app.ui.shell.context import SANDBOX, AppContext
from app.ui.shell.tasks import manager
from app.ui.shell.window import MainWindow


def make_window(qtbot, context):
    window = MainWindow(context)
    qtbot.addWidget(window)
    window.resize(1280, 800)
    window.show()
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    return window


@pytest.fixture
def first_run_context(cloud, app_dirs, qapp):
    """Nothing configured yet; "Try the sandbox" uses the shared local cloud's deployment."""
    from app.ui.shell import style

    style.apply(qapp)
    context = AppContext.open(app_dirs, cloud=cloud.cloud, deployment=cloud.deployment.name)
    yield context
    manager().wait(10_000)
    context.close()


def test_first_run_offers_the_sandbox_in_one_click(qtbot, first_run_context, gui_thread_guard, app_dirs):
    window = make_window(qtbot, first_run_context)
    assert window.pages.currentWidget() is window.welcome
    qtbot.mouseClick(window.welcome.sandbox_button, Qt.MouseButton.LeftButton)
    assert window.pages.currentIndex() == 0
    qtbot.waitUntil(lambda: window.status.target.text() == "Sandbox — local cloud, test-pattern images", timeout=30_000)
    assert window.status.target.objectName() == "sandboxBadge"
    window.close()
    again = AppContext.open(app_dirs)
    assert again.mode == SANDBOX and not again.first_run
    again.close()


def test_first_run_connect_aws_opens_the_account_settings(qtbot, offline_context):
    window = make_window(qtbot, offline_context)
    qtbot.mouseClick(window.welcome.aws_button, Qt.MouseButton.LeftButton)
    dialog = window.settings_dialog
    assert dialog is not None and dialog.isVisible()
    assert dialog.tabs.currentIndex() == 0 and dialog.connection.aws_radio.isChecked()
    dialog.close()


def test_keyboard_shortcuts(qtbot, offline_context):
    window = make_window(qtbot, offline_context)
    window.pages.setCurrentIndex(0)
    composer = window.composer
    composer.focus_prompt()
    qtbot.keyClick(composer.prompt, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    rolled = composer.seed.value()
    assert rolled is not None
    qtbot.keyClick(composer.prompt, Qt.Key.Key_K, Qt.KeyboardModifier.ControlModifier)
    assert composer.seed.locked
    qtbot.keyClick(composer.prompt, Qt.Key.Key_H, Qt.KeyboardModifier.ControlModifier)
    assert composer.history_popup.isVisible()
    composer.history_popup.close()
    window.queue.focus_list()
    qtbot.keyClick(window.queue.view, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    assert QApplication.focusWidget() is composer.prompt
    qtbot.keyClick(composer.prompt, Qt.Key.Key_Comma, Qt.KeyboardModifier.ControlModifier)
    assert window.settings_dialog is not None and window.settings_dialog.isVisible()
    window.settings_dialog.close()
    qtbot.keyClick(composer.prompt, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert composer.generate_error.isVisible()  # empty prompt: refused at the field, nothing sent


def test_every_control_is_reachable_with_tab(qtbot, offline_context):
    window = make_window(qtbot, offline_context)
    window.pages.setCurrentIndex(0)
    window.composer.focus_prompt()
    reached = set()
    for _ in range(60):
        widget = QApplication.focusWidget()
        reached.add(widget.objectName())
        qtbot.keyClick(widget, Qt.Key.Key_Tab)
    for name in (
        "prompt",
        "negativePrompt",
        "width",
        "height",
        "stepsSlider",
        "stepsSpin",
        "guidanceSpin",
        "imagesSpin",
        "seed",
        "primary",
        "jobList",
    ):
        assert name in reached, name


def test_splitter_sizes_are_remembered(qtbot, offline_context):
    window = make_window(qtbot, offline_context)
    window.pages.setCurrentIndex(0)
    window.splitter.setSizes([420, 600, 260])
    sizes = window.splitter.sizes()
    window.close()
    again = make_window(qtbot, offline_context)
    again.pages.setCurrentIndex(0)
    qtbot.waitUntil(lambda: again.splitter.sizes() == sizes)


def test_the_guard_fails_a_request_made_on_the_gui_thread(cloud, gui_thread_guard):
    with pytest.raises(AssertionError, match="botocore request on the GUI thread"):
        cloud.client("sts").get_caller_identity()
    assert gui_thread_guard.violations == [f"POST {cloud.endpoint_url}/"]
    gui_thread_guard.violations.clear()


def test_jobs_left_in_a_previous_sandbox_are_marked_lost_with_a_way_out(qtbot, app_dirs, qapp):
    """The sandbox lives inside the app: jobs it held when the app quit cannot finish after a restart."""
    from app.services.models import Job, JobState
    from app.ui.shell.context import SANDBOX_RESTARTED
    from app.ui.shell.tasks import Task
    from contract import GenerationRequest, new_inference_id

    context = AppContext.open(app_dirs, sandbox=True)
    job = Job(new_inference_id(), GenerationRequest(prompt="left behind"), target=SANDBOX, state=JobState.QUEUED)
    context.library.add_job(job)
    changed = []
    context.events.jobs_changed.connect(changed.extend)
    try:
        Task(None, context.connect).run()
        qtbot.waitUntil(lambda: any(j.inference_id == job.inference_id for j in changed), timeout=60_000)
        lost = context.library.get_job(job.inference_id)
        assert lost.state == JobState.LOST and lost.message == SANDBOX_RESTARTED
    finally:
        manager().wait(60_000)
        context.close()


def test_status_bar_says_where_jobs_go_and_how_the_endpoint_is(qtbot):
    from app.services.cloud.targets import EndpointState
    from app.services.jobs.tracker import TrackerStatus
    from app.ui.shell.context import TargetInfo
    from app.ui.shell.status import StatusBar

    bar = StatusBar()
    qtbot.addWidget(bar)
    bar.show_target(
        TargetInfo(
            False,
            "123456789012 · eu-west-1 · diffusion-desk-main",
            account="123456789012",
            region="eu-west-1",
            endpoint_name="diffusion-desk-main",
        )
    )
    assert bar.target.text() == "123456789012 · eu-west-1 · diffusion-desk-main"
    assert bar.target.objectName() == "targetBadge"
    bar.show_endpoint_state(EndpointState("InService", 0, True))
    assert bar.endpoint.text() == "Endpoint ready · scaled to zero: the next image starts an instance (a few minutes)"
    bar.show_endpoint_state(EndpointState("Updating", 2, True))
    assert bar.endpoint.text() == "Endpoint updating · 2 instances running"
    bar.show_tracker(TrackerStatus(False, 3, "Offline: retrying in 8 s", 8.0))
    assert bar.tracking.text() == "Offline: retrying in 8 s"
    said = "Resending 2 jobs that were never sent. 1 job may have reached the endpoint: waiting for its result"
    bar.show_tracker(TrackerStatus(True, 3, said, 1.0, notice=True))
    assert bar.tracking.text() == said


def test_status_bar_separates_only_two_visible_items(qtbot):
    from app.services.cloud.targets import EndpointState
    from app.services.jobs.tracker import TrackerStatus
    from app.ui.shell.status import StatusBar

    bar = StatusBar()
    qtbot.addWidget(bar)
    bar.show_tracker(TrackerStatus(True, 1, "", 5.0))
    assert bar.tracking.text() == "1 job in flight"
    assert bar.separator.isHidden()
    bar.show_endpoint_state(EndpointState("InService", 1, True))
    assert not bar.separator.isHidden()
    bar.show_tracker(TrackerStatus(True, 0, "", 5.0))
    assert bar.tracking.isHidden() and bar.separator.isHidden()

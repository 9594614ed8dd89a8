"""Settings → Connect to an existing deployment: candidates, the check's findings, the upgrade note, adopting."""

from __future__ import annotations

import threading

import botocore.endpoint
import pytest
from guidance_stack import provision_guidance
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from app.services.settings import AppDirs, load_settings
from app.ui.settings.adopt_dialog import AdoptDialog
from app.ui.settings.dialog import SettingsDialog
from app.ui.shell.context import AWS, AppContext
from app.ui.shell.tasks import manager
from contract import GUIDANCE_APP_NAME


@pytest.fixture
def gui_thread_watch(monkeypatch):
    """Call it once the test's own set-up is done: from then on no AWS request may leave the GUI thread."""
    seen, watching = [], []
    original = botocore.endpoint.Endpoint._send

    def send(self, request):
        if watching and threading.current_thread() is threading.main_thread():
            seen.append(f"{request.method} {request.url}")
        return original(self, request)

    monkeypatch.setattr(botocore.endpoint.Endpoint, "_send", send)
    yield lambda: watching.append(True)
    assert seen == [], f"AWS requests on the GUI thread: {seen}"


@pytest.fixture
def settings_dialog(cloud, tmp_path, qtbot, qapp):
    dirs = AppDirs(tmp_path / "config", tmp_path / "data").create()
    context = AppContext.open(dirs, endpoint_url=cloud.endpoint_url)
    dialog = SettingsDialog(context)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.show_tab("account")
    dialog.connection.kind_buttons.button(2).setChecked(True)  # credentials from the environment
    dialog.connection.region.setCurrentText(cloud.region)
    yield dialog
    manager().wait(10_000)
    context.close()


def _open(qtbot, settings) -> AdoptDialog:
    qtbot.mouseClick(settings.adopt_button, Qt.MouseButton.LeftButton)
    dialog = settings.findChild(AdoptDialog)
    assert dialog is not None
    qtbot.waitUntil(lambda: dialog.candidates.count() >= 2, timeout=20_000)
    return dialog


def _choose(qtbot, dialog, name: str) -> None:
    labels = [dialog.candidates.item(n).text() for n in range(dialog.candidates.count())]
    row = next(n for n, label in enumerate(labels) if label.startswith(f"{name} ("))
    dialog.candidates.setCurrentRow(row)
    qtbot.waitUntil(lambda: dialog.result.text().startswith(("✓", "!", "✗")), timeout=20_000)


def test_a_guidance_stack_is_checked_explained_and_adopted(
    qtbot, cloud, settings_dialog, gui_thread_watch, gui_thread_guard
):
    with gui_thread_guard.paused():  # the stack is someone else's, made before the app looks
        stack = provision_guidance(cloud, "sd-repo")
    gui_thread_watch()
    dialog = _open(qtbot, settings_dialog)
    labels = {dialog.candidates.item(n).text() for n in range(dialog.candidates.count())}
    assert labels == {"test (Diffusion Desk)", "sd-repo (made with the AWS guidance)"}
    _choose(qtbot, dialog, "sd-repo")
    assert f"✓ Results: written to s3://{stack.bucket}/output/" in dialog.result.text()
    assert "✓ Endpoint: " in dialog.result.text() and "is asynchronous" in dialog.result.text()
    assert dialog.use_button.isEnabled() and dialog.upgrade_button.isEnabled()

    qtbot.mouseClick(dialog.upgrade_button, Qt.MouseButton.LeftButton)
    box = dialog.findChild(QMessageBox, "upgradePlan")
    assert "would replace" in box.text() and "cannot upgrade a stack made with the AWS guidance in place" in box.text()
    box.close()

    with qtbot.waitSignal(settings_dialog.applied, timeout=20_000):
        qtbot.mouseClick(dialog.use_button, Qt.MouseButton.LeftButton)
    saved = load_settings(settings_dialog.context.dirs)
    (target,) = saved.targets
    assert (target["app"], target["bucket"], saved.active_target) == (GUIDANCE_APP_NAME, stack.bucket, target["name"])
    assert settings_dialog.context.mode == AWS
    assert settings_dialog.connection.deployment.currentText() == target["name"]


def test_a_real_time_endpoint_is_refused_in_the_dialog(
    qtbot, cloud, settings_dialog, gui_thread_watch, gui_thread_guard
):
    with gui_thread_guard.paused():
        provision_guidance(cloud, "live", realtime=True, lambdas=False)
    gui_thread_watch()
    dialog = _open(qtbot, settings_dialog)
    _choose(qtbot, dialog, "live")
    assert dialog.result.text().startswith("✗ The endpoint 'epc-live' is a real-time endpoint")
    assert not dialog.use_button.isEnabled() and not dialog.upgrade_button.isEnabled()
    assert not settings_dialog.context.dirs.settings_file.exists()


def test_the_sandbox_asks_for_an_aws_account_first(qtbot, settings_dialog):
    settings_dialog.connection.sandbox_radio.setChecked(True)
    qtbot.mouseClick(settings_dialog.adopt_button, Qt.MouseButton.LeftButton)
    assert settings_dialog.findChild(AdoptDialog) is None
    assert "needs “My AWS account”" in settings_dialog.status.text()

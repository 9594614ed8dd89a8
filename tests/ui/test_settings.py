"""Settings: Test connection shows the account and ARN or the exact reason; Apply connects."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from app.services.cloud.credentials import KEYRING_SERVICE
from app.ui.settings.dialog import SettingsDialog
from app.ui.shell.context import AppContext
from app.ui.shell.tasks import Task, manager


@pytest.fixture
def aws_context(cloud, app_dirs, qapp):
    """AWS mode whose endpoint URL is the local cloud (as `--endpoint-url` does for the CLI)."""
    from app.ui.shell import style

    style.apply(qapp)
    context = AppContext.open(app_dirs, endpoint_url=cloud.endpoint_url)
    yield context
    manager().wait(10_000)
    context.close()


def make_dialog(qtbot, context):
    dialog = SettingsDialog(context)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.show_tab("account")
    return dialog


def test_test_connection_shows_account_arn_and_deployments(qtbot, aws_context, gui_thread_guard):
    dialog = make_dialog(qtbot, aws_context)
    panel = dialog.connection
    assert panel.aws_radio.isChecked()
    panel.kind_buttons.button(2).setChecked(True)  # environment
    panel.region.setCurrentText("us-east-1")
    qtbot.mouseClick(panel.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.result.text().startswith(("✓", "✗")), timeout=20_000)
    assert panel.result.text() == (
        "✓ Connected to account 123456789012 as arn:aws:sts::123456789012:user/moto · 1 deployment in us-east-1."
    )
    assert panel.deployment.currentText() == "test"


def test_test_connection_names_a_missing_profile(qtbot, aws_context, gui_thread_guard):
    dialog = make_dialog(qtbot, aws_context)
    panel = dialog.connection
    panel.kind_buttons.button(0).setChecked(True)  # profile
    panel.profile.setCurrentText("nope")
    qtbot.mouseClick(panel.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.result.text().startswith(("✓", "✗")), timeout=20_000)
    assert panel.result.text() == (
        "✗ There is no AWS profile named 'nope' in your AWS config files. Check the name, or create it with "
        "`aws configure`."
    )
    assert panel.result.objectName() == "fieldError"


def test_a_typed_key_pair_is_tested_unstored_and_apply_keeps_it_in_the_keyring(
    qtbot, aws_context, gui_thread_guard, memory_keyring, app_dirs
):
    dialog = make_dialog(qtbot, aws_context)
    panel = dialog.connection
    panel.kind_buttons.button(1).setChecked(True)  # access key
    panel.key_name.setText("work")
    panel.access_key.setText("AKIAEXAMPLEEXAMPLE12")
    panel.secret_key.setText("s3cr3t/s3cr3t/s3cr3t")
    panel.region.setCurrentText("us-east-1")
    qtbot.mouseClick(panel.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.result.text().startswith(("✓", "✗")), timeout=20_000)
    assert panel.result.text().startswith("✓ Connected to account 123456789012")
    assert memory_keyring.entries == {}  # Test connection checks the typed key; it stores nothing
    assert panel.secret_key.text() == "s3cr3t/s3cr3t/s3cr3t"
    assert not any("s3cr3t" in p.read_text(errors="ignore") for p in app_dirs.config_dir.rglob("*") if p.is_file())

    applied = []
    dialog.applied.connect(lambda: applied.append(True))
    qtbot.mouseClick(dialog.apply_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(applied), timeout=20_000)
    assert "s3cr3t/s3cr3t/s3cr3t" in memory_keyring.entries[(KEYRING_SERVICE, "work")]
    assert panel.secret_key.text() == ""
    settings_text = app_dirs.settings_file.read_text()
    assert "s3cr3t" not in settings_text and '"key_name": "work"' in settings_text
    assert aws_context.settings.active_target == "test"
    connected = []
    Task(None, aws_context.connect, success=connected.append).run()
    qtbot.waitUntil(lambda: bool(connected), timeout=20_000)
    assert connected[0].label == "123456789012 · us-east-1 · diffusion-desk-test-endpoint-ml-g4dn-2xlarge"


def test_apply_in_the_window_connects_and_says_so(qtbot, aws_context):
    from app.ui.shell.window import MainWindow

    window = MainWindow(aws_context)
    qtbot.addWidget(window)
    window.show()
    window.show_settings(tab="account")
    dialog = window.settings_dialog
    panel = dialog.connection
    panel.kind_buttons.button(2).setChecked(True)  # environment
    panel.region.setCurrentText("us-east-1")
    qtbot.mouseClick(panel.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.deployment.currentText() == "test", timeout=20_000)
    qtbot.mouseClick(dialog.apply_button, Qt.MouseButton.LeftButton)
    label = "123456789012 · us-east-1 · diffusion-desk-test-endpoint-ml-g4dn-2xlarge"
    qtbot.waitUntil(lambda: dialog.status.text() == f"Connected: {label}.", timeout=30_000)
    assert window.status.target.text() == label
    assert window.windowTitle() == f"Diffusion Desk — {label}"
    qtbot.waitUntil(lambda: window.queue.tracking)
    window.close()

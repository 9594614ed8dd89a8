"""Settings with a stack made with the AWS guidance: listed as such, and Apply keeps an adopted one working."""

from __future__ import annotations

import pytest
from guidance_stack import provision_guidance
from PySide6.QtCore import Qt

from app.services.cloud.adoption import adopt, find_candidates
from app.services.cloud.aws import Connection
from app.services.cloud.credentials import CredentialSource
from app.services.settings import load_settings
from app.ui.settings.dialog import SettingsDialog
from app.ui.shell.context import AppContext
from app.ui.shell.tasks import manager
from contract import GUIDANCE_APP_NAME


@pytest.fixture
def guidance(cloud, gui_thread_guard):
    with gui_thread_guard.paused():
        return provision_guidance(cloud, "sd-repo")


def _dialog(qtbot, context) -> SettingsDialog:
    dialog = SettingsDialog(context)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.show_tab("account")
    dialog.connection.kind_buttons.button(2).setChecked(True)  # credentials from the environment
    dialog.connection.region.setCurrentText("us-east-1")
    return dialog


def _apply(qtbot, dialog) -> None:
    qtbot.mouseClick(dialog.apply_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.status.text() != "Saving…", timeout=20_000)
    assert dialog.status.text() == "Saved. Connecting…"


@pytest.fixture
def context_after(cloud, app_dirs, qapp):
    opened = []

    def open_() -> AppContext:
        opened.append(AppContext.open(app_dirs, endpoint_url=cloud.endpoint_url))
        return opened[-1]

    yield open_
    manager().wait(10_000)
    for context in opened:
        context.close()


def test_apply_and_connect_keeps_an_adopted_guidance_target(
    qtbot, cloud, app_dirs, guidance, gui_thread_guard, context_after
):
    with gui_thread_guard.paused():
        connection = Connection(
            cloud.session(), CredentialSource(), region=cloud.region, endpoint_url=cloud.endpoint_url
        )
        (candidate,) = [c for c in find_candidates(connection) if c.guidance]
        adopted = adopt(connection, app_dirs, candidate).target
    dialog = _dialog(qtbot, context_after())
    assert dialog.connection.deployment.currentText() == "sd-repo (AWS guidance)"
    _apply(qtbot, dialog)
    saved = load_settings(app_dirs)
    (target,) = saved.targets
    assert saved.active_target == adopted.name == "sd-repo (AWS guidance)"
    assert (target["app"], target["deployment"], target["bucket"]) == (GUIDANCE_APP_NAME, "sd-repo", guidance.bucket)


def test_test_connection_lists_guidance_sets_and_apply_uses_one(qtbot, cloud, app_dirs, guidance, context_after):
    dialog = _dialog(qtbot, context_after())
    panel = dialog.connection
    qtbot.mouseClick(panel.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.result.text().startswith(("✓", "✗")), timeout=20_000)
    assert panel.result.text().endswith("· 2 deployments in us-east-1.")
    labels = [panel.deployment.itemText(n) for n in range(panel.deployment.count())]
    assert labels == ["test", "sd-repo (AWS guidance)"]
    panel.deployment.setCurrentText("sd-repo (AWS guidance)")
    _apply(qtbot, dialog)
    saved = load_settings(app_dirs)
    (target,) = saved.targets
    assert (saved.active_target, target["app"], target["endpoint_name"]) == (
        "sd-repo (AWS guidance)",
        GUIDANCE_APP_NAME,
        guidance.endpoint_name,
    )

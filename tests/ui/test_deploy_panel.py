"""The reserved deploy section lays out what deploying needs: options, buttons, progress, log, result."""

from __future__ import annotations

from PySide6.QtCore import Qt

from app.ui.deploy_panel import DeployPanel
from app.ui.tasks import Progress


def test_deploy_panel_shows_progress_log_failure_and_result(qtbot):
    panel = DeployPanel()
    qtbot.addWidget(panel)
    panel.show()
    assert not panel.deploy_button.isEnabled()
    assert panel.deploy_button.toolTip().startswith("One-click deploy arrives with the deployer")
    panel.set_available(True)
    requested = []
    panel.deploy_requested.connect(requested.append)
    panel.max_instances.setValue(3)
    qtbot.mouseClick(panel.deploy_button, Qt.MouseButton.LeftButton)
    assert requested == [{"model_id": "model-txt2img-stabilityai-stable-diffusion-v2-1-base",
                          "instance_type": "ml.g5.2xlarge", "max_instances": 3}]

    panel.set_busy(True)
    assert panel.progress.isVisible() and not panel.deploy_button.isEnabled()
    panel.show_progress(Progress("Pipeline stack", 0.4, "CREATE_IN_PROGRESS"))
    panel.append_log("12:00:01 diffusion-desk-pipeline CREATE_IN_PROGRESS AWS::CodePipeline::Pipeline")
    assert panel.progress.value() == 400
    assert panel.step.text() == "Pipeline stack: CREATE_IN_PROGRESS"
    assert panel.log.toPlainText().endswith("AWS::CodePipeline::Pipeline")

    panel.show_failure("The stack failed: the role already exists (CREATE_FAILED).")
    assert panel.step.objectName() == "fieldError" and panel.deploy_button.isEnabled()
    panel.set_busy(True)
    panel.show_result("Deployed: diffusion-desk-main in eu-west-1 is now the active target.")
    assert panel.result.isVisible() and panel.progress.value() == 1000

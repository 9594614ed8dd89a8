"""Settings → Deploy with a fake deployer: live progress and log, failure in words, teardown confirmation."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtWidgets import QApplication, QMessageBox

from app.services.cloud.targets import Target
from app.services.deploy.bundle import DeployOptions
from app.services.deploy.deployer import TeardownPlan
from app.services.errors import UserError
from app.services.progress import Progress
from app.ui.settings.deploy_panel import NOT_AVAILABLE, DeployPanel
from app.ui.shell import style
from app.ui.shell.tasks import manager

EMAIL = "designer@example.com"
TARGET = Target("studio", "eu-west-1", "diffusion-desk-studio-bucket", "diffusion-desk-studio", deployment="studio")
PLAN = TeardownPlan(
    "123456789012",
    "eu-west-1",
    "studio",
    stacks=("diffusion-desk-studio-endpoint", "diffusion-desk-studio-pipeline", "diffusion-desk-studio-source"),
    buckets=("diffusion-desk-studio-bucket",),
    parameters=("/diffusion-desk/studio/bucketName",),
)


class FakeDeployer:
    """Yields what a deploy yields; `hold` pauses it at 40 % until the test releases it."""

    def __init__(self, *, fail: str | None = None) -> None:
        self.fail = fail
        self.hold = threading.Event()
        self.held = threading.Event()
        self.calls: list[tuple[str, object]] = []

    def deploy(self, options: DeployOptions):
        self.calls.append(("deploy", options))
        yield Progress.at_percent("Checking your AWS account", 2, "Account 123456789012")
        yield Progress.at_percent(
            "Deploying the pipeline stack", 30, "15:02:11  ModelsC55D3500  AWS::S3::Bucket  CREATE_IN_PROGRESS"
        )
        yield Progress.at_percent("Building the model and the endpoint", 40, "Stage Build: InProgress")
        self.held.set()
        self.hold.wait(10)
        if self.fail:
            raise UserError(self.fail)
        yield Progress.at_percent("Connecting the app", 100, "Ready")
        return TARGET

    update = deploy

    def plan_teardown(self) -> TeardownPlan:
        self.calls.append(("plan", None))
        return PLAN

    def teardown(self, plan: TeardownPlan):
        self.calls.append(("teardown", plan))
        yield Progress.at_percent(
            "Deleting diffusion-desk-studio-endpoint", 50, "Emptied s3://diffusion-desk-studio-bucket"
        )
        yield Progress.at_percent("Removing the rest", 100, "Deployment 'studio' is gone from eu-west-1")


@pytest.fixture
def panel(qtbot, qapp):
    style.apply(qapp)
    widget = DeployPanel()
    qtbot.addWidget(widget)
    widget.resize(640, 560)
    widget.set_region("eu-west-1")
    widget.alert_email.setText(EMAIL)
    widget.set_available(True)
    widget.show()
    return widget


def attach(panel: DeployPanel, deployer: FakeDeployer) -> None:
    panel.attach(lambda: lambda: deployer)


def test_deploy_shows_each_step_live_and_ends_with_the_target(qtbot, panel):
    deployer = FakeDeployer()
    attach(panel, deployer)
    panel.instance_type.setCurrentText("ml.g5.2xlarge")
    panel.max_instances.setValue(3)

    panel.deploy_button.click()
    qtbot.waitUntil(lambda: panel.progress.value() == 400, timeout=5000)

    assert panel.step.text() == "Building the model and the endpoint…"
    assert panel.percent.text() == "40 %"
    log = panel.log.toPlainText()
    assert "ModelsC55D3500  AWS::S3::Bucket  CREATE_IN_PROGRESS" in log and "── Deploying the pipeline stack" in log
    assert not panel.deploy_button.isEnabled() and not panel.max_instances.isEnabled()
    with qtbot.waitSignal(panel.target_ready, timeout=5000) as ready:
        deployer.hold.set()
    assert ready.args == [TARGET]
    assert deployer.calls == [
        (
            "deploy",
            DeployOptions("model-txt2img-stabilityai-stable-diffusion-v2-1-base", "ml.g5.2xlarge", 3, 50.0, EMAIL),
        )
    ]
    assert panel.progress.value() == 1000 and panel.result.isVisible()
    assert "studio" in panel.result.text() and "diffusion-desk-studio" in panel.result.text()
    assert panel.deploy_button.isEnabled()


def test_a_failure_stays_on_screen_in_words(qtbot, panel):
    reason = (
        "CloudFormation could not finish the stack diffusion-desk-studio-pipeline (ROLLBACK_COMPLETE): "
        "ModelsC55D3500 (AWS::S3::Bucket) failed: You have reached the bucket limit"
    )
    deployer = FakeDeployer(fail=reason)
    deployer.hold.set()
    attach(panel, deployer)

    panel.update_button.click()
    qtbot.waitUntil(lambda: panel.step.objectName() == "fieldError", timeout=5000)

    assert panel.step.text() == f"Stopped: {reason}"
    assert f"✗ {reason}" in panel.log.toPlainText()
    assert panel.progress.value() == 400  # how far it got
    assert not panel.result.isVisible()
    assert panel.deploy_button.isEnabled() and panel.update_button.isEnabled()
    panel.grab().save("/tmp/deploy-failure.png")


def test_teardown_asks_with_the_list_of_what_goes(qtbot, panel):
    deployer = FakeDeployer()
    attach(panel, deployer)

    panel.teardown_button.click()
    qtbot.waitUntil(lambda: panel.confirm_box is not None and panel.confirm_box.isVisible(), timeout=5000)
    text = panel.confirm_box.text()
    assert all(name in text for name in (*PLAN.stacks, *PLAN.buckets, *PLAN.parameters))
    assert deployer.calls == [("plan", None)]
    panel.confirm_box.button(QMessageBox.StandardButton.Cancel).click()
    assert panel.step.text() == "Teardown cancelled: nothing was deleted."

    panel.teardown_button.click()
    qtbot.waitUntil(lambda: panel.confirm_box is not None and panel.confirm_box.isVisible(), timeout=5000)
    delete = next(b for b in panel.confirm_box.buttons() if b.text() == "Delete all of this")
    with qtbot.waitSignal(panel.torn_down, timeout=5000) as gone:
        delete.click()

    assert gone.args == ["studio"]
    assert deployer.calls[-1] == ("teardown", PLAN)
    assert "Emptied s3://diffusion-desk-studio-bucket" in panel.log.toPlainText()
    assert "deleted from eu-west-1" in panel.result.text()


def test_deploying_needs_an_aws_account(qtbot, offline_context):
    from app.ui.settings.dialog import SettingsDialog

    dialog = SettingsDialog(offline_context)
    qtbot.addWidget(dialog)
    dialog.connection.sandbox_radio.setChecked(True)
    assert not dialog.deploy.deploy_button.isEnabled() and dialog.deploy.step.text() == NOT_AVAILABLE
    dialog.connection.aws_radio.setChecked(True)
    dialog.connection.region.setCurrentText("eu-north-1")
    assert dialog.deploy.deploy_button.isEnabled() and dialog.deploy.region.text() == "eu-north-1"
    qtbot.waitUntil(lambda: dialog.deploy.max_instances.value() == 2, timeout=5000)  # from the shipped config.toml


def test_the_deployed_target_is_selected_in_settings(qtbot, offline_context):
    from app.ui.settings.dialog import SettingsDialog

    dialog = SettingsDialog(offline_context)
    qtbot.addWidget(dialog)
    dialog.connection.aws_radio.setChecked(True)
    deployer = FakeDeployer()
    deployer.hold.set()
    dialog.deploy.attach(lambda: lambda: deployer)
    dialog.deploy.alert_email.setText(EMAIL)
    with qtbot.waitSignal(dialog.applied, timeout=5000):
        dialog.deploy.deploy_button.click()
    assert dialog.connection.deployment.currentText() == "studio"
    assert "studio" in dialog.status.text()


def test_stop_following_frees_the_panel(qtbot, panel):
    deployer = FakeDeployer()
    attach(panel, deployer)
    panel.deploy_button.click()
    qtbot.waitUntil(lambda: deployer.held.is_set() and panel.progress.value() == 400, timeout=5000)
    assert panel.stop_button.isVisible()

    panel.stop_button.click()
    deployer.hold.set()

    assert panel.deploy_button.isEnabled() and not panel.stop_button.isVisible()
    assert panel.step.text().startswith("Stopped following")
    assert manager().wait(5000)  # the worker stops at its next event; nothing of it reaches the panel
    QApplication.processEvents()
    assert not panel.result.isVisible() and panel.progress.value() == 400


@pytest.mark.parametrize(
    ("email", "limit", "says"),
    [
        ("", 50, "Enter the e-mail address that gets the budget's alerts."),
        ("designer at example.com", 50, "“designer at example.com” is not an e-mail address"),
        ("designer@example", 50, "is not an e-mail address"),
        (EMAIL, 0, "The monthly limit must be more than 0 USD (it is 0)."),
    ],
)
def test_a_bad_guard_field_is_said_under_the_fields_and_nothing_is_deployed(qtbot, panel, email, limit, says):
    deployer = FakeDeployer()
    attach(panel, deployer)
    panel.alert_email.setText(email)
    panel.monthly_limit.setValue(limit)

    panel.deploy_button.click()
    panel.update_button.click()

    assert panel.guard_error.isVisible() and says in panel.guard_error.text()
    assert deployer.calls == [] and panel.deploy_button.isEnabled() and panel.step.text() == "Nothing is running."
    panel.alert_email.setText(EMAIL)
    panel.alert_email.textEdited.emit(EMAIL)
    assert not panel.guard_error.isVisible()


def test_the_saved_guard_fills_the_fields(qtbot, panel):
    panel.alert_email.clear()
    panel.set_options(DeployOptions("model-txt2img-stabilityai-stable-diffusion-v2", "ml.g5.xlarge", 2, 120.0, EMAIL))

    assert panel.monthly_limit.value() == 120 and panel.alert_email.text() == EMAIL
    assert panel.options().monthly_limit == 120.0 and panel.options().alert_email == EMAIL

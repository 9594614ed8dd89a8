"""Settings → Deploy: what to deploy, Deploy / Update / Tear down, progress, a live log and the result.

The model combo lists the main models JumpStart offers on the chosen instance type (read on a worker
through the deployer's `offer`, the same catalog preflight judges with; MODELS until it answers, or
when it cannot); two check boxes add the ×4 upscaler and inpainting companions, each with a combo of its
family's models the same read offers on the type (the models the contract knows, until it answers).

The panel runs a deployer (app.services.deploy.deployer) on a worker through `tasks.Task`: every event the
deployer yields moves the progress bar, sets the step line and adds one log line. `attach` gives it
a factory that is called on the GUI thread when a button is pressed (to read the connection
choices) and returns the function that builds the deployer on the worker.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFontDatabase, QTextCursor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.services.cloud import ConnectionChoice, open_choice
from app.services.deploy import DEFAULT_COMPANIONS, DeployOptions, companion_models, guard_problems
from app.services.errors import UserError
from app.ui.shell.context import AWS
from app.ui.shell.icons import icon
from app.ui.shell.tasks import Progress, Task

if TYPE_CHECKING:
    from app.ui.settings.connection_panel import ConnectionPanel

#: The offline list: what the combo holds until JumpStart's catalog answers (or when it cannot be read).
MODELS = (
    ("Stable Diffusion 2.1 base (512 px)", "model-txt2img-stabilityai-stable-diffusion-v2-1-base"),
    ("Stable Diffusion 2 (768 px)", "model-txt2img-stabilityai-stable-diffusion-v2"),
)
#: Names for the models JumpStart lists that the combo shows by name; any other shows its id.
MODEL_LABELS = {
    **{model_id: label for label, model_id in MODELS},
    "model-txt2img-stabilityai-stable-diffusion-v2-1-base-fp16": "Stable Diffusion 2.1 base, fp16 (512 px)",
    "model-txt2img-stabilityai-stable-diffusion-v2-fp16": "Stable Diffusion 2, fp16 (768 px)",
    "model-txt2img-stabilityai-stable-diffusion-v1-4": "Stable Diffusion 1.4 (512 px)",
    "model-txt2img-stabilityai-stable-diffusion-v1-4-fp16": "Stable Diffusion 1.4, fp16 (512 px)",
    "model-imagegeneration-stabilityai-stable-diffusion-xl-base-1-0": "SDXL 1.0 (1024 px)",
    "model-upscaling-stabilityai-stable-diffusion-x4-upscaler-fp16": "Stable Diffusion ×4 upscaler, fp16",
    "model-inpainting-stabilityai-stable-diffusion-2-inpainting": "Stable Diffusion 2 inpainting",
    "model-inpainting-stabilityai-stable-diffusion-2-inpainting-fp16": "Stable Diffusion 2 inpainting, fp16",
    "model-inpainting-runwayml-stable-diffusion-inpainting": "Stable Diffusion inpainting (RunwayML)",
}
#: The companion check boxes (each with its model combo): family name, label, what it adds.
COMPANIONS = (
    ("upscale", "×4 upscaler", "Upscale ×4 in the viewer"),
    ("inpaint", "Inpainting", "Inpaint and Extend canvas in the viewer"),
)
_COMPANION_NAMES = {family: label for family, label, _ in COMPANIONS}
INSTANCE_TYPES = ("ml.g5.xlarge", "ml.g5.2xlarge", "ml.g4dn.xlarge", "ml.g4dn.2xlarge", "ml.p3.2xlarge")
LOG_LINES = 5000
COST_NOTE = (
    "<b>Cost.</b> The endpoint scales to zero when idle: GPU instances are billed only while images are made. "
    "The first image after a quiet spell waits 5–10 minutes for an instance to start. "
    "Each companion (×4 upscaler, inpainting) is an extra endpoint that scales to zero on its own."
)
NOT_AVAILABLE = "Choose “My AWS account” on the Connection page to deploy; the sandbox needs no deployment."

DeployerFactory = Callable[[], Callable[[], Any]]


class DeployPanel(QWidget):
    """Deploy / Update / Tear down with the chosen options; shows progress, log, failure and the target."""

    target_ready = Signal(object)  # the Target after a deploy or update, now active
    torn_down = Signal(str)  # the deployment name

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("deployPanel")
        self._factory: DeployerFactory | None = None
        self._task: Task | None = None
        self._last_step = ""
        self.confirm_box: QMessageBox | None = None
        self._tips: dict[str, str] = {}
        self._companions_chosen = False  # the user clicked a companion box: say which; else the deployment's stay
        self._companion_models: dict[str, str] = {}  # the deployed (or saved) companions' models, by family
        self._companion_picked: set[str] = set()  # the families whose model the user chose in its combo
        self._companions_offered: dict[str, tuple[str, ...]] = {}  # the catalog's answer, by family
        self._offered_on = ""  # the instance type of that answer
        self._offer_asked = 0  # the newest catalog read; older answers are dropped
        self._marketplace: dict[str, str] = {}
        form = self._build_options()
        note = _cost_note()
        buttons = self._build_buttons()
        step_row = self._build_progress()
        self._build_layout(form, note, buttons, step_row)
        self.deploy_button.clicked.connect(lambda: self._run("deploy"))
        self.update_button.clicked.connect(lambda: self._run("update"))
        self.teardown_button.clicked.connect(self._plan_teardown)
        self.stop_button.clicked.connect(self.stop)
        self.set_available(False, NOT_AVAILABLE)

    def _build_options(self) -> QFormLayout:
        """What to deploy: the model, the instance type and how many, the region (shown, chosen elsewhere)."""
        # Long on purpose: one form, row by row, in the order the user reads it.
        self.model = QComboBox()
        self.model.setObjectName("deployModel")
        for label, model_id in MODELS:
            self.model.addItem(label, model_id)
        self.model.setToolTip("The text-to-image models JumpStart offers on the instance type")
        self.model.currentIndexChanged.connect(self._model_changed)
        self._build_companions()
        self.marketplace = QCheckBox("My AWS account is subscribed to this model's Marketplace listing")
        self.marketplace.setObjectName("deployMarketplace")
        self.marketplace.hide()
        self.instance_type = QComboBox()
        self.instance_type.setObjectName("deployInstanceType")
        self.instance_type.setEditable(True)
        self.instance_type.addItems(INSTANCE_TYPES)
        self.instance_type.setToolTip("A GPU instance type; your SageMaker quota for it is checked before deploying")
        self.max_instances = QSpinBox()
        self.max_instances.setObjectName("deployMaxInstances")
        self.max_instances.setRange(1, 20)
        self.max_instances.setValue(2)
        self.max_instances.setToolTip("The endpoint scales between zero and this many instances")
        self.monthly_limit = QDoubleSpinBox()
        self.monthly_limit.setObjectName("deployMonthlyLimit")
        self.monthly_limit.setRange(0, 100_000)
        self.monthly_limit.setDecimals(0)
        self.monthly_limit.setSingleStep(10)
        self.monthly_limit.setSuffix(" USD a month")
        self.monthly_limit.setValue(50)
        self.monthly_limit.setToolTip("An AWS Budgets budget for this deployment: e-mails at 80 % and 100 % of it")
        self.monthly_limit.setFixedWidth(170)
        self.alert_email = QLineEdit()
        self.alert_email.setObjectName("deployAlertEmail")
        self.alert_email.setPlaceholderText("you@example.com")
        self.alert_email.setToolTip(
            "Gets the budget's alerts, and an e-mail when an instance has run for hours in a row "
            "(AWS first sends it a link to confirm those)"
        )
        self.alert_email.setMinimumWidth(320)
        self.guard_error = QLabel()
        self.guard_error.setObjectName("fieldError")
        self.guard_error.setWordWrap(True)
        self.guard_error.setMinimumWidth(480)
        self.guard_error.hide()
        self.monthly_limit.valueChanged.connect(self._clear_guard_error)
        self.alert_email.textEdited.connect(self._clear_guard_error)
        self.region = QLabel("—")
        self.region.setObjectName("deployRegion")
        self.region.setToolTip("The region chosen on the Connection page")
        self.model.setMinimumWidth(320)
        self.instance_type.setMinimumWidth(170)
        self.max_instances.setFixedWidth(64)
        instances = QHBoxLayout()
        instances.setSpacing(8)
        instances.addWidget(self.instance_type)
        instances.addSpacing(8)
        instances.addWidget(QLabel("from 0 to"))
        instances.addWidget(self.max_instances)
        instances.addWidget(QLabel("instances"))
        instances.addStretch(1)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.FieldsStayAtSizeHint)
        form.setHorizontalSpacing(16)
        form.setVerticalSpacing(8)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)  # one edge with the heading
        form.addRow("Model", self.model)
        form.addRow("", self.marketplace)
        for family, box in self.companion_boxes.items():
            form.addRow(box, self.companion_models[family])
        form.addRow("Instance type", instances)
        form.addRow("Budget", self.monthly_limit)
        form.addRow("Alerts to", self.alert_email)
        form.addRow("", self.guard_error)
        form.addRow("Region", self.region)
        return form

    def _build_companions(self) -> None:
        """One check box per companion endpoint, beside the combo of its model (enabled while it is ticked)."""
        self.companion_boxes: dict[str, QCheckBox] = {}
        self.companion_models: dict[str, QComboBox] = {}
        for family, label, adds in COMPANIONS:
            box = QCheckBox(label)
            box.setObjectName(f"deployCompanion-{family}")
            box.setToolTip(f"{adds}: its own endpoint of this instance type, scaling to zero on its own")
            box.clicked.connect(self._companions_clicked)
            box.toggled.connect(self._enable_companion_models)
            combo = QComboBox()
            combo.setObjectName(f"deployCompanionModel-{family}")
            combo.setMinimumWidth(320)
            combo.activated.connect(lambda _, family=family: self._companion_model_picked(family))
            combo.currentIndexChanged.connect(lambda _, family=family: self._show_companion_model(family))
            box.setMinimumHeight(combo.sizeHint().height())  # its text on the combo's line, as the form's labels
            self.companion_boxes[family] = box
            self.companion_models[family] = combo
            self._fill_companion_models(family)
        self._enable_companion_models()

    def _companions_clicked(self) -> None:
        self._companions_chosen = True

    def _companion_model_picked(self, family: str) -> None:
        self._companions_chosen = True
        self._companion_picked.add(family)

    def _enable_companion_models(self) -> None:
        for family, box in self.companion_boxes.items():
            self.companion_models[family].setEnabled(box.isChecked() and box.isEnabled())

    def _show_companion_model(self, family: str) -> None:
        combo = self.companion_models[family]
        model_id = combo.currentData()
        name = _COMPANION_NAMES[family].lower()
        combo.setToolTip(f"The {name} model JumpStart deploys: {model_id}" if model_id else "")

    def _fill_companion_models(self, family: str, chosen: str | None = None) -> None:
        """The family's models the catalog offers on the type (the known ones until it answers).

        Shown: `chosen`, else the user's pick, else the deployed (or saved) one, else the default where it is
        offered; one not offered on the type stays in the list, saying so, for preflight to judge.
        """
        combo = self.companion_models[family]
        offered = self._companions_offered.get(family)
        where = self._offered_on if offered is not None else ""
        if offered is None:
            offered = companion_models(family)
        if chosen is None and family in self._companion_picked:
            chosen = combo.currentData()
        chosen = chosen or self._companion_models.get(family)
        if chosen is None:
            default = DEFAULT_COMPANIONS[family]
            chosen = default if default in offered or not offered else offered[0]
        combo.blockSignals(True)
        combo.clear()
        for model_id in (*offered, *(() if chosen in offered else (chosen,))):
            label = MODEL_LABELS.get(model_id, model_id)
            combo.addItem(label if model_id in offered or not where else f"{label} (not on {where})", model_id)
            combo.setItemData(combo.count() - 1, model_id, Qt.ItemDataRole.ToolTipRole)
        combo.setCurrentIndex(combo.findData(chosen))
        combo.blockSignals(False)
        self._show_companion_model(family)

    def _build_buttons(self) -> QHBoxLayout:
        self.deploy_button = QPushButton(icon("deploy"), "Deploy")
        self.deploy_button.setObjectName("primary")
        self.deploy_button.setToolTip("Create everything in your account: takes 20–40 minutes, mostly the model build")
        self.update_button = QPushButton(icon("retry"), "Update")
        self.update_button.setObjectName("deployUpdate")
        self.update_button.setToolTip("Apply changed choices to the existing deployment")
        self.teardown_button = QPushButton(icon("teardown"), "Tear down…")
        self.teardown_button.setObjectName("danger")
        self.teardown_button.setToolTip("Delete the deployment; you confirm a list of everything that goes")
        self.stop_button = QPushButton(icon("cancel"), "Stop following")
        self.stop_button.setObjectName("deployStop")
        self.stop_button.setToolTip(
            "Stop watching here; what AWS already started carries on, and Deploy or Update picks it up again"
        )
        self.stop_button.hide()
        buttons = QHBoxLayout()
        buttons.setSpacing(8)
        buttons.addWidget(self.deploy_button)
        buttons.addWidget(self.update_button)
        buttons.addWidget(self.stop_button)
        buttons.addStretch(1)
        buttons.addWidget(self.teardown_button)
        return buttons

    def _build_progress(self) -> QHBoxLayout:
        """The step line with its percentage (returned as a row), the bar, the live log and the result line."""
        self.step = QLabel("Nothing is running.")
        self.step.setObjectName("deployStep")
        self.step.setWordWrap(True)
        self.step.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.percent = QLabel()
        self.percent.setObjectName("hint")
        self.percent.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.percent.setMinimumWidth(40)
        self.progress = QProgressBar()
        self.progress.setObjectName("deployProgress")
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        step_row = QHBoxLayout()  # the percentage beside the step, so the bar spans the log's width
        step_row.setSpacing(8)
        step_row.addWidget(self.step, 1)
        step_row.addWidget(self.percent, 0, Qt.AlignmentFlag.AlignTop)
        self.log = QPlainTextEdit()
        self.log.setObjectName("deployLog")
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(LOG_LINES)
        self.log.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.log.setPlaceholderText("CloudFormation and pipeline events appear here while deploying.")
        self.log.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.log.setMinimumHeight(72)
        self.result = QLabel()
        self.result.setObjectName("connectionOk")
        self.result.setWordWrap(True)
        self.result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.result.hide()
        return step_row

    def _build_layout(self, form: QFormLayout, note: QWidget, buttons: QHBoxLayout, step_row: QHBoxLayout) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(8)
        what = QLabel("WHAT TO DEPLOY")
        what.setObjectName("sectionLabel")
        layout.addWidget(what)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addLayout(buttons)
        layout.addLayout(step_row)
        layout.addWidget(self.progress)
        layout.addWidget(self.log, 1)
        layout.addWidget(self.result)

    def attach(self, factory: DeployerFactory, *, load_options: Callable[[], DeployOptions] | None = None) -> None:
        """Wire the deployer; `load_options` (run on a worker) fills the fields from the saved config."""
        self._factory = factory
        if load_options is not None:
            Task(self, load_options, success=self.set_options, failure=lambda error: None, busy=False).run()

    def connect_settings(self, context: Any, connection: ConnectionPanel) -> None:
        """Deploy with the Connection page's credentials and region, in AWS mode only."""
        from app.services.deploy import load_options

        self.attach(deployer_factory(context, connection.choice), load_options=lambda: load_options(context.dirs))
        connection.region_changed.connect(self.set_region)
        connection.aws_toggled.connect(lambda aws: self.set_available(aws, NOT_AVAILABLE))
        self.set_region(connection.choice().region)
        self.set_available(connection.mode == AWS, NOT_AVAILABLE)
        connection.region_changed.connect(lambda _: self.refresh_models())
        connection.aws_toggled.connect(lambda aws: self.refresh_models() if aws else None)
        self.instance_type.activated.connect(lambda _: self.refresh_models())
        self.instance_type.lineEdit().editingFinished.connect(self.refresh_models)
        self.refresh_models()
        active = next((t for t in context.settings.targets if t.get("name") == context.settings.active_target), None)
        if active and not active.get("endpoint_url"):
            self.show_result(
                f"Jobs go to “{active['name']}”: endpoint {active.get('endpoint_name')} in "
                f"{active.get('region')}, bucket {active.get('bucket')}."
            )

    def options(self) -> DeployOptions:
        """The fields as DeployOptions; companions None (the deployment keeps its own) until a box is clicked."""
        return DeployOptions(
            self.model.currentData() or self.model.currentText().strip(),
            self.instance_type.currentText().strip(),
            self.max_instances.value(),
            self.monthly_limit.value(),
            self.alert_email.text().strip(),
            companions=self.chosen_companions() if self._companions_chosen else None,
            marketplace_subscribed=not self.marketplace.isHidden() and self.marketplace.isChecked(),
        )

    def chosen_companions(self) -> dict[str, str]:
        """The ticked companions, each with the model its combo shows (the deployed one unless the user changed it)."""
        return {
            family: self.companion_models[family].currentData()
            for family, box in self.companion_boxes.items()
            if box.isChecked()
        }

    def set_companions(self, companions: dict[str, str] | None) -> None:
        """Tick the boxes of the companions given (the saved or deployed ones), unless the user chose already."""
        if companions is None or self._companions_chosen:
            return
        self._companion_models = dict(companions)
        for family, box in self.companion_boxes.items():
            box.setChecked(family in companions)
            self._fill_companion_models(family, companions.get(family))

    def refresh_models(self) -> None:
        """Ask JumpStart (on a worker) which models the instance type offers; the list stays until it answers."""
        if self._factory is None or self.busy or not self.deploy_button.isEnabled():
            return
        make, instance_type = self._factory(), self.instance_type.currentText().strip()
        self._offer_asked += 1
        asked = self._offer_asked
        Task(
            self,
            lambda: make().offer(instance_type),
            success=lambda offer: self.set_offer(offer, instance_type) if asked == self._offer_asked else None,
            failure=lambda error: None,  # offline or no credentials yet: the offline list stays, preflight says why
            busy=False,
        ).run()

    def set_offer(self, offer: Any, instance_type: str = "") -> None:
        """The models preflight's catalog finds usable on `instance_type`, Marketplace ones greyed with why, and
        each companion's; the choices are kept."""
        current = self.model.currentData()
        self.model.blockSignals(True)
        self.model.clear()
        for model_id in offer.models:
            self.model.addItem(MODEL_LABELS.get(model_id, model_id), model_id)
        self._marketplace = dict(offer.marketplace)
        for model_id, why in offer.marketplace.items():
            if model_id in offer.models:
                continue
            self.model.addItem(f"{MODEL_LABELS.get(model_id, model_id)}: {why}" if why else model_id, model_id)
            item = self.model.model().item(self.model.count() - 1)
            item.setEnabled(False)
            item.setToolTip(why)
        if self.model.count() == 0:
            for label, model_id in MODELS:
                self.model.addItem(label, model_id)
        index = self.model.findData(current)
        if index < 0 or not self.model.model().item(index).isEnabled():
            index = 0
        self.model.setCurrentIndex(index)
        self.model.blockSignals(False)
        self._model_changed()
        self._companions_offered = dict(offer.companions)
        self._offered_on = instance_type or self.instance_type.currentText().strip()
        for family in self.companion_boxes:
            self._fill_companion_models(family)
        self.set_companions(offer.deployed)

    def _model_changed(self) -> None:
        """The subscription box shows for a Marketplace model only."""
        self.marketplace.setVisible(self.model.currentData() in self._marketplace)

    def check_fields(self) -> bool:
        """The budget guard's fields: each problem in words under them; True when they can be deployed."""
        problems = guard_problems(self.options())
        self.guard_error.setText("\n".join(problems.values()))
        self.guard_error.setVisible(bool(problems))
        if "alert_email" in problems:
            self.alert_email.setFocus()
        elif problems:
            self.monthly_limit.setFocus()
        return not problems

    def _clear_guard_error(self) -> None:
        self.guard_error.hide()

    def set_options(self, options: DeployOptions) -> None:
        self.set_companions(dict(options.companions) if options.companions is not None else None)
        index = self.model.findData(options.model_id)
        if index < 0:
            self.model.addItem(options.model_id, options.model_id)
            index = self.model.count() - 1
        self.model.setCurrentIndex(index)
        self.instance_type.setCurrentText(options.instance_type)
        self.max_instances.setValue(options.max_instances)
        self.monthly_limit.setValue(options.monthly_limit)
        if options.alert_email:
            self.alert_email.setText(options.alert_email)

    def set_region(self, region: str | None) -> None:
        self.region.setText(region or "—")

    def set_available(self, available: bool, reason: str = "") -> None:
        for button in (self.deploy_button, self.update_button, self.teardown_button):
            button.setEnabled(available)
            tip = self._tips.setdefault(button.objectName(), button.toolTip())
            button.setToolTip(tip if available else reason)
        if not self.busy:
            self.step.setText("Nothing is running." if available else reason)

    @property
    def busy(self) -> bool:
        return self._task is not None and not self._task.done

    def _set_busy(self, busy: bool) -> None:
        for widget in (
            self.deploy_button,
            self.update_button,
            self.teardown_button,
            self.model,
            *self.companion_boxes.values(),
            self.marketplace,
            self.instance_type,
            self.max_instances,
            self.monthly_limit,
            self.alert_email,
        ):
            widget.setEnabled(not busy)
        self._enable_companion_models()
        self.stop_button.setVisible(busy)
        if busy:
            self.result.hide()
            self._set_step_error(False)
            self.progress.setRange(0, 1000)
            self.progress.setValue(0)
            self.percent.setText("0 %")

    def _run(self, action: str) -> None:
        if self._factory is None or self.busy or not self.check_fields():
            return
        make, options = self._factory(), self.options()
        self.log.clear()
        self._last_step = ""
        self.append_log(
            f"{'Deploying' if action == 'deploy' else 'Updating'}: {options.model_id} on "
            f"{options.instance_type}, 0 to {options.max_instances} instances, in {self.region.text()}; "
            f"budget {options.monthly_limit:g} USD a month, alerts to {options.alert_email}; "
            + (
                # What the tab shows; the deployer reads the deployment's own and logs them next.
                "companions as deployed (" + (_companions_text(self.chosen_companions()) or "none") + ")"
                if options.companions is None
                else "companions: " + (_companions_text(options.companions) or "none")
            )
        )
        self._start(lambda: getattr(make(), action)(options), self._succeeded)

    def _start(self, op: Callable[[], Any], success: Callable[[Any], None]) -> None:
        self._set_busy(True)
        self._task = Task(self, op, success=success, failure=self.show_failure, progress=self.show_progress, busy=False)
        self._task.run()

    def stop(self) -> None:
        """Stop following (the worker stops at the deployer's next event); AWS carries on."""
        if self._task is None:
            return
        self._task.cancel()
        self._task = None
        self._set_busy(False)
        self.step.setText(
            "Stopped following. What AWS already started carries on: press Deploy or Update to follow it again."
        )
        self.append_log("■ Stopped following here")

    def show_progress(self, event: Progress) -> None:
        """One deployer event: step line, bar and a log line (a header when the step changes)."""
        if event.fraction is not None:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(event.fraction * 1000))
            self.percent.setText(f"{event.fraction * 100:.0f} %")
        if event.step and event.step != self._last_step:
            self._last_step = event.step
            self.append_log(f"── {event.step}")
        if event.step:
            self.step.setText(event.step + ("…" if (event.fraction or 0) < 1 else ""))
        if event.message:
            self.append_log(event.message)

    def append_log(self, line: str) -> None:
        self.log.appendPlainText(line.rstrip("\n"))
        self.log.moveCursor(QTextCursor.MoveOperation.End)
        self.log.moveCursor(QTextCursor.MoveOperation.StartOfLine)

    def show_failure(self, error: BaseException) -> None:
        """The reason in words stays on screen (step line and log); the bar shows how far it got."""
        self._set_busy(False)
        self._task = None
        text = (
            str(error)
            if isinstance(error, UserError)
            else f"Something went wrong ({error or type(error).__name__}); the details are in the log file."
        )
        self.step.setText(f"Stopped: {text}")
        self._set_step_error(True)
        self.append_log(f"✗ {text}")
        self.append_log("Nothing was rolled back by the app: press the same button again to continue from here.")

    def _succeeded(self, target: Any) -> None:
        self._task = None
        self._set_busy(False)
        self.progress.setValue(1000)
        self.percent.setText("100 %")
        self.step.setText("Deployed.")
        self.show_result(
            f"✓ Jobs now go to “{target.name}”: endpoint {target.endpoint_name} in {target.region}, "
            f"bucket {target.bucket}."
        )
        self.target_ready.emit(target)

    def show_result(self, text: str) -> None:
        self.result.setText(text)
        self.result.show()

    def _set_step_error(self, error: bool) -> None:
        self.step.setObjectName("fieldError" if error else "deployStep")
        self.step.style().unpolish(self.step)
        self.step.style().polish(self.step)

    def _plan_teardown(self) -> None:
        if self._factory is None or self.busy:
            return
        make = self._factory()
        self.step.setText("Listing what the teardown would delete…")
        self._set_busy(True)
        self.progress.setRange(0, 0)
        self._task = Task(
            self,
            lambda: (make, make().plan_teardown()),
            success=self._confirm_teardown,
            failure=self.show_failure,
            busy=False,
        )
        self._task.run()

    def _confirm_teardown(self, found: tuple[Callable[[], Any], Any]) -> None:
        make, plan = found
        self._task = None
        self._set_busy(False)
        self.progress.setRange(0, 1000)
        if plan.empty:
            self.step.setText(plan.describe())
            return
        self.step.setText("Waiting for your confirmation…")
        box = QMessageBox(
            QMessageBox.Icon.Warning,
            "Tear down the deployment?",
            plan.describe(),
            QMessageBox.StandardButton.Cancel,
            self,
        )
        box.setObjectName("teardownConfirm")
        box.setInformativeText("This cannot be undone.")
        delete = box.addButton("Delete all of this", QMessageBox.ButtonRole.DestructiveRole)
        delete.setObjectName("danger")
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.buttonClicked.connect(lambda button: self._teardown(make, plan) if button is delete else self._cancelled())
        self.confirm_box = box
        box.open()

    def _cancelled(self) -> None:
        self.confirm_box = None
        self.step.setText("Teardown cancelled: nothing was deleted.")

    def _teardown(self, make: Callable[[], Any], plan: Any) -> None:
        self.confirm_box = None
        self.log.clear()
        self._last_step = ""
        self.append_log(f"Tearing down {plan.deployment!r} in {plan.region}")
        self._start(lambda: make().teardown(plan), lambda _: self._torn_down(plan))

    def _torn_down(self, plan: Any) -> None:
        self._task = None
        self._set_busy(False)
        self.step.setText("Torn down.")
        self.show_result(
            f"✓ Deployment “{plan.deployment}” is deleted from {plan.region}. "
            "Images already in your library stay on this computer."
        )
        self.torn_down.emit(plan.deployment)


def deployer_factory(context: Any, choose: Callable[[], ConnectionChoice]) -> DeployerFactory:
    """Reads the Connection page's choice on the GUI thread; the returned builder runs on a worker."""
    from app.services.deploy import Deployer

    def factory() -> Callable[[], Any]:
        choice = choose()

        def build() -> Deployer:
            connection = open_choice(choice, context.open_connection)
            return Deployer(connection, context.dirs, update_settings=context.update_settings)

        return build

    return factory


def _companions_text(companions: dict[str, str]) -> str:
    """The chosen companions as the log's first line names them: "×4 upscaler <id>, Inpainting <id>"."""
    return ", ".join(
        f"{name} {companions[family]}" for family, name in _COMPANION_NAMES.items() if family in companions
    )


def _cost_note() -> QFrame:
    """The cost note, with an info icon, in a panel frame."""
    note = QLabel(COST_NOTE)
    note.setObjectName("hint")
    note.setWordWrap(True)
    note_frame = QFrame()
    note_frame.setObjectName("panel")
    note_row = QHBoxLayout(note_frame)
    note_row.setContentsMargins(10, 8, 10, 8)
    note_row.setSpacing(10)
    note_icon = QLabel()
    note_icon.setPixmap(icon("info").pixmap(18, 18))
    note_icon.setAlignment(Qt.AlignmentFlag.AlignTop)
    note_row.addWidget(note_icon)
    note_row.addWidget(note, 1)
    return note_frame

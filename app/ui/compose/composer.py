"""The composer: prompt, negative prompt, size, steps, guidance, images and seed, then Generate.

It shows the controls of the active target's model family and hides the rest: SDXL 1.0 has a
sampler, a style preset and its own nine sizes, and makes one image per request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import QAction, QColor, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.services.fields import field_message
from app.services.library import read_parameters
from app.ui.compose.explore import ExplorePanel
from app.ui.compose.number_field import NumberField
from app.ui.compose.prompt_edit import HistoryPopup, PromptEdit
from app.ui.compose.seed_field import SeedField
from app.ui.compose.size_field import SizeField
from app.ui.shell.context import AppContext
from app.ui.shell.icons import icon
from app.ui.shell.tasks import Lane, Task
from contract import LIMITS, Budget, BudgetError, GenerationRequest, RequestError
from contract.families import SAMPLERS, SDXL, STYLE_PRESETS, TEXT_TO_IMAGE, Family
from contract.families.sdxl import SDXL_LIMITS

_DEFAULTS = GenerationRequest(prompt="x")
GENERATE_TIP = "Generate (Ctrl+Enter)"
FIELDS = (
    "prompt",
    "negative_prompt",
    "width",
    "height",
    "num_inference_steps",
    "guidance_scale",
    "num_images_per_prompt",
    "seed",
)
#: The composer control (`Family.controls`) each field's row belongs to; the prompt is always shown.
CONTROL_OF = {
    "negative_prompt": "negative_prompt",
    "width": "size",
    "num_inference_steps": "steps",
    "guidance_scale": "guidance",
    "num_images_per_prompt": "images",
    "seed": "seed",
    "sampler": "sampler",
    "style_preset": "style_preset",
}


def png_paths(mime: Any) -> list[str]:
    if not mime.hasUrls():
        return []
    return [
        url.toLocalFile() for url in mime.urls() if url.isLocalFile() and url.toLocalFile().lower().endswith(".png")
    ]


class Composer(QFrame):
    """Edits one GenerationRequest; validates at the field before anything is sent."""

    message = Signal(str)
    submitted = Signal(object)  # the Job just sent

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.setObjectName("panel")
        self.setAccessibleName("Composer")
        self.setAcceptDrops(True)
        self.setMinimumWidth(300)
        self.errors: dict[str, QLabel] = {}
        # Where a budget problem is said: the size or images field last edited.
        self._budget_at = "num_images_per_prompt"
        self._make_fields()
        self._make_buttons()
        self._make_actions()
        self._layout()
        self._connect()
        self.load_history()

    def _make_fields(self) -> None:
        self.prompt = PromptEdit("Describe the image: subject, style, light, lens…")
        self.prompt.setObjectName("prompt")
        self.prompt.setAccessibleName("Prompt")
        self.prompt.setMinimumHeight(120)
        self.negative = PromptEdit("What to keep out: blurry, watermark, extra fingers…")
        self.negative.setObjectName("negativePrompt")
        self.negative.setAccessibleName("Negative prompt")
        self.negative.setFixedHeight(64)
        for edit in (self.prompt, self.negative):
            edit.setAcceptDrops(False)
        self.size_field = SizeField()
        self.steps = NumberField(
            LIMITS["num_inference_steps"].low,
            LIMITS["num_inference_steps"].high,
            _DEFAULTS.num_inference_steps,
            name="steps",
        )
        self.guidance = NumberField(
            LIMITS["guidance_scale"].low,
            LIMITS["guidance_scale"].high,
            _DEFAULTS.guidance_scale,
            step=0.5,
            decimals=1,
            name="guidance",
        )
        self.images = NumberField(
            LIMITS["num_images_per_prompt"].low,
            LIMITS["num_images_per_prompt"].high,
            _DEFAULTS.num_images_per_prompt,
            name="images",
        )
        self.seed = SeedField()
        self.sdxl_size = QComboBox()
        self.sdxl_size.setObjectName("sdxlSize")
        self.sdxl_size.setAccessibleName("Size")
        for width, height in SDXL.sizes or ():
            self.sdxl_size.addItem(f"{width} × {height}", (width, height))
        self.sampler = QComboBox()
        self.sampler.setObjectName("sampler")
        self.sampler.setAccessibleName("Sampler")
        self.sampler.addItem("The model's default", None)
        for sampler, name in SAMPLERS.items():
            self.sampler.addItem(name, sampler)
        self.style_preset = QComboBox()
        self.style_preset.setObjectName("stylePreset")
        self.style_preset.setAccessibleName("Style preset")
        self.style_preset.addItem("None", None)
        for preset in STYLE_PRESETS:
            self.style_preset.addItem(preset.replace("-", " ").capitalize(), preset)
        self.explore = ExplorePanel(self.context)
        self.family: Family = TEXT_TO_IMAGE
        self._rows: dict[str, tuple[QLabel, QWidget]] = {}

    def _make_buttons(self) -> None:
        self.history_button = QToolButton()
        self.history_button.setObjectName("historyButton")
        self.history_button.setIcon(icon("history"))
        self.history_button.setToolTip("Past prompts (Ctrl+H); Up/Down in the prompt box too")
        self.history_button.setAccessibleName("Prompt history")
        self.history_popup = HistoryPopup(self)
        self.history_popup.picked.connect(self._use_history)
        self.history_popup.searched.connect(self._search_history)

        self.generate_button = QPushButton(icon("generate", QColor("#ffffff")), "Generate")
        self.generate_button.setObjectName("primary")
        self.generate_button.setAccessibleName("Generate")
        self.generate_button.setToolTip(GENERATE_TIP)
        self.generate_button.setCursor(Qt.CursorShape.PointingHandCursor)

    def _make_actions(self) -> None:
        self.generate_action = self._action(
            "Generate", "generate", self.generate, [QKeySequence("Ctrl+Return"), QKeySequence("Ctrl+Enter")]
        )
        self.random_seed_action = self._action("Random seed", "dice", self.seed.roll, [QKeySequence("Ctrl+R")])
        self.lock_seed_action = self._action("Lock seed", "lock", self.seed.lock.toggle, [QKeySequence("Ctrl+K")])
        self.history_action = self._action("Prompt history…", "history", self.show_history, [QKeySequence("Ctrl+H")])

    def _action(self, text: str, icon_name: str, slot: Any, keys: list[QKeySequence]) -> QAction:
        action = QAction(icon(icon_name), text, self)
        action.setShortcuts(keys)
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.triggered.connect(lambda _=False: slot())
        self.addAction(action)
        return action

    def _layout(self) -> None:
        scroll = self._build_form()
        self.generate_error = QLabel()
        self.generate_error.setObjectName("fieldError")
        self.generate_error.setWordWrap(True)
        self.generate_error.hide()
        hint = QLabel("Ctrl+Enter · drop a PNG here to reuse its settings")
        hint.setObjectName("hint")
        hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 12, 8, 14)
        layout.setSpacing(8)
        layout.addWidget(scroll, 1)
        layout.addWidget(self.generate_error)
        bottom = QVBoxLayout()
        bottom.setContentsMargins(0, 0, 6, 0)
        bottom.setSpacing(6)
        bottom.addWidget(self.generate_button)
        bottom.addWidget(hint)
        layout.addLayout(bottom)

    def _build_form(self) -> QScrollArea:
        """The title row and every field with its caption and error line, in a scroll area."""
        form = QWidget()
        form.setObjectName("composerForm")
        rows = QVBoxLayout(form)
        rows.setContentsMargins(0, 0, 6, 0)
        rows.setSpacing(6)
        title_row = QHBoxLayout()
        title = QLabel("Compose")
        title.setObjectName("panelTitle")
        title_row.addWidget(title)
        title_row.addStretch(1)
        title_row.addWidget(self.history_button)
        rows.addLayout(title_row)
        sizes = QWidget()
        size_rows = QVBoxLayout(sizes)
        size_rows.setContentsMargins(0, 0, 0, 0)
        size_rows.addWidget(self.size_field)
        size_rows.addWidget(self.sdxl_size)
        self.sdxl_size.hide()
        for key, label, widget in (
            ("prompt", "PROMPT", self.prompt),
            ("negative_prompt", "NEGATIVE PROMPT", self.negative),
            ("width", "SIZE", sizes),
            ("num_inference_steps", "STEPS", self.steps),
            ("guidance_scale", "GUIDANCE SCALE", self.guidance),
            ("num_images_per_prompt", "IMAGES", self.images),
            ("sampler", "SAMPLER", self.sampler),
            ("style_preset", "STYLE PRESET", self.style_preset),
            ("seed", "SEED", self.seed),
        ):
            caption = QLabel(label)
            caption.setObjectName("sectionLabel")
            caption.setBuddy(widget.spin if isinstance(widget, NumberField) else widget)
            rows.addWidget(caption)
            rows.addWidget(widget)
            if key in CONTROL_OF:
                self._rows[CONTROL_OF[key]] = (caption, widget)
            error = QLabel()
            error.setObjectName("fieldError")
            error.setWordWrap(True)
            error.hide()
            self.errors[key] = error
            rows.addWidget(error)
        self.errors["height"] = self.errors["width"]
        for control in ("sampler", "style_preset"):
            for part in self._rows[control]:
                part.hide()
        rows.addWidget(self.explore)
        rows.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(form)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.viewport().setAutoFillBackground(False)
        form.setAutoFillBackground(False)
        return scroll

    def _connect(self) -> None:
        self.generate_button.clicked.connect(self.generate)
        self.history_button.clicked.connect(self.show_history)
        self.prompt.textChanged.connect(lambda: self._check_live("prompt"))
        self.prompt.textChanged.connect(lambda: self.explore.changed(self.values()))
        self.images.valueChanged.connect(lambda _v: self.explore.changed(self.values()))
        self.explore.sent.connect(self._sent_many)
        self.explore.refused.connect(self._explore_refused)
        self.negative.textChanged.connect(lambda: self._check_live("negative_prompt"))
        self.size_field.changed.connect(lambda: self._check_live("width"))
        self.size_field.snapped.connect(self.message)
        for field, widget in (
            ("num_inference_steps", self.steps),
            ("guidance_scale", self.guidance),
            ("num_images_per_prompt", self.images),
        ):
            widget.valueChanged.connect(lambda _v, f=field: self._check_live(f))
        self.seed.edit.textChanged.connect(self._seed_typed)
        self.sdxl_size.currentIndexChanged.connect(lambda _i: self._check_live("width"))
        self.sampler.currentIndexChanged.connect(lambda _i: self._check_live("sampler"))
        self.style_preset.currentIndexChanged.connect(lambda _i: self._check_live("style_preset"))
        self.context.events.restore_requested.connect(self.restore)
        self.context.events.target_changed.connect(self._target_changed)

    def _target_changed(self, _info: Any = None) -> None:
        target = self.context.target
        self.set_family(target.model_family if target is not None else TEXT_TO_IMAGE)
        self._check_live("")

    def _seed_typed(self, _text: str) -> None:
        """SDXL refuses seed 0 (its container's "random"): said as it is typed. Text to image checks on Generate."""
        if self.family is not TEXT_TO_IMAGE:
            self._check_live("seed")

    def set_family(self, family: Family) -> None:
        """Show the controls of `family`'s model and hide the rest; its own sizes and step range."""
        if family is SDXL and self.family is not SDXL:
            width, height = self.size_field.size()
            self.sdxl_size.setCurrentIndex(_nearest_size(width, height))
        self.family = family
        for control, parts in self._rows.items():
            for part in parts:
                part.setVisible(control in family.controls)
        sized = family.sizes is not None
        self.size_field.setVisible(not sized)
        self.sdxl_size.setVisible(sized)
        steps = SDXL_LIMITS["steps"] if family is SDXL else LIMITS["num_inference_steps"]
        self.steps.set_range(steps.low, steps.high)

    def family_fields(self) -> dict[str, Any]:
        """The family's own fields the composer sets (SDXL: sampler and style preset, when chosen)."""
        fields = {"sampler": self.sampler.currentData(), "style_preset": self.style_preset.currentData()}
        return {key: value for key, value in fields.items() if value is not None and key in self.family.controls}

    def values(self, seed: int | None = None) -> dict[str, Any]:
        """The fields as the request takes them; `seed` overrides the seed field."""
        width, height = self.sdxl_size.currentData() if self.family.sizes else self.size_field.size()
        images = int(self.images.value()) if "images" in self.family.controls else 1
        return {
            "prompt": self.prompt.text().strip(),
            "negative_prompt": self.negative.text().strip(),
            "width": width,
            "height": height,
            "num_inference_steps": int(self.steps.value()),
            "guidance_scale": float(self.guidance.value()),
            "num_images_per_prompt": images,
            "seed": self.seed.value() if seed is None else seed,
        }

    def budget(self) -> Budget | None:
        """What one request may ask of the target's GPU; None when not connected or its instance type is unknown."""
        return getattr(self.context.target, "budget", None)

    def _checked(self, values: dict[str, Any]) -> GenerationRequest:
        """The request, or RequestError for a field, or BudgetError when the target's GPU cannot make it.

        Another family than text to image checks its own request made from this one (its limits, its budget).
        """
        request = GenerationRequest(**values)
        if self.family is TEXT_TO_IMAGE:
            if (budget := self.budget()) is not None:
                budget.check(request)
        else:
            self.family.check_budget(self.family.from_job(request, **self.family_fields()), self.budget())
        return request

    def _check_live(self, field: str) -> None:
        """Show a problem as soon as it is typed, except an empty prompt (said on Generate)."""
        self.generate_error.hide()
        values = self.values()
        if not values["prompt"]:
            values["prompt"] = "x"
        try:
            self._checked(values)
        except (RequestError, BudgetError) as error:
            self._show_errors(error, at=field)
            return
        self._show_errors(None)

    def _show_errors(self, error: RequestError | BudgetError | None, at: str = "") -> None:
        """The message under its field (a budget one under the size or images field last edited), the fields outlined.

        Generate stays disabled while the request is over the GPU budget: no edit but those fields can fix it.
        """
        over = isinstance(error, BudgetError)
        if at in BudgetError.fields:
            self._budget_at = at
        if over:
            key, invalid = self._budget_at, set(BudgetError.fields)
        else:
            key, invalid = (error.field, {error.field}) if error is not None else (None, set())
        shown = self.errors.get(key) if key else None
        for label in set(self.errors.values()):
            label.setVisible(label is shown)
        if shown is not None:
            shown.setText(field_message(error, named=False))
        for name, widget in self._field_widgets().items():
            flagged = name in invalid
            if widget.property("invalid") != flagged:
                widget.setProperty("invalid", flagged)
                widget.style().unpolish(widget)
                widget.style().polish(widget)
        self.generate_button.setEnabled(not over)
        self.generate_action.setEnabled(not over)
        self.generate_button.setToolTip(f"Not sent: {error}." if over else GENERATE_TIP)

    def _field_widgets(self) -> dict[str, QWidget]:
        return {
            "prompt": self.prompt,
            "negative_prompt": self.negative,
            "width": self.sdxl_size if self.family.sizes else self.size_field.width_spin,
            "height": self.sdxl_size if self.family.sizes else self.size_field.height_spin,
            "num_inference_steps": self.steps.spin,
            "guidance_scale": self.guidance.spin,
            "num_images_per_prompt": self.images.spin,
            "seed": self.seed.edit,
        }

    def request(self) -> GenerationRequest | None:
        """A valid request from the fields (rolling the seed when unlocked), or None with the problem shown."""
        values = self.values()
        try:
            self._checked(values)
        except (RequestError, BudgetError) as error:
            self._refuse(error)
            return None
        values["seed"] = self.seed.seed_for_next_job()
        return GenerationRequest(**values)

    def _refuse(self, error: RequestError | BudgetError) -> None:
        self._show_errors(error)
        self.generate_error.setText(f"Not sent: {field_message(error, named=False)}.")
        self.generate_error.show()
        widget = self._field_widgets().get(getattr(error, "field", "num_images_per_prompt"))
        if widget is not None:
            widget.setFocus(Qt.FocusReason.OtherFocusReason)

    def generate(self) -> None:
        request = self.request()
        if request is None:
            return
        jobs = self.context.jobs
        if jobs is None:
            self.generate_error.setText(
                "No deployment yet: deploy one in Settings → Deploy, or choose an existing one."
                if self.context.connection is not None
                else "Not connected yet: choose the sandbox or an AWS deployment in Settings."
            )
            self.generate_error.show()
            return
        self.generate_error.hide()
        if self.explore.active(request.prompt):
            # a style, a dynamic prompt or a sweep: planned, maybe asked; SDXL's sampler and style preset go with it
            self.explore.send(request.to_dict(), self.family_fields())
            return
        fields = self.family_fields()  # SDXL's sampler and style preset; the service sends the family's request
        Task(
            self, lambda: jobs.submit(request, fields=fields), success=self._submitted, busy=False, lane=Lane.NETWORK
        ).run()

    def _sent_many(self, jobs: list[Any], sweep: Any) -> None:
        if sweep is not None:
            self.context.events.sweep_submitted.emit(sweep)
        self.context.events.jobs_changed.emit(jobs)
        if jobs:
            self.submitted.emit(jobs[0])
        count = len(jobs)
        what = f"Sweep of {count} cells" if sweep is not None else f"{count} job{'s' if count != 1 else ''}"
        self.message.emit(f"{what} sent.")

    def _explore_refused(self, text: str) -> None:
        self.generate_error.setText(text)
        self.generate_error.show()

    def _submitted(self, job: Any) -> None:
        self.context.events.jobs_changed.emit([job])
        self.submitted.emit(job)
        if job.request.prompt not in self.prompt.history[:1]:
            self.prompt.set_history([job.request.prompt, *[p for p in self.prompt.history if p != job.request.prompt]])

    def restore(self, fields: dict[str, Any], with_seed: bool = True) -> None:
        """Fill every field that `fields` names (GenerationRequest names); the seed only when asked."""
        if "prompt" in fields:
            self.prompt.set_text(fields["prompt"] or "")
        if "negative_prompt" in fields:
            self.negative.set_text(fields["negative_prompt"] or "")
        if "width" in fields or "height" in fields:
            width, height = self.size_field.size()
            width, height = int(fields.get("width") or width), int(fields.get("height") or height)
            self.size_field.set_size(width, height)
            self.sdxl_size.setCurrentIndex(_nearest_size(width, height))
        for key, widget in (
            ("num_inference_steps", self.steps),
            ("guidance_scale", self.guidance),
            ("num_images_per_prompt", self.images),
        ):
            if fields.get(key) is not None:
                widget.setValue(fields[key])
        if with_seed and fields.get("seed") is not None:
            self.seed.set_value(int(fields["seed"]), lock=True)
        elif not with_seed:
            self.seed.set_value(None, lock=False)
        self._check_live("prompt")
        self.focus_prompt()

    def focus_prompt(self) -> None:
        self.prompt.setFocus(Qt.FocusReason.ShortcutFocusReason)

    def restore_from_png(self, path: str) -> None:
        """Read a PNG's parameters on a worker and restore them (ours or another tool's)."""
        name = Path(path).name

        def done(params: Any) -> None:
            if params is None:
                self.message.emit(f"{name} carries no generation parameters; nothing to restore.")
                return
            self.restore(params.request_fields(), with_seed=True)
            self.message.emit(f"Restored the settings of {name}.")

        Task(self, lambda: read_parameters(path), success=done).run()

    def choose_png(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import a PNG", "", "PNG images (*.png)")
        if path:
            self.import_png(path)

    def import_png(self, path: str) -> None:
        """Copy a PNG into the library and restore its settings."""

        def done(result: Any) -> None:
            if result.has_parameters:
                self.restore(result.record.parameters.request_fields(), with_seed=True)
            self.context.events.library_changed.emit()
            self.message.emit(result.message)

        Task(self, lambda: self.context.library.import_png(path), success=done, lane=Lane.LIBRARY).run()

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if png_paths(event.mimeData()):
            event.acceptProposedAction()
            self._show_drop_target(True)

    def dragMoveEvent(self, event: Any) -> None:
        if png_paths(event.mimeData()):
            event.acceptProposedAction()

    def dragLeaveEvent(self, event: Any) -> None:
        self._show_drop_target(False)

    def dropEvent(self, event: QDropEvent) -> None:
        self._show_drop_target(False)
        paths = png_paths(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.restore_from_png(paths[0])

    def _show_drop_target(self, on: bool) -> None:
        """An accent outline while a PNG is held over the composer."""
        if self.property("dropping") != on:
            self.setProperty("dropping", on)
            self.style().unpolish(self)
            self.style().polish(self)

    def load_history(self) -> None:
        library = self.context.library
        Task(self, lambda: library.prompt_history(limit=200), success=self.prompt.set_history, busy=False).run()

    def show_history(self) -> None:
        popup = self.history_popup
        popup.search.clear()
        popup.show_prompts(self.prompt.history[:50])
        width = max(self.width() - 24, 280)
        popup.resize(width, 320)
        popup.move(self.prompt.mapToGlobal(QPoint(0, self.prompt.height() + 4)))
        popup.show()
        popup.search.setFocus()

    def _search_history(self, text: str) -> None:
        library = self.context.library
        Task(
            self.history_popup,
            lambda: library.prompt_history(text, limit=50),
            success=self.history_popup.show_prompts,
            busy=False,
        ).run()

    def _use_history(self, text: str) -> None:
        self.prompt.set_text(text)
        self.focus_prompt()


def _nearest_size(width: int, height: int) -> int:
    """The index of SDXL's size closest in shape, then in area, to width × height."""
    sizes = SDXL.sizes or ((width, height),)
    return min(
        range(len(sizes)),
        key=lambda n: (
            abs(sizes[n][0] / sizes[n][1] - width / height),
            abs(sizes[n][0] * sizes[n][1] - width * height),
        ),
    )

"""The composer's Explore section: a style, random picks of a dynamic prompt, and up to three sweep axes.

It says what the prompt expands to as it is typed ("Expands to 6 prompts", "Sweep: 3 × 3 = 9 images"),
worked out on a worker (a wildcard reads its file). Generate with a style, a dynamic prompt or an axis
goes through `send`: planned on a worker (nothing sent on a bad axis), confirmed above CONFIRM_ABOVE
images with the time and cost estimate, then sent as one batch or one sweep.

The Deployment axis is offered when two or more saved deployments run a model of the active one's family
(`Session.deployment_names`); each of its cells is sent by its deployment's own job service
(`Session.deployment_jobs`, which also follows that deployment until the window disconnects).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.services.errors import UserError
from app.services.explore import (
    CONFIRM_ABOVE,
    KINDS,
    MAX_EXPANSIONS,
    Estimate,
    StyleBook,
    SweepPlan,
    Wildcards,
    estimate,
    expansion_count,
    parse_axis,
    plan_sweep,
    submit_sweep,
    unknown_deployment,
)
from app.services.explore.prompts import is_dynamic
from app.services.explore.requests import expand_request, style_extra, wildcards_folder
from app.ui.shell.context import AppContext
from app.ui.shell.icons import icon
from app.ui.shell.tasks import Lane, Task

NO_STYLE = "No style"
HINT_MS = 250
_PLACEHOLDERS = {
    "seed": "1,2,3 · 10-14 · count:4",
    "guidance": "5, 7.5, 10",
    "steps": "20, 30, 40",
    "size": "512x512, 768x512",
    "sr": "fox, cat, dog (the first is in the prompt)",
    "negative": '"", blurry, "low quality, text"',
    "style": "none, Cinematic, Poster",
}
DEPLOYMENT = "model"  # the Deployment axis' kind: offered only with two or more deployments of one family


@dataclass(frozen=True, slots=True)
class Prepared:
    """What Generate will send, worked out on a worker: a sweep plan or expanded requests, and the estimate."""

    plan: SweepPlan | None
    requests: list[dict[str, Any]]
    extra: dict[str, str]
    estimate: Estimate
    services: dict[str, Any] = field(default_factory=dict)  # a Deployment axis' job services, by name
    by_deployment: tuple[tuple[str, Estimate], ...] = ()  # each deployment's cells on its own instance type

    @property
    def images(self) -> int:
        return self.estimate.images

    def text(self) -> str:
        """The time and cost: of the whole, or of each deployment's cells on its own GPU."""
        if len(self.by_deployment) > 1:
            return ". ".join(f"On {name}: {guess.text()}" for name, guess in self.by_deployment)
        return self.estimate.text()


class ExplorePanel(QWidget):
    """Style, random picks and sweep axes, under the composer's fields."""

    sent = Signal(object, object)  # (list[Job], SweepRecord | None)
    refused = Signal(str)  # why nothing was sent

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.setObjectName("explore")
        self.style_box = QComboBox()
        self.style_box.setObjectName("styleBox")
        self.style_box.setAccessibleName("Style")
        self.styles_button = QToolButton()
        self.styles_button.setIcon(icon("settings"))
        self.styles_button.setToolTip("Edit, reorder, import or export the styles")
        self.styles_button.setAccessibleName("Edit styles")
        self.random = QCheckBox("Random picks")
        self.random.setToolTip("Send this many random picks of a dynamic prompt instead of every combination")
        self.picks = QSpinBox()
        self.picks.setRange(1, MAX_EXPANSIONS)
        self.picks.setValue(4)
        self.picks.setEnabled(False)
        self.axes: list[tuple[QComboBox, QLineEdit]] = []
        self.hint = QLabel()
        self.hint.setObjectName("hint")
        self.hint.setWordWrap(True)
        self.hint.setAccessibleName("What the prompt expands to")
        self._hint_timer = QTimer(self)
        self._hint_timer.setSingleShot(True)
        self._hint_timer.setInterval(HINT_MS)
        self._hint_timer.timeout.connect(self._update_hint)
        self._hint_generation = 0
        self._values: dict[str, Any] = {}
        self.deployments: list[str] = []  # the Deployment axis' names, when it is offered
        self._layout()
        self.random.toggled.connect(self.picks.setEnabled)
        self.random.toggled.connect(lambda _on: self.changed())
        self.picks.valueChanged.connect(lambda _v: self.changed())
        self.style_box.currentIndexChanged.connect(lambda _i: self.changed())
        self.styles_button.clicked.connect(self.edit_styles)
        context.events.target_changed.connect(lambda _info: self.offer_deployments())
        self.load_styles()

    def _layout(self) -> None:
        rows = QVBoxLayout(self)
        rows.setContentsMargins(0, 0, 0, 0)
        rows.setSpacing(6)
        rows.addWidget(_caption("STYLE"))
        style_row = QHBoxLayout()
        style_row.addWidget(self.style_box, 1)
        style_row.addWidget(self.styles_button)
        rows.addLayout(style_row)
        rows.addWidget(_caption("DYNAMIC PROMPT"))
        picks_row = QHBoxLayout()
        picks_row.addWidget(self.random)
        picks_row.addWidget(self.picks)
        picks_row.addStretch(1)
        rows.addLayout(picks_row)
        rows.addWidget(_caption("SWEEP"))
        grid = QGridLayout()
        grid.setSpacing(4)
        for row, name in enumerate("XYZ"):
            kind = QComboBox()
            kind.setObjectName(f"axis{name}Kind")
            kind.setAccessibleName(f"{name} axis")
            kind.setMaximumWidth(130)
            kind.addItem("—", "")
            for key, title in KINDS.items():
                if key != DEPLOYMENT:
                    kind.addItem(title, key)
            values = QLineEdit()
            values.setObjectName(f"axis{name}Values")
            values.setAccessibleName(f"{name} axis values")
            values.setEnabled(False)
            kind.currentIndexChanged.connect(lambda _i, k=kind, v=values: self._kind_changed(k, v))
            values.textChanged.connect(lambda _t: self.changed())
            grid.addWidget(QLabel(name), row, 0)
            grid.addWidget(kind, row, 1)
            grid.addWidget(values, row, 2)
            self.axes.append((kind, values))
        grid.setColumnStretch(2, 1)
        rows.addLayout(grid)
        rows.addWidget(self.hint)

    def _kind_changed(self, kind: QComboBox, values: QLineEdit) -> None:
        key = kind.currentData()
        values.setEnabled(bool(key))
        if key == DEPLOYMENT:
            values.setPlaceholderText(", ".join(self.deployments))
            values.setToolTip("The saved deployments to compare, by name: each cell is sent to its own")
            if not values.text().strip():
                values.setText(", ".join(self.deployments))
        else:
            values.setPlaceholderText(_PLACEHOLDERS.get(key, ""))
            values.setToolTip("")
        self.changed()

    def offer_deployments(self) -> None:
        """Offer the Deployment axis while two or more saved deployments take the active one's requests."""
        names = self.context.session.deployment_names()
        self.deployments = names if len(names) > 1 else []
        title = KINDS[DEPLOYMENT]
        for kind, values in self.axes:
            at = kind.findData(DEPLOYMENT)
            if self.deployments and at < 0:
                kind.addItem(title, DEPLOYMENT)
            elif not self.deployments and at >= 0:
                if kind.currentIndex() == at:
                    kind.setCurrentIndex(0)
                    values.clear()
                kind.removeItem(at)
            if kind.currentData() == DEPLOYMENT:
                values.setPlaceholderText(", ".join(self.deployments))

    def load_styles(self, select: str | None = None) -> None:
        book = self.book()
        Task(self, book.names, success=lambda names: self._show_styles(names, select), busy=False).run()

    def _show_styles(self, names: list[str], select: str | None) -> None:
        current = select or self.style_name()
        self.style_box.blockSignals(True)
        self.style_box.clear()
        self.style_box.addItem(NO_STYLE, None)
        for name in names:
            self.style_box.addItem(name, name)
        at = self.style_box.findData(current) if current else 0
        self.style_box.setCurrentIndex(max(at, 0))
        self.style_box.blockSignals(False)
        self.changed()

    def book(self) -> StyleBook:
        return StyleBook(self.context.dirs.data_dir)

    def style_name(self) -> str | None:
        return self.style_box.currentData()

    def axis_texts(self) -> list[tuple[str, str]]:
        """(kind, values) of each axis in use, x first."""
        return [(kind.currentData(), values.text()) for kind, values in self.axes if kind.currentData()]

    def active(self, prompt: str) -> bool:
        """Whether Generate goes through here: a style, an axis or a dynamic prompt."""
        return bool(self.style_name() or self.axis_texts() or is_dynamic(prompt))

    def changed(self, values: dict[str, Any] | None = None) -> None:
        """The fields changed: say what they expand to, soon (the composer calls this as the prompt is typed)."""
        if values is not None:
            self._values = values
        self._hint_timer.start()

    def _update_hint(self) -> None:
        self._hint_generation += 1
        generation, values = self._hint_generation, dict(self._values)
        axes, picks = self.axis_texts(), self.picks.value() if self.random.isChecked() else None
        folder = wildcards_folder(self.context.dirs.data_dir)

        def work() -> str:
            prompt = values.get("prompt") or ""
            if axes:
                parsed = [
                    parse_axis(f"{kind}={text}", f"{name}: ") for name, (kind, text) in zip("xyz", axes, strict=False)
                ]
                shape = " × ".join(str(len(axis.values)) for axis in parsed)
                images = 1
                for axis in parsed:
                    images *= len(axis.values)
                images *= int(values.get("num_images_per_prompt") or 1)
                return f"Sweep: {shape} = {images} image{'s' if images != 1 else ''}"
            if not prompt or not is_dynamic(prompt):
                return ""
            count = expansion_count(prompt, Wildcards(folder))
            if picks:
                return f"Sends {picks} random pick{'s' if picks != 1 else ''} of {count} prompts"
            return f"Expands to {count} prompt{'s' if count != 1 else ''}"

        def shown(text: str) -> None:
            if generation == self._hint_generation:
                self._show_hint(text, error=False)

        def failed(error: BaseException) -> None:
            if generation == self._hint_generation:
                self._show_hint(str(error), error=True)

        Task(self, work, success=shown, failure=failed, busy=False).run()

    def _show_hint(self, text: str, *, error: bool) -> None:
        self.hint.setObjectName("fieldError" if error else "hint")
        self.hint.style().unpolish(self.hint)
        self.hint.style().polish(self.hint)
        self.hint.setText(text)
        self.hint.setVisible(bool(text))

    def send(self, values: dict[str, Any], fields: dict[str, Any] | None = None) -> None:
        """Plan on a worker (refusing bad input, nothing sent), ask above the threshold, then send; `fields` are the
        model family's own (SDXL's sampler and style preset) for every job."""
        jobs, target, library = self.context.jobs, self.context.target, self.context.library
        if jobs is None or target is None:
            self.refused.emit("Not connected yet: choose the sandbox or an AWS deployment in Settings.")
            return
        axes, style_name = self.axis_texts(), self.style_name()
        picks = self.picks.value() if self.random.isChecked() else None
        data_dir, prices = self.context.dirs.data_dir, dict(self.context.settings.prices)
        session, offered = self.context.session, list(self.deployments)

        def prepare() -> Prepared:
            book = StyleBook(data_dir)
            style = book.get(style_name) if style_name else None
            wildcards = Wildcards(wildcards_folder(data_dir))
            plan, requests, extra, services = None, [], style_extra(style), {}
            if axes:
                parsed = [
                    parse_axis(f"{kind}={text}", f"{name}: ") for name, (kind, text) in zip("xyz", axes, strict=False)
                ]
                services = _deployment_services(session, parsed, offered)
                targets = {name: service.target for name, service in services.items()}
                plan = plan_sweep(
                    values, parsed, style=style, styles=book, wildcards=wildcards, budget=target.budget, targets=targets
                )
                images = plan.images
            else:
                requests = expand_request(values, style=style, wildcards=wildcards, picks=picks)
                images = sum(int(r.get("num_images_per_prompt") or 1) for r in requests)
            recent = library.jobs(limit=200)

            def guess(count: int, where: Any) -> Estimate:
                mine = [job for job in recent if job.target == where.name]
                return estimate(count, mine, instance_type=where.instance_type, region=where.region, prices=prices)

            by_deployment: list[tuple[str, Estimate]] = []
            if plan is not None and services:
                counts: dict[str, int] = {}
                for cell in plan.cells:
                    name = cell.target or target.name
                    counts[name] = counts.get(name, 0) + cell.request.num_images_per_prompt
                by_deployment = [(name, guess(count, services[name].target)) for name, count in counts.items()]
            return Prepared(plan, requests, extra, guess(images, target), services, tuple(by_deployment))

        Task(
            self, prepare, success=lambda p: self._confirm_and_send(p, fields or {}), failure=self._refuse, busy=False
        ).run()

    def _refuse(self, error: BaseException) -> None:
        self.refused.emit(f"Not sent: {error}" if isinstance(error, UserError) else f"Not sent ({error}).")

    def _confirm_and_send(self, prepared: Prepared, fields: dict[str, Any]) -> None:
        if prepared.images > CONFIRM_ABOVE and not self.confirm(prepared):
            self.refused.emit("Not sent.")
            return
        jobs = self.context.jobs
        if jobs is None:
            self.refused.emit("Not connected any more; nothing was sent.")
            return
        if prepared.plan is not None:
            plan = prepared.plan

            def send() -> tuple[list[Any], Any]:
                sweep = submit_sweep(jobs, plan, services=prepared.services, fields=fields)
                return jobs.library.jobs_by_id(list(sweep.cells.values())), sweep

        else:

            def send() -> tuple[list[Any], Any]:
                return jobs.submit_many(prepared.requests, extra=prepared.extra, fields=fields), None

        Task(self, send, success=lambda result: self.sent.emit(*result), failure=self._refuse, lane=Lane.NETWORK).run()

    def confirm(self, prepared: Prepared) -> bool:
        """Ask before sending many images, with the estimate (tests replace this)."""
        what = "sweep" if prepared.plan is not None else "batch"
        answer = QMessageBox.question(
            self,
            f"Send this {what}?",
            f"{prepared.text()}.\n\nSend {prepared.images} images?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        return answer == QMessageBox.StandardButton.Yes

    def edit_styles(self) -> None:
        from app.ui.compose.styles_dialog import StylesDialog

        dialog = StylesDialog(self.book(), self)
        dialog.finished.connect(lambda _r: self.load_styles())
        dialog.open()


def _deployment_services(session: Any, axes: list[Any], offered: list[str]) -> dict[str, Any]:
    """The job service of each deployment a Deployment axis names (worker thread: each may connect); SweepError
    for a name that is not one of the deployments offered, before anything is opened."""
    names = [name for axis in axes if axis.kind == DEPLOYMENT for name in axis.values]
    for name in names:
        if name not in offered:
            raise unknown_deployment(name, offered)
    return {name: session.deployment_jobs(name) for name in dict.fromkeys(names)}


def _caption(text: str) -> QLabel:
    label = QLabel(text)
    label.setObjectName("sectionLabel")
    return label

"""Sweeps: up to three axes over seed, guidance, steps, size, a prompt search/replace, the negative prompt, a style
or the deployment (the model: each saved deployment has one; `submit_sweep` sends each cell to its own).

A sweep is planned (every cell's request validated, the image count checked against the cap) before
anything is recorded; `submit_sweep` then records the sweep and all its jobs in one transaction and
sends them through the job service's bounded pool, so a sweep killed halfway is resumed like any job:
no cell lost, none sent twice.
"""

from __future__ import annotations

import csv
import io
import math
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.services.errors import UserError
from app.services.explore.prompts import Wildcards, expansion_count
from app.services.explore.requests import STYLE_KEY
from app.services.explore.styles import Style, StyleBook
from app.services.fields import field_message
from app.services.lanes import Lane, lane
from app.services.library.schema import now
from app.services.library.sweeps import AxisRecord, Position, SweepRecord
from app.services.models import Job
from app.services.progress import Progress
from contract import MAX_SEED, GenerationRequest, RequestError, new_inference_id

MAX_IMAGES = 400  # the hard cap of one sweep
MAX_AXES = 3
AXIS_NAMES = ("x", "y", "z")
CELL_KEY = "Sweep cell"
SENDING = "Sending the cells"
NO_STYLE = "none"

#: Axis kinds: the word the user types, and the title the sheet shows.
KINDS: dict[str, str] = {
    "seed": "Seed",
    "guidance": "CFG scale",
    "steps": "Steps",
    "size": "Size",
    "sr": "Prompt S/R",
    "negative": "Negative prompt",
    "style": "Style",
    "model": "Deployment",
}
_ALIASES = {
    "cfg": "guidance",
    "seeds": "seed",
    "prompt_sr": "sr",
    "s/r": "sr",
    "negative_prompt": "negative",
    "deployment": "model",
    "models": "model",
}


class SweepError(UserError):
    """A sweep that cannot be sent as asked; nothing has been recorded or sent."""


@dataclass(frozen=True, slots=True)
class Axis:
    kind: str
    values: tuple[Any, ...]

    @property
    def title(self) -> str:
        return KINDS[self.kind]

    def labels(self) -> tuple[str, ...]:
        return tuple(_label(self.kind, value) for value in self.values)


def _label(kind: str, value: Any) -> str:
    if kind == "size":
        return f"{value[0]}x{value[1]}"
    if kind == "guidance":
        return f"{value:g}"
    if kind == "negative":
        return value or "(none)"
    return str(value)


def parse_axis(text: str, where: str = "") -> Axis:
    """`seed=1,2,3`, `seed=10-14`, `seed=count:4`, `guidance=5,7.5`, `steps=20,30`, `size=512x512,768x512`,
    `sr=fox,cat` (the first is searched for in the prompt), `negative="",blurry`, `style=none,Cinematic`,
    `model=studio,studio-xl` (saved deployments, by name).

    Values are one CSV line, so a value holding a comma is written in quotes.
    """
    kind, sep, rest = text.partition("=")
    kind = _ALIASES.get(kind.strip().lower(), kind.strip().lower())
    if not sep or kind not in KINDS:
        raise _refused(
            where, f"{text!r} is not an axis; write KIND=VALUES with KIND one of {', '.join(KINDS)} (seed=1,2,3)."
        )
    try:
        rows = list(csv.reader(io.StringIO(rest), skipinitialspace=True, strict=True))
    except csv.Error as exc:
        raise _refused(where, f"the values of {kind} cannot be read ({exc}); check their quotes.") from None
    raw = [value for row in rows for value in row]
    if kind not in ("negative", "style", "sr"):
        raw = [value.strip() for value in raw if value.strip()]
    if not raw or (kind != "negative" and not any(value.strip() for value in raw)):
        raise _refused(where, f"the {KINDS[kind]} axis has no values.")
    return axis_of(kind, raw, where)


def _refused(where: str, text: str) -> SweepError:
    """`where` ("--x: ") then the message, which starts a sentence when nothing comes before it."""
    return SweepError(where + text if where else text[:1].upper() + text[1:])


def axis_of(kind: str, raw: Sequence[str], where: str = "") -> Axis:
    """An axis from its kind and the values as typed (the composer's fields, the CLI's list)."""
    kind = _ALIASES.get(kind, kind)
    title = KINDS.get(kind, kind)
    if not raw:
        raise _refused(where, f"the {title} axis has no values.")
    try:
        values = tuple(_values(kind, [str(value) for value in raw]))
    except ValueError as exc:
        raise _refused(where, f"the {title} axis: {exc}.") from None
    if not values:
        raise _refused(where, f"the {title} axis has no values.")
    if kind == "sr" and len(values) < 2:
        raise _refused(where, "a Prompt S/R axis needs the term to search for and at least one replacement.")
    return Axis(kind, values)


def _values(kind: str, raw: list[str]) -> list[Any]:
    if kind == "seed":
        return _seeds(raw)
    if kind == "guidance":
        return [_number(value, float, "a guidance scale") for value in raw]
    if kind == "steps":
        return [_number(value, int, "a number of steps") for value in raw]
    if kind == "size":
        return [_size(value) for value in raw]
    if kind in ("style", "model"):
        return [value.strip() for value in raw if value.strip()]
    if kind == "sr":
        return [value.strip() for value in raw if value.strip()]
    return [value.strip() for value in raw]  # negative prompts: an empty one is a value


def _seeds(raw: list[str]) -> list[int]:
    seeds: list[int] = []
    for value in raw:
        if value.lower().startswith("count:"):
            count = _number(value[6:], int, "a count of seeds")
            if count < 1:
                raise ValueError(f"{value!r} asks for no seeds")
            seeds.extend(secrets.randbelow(MAX_SEED + 1) for _ in range(min(count, MAX_IMAGES + 1)))
        elif "-" in value[1:]:
            low, _, high = value.partition("-")
            first, last = _number(low, int, "a seed"), _number(high, int, "a seed")
            if last < first:
                raise ValueError(f"the range {value!r} runs backwards")
            if last - first >= MAX_IMAGES:
                raise ValueError(f"the range {value!r} has {last - first + 1} seeds; at most {MAX_IMAGES}")
            seeds.extend(range(first, last + 1))
        else:
            seeds.append(_number(value, int, "a seed"))
    return seeds


def _number(text: str, kind: type, what: str) -> Any:
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError(f"{text.strip()!r} is not {what}") from None
    if kind is int:
        if not value.is_integer():
            raise ValueError(f"{text.strip()!r} is not a whole number")
        return int(value)
    return value


def _size(text: str) -> tuple[int, int]:
    width, sep, height = text.strip().lower().partition("x")
    try:
        if not sep:
            raise ValueError
        return int(width), int(height)
    except ValueError:
        raise ValueError(f"{text.strip()!r} is not a size like 512x768") from None


@dataclass(frozen=True, slots=True)
class Cell:
    position: Position
    request: GenerationRequest
    extra: dict[str, str]
    target: str | None = None  # the deployment of a Deployment axis' cell; None: the session's


@dataclass(frozen=True, slots=True)
class SweepPlan:
    """What a sweep will send: one validated request per cell, in x, y, z order."""

    prompt: str
    axes: tuple[Axis, ...]
    cells: tuple[Cell, ...]
    style: Style | None = None

    @property
    def images(self) -> int:
        return sum(cell.request.num_images_per_prompt for cell in self.cells)

    def describe(self) -> str:
        sizes = " × ".join(f"{len(axis.values)} {axis.title.lower()}" for axis in self.axes)
        return f"{sizes}: {len(self.cells)} cells, {self.images} image{'s' if self.images != 1 else ''}"


def plan_sweep(
    base: GenerationRequest | dict[str, Any],
    axes: Sequence[Axis],
    *,
    style: Style | None = None,
    styles: StyleBook | None = None,
    wildcards: Wildcards | None = None,
    budget: Any = None,
    targets: Mapping[str, Any] | None = None,
    cap: int = MAX_IMAGES,
) -> SweepPlan:
    """Every cell's request, validated; SweepError (nothing sent) for a bad axis, a bad cell or too many images.

    `targets` are the saved deployments by name (`Target`s) a Deployment axis may name; each of its cells is
    checked against its own deployment's GPU budget instead of `budget`.
    """
    fields = dict(base.to_dict() if isinstance(base, GenerationRequest) else base)
    prompt = str(fields.get("prompt") or "")
    if not prompt.strip():
        raise SweepError("A sweep needs a prompt.")
    axes = list(axes)
    if not axes:
        raise SweepError("A sweep needs at least one axis (--x seed=1,2,3).")
    if len(axes) > MAX_AXES:
        raise SweepError(f"A sweep has at most {MAX_AXES} axes (x, y, z); this one has {len(axes)}.")
    kinds = [axis.kind for axis in axes]
    for kind in set(kinds):
        if kinds.count(kind) > 1:
            raise SweepError(f"Two axes sweep the {KINDS[kind]}; each setting can be on one axis only.")
    for axis in axes:
        if not axis.values:
            raise SweepError(f"The {axis.title} axis has no values.")
    try:
        expansions = expansion_count(prompt, wildcards)
    except UserError as exc:
        raise SweepError(str(exc)) from None
    if expansions != 1:
        raise SweepError(
            f"A sweep takes one prompt, and this one expands to {expansions}.",
            hint="Put the choices on a Prompt S/R axis instead (sr=fox,cat,dog).",
        )
    per_cell = int(fields.get("num_images_per_prompt") or 1)
    total = math.prod(len(axis.values) for axis in axes) * per_cell
    if total > cap:
        raise SweepError(
            f"This sweep makes {total} images; at most {cap} are sent as one sweep.",
            hint="Use fewer values on an axis.",
        )
    for axis in axes:
        if axis.kind == "sr" and axis.values[0] not in prompt:
            raise SweepError(f"The Prompt S/R term {axis.values[0]!r} is not in the prompt, so nothing would change.")
    styles_by_axis = _axis_styles(axes, styles)
    targets_by_axis = _axis_targets(axes, targets)
    if fields.get("seed") is None and "seed" not in kinds:
        fields["seed"] = secrets.randbelow(MAX_SEED + 1)  # one seed for every cell, so the cells compare
    cells = []
    for position in _positions(axes):
        cells.append(_cell(fields, axes, position, style, styles_by_axis, targets_by_axis, budget))
    return SweepPlan(prompt, tuple(axes), tuple(cells), style)


def _positions(axes: Sequence[Axis]) -> list[Position]:
    sizes = [len(axis.values) for axis in axes] + [1] * (MAX_AXES - len(axes))
    return [(x, y, z) for z in range(sizes[2]) for y in range(sizes[1]) for x in range(sizes[0])]


def _axis_styles(axes: Sequence[Axis], styles: StyleBook | None) -> dict[str, Style | None]:
    out: dict[str, Style | None] = {}
    for axis in axes:
        if axis.kind != "style":
            continue
        for name in axis.values:
            if name.lower() == NO_STYLE:
                out[name] = None
            elif styles is None:
                raise SweepError(f"The style {name!r} is not known here.")
            else:
                try:
                    out[name] = styles.get(name)
                except UserError as exc:
                    raise SweepError(str(exc)) from None
    return out


def _axis_targets(axes: Sequence[Axis], targets: Mapping[str, Any] | None) -> dict[str, Any]:
    """The saved deployment of each name on a Deployment axis; SweepError for a name not saved here."""
    names = [name for axis in axes if axis.kind == "model" for name in axis.values]
    if not names:
        return {}
    known = dict(targets or {})
    for name in names:
        if name not in known:
            raise unknown_deployment(name, known)
    if len(set(names)) < len(names):
        raise SweepError("The Deployment axis names a deployment twice.")
    families = {known[name].model_family.label for name in names}
    if len(families) > 1:
        raise SweepError(
            f"The deployments {', '.join(repr(n) for n in names)} run models of different families "
            f"({', '.join(sorted(families))}); a sweep compares models that take the same request."
        )
    return {name: known[name] for name in names}


def unknown_deployment(name: str, saved: Iterable[str]) -> SweepError:
    """A Deployment axis' value that is no saved deployment's name."""
    return SweepError(
        f"The deployment {name!r} is not saved here (saved: {', '.join(sorted(saved)) or 'none yet'}).",
        hint="A deployment is saved when it is deployed, or connected to in Settings → Connection.",
    )


def _cell(
    base: dict[str, Any],
    axes: Sequence[Axis],
    position: Position,
    style: Style | None,
    styles_by_axis: dict[str, Style | None],
    targets_by_axis: dict[str, Any],
    budget: Any,
) -> Cell:
    fields = dict(base)
    labels = []
    target = None
    for axis, index in zip(axes, position, strict=False):
        value = axis.values[index]
        labels.append(f"{axis.title}: {_label(axis.kind, value)}")
        if axis.kind == "seed":
            fields["seed"] = value
        elif axis.kind == "guidance":
            fields["guidance_scale"] = value
        elif axis.kind == "steps":
            fields["num_inference_steps"] = value
        elif axis.kind == "size":
            fields["width"], fields["height"] = value
        elif axis.kind == "sr":
            fields["prompt"] = fields["prompt"].replace(axis.values[0], value)
        elif axis.kind == "negative":
            fields["negative_prompt"] = value
        elif axis.kind == "style":
            style = styles_by_axis[value]
        elif axis.kind == "model":
            target, budget = value, targets_by_axis[value].budget
    extra = {CELL_KEY: "; ".join(labels)}
    if style is not None:
        fields["prompt"], fields["negative_prompt"] = style.apply(fields["prompt"], fields.get("negative_prompt") or "")
        extra[STYLE_KEY] = style.name
    where = f"The cell {'; '.join(labels)}: "
    try:
        request = GenerationRequest.from_dict(fields)
        if budget is not None:
            budget.check(request)
    except (RequestError, ValueError, TypeError) as exc:
        raise _refused(where, f"{field_message(exc)}.") from None
    return Cell(position, request, extra, target)


def record_of(plan: SweepPlan, target: str) -> SweepRecord:
    axes = [AxisRecord(axis.kind, axis.title, axis.labels()) for axis in plan.axes]
    title = plan.prompt if plan.style is None else f"{plan.prompt} ({plan.style.name})"
    return SweepRecord(id=f"sweep-{new_inference_id()}", prompt=title, target=target, axes=axes, created_at=now())


@lane(Lane.NETWORK)
def submit_sweep(
    jobs_service: Any,
    plan: SweepPlan,
    progress: Callable[[Progress], None] | None = None,
    services: Mapping[str, Any] | None = None,
    fields: Mapping[str, Any] | None = None,
) -> SweepRecord:
    """Record the sweep and all its jobs at once, then send them on the job service's bounded pool.

    `fields` are the model family's own (SDXL's sampler and style preset), the same for every cell.

    A Deployment axis' cells are made and sent by their deployment's job service (`services`, by name), one
    deployment after the other; a cell not sent yet (the app closed meanwhile) is sent by the next session of
    its deployment, as any job recorded and not sent. Returns the sweep as recorded; its jobs are queued,
    waiting offline, or failed with a message.
    """
    service = jobs_service
    by_target = dict(services or {})
    for cell in plan.cells:
        if cell.target is not None and cell.target not in by_target:
            raise SweepError(f"The deployment {cell.target!r} is not connected, so nothing was sent.")

    def service_of(cell: Cell) -> Any:
        return service if cell.target is None else by_target[cell.target]

    record = record_of(plan, plan.cells[0].target or service.target.name)  # where its first cell goes
    jobs: dict[Position, Job] = {}
    groups: dict[int, tuple[Any, list[Job]]] = {}
    for cell in plan.cells:
        owner = service_of(cell)
        jobs[cell.position] = job = owner.prepare(cell.request, extra=cell.extra, fields=dict(fields or {}))
        groups.setdefault(id(owner), (owner, []))[1].append(job)
    total, sent = len(jobs), 0

    def counted(_one: Progress) -> None:  # one count over every deployment's sends
        nonlocal sent
        sent += 1
        if progress is not None:
            progress(Progress.counted(SENDING, sent, total, f"Sent {sent} of {total}"))

    first, *others = groups.values()
    first[0].submit_prepared(first[1], lambda: first[0].library.add_sweep(record, jobs), counted)
    for owner, group in others:
        owner.send_many(group, counted)
    return record


@lane(Lane.NETWORK)
def rerun_cell(jobs_service: Any, sweep_id: str, position: Position) -> Job:
    """Send a cell's request again as a new job that takes the cell's place in the sweep."""
    service = jobs_service
    sweep = service.library.get_sweep(sweep_id)
    if sweep is None or position not in sweep.cells:
        raise UserError("That sweep cell is no longer in the library.")
    old = service.library.get_job(sweep.cells[position])
    if old is None:
        raise UserError("That cell's job was removed from the library, so there is nothing to run again.")
    if old.target != service.target.name:
        raise UserError(
            f"That cell was made by the deployment {old.target!r}; run it again while connected to it.",
            hint="Choose that deployment in Settings, or `python -m app --deployment NAME …` on the command line.",
        )
    job = service.prepare(old.request, retry_of=old.inference_id, extra=old.extra)  # its seed: made as it was
    return service.submit_prepared([job], lambda: service.library.replace_sweep_cell(sweep_id, position, job))[0]

"""`sweep` and `styles` on the command line, and the dynamic prompts and styles of `generate` and `batch`.

    python -m app sweep "prompt" --x seed=1,2,3 --y guidance=5,7.5,10 [--z …] [--style NAME] [--out DIR] [--yes]
    python -m app styles [--import styles.csv] [--export styles.csv]

A sweep is planned and refused (with a clear message, nothing sent) before it is recorded; above
CONFIRM_ABOVE images it asks, or needs --yes. It waits for its cells, then writes the contact sheet
and each cell's PNG to --out (by default a folder named after the sweep in the current one).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import orjson

from app.services.errors import UserError
from app.services.explore import CONFIRM_ABOVE, StyleBook, Wildcards, estimate, parse_axis, plan_sweep, submit_sweep
from app.services.explore.requests import expand_request, style_extra, wildcards_folder
from app.services.explore.sheet import export_cells, export_sheet, sheet_of
from app.services.jobs import validate_request
from app.services.settings import AppDirs
from contract import GenerationRequest
from contract.families import SAMPLERS, STYLE_PRESETS


def add_options(params: argparse.ArgumentParser) -> None:
    """--style and --random, for generate, batch and sweep."""
    params.add_argument("--style", help="apply the named style (see `styles`)")
    params.add_argument(
        "--random",
        type=int,
        metavar="N",
        help="send N random picks of a dynamic prompt ({a|b}, __name__) instead of every combination",
    )


def add_commands(commands: Any, common: argparse.ArgumentParser, params: argparse.ArgumentParser) -> None:
    """`sweep` (with generate's options) and `styles`."""
    sweep = commands.add_parser(
        "sweep",
        parents=[common, params],
        help="one prompt over up to three axes, as a contact sheet",
        description="AXIS is KIND=VALUES: seed=1,2,3 | seed=10-14 | seed=count:4 | guidance=5,7.5 | steps=20,30 | "
        'size=512x512,768x512 | sr=fox,cat (Prompt S/R: the first is searched for) | negative="",blurry | '
        "style=none,Cinematic | model=studio,studio-xl (saved deployments: each cell is sent to its own). "
        "Values are one CSV line: quote a value that holds a comma.",
    )
    sweep.add_argument("prompt")
    for name in ("x", "y", "z"):
        sweep.add_argument(f"--{name}", metavar="AXIS", help=f"the {name} axis")
    sweep.add_argument("--yes", action="store_true", help=f"send without asking, even above {CONFIRM_ABOVE} images")
    sweep.add_argument("--sampler", help=f"an SDXL endpoint's sampler: {', '.join(SAMPLERS)}")
    sweep.add_argument("--style-preset", help=f"an SDXL endpoint's style preset: {', '.join(STYLE_PRESETS)}")
    sweep.set_defaults(run=_sweep)
    styles = commands.add_parser("styles", parents=[common], help="list, import or export the styles")
    styles.add_argument(
        "--import", dest="import_csv", type=Path, metavar="CSV", help="add the styles of an A1111 styles.csv"
    )
    styles.add_argument("--export", dest="export_csv", type=Path, metavar="CSV", help="write the styles as styles.csv")
    styles.add_argument("--json", action="store_true")
    styles.set_defaults(run=_styles)


def expanded(
    args: argparse.Namespace, dirs: AppDirs, lines: list[tuple[str, GenerationRequest | dict[str, Any]]]
) -> tuple[list[tuple[str, GenerationRequest]], dict[str, str]]:
    """Each line's style applied and its dynamic prompt expanded, every result validated; and the jobs' extra."""
    style = StyleBook(dirs.data_dir).get(args.style) if getattr(args, "style", None) else None
    wildcards = Wildcards(wildcards_folder(dirs.data_dir))
    out: list[tuple[str, GenerationRequest]] = []
    for where, request in lines:
        fields = request.to_dict() if isinstance(request, GenerationRequest) else dict(request)
        try:
            expansions = expand_request(fields, style=style, wildcards=wildcards, picks=getattr(args, "random", None))
        except UserError as exc:
            raise UserError(f"{where}{exc}") from None
        out += [(where, validate_request(item, where)) for item in expansions]
    return out, style_extra(style)


def _sweep(args: argparse.Namespace, dirs: AppDirs, ui: Any) -> int:
    from app import cli  # the CLI's own session, options and waiting (it imports this module)

    axes = [parse_axis(text, f"--{name}: ") for name, text in (("x", args.x), ("y", args.y), ("z", args.z)) if text]
    if not axes:
        raise UserError("A sweep needs at least one axis: --x seed=1,2,3 (and --y, --z).")
    if args.y is None and args.z is not None:
        raise UserError("Give --y before --z.")
    styles = StyleBook(dirs.data_dir)
    style = styles.get(args.style) if args.style else None
    base = {**cli._fields(args), "prompt": args.prompt}
    workspace = cli._open(args, dirs, ui)
    others: dict[str, Any] = {}  # a session for each other deployment of a Deployment axis
    try:
        target = workspace.target
        sessions = _deployment_sessions(args, dirs, ui, workspace, axes, others)
        plan = plan_sweep(
            base,
            axes,
            style=style,
            styles=styles,
            wildcards=Wildcards(wildcards_folder(dirs.data_dir)),
            budget=target.budget,
            targets={name: session.target for name, session in sessions.items()},
        )
        ui.note(f"{plan.describe()}. {_estimates(workspace, sessions, plan)}.")
        if plan.images > CONFIRM_ABOVE and not args.yes and not confirmed(ui, plan.images):
            ui.note("Nothing sent.")
            return cli.EXIT_FAILED
        sweep = submit_sweep(
            workspace.jobs,
            plan,
            progress=lambda p: ui.progress(round(p.fraction * len(plan.cells)), len(plan.cells), p.message),
            services={name: session.jobs for name, session in sessions.items()},
            fields={"sampler": args.sampler, "style_preset": args.style_preset},
        )
        names = sorted({cell.target or target.name for cell in plan.cells})
        ui.note(f"Sweep {sweep.id}: {len(sweep.cells)} cells sent to {', '.join(names)}.")
        jobs = _wait_all(workspace, sessions, plan, sweep, ui, args.timeout)
        out = args.out or Path.cwd() / sweep.id
        sheet = sheet_of(workspace.library.get_sweep(sweep.id), workspace.library)
        cells = export_cells(sheet, workspace.library, out / "cells")
        path = export_sheet(sheet, out / "sheet.png")
        ui.done()
        ui.note(
            f"Contact sheet: {path} ({sheet.done} of {len(sheet.cells)} cells); {len(cells)} PNGs in {out / 'cells'}"
        )
        ui.print_jobs(jobs, as_json=args.json)
        return 0 if sheet.done == len(sheet.cells) else cli.EXIT_FAILED
    finally:
        for session in others.values():
            session.close()
        workspace.close()


def _deployment_sessions(
    args: argparse.Namespace, dirs: AppDirs, ui: Any, workspace: Any, axes: list[Any], others: dict[str, Any]
) -> dict[str, Any]:
    """A session for each saved deployment a Deployment axis names (the workspace for its own; new ones go in
    `others`, for the caller to close); SweepError for a name not saved here, before anything is opened."""
    from app import cli
    from app.services.cloud.targets import saved_target
    from app.services.explore.sweep import unknown_deployment

    names = [name for axis in axes if axis.kind == "model" for name in axis.values]
    sessions: dict[str, Any] = {}
    for name in dict.fromkeys(names):
        if name == workspace.target.name:
            sessions[name] = workspace
        elif saved_target(workspace.settings, name) is not None:
            others[name] = sessions[name] = cli._open(
                argparse.Namespace(**{**vars(args), "deployment": name}), dirs, ui
            )
        else:
            raise unknown_deployment(name, [saved.get("name", "") for saved in workspace.settings.targets])
    return sessions


def _estimates(workspace: Any, sessions: dict[str, Any], plan: Any) -> str:
    """The time and cost of the sweep on its deployment, or of each deployment's cells on it (its own instance
    type and measured time per image)."""
    images: dict[str, int] = {}
    for cell in plan.cells:
        name = cell.target or workspace.target.name
        images[name] = images.get(name, 0) + cell.request.num_images_per_prompt
    recent = workspace.library.jobs(limit=200)
    parts = []
    for name, count in images.items():
        target = sessions[name].target if name in sessions else workspace.target
        guess = estimate(
            count,
            [job for job in recent if job.target == name],
            instance_type=target.instance_type,
            region=target.region,
            prices=workspace.settings.prices,
        )
        parts.append(guess.text() if len(images) == 1 else f"On {name}: {guess.text()}")
    return ". ".join(parts)


def _wait_all(workspace: Any, sessions: dict[str, Any], plan: Any, sweep: Any, ui: Any, timeout: float | None):
    """Every cell's job once final: each deployment's session follows its own cells, one after the other."""
    import time

    from app import cli

    owners: dict[str, Any] = {}
    for cell in plan.cells:
        owners.setdefault(cell.target or workspace.target.name, sessions.get(cell.target, workspace))
    ids_of: dict[str, list[str]] = {}
    for cell in plan.cells:
        job_id = sweep.cells[cell.position]
        ids_of.setdefault(cell.target or workspace.target.name, []).append(job_id)
    deadline = None if timeout is None else time.monotonic() + timeout
    jobs = []
    for name, session in owners.items():
        left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
        jobs += cli._wait(session, ids_of[name], ui, left)
    by_id = {job.inference_id: job for job in jobs}
    return [by_id[job_id] for job_id in sweep.cells.values() if job_id in by_id]


def confirmed(ui: Any, images: int, what: str = "sweep") -> bool:
    """Whether the user says yes to sending `images` images (without a terminal: UserError, add --yes)."""
    if not ui.interactive:
        raise UserError(f"This {what} makes {images} images; add --yes to send it (asked above {CONFIRM_ABOVE}).")
    return ui.ask(f"Send {images} images? [y/N] ").strip().lower() in ("y", "yes")


def _styles(args: argparse.Namespace, dirs: AppDirs, ui: Any) -> int:
    book = StyleBook(dirs.data_dir)
    if args.import_csv:
        added = book.import_csv(args.import_csv)
        ui.note(f"Imported {len(added)} style{'s' if len(added) != 1 else ''} from {args.import_csv.name}.")
    if args.export_csv:
        ui.note(f"Wrote {len(book.styles())} styles to {book.export_csv(args.export_csv)}.")
    styles = book.styles()
    if args.json:
        data = [{"name": s.name, "prompt": s.prompt, "negative_prompt": s.negative_prompt} for s in styles]
        ui.out.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        for style in styles:
            ui.out.write(f"{style.name}\t{style.prompt}\t{style.negative_prompt}\n")
    return 0

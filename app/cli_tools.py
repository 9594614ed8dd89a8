"""The image tools on the command line: `upscale`, `inpaint` and `extend` (outpainting), registered by app/cli.py.

    upscale PNG [--prompt T] [--noise-level N]
    inpaint PNG --mask MASK.png "prompt" [--n N]
    extend PNG [--left PX] [--right PX] [--top PX] [--bottom PX] "prompt" [--n N]
    each: [--negative T --steps N --guidance G --seed S] [--wait] [--timeout SECONDS] [--out DIR] [--json]

Each sends one job through the job service (its checks refuse a bad input before anything is recorded or sent),
then waits, copies and prints as `generate` does. A PNG of the library keeps its lineage ("made from").
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.services.errors import UserError
from app.services.jobs import JobService, SourceImage
from app.services.models import Job
from app.services.settings import AppDirs


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    from app.cli import add_wait_options

    params = argparse.ArgumentParser(add_help=False)
    params.add_argument("png", type=Path, help="the image (PNG or JPEG; a library file keeps its lineage)")
    params.add_argument("--negative", default="", help="negative prompt")
    params.add_argument("--steps", type=int, help="inference steps")
    params.add_argument("--guidance", type=float, help="guidance scale")
    params.add_argument("--seed", type=int, help="seed (0–4294967295; random when left out)")
    add_wait_options(params)

    upscale = commands.add_parser("upscale", parents=[common, params], help="upscale an image ×4")
    upscale.add_argument("--prompt", default="", help="what the image shows (optional)")
    upscale.add_argument("--noise-level", type=int, default=20, help="noise added to the input first (0–350)")
    upscale.set_defaults(run=lambda args, dirs, ui: _run(args, dirs, ui, "upscale", _upscale))

    inpaint = commands.add_parser("inpaint", parents=[common, params], help="repaint the white of a mask")
    inpaint.add_argument("--mask", type=Path, required=True, help="a PNG of the image's size: white is repainted")
    inpaint.add_argument("prompt")
    inpaint.add_argument("--n", type=int, default=1, help="images (1–8)")
    inpaint.set_defaults(run=lambda args, dirs, ui: _run(args, dirs, ui, "inpaint", _inpaint))

    extend = commands.add_parser("extend", parents=[common, params], help="grow the canvas and fill the new area")
    for side in ("left", "right", "top", "bottom"):
        extend.add_argument(f"--{side}", type=int, default=0, metavar="PX", help=f"pixels to add on the {side}")
    extend.add_argument("prompt")
    extend.add_argument("--n", type=int, default=1, help="images (1–8)")
    extend.set_defaults(run=lambda args, dirs, ui: _run(args, dirs, ui, "extend", _extend))


def _common(args: argparse.Namespace) -> dict[str, Any]:
    return {"negative_prompt": args.negative, "seed": args.seed, "steps": args.steps, "guidance": args.guidance}


def _upscale(jobs: JobService, source: SourceImage, args: argparse.Namespace) -> Job:
    return jobs.upscale(source, prompt=args.prompt, noise_level=args.noise_level, **_common(args))


def _inpaint(jobs: JobService, source: SourceImage, args: argparse.Namespace) -> Job:
    try:
        mask = args.mask.read_bytes()
    except OSError as exc:
        raise UserError(f"The mask {args.mask} cannot be read ({exc.strerror or exc}).") from None
    return jobs.inpaint(source, mask, args.prompt, images=args.n, **_common(args))


def _extend(jobs: JobService, source: SourceImage, args: argparse.Namespace) -> Job:
    sides = {side: getattr(args, side) for side in ("left", "right", "top", "bottom")}
    return jobs.extend(source, prompt=args.prompt, images=args.n, **sides, **_common(args))


def _run(
    args: argparse.Namespace,
    dirs: AppDirs,
    ui: Any,
    what: str,
    send: Callable[[JobService, SourceImage, argparse.Namespace], Job],
) -> int:
    from app.cli import _open, finish_sent

    workspace = _open(args, dirs, ui)
    try:
        source = SourceImage.from_file(args.png, workspace.library)
        ui.progress(0, 1, f"Sending the {what} of {args.png.name} to {workspace.target.name}")
        job = send(workspace.jobs, source, args)
        return finish_sent(args, workspace, ui, [job])
    finally:
        workspace.close()

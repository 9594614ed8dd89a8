"""The command-line client, on the same services as the app.

    python -m app [--profile P] [--region R] [--endpoint-url URL] [--deployment D] COMMAND …
    generate "prompt" [--negative T --steps N --guidance G --size WxH --n N --seed S] [--wait] [--out DIR] [--json]
                      on an SDXL endpoint also --sampler K_EULER … --style-preset origami …
                      --wait gives up after --timeout SECONDS (default 3600) with exit code 124
    batch FILE        one prompt per line, or JSON objects (JSONL); the options above apply to every line
                      generate and batch ask above 50 images (or need --yes) and refuse above 1000 jobs
                      generate and batch take --style NAME, and expand {a|b} and __name__ (--random N: N picks)
    sweep "prompt" --x seed=1,2,3 [--y guidance=5,7.5] [--z …] [--style NAME] [--out DIR] [--yes]   a contact sheet
    styles [--import CSV] [--export CSV]   the styles, A1111's styles.csv in and out (app/cli_explore.py)
    jobs [--json]     the jobs in the library, refreshed from the active target when there is one
    resend ID… | resend --lost   send jobs again as new jobs (lost: the endpoint will never answer them)
    import PNG…       add PNGs to the library with their generation parameters
    rebuild-library   a damaged library: keep the damaged index aside, index the images on disk, then the bucket's jobs
    deploy [--instance-type T] [--max-instances N] [--yes]   the cloud side, as Settings → Deploy does
    teardown [--yes]  delete the deployment and all it holds (without --yes: show what that is)
    cost [--json]     what the deployment costs now, today, this month and per job
    stop-now [--yes] | keep-warm 15|30|60|off | max-instances N   the endpoint's instances (app/cli_cost.py)
    upscale PNG [--prompt T --noise-level N]      ×4 on the deployment's upscaler       (app/cli_tools.py)
    inpaint PNG --mask MASK.png "prompt" [--n N]  repaint the mask's white
    extend PNG --left/--right/--top/--bottom PX "prompt"   grow the canvas, fill it with the inpainting model
                      each takes --negative --steps --guidance --seed, and --wait --timeout --out DIR --json

Progress goes to stderr, results to stdout; a failure exits non-zero with a clear message.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import orjson

from app.cli_cost import add_commands as add_cost_commands
from app.cli_deploy import add_commands as add_deploy_commands
from app.cli_explore import add_commands as add_explore_commands
from app.cli_explore import add_options as add_explore_options
from app.cli_explore import confirmed, expanded
from app.cli_tools import add_commands as add_tool_commands
from app.services.errors import DiskFull, LibraryDamaged, UserError, is_no_room
from app.services.explore import CONFIRM_ABOVE, estimate
from app.services.files import atomic_copy
from app.services.jobs import MAX_BATCH, TrackerStatus, validate_request
from app.services.library import Library
from app.services.library.rebuild import damage, rebuild_library, target_for
from app.services.logs import setup_logging, stop_logging
from app.services.models import Job, JobState
from app.services.progress import Progress
from app.services.session import Session
from app.services.settings import AppDirs
from contract import CONTROL_CHARACTERS, GenerationRequest
from contract.families import SAMPLERS, STYLE_PRESETS

log = logging.getLogger(__name__)

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_TIMEOUT = 124  # as timeout(1): --wait gave up
EXIT_INTERRUPTED = 130
#: What data may not write raw to a terminal: the contract's control characters, and the line feeds and
#: tabs that would break a line of the listing into false rows or columns.
_UNPRINTABLE = re.compile(f"{CONTROL_CHARACTERS.pattern}|[\n\t]")
_OPTION_FIELDS = {
    "negative": "negative_prompt",
    "steps": "num_inference_steps",
    "guidance": "guidance_scale",
    "n": "num_images_per_prompt",
    "seed": "seed",
}


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    out, err = stdout or sys.stdout, stderr or sys.stderr
    parser = _parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exit_:
        return int(exit_.code or 0)
    ui = _Console(out, err)
    try:
        dirs = AppDirs.default().create()
    except OSError as exc:
        ui.error(f"The app's folders cannot be created ({exc}).")
        return EXIT_FAILED
    handler = setup_logging(dirs.log_dir)
    try:
        return args.run(args, dirs, ui)
    except UserError as exc:
        log.info("command failed: %s", exc)
        ui.error(str(exc))
        return EXIT_TIMEOUT if isinstance(exc, WaitTimedOut) else EXIT_FAILED
    except KeyboardInterrupt:
        ui.error("Stopped. Jobs already sent go on; `python -m app jobs` shows them.")
        return EXIT_INTERRUPTED
    except OSError as exc:  # a write outside the atomic ones (a folder, a log): a full disk is still said plainly
        if not is_no_room(exc):
            raise
        log.info("command failed: %s", exc)
        ui.error(str(DiskFull(exc.filename or dirs.data_dir)))
        return EXIT_FAILED
    finally:
        stop_logging(handler)


def _parser() -> argparse.ArgumentParser:
    # Long on purpose: one table of the commands and their options, read top to bottom like `--help`.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--profile", default=argparse.SUPPRESS, help="a named AWS profile (SSO profiles too)")
    common.add_argument("--region", default=argparse.SUPPRESS, help="the AWS region of the deployment")
    common.add_argument("--endpoint-url", default=argparse.SUPPRESS, help="send every AWS call here (the local cloud)")
    common.add_argument(
        "--deployment",
        default=argparse.SUPPRESS,
        help="the deployment to use: its name, simple-gen-ai-service/REPO for one made with the "
        "AWS guidance, or a saved target's name",
    )
    parser = argparse.ArgumentParser(
        prog="python -m app", parents=[common], description="Diffusion Desk on the command line."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    params = argparse.ArgumentParser(add_help=False)
    params.add_argument("--negative", help="negative prompt")
    params.add_argument("--steps", type=int, help="inference steps (1–150)")
    params.add_argument("--guidance", type=float, help="guidance scale (0–30)")
    params.add_argument("--size", type=_size, help="WIDTHxHEIGHT, multiples of 8 (default 512x512)")
    params.add_argument(
        "--n", type=int, help="images per prompt (1–8, fewer at large sizes: as many as the endpoint's GPU fits)"
    )
    params.add_argument("--seed", type=int, help="seed (0–4294967295; random when left out)")
    add_wait_options(params)
    add_explore_options(params)

    generate = commands.add_parser("generate", parents=[common, params], help="generate images from one prompt")
    generate.add_argument("prompt")
    batch = commands.add_parser("batch", parents=[common, params], help="generate from a file of prompts")
    batch.add_argument("file", type=Path)
    for command, run in ((generate, _generate), (batch, _batch)):
        command.add_argument(
            "--yes", action="store_true", help=f"send without asking, even above {CONFIRM_ABOVE} images"
        )
        command.add_argument("--sampler", help=f"an SDXL endpoint's sampler: {', '.join(SAMPLERS)}")
        command.add_argument("--style-preset", help=f"an SDXL endpoint's style preset: {', '.join(STYLE_PRESETS)}")
        command.set_defaults(run=run)
    jobs = commands.add_parser("jobs", parents=[common], help="list the jobs")
    jobs.add_argument("--json", action="store_true")
    jobs.set_defaults(run=_jobs)
    imports = commands.add_parser("import", parents=[common], help="import PNGs with their parameters")
    imports.add_argument("png", nargs="+", type=Path)
    imports.add_argument("--json", action="store_true")
    imports.set_defaults(run=_import)
    rebuild = commands.add_parser(
        "rebuild-library", parents=[common], help="rebuild a damaged library from its images and the bucket"
    )
    rebuild.set_defaults(run=_rebuild)
    resend = commands.add_parser(
        "resend", parents=[common], help="send jobs again as new jobs: those named, or every lost one"
    )
    resend.add_argument("ids", nargs="*", metavar="ID", help="the jobs to send again (see `jobs`)")
    resend.add_argument("--lost", action="store_true", help="every job the endpoint will never answer")
    resend.add_argument("--json", action="store_true")
    resend.set_defaults(run=_resend)
    add_explore_commands(commands, common, params)
    add_deploy_commands(commands, common)
    add_cost_commands(commands, common, _open)
    add_tool_commands(commands, common)
    return parser


def add_wait_options(params: argparse.ArgumentParser) -> None:
    """--wait, --timeout, --out and --json, as generate and the image tools take them."""
    params.add_argument("--wait", action="store_true", help="wait for the images")
    params.add_argument(
        "--timeout",
        type=_seconds,
        default=3600.0,
        metavar="SECONDS",
        help="with --wait: give up waiting after this long, exit code 124 (default 3600; the jobs go on)",
    )
    params.add_argument("--out", type=Path, help="copy every PNG here (implies --wait)")
    params.add_argument("--json", action="store_true", help="print the jobs as JSON")


def _size(text: str) -> tuple[int, int]:
    width, sep, height = text.lower().partition("x")
    try:
        if not sep:
            raise ValueError
        return int(width), int(height)
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 512x768, not {text!r}") from None


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"a timeout is a number of seconds above 0, not {text!r}")
    return value


def _fields(args: argparse.Namespace) -> dict[str, Any]:
    fields = {
        name: getattr(args, option) for option, name in _OPTION_FIELDS.items() if getattr(args, option) is not None
    }
    if args.size:
        fields["width"], fields["height"] = args.size
    return fields


def _generate(args: argparse.Namespace, dirs: AppDirs, ui: _Console) -> int:
    lines, extra = expanded(args, dirs, [("", validate_request({**_fields(args), "prompt": args.prompt}))])
    return _submit(args, dirs, ui, lines, extra)


def _batch(args: argparse.Namespace, dirs: AppDirs, ui: _Console) -> int:
    lines, extra = expanded(args, dirs, read_batch(args.file, _fields(args)))
    return _submit(args, dirs, ui, lines, extra)


def read_batch(path: Path, defaults: dict[str, Any]) -> list[tuple[str, GenerationRequest]]:
    """One request per non-blank line: a prompt, or a JSON object whose fields win over the options.

    Each comes with where it was read ("Line 3 of prompts.txt: "), for a message about it later.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"The batch file {path} cannot be read ({exc}).") from None
    requests = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("{"):
            try:
                data = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise UserError(f"Line {number} of {path.name} is not valid JSON ({exc}).") from None
            fields = {**defaults, **data} if isinstance(data, dict) else data
        else:
            fields = {**defaults, "prompt": line}
        where = f"Line {number} of {path.name}: "
        requests.append((where, validate_request(fields, where)))
    if not requests:
        raise UserError(f"The batch file {path.name} has no prompts.")
    return requests


def _open(args: argparse.Namespace, dirs: AppDirs, ui: _Console) -> Session:
    return Session.open(
        dirs,
        profile=getattr(args, "profile", None),
        region=getattr(args, "region", None),
        endpoint_url=getattr(args, "endpoint_url", None),
        deployment=getattr(args, "deployment", None),
        on_status=ui.status,
    )


def _submit(
    args: argparse.Namespace,
    dirs: AppDirs,
    ui: _Console,
    lines: list[tuple[str, GenerationRequest]],
    extra: dict[str, str] | None = None,
) -> int:
    workspace = _open(args, dirs, ui)
    try:
        # What the target's GPU cannot make is refused here, before any job is recorded or sent.
        requests = [validate_request(request, where, workspace.target.budget) for where, request in lines]
        if not _may_send(args, workspace, ui, requests):
            ui.note("Nothing sent.")
            return EXIT_FAILED
        ui.progress(
            0,
            len(requests),
            f"Sending {len(requests)} job{'s' if len(requests) != 1 else ''} to {workspace.target.name}",
        )
        jobs = workspace.jobs.submit_many(
            requests,
            progress=lambda p: ui.progress(round(p.fraction * len(requests)), len(requests), p.message),
            extra=extra,
            fields={"sampler": getattr(args, "sampler", None), "style_preset": getattr(args, "style_preset", None)},
        )
        return finish_sent(args, workspace, ui, jobs)
    finally:
        workspace.close()


def finish_sent(args: argparse.Namespace, workspace: Session, ui: _Console, jobs: list[Job]) -> int:
    """After a send: with --wait or --out wait for the jobs, copy their PNGs to --out, print them; the exit code
    (0 when every job is queued, or completed when waited for)."""
    if args.wait or args.out:
        jobs = _wait(workspace, [job.inference_id for job in jobs], ui, args.timeout)
    if args.out:
        _copy_images(jobs, args.out, ui)
    ui.done()
    ui.print_jobs(jobs, as_json=args.json)
    good = JobState.COMPLETED if (args.wait or args.out) else JobState.QUEUED
    return 0 if all(job.state == good for job in jobs) else EXIT_FAILED


def _may_send(args: argparse.Namespace, workspace: Session, ui: _Console, requests: list[GenerationRequest]) -> bool:
    """Above MAX_BATCH jobs, no; above CONFIRM_ABOVE images, only after saying how many, how long and what cost,
    and with --yes or a yes at the terminal."""
    if len(requests) > MAX_BATCH:
        raise UserError(
            f"This batch has {len(requests)} prompts; at most {MAX_BATCH} are sent at once: split it. Nothing was sent."
        )
    images = sum(request.num_images_per_prompt for request in requests)
    if images <= CONFIRM_ABOVE or args.yes:
        return True
    target = workspace.target
    guess = estimate(
        images,
        [job for job in workspace.library.jobs(limit=200) if job.target == target.name],
        instance_type=target.instance_type,
        region=target.region,
        prices=workspace.settings.prices,
    )
    ui.note(f"This batch sends {len(requests)} jobs: {guess.text()}.")
    return confirmed(ui, images, "batch")


class WaitTimedOut(UserError):
    """--wait gave up after --timeout seconds: the jobs go on."""


def _wait(workspace: Session, ids: list[str], ui: _Console, timeout: float | None = None) -> list[Job]:
    """Run the tracker's own loop until every job in `ids` is final, showing progress after each step;
    WaitTimedOut after `timeout` seconds."""
    tracker, library = workspace.tracker, workspace.library
    jobs: list[Job | None] = []

    def done() -> bool:
        jobs[:] = [library.get_job(i) for i in ids]
        # A job removed from the library meanwhile (in the app, say) is no longer waited for.
        finished = sum(1 for job in jobs if job is None or job.state.finished)
        latest = next((job.message for job in jobs if job and not job.state.finished), "")
        ui.progress(finished, len(ids), latest or "Done")
        return finished == len(ids)

    tracker.submitted()
    started = time.monotonic()
    if not tracker.run(until=done, deadline=None if timeout is None else started + timeout):
        left = sum(1 for job in jobs if job and not job.state.finished)
        raise WaitTimedOut(
            f"Stopped waiting after {_duration(time.monotonic() - started)} (--timeout): {left} of {len(ids)} "
            f"job{'s' if len(ids) != 1 else ''} not finished yet. They go on; `python -m app jobs` shows them."
        )
    return [job for job in jobs if job]


def _duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


def _copy_images(jobs: list[Job], out: Path, ui: _Console) -> None:
    """Copy every image to `out`, each whole or not at all; a full disk says how far it got."""
    sources = [
        (source, f"{job.inference_id}-{index}.png") for job in jobs for index, source in enumerate(job.image_paths)
    ]
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if is_no_room(exc):
            raise DiskFull(out.parent) from None
        raise UserError(f"The folder {out} cannot be made ({exc.strerror or exc}).") from None
    for copied, (source, name) in enumerate(sources):
        try:
            atomic_copy(source, out / name)
        except DiskFull as exc:
            raise UserError(
                f"{exc} {copied} of {len(sources)} images were copied to {out}; every one is in the library "
                "(`python -m app jobs` lists them)."
            ) from None
        ui.progress(copied + 1, len(sources), f"Copied to {out}")


def _resend(args: argparse.Namespace, dirs: AppDirs, ui: _Console) -> int:
    """Send the named jobs, or every lost one, again as new jobs with the same parameters and seed."""
    if not args.ids and not args.lost:
        raise UserError("Name the jobs to send again (their ids, from `jobs`), or give --lost.")
    workspace = _open(args, dirs, ui)
    try:
        ids = list(args.ids)
        if args.lost:
            workspace.tracker.refresh()  # what is lost is known after a look at the jobs and the endpoint
            lost = workspace.jobs.lost()
            ids += [job.inference_id for job in lost]
        if not ids:
            ui.note("No lost jobs: nothing to send again.")
            return 0
        ui.note(f"Sending {len(ids)} job{'s' if len(ids) != 1 else ''} again as new jobs.")
        jobs = workspace.jobs.resend(
            ids, progress=lambda p: ui.progress(round(p.fraction * len(ids)), len(ids), p.message)
        )
        ui.done()
        ui.print_jobs(jobs, as_json=args.json)
        return 0 if all(job.state == JobState.QUEUED for job in jobs) else EXIT_FAILED
    finally:
        workspace.close()


def _jobs(args: argparse.Namespace, dirs: AppDirs, ui: _Console) -> int:
    try:
        workspace = _open(args, dirs, ui)
    except LibraryDamaged:
        raise
    except UserError as exc:
        ui.note(f"Not refreshed: {exc}")
        library = Library(dirs.data_dir)
    else:
        workspace.tracker.refresh()  # jobs sent to an endpoint that is gone are lost
        library = workspace.library
    try:
        ui.print_jobs(library.jobs(), as_json=args.json)
    finally:
        library.close()
    return 0


def _import(args: argparse.Namespace, dirs: AppDirs, ui: _Console) -> int:
    library = Library(dirs.data_dir)
    failed, results = 0, []
    try:
        for path in args.png:
            try:
                result = library.import_png(path)
            except UserError as exc:
                ui.error(str(exc))
                failed += 1
                continue
            ui.note(result.message)
            results.append(
                {
                    "file": str(path),
                    "path": result.record.path,
                    "has_parameters": result.has_parameters,
                    "prompt": result.record.parameters.prompt,
                }
            )
    finally:
        library.close()
    if args.json:
        ui.out.write(json_text(results) + "\n")
    else:
        for item in results:
            ui.out.write(f"{terminal_text(item['path'])}\t{terminal_text(item['prompt'])}\n")
    return EXIT_FAILED if failed else 0


def _rebuild(args: argparse.Namespace, dirs: AppDirs, ui: _Console) -> int:
    """Rebuild a damaged library from the PNGs on disk, then add what the active target's bucket still knows."""
    found = damage(dirs.data_dir)
    if found is None:
        ui.note(f"The library in {dirs.data_dir} opens and is not damaged: nothing to rebuild.")
        return 0
    ui.note(f"The library index is damaged ({found.reason}); rebuilding it from the images in {dirs.data_dir}.")
    ui.note(rebuild_library(dirs.data_dir, target=target_for(dirs)).message)
    try:
        workspace = _open(args, dirs, ui)
    except UserError as exc:
        ui.note(f"Jobs in the bucket were not looked for: {exc}")
        return 0
    try:
        recovered = workspace.recover_jobs()
        ui.note(f"The bucket of {workspace.target.name} gave back {len(recovered)} more job(s).")
        if recovered:
            workspace.tracker.step()  # downloads what is finished; `jobs` goes on with the rest
            ui.print_jobs([workspace.library.get_job(job.inference_id) or job for job in recovered], as_json=False)
    finally:
        workspace.close()
    return 0


def terminal_text(text: str) -> str:
    """`text` with every control character, line feed and tab shown as an escape (`\\x1b`, `\\n`).

    Prompts, messages and file names come from PNGs and buckets others can write: printed raw, an
    `ESC ] 0;` retitles the terminal, `ESC [2J` clears it and `\\r` overwrites what was shown.
    """
    return _UNPRINTABLE.sub(lambda match: match.group().encode("unicode_escape").decode("ascii"), text)


def json_text(data: Any) -> str:
    """`data` as indented JSON; orjson escapes C0 controls, the console's stdout the rest (DEL, C1, bidi)."""
    return orjson.dumps(data, option=orjson.OPT_INDENT_2).decode()


class _Escaping:
    """A text stream that writes the contract's control characters as `\\uXXXX`, whoever writes to it.

    That form is visible in text and valid inside a JSON string (the only place JSON can hold them),
    so every command's stdout (results, listings, JSON) is safe on a terminal. Line feeds and tabs pass.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        return self._stream.write(CONTROL_CHARACTERS.sub(lambda match: f"\\u{ord(match.group()):04x}", text))

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return bool(getattr(self._stream, "isatty", lambda: False)())


def job_json(job: Job) -> dict[str, Any]:
    return {
        "inference_id": job.inference_id,
        "state": job.state.value,
        "message": job.message,
        "target": job.target,
        "created_at": job.created_at,
        "request": job.known_request(),
        "images": job.image_paths,
        "failure_reason": job.failure_reason,
        "origin": job.origin.value,
        "retry_of": job.retry_of,
        "family": job.family,
        "operation": job.operation,
        "parent_image": job.parent_image,
    }


class _Console:
    """Progress on stderr (a bar on a terminal), results on stdout."""

    def __init__(self, out: TextIO, err: TextIO) -> None:
        self.out: TextIO = _Escaping(out)  # type: ignore[assignment]
        self.err = err
        self.tty = bool(getattr(err, "isatty", lambda: False)())
        self._last = ""
        self._bar = False

    def progress(self, step: int, total: int, message: str) -> None:
        if self.tty:
            filled = int(24 * step / total) if total else 24
            shown = terminal_text(message)[:60]
            self.err.write(f"\r[{'#' * filled}{'.' * (24 - filled)}] {step}/{total} {shown:<60}")
            self.err.flush()
            self._bar = True
        elif message != self._last:
            self.err.write(f"{step}/{total} {terminal_text(message)}\n")
        self._last = message

    @property
    def interactive(self) -> bool:
        """Whether someone can answer a question (stdin and stderr are terminals)."""
        return self.tty and sys.stdin.isatty()

    def ask(self, question: str) -> str:
        self.done()
        self.err.write(question)
        self.err.flush()
        return sys.stdin.readline()

    def event(self, event: Progress) -> None:
        """One line of a long operation: `[ 41%] Building the model and the endpoint: Stage Build: InProgress`."""
        percent = "    " if event.fraction is None else f"{event.fraction * 100:3.0f}%"
        self.note(f"[{percent}] {event.step}: {event.message}" if event.message else f"[{percent}] {event.step}")

    def status(self, status: TrackerStatus) -> None:
        if status.notice or not status.online:
            self.note(status.message)

    def note(self, message: str) -> None:
        self.done()
        self.err.write(terminal_text(message) + "\n")

    def error(self, message: str) -> None:
        self.note(f"error: {message}")

    def done(self) -> None:
        if self._bar:
            self.err.write("\n")
            self._bar = False

    def print_jobs(self, jobs: list[Job], *, as_json: bool) -> None:
        if as_json:
            self.out.write(json_text([job_json(job) for job in jobs]) + "\n")
            return
        for job in jobs:
            detail = " ".join(job.image_paths) if job.image_paths else job.message
            prompt = terminal_text(job.request.prompt)[:40]
            self.out.write(f"{terminal_text(job.inference_id)}\t{job.state.value}\t{prompt}\t{terminal_text(detail)}\n")
        self.out.flush()

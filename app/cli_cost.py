"""`cost` and its controls on the command line: the panel's own service calls.

    python -m app cost [--json]           now, today, this month, per job; what each figure comes from
    python -m app stop-now [--yes]        scale in to zero at once (says what is waiting first)
    python -m app keep-warm 15|30|60|off [--endpoint main|upscaler|inpainting|all]...
                                          at least one instance for that long on each endpoint named (the
                                          main one unless told; off: every endpoint unless told), ended by AWS
    python -m app max-instances N         at most N instances (1–20); after stop-now this resumes

Each control prints when AWS applied it (waiting up to --wait seconds, 60 by default).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import orjson

from app.services.settings import AppDirs

EXIT_REFUSED = 2
#: `keep-warm --endpoint`'s names (the report's) and the endpoint role each means.
ENDPOINTS = {"main": "main", "upscaler": "upscale", "inpainting": "inpaint"}


def add_commands(commands: Any, common: argparse.ArgumentParser, open_session: Any) -> None:
    """The cost commands; `open_session(args, dirs, ui)` is the CLI's own Session.open."""
    wait = argparse.ArgumentParser(add_help=False)
    wait.add_argument("--wait", type=float, default=60.0, help="seconds to wait for AWS to apply it (default 60)")
    cost = commands.add_parser("cost", parents=[common], help="what the deployment costs now, today, this month")
    cost.add_argument("--json", action="store_true")
    cost.set_defaults(run=lambda args, dirs, ui: _cost(args, dirs, ui, open_session))
    stop = commands.add_parser("stop-now", parents=[common, wait], help="scale in to zero at once")
    stop.add_argument("--yes", action="store_true", help="do not ask, even with jobs waiting")
    stop.set_defaults(run=lambda args, dirs, ui: _stop(args, dirs, ui, open_session))
    warm = commands.add_parser("keep-warm", parents=[common, wait], help="keep one instance for 15, 30 or 60 minutes")
    warm.add_argument("minutes", choices=["15", "30", "60", "off"])
    warm.add_argument(
        "--endpoint",
        action="append",
        choices=[*ENDPOINTS, "all"],
        help="which endpoint to keep warm, again for more than one (default: main; off: every endpoint); "
        "each companion is its own GPU, billed while warm",
    )
    warm.set_defaults(run=lambda args, dirs, ui: _keep_warm(args, dirs, ui, open_session))
    most = commands.add_parser("max-instances", parents=[common, wait], help="the most instances the endpoint runs")
    most.add_argument("count", type=int)
    most.set_defaults(run=lambda args, dirs, ui: _max(args, dirs, ui, open_session))


def _cost(args: argparse.Namespace, dirs: AppDirs, ui: Any, open_session: Any) -> int:
    from app.services.cost import cost_report

    session = open_session(args, dirs, ui)
    try:
        report = cost_report(session.connection, session.target, overrides=session.settings.prices)
    finally:
        session.close()
    if args.json:
        ui.out.write(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        ui.out.write("\n".join(report.lines()) + "\n")
    return 0


def _stop(args: argparse.Namespace, dirs: AppDirs, ui: Any, open_session: Any) -> int:
    from app.services.cost import stop_now, waiting

    session = open_session(args, dirs, ui)
    try:
        backlog = waiting(session.connection, session.target)
        if backlog:
            ui.note(
                f"{backlog} job{'s are' if backlog != 1 else ' is'} waiting or running on {session.target.name}: "
                "after Stop now they wait in the queue (until their time to live) and run only once the maximum "
                "instances is raised again (`max-instances N`)."
            )
            if not args.yes and not _confirmed(ui):
                ui.note("Nothing was changed.")
                return EXIT_REFUSED
        return _follow(session, stop_now(session.connection, session.target), args.wait, ui)
    finally:
        session.close()


def _keep_warm(args: argparse.Namespace, dirs: AppDirs, ui: Any, open_session: Any) -> int:
    from app.services.cost import end_keep_warm, keep_warm
    from app.services.cost.report import role_label

    session = open_session(args, dirs, ui)
    try:
        target = session.target
        chosen = args.endpoint or ([] if args.minutes == "off" else ["main"])
        roles = None if not chosen or "all" in chosen else [ENDPOINTS[name] for name in chosen]
        if args.minutes == "off":
            control = end_keep_warm(session.connection, target, roles)
        else:
            control = keep_warm(session.connection, target, int(args.minutes), roles or list(target.endpoints()))
            which = ""
            if len(target.endpoints()) > 1:
                kept = [role_label(role) for role, name in target.endpoints().items() if name in control.endpoints]
                which = f" ({', '.join(kept)})"
            ui.note(
                f"Kept warm until {control.until:%H:%M} UTC{which}; AWS ends it by itself, even with the app closed."
            )
        return _follow(session, control, args.wait, ui)
    finally:
        session.close()


def _max(args: argparse.Namespace, dirs: AppDirs, ui: Any, open_session: Any) -> int:
    from app.services.cost import set_max_instances

    session = open_session(args, dirs, ui)
    try:
        return _follow(session, set_max_instances(session.connection, session.target, args.count), args.wait, ui)
    finally:
        session.close()


def _follow(session: Any, control: Any, wait: float, ui: Any) -> int:
    """Print when AWS applied the control, asking every two seconds for up to `wait` seconds."""
    from app.services.cost import applied

    deadline = time.monotonic() + wait
    while True:
        state = applied(session.connection, session.target, control)
        if state.done or time.monotonic() >= deadline:
            ui.out.write(state.message + "\n")
            return 0
        time.sleep(min(2.0, max(0.0, deadline - time.monotonic())))


def _confirmed(ui: Any) -> bool:
    if not ui.interactive:
        ui.error("Nothing was changed: add --yes to stop with jobs waiting.")
        return False
    return ui.ask("Stop now? [y/N] ").strip().lower() in ("y", "yes")

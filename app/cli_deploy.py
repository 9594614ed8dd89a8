"""`deploy` and `teardown` on the command line: the Deploy tab's own deployer, its progress on stderr.

    python -m app [--profile P] [--region R] [--endpoint-url URL] deploy [--deployment NAME] [--model ID]
                  [--instance-type T] [--max-instances N] [--monthly-limit USD] [--alert-email ADDRESS]
                  [--upscaler [ID] | --no-upscaler] [--inpainting [ID] | --no-inpainting]
                  [--marketplace-subscribed] [--yes]
    python -m app [--profile P] [--region R] [--endpoint-url URL] teardown [--deployment NAME] --yes

Deploy needs an alert address (--alert-email, or the one saved by an earlier deploy): the endpoint stack's
budget (--monthly-limit, default 50 USD) and its long-run alarm e-mail it. Deploy asks before it creates
billable resources (unless --yes). `--upscaler` and `--inpainting` add a companion endpoint (the flag alone: the
default model), `--no-upscaler` / `--no-inpainting` remove it; without either flag the deployment keeps the
companion it has. A Marketplace model deploys only with --marketplace-subscribed. Teardown prints everything it
would delete and deletes it only with --yes. Each line of progress names its step, and the pipeline's stages as
CodePipeline names them; a failure exits 1 with the failing step's words.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from collections.abc import Generator
from typing import Any

from app.services.deploy.bundle import DEFAULT_COMPANIONS, companion_label
from app.services.errors import UserError
from app.services.progress import Progress
from app.services.settings import AppDirs
from contract.families import MARKETPLACE_FEE, family_for_model

EXIT_REFUSED = 2  # as for a usage error: nothing was done
#: `diffusion-desk-<name>-pipeline` must be a CloudFormation stack name: letters, digits, hyphens, 128 at most.
DEPLOYMENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,99}")


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """The two sub-commands, each run as the CLI runs a command: run(args, dirs, console)."""
    deploy = commands.add_parser(
        "deploy", parents=[common], help="deploy the cloud side into the account (creates billable resources)"
    )
    deploy.add_argument(
        "--model", metavar="ID", help="the main JumpStart model (text-to-image or SDXL 1.0; default: config.toml's)"
    )
    deploy.add_argument("--instance-type", help="the endpoint's instance type (default: config.toml's)")
    deploy.add_argument("--max-instances", type=int, help="the most instances the endpoint scales out to")
    deploy.add_argument(
        "--monthly-limit", type=float, metavar="USD", help="the budget's monthly limit (default: 50, or the saved one)"
    )
    deploy.add_argument(
        "--alert-email",
        metavar="ADDRESS",
        help="where the budget's alerts (80 %% and 100 %% of the limit) and the long-run alarm go",
    )
    for flag, family, what in (("upscaler", "upscale", "×4 upscaling"), ("inpainting", "inpaint", "inpainting")):
        group = deploy.add_mutually_exclusive_group()
        group.add_argument(
            f"--{flag}",
            nargs="?",
            const=DEFAULT_COMPANIONS[family],
            metavar="ID",
            help=f"also deploy a {what} endpoint, scaling to zero on its own (default {DEFAULT_COMPANIONS[family]})",
        )
        group.add_argument(f"--no-{flag}", action="store_true", help=f"remove the {what} endpoint")
    deploy.add_argument(
        "--marketplace-subscribed",
        action="store_true",
        help="the account is subscribed to the AWS Marketplace listing of the chosen model (SDXL 1.0 needs it)",
    )
    deploy.add_argument("--yes", action="store_true", help="do not ask before creating billable resources")
    deploy.set_defaults(run=_deploy)
    teardown = commands.add_parser("teardown", parents=[common], help="delete a deployment and all it holds")
    teardown.add_argument("--yes", action="store_true", help="delete what the plan lists (without it: only show it)")
    teardown.set_defaults(run=_teardown)


def _deployer(args: argparse.Namespace, dirs: AppDirs) -> Any:
    from app.services.cloud import CredentialSource
    from app.services.deploy import Deployer
    from app.services.session import Session

    check_deployment_name(getattr(args, "deployment", None))
    _, settings, library = Session.read(dirs)
    library.close()
    session = Session(dirs, settings, library, owns_library=False, endpoint_url=getattr(args, "endpoint_url", None))
    profile = getattr(args, "profile", None)
    source = CredentialSource("profile", profile=profile) if profile else None
    connection = session.open_connection(source, region=getattr(args, "region", None))
    return Deployer(
        connection, dirs, update_settings=session.update_settings, deployment=getattr(args, "deployment", None)
    )


def companion_flags(args: argparse.Namespace) -> dict[str, str | None]:
    """What the flags say of each companion: a model id to deploy, None to remove it; a family not named is kept."""
    told: dict[str, str | None] = {}
    for flag, family in (("upscaler", "upscale"), ("inpainting", "inpaint")):
        if getattr(args, f"no_{flag}", False):
            told[family] = None
        elif getattr(args, flag, None) is not None:
            told[family] = getattr(args, flag).strip()
    return told


def apply_companions(base: dict[str, str], told: dict[str, str | None]) -> dict[str, str]:
    """The companions to deploy: `base` (what the deployment has) changed as the flags say."""
    chosen = dict(base)
    for family, model_id in told.items():
        if model_id is None:
            chosen.pop(family, None)
        else:
            chosen[family] = model_id
    return chosen


def _deploy(args: argparse.Namespace, dirs: AppDirs, ui: Any) -> int:
    from app.services.deploy import check_guard, check_models, load_options

    options = load_options(dirs)  # the saved choices, read before any connection is opened
    told = companion_flags(args)
    options = dataclasses.replace(
        options,
        model_id=(args.model or options.model_id).strip(),
        # Flags given: checked now, then applied to what the deployment has once it is read.
        companions=apply_companions(options.companions or {}, told) if told else None,
        marketplace_subscribed=args.marketplace_subscribed,
        instance_type=args.instance_type or options.instance_type,
        max_instances=options.max_instances if args.max_instances is None else args.max_instances,
        monthly_limit=options.monthly_limit if args.monthly_limit is None else args.monthly_limit,
        alert_email=options.alert_email if args.alert_email is None else args.alert_email.strip(),
    )
    if not options.alert_email:
        raise UserError(
            "Deploy needs --alert-email ADDRESS: the deployment's budget and its long-run alarm e-mail it.",
            hint="Nothing was deployed.",
        )
    check_guard(options)
    check_models(options)
    deployer = _deployer(args, dirs)
    deployed = deployer.deployed_companions()
    base = deployed if deployed is not None else load_options(dirs).companions or {}
    options = dataclasses.replace(options, companions=apply_companions(base, told))
    name = deployer.config().deployment if deployer.deployment is None else deployer.deployment
    family = family_for_model(options.model_id)
    fee = f", {MARKETPLACE_FEE}," if family is not None and family.marketplace else ""
    question = (
        f"Deploy {name!r} into {deployer.region}: {options.model_id} on a SageMaker asynchronous endpoint on "
        f"{options.instance_type} (0 to {options.max_instances} instances, billed per instance-hour{fee} while it "
        "runs; "
        "it scales to zero when idle)"
        + "".join(
            f", {_a(companion_label(family))} endpoint ({model_id} on "
            f"{options.companion_instance_types.get(family) or options.instance_type}, scaling to zero on its own)"
            for family, model_id in options.companions.items()
        )
        + ", a CodePipeline with CodeBuild steps, S3 buckets, SNS topics and two Lambda functions. "
        f"A budget of {options.monthly_limit:g} USD a month e-mails {options.alert_email} at 80 % and 100 % of it."
    )
    if not _confirmed(args.yes, question, ui):
        return EXIT_REFUSED
    target = _follow(deployer.deploy(options), ui)
    ui.note(f"Deployed: {target.name} (endpoint {target.endpoint_name}, bucket {target.bucket}) is the active target.")
    return 0


def _teardown(args: argparse.Namespace, dirs: AppDirs, ui: Any) -> int:
    deployer = _deployer(args, dirs)
    plan = deployer.plan_teardown()
    ui.note(plan.describe())
    if plan.empty:
        return 0
    if not args.yes:
        ui.error("Nothing was deleted: run the same command with --yes to delete what is listed above.")
        return EXIT_REFUSED
    _follow(deployer.teardown(plan), ui)
    return 0


def _confirmed(yes: bool, question: str, ui: Any) -> bool:
    ui.note(question)
    if yes:
        return True
    if not ui.interactive:
        ui.error("Nothing was created: add --yes to deploy without being asked.")
        return False
    answer = ui.ask("Go on? [y/N] ")
    if answer.strip().lower() not in ("y", "yes"):
        ui.note("Nothing was created.")
        return False
    return True


def _follow(events: Generator[Progress, None, Any], ui: Any) -> Any:
    """Print every event (step, percent, message) until the operation returns its result."""
    while True:
        try:
            event = next(events)
        except StopIteration as stop:
            return stop.value
        ui.event(event)


def _a(noun: str) -> str:
    return f"{'an' if noun[:1] in 'AEIOU' else 'a'} {noun}"


def check_deployment_name(name: str | None) -> None:
    """A deployment name that can name CloudFormation stacks (UserError otherwise), before anything is asked or sent."""
    if name is not None and not DEPLOYMENT_NAME.fullmatch(name):
        raise UserError(
            f"--deployment {name!r} cannot name a deployment: use letters, digits and hyphens, starting with a letter "
            "or digit (it becomes part of the CloudFormation stack names, at most 100 characters)."
        )

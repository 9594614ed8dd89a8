"""The cloud side's source as the deployer ships it: the user's config.toml and the source bundle.

The bundle holds infra/, lambdas/ and contract/ (CodeBuild synthesizes the endpoint stack from
them) with infra/config.toml replaced by the user's copy. In a source checkout those folders sit
at the repository root; in the installed app PyInstaller puts copies under `cloud-source/`.
"""

from __future__ import annotations

import sys
import tomllib
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import tomlkit

from app.services.errors import UserError
from app.services.settings import AppDirs, write_atomically

if TYPE_CHECKING:
    from infra.config import Config

SOURCE_FOLDERS = ("infra", "lambdas", "contract")
CONFIG_ARCNAME = "infra/config.toml"
#: What never goes into the bundle: caches, synthesis output, tests.
_SKIPPED_PARTS = {"__pycache__", "cdk.out", ".pytest_cache", ".mypy_cache", "tests"}
_SKIPPED_SUFFIXES = {".pyc", ".pyo"}
_ZIP_TIME = (2020, 1, 1, 0, 0, 0)  # fixed, so the same files always make the same bundle
#: The companion endpoints a deployment may have, by family name, and the model each deploys unless told another.
DEFAULT_COMPANIONS = {
    "upscale": "model-upscaling-stabilityai-stable-diffusion-x4-upscaler-fp16",
    "inpaint": "model-inpainting-stabilityai-stable-diffusion-2-inpainting-fp16",
}
#: config.toml's tables of the companions: `[companions.<family>]` with id, version and instance_type.
COMPANIONS_TABLE = "companions"


@dataclass(frozen=True, slots=True)
class DeployOptions:
    """What the user picks in Settings → Deploy; the rest of config.toml keeps its values.

    The budget guard: a monthly limit in USD and the address its alerts go to ("" deploys no guard;
    the Deploy tab and the CLI ask for one). The companions: family name ("upscale", "inpaint") →
    JumpStart model id, each its own endpoint; None keeps those the deployment has (Update, or the
    CLI without --upscaler/--inpainting), {} deploys none. A companion runs on the main instance
    type unless `companion_instance_types` names another. A Marketplace model deploys only when
    the user says they are subscribed to its listing (`marketplace_subscribed`).
    """

    model_id: str
    instance_type: str
    max_instances: int
    monthly_limit: float = 50.0
    alert_email: str = ""
    companions: Mapping[str, str] | None = None
    companion_instance_types: Mapping[str, str] = field(default_factory=dict)
    marketplace_subscribed: bool = False


def companion_label(family_name: str) -> str:
    """A companion's name as the Deploy tab and the refusals say it ("×4 upscaler", "Inpainting")."""
    return {"upscale": "×4 upscaler", "inpaint": "Inpainting"}.get(family_name, family_name)


def companion_models(family_name: str) -> tuple[str, ...]:
    """The JumpStart models the contract knows for a companion family (its exact ids, not its prefixes)."""
    from contract.families import family_named

    return tuple(m for m in family_named(family_name).model_ids if not m.endswith("-"))


#: A model of each family, as the refusals name it.
_A_MODEL_OF = {
    "text-to-image": "a text-to-image model",
    "sdxl": "an SDXL model",
    "upscale": "an upscaling model",
    "inpaint": "an inpainting model",
}
_UNSPOKEN = "not a model the app can send requests to"


def check_models(options: DeployOptions) -> None:
    """UserError when the main model or a companion is not of its family; no network, no disk."""
    from contract.families import SDXL, TEXT_TO_IMAGE, family_for_model, family_named

    main = family_for_model(options.model_id.strip())
    if main not in (TEXT_TO_IMAGE, SDXL):
        what = _A_MODEL_OF.get(main.name, main.label) if main else _UNSPOKEN
        raise UserError(
            f"{options.model_id} is {what}: the main model makes images from a prompt "
            "(a model-txt2img-… model or SDXL 1.0).",
            hint="Upscaling and inpainting models deploy as companions (the ×4 upscaler and Inpainting boxes, "
            "or --upscaler / --inpainting). Nothing was deployed.",
        )
    for family_name, model_id in (options.companions or {}).items():
        if family_name not in DEFAULT_COMPANIONS:
            raise UserError(
                f"There is no companion {family_name!r}: a deployment may add "
                + " and ".join(f"{companion_label(f)} ({f})" for f in DEFAULT_COMPANIONS)
                + ".",
                hint="Nothing was deployed.",
            )
        wanted = family_named(family_name)
        found = family_for_model(model_id.strip())
        if found is not wanted:
            what = f"{_A_MODEL_OF.get(found.name, found.label)}, not {_A_MODEL_OF[wanted.name]}" if found else _UNSPOKEN
            known = ", ".join(companion_models(family_name))
            raise UserError(
                f"{model_id} is {what}: the {companion_label(family_name)} companion takes {known}.",
                hint="Nothing was deployed.",
            )


def saved_companions(text: str) -> dict[str, str]:
    """The companions a config.toml text names (family → model id); {} for none or a damaged file."""
    try:
        tables = tomllib.loads(text).get(COMPANIONS_TABLE) or {}
    except tomllib.TOMLDecodeError:
        return {}
    return {
        family: str(table["id"])
        for family, table in tables.items()
        if isinstance(table, dict) and isinstance(table.get("id"), str) and table["id"].strip()
    }


def saved_companion_versions(text: str) -> dict[str, str]:
    """The versions config.toml pins for its companions (family → version)."""
    try:
        tables = tomllib.loads(text).get(COMPANIONS_TABLE) or {}
    except tomllib.TOMLDecodeError:
        return {}
    return {family: str(table.get("version") or "*") for family, table in tables.items() if isinstance(table, dict)}


def saved_companion_types(text: str) -> dict[str, str]:
    """The instance types config.toml gives its companions (family → instance type), where it gives one."""
    try:
        tables = tomllib.loads(text).get(COMPANIONS_TABLE) or {}
    except tomllib.TOMLDecodeError:
        return {}
    return {
        family: table["instance_type"].strip()
        for family, table in tables.items()
        if isinstance(table, dict) and isinstance(table.get("instance_type"), str) and table["instance_type"].strip()
    }


def guard_problems(options: DeployOptions, *, email_required: bool = True) -> dict[str, str]:
    """What is wrong with the budget guard's fields, by field ("monthly_limit", "alert_email"); {} when nothing.

    No network and no disk: the Deploy tab checks its fields with it on the GUI thread.
    """
    from infra.config import email_problem, limit_problem  # only deploying needs the cloud side's config types

    problems = {}
    if problem := limit_problem(options.monthly_limit):
        problems["monthly_limit"] = problem
    if (options.alert_email.strip() or email_required) and (problem := email_problem(options.alert_email)):
        problems["alert_email"] = problem
    return problems


def check_guard(options: DeployOptions, *, email_required: bool = True) -> None:
    """UserError naming every bad guard field, before anything is written or deployed."""
    problems = guard_problems(options, email_required=email_required)
    if problems:
        raise UserError(" ".join(problems.values()), hint="Nothing was deployed.")


def _bundle_root() -> Path:
    frozen = getattr(sys, "_MEIPASS", None)
    return Path(frozen) if frozen else Path(__file__).resolve().parents[3]


def cloud_source_dir() -> Path:
    """The folder holding infra/, lambdas/ and contract/ as source files."""
    root = _bundle_root()
    return root / "cloud-source" if getattr(sys, "_MEIPASS", None) else root


def templates_dir() -> Path:
    """resources/templates: the pre-synthesized source and pipeline stacks and the CDK bootstrap."""
    return _bundle_root() / "resources" / "templates"


def user_config_path(dirs: AppDirs) -> Path:
    return dirs.config_dir / "cloud" / "config.toml"


def read_config_text(dirs: AppDirs, source_dir: Path | None = None) -> str:
    """The user's config.toml, or the shipped default before the first deploy."""
    path = user_config_path(dirs)
    if path.is_file():
        return path.read_text(encoding="utf-8")
    return ((source_dir or cloud_source_dir()) / CONFIG_ARCNAME).read_text(encoding="utf-8")


def parse(text: str) -> Config:
    """Validate config.toml text; a bad value becomes a UserError naming the key."""
    from infra.config import ConfigError, parse_config  # only deploying needs the cloud side's config types

    try:
        return parse_config(tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"The cloud settings file is not valid TOML ({exc}).", hint="Fix or delete it.") from None
    except ConfigError as exc:
        raise UserError(f"The cloud settings cannot be used: {exc}.") from None


def load_options(dirs: AppDirs, source_dir: Path | None = None) -> DeployOptions:
    """The model, instance type and max instances that the next deploy would use."""
    text = read_config_text(dirs, source_dir)
    config = parse(text)
    return DeployOptions(
        config.model.id,
        config.model.instance_type,
        config.endpoint.max_instances,
        float(config.guard.monthly_limit),
        config.guard.alert_email,
        companions=saved_companions(text),
        companion_instance_types=saved_companion_types(text),
    )


def configure(
    dirs: AppDirs, options: DeployOptions, region: str, source_dir: Path | None = None, *, deployment: str | None = None
) -> tuple[str, Config]:
    """Write the user's choices (and `deployment`, when given) into their config.toml, comments kept.

    Returns its text and Config. A bad guard field is refused (UserError) before anything is written.
    """
    check_guard(options, email_required=False)
    document = tomlkit.parse(read_config_text(dirs, source_dir))
    if deployment is not None:
        document["deployment"] = deployment
    document["region"] = region
    document["model"]["id"] = options.model_id.strip()
    document["model"]["instance_type"] = options.instance_type.strip()
    document["endpoint"]["max_instances"] = int(options.max_instances)
    if "guard" not in document:  # a config.toml saved before the guard existed
        document["guard"] = tomlkit.table()
    document["guard"]["monthly_limit"] = float(options.monthly_limit)
    document["guard"]["alert_email"] = options.alert_email.strip()
    if options.companions is not None:
        _write_companions(document, options)
    text = tomlkit.dumps(document)
    config = parse(text)
    write_atomically(user_config_path(dirs), text.encode("utf-8"))
    return text, config


def _write_companions(document: tomlkit.TOMLDocument, options: DeployOptions) -> None:
    """One `[companions.<family>]` table per chosen companion; an unchosen one goes.

    A table kept for the same model keeps its version, its instance type (unless one is given: the endpoint's
    name holds it, so a new type replaces the endpoint) and its `[companions.<family>.environment]`. A table
    the user's copy had for another model starts again from version "*" (the preflight pins the newest usable
    one) on the given instance type, else the main one's."""
    before = document.get(COMPANIONS_TABLE) or {}
    chosen = {family: model_id.strip() for family, model_id in (options.companions or {}).items()}
    if not chosen:
        if COMPANIONS_TABLE in document:
            del document[COMPANIONS_TABLE]
        return
    tables = tomlkit.table(is_super_table=True)
    for family, model_id in sorted(chosen.items(), key=lambda item: list(DEFAULT_COMPANIONS).index(item[0])):
        old = before.get(family) or {}
        same = old.get("id") == model_id
        given = (options.companion_instance_types.get(family) or "").strip()
        table = tomlkit.table()
        table["id"] = model_id
        table["version"] = str(old.get("version") or "*") if same else "*"
        kept = str(old.get("instance_type") or "").strip() if same else ""
        table["instance_type"] = given or kept or options.instance_type.strip()
        if same and isinstance(old.get("environment"), dict):
            environment = tomlkit.table()
            for name, value in old["environment"].items():
                environment[name] = str(value)
            table["environment"] = environment
        tables[family] = table
    document[COMPANIONS_TABLE] = tables


def pin_companion_versions(
    dirs: AppDirs, versions: Mapping[str, str], source_dir: Path | None = None
) -> tuple[str, Config]:
    """Write concrete JumpStart versions into the user's `[companions.<family>]` tables; returns text and Config."""
    document = tomlkit.parse(read_config_text(dirs, source_dir))
    for family, version in versions.items():
        document[COMPANIONS_TABLE][family]["version"] = version
    text = tomlkit.dumps(document)
    config = parse(text)
    write_atomically(user_config_path(dirs), text.encode("utf-8"))
    return text, config


def pin_model_version(dirs: AppDirs, version: str, source_dir: Path | None = None) -> tuple[str, Config]:
    """Write a concrete JumpStart model version into the user's config.toml; returns its text and Config."""
    document = tomlkit.parse(read_config_text(dirs, source_dir))
    document["model"]["version"] = version
    text = tomlkit.dumps(document)
    config = parse(text)
    write_atomically(user_config_path(dirs), text.encode("utf-8"))
    return text, config


def bundle_files(config_text: str, source_dir: Path | None = None) -> Iterator[tuple[str, bytes]]:
    """(path in the bundle, content) for every source file, with the user's config.toml."""
    root = source_dir or cloud_source_dir()
    for folder in SOURCE_FOLDERS:
        base = root / folder
        if not base.is_dir():
            raise UserError(
                f"The app's copy of the cloud code is incomplete: {base} is missing.", hint="Reinstall the app."
            )
        for path in sorted(base.rglob("*")):
            relative = path.relative_to(root)
            if not path.is_file() or _SKIPPED_PARTS.intersection(relative.parts) or path.suffix in _SKIPPED_SUFFIXES:
                continue
            name = relative.as_posix()
            yield name, config_text.encode("utf-8") if name == CONFIG_ARCNAME else path.read_bytes()


def build_bundle(config_text: str, dest: Path, source_dir: Path | None = None) -> Path:
    """Write source.zip to `dest`; the same files always give the same bytes."""
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in bundle_files(config_text, source_dir):
            info = zipfile.ZipInfo(name, _ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return dest

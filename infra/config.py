"""The typed form of infra/config.toml, loaded once and passed to the stacks as props."""

from __future__ import annotations

import re
import tomllib
from dataclasses import MISSING, dataclass, field
from pathlib import Path

from contract import COMPANION_PARAMS, ssm_prefix
from contract.families import TEXT_TO_IMAGE, family_for_model

CONFIG_PATH = Path(__file__).with_name("config.toml")
SOURCE_KINDS = ("s3", "codecommit")
ARCHITECTURES = ("arm64", "x86_64")
#: Node.js majors that aws/codebuild/standard:7.0 offers (18, 20, 22, 24) and the CDK CLI still supports.
NODE_VERSIONS = ("22", "24")
#: An alarm's evaluation periods times its period may not exceed one day (CloudWatch), at one-minute periods.
MAX_IN_SERVICE_HOURS = 24
#: One address: no spaces, one @, a dotted domain (what AWS Budgets and SNS e-mail subscriptions take).
_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")
#: The companion models a deployment may add beside its main one, by family name (`[companions.<family>]`).
COMPANION_FAMILIES = tuple(COMPANION_PARAMS)


class ConfigError(ValueError):
    """config.toml holds a value the cloud side cannot use; the message names the key."""


@dataclass(frozen=True, slots=True)
class ModelConfig:
    id: str
    version: str
    instance_type: str
    environment: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EndpointConfig:
    max_instances: int
    max_concurrent_invocations_per_instance: int
    backlog_per_instance: float
    scale_in_cooldown: int
    scale_out_cooldown: int


@dataclass(frozen=True, slots=True)
class BucketConfig:
    expire_days: int
    versioned: bool


@dataclass(frozen=True, slots=True)
class LambdaConfig:
    runtime: str
    architecture: str
    powertools_layer: str
    log_level: str
    save_message_memory: int
    extract_image_memory: int
    timeout: int
    reserved_concurrency: int
    log_retention_days: int

    @property
    def python(self) -> str:
        """The runtime as the Powertools layer names it, e.g. `python312`."""
        return self.runtime.replace(".", "")

    @property
    def pip_platform(self) -> str:
        return "manylinux2014_aarch64" if self.architecture == "arm64" else "manylinux2014_x86_64"

    @property
    def python_version(self) -> str:
        """The runtime's version as pip's --python-version wants it, e.g. `3.12`."""
        return self.runtime.removeprefix("python")


@dataclass(frozen=True, slots=True)
class BuildConfig:
    image: str
    compute_type: str
    part_size_mb: int
    python: str = "3.12"
    node: str = "24"
    #: No longer read (the steps install infra/model_build/requirements.txt); an older config.toml still loads.
    sagemaker_core: str | None = None


@dataclass(frozen=True, slots=True)
class GuardConfig:
    """The budget guard: a monthly AWS Budgets limit and an alarm on long runs, both e-mailing `alert_email`."""

    monthly_limit: float = 50.0
    alert_email: str = ""
    in_service_hours: int = 4


def email_problem(address: str) -> str | None:
    """Why `address` cannot receive the guard's alerts, in a designer's words; None when it can."""
    address = address.strip()
    if not address:
        return "Enter the e-mail address that gets the budget's alerts."
    if len(address) > 254 or not _EMAIL.fullmatch(address):
        return f"“{address}” is not an e-mail address (it looks like name@example.com)."
    return None


def limit_problem(limit: float) -> str | None:
    """Why `limit` cannot be a monthly budget (USD); None when it can."""
    if not limit > 0:  # also refuses NaN
        return f"The monthly limit must be more than 0 USD (it is {limit:g})."
    return None


@dataclass(frozen=True, slots=True)
class Config:
    deployment: str
    region: str
    source_kind: str
    model: ModelConfig
    endpoint: EndpointConfig
    bucket: BucketConfig
    function: LambdaConfig
    build: BuildConfig
    guard: GuardConfig = field(default_factory=GuardConfig)
    #: The companion models deployed beside the main one (each its own endpoint), by family name.
    companions: dict[str, ModelConfig] = field(default_factory=dict)

    @property
    def family(self) -> str:
        """The main model's family name (contract.families); a model the app does not know counts as text to image."""
        family = family_for_model(self.model.id)
        return family.name if family else TEXT_TO_IMAGE.name

    def stack_name(self, part: str) -> str:
        """`diffusion-desk-<deployment>-<part>`: the CloudFormation name of one stack."""
        return f"{ssm_prefix(self.deployment).strip('/').replace('/', '-')}-{part}"


def _section(data: dict, name: str, cls: type, key_prefix: str = ""):
    values = data.get(name)
    if not isinstance(values, dict):
        raise ConfigError(f"config.toml needs a [{key_prefix}{name}] section")
    wanted = {f.name: f for f in cls.__dataclass_fields__.values()}
    unknown = set(values) - set(wanted)
    if unknown:
        raise ConfigError(f"config.toml [{key_prefix}{name}] has unknown keys: {', '.join(sorted(unknown))}")
    missing = [
        k for k, f in wanted.items() if k not in values and f.default is MISSING and f.default_factory is MISSING
    ]
    if missing:
        raise ConfigError(f"config.toml [{key_prefix}{name}] is missing: {', '.join(missing)}")
    return cls(**values)


def parse_config(data: dict) -> Config:
    """Build a Config from parsed TOML, raising ConfigError that names the bad key."""
    try:
        config = Config(
            deployment=str(data["deployment"]),
            region=str(data["region"]),
            source_kind=str(data.get("source_kind", "s3")),
            model=_section(data, "model", ModelConfig),
            endpoint=_section(data, "endpoint", EndpointConfig),
            bucket=_section(data, "bucket", BucketConfig),
            function=_section(data, "lambda", LambdaConfig),
            build=_section(data, "build", BuildConfig),
            # A config.toml saved before the guard existed has no [guard]: it loads with the defaults.
            guard=_section(data, "guard", GuardConfig) if "guard" in data else GuardConfig(),
            companions=_companions(data.get("companions", {})),
        )
    except KeyError as missing:
        raise ConfigError(f"config.toml is missing the key {missing}") from None
    try:
        ssm_prefix(config.deployment)
    except ValueError as bad:
        raise ConfigError(f"config.toml deployment: {bad}") from None
    if config.source_kind not in SOURCE_KINDS:
        raise ConfigError(f"config.toml source_kind is {config.source_kind!r}; use one of {SOURCE_KINDS}")
    if config.function.architecture not in ARCHITECTURES:
        raise ConfigError(f"config.toml [lambda] architecture must be one of {ARCHITECTURES}")
    if not 1 <= config.endpoint.max_instances <= 100:
        raise ConfigError("config.toml [endpoint] max_instances must be from 1 to 100")
    if config.bucket.expire_days < 0:
        raise ConfigError("config.toml [bucket] expire_days must be 0 or more")
    if config.build.node not in NODE_VERSIONS:
        raise ConfigError(f"config.toml [build] node must be one of {NODE_VERSIONS} (what the CDK CLI supports)")
    if config.build.part_size_mb < 5:
        raise ConfigError("config.toml [build] part_size_mb must be at least 5 (the S3 minimum)")
    _check_guard(config.guard)
    _check_models(config)
    return config


def _companions(tables) -> dict[str, ModelConfig]:
    """The `[companions.<family>]` tables: each one present is a companion endpoint to deploy."""
    if not isinstance(tables, dict):
        raise ConfigError("config.toml companions must be tables: [companions.upscale], [companions.inpaint]")
    unknown = sorted(set(tables) - set(COMPANION_FAMILIES))
    if unknown:
        raise ConfigError(
            f"config.toml [companions.{unknown[0]}] is no companion model; use one of {', '.join(COMPANION_FAMILIES)}"
        )
    return {
        family: _section(tables, family, ModelConfig, key_prefix="companions.")
        for family in COMPANION_FAMILIES
        if family in tables
    }


def _check_models(config: Config) -> None:
    """Each model's table holds strings, and each companion's model is of that companion's family."""
    tables = {"model": config.model, **{f"companions.{name}": model for name, model in config.companions.items()}}
    for table, model in tables.items():
        for key in ("id", "version", "instance_type"):
            if not isinstance(getattr(model, key), str) or not getattr(model, key):
                raise ConfigError(f"config.toml [{table}] {key} must be a non-empty string")
        if not isinstance(model.environment, dict) or not all(
            isinstance(value, str) for value in model.environment.values()
        ):
            raise ConfigError(f"config.toml [{table}.environment] must map names to strings")
    main = family_for_model(config.model.id)
    if main is not None and main.name in COMPANION_FAMILIES:
        raise ConfigError(
            f"config.toml [model] id {config.model.id} is a companion model ({main.label}): the main model makes "
            f"images from a prompt, so put it under [companions.{main.name}]"
        )
    for name, model in config.companions.items():
        family = family_for_model(model.id)
        if family is None or family.name != name:
            what = f"a {family.name} model" if family else "no model the app knows"
            raise ConfigError(f"config.toml [companions.{name}] id {model.id} is {what}, not a {name} model")


def _check_guard(guard: GuardConfig) -> None:
    if isinstance(guard.monthly_limit, bool) or not isinstance(guard.monthly_limit, int | float):
        raise ConfigError("config.toml [guard] monthly_limit must be a number of USD")
    problem = limit_problem(guard.monthly_limit)
    if problem:
        raise ConfigError(f"config.toml [guard] monthly_limit: {problem}")
    if not isinstance(guard.alert_email, str):
        raise ConfigError("config.toml [guard] alert_email must be a string")
    if guard.alert_email and (problem := email_problem(guard.alert_email)):
        raise ConfigError(f"config.toml [guard] alert_email: {problem}")
    if not 1 <= guard.in_service_hours <= MAX_IN_SERVICE_HOURS:
        raise ConfigError(f"config.toml [guard] in_service_hours must be from 1 to {MAX_IN_SERVICE_HOURS}")


def load_config(path: Path | str = CONFIG_PATH) -> Config:
    """Read config.toml (by default the one beside this module)."""
    with open(path, "rb") as handle:
        return parse_config(tomllib.load(handle))

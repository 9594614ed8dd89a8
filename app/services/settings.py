"""Where the app keeps things, and the non-secret settings file (JSON, written atomically)."""

from __future__ import annotations

import os
import threading
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import platformdirs

from app.services.errors import UserError
from app.services.files import atomic_write

APP_DIR_NAME = "DiffusionDesk"
CONFIG_DIR_ENV = "DIFFUSION_DESK_CONFIG_DIR"
DATA_DIR_ENV = "DIFFUSION_DESK_DATA_DIR"
SETTINGS_FILE = "settings.json"


@dataclass(frozen=True, slots=True)
class AppDirs:
    """The config dir (settings) and the data dir (library, thumbnails, logs)."""

    config_dir: Path
    data_dir: Path

    @classmethod
    def default(cls) -> AppDirs:
        """The platform's dirs, unless DIFFUSION_DESK_CONFIG_DIR / _DATA_DIR say otherwise."""
        config = os.environ.get(CONFIG_DIR_ENV) or platformdirs.user_config_dir(APP_DIR_NAME, appauthor=False)
        data = os.environ.get(DATA_DIR_ENV) or platformdirs.user_data_dir(APP_DIR_NAME, appauthor=False)
        return cls(Path(config), Path(data))

    @property
    def settings_file(self) -> Path:
        return self.config_dir / SETTINGS_FILE

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    def create(self) -> AppDirs:
        for path in (self.config_dir, self.data_dir, self.log_dir):
            path.mkdir(parents=True, exist_ok=True)
        return self


@dataclass(slots=True)
class Settings:
    """Everything the user chose that is not a secret. Secrets live in the OS keyring only."""

    mode: str | None = None  # "sandbox" or "aws"; None until the user chose (the app shows its welcome)
    credentials: dict[str, Any] = field(default_factory=lambda: {"kind": "environment"})
    region: str | None = None
    targets: list[dict[str, Any]] = field(default_factory=list)
    active_target: str | None = None
    retry_mode: str = "adaptive"
    request_ttl_seconds: int = 6 * 3600
    invocation_timeout_seconds: int = 3600
    #: The user's on-demand prices per hour, by "region/instance type", over the shipped price table.
    prices: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Settings:
        """Settings from the file's object; ValueError lists every field of the wrong type, one a line."""
        known = {name: data[name] for name in cls.__slots__ if name in data}  # type: ignore[attr-defined]
        wrong = [
            f"{name}: {_FIELDS[name][1]}, not {_described(known[name])}"
            for name in known
            if not _fits(name, known[name])
        ]
        if wrong:
            raise ValueError("\n".join(wrong))
        return cls(**known)


def _text(value: Any) -> bool:
    return isinstance(value, str)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _strings(value: Any) -> bool:
    """An object of texts; a choice saves the parts it does not use (a profile's key name) as null."""
    return isinstance(value, dict) and all(v is None or isinstance(v, str) for v in value.values())


#: What each field must hold, and how the message says it.
_FIELDS: dict[str, tuple[Any, str]] = {
    "mode": (lambda v: v is None or v in ("sandbox", "aws"), 'must be "sandbox", "aws" or null'),
    "credentials": (_strings, 'must be an object of texts or nulls, like {"kind": "profile", "profile": "work"}'),
    "region": (lambda v: v is None or _text(v), "must be a region's name (text) or null"),
    "targets": (
        lambda v: isinstance(v, list) and all(isinstance(t, dict) and _text(t.get("name")) for t in v),
        "must be a list of saved targets, each an object with a name",
    ),
    "active_target": (lambda v: v is None or _text(v), "must be a target's name (text) or null"),
    "retry_mode": (lambda v: v in ("legacy", "standard", "adaptive"), 'must be "legacy", "standard" or "adaptive"'),
    "request_ttl_seconds": (_whole, "must be a whole number of seconds above 0"),
    "invocation_timeout_seconds": (_whole, "must be a whole number of seconds above 0"),
    "prices": (
        lambda v: isinstance(v, dict) and all(_number(p) and p >= 0 for p in v.values()),
        'must be an object of prices per hour, like {"us-east-1/ml.g5.xlarge": 1.41}',
    ),
}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _fits(name: str, value: Any) -> bool:
    check = _FIELDS.get(name)
    return check is None or bool(check[0](value))  # a field without a check yet is taken as it is


def _described(value: Any) -> str:
    """A value as the message shows it: its kind, and the value itself when short."""
    kinds = {
        bool: "true/false",
        int: "the number",
        float: "the number",
        str: "the text",
        list: "a list",
        dict: "an object",
    }
    kind = "null" if value is None else kinds.get(type(value), type(value).__name__)
    if isinstance(value, (list, dict)) or value is None:
        return kind
    shown = orjson.dumps(value).decode()
    return f"{kind} {shown if len(shown) <= 40 else shown[:39] + '…'}"


_lock = threading.Lock()


def load_settings(dirs: AppDirs) -> Settings:
    """Read the settings file; a missing one gives the defaults, a broken one a UserError."""
    path = dirs.settings_file
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return Settings()
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise SettingsUnreadable(path, f"it is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise SettingsUnreadable(path, "it is not a JSON object")
    try:
        return Settings.from_dict(data)
    except ValueError as exc:
        fields = str(exc).splitlines()
        raise SettingsUnreadable(path, f"some values are of the wrong type ({'; '.join(fields)}).", fields) from None


class SettingsUnreadable(UserError):
    """The settings file cannot be used as it is; `set_aside` keeps it and lets the app start from the defaults."""

    def __init__(self, path: Path, reason: str, fields: list[str] | None = None) -> None:
        self.path = path
        self.reason = reason
        self.fields = fields or []  # "region: must be …, not the number 7", one a wrong field
        super().__init__(
            f"The settings file {path} cannot be read: {reason}",
            hint="Fix those values, or delete the file to start from the defaults.",
        )


def set_aside(path: Path) -> Path:
    """Rename a file that cannot be used to `<name>.unreadable-<UTC time>` beside it, and return that name."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    kept = path.with_name(f"{path.name}.unreadable-{stamp}")
    path.rename(kept)
    return kept


def save_settings(dirs: AppDirs, settings: Settings) -> None:
    """Write the settings atomically: a crash leaves the old file or the new one, never half."""
    write_atomically(dirs.settings_file, orjson.dumps(asdict(settings), option=orjson.OPT_INDENT_2))


def write_atomically(path: Path, data: bytes) -> None:
    """Replace `path` with `data`, flushed to disk, one writer at a time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _lock:
        atomic_write(path, data, durable=True)

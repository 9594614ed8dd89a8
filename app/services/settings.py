"""Where the app keeps things, and the non-secret settings file (JSON, written atomically)."""

from __future__ import annotations

import os
import threading
from dataclasses import asdict, dataclass, field
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

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Settings:
        known = {name: data[name] for name in cls.__slots__ if name in data}  # type: ignore[attr-defined]
        return cls(**known)


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
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return Settings.from_dict(data)
    except (orjson.JSONDecodeError, ValueError, TypeError) as exc:
        raise UserError(f"The settings file {path} cannot be read ({exc}).", hint="Fix or delete it.") from None


def save_settings(dirs: AppDirs, settings: Settings) -> None:
    """Write the settings atomically: a crash leaves the old file or the new one, never half."""
    write_atomically(dirs.settings_file, orjson.dumps(asdict(settings), option=orjson.OPT_INDENT_2))


def write_atomically(path: Path, data: bytes) -> None:
    """Replace `path` with `data`, flushed to disk, one writer at a time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _lock:
        atomic_write(path, data, durable=True)

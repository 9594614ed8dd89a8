"""Fixtures for the client services: an in-memory keyring and app dirs under tmp_path."""

from __future__ import annotations

import keyring
import keyring.backend
import pytest
from keyring.backends import fail

from app.services.settings import CONFIG_DIR_ENV, DATA_DIR_ENV, AppDirs


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A secure-looking keyring that keeps secrets in memory only."""

    priority = 5  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.entries.pop((service, username), None)


@pytest.fixture
def memory_keyring():
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture
def failing_keyring():
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    yield
    keyring.set_keyring(previous)


@pytest.fixture
def dirs(tmp_path, monkeypatch) -> AppDirs:
    """Config and data dirs under tmp_path, also for code that reads the environment (the CLI)."""
    found = AppDirs(tmp_path / "config", tmp_path / "data").create()
    monkeypatch.setenv(CONFIG_DIR_ENV, str(found.config_dir))
    monkeypatch.setenv(DATA_DIR_ENV, str(found.data_dir))
    return found


@pytest.fixture
def aws_home(tmp_path, monkeypatch):
    """An empty AWS config home, so no real profile or key on this machine is ever read."""
    home = tmp_path / "home"
    (home / ".aws").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / ".aws" / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / ".aws" / "credentials"))
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                 "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    return home

"""Fixtures every test may use: offscreen Qt, no real AWS configuration, and the local cloud."""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"

from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

import keyring  # noqa: E402
import keyring.backend  # noqa: E402
import pytest  # noqa: E402

from app.services.local_cloud import LocalCloud, LocalDeployment  # noqa: E402

_AWS_ENV_TO_CLEAR = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)


@pytest.fixture(scope="session")
def _empty_aws_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    folder = tmp_path_factory.mktemp("aws")
    config, credentials = folder / "config", folder / "credentials"
    config.write_text("")
    credentials.write_text("")
    return str(config), str(credentials)


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch: pytest.MonkeyPatch, _empty_aws_files: tuple[str, str]) -> None:
    """No test reads the developer's ~/.aws or reaches a real AWS endpoint."""
    config, credentials = _empty_aws_files
    monkeypatch.setenv("AWS_CONFIG_FILE", config)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", credentials)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in _AWS_ENV_TO_CLEAR:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def local_cloud() -> Any:
    """One local cloud per test process (per xdist worker); use `cloud` for clean state."""
    cloud = LocalCloud().start()
    yield cloud
    cloud.stop()


@dataclass
class CloudFixture:
    """The local cloud, wiped and provisioned with the deployment "test" for one test (None: an empty account)."""

    cloud: LocalCloud
    deployment: LocalDeployment | None

    @property
    def endpoint_url(self) -> str:
        return self.cloud.endpoint_url

    @property
    def region(self) -> str:
        return self.cloud.region

    def client(self, service: str, **kwargs: Any) -> Any:
        return self.cloud.client(service, **kwargs)

    def session(self) -> Any:
        return self.cloud.session()

    def wait_idle(self, timeout: float = 30.0) -> None:
        self.cloud.wait_idle(timeout)


@pytest.fixture
def cloud(local_cloud: LocalCloud) -> CloudFixture:
    local_cloud.reset()
    return CloudFixture(local_cloud, local_cloud.provision("test"))


@pytest.fixture
def empty_account(local_cloud: LocalCloud) -> CloudFixture:
    """The local cloud wiped and nothing provisioned (not even the CDK bootstrap the provisioned stack needs)."""
    local_cloud.reset()
    return CloudFixture(local_cloud, None)


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

"""One boto3 Session per target, with botocore configured once: retries, timeouts, endpoint URL."""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, HTTPClientError

from app.services.cloud.credentials import CredentialSource, Identity, check_identity, make_session, session_region

#: Errors that mean "try again later": no network, throttling, a service hiccup.
TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "ServiceUnavailable",
        "InternalError",
        "InternalFailure",
        "RequestTimeout",
        "RequestTimeoutException",
        "503",
        "500",
    }
)
#: Services whose calls botocore must not repeat: a second InvokeEndpointAsync after a read timeout is a
#: second (billed) run of the same job. The job service looks for a job before it sends it again instead.
ONE_ATTEMPT = frozenset({"sagemaker-runtime"})


def client_config(
    retry_mode: str = "adaptive",
    *,
    max_attempts: int = 5,
    connect_timeout: float = 5,
    read_timeout: float = 60,
    pool: int = 32,
) -> Config:
    if retry_mode not in ("adaptive", "standard"):
        retry_mode = "adaptive"
    return Config(
        retries={"mode": retry_mode, "max_attempts": max_attempts},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        max_pool_connections=pool,
        s3={"addressing_style": "path"},
    )


def is_transient(exc: BaseException) -> bool:
    """True for errors that go away by themselves: offline, throttled, 5xx."""
    if isinstance(exc, (ConnectionError, HTTPClientError)):
        return True
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return error.get("Code", "") in TRANSIENT_CODES or status >= 500 or status == 429
    return False


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return type(exc).__name__


class Connection:
    """A boto3 Session and its clients for one region and endpoint URL; clients are shared by threads."""

    def __init__(
        self,
        session: boto3.Session,
        source: CredentialSource,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        retry_mode: str = "adaptive",
        config: Config | None = None,
    ) -> None:
        self.session = session
        self.source = source
        self.region = region or session_region(session, source)
        self.endpoint_url = endpoint_url
        self.config = config or client_config(retry_mode)
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    @classmethod
    def open(
        cls,
        source: CredentialSource,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        retry_mode: str = "adaptive",
        config: Config | None = None,
    ) -> Connection:
        return cls(
            make_session(source, region),
            source,
            region=region,
            endpoint_url=endpoint_url,
            retry_mode=retry_mode,
            config=config,
        )

    def client(self, name: str) -> Any:
        """The one client for a service (boto3 clients are thread-safe, Sessions are not)."""
        with self._lock:
            client = self._clients.get(name)
            if client is None:
                config = self.config
                if name in ONE_ATTEMPT:  # botocore's max_attempts counts retries; total_max_attempts the calls
                    retries = {k: v for k, v in (config.retries or {}).items() if k != "max_attempts"}
                    config = config.merge(Config(retries={**retries, "total_max_attempts": 1}))
                client = self.session.client(
                    name, region_name=self.region, endpoint_url=self.endpoint_url, config=config
                )
                self._clients[name] = client
            return client

    def identity(self) -> Identity:
        return check_identity(self.session, self.source, endpoint_url=self.endpoint_url)

    @property
    def s3(self) -> Any:
        return self.client("s3")


__all__ = ["Connection", "client_config", "is_transient", "error_code", "BotoCoreError", "ClientError"]

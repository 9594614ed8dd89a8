"""The connection the Settings page shows, as typed: which credentials, a key pair not stored yet, the region.

Settings' panels read one `ConnectionChoice` on the GUI thread and hand it to these functions on a worker:
a connection through the session's one `open_connection`, Test connection's check, and what Apply saves.
A typed secret stays in memory (out of every repr); only `ConnectionChoice.source()` puts it in the keyring.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from app.services.cloud.aws import Connection
from app.services.cloud.credentials import (
    CredentialSource,
    Identity,
    Kind,
    check_key_pair,
    key_pair_session,
    store_key_pair,
)
from app.services.cloud.targets import Target, list_deployments, load_target, record_target, target_name
from app.services.settings import Settings
from contract import APP_NAME

#: The session's `open_connection(source, *, region=…)`: one credential choice in, a configured Connection out.
OpenConnection = Callable[..., Connection]


@dataclass(frozen=True, slots=True)
class ConnectionChoice:
    """What the Connection page shows; the secret and token are left out of repr so they never reach a log."""

    kind: Kind = "environment"
    profile: str = "default"
    key_name: str = "default"
    access_key_id: str = ""
    secret_access_key: str = field(default="", repr=False)
    session_token: str | None = field(default=None, repr=False)
    region: str | None = None

    @property
    def typed_key_pair(self) -> tuple[str, str, str | None] | None:
        """The access key, secret and token typed on the Access key page, or None when no secret is typed."""
        if self.kind != "keyring" or not self.secret_access_key:
            return None
        return self.access_key_id, self.secret_access_key, self.session_token

    def source(self) -> CredentialSource:
        """The credential source to connect with and save (worker thread: a typed key is stored in the keyring)."""
        if self.kind == "profile":
            return CredentialSource("profile", profile=self.profile)
        if self.kind == "keyring":
            if self.secret_access_key:
                return store_key_pair(self.key_name, self.access_key_id, self.secret_access_key, self.session_token)
            return CredentialSource("keyring", key_name=self.key_name)
        return CredentialSource()


@dataclass(frozen=True, slots=True)
class ConnectionCheck:
    """What Test connection found."""

    identity: Identity
    region: str
    deployments: list[tuple[str, str, str]]  # (label, deployment, app)
    note: str = ""


def open_choice(choice: ConnectionChoice, open_connection: OpenConnection) -> Connection:
    """A connection on the chosen credentials and region (worker thread); a typed key is stored first."""
    return open_connection(choice.source(), region=choice.region)


def check_connection(
    choice: ConnectionChoice, open_connection: OpenConnection, *, endpoint_url: str | None = None
) -> ConnectionCheck:
    """Who the chosen credentials are and which deployments the region holds (worker thread).

    A typed key pair is checked in memory and stored nowhere: only Apply puts it in the keyring.
    """
    typed = choice.typed_key_pair
    if typed is None:
        connection = open_choice(choice, open_connection)
        identity = connection.identity()
    else:
        identity = check_key_pair(*typed, region=choice.region, endpoint_url=endpoint_url)
        connection = Connection(
            key_pair_session(*typed, region=choice.region),
            CredentialSource("keyring"),
            region=choice.region,
            endpoint_url=endpoint_url,
        )
    note, names = "", []
    try:
        names = [(target_name(d.name, d.app), d.name, d.app) for d in list_deployments(connection) if not d.missing]
    except Exception as error:  # noqa: BLE001 - the identity was asked for; say why the list is missing
        note = f"Deployments could not be listed: {error}"
    return ConnectionCheck(identity, connection.region, names, note)


def chosen_target(
    choice: ConnectionChoice,
    open_connection: OpenConnection,
    deployment: str = "",
    *,
    app: str = APP_NAME,
    name: str | None = None,
) -> tuple[CredentialSource, Target | None]:
    """What Apply saves (worker thread): the credential source and the chosen deployment's target, if one is."""
    source = choice.source()
    if not deployment:
        return source, None
    connection = open_connection(source, region=choice.region)
    return source, load_target(connection, deployment, app=app, name=name)


def remember_choice(
    settings: Settings,
    source: CredentialSource,
    region: str | None,
    target: Target | None = None,
    *,
    mode: str | None = None,
) -> Settings:
    """Put the credential choice, the region, the target (made active) and the mode in `settings`.

    The caller holds the settings' lock and saves them (`Session.update_settings`).
    """
    settings.credentials = source.to_dict()
    settings.region = region
    if target is not None:
        record_target(settings, target)
    if mode is not None:
        settings.mode = mode
    return settings

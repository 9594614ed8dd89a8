"""The three ways in: a named profile (SSO included), a key pair in the OS keyring, the environment.

A key pair's secret is kept only in the OS keyring; where the keyring is not secure it is
refused, never written to a file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

import boto3
import keyring
import keyring.backend
import keyring.errors
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    SSOError,
    TokenRetrievalError,
)

from app.services.errors import UserError

KEYRING_SERVICE = "Diffusion Desk AWS access key"
Kind = Literal["profile", "keyring", "environment"]
_INSECURE_MODULES = ("keyring.backends.fail", "keyring.backends.null", "keyrings.alt")


@dataclass(frozen=True, slots=True)
class CredentialSource:
    """Which credentials to use. Holds names only, never a secret, so it can be saved."""

    kind: Kind = "environment"
    profile: str | None = None
    key_name: str | None = None  # the keyring entry of a stored key pair

    def describe(self) -> str:
        if self.kind == "profile":
            return f"profile {self.profile!r}"
        if self.kind == "keyring":
            return f"stored access key {self.key_name!r}"
        return "credentials from the environment"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "profile": self.profile, "key_name": self.key_name}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> CredentialSource:
        data = data or {}
        kind = data.get("kind", "environment")
        if kind not in ("profile", "keyring", "environment"):
            raise UserError(f"The saved credential choice {kind!r} is not one this app knows.")
        return cls(kind, data.get("profile"), data.get("key_name"))


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the credentials belong to, as STS GetCallerIdentity says."""

    account: str
    arn: str
    user_id: str = ""


def list_profiles() -> list[str]:
    """The profile names in the AWS config and credentials files (SSO ones included), sorted; [] when none.

    Only section names are read into the list; no key or secret leaves botocore.
    """
    import botocore.session

    try:
        names = botocore.session.Session().available_profiles
    except BotoCoreError:
        return []
    return sorted(set(names))


def profile_region(name: str) -> str | None:
    """The region a profile names in the AWS config file, or None."""
    import botocore.session

    try:
        return botocore.session.Session().full_config.get("profiles", {}).get(name, {}).get("region")
    except BotoCoreError:
        return None


def keyring_problem() -> str | None:
    """Why the OS keyring cannot hold a secret safely, or None when it can."""
    backend = keyring.get_keyring()
    chained = getattr(backend, "backends", None)
    backends = list(chained) if chained is not None else [backend]
    if not backends:
        return "no keyring is available on this computer"
    for item in backends:
        module = type(item).__module__
        if module.startswith(_INSECURE_MODULES) or getattr(item, "priority", 0) < 1:
            return f"the keyring on this computer ({type(item).__name__} from {module}) does not store secrets securely"
    return None


def store_key_pair(
    name: str, access_key_id: str, secret_access_key: str, session_token: str | None = None
) -> CredentialSource:
    """Keep a key pair in the OS keyring under `name`; refuse when the keyring is not secure."""
    access_key_id, secret_access_key = access_key_id.strip(), secret_access_key.strip()
    if not name.strip():
        raise UserError("Give the access key a name, such as 'work'.")
    if not access_key_id or not secret_access_key:
        raise UserError("Both the access key ID and the secret access key are needed.")
    problem = keyring_problem()
    if problem:
        raise UserError(
            f"The secret key was not saved: {problem}, and this app never writes secrets to a file.",
            hint="Use a named AWS profile instead (for example one set up with `aws configure sso`).",
        )
    entry = {"access_key_id": access_key_id, "secret_access_key": secret_access_key}
    if session_token:
        entry["session_token"] = session_token.strip()
    try:
        keyring.set_password(KEYRING_SERVICE, name, json.dumps(entry))
    except keyring.errors.KeyringError as exc:
        raise UserError(
            f"The keyring refused to store the key ({type(exc).__name__}).", hint="Use a named AWS profile instead."
        ) from None
    return CredentialSource("keyring", key_name=name)


def key_pair_session(
    access_key_id: str, secret_access_key: str, session_token: str | None = None, *, region: str | None = None
) -> boto3.Session:
    """A session on a typed key pair that is kept in memory only (nothing is stored)."""
    access_key_id, secret_access_key = access_key_id.strip(), secret_access_key.strip()
    if not access_key_id or not secret_access_key:
        raise UserError("Both the access key ID and the secret access key are needed.")
    return boto3.Session(
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        aws_session_token=(session_token or "").strip() or None,
        region_name=region,
    )


def check_key_pair(
    access_key_id: str,
    secret_access_key: str,
    session_token: str | None = None,
    *,
    region: str | None,
    endpoint_url: str | None = None,
) -> Identity:
    """Ask STS who a typed key pair belongs to, without storing it anywhere."""
    session = key_pair_session(access_key_id, secret_access_key, session_token, region=region)
    return check_identity(session, CredentialSource("keyring", key_name="typed"), endpoint_url=endpoint_url)


def _load_key_pair(name: str | None) -> dict[str, str]:
    if not name:
        raise UserError("No stored access key is chosen.", hint="Add one in Settings, or choose a profile.")
    try:
        raw = keyring.get_password(KEYRING_SERVICE, name)
    except keyring.errors.KeyringError as exc:
        raise UserError(
            f"The keyring could not be read ({type(exc).__name__}).", hint="Use a named AWS profile instead."
        ) from None
    if not raw:
        raise UserError(
            f"The stored access key {name!r} is not in the keyring any more.", hint="Enter it again in Settings."
        )
    try:
        pair = json.loads(raw)
    except ValueError:
        pair = None
    if not isinstance(pair, dict) or not pair.get("access_key_id") or not pair.get("secret_access_key"):
        # Never repeat the entry: it may hold a secret.
        raise UserError(
            f"The stored access key {name!r} in the keyring is damaged.", hint="Enter it again in Settings."
        ) from None
    return pair


def make_session(source: CredentialSource, region: str | None = None) -> boto3.Session:
    """A boto3 Session for the source; raises UserError for a missing profile or key."""
    if source.kind == "profile":
        try:
            return boto3.Session(profile_name=source.profile, region_name=region)
        except ProfileNotFound:
            raise UserError(
                f"There is no AWS profile named {source.profile!r} in your AWS config files.",
                hint="Check the name, or create it with `aws configure`.",
            ) from None
    if source.kind == "keyring":
        pair = _load_key_pair(source.key_name)
        return boto3.Session(
            aws_access_key_id=pair["access_key_id"],
            aws_secret_access_key=pair["secret_access_key"],
            aws_session_token=pair.get("session_token"),
            region_name=region,
        )
    return boto3.Session(region_name=region)


def session_region(session: boto3.Session, source: CredentialSource) -> str:
    if session.region_name:
        return session.region_name
    where = f"The {source.describe()}" if source.kind == "profile" else "Your AWS settings"
    raise UserError(f"{where} name no AWS region.", hint="Choose a region, or add `region = …` to the profile.")


def check_identity(session: boto3.Session, source: CredentialSource, *, endpoint_url: str | None = None) -> Identity:
    """Ask STS who these credentials are; every failure becomes a UserError."""
    region = session_region(session, source)
    try:
        sts = session.client("sts", region_name=region, endpoint_url=endpoint_url)
        reply = sts.get_caller_identity()
    except (BotoCoreError, ClientError) as exc:
        raise explain(exc, source) from None
    return Identity(reply["Account"], reply["Arn"], reply.get("UserId", ""))


_CLIENT_ERRORS = {
    "InvalidClientTokenId": "AWS does not know this access key ID: check it, or choose a profile.",
    "UnrecognizedClientException": "AWS does not know this access key ID: check it, or choose a profile.",
    "SignatureDoesNotMatch": "The AWS secret key was rejected: check the secret key, or choose a profile.",
    "ExpiredToken": "The AWS session token has expired: get new temporary credentials, or choose a profile.",
    "ExpiredTokenException": "The AWS session token has expired: get new temporary credentials, or choose a profile.",
    "AccessDenied": "These AWS credentials are not allowed to do this.",
}


def explain(exc: BaseException, source: CredentialSource) -> UserError:
    """Turn a botocore credentials error into a message for the user."""
    if isinstance(exc, (SSOError, TokenRetrievalError)) and source.kind == "profile":
        return UserError(
            f"The AWS sign-in of profile {source.profile!r} has expired or was never made.",
            hint=f"Run `aws sso login --profile {source.profile}` and try again.",
        )
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return UserError(
            f"No AWS credentials were found ({source.describe()}).",
            hint="Choose a profile or enter an access key in Settings.",
        )
    if isinstance(exc, NoRegionError):
        return UserError("No AWS region is set.", hint="Choose a region in Settings.")
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        if code in _CLIENT_ERRORS:
            return UserError(_CLIENT_ERRORS[code])
        return UserError(f"AWS refused the credentials check ({code}).")
    return UserError(
        f"AWS could not be reached to check the credentials ({type(exc).__name__}).", hint="Check the network."
    )

"""cloud."""

from __future__ import annotations

from app.services.cloud.adoption import target_name
from app.services.cloud.aws import Connection
from app.services.cloud.choice import (
    ConnectionCheck,
    ConnectionChoice,
    check_connection,
    chosen_target,
    open_choice,
    remember_choice,
)
from app.services.cloud.credentials import CredentialSource, Identity, list_profiles
from app.services.cloud.targets import (
    EndpointState,
    Target,
    endpoint_state,
    list_deployments,
    load_target,
    record_target,
    saved_target,
    with_instance_type,
)

__all__ = [
    "Connection",
    "EndpointState",
    "ConnectionCheck",
    "ConnectionChoice",
    "CredentialSource",
    "Identity",
    "Target",
    "check_connection",
    "chosen_target",
    "endpoint_state",
    "list_deployments",
    "list_profiles",
    "load_target",
    "open_choice",
    "record_target",
    "remember_choice",
    "saved_target",
    "target_name",
    "with_instance_type",
]

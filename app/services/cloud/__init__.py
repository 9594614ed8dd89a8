"""cloud."""

from __future__ import annotations

from app.services.cloud.adoption import target_name
from app.services.cloud.aws import Connection
from app.services.cloud.credentials import CredentialSource, Identity
from app.services.cloud.targets import endpoint_state, list_deployments, load_target, record_target, saved_target, with_instance_type

__all__ = ['Connection', 'CredentialSource', 'Identity', 'endpoint_state', 'list_deployments', 'load_target', 'record_target', 'saved_target', 'target_name', 'with_instance_type']

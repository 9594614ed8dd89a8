"""DeleteChangeSet of a change set that does not exist answers as CloudFormation does, not with a crash.

The CDK CLI deletes its `cdk-deploy-change-set` before making a new one, whether there is one or not, and
expects CloudFormation's ChangeSetNotFound when there is none; moto raises an UnboundLocalError (a 500).
"""

from __future__ import annotations

from typing import Any

from moto.cloudformation.exceptions import CloudFormationError
from moto.cloudformation.models import CloudFormationBackend


class ChangeSetNotFound(CloudFormationError):
    code = "ChangeSetNotFound"

    def __init__(self, name: str) -> None:
        super().__init__(f"ChangeSet [{name}] does not exist")


def _install() -> None:
    delete = CloudFormationBackend.delete_change_set
    if getattr(delete, "__local_cloud__", False):
        return

    def delete_change_set(self: Any, change_set_name: str) -> None:
        known = change_set_name in self.change_sets or any(
            cs.change_set_name == change_set_name for cs in self.change_sets.values()
        )
        if not known:
            raise ChangeSetNotFound(change_set_name)
        delete(self, change_set_name)

    delete_change_set.__local_cloud__ = True  # type: ignore[attr-defined]
    CloudFormationBackend.delete_change_set = delete_change_set  # type: ignore[method-assign]


_install()

"""DeleteChangeSet of a change set that does not exist succeeds, as the CDK CLI relies on, not with a crash.

The CDK CLI deletes its `cdk-deploy-change-set` of an existing stack before making a new one, whether there
is one or not, and stops on any error; moto raised an UnboundLocalError (a 500). (An error answer,
ChangeSetNotFound, stopped the CLI the same way: so CloudFormation's must be a success.)
"""

from __future__ import annotations

from typing import Any

from moto.cloudformation.models import CloudFormationBackend


def _install() -> None:
    delete = CloudFormationBackend.delete_change_set
    if getattr(delete, "__local_cloud__", False):
        return

    def delete_change_set(self: Any, change_set_name: str) -> None:
        known = change_set_name in self.change_sets or any(
            cs.change_set_name == change_set_name for cs in self.change_sets.values()
        )
        if known:
            delete(self, change_set_name)

    delete_change_set.__local_cloud__ = True  # type: ignore[attr-defined]
    CloudFormationBackend.delete_change_set = delete_change_set  # type: ignore[method-assign]


_install()

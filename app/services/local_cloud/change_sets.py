"""Change sets belong to their stack, as in CloudFormation, and their errors are CloudFormation's.

moto keeps one flat table of change sets and finds one by name whatever the stack (the CDK CLI names every
change set `cdk-deploy-change-set`, so one stack's answered for another's), answers a missing one with
"Stack with id … does not exist" and crashed on DeleteChangeSet of none. Here, as AWS does:
- a change set is found by its ARN, or by its name within the stack that StackName names (by name or id); a
  name without StackName is a ValidationError;
- DescribeChangeSet and ExecuteChangeSet of one that is not there answer ChangeSetNotFound (404), which the
  CDK CLI's wait for a deleted change set reads as gone;
- DeleteChangeSet of one that is not there succeeds while its stack exists (the CDK CLI deletes its change set
  before each deploy, whether there is one or not, and stops on any error);
- CreateChangeSet of a name its stack already has is AlreadyExistsException; a CREATE change set for a stack
  that exists is a ValidationError unless the stack is in REVIEW_IN_PROGRESS, where it is reused;
- ExecuteChangeSet of one that is not AVAILABLE is InvalidChangeSetStatus, and executing one deletes the
  stack's other change sets; ListChangeSets lists the stack's own; deleting a stack deletes its change sets.
"""

from __future__ import annotations

from typing import Any

from moto.cloudformation.exceptions import CloudFormationError, ValidationError
from moto.cloudformation.models import ChangeSet, CloudFormationBackend, Stack
from moto.cloudformation.responses import CloudFormationResponse
from moto.cloudformation.utils import generate_changeset_id
from moto.core.responses import ActionResult, EmptyResult


class ChangeSetNotFound(CloudFormationError):
    code = "ChangeSetNotFound"

    def __init__(self, name: str) -> None:
        super().__init__(f"ChangeSet [{name}] does not exist")


class ChangeSetExists(CloudFormationError):
    code = "AlreadyExistsException"

    def __init__(self, name: str) -> None:
        super().__init__(f"ChangeSet {name} already exists")


class InvalidChangeSetStatus(CloudFormationError):
    code = "InvalidChangeSetStatus"

    def __init__(self, change_set: ChangeSet) -> None:
        super().__init__(
            f"ChangeSet [{change_set.change_set_id}] cannot be executed in its current execution status of "
            f"[{change_set.execution_status}]"
        )


def _stack(backend: CloudFormationBackend, name_or_id: str) -> Stack | None:
    """The live stack of that name or id (a deleted stack has no change sets)."""
    found = backend.stacks.get(name_or_id)
    if found is not None:
        return found
    return next((s for s in backend.stacks.values() if s.name == name_or_id), None)


def find(backend: CloudFormationBackend, name_or_arn: str, stack_name: str | None) -> ChangeSet | None:
    """The change set by its ARN, or by its name within the stack named; None where there is none."""
    if name_or_arn.startswith("arn:"):
        found = backend.change_sets.get(name_or_arn)
        if found is not None and stack_name and _stack(backend, stack_name) is not found.stack:
            return None
        return found
    if not stack_name:
        raise ValidationError(message="StackName must be specified if ChangeSetName is not specified as an ARN.")
    stack = _stack(backend, stack_name)
    if stack is None:
        return None
    return next(
        (c for c in backend.change_sets.values() if c.change_set_name == name_or_arn and c.stack_id == stack.stack_id),
        None,
    )


def _in_review(
    backend: CloudFormationBackend,
    stack: Stack,
    change_set_name: str,
    template: str,
    parameters: dict[str, str],
    description: str,
    change_set_type: str,
    **options: Any,
) -> tuple[str, str]:
    """A CREATE change set of the stack that an earlier one left in REVIEW_IN_PROGRESS (moto would make another)."""
    change_set_id = generate_changeset_id(change_set_name, backend.region_name, backend.account_id)
    change_set = ChangeSet(
        change_set_type, change_set_id, change_set_name, stack, template, parameters, description, **options
    )
    change_set.status, change_set.execution_status = "CREATE_COMPLETE", "AVAILABLE"
    backend.change_sets[change_set_id] = change_set
    return change_set_id, stack.stack_id


def _install() -> None:
    # Long on purpose: the three patched methods are closures over the moto originals they wrap, kept side by side
    # so that the change-set rules (one stack, unique names, review state) read as one patch.
    if getattr(CloudFormationBackend.describe_change_set, "__local_cloud__", False):
        return
    create, execute, delete_stack = (
        CloudFormationBackend.create_change_set,
        CloudFormationBackend.execute_change_set,
        CloudFormationBackend.delete_stack,
    )

    def create_change_set(self: Any, stack_name: str, change_set_name: str, *args: Any, **kwargs: Any) -> Any:
        stack = _stack(self, stack_name)
        kind = kwargs.get("change_set_type", "CREATE")
        if stack is not None and find(self, change_set_name, stack.stack_id) is not None:
            raise ChangeSetExists(change_set_name)
        if kind == "CREATE" and stack is not None:
            if stack.status != "REVIEW_IN_PROGRESS":
                raise ValidationError(
                    message=f"Stack [{stack_name}] already exists and cannot be created again with the "
                    f"changeSet [{change_set_name}]."
                )
            return _in_review(self, stack, change_set_name, *args, **kwargs)
        return create(self, stack_name, change_set_name, *args, **kwargs)

    def describe_change_set(self: Any, change_set_name: str, stack_name: str | None = None) -> ChangeSet:
        found = find(self, change_set_name, stack_name)
        if found is None:
            raise ChangeSetNotFound(change_set_name)
        return found

    def delete_change_set(self: Any, change_set_name: str, stack_name: str | None = None) -> None:
        found = find(self, change_set_name, stack_name)
        if found is None:
            if stack_name and _stack(self, stack_name) is None:
                raise ValidationError(stack_name)
            return
        del self.change_sets[found.change_set_id]

    def execute_change_set(self: Any, change_set_name: str, stack_name: str | None = None) -> None:
        found = describe_change_set(self, change_set_name, stack_name)
        if found.execution_status != "AVAILABLE":
            raise InvalidChangeSetStatus(found)
        execute(self, found.change_set_id, stack_name)
        for other in [c for c in self.change_sets.values() if c.stack_id == found.stack_id and c is not found]:
            del self.change_sets[other.change_set_id]

    def list_change_sets(self: Any, stack_name: str | None = None) -> list[ChangeSet]:
        stack = _stack(self, stack_name) if stack_name else None
        if stack_name and stack is None:
            raise ValidationError(stack_name)
        return [c for c in self.change_sets.values() if stack is None or c.stack_id == stack.stack_id]

    def delete_stack_(self: Any, name_or_stack_id: str) -> None:
        delete_stack(self, name_or_stack_id)
        for arn in [arn for arn, c in self.change_sets.items() if c.stack_id not in self.stacks]:
            del self.change_sets[arn]

    for name, method in (
        ("create_change_set", create_change_set),
        ("describe_change_set", describe_change_set),
        ("delete_change_set", delete_change_set),
        ("execute_change_set", execute_change_set),
        ("list_change_sets", list_change_sets),
        ("delete_stack", delete_stack_),
    ):
        method.__local_cloud__ = True  # type: ignore[attr-defined]
        setattr(CloudFormationBackend, name, method)

    def _backend(response: Any) -> Any:
        return response.cloudformation_backend

    def describe(response: Any) -> ActionResult:
        params = (response._get_param("ChangeSetName"), response._get_param("StackName"))
        return ActionResult(_backend(response).describe_change_set(*params))

    def delete(response: Any) -> EmptyResult:
        _backend(response).delete_change_set(response._get_param("ChangeSetName"), response._get_param("StackName"))
        return EmptyResult()

    def execute_(response: Any) -> EmptyResult:
        _backend(response).execute_change_set(response._get_param("ChangeSetName"), response._get_param("StackName"))
        return EmptyResult()

    def list_(response: Any) -> ActionResult:
        return ActionResult({"Summaries": _backend(response).list_change_sets(response._get_param("StackName"))})

    CloudFormationResponse.describe_change_set = describe  # type: ignore[method-assign]
    CloudFormationResponse.delete_change_set = delete  # type: ignore[method-assign]
    CloudFormationResponse.execute_change_set = execute_  # type: ignore[method-assign]
    CloudFormationResponse.list_change_sets = list_  # type: ignore[method-assign]


_install()

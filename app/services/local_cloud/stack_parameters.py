"""A parameter's previous value (UsePreviousValue) is the value the stack was given, as in CloudFormation.

moto took the resolved value instead: for an SSM-typed parameter, such as every CDK stack's
BootstrapVersion (`/cdk-bootstrap/hnb659fds/version`), that is the parameter's content ("30"), which the
change set then looked up in SSM as a parameter name and crashed on (a 500 to the CDK CLI's ExecuteChangeSet
in SelfMutate). And UpdateStack with UsePreviousValue of a parameter that took its default was a KeyError.
The previous value is what the stack was given, else the default of its template; a key the previous
template does not have is CloudFormation's ValidationError.
"""

from __future__ import annotations

from typing import Any

from moto.cloudformation.exceptions import ValidationError
from moto.cloudformation.models import CloudFormationBackend, Stack


def previous_values(stack: Stack) -> dict[str, Any]:
    """Each parameter of the stack's current template: the value it was given, else its default."""
    resources = stack.resource_map
    slots = (getattr(resources, "_template", None) or {}).get("Parameters") or {}
    found = {name: slot["Default"] for name, slot in slots.items() if "Default" in slot}
    found.update({k: v for k, v in (resources.input_parameters or {}).items() if k in slots})
    return found


class _Previous(dict):
    """The stack's previous values, refusing a key its template does not have in CloudFormation's words."""

    def __missing__(self, key: str) -> Any:
        raise ValidationError(
            message=f"Invalid input for parameter key {key}. Cannot specify usePreviousValue as true for a "
            "parameter key not in the previous template"
        )


def _install() -> None:
    if getattr(Stack.stack_parameters.fget, "__local_cloud__", False):
        return
    resolve = CloudFormationBackend._resolve_update_parameters

    def stack_parameters(self: Stack) -> dict[str, Any]:
        return _Previous(previous_values(self))

    stack_parameters.__local_cloud__ = True  # type: ignore[attr-defined]
    Stack.stack_parameters = property(stack_parameters)  # type: ignore[assignment, method-assign]

    def _resolve_update_parameters(self: Any, instance: Any, incoming_params: list[dict[str, str]]) -> Any:
        if not isinstance(instance, Stack):
            return resolve(self, instance, incoming_params)
        previous = instance.stack_parameters
        return {
            p["ParameterKey"]: previous[p["ParameterKey"]] if p.get("UsePreviousValue") else p["ParameterValue"]
            for p in incoming_params
            if p.get("UsePreviousValue") or "ParameterValue" in p
        }

    CloudFormationBackend._resolve_update_parameters = _resolve_update_parameters  # type: ignore[method-assign]


_install()

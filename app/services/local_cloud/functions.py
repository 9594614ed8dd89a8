"""The Lambda functions a stack made, as Lambda keeps them: code, handler, environment, memory, timeout, role.

When SNS delivers to a subscription of protocol lambda (stack_resources.LAMBDA_DELIVERY), the runner
reads the function from moto's Lambda backend and runs it as Lambda runs an asynchronous invocation:
only if the function's resource policy lets sns.amazonaws.com invoke it from that topic; the code
from the function's own zip (its handler names the module and function); the function's environment
plus the execution role's keys; a context with its memory and timeout; the retries of its
EventInvokeConfig (2 by default) and, once they are spent, the record Lambda sends to its on-failure
destination (an SQS queue), sent under the execution role.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import threading
import uuid
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from moto.awslambda.utils import get_backend

#: Lambda's default number of retries of an asynchronous invocation.
DEFAULT_RETRIES = 2


@dataclass(frozen=True)
class StackFunction:
    """What the runner needs of one function (read from moto's Lambda backend)."""

    name: str
    arn: str
    handler: str
    environment: dict[str, str]
    memory: int
    timeout: float
    role: str
    code_sha: str
    code: bytes = field(repr=False)
    retries: int = DEFAULT_RETRIES
    on_failure: str | None = None
    policy: tuple[dict[str, Any], ...] = ()

    def allows_sns(self, topic_arn: str) -> bool:
        """Whether the resource policy lets sns.amazonaws.com invoke the function from `topic_arn`."""
        return any(_grants_sns(statement, topic_arn) for statement in self.policy)


def read_function(account_id: str, function_arn: str) -> StackFunction | None:
    """The function a subscription's endpoint names, or None when Lambda has no such function."""
    parts = function_arn.split(":")
    region, name = parts[3], parts[6]
    qualifier = parts[7] if len(parts) > 7 else None
    try:
        fn = get_backend(account_id, region).get_function(name, qualifier)
    except Exception:  # moto's UnknownFunctionException
        return None
    config = fn.event_invoke_config[-1].config if fn.event_invoke_config else {}
    destination = ((config.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
    return StackFunction(
        name=fn.function_name,
        arn=fn.function_arn,
        handler=fn.handler or "",
        environment={key: str(value) for key, value in (fn.environment_vars or {}).items()},
        memory=int(fn.memory_size or 128),
        timeout=float(fn.timeout or 3),
        role=fn.role,
        code_sha=fn.code_sha_256,
        code=fn.code_bytes or b"",
        retries=int(config.get("MaximumRetryAttempts", DEFAULT_RETRIES)),
        on_failure=destination,
        policy=tuple(fn.policy.statements),
    )


def _grants_sns(statement: dict[str, Any], topic_arn: str) -> bool:
    if statement.get("Effect") != "Allow":
        return False
    principal = statement.get("Principal")
    services = principal.get("Service") if isinstance(principal, dict) else principal
    services = services if isinstance(services, list) else [services]
    if not ({"sns.amazonaws.com", "*"} & set(services)):
        return False
    actions = statement.get("Action")
    actions = actions if isinstance(actions, list) else [actions]
    if not any(fnmatch.fnmatchcase("lambda:InvokeFunction", a) for a in actions):
        return False
    for operator, values in (statement.get("Condition") or {}).items():
        for key, wanted in values.items():
            if key.lower() != "aws:sourcearn":
                continue
            wanted = wanted if isinstance(wanted, list) else [wanted]
            if operator.startswith("Arn") or operator.startswith("String"):
                if not any(fnmatch.fnmatchcase(topic_arn, w) for w in wanted):
                    return False
    return True


class FunctionCode:
    """Each function's zip, unpacked once per code hash into a folder of its own."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._lock = threading.Lock()

    def handler_file(self, function: StackFunction) -> tuple[Path, str]:
        """The module file and the function name that the function's Handler (`index.lambda_handler`) names."""
        module, _, attribute = function.handler.rpartition(".")
        if not module or not attribute:
            raise ValueError(f"Bad handler {function.handler!r}: it must be module.function")
        folder = self._root / (
            function.code_sha.replace("/", "_").replace("+", "-").rstrip("=") or _digest(function.code)
        )
        with self._lock:
            if not folder.is_dir():
                partial = folder.with_name(folder.name + ".partial")
                with zipfile.ZipFile(io.BytesIO(function.code)) as archive:
                    archive.extractall(partial)
                partial.rename(folder)
        path = folder / (module.replace(".", "/") + ".py")
        if not path.is_file():
            raise ImportError(f"Unable to import module '{module}': No module named '{module}'")
        return path, attribute


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


def failure_record(function: StackFunction, event: dict[str, Any], error: BaseException, attempts: int) -> dict:
    """What Lambda sends to an on-failure destination once an asynchronous invocation's retries are spent."""
    return {
        "version": "1.0",
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": f"{function.arn}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": attempts,
        },
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": str(error), "errorType": type(error).__name__, "stackTrace": []},
    }

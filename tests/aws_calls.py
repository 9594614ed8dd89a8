"""Records the AWS calls a piece of code makes (botocore event hooks) and maps them to IAM requests.

`CallRecorder.attach(client, principal)` tags every call of that client with the principal whose role
makes it on AWS (a Lambda, the SageMaker endpoint, a pipeline step). `iam_requests(call)` says what
IAM checks for the call: the action, the resource ARN and the condition keys AWS sets for it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

#: Operations whose IAM action is not `<service>:<Operation>` (S3's object operations, multipart, list).
_S3_ACTIONS = {
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "DeleteObject": "s3:DeleteObject",
    "ListObjectsV2": "s3:ListBucket",
    "ListObjects": "s3:ListBucket",
}
_MISSING = {"404", "NoSuchKey", "NotFound"}


@dataclass(frozen=True)
class AwsCall:
    """One API call as the code made it, and the error code S3/SNS/SSM answered with (if any)."""

    principal: str
    service: str
    operation: str
    params: dict[str, Any] = field(hash=False)
    region: str = "us-east-1"
    error: str | None = None

    @property
    def missed(self) -> bool:
        """The call asked for an object that was not there (S3 answered 404/NoSuchKey)."""
        return self.error in _MISSING

    def __str__(self) -> str:
        shown = {k: v for k, v in self.params.items() if k in ("Bucket", "Key", "Prefix", "TopicArn", "Name")}
        return f"{self.principal}: {self.service} {self.operation} {shown}"


@dataclass(frozen=True)
class IamRequest:
    """What IAM evaluates for one call: an action on a resource, with its request's condition keys."""

    action: str
    resource: str
    context: dict[str, str] = field(default_factory=dict, hash=False)


class CallRecorder:
    """Collects the calls of every client attached to it, in order, from any thread."""

    def __init__(self) -> None:
        self.calls: list[AwsCall] = []
        self._lock = threading.Lock()

    def attach(self, client: Any, principal: str) -> Any:
        """Record `client`'s calls as made by `principal`; returns the client."""
        service = client.meta.service_model.service_name
        region = client.meta.region_name

        def before(params: dict, model: Any, context: dict, **_: Any) -> None:
            call = AwsCall(principal, service, model.name, dict(params), region)
            with self._lock:
                context["recorded_call"] = len(self.calls)
                self.calls.append(call)

        def after(parsed: dict, context: dict, **_: Any) -> None:
            index = context.get("recorded_call")
            code = (parsed or {}).get("Error", {}).get("Code")
            if index is not None and code:
                with self._lock:
                    call = self.calls[index]
                    self.calls[index] = AwsCall(
                        call.principal, call.service, call.operation, call.params, region, str(code)
                    )

        client.meta.events.register("before-parameter-build", before)
        client.meta.events.register("after-call", after)
        return client

    def of(self, principal: str) -> list[AwsCall]:
        with self._lock:
            return [call for call in self.calls if call.principal == principal]


def iam_requests(call: AwsCall, account: str = "123456789012") -> list[IamRequest]:
    """The IAM requests AWS authorizes for `call` (S3 object/list calls, SNS Publish, SSM parameters)."""
    p = call.params
    if call.service == "s3" and call.operation in _S3_ACTIONS:
        action = _S3_ACTIONS[call.operation]
        if action == "s3:ListBucket":
            return [IamRequest(action, f"arn:aws:s3:::{p['Bucket']}", {"s3:prefix": p.get("Prefix", "")})]
        return [IamRequest(action, f"arn:aws:s3:::{p['Bucket']}/{p['Key']}")]
    if call.service == "sns" and call.operation == "Publish":
        return [IamRequest("sns:Publish", p.get("TopicArn") or p.get("TargetArn"))]
    if call.service == "ssm" and "Name" in p:
        name = p["Name"].lstrip("/")
        return [IamRequest(f"ssm:{call.operation}", f"arn:aws:ssm:{call.region}:{account}:parameter/{name}")]
    return [IamRequest(f"{call.service}:{call.operation}", "*")]

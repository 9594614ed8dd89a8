"""IAM enforced: a request signed with a role session's keys (or an IAM user's) gets what its policies grant.

The local cloud's `_dispatch` hands every request to `Authorizer` first. The caller is found by the
SigV4 access key in moto's own STS and IAM state: a session that moto's AssumeRole created is
evaluated under the role's inline and attached policies, its permissions boundary and the session
policy; an IAM user's key under the user's and its groups' policies. Any other key (the dummy admin
key "testing" that the app and the tests use) acts as the account's administrator: only a bucket
policy's Deny refuses it, as on AWS. (moto's own bucket-policy check, which cannot evaluate
conditions and so refused everyone under a TLS-only policy, is kept from refusing anything.)

The action and its resources come from botocore's service models (`iam_request`, `iam_actions`);
the resource's own policy (bucket, topic, queue, key policy) joins the evaluation (`iam_policy`). A
refusal is the one AWS sends, in the protocol's own error shape: S3's 403 AccessDenied, SNS's
AuthorizationError, the query services' AccessDenied, the JSON services' AccessDeniedException. A
GET or HEAD of a missing S3 key answers 403, not 404, when the caller may not list that prefix.

Transport: the local cloud serves plain HTTP on 127.0.0.1 only. It counts that loopback link as
secure (`aws:SecureTransport` true, `s3:TlsVersion` 1.2), so the TLS-only Deny statements of our
bucket and topic policies hold without refusing every request; the rules over the synthesized
templates (tests/infra) check that those statements exist.

Not enforced: the SigV4 signature itself (the key, the session token and its expiry are checked),
service control policies, VPC endpoint policies, ACLs and object ownership, the per-key results of
DeleteObjects (one denied key refuses the whole request), IAM paths in role and user ARNs built from
names, and condition keys a request does not carry here (aws:SourceArn, kms:ViaService, tags on
resources…). Requests that no botocore model describes are refused for a role session.
"""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

from moto.core.utils import utcnow
from moto.iam.models import get_account_id_from, iam_backends
from moto.kms.models import kms_backends
from moto.s3.models import s3_backends
from moto.sns.models import sns_backends
from moto.sqs.models import sqs_backends
from moto.sts.models import sts_backends

from app.services.local_cloud.iam_actions import Where, asks
from app.services.local_cloud.iam_policy import Ask, Caller, Decision, ResourcePolicy, decide
from app.services.local_cloud.iam_request import Call, Signature, identify, needs_body, s3_bucket, signature

log = logging.getLogger(__name__)

#: Set on a request's environ once the authorizer has let it through.
CHECKED = "local_cloud.iam.checked"
_PARTITION = "aws"
App = Callable[[dict[str, Any], Callable], Iterable[bytes]]


@dataclass(frozen=True, slots=True)
class Refusal:
    """One request the local cloud refused, as AWS would have."""

    caller: str
    action: str
    resource: str
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class _Session:
    """What the credential check needs of the caller's keys."""

    caller: Caller
    token: str | None  # the session token that must come with the key (None: none may)
    expires: datetime | None
    active: bool = True


class Authorizer:
    """The IAM check in front of moto, the endpoint emulator and the Lambda runner."""

    def __init__(self) -> None:
        self.refusals: deque[Refusal] = deque(maxlen=500)
        _moto_bucket_policies_never_refuse()

    def __call__(self, environ: dict[str, Any], start_response: Callable, app: App) -> Iterable[bytes]:
        environ[CHECKED] = True
        if environ.get("PATH_INFO") == "/moto-api/reset":
            self.refusals.clear()
        signed = signature(environ)
        if signed is None:
            return app(environ, start_response)
        session = _session(signed.access_key)
        admin = session is None
        if session is None:
            if signed.service != "s3" or not _has_policy(s3_bucket(environ)):
                return app(environ, start_response)
            account = environ.get("HTTP_X_MOTO_ACCOUNT_ID") or get_account_id_from(signed.access_key)
            session = _Session(_admin(account), signed.token, None)
        body = _buffered(environ) if needs_body(environ, signed) else b""
        request = _Request(environ, start_response, app, signed, identify(environ, signed, body), session.caller)
        problem = _credential_problem(session, signed)
        if problem is not None:
            return self._refuse(request, *problem)
        if request.call is None:
            if admin:
                return app(environ, start_response)
            return self._refuse(request, "denied", "*", "*", "the local cloud cannot tell which operation this is")
        return self._authorized(request)

    def _authorized(self, request: _Request) -> Iterable[bytes]:
        call, caller = request.call, request.caller
        assert call is not None
        where = Where(_PARTITION, request.signed.region, caller.account)
        context = _context(request.environ, caller, request.signed)
        for ask in _with_implied(asks(call, where, context), where):
            decision = _decide(caller, ask, where)
            if not decision.allowed:
                return self._refuse(request, "denied", ask.action, ask.resource, _not_authorized(caller, ask, decision))
        if call.service == "s3" and call.operation in ("GetObject", "HeadObject"):
            # S3's own check carries no s3:prefix: a ListBucket grant limited to prefixes does not count.
            listing = Ask("s3:ListBucket", f"arn:{_PARTITION}:s3:::{call.params['Bucket']}", context)
            decision = _decide(caller, listing, where)
            if not decision.allowed:
                refused = ("denied", listing.action, listing.resource, _not_authorized(caller, listing, decision))
                return self._hiding_missing(request, refused)
        return request.app(request.environ, request.start_response)

    def _hiding_missing(self, request: _Request, refused: tuple[str, str, str, str]) -> Iterable[bytes]:
        """S3 answers 403 for a missing key to a caller who may not list the bucket, so that it learns nothing."""
        seen: list[tuple[str, list[tuple[str, str]]]] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
            seen.append((status, headers))
            return lambda data: None

        answer = request.app(request.environ, capture)
        if not seen:
            answer = list(answer)
        status, headers = seen[-1]
        if status.startswith("404") and request.call and _bucket(request.call.params["Bucket"]) is not None:
            if hasattr(answer, "close"):
                answer.close()
            return self._refuse(request, *refused)
        request.start_response(status, headers)
        return answer

    def _refuse(self, request: _Request, kind: str, action: str, resource: str, message: str) -> list[bytes]:
        code, status = _error_code(request.call, request.signed, kind, action)
        self.refusals.append(Refusal(request.caller.arn, action, resource, code, message))
        log.info("IAM refused %s on %s to %s: %s", action, resource, request.caller.arn, code)
        headers, body = _error_body(request.call, request.environ, code, message)
        _drain(request.environ)
        request.start_response(f"{status} {_REASONS[status]}", headers)
        return [b"" if request.environ.get("REQUEST_METHOD") == "HEAD" else body]


@dataclass(frozen=True, slots=True)
class _Request:
    environ: dict[str, Any]
    start_response: Callable
    app: App
    signed: Signature
    call: Call | None
    caller: Caller


#: What the dummy admin key may do: anything its identity may, so that only resource policies' Denies refuse it.
_ALLOW_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def _admin(account: str) -> Caller:
    root = f"arn:{_PARTITION}:iam::{account}:root"
    return Caller(root, root, account, (_ALLOW_ALL,))


def _has_policy(bucket_name: str | None) -> bool:
    bucket = _bucket(bucket_name) if bucket_name else None
    return bool(bucket is not None and bucket.policy)


def _moto_bucket_policies_never_refuse() -> None:
    """moto applies bucket policies to object calls itself, with conditions it cannot evaluate: a TLS-only
    Deny then refuses everyone. Its check may still grant (anonymous reads of a public bucket); refusing
    is the authorizer's, which evaluates the conditions."""
    from moto.iam.access_control import PermissionResult
    from moto.s3.models import FakeBucket

    original = FakeBucket.get_permission
    if getattr(original, "_local_cloud", False):
        return

    def get_permission(self: Any, action: str, resource: str) -> Any:
        found = original(self, action, resource)
        return PermissionResult.NEUTRAL if found == PermissionResult.DENIED else found

    get_permission._local_cloud = True  # type: ignore[attr-defined]
    FakeBucket.get_permission = get_permission  # type: ignore[method-assign]


def _session(access_key: str) -> _Session | None:
    """The role session or IAM user that holds the key, from moto's state; None for any other key."""
    if not access_key.startswith(("ASIA", "AKIA")):
        return None
    account = get_account_id_from(access_key)
    iam = iam_backends[account][_PARTITION]
    if access_key.startswith("ASIA"):
        assumed = sts_backends[account][_PARTITION].get_assumed_role_from_access_key(access_key)
        if assumed is None:
            return None
        role = next((r for r in iam.get_roles() if r.arn == assumed.role_arn), None)
        documents = _documents(role) if role else []
        boundary = _managed(iam, role.permissions_boundary_arn) if role else None
        caller = Caller(
            assumed.arn,
            assumed.role_arn,
            assumed.account_id,
            tuple(documents),
            boundary,
            assumed.policy or None,
            assumed.user_id,
        )
        return _Session(caller, assumed.session_token, assumed.expiration)
    user = iam.get_user_from_access_key_id(access_key)
    if user is None:
        return None
    documents = _documents(user)
    for group in iam.get_groups_for_user(user.name):
        documents += _documents(group)
    active = all(k.status == "Active" for k in user.access_keys if k.access_key_id == access_key)
    caller = Caller(user.arn, user.arn, account, tuple(documents), user_id=user.id)  # moto keeps no user boundary
    return _Session(caller, None, None, active)


def _documents(holder: Any) -> list[Any]:
    """The inline and attached policies of a moto role, user or group."""
    return list(holder.policies.values()) + [_default(p) for p in holder.managed_policies.values()]


def _default(policy: Any) -> Any:
    return next((v.document for v in policy.versions if v.is_default), None)


def _managed(iam: Any, arn: str | None) -> Any:
    if not arn:
        return None
    found = iam.managed_policies.get(arn) or next((p for p in iam.aws_managed_policies if p.arn == arn), None)
    return _default(found) if found else None


def _credential_problem(session: _Session, signed: Signature) -> tuple[str, str, str, str] | None:
    if not session.active or (session.token or None) != (signed.token or None):
        return ("invalid", "*", "*", "The security token included in the request is invalid.")
    if session.expires is not None and session.expires < utcnow():
        return ("expired", "*", "*", "The security token included in the request is expired")
    return None


def _buffered(environ: dict[str, Any]) -> bytes:
    """Read the body once and put it back for whoever serves the request."""
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _drain(environ: Mapping[str, Any]) -> None:
    """Read what the client sends before answering: it may not read the answer before it has sent all."""
    stream = environ.get("wsgi.input")
    left = int(environ.get("CONTENT_LENGTH") or 0)
    if stream is None:
        return
    if environ.get("wsgi.input_terminated"):
        while stream.read(1 << 16):
            pass
        return
    while left > 0:
        chunk = stream.read(min(left, 1 << 16))
        if not chunk:
            return
        left -= len(chunk)


def _context(environ: Mapping[str, Any], caller: Caller, signed: Signature) -> dict[str, tuple[str, ...]]:
    """The global condition keys of the request (lower-case names)."""
    now = datetime.now(UTC)
    kind = "AssumedRole" if ":assumed-role/" in caller.arn else "User"
    found = {
        "aws:securetransport": ("true",),
        "s3:tlsversion": ("1.2",),
        "aws:principalarn": (caller.principal_arn,),
        "aws:principalaccount": (caller.account,),
        "aws:principaltype": (kind,),
        "aws:requestedregion": (signed.region,),
        "aws:sourceip": (environ.get("REMOTE_ADDR", "127.0.0.1"),),
        "aws:currenttime": (now.strftime("%Y-%m-%dT%H:%M:%SZ"),),
        "aws:epochtime": (str(int(now.timestamp())),),
        "s3:signatureversion": ("AWS4-HMAC-SHA256",),
        "s3:authtype": ("REST-QUERY-STRING" if signed.presigned else "REST-HEADER",),
    }
    if kind == "User":
        found["aws:username"] = (caller.arn.rsplit("/", 1)[-1],)
    if caller.user_id:
        found["aws:userid"] = (caller.user_id,)
    return found


def _with_implied(found: list[Ask], where: Where) -> list[Ask]:
    """Add the checks AWS makes on the caller's behalf: publishing to an encrypted topic uses its KMS key."""
    extra = []
    for ask in found:
        if ask.action.lower() == "sns:publish":
            topic = _topic(ask.resource)
            if topic is not None and topic.kms_master_key_id:
                key = _key_arn(topic.kms_master_key_id, where)
                extra += [Ask("kms:GenerateDataKey", key, ask.context), Ask("kms:Decrypt", key, ask.context)]
    return [_resolved_alias(ask, where) for ask in found + extra]


def _resolved_alias(ask: Ask, where: Where) -> Ask:
    if ask.action.lower().startswith("kms:") and ":alias/" in ask.resource and "alias" not in ask.action.lower():
        return Ask(ask.action, _key_arn(ask.resource, where), ask.context)
    return ask


def _key_arn(key: str, where: Where) -> str:
    region = key.split(":")[3] if key.startswith("arn:") else where.region
    backend = kms_backends[where.account][region]
    try:
        # An ARN's resource is `key/<id>` or `alias/<name>`; moto looks keys up by their bare id.
        named = key.split(":", 5)[5] if key.startswith("arn:") else key
        key_id = backend.any_id_to_key_id(named.removeprefix("key/"))
    except Exception:  # an unknown alias: name it as it was given
        return key if key.startswith("arn:") else where.arn("kms", key)
    return f"arn:{where.partition}:kms:{region}:{where.account}:key/{key_id}"


def _decide(caller: Caller, ask: Ask, where: Where) -> Decision:
    policy, owner = _resource_policy(ask, where)
    account = owner or _arn_account(ask.resource)
    if account:  # aws:ResourceAccount (and S3's own s3:ResourceAccount): the account that owns the resource
        keys = {"aws:resourceaccount": (account,)}
        if ask.action.lower().startswith("s3:"):
            keys["s3:resourceaccount"] = (account,)
        keys.update(_role_tags(ask.resource))
        ask = Ask(ask.action, ask.resource, {**ask.context, **keys})
    return decide(caller, ask, policy, owner=owner)


def _role_tags(resource: str) -> dict[str, tuple[str, ...]]:
    """aws:ResourceTag/<key> and iam:ResourceTag/<key> of an IAM role (CDK pipelines assume bootstrap roles by tag)."""
    parts = resource.split(":", 5)
    if len(parts) < 6 or parts[2] != "iam" or not parts[5].startswith("role/"):
        return {}
    role = next((r for r in iam_backends[parts[4]][_PARTITION].get_roles() if r.arn == resource), None)
    found: dict[str, tuple[str, ...]] = {}
    tags = getattr(role, "tags", None) or []
    for tag in tags.values() if isinstance(tags, dict) else tags:
        for prefix in ("aws", "iam"):
            found[f"{prefix}:resourcetag/{tag['Key']}".lower()] = (str(tag["Value"]),)
    return found


def _arn_account(resource: str) -> str | None:
    parts = resource.split(":", 5)
    return parts[4] if len(parts) == 6 and parts[0] == "arn" and parts[4].isdigit() else None


def _resource_policy(ask: Ask, where: Where) -> tuple[ResourcePolicy | None, str | None]:
    """The policy attached to the ask's resource and the account that owns it, from moto's state."""
    service, parts = ask.action.split(":", 1)[0].lower(), ask.resource.split(":")
    if service == "s3" and ask.resource.startswith("arn:"):
        name = ask.resource.split(":::", 1)[-1].split("/", 1)[0]
        owner = s3_backends.bucket_accounts.get(name, (None, None))[1]
        bucket = _bucket(name)
        return (ResourcePolicy(bucket.policy) if bucket is not None and bucket.policy else None), owner
    if len(parts) < 6:
        return None, None
    if ask.action.lower() == "sts:assumerole" and parts[2] == "iam":
        role = next((r for r in iam_backends[parts[4]][_PARTITION].get_roles() if r.arn == ask.resource), None)
        return (ResourcePolicy(role.assume_role_policy_document, delegates=True) if role else None), parts[4]
    if service == "sns":
        topic = _topic(ask.resource)
        return (ResourcePolicy(topic.policy) if topic else None), parts[4]
    if service == "sqs":
        queue = sqs_backends[parts[4]][parts[3]].queues.get(parts[5])
        return (ResourcePolicy(queue.policy) if queue is not None and queue.policy else None), parts[4]
    if service == "kms" and parts[5].startswith("key/"):
        key = kms_backends[parts[4]][parts[3]].keys.get(parts[5][4:])
        return (ResourcePolicy(key.policy, delegates=True) if key is not None else None), parts[4]
    return None, parts[4] or None


def _bucket(name: str) -> Any:
    owner = s3_backends.bucket_accounts.get(name)
    return s3_backends[owner[1]][owner[0]].buckets.get(name) if owner else None


def _topic(arn: str) -> Any:
    parts = arn.split(":")
    return sns_backends[parts[4]][parts[3]].topics.get(arn) if len(parts) == 6 and parts[2] == "sns" else None


def _not_authorized(caller: Caller, ask: Ask, decision: Decision) -> str:
    return (
        f"User: {caller.arn} is not authorized to perform: {ask.action} on resource: {ask.resource} {decision.reason}"
    )


_REASONS = {400: "Bad Request", 403: "Forbidden"}
#: (service or wire) → the code and HTTP status of (denied, invalid token, expired token).
_CODES = {
    "s3": (("AccessDenied", 403), ("InvalidToken", 400), ("ExpiredToken", 400)),
    "sns": (("AuthorizationError", 403), ("InvalidClientTokenId", 403), ("ExpiredToken", 403)),
    "query": (("AccessDenied", 403), ("InvalidClientTokenId", 403), ("ExpiredToken", 403)),
    "json": (("AccessDeniedException", 400), ("UnrecognizedClientException", 400), ("ExpiredTokenException", 400)),
    "rest": (("AccessDeniedException", 403), ("UnrecognizedClientException", 403), ("ExpiredTokenException", 403)),
}
_KINDS = ("denied", "invalid", "expired")


def _error_code(call: Call | None, signed: Signature, kind: str, action: str) -> tuple[str, int]:
    service = call.service if call else signed.service
    if kind == "denied" and service == "sns" and action.lower().startswith("kms:"):
        return ("KMSAccessDenied", 400)  # SNS's words when the topic's key refuses the publisher
    wire = call.wire if call else ("rest-xml" if service == "s3" else "json")
    if service in _CODES:
        table = _CODES[service]
    elif wire == "query" or (call is not None and call.query_compatible):
        table = _CODES["query"]
    else:
        table = _CODES["rest" if wire.startswith("rest-") else "json"]
    return table[_KINDS.index(kind)]


def _error_body(call: Call | None, environ: Mapping[str, Any], code: str, message: str) -> tuple[list, bytes]:
    """The error in the shape the request's protocol parses (botocore reads the code from it)."""
    request_id = str(uuid.uuid4())
    wire = call.wire if call else ("json" if environ.get("HTTP_X_AMZ_TARGET") else "rest-xml")
    headers = [("x-amzn-RequestId", request_id)]
    if call is not None and call.service == "s3" or (call is None and wire == "rest-xml"):
        text = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{escape(message)}'
            f"</Message><RequestId>{request_id}</RequestId><HostId>local-cloud</HostId></Error>"
        )
        return headers + [("Content-Type", "application/xml"), ("x-amz-request-id", request_id)], text.encode()
    if wire in ("query", "rest-xml"):
        text = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{escape(message)}</Message>"
            f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        return headers + [("Content-Type", "text/xml")], text.encode()
    headers.append(("x-amzn-ErrorType", code))
    if call is not None and call.query_compatible:
        headers.append(("x-amzn-query-error", f"{code};Sender"))
    if wire == "cbor":
        return headers + [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor")], _cbor(
            {"__type": code, "message": message}
        )
    content_type = "application/json" if wire == "rest-json" else "application/x-amz-json-1.1"
    return headers + [("Content-Type", content_type)], json.dumps({"__type": code, "message": message}).encode()


def _cbor(fields: Mapping[str, str]) -> bytes:
    """A CBOR map of text strings (all an RPC v2 error needs)."""

    def head(major: int, size: int) -> bytes:
        if size < 24:
            return bytes([major << 5 | size])
        for extra, length in ((24, 1), (25, 2), (26, 4)):
            if size < 1 << (8 * length):
                return bytes([major << 5 | extra]) + size.to_bytes(length, "big")
        raise ValueError("too long")

    out = bytearray(head(5, len(fields)))
    for key, value in fields.items():
        for text in (key.encode(), value.encode()):
            out += head(3, len(text)) + text
    return bytes(out)

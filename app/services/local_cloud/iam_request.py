"""Which operation a signed request calls, read from the wire with botocore's own service models.

The service comes from the SigV4 scope; the operation from X-Amz-Target (JSON protocols), `Action=`
(query), the `/service/…/operation/…` path (RPC v2 CBOR), or the method, path, query and headers of
a REST call matched against each operation's `requestUri` and required members (S3 by path or by
virtual host). The parameters come back by member name, as a client would pass them.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl
from xml.etree import ElementTree

import botocore.session
from botocore.exceptions import UnknownServiceError
from botocore.model import ServiceModel

#: Signing names that are not one botocore service of the same name.
_SIGNED_AS = {
    "monitoring": ("cloudwatch",),
    "sagemaker": ("sagemaker", "sagemaker-runtime"),
    "servicequotas": ("service-quotas",),
}
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")
_QUERY_CREDENTIAL = re.compile(r"^([^/]+)/\d{8}/([^/]+)/([^/]+)/aws4_request$")
_CBOR_PATH = re.compile(r"^/service/([^/]+)/operation/([^/]+)$")
_VIRTUAL_HOST = re.compile(r"^(?P<bucket>.+?)\.(?:s3[.-]|localhost$)")


@dataclass(frozen=True, slots=True)
class Signature:
    """The SigV4 credential scope of a request (header or presigned query string)."""

    access_key: str
    token: str | None
    region: str
    service: str  # the signing name: "s3", "sagemaker", "monitoring"…
    presigned: bool = False


@dataclass(frozen=True, slots=True)
class Call:
    """One operation of one botocore service, with its parameters by member name."""

    service: str
    operation: str
    wire: str  # "json", "query", "rest-json", "rest-xml" or "cbor"
    params: Mapping[str, Any] = field(default_factory=dict)
    query_compatible: bool = False


def signature(environ: Mapping[str, Any]) -> Signature | None:
    """The access key, session token and scope of a SigV4 request; None for an unsigned one."""
    found = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    if found:
        return Signature(found[1], environ.get("HTTP_X_AMZ_SECURITY_TOKEN"), found[2], found[3])
    query = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
    found = _QUERY_CREDENTIAL.match(query.get("X-Amz-Credential", ""))
    if found:
        return Signature(found[1], query.get("X-Amz-Security-Token"), found[2], found[3], presigned=True)
    return None


def path_of(environ: Mapping[str, Any]) -> str:
    """The decoded path (WSGI carries it as latin-1 of the raw bytes)."""
    return environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "replace") or "/"


def needs_body(environ: Mapping[str, Any], signed: Signature) -> bool:
    """Whether the operation or its resource is in the body: never for S3 but DeleteObjects, never for REST."""
    if environ.get("REQUEST_METHOD") != "POST" or not environ.get("CONTENT_LENGTH"):
        return False
    if signed.service == "s3":
        return "delete" in dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
    content_type = environ.get("CONTENT_TYPE", "")
    return bool(environ.get("HTTP_X_AMZ_TARGET")) or content_type.startswith("application/x-www-form-urlencoded")


def identify(environ: Mapping[str, Any], signed: Signature, body: bytes = b"") -> Call | None:
    """The call a request makes, or None when no model of the signing service describes it."""
    models = _models(signed.service)
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        prefix, _, operation = target.rpartition(".")
        model = next((m for m in models if m.metadata.get("targetPrefix") == prefix), None)
        return model and _call(model, operation, "json", _json(body))
    query = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
    if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        query.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    if "Action" in query and any(m.resolved_protocol == "query" for m in models):
        model = next(m for m in models if m.resolved_protocol == "query")
        return _call(model, query["Action"], "query", query)
    cbor = _CBOR_PATH.match(path_of(environ))
    if cbor and environ.get("HTTP_SMITHY_PROTOCOL"):
        model = next((m for m in models if m.metadata.get("targetPrefix") == cbor[1]), None)
        return model and _call(model, cbor[2], "cbor", {})
    for model in models:
        if model.resolved_protocol.startswith("rest-"):
            found = _rest_call(model, environ, query, body)
            if found is not None:
                return found
    return None


def _call(model: ServiceModel, operation: str, wire: str, params: Mapping[str, Any]) -> Call | None:
    if operation not in model.operation_names:
        return None
    return Call(model.service_name, operation, wire, params, model.is_query_compatible)


def _json(body: bytes) -> dict[str, Any]:
    try:
        found = json.loads(body or b"{}")
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


@lru_cache(maxsize=64)
def _models(signing_name: str) -> tuple[ServiceModel, ...]:
    session = botocore.session.get_session()
    found = []
    for name in _SIGNED_AS.get(signing_name, (signing_name,)):
        try:
            found.append(session.get_service_model(name))
        except UnknownServiceError:
            continue
    return tuple(found)


@dataclass(frozen=True, slots=True)
class _Route:
    operation: str
    method: str
    path: re.Pattern[str]
    labels: tuple[str, ...]  # member names of the path's groups, in order
    literal_query: tuple[tuple[str, str], ...]
    required: tuple[tuple[str, str], ...]  # (location, name) of required query and header members
    located: tuple[tuple[str, str, str], ...]  # (location, name, member) of every query and header member
    weight: int  # literal characters of the path: the more, the more specific


@lru_cache(maxsize=64)
def _routes(model: ServiceModel) -> tuple[_Route, ...]:
    return tuple(_route(model.operation_model(name)) for name in model.operation_names)


def _route(operation: Any) -> _Route:
    uri = operation.http.get("requestUri", "/")
    path, _, literal = uri.partition("?")
    members = operation.input_shape.members if operation.input_shape else {}
    by_location = {
        m.serialization.get("name", n): n for n, m in members.items() if m.serialization.get("location") == "uri"
    }
    regex, labels, position = [], [], 0
    for match in re.finditer(r"\{([^}]+?)(\+?)\}", path):
        regex.append(re.escape(path[position : match.start()]))
        regex.append("(.+)" if match[2] else "([^/]+)")
        labels.append(by_location.get(match[1], match[1]))
        position = match.end()
    regex.append(re.escape(path[position:]))
    tail = "" if path.endswith("+}") or path == "/" else "/?"
    required = operation.input_shape.required_members if operation.input_shape else []
    located = tuple(
        (m.serialization["location"], m.serialization.get("name", n), n)
        for n, m in members.items()
        if m.serialization.get("location") in ("querystring", "header")
    )
    return _Route(
        operation.name,
        operation.http.get("method", "POST"),
        re.compile("".join(regex) + tail),
        tuple(labels),
        tuple(parse_qsl(literal, keep_blank_values=True)),
        tuple((loc, name) for loc, name, member in located if member in required),
        located,
        len(re.sub(r"\{[^}]+\}", "", path)),
    )


def _rest_call(model: ServiceModel, environ: Mapping[str, Any], query: Mapping[str, str], body: bytes) -> Call | None:
    method, path = environ.get("REQUEST_METHOD", "GET"), path_of(environ)
    if model.service_name == "s3":
        bucket = _virtual_bucket(environ.get("HTTP_HOST", ""))
        path = f"/{bucket}{path}" if bucket else path
    headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
    places = {"querystring": query, "header": headers}
    best: tuple[tuple[int, int, int], _Route, re.Match[str]] | None = None
    for route in _routes(model):
        matched = route.method == method and route.path.fullmatch(path)
        if not matched or any(query.get(k) != v and not (v == "" and k in query) for k, v in route.literal_query):
            continue
        if any((name.lower() if loc == "header" else name) not in places[loc] for loc, name in route.required):
            continue
        score = (len(route.literal_query), len(route.required), route.weight)
        if best is None or score > best[0]:
            best = (score, route, matched)
    if best is None:
        return None
    _, route, matched = best
    params: dict[str, Any] = dict(zip(route.labels, matched.groups(), strict=True))
    for loc, name, member in route.located:
        value = places[loc].get(name.lower() if loc == "header" else name)
        if value is not None:
            params[member] = value
    if route.operation == "DeleteObjects":
        params["Delete"] = {"Objects": [{"Key": key} for key in _deleted_keys(body)]}
    return Call(model.service_name, route.operation, model.resolved_protocol, params)


def s3_bucket(environ: Mapping[str, Any]) -> str | None:
    """The bucket an S3 request names, by virtual host or as the path's first segment."""
    return _virtual_bucket(environ.get("HTTP_HOST", "")) or path_of(environ).lstrip("/").split("/", 1)[0] or None


def _virtual_bucket(host: str) -> str | None:
    """The bucket of a virtual-hosted S3 request (`bucket.s3.amazonaws.com`, `bucket.localhost:5000`)."""
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    try:
        ipaddress.ip_address(name.strip("[]"))
        return None
    except ValueError:
        found = _VIRTUAL_HOST.match(name)
        return found["bucket"] if found else None


def _deleted_keys(body: bytes) -> list[str]:
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return []
    return [element.text or "" for element in root.iter() if element.tag.rsplit("}", 1)[-1] == "Key"]

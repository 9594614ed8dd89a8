"""The AWS JSON 1.1 wire of the calls the local cloud answers itself (CodePipeline, Application Auto Scaling's
scaling activities, Service Quotas): the request's body, a page of a listing, and the answer."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import Any

import orjson


def request_body(environ: dict[str, Any]) -> dict[str, Any]:
    """The request's JSON object ({} for an empty body)."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    return (orjson.loads(environ["wsgi.input"].read(length) or b"{}") if length else {}) or {}


def page(found: list[Any], body: dict[str, Any], most: int) -> tuple[list[Any], str | None]:
    """One page of `found` as MaxResults (at most `most`) and NextToken ask, and the next page's token."""
    size = min(int(body.get("MaxResults") or most), most)
    first = int(body.get("NextToken") or 0)
    return found[first : first + size], (str(first + size) if first + size < len(found) else None)


def answer(
    start_response: Callable, status: str, payload: dict[str, Any], headers: Iterable[tuple[str, str]] = ()
) -> list[bytes]:
    data = orjson.dumps(payload)
    start_response(
        status,
        [
            *headers,
            ("Content-Type", "application/x-amz-json-1.1"),
            ("Content-Length", str(len(data))),
            ("x-amzn-RequestId", str(uuid.uuid4())),
        ],
    )
    return [data]

"""`images/<id>/manifest.json`: written last, so its presence means the images are complete.

Ours carries status and parameters. The AWS guidance's Lambda writes only
`imageId`, `prompt` and `imageKeys`; both are read here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from .keys import image_prefix

STATUS_COMPLETED = "completed"
STATUS_FAILED = "failed"


class ManifestError(ValueError):
    """A manifest we cannot trust; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class Manifest:
    inference_id: str
    status: str
    image_keys: tuple[str, ...] = ()
    request: dict[str, Any] = field(default_factory=dict)
    width: int | None = None
    height: int | None = None
    created: str | None = None
    reason: str | None = None
    guidance_form: bool = False

    def to_json(self) -> bytes:
        data: dict[str, Any] = {
            "inferenceId": self.inference_id,
            "status": self.status,
            "imageKeys": list(self.image_keys),
            "request": self.request,
            "width": self.width,
            "height": self.height,
            "created": self.created,
        }
        if self.reason:
            data["reason"] = self.reason
        return orjson.dumps(data)


def parse_manifest(body: bytes | dict[str, Any], inference_id: str) -> Manifest:
    """Parse our manifest or the guidance's; every image key must lie in `images/<id>/`."""
    try:
        data = body if isinstance(body, dict) else orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ManifestError(f"the manifest of {inference_id} is not JSON") from None
    if not isinstance(data, dict):
        raise ManifestError(f"the manifest of {inference_id} is not a JSON object")
    guidance = "status" not in data
    status = STATUS_COMPLETED if guidance else data["status"]
    if status not in (STATUS_COMPLETED, STATUS_FAILED):
        raise ManifestError(f"the manifest of {inference_id} has an unknown status {status!r}")
    keys = data.get("imageKeys")
    if status == STATUS_COMPLETED:
        if not isinstance(keys, list) or not keys:
            raise ManifestError(f"the manifest of {inference_id} lists no imageKeys")
        prefix = image_prefix(inference_id)
        for key in keys:
            if not isinstance(key, str) or not key.startswith(prefix) or ".." in key.split("/"):
                raise ManifestError(f"the manifest of {inference_id} points outside {prefix}: {key!r}")
    request = data.get("request")
    if not isinstance(request, dict):
        request = {"prompt": data["prompt"]} if isinstance(data.get("prompt"), str) else {}
    return Manifest(
        inference_id=inference_id,
        status=status,
        image_keys=tuple(keys or ()),
        request=request,
        width=_int(data.get("width")),
        height=_int(data.get("height")),
        created=data.get("created") if isinstance(data.get("created"), str) else None,
        reason=data.get("reason") if isinstance(data.get("reason"), str) else None,
        guidance_form=guidance,
    )


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None

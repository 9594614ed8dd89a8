"""The S3 key layout and SSM parameter names that every part of the product shares."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

from .ids import check_inference_id

REQUESTS = "requests/"
OUTPUT = "output/"
FAILURES = "failures/"
MESSAGES = "messages/"
#: `messages-by-time/<eventTime>_<id>`: written by our save_message after `messages/<id>.json`,
#: so a tracker lists new notifications in time order whatever the ids look like.
MESSAGE_INDEX = "messages-by-time/"
IMAGES = "images/"
MANIFEST_NAME = "manifest.json"

APP_NAME = "diffusion-desk"
#: The prefix the AWS guidance's own CDK app writes its parameters under.
GUIDANCE_APP_NAME = "simple-gen-ai-service"
#: The tag the endpoint stack puts on every resource: its value is the deployment's name (Budgets and
#: Cost Explorer filter by it once it is activated as a cost allocation tag).
DEPLOYMENT_TAG = "diffusion-desk:deployment"
#: The one-time scheduled action that ends Keep warm (Application Auto Scaling runs it even with the app closed).
KEEP_WARM_ACTION = "diffusion-desk-keep-warm-end"

BUCKET_PARAM = "bucketName"
ENDPOINT_PARAM = "endpointName"
SUCCESS_TOPIC_PARAM = "successTopicArn"
ERROR_TOPIC_PARAM = "errorTopicArn"
#: The model family (contract.families) of the main endpoint's model; absent means text to image.
FAMILY_PARAM = "endpointFamily"
#: The endpoint of each companion model a deployment may have, by its family's name.
COMPANION_PARAMS: dict[str, str] = {"upscale": "upscaleEndpointName", "inpaint": "inpaintEndpointName"}
#: Written by the pipeline's model build step, read by the endpoint stack at deploy time.
MODEL_IMAGE_PARAM = "modelImageUri"
MODEL_DATA_PARAM = "modelDataUrl"
#: The environment variable that names a Lambda function's bucket (set by infra and the local cloud).
BUCKET_ENV = "BUCKET_NAME"


def lambda_bucket(environ: Mapping[str, str]) -> str:
    """The bucket a Lambda function works in, from its environment; RuntimeError when it has none."""
    bucket = environ.get(BUCKET_ENV)
    if not bucket:
        raise RuntimeError(f"{BUCKET_ENV} is not set: the function is deployed without its bucket")
    return bucket


def request_key(inference_id: str) -> str:
    return f"{REQUESTS}{check_inference_id(inference_id)}.json"


def message_key(inference_id: str) -> str:
    return f"{MESSAGES}{check_inference_id(inference_id)}.json"


_INDEX_TIME_FORMAT = "%Y%m%dT%H%M%S%fZ"


def message_index_key(event_time: datetime, inference_id: str) -> str:
    """`messages-by-time/20261125T145500123456Z_<id>`: sorts by the notification's UTC time."""
    if event_time.tzinfo is None:
        raise ValueError("the event time needs a time zone")
    stamp = event_time.astimezone(UTC).strftime(_INDEX_TIME_FORMAT)
    return f"{MESSAGE_INDEX}{stamp}_{check_inference_id(inference_id)}"


def message_index_after(when: datetime) -> str:
    """A StartAfter for `messages-by-time/` that lists every entry at or after `when`."""
    if when.tzinfo is None:
        raise ValueError("the time needs a time zone")
    return f"{MESSAGE_INDEX}{when.astimezone(UTC).strftime(_INDEX_TIME_FORMAT)}"


def parse_message_index_key(key: str) -> tuple[datetime, str] | None:
    """The time and inference id in a `messages-by-time/` key, or None."""
    if not key.startswith(MESSAGE_INDEX):
        return None
    stamp, sep, inference_id = key[len(MESSAGE_INDEX) :].partition("_")
    try:
        when = datetime.strptime(stamp, _INDEX_TIME_FORMAT).replace(tzinfo=UTC)
        return (when, check_inference_id(inference_id)) if sep else None
    except ValueError:
        return None


def object_listed(s3: Any, bucket: str, key: str) -> bool:
    """Whether `key` exists, asked as a listing of the key itself.

    HeadObject and GetObject answer 404 for a missing key only to a caller allowed s3:ListBucket for a
    request that carries no prefix: a grant limited by an `s3:prefix` condition gets 403 there, which
    cannot be told from a real refusal. The listing is exactly what such a grant covers.
    """
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1).get("Contents", [])
    return bool(listed) and listed[0].get("Key") == key


def image_prefix(inference_id: str) -> str:
    return f"{IMAGES}{check_inference_id(inference_id)}/"


def image_key(inference_id: str, index: int) -> str:
    return f"{image_prefix(inference_id)}{int(index)}.png"


def manifest_key(inference_id: str) -> str:
    return f"{image_prefix(inference_id)}{MANIFEST_NAME}"


def id_from_key(key: str, prefix: str) -> str | None:
    """The inference id in `messages/<id>.json` or `images/<id>/…`, or None."""
    if not key.startswith(prefix):
        return None
    rest = key[len(prefix) :]
    if prefix == IMAGES:
        rest, sep, _ = rest.partition("/")
        if not sep:
            return None
    elif rest.endswith(".json"):
        rest = rest[: -len(".json")]
    else:
        return None
    try:
        return check_inference_id(rest)
    except ValueError:
        return None


def ssm_root(app: str = APP_NAME) -> str:
    """The SSM path under which every deployment of `app` keeps its parameters."""
    return f"/{app}/"


def ssm_prefix(deployment: str, app: str = APP_NAME) -> str:
    if not deployment or "/" in deployment:
        raise ValueError(f"a deployment name is one path segment, not {deployment!r}")
    return f"{ssm_root(app)}{deployment}/"


def parse_ssm_name(name: str, app: str = APP_NAME) -> tuple[str, str] | None:
    """(deployment, parameter) of a parameter name made by `ssm_name`, or None for any other name."""
    root = ssm_root(app)
    if not name.startswith(root):
        return None
    deployment, sep, param = name[len(root) :].partition("/")
    return (deployment, param) if sep and deployment and param and "/" not in param else None


def ssm_name(deployment: str, param: str, app: str = APP_NAME) -> str:
    return f"{ssm_prefix(deployment, app)}{param}"


@dataclass(frozen=True, slots=True)
class S3Location:
    bucket: str
    key: str

    @classmethod
    def parse(cls, uri: str) -> S3Location:
        """Parse `s3://bucket/key`; raise ValueError naming what is wrong."""
        if not isinstance(uri, str):
            raise ValueError(f"an S3 location is a string, not {type(uri).__name__}")
        parsed = urlparse(uri)
        if parsed.scheme != "s3" or not parsed.netloc or not parsed.path.strip("/"):
            raise ValueError(f"not an s3://bucket/key location: {uri!r}")
        return cls(parsed.netloc, parsed.path.lstrip("/"))

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

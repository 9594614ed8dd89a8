"""The one contract shared by the app, the Lambdas and the local cloud.

S3 key layout, SSM parameter names, the request schema and its GPU budget, notification
and model-output parsing, manifests, inference ids and the PNG `parameters` text form live
here and nowhere else. The Lambda assets bundle this package.
"""

from .budget import GPUS, MAX_PIXELS, Budget, BudgetError, budget_for
from .ids import MAX_ID_LENGTH, check_inference_id, id_time, is_safe_inference_id, new_inference_id
from .keys import (
    APP_NAME,
    BUCKET_ENV,
    BUCKET_PARAM,
    COMPANION_PARAMS,
    DEPLOYMENT_TAG,
    ENDPOINT_PARAM,
    ERROR_TOPIC_PARAM,
    FAILURES,
    FAMILY_PARAM,
    GUIDANCE_APP_NAME,
    IMAGES,
    KEEP_WARM_ACTION,
    MANIFEST_NAME,
    MESSAGE_INDEX,
    MESSAGES,
    MODEL_DATA_PARAM,
    MODEL_IMAGE_PARAM,
    OUTPUT,
    REQUESTS,
    SUCCESS_TOPIC_PARAM,
    S3Location,
    id_from_key,
    image_key,
    image_prefix,
    lambda_bucket,
    manifest_key,
    message_index_after,
    message_index_key,
    message_key,
    object_listed,
    parse_message_index_key,
    parse_ssm_name,
    request_key,
    ssm_name,
    ssm_prefix,
    ssm_root,
)
from .manifest import STATUS_COMPLETED, STATUS_FAILED, Manifest, ManifestError, parse_manifest
from .notification import (
    COMPLETED,
    FAILED,
    Notification,
    NotificationError,
    build_notification,
    parse_notification,
    sns_messages,
)
from .parameters import CHUNK_KEY, Parameters, format_parameters, parse_parameters
from .png import PNG_SIGNATURE, with_text_chunks
from .request import CONTROL_CHARACTERS, LABELS, LIMITS, MAX_SEED, PROMPT_MAX, GenerationRequest, RequestError

# The model-output names load numpy where it is installed; they are imported on first use so
# that the app starts fast.
_OUTPUT_NAMES = frozenset(
    {
        "ACCEPT_JPEG",
        "ACCEPT_RGB",
        "ACCEPTS",
        "ModelOutput",
        "OutputError",
        "OutputLimits",
        "OutputTooLarge",
        "Pixels",
        "RGBImage",
        "decode_image",
        "decode_output",
        "encode_output",
        "encode_png",
        "image_from_pil",
        "image_to_pil",
        "read_output",
    }
)

__all__ = sorted({name for name in dir() if not name.startswith("_")} | _OUTPUT_NAMES)


def __getattr__(name: str):
    if name in _OUTPUT_NAMES:
        from . import output

        return getattr(output, name)
    raise AttributeError(f"module 'contract' has no attribute {name!r}")

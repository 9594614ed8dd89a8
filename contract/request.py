"""The JumpStart text-to-image request: fields, limits and validation."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, fields
from typing import Any

import orjson

MAX_SEED = 2**32 - 1
MAX_REQUEST_BYTES = 64 * 1024  # far above any valid request; guards the endpoint


class RequestError(ValueError):
    """A request field is missing or out of range; the message names the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def load_body(body: bytes | str, max_bytes: int, limit: str) -> Any:
    """A request body's JSON, or RequestError: larger than `max_bytes` (said as `limit`), or not JSON."""
    if len(body) > max_bytes:
        raise RequestError("request", f"is larger than {limit}")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestError("request", f"is not valid JSON ({exc})") from None


@dataclass(frozen=True, slots=True)
class _Limit:
    low: float
    high: float
    kind: type
    multiple_of: int = 1

    def describe(self) -> str:
        text = f"{_fmt(self.low)} to {_fmt(self.high)}"
        if self.multiple_of > 1:
            text = f"a multiple of {self.multiple_of} from {text}"
        return ("a whole number " if self.kind is int and self.multiple_of == 1 else "") + text


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


LIMITS: dict[str, _Limit] = {
    "width": _Limit(64, 2048, int, 8),
    "height": _Limit(64, 2048, int, 8),
    "num_inference_steps": _Limit(1, 150, int),
    "guidance_scale": _Limit(0, 30, float),
    "num_images_per_prompt": _Limit(1, 8, int),
    "seed": _Limit(0, MAX_SEED, int),
}
PROMPT_MAX = 2000
#: Characters no text of a job may hold, because a terminal or a viewer acts on them: C0 controls but
#: line feed and tab, DEL, C1 controls (ESC [, CSI) and the bidirectional overrides and isolates.
CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_CONTROL_NAMES = {"\x00": "NUL", "\x1b": "Escape", "\r": "carriage return", "\x7f": "Delete", "\x07": "Bell"}
LABELS = {
    "prompt": "Prompt",
    "negative_prompt": "Negative prompt",
    "width": "Width",
    "height": "Height",
    "num_inference_steps": "Steps",
    "guidance_scale": "Guidance scale",
    "num_images_per_prompt": "Images per prompt",
    "seed": "Seed",
}


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """One text-to-image job as the JumpStart Stable Diffusion model takes it."""

    prompt: str
    negative_prompt: str = ""
    width: int = 512
    height: int = 512
    num_inference_steps: int = 30
    guidance_scale: float = 7.5
    num_images_per_prompt: int = 1
    seed: int | None = None

    def __post_init__(self) -> None:
        for name, value in _validated(asdict(self)).items():
            object.__setattr__(self, name, value)

    @classmethod
    def from_dict(cls, data: Any) -> GenerationRequest:
        """Build from a JSON object, refusing unknown fields by name."""
        if not isinstance(data, dict):
            raise RequestError("request", "must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise RequestError(unknown[0], f"unknown field; allowed: {', '.join(sorted(known))}")
        if "prompt" not in data:
            raise RequestError("prompt", "is required")
        return cls(**data)

    @classmethod
    def from_json(cls, body: bytes | str) -> GenerationRequest:
        return cls.from_dict(load_body(body, MAX_REQUEST_BYTES, f"{MAX_REQUEST_BYTES // 1024} KiB"))

    def to_dict(self) -> dict[str, Any]:
        """The JSON body the model receives (no seed key when the seed is random)."""
        data = asdict(self)
        if data["seed"] is None:
            del data["seed"]
        return data

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())


def _validated(data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("prompt", "negative_prompt"):
        value = data[name]
        if value is None and name == "negative_prompt":
            value = ""
        out[name] = check_text(name, value, required=name == "prompt")
    for name, limit in LIMITS.items():
        value = data[name]
        if value is None and name == "seed":
            out[name] = None
            continue
        out[name] = _number(name, value, limit)
    return out


def check_text(name: str, value: Any, *, required: bool = False) -> str:
    """A prompt-like text: at most PROMPT_MAX characters, no control characters (and not blank if required)."""
    if not isinstance(value, str):
        raise RequestError(name, "must be text")
    if required and not value.strip():
        raise RequestError(name, f"must have 1 to {PROMPT_MAX} characters")
    if len(value) > PROMPT_MAX:
        raise RequestError(name, f"has {len(value)} characters; at most {PROMPT_MAX}")
    control = CONTROL_CHARACTERS.search(value)
    if control:
        char = control.group()
        what = _CONTROL_NAMES.get(char, f"U+{ord(char):04X}")
        raise RequestError(
            name,
            f"holds a control character ({what}) at character {control.start() + 1}; "
            "only line breaks and tabs are allowed",
        )
    return value


def check_number(name: str, value: Any, limit: _Limit) -> int | float:
    """`value` as the limit's kind, or RequestError naming the field and the allowed range."""
    return _number(name, value, limit)


def _number(name: str, value: Any, limit: _Limit) -> int | float:
    allowed = f"allowed: {limit.describe()}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RequestError(name, f"must be a number; {allowed}")
    if isinstance(value, float) and not math.isfinite(value):
        raise RequestError(name, f"must be a finite number; {allowed}")
    if limit.kind is int:
        if isinstance(value, float):
            if not value.is_integer():
                raise RequestError(name, f"must be a whole number; {allowed}")
            value = int(value)
    else:
        value = float(value)
    if not limit.low <= value <= limit.high or (limit.multiple_of > 1 and value % limit.multiple_of):
        raise RequestError(name, f"is {_fmt(value)}; {allowed}")
    return value

"""SDXL 1.0: `model-imagegeneration-stabilityai-stable-diffusion-xl-base-1-0`, in Stability's container.

The container speaks Stability's REST API (v1) in JSON: `text_prompts: [{text, weight}]` (a negative
prompt is a negative weight), `width`, `height` (one of SDXL 1.0's nine sizes), `cfg_scale` (0–35),
`steps` (10–50), `seed` (0 asks for a random one, so a random seed is sent as no seed), `sampler`,
`style_preset`, and for image to image `init_image` (base64, its size one of the nine; no width or
height then) with `image_strength` (0–1: how much of the init image is kept). Its answer
(Accept `application/json;png`) is `{"artifacts": [{"base64", "seed", "finishReason"}]}`: one image.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from ..images import InputImage, base64_length, read_image
from ..parameters import Parameters
from ..request import MAX_SEED, RequestError, _Limit, check_number, check_text
from .base import CONTROLS, Family, RequestFields, count_from, number, only_one_image, set_checked, whole

if TYPE_CHECKING:
    from ..output import ModelOutput, OutputLimits, RGBImage

ACCEPT_PNG = "application/json;png"
#: SDXL 1.0's sizes (width, height), square first.
SIZES: tuple[tuple[int, int], ...] = (
    (1024, 1024),
    (1152, 896),
    (896, 1152),
    (1216, 832),
    (832, 1216),
    (1344, 768),
    (768, 1344),
    (1536, 640),
    (640, 1536),
)
#: Stability's sampler ids and the names A1111 writes for them.
SAMPLERS: dict[str, str] = {
    "DDIM": "DDIM",
    "DDPM": "DDPM",
    "K_DPMPP_2M": "DPM++ 2M",
    "K_DPMPP_2S_ANCESTRAL": "DPM++ 2S a",
    "K_DPM_2": "DPM2",
    "K_DPM_2_ANCESTRAL": "DPM2 a",
    "K_EULER": "Euler",
    "K_EULER_ANCESTRAL": "Euler a",
    "K_HEUN": "Heun",
    "K_LMS": "LMS",
}
STYLE_PRESETS: tuple[str, ...] = (
    "3d-model",
    "analog-film",
    "anime",
    "cinematic",
    "comic-book",
    "digital-art",
    "enhance",
    "fantasy-art",
    "isometric",
    "line-art",
    "low-poly",
    "modeling-compound",
    "neon-punk",
    "origami",
    "photographic",
    "pixel-art",
    "tile-texture",
)
SDXL_LIMITS: dict[str, _Limit] = {
    "cfg_scale": _Limit(0, 35, float),
    "steps": _Limit(10, 50, int),
    "seed": _Limit(1, MAX_SEED, int),
    "image_strength": _Limit(0, 1, float),
}
#: Stability's API returns at most this many artifacts (its `samples`); we ask for one.
MAX_SAMPLES = 10
#: The largest init image file: an uncompressed RGBA PNG of the largest size and its headers fit.
MAX_IMAGE_BYTES = max(w * h for w, h in SIZES) * 4 + 2048 + 64 * 1024
_SIDE = _Limit(64, 2048, int)
_SIZES_TEXT = ", ".join(f"{w}×{h}" for w, h in SIZES)


@dataclass(frozen=True, slots=True)
class SDXLRequest(RequestFields):
    """One SDXL 1.0 job in our words; `to_dict` gives Stability's body."""

    MAX_BYTES = base64_length(MAX_IMAGE_BYTES) + 64 * 1024

    prompt: str
    negative_prompt: str = ""
    width: int = 1024
    height: int = 1024
    cfg_scale: float = 7.0
    steps: int = 30
    seed: int | None = None
    sampler: str | None = None
    style_preset: str | None = None
    init_image: str | None = None
    image_strength: float | None = None

    def __post_init__(self) -> None:
        values: dict[str, Any] = {
            "prompt": check_text("prompt", self.prompt, required=True),
            "negative_prompt": check_text("negative_prompt", self.negative_prompt or ""),
        }
        for name in ("width", "height"):
            values[name] = check_number(name, getattr(self, name), _SIDE)
        for name, limit in SDXL_LIMITS.items():
            value = getattr(self, name)
            values[name] = None if value is None else check_number(name, value, limit)
        set_checked(self, values)
        if self.sampler is not None and self.sampler not in SAMPLERS:
            raise RequestError("sampler", f"is {self.sampler!r}; allowed: {', '.join(SAMPLERS)}")
        if self.style_preset is not None and self.style_preset not in STYLE_PRESETS:
            raise RequestError("style_preset", f"is {self.style_preset!r}; allowed: {', '.join(STYLE_PRESETS)}")
        if self.init_image is None:
            if self.image_strength is not None:
                raise RequestError("image_strength", "needs an init_image")
            if (self.width, self.height) not in SIZES:
                raise RequestError(
                    "width", f"{self.width}×{self.height} is not a size SDXL 1.0 makes; allowed: {_SIZES_TEXT}"
                )
            return
        image = self.init
        if (image.width, image.height) not in SIZES:
            raise RequestError("init_image", f"is {image.size} pixels; SDXL 1.0 takes {_SIZES_TEXT}")
        set_checked(
            self,
            {
                "width": image.width,
                "height": image.height,
                "image_strength": 0.35 if self.image_strength is None else self.image_strength,
            },
        )

    @property
    def init(self) -> InputImage | None:
        """The init image, its size read from its header (None without one)."""
        if self.init_image is None:
            return None
        return read_image("init_image", self.init_image, max_bytes=MAX_IMAGE_BYTES)

    def to_dict(self) -> dict[str, Any]:
        prompts = [{"text": self.prompt, "weight": 1.0}]
        if self.negative_prompt.strip():
            prompts.append({"text": self.negative_prompt, "weight": -1.0})
        body: dict[str, Any] = {"text_prompts": prompts, "cfg_scale": self.cfg_scale, "steps": self.steps}
        if self.init_image is None:
            body |= {"width": self.width, "height": self.height}
        else:
            body |= {"init_image": self.init_image, "image_strength": self.image_strength}
        for name in ("seed", "sampler", "style_preset"):
            if getattr(self, name) is not None:
                body[name] = getattr(self, name)
        return body

    @classmethod
    def from_dict(cls, data: Any) -> SDXLRequest:
        """From Stability's body (text_prompts …), as the endpoint receives it."""
        if not isinstance(data, Mapping):
            raise RequestError("request", "must be a JSON object")
        allowed = {"text_prompts", "width", "height", "cfg_scale", "steps", "seed", "sampler", "style_preset"}
        allowed |= {"init_image", "image_strength", "samples"}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise RequestError(unknown[0], f"unknown field; allowed: {', '.join(sorted(allowed))}")
        if count_from(data.get("samples"), MAX_SAMPLES, default=0) > 1:
            raise RequestError("samples", "is more than 1; SDXL here makes one image per request")
        positive, negative = _prompts(data.get("text_prompts"))
        fields = {key: data[key] for key in allowed - {"text_prompts", "samples"} if key in data}
        return cls(prompt=positive, negative_prompt=negative, **fields)


def _prompts(value: Any) -> tuple[str, str]:
    """The positive and the negative texts of `text_prompts` (each joined by a comma and a space)."""
    if not isinstance(value, list) or not value:
        raise RequestError("text_prompts", "must be a list of {text, weight}")
    positive, negative = [], []
    for item in value:
        if not isinstance(item, Mapping) or not isinstance(item.get("text"), str):
            raise RequestError("text_prompts", "must be a list of {text, weight}")
        weight = item.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            raise RequestError("text_prompts", "has a weight that is not a number")
        (negative if weight < 0 else positive).append(item["text"])
    return ", ".join(positive), ", ".join(negative)


class SDXL(Family):
    name = "sdxl"
    label = "SDXL 1.0"
    model_ids = ("model-imagegeneration-stabilityai-stable-diffusion-xl-base-1-0",)
    accept = ACCEPT_PNG
    accepts = (ACCEPT_PNG, "application/json")
    request_type = SDXLRequest
    max_request_bytes = SDXLRequest.MAX_BYTES
    controls = (CONTROLS - {"images"}) | {"size"}
    sizes = SIZES
    image_fields = ("init_image",)
    marketplace = True  # JumpStart serves it from Stability AI's model package

    def from_job(self, job: Any, **extra: Any) -> SDXLRequest:
        """Prompt, negative prompt, size, steps, guidance (cfg_scale) and seed from the job; sampler, style
        preset, init image and image strength from `extra`."""
        only_one_image(job, "SDXL 1.0")
        return SDXLRequest(
            prompt=job.prompt,
            negative_prompt=job.negative_prompt,
            width=job.width,
            height=job.height,
            cfg_scale=job.guidance_scale,
            steps=job.num_inference_steps,
            seed=job.seed,
            **extra,
        )

    def output_size(self, request: SDXLRequest) -> tuple[int, int, int]:
        return request.width, request.height, 1

    def output_limits(self, body: Mapping[str, Any]) -> OutputLimits:
        """The init image's size, else width × height when they are one of SDXL's sizes, else its largest sides."""
        from ..output import OutputLimits

        images = count_from(body.get("samples"), MAX_SAMPLES)
        try:
            image = read_image("init_image", body["init_image"], max_bytes=MAX_IMAGE_BYTES)
            size = (image.width, image.height)
        except (KeyError, RequestError):
            size = (body.get("width"), body.get("height"))
        if size not in SIZES:
            size = (max(w for w, _ in SIZES), max(h for _, h in SIZES))
        return OutputLimits(*size, images)

    def max_output_bytes(self, limits: OutputLimits) -> int:
        """Base64 of an uncompressed 16-bit RGBA PNG of each image, plus room for the JSON around them."""
        png = limits.width * limits.height * 8 + limits.height + 64 * 1024
        return limits.images * base64_length(png) + 64 * 1024

    def read_output(self, raw: bytes, limits: OutputLimits) -> ModelOutput:
        from ..output import ModelOutput, OutputError, decode_base64_image

        if len(raw) > self.max_output_bytes(limits):
            raise OutputError(
                f"the model output is {len(raw) / 1e6:.1f} MB, more than {limits.images} image(s) of "
                f"{limits.width} × {limits.height} can take"
            )
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise OutputError("the model output is not valid JSON (it may be truncated)") from None
        if not isinstance(data, dict):
            raise OutputError("the model output is not a JSON object")
        artifacts = data.get("artifacts")
        if not isinstance(artifacts, list) or not artifacts:
            raise OutputError("the model output has no list of artifacts (Stability's images)")
        limits.check_count(len(artifacts))
        images, per_image = [], []
        for index, artifact in enumerate(artifacts):
            if not isinstance(artifact, dict):
                raise OutputError(f"artifact {index + 1} is not a JSON object")
            reason = artifact.get("finishReason")
            if reason == "ERROR":
                raise OutputError(f"the model reports an error for image {index + 1} (finishReason ERROR)")
            images.append(decode_base64_image(artifact.get("base64"), index, limits))
            per_image.append({key: artifact[key] for key in ("seed", "finishReason") if _plain(artifact.get(key))})
        details = {key: value for key, value in data.items() if key != "artifacts" and _plain(value)}
        return ModelOutput(images, None, details, tuple(per_image))

    def encode_output(
        self, images: list[RGBImage], request: SDXLRequest, accept: str, details: dict[str, Any]
    ) -> bytes:
        from ..output import encode_png

        seed = request.seed if request.seed is not None else 0
        artifacts = [
            {"base64": base64_text(encode_png(image)), "seed": seed, "finishReason": "SUCCESS"} for image in images
        ]
        return orjson.dumps({"result": "success", "artifacts": artifacts, **details})

    def parameters(self, body: Mapping[str, Any], output: ModelOutput, index: int, model: str | None) -> Parameters:
        try:
            positive, negative = _prompts(body.get("text_prompts"))
        except RequestError:
            positive, negative = "", ""
        own = output.image_details[index] if index < len(output.image_details) else {}
        details = dict(output.details)
        named = details.pop("model", None)
        details.pop("result", None)
        height, width = output.images[index].shape[:2]
        extra: dict[str, str] = {}
        if body.get("sampler") in SAMPLERS:
            extra["Sampler"] = SAMPLERS[body["sampler"]]
        if isinstance(body.get("style_preset"), str):
            extra["Style preset"] = body["style_preset"]
        if "init_image" in body:
            extra["Operation"] = "image to image"
            if number(body.get("image_strength")) is not None:
                extra["Image strength"] = f"{body['image_strength']:g}"
        if own.get("finishReason") not in (None, "SUCCESS"):
            extra["Finish reason"] = str(own["finishReason"])
        extra |= {key: str(value) for key, value in details.items()}
        if len(output.images) > 1:
            extra |= {"Batch size": str(len(output.images)), "Batch pos": str(index)}
        seed = whole(own.get("seed")) or whole(body.get("seed"))
        return Parameters(
            prompt=positive,
            negative_prompt=negative,
            steps=whole(body.get("steps")),
            guidance_scale=number(body.get("cfg_scale")),
            seed=seed,
            width=width,
            height=height,
            model=str(named) if named is not None else model,
            extra=extra,
        )


def base64_text(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode("ascii")


def _plain(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool))


SDXL_FAMILY = SDXL()
